//! Validated, Linux-ready views of HCN documents: what the host side of a network or endpoint
//! must look like. Pure functions; the names of links derive from object ids so that a
//! restarted service finds them again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::{
    AclAction, AclDirection, EndpointPolicy, HostComputeEndpoint, HostComputeNetwork, IpPrefix,
    Ipv4Prefix, Ipv6Prefix, NetworkPolicy, NetworkType, Subnet,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V6Net {
    pub subnet: Ipv6Prefix,
    pub gateway: Ipv6Addr,
}

#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub id: String,
    pub network_type: NetworkType,
    pub subnet: Ipv4Prefix,
    pub gateway: Ipv4Addr,
    /// The IPv6 side of a dual-stack network.
    pub v6: Option<V6Net>,
    /// The host's interface on the network: for `NAT` and `Private` a macvlan on `lower`
    /// holding the gateway addresses (every rule of the network names it), for
    /// `Transparent` the host adapter.
    pub bridge: String,
    /// The switch of a `NAT` or `Private` network: a bridge with no ports that only carries
    /// the macvlans of the host and the endpoints (bridge mode, so they reach each other
    /// directly, without the host's IP or bridge netfilter hooks on the way).
    pub lower: String,
}

impl NetworkPlan {
    pub fn tag(&self) -> String {
        format!("net:{}", self.id)
    }

    /// Checks a network document. Errors are (field, reason).
    pub fn from_hcn(n: &HostComputeNetwork) -> Result<NetworkPlan, (&'static str, String)> {
        let network_type = n.network_type.ok_or(("Type", "missing".to_string()))?;
        if !matches!(
            network_type,
            NetworkType::Nat | NetworkType::Private | NetworkType::Transparent
        ) {
            return Err(("Type", format!("{network_type} is not supported on Linux")));
        }
        let subnets: Vec<&Subnet> = n.ipams.iter().flat_map(|i| i.subnets.iter()).collect();
        let field = "Ipams.Subnets.IpAddressPrefix";
        for sn in &subnets {
            if IpPrefix::parse(&sn.ip_address_prefix).is_none() {
                return Err((field, format!("{:?} is not a prefix", sn.ip_address_prefix)));
            }
        }
        let (subnet, prefix) = subnets
            .iter()
            .find_map(|sn| Ipv4Prefix::parse(&sn.ip_address_prefix).map(|p| (sn, p)))
            .ok_or(("Ipams", "an IPv4 subnet is required".to_string()))?;
        if prefix.len > 30 {
            return Err((field, format!("{prefix} is too small")));
        }
        let prefix = Ipv4Prefix {
            addr: prefix.network(),
            len: prefix.len,
        };
        let gateway = match default_next_hop(subnet, "0.0.0.0/0") {
            Some(h) => h.parse().map_err(|_| {
                (
                    "Ipams.Subnets.Routes.NextHop",
                    format!("{h:?} is not an IPv4 address"),
                )
            })?,
            None => Ipv4Addr::from(u32::from(prefix.network()) + 1),
        };
        if !prefix.contains(gateway) || gateway == prefix.network() || gateway == prefix.broadcast()
        {
            return Err((
                "Ipams.Subnets.Routes.NextHop",
                format!("gateway {gateway} is not a host address of {prefix}"),
            ));
        }
        let v6 = match subnets
            .iter()
            .find_map(|sn| Ipv6Prefix::parse(&sn.ip_address_prefix).map(|p| (sn, p)))
        {
            None => None,
            Some((sn, p)) => {
                if !(48..=120).contains(&p.len) {
                    return Err((
                        field,
                        format!("{p}: IPv6 prefixes from /48 to /120 are supported"),
                    ));
                }
                let p = Ipv6Prefix {
                    addr: p.network(),
                    len: p.len,
                };
                let gateway = match default_next_hop(sn, "::/0") {
                    Some(h) => h.parse().map_err(|_| {
                        (
                            "Ipams.Subnets.Routes.NextHop",
                            format!("{h:?} is not an IPv6 address"),
                        )
                    })?,
                    None => Ipv6Addr::from(u128::from(p.network()) + 1),
                };
                if !p.contains(gateway) || gateway == p.network() {
                    return Err((
                        "Ipams.Subnets.Routes.NextHop",
                        format!("gateway {gateway} is not a host address of {p}"),
                    ));
                }
                Some(V6Net { subnet: p, gateway })
            }
        };
        let bridge = if network_type == NetworkType::Transparent {
            n.policies
                .iter()
                .map(|p| match p {
                    NetworkPolicy::NetAdapterName {
                        network_adapter_name,
                    } => network_adapter_name.clone(),
                })
                .next()
                .ok_or((
                    "Policies",
                    "a Transparent network needs a NetAdapterName policy".to_string(),
                ))?
        } else {
            format!("{BRIDGE_PREFIX}{}", short(&n.id))
        };
        Ok(NetworkPlan {
            id: n.id.clone(),
            network_type,
            subnet: prefix,
            gateway,
            v6,
            bridge,
            lower: format!("{LOWER_PREFIX}{}", short(&n.id)),
        })
    }
}

