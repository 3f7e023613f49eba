#![allow(clippy::expect_used, clippy::unwrap_used)]
use super::*;
use crate::digest::sha256;

fn d(s: &str) -> String {
    sha256(s.as_bytes()).to_string()
}

#[test]
fn oci_and_docker_manifests() {
    let oci = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": d("c"), "size": 10},
        "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": d("l1"), "size": 5},
                   {"mediaType": media::OCI_LAYER_ZSTD, "digest": d("l2"), "size": 6}],
        "annotations": {"a": "b"}
    });
    let bytes = serde_json::to_vec(&oci).unwrap();
    let Document::Manifest(m) = Document::parse(&bytes, Some(media::OCI_MANIFEST), "m").unwrap()
    else {
        panic!("not a manifest")
    };
    m.check_image("m").unwrap();
    assert_eq!(m.layers.len(), 2);
    assert_eq!(
        layer_compression(&m.layers[1].media_type).unwrap(),
        Compression::Zstd
    );

    let docker = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST,
        "config": {"mediaType": media::DOCKER_CONFIG, "digest": d("c"), "size": 10},
        "layers": [{"mediaType": media::DOCKER_LAYER_GZIP, "digest": d("l1"), "size": 5}]
    });
    let doc = Document::parse(&serde_json::to_vec(&docker).unwrap(), None, "m").unwrap();
    assert_eq!(doc.media_type(), media::DOCKER_MANIFEST);
    let Document::Manifest(m) = doc else { panic!() };
    m.check_image("m").unwrap();
    assert_eq!(
        layer_compression(&m.layers[0].media_type).unwrap(),
        Compression::Gzip
    );
}

#[test]
fn docker_manifest_list_keeps_os_version() {
    let list = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST_LIST,
        "manifests": [{"mediaType": media::DOCKER_MANIFEST, "digest": d("w"), "size": 1,
            "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1879",
                         "os.features": ["win32k"]}}]
    });
    let bytes = serde_json::to_vec(&list).unwrap();
    let Document::Index(ix) =
        Document::parse(&bytes, Some(media::DOCKER_MANIFEST_LIST), "l").unwrap()
    else {
        panic!()
    };
    let p = ix.manifests[0].platform.as_ref().unwrap();
    assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1879"));
    assert_eq!(p.os_features, vec!["win32k".to_string()]);
    // And writes it back under the same key.
    let again = serde_json::to_value(&ix).unwrap();
    assert_eq!(
        again["manifests"][0]["platform"]["os.version"],
        "10.0.17763.1879"
    );
    // An index without mediaType is recognised by shape.
    let bare = serde_json::json!({"schemaVersion": 2, "manifests": []});
    assert!(matches!(
        Document::parse(&serde_json::to_vec(&bare).unwrap(), None, "i").unwrap(),
        Document::Index(_)
    ));
}

#[test]
fn malformed_documents_name_the_field() {
    let cases: Vec<(serde_json::Value, Option<&str>, &str)> = vec![
        (
            serde_json::json!({"schemaVersion": 2, "config": {"mediaType": media::OCI_CONFIG, "digest": d("c"), "size": 1},
            "layers": [{"mediaType": media::OCI_LAYER, "digest": d("a"), "size": 1},
                       {"mediaType": media::OCI_LAYER, "digest": "sha256:1234", "size": 1}]}),
            None,
            "layers[1].digest",
        ),
        (
            serde_json::json!({"schemaVersion": 2, "config": {"mediaType": media::OCI_CONFIG, "digest": d("c"), "size": "x"}}),
            None,
            "config.size",
        ),
        (
            serde_json::json!({"schemaVersion": 3, "config": {"mediaType": media::OCI_CONFIG, "digest": d("c"), "size": 1}}),
            None,
            "schemaVersion",
        ),
        (
            serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": {"mediaType": media::OCI_CONFIG, "digest": d("c"), "size": 1}}),
            Some(media::OCI_INDEX),
            "mediaType",
        ),
        (
            serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": format!("md5:{}", "a".repeat(32)), "size": 1}]}),
            None,
            "manifests[0].digest",
        ),
    ];
    for (json, hint, field) in cases {
        let e =
            Document::parse(&serde_json::to_vec(&json).unwrap(), hint, "manifest X").unwrap_err();
        match &e {
            Error::InvalidDocument { what, field: f, .. } => {
                assert_eq!(what, "manifest X");
                assert_eq!(f, field, "{e}");
            }
            other => panic!("{json}: {other}"),
        }
    }
    let v1 = serde_json::json!({"schemaVersion": 1, "name": "x"});
    let e = Document::parse(&serde_json::to_vec(&v1).unwrap(), None, "old").unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Unsupported);
    let e = Document::parse(b"{not json", None, "junk").unwrap_err();
    assert!(e.to_string().starts_with("junk"), "{e}");
    let artifact = Manifest {
        schema_version: 2,
        media_type: None,
        artifact_type: None,
        config: Descriptor::new("application/vnd.example+json", sha256(b"c"), 1),
        layers: vec![],
        subject: None,
        annotations: Default::default(),
    };
    assert_eq!(
        artifact.check_image("a").unwrap_err().kind(),
        crate::ErrorKind::Unsupported
    );
}

#[test]
fn config_and_chain_ids() {
    let cfg = serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [d("a"), d("b"), d("c")]}});
    let c = parse_config(&serde_json::to_vec(&cfg).unwrap(), "config").unwrap();
    let ids = diff_ids(&c, "config").unwrap();
    assert_eq!(ids.len(), 3);
    let chain = chain_ids(&ids);
    assert_eq!(chain[0], ids[0]);
    assert_eq!(
        chain[1],
        sha256(format!("{} {}", ids[0], ids[1]).as_bytes())
    );
    assert_eq!(
        chain[2],
        sha256(format!("{} {}", chain[1], ids[2]).as_bytes())
    );

    let bad = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [d("a"), "sha256:nothex"]}});
    let c = parse_config(&serde_json::to_vec(&bad).unwrap(), "config").unwrap();
    let e = diff_ids(&c, "config Y").unwrap_err();
    assert!(e.to_string().contains("rootfs.diff_ids[1]"), "{e}");
    let e = parse_config(br#"{"architecture": 5}"#, "config Z").unwrap_err();
    assert!(e.to_string().contains("architecture"), "{e}");
}
