//! The process isolation backend: an OCI runtime (Linux) on this kernel.
//!
//! The process model, in the order things happen for `create`:
//! [`launch`] (runtime side: bundle, cgroup, exec fifo, `clone3` with the namespace flags,
//! `linux.netDevices` moved in by `netdev`, a seccomp listener handed on by `listener`) →
//! [`init`] (the child: mounts via [`rootfs`], /dev via `devices`, pivot_root, console via `tty`,
//! scheduling and memory policy via `sched`, seccomp, capabilities, then exec) with a typed
//! channel ([`sync`]) between the two. [`ops`] acts on existing containers; [`exec`] enters a
//! running one; [`state`] persists what later commands need. The HCS-shaped API over all of this
//! is `crate::ComputeSystem`.

mod caps;
mod devices;
pub mod exec;
pub(crate) mod foreground;
mod hooks;
mod init;
pub mod launch;
mod listener;
mod mountopts;
mod netdev;
pub mod ops;
mod rootfs;
mod sched;
pub mod spec;
pub mod state;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod tty;

pub use exec::ExecOptions;
pub use init::error_chain;
pub use launch::{CreateOptions, LaunchMode, Launched};
pub use spec::Bundle;
pub use state::{OciState, Record, Status};

/// Makes sure `/proc/self/exe` cannot be written through by a container process
/// (CVE-2019-5736 class). If the runtime binary does not already sit on a read-only mount,
/// re-executes it from a private, read-only, detached bind mount of itself (no copy). Call at
/// the very top of commands that put a process into a container.
pub fn protect_self_exe(argv: &[String]) -> crate::Result<()> {
    use crate::Error;
    // statfs, not glibc's statvfs: that one parses /proc/self/mountinfo for the flags, which
    // costs more than the rest of this check (Linux reports them in statfs since 2.6.36).
    let st = nix::sys::statfs::statfs("/proc/self/exe")
        .map_err(|e| Error::sys("statfs /proc/self/exe", e))?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(());
    }
    // SAFETY: open_tree on /proc/self/exe with valid flags; returns a new fd or -1.
    let fd = sys::check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            1u32 /* OPEN_TREE_CLONE */ | libc::O_CLOEXEC as u32,
        )
    })
    .map_err(|e| Error::sys("clone a private mount of the runtime binary", e))? as i32;
    // SAFETY: fd is a fresh descriptor from open_tree, owned here.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clr: u64,
        prop: u64,
        userns: u64,
    }
    let attr = MountAttr {
        set: 1, /* MOUNT_ATTR_RDONLY */
        clr: 0,
        prop: 0,
        userns: 0,
    };
    // SAFETY: mount_setattr on our detached mount with a valid mount_attr.
    sys::check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map_err(|e| Error::sys("make the runtime binary's mount read-only", e))?;
    let args: Vec<std::ffi::CString> = argv
        .iter()
        .map(sys::cstr)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::sys("argv", e))?;
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: execveat of our own binary through the read-only mount, with NUL-terminated
    // argv and the current environment; on success this never returns.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            c"".as_ptr(),
            argp.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        )
    };
    Err(Error::sys(
        "re-exec the runtime from its read-only mount",
        nix::errno::Errno::last(),
    ))
}

/// A signal by number (`9`), name (`KILL`, `hup`), full name (`SIGKILL`) or `SIGRTMIN+n`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(off) = name
        .strip_prefix("SIGRTMIN+")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return Some(libc::SIGRTMIN() + off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}
