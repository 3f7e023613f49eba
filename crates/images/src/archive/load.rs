//! Reading a docker-archive or OCI-layout tarball into the store.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::{DockerEntry, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, UNNAMED};
use crate::commit::{put_leased, to_json};
use crate::digest::{self, Digest, DigestAlgorithm, HashingReader};
use crate::error::{Error, Result};
use crate::image_store::ImageRecord;
use crate::manifest::{self, media, Descriptor, Document, Index, Manifest};
use crate::progress::{CountingReader, Progress, Step};
use crate::reference::Reference;
use crate::service::{LeaseGuard, Service, MAX_DOCUMENT};

/// One image recorded by [`load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    pub name: Reference,
    pub record: ImageRecord,
}

/// Archive members kept in memory rather than stored as blobs.
const METADATA: &[&str] = &["manifest.json", "index.json", "repositories", "oci-layout"];

/// Loads every image in the archive `r` (docker-archive or OCI layout; see the module doc).
pub fn load(svc: &Service, r: impl Read, progress: &Progress) -> Result<Vec<Loaded>> {
    let _span = tracing::info_span!("load").entered();
    let lease = svc.lease("load")?;
    let mut members = Members::default();
    let mut ar = tar::Archive::new(r);
    let entries = ar
        .entries()
        .map_err(|e| Error::io("read archive", "<archive>", e))?;
    for e in entries {
        let mut e = e.map_err(|e| Error::io("read archive", "<archive>", e))?;
        let raw = e
            .path()
            .map_err(|e| Error::io("read archive member name", "<archive>", e))?
            .into_owned();
        let path = normalize(&raw)?;
        let kind = e.header().entry_type();
        if kind.is_symlink() {
            // docker save links repeated layers to their first copy.
            let target = e
                .link_name()
                .map_err(|err| Error::io("read archive link", &path, err))?
                .ok_or_else(|| {
                    Error::doc("archive", path.display().to_string(), "link without target")
                })?;
            let joined = path.parent().unwrap_or(Path::new("")).join(target);
            members.links.insert(path, normalize(&joined)?);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let name = path.to_string_lossy().into_owned();
        let size = e.size();
        if METADATA.contains(&name.as_str()) {
            if size > MAX_DOCUMENT {
                return Err(Error::doc("archive", name, "metadata file too large"));
            }
            let mut buf = Vec::with_capacity(size as usize);
            e.read_to_end(&mut buf)
                .map_err(|err| Error::io("read archive member", &path, err))?;
            members.metadata.insert(name, buf);
            continue;
        }
        let expected = blob_digest(&path);
        let counter = progress.counter(&name, Step::Downloading, Some(size));
        let mut counted = CountingReader::new(&mut e, counter);
        let info = match &expected {
            Some(d) if svc.content.info(d).is_ok_and(|i| i.size == size) => {
                lease.add(d)?;
                progress.step(d.as_ref(), Step::Exists);
                io::copy(&mut counted, &mut io::sink())
                    .map_err(|err| Error::io("read archive member", &path, err))?;
                svc.content.info(d)?
            }
            _ => {
                let mut w = svc.content.writer(expected.as_ref(), Some(size))?;
                io::copy(&mut counted, &mut w)
                    .map_err(|err| Error::io("copy archive member", &path, err))?;
                w.commit_leased(lease.leases(), lease.id())
                    .map_err(|err| match err {
                        Error::DigestMismatch {
                            expected, actual, ..
                        } => Error::DigestMismatch {
                            what: format!("archive member {name}"),
                            expected,
                            actual,
                        },
                        other => other,
                    })?
            }
        };
        counted.into_parts().1.finish();
        members.files.insert(path, (info.digest, info.size));
    }

    let images = if let Some(index) = members.metadata.get("index.json") {
        oci_images(svc, &lease, index)?
    } else if let Some(m) = members.metadata.get("manifest.json") {
        docker_images(svc, &lease, &members, m, progress)?
    } else {
        return Err(Error::doc(
            "archive",
            "",
            "neither index.json (OCI layout) nor manifest.json (docker-archive) found",
        ));
    };
    let mut out = Vec::new();
    for (name, target) in images {
        let name = match name {
            Some(n) => n,
            None => Reference::parse(&format!("{UNNAMED}@{}", target.digest))?,
        };
        let record = svc.images.put(&name, target, BTreeMap::new())?;
        progress.step(&name.to_string(), Step::Done);
        out.push(Loaded { name, record });
    }
    lease.release()?;
    Ok(out)
}

#[derive(Default)]
struct Members {
    metadata: HashMap<String, Vec<u8>>,
    /// Stored members: path → (digest, size).
    files: HashMap<PathBuf, (Digest, u64)>,
    links: HashMap<PathBuf, PathBuf>,
}

impl Members {
    fn file(&self, name: &str) -> Result<&(Digest, u64)> {
        let mut p = normalize(Path::new(name))?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&p) {
                return Ok(f);
            }
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(Error::not_found("archive member", name))
    }
}

