#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The snapshotter: lifecycle rules, and (as root) real overlay mounts of unpacked layers in
//! which whiteouts and opaque directories hide the lower layer's files.

mod common;

use std::fs;

use common::{mount, Layer};
use images::digest::sha256;
use images::manifest::chain_ids;
use images::snapshots::{Kind, Snapshotter};
use images::unpack::Options;
use images::{Error, ErrorKind};

fn err<T>(r: Result<T, Error>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

fn layers() -> (Vec<u8>, Vec<u8>) {
    let mut l1 = Layer::new();
    l1.dir("etc")
        .file("etc/hosts", b"hosts")
        .file("etc/passwd", b"root:x:0:0")
        .dir("var")
        .dir("var/cache")
        .file("var/cache/a", b"a")
        .file("var/cache/b", b"b")
        .file("keep", b"kept");
    let mut l2 = Layer::new();
    l2.dir("etc")
        .file("etc/.wh.hosts", b"")
        .dir("var")
        .file("var/.wh..wh..opq", b"")
        .file("var/new", b"new")
        .dir("bin")
        .file("bin/tool", b"tool")
        .file(".wh.keep", b"");
    (l1.finish(), l2.finish())
}

/// Applies the two layers and returns their chain IDs.
fn apply(s: &Snapshotter) -> Vec<String> {
    let (l1, l2) = layers();
    let chain = chain_ids(&[sha256(&l1), sha256(&l2)]);
    let opts = |t: &[u8]| Options {
        diff_id: Some(sha256(t)),
        no_sync: true,
        ..Default::default()
    };
    let r = s
        .apply_layer(chain[0].as_ref(), None, &l1[..], &opts(&l1))
        .unwrap();
    assert!(r.is_some());
    s.apply_layer(
        chain[1].as_ref(),
        Some(chain[0].as_ref()),
        &l2[..],
        &opts(&l2),
    )
    .unwrap()
    .unwrap();
    // A second image with the same layer shares the snapshot: nothing is unpacked.
    assert!(s
        .apply_layer(chain[0].as_ref(), None, &l1[..], &opts(&l1))
        .unwrap()
        .is_none());
    chain.iter().map(|c| c.to_string()).collect()
}

#[test]
fn lifecycle_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    if !common::is_root() {
        println!("skipped: whiteout devices need root");
        return;
    }
    let chain = apply(&s);
    let (c0, c1) = (chain[0].as_str(), chain[1].as_str());
    assert_eq!(s.stat(c1).unwrap().parent.as_deref(), Some(c0));
    assert_eq!(s.stat(c1).unwrap().kind, Kind::Committed);

    let m = s.prepare("ctr", Some(c1)).unwrap();
    assert_eq!(m[0].kind, "overlay");
    let lower = m[0].options[0].strip_prefix("lowerdir=").unwrap();
    let lowers: Vec<_> = lower.split(':').collect();
    assert_eq!(
        lowers,
        vec![
            s.fs_path(c1).unwrap().to_str().unwrap(),
            s.fs_path(c0).unwrap().to_str().unwrap()
        ]
    );
    assert!(m[0].options[1].starts_with("upperdir=") && m[0].options[2].starts_with("workdir="));

    assert_eq!(err(s.prepare("ctr", Some(c1))), ErrorKind::AlreadyExists);
    assert_eq!(err(s.prepare("x", Some("nope"))), ErrorKind::NotFound);
    assert_eq!(
        err(s.prepare("x", Some("ctr"))),
        ErrorKind::FailedPrecondition,
        "parent must be committed"
    );
    assert_eq!(
        err(s.remove(c0)),
        ErrorKind::FailedPrecondition,
        "has children"
    );
    assert_eq!(err(s.mounts(c0)), ErrorKind::FailedPrecondition);
    let v = s.view("v", c0).unwrap();
    assert_eq!(
        (v[0].kind.as_str(), v[0].options[1].as_str()),
        ("bind", "ro")
    );
    assert_eq!(
        err(s.commit("v2", "v")),
        ErrorKind::FailedPrecondition,
        "views are never committed"
    );
    let base = s.prepare("base", None).unwrap();
    assert_eq!(
        (base[0].kind.as_str(), base[0].options[1].as_str()),
        ("bind", "rw")
    );

    fs::write(
        s.fs_path("ctr").unwrap().join("written"),
        b"by the container",
    )
    .unwrap();
    let u = s.usage("ctr").unwrap();
    assert!(u.inodes >= 2 && u.size > 0, "{u:?}");
    let info = s.commit("layer3", "ctr").unwrap();
    assert_eq!(
        (info.kind, info.parent.as_deref()),
        (Kind::Committed, Some(c1))
    );
    assert_eq!(err(s.stat("ctr")), ErrorKind::NotFound);
    s.prepare("ctr2", Some("layer3")).unwrap();

    // Remove top-down; each directory goes with its record.
    for k in ["ctr2", "layer3", "v", "base", c1, c0] {
        let p = s.fs_path(k).unwrap();
        s.remove(k).unwrap();
        assert!(!p.exists(), "{k}");
    }
    assert!(s.list().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
        0
    );
}

