//! The one error type of the image service. Every variant names the step and the object (blob,
//! layer entry, reference part, document field) that failed.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is; the edges (CLI exit codes, HTTP, gRPC) map on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Unsupported,
    /// A registry refused the credentials (or asked for some).
    PermissionDenied,
    /// A registry could not be reached or failed; retrying may help.
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `what` is the kind of object ("blob", "snapshot", "lease", "image"), `name` its key.
    #[error("{what} {name} not found")]
    NotFound { what: &'static str, name: String },

    #[error("{what} {name} already exists")]
    AlreadyExists { what: &'static str, name: String },

    /// An image reference is malformed; `part` is the component (name, tag, digest, domain).
    #[error("invalid reference {reference:?}: {part}: {reason}")]
    InvalidReference {
        reference: String,
        part: &'static str,
        reason: String,
    },

    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },

    /// Content did not hash to what its descriptor promised; `what` names the blob or layer.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// An argument from the caller is wrong.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },

    /// A document (manifest, index, config) is malformed; `what` names it, `field` the JSON path.
    #[error("{what}: {field}: {reason}")]
    InvalidDocument {
        what: String,
        field: String,
        reason: String,
    },

    /// A layer entry was refused (path escape, bad link, unknown type); `entry` is its tar path.
    #[error("layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    /// Applying one layer entry failed at `step`.
    #[error("layer entry {entry:?}: {step}")]
    Entry {
        entry: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{what} is not supported: {why}")]
    Unsupported { what: String, why: String },

    /// The object exists but is in the wrong state for the operation.
    #[error("{what}: {reason}")]
    FailedPrecondition { what: String, reason: String },

    #[error("{step} {}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{step}")]
    Db {
        step: &'static str,
        #[source]
        source: redb::Error,
    },

    /// A registry operation failed; `target` is the reference or blob it was about.
    #[error("registry: {step} {target}")]
    Registry {
        step: &'static str,
        target: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },

    #[error("{step}: {reason}")]
    Internal { step: &'static str, reason: String },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidReference { .. }
            | Error::InvalidDigest { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::InvalidArgument { .. }
            | Error::InvalidDocument { .. }
            | Error::UnsafeEntry { .. } => ErrorKind::InvalidArgument,
            Error::FailedPrecondition { .. } => ErrorKind::FailedPrecondition,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Entry { source, .. } | Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                _ => ErrorKind::Internal,
            },
            Error::Registry { source, .. } => {
                use oci_client::errors::OciDistributionError as E;
                match source {
                    E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => {
                        ErrorKind::PermissionDenied
                    }
                    E::ImageManifestNotFoundError(_) => ErrorKind::NotFound,
                    E::RequestError(e) => match e.status().map(|s| s.as_u16()) {
                        Some(401 | 403) => ErrorKind::PermissionDenied,
                        Some(404) => ErrorKind::NotFound,
                        _ => ErrorKind::Unavailable,
                    },
                    E::RegistryError { envelope, .. }
                        if envelope.errors.iter().any(|e| {
                            matches!(
                                e.code,
                                oci_client::errors::OciErrorCode::ManifestUnknown
                                    | oci_client::errors::OciErrorCode::NameUnknown
                                    | oci_client::errors::OciErrorCode::BlobUnknown
                            )
                        }) =>
                    {
                        ErrorKind::NotFound
                    }
                    E::RegistryError { envelope, .. }
                        if envelope.errors.iter().any(|e| {
                            matches!(
                                e.code,
                                oci_client::errors::OciErrorCode::Unauthorized
                                    | oci_client::errors::OciErrorCode::Denied
                            )
                        }) =>
                    {
                        ErrorKind::PermissionDenied
                    }
                    _ => ErrorKind::Unavailable,
                }
            }
            Error::Db { .. } | Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(step: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            step,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn db(step: &'static str, source: impl Into<redb::Error>) -> Self {
        Error::Db {
            step,
            source: source.into(),
        }
    }

    pub(crate) fn unsafe_entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::UnsafeEntry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn entry(
        entry: impl Into<String>,
        step: &'static str,
        source: std::io::Error,
    ) -> Self {
        Error::Entry {
            entry: entry.into(),
            step,
            source,
        }
    }

    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            name: name.into(),
        }
    }

    pub(crate) fn doc(
        what: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidDocument {
            what: what.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
