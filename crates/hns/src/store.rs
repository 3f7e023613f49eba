//! Persistent state: the HCN objects wharf created and the IPAM allocations, in one redb file.
//!
//! Every mutation is one redb write transaction, so an allocation and the record that owns it
//! appear (or vanish) together; a crash never leaves an address handed out twice.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use crate::types::Ipv4Prefix;

/// Object tables: id → JSON record.
pub(crate) const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
pub(crate) const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
pub(crate) const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
/// `<network id>/<address>` → owning endpoint id.
const ALLOCATIONS: TableDefinition<&str, &str> = TableDefinition::new("allocations");
/// network id → the last address handed out (allocation continues after it, so a just
/// released address is not reused at once while peers may still cache its MAC).
const CURSORS: TableDefinition<&str, u32> = TableDefinition::new("ipam_cursors");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{step}")]
    Db {
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("address {0} in use")]
    InUse(Ipv4Addr),
    #[error("address {0} is outside {1}")]
    OutOfRange(Ipv4Addr, Ipv4Prefix),
    #[error("no free address in {0}")]
    Exhausted(Ipv4Prefix),
}

fn db<E: std::error::Error + Send + Sync + 'static>(
    step: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Db {
        step,
        source: Box::new(e),
    }
}

pub struct Store {
    db: Database,
}

/// The writes of one [`Store::update`].
pub struct Txn<'a> {
    txn: &'a redb::WriteTransaction,
}

impl Txn<'_> {
    pub fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let t = self.txn.open_table(table).map_err(db("open table"))?;
        let v = t.get(id).map_err(db("read record"))?;
        v.map(|v| serde_json::from_slice(v.value()).map_err(db("decode record")))
            .transpose()
    }

    pub fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(db("encode record"))?;
        let mut t = self.txn.open_table(table).map_err(db("open table"))?;
        t.insert(id, bytes.as_slice()).map_err(db("write record"))?;
        Ok(())
    }

    pub fn remove(&self, table: TableDefinition<&str, &[u8]>, id: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(table).map_err(db("open table"))?;
        t.remove(id).map_err(db("remove record"))?;
        Ok(())
    }

    /// Releases `addr` on `network_id` if `owner` holds it.
    pub fn release(&self, network_id: &str, owner: &str, addr: IpAddr) -> Result<(), StoreError> {
        let mut allocs = self.txn.open_table(ALLOCATIONS).map_err(db("open table"))?;
        let key = format!("{network_id}/{addr}");
        let owned = allocs
            .get(key.as_str())
            .map_err(db("read allocation"))?
            .is_some_and(|v| v.value() == owner);
        if owned {
            allocs.remove(key.as_str()).map_err(db("release address"))?;
        }
        Ok(())
    }
}

