//! Commit: a container's changes (its overlay upper directory) become a new image — one more
//! gzip layer on top of the base image, a config with the layer's `diff_id` and a history entry
//! appended, a manifest, and an image record for the new name.
//!
//! The layer is written once, streaming: tar ([`crate::diff`]) → sha256 (the `diff_id`) → gzip
//! → the content store's verified writer (the blob digest). Everything is added to a lease
//! before it is committed, and the lease is released after the record is written, so a crash at
//! any point leaves only collectable blobs. Without a base image the directory becomes the first
//! layer of a new image (that is also how tests and `import` build images from a directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::diff::{self, Stats};
use crate::digest::{self, Digest, DigestAlgorithm, HashingWriter};
use crate::error::{Error, Result};
use crate::image_store::ImageRecord;
use crate::manifest::{media, Descriptor, Manifest};
use crate::meta::{now_unix, rfc3339};
use crate::platform::Matcher;
use crate::progress::{Progress, Step};
use crate::reference::Reference;
use crate::service::{LeaseGuard, Service};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The history entry's `created_by` (e.g. the command the container ran).
    pub created_by: String,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Labels of the new image record.
    pub labels: BTreeMap<String, String>,
    /// Seconds since the epoch for `created` (config and history); now when `None`. Fixing it
    /// makes a commit of the same tree reproducible.
    pub created: Option<u64>,
    /// Gzip level 0–9 (default 6).
    pub gzip_level: Option<u32>,
    /// Fields set in the new config's `config` section (`Cmd`, `Env`, `WorkingDir`, ...), as
    /// `docker commit` records the container's settings; keys not given keep the base's value.
    pub runtime_config: Option<serde_json::Map<String, Value>>,
}

/// What a commit produced.
#[derive(Debug, Clone)]
pub struct Committed {
    pub record: ImageRecord,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layer: Descriptor,
    pub diff_id: Digest,
    pub stats: Stats,
}

/// A layer blob written from a directory.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The compressed blob (media type is the OCI gzip layer type).
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    pub stats: Stats,
}

/// Writes the overlay upper directory `upper` as a gzip layer blob, added to `lease`.
pub fn write_layer_blob(
    svc: &Service,
    lease: &LeaseGuard,
    upper: &Path,
    level: u32,
    progress: &Progress,
) -> Result<LayerBlob> {
    let writer = svc.content.writer(None, None)?;
    let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::new(level.min(9)));
    let mut hashing = HashingWriter::new(
        std::io::BufWriter::with_capacity(256 << 10, gz),
        &DigestAlgorithm::Sha256,
    );
    let id = format!("layer from {}", upper.display());
    let stats = diff::write_layer(
        upper,
        &mut hashing,
        progress.counter(&id, Step::Writing, None),
    )?;
    let (buf, diff_id, _) = hashing.finish();
    let gz = buf
        .into_inner()
        .map_err(|e| Error::io("flush layer", upper, e.into_error()))?;
    let writer = gz
        .finish()
        .map_err(|e| Error::io("finish gzip stream", upper, e))?;
    let info = writer.commit_leased(lease.leases(), lease.id())?;
    progress.report(info.digest.as_ref(), Step::Done, info.size, Some(info.size));
    Ok(LayerBlob {
        descriptor: Descriptor::new(media::OCI_LAYER_GZIP, info.digest, info.size),
        diff_id,
        stats,
    })
}

