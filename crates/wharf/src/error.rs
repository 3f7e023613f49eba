//! The CLI's one error type. Each variant says which step failed; `main` prints the message
//! once and exits with [`Error::exit_code`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon answered with an error status and a `{"message": ...}` body.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The daemon could not be reached at all.
    #[error("cannot connect to wharfd at {}{hint}", socket.display())]
    Connect {
        socket: PathBuf,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Starting wharfd in the background failed or it never opened its socket.
    #[error("start wharfd: {0}")]
    Autostart(String),
    /// HTTP framing failed after the connection was made.
    #[error("{step}")]
    Http {
        step: &'static str,
        #[source]
        source: hyper::Error,
    },
    /// A local file, terminal or stream operation failed.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon's answer was not the JSON we expected.
    #[error("decode {what}")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A bad flag value or argument, named in the message.
    #[error("{0}")]
    Usage(String),
    /// An error reported inside a stream (pull/push/load progress, systemerr frame).
    #[error("{0}")]
    Stream(String),
    /// Not an error to print: the command's result is this exit status (container exit code).
    #[error("exit status {0}")]
    Status(i32),
    /// A failure with a specific exit code (125/126/127 on `run`), message already formed.
    #[error("{message}")]
    WithCode { code: i32, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// The process exit status for this error, as docker's CLI chooses it.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Status(c) | Error::WithCode { code: c, .. } => *c,
            _ => 1,
        }
    }

    /// Whether the daemon said "not found" (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Daemon { status: 404, .. })
    }

    /// The error re-labelled with an exit code (used by `run`: 125 for daemon errors).
    pub fn with_code(self, code: i32) -> Self {
        match self {
            Error::Status(_) | Error::WithCode { .. } => self,
            e => Error::WithCode {
                code,
                message: e.to_string(),
            },
        }
    }
}

/// docker's exit code for a failed start: 127 when the command does not exist, 126 when it
/// cannot be invoked, 125 otherwise.
pub fn start_failure_code(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such executable")
        || m.contains("no such file or directory")
        || m.contains("not found")
    {
        127
    } else if m.contains("permission denied")
        || m.contains("is a directory")
        || m.contains("cannot be invoked")
        || m.contains("exec format error")
    {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("open /x: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_code("cgroup setup failed"), 125);
    }

    #[test]
    fn exit_codes() {
        let d = Error::Daemon {
            status: 500,
            message: "boom".into(),
        };
        assert_eq!(d.to_string(), "Error response from daemon: boom");
        assert_eq!(d.exit_code(), 1);
        assert_eq!(
            Error::Daemon {
                status: 500,
                message: "x".into()
            }
            .with_code(125)
            .exit_code(),
            125
        );
        assert_eq!(Error::Status(7).with_code(125).exit_code(), 7);
    }
}
