//! The Linux host side of HCN objects. `Host` holds sockets opened in the service's network
//! namespace and turns plans (what a network or endpoint needs) into links, addresses,
//! routes and nftables rules. It keeps no state of its own: the store is the truth, and every
//! `ensure_*` converges the kernel to it.

pub mod netns;
pub mod nft;
pub mod rtnl;

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::StepError;
use crate::plan::{EndpointPlan, NetworkPlan};
use crate::types::{AclAction, AclDirection, Ipv4Prefix, NetworkType};
use nft::{hook, Batch, Chain, Nft, Rule, FAMILY_IP};
use rtnl::Rtnl;

type Res<T> = Result<T, StepError>;

/// The one nftables table wharf owns (family `ip`).
pub const TABLE: &str = "wharf";

const CHAINS: [Chain<'static>; 4] = [
    Chain {
        name: "prerouting",
        hook: Some(("nat", hook::PREROUTING, -100)),
    },
    Chain {
        name: "output",
        hook: Some(("nat", hook::OUTPUT, -100)),
    },
    Chain {
        name: "postrouting",
        hook: Some(("nat", hook::POSTROUTING, 100)),
    },
    Chain {
        name: "forward",
        hook: Some(("filter", hook::FORWARD, 0)),
    },
];

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

    /// Bridge with the gateway address, forwarding on, `route_localnet` so published ports
    /// answer on 127.0.0.1. Transparent networks need nothing on the host.
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
        let idx = match self.rtnl.link_index(&n.bridge)? {
            Some(i) => i,
            None => self.rtnl.add_bridge(&n.bridge)?,
        };
        self.rtnl.add_address(idx, n.gateway.into(), n.subnet.len)?;
        netns::write_sysctl(self.netns(), "net/ipv4/ip_forward", "1")
            .map_err(|e| StepError::new("enable IPv4 forwarding", e))?;
        let key = format!("net/ipv4/conf/{}/route_localnet", n.bridge);
        netns::write_sysctl(self.netns(), &key, "1")
            .map_err(|e| StepError::new(format!("enable route_localnet on {}", n.bridge), e))?;
        Ok(())
    }

    pub fn remove_network(&mut self, n: &NetworkPlan) -> Res<()> {
        if n.network_type != NetworkType::Transparent {
            if let Some(i) = self.rtnl.link_index(&n.bridge)? {
                self.rtnl.del_link(i)?;
            }
        }
        self.remove_rules(&n.tag())
    }

    /// Whether the endpoint's container end is inside `ns`.
    pub fn link_present(&mut self, e: &EndpointPlan, ns: BorrowedFd<'_>) -> Res<bool> {
        let mut inner =
            Rtnl::open_in(ns).map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
        Ok(inner.link_index(&e.ifname)?.is_some())
    }

    /// Deletes what an endpoint may have left in the host namespace: a veth host end whose
    /// namespace is gone (or going), or a container end parked by an older layout.
    pub fn remove_stray_link(&mut self, n: &NetworkPlan, e: &EndpointPlan) -> Res<()> {
        if n.network_type != NetworkType::Transparent {
            self.rtnl.del_link_named(&e.host_if)?;
        }
        self.rtnl.del_link_named(&e.peer)
    }

    /// Creates the endpoint's link with its container end directly inside `ns` as `eth0`
    /// (a veth whose host end is on the bridge, or for `Transparent` a macvlan on the host
    /// adapter) and gives it its addresses and default route.
    pub fn attach(&mut self, n: &NetworkPlan, e: &EndpointPlan, ns: BorrowedFd<'_>) -> Res<()> {
        let parent = self.rtnl.link_index(&n.bridge)?.ok_or_else(|| {
            let what = if n.network_type == NetworkType::Transparent {
                "host adapter"
            } else {
                "bridge"
            };
            StepError::new(
                format!("find {what} {}", n.bridge),
                std::io::Error::from_raw_os_error(libc::ENODEV),
            )
        })?;
        if n.network_type == NetworkType::Transparent {
            self.rtnl.add_macvlan(&e.ifname, parent, e.mac, ns)?;
        } else {
            self.rtnl
                .add_veth(&e.host_if, parent, &e.ifname, e.mac, ns)?;
            self.rtnl.set_hairpin(&e.host_if)?;
        }
        let mut inner =
            Rtnl::open_in(ns).map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
        let i = inner.link_index(&e.ifname)?.ok_or_else(|| {
            StepError::new(
                format!("find {} in namespace", e.ifname),
                std::io::Error::from_raw_os_error(libc::ENODEV),
            )
        })?;
        inner.configure(i, &[(e.ip.into(), n.subnet.len)], &[n.gateway.into()])
    }

    /// Deletes the endpoint's link: the veth's host end (its container end goes with it) or
    /// the macvlan inside `ns`. A link that is already gone is fine.
    pub fn detach(
        &mut self,
        n: &NetworkPlan,
        e: &EndpointPlan,
        ns: Option<BorrowedFd<'_>>,
    ) -> Res<()> {
        if n.network_type != NetworkType::Transparent {
            return self.rtnl.del_link_named(&e.host_if);
        }
        if let Some(ns) = ns {
            let mut inner = Rtnl::open_in(ns)
                .map_err(|err| StepError::new("open rtnetlink in namespace", err))?;
            inner.del_link_named(&e.ifname)?;
        }
        Ok(())
    }

    /// Replaces our table with one built from all networks and endpoints, in one transaction.
    pub fn rebuild_rules(
        &mut self,
        nets: &[NetworkPlan],
        eps: &[(EndpointPlan, &NetworkPlan)],
    ) -> Res<()> {
        let mut b = Batch::new(FAMILY_IP, TABLE);
        b.destroy_table();
        b.add_table();
        for c in &CHAINS {
            b.add_chain(c);
        }
        let mut est = Rule::new();
        est.ct_state_established().accept();
        b.add_rule("forward", "base", &est, true);
        for n in nets {
            network_rules(&mut b, n);
        }
        for (e, n) in eps {
            endpoint_rules(&mut b, n, e);
        }
        self.nft.commit(&b).map_err(nft_err)
    }

    /// Adds the rules of one endpoint.
    pub fn add_endpoint_rules(&mut self, n: &NetworkPlan, e: &EndpointPlan) -> Res<()> {
        let mut b = Batch::new(FAMILY_IP, TABLE);
        endpoint_rules(&mut b, n, e);
        self.nft.commit(&b).map_err(nft_err)
    }

    pub fn add_network_rules(&mut self, n: &NetworkPlan) -> Res<()> {
        let mut b = Batch::new(FAMILY_IP, TABLE);
        network_rules(&mut b, n);
        self.nft.commit(&b).map_err(nft_err)
    }

    /// Deletes exactly the rules carrying `tag`, from every chain of our table (one dump of
    /// the table, one transaction).
    pub fn remove_rules(&mut self, tag: &str) -> Res<()> {
        let rules = self
            .nft
            .list_rules(FAMILY_IP, TABLE, None)
            .map_err(|e| StepError::new(format!("nftables: list table {TABLE}"), e))?;
        let mut b = Batch::new(FAMILY_IP, TABLE);
        for r in rules.iter().filter(|r| r.tag == tag) {
            b.del_rule(&r.chain, r.handle);
        }
        self.nft.commit(&b).map_err(nft_err)
    }

    /// Tags of the rules in one chain, in order (for tests and diagnostics).
    pub fn rule_tags(&mut self, chain: &str) -> Res<Vec<String>> {
        let rules = self
            .nft
            .list_rules(FAMILY_IP, TABLE, Some(chain))
            .map_err(|e| StepError::new(format!("nftables: list chain {chain}"), e))?;
        Ok(rules.into_iter().map(|r| r.tag).collect())
    }
}

