#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Registry push/pull against a real `docker-registry` on loopback inside a private network
//! namespace: anonymous and basic auth, cross-repository mounts, skipping blobs already present
//! on either side, every byte checked, and a connection cut mid-blob by a proxy.

mod common;

use std::fs;
use std::sync::mpsc;

use common::registry::{in_netns, runtime, Proxy, Registry, REGISTRY_BIN};
use common::token::TokenServer;
use images::progress::{Event, Progress, Step};
use images::registry::{pull, push, Auth, Options};
use images::{ErrorKind, Reference, Service};

fn can_run(test: &str) -> bool {
    if !common::is_root() {
        eprintln!("skipped: {test} needs root (network namespace, whiteout devices)");
        return false;
    }
    if !std::path::Path::new(REGISTRY_BIN).exists() {
        eprintln!(
            "skipped: {test} needs {REGISTRY_BIN} (scripts/deps.sh installs docker-registry)"
        );
        return false;
    }
    true
}

fn remote(addr: &str, path: &str) -> Reference {
    Reference::parse(&format!("{addr}/{path}")).unwrap()
}

fn events() -> (Progress, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    (Progress::channel(tx), rx)
}

fn count(rx: &mpsc::Receiver<Event>, step: Step) -> usize {
    rx.try_iter().filter(|e| e.step == step).count()
}

/// Every blob of `name` in `a` is in `b` with the same bytes, and the records agree.
fn same_image(a: &Service, an: &Reference, b: &Service, bn: &Reference) {
    let (ra, rb) = (a.resolve_host(an).unwrap(), b.resolve_host(bn).unwrap());
    assert_eq!(ra.manifest_desc.digest, rb.manifest_desc.digest);
    let blobs = std::iter::once(&ra.manifest_desc)
        .chain(std::iter::once(&ra.manifest.config))
        .chain(ra.manifest.layers.iter());
    for d in blobs {
        let x = fs::read(a.content.blob_path(&d.digest).unwrap()).unwrap();
        let y = fs::read(b.content.blob_path(&d.digest).unwrap()).unwrap();
        assert!(x == y, "blob {} differs", d.digest);
        b.content.verify(&d.digest).unwrap();
    }
}

#[test]
fn push_pull_round_trip_with_mounts_and_skips() {
    if !can_run("push_pull_round_trip_with_mounts_and_skips") {
        return;
    }
    in_netns(|| {
        let tmp = common::tempdir("reg-rt");
        let reg = Registry::start(&tmp.path().join("registry"), None);
        let src = Service::open(tmp.path().join("src")).unwrap();
        let (base, app) = common::build_images(&src, tmp.path());
        let rt = runtime();
        let opts = Options::default();
        let (rbase, rapp) = (
            remote(&reg.addr, "test/base:1"),
            remote(&reg.addr, "test/app:1"),
        );

        let (p, rx) = events();
        rt.block_on(push(&src, &base, &rbase, &opts, &p)).unwrap();
        assert_eq!(count(&rx, Step::Mounted), 0);
        // The app shares the base layer: mounted from test/base (which the base's push
        // recorded), not uploaded again.
        let opts_app = Options {
            mount_from: vec!["test/base".into()],
            ..Default::default()
        };
        let (p, rx) = events();
        rt.block_on(push(&src, &app, &rapp, &opts_app, &p)).unwrap();
        let ev: Vec<Event> = rx.try_iter().collect();
        let base_layer = src.resolve_host(&base).unwrap().manifest.layers[0]
            .digest
            .to_string();
        assert!(
            ev.iter()
                .any(|e| e.step == Step::Mounted && e.id == base_layer),
            "base layer mounted: {ev:?}"
        );
        assert!(ev.iter().any(|e| e.step == Step::Uploading));
        // Pushing again uploads nothing.
        let (p, rx) = events();
        rt.block_on(push(&src, &app, &rapp, &opts, &p)).unwrap();
        let ev: Vec<Event> = rx.try_iter().collect();
        assert_eq!(
            ev.iter().filter(|e| e.step == Step::Exists).count(),
            3,
            "{ev:?}"
        );
        assert!(!ev.iter().any(|e| e.step == Step::Uploading));

        // Pull into a fresh store: every byte identical.
        let dst = Service::open(tmp.path().join("dst")).unwrap();
        let (p, rx) = events();
        let rec = rt.block_on(pull(&dst, &rapp, &opts, &p)).unwrap();
        assert_eq!(rec.name, rapp.to_string());
        assert!(count(&rx, Step::Downloading) >= 3);
        same_image(&src, &app, &dst, &rapp);
        assert!(
            dst.leases.list().unwrap().is_empty(),
            "pull released its lease"
        );
        // The base shares its layer with the app: only its config and manifest are fetched.
        let (p, rx) = events();
        rt.block_on(pull(&dst, &rbase, &opts, &p)).unwrap();
        assert_eq!(count(&rx, Step::Exists), 1);
        same_image(&src, &base, &dst, &rbase);
        // Pulling by digest works too, and unknown tags are NotFound.
        let by_digest = rbase.with_digest(dst.images.get(&rbase).unwrap().target.digest);
        rt.block_on(pull(&dst, &by_digest, &opts, &Progress::none()))
            .unwrap();
        let e = rt
            .block_on(pull(
                &dst,
                &remote(&reg.addr, "test/base:nope"),
                &opts,
                &Progress::none(),
            ))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    });
}

