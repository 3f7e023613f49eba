//! The Linux host side of HCN objects. `Host` holds sockets opened in the service's network
//! namespace and turns plans (what a network or endpoint needs) into links, addresses,
//! routes and nftables rules. It keeps no state of its own: the store is the truth, and every
//! `ensure_*` converges the kernel to it.

pub mod netns;
pub mod nft;
pub mod rtnl;
pub mod rules;

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::StepError;
use crate::plan::{derived_mac, legacy_bridge_name, EndpointPlan, NetworkPlan};
use crate::types::NetworkType;
use nft::{Batch, Nft};
use rtnl::Rtnl;
pub use rules::TABLE;

type Res<T> = Result<T, StepError>;

pub struct Host {
    ns: OwnedFd,
    rtnl: Rtnl,
    nft: Nft,
}

fn nft_err((step, e): (String, std::io::Error)) -> StepError {
    StepError::new(format!("nftables: {step}"), e)
}

impl Host {
    /// Binds to the calling thread's network namespace.
    pub fn open() -> Res<Host> {
        let ns = netns::current().map_err(|e| StepError::new("open own network namespace", e))?;
        let rtnl = Rtnl::open().map_err(|e| StepError::new("open rtnetlink socket", e))?;
        let nft = Nft::open().map_err(|e| StepError::new("open nf_tables socket", e))?;
        Ok(Host { ns, rtnl, nft })
    }

