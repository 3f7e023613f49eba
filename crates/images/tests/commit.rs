#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Commit end to end (as root): a busybox-like image, a container snapshot over it changed
//! through a real overlay mount (modify, add, delete a file, delete a directory, replace a
//! directory — which makes it opaque), committed to a new image; the new layer's tar has the OCI
//! whiteouts, and unpacked through the snapshotter on top of the base it shows exactly the
//! container's view.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use images::commit::{commit, Options};
use images::manifest::chain_ids;
use images::progress::{Progress, Step};
use images::snapshots::Snapshotter;
use images::{unpack, Reference, Service};

#[test]
fn commit_modified_snapshot_and_unpack_it_again() {
    if !common::is_root() {
        eprintln!("skipped: commit_modified_snapshot_and_unpack_it_again needs root (overlay)");
        return;
    }
    let tmp = common::tempdir("commit");
    let svc = Service::open(tmp.path().join("images")).unwrap();
    let snaps = Snapshotter::open(tmp.path().join("snapshots")).unwrap();

    // The base image, from a directory.
    let rootfs = tmp.path().join("rootfs");
    common::busybox_rootfs(&rootfs);
    let base = Reference::parse("localhost/test/base:1").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let opts = Options {
        created_by: "import".into(),
        created: Some(1_700_000_000),
        ..Default::default()
    };
    let b = commit(&svc, &rootfs, None, &base, &opts, &Progress::channel(tx)).unwrap();
    let events: Vec<_> = rx.try_iter().collect();
    assert!(events
        .iter()
        .any(|e| e.step == Step::Writing && e.done > 1_000_000));
    assert!(events.iter().any(|e| e.step == Step::Done));
    // Same tree, same time: the same layer, byte for byte.
    let again = commit(&svc, &rootfs, None, &base, &opts, &Progress::none()).unwrap();
    assert_eq!(again.layer.digest, b.layer.digest);
    assert_eq!(again.manifest.digest, b.manifest.digest);

    // A container over it.
    let chain0 = b.diff_id.to_string();
    let blob = svc.content.open_blob(&b.layer.digest).unwrap();
    let uopts = unpack::Options {
        diff_id: Some(b.diff_id.clone()),
        no_sync: true,
        ..Default::default()
    };
    snaps
        .apply_layer(&chain0, None, blob, &uopts)
        .unwrap()
        .unwrap();
    let mounts = snaps.prepare("ctr", Some(&chain0)).unwrap();
    let mnt = tmp.path().join("mnt");
    {
        let _m = common::mount(&mounts, &mnt);
        assert_eq!(
            fs::read(mnt.join("bin/busybox")).unwrap(),
            fs::read(common::busybox()).unwrap()
        );
        fs::write(
            mnt.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:\n",
        )
        .unwrap();
        fs::write(mnt.join("etc/new"), "new file").unwrap();
        fs::remove_file(mnt.join("etc/hosts")).unwrap();
        fs::remove_dir_all(mnt.join("usr/share/doc")).unwrap();
        fs::remove_dir_all(mnt.join("var/cache")).unwrap();
        fs::create_dir(mnt.join("var/cache")).unwrap();
        fs::write(mnt.join("var/cache/c"), "c").unwrap();
        std::os::unix::fs::symlink("/etc/new", mnt.join("tmp/link")).unwrap();
    }
    let upper = snaps.fs_path("ctr").unwrap();
    let hosts = fs::symlink_metadata(upper.join("etc/hosts")).unwrap();
    assert!(hosts.file_type().is_char_device() && hosts.rdev() == 0);
    assert_eq!(
        common::lgetxattr(&upper.join("var/cache"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );

    // Commit the container.
    let app = Reference::parse("localhost/test/app:1").unwrap();
    let opts = Options {
        created_by: "/bin/sh -c edit".into(),
        comment: Some("edited".into()),
        labels: BTreeMap::from([("stage".into(), "test".into())]),
        ..Default::default()
    };
    let c = commit(&svc, &upper, Some(&base), &app, &opts, &Progress::none()).unwrap();
    assert_eq!(c.stats.whiteouts, 2, "{:?}", c.stats);
    assert_eq!(c.stats.opaque, 1);

    // The layer's entries.
    let mut names = BTreeMap::new();
    let gz = flate2::read::GzDecoder::new(svc.content.open_blob(&c.layer.digest).unwrap());
    let mut ar = tar::Archive::new(gz);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = String::new();
        e.read_to_string(&mut data).unwrap_or_default();
        names.insert(p.trim_end_matches('/').to_string(), data);
    }
    for want in [
        "etc/.wh.hosts",
        "usr/share/.wh.doc",
        "var/cache/.wh..wh..opq",
        "var/cache/c",
        "etc/new",
        "etc/passwd",
        "tmp/link",
    ] {
        assert!(names.contains_key(want), "{want} missing from {names:?}");
    }
    assert!(
        !names.keys().any(|k| k.contains("busybox")),
        "unchanged files stay out"
    );
    assert_eq!(names["etc/new"], "new file");

    // Config and manifest.
    let r = svc.resolve_host(&app).unwrap();
    assert_eq!(r.record.labels["stage"], "test");
    assert_eq!(r.manifest.layers.len(), 2);
    assert_eq!(
        r.diff_ids().unwrap(),
        vec![b.diff_id.clone(), c.diff_id.clone()]
    );
    let cfg: serde_json::Value = serde_json::from_slice(&r.config_bytes).unwrap();
    assert_eq!(cfg["history"].as_array().unwrap().len(), 2);
    assert_eq!(cfg["history"][1]["comment"], "edited");
    assert_eq!(cfg["history"][0]["created"], "2023-11-14T22:13:20Z");
    svc.content.verify(&c.layer.digest).unwrap();

    // Unpack the new layer on top and look at the result.
    let chain = chain_ids(&r.diff_ids().unwrap());
    let blob = svc.content.open_blob(&c.layer.digest).unwrap();
    let uopts = unpack::Options {
        diff_id: Some(c.diff_id.clone()),
        no_sync: true,
        ..Default::default()
    };
    snaps
        .apply_layer(chain[1].as_ref(), Some(&chain0), blob, &uopts)
        .unwrap()
        .unwrap();
    let mounts = snaps.prepare("check", Some(chain[1].as_ref())).unwrap();
    let view = tmp.path().join("view");
    let _m = common::mount(&mounts, &view);
    assert!(!view.join("etc/hosts").exists());
    assert_eq!(
        fs::read_to_string(view.join("etc/hosts.bak")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    assert!(fs::read_to_string(view.join("etc/passwd"))
        .unwrap()
        .contains("app:x:1000"));
    assert_eq!(
        fs::read_to_string(view.join("etc/new")).unwrap(),
        "new file"
    );
    assert!(!view.join("usr/share/doc").exists());
    assert!(view.join("usr/share").is_dir());
    let cache: Vec<_> = fs::read_dir(view.join("var/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        cache,
        vec!["c".to_string()],
        "opaque directory hides a and b"
    );
    assert_eq!(
        fs::read_link(view.join("tmp/link")).unwrap().to_str(),
        Some("/etc/new")
    );
    assert_eq!(
        fs::read_link(view.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(
        fs::read(view.join("bin/busybox")).unwrap(),
        fs::read(common::busybox()).unwrap()
    );
    assert_eq!(
        fs::metadata(view.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );

    // GC keeps both images' blobs; deleting the app frees only its own.
    assert!(svc.gc().unwrap().removed.is_empty());
    svc.images.delete(&app).unwrap();
    let removed = svc.gc().unwrap().removed;
    assert_eq!(
        removed.len(),
        3,
        "layer, config, manifest of the app: {removed:?}"
    );
    assert!(svc.content.exists(&b.layer.digest).unwrap());
}
