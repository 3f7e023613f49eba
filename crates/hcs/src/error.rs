//! The one error type of the compute service. Every variant names the step and the object.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is; the edges (CLI exit codes, HTTP, gRPC) map on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Unsupported,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },

    #[error("container {id:?} already exists")]
    AlreadyExists { id: String },

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// A configuration document is wrong; `file` and `field` say where.
    #[error("{}: {field}: {reason}", file.display())]
    InvalidConfig {
        file: PathBuf,
        field: String,
        reason: String,
    },

    /// An argument from the caller (not a file) is wrong.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },

    #[error("container {id:?}: cannot {op} a container that is {state}")]
    InvalidState {
        id: String,
        op: &'static str,
        state: String,
    },

    #[error("{what} is not supported on this host: {why}")]
    Unsupported { what: String, why: String },

    #[error("{step} {}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{step}")]
    Sys {
        step: String,
        #[source]
        source: nix::Error,
    },

    /// The container's init process reported a failure during setup.
    #[error("container init: {0}")]
    Init(String),

    #[error("{kind} hook #{index} ({path}): {reason}")]
    Hook {
        kind: &'static str,
        index: usize,
        path: String,
        reason: String,
    },

    #[error("cgroups")]
    Cgroup(#[from] crate::cgroups::Error),

    #[error("seccomp")]
    Seccomp(#[from] crate::seccomp::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidId { .. }
            | Error::InvalidConfig { .. }
            | Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::InvalidState { .. } => ErrorKind::FailedPrecondition,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Seccomp(e) if e.is_invalid_profile() => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(step: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            step,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(step: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            step: step.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
