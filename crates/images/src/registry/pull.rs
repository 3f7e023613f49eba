//! Pull: registry → content store → image record.

use std::collections::BTreeMap;
use std::io::Write;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::manifest::OciDescriptor;

use super::{client, oci_ref, registry_err, Options, SOURCE_LABEL_PREFIX};
use crate::commit::put_leased;
use crate::digest;
use crate::error::{Error, Result};
use crate::image_store::ImageRecord;
use crate::manifest::{media, Descriptor, Document};
use crate::platform::select_platform;
use crate::progress::{Progress, Step};
use crate::reference::Reference;
use crate::service::{LeaseGuard, Service, MAX_DOCUMENT};

const ACCEPT: &[&str] = &[
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

/// Pulls `name` into the store and records it (see the module doc of [`crate::registry`]).
pub async fn pull(
    svc: &Service,
    name: &Reference,
    opts: &Options,
    progress: &Progress,
) -> Result<ImageRecord> {
    let span = tracing::info_span!("pull", image = %name);
    tracing::Instrument::instrument(pull_inner(svc, name, opts, progress), span).await
}

async fn pull_inner(
    svc: &Service,
    name: &Reference,
    opts: &Options,
    progress: &Progress,
) -> Result<ImageRecord> {
    let client = client(name.domain(), opts)?;
    let auth = opts.auth.to_oci();
    let oref = oci_ref(name);
    progress.step(&name.to_string(), Step::Resolving);
    let (bytes, _) = client
        .pull_manifest_raw(&oref, &auth, ACCEPT)
        .await
        .map_err(registry_err("fetch manifest", name))?;
    let top_digest = digest::sha256(&bytes);
    if let Some(want) = name.digest() {
        if want.algorithm().as_ref() == "sha256" && want != &top_digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {name}"),
                expected: want.to_string(),
                actual: top_digest.to_string(),
            });
        }
    }
    let what = format!("manifest {top_digest} of {name}");
    let doc = Document::parse(&bytes, None, &what)?;
    let top = Descriptor::new(doc.media_type(), top_digest, bytes.len() as u64);

    let lease = svc.lease("pull")?;
    put_leased(svc, &lease, &bytes)?;
    let manifest = match doc {
        Document::Manifest(m) => m,
        Document::Index(ix) => {
            let d = select_platform(&ix, &opts.platform)?.clone();
            let child = oref.clone_with_digest(d.digest.to_string());
            let (bytes, _) = client
                .pull_manifest_raw(&child, &auth, ACCEPT)
                .await
                .map_err(registry_err("fetch manifest", &d.digest))?;
            check_document(&bytes, &d)?;
            put_leased(svc, &lease, &bytes)?;
            match Document::parse(
                &bytes,
                Some(&d.media_type),
                &format!("manifest {}", d.digest),
            )? {
                Document::Manifest(m) => m,
                Document::Index(_) => {
                    return Err(Error::doc(
                        format!("index {}", top.digest),
                        "manifests",
                        "platform entry is another index",
                    ))
                }
            }
        }
    };
    manifest.check_image(&what)?;
    if manifest.config.size > MAX_DOCUMENT {
        return Err(Error::doc(&what, "config.size", "config too large"));
    }

    let blobs: Vec<Descriptor> = std::iter::once(manifest.config.clone())
        .chain(manifest.layers.iter().cloned())
        .collect();
    futures_util::stream::iter(
        blobs
            .iter()
            .map(|d| fetch_blob(svc, &client, &oref, &lease, d, progress)),
    )
    .buffer_unordered(opts.concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;

    let mut labels = match svc.images.get(name) {
        Ok(old) => old.labels,
        Err(_) => BTreeMap::new(),
    };
    labels.insert(
        format!("{SOURCE_LABEL_PREFIX}{}", name.domain()),
        name.repository().to_string(),
    );
    let record = svc.images.put(name, top, labels)?;
    lease.release()?;
    progress.step(&name.to_string(), Step::Done);
    Ok(record)
}

fn check_document(bytes: &[u8], d: &Descriptor) -> Result<()> {
    let actual = digest::sha256(bytes);
    if d.digest.algorithm().as_ref() == "sha256" && actual != d.digest {
        return Err(Error::DigestMismatch {
            what: format!("manifest {}", d.digest),
            expected: d.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Fetches one blob into the store unless it is there already; either way it joins the lease.
async fn fetch_blob(
    svc: &Service,
    client: &oci_client::Client,
    oref: &oci_client::Reference,
    lease: &LeaseGuard,
    d: &Descriptor,
    progress: &Progress,
) -> Result<()> {
    let id = d.digest.to_string();
    if svc.content.info(&d.digest).is_ok_and(|i| i.size == d.size) {
        lease.add(&d.digest)?;
        progress.report(&id, Step::Exists, d.size, Some(d.size));
        return Ok(());
    }
    let desc = OciDescriptor {
        media_type: d.media_type.clone(),
        digest: id.clone(),
        size: d.size as i64,
        ..Default::default()
    };
    let mut stream = client
        .pull_blob_stream(oref, &desc)
        .await
        .map_err(registry_err("fetch blob", &id))?;
    let mut w = svc.content.writer(Some(&d.digest), Some(d.size))?;
    let mut counter = progress.counter(&id, Step::Downloading, Some(d.size));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::io("download blob", id.clone(), e))?;
        w.write_all(&chunk)
            .map_err(|e| Error::io("write blob", w.ingest_path(), e))?;
        counter.add(chunk.len() as u64);
    }
    counter.finish();
    progress.step(&id, Step::Verifying);
    w.commit_leased(lease.leases(), lease.id())?;
    progress.report(&id, Step::Done, d.size, Some(d.size));
    Ok(())
}
