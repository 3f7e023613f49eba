//! The overlay snapshotter: one directory per layer, stacked by overlayfs.
//!
//! # Lifecycle (after containerd's `Snapshotter`)
//!
//! A snapshot is a directory tree with a key, in one of three kinds:
//!
//! - **Committed**: read-only, usable as a parent. Image layers are committed snapshots keyed by
//!   their chain ID, shared by every image and container that has the layer underneath.
//! - **Active**: writable, created by [`Snapshotter::prepare`] on top of an optional committed
//!   parent. The returned [`Mount`]s describe an overlay with the parent chain as lowerdirs and
//!   this snapshot's own `fs` as upperdir; the caller performs the mount (for a container, its
//!   rootfs). [`Snapshotter::commit`] turns an active snapshot into a committed one under a new
//!   name (its upper directory becomes the layer), after which it can be a parent.
//! - **View**: a read-only active snapshot from [`Snapshotter::view`], for looking at a chain
//!   without changing it; it can never be committed.
//!
//! Layers are usually added in one step with [`Snapshotter::apply_layer`], which unpacks a layer
//! straight into a new committed snapshot (containerd's prepare → apply → commit, without an
//! intermediate mount: whiteouts are written in overlay form by [`crate::unpack`]).
//!
//! [`Snapshotter::remove`] deletes a snapshot that no other snapshot has as parent; removing
//! bottom-up is the caller's job (image GC). [`Snapshotter::usage`] measures a snapshot's own
//! directory (for an active one, what the container wrote).
//!
//! On disk: `<root>/snapshots/<id>/{fs,work}` with numeric ids, and `<root>/metadata.redb`
//! mapping keys to ids, kinds and parents. Directories are created before their record and
//! removed after it, so a crash leaves at worst an unreferenced directory, which
//! [`Snapshotter::open`] deletes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::meta::now_unix;
use crate::unpack;

const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Committed,
    Active,
    View,
}

/// What the snapshotter records about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub key: String,
    pub kind: Kind,
    pub parent: Option<String>,
    /// Seconds since the epoch.
    pub created: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    id: u64,
}

/// A mount for the caller to perform (the shape of an OCI runtime-spec mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `overlay` or `bind`.
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

/// Space a snapshot's own directory uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub size: u64,
    pub inodes: u64,
}

pub struct Snapshotter {
    root: PathBuf,
    db: redb::Database,
}

impl Snapshotter {
    /// Opens (creating if needed) a snapshotter at `root` and removes directories a crash left
    /// without a record. redb locks the database, so one process owns a snapshotter root.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(|e| Error::io("create snapshot directory", &dir, e))?;
        let db = redb::Database::create(root.join("metadata.redb"))
            .map_err(|e| Error::db("open snapshot metadata", e))?;
        let tx = db
            .begin_write()
            .map_err(|e| Error::db("begin snapshot transaction", e))?;
        tx.open_table(SNAPSHOTS)
            .map_err(|e| Error::db("create snapshots table", e))?;
        tx.open_table(COUNTERS)
            .map_err(|e| Error::db("create counters table", e))?;
        tx.commit()
            .map_err(|e| Error::db("commit snapshot tables", e))?;
        let s = Snapshotter { root, db };
        s.remove_orphans()?;
        Ok(s)
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// The directory holding a snapshot's files (an active snapshot's upperdir).
    pub fn fs_path(&self, key: &str) -> Result<PathBuf> {
        Ok(self.dir(self.stat(key)?.id).join("fs"))
    }

