//! `NetworkService`: the HCN operations (create / delete / get / list networks, endpoints and
//! namespaces; attach / detach) over the store and the Linux host.
//!
//! Lifecycle: [`NetworkService::open`] binds to the calling thread's network namespace (the
//! "host"), opens the store and converges the host to it: missing switches, host interfaces,
//! endpoint links and pinned namespaces are re-created (after a reboot or from an older
//! layout) and wharf's nftables table is rebuilt
//! in one transaction. Each later operation changes the store and the host together; the
//! store is written last on create and first on delete, so a failure leaves nothing behind
//! that a restart would not clean up.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{Error, Result, StepError};
use crate::linux::{netns, Host};
use crate::plan::{new_id, EndpointPlan, NetworkPlan};
use crate::store::{Alloc6, AllocRequest, Store, StoreError, Txn, ENDPOINTS, NAMESPACES, NETWORKS};
use crate::types::{
    format_mac, HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork, IpConfig,
    NamespaceResource, NamespaceResourceData, NamespaceResourceType, Route,
};

/// Where the service keeps its state.
#[derive(Debug, Clone)]
pub struct Config {
    /// The redb file (`/var/lib/wharf/hns.redb`).
    pub db_path: PathBuf,
    /// Directory of pinned namespaces (`/run/wharf/netns`).
    pub netns_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db_path: PathBuf::from("/var/lib/wharf/hns.redb"),
            netns_dir: PathBuf::from("/run/wharf/netns"),
        }
    }
}

pub struct NetworkService {
    cfg: Config,
    store: Store,
    host: Mutex<Host>,
}

fn store_err(op: &str) -> impl FnOnce(StoreError) -> Error + '_ {
    move |e| Error::Store {
        op: op.to_string(),
        step: "read or write",
        source: Box::new(e),
    }
}