const LOOPBACK: Ipv4Prefix = Ipv4Prefix {
    addr: Ipv4Addr::new(127, 0, 0, 0),
    len: 8,
};

fn network_rules(b: &mut Batch, n: &NetworkPlan) {
    let tag = n.tag();
    match n.network_type {
        NetworkType::Nat => {
            // Outbound: everything from the subnet leaving by another interface.
            let mut r = Rule::new();
            r.ip_saddr(n.subnet, true)
                .oifname(&n.bridge, false)
                .masquerade();
            b.add_rule("postrouting", &tag, &r, true);
            // Published ports reached via 127.0.0.1 (route_localnet) and hairpin: the reply
            // must come back through the host to be un-NATed.
            let mut r = Rule::new();
            r.oifname(&n.bridge, true)
                .ip_saddr(LOOPBACK, true)
                .masquerade();
            b.add_rule("postrouting", &tag, &r, true);
            let mut r = Rule::new();
            r.oifname(&n.bridge, true)
                .ip_saddr(n.subnet, true)
                .ct_status_dnat()
                .masquerade();
            b.add_rule("postrouting", &tag, &r, true);
        }
        NetworkType::Private => {
            // No route out: nothing is forwarded between the bridge and anything else.
            let mut r = Rule::new();
            r.iifname(&n.bridge, true).oifname(&n.bridge, false).drop_();
            b.add_rule("forward", &tag, &r, true);
            let mut r = Rule::new();
            r.oifname(&n.bridge, true).iifname(&n.bridge, false).drop_();
            b.add_rule("forward", &tag, &r, true);
        }
        _ => {}
    }
}

