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
        let att = self
            .join_network(c, &network, policies, ports, true)
            .await?;
        c.lock().net = Some(att);
        let extras = rec.networks.clone();
        for extra in extras {
            match self
                .join_network(c, &extra, Vec::new(), Vec::new(), false)
                .await
            {
                Ok(a) => c.lock().extra_nets.push(a),
                Err(e) => {
                    self.release_network(c).await;
                    return Err(e.context(format!("connect {} to {extra}", rec.name)));
                }
            }
        }
        self.persist(c)?;
        Ok(NetSetup {
            netns: Some(self.hns()?.namespace_path(&c.id)),
            new_netns: false,
        })
    }

    /// Creates the container's endpoint on `network` and attaches it to the container's
    /// namespace (named by the container id; created first when `new_ns`).
    async fn join_network(
        self: &Arc<Self>,
        c: &Arc<Ctr>,
        network: &str,
        policies: Vec<EndpointPolicy>,
        ports: Vec<(String, String, u16)>,
        new_ns: bool,
    ) -> ApiResult<NetAttachment> {
        let net = self.hns()?.clone();
        let id = c.id.clone();
        let (name, all_opts) = {
            let r = c.lock();
            (r.name.clone(), r.endpoint_opts.clone())
        };
        let network = network.to_string();
        let mut att = tokio::task::spawn_blocking(move || -> ApiResult<NetAttachment> {
            let n = net
                .get_network(&network)
                .map_err(|e| ApiError::not_found(format!("network {network} not found: {e}")))?;
            let opts = [&network, &n.name, &n.id]
                .iter()
                .find_map(|k| all_opts.get(k.as_str()))
                .cloned()
                .unwrap_or_default();
            let ip_configurations = if opts.ipv4.is_empty() {
                Vec::new()
            } else {
                vec![hns::IpConfig {
                    ip_address: opts.ipv4.clone(),
                    prefix_length: 0,
                }]
            };
            // One endpoint per container and network; the first keeps HCN's plain name.
            let ep_name = if new_ns {
                id.clone()
            } else {
                format!("{id}-{}", n.id.chars().take(8).collect::<String>())
            };
            let ep = net
                .create_endpoint(HostComputeEndpoint {
                    name: ep_name,
                    host_compute_network: n.id.clone(),
                    policies,
                    ip_configurations,
                    ..Default::default()
                })
                .map_err(|e| ApiError::from(e).context(format!("connect {name} to {network}")))?;
            if new_ns {
                if let Err(e) = net.create_namespace(HostComputeNamespace {
                    id: id.clone(),
                    ..Default::default()
                }) {
                    drop(net.delete_endpoint(&ep.id));
                    return Err(e.into());
                }
            }
            if let Err(e) = net.attach(&id, &ep.id) {
                drop(net.delete_endpoint(&ep.id));
                if new_ns {
                    drop(net.delete_namespace(&id));
                }
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
                namespace_id: id,
                ip: ipc.ip_address,
                prefix_len: ipc.prefix_length,
                gateway: gw,
                mac: ep.mac_address.replace('-', ":").to_ascii_lowercase(),
                ports,
                dns: false,
                aliases: opts.aliases,
            })
        })
        .await
        .map_err(|e| ApiError::internal(format!("network setup: {e}")))??;
        if att.network != DEFAULT_NETWORK {
            att.dns = self.ensure_dns(&att.network_id, &att.gateway);
        }
        Ok(att)
    }

    /// `network connect` of a running container: a new endpoint in its namespace, and the
    /// network's peers learn its name.
    pub async fn connect_running(self: &Arc<Self>, c: &Arc<Ctr>, network: &str) -> ApiResult<()> {
        let att = self
            .join_network(c, network, Vec::new(), Vec::new(), false)
            .await?;
        let net_id = att.network_id.clone();
        {
            let mut r = c.lock();
            r.networks.push(att.network.clone());
            r.extra_nets.push(att);
        }
        self.persist(c)?;
        self.sync_hosts(&net_id);
        Ok(())
    }

    /// `network disconnect` of a running container: its endpoint on `network_id` goes; the
    /// next network becomes the first one (the namespace's default route moves with it).
    pub async fn disconnect_running(&self, c: &Arc<Ctr>, network_id: &str) -> ApiResult<()> {
        let Some(att) = c.lock().attachment(network_id).cloned() else {
            return Ok(());
        };
        // The endpoint goes first; the record follows only what hns has done, so a failure
        // leaves the container still listed on the network (and `rm` cleans it up).
        let net = self.hns()?.clone();
        let ep = att.endpoint_id.clone();
        tokio::task::spawn_blocking(move || -> ApiResult<()> {
            // Detaches it first (the default route moves on in hns).
            net.delete_endpoint(&ep)?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::internal(format!("network disconnect: {e}")))??;
        {
            let mut r = c.lock();
            if r.net.as_ref().is_some_and(|a| a.network_id == network_id) {
                let next = (!r.extra_nets.is_empty()).then(|| r.extra_nets.remove(0));
                r.host.network_mode = next
                    .as_ref()
                    .map_or_else(|| "none".to_string(), |a| a.network.clone());
                r.net = next;
            } else {
                r.extra_nets.retain(|a| a.network_id != network_id);
            }
            r.networks
                .retain(|n| *n != att.network && *n != att.network_id);
            let first = r.net.as_ref().map(|a| a.network.clone());
            r.networks.retain(|n| Some(n) != first.as_ref());
        }
        self.persist(c)?;
        // Its peers forget it, and it forgets them.
        self.sync_hosts(&att.network_id);
        self.rewrite_hosts(&c.id);
        Ok(())
    }

    /// Deletes the container's endpoints and its namespace (addresses back to the pool).
    pub async fn release_network(&self, c: &Arc<Ctr>) {
        let atts: Vec<NetAttachment> = {
            let mut r = c.lock();
            let mut v: Vec<NetAttachment> = r.net.take().into_iter().collect();
            v.append(&mut r.extra_nets);
            v
        };
        if let Some(net) = self.net.clone() {
            let id = c.id.clone();
            let r = tokio::task::spawn_blocking(move || {
                // What the record lists, and whatever else hns has attached to the
                // container's namespace (a step that failed half-way).
                let mut eps: Vec<String> = atts.iter().map(|a| a.endpoint_id.clone()).collect();
                if let Ok(ns) = net.get_namespace(&id) {
                    for r in ns.resources {
                        if !eps.contains(&r.data.id) {
                            eps.push(r.data.id);
                        }
                    }
                }
                for ep in &eps {
                    if let Err(e) = net.delete_endpoint(ep) {
                        tracing::warn!("delete endpoint {ep}: {e}");
                    }
                }
                // The namespace is the container's, also when no network is left in it.
                if net.get_namespace(&id).is_ok() {
                    if let Err(e) = net.delete_namespace(&id) {
                        tracing::warn!("delete namespace {id}: {e}");
                    }
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
    /// containers it shares a user network with (name, short id, aliases) at their
    /// addresses there. Called when `network_id` changes; every member of it is rewritten.
    pub fn sync_hosts(&self, network_id: &str) {
        self.write_hosts(|_, nets| nets.iter().any(|(n, _, _)| n == network_id));
    }

    /// Rewrites the hosts file of container `id` alone (after it left a network).
    pub fn rewrite_hosts(&self, id: &str) {
        self.write_hosts(|cid, _| cid == id);
    }

    /// Rewrites the hosts file of every container `pick` chooses. Files are rewritten in
    /// place (same inode), so the bind mounts in running containers see it.
    fn write_hosts(&self, pick: impl Fn(&str, &[(String, String, Vec<String>)]) -> bool) {
        let all: Vec<Member> = self
            .all_containers()
            .iter()
            .map(|c| {
                let r = c.lock();
                let nets: Vec<(String, String, Vec<String>)> = r
                    .attachments()
                    .filter(|a| a.network != DEFAULT_NETWORK)
                    .map(|a| (a.network_id.clone(), a.ip.clone(), a.aliases.clone()))
                    .collect();
                (r.id.clone(), r.name.clone(), nets)
            })
            .collect();
        for (id, _, mine) in all.iter().filter(|m| pick(&m.0, &m.2)) {
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
            for (oid, name, theirs) in &all {
                if oid == id {
                    continue;
                }
                let shared = theirs
                    .iter()
                    .find(|(n, ip, _)| !ip.is_empty() && mine.iter().any(|(m, _, _)| m == n));
                if let Some((_, ip, aliases)) = shared {
                    let mut names = format!("{name} {}", &oid[..12]);
                    for a in aliases {
                        names.push(' ');
                        names.push_str(a);
                    }
                    out.push_str(&format!("{ip}\t{names}\n"));
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

/// (id, name, [(network id, ip, aliases)]) of a container on a user network.
type Member = (String, String, Vec<(String, String, Vec<String>)>);

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
