//! Network namespaces that outlive processes: created by `unshare` in a short-lived thread and
//! pinned by bind-mounting its `/proc/thread-self/ns/net` onto a file under the state directory.
//!
//! A network namespace is per thread, so every "do this inside namespace X" runs on a fresh
//! thread that joins X and exits; the calling thread's namespace never changes.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

/// An fd of the calling thread's network namespace.
pub fn current() -> io::Result<OwnedFd> {
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

/// Runs `f` on a new thread that has joined the network namespace `ns`.
pub fn in_netns<T: Send>(ns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("namespace worker thread panicked"))?
    })
}

/// Creates a new network namespace with `lo` up and pins it at `path` (which must not exist).
pub fn create_pinned(path: &Path) -> io::Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            let mut rtnl = super::rtnl::Rtnl::open()?;
            // In a new namespace `lo` is always index 1.
            rtnl.set_up(1).map_err(|e| e.source)?;
            File::options().write(true).create_new(true).open(path)?;
            if let Err(e) = mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ) {
                // Best effort: the mount failure is the error worth reporting.
                drop(std::fs::remove_file(path));
                return Err(e.into());
            }
            Ok(())
        })
        .join()
        .map_err(|_| io::Error::other("namespace worker thread panicked"))?
    })
}

/// Whether `path` is a pinned namespace (an nsfs bind mount), as opposed to a plain file
/// left behind by a reboot or missing altogether.
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Opens a pinned namespace.
pub fn open(path: &Path) -> io::Result<OwnedFd> {
    Ok(File::open(path)?.into())
}

/// The namespace's inode number (its identity, as `ip netns identify` shows).
pub fn inode(ns: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(ns).map_err(io::Error::from)?.st_ino)
}

/// Unpins and removes `path`; a path that is already gone is fine.
pub fn remove_pinned(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `/proc/sys/<key>` (`net/ipv4/ip_forward`) of namespace `ns`: sysctls of the network
/// subsystem belong to the namespace of the thread that opens them.
pub fn write_sysctl(ns: BorrowedFd<'_>, key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{key}");
    in_netns(ns, || std::fs::write(&path, value))?
}