/// A member path without `.` components; `..` and absolute paths are refused.
fn normalize(p: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            // Link targets inside the archive (`../<id>/layer.tar`).
            Component::ParentDir if out.pop() => {}
            _ => {
                return Err(Error::doc(
                    "archive",
                    p.display().to_string(),
                    "member path leaves the archive",
                ))
            }
        }
    }
    Ok(out)
}

/// `blobs/<alg>/<hex>` names its own digest.
fn blob_digest(p: &Path) -> Option<Digest> {
    let parts: Vec<_> = p.iter().map(|s| s.to_string_lossy()).collect();
    match parts.as_slice() {
        [b, alg, hex] if b == "blobs" => digest::parse(&format!("{alg}:{hex}")).ok(),
        _ => None,
    }
}

fn oci_images(
    svc: &Service,
    lease: &LeaseGuard,
    index: &[u8],
) -> Result<Vec<(Option<Reference>, Descriptor)>> {
    let index: Index = match Document::parse(index, Some(media::OCI_INDEX), "index.json")? {
        Document::Index(i) => i,
        Document::Manifest(_) => return Err(Error::doc("index.json", "", "not an image index")),
    };
    let mut out = Vec::new();
    for (i, d) in index.manifests.iter().enumerate() {
        check_present(svc, d, &format!("index.json manifests[{i}]"))?;
        check_document(svc, d, 0)?;
        let name = d
            .annotations
            .get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| d.annotations.get(ANNOTATION_REF_NAME))
            // A bare tag ("latest") names no repository.
            .filter(|n| n.contains(['/', ':', '@']))
            .map(|n| Reference::parse(n))
            .transpose()?;
        lease.add(&d.digest)?;
        out.push((
            name,
            Descriptor::new(&d.media_type, d.digest.clone(), d.size),
        ));
    }
    Ok(out)
}

/// Checks that a manifest or index and everything below it is in the store with the right sizes.
fn check_document(svc: &Service, d: &Descriptor, depth: u32) -> Result<()> {
    let what = format!("manifest {}", d.digest);
    if depth > 4 {
        return Err(Error::doc(what, "manifests", "indexes nested too deep"));
    }
    let bytes = svc.read_document(&d.digest)?;
    match Document::parse(&bytes, Some(&d.media_type), &what)? {
        Document::Index(ix) => {
            for (i, m) in ix.manifests.iter().enumerate() {
                // Indexes from `docker save` list other platforms that were never pulled.
                if svc.content.exists(&m.digest)? {
                    check_present(svc, m, &format!("{what} manifests[{i}]"))?;
                    check_document(svc, m, depth + 1)?;
                }
            }
        }
        Document::Manifest(mf) => {
            mf.check_image(&what)?;
            check_present(svc, &mf.config, &format!("{what} config"))?;
            for (i, l) in mf.layers.iter().enumerate() {
                check_present(svc, l, &format!("{what} layers[{i}]"))?;
            }
        }
    }
    Ok(())
}