#[test]
fn basic_auth() {
    if !can_run("basic_auth") || !common::have_tool("htpasswd", "basic_auth") {
        return;
    }
    in_netns(|| {
        let tmp = common::tempdir("reg-auth");
        let reg = Registry::start(&tmp.path().join("registry"), Some(("wharf", "s3cret")));
        let src = Service::open(tmp.path().join("src")).unwrap();
        let (base, _) = common::build_images(&src, tmp.path());
        let rt = runtime();
        let rbase = remote(&reg.addr, "private/base:1");
        let none = Progress::none();
        let with = |auth: Auth| Options {
            auth,
            ..Default::default()
        };
        let wrong = with(Auth::Basic {
            username: "wharf".into(),
            password: "nope".into(),
        });
        let e = rt
            .block_on(push(&src, &base, &rbase, &wrong, &none))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e:?}");
        let e = rt
            .block_on(push(&src, &base, &rbase, &with(Auth::Anonymous), &none))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e:?}");
        let good = with(Auth::Basic {
            username: "wharf".into(),
            password: "s3cret".into(),
        });
        rt.block_on(push(&src, &base, &rbase, &good, &none))
            .unwrap();
        let dst = Service::open(tmp.path().join("dst")).unwrap();
        let e = rt
            .block_on(pull(&dst, &rbase, &with(Auth::Anonymous), &none))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e:?}");
        rt.block_on(pull(&dst, &rbase, &good, &none)).unwrap();
        same_image(&src, &base, &dst, &rbase);
    });
}

