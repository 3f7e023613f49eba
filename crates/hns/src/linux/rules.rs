//! What wharf's nftables tables hold: one table named `wharf` per address family (`ip`,
//! `ip6`), its chains, and the rules of each network and endpoint, each tagged with its
//! owner (`net:<id>`, `ep:<id>`) so removal is exact. Pure: it only fills a [`Batch`].
//!
//! Chains: `prerouting` / `output` (nat: published ports), `postrouting` (nat: masquerade,
//! NAT exceptions), and the filter chains where ACLs go: `forward` (routed traffic of
//! containers), `filter_input` (container → this host) and `filter_output` (this host →
//! container).

use std::net::{IpAddr, Ipv4Addr};

use super::nft::{hook, Batch, Chain, Rule, FAMILY_IP, FAMILY_IP6};
use crate::plan::{AclPlan, EndpointPlan, NetworkPlan, BRIDGE_PREFIX};
use crate::types::{AclAction, AclDirection, IpPrefix, Ipv4Prefix, NetworkType};

/// The name of the table wharf owns in each family.
pub const TABLE: &str = "wharf";

pub const FAMILIES: [u8; 2] = [FAMILY_IP, FAMILY_IP6];

const CHAINS: [Chain<'static>; 7] = [
    // Networks' separation, before `forward` (and its ACLs): what is dropped here no ACL
    // can let through.
    Chain {
        name: "isolation",
        hook: Some(("filter", hook::FORWARD, -10)),
    },
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
    Chain {
        name: "filter_input",
        hook: Some(("filter", hook::INPUT, 0)),
    },
    Chain {
        name: "filter_output",
        hook: Some(("filter", hook::OUTPUT, 0)),
    },
];

const LOOPBACK: Ipv4Prefix = Ipv4Prefix {
    addr: Ipv4Addr::new(127, 0, 0, 0),
    len: 8,
};

fn family_of(a: IpAddr) -> u8 {
    if a.is_ipv6() {
        FAMILY_IP6
    } else {
        FAMILY_IP
    }
}

/// Drops and re-creates both tables with their chains and the base rules.
pub fn skeleton(b: &mut Batch) {
    for f in FAMILIES {
        b.destroy_table(f);
        b.add_table(f);
        for c in &CHAINS {
            b.add_chain(f, c);
        }
        let mut est = Rule::new();
        est.ct_state_established().accept();
        b.add_rule(f, "forward", "base", &est, true);
    }
}

/// The rules of a network.
pub fn network(b: &mut Batch, n: &NetworkPlan) {
    let tag = n.tag();
    match n.network_type {
        NetworkType::Nat => {
            let mut subnets = vec![(FAMILY_IP, IpPrefix::V4(n.subnet))];
            if let Some(v6) = &n.v6 {
                subnets.push((FAMILY_IP6, IpPrefix::V6(v6.subnet)));
            }
            for (f, subnet) in subnets {
                // Outbound: everything from the subnet leaving by another interface.
                let mut r = Rule::new();
                r.ip_saddr(subnet, true)
                    .oifname(&n.bridge, false)
                    .masquerade();
                b.add_rule(f, "postrouting", &tag, &r, true);
                if f == FAMILY_IP {
                    // Published ports reached via 127.0.0.1 (route_localnet): the reply must
                    // come back through the host to be un-NATed.
                    let mut r = Rule::new();
                    r.oifname(&n.bridge, true)
                        .ip_saddr(LOOPBACK, true)
                        .masquerade();
                    b.add_rule(f, "postrouting", &tag, &r, true);
                }
                // Networks are isolated from each other, as Docker's are: nothing is
                // forwarded from this bridge to another of ours unless a published port
                // was the destination.
                let mut r = Rule::new();
                r.iifname(&n.bridge, true)
                    .oifname_prefix(BRIDGE_PREFIX)
                    .oifname(&n.bridge, false)
                    .ct_status_not_dnat()
                    .drop_();
                b.add_rule(f, "isolation", &tag, &r, true);
                // Hairpin: a container reaching a published port of the same network.
                let mut r = Rule::new();
                r.oifname(&n.bridge, true)
                    .ip_saddr(subnet, true)
                    .ct_status_dnat()
                    .masquerade();
                b.add_rule(f, "postrouting", &tag, &r, true);
            }
        }
        NetworkType::Private => {
            // No route out, in either family: nothing is forwarded between the bridge and
            // anything else.
            for f in FAMILIES {
                let mut r = Rule::new();
                r.iifname(&n.bridge, true).oifname(&n.bridge, false).drop_();
                b.add_rule(f, "isolation", &tag, &r, true);
                let mut r = Rule::new();
                r.oifname(&n.bridge, true).iifname(&n.bridge, false).drop_();
                b.add_rule(f, "isolation", &tag, &r, true);
            }
        }
        _ => {}
    }
}

