//! The typed channel between the runtime (parent) and a container's init (child).
//!
//! A `SOCK_SEQPACKET` socket pair: one message per datagram, so framing is free; descriptors
//! (the pty master, a seccomp listener) travel alongside with `SCM_RIGHTS`.

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Messages of the container setup protocol, in the order they normally flow.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// parent → child: cgroup joined, id maps written; go on with the setup.
    Go,
    /// child → parent: namespaces and mounts are ready; run prestart/createRuntime hooks.
    CreateRuntime,
    /// parent → child: hooks done.
    HooksDone,
    /// child → parent: a pty master follows as an fd (foreground terminal mode).
    PtyMaster,
    /// child → parent: a seccomp listener follows as an fd.
    SeccompListener,
    /// child → parent: set up, waiting to be started.
    Ready,
    /// parent → child: start now (foreground `run`, `exec`).
    Start,
    /// child → parent: setup failed.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel), Errno> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<(), Errno> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<(), Errno> {
        let buf = serde_json::to_vec(msg).map_err(|_| Errno::EINVAL)?;
        let iov = [IoSlice::new(&buf)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(Errno::EINTR) => continue,
                r => return r.map(|_| ()),
            }
        }
    }

    /// Receives one message; `Ok(None)` when the peer closed the channel (it exited or exec'd).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>, Errno> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(r) => {
                    let mut fd = None;
                    for c in r.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(v) = c {
                            for f in v {
                                // SAFETY: SCM_RIGHTS delivered a fresh descriptor to this process.
                                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(|_| Errno::EBADMSG)?;
        Ok(Some((msg, fd)))
    }
}
