//! The monitor's side of one client connection: reading the request line, writing the reply
//! line, and writing frames without ever waiting for a slow reader.

use hcs::shim::{frame_header, Reply};
use nix::errno::Errno;
use nix::sys::socket::{sendmsg, MsgFlags};
use std::io::{self, IoSlice, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A request line longer than this is refused (an exec's process JSON fits many times over).
const MAX_REQUEST: usize = 1024 * 1024;

/// How long a reply may wait for room in the client's socket buffer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection whose request line has not fully arrived.
pub struct Pending {
    pub sock: UnixStream,
    buf: Vec<u8>,
    pub dead: bool,
}

/// What reading a pending connection gave.
pub enum Incoming {
    /// Not a whole line yet.
    More,
    /// The request line, and the bytes the client sent after it (stdin of an attach or exec).
    Line(Vec<u8>, Vec<u8>),
    /// The client left without a request, or sent garbage; `Some` says why, for a reply.
    Gone(Option<String>),
}

impl Pending {
    pub fn new(sock: UnixStream) -> Self {
        Pending {
            sock,
            buf: Vec::new(),
            dead: false,
        }
    }

    /// Reads what is available; `scratch` is the loop's shared read buffer.
    pub fn read(&mut self, scratch: &mut [u8]) -> Incoming {
        let n = match self.sock.read(scratch) {
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return Incoming::More
            }
            Err(_) => return Incoming::Gone(None),
        };
        if n == 0 {
            // A client may half-close right after a request without its newline.
            if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                return Incoming::Line(std::mem::take(&mut self.buf), Vec::new());
            }
            return Incoming::Gone(None);
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&scratch[..n]);
        if let Some(i) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let rest = self.buf.split_off(start + i + 1);
            let mut line = std::mem::take(&mut self.buf);
            line.pop();
            return Incoming::Line(line, rest);
        }
        if self.buf.len() > MAX_REQUEST {
            return Incoming::Gone(Some(format!(
                "request line longer than {MAX_REQUEST} bytes"
            )));
        }
        Incoming::More
    }
}

/// Why a frame could not be written.
#[derive(Debug)]
pub enum SendError {
    /// The client's socket buffer is full: it does not keep up.
    Full,
    /// The client is gone (or another socket error).
    Gone,
}

/// Writes one frame now or not at all: a client that cannot take a whole frame immediately is
/// to be dropped (a partly written frame leaves the stream unusable anyway).
pub fn send_frame(sock: &UnixStream, stream: u8, payload: &[u8]) -> Result<(), SendError> {
    let hdr = frame_header(stream, payload.len() as u32);
    let iov = [IoSlice::new(&hdr), IoSlice::new(payload)];
    let want = hdr.len() + payload.len();
    loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &[],
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) if n == want => return Ok(()),
            Ok(_) | Err(Errno::EAGAIN) => return Err(SendError::Full),
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(SendError::Gone),
        }
    }
}

/// Writes `bytes` completely, waiting up to [`REPLY_TIMEOUT`] for room (replies, the last
/// frame of an exec: small, and the client is waiting for them).
pub fn send_all(sock: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while !bytes.is_empty() {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &[],
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client does not read its reply",
                    ));
                }
                let mut p = libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes a reply line.
pub fn send_reply(sock: &UnixStream, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    send_all(sock, &line)
}

/// A frame whose payload must arrive (an exec's exit status, an error after the stream began).
pub fn send_last_frame(sock: &UnixStream, stream: u8, payload: &[u8]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + payload.len());
    bytes.extend_from_slice(&frame_header(stream, payload.len() as u32));
    bytes.extend_from_slice(payload);
    send_all(sock, &bytes)
}

/// Reads raw input from a streaming client into `scratch`: `Some(n)` bytes (0 = half-closed),
/// `None` when nothing is there now; `Err` when the client is gone.
pub fn read_input(sock: &UnixStream, scratch: &mut [u8]) -> io::Result<Option<usize>> {
    match (&*sock).read(scratch) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
