#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Layer unpack on real files: every entry type, ownership, modes, times, xattrs, compression
//! detection, overlay whiteouts, diff_id verification, and atomic placement.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{Entry, Layer};
use images::digest::sha256;
use images::unpack::{detect, unpack, Options};
use images::{manifest::Compression, Error};
use tar::EntryType;

fn sample() -> Vec<u8> {
    let mut l = Layer::new();
    l.entry(Entry {
        name: "etc/",
        kind: EntryType::Directory,
        mode: 0o750,
        uid: 7,
        gid: 8,
        mtime: 1000,
        ..Default::default()
    })
    .entry(Entry {
        name: "etc/hosts",
        data: b"127.0.0.1 localhost\n",
        mode: 0o640,
        uid: 1000,
        gid: 1001,
        mtime: 2000,
        ..Default::default()
    })
    .entry(Entry {
        name: "bin/busybox",
        data: b"\x7fELF...",
        mode: 0o755,
        ..Default::default()
    })
    .entry(Entry {
        name: "bin/su",
        data: b"su",
        mode: 0o4755,
        ..Default::default()
    })
    .symlink("bin/sh", "busybox")
    .hardlink("bin/ls", "bin/busybox")
    .entry(Entry {
        name: "run/fifo",
        kind: EntryType::Fifo,
        mode: 0o600,
        ..Default::default()
    })
    .entry(Entry {
        name: "dev/null",
        kind: EntryType::Char,
        mode: 0o666,
        dev: (1, 3),
        ..Default::default()
    })
    .pax(&[
        ("SCHILY.xattr.user.wharf", b"test"),
        ("uid", b"2000000"),
        ("mtime", b"3000.5"),
    ])
    .entry(Entry {
        name: "etc/big-uid",
        data: b"x",
        ..Default::default()
    })
    .entry(Entry {
        name: "./tmp",
        kind: EntryType::Directory,
        mode: 0o1777,
        mtime: 4000,
        ..Default::default()
    });
    l.finish()
}

