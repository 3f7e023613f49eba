//! `hns` — wharf's network service, shaped after Windows HNS/HCN.
//!
//! **Owns**: HCN-shaped networks (`NAT`, `Private`, `Transparent`), endpoints (address, MAC,
//! gateway, DNS, `PortMapping` / `OutBoundNAT` / `ACL` policies) and namespaces; their
//! persistent state and IPAM (redb); the Linux side of them over rtnetlink: per network a
//! port-less bridge as the switch with the host's macvlan (`wh-<id>`) holding the gateway,
//! per endpoint a macvlan created directly in its namespace (several per namespace, `ethN`),
//! addresses and routes, network namespaces pinned by bind mounts; and one nftables table
//! per address family named `wharf` over nf_tables netlink, on the host and, for endpoint
//! ACLs between neighbours, inside the endpoint's namespace.
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