fn check_present(svc: &Service, d: &Descriptor, what: &str) -> Result<()> {
    let info = svc.content.info(&d.digest).map_err(|e| match e {
        Error::NotFound { .. } => Error::doc(
            what,
            "digest",
            format!("blob {} is not in the archive", d.digest),
        ),
        other => other,
    })?;
    if info.size != d.size {
        return Err(Error::SizeMismatch {
            what: format!("{what} ({})", d.digest),
            expected: d.size,
            actual: info.size,
        });
    }
    Ok(())
}

fn docker_images(
    svc: &Service,
    lease: &LeaseGuard,
    members: &Members,
    manifest_json: &[u8],
    progress: &Progress,
) -> Result<Vec<(Option<Reference>, Descriptor)>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(manifest_json)
        .map_err(|e| Error::doc("manifest.json", "", e.to_string()))?;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let what = format!("manifest.json[{i}]");
        let (config_digest, config_size) = members.file(&e.config)?.clone();
        // `<hex>.json` (docker, skopeo, podman) names the config's digest.
        let stem = Path::new(&e.config)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Ok(named) = digest::parse(&format!("sha256:{stem}")) {
            if named != config_digest {
                return Err(Error::DigestMismatch {
                    what: format!("{what} config {}", e.config),
                    expected: named.to_string(),
                    actual: config_digest.to_string(),
                });
            }
        }
        let config = manifest::parse_config(
            &svc.read_document(&config_digest)?,
            &format!("{what} config"),
        )?;
        let diff_ids = manifest::diff_ids(&config, &format!("{what} config"))?;
        if diff_ids.len() != e.layers.len() {
            return Err(Error::doc(
                &what,
                "Layers",
                format!("{} layers for {} diff_ids", e.layers.len(), diff_ids.len()),
            ));
        }
        let mut layers = Vec::new();
        for (l, want) in e.layers.iter().zip(&diff_ids) {
            let (d, size) = members.file(l)?.clone();
            let media_type = verify_layer(svc, &d, want, l, progress)?;
            layers.push(Descriptor::new(media_type, d, size));
        }
        let mf = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, config_digest, config_size),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = to_json(&mf, "encode image manifest")?;
        let info = put_leased(svc, lease, &bytes)?;
        let target = Descriptor::new(media::OCI_MANIFEST, info.digest, info.size);
        let tags = e.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            out.push((None, target.clone()));
        }
        for t in tags {
            out.push((Some(Reference::parse(&t)?), target.clone()));
        }
    }
    Ok(out)
}

/// Checks a docker-archive layer against its `diff_id` and returns its OCI media type.
fn verify_layer(
    svc: &Service,
    d: &Digest,
    diff_id: &Digest,
    member: &str,
    progress: &Progress,
) -> Result<&'static str> {
    let mut f = svc.content.open_blob(d)?;
    let mut magic = [0u8; 4];
    let n = f
        .read(&mut magic)
        .map_err(|e| Error::io("read layer", member, e))?;
    let compression = crate::unpack::detect(&magic[..n]);
    if compression == manifest::Compression::None {
        if d != diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {member}"),
                expected: diff_id.to_string(),
                actual: d.to_string(),
            });
        }
        return Ok(media::OCI_LAYER);
    }
    progress.step(d.as_ref(), Step::Verifying);
    let f = svc.content.open_blob(d)?;
    let (reader, mt): (Box<dyn Read>, _) = match compression {
        manifest::Compression::Zstd => (
            Box::new(
                zstd::stream::read::Decoder::new(f)
                    .map_err(|e| Error::io("start zstd decoder", member, e))?,
            ),
            media::OCI_LAYER_ZSTD,
        ),
        _ => (
            Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f))),
            media::OCI_LAYER_GZIP,
        ),
    };
    let alg: &DigestAlgorithm = diff_id.algorithm();
    let mut h = HashingReader::new(reader, alg);
    io::copy(&mut h, &mut io::sink()).map_err(|e| Error::io("decompress layer", member, e))?;
    let (actual, _) = h.finish();
    if &actual != diff_id {
        return Err(Error::DigestMismatch {
            what: format!("layer {member} (uncompressed)"),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(mt)
}