fn invalid(op: &str) -> impl FnOnce((&'static str, String)) -> Error + '_ {
    move |(field, reason)| Error::InvalidArgument {
        op: op.to_string(),
        field,
        reason,
    }
}

impl NetworkService {
    pub fn open(cfg: Config) -> Result<NetworkService> {
        let op = "open network service";
        for dir in [cfg.db_path.parent(), Some(cfg.netns_dir.as_path())]
            .into_iter()
            .flatten()
        {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                op: op.into(),
                step: "create directory",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let store = Store::open(&cfg.db_path).map_err(store_err(op))?;
        let host = Host::open().map_err(|e| e.during(op))?;
        let svc = NetworkService {
            cfg,
            store,
            host: Mutex::new(host),
        };
        svc.restore()?;
        Ok(svc)
    }

    fn host(&self) -> std::sync::MutexGuard<'_, Host> {
        self.host.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Converges the host to the store (restart and reboot).
    fn restore(&self) -> Result<()> {
        let op = "restore network state";
        let nets: Vec<HostComputeNetwork> = self.store.list(NETWORKS).map_err(store_err(op))?;
        let mut plans = Vec::new();
        let mut host = self.host();
        for n in &nets {
            let p = NetworkPlan::from_hcn(n).map_err(invalid(op))?;
            host.ensure_network(&p)
                .map_err(|e| e.during(&format!("restore network {}", n.name)))?;
            plans.push(p);
        }
        for ns in self
            .store
            .list::<HostComputeNamespace>(NAMESPACES)
            .map_err(store_err(op))?
        {
            let path = self.namespace_path(&ns.id);
            if !netns::is_pinned(&path) {
                drop(std::fs::remove_file(&path));
                netns::create_pinned(&path).map_err(|e| {
                    StepError::new(format!("re-create namespace {}", ns.id), e).during(op)
                })?;
                let mut ns = ns;
                if let Ok(fd) = netns::open(&path) {
                    ns.namespace_id = netns::inode(fd.as_fd()).unwrap_or(0);
                }
                self.store
                    .put(NAMESPACES, &ns.id.clone(), &ns)
                    .map_err(store_err(op))?;
            }
        }
        let eps: Vec<HostComputeEndpoint> = self.store.list(ENDPOINTS).map_err(store_err(op))?;
        let mut ep_plans = Vec::new();
        for e in &eps {
            let Some(np) = plans.iter().find(|p| p.id == e.host_compute_network) else {
                continue;
            };
            let ep = endpoint_plan(e).map_err(invalid(op))?;
            let eop = format!("restore endpoint {}", e.name);
            if e.host_compute_namespace.is_empty() {
                host.remove_stray_link(np, &ep)
                    .map_err(|x| x.during(&eop))?;
            } else {
                let fd = netns::open(&self.namespace_path(&e.host_compute_namespace))
                    .map_err(|x| StepError::new("open namespace", x).during(&eop))?;
                // A veth of the older layout is replaced by the endpoint's macvlan.
                let stale = host.old_layout_link(np, &ep).map_err(|x| x.during(&eop))?;
                if stale
                    || !host
                        .link_present(&ep, fd.as_fd())
                        .map_err(|x| x.during(&eop))?
                {
                    host.remove_stray_link(np, &ep)
                        .and_then(|()| host.attach(np, &ep, fd.as_fd()))
                        .map_err(|x| x.during(&eop))?;
                }
            }
            ep_plans.push((ep, np));
        }
        host.rebuild_rules(&plans, &ep_plans)
            .map_err(|e| e.during(op))
    }

    // ----- networks -----

    fn find_network(&self, op: &str, id_or_name: &str) -> Result<HostComputeNetwork> {
        if let Some(n) = self
            .store
            .get(NETWORKS, id_or_name)
            .map_err(store_err(op))?
        {
            return Ok(n);
        }
        self.list_networks()?
            .into_iter()
            .find(|n| n.name == id_or_name)
            .ok_or_else(|| Error::NotFound {
                op: op.into(),
                what: "network",
                name: id_or_name.into(),
            })
    }

    pub fn create_network(&self, mut n: HostComputeNetwork) -> Result<HostComputeNetwork> {
        let op = format!("create network {}", n.name);
        if n.name.is_empty() {
            return Err(invalid(&op)(("Name", "missing".into())));
        }
        if self.list_networks()?.iter().any(|x| x.name == n.name) {
            return Err(Error::AlreadyExists {
                op,
                what: "network",
                name: n.name,
            });
        }
        if n.id.is_empty() {
            n.id = new_id().map_err(|e| StepError::new("generate id", e).during(&op))?;
        }
        let plan = NetworkPlan::from_hcn(&n).map_err(invalid(&op))?;
        for other in self.list_networks()? {
            let Ok(o) = NetworkPlan::from_hcn(&other) else {
                continue;
            };
            let v4 = o.subnet.contains(plan.subnet.network())
                || plan.subnet.contains(o.subnet.network());
            let v6 = match (o.v6, plan.v6) {
                (Some(a), Some(b)) => {
                    a.subnet.contains(b.subnet.network()) || b.subnet.contains(a.subnet.network())
                }
                _ => false,
            };
            if v4 || v6 {
                let mine = if v4 {
                    plan.subnet.to_string()
                } else {
                    plan.v6.map(|v| v.subnet.to_string()).unwrap_or_default()
                };
                return Err(Error::FailedPrecondition {
                    op,
                    reason: format!("subnet {mine} overlaps network {}", other.name),
                });
            }
        }
        // Record the prefixes and gateways the plan chose, so the document says what the
        // host does.
        let mut sides = vec![(
            plan.subnet.to_string(),
            plan.gateway.to_string(),
            "0.0.0.0/0",
        )];
        if let Some(v6) = plan.v6 {
            sides.push((v6.subnet.to_string(), v6.gateway.to_string(), "::/0"));
        }
        for (prefix, gateway, default) in sides {
            let v6 = default == "::/0";
            let found = n
                .ipams
                .iter_mut()
                .flat_map(|i| i.subnets.iter_mut())
                .find(|s| {
                    crate::types::IpPrefix::parse(&s.ip_address_prefix)
                        .is_some_and(|p| p.is_ipv6() == v6)
                });
            if let Some(s) = found {
                s.ip_address_prefix = prefix;
                if s.routes.is_empty() {
                    s.routes.push(Route {
                        next_hop: gateway,
                        destination_prefix: default.into(),
                        metric: 0,
                    });
                }
            }
        }
        {
            let mut host = self.host();
            let r = host
                .ensure_network(&plan)
                .and_then(|()| host.add_network_rules(&plan));
            if let Err(e) = r {
                drop(host.remove_network(&plan));
                return Err(e.during(&op));
            }
        }
        self.store
            .put(NETWORKS, &n.id, &n)
            .map_err(store_err(&op))?;
        Ok(n)
    }

    pub fn delete_network(&self, id_or_name: &str) -> Result<()> {
        let op = format!("delete network {id_or_name}");
        let n = self.find_network(&op, id_or_name)?;
        let users: Vec<String> = self
            .list_endpoints()?
            .into_iter()
            .filter(|e| e.host_compute_network == n.id)
            .map(|e| e.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::FailedPrecondition {
                op,
                reason: format!("network still has endpoints: {}", users.join(", ")),
            });
        }
        let plan = NetworkPlan::from_hcn(&n).map_err(invalid(&op))?;
        self.store.remove_network(&n.id).map_err(store_err(&op))?;
        self.host().remove_network(&plan).map_err(|e| e.during(&op))
    }

    pub fn get_network(&self, id_or_name: &str) -> Result<HostComputeNetwork> {
        self.find_network(&format!("get network {id_or_name}"), id_or_name)
    }

    pub fn list_networks(&self) -> Result<Vec<HostComputeNetwork>> {
        self.store
            .list(NETWORKS)
            .map_err(store_err("list networks"))
    }

    // ----- endpoints -----

    fn find_endpoint(&self, op: &str, id_or_name: &str) -> Result<HostComputeEndpoint> {
        if let Some(e) = self
            .store
            .get(ENDPOINTS, id_or_name)
            .map_err(store_err(op))?
        {
            return Ok(e);
        }
        self.list_endpoints()?
            .into_iter()
            .find(|e| e.name == id_or_name)
            .ok_or_else(|| Error::NotFound {
                op: op.into(),
                what: "endpoint",
                name: id_or_name.into(),
            })
    }

    /// Creates an endpoint on `HostComputeNetwork` (id or name): allocates (or reserves the
    /// requested) address and programs its policies; its link is made at attach.
    pub fn create_endpoint(&self, mut e: HostComputeEndpoint) -> Result<HostComputeEndpoint> {
        let op = format!(
            "create endpoint {} on network {}",
            e.name, e.host_compute_network
        );
        if e.name.is_empty() {
            return Err(invalid(&op)(("Name", "missing".into())));
        }
        if self.list_endpoints()?.iter().any(|x| x.name == e.name) {
            return Err(Error::AlreadyExists {
                op,
                what: "endpoint",
                name: e.name,
            });
        }
        let n = self.find_network(&op, &e.host_compute_network)?;
        let np = NetworkPlan::from_hcn(&n).map_err(invalid(&op))?;
        e.host_compute_network = n.id.clone();
        e.host_compute_namespace.clear();
        if e.id.is_empty() {
            e.id = new_id().map_err(|x| StepError::new("generate id", x).during(&op))?;
        }
        let (mut requested, mut requested6) = (None, None);
        for c in e
            .ip_configurations
            .iter()
            .filter(|c| !c.ip_address.is_empty())
        {
            match c.ip_address.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) if requested.is_none() => requested = Some(a),
                Ok(IpAddr::V6(a)) if requested6.is_none() && np.v6.is_some() => {
                    requested6 = Some(a)
                }
                _ => {
                    return Err(invalid(&op)((
                        "IpConfigurations.IpAddress",
                        format!(
                            "{:?} is not one IPv4 (or, on a dual-stack network, IPv6) address",
                            c.ip_address
                        ),
                    )))
                }
            }
        }
        // Validate policies before anything is allocated.
        EndpointPlan::from_hcn(&e, requested.unwrap_or(np.gateway), None).map_err(invalid(&op))?;
        if e.dns == Default::default() {
            e.dns = n.dns.clone();
        }
        let req = AllocRequest {
            network_id: &n.id,
            subnet: np.subnet,
            reserved: &[np.gateway],
            requested,
            v6: np.v6.map(|v6| Alloc6 {
                subnet: v6.subnet,
                reserved: v6.gateway,
                requested: requested6,
            }),
            owner: &e.id,
        };
        let mut stored = e.clone();
        let (ip, ip6) = self
            .store
            .insert_endpoint(&req, |ip, ip6| {
                stored.ip_configurations = vec![IpConfig {
                    ip_address: ip.to_string(),
                    prefix_length: np.subnet.len,
                }];
                if let (Some(a), Some(v6)) = (ip6, &np.v6) {
                    stored.ip_configurations.push(IpConfig {
                        ip_address: a.to_string(),
                        prefix_length: v6.subnet.len,
                    });
                }
                if stored.mac_address.is_empty() {
                    stored.mac_address = format_mac(crate::plan::derived_mac(ip));
                }
                stored.clone()
            })
            .map_err(|x| match x {
                StoreError::InUse(a) => Error::AddressInUse {
                    op: op.clone(),
                    addr: a.to_string(),
                },
                StoreError::OutOfRange(a, s) => invalid(&op)((
                    "IpConfigurations.IpAddress",
                    format!("{a} is not a host address of {s}"),
                )),
                StoreError::Exhausted(s) => Error::AddressesExhausted {
                    op: op.clone(),
                    subnet: s,
                },
                other => store_err(&op)(other),
            })?;
        let stored = self.get_endpoint(&e.id)?;
        let plan = EndpointPlan::from_hcn(&stored, ip, ip6).map_err(invalid(&op))?;
        if let Err(x) = self.host().add_endpoint_rules(&np, &plan) {
            drop(self.host().remove_rules(&plan.tag()));
            drop(self.store.update(|t| {
                release_all(t, &n.id, &plan)?;
                t.remove(ENDPOINTS, &e.id)
            }));
            return Err(x.during(&op));
        }
        Ok(stored)
    }

    pub fn delete_endpoint(&self, id_or_name: &str) -> Result<()> {
        let op = format!("delete endpoint {id_or_name}");
        let e = self.find_endpoint(&op, id_or_name)?;
        let n = self.find_network(&op, &e.host_compute_network)?;
        let plan = endpoint_plan(&e).map_err(invalid(&op))?;
        let attached = !e.host_compute_namespace.is_empty();
        {
            let mut host = self.host();
            if attached {
                let fd = netns::open(&self.namespace_path(&e.host_compute_namespace)).ok();
                host.detach(&plan, fd.as_ref().map(|f| f.as_fd()))
                    .map_err(|x| x.during(&op))?;
            }
            host.remove_rules(&plan.tag()).map_err(|x| x.during(&op))?;
        }
        self.store
            .update(|t| {
                release_all(t, &n.id, &plan)?;
                t.remove(ENDPOINTS, &e.id)?;
                if attached {
                    set_resource(t, &e.host_compute_namespace, &e.id, false)?;
                }
                Ok(())
            })
            .map_err(store_err(&op))?;
        if attached {
            if let Ok(fd) = netns::open(&self.namespace_path(&e.host_compute_namespace)) {
                self.hand_over_default_route(&e.host_compute_namespace, fd.as_fd());
            }
        }
        Ok(())
    }

    pub fn get_endpoint(&self, id_or_name: &str) -> Result<HostComputeEndpoint> {
        self.find_endpoint(&format!("get endpoint {id_or_name}"), id_or_name)
    }

    pub fn list_endpoints(&self) -> Result<Vec<HostComputeEndpoint>> {
        self.store
            .list(ENDPOINTS)
            .map_err(store_err("list endpoints"))
    }

    /// The resolv.conf content for an endpoint's container: the endpoint's DNS settings, or
    /// its network's when the endpoint has none. The daemon bind-mounts it.
    pub fn resolv_conf(&self, endpoint: &str) -> Result<String> {
        let op = format!("render resolv.conf for endpoint {endpoint}");
        let e = self.find_endpoint(&op, endpoint)?;
        let dns = if e.dns == Default::default() {
            self.find_network(&op, &e.host_compute_network)?.dns
        } else {
            e.dns
        };
        crate::dns::resolv_conf(&dns).map_err(invalid(&op))
    }

    // ----- namespaces -----

    /// The bind mount that pins namespace `id`; a container joins the namespace by this path.
    pub fn namespace_path(&self, id: &str) -> PathBuf {
        self.cfg.netns_dir.join(id)
    }

    pub fn create_namespace(&self, mut ns: HostComputeNamespace) -> Result<HostComputeNamespace> {
        if ns.id.is_empty() {
            ns.id = new_id()
                .map_err(|x| StepError::new("generate id", x).during("create namespace"))?;
        }
        let op = format!("create namespace {}", ns.id);
        if ns.id.contains('/') || ns.id.starts_with('.') {
            return Err(invalid(&op)(("ID", "must be a plain name".into())));
        }
        if self
            .store
            .get::<HostComputeNamespace>(NAMESPACES, &ns.id)
            .map_err(store_err(&op))?
            .is_some()
        {
            return Err(Error::AlreadyExists {
                op,
                what: "namespace",
                name: ns.id,
            });
        }
        let path = self.namespace_path(&ns.id);
        netns::create_pinned(&path)
            .map_err(|x| StepError::new("create and pin network namespace", x).during(&op))?;
        let fd = netns::open(&path)
            .map_err(|x| StepError::new("open pinned namespace", x).during(&op))?;
        ns.namespace_id = netns::inode(fd.as_fd())
            .map_err(|x| StepError::new("stat namespace", x).during(&op))?;
        ns.resources.clear();
        if let Err(x) = self.store.put(NAMESPACES, &ns.id, &ns) {
            drop(netns::remove_pinned(&path));
            return Err(store_err(&op)(x));
        }
        Ok(ns)
    }

    pub fn delete_namespace(&self, id: &str) -> Result<()> {
        let op = format!("delete namespace {id}");
        let ns = self.get_namespace(id)?;
        let attached: Vec<&str> = ns
            .resources
            .iter()
            .filter(|r| r.resource_type == NamespaceResourceType::Endpoint)
            .map(|r| r.data.id.as_str())
            .collect();
        if !attached.is_empty() {
            return Err(Error::FailedPrecondition {
                op,
                reason: format!("endpoints still attached: {}", attached.join(", ")),
            });
        }
        self.store.remove(NAMESPACES, id).map_err(store_err(&op))?;
        netns::remove_pinned(&self.namespace_path(id)).map_err(|x| Error::Io {
            op,
            step: "unpin namespace",
            path: self.namespace_path(id),
            source: x,
        })
    }

    pub fn get_namespace(&self, id: &str) -> Result<HostComputeNamespace> {
        let op = format!("get namespace {id}");
        self.store
            .get(NAMESPACES, id)
            .map_err(store_err(&op))?
            .ok_or_else(|| Error::NotFound {
                op,
                what: "namespace",
                name: id.into(),
            })
    }

    pub fn list_namespaces(&self) -> Result<Vec<HostComputeNamespace>> {
        self.store
            .list(NAMESPACES)
            .map_err(store_err("list namespaces"))
    }

    /// Attaches an endpoint to a namespace (HCN `AddNamespaceEndpoint`): its link is created
    /// with the container end directly inside the namespace as `eth0`, with the address and
    /// a default route via the gateway.
    pub fn attach(&self, namespace_id: &str, endpoint: &str) -> Result<()> {
        let op = format!("attach endpoint {endpoint} to namespace {namespace_id}");
        let ns = self.get_namespace(namespace_id)?;
        let mut e = self.find_endpoint(&op, endpoint)?;
        if !e.host_compute_namespace.is_empty() {
            return Err(Error::FailedPrecondition {
                op,
                reason: format!("already attached to namespace {}", e.host_compute_namespace),
            });
        }
        let n = self.find_network(&op, &e.host_compute_network)?;
        let np = NetworkPlan::from_hcn(&n).map_err(invalid(&op))?;
        e.interface_name = self.pick_interface_name(&op, &ns.id, &e)?;
        let plan = endpoint_plan(&e).map_err(invalid(&op))?;
        let fd = netns::open(&self.namespace_path(&ns.id))
            .map_err(|x| StepError::new("open namespace", x).during(&op))?;
        let mut host = self.host();
        // A failed attach has taken away what it created.
        host.attach(&np, &plan, fd.as_fd())
            .map_err(|x| x.during(&op))?;
        e.host_compute_namespace = ns.id.clone();
        let r = self.store.update(|t| {
            t.put(ENDPOINTS, &e.id, &e)?;
            set_resource(t, &ns.id, &e.id, true)
        });
        if let Err(x) = r {
            drop(host.detach(&plan, Some(fd.as_fd())));
            return Err(store_err(&op)(x));
        }
        Ok(())
    }

    /// The name endpoint `e` gets inside namespace `ns_id`: the one it asks for, or else the
    /// lowest `ethN` no other endpoint there has. A recorded `ethN` from an earlier attach
    /// is hns's own choice and is picked again if it is taken.
    fn pick_interface_name(
        &self,
        op: &str,
        ns_id: &str,
        e: &HostComputeEndpoint,
    ) -> Result<String> {
        let used: Vec<String> = self
            .list_endpoints()?
            .into_iter()
            .filter(|x| x.host_compute_namespace == ns_id && x.id != e.id)
            .map(|x| match x.interface_name.as_str() {
                "" => "eth0".to_string(),
                n => n.to_string(),
            })
            .collect();
        let ours = |n: &str| {
            n.strip_prefix("eth")
                .is_some_and(|d| d.parse::<u16>().is_ok())
        };
        let wanted = e.interface_name.as_str();
        if !wanted.is_empty() && !used.iter().any(|u| u == wanted) {
            return Ok(wanted.to_string());
        }
        if !wanted.is_empty() && !ours(wanted) {
            return Err(Error::FailedPrecondition {
                op: op.into(),
                reason: format!("interface name {wanted} is taken in the namespace"),
            });
        }
        Ok((0u16..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(n))
            .unwrap_or_else(|| "eth0".into()))
    }

    /// Detaches an endpoint: its link is deleted (the endpoint keeps its address and
    /// policies; a later attach creates the link again).
    pub fn detach(&self, namespace_id: &str, endpoint: &str) -> Result<()> {
        let op = format!("detach endpoint {endpoint} from namespace {namespace_id}");
        let mut e = self.find_endpoint(&op, endpoint)?;
        if e.host_compute_namespace != namespace_id {
            return Err(Error::FailedPrecondition {
                op,
                reason: "not attached to this namespace".into(),
            });
        }
        let plan = endpoint_plan(&e).map_err(invalid(&op))?;
        let fd = netns::open(&self.namespace_path(namespace_id)).ok();
        self.host()
            .detach(&plan, fd.as_ref().map(|f| f.as_fd()))
            .map_err(|x| x.during(&op))?;
        e.host_compute_namespace.clear();
        self.store
            .update(|t| {
                t.put(ENDPOINTS, &e.id, &e)?;
                set_resource(t, namespace_id, &e.id, false)
            })
            .map_err(store_err(&op))?;
        // The default route went with the link if it was this endpoint's: the namespace's
        // next endpoint (lowest interface number) that leads somewhere takes it over. The
        // detach is done either way; a failure here is logged.
        if let Some(fd) = fd {
            self.hand_over_default_route(namespace_id, fd.as_fd());
        }
        Ok(())
    }

    fn hand_over_default_route(&self, namespace_id: &str, ns: BorrowedFd<'_>) {
        let mut rest: Vec<HostComputeEndpoint> = match self.list_endpoints() {
            Ok(l) => l
                .into_iter()
                .filter(|x| x.host_compute_namespace == namespace_id)
                .collect(),
            Err(e) => {
                tracing::warn!("namespace {namespace_id}: default route not handed over: {e}");
                return;
            }
        };
        let number = |x: &HostComputeEndpoint| {
            x.interface_name
                .strip_prefix("eth")
                .and_then(|d| d.parse::<u32>().ok())
                .unwrap_or(if x.interface_name.is_empty() {
                    0
                } else {
                    u32::MAX
                })
        };
        rest.sort_by_key(number);
        for next in &rest {
            let r = self
                .find_network("hand over the default route", &next.host_compute_network)
                .and_then(|nn| {
                    NetworkPlan::from_hcn(&nn).map_err(invalid("hand over the default route"))
                })
                .and_then(|nnp| {
                    let plan =
                        endpoint_plan(next).map_err(invalid("hand over the default route"))?;
                    self.host()
                        .ensure_default_route(&nnp, &plan, ns)
                        .map_err(|x| x.during("hand over the default route"))
                });
            if let Err(e) = r {
                tracing::warn!("namespace {namespace_id}: endpoint {}: {e}", next.id);
            }
        }
    }

    /// Tags of the rules in one chain of wharf's table, in order (diagnostics and tests).
    pub fn rule_tags(&self, chain: &str) -> Result<Vec<String>> {
        self.host()
            .rule_tags(chain)
            .map_err(|e| e.during("list rules"))
    }
}

