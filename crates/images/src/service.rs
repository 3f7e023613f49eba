//! The image service's composition: one content store, one metadata database (leases and image
//! records), opened together from one root. Pull, push, load, save and commit work on it.
//!
//! ```text
//! <root>/content/     the content store (see [`crate::content`])
//! <root>/meta.redb    leases and image records
//! ```
//!
//! Every operation that adds content takes a [`LeaseGuard`] first and adds each blob to it as it
//! is committed, so garbage collection never removes a half-finished pull, load or commit. The
//! guard is released when the image record is written; if the operation fails the lease stays
//! until it expires ([`LEASE_TTL`]), keeping what was fetched for a retry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::content::{gc, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image_store::{ImageRecord, ImageStore};
use crate::leases::Leases;
use crate::manifest::{self, Descriptor, Document, Manifest};
use crate::platform::{select_platform, Matcher, PlatformMatcher};
use crate::reference::Reference;

/// How long the lease of a failed operation keeps its content.
pub const LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Manifests, indexes and configs larger than this are refused.
pub const MAX_DOCUMENT: u64 = 8 << 20;

#[derive(Clone)]
pub struct Service {
    pub content: Store,
    pub leases: Leases,
    pub images: ImageStore,
    root: PathBuf,
}

impl Service {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let content = Store::open(root.join("content"))?;
        let db = crate::meta::open_db(&root.join("meta.redb"))?;
        Ok(Service {
            content,
            leases: Leases::new(db.clone())?,
            images: ImageStore::new(db)?,
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a lease for one operation (`purpose` becomes part of its id).
    pub fn lease(&self, purpose: &str) -> Result<LeaseGuard> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "{purpose}-{}-{}-{}",
            std::process::id(),
            crate::meta::now_unix(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let labels = BTreeMap::from([("purpose".to_string(), purpose.to_string())]);
        self.leases.create(&id, Some(LEASE_TTL), labels)?;
        Ok(LeaseGuard {
            leases: self.leases.clone(),
            id,
        })
    }

    /// Garbage-collects content no image record or lease references.
    pub fn gc(&self) -> Result<gc::Report> {
        gc::collect(&self.content, Some(&self.leases), &self.images.roots()?)
    }

    /// Reads a stored JSON document (manifest, index, config).
    pub fn read_document(&self, d: &Digest) -> Result<Vec<u8>> {
        self.content.read(d, MAX_DOCUMENT)
    }

    /// The image `name` for the platform `m`: its record, manifest and config.
    pub fn resolve(&self, name: &Reference, m: &dyn PlatformMatcher) -> Result<Resolved> {
        let record = self.images.get(name)?;
        let (manifest_desc, manifest) = self.manifest_for(&record.target, m)?;
        let config_bytes = self.read_document(&manifest.config.digest)?;
        Ok(Resolved {
            record,
            manifest_desc,
            manifest,
            config_bytes,
        })
    }

    /// Narrows `target` (a manifest or an index) to one image manifest for `m`.
    pub fn manifest_for(
        &self,
        target: &Descriptor,
        m: &dyn PlatformMatcher,
    ) -> Result<(Descriptor, Manifest)> {
        let mut desc = target.clone();
        for _ in 0..4 {
            let bytes = self.read_document(&desc.digest)?;
            let what = format!("manifest {}", desc.digest);
            match Document::parse(&bytes, Some(&desc.media_type), &what)? {
                Document::Manifest(mf) => {
                    mf.check_image(&what)?;
                    return Ok((desc, mf));
                }
                Document::Index(ix) => desc = select_platform(&ix, m)?.clone(),
            }
        }
        Err(Error::doc(
            format!("index {}", target.digest),
            "manifests",
            "indexes nested more than 4 deep",
        ))
    }

    /// As [`Service::resolve`] for the host's platform.
    pub fn resolve_host(&self, name: &Reference) -> Result<Resolved> {
        self.resolve(name, &Matcher::host())
    }
}

/// An image narrowed to one platform.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub record: ImageRecord,
    pub manifest_desc: Descriptor,
    pub manifest: Manifest,
    /// The config exactly as stored (its digest is the image id).
    pub config_bytes: Vec<u8>,
}

impl Resolved {
    pub fn config(&self) -> Result<manifest::ImageConfiguration> {
        manifest::parse_config(
            &self.config_bytes,
            &format!("config {}", self.manifest.config.digest),
        )
    }

    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        let what = format!("config {}", self.manifest.config.digest);
        let ids = manifest::diff_ids(&self.config()?, &what)?;
        if ids.len() != self.manifest.layers.len() {
            return Err(Error::doc(
                what,
                "rootfs.diff_ids",
                format!(
                    "{} diff_ids for {} layers",
                    ids.len(),
                    self.manifest.layers.len()
                ),
            ));
        }
        Ok(ids)
    }
}

/// A lease held by one operation; [`LeaseGuard::release`] deletes it once the result is
/// recorded. Dropped without release, it stays until [`LEASE_TTL`] passes.
pub struct LeaseGuard {
    leases: Leases,
    id: String,
}

impl LeaseGuard {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a blob (existing or about to be written) to the lease.
    pub fn add(&self, d: &Digest) -> Result<()> {
        self.leases.add_content(&self.id, d)
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    pub fn release(self) -> Result<()> {
        self.leases.delete(&self.id)
    }
}
