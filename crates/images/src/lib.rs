//! wharf's image service (the "container repository" of the Windows platform).
//!
//! **Owns**: image references and their normalisation; digests; the content-addressed blob store
//! (atomic verified writes, leases, garbage collection); image records (name → manifest, in
//! redb); OCI and Docker schema 2 manifests, indexes and image configs, and platform selection;
//! layer unpack (tar, gzip, zstd, whiteouts) into per-layer snapshot directories; the
//! snapshotter that describes overlay mounts.
//!
//! **Does not own**: performing mounts for containers (the caller or `hcs` mounts the returned
//! [`snapshots::Mount`]s), networking to registries' hosts beyond the distribution API, the
//! Windows OS-version rules (`compat` plugs into [`platform::PlatformMatcher`]), or any wire
//! format of the Docker/CRI APIs (those live in `wharfd`).

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
