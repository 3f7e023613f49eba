//! The one error type of the network service. `op` is the externally visible operation and its
//! object (`create endpoint web-1 on network nat`); the variant says what went wrong in it.

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
    #[error("{op}: {what} {name:?} not found")]
    NotFound {
        op: String,
        what: &'static str,
        name: String,
    },

    #[error("{op}: {what} {name:?} already exists")]
    AlreadyExists {
        op: String,
        what: &'static str,
        name: String,
    },

    #[error("{op}: address {addr} in use")]
    AddressInUse { op: String, addr: String },

    #[error("{op}: no free address left in {subnet}")]
    AddressesExhausted { op: String, subnet: String },

    #[error("{op}: {field}: {reason}")]
    InvalidArgument {
        op: String,
        field: &'static str,
        reason: String,
    },

    #[error("{op}: {reason}")]
    FailedPrecondition { op: String, reason: String },

    #[error("{op}: {what} is not supported: {why}")]
    Unsupported {
        op: String,
        what: String,
        why: &'static str,
    },

    /// A netlink (links, addresses, routes) or nf_tables request failed.
    #[error("{op}: {step}")]
    Kernel {
        op: String,
        step: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{op}: {step} {}", path.display())]
    Io {
        op: String,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{op}: state store: {step}")]
    Store {
        op: String,
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } | Error::AddressInUse { .. } => ErrorKind::AlreadyExists,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::FailedPrecondition { .. } | Error::AddressesExhausted { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Kernel { .. } | Error::Io { .. } | Error::Store { .. } => ErrorKind::Internal,
        }
    }
}

/// A failed kernel step below the service, before it knows which operation it served.
#[derive(Debug)]
pub struct StepError {
    pub step: String,
    pub source: std::io::Error,
}

impl StepError {
    pub fn new(step: impl Into<String>, source: std::io::Error) -> Self {
        StepError {
            step: step.into(),
            source,
        }
    }

    pub fn errno(step: impl Into<String>, e: nix::Error) -> Self {
        StepError::new(step, std::io::Error::from_raw_os_error(e as i32))
    }

    /// Attaches the operation.
    pub fn during(self, op: &str) -> Error {
        Error::Kernel {
            op: op.to_string(),
            step: self.step,
            source: self.source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_operation_and_object() {
        let e = Error::AddressInUse {
            op: "create endpoint web-1 on network nat".into(),
            addr: "10.0.0.5".into(),
        };
        assert_eq!(
            e.to_string(),
            "create endpoint web-1 on network nat: address 10.0.0.5 in use"
        );
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        let e = StepError::new(
            "add address 10.0.0.1/24 to wharf0",
            std::io::Error::from_raw_os_error(libc::EEXIST),
        )
        .during("create network nat");
        assert_eq!(
            e.to_string(),
            "create network nat: add address 10.0.0.1/24 to wharf0"
        );
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
