//! Real kernel checks of `hcs::seccomp` filters; no root needed (no_new_privs is enough).
//!
//! Each test forks a child that sets no_new_privs, installs a filter compiled *before* the fork
//! and reports the syscall results it sees over a pipe. The test process has several threads
//! (libtest), so the child only makes raw syscalls: no allocation, no locks, no panics.

#![allow(clippy::unwrap_used)] // tests; the workspace has no clippy.toml allowing it

use hcs::seccomp::{default_profile, Filter};
use oci_spec::runtime::LinuxSeccomp;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const MAX_REPORT: usize = 16;

/// What a child reports: up to 16 values, -1 marking a failed setup step (with its errno).
struct Report {
    values: [i64; MAX_REPORT],
    len: usize,
}

impl Report {
    fn push(&mut self, v: i64) {
        if self.len < MAX_REPORT {
            self.values[self.len] = v;
            self.len += 1;
        }
    }
}

fn errno() -> i64 {
    i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Result of a raw syscall as the child sees it: the return value, or -errno.
fn outcome(rc: i64) -> i64 {
    if rc < 0 {
        -errno()
    } else {
        rc
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Forks; the child sets no_new_privs, installs `filter`, runs `body` and reports. Returns the
/// child's report and its listener fd number (for notify tests) through the report.
fn in_child(filter: &Filter, body: impl FnOnce(&mut Report, Option<&OwnedFd>)) -> Vec<i64> {
    let (r, w) = pipe();
    // SAFETY: the child only makes async-signal-safe raw syscalls (prctl, seccomp, the test's
    // syscalls, write, _exit) and touches no lock or allocator before `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let mut report = Report {
            values: [0; MAX_REPORT],
            len: 0,
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 {
            report.push(-1);
            report.push(errno());
        } else {
            match filter.install() {
                Ok(listener) => body(&mut report, listener.as_ref()),
                Err(hcs::seccomp::Error::Install { source, .. }) => {
                    report.push(-1);
                    report.push(i64::from(source.raw_os_error().unwrap_or(0)));
                }
                Err(_) => report.push(-2),
            }
        }
        let bytes = report.len * 8;
        // SAFETY: `report.values` is valid for `bytes` bytes; `_exit` never returns.
        unsafe {
            libc::write(w.as_raw_fd(), report.values.as_ptr().cast(), bytes);
            libc::_exit(0);
        }
    }
    drop(w);
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_REPORT * 8];
    let mut got = 0;
    loop {
        // SAFETY: reading into the unfilled tail of `buf`.
        let n = unsafe {
            libc::read(
                r.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    for c in buf[..got].chunks_exact(8) {
        out.push(i64::from_ne_bytes(c.try_into().unwrap()));
    }
    assert!(
        out.first() != Some(&-1),
        "setup failed in the child: errno {:?}",
        out.get(1)
    );
    out
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn mkdirat(dir: &std::ffi::CStr) -> i64 {
    // SAFETY: `dir` is a valid NUL-terminated path.
    outcome(unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, dir.as_ptr(), 0o700) })
}

fn getcwd_raw() -> i64 {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length.
    outcome(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })
}

#[test]
fn seccomp_errno_rules_apply_and_allowed_syscalls_work() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::ffi::CString::new(dir.path().join("d").to_str().unwrap()).unwrap();
    let filter = Filter::compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],
            "syscalls":[
              {"names":["mkdirat","mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":99},
              {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":77},
              {"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":55,"args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"}]},
              {"names":["no_such_syscall_anywhere"],"action":"SCMP_ACT_KILL"}
            ]}"#,
    ))
    .unwrap();
    let got = in_child(&filter, |r, listener| {
        r.push(i64::from(listener.is_some()));
        r.push(mkdirat(&target));
        r.push(getcwd_raw());
        // SAFETY: plain integer syscalls.
        unsafe {
            r.push(outcome(libc::syscall(libc::SYS_getpid)));
            let me = libc::syscall(libc::SYS_getpid);
            r.push(outcome(libc::syscall(libc::SYS_kill, me, 0)));
            r.push(outcome(libc::syscall(libc::SYS_kill, me, libc::SIGCONT)));
        }
    });
    assert_eq!(got[0], 0, "no listener without SCMP_ACT_NOTIFY");
    assert_eq!(got[1], -99, "mkdirat");
    assert!(!dir.path().join("d").exists());
    assert_eq!(got[2], -77, "getcwd");
    assert!(got[3] > 0, "getpid is allowed: {}", got[3]);
    assert_eq!(got[4], -55, "kill(pid, 0) matches the argument rule");
    assert_eq!(got[5], 0, "kill(pid, SIGCONT) does not");
}