/// The next hop of a subnet's default route (`dest`, or an empty destination).
fn default_next_hop<'a>(sn: &'a Subnet, dest: &str) -> Option<&'a str> {
    sn.routes
        .iter()
        .find(|r| r.destination_prefix == dest || r.destination_prefix.is_empty())
        .map(|r| r.next_hop.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    pub protocol: u8,
    pub internal: u16,
    pub external: u16,
    /// Limits the mapping to one host address (and so to its family).
    pub vip: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclPlan {
    pub direction: AclDirection,
    pub action: AclAction,
    pub protocol: Option<u8>,
    pub remote: Vec<IpPrefix>,
    pub local_ports: Vec<u16>,
    pub remote_ports: Vec<u16>,
    pub priority: u16,
}

#[derive(Debug, Clone)]
pub struct EndpointPlan {
    pub id: String,
    pub ip: Ipv4Addr,
    /// The IPv6 address on a dual-stack network.
    pub ip6: Option<Ipv6Addr>,
    pub mac: [u8; 6],
    /// The host end of the veth an older layout gave the endpoint (only looked for, to
    /// clean up).
    pub host_if: String,
    /// The parking name an older layout gave the container end in the host namespace (only
    /// looked for, to clean up).
    pub peer: String,
    /// Container end's name inside a namespace.
    pub ifname: String,
    pub ports: Vec<PortMap>,
    pub nat_exceptions: Vec<IpPrefix>,
    pub acls: Vec<AclPlan>,
}

/// The start of the name of the host's interface on every `NAT` or `Private` network (`wh-`
/// and a short network id); rules match it to tell wharf's networks from anything else.
pub const BRIDGE_PREFIX: &str = "wh-";

/// The name an older layout gave the network's bridge (`wh` and the short id).
pub fn legacy_bridge_name(n: &NetworkPlan) -> Option<String> {
    n.bridge
        .strip_prefix(BRIDGE_PREFIX)
        .map(|short| format!("wh{short}"))
}

/// The start of the name of a network's switch (see [`NetworkPlan::lower`]).
pub const LOWER_PREFIX: &str = "wl";

/// Whether `n` can name a network interface.
pub fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl EndpointPlan {
    pub fn tag(&self) -> String {
        format!("ep:{}", self.id)
    }

    /// Plans an endpoint whose addresses are `ip` and `ip6`. Errors are (field, reason).
    pub fn from_hcn(
        e: &HostComputeEndpoint,
        ip: Ipv4Addr,
        ip6: Option<Ipv6Addr>,
    ) -> Result<EndpointPlan, (&'static str, String)> {
        let ifname = match e.interface_name.as_str() {
            "" => "eth0".to_string(),
            n if valid_ifname(n) => n.to_string(),
            n => {
                return Err((
                    "InterfaceName",
                    format!("{n:?} is not an interface name (1-15 of [A-Za-z0-9_.-])"),
                ))
            }
        };
        let mac = if e.mac_address.is_empty() {
            derived_mac(ip)
        } else {
            crate::types::parse_mac(&e.mac_address).ok_or((
                "MacAddress",
                format!("{:?} is not a MAC address", e.mac_address),
            ))?
        };
        let mut plan = EndpointPlan {
            id: e.id.clone(),
            ip,
            ip6,
            mac,
            host_if: format!("wv{}", short(&e.id)),
            peer: format!("wp{}", short(&e.id)),
            ifname,
            ports: Vec::new(),
            nat_exceptions: Vec::new(),
            acls: Vec::new(),
        };
        for p in &e.policies {
            match p {
                EndpointPolicy::PortMapping(m) => {
                    let protocol = match m.protocol {
                        6 | 17 => m.protocol as u8,
                        0 => 6,
                        other => {
                            return Err((
                                "Policies.PortMapping.Protocol",
                                format!("{other} is neither 6 (TCP) nor 17 (UDP)"),
                            ))
                        }
                    };
                    if m.internal_port == 0 || m.external_port == 0 {
                        return Err(("Policies.PortMapping", "ports must be non-zero".into()));
                    }
                    let vip = match m.vip.as_str() {
                        "" | "0.0.0.0" | "::" => None,
                        v => Some(v.parse().map_err(|_| {
                            (
                                "Policies.PortMapping.VIP",
                                format!("{v:?} is not an IP address"),
                            )
                        })?),
                    };
                    plan.ports.push(PortMap {
                        protocol,
                        internal: m.internal_port,
                        external: m.external_port,
                        vip,
                    });
                }
                EndpointPolicy::OutBoundNat(o) => {
                    for x in &o.exceptions {
                        plan.nat_exceptions.push(IpPrefix::parse(x).ok_or((
                            "Policies.OutBoundNAT.Exceptions",
                            format!("{x:?} is not a prefix"),
                        ))?);
                    }
                }
                EndpointPolicy::Acl(a) => {
                    let protocol = match a.protocols.trim() {
                        "" | "256" => None,
                        s => Some(s.parse::<u8>().map_err(|_| {
                            (
                                "Policies.ACL.Protocols",
                                format!("{s:?} is not one protocol number"),
                            )
                        })?),
                    };
                    let list = split_list;
                    let mut remote = Vec::new();
                    for x in list(&a.remote_addresses) {
                        remote.push(IpPrefix::parse(x).ok_or((
                            "Policies.ACL.RemoteAddresses",
                            format!("{x:?} is not a prefix"),
                        ))?);
                    }
                    let ports = |s: &str, field| -> Result<Vec<u16>, (&'static str, String)> {
                        list(s)
                            .map(|x| {
                                x.parse::<u16>()
                                    .map_err(|_| (field, format!("{x:?} is not a port")))
                            })
                            .collect()
                    };
                    let local_ports = ports(&a.local_ports, "Policies.ACL.LocalPorts")?;
                    let remote_ports = ports(&a.remote_ports, "Policies.ACL.RemotePorts")?;
                    if protocol.is_none() && !(local_ports.is_empty() && remote_ports.is_empty()) {
                        return Err(("Policies.ACL.Protocols", "ports need a protocol".into()));
                    }
                    if !a.local_addresses.trim().is_empty() {
                        return Err((
                            "Policies.ACL.LocalAddresses",
                            "an endpoint ACL applies to the endpoint's own address; leave it empty"
                                .into(),
                        ));
                    }
                    plan.acls.push(AclPlan {
                        direction: a.direction,
                        action: a.action,
                        protocol,
                        remote,
                        local_ports,
                        remote_ports,
                        priority: a.priority,
                    });
                }
            }
        }
        Ok(plan)
    }
}

/// HCN comma-separated list items; `*` means any.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty() && *x != "*")
}

