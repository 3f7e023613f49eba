//! The embedded metadata database (redb): one file, crash-safe transactions, holding leases
//! and image records; and the time formats records and configs use.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Opens (creating if needed) the metadata database at `path`.
pub fn open_db(path: &Path) -> Result<Arc<redb::Database>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create metadata directory", dir, e))?;
    }
    redb::Database::create(path)
        .map(Arc::new)
        .map_err(|e| Error::db("open metadata database", e))
}

/// Seconds since the epoch, for records.
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` since the epoch as an RFC 3339 UTC timestamp (`2024-01-02T03:04:05Z`), the form
/// image configs and history entries use.
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
