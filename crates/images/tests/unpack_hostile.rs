#![allow(clippy::expect_used, clippy::unwrap_used)]
//! A corpus of hostile layers. Each must fail with an error naming the offending entry, leave no
//! layer directory or staging leftovers, and leave everything outside the layer untouched.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Entry, Layer};
use images::unpack::{unpack, Options};
use images::{Error, ErrorKind};
use tar::EntryType;

struct Sandbox {
    _dir: tempfile::TempDir,
    base: String,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap().to_string();
        fs::write(dir.path().join("canary"), b"canary").unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::create_dir(dir.path().join("layers")).unwrap();
        Sandbox { _dir: dir, base }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        Path::new(&self.base).join(rel)
    }

    /// What must not change: the canary's bytes, mode, inode, link count, mtime; `outside` empty.
    fn snapshot(&self) -> (Vec<u8>, u32, u64, u64, i64, usize) {
        let c = self.path("canary");
        let md = fs::symlink_metadata(&c).unwrap();
        let outside = fs::read_dir(self.path("outside")).unwrap().count();
        (
            fs::read(&c).unwrap(),
            md.mode(),
            md.ino(),
            md.nlink(),
            md.mtime(),
            outside,
        )
    }
}

/// Runs one hostile layer and checks the outcome.
fn refuse(case: &str, expect_entry: &str, build: impl Fn(&Sandbox, &mut Layer)) {
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    build(&sb, &mut layer);
    let before = sb.snapshot();
    let target = sb.path("layers/l1");
    let opts = Options {
        no_sync: true,
        ..Default::default()
    };
    let err = unpack(&layer.finish()[..], &target, &opts).expect_err(case);
    match &err {
        Error::UnsafeEntry { entry, .. } => assert_eq!(entry, expect_entry, "{case}: {err}"),
        other => panic!("{case}: expected an unsafe-entry error, got {other}"),
    }
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{case}");
    assert!(err.to_string().contains(expect_entry), "{case}: {err}");
    assert_eq!(
        sb.snapshot(),
        before,
        "{case}: something outside the layer changed"
    );
    assert!(!target.exists(), "{case}: a half-written layer was left");
    assert!(
        common::staging_leftovers(&sb.path("layers")).is_empty(),
        "{case}: staging left"
    );
    assert!(
        !sb.path("evil").exists() && !sb.path("layers/evil").exists(),
        "{case}"
    );
}

#[test]
fn dotdot_and_absolute_names() {
    refuse("parent escape", "../canary", |_, l| {
        l.file("../canary", b"pwned");
    });
    refuse("deep parent escape", "a/../../canary", |_, l| {
        l.dir("a").file("a/../../canary", b"pwned");
    });
    refuse("dotdot after valid entries", "x/../../../evil", |_, l| {
        l.dir("x")
            .file("x/ok", b"fine")
            .file("x/../../../evil", b"pwned");
    });
    let sb = Sandbox::new();
    let name = format!("{}/outside/evil", sb.base);
    let mut l = Layer::new();
    l.file(&name, b"pwned");
    let e = unpack(&l.finish()[..], &sb.path("layers/l"), &Options::default()).unwrap_err();
    assert!(
        matches!(&e, Error::UnsafeEntry { entry, .. } if *entry == name),
        "{e}"
    );
    assert!(!sb.path("outside/evil").exists());
}

#[test]
fn writes_through_symlinked_parents() {
    refuse("file via absolute symlink", "s/evil", |sb, l| {
        l.symlink("s", &format!("{}/outside", sb.base))
            .file("s/evil", b"pwned");
    });
    refuse("file via relative symlink", "s/evil", |_, l| {
        l.symlink("s", "../../outside").file("s/evil", b"pwned");
    });
    refuse("file via nested symlink to /", "d/s/tmp/evil", |_, l| {
        l.dir("d")
            .symlink("d/s", "/")
            .file("d/s/tmp/evil", b"pwned");
    });
    refuse("overwrite via symlink", "s/canary", |sb, l| {
        l.symlink("s", &sb.base).file("s/canary", b"pwned");
    });
    refuse("dir via symlink", "s/newdir", |sb, l| {
        l.symlink("s", &format!("{}/outside", sb.base))
            .dir("s/newdir");
    });
    refuse("symlink via symlink", "s/x", |sb, l| {
        l.symlink("s", &format!("{}/outside", sb.base))
            .symlink("s/x", "/etc/passwd");
    });
    refuse("fifo via symlink", "s/fifo", |sb, l| {
        l.symlink("s", &format!("{}/outside", sb.base))
            .entry(Entry {
                name: "s/fifo",
                kind: EntryType::Fifo,
                ..Default::default()
            });
    });
    refuse("device via symlink", "s/null", |sb, l| {
        l.symlink("s", &format!("{}/outside", sb.base))
            .entry(Entry {
                name: "s/null",
                kind: EntryType::Char,
                dev: (1, 3),
                ..Default::default()
            });
    });
    refuse("symlink swapped in for a directory", "d/evil", |sb, l| {
        l.dir("d")
            .symlink("d", &format!("{}/outside", sb.base))
            .file("d/evil", b"pwned");
    });
    refuse("file as parent", "f/x", |_, l| {
        l.file("f", b"a file").file("f/x", b"x");
    });
}

