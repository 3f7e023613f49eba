//! Garbage collection of the content store: mark everything reachable from the roots (image
//! records' targets and leased blobs) through index → manifest → config/layers edges, then sweep
//! every other blob. Runs under the store's exclusive GC lock, so no commit interleaves.

use std::collections::{BTreeSet, VecDeque};

use serde::Deserialize;

use super::Store;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::leases::Leases;

/// Documents larger than this are not parsed for references (manifests are a few KiB).
const MAX_DOCUMENT: u64 = 4 << 20;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed.
    pub freed: u64,
    /// Leases that had expired and were deleted.
    pub expired_leases: Vec<String>,
    /// Dead ingest files removed.
    pub ingest_removed: usize,
}

/// Collects garbage. `roots` are the digests image records point at (manifests or indexes).
pub fn collect(store: &Store, leases: Option<&Leases>, roots: &[Digest]) -> Result<Report> {
    let _lock = store.gc_lock(true)?;
    let mut report = Report::default();
    let mut queue: VecDeque<Digest> = roots.iter().cloned().collect();
    if let Some(leases) = leases {
        let (leased, expired) = leases.roots(crate::meta::now_unix())?;
        queue.extend(leased);
        report.expired_leases = expired;
    }
    let mut marked: BTreeSet<String> = BTreeSet::new();
    while let Some(d) = queue.pop_front() {
        if !marked.insert(d.to_string()) {
            continue;
        }
        queue.extend(children(store, &d)?);
    }
    let mut sweep = Vec::new();
    store.walk(|info| {
        if !marked.contains(info.digest.as_ref()) {
            sweep.push(info);
        }
        Ok(())
    })?;
    for info in sweep {
        match store.delete(&info.digest) {
            Ok(()) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        report.freed += info.size;
        report.removed.push(info.digest);
    }
    report.ingest_removed = store.clean_ingest()?;
    Ok(report)
}

#[derive(Deserialize)]
struct Refs {
    #[serde(default)]
    manifests: Vec<Ref>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    layers: Vec<Ref>,
    #[serde(default)]
    subject: Option<Ref>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(default)]
    digest: Option<String>,
}

/// Blobs a stored document refers to: an index's manifests, a manifest's config and layers.
/// Blobs that are absent, large or not JSON have none.
pub fn children(store: &Store, d: &Digest) -> Result<Vec<Digest>> {
    let info = match store.info(d) {
        Ok(i) => i,
        Err(Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if info.size > MAX_DOCUMENT || info.size < 2 {
        return Ok(Vec::new());
    }
    let bytes = store.read(d, MAX_DOCUMENT)?;
    if bytes.first() != Some(&b'{') {
        return Ok(Vec::new());
    }
    let Ok(refs) = serde_json::from_slice::<Refs>(&bytes) else {
        return Ok(Vec::new());
    };
    let config = refs
        .config
        .as_ref()
        .and_then(|c| c.get("digest"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let all = refs
        .manifests
        .into_iter()
        .chain(refs.layers)
        .chain(refs.subject)
        .filter_map(|r| r.digest)
        .chain(config);
    Ok(all.filter_map(|s| digest::parse(&s).ok()).collect())
}
