//! The embedded metadata database (redb): one file, crash-safe transactions. Leases live here
//! today; image records will join them.

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
