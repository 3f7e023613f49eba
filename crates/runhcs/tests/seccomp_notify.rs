#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `SCMP_ACT_NOTIFY` with `linux.seccomp.listenerPath`: the runtime hands the listener to an
//! agent (this test), which answers the container's notified syscall itself.

mod common;

use common::{each_runtime, Bundle};
use serde_json::json;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

/// `struct seccomp_notif` and `struct seccomp_notif_resp` (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Accepts the runtime's connection, returns the state JSON and the listener.
fn receive(listener: &UnixListener) -> (serde_json::Value, OwnedFd) {
    let (sock, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: a descriptor the kernel just installed for us.
            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
        }
    }
    let n = msg.bytes;
    let state = serde_json::from_slice(&buf[..n]).unwrap();
    (state, fd.expect("no listener fd was attached"))
}

#[test]
fn notify_goes_to_the_listener_agent() {
    each_runtime(|rt| {
        let dir = tempfile::tempdir().unwrap();
        let sock_path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&sock_path).unwrap();
        let mut b = Bundle::busybox();
        b.tmpfs("/tmp");
        b.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "listenerPath": sock_path,
                "listenerMetadata": "wharf-test",
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
            }),
        );
        b.sh("mkdir /tmp/x; echo rc=$?");
        let agent = std::thread::spawn(move || {
            let (state, fd) = receive(&listener);
            let mut n = Notif::default();
            // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a seccomp_notif of the size it encodes.
            let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n as *mut Notif) };
            assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
            let resp = NotifResp {
                id: n.id,
                val: 0,
                error: -libc::EROFS,
                flags: 0,
            };
            // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads a seccomp_notif_resp.
            let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const NotifResp) };
            assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
            (state, n.nr as i64)
        });
        let out = rt.container(&b).run();
        let (state, nr) = agent.join().unwrap();
        assert!(
            nr == libc::SYS_mkdir || nr == libc::SYS_mkdirat,
            "the agent saw syscall {nr}"
        );
        assert!(
            out.stderr.contains("Read-only file system"),
            "the agent's answer: {out}"
        );
        assert!(out.stdout.contains("rc=1"), "{out}");
        assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
        assert_eq!(state["metadata"], "wharf-test", "{state}");
        assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
        assert!(state["state"]["id"].is_string(), "{state}");
    });
}

#[test]
fn notify_without_listener_path_is_refused() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
            }),
        );
        let out = rt.container(&b).run().fails();
        if !rt.is_runc() {
            assert!(out.all().contains("linux.seccomp.listenerPath"), "{out}");
        }
    });
}