#[test]
fn hard_links_out_of_the_layer() {
    refuse("relative", "h", |_, l| {
        l.hardlink("h", "../canary");
    });
    refuse("absolute", "h", |_, l| {
        l.hardlink("h", "/etc/passwd");
    });
    refuse("through symlink", "h", |sb, l| {
        l.symlink("s", &sb.base).hardlink("h", "s/canary");
    });
    refuse("through nested symlink", "h", |sb, l| {
        l.dir("d")
            .symlink("d/s", &sb.base)
            .hardlink("h", "d/s/canary");
    });
    refuse("missing target", "h", |_, l| {
        l.hardlink("h", "not/here");
    });
    refuse("to a directory", "h", |_, l| {
        l.dir("d").hardlink("h", "d");
    });
    refuse("to itself", "h", |_, l| {
        l.file("h", b"x").hardlink("h", "h");
    });
    refuse("placed through symlink", "s/h", |sb, l| {
        l.file("f", b"x")
            .symlink("s", &format!("{}/outside", sb.base))
            .hardlink("s/h", "f");
    });
}

#[test]
fn whiteouts_aimed_outside() {
    refuse("dotdot whiteout", "../.wh.canary", |_, l| {
        l.file("../.wh.canary", b"");
    });
    refuse("whiteout via symlink", "s/.wh.canary", |sb, l| {
        l.symlink("s", &sb.base).file("s/.wh.canary", b"");
    });
    refuse("opaque via symlink", "s/.wh..wh..opq", |sb, l| {
        l.symlink("s", &format!("{}/outside", sb.base))
            .file("s/.wh..wh..opq", b"");
    });
    refuse("whiteout of dotdot", "d/.wh...", |_, l| {
        l.dir("d").file("d/.wh...", b"");
    });
    refuse("empty whiteout", "d/.wh.", |_, l| {
        l.dir("d").file("d/.wh.", b"");
    });
}

#[test]
fn smuggled_overlay_xattrs() {
    refuse("opaque xattr on a dir", "d", |_, l| {
        l.pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
            .dir("d");
    });
    refuse("redirect xattr on a file", "f", |_, l| {
        l.pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
            .file("f", b"x");
    });
}

/// Entries that replace a symlink must replace it, never write through it; a hard link to a
/// symlink links the symlink. These succeed and still leave the outside untouched.
#[test]
fn replacing_symlinks_never_follows_them() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let canary = format!("{}/canary", sb.base);
    let outside = format!("{}/outside", sb.base);
    let mut l = Layer::new();
    l.symlink("s", &canary)
        .file("s", b"replaced")
        .symlink("s2", &canary)
        .hardlink("h2", "s2")
        .symlink("d", &outside)
        .dir("d")
        .file("d/inside", b"x")
        .symlink("f", &canary);
    if common::is_root() {
        l.entry(Entry {
            name: "f",
            kind: EntryType::Fifo,
            ..Default::default()
        });
    }
    let target = sb.path("layers/ok");
    unpack(&l.finish()[..], &target, &Options::default()).unwrap();
    assert_eq!(sb.snapshot(), before);
    assert_eq!(fs::read(target.join("s")).unwrap(), b"replaced");
    assert!(fs::symlink_metadata(target.join("s")).unwrap().is_file());
    let h2 = fs::symlink_metadata(target.join("h2")).unwrap();
    assert!(h2.file_type().is_symlink());
    assert_eq!(
        h2.ino(),
        fs::symlink_metadata(target.join("s2")).unwrap().ino()
    );
    assert!(fs::symlink_metadata(target.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(target.join("d/inside")).unwrap(), b"x");
}