    pub fn netns(&self) -> BorrowedFd<'_> {
        self.ns.as_fd()
    }

    /// The network's switch and the host's macvlan on it with the gateway address(es),
    /// forwarding on, `route_localnet` so published ports answer on 127.0.0.1. Transparent
    /// networks need nothing on the host.
    pub fn ensure_network(&mut self, n: &NetworkPlan) -> Res<()> {
        if n.network_type == NetworkType::Transparent {
            return match self.rtnl.link_index(&n.bridge)? {
                Some(_) => Ok(()),
                None => Err(StepError::new(
                    format!("find host adapter {}", n.bridge),
                    std::io::Error::from_raw_os_error(libc::ENODEV),
                )),
            };
        }
        // Older layouts named the host's interface `wh<id>` (a bridge with a veth per
        // endpoint, later a macvlan): it goes, and its endpoints are re-created.
        if let Some(old) = legacy_bridge_name(n) {
            self.rtnl.del_link_named(&old)?;
        }
        let lower = match self.rtnl.link_index(&n.lower)? {
            Some(i) => i,
            None => self.rtnl.add_bridge(&n.lower)?,
        };
        let idx = match self.rtnl.link_index(&n.bridge)? {
            Some(i) => i,
            None => {
                let own = netns::current()
                    .map_err(|e| StepError::new("open own network namespace", e))?;
                self.rtnl
                    .add_macvlan(&n.bridge, lower, derived_mac(n.gateway), own.as_fd())?;
                self.rtnl.link_index(&n.bridge)?.ok_or_else(|| {
                    StepError::new(
                        format!("create macvlan {}", n.bridge),
                        std::io::Error::from_raw_os_error(libc::ENODEV),
                    )
                })?
            }
        };
        // Before the addresses: the IPv6 gateway is added without duplicate detection.
        self.rtnl.add_address(idx, n.gateway.into(), n.subnet.len)?;
        netns::write_sysctl(self.netns(), "net/ipv4/ip_forward", "1")
            .map_err(|e| StepError::new("enable IPv4 forwarding", e))?;
        if let Some(v6) = &n.v6 {
            self.rtnl
                .add_address(idx, v6.gateway.into(), v6.subnet.len)?;
            netns::write_sysctl(self.netns(), "net/ipv6/conf/all/forwarding", "1")
                .map_err(|e| StepError::new("enable IPv6 forwarding", e))?;
        }
        let key = format!("net/ipv4/conf/{}/route_localnet", n.bridge);
        netns::write_sysctl(self.netns(), &key, "1")
            .map_err(|e| StepError::new(format!("enable route_localnet on {}", n.bridge), e))?;
        Ok(())
    }

    pub fn remove_network(&mut self, n: &NetworkPlan) -> Res<()> {
        if n.network_type != NetworkType::Transparent {
            self.rtnl.del_link_named(&n.bridge)?;
            self.rtnl.del_link_named(&n.lower)?;
        }
        self.remove_rules(&n.tag())
    }

    /// Whether the endpoint's container end is inside `ns`.
    pub fn link_present(&mut self, e: &EndpointPlan, ns: BorrowedFd<'_>) -> Res<bool> {
        let mut inner =
            Rtnl::open_in(ns).map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
        Ok(inner.link_index(&e.ifname)?.is_some())
    }

    /// Whether the endpoint still has a veth of the older layout on the host.
    pub fn old_layout_link(&mut self, n: &NetworkPlan, e: &EndpointPlan) -> Res<bool> {
        Ok(n.network_type != NetworkType::Transparent
            && self.rtnl.link_index(&e.host_if)?.is_some())
    }

    /// Deletes what an endpoint may have left in the host namespace: links of an older
    /// layout (a veth's host end, a parked container end).
    pub fn remove_stray_link(&mut self, n: &NetworkPlan, e: &EndpointPlan) -> Res<()> {
        if n.network_type != NetworkType::Transparent {
            self.rtnl.del_link_named(&e.host_if)?;
        }
        self.rtnl.del_link_named(&e.peer)
    }

    /// Creates the endpoint's link directly inside `ns` with its interface name: a macvlan
    /// in bridge mode on the network's switch (on the host adapter for `Transparent`). It
    /// gets its addresses and default route, and the endpoint's ACLs are set in `ns` too,
    /// where traffic to its neighbours on the switch passes.
    pub fn attach(&mut self, n: &NetworkPlan, e: &EndpointPlan, ns: BorrowedFd<'_>) -> Res<()> {
        let (parent_name, what) = if n.network_type == NetworkType::Transparent {
            (&n.bridge, "host adapter")
        } else {
            (&n.lower, "network switch")
        };
        let parent = self.rtnl.link_index(parent_name)?.ok_or_else(|| {
            StepError::new(
                format!("find {what} {parent_name}"),
                std::io::Error::from_raw_os_error(libc::ENODEV),
            )
        })?;
        self.rtnl.add_macvlan(&e.ifname, parent, e.mac, ns)?;
        // From here a failure takes the new link away again (and only it: a name that was
        // taken already failed above).
        let r = configure_in(n, e, ns);
        if r.is_err() {
            if let Ok(mut inner) = Rtnl::open_in(ns) {
                drop(inner.del_link_named(&e.ifname));
            }
        }
        r
    }

    /// Deletes the endpoint's link inside `ns` and its ACLs there. Without `ns` (the
    /// namespace is gone) the link went with it.
    pub fn detach(&mut self, e: &EndpointPlan, ns: Option<BorrowedFd<'_>>) -> Res<()> {
        let Some(ns) = ns else {
            return Ok(());
        };
        let mut inner =
            Rtnl::open_in(ns).map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
        // Found by its address first: the namespace's owner may have renamed it.
        match inner.link_index_by_mac(e.mac)? {
            Some(i) => inner.del_link(i)?,
            None => inner.del_link_named(&e.ifname)?,
        }
        if !e.acls.is_empty() {
            let mut nft = netns::in_netns(ns, Nft::open)
                .and_then(|r| r)
                .map_err(|err| StepError::new("open nf_tables socket in namespace", err))?;
            remove_tagged(&mut nft, &e.tag())?;
        }
        Ok(())
    }

    /// Gives `ns` a default route through endpoint `e` where it has none (after the
    /// endpoint that held it was detached).
    pub fn ensure_default_route(
        &mut self,
        n: &NetworkPlan,
        e: &EndpointPlan,
        ns: BorrowedFd<'_>,
    ) -> Res<()> {
        let mut inner =
            Rtnl::open_in(ns).map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
        let gw = gateways(n, e);
        let Some(i) = inner.link_index(&e.ifname)?.filter(|_| !gw.is_empty()) else {
            return Ok(());
        };
        inner.add_default_routes(i, &gw)
    }

    /// Replaces our tables with ones built from all networks and endpoints, in one
    /// transaction.
    pub fn rebuild_rules(
        &mut self,
        nets: &[NetworkPlan],
        eps: &[(EndpointPlan, &NetworkPlan)],
    ) -> Res<()> {
        let mut b = Batch::new(TABLE);
        rules::skeleton(&mut b);
        for n in nets {
            rules::network(&mut b, n);
        }
        for (e, n) in eps {
            rules::endpoint(&mut b, n, e);
        }
        self.nft.commit(&b).map_err(nft_err)
    }

    /// Adds the rules of one endpoint.
    pub fn add_endpoint_rules(&mut self, n: &NetworkPlan, e: &EndpointPlan) -> Res<()> {
        let mut b = Batch::new(TABLE);
        rules::endpoint(&mut b, n, e);
        self.nft.commit(&b).map_err(nft_err)
    }

    pub fn add_network_rules(&mut self, n: &NetworkPlan) -> Res<()> {
        let mut b = Batch::new(TABLE);
        rules::network(&mut b, n);
        self.nft.commit(&b).map_err(nft_err)
    }

    /// Deletes exactly the rules carrying `tag`, from every chain of our tables (one dump
    /// per table, one transaction).
    pub fn remove_rules(&mut self, tag: &str) -> Res<()> {
        remove_tagged(&mut self.nft, tag)
    }

    /// Tags of the rules in one chain, in order, of the `ip` table then the `ip6` one (for
    /// tests and diagnostics).
    pub fn rule_tags(&mut self, chain: &str) -> Res<Vec<String>> {
        let mut tags = Vec::new();
        for family in rules::FAMILIES {
            let listed = self
                .nft
                .list_rules(family, TABLE, Some(chain))
                .map_err(|e| StepError::new(format!("nftables: list chain {chain}"), e))?;
            tags.extend(listed.into_iter().map(|r| r.tag));
        }
        Ok(tags)
    }
}

