//! HCN-shaped objects (`HostComputeNetwork`, `HostComputeEndpoint`, `HostComputeNamespace`) with
//! the field names of the HCN v2 schema, so documents written for HCN parse here unchanged.
//! Fields wharf does not act on yet are still accepted (and kept) where HCN clients send them.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `{"Major":2,"Minor":0}` on every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchemaVersion {
    pub major: u32,
    pub minor: u32,
}

impl Default for SchemaVersion {
    fn default() -> Self {
        SchemaVersion { major: 2, minor: 0 }
    }
}

/// HCN `NetworkType`. wharf implements `NAT`, `Private` and `Transparent`; the others parse so
/// that the error can say "unsupported" instead of "invalid".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkType {
    #[serde(rename = "NAT")]
    Nat,
    Private,
    Transparent,
    L2Bridge,
    L2Tunnel,
    #[serde(rename = "ICS")]
    Ics,
    Overlay,
}

impl std::fmt::Display for NetworkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            NetworkType::Nat => "NAT",
            NetworkType::Private => "Private",
            NetworkType::Transparent => "Transparent",
            NetworkType::L2Bridge => "L2Bridge",
            NetworkType::L2Tunnel => "L2Tunnel",
            NetworkType::Ics => "ICS",
            NetworkType::Overlay => "Overlay",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Dns {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Route {
    pub next_hop: String,
    pub destination_prefix: String,
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub metric: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Subnet {
    pub ip_address_prefix: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// `Static` (wharf allocates from the subnets) or `DHCP` (unsupported).
    #[serde(rename = "Type")]
    pub ipam_type: String,
    pub subnets: Vec<Subnet>,
}

impl Default for Ipam {
    fn default() -> Self {
        Ipam {
            ipam_type: "Static".into(),
            subnets: Vec::new(),
        }
    }
}

/// Network policies wharf understands: `NetAdapterName` names the host interface a
/// `Transparent` network bridges onto.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Type", content = "Settings")]
pub enum NetworkPolicy {
    NetAdapterName {
        #[serde(rename = "NetworkAdapterName")]
        network_adapter_name: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostComputeNetwork {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub network_type: Option<NetworkType>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<NetworkPolicy>,
    pub dns: Dns,
    pub ipams: Vec<Ipam>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
    pub schema_version: SchemaVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpConfig {
    pub ip_address: String,
    pub prefix_length: u8,
}

/// `PortMapping`: `Protocol` is the IP protocol number (6 TCP, 17 UDP); `VIP` optionally limits
/// the mapping to one host address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortMappingPolicySetting {
    pub protocol: u32,
    pub internal_port: u16,
    pub external_port: u16,
    #[serde(rename = "VIP", skip_serializing_if = "String::is_empty")]
    pub vip: String,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
}

/// `OutBoundNAT`: traffic to `Exceptions` (prefixes) leaves without source rewriting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OutboundNatPolicySetting {
    #[serde(rename = "VirtualIP", skip_serializing_if = "String::is_empty")]
    pub virtual_ip: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclAction {
    #[default]
    Allow,
    Block,
    Pass,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclDirection {
    #[default]
    In,
    Out,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclRuleType {
    #[default]
    Host,
    Switch,
}

/// `ACL`: lists are comma-separated strings as in HCN (`"10.0.0.0/8,192.168.1.1"`, `"80,443"`);
/// `Protocols` is a protocol number as a string (`"6"`), empty for any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicySetting {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocols: String,
    pub action: AclAction,
    pub direction: AclDirection,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_addresses: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_addresses: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_ports: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_ports: String,
    pub rule_type: AclRuleType,
    pub priority: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Type", content = "Settings")]
pub enum EndpointPolicy {
    PortMapping(PortMappingPolicySetting),
    #[serde(rename = "OutBoundNAT")]
    OutBoundNat(OutboundNatPolicySetting),
    #[serde(rename = "ACL")]
    Acl(AclPolicySetting),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostComputeEndpoint {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// The network's id (or, on create, its name).
    pub host_compute_network: String,
    /// The namespace the endpoint is attached to; empty when detached.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_compute_namespace: String,
    pub policies: Vec<EndpointPolicy>,
    pub ip_configurations: Vec<IpConfig>,
    pub dns: Dns,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// `00-15-5D-52-C0-05` (HCN style) or `00:15:5d:52:c0:05`; empty on create to derive one.
    pub mac_address: String,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
    /// The container end's name inside its namespace (a wharf extension of HCN's shape).
    /// Empty on create: attach picks the lowest free `ethN` (`eth0` for the first
    /// endpoint of a namespace) and records it here while attached.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    pub schema_version: SchemaVersion,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceType {
    #[default]
    Host,
    HostDefault,
    Guest,
    GuestDefault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceResourceType {
    Container,
    Endpoint,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceResourceData {
    #[serde(rename = "ID")]
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamespaceResource {
    #[serde(rename = "Type")]
    pub resource_type: NamespaceResourceType,
    pub data: NamespaceResourceData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostComputeNamespace {
    #[serde(rename = "ID")]
    pub id: String,
    /// HCN's compartment id; on Linux the inode of the network namespace.
    pub namespace_id: u64,
    #[serde(rename = "Type")]
    pub namespace_type: NamespaceType,
    pub resources: Vec<NamespaceResource>,
    pub schema_version: SchemaVersion,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

/// An IPv4 prefix such as `10.0.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Ipv4Prefix {
    pub fn parse(s: &str) -> Option<Ipv4Prefix> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok()?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = a.trim().parse().ok()?;
        (l <= 32).then_some(Ipv4Prefix { addr, len: l })
    }

    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.network())
    }
}

impl std::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An IPv6 prefix such as `fd00:1::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Prefix {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Ipv6Prefix {
    pub fn parse(s: &str) -> Option<Ipv6Prefix> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok()?),
            None => (s, 128),
        };
        let addr: Ipv6Addr = a.trim().parse().ok()?;
        (l <= 128).then_some(Ipv6Prefix { addr, len: l })
    }

    pub fn mask(&self) -> u128 {
        if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.len))
        }
    }

    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }

    /// The highest address of the prefix.
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask() == u128::from(self.network())
    }
}

impl std::fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A prefix of either family, as ACLs and NAT exceptions name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPrefix {
    V4(Ipv4Prefix),
    V6(Ipv6Prefix),
}

impl IpPrefix {
    pub fn parse(s: &str) -> Option<IpPrefix> {
        Ipv4Prefix::parse(s)
            .map(IpPrefix::V4)
            .or_else(|| Ipv6Prefix::parse(s).map(IpPrefix::V6))
    }

    /// The single address `a` (a /32 or /128).
    pub fn host(a: IpAddr) -> IpPrefix {
        match a {
            IpAddr::V4(addr) => IpPrefix::V4(Ipv4Prefix { addr, len: 32 }),
            IpAddr::V6(addr) => IpPrefix::V6(Ipv6Prefix { addr, len: 128 }),
        }
    }

    pub fn is_ipv6(&self) -> bool {
        matches!(self, IpPrefix::V6(_))
    }
}

impl From<Ipv4Prefix> for IpPrefix {
    fn from(p: Ipv4Prefix) -> IpPrefix {
        IpPrefix::V4(p)
    }
}

impl From<Ipv6Prefix> for IpPrefix {
    fn from(p: Ipv6Prefix) -> IpPrefix {
        IpPrefix::V6(p)
    }
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpPrefix::V4(p) => p.fmt(f),
            IpPrefix::V6(p) => p.fmt(f),
        }
    }
}

/// Parses `00-15-5D-52-C0-05` or `00:15:5d:52:c0:05`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(['-', ':']);
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// HCN style: upper-case hex separated by dashes.
pub fn format_mac(m: [u8; 6]) -> String {
    let parts: Vec<String> = m.iter().map(|b| format!("{b:02X}")).collect();
    parts.join("-")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hcn_example_documents_parse_with_their_field_names() {
        let net: HostComputeNetwork = serde_json::from_str(
            r#"{ "Name": "nat", "Type": "NAT", "SchemaVersion": {"Major":2,"Minor":0},
              "Ipams": [ { "Type": "Static", "Subnets": [ { "IpAddressPrefix": "192.168.100.0/24",
              "Routes": [ { "NextHop": "192.168.100.1", "DestinationPrefix": "0.0.0.0/0" } ] } ] } ],
              "Dns": {"ServerList": ["1.1.1.1"], "Search": ["corp"]} }"#,
        )
        .unwrap();
        assert_eq!(net.network_type, Some(NetworkType::Nat));
        assert_eq!(net.ipams[0].subnets[0].routes[0].next_hop, "192.168.100.1");
        assert_eq!(net.dns.search, vec!["corp"]);

        let ep: HostComputeEndpoint = serde_json::from_str(
            r#"{ "Name": "ctr1_nat", "HostComputeNetwork": "nat",
              "IpConfigurations": [ { "IpAddress": "192.168.100.10", "PrefixLength": 24 } ],
              "Dns": { "ServerList": ["192.168.100.1"] },
              "Policies": [ { "Type": "PortMapping", "Settings": { "Protocol": 6, "InternalPort": 80, "ExternalPort": 8080 } },
                            { "Type": "OutBoundNAT", "Settings": { "Exceptions": ["10.0.0.0/8"] } },
                            { "Type": "ACL", "Settings": { "Protocols": "6", "Action": "Block", "Direction": "Out",
                              "RemoteAddresses": "10.1.2.3", "RemotePorts": "443", "Priority": 100 } } ] }"#,
        )
        .unwrap();
        assert_eq!(
            ep.policies[0],
            EndpointPolicy::PortMapping(PortMappingPolicySetting {
                protocol: 6,
                internal_port: 80,
                external_port: 8080,
                ..Default::default()
            })
        );
        assert!(
            matches!(&ep.policies[1], EndpointPolicy::OutBoundNat(o) if o.exceptions == ["10.0.0.0/8"])
        );
        assert!(
            matches!(&ep.policies[2], EndpointPolicy::Acl(a) if a.action == AclAction::Block && a.direction == AclDirection::Out)
        );

        // Round trip keeps HCN names.
        let json = serde_json::to_value(&ep).unwrap();
        assert_eq!(json["Policies"][1]["Type"], "OutBoundNAT");
        assert_eq!(json["Policies"][2]["Type"], "ACL");
        assert_eq!(json["IpConfigurations"][0]["IpAddress"], "192.168.100.10");
        assert_eq!(json["SchemaVersion"]["Major"], 2);
        let back: HostComputeEndpoint = serde_json::from_value(json).unwrap();
        assert_eq!(back, ep);

        let ns: HostComputeNamespace = serde_json::from_str(
            r#"{"ID":"x","Type":"HostDefault","Resources":[{"Type":"Endpoint","Data":{"ID":"e1"}}]}"#,
        )
        .unwrap();
        assert_eq!(ns.namespace_type, NamespaceType::HostDefault);
        assert_eq!(ns.resources[0].data.id, "e1");
    }

    #[test]
    fn prefixes_and_macs() {
        let p = Ipv4Prefix::parse("10.1.2.77/24").unwrap();
        assert_eq!(p.network(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(p.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert!(p.contains(Ipv4Addr::new(10, 1, 2, 9)));
        assert!(!p.contains(Ipv4Addr::new(10, 1, 3, 9)));
        assert_eq!(Ipv4Prefix::parse("1.2.3.4").unwrap().len, 32);
        assert!(Ipv4Prefix::parse("1.2.3.4/33").is_none());
        assert_eq!(Ipv4Prefix::parse("0.0.0.0/0").unwrap().mask(), 0);
        let m = parse_mac("02-15-5d-0A-00-05").unwrap();
        assert_eq!(format_mac(m), "02-15-5D-0A-00-05");
        assert_eq!(parse_mac("02:15:5d:0a:00:05"), Some(m));
        assert!(parse_mac("02:15:5d:0a:00").is_none());
        let p6 = Ipv6Prefix::parse("fd00:1:2::77/64").unwrap();
        assert_eq!(p6.network(), "fd00:1:2::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            p6.last(),
            "fd00:1:2:0:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert!(p6.contains("fd00:1:2::9".parse().unwrap()));
        assert!(!p6.contains("fd00:1:3::9".parse().unwrap()));
        assert!(IpPrefix::parse("10.0.0.0/8").is_some_and(|p| !p.is_ipv6()));
        assert!(IpPrefix::parse("fd00::/8").is_some_and(|p| p.is_ipv6()));
        assert!(IpPrefix::parse("nonsense").is_none());
    }
}