#[test]
fn pull_cut_mid_blob_leaves_consistent_store_and_retry_completes() {
    if !can_run("pull_cut_mid_blob_leaves_consistent_store_and_retry_completes") {
        return;
    }
    in_netns(|| {
        let tmp = common::tempdir("reg-cut");
        let reg = Registry::start(&tmp.path().join("registry"), None);
        let src = Service::open(tmp.path().join("src")).unwrap();
        // An image with a 4 MiB incompressible layer.
        let dir = tmp.path().join("big");
        fs::create_dir_all(&dir).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        fs::write(dir.join("noise"), &noise).unwrap();
        let big = Reference::parse("localhost/test/big:1").unwrap();
        images::commit::commit(
            &src,
            &dir,
            None,
            &big,
            &Default::default(),
            &Progress::none(),
        )
        .unwrap();
        let rt = runtime();
        let opts = Options::default();
        rt.block_on(push(
            &src,
            &big,
            &remote(&reg.addr, "test/big:1"),
            &opts,
            &Progress::none(),
        ))
        .unwrap();

        // One blob at a time (config first), so what exists before the cut is deterministic.
        let opts = Options {
            concurrency: 1,
            ..Default::default()
        };
        let proxy = Proxy::start(&reg.addr, 1 << 20);
        let via = remote(&proxy.addr, "test/big:1");
        let dst = Service::open(tmp.path().join("dst")).unwrap();
        let e = rt
            .block_on(pull(&dst, &via, &opts, &Progress::none()))
            .unwrap_err();
        assert_eq!(
            proxy.cuts.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{e}"
        );
        // Consistent: no record, no partial files, every stored blob complete and verified,
        // and the failed pull's lease keeps what it got for the retry.
        assert_eq!(
            dst.images.get(&via).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(dst.content.usage().unwrap().ingest, 0);
        let layer = src.resolve_host(&big).unwrap().manifest.layers[0]
            .digest
            .clone();
        assert!(!dst.content.exists(&layer).unwrap());
        for b in dst.content.list().unwrap() {
            dst.content.verify(&b.digest).unwrap();
        }
        assert_eq!(dst.leases.list().unwrap().len(), 1);
        let kept = dst.content.list().unwrap().len();
        assert!(kept >= 2, "manifest and config were fetched before the cut");
        assert!(
            dst.gc().unwrap().removed.is_empty(),
            "the lease protects them"
        );

        // Retry through the same (now healthy) proxy: only the missing blob is fetched.
        proxy.disarm();
        let (p, rx) = events();
        rt.block_on(pull(&dst, &via, &opts, &p)).unwrap();
        assert_eq!(count(&rx, Step::Exists), 1, "the config was kept");
        same_image(&src, &big, &dst, &via);
    });
}

#[test]
fn bearer_token_auth() {
    if !can_run("bearer_token_auth") || !common::have_tool("openssl", "bearer_token_auth") {
        return;
    }
    in_netns(|| {
        let tmp = common::tempdir("reg-token");
        let tokens = TokenServer::start(&tmp.path().join("token"), "wharf", "s3cret");
        let reg = Registry::start_with(&tmp.path().join("registry"), &tokens.registry_auth_yaml());
        let src = Service::open(tmp.path().join("src")).unwrap();
        let (base, _) = common::build_images(&src, tmp.path());
        let rt = runtime();
        let rbase = remote(&reg.addr, "secure/base:1");
        let none = Progress::none();
        let basic = |password: &str| Options {
            auth: Auth::Basic {
                username: "wharf".into(),
                password: password.into(),
            },
            ..Default::default()
        };
        // The registry challenges with Bearer; the token server refuses bad credentials.
        let e = rt
            .block_on(push(&src, &base, &rbase, &basic("nope"), &none))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e:?}");
        rt.block_on(push(&src, &base, &rbase, &basic("s3cret"), &none))
            .unwrap();
        assert!(tokens.issued.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        // Pull with credentials (token fetched by the client) and with a token given directly.
        let dst = Service::open(tmp.path().join("dst")).unwrap();
        rt.block_on(pull(&dst, &rbase, &basic("s3cret"), &none))
            .unwrap();
        same_image(&src, &base, &dst, &rbase);
        let dst2 = Service::open(tmp.path().join("dst2")).unwrap();
        let bearer = Options {
            auth: Auth::Bearer(tokens.token_for("repository:secure/base:pull")),
            ..Default::default()
        };
        rt.block_on(pull(&dst2, &rbase, &bearer, &none)).unwrap();
        same_image(&src, &base, &dst2, &rbase);
        // A token for another repository is refused.
        let wrong = Options {
            auth: Auth::Bearer(tokens.token_for("repository:other/repo:pull")),
            ..Default::default()
        };
        let dst3 = Service::open(tmp.path().join("dst3")).unwrap();
        let e = rt.block_on(pull(&dst3, &rbase, &wrong, &none)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e:?}");
    });
}
