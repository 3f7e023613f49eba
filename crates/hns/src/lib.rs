//! `hns` — wharf's network service, shaped after Windows HNS/HCN.
//!
//! **Owns**: HCN-shaped networks (`NAT`, `Private`, `Transparent`), endpoints (address, MAC,
//! gateway, DNS, `PortMapping` / `OutBoundNAT` / `ACL` policies) and namespaces; their
//! persistent state and IPAM (redb); the Linux host side of them: bridges, veth pairs,
//! addresses and routes over rtnetlink, network namespaces pinned by bind mounts, and one
//! nftables table per address family named `wharf` spoken to over nf_tables netlink.
//!
//! **Does not own**: containers (a container or pod joins a namespace by its path; `hcs` does
//! that), DNS serving (it only renders an endpoint's resolv.conf, see [`dns`], for the daemon
//! to bind-mount), the host's own firewall (tables other than `wharf` are never read, flushed
//! or changed), or wire formats of the daemon's APIs.

pub mod dns;
pub mod error;
pub mod linux;
pub mod plan;
pub mod service;
pub mod store;
pub mod types;

pub use error::{Error, ErrorKind, Result};
pub use service::{Config, NetworkService};
pub use types::*;