/// The default gateways an endpoint's namespace gets through it: the network's IPv4 one,
/// and the IPv6 one on a dual-stack network.
fn gateways(n: &NetworkPlan, e: &EndpointPlan) -> Vec<IpAddr> {
    // A Private network leads nowhere: its endpoints get no default route through it, so
    // one on another network as well keeps its way out.
    if n.network_type == NetworkType::Private {
        return Vec::new();
    }
    let mut g: Vec<IpAddr> = vec![n.gateway.into()];
    if let (Some(_), Some(v6)) = (e.ip6, &n.v6) {
        g.push(v6.gateway.into());
    }
    g
}

/// Deletes the rules carrying `tag` from our tables on the socket `nft` (one dump per
/// table, one transaction). Tables that are not there hold none.
fn remove_tagged(nft: &mut Nft, tag: &str) -> Res<()> {
    let mut b = Batch::new(TABLE);
    for family in rules::FAMILIES {
        let listed = match nft.list_rules(family, TABLE, None) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(StepError::new(format!("nftables: list table {TABLE}"), e)),
        };
        for r in listed.iter().filter(|r| r.tag == tag) {
            b.del_rule(family, &r.chain, r.handle);
        }
    }
    nft.commit(&b).map_err(nft_err)
}

/// Brings the endpoint's new link in `ns` up with its addresses and default route, and sets
/// the endpoint's ACLs there.
fn configure_in(n: &NetworkPlan, e: &EndpointPlan, ns: BorrowedFd<'_>) -> Res<()> {
    let mut inner =
        Rtnl::open_in(ns).map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
    let i = inner.link_index(&e.ifname)?.ok_or_else(|| {
        StepError::new(
            format!("find {} in namespace", e.ifname),
            std::io::Error::from_raw_os_error(libc::ENODEV),
        )
    })?;
    let mut addrs: Vec<(IpAddr, u8)> = vec![(e.ip.into(), n.subnet.len)];
    if let (Some(ip6), Some(v6)) = (e.ip6, &n.v6) {
        addrs.push((ip6.into(), v6.subnet.len));
    }
    inner.configure(i, &addrs, &gateways(n, e))?;
    if !e.acls.is_empty() {
        let mut b = Batch::new(TABLE);
        rules::endpoint_acls_in_namespace(&mut b, e);
        let mut nft = netns::in_netns(ns, Nft::open)
            .and_then(|r| r)
            .map_err(|err| StepError::new("open nf_tables socket in namespace", err))?;
        nft.commit(&b).map_err(nft_err)?;
    }
    Ok(())
}