/// The rules of an endpoint: port mappings and NAT exceptions (`NAT` networks) and ACLs.
pub fn endpoint(b: &mut Batch, n: &NetworkPlan, e: &EndpointPlan) {
    let tag = e.tag();
    let mut mine: Vec<IpAddr> = vec![e.ip.into()];
    mine.extend(e.ip6.map(IpAddr::from));
    if n.network_type == NetworkType::Nat {
        for &me in &mine {
            let f = family_of(me);
            for p in &e.ports {
                if p.vip.is_some_and(|v| family_of(v) != f) {
                    continue;
                }
                for chain in ["prerouting", "output"] {
                    let mut r = Rule::new();
                    r.fib_daddr_local();
                    if let Some(vip) = p.vip {
                        r.ip_daddr(IpPrefix::host(vip), true);
                    }
                    r.l4proto(p.protocol)
                        .th_dport(p.external)
                        .dnat(me, p.internal);
                    b.add_rule(f, chain, &tag, &r, true);
                }
            }
            // Inserted first so they precede the network's masquerade.
            for exc in e
                .nat_exceptions
                .iter()
                .filter(|x| x.is_ipv6() == me.is_ipv6())
            {
                let mut r = Rule::new();
                r.ip_saddr(IpPrefix::host(me), true)
                    .ip_daddr(*exc, true)
                    .accept();
                b.add_rule(f, "postrouting", &tag, &r, false);
            }
        }
    }
    // ACLs, lowest priority number first: insert at the head in reverse order.
    let mut acls = e.acls.clone();
    acls.sort_by_key(|a| std::cmp::Reverse(a.priority));
    for a in &acls {
        for &me in &mine {
            let host_chain = if a.direction == AclDirection::In {
                "filter_output"
            } else {
                "filter_input"
            };
            acl_rules(b, &tag, a, me, &["forward", host_chain]);
        }
    }
}

/// The chains of wharf's tables inside an endpoint's namespace.
const NS_CHAINS: [Chain<'static>; 2] = [
    Chain {
        name: "input",
        hook: Some(("filter", hook::INPUT, 0)),
    },
    Chain {
        name: "output",
        hook: Some(("filter", hook::OUTPUT, 0)),
    },
];

/// An endpoint's ACLs inside its own namespace (tables and chains created if missing):
/// traffic to neighbours on the network's switch passes no hook of the host, so they are
/// applied where the endpoint's traffic enters and leaves its stack.
pub fn endpoint_acls_in_namespace(b: &mut Batch, e: &EndpointPlan) {
    for f in FAMILIES {
        b.add_table(f);
        for c in &NS_CHAINS {
            b.add_chain(f, c);
        }
    }
    let mut mine: Vec<IpAddr> = vec![e.ip.into()];
    mine.extend(e.ip6.map(IpAddr::V6));
    let mut acls = e.acls.clone();
    acls.sort_by_key(|a| std::cmp::Reverse(a.priority));
    for a in &acls {
        let chain = if a.direction == AclDirection::In {
            "input"
        } else {
            "output"
        };
        for &me in &mine {
            acl_rules(b, &e.tag(), a, me, &[chain]);
        }
    }
}

/// One ACL for one of the endpoint's addresses, inserted at the head of each of `chains`.
/// On the host: `forward` (routed traffic) and the hook where traffic between the endpoint
/// and this host passes (`filter_output` for inbound, `filter_input` for outbound).
fn acl_rules(b: &mut Batch, tag: &str, a: &AclPlan, me: IpAddr, chains: &[&str]) {
    let remotes: Vec<Option<IpPrefix>> = if a.remote.is_empty() {
        vec![None]
    } else {
        let same: Vec<_> = a
            .remote
            .iter()
            .filter(|p| p.is_ipv6() == me.is_ipv6())
            .map(|p| Some(*p))
            .collect();
        if same.is_empty() {
            // Names remotes of the other family only.
            return;
        }
        same
    };
    let opt = |v: &[u16]| -> Vec<Option<u16>> {
        if v.is_empty() {
            vec![None]
        } else {
            v.iter().copied().map(Some).collect()
        }
    };
    let inbound = a.direction == AclDirection::In;
    for remote in &remotes {
        for lport in opt(&a.local_ports) {
            for rport in opt(&a.remote_ports) {
                let mut r = Rule::new();
                let me = IpPrefix::host(me);
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
                    // Local is the endpoint's side: destination port inbound, source
                    // port outbound.
                    let (dport, sport) = if inbound {
                        (lport, rport)
                    } else {
                        (rport, lport)
                    };
                    if let Some(p) = dport {
                        r.th_dport(p);
                    }
                    if let Some(p) = sport {
                        r.th_sport(p);
                    }
                }
                match a.action {
                    AclAction::Block => r.drop_(),
                    AclAction::Allow | AclAction::Pass => r.accept(),
                };
                let f = family_of(match me {
                    IpPrefix::V4(p) => IpAddr::V4(p.addr),
                    IpPrefix::V6(p) => IpAddr::V6(p.addr),
                });
                for chain in chains {
                    b.add_rule(f, chain, tag, &r, false);
                }
            }
        }
    }
}
