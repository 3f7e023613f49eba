//! Leases: named, optionally expiring sets of blobs that garbage collection must keep.
//!
//! A pull, load or commit creates a lease first, adds each blob to it before (or while, with
//! [`crate::content::Writer::commit_leased`]) the blob is committed, records the image, then
//! deletes the lease. If the process dies in between, the lease (and with a TTL, its expiry)
//! keeps the half-finished work until it is retried or expires.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::meta::now_unix;

const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// (lease id, digest) → ()
const LEASE_CONTENT: TableDefinition<(&str, &str), ()> = TableDefinition::new("lease_content");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// Seconds since the epoch after which garbage collection deletes the lease.
    pub expires: Option<u64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Lease {
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }
}

#[derive(Clone)]
pub struct Leases {
    db: Arc<redb::Database>,
}

impl Leases {
    pub fn new(db: Arc<redb::Database>) -> Result<Self> {
        let tx = db
            .begin_write()
            .map_err(|e| Error::db("begin lease transaction", e))?;
        tx.open_table(LEASES)
            .map_err(|e| Error::db("create leases table", e))?;
        tx.open_table(LEASE_CONTENT)
            .map_err(|e| Error::db("create lease content table", e))?;
        tx.commit()
            .map_err(|e| Error::db("commit lease tables", e))?;
        Ok(Leases { db })
    }

    pub fn create(
        &self,
        id: &str,
        ttl: Option<Duration>,
        labels: BTreeMap<String, String>,
    ) -> Result<Lease> {
        if id.is_empty() {
            return Err(Error::InvalidArgument {
                field: "lease id".into(),
                reason: "empty".into(),
            });
        }
        let now = now_unix();
        let lease = Lease {
            id: id.to_string(),
            created: now,
            expires: ttl.map(|t| now + t.as_secs().max(1)),
            labels,
        };
        let json = serde_json::to_vec(&lease).map_err(|e| Error::Internal {
            step: "encode lease",
            reason: e.to_string(),
        })?;
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin lease transaction", e))?;
        {
            let mut t = tx
                .open_table(LEASES)
                .map_err(|e| Error::db("open leases", e))?;
            if t.get(id).map_err(|e| Error::db("read lease", e))?.is_some() {
                return Err(Error::AlreadyExists {
                    what: "lease",
                    name: id.to_string(),
                });
            }
            t.insert(id, json.as_slice())
                .map_err(|e| Error::db("insert lease", e))?;
        }
        tx.commit().map_err(|e| Error::db("commit lease", e))?;
        Ok(lease)
    }

    pub fn get(&self, id: &str) -> Result<Lease> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin lease read", e))?;
        let t = tx
            .open_table(LEASES)
            .map_err(|e| Error::db("open leases", e))?;
        let v = t
            .get(id)
            .map_err(|e| Error::db("read lease", e))?
            .ok_or_else(|| Error::not_found("lease", id))?;
        decode(id, v.value())
    }

    pub fn list(&self) -> Result<Vec<Lease>> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin lease read", e))?;
        let t = tx
            .open_table(LEASES)
            .map_err(|e| Error::db("open leases", e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| Error::db("list leases", e))? {
            let (k, v) = row.map_err(|e| Error::db("list leases", e))?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Deletes a lease and its references; the blobs become collectable unless referenced.
    pub fn delete(&self, id: &str) -> Result<()> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin lease transaction", e))?;
        {
            let mut t = tx
                .open_table(LEASES)
                .map_err(|e| Error::db("open leases", e))?;
            if t.remove(id)
                .map_err(|e| Error::db("remove lease", e))?
                .is_none()
            {
                return Err(Error::not_found("lease", id));
            }
            let mut c = tx
                .open_table(LEASE_CONTENT)
                .map_err(|e| Error::db("open lease content", e))?;
            c.retain(|(l, _), ()| l != id)
                .map_err(|e| Error::db("remove lease content", e))?;
        }
        tx.commit()
            .map_err(|e| Error::db("commit lease removal", e))
    }

    /// Adds a blob to a lease (the blob need not exist yet).
    pub fn add_content(&self, id: &str, d: &Digest) -> Result<()> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin lease transaction", e))?;
        {
            let t = tx
                .open_table(LEASES)
                .map_err(|e| Error::db("open leases", e))?;
            if t.get(id).map_err(|e| Error::db("read lease", e))?.is_none() {
                return Err(Error::not_found("lease", id));
            }
            let mut c = tx
                .open_table(LEASE_CONTENT)
                .map_err(|e| Error::db("open lease content", e))?;
            c.insert((id, d.as_ref()), ())
                .map_err(|e| Error::db("add lease content", e))?;
        }
        tx.commit()
            .map_err(|e| Error::db("commit lease content", e))
    }

    pub fn remove_content(&self, id: &str, d: &Digest) -> Result<()> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin lease transaction", e))?;
        {
            let mut c = tx
                .open_table(LEASE_CONTENT)
                .map_err(|e| Error::db("open lease content", e))?;
            c.remove((id, d.as_ref()))
                .map_err(|e| Error::db("remove lease content", e))?;
        }
        tx.commit()
            .map_err(|e| Error::db("commit lease content", e))
    }

    /// The blobs a lease holds.
    pub fn content(&self, id: &str) -> Result<Vec<Digest>> {
        Ok(self
            .all_content()?
            .into_iter()
            .filter(|(l, _)| l == id)
            .map(|(_, d)| d)
            .collect())
    }

    fn all_content(&self) -> Result<Vec<(String, Digest)>> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin lease read", e))?;
        let c = tx
            .open_table(LEASE_CONTENT)
            .map_err(|e| Error::db("open lease content", e))?;
        let mut out = Vec::new();
        for row in c.iter().map_err(|e| Error::db("list lease content", e))? {
            let (k, _) = row.map_err(|e| Error::db("list lease content", e))?;
            let (lease, d) = k.value();
            out.push((lease.to_string(), digest::parse(d)?));
        }
        Ok(out)
    }

    /// Deletes expired leases, then returns every blob the remaining leases hold (GC roots).
    pub fn roots(&self, now: u64) -> Result<(Vec<Digest>, Vec<String>)> {
        let mut expired = Vec::new();
        for l in self.list()? {
            if l.expired(now) {
                self.delete(&l.id)?;
                expired.push(l.id);
            }
        }
        let roots = self.all_content()?.into_iter().map(|(_, d)| d).collect();
        Ok((roots, expired))
    }
}

fn decode(id: &str, bytes: &[u8]) -> Result<Lease> {
    serde_json::from_slice(bytes).map_err(|e| Error::doc(format!("lease {id}"), "", e.to_string()))
}
