//! Push: image record → blobs (exists / mount / upload) → manifest.

use std::io::Read;

use futures_util::{StreamExt, TryStreamExt};

use super::{client, oci_ref, registry_err, Options, SOURCE_LABEL_PREFIX};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Document, Manifest};
use crate::progress::{Counter, Progress, Step};
use crate::reference::Reference;
use crate::service::Service;

/// Bytes per upload chunk read from the store.
const CHUNK: usize = 1 << 20;

/// Pushes the local image `local` as `remote` and returns the pushed top descriptor.
pub async fn push(
    svc: &Service,
    local: &Reference,
    remote: &Reference,
    opts: &Options,
    progress: &Progress,
) -> Result<Descriptor> {
    let span = tracing::info_span!("push", image = %local, remote = %remote);
    tracing::Instrument::instrument(push_inner(svc, local, remote, opts, progress), span).await
}

async fn push_inner(
    svc: &Service,
    local: &Reference,
    remote: &Reference,
    opts: &Options,
    progress: &Progress,
) -> Result<Descriptor> {
    let rec = svc.images.get(local)?;
    let client = client(remote.domain(), opts)?;
    let auth = opts.auth.to_oci();
    let oref = oci_ref(remote);
    client
        .store_auth_if_needed(oref.resolve_registry(), &auth)
        .await;

    let mut sources: Vec<String> = opts.mount_from.clone();
    if let Some(s) = rec
        .labels
        .get(&format!("{SOURCE_LABEL_PREFIX}{}", remote.domain()))
    {
        sources.push(s.clone());
    }
    sources.retain(|s| s != remote.repository());
    sources.dedup();
    let ctx = Ctx {
        svc,
        client: &client,
        oref: &oref,
        sources: &sources,
        progress,
        concurrency: opts.concurrency.max(1),
    };

    let top_bytes = svc.read_document(&rec.target.digest)?;
    let what = format!("manifest {}", rec.target.digest);
    match Document::parse(&top_bytes, Some(&rec.target.media_type), &what)? {
        Document::Manifest(m) => ctx.blobs(&m).await?,
        Document::Index(ix) => {
            // Push the platforms this store has; an index may list others never pulled.
            for d in ix
                .manifests
                .iter()
                .filter(|d| svc.content.exists(&d.digest).unwrap_or(false))
            {
                let bytes = svc.read_document(&d.digest)?;
                if let Document::Manifest(m) = Document::parse(
                    &bytes,
                    Some(&d.media_type),
                    &format!("manifest {}", d.digest),
                )? {
                    ctx.blobs(&m).await?;
                }
                ctx.manifest(&oref.clone_with_digest(d.digest.to_string()), bytes, d)
                    .await?;
            }
        }
    }
    ctx.manifest(&oref, top_bytes, &rec.target).await?;

    // Later pushes to this registry can mount from here.
    let mut labels = rec.labels.clone();
    labels.insert(
        format!("{SOURCE_LABEL_PREFIX}{}", remote.domain()),
        remote.repository().to_string(),
    );
    svc.images.put(local, rec.target.clone(), labels)?;
    progress.step(&remote.to_string(), Step::Done);
    Ok(rec.target)
}

struct Ctx<'a> {
    svc: &'a Service,
    client: &'a oci_client::Client,
    oref: &'a oci_client::Reference,
    sources: &'a [String],
    progress: &'a Progress,
    concurrency: usize,
}

impl Ctx<'_> {
    async fn blobs(&self, m: &Manifest) -> Result<()> {
        let all: Vec<&Descriptor> = std::iter::once(&m.config).chain(m.layers.iter()).collect();
        futures_util::stream::iter(all.into_iter().map(|d| self.blob(d)))
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn blob(&self, d: &Descriptor) -> Result<()> {
        let id = d.digest.to_string();
        let exists = |step| registry_err(step, id.clone());
        if self
            .client
            .blob_exists(self.oref, &id)
            .await
            .map_err(exists("check blob"))?
        {
            self.progress
                .report(&id, Step::Exists, d.size, Some(d.size));
            return Ok(());
        }
        for src in self.sources {
            let from = oci_client::Reference::with_tag(
                self.oref.registry().to_string(),
                src.clone(),
                "latest".into(),
            );
            match self.client.mount_blob(self.oref, &from, &id).await {
                Ok(()) => {
                    self.progress
                        .report(&id, Step::Mounted, d.size, Some(d.size));
                    return Ok(());
                }
                // The registry could not mount it (202 + upload session, or refused): upload.
                Err(e) => tracing::debug!(blob = %id, from = %src, error = %e, "blob mount failed"),
            }
        }
        let file = self.svc.content.open_blob(&d.digest)?;
        let counter = self.progress.counter(&id, Step::Uploading, Some(d.size));
        let stream = futures_util::stream::unfold(Some((file, counter)), |state| async move {
            let (mut file, mut counter): (std::fs::File, Counter) = state?;
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf) {
                Ok(0) => {
                    counter.finish();
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    counter.add(n as u64);
                    Some((Ok(bytes::Bytes::from(buf)), Some((file, counter))))
                }
                Err(e) => Some((Err(e.into()), None)),
            }
        });
        self.client
            .push_blob_stream(self.oref, stream, &id, Some(d.size))
            .await
            .map_err(registry_err("upload blob", &id))?;
        // The body may end without the stream being polled past its last chunk.
        self.progress
            .report(&id, Step::Uploading, d.size, Some(d.size));
        self.progress.report(&id, Step::Done, d.size, Some(d.size));
        Ok(())
    }

    async fn manifest(
        &self,
        at: &oci_client::Reference,
        bytes: Vec<u8>,
        d: &Descriptor,
    ) -> Result<()> {
        let ct = http::HeaderValue::from_str(&d.media_type).map_err(|e| {
            Error::doc(format!("manifest {}", d.digest), "mediaType", e.to_string())
        })?;
        self.client
            .push_manifest_raw(at, bytes, ct)
            .await
            .map_err(registry_err("upload manifest", at.whole()))?;
        self.progress
            .report(d.digest.as_ref(), Step::Done, d.size, Some(d.size));
        Ok(())
    }
}