    pub fn stat(&self, key: &str) -> Result<Info> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin snapshot read", e))?;
        let t = tx
            .open_table(SNAPSHOTS)
            .map_err(|e| Error::db("open snapshots", e))?;
        let v = t
            .get(key)
            .map_err(|e| Error::db("read snapshot", e))?
            .ok_or_else(|| Error::not_found("snapshot", key))?;
        decode(key, v.value())
    }

    pub fn list(&self) -> Result<Vec<Info>> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| Error::db("begin snapshot read", e))?;
        let t = tx
            .open_table(SNAPSHOTS)
            .map_err(|e| Error::db("open snapshots", e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| Error::db("list snapshots", e))? {
            let (k, v) = row.map_err(|e| Error::db("list snapshots", e))?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Creates a writable snapshot `key` on top of the committed `parent`.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(key, parent, Kind::Active)?;
        self.mounts(key)
    }

    /// Creates a read-only view `key` of the committed `parent`.
    pub fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        self.create(key, Some(parent), Kind::View)?;
        self.mounts(key)
    }

    /// The mounts of an active snapshot or view.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let info = self.stat(key)?;
        if info.kind == Kind::Committed {
            return Err(Error::FailedPrecondition {
                what: format!("snapshot {key}"),
                reason: "committed snapshots are not mounted directly; prepare or view one".into(),
            });
        }
        let lowers = self.chain(info.parent.as_deref())?;
        let path = |p: &Path| p.display().to_string();
        let dir = self.dir(info.id);
        Ok(vec![match (info.kind, lowers.as_slice()) {
            (Kind::View, [only]) => bind(only, "ro"),
            (Kind::View, _) => Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![format!(
                    "lowerdir={}",
                    lowers.iter().map(|l| path(l)).collect::<Vec<_>>().join(":")
                )],
            },
            (_, []) => bind(&dir.join("fs"), "rw"),
            _ => Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!(
                        "lowerdir={}",
                        lowers.iter().map(|l| path(l)).collect::<Vec<_>>().join(":")
                    ),
                    format!("upperdir={}", path(&dir.join("fs"))),
                    format!("workdir={}", path(&dir.join("work"))),
                ],
            },
        }])
    }

    /// `fs` directories of `parent` and its ancestors, nearest first (overlay's lowerdir order).
    fn chain(&self, parent: Option<&str>) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut next = parent.map(str::to_string);
        while let Some(k) = next {
            let info = self.stat(&k)?;
            out.push(self.dir(info.id).join("fs"));
            next = info.parent;
        }
        Ok(out)
    }

    fn check_parent(&self, parent: Option<&str>) -> Result<()> {
        if let Some(p) = parent {
            let info = self.stat(p)?;
            if info.kind != Kind::Committed {
                return Err(Error::FailedPrecondition {
                    what: format!("snapshot {p}"),
                    reason: "a parent must be committed".into(),
                });
            }
        }
        Ok(())
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: Kind) -> Result<Info> {
        if key.is_empty() {
            return Err(Error::InvalidArgument {
                field: "snapshot key".into(),
                reason: "empty".into(),
            });
        }
        self.check_parent(parent)?;
        if self.stat(key).is_ok() {
            return Err(Error::AlreadyExists {
                what: "snapshot",
                name: key.to_string(),
            });
        }
        let id = self.next_id()?;
        let dir = self.dir(id);
        for d in [dir.join("fs"), dir.join("work")] {
            fs::create_dir_all(&d).map_err(|e| Error::io("create snapshot directory", &d, e))?;
        }
        let info = Info {
            key: key.to_string(),
            kind,
            parent: parent.map(str::to_string),
            created: now_unix(),
            labels: BTreeMap::new(),
            id,
        };
        if let Err(e) = self.insert(&info) {
            remove_dir(&dir);
            return Err(e);
        }
        Ok(info)
    }

    /// Unpacks a layer into a new committed snapshot `key` (its chain ID) over `parent`. If
    /// `key` exists already (another image has the layer) nothing is unpacked.
    pub fn apply_layer(
        &self,
        key: &str,
        parent: Option<&str>,
        layer: impl Read + Send,
        opts: &unpack::Options,
    ) -> Result<Option<unpack::Report>> {
        self.check_parent(parent)?;
        if self.stat(key).is_ok() {
            return Ok(None);
        }
        let id = self.next_id()?;
        let dir = self.dir(id);
        fs::create_dir_all(dir.join("work"))
            .map_err(|e| Error::io("create snapshot directory", &dir, e))?;
        let report = match unpack::unpack(layer, &dir.join("fs"), opts) {
            Ok(r) => r,
            Err(e) => {
                remove_dir(&dir);
                return Err(e);
            }
        };
        let info = Info {
            key: key.to_string(),
            kind: Kind::Committed,
            parent: parent.map(str::to_string),
            created: now_unix(),
            labels: BTreeMap::new(),
            id,
        };
        match self.insert(&info) {
            Ok(()) => Ok(Some(report)),
            Err(Error::AlreadyExists { .. }) => {
                remove_dir(&dir);
                Ok(None)
            }
            Err(e) => {
                remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Commits the active snapshot `key` as the committed snapshot `name`.
    pub fn commit(&self, name: &str, key: &str) -> Result<Info> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin snapshot transaction", e))?;
        let info = {
            let mut t = tx
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::db("open snapshots", e))?;
            let mut info = match t.get(key).map_err(|e| Error::db("read snapshot", e))? {
                Some(v) => decode(key, v.value())?,
                None => return Err(Error::not_found("snapshot", key)),
            };
            if info.kind != Kind::Active {
                return Err(Error::FailedPrecondition {
                    what: format!("snapshot {key}"),
                    reason: format!(
                        "only active snapshots can be committed, this one is {:?}",
                        info.kind
                    ),
                });
            }
            if t.get(name)
                .map_err(|e| Error::db("read snapshot", e))?
                .is_some()
            {
                return Err(Error::AlreadyExists {
                    what: "snapshot",
                    name: name.to_string(),
                });
            }
            t.remove(key)
                .map_err(|e| Error::db("remove snapshot record", e))?;
            info.key = name.to_string();
            info.kind = Kind::Committed;
            t.insert(name, encode(&info)?.as_slice())
                .map_err(|e| Error::db("insert snapshot record", e))?;
            info
        };
        tx.commit().map_err(|e| Error::db("commit snapshot", e))?;
        Ok(info)
    }

    /// Removes a snapshot that is no other snapshot's parent.
    pub fn remove(&self, key: &str) -> Result<()> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin snapshot transaction", e))?;
        let info = {
            let mut t = tx
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::db("open snapshots", e))?;
            let info = match t.get(key).map_err(|e| Error::db("read snapshot", e))? {
                Some(v) => decode(key, v.value())?,
                None => return Err(Error::not_found("snapshot", key)),
            };
            for row in t.iter().map_err(|e| Error::db("list snapshots", e))? {
                let (k, v) = row.map_err(|e| Error::db("list snapshots", e))?;
                if decode(k.value(), v.value())?.parent.as_deref() == Some(key) {
                    return Err(Error::FailedPrecondition {
                        what: format!("snapshot {key}"),
                        reason: format!("snapshot {} is based on it", k.value()),
                    });
                }
            }
            t.remove(key)
                .map_err(|e| Error::db("remove snapshot record", e))?;
            info
        };
        tx.commit()
            .map_err(|e| Error::db("commit snapshot removal", e))?;
        // After the record is gone: a crash here leaves an orphan that open() removes.
        let dir = self.dir(info.id);
        fs::remove_dir_all(&dir).map_err(|e| Error::io("remove snapshot directory", &dir, e))
    }

    /// Disk usage of the snapshot's own directory (not its parents).
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let dir = self.dir(self.stat(key)?.id);
        let mut u = Usage::default();
        let mut seen = std::collections::HashSet::new();
        du(&dir.join("fs"), &mut u, &mut seen)?;
        Ok(u)
    }

    fn next_id(&self) -> Result<u64> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin snapshot transaction", e))?;
        let id = {
            let mut t = tx
                .open_table(COUNTERS)
                .map_err(|e| Error::db("open counters", e))?;
            let id = t
                .get("snapshot_id")
                .map_err(|e| Error::db("read snapshot id", e))?
                .map_or(0, |v| v.value())
                + 1;
            t.insert("snapshot_id", id)
                .map_err(|e| Error::db("write snapshot id", e))?;
            id
        };
        tx.commit()
            .map_err(|e| Error::db("commit snapshot id", e))?;
        Ok(id)
    }

    fn insert(&self, info: &Info) -> Result<()> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| Error::db("begin snapshot transaction", e))?;
        {
            let mut t = tx
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::db("open snapshots", e))?;
            if t.get(info.key.as_str())
                .map_err(|e| Error::db("read snapshot", e))?
                .is_some()
            {
                return Err(Error::AlreadyExists {
                    what: "snapshot",
                    name: info.key.clone(),
                });
            }
            t.insert(info.key.as_str(), encode(info)?.as_slice())
                .map_err(|e| Error::db("insert snapshot record", e))?;
        }
        tx.commit()
            .map_err(|e| Error::db("commit snapshot record", e))
    }

    fn remove_orphans(&self) -> Result<()> {
        let known: std::collections::HashSet<String> =
            self.list()?.into_iter().map(|i| i.id.to_string()).collect();
        let dir = self.root.join("snapshots");
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("list snapshots", &dir, e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io("list snapshots", &dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                tracing::info!(dir = %e.path().display(), "removing snapshot directory without a record");
                let p = e.path();
                fs::remove_dir_all(&p)
                    .map_err(|err| Error::io("remove orphan snapshot", &p, err))?;
            }
        }
        Ok(())
    }
}