fn check_sample(dir: &std::path::Path) {
    let root = common::is_root();
    let etc = fs::metadata(dir.join("etc")).unwrap();
    assert_eq!(etc.mode() & 0o7777, 0o750);
    assert_eq!(
        etc.mtime(),
        1000,
        "directory mtime is set after its children"
    );
    let hosts = fs::metadata(dir.join("etc/hosts")).unwrap();
    assert_eq!(
        fs::read(dir.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!((hosts.mode() & 0o7777, hosts.mtime()), (0o640, 2000));
    assert_eq!(
        fs::metadata(dir.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::read_link(dir.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(
        fs::metadata(dir.join("bin/ls")).unwrap().ino(),
        fs::metadata(dir.join("bin/busybox")).unwrap().ino()
    );
    assert!(fs::symlink_metadata(dir.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let tmp = fs::metadata(dir.join("tmp")).unwrap();
    assert_eq!((tmp.mode() & 0o7777, tmp.mtime()), (0o1777, 4000));
    let big = fs::metadata(dir.join("etc/big-uid")).unwrap();
    assert_eq!(big.mtime(), 3000, "PAX mtime overrides the header");
    if root {
        assert_eq!((etc.uid(), etc.gid()), (7, 8));
        assert_eq!((hosts.uid(), hosts.gid()), (1000, 1001));
        assert_eq!(big.uid(), 2_000_000, "PAX uid overrides the header");
        let null = fs::symlink_metadata(dir.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
    } else {
        println!("not root: ownership and device nodes not checked");
    }
    // user.* xattrs need a filesystem that has them (tmpfs gained them in 6.6).
    if let Some(v) = common::lgetxattr(&dir.join("etc/big-uid"), "user.wharf") {
        assert_eq!(v, b"test");
    }
}

#[test]
fn plain_gzip_and_zstd_unpack_alike() {
    let dir = tempfile::tempdir().unwrap();
    let tar = sample();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    assert_eq!(detect(&gz), Compression::Gzip);
    assert_eq!(detect(&zst), Compression::Zstd);
    assert_eq!(detect(&tar), Compression::None);
    for (name, bytes) in [("plain", &tar), ("gzip", &gz), ("zstd", &zst)] {
        let target = dir.path().join(name);
        let opts = Options {
            diff_id: Some(sha256(&tar)),
            no_sync: false,
            ..Default::default()
        };
        let r = unpack(&bytes[..], &target, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.diff_id, sha256(&tar), "{name}");
        assert_eq!(r.size, tar.len() as u64);
        check_sample(&target);
    }
    assert!(common::staging_leftovers(dir.path()).is_empty());
}

#[test]
fn overlay_whiteouts() {
    if !common::is_root() {
        println!("skipped: whiteout devices and trusted.* xattrs need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.dir("etc")
        .file("etc/.wh.hosts", b"")
        .dir("var")
        .file("var/.wh..wh..opq", b"")
        .file("var/new", b"n")
        .file(".wh.gone", b"")
        .file("etc/.wh..wh.plnk", b"");
    let target = dir.path().join("l2");
    unpack(&l.finish()[..], &target, &Options::default()).unwrap();
    for w in ["etc/hosts", "gone"] {
        let md = fs::symlink_metadata(target.join(w)).unwrap();
        assert!(md.file_type().is_char_device(), "{w}");
        assert_eq!(md.rdev(), 0, "{w}");
    }
    assert_eq!(
        common::lgetxattr(&target.join("var"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(common::lgetxattr(&target.join("etc"), "trusted.overlay.opaque").is_none());
    assert!(!target.join("etc/.wh..wh.plnk").exists());
    assert_eq!(fs::read(target.join("var/new")).unwrap(), b"n");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.file("a", b"first")
        .file("a", b"second")
        .dir("d")
        .file("d/child", b"c")
        .file("d", b"now a file")
        .file("d2/x/y", b"deep")
        .file("d2", b"flat")
        .file("e", b"file")
        .dir("e")
        .file("e/inner", b"i");
    let target = dir.path().join("l");
    unpack(&l.finish()[..], &target, &Options::default()).unwrap();
    assert_eq!(fs::read(target.join("a")).unwrap(), b"second");
    assert_eq!(fs::read(target.join("d")).unwrap(), b"now a file");
    assert_eq!(fs::read(target.join("d2")).unwrap(), b"flat");
    assert_eq!(fs::read(target.join("e/inner")).unwrap(), b"i");
}

#[test]
fn a_file_under_a_replaced_directory_is_refused() {
    // The walker caches the parent "d2/x"; replacing "d2" must not leave writes going to the
    // removed directory.
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.file("d2/x/y", b"deep")
        .file("d2", b"flat")
        .file("d2/x/z", b"lost?");
    let e = unpack(&l.finish()[..], &dir.path().join("l"), &Options::default()).unwrap_err();
    assert!(
        matches!(&e, Error::UnsafeEntry { entry, .. } if entry == "d2/x/z"),
        "{e}"
    );
}

#[test]
fn diff_id_mismatch_and_existing_target() {
    let dir = tempfile::tempdir().unwrap();
    let tar = sample();
    let target = dir.path().join("l");
    let wrong = sha256(b"not this layer");
    let e = unpack(
        &tar[..],
        &target,
        &Options {
            diff_id: Some(wrong.clone()),
            no_sync: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::DigestMismatch { expected, .. } if *expected == wrong.to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("diff_id"));
    assert!(!target.exists());
    assert!(common::staging_leftovers(dir.path()).is_empty());

    unpack(&tar[..], &target, &Options::default()).unwrap();
    let e = unpack(&tar[..], &target, &Options::default()).unwrap_err();
    assert_eq!(e.kind(), images::ErrorKind::AlreadyExists);

    // A truncated stream fails too, naming where it broke, and leaves nothing behind.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let e = unpack(
        &gz[..gz.len() / 2],
        &dir.path().join("t"),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Entry { .. }), "{e}");
    assert!(!dir.path().join("t").exists());
    assert!(common::staging_leftovers(dir.path()).is_empty());
}
