//! Image records: a name (a normalised reference) pointing at a manifest or index in the
//! content store, with labels and times, in the metadata database (redb). The records' targets
//! are the roots of content garbage collection ([`ImageStore::roots`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::meta::now_unix;
use crate::reference::Reference;

/// name (normalised reference) → JSON record
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The normalised reference, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    /// The manifest or index the name points at.
    pub target: Descriptor,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Seconds since the epoch.
    pub created: u64,
    pub updated: u64,
}

#[derive(Clone)]
pub struct ImageStore {
    db: Arc<redb::Database>,
}

impl ImageStore {
    pub fn new(db: Arc<redb::Database>) -> Result<Self> {
        let tx = db
            .begin_write()
            .map_err(|e| Error::db("begin image transaction", e))?;
        tx.open_table(IMAGES)
            .map_err(|e| Error::db("create images table", e))?;
        tx.commit()
            .map_err(|e| Error::db("commit images table", e))?;
        Ok(ImageStore { db })
    }

    /// Points `name` at `target`, creating the record or moving an existing tag (keeping its
    /// creation time; labels are replaced).
    pub fn put(
        &self,
        name: &Reference,
        target: Descriptor,
        labels: BTreeMap<String, String>,
    ) -> Result<ImageRecord> {
        let key = name.to_string();
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin image transaction", e))?;
        let rec = {
            let mut t = tx
                .open_table(IMAGES)
                .map_err(|e| Error::db("open images", e))?;
            let now = now_unix();
            let created = match t
                .get(key.as_str())
                .map_err(|e| Error::db("read image", e))?
            {
                Some(v) => decode(&key, v.value())?.created,
                None => now,
            };
            let rec = ImageRecord {
                name: key.clone(),
                target,
                labels,
                created,
                updated: now,
            };
            t.insert(key.as_str(), encode(&rec)?.as_slice())
                .map_err(|e| Error::db("write image", e))?;
            rec
        };
        tx.commit().map_err(|e| Error::db("commit image", e))?;
        Ok(rec)
    }

    /// As [`ImageStore::put`] but fails if the name exists.
    pub fn create(
        &self,
        name: &Reference,
        target: Descriptor,
        labels: BTreeMap<String, String>,
    ) -> Result<ImageRecord> {
        if self.get(name).is_ok() {
            return Err(Error::AlreadyExists {
                what: "image",
                name: name.to_string(),
            });
        }
        self.put(name, target, labels)
    }

    pub fn get(&self, name: &Reference) -> Result<ImageRecord> {
        let key = name.to_string();
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin image read", e))?;
        let t = tx
            .open_table(IMAGES)
            .map_err(|e| Error::db("open images", e))?;
        let v = t
            .get(key.as_str())
            .map_err(|e| Error::db("read image", e))?
            .ok_or_else(|| Error::not_found("image", &key))?;
        decode(&key, v.value())
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin image read", e))?;
        let t = tx
            .open_table(IMAGES)
            .map_err(|e| Error::db("open images", e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| Error::db("list images", e))? {
            let (k, v) = row.map_err(|e| Error::db("list images", e))?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Every name pointing at `d` (the tags of one image).
    pub fn by_target(&self, d: &Digest) -> Result<Vec<ImageRecord>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| &r.target.digest == d)
            .collect())
    }

    pub fn delete(&self, name: &Reference) -> Result<()> {
        let key = name.to_string();
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin image transaction", e))?;
        {
            let mut t = tx
                .open_table(IMAGES)
                .map_err(|e| Error::db("open images", e))?;
            if t.remove(key.as_str())
                .map_err(|e| Error::db("remove image", e))?
                .is_none()
            {
                return Err(Error::not_found("image", &key));
            }
        }
        tx.commit()
            .map_err(|e| Error::db("commit image removal", e))
    }

    /// The targets of all records: garbage collection's roots.
    pub fn roots(&self) -> Result<Vec<Digest>> {
        Ok(self.list()?.into_iter().map(|r| r.target.digest).collect())
    }
}

fn encode(r: &ImageRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(r).map_err(|e| Error::Internal {
        step: "encode image record",
        reason: e.to_string(),
    })
}

fn decode(key: &str, bytes: &[u8]) -> Result<ImageRecord> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::doc(format!("image record {key}"), "", e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;
    use crate::content::{gc, Store};
    use crate::digest::sha256;
    use crate::leases::Leases;
    use crate::manifest::media;

    #[test]
    fn records_survive_reopen_and_root_gc() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("meta.redb");
        let content = Store::open(dir.path().join("content")).unwrap();
        let m1 = content.put(br#"{"schemaVersion":2}"#, None).unwrap();
        let m2 = content.put(br#"{"schemaVersion":2,"x":1}"#, None).unwrap();
        let busybox = Reference::parse("busybox").unwrap();
        let other = Reference::parse("localhost:5000/app:1").unwrap();
        {
            let db = crate::meta::open_db(&db_path).unwrap();
            let images = ImageStore::new(db).unwrap();
            let d1 = Descriptor::new(media::OCI_MANIFEST, m1.digest.clone(), m1.size);
            let labels = BTreeMap::from([("k".to_string(), "v".to_string())]);
            let rec = images.create(&busybox, d1.clone(), labels).unwrap();
            assert_eq!(rec.name, "docker.io/library/busybox:latest");
            assert_eq!(
                images
                    .create(&busybox, d1.clone(), BTreeMap::new())
                    .unwrap_err()
                    .kind(),
                crate::ErrorKind::AlreadyExists
            );
            images.put(&other, d1, BTreeMap::new()).unwrap();
            assert_eq!(images.by_target(&m1.digest).unwrap().len(), 2);
        }
        // Reopen: records are durable.
        let db = crate::meta::open_db(&db_path).unwrap();
        let images = ImageStore::new(db.clone()).unwrap();
        let leases = Leases::new(db).unwrap();
        let got = images.get(&busybox).unwrap();
        assert_eq!(got.labels["k"], "v");
        // Moving a tag keeps its creation time.
        let d2 = Descriptor::new(media::OCI_MANIFEST, m2.digest.clone(), m2.size);
        let moved = images.put(&busybox, d2, BTreeMap::new()).unwrap();
        assert_eq!(moved.created, got.created);
        assert_eq!(moved.target.digest, m2.digest);

        let r = gc::collect(&content, Some(&leases), &images.roots().unwrap()).unwrap();
        assert!(r.removed.is_empty(), "both manifests are referenced");
        images.delete(&other).unwrap();
        let r = gc::collect(&content, Some(&leases), &images.roots().unwrap()).unwrap();
        assert_eq!(r.removed, vec![m1.digest]);
        assert!(content.exists(&m2.digest).unwrap());
        let e = images.get(&other).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert!(e.to_string().contains("localhost:5000/app:1"));
        assert!(images.delete(&other).is_err());
        assert!(!images
            .by_target(&sha256(b"none"))
            .unwrap()
            .iter()
            .any(|_| true));
    }
}
