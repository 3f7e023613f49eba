#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]
//! Test helpers: a raw tar writer that can produce the hostile names `tar::Builder` refuses.

use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

pub mod registry;
pub mod token;

/// Builds a tar archive entry by entry, writing names and link targets as raw bytes.
#[derive(Default)]
pub struct Layer {
    buf: Vec<u8>,
}

pub struct Entry<'a> {
    pub name: &'a str,
    pub kind: EntryType,
    pub data: &'a [u8],
    pub link: &'a str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
}

impl Default for Entry<'_> {
    fn default() -> Self {
        Entry {
            name: "",
            kind: EntryType::Regular,
            data: b"",
            link: "",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            dev: (0, 0),
        }
    }
}

impl Layer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn entry(&mut self, e: Entry<'_>) -> &mut Self {
        assert!(
            e.name.len() <= 100 && e.link.len() <= 100,
            "names longer than 100 bytes"
        );
        let mut h = Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            u.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            u.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(e.data);
        pad(&mut self.buf);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(Entry {
            name,
            data,
            ..Default::default()
        })
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(Entry {
            name,
            kind: EntryType::Directory,
            mode: 0o755,
            ..Default::default()
        })
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(Entry {
            name,
            kind: EntryType::Symlink,
            link: target,
            mode: 0o777,
            ..Default::default()
        })
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(Entry {
            name,
            kind: EntryType::Link,
            link: target,
            ..Default::default()
        })
    }

    /// A PAX extended header that applies to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            // "<len> <key>=<value>\n", where len counts itself.
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.entry(Entry {
            name: "PaxHeader",
            kind: EntryType::XHeader,
            data: &data,
            ..Default::default()
        })
    }

    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

fn pad(buf: &mut Vec<u8>) {
    let rem = buf.len() % 512;
    if rem != 0 {
        buf.resize(buf.len() + 512 - rem, 0);
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Entries of `dir` whose names start with `.` and contain `.unpack-` (staging leftovers).
pub fn staging_leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".unpack-")
        })
        .collect()
}

pub fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: buffers are valid for their lengths; strings are NUL-terminated.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

/// Unmounts (lazily) on drop.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("unmount {}: {e}", self.0.display());
        }
    }
}

/// Performs the single mount a snapshotter returned at `target`.
pub fn mount(m: &[images::snapshots::Mount], target: &Path) -> Mounted {
    use nix::mount::MsFlags;
    assert_eq!(m.len(), 1);
    let m = &m[0];
    std::fs::create_dir_all(target).unwrap();
    if m.kind == "overlay" {
        let data = m.options.join(",");
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount overlay {data}: {e}"));
    } else {
        nix::mount::mount(
            Some(&m.source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .unwrap();
        if m.options.iter().any(|o| o == "ro") {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>).unwrap();
        }
    }
    Mounted(target.to_path_buf())
}

/// A busybox-like root filesystem: /bin/busybox (the static binary), applet symlinks, a hard
/// link, /etc files, and a few directories to change later.
pub fn busybox_rootfs(dir: &Path) {
    use std::fs;
    for d in ["bin", "etc", "var/cache", "usr/share/doc/pkg", "tmp"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy(busybox(), dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    fs::hard_link(dir.join("etc/hosts"), dir.join("etc/hosts.bak")).unwrap();
    fs::write(dir.join("var/cache/a"), "a").unwrap();
    fs::write(dir.join("var/cache/b"), "b").unwrap();
    fs::write(dir.join("usr/share/doc/pkg/README"), "readme").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}

pub fn busybox() -> &'static str {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("busybox-static is not installed (scripts/deps.sh installs it)");
}

/// A unique scratch directory under the system temp dir, removed on drop.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("wharf-images-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Two images in `svc`: `localhost/test/base:1` (a busybox root filesystem) and
/// `localhost/test/app:1` (base + a layer that adds files, changes one, deletes one).
pub fn build_images(
    svc: &images::Service,
    scratch: &Path,
) -> (images::Reference, images::Reference) {
    use images::commit::{commit, Options};
    use images::progress::Progress;
    let rootfs = scratch.join("fixture-rootfs");
    busybox_rootfs(&rootfs);
    let base = images::Reference::parse("localhost/test/base:1").unwrap();
    let opts = Options {
        created_by: "import busybox".into(),
        created: Some(1_700_000_000),
        ..Default::default()
    };
    commit(svc, &rootfs, None, &base, &opts, &Progress::none()).unwrap();
    let upper = scratch.join("fixture-upper");
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::create_dir_all(upper.join("app")).unwrap();
    std::fs::write(
        upper.join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\napp:x:1:1::/app:\n",
    )
    .unwrap();
    std::fs::write(upper.join("app/run.sh"), "#!/bin/sh\necho hello\n").unwrap();
    if is_root() {
        // A whiteout for etc/hosts, as overlay writes it.
        nix::sys::stat::mknod(
            &upper.join("etc/hosts"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
    }
    let app = images::Reference::parse("localhost/test/app:1").unwrap();
    let opts = Options {
        created_by: "/bin/sh -c install app".into(),
        created: Some(1_700_000_100),
        ..Default::default()
    };
    commit(svc, &upper, Some(&base), &app, &opts, &Progress::none()).unwrap();
    (base, app)
}

/// Whether `tool` is on PATH; prints a skip message naming `test` when it is not.
pub fn have_tool(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!("skipped: {test} needs `{tool}` (scripts/deps.sh installs it)");
    }
    found
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image's config bytes and diff_ids (what must survive every round trip).
pub fn identity(svc: &images::Service, name: &images::Reference) -> (Vec<u8>, Vec<String>) {
    let r = svc.resolve_host(name).unwrap();
    let ids = r
        .diff_ids()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    for l in &r.manifest.layers {
        svc.content.verify(&l.digest).unwrap();
    }
    (r.config_bytes.clone(), ids)
}
