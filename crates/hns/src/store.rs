//! Persistent state: the HCN objects wharf created and the IPAM allocations, in one redb file.
//!
//! Every mutation is one redb write transaction, so an allocation and the record that owns it
//! appear (or vanish) together; a crash never leaves an address handed out twice.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::types::{Ipv4Prefix, Ipv6Prefix};

/// Object tables: id → JSON record.
pub(crate) const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
pub(crate) const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
pub(crate) const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
/// `<network id>/<address>` → owning endpoint id.
const ALLOCATIONS: TableDefinition<&str, &str> = TableDefinition::new("allocations");
/// network id → the last address handed out (allocation continues after it, so a just
/// released address is not reused at once while peers may still cache its MAC).
const CURSORS: TableDefinition<&str, u32> = TableDefinition::new("ipam_cursors");
/// The same for IPv6 subnets.
const CURSORS6: TableDefinition<&str, u128> = TableDefinition::new("ipam_cursors6");
/// How many IPv6 candidates one allocation looks at before giving up (subnets are huge and
/// allocation walks forward from the cursor, so this is only reached when badly fragmented).
const V6_PROBES: u128 = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{step}")]
    Db {
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("address {0} in use")]
    InUse(IpAddr),
    #[error("address {0} is outside {1}")]
    OutOfRange(IpAddr, String),
    #[error("no free address in {0}")]
    Exhausted(String),
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
    /// The IPv6 side of a dual-stack network.
    pub v6: Option<Alloc6>,
    pub owner: &'a str,
}

/// The IPv6 part of an [`AllocRequest`].
pub struct Alloc6 {
    pub subnet: Ipv6Prefix,
    /// The gateway, never handed out.
    pub reserved: Ipv6Addr,
    pub requested: Option<Ipv6Addr>,
}

/// One family's address range in the allocator's terms.
struct Range<'a> {
    network_id: &'a str,
    subnet: String,
    first: u128,
    last: u128,
    reserved: Vec<u128>,
    requested: Option<u128>,
    cursor: Option<u128>,
    max_probes: u128,
    ip: fn(u128) -> IpAddr,
}

/// Picks the requested address, or the first free one after the cursor, wrapping around.
fn pick(allocs: &redb::Table<&str, &str>, r: &Range<'_>) -> Result<u128, StoreError> {
    let taken = |a: u128| -> Result<bool, StoreError> {
        if r.reserved.contains(&a) {
            return Ok(true);
        }
        let key = format!("{}/{}", r.network_id, (r.ip)(a));
        Ok(allocs
            .get(key.as_str())
            .map_err(db("read allocation"))?
            .is_some())
    };
    if let Some(a) = r.requested {
        if !(r.first..=r.last).contains(&a) {
            return Err(StoreError::OutOfRange((r.ip)(a), r.subnet.clone()));
        }
        if taken(a)? {
            return Err(StoreError::InUse((r.ip)(a)));
        }
        return Ok(a);
    }
    let size = r.last - r.first + 1;
    let start = r
        .cursor
        .filter(|c| (r.first..=r.last).contains(c))
        .unwrap_or(r.last);
    for i in 1..=size.min(r.max_probes) {
        let cand = r.first + (start - r.first + i) % size;
        if !taken(cand)? {
            return Ok(cand);
        }
    }
    Err(StoreError::Exhausted(r.subnet.clone()))
}

fn v4(a: u128) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a as u32))
}

