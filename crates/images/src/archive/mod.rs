//! Image archives: `save` writes images from the store as one tarball, `load` reads one back.
//!
//! Two formats, several images per archive:
//!
//! - **docker-archive** (what `docker save` / `skopeo copy docker-archive:` write):
//!   `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`), `repositories`, the config as
//!   `<hex>.json` and every layer *uncompressed* as `<diff_id hex>.tar`. Saving decompresses
//!   layers (checking each against its `diff_id`); loading keeps them as uncompressed OCI layers
//!   and builds an OCI manifest around the original config bytes, so the image id is unchanged.
//! - **OCI image layout** in a tar (`oci-archive:`): `oci-layout`, `index.json` with one
//!   descriptor per image (annotated `io.containerd.image.name` and
//!   `org.opencontainers.image.ref.name` with the full name), `blobs/<alg>/<hex>`; blobs are
//!   copied byte for byte, so every digest is preserved.
//!
//! [`load`] detects the format (an `index.json` makes it an OCI layout), ingests every blob
//! through the content store's verified writer under a lease while the tar streams by (an OCI
//! blob must hash to its file name; a docker-archive layer must hash to its config's `diff_id`,
//! after decompression if it is compressed; a config named `<hex>.json` must hash to `hex`),
//! checks every descriptor's size, and records the images. Images without a name are recorded
//! as `localhost/wharf-import@<manifest digest>`.

mod load;
mod save;

pub use load::{load, Loaded};
pub use save::save;

use crate::reference::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The repository unnamed loaded images are recorded under (with their manifest digest).
pub const UNNAMED: &str = "localhost/wharf-import";

/// One `manifest.json` entry of a docker-archive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// `name` as docker writes it in `RepoTags` (`busybox:latest`, `localhost/app:1`).
pub(crate) fn repo_tag(name: &Reference) -> String {
    name.familiar()
}
