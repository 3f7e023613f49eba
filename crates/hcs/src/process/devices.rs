//! `/dev` inside the container: the default nodes, `linux.devices`, and the standard symlinks.
//! Nodes are made with mknod, or bind-mounted from the host inside a user namespace.

use super::rootfs::{ensure_in_root, mount};
use super::sys::{self, cstr, fd_path, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS};
use crate::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

fn err(step: String, e: Errno) -> Error {
    Error::sys(step, e)
}

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

pub fn create_default_devices(root: &OwnedFd, userns: bool) -> Result<()> {
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = PathBuf::from("/dev").join(name);
        make_node(
            root,
            &path,
            libc::S_IFCHR,
            0o666,
            major,
            minor,
            Some((0, 0)),
            userns,
        )
        .map_err(|e| err(format!("create device {}", path.display()), e))?;
    }
    Ok(())
}

pub fn create_device(root: &OwnedFd, d: &LinuxDevice, userns: bool) -> Result<(), Errno> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => return Err(Errno::EINVAL),
    };
    let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
    make_node(
        root,
        d.path(),
        kind,
        d.file_mode().unwrap_or(0o666),
        d.major() as u64,
        d.minor() as u64,
        owner,
        userns,
    )
}

#[allow(clippy::too_many_arguments)]
fn make_node(
    root: &OwnedFd,
    path: &Path,
    kind: u32,
    mode: u32,
    major: u64,
    minor: u64,
    owner: Option<(u32, u32)>,
    userns: bool,
) -> Result<(), Errno> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = cstr(path.file_name().ok_or(Errno::EINVAL)?)?;
    let pdir = ensure_in_root(root, parent, false)?;
    let dfd = openat2(
        pdir.as_raw_fd(),
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        RESOLVE_NO_SYMLINKS,
    )?;
    // SAFETY: unlinking a name in a directory we resolved inside the root.
    unsafe { libc::unlinkat(dfd.as_raw_fd(), name.as_ptr(), 0) };
    if userns && kind != libc::S_IFIFO {
        // mknod is refused in a user namespace: bind the host's node instead.
        let host = format!(
            "/dev/{}",
            path.strip_prefix("/dev").unwrap_or(path).display()
        );
        let t = ensure_in_root(root, path, true)?;
        return mount(Some(&host), &fd_path(&t), None, libc::MS_BIND, None);
    }
    // SAFETY: valid dirfd and C string; mknodat creates exactly that name.
    let ret = unsafe {
        libc::mknodat(
            dfd.as_raw_fd(),
            name.as_ptr(),
            kind | (mode & 0o7777),
            libc::makedev(major as u32, minor as u32),
        )
    };
    sys::check(ret as libc::c_long)?;
    // mknod honours the umask; set the mode the spec asked for.
    // SAFETY: valid dirfd and C string; AT_SYMLINK_NOFOLLOW is not needed for a node we just made.
    let ret = unsafe { libc::fchmodat(dfd.as_raw_fd(), name.as_ptr(), mode & 0o7777, 0) };
    sys::check(ret as libc::c_long)?;
    if let Some((uid, gid)) = owner {
        // SAFETY: as above.
        sys::check(unsafe {
            libc::fchownat(
                dfd.as_raw_fd(),
                name.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } as libc::c_long)?;
    }
    Ok(())
}

pub fn dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev =
        ensure_in_root(root, Path::new("/dev"), false).map_err(|e| err("open /dev".into(), e))?;
    let dfd = openat2(
        dev.as_raw_fd(),
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| err("open /dev".into(), e))?;
    let pts_ptmx = openat2(
        root.as_raw_fd(),
        Path::new("dev/pts/ptmx"),
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT,
    )
    .is_ok();
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if pts_ptmx {
        links.push(("pts/ptmx", "ptmx"));
    }
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let (t, n) = (
            cstr(target).map_err(|e| err("symlink".into(), e))?,
            cstr(name).map_err(|e| err("symlink".into(), e))?,
        );
        if name == "ptmx" {
            // SAFETY: valid dirfd and C string.
            unsafe { libc::unlinkat(dfd.as_raw_fd(), n.as_ptr(), 0) };
        }
        // SAFETY: valid dirfd and C strings.
        let ret = unsafe { libc::symlinkat(t.as_ptr(), dfd.as_raw_fd(), n.as_ptr()) };
        match sys::check(ret as libc::c_long) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(err(format!("symlink /dev/{name}"), e)),
        }
    }
    Ok(())
}