fn endpoint_rules(b: &mut Batch, n: &NetworkPlan, e: &EndpointPlan) {
    let tag = e.tag();
    let me = Ipv4Prefix {
        addr: e.ip,
        len: 32,
    };
    if n.network_type == NetworkType::Nat {
        for p in &e.ports {
            for chain in ["prerouting", "output"] {
                let mut r = Rule::new();
                r.fib_daddr_local();
                if let Some(vip) = p.vip {
                    r.ip_daddr(Ipv4Prefix { addr: vip, len: 32 }, true);
                }
                r.l4proto(p.protocol)
                    .th_dport(p.external)
                    .dnat(e.ip, p.internal);
                b.add_rule(chain, &tag, &r, true);
            }
        }
        // Inserted first so they precede the network's masquerade.
        for exc in &e.nat_exceptions {
            let mut r = Rule::new();
            r.ip_saddr(me, true).ip_daddr(*exc, true).accept();
            b.add_rule("postrouting", &tag, &r, false);
        }
    }
    // ACLs, lowest priority number first: insert at the head in reverse order.
    let mut acls = e.acls.clone();
    acls.sort_by_key(|a| std::cmp::Reverse(a.priority));
    for a in &acls {
        for remote in a
            .remote
            .iter()
            .map(Some)
            .chain(a.remote.is_empty().then_some(None))
        {
            for lport in a
                .local_ports
                .iter()
                .map(Some)
                .chain(a.local_ports.is_empty().then_some(None))
            {
                for rport in a
                    .remote_ports
                    .iter()
                    .map(Some)
                    .chain(a.remote_ports.is_empty().then_some(None))
                {
                    let mut r = Rule::new();
                    let inbound = a.direction == AclDirection::In;
                    if inbound {
                        r.ip_daddr(me, true);
                    } else {
                        r.ip_saddr(me, true);
                    }
                    if let Some(p) = remote {
                        if inbound {
                            r.ip_saddr(*p, true);
                        } else {
                            r.ip_daddr(*p, true);
                        }
                    }
                    if let Some(proto) = a.protocol {
                        r.l4proto(proto);
                        let (local, rem) = (lport.copied(), rport.copied());
                        match (inbound, local, rem) {
                            (true, l, rm) => {
                                if let Some(l) = l {
                                    r.th_dport(l);
                                }
                                if let Some(rm) = rm {
                                    r.th_sport(rm);
                                }
                            }
                            (false, l, rm) => {
                                if let Some(l) = l {
                                    r.th_sport(l);
                                }
                                if let Some(rm) = rm {
                                    r.th_dport(rm);
                                }
                            }
                        }
                    }
                    match a.action {
                        AclAction::Block => r.drop_(),
                        AclAction::Allow | AclAction::Pass => r.accept(),
                    };
                    b.add_rule("forward", &tag, &r, false);
                }
            }
        }
    }
}