#[test]
fn orphans_and_failed_unpacks_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Snapshotter::open(dir.path()).unwrap();
        let mut bad = Layer::new();
        bad.file("ok", b"x").file("../escape", b"x");
        let e = s
            .apply_layer("k", None, &bad.finish()[..], &Options::default())
            .unwrap_err();
        assert!(matches!(e, Error::UnsafeEntry { .. }), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(s.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
            0
        );
    }
    // A directory a crash left without a record is removed on open.
    fs::create_dir_all(dir.path().join("snapshots/999/fs")).unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    assert!(!dir.path().join("snapshots/999").exists());
    s.prepare("a", None).unwrap();
    assert_eq!(s.list().unwrap().len(), 1);
}

#[test]
fn overlay_of_two_unpacked_layers() {
    if !common::is_root() {
        println!("skipped: mounting overlays needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path().join("snap")).unwrap();
    let chain = apply(&s);
    let rootfs = dir.path().join("rootfs");
    let m = s.prepare("ctr", Some(&chain[1])).unwrap();
    {
        let _mounted = mount(&m, &rootfs);
        assert_eq!(fs::read(rootfs.join("etc/passwd")).unwrap(), b"root:x:0:0");
        assert!(
            !rootfs.join("etc/hosts").exists(),
            "whiteout must hide etc/hosts"
        );
        assert!(
            !rootfs.join("keep").exists(),
            "whiteout at the root must hide keep"
        );
        assert!(
            !rootfs.join("var/cache").exists(),
            "opaque var must hide var/cache"
        );
        assert_eq!(fs::read(rootfs.join("var/new")).unwrap(), b"new");
        assert_eq!(fs::read(rootfs.join("bin/tool")).unwrap(), b"tool");
        // Writes land in the container's upper directory, never in the shared layers.
        fs::write(rootfs.join("etc/passwd"), b"changed").unwrap();
        fs::remove_file(rootfs.join("bin/tool")).unwrap();
        fs::write(rootfs.join("created"), b"c").unwrap();
    }
    let upper = s.fs_path("ctr").unwrap();
    assert_eq!(fs::read(upper.join("etc/passwd")).unwrap(), b"changed");
    assert_eq!(fs::read(upper.join("created")).unwrap(), b"c");
    assert_eq!(
        fs::read(s.fs_path(&chain[0]).unwrap().join("etc/passwd")).unwrap(),
        b"root:x:0:0"
    );
    assert_eq!(
        fs::read(s.fs_path(&chain[1]).unwrap().join("bin/tool")).unwrap(),
        b"tool"
    );

    // A read-only view of the two layers shows the same merged tree and refuses writes.
    let v = s.view("view", &chain[1]).unwrap();
    assert_eq!(v[0].kind, "overlay");
    let vdir = dir.path().join("view");
    let _mounted = mount(&v, &vdir);
    assert!(!vdir.join("etc/hosts").exists());
    assert_eq!(fs::read(vdir.join("bin/tool")).unwrap(), b"tool");
    assert!(fs::write(vdir.join("x"), b"x").is_err());
}