/// What an allocation request asks for.
pub struct AllocRequest<'a> {
    pub network_id: &'a str,
    pub subnet: Ipv4Prefix,
    /// Addresses never handed out (the gateway).
    pub reserved: &'a [Ipv4Addr],
    pub requested: Option<Ipv4Addr>,
    pub owner: &'a str,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let database = Database::create(path).map_err(db("open database"))?;
        let txn = database.begin_write().map_err(db("begin transaction"))?;
        for t in [NETWORKS, ENDPOINTS, NAMESPACES] {
            txn.open_table(t).map_err(db("create tables"))?;
        }
        txn.open_table(ALLOCATIONS).map_err(db("create tables"))?;
        txn.open_table(CURSORS).map_err(db("create tables"))?;
        txn.commit().map_err(db("commit"))?;
        Ok(Store { db: database })
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(table).map_err(db("open table"))?;
        match t.get(id).map_err(db("read record"))? {
            Some(v) => Ok(Some(
                serde_json::from_slice(v.value()).map_err(db("decode record"))?,
            )),
            None => Ok(None),
        }
    }

    pub fn list<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(table).map_err(db("open table"))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db("list records"))? {
            let (_, v) = row.map_err(db("list records"))?;
            out.push(serde_json::from_slice(v.value()).map_err(db("decode record"))?);
        }
        Ok(out)
    }

    pub fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(db("encode record"))?;
        let txn = self.db.begin_write().map_err(db("begin transaction"))?;
        {
            let mut t = txn.open_table(table).map_err(db("open table"))?;
            t.insert(id, bytes.as_slice()).map_err(db("write record"))?;
        }
        txn.commit().map_err(db("commit"))
    }

    pub fn remove(&self, table: TableDefinition<&str, &[u8]>, id: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db("begin transaction"))?;
        {
            let mut t = txn.open_table(table).map_err(db("open table"))?;
            t.remove(id).map_err(db("remove record"))?;
        }
        txn.commit().map_err(db("commit"))
    }

    /// Stores `record` under `id` in ENDPOINTS and allocates its address in the same
    /// transaction. Returns the address.
    pub fn insert_endpoint<T: Serialize>(
        &self,
        req: &AllocRequest<'_>,
        record: impl FnOnce(Ipv4Addr) -> T,
    ) -> Result<Ipv4Addr, StoreError> {
        let txn = self.db.begin_write().map_err(db("begin transaction"))?;
        let addr;
        {
            let mut allocs = txn.open_table(ALLOCATIONS).map_err(db("open table"))?;
            let mut cursors = txn.open_table(CURSORS).map_err(db("open table"))?;
            let key = |a: Ipv4Addr| format!("{}/{}", req.network_id, a);
            let net = u32::from(req.subnet.network());
            let bcast = u32::from(req.subnet.broadcast());
            addr = match req.requested {
                Some(a) => {
                    if !req.subnet.contains(a) || u32::from(a) == net || u32::from(a) == bcast {
                        return Err(StoreError::OutOfRange(a, req.subnet));
                    }
                    if req.reserved.contains(&a)
                        || allocs
                            .get(key(a).as_str())
                            .map_err(db("read allocation"))?
                            .is_some()
                    {
                        return Err(StoreError::InUse(a));
                    }
                    a
                }
                None => {
                    let first = net + 1;
                    let size = bcast.saturating_sub(first);
                    let last = cursors
                        .get(req.network_id)
                        .map_err(db("read cursor"))?
                        .map(|v| v.value())
                        .filter(|v| (first..bcast).contains(v))
                        .unwrap_or(bcast - 1);
                    let mut found = None;
                    for i in 1..=size {
                        let cand = first + (last - first + i) % size;
                        let a = Ipv4Addr::from(cand);
                        if req.reserved.contains(&a) {
                            continue;
                        }
                        if allocs
                            .get(key(a).as_str())
                            .map_err(db("read allocation"))?
                            .is_none()
                        {
                            found = Some(a);
                            break;
                        }
                    }
                    found.ok_or(StoreError::Exhausted(req.subnet))?
                }
            };
            allocs
                .insert(key(addr).as_str(), req.owner)
                .map_err(db("write allocation"))?;
            cursors
                .insert(req.network_id, u32::from(addr))
                .map_err(db("write cursor"))?;
            let bytes = serde_json::to_vec(&record(addr)).map_err(db("encode record"))?;
            let mut eps = txn.open_table(ENDPOINTS).map_err(db("open table"))?;
            eps.insert(req.owner, bytes.as_slice())
                .map_err(db("write record"))?;
        }
        txn.commit().map_err(db("commit"))?;
        Ok(addr)
    }

    /// Runs `f` in one write transaction: everything it writes commits together, or
    /// nothing does when it fails.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&Txn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(db("begin transaction"))?;
        let out = f(&Txn { txn: &txn })?;
        txn.commit().map_err(db("commit"))?;
        Ok(out)
    }

    /// Removes a network record and its IPAM cursor.
    pub fn remove_network(&self, id: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db("begin transaction"))?;
        {
            let mut t = txn.open_table(NETWORKS).map_err(db("open table"))?;
            t.remove(id).map_err(db("remove record"))?;
            let mut c = txn.open_table(CURSORS).map_err(db("open table"))?;
            c.remove(id).map_err(db("remove cursor"))?;
        }
        txn.commit().map_err(db("commit"))
    }

    /// Addresses currently allocated on a network, with their owners.
    pub fn allocations(&self, network_id: &str) -> Result<Vec<(Ipv4Addr, String)>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(ALLOCATIONS).map_err(db("open table"))?;
        let prefix = format!("{network_id}/");
        let mut out = Vec::new();
        for row in t.iter().map_err(db("list allocations"))? {
            let (k, v) = row.map_err(db("list allocations"))?;
            if let Some(a) = k.value().strip_prefix(&prefix) {
                if let Ok(a) = a.parse() {
                    out.push((a, v.value().to_string()));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    fn req<'a>(
        owner: &'a str,
        requested: Option<Ipv4Addr>,
        gw: &'a [Ipv4Addr],
    ) -> AllocRequest<'a> {
        AllocRequest {
            network_id: "n1",
            subnet: Ipv4Prefix::parse("10.9.0.0/29").unwrap(),
            reserved: gw,
            requested,
            owner,
        }
    }

    fn remove_endpoint(s: &Store, id: &str, addr: Ipv4Addr) {
        s.update(|t| {
            t.release("n1", id, addr.into())?;
            t.remove(ENDPOINTS, id)
        })
        .unwrap();
    }

    #[test]
    fn no_address_twice_released_on_delete_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hns.redb");
        let gw = [Ipv4Addr::new(10, 9, 0, 1)];
        let s = Store::open(&path).unwrap();
        // /29: .1 gateway, .2-.6 usable, .7 broadcast.
        let mut got = Vec::new();
        for i in 0..5 {
            let owner = format!("e{i}");
            got.push(
                s.insert_endpoint(&req(&owner, None, &gw), |a| a.to_string())
                    .unwrap(),
            );
        }
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
        assert!(!got.contains(&gw[0]));
        assert!(matches!(
            s.insert_endpoint(&req("e9", None, &gw), |a| a.to_string()),
            Err(StoreError::Exhausted(_))
        ));
        assert!(matches!(
            s.insert_endpoint(&req("e9", Some(got[2]), &gw), |a| a.to_string()),
            Err(StoreError::InUse(_))
        ));
        assert!(matches!(
            s.insert_endpoint(&req("e9", Some(gw[0]), &gw), |a| a.to_string()),
            Err(StoreError::InUse(_))
        ));
        assert!(matches!(
            s.insert_endpoint(&req("e9", Some(Ipv4Addr::new(10, 9, 0, 7)), &gw), |a| a
                .to_string()),
            Err(StoreError::OutOfRange(..))
        ));
        remove_endpoint(&s, "e2", got[2]);
        assert_eq!(s.get::<String>(ENDPOINTS, "e2").unwrap(), None);
        drop(s);

        let s = Store::open(&path).unwrap();
        assert_eq!(s.allocations("n1").unwrap().len(), 4);
        assert_eq!(
            s.get::<String>(ENDPOINTS, "e0").unwrap(),
            Some(got[0].to_string())
        );
        let again = s
            .insert_endpoint(&req("e9", None, &gw), |a| a.to_string())
            .unwrap();
        assert_eq!(again, got[2], "the released address is the only one free");
    }

    #[test]
    fn allocation_continues_after_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let gw = [Ipv4Addr::new(10, 9, 0, 1)];
        let a = s
            .insert_endpoint(&req("a", None, &gw), |a| a.to_string())
            .unwrap();
        remove_endpoint(&s, "a", a);
        let b = s
            .insert_endpoint(&req("b", None, &gw), |a| a.to_string())
            .unwrap();
        assert_ne!(a, b, "a just released address is not handed out at once");
    }
}
