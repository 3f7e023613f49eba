#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Terminal helpers: receiving a pty master over a `--console-socket` and talking to it.

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Listens on `path`; a background thread accepts one connection and receives one fd sent
/// with SCM_RIGHTS. The receiver yields it (or an error text).
pub fn console_socket(path: &Path) -> mpsc::Receiver<Result<OwnedFd, String>> {
    let listener = UnixListener::bind(path).expect("bind console socket");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ignored = tx.send(receive_fd(&listener));
    });
    rx
}

fn receive_fd(listener: &UnixListener) -> Result<OwnedFd, String> {
    let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in our table for us; nobody else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("no SCM_RIGHTS fd in the console socket message".into())
}

/// Reads from a pty master in a background thread; collects everything it reads.
pub struct PtyReader {
    rx: mpsc::Receiver<Vec<u8>>,
    pub seen: String,
}

impl PtyReader {
    pub fn new(master: OwnedFd) -> PtyReader {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break, // EIO once every slave fd is closed
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        PtyReader {
            rx,
            seen: String::new(),
        }
    }

    /// Reads until `needle` appears (true) or `timeout` passes (false).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => return self.seen.contains(needle),
            }
        }
        true
    }
}