fn bind(src: &Path, rw: &str) -> Mount {
    Mount {
        kind: "bind".into(),
        source: src.to_path_buf(),
        options: vec!["rbind".into(), rw.into()],
    }
}

/// Best-effort removal of a directory this snapshotter created but did not record.
fn remove_dir(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "left an unrecorded snapshot directory for the next open");
    }
}

fn du(p: &Path, u: &mut Usage, seen: &mut std::collections::HashSet<(u64, u64)>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::symlink_metadata(p).map_err(|e| Error::io("stat snapshot file", p, e))?;
    if seen.insert((md.dev(), md.ino())) {
        u.inodes += 1;
        u.size += md.blocks() * 512;
    }
    if md.is_dir() {
        for e in fs::read_dir(p).map_err(|e| Error::io("list snapshot directory", p, e))? {
            let e = e.map_err(|e| Error::io("list snapshot directory", p, e))?;
            du(&e.path(), u, seen)?;
        }
    }
    Ok(())
}

fn encode(info: &Info) -> Result<Vec<u8>> {
    serde_json::to_vec(info).map_err(|e| Error::Internal {
        step: "encode snapshot record",
        reason: e.to_string(),
    })
}

fn decode(key: &str, bytes: &[u8]) -> Result<Info> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::doc(format!("snapshot record {key}"), "", e.to_string()))
}
