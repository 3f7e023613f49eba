//! Writing images as a docker-archive or an OCI-layout tarball.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;

use serde_json::json;

use super::{repo_tag, DockerEntry, Format, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::commit::to_json;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::manifest::{layer_compression, media, Compression, Descriptor};
use crate::platform::Matcher;
use crate::progress::{CountingReader, Progress, Step};
use crate::reference::Reference;
use crate::service::{Resolved, Service};

/// Writes the images `names` (each narrowed to the host's platform) to `out` as one archive.
pub fn save(
    svc: &Service,
    names: &[Reference],
    format: Format,
    out: impl Write,
    progress: &Progress,
) -> Result<()> {
    if names.is_empty() {
        return Err(Error::InvalidArgument {
            field: "images".into(),
            reason: "nothing to save".into(),
        });
    }
    let _span = tracing::info_span!("save", format = ?format, images = names.len()).entered();
    let mut images = Vec::new();
    for n in names {
        progress.step(&n.to_string(), Step::Resolving);
        images.push((n.clone(), svc.resolve(n, &Matcher::host())?));
    }
    let mut tar = tar::Builder::new(out);
    match format {
        Format::OciArchive => save_oci(svc, &images, &mut tar, progress)?,
        Format::DockerArchive => save_docker(svc, &images, &mut tar, progress)?,
    }
    tar.into_inner()
        .and_then(|mut o| o.flush())
        .map_err(|e| Error::io("finish archive", "<archive>", e))?;
    Ok(())
}

fn save_oci<W: Write>(
    svc: &Service,
    images: &[(Reference, Resolved)],
    tar: &mut tar::Builder<W>,
    progress: &Progress,
) -> Result<()> {
    append_bytes(tar, "oci-layout", super::OCI_LAYOUT)?;
    let mut written = BTreeSet::new();
    let mut index = Vec::new();
    for (name, r) in images {
        let blobs = std::iter::once(&r.manifest_desc)
            .chain(std::iter::once(&r.manifest.config))
            .chain(r.manifest.layers.iter());
        for d in blobs {
            if written.insert(d.digest.to_string()) {
                append_blob(svc, tar, d, progress)?;
            }
        }
        let mut d = Descriptor::new(
            &r.manifest_desc.media_type,
            r.manifest_desc.digest.clone(),
            r.manifest_desc.size,
        );
        d.annotations = BTreeMap::from([
            (ANNOTATION_CONTAINERD_NAME.to_string(), name.to_string()),
            (ANNOTATION_REF_NAME.to_string(), name.to_string()),
        ]);
        index.push(d);
        progress.step(&name.to_string(), Step::Done);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": index,
    });
    append_bytes(tar, "index.json", &to_json(&index, "encode index.json")?)
}

fn save_docker<W: Write>(
    svc: &Service,
    images: &[(Reference, Resolved)],
    tar: &mut tar::Builder<W>,
    progress: &Progress,
) -> Result<()> {
    let mut written = BTreeSet::new();
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, r) in images {
        let diff_ids = r.diff_ids()?;
        let config_name = format!("{}.json", r.manifest.config.digest.digest());
        if written.insert(config_name.clone()) {
            append_bytes(tar, &config_name, &r.config_bytes)?;
        }
        let mut layers = Vec::new();
        for (l, diff_id) in r.manifest.layers.iter().zip(&diff_ids) {
            let file = format!("{}.tar", diff_id.digest());
            if written.insert(file.clone()) {
                append_layer(svc, tar, &file, l, diff_id, progress)?;
            }
            layers.push(file);
        }
        if let (Some(tag), Some(top)) = (name.tag(), diff_ids.last()) {
            repositories
                .entry(
                    name.familiar()
                        .rsplit_once(':')
                        .map_or(name.name(), |(n, _)| n.to_string()),
                )
                .or_default()
                .insert(tag.to_string(), top.digest().to_string());
        }
        entries.push(DockerEntry {
            config: config_name,
            repo_tags: Some(vec![repo_tag(name)]),
            layers,
        });
        progress.step(&name.to_string(), Step::Done);
    }
    append_bytes(
        tar,
        "manifest.json",
        &to_json(&entries, "encode manifest.json")?,
    )?;
    append_bytes(
        tar,
        "repositories",
        &to_json(&repositories, "encode repositories")?,
    )
}

/// Copies a blob from the store as `blobs/<alg>/<hex>`.
fn append_blob<W: Write>(
    svc: &Service,
    tar: &mut tar::Builder<W>,
    d: &Descriptor,
    progress: &Progress,
) -> Result<()> {
    let f = svc.content.open_blob(&d.digest)?;
    let size = f
        .metadata()
        .map_err(|e| Error::io("stat blob", d.digest.to_string(), e))?
        .len();
    if size != d.size {
        return Err(Error::SizeMismatch {
            what: format!("stored blob {}", d.digest),
            expected: d.size,
            actual: size,
        });
    }
    let path = format!("blobs/{}/{}", d.digest.algorithm(), d.digest.digest());
    let counter = progress.counter(d.digest.as_ref(), Step::Writing, Some(size));
    let mut r = CountingReader::new(f.take(size), counter);
    tar.append_data(&mut file_header(size), &path, &mut r)
        .map_err(|e| Error::io("write archive member", &path, e))?;
    r.into_parts().1.finish();
    Ok(())
}

/// Writes a layer uncompressed as `file`, checking it against `diff_id` on the way.
fn append_layer<W: Write>(
    svc: &Service,
    tar: &mut tar::Builder<W>,
    file: &str,
    l: &Descriptor,
    diff_id: &Digest,
    progress: &Progress,
) -> Result<()> {
    let blob = svc.content.open_blob(&l.digest)?;
    let blob_path = svc.content.blob_path(&l.digest)?;
    let counter = progress.counter(l.digest.as_ref(), Step::Writing, Some(l.size));
    let counted = CountingReader::new(blob, counter);
    let mut reader: Box<dyn Read> = match layer_compression(&l.media_type)? {
        Compression::None => Box::new(counted),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
            counted,
        ))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(counted)
                .map_err(|e| Error::io("start zstd decoder", &blob_path, e))?,
        ),
    };
    // The tar header needs the size first: decompress into an anonymous temporary file.
    let tmp = anonymous_file(svc)?;
    let mut w = HashingWriter::new(io::BufWriter::new(tmp), diff_id.algorithm());
    let size =
        io::copy(&mut reader, &mut w).map_err(|e| Error::io("decompress layer", &blob_path, e))?;
    let (buf, actual, _) = w.finish();
    if &actual != diff_id {
        return Err(Error::DigestMismatch {
            what: format!("layer {} (uncompressed)", l.digest),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    let mut tmp = buf
        .into_inner()
        .map_err(|e| Error::io("write temporary layer", &blob_path, e.into_error()))?;
    tmp.rewind()
        .map_err(|e| Error::io("rewind temporary layer", &blob_path, e))?;
    tar.append_data(&mut file_header(size), file, tmp.take(size))
        .map_err(|e| Error::io("write archive member", file, e))
}

fn anonymous_file(svc: &Service) -> Result<File> {
    let dir = svc.content.ingest_dir();
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(&dir)
        .map_err(|e| Error::io("create temporary file", dir, e))
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    tar.append_data(&mut file_header(data.len() as u64), path, data)
        .map_err(|e| Error::io("write archive member", path, e))
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h
}
