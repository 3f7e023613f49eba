//! Manifests, indexes and image configs: OCI image-spec v1 and Docker image manifest v2 schema 2
//! (the same JSON shapes under different media types).
//!
//! Manifests and indexes use this module's own serde types rather than `oci-spec`'s: in
//! `oci-spec` 0.10 the descriptor `Platform` has no `os.version`/`os.features` renames, so a
//! Windows manifest list would silently lose the field platform selection depends on. The image
//! config is `oci-spec`'s [`ImageConfiguration`], whose `os.version` is right.
//!
//! Documents from outside are stored and passed on as the exact bytes received (their digest is
//! over those bytes); these types are for reading them and for writing new ones.

use std::collections::BTreeMap;

pub use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::digest::{self, Digest};
use crate::error::{Error, Result};

/// Media types wharf understands.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_ND: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_ND_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_ND_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression a layer media type declares; other media types are not layers.
pub fn layer_compression(media_type: &str) -> Result<Compression> {
    use media::*;
    match media_type {
        OCI_LAYER | OCI_LAYER_ND => Ok(Compression::None),
        OCI_LAYER_GZIP | OCI_LAYER_ND_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            Ok(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_ND_ZSTD => Ok(Compression::Zstd),
        other => Err(Error::Unsupported {
            what: format!("layer media type {other:?}"),
            why: "not a tar, tar+gzip or tar+zstd layer".into(),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// A platform as image indexes and manifest lists write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        if let Some(v) = &self.os_version {
            write!(f, " ({v})")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest or an index, as found behind a tag.
// Parsed once per pull or load; boxing the manifest would only add noise at every use.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl Document {
    /// Parses a manifest or index. `hint` is the media type the document was served or
    /// described with; `what` names it in errors (e.g. `manifest sha256:…`).
    pub fn parse(bytes: &[u8], hint: Option<&str>, what: &str) -> Result<Self> {
        let probe: Probe = parse_json(bytes, what)?;
        if probe.schema_version == Some(1)
            || matches!(
                hint,
                Some(media::DOCKER_SCHEMA1 | media::DOCKER_SCHEMA1_SIGNED)
            )
        {
            return Err(Error::Unsupported {
                what: what.to_string(),
                why: "Docker image manifest schema 1 is deprecated; push the image again with a current client".into(),
            });
        }
        let declared = probe.media_type.as_deref().or(hint);
        let is_index = match declared {
            Some(media::OCI_INDEX | media::DOCKER_MANIFEST_LIST) => true,
            Some(media::OCI_MANIFEST | media::DOCKER_MANIFEST) => false,
            Some(other) => {
                return Err(Error::Unsupported {
                    what: what.to_string(),
                    why: format!("media type {other:?} is not an image manifest or index"),
                })
            }
            None => probe.manifests.is_some() && probe.config.is_none(),
        };
        if let (Some(inner), Some(hint)) = (probe.media_type.as_deref(), hint) {
            let same_family = (is_index_type(inner) && is_index_type(hint))
                || (is_manifest_type(inner) && is_manifest_type(hint));
            if !same_family {
                return Err(Error::doc(
                    what,
                    "mediaType",
                    format!("document says {inner:?} but was described as {hint:?}"),
                ));
            }
        }
        let doc = if is_index {
            Document::Index(parse_json(bytes, what)?)
        } else {
            Document::Manifest(parse_json(bytes, what)?)
        };
        doc.validate(what)?;
        Ok(doc)
    }

    fn validate(&self, what: &str) -> Result<()> {
        let (version, descriptors): (u32, Vec<(String, &Descriptor)>) = match self {
            Document::Manifest(m) => (
                m.schema_version,
                std::iter::once(("config".to_string(), &m.config))
                    .chain(
                        m.layers
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (format!("layers[{i}]"), l)),
                    )
                    .collect(),
            ),
            Document::Index(ix) => (
                ix.schema_version,
                ix.manifests
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (format!("manifests[{i}]"), m))
                    .collect(),
            ),
        };
        if version != 2 {
            return Err(Error::doc(
                what,
                "schemaVersion",
                format!("{version} is not 2"),
            ));
        }
        for (field, d) in descriptors {
            digest::check(&d.digest)
                .map_err(|e| Error::doc(what, format!("{field}.digest"), e.to_string()))?;
            if d.media_type.is_empty() {
                return Err(Error::doc(what, format!("{field}.mediaType"), "empty"));
            }
        }
        Ok(())
    }

    /// The media type to describe this document with.
    pub fn media_type(&self) -> &str {
        match self {
            Document::Manifest(m) => m.media_type.as_deref().unwrap_or(media::OCI_MANIFEST),
            Document::Index(i) => i.media_type.as_deref().unwrap_or(media::OCI_INDEX),
        }
    }
}

pub fn is_index_type(mt: &str) -> bool {
    matches!(mt, media::OCI_INDEX | media::DOCKER_MANIFEST_LIST)
}

pub fn is_manifest_type(mt: &str) -> bool {
    matches!(mt, media::OCI_MANIFEST | media::DOCKER_MANIFEST)
}

impl Manifest {
    /// Checks that this manifest describes a container image (not an artifact): a known
    /// config media type and layer media types wharf can unpack.
    pub fn check_image(&self, what: &str) -> Result<()> {
        if !matches!(
            self.config.media_type.as_str(),
            media::OCI_CONFIG | media::DOCKER_CONFIG
        ) {
            return Err(Error::Unsupported {
                what: format!("{what}: config.mediaType {:?}", self.config.media_type),
                why: "not a container image config (an artifact?)".into(),
            });
        }
        for (i, l) in self.layers.iter().enumerate() {
            layer_compression(&l.media_type)
                .map_err(|e| Error::doc(what, format!("layers[{i}].mediaType"), e.to_string()))?;
        }
        Ok(())
    }
}

/// Parses an image config; errors name the JSON path of the bad field.
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    parse_json(bytes, what)
}

/// The config's `rootfs.diff_ids`, parsed (sha256/sha384/sha512 only).
pub fn diff_ids(config: &ImageConfiguration, what: &str) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            digest::parse(s)
                .map_err(|e| Error::doc(what, format!("rootfs.diff_ids[{i}]"), e.to_string()))
        })
        .collect()
}

/// Chain IDs of a layer stack (the snapshot keys): `chain[0] = diff[0]`,
/// `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => digest::sha256(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::doc(
            what,
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
