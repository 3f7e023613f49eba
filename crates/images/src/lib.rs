//! wharf's image service (the "container repository" of the Windows platform).
//!
//! **Owns**: image references and their normalisation; digests; the content-addressed blob store
//! (atomic verified writes, leases, garbage collection); image records (name → manifest, in
//! redb); OCI and Docker schema 2 manifests, indexes and image configs, and platform selection;
//! layer unpack (tar, gzip, zstd, whiteouts) into per-layer snapshot directories; the
//! snapshotter that describes overlay mounts; commit of a container's upper directory into a
//! new layer and image ([`diff`], [`commit`]); docker-archive and OCI-layout tarballs
//! ([`archive`]); registry pull and push ([`registry`]); progress events for all long
//! operations ([`progress`]); and the [`Service`] that composes store, leases and records.
//!
//! **Does not own**: performing mounts for containers (the caller or `hcs` mounts the returned
//! [`snapshots::Mount`]s), networking to registries' hosts beyond the distribution API, the
//! Windows OS-version rules (`compat` plugs into [`platform::PlatformMatcher`]), credentials
//! storage (callers pass [`registry::Auth`]), drawing progress (the CLI does), or any wire
//! format of the Docker/CRI APIs (those live in `wharfd`).
//!
//! Pull and push are `async` (tokio, via `oci-client`); everything else is blocking.

pub mod archive;
pub mod commit;
pub mod content;
pub mod diff;
pub mod digest;
pub mod error;
pub mod image_store;
pub mod leases;
pub mod manifest;
pub mod meta;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod service;
pub mod snapshots;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use reference::Reference;
pub use service::Service;