/// A locally administered MAC derived from the address: `02-15-5D-<last three octets>`.
pub fn derived_mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x15, 0x5d, o[1], o[2], o[3]]
}

/// The first ten hex digits of an id, for interface names (IFNAMSIZ is 16).
fn short(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(10)
        .collect()
}

/// A random GUID-like id (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub fn new_id() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `b`, which is valid
        // for writes for that many bytes; getrandom writes at most that many.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_look_like_guids_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }

    #[test]
    fn network_plan_defaults_gateway_and_rejects_bad_documents() {
        let mut n: HostComputeNetwork = serde_json::from_str(
            r#"{"ID":"abcdef0123-x","Name":"nat","Type":"NAT","Ipams":[{"Subnets":[{"IpAddressPrefix":"10.88.0.0/24"}]}]}"#,
        )
        .unwrap();
        let p = NetworkPlan::from_hcn(&n).unwrap();
        assert_eq!(p.gateway, Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(p.bridge, "wh-abcdef0123");
        assert_eq!(p.lower, "wlabcdef0123");
        n.network_type = Some(NetworkType::Overlay);
        assert_eq!(NetworkPlan::from_hcn(&n).unwrap_err().0, "Type");
        n.network_type = Some(NetworkType::Transparent);
        assert_eq!(NetworkPlan::from_hcn(&n).unwrap_err().0, "Policies");
        n.network_type = Some(NetworkType::Nat);
        n.ipams[0].subnets[0].routes = vec![crate::types::Route {
            next_hop: "10.99.0.1".into(),
            destination_prefix: "0.0.0.0/0".into(),
            metric: 0,
        }];
        assert!(NetworkPlan::from_hcn(&n)
            .unwrap_err()
            .1
            .contains("not a host address"));
    }

    #[test]
    fn dual_stack_network_plan() {
        let n: HostComputeNetwork = serde_json::from_str(
            r#"{"ID":"ab","Name":"ds","Type":"NAT","Ipams":[{"Subnets":[
              {"IpAddressPrefix":"fd00:88::/64"},{"IpAddressPrefix":"10.88.0.0/24"}]}]}"#,
        )
        .unwrap();
        let p = NetworkPlan::from_hcn(&n).unwrap();
        assert_eq!(p.subnet.to_string(), "10.88.0.0/24");
        let v6 = p.v6.unwrap();
        assert_eq!(v6.subnet.to_string(), "fd00:88::/64");
        assert_eq!(v6.gateway.to_string(), "fd00:88::1");
        let only6: HostComputeNetwork = serde_json::from_str(
            r#"{"ID":"ab","Name":"x","Type":"NAT","Ipams":[{"Subnets":[{"IpAddressPrefix":"fd00:88::/64"}]}]}"#,
        )
        .unwrap();
        assert_eq!(NetworkPlan::from_hcn(&only6).unwrap_err().0, "Ipams");
    }

    #[test]
    fn endpoint_plan_reads_policies() {
        let e: HostComputeEndpoint = serde_json::from_str(
            r#"{"ID":"1234","Policies":[
              {"Type":"PortMapping","Settings":{"Protocol":17,"InternalPort":53,"ExternalPort":5353}},
              {"Type":"OutBoundNAT","Settings":{"Exceptions":["10.0.0.0/8"]}},
              {"Type":"ACL","Settings":{"Protocols":"6","Action":"Block","Direction":"Out","RemoteAddresses":"1.2.3.4,5.6.7.0/24","RemotePorts":"80,443","Priority":200}}]}"#,
        )
        .unwrap();
        let p = EndpointPlan::from_hcn(&e, Ipv4Addr::new(10, 88, 0, 7), None).unwrap();
        assert_eq!(p.mac, [2, 0x15, 0x5d, 88, 0, 7]);
        assert_eq!(p.ports[0].protocol, 17);
        assert_eq!(p.nat_exceptions[0].to_string(), "10.0.0.0/8");
        assert_eq!(p.acls[0].remote.len(), 2);
        assert_eq!(p.acls[0].remote_ports, vec![80, 443]);
    }
}
