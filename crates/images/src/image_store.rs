//! Image records: a name (a normalised reference) pointing at a manifest or index in the
//! content store, with labels and times, in the metadata database (redb). The records' targets
//! are the roots of content garbage collection ([`ImageStore::roots`]).
//!
//! An image whose last name moves elsewhere ([`ImageStore::put`]) or is taken away
//! ([`ImageStore::untag`]) is not dropped: it keeps a *dangling* record named
//! `wharf.local/dangling@<digest>` (Docker's `<none>:<none>` image), so it stays listed, usable
//! by id and by the containers created from it, until it is pruned or removed. Giving it a name
//! again ends the dangling record.

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

/// The repository of dangling records (see the module documentation).
pub const DANGLING_REPOSITORY: &str = "wharf.local/dangling";

/// The record name that keeps the image `d` while it has no other name.
pub fn dangling_name(d: &Digest) -> String {
    format!("{DANGLING_REPOSITORY}@{d}")
}

/// Whether a record name is a dangling record's.
pub fn is_dangling_name(name: &str) -> bool {
    name.strip_prefix(DANGLING_REPOSITORY)
        .is_some_and(|rest| rest.starts_with('@'))
}

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

impl ImageRecord {
    /// Whether this record only keeps an image that lost its names.
    pub fn is_dangling(&self) -> bool {
        is_dangling_name(&self.name)
    }
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
    /// creation time; labels are replaced). The image the tag moves away from keeps a dangling
    /// record if no other name points at it; a dangling record of `target` ends.
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
            let old = match t
                .get(key.as_str())
                .map_err(|e| Error::db("read image", e))?
            {
                Some(v) => Some(decode(&key, v.value())?),
                None => None,
            };
            let now = now_unix();
            let rec = ImageRecord {
                name: key.clone(),
                target,
                labels,
                created: old.as_ref().map_or(now, |o| o.created),
                updated: now,
            };
            t.insert(key.as_str(), encode(&rec)?.as_slice())
                .map_err(|e| Error::db("write image", e))?;
            if !rec.is_dangling() {
                let own = dangling_name(&rec.target.digest);
                t.remove(own.as_str())
                    .map_err(|e| Error::db("remove dangling image", e))?;
            }
            if let Some(old) = old.filter(|o| o.target.digest != rec.target.digest) {
                keep_if_unnamed(&mut t, old)?;
            }
            rec
        };
        tx.commit().map_err(|e| Error::db("commit image", e))?;
        Ok(rec)
    }

    /// Takes the name away from its image, which keeps a dangling record if no other name
    /// points at it (an untagged commit or import). Returns the removed record.
    pub fn untag(&self, name: &Reference) -> Result<ImageRecord> {
        let key = name.to_string();
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin image transaction", e))?;
        let old = {
            let mut t = tx
                .open_table(IMAGES)
                .map_err(|e| Error::db("open images", e))?;
            let old = match t
                .remove(key.as_str())
                .map_err(|e| Error::db("remove image", e))?
            {
                Some(v) => decode(&key, v.value())?,
                None => return Err(Error::not_found("image", &key)),
            };
            if !old.is_dangling() {
                keep_if_unnamed(&mut t, old.clone())?;
            }
            old
        };
        tx.commit()
            .map_err(|e| Error::db("commit image untag", e))?;
        Ok(old)
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

/// Writes a dangling record for `old`'s image unless another record points at its target.
fn keep_if_unnamed(t: &mut redb::Table<'_, &str, &[u8]>, old: ImageRecord) -> Result<()> {
    for row in t.iter().map_err(|e| Error::db("list images", e))? {
        let (k, v) = row.map_err(|e| Error::db("list images", e))?;
        if decode(k.value(), v.value())?.target.digest == old.target.digest {
            return Ok(());
        }
    }
    let name = dangling_name(&old.target.digest);
    let rec = ImageRecord {
        name: name.clone(),
        updated: now_unix(),
        ..old
    };
    t.insert(name.as_str(), encode(&rec)?.as_slice())
        .map_err(|e| Error::db("write dangling image", e))?;
    Ok(())
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

    #[test]
    fn an_image_that_loses_its_last_name_dangles_until_named_again() {
        let dir = tempfile::tempdir().unwrap();
        let content = Store::open(dir.path().join("content")).unwrap();
        let db = crate::meta::open_db(&dir.path().join("meta.redb")).unwrap();
        let images = ImageStore::new(db.clone()).unwrap();
        let leases = Leases::new(db).unwrap();
        let m1 = content.put(br#"{"schemaVersion":2,"n":1}"#, None).unwrap();
        let m2 = content.put(br#"{"schemaVersion":2,"n":2}"#, None).unwrap();
        let d1 = Descriptor::new(media::OCI_MANIFEST, m1.digest.clone(), m1.size);
        let d2 = Descriptor::new(media::OCI_MANIFEST, m2.digest.clone(), m2.size);
        let app = Reference::parse("app:1").unwrap();
        let other = Reference::parse("other:1").unwrap();
        let dangling1 = Reference::parse(&dangling_name(&m1.digest)).unwrap();
        let labels = BTreeMap::from([("k".to_string(), "v".to_string())]);

        // Moving a tag whose image has another name leaves no dangling record.
        images.put(&app, d1.clone(), labels.clone()).unwrap();
        images.put(&other, d1.clone(), BTreeMap::new()).unwrap();
        images.put(&other, d2.clone(), BTreeMap::new()).unwrap();
        assert!(images.list().unwrap().iter().all(|r| !r.is_dangling()));

        // Moving its last name keeps it as dangling, with its labels and creation time.
        let before = images.get(&app).unwrap();
        images.put(&app, d2.clone(), BTreeMap::new()).unwrap();
        let dangling = images.get(&dangling1).unwrap();
        assert!(dangling.is_dangling());
        assert_eq!(dangling.name, format!("wharf.local/dangling@{}", m1.digest));
        assert_eq!(
            (dangling.labels, dangling.created),
            (labels, before.created)
        );
        let r = gc::collect(&content, Some(&leases), &images.roots().unwrap()).unwrap();
        assert!(r.removed.is_empty(), "a dangling image keeps its content");

        // Naming it again ends the dangling record.
        images.put(&other, d1.clone(), BTreeMap::new()).unwrap();
        assert_eq!(
            images.get(&dangling1).unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );

        // untag: the last name goes, the image dangles; an image with names left does not.
        let removed = images.untag(&other).unwrap();
        assert_eq!(removed.target.digest, m1.digest);
        assert!(images.get(&dangling1).unwrap().is_dangling());
        images.put(&other, d2, BTreeMap::new()).unwrap();
        images.untag(&other).unwrap();
        let names: Vec<String> = images.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            vec![
                "docker.io/library/app:1".to_string(),
                dangling_name(&m1.digest)
            ]
        );
        assert!(images.untag(&other).is_err());

        // Deleting the dangling record lets GC free the image's content, and reports it.
        images.delete(&dangling1).unwrap();
        let r = gc::collect(&content, Some(&leases), &images.roots().unwrap()).unwrap();
        assert_eq!(r.removed, vec![m1.digest]);
        assert_eq!(r.freed, m1.size);
        assert!(content.exists(&m2.digest).unwrap());
    }
}
