//! Containers on networks, through the network service (`hns`): the default `nat` network,
//! an endpoint and a pinned namespace per running container, published ports as
//! `PortMapping` policies.

use std::path::PathBuf;
use std::sync::Arc;

use hns::{
    EndpointPolicy, HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork,
    PortMappingPolicySetting,
};

use super::containers::parse_port_key;
use super::model::NetAttachment;
use crate::daemon::{Ctr, Daemon};
use crate::error::{ApiError, ApiResult};

pub const DEFAULT_NETWORK: &str = "nat";

/// How the container joins the network stack.
pub struct NetSetup {
    pub netns: Option<PathBuf>,
    pub new_netns: bool,
}

/// `default`, `bridge` and `nat` all mean the default network.
pub fn network_name(mode: &str) -> &str {
    match mode {
        "" | "default" | "bridge" => DEFAULT_NETWORK,
        m => m,
    }
}

impl Daemon {
    pub fn hns(&self) -> ApiResult<&Arc<hns::NetworkService>> {
        self.net.as_ref().ok_or_else(|| {
            ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "networking is unavailable on this daemon: {}",
                    self.net_error.as_deref().unwrap_or("not configured")
                ),
            )
        })
    }

    /// Creates the default NAT network if it is missing.
    pub fn ensure_default_network(&self) -> ApiResult<()> {
        let net = self.hns()?;
        if net.get_network(DEFAULT_NETWORK).is_ok() {
            return Ok(());
        }
        // Like Docker's default pool: skip subnets the host already routes elsewhere.
        let mut candidates = vec![self.cfg.nat_subnet.clone()];
        candidates.extend((32..48).map(|o| format!("172.{o}.0.0/16")));
        let subnet = candidates
            .iter()
            .find(|s| subnet_in_use(s).is_none())
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "create default network: {} and the fallback pools are all routed on this host ({})",
                    self.cfg.nat_subnet,
                    subnet_in_use(&self.cfg.nat_subnet).unwrap_or_default()
                ))
            })?;
        if *subnet != self.cfg.nat_subnet {
            tracing::warn!(
                "default network: {} is already routed via {}; using {subnet}",
                self.cfg.nat_subnet,
                subnet_in_use(&self.cfg.nat_subnet).unwrap_or_default()
            );
        }
        let n: HostComputeNetwork = serde_json::from_value(serde_json::json!({
            "Name": DEFAULT_NETWORK, "Type": "NAT",
            "Ipams": [{"Type": "Static", "Subnets": [{"IpAddressPrefix": subnet}]}]
        }))
        .map_err(|e| ApiError::internal(format!("default network document: {e}")))?;
        net.create_network(n)?;
        Ok(())
    }

    pub async fn setup_network(self: &Arc<Self>, c: &Arc<Ctr>) -> ApiResult<NetSetup> {
        let rec = c.snapshot();
        match rec.host.network_mode.as_str() {
            "host" => {
                return Ok(NetSetup {
                    netns: None,
                    new_netns: false,
                })
            }
            "none" => {
                return Ok(NetSetup {
                    netns: None,
                    new_netns: true,
                })
            }
            m if m.starts_with("container:") => {
                return Err(ApiError::bad_request(format!(
                    "invalid HostConfig.NetworkMode {m:?}: sharing another container's network is not supported yet"
                )))
            }
            _ => {}
        }
        let network = network_name(&rec.host.network_mode).to_string();
        let net = self.hns()?.clone();
        let mut policies = Vec::new();
        let mut ports = Vec::new();
        let mut bindings = rec.host.port_bindings.clone();
        if rec.host.publish_all_ports {
            for k in rec.config.exposed_ports.keys() {
                bindings
                    .entry(k.clone())
                    .or_insert_with(|| vec![Default::default()]);
            }
        }
        for (k, list) in &bindings {
            let (port, proto) = parse_port_key(k)?;
            for b in list {
                let host_port: u16 = if b.host_port.is_empty() {
                    free_port(&proto)?
                } else {
                    let first = b.host_port.split('-').next().unwrap_or("");
                    first.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid host port {:?}", b.host_port))
                    })?
                };
                policies.push(EndpointPolicy::PortMapping(PortMappingPolicySetting {
                    protocol: if proto == "udp" { 17 } else { 6 },
                    internal_port: port,
                    external_port: host_port,
                    vip: b.host_ip.clone(),
                    flags: 0,
                }));
                ports.push((k.clone(), b.host_ip.clone(), host_port));
            }
        }
        let id = c.id.clone();
        let name = rec.name.clone();
        let att = tokio::task::spawn_blocking(move || -> ApiResult<NetAttachment> {
            let n = net
                .get_network(&network)
                .map_err(|e| ApiError::not_found(format!("network {network} not found: {e}")))?;
            let ep = net.create_endpoint(HostComputeEndpoint {
                name: id.clone(),
                host_compute_network: n.id.clone(),
                policies,
                ..Default::default()
            })?;
            let ns = match net.create_namespace(HostComputeNamespace {
                id: id.clone(),
                ..Default::default()
            }) {
                Ok(ns) => ns,
                Err(e) => {
                    drop(net.delete_endpoint(&ep.id));
                    return Err(e.into());
                }
            };
            if let Err(e) = net.attach(&ns.id, &ep.id) {
                drop(net.delete_endpoint(&ep.id));
                drop(net.delete_namespace(&ns.id));
                return Err(ApiError::from(e).context(format!("connect {name} to {network}")));
            }
            let ipc = ep.ip_configurations.first().cloned().unwrap_or_default();
            let gw = n
                .ipams
                .iter()
                .flat_map(|i| i.subnets.iter())
                .flat_map(|s| s.routes.iter())
                .map(|r| r.next_hop.clone())
                .next()
                .unwrap_or_default();
            Ok(NetAttachment {
                network: n.name.clone(),
                network_id: n.id.clone(),
                endpoint_id: ep.id.clone(),
                namespace_id: ns.id.clone(),
                ip: ipc.ip_address,
                prefix_len: ipc.prefix_length,
                gateway: gw,
                mac: ep.mac_address.replace('-', ":").to_ascii_lowercase(),
                ports,
                dns: false,
            })
        })
        .await
        .map_err(|e| ApiError::internal(format!("network setup: {e}")))??;
        let path = self.hns()?.namespace_path(&att.namespace_id);
        let mut att = att;
        if att.network != DEFAULT_NETWORK {
            att.dns = self.ensure_dns(&att.network_id, &att.gateway);
        }
        c.lock().net = Some(att);
        self.persist(c)?;
        Ok(NetSetup {
            netns: Some(path),
            new_netns: false,
        })
    }

    /// Deletes the container's endpoint and namespace (address back to the pool).
    pub async fn release_network(&self, c: &Arc<Ctr>) {
        let Some(att) = c.lock().net.take() else {
            return;
        };
        if let Some(net) = self.net.clone() {
            let r = tokio::task::spawn_blocking(move || {
                if let Err(e) = net.detach(&att.namespace_id, &att.endpoint_id) {
                    tracing::debug!("detach endpoint: {e}");
                }
                if let Err(e) = net.delete_endpoint(&att.endpoint_id) {
                    tracing::warn!("delete endpoint {}: {e}", att.endpoint_id);
                }
                if let Err(e) = net.delete_namespace(&att.namespace_id) {
                    tracing::warn!("delete namespace {}: {e}", att.namespace_id);
                }
            })
            .await;
            if let Err(e) = r {
                tracing::warn!("release network: {e}");
            }
        }
        if let Err(e) = self.persist(c) {
            tracing::warn!("persist {}: {e}", c.id);
        }
    }
}

