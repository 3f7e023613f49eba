//! Thin, checked wrappers over the raw system calls the init path needs and libc/nix lack.

use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub fn cstr(p: impl AsRef<std::ffi::OsStr>) -> Result<CString, Errno> {
    CString::new(p.as_ref().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Turns a `-1`-on-error return value into a `Result`.
pub fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

#[repr(C)]
#[derive(Default)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(2)`: opens `path` relative to `dirfd` under the given resolve restrictions.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how of the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check(ret) {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `/proc/self/fd/N` for a descriptor: the path that mount(2) and friends follow to exactly
/// that file, whatever the name it was opened by now points at.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// Fork-like `clone3(2)` with namespace flags and a pidfd for the child.
///
/// # Safety
/// The calling process must be single-threaded: the child gets a copy of this one thread only,
/// and must not rely on glibc's cached thread id (no `raise`, `abort` is tolerated as a crash).
pub unsafe fn clone3(flags: u64) -> Result<Forked, Errno> {
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; stack 0 gives fork semantics
    // (the child continues on a copy of this stack), which is sound because the caller
    // guarantees the process is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: CLONE_PIDFD made the kernel store a new descriptor in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    let ret = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

pub fn pidfd_send_signal(pidfd: &impl AsRawFd, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    })?;
    Ok(())
}

/// Marks every descriptor from `first` upwards close-on-exec.
///
/// Runs after the container's seccomp filter may be in place, and a profile written before
/// `close_range` existed denies it (EPERM or ENOSYS, as does a kernel before 5.11). Then each
/// descriptor listed in `/proc/self/fd` is marked with `fcntl` instead, as runc does.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    let ranged = check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    });
    let Err(range_err) = ranged else {
        return Ok(());
    };
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|&fd: &RawFd| fd >= 0 && fd as u32 >= first)
            .collect(),
        Err(_) => return Err(range_err),
    };
    for fd in fds {
        // EBADF: the directory's own descriptor, closed by now.
        match set_cloexec(fd, true) {
            Ok(()) | Err(Errno::EBADF) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes every open descriptor `>= first` except those in `keep`.
pub fn close_fds_except(first: RawFd, keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    let mut lo = first;
    for k in keep.into_iter().chain(std::iter::once(RawFd::MAX)) {
        if k > lo {
            let hi = if k == RawFd::MAX {
                u32::MAX
            } else {
                (k - 1) as u32
            };
            // SAFETY: closing descriptors this process no longer needs; none are borrowed by
            // live Rust objects other than those listed in `keep`.
            check(unsafe { libc::syscall(libc::SYS_close_range, lo as u32, hi, 0) })?;
        }
        lo = k.saturating_add(1);
    }
    Ok(())
}

/// Puts `fds` on descriptors 0, 1 and 2 (a child's stdio), correct even when a source already
/// is one of the targets. The sources stay open (the caller owns them).
pub fn install_stdio(fds: [RawFd; 3]) -> Result<(), Errno> {
    let mut tmp = [0 as RawFd; 3];
    for (t, fd) in tmp.iter_mut().zip(fds) {
        // SAFETY: fcntl duplicating an integer descriptor; no memory involved.
        *t = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) } as libc::c_long)? as RawFd;
    }
    for (target, t) in tmp.into_iter().enumerate() {
        // SAFETY: dup2 onto a stdio slot (it clears close-on-exec there), then close our copy.
        check(unsafe { libc::dup2(t, target as RawFd) } as libc::c_long)?;
        // SAFETY: `t` is our own temporary duplicate, not owned by any Rust object.
        unsafe { libc::close(t) };
    }
    Ok(())
}

pub fn set_cloexec(fd: RawFd, on: bool) -> Result<(), Errno> {
    // SAFETY: fcntl on an integer descriptor; no memory involved.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as libc::c_long)? as i32;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, new) } as libc::c_long)?;
    Ok(())
}

pub fn prctl(option: i32, arg2: u64) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(option, arg2, 0u64, 0u64, 0u64) } as libc::c_long)?;
    Ok(())
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), and its
/// state letter. Used to tell a live container init from a recycled pid.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let s = crate::cgroups::fs::read_path(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split(' ');
    let state = it.next()?.chars().next()?;
    let start = it.nth(18)?.parse().ok()?;
    Some((start, state))
}
