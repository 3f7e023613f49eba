//! The wire protocol between the daemon and a container's monitor (`runhcs shim`).
//!
//! One shim runs one container from create until its init exits. It listens on a unix stream
//! socket (`<state dir>/shim.sock`); each connection carries **one** request: a single JSON line
//! ([`Request`]), answered by a single JSON line ([`Reply`]). Two requests then turn the
//! connection into a stream:
//!
//! - [`Request::Attach`] and [`Request::Exec`]: after an `ok` reply the shim writes
//!   [frames](Frame) (8-byte header: stream, three zero bytes, big-endian length; then the
//!   payload; the same layout as Docker's multiplexed stream) and reads raw stdin bytes. A
//!   half-close from the client ends stdin when the request asked for `close_stdin_on_eof`.
//!   When the process has exited and its output is drained, an exec stream ends with one
//!   [`STREAM_EXIT`] frame whose payload is the [`ExitStatus`] JSON; an attach stream is just
//!   closed (the exit status comes from `Wait` or the exit file).
//! - [`Request::Wait`] is a long poll: the reply comes when the container's init has exited.
//!
//! The shim writes the init's [`ExitStatus`] to `<state dir>/exit.json` (atomically: temp file,
//! fsync, rename) *before* it answers any waiter or closes any stream, so a daemon that was
//! down at the time learns the exit from the file. The container's output goes to a log file in
//! Docker's json-file format (one [`LogLine`] per line), rotated by size.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Stream ids in a frame header (Docker's numbering, plus two of ours).
pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
/// An error from the shim after the stream started; payload is the message.
pub const STREAM_ERROR: u8 = 3;
/// Last frame of an exec stream; payload is [`ExitStatus`] JSON.
pub const STREAM_EXIT: u8 = 4;

/// File names inside the shim's state directory.
pub const SOCKET_NAME: &str = "shim.sock";
pub const EXIT_FILE: &str = "exit.json";
pub const PID_FILE: &str = "shim.pid";

/// A request: one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Connect to the container's stdio. Output produced from now on is framed to the client.
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
        /// Close the container's stdin when this client half-closes (`StdinOnce`).
        #[serde(default)]
        close_stdin_on_eof: bool,
    },
    /// Release the created container's init. Reply carries `pid`.
    Start,
    /// Send a signal to the init (`all`: to every process of the container).
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Resize the container's terminal, or an exec's when `exec_id` is set.
    Resize {
        height: u16,
        width: u16,
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// Long poll until the init exits; reply carries `exit`.
    Wait,
    /// Current state; reply carries `status`, `pid` and `exit` once exited.
    State,
    /// Freeze / thaw the container.
    Pause,
    Resume,
    /// Run a process in the container; the connection becomes its stream.
    Exec {
        exec_id: String,
        /// An OCI runtime-spec `process` object.
        process: serde_json::Value,
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
        /// Initial terminal size (rows, cols) when `process.terminal` is true.
        #[serde(default)]
        console_size: Option<(u16, u16)>,
    },
    /// HCS properties (`PropertyQuery` JSON in, `Properties` JSON out in `properties`).
    Properties {
        query: serde_json::Value,
    },
    /// Pids of the container's processes.
    Pids,
}

/// The reply to a request: one JSON line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `not_found`, `invalid_argument`, `failed_precondition`, ... (hcs error kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Vec<i32>>,
}

impl Reply {
    pub fn ok() -> Self {
        Reply {
            ok: true,
            ..Default::default()
        }
    }

    pub fn err(kind: &str, message: impl Into<String>) -> Self {
        Reply {
            ok: false,
            error: Some(message.into()),
            kind: Some(kind.to_owned()),
            ..Default::default()
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, or 128 + signal number for a killed process (as shells and Docker report).
    pub exit_code: i32,
    /// Unix time of the exit, in nanoseconds.
    pub finished_at_ns: i64,
    /// The container's cgroup recorded an OOM kill.
    #[serde(default)]
    pub oom_killed: bool,
}

/// One line of a json-file log (Docker's format: `{"log":..,"stream":..,"time":..}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// A frame of a shim stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream: u8,
    pub payload: Vec<u8>,
}

/// Writes one frame (header and payload).
pub fn write_frame(w: &mut impl Write, stream: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 4 GiB"))?;
    let mut hdr = [0u8; 8];
    hdr[0] = stream;
    hdr[4..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&hdr)?;
    w.write_all(payload)
}

/// Encodes a frame header for `len` bytes of `stream`.
pub fn frame_header(stream: u8, len: u32) -> [u8; 8] {
    let mut hdr = [0u8; 8];
    hdr[0] = stream;
    hdr[4..].copy_from_slice(&len.to_be_bytes());
    hdr
}

/// Reads one frame; `Ok(None)` at a clean end of stream (EOF before a header).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut hdr = [0u8; 8];
    let mut got = 0;
    while got < hdr.len() {
        match r.read(&mut hdr[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "shim stream ended inside a frame header",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame {
        stream: hdr[0],
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_round_trip() {
        let r: Request =
            serde_json::from_str(r#"{"op":"kill","signal":15}"#).expect("kill request");
        assert_eq!(
            r,
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        let e = serde_json::from_str::<Request>(r#"{"op":"kill","signal":"x"}"#);
        assert!(e.is_err());
        let e = serde_json::from_str::<Request>(r#"{"op":"kill","signal":1,"bogus":1}"#);
        assert!(e.is_err(), "unknown fields are refused");
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STREAM_STDERR, b"oops\n").expect("write");
        write_frame(&mut buf, STREAM_EXIT, b"{}").expect("write");
        let mut r = &buf[..];
        let f = read_frame(&mut r).expect("read").expect("frame");
        assert_eq!((f.stream, &f.payload[..]), (STREAM_STDERR, &b"oops\n"[..]));
        let f = read_frame(&mut r).expect("read").expect("frame");
        assert_eq!(f.stream, STREAM_EXIT);
        assert!(read_frame(&mut r).expect("eof").is_none());
        let mut cut = &buf[..3];
        assert!(read_frame(&mut cut).is_err());
    }
}
