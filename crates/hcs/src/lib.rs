//! `hcs` — wharf's Host Compute Service.
//!
//! **Owns:** compute systems created from HCS schema v2 documents ([`schema`]), their lifecycle
//! (create / start / pause / resume / shutdown / terminate / properties / modify / processes:
//! [`ComputeSystem`], [`Process`]),
//! and the *process isolation* backend that turns the OCI runtime spec carried in a document into
//! a container on this kernel: namespaces, root filesystem, devices, cgroups v1/v2 ([`cgroups`]),
//! seccomp ([`seccomp`]), capabilities, rlimits, hooks and terminals ([`process`]).
//!
//! **Does not own:** images or layer stores (it consumes a root filesystem *path*), networking
//! (it joins a network namespace by path that `hns` prepared; it only moves a host interface in
//! when the spec's `linux.netDevices` asks), the CLI (`runhcs`), or anything
//! daemon-shaped. No async runtime, no threads: the container init path forks this process and
//! must stay single-threaded.

pub mod cgroups;
mod error;
pub mod process;
pub mod schema;
pub mod seccomp;
pub mod shim;
mod system;

pub use error::{Error, ErrorKind, Result};
pub use system::{ComputeSystem, CreateOptions, Process, SystemState};