impl Daemon {
    /// Name resolution on user networks: every running container's `/etc/hosts` lists the
    /// other containers on its network (name, short id) with their addresses. Files are
    /// rewritten in place (same inode), so the bind mounts in running containers see it.
    pub fn sync_hosts(&self, network_id: &str) {
        let members: Vec<(String, String, String, String)> = self
            .all_containers()
            .iter()
            .filter_map(|c| {
                let r = c.lock();
                let a = r.net.as_ref()?;
                (a.network_id == network_id).then(|| {
                    (
                        r.id.clone(),
                        r.name.clone(),
                        a.ip.clone(),
                        a.network.clone(),
                    )
                })
            })
            .collect();
        if members.first().is_some_and(|m| m.3 == DEFAULT_NETWORK) {
            return;
        }
        for (id, _, _, _) in &members {
            let path = self.container_dir(id).join("hosts");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut out: String = text
                .lines()
                .take_while(|l| *l != HOSTS_MARK)
                .map(|l| format!("{l}\n"))
                .collect();
            out.push_str(HOSTS_MARK);
            out.push('\n');
            for (oid, name, ip, _) in &members {
                if oid != id && !ip.is_empty() {
                    out.push_str(&format!("{ip}\t{name} {}\n", &oid[..12]));
                }
            }
            let w = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, out.as_bytes()));
            if let Err(e) = w {
                tracing::warn!("update {}: {e}", path.display());
            }
        }
    }
}

const HOSTS_MARK: &str = "# containers on this network (wharfd)";

/// The interface through which the host already routes (part of) the IPv4 `prefix`, if any.
pub fn subnet_in_use(prefix: &str) -> Option<String> {
    let (addr, len) = prefix.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = |l: u32| if l == 0 { 0 } else { u32::MAX << (32 - l) };
    let net = u32::from(addr) & mask(len);
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        // Destination and Mask are little-endian hex; the default route (mask 0) overlaps
        // everything and is not a conflict.
        let (Ok(dst), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // The kernel prints the in-memory (network-order) bytes as a native integer.
        let (dst, m) = (
            u32::from_be_bytes(dst.to_ne_bytes()),
            u32::from_be_bytes(m.to_ne_bytes()),
        );
        if m == 0 {
            continue;
        }
        let shorter = if mask(len).count_ones() < m.count_ones() {
            mask(len)
        } else {
            m
        };
        if dst & shorter == net & shorter {
            return Some(f[0].to_string());
        }
    }
    None
}

/// A free host port, chosen by the kernel.
fn free_port(proto: &str) -> ApiResult<u16> {
    let port = if proto == "udp" {
        std::net::UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr())
    };
    port.map(|a| a.port())
        .map_err(|e| ApiError::internal(format!("pick a free host port: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn routed_subnets_are_seen() {
        // Loopback is always routed (local table aside, 127.0.0.0/8 shows via lo only in
        // some setups), so test with a subnet no host routes and with the default route skipped.
        assert_eq!(super::subnet_in_use("203.0.113.0/24"), None);
        assert_eq!(super::subnet_in_use("bogus"), None);
    }
}