fn v6(a: u128) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
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
        txn.open_table(CURSORS6).map_err(db("create tables"))?;
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

    /// Stores `record` under `id` in ENDPOINTS and allocates its addresses (IPv4, and IPv6
    /// on a dual-stack network) in the same transaction. Returns the addresses.
    pub fn insert_endpoint<T: Serialize>(
        &self,
        req: &AllocRequest<'_>,
        record: impl FnOnce(Ipv4Addr, Option<Ipv6Addr>) -> T,
    ) -> Result<(Ipv4Addr, Option<Ipv6Addr>), StoreError> {
        let txn = self.db.begin_write().map_err(db("begin transaction"))?;
        let (addr, addr6);
        {
            let mut allocs = txn.open_table(ALLOCATIONS).map_err(db("open table"))?;
            let mut cursors = txn.open_table(CURSORS).map_err(db("open table"))?;
            let cursor = cursors
                .get(req.network_id)
                .map_err(db("read cursor"))?
                .map(|v| u128::from(v.value()));
            let a = pick(
                &allocs,
                &Range {
                    network_id: req.network_id,
                    subnet: req.subnet.to_string(),
                    first: u128::from(u32::from(req.subnet.network())) + 1,
                    last: u128::from(u32::from(req.subnet.broadcast())) - 1,
                    reserved: req.reserved.iter().map(|&g| u32::from(g).into()).collect(),
                    requested: req.requested.map(|a| u32::from(a).into()),
                    cursor,
                    max_probes: u128::MAX,
                    ip: v4,
                },
            )?;
            addr = Ipv4Addr::from(a as u32);
            cursors
                .insert(req.network_id, a as u32)
                .map_err(db("write cursor"))?;
            addr6 = match &req.v6 {
                None => None,
                Some(r6) => {
                    let mut cursors6 = txn.open_table(CURSORS6).map_err(db("open table"))?;
                    let cursor = cursors6
                        .get(req.network_id)
                        .map_err(db("read cursor"))?
                        .map(|v| v.value());
                    let a = pick(
                        &allocs,
                        &Range {
                            network_id: req.network_id,
                            subnet: r6.subnet.to_string(),
                            first: u128::from(r6.subnet.network()) + 1,
                            last: u128::from(r6.subnet.last()),
                            reserved: vec![u128::from(r6.reserved)],
                            requested: r6.requested.map(u128::from),
                            cursor,
                            max_probes: V6_PROBES,
                            ip: v6,
                        },
                    )?;
                    cursors6
                        .insert(req.network_id, a)
                        .map_err(db("write cursor"))?;
                    Some(Ipv6Addr::from(a))
                }
            };
            for a in [Some(IpAddr::V4(addr)), addr6.map(IpAddr::V6)]
                .into_iter()
                .flatten()
            {
                allocs
                    .insert(format!("{}/{a}", req.network_id).as_str(), req.owner)
                    .map_err(db("write allocation"))?;
            }
            let bytes = serde_json::to_vec(&record(addr, addr6)).map_err(db("encode record"))?;
            let mut eps = txn.open_table(ENDPOINTS).map_err(db("open table"))?;
            eps.insert(req.owner, bytes.as_slice())
                .map_err(db("write record"))?;
        }
        txn.commit().map_err(db("commit"))?;
        Ok((addr, addr6))
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
            let mut c = txn.open_table(CURSORS6).map_err(db("open table"))?;
            c.remove(id).map_err(db("remove cursor"))?;
        }
        txn.commit().map_err(db("commit"))
    }

    /// Addresses currently allocated on a network, with their owners.
    pub fn allocations(&self, network_id: &str) -> Result<Vec<(IpAddr, String)>, StoreError> {
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
            v6: None,
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
                s.insert_endpoint(&req(&owner, None, &gw), |a, _| a.to_string())
                    .unwrap()
                    .0,
            );
        }
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
        assert!(!got.contains(&gw[0]));
        assert!(matches!(
            s.insert_endpoint(&req("e9", None, &gw), |a, _| a.to_string()),
            Err(StoreError::Exhausted(_))
        ));
        assert!(matches!(
            s.insert_endpoint(&req("e9", Some(got[2]), &gw), |a, _| a.to_string()),
            Err(StoreError::InUse(_))
        ));
        assert!(matches!(
            s.insert_endpoint(&req("e9", Some(gw[0]), &gw), |a, _| a.to_string()),
            Err(StoreError::InUse(_))
        ));
        assert!(matches!(
            s.insert_endpoint(&req("e9", Some(Ipv4Addr::new(10, 9, 0, 7)), &gw), |a, _| a
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
            .insert_endpoint(&req("e9", None, &gw), |a, _| a.to_string())
            .unwrap()
            .0;
        assert_eq!(again, got[2], "the released address is the only one free");
    }

    #[test]
    fn allocation_continues_after_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let gw = [Ipv4Addr::new(10, 9, 0, 1)];
        let a = s
            .insert_endpoint(&req("a", None, &gw), |a, _| a.to_string())
            .unwrap()
            .0;
        remove_endpoint(&s, "a", a);
        let b = s
            .insert_endpoint(&req("b", None, &gw), |a, _| a.to_string())
            .unwrap()
            .0;
        assert_ne!(a, b, "a just released address is not handed out at once");
    }

    #[test]
    fn dual_stack_allocates_both_families_together() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let gw = [Ipv4Addr::new(10, 9, 0, 1)];
        let subnet6 = Ipv6Prefix::parse("fd00:9::/120").unwrap();
        let gw6: Ipv6Addr = "fd00:9::1".parse().unwrap();
        let with6 = |owner, requested: Option<Ipv6Addr>| AllocRequest {
            v6: Some(Alloc6 {
                subnet: subnet6,
                reserved: gw6,
                requested,
            }),
            ..req(owner, None, &gw)
        };
        let (a4, a6) = s
            .insert_endpoint(&with6("a", None), |a, b| format!("{a} {b:?}"))
            .unwrap();
        let a6 = a6.unwrap();
        assert!(subnet6.contains(a6) && a6 != gw6);
        let (_, b6) = s
            .insert_endpoint(&with6("b", None), |a, _| a.to_string())
            .unwrap();
        assert_ne!(b6, Some(a6));
        // A requested IPv6 address in use fails the whole allocation: no IPv4 address leaks.
        let before = s.allocations("n1").unwrap().len();
        assert!(matches!(
            s.insert_endpoint(&with6("c", Some(a6)), |a, _| a.to_string()),
            Err(StoreError::InUse(IpAddr::V6(x))) if x == a6
        ));
        assert_eq!(s.allocations("n1").unwrap().len(), before);
        s.update(|t| {
            t.release("n1", "a", a4.into())?;
            t.release("n1", "a", a6.into())?;
            t.remove(ENDPOINTS, "a")
        })
        .unwrap();
        let (_, c6) = s
            .insert_endpoint(&with6("c", Some(a6)), |a, _| a.to_string())
            .unwrap();
        assert_eq!(c6, Some(a6), "released with the endpoint");
    }
}