/// Commits the directory `upper` as a new layer on top of `base` (or as the first layer of a
/// new image) and records the result as `target`.
pub fn commit(
    svc: &Service,
    upper: &Path,
    base: Option<&Reference>,
    target: &Reference,
    opts: &Options,
    progress: &Progress,
) -> Result<Committed> {
    let _span = tracing::info_span!("commit", image = %target).entered();
    let lease = svc.lease("commit")?;
    let base = base.map(|b| svc.resolve_host(b)).transpose()?;
    let layer = write_layer_blob(svc, &lease, upper, opts.gzip_level.unwrap_or(6), progress)?;

    let created = rfc3339(opts.created.unwrap_or_else(now_unix));
    let (mut config, mut mf, docker) = match &base {
        Some(b) => {
            let cfg: Value = serde_json::from_slice(&b.config_bytes).map_err(|e| {
                Error::doc(
                    format!("config {}", b.manifest.config.digest),
                    "",
                    e.to_string(),
                )
            })?;
            // Every layer of the base stays in the new image: keep them from collection.
            lease.add(&b.manifest.config.digest)?;
            for l in &b.manifest.layers {
                lease.add(&l.digest)?;
            }
            b.diff_ids()?;
            let docker = b.manifest_desc.media_type == media::DOCKER_MANIFEST;
            (cfg, b.manifest.clone(), docker)
        }
        None => {
            let host = Matcher::host().platform;
            let cfg = json!({
                "architecture": host.architecture,
                "os": host.os,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            });
            let mf = Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.into()),
                artifact_type: None,
                config: Descriptor::new(media::OCI_CONFIG, digest::sha256(b""), 0),
                layers: Vec::new(),
                subject: None,
                annotations: BTreeMap::new(),
            };
            (cfg, mf, false)
        }
    };

    let Some(obj) = config.as_object_mut() else {
        return Err(Error::doc("base config", "", "not a JSON object"));
    };
    obj.insert("created".into(), json!(created));
    if let Some(rc) = &opts.runtime_config {
        let section = obj.entry("config").or_insert_with(|| json!({}));
        if !section.is_object() {
            *section = json!({});
        }
        if let Some(sec) = section.as_object_mut() {
            for (k, v) in rc {
                sec.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(a) = &opts.author {
        obj.insert("author".into(), json!(a));
    }
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(ids) => ids.push(json!(layer.diff_id.to_string())),
        None => return Err(Error::doc("base config", "rootfs.diff_ids", "missing")),
    }
    let mut entry = json!({"created": created, "created_by": opts.created_by});
    if let Some(c) = &opts.comment {
        entry["comment"] = json!(c);
    }
    if let Some(a) = &opts.author {
        entry["author"] = json!(a);
    }
    match obj
        .entry("history")
        .or_insert_with(|| json!([]))
        .as_array_mut()
    {
        Some(h) => h.push(entry),
        None => return Err(Error::doc("base config", "history", "not an array")),
    }
    let config_bytes = to_json(&config, "encode image config")?;
    let config_info = put_leased(svc, &lease, &config_bytes)?;

    let (config_type, layer_type) = if docker {
        (media::DOCKER_CONFIG, media::DOCKER_LAYER_GZIP)
    } else {
        (media::OCI_CONFIG, media::OCI_LAYER_GZIP)
    };
    mf.config = Descriptor::new(config_type, config_info.digest, config_info.size);
    let mut layer_desc = layer.descriptor.clone();
    layer_desc.media_type = layer_type.to_string();
    mf.layers.push(layer_desc.clone());
    let manifest_bytes = to_json(&mf, "encode image manifest")?;
    let manifest_info = put_leased(svc, &lease, &manifest_bytes)?;
    let manifest_type = mf.media_type.clone().unwrap_or_else(|| {
        if docker {
            media::DOCKER_MANIFEST.into()
        } else {
            media::OCI_MANIFEST.into()
        }
    });
    let manifest = Descriptor::new(&manifest_type, manifest_info.digest, manifest_info.size);
    let record = svc
        .images
        .put(target, manifest.clone(), opts.labels.clone())?;
    lease.release()?;
    progress.step(&target.to_string(), Step::Done);
    Ok(Committed {
        record,
        manifest,
        config: mf.config,
        layer: layer_desc,
        diff_id: layer.diff_id,
        stats: layer.stats,
    })
}

/// Writes a small document as a blob held by `lease`.
pub(crate) fn put_leased(
    svc: &Service,
    lease: &LeaseGuard,
    bytes: &[u8],
) -> Result<crate::content::Info> {
    let d = digest::sha256(bytes);
    lease.add(&d)?;
    if let Ok(info) = svc.content.info(&d) {
        return Ok(info);
    }
    let mut w = svc.content.writer(Some(&d), Some(bytes.len() as u64))?;
    w.write_all(bytes)
        .map_err(|e| Error::io("write blob", w.ingest_path(), e))?;
    w.commit_leased(lease.leases(), lease.id())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T, step: &'static str) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal {
        step,
        reason: e.to_string(),
    })
}
