//! The daemon's state database (redb): containers and volumes, one JSON document per key.
//! Every change is one write transaction, so a crash leaves either the old or the new record.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

pub const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
pub const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");

#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    pub fn open(path: &Path) -> ApiResult<Store> {
        let db = Database::create(path).map_err(|e| {
            ApiError::internal(format!("open state database {}: {e}", path.display()))
        })?;
        let tx = db.begin_write()?;
        tx.open_table(CONTAINERS)?;
        tx.open_table(VOLUMES)?;
        tx.commit()?;
        Ok(Store { db: Arc::new(db) })
    }

    pub fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        v: &T,
    ) -> ApiResult<()> {
        let bytes = serde_json::to_vec(v)
            .map_err(|e| ApiError::internal(format!("encode record {key}: {e}")))?;
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> ApiResult<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.remove(key)?;
        tx.commit()?;
        Ok(())
    }

    /// Every record of a table; records that no longer parse are reported and skipped.
    pub fn list<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> ApiResult<Vec<T>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            match serde_json::from_slice(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!("state record {} in {}: {e}; skipped", k.value(), table),
            }
        }
        Ok(out)
    }
}
