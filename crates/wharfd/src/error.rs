//! API errors: an HTTP status and a message naming what failed, rendered as Docker's JSON body.

use hyper::StatusCode;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    pub fn not_implemented(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, m)
    }
    pub fn no_such_container(id: &str) -> Self {
        Self::not_found(format!("No such container: {id}"))
    }
    /// Prefixes the message with the operation that failed.
    pub fn context(mut self, op: impl std::fmt::Display) -> Self {
        self.message = format!("{op}: {}", self.message);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

fn status_of(kind: &str) -> StatusCode {
    match kind {
        "NotFound" => StatusCode::NOT_FOUND,
        "AlreadyExists" | "FailedPrecondition" => StatusCode::CONFLICT,
        "InvalidArgument" => StatusCode::BAD_REQUEST,
        "PermissionDenied" => StatusCode::FORBIDDEN,
        "Unsupported" => StatusCode::NOT_IMPLEMENTED,
        "Unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<images::Error> for ApiError {
    fn from(e: images::Error) -> Self {
        ApiError::new(status_of(&format!("{:?}", e.kind())), e.to_string())
    }
}

impl From<hns::Error> for ApiError {
    fn from(e: hns::Error) -> Self {
        ApiError::new(status_of(&format!("{:?}", e.kind())), e.to_string())
    }
}

impl From<hcs::Error> for ApiError {
    fn from(e: hcs::Error) -> Self {
        ApiError::new(status_of(&format!("{:?}", e.kind())), e.to_string())
    }
}

impl From<redb::Error> for ApiError {
    fn from(e: redb::Error) -> Self {
        ApiError::internal(format!("state database: {e}"))
    }
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::from(redb::Error::from(e))
            }
        }
    )*};
}
redb_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