#[test]
fn seccomp_default_profile_on_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::ffi::CString::new(dir.path().join("d").to_str().unwrap()).unwrap();
    let filter = Filter::compile(&default_profile()).unwrap();
    let got = in_child(&filter, |r, _| {
        r.push(mkdirat(&target));
        // SAFETY: raw syscalls with integer arguments; clone3 with a NULL args pointer and
        // size 0 would fail with EINVAL if it reached the kernel.
        unsafe {
            r.push(outcome(libc::syscall(
                libc::SYS_unshare,
                libc::CLONE_NEWUTS,
            )));
            r.push(outcome(libc::syscall(libc::SYS_clone3, 0usize, 0usize)));
            r.push(outcome(libc::syscall(
                libc::SYS_personality,
                0xffff_ffffu64,
            )));
            r.push(outcome(libc::syscall(
                libc::SYS_personality,
                0x0040_0000u64,
            )));
        }
    });
    assert_eq!(got[0], 0, "mkdirat allowed");
    assert!(dir.path().join("d").is_dir());
    assert_eq!(got[1], -i64::from(libc::EPERM), "unshare refused");
    assert_eq!(got[2], -i64::from(libc::ENOSYS), "clone3 answered ENOSYS");
    assert!(got[3] >= 0, "personality query allowed: {}", got[3]);
    assert_eq!(
        got[4],
        -i64::from(libc::EPERM),
        "personality(ADDR_NO_RANDOMIZE) refused"
    );
}

/// Sends `fd` over a unix socket with SCM_RIGHTS, without allocating.
fn send_fd(sock: RawFd, fd: RawFd) -> i64 {
    // SAFETY: CMSG_SPACE is a pure computation.
    const SPACE: usize = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut cbuf = [0u64; SPACE.div_ceil(8)];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = SPACE as _;
    // SAFETY: the control buffer is SPACE bytes, aligned for cmsghdr, and holds one header
    // with room for one int.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        outcome(libc::sendmsg(sock, &msg, 0) as i64)
    }
}

fn recv_fd(sock: RawFd) -> OwnedFd {
    // SAFETY: as in `send_fd`.
    const SPACE: usize = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut cbuf = [0u64; SPACE.div_ceil(8)];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = SPACE as _;
    // SAFETY: buffers are valid for their lengths; the kernel fills the control message.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert_eq!(n, 1, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: recvmsg succeeded; the first header is an SCM_RIGHTS with one fd that is now ours.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null());
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>()))
    }
}

#[test]
fn seccomp_notify_returns_a_listener() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::ffi::CString::new(dir.path().join("d").to_str().unwrap()).unwrap();
    let filter = Filter::compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(filter.needs_notify());
    let mut sv = [0; 2];
    // SAFETY: `sv` is a valid array of two ints.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: socketpair succeeded; we own both ends.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };

    // The supervisor: receive the listener, answer the child's mkdirat with EOPNOTSUPP.
    let supervisor = std::thread::spawn(move || {
        let listener = recv_fd(ours.as_raw_fd());
        // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `req` is a valid seccomp_notif for the ioctl to fill.
        let rc = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut req,
            )
        };
        assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        let nr = req.data.nr;
        let resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: -libc::EOPNOTSUPP,
            flags: 0,
        };
        // SAFETY: `resp` is a valid seccomp_notif_resp for the notification we received.
        let rc =
            unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
        assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        nr
    });

    let got = in_child(&filter, |r, listener| {
        let Some(listener) = listener else {
            r.push(-2);
            return;
        };
        r.push(send_fd(theirs.as_raw_fd(), listener.as_raw_fd()));
        r.push(mkdirat(&target));
    });
    assert_eq!(got[0], 1, "listener fd sent");
    assert_eq!(
        got[1],
        -i64::from(libc::EOPNOTSUPP),
        "answered by the supervisor"
    );
    let nr = supervisor.join().unwrap();
    assert_eq!(i64::from(nr), libc::SYS_mkdirat);
    assert!(!dir.path().join("d").exists());
}