/// Adds (or removes) endpoint `ep_id` in the resources of namespace `ns_id`, if it exists.
fn set_resource(t: &Txn<'_>, ns_id: &str, ep_id: &str, add: bool) -> Result<(), StoreError> {
    let Some(mut ns) = t.get::<HostComputeNamespace>(NAMESPACES, ns_id)? else {
        return Ok(());
    };
    ns.resources.retain(|r| r.data.id != ep_id);
    if add {
        ns.resources.push(NamespaceResource {
            resource_type: NamespaceResourceType::Endpoint,
            data: NamespaceResourceData { id: ep_id.into() },
        });
    }
    t.put(NAMESPACES, ns_id, &ns)
}

/// Releases every address of an endpoint.
fn release_all(t: &Txn<'_>, network_id: &str, e: &EndpointPlan) -> Result<(), StoreError> {
    t.release(network_id, &e.id, e.ip.into())?;
    if let Some(a) = e.ip6 {
        t.release(network_id, &e.id, a.into())?;
    }
    Ok(())
}

fn endpoint_plan(e: &HostComputeEndpoint) -> Result<EndpointPlan, (&'static str, String)> {
    let addrs: Vec<IpAddr> = e
        .ip_configurations
        .iter()
        .filter_map(|c| c.ip_address.parse().ok())
        .collect();
    let ip = addrs
        .iter()
        .find_map(|a| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        })
        .ok_or((
            "IpConfigurations",
            "stored endpoint has no IPv4 address".to_string(),
        ))?;
    let ip6 = addrs.iter().find_map(|a| match a {
        IpAddr::V6(v) => Some(*v),
        IpAddr::V4(_) => None,
    });
    EndpointPlan::from_hcn(e, ip, ip6)
}
