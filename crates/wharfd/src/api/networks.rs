//! `/networks/...`: Docker's network shapes over the network service. `bridge`/`nat` create
//! NAT networks, `internal` or `private` ones have no route out, `transparent` bridges onto a
//! host interface (`-o parent=eth1`). `host` and `none` are listed as Docker lists them.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::engine::model::{null_default, EndpointOpts};
use crate::engine::network::{network_name, DEFAULT_NETWORK};
use crate::error::{ApiError, ApiResult};
use crate::http::{empty, json, Req, Resp};

fn pseudo(name: &str) -> Value {
    json!({"Name": name, "Id": format!("{name:0<64}").replace(|c: char| !c.is_ascii_hexdigit(), "0"),
           "Scope": "local", "Driver": if name == "none" { "null" } else { "host" },
           "IPAM": {"Driver": "default", "Config": []}, "Internal": false, "Attachable": false,
           "Containers": {}, "Options": {}, "Labels": {}, "EnableIPv6": false, "Created": "0001-01-01T00:00:00Z"})
}

fn network_json(d: &Daemon, n: &hns::HostComputeNetwork) -> Value {
    let subnet = n
        .ipams
        .iter()
        .flat_map(|i| i.subnets.iter())
        .next()
        .cloned()
        .unwrap_or_default();
    let gw = subnet
        .routes
        .first()
        .map(|r| r.next_hop.clone())
        .unwrap_or_default();
    let driver = match n.network_type {
        Some(hns::NetworkType::Nat) => "nat",
        Some(hns::NetworkType::Private) => "private",
        Some(hns::NetworkType::Transparent) => "transparent",
        _ => "unknown",
    };
    let mut containers = serde_json::Map::new();
    for c in d.all_containers() {
        let r = c.lock();
        if let Some(a) = r.attachments().find(|a| a.network_id == n.id) {
            containers.insert(r.id.clone(), json!({"Name": r.name, "EndpointID": a.endpoint_id, "MacAddress": a.mac, "IPv4Address": format!("{}/{}", a.ip, a.prefix_len), "IPv6Address": ""}));
        };
    }
    json!({
        "Name": if n.name == DEFAULT_NETWORK { "nat" } else { &n.name }, "Id": n.id,
        "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": driver, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": [{"Subnet": subnet.ip_address_prefix, "Gateway": gw}]},
        "Internal": n.network_type == Some(hns::NetworkType::Private), "Attachable": true,
        "Ingress": false, "Containers": containers, "Options": {}, "Labels": {},
    })
}

pub fn list(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let mut out: Vec<Value> = Vec::new();
    if let Ok(net) = d.hns() {
        for n in net.list_networks()? {
            out.push(network_json(d, &n));
        }
    }
    out.push(pseudo("host"));
    out.push(pseudo("none"));
    Ok(json(StatusCode::OK, &out))
}

fn find(d: &Daemon, id: &str) -> ApiResult<hns::HostComputeNetwork> {
    let net = d.hns()?;
    let key = if id == "bridge" || id == "default" {
        DEFAULT_NETWORK
    } else {
        id
    };
    if let Ok(n) = net.get_network(key) {
        return Ok(n);
    }
    let hits: Vec<_> = net
        .list_networks()?
        .into_iter()
        .filter(|n| n.id.starts_with(id))
        .collect();
    match hits.len() {
        1 => Ok(hits
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found(format!("network {id} not found")))?),
        0 => Err(ApiError::not_found(format!("network {id} not found"))),
        _ => Err(ApiError::bad_request(format!(
            "network id prefix {id} is ambiguous"
        ))),
    }
}

pub fn inspect(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    if id == "host" || id == "none" {
        return Ok(json(StatusCode::OK, &pseudo(id)));
    }
    let n = find(d, id)?;
    Ok(json(StatusCode::OK, &network_json(d, &n)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    #[serde(deserialize_with = "null_default")]
    subnet: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    #[serde(deserialize_with = "null_default")]
    config: Vec<IpamConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    #[serde(deserialize_with = "null_default")]
    name: String,
    #[serde(deserialize_with = "null_default")]
    driver: String,
    internal: bool,
    #[serde(rename = "IPAM", deserialize_with = "null_default")]
    ipam: Ipam,
    #[serde(deserialize_with = "null_default")]
    options: BTreeMap<String, String>,
}

pub async fn create(d: &Arc<Daemon>, mut r: Req) -> ApiResult<Resp> {
    let b: CreateBody = r.json().await?;
    if b.name.is_empty() || !crate::engine::containers::valid_name(&b.name) {
        return Err(ApiError::bad_request(format!(
            "invalid network name {:?}",
            b.name
        )));
    }
    if matches!(b.name.as_str(), "host" | "none" | "bridge" | "default") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} is a pre-defined network and cannot be created", b.name),
        ));
    }
    let ty = match (b.driver.as_str(), b.internal) {
        ("" | "bridge" | "nat", false) => "NAT",
        ("" | "bridge" | "nat" | "private", true) | ("private", false) => "Private",
        ("transparent", _) => "Transparent",
        (o, _) => {
            return Err(ApiError::bad_request(format!(
                "network driver {o:?} is not available (bridge, nat, private, transparent)"
            )))
        }
    };
    let net = d.hns()?.clone();
    if net.get_network(&b.name).is_ok() {
        return Err(ApiError::conflict(format!(
            "network with name {} already exists",
            b.name
        )));
    }
    let mut policies = Vec::new();
    if ty == "Transparent" {
        let parent = b.options.get("parent").ok_or_else(|| {
            ApiError::bad_request("transparent networks need -o parent=<host interface>")
        })?;
        policies
            .push(json!({"Type": "NetAdapterName", "Settings": {"NetworkAdapterName": parent}}));
    }
    let explicit = b
        .ipam
        .config
        .first()
        .map(|c| c.subnet.clone())
        .filter(|s| !s.is_empty());
    let candidates: Vec<String> = match explicit {
        Some(s) => vec![s],
        None => (0..=255).map(|i| format!("172.31.{i}.0/24")).collect(),
    };
    let name = b.name.clone();
    let created = tokio::task::spawn_blocking(move || -> ApiResult<hns::HostComputeNetwork> {
        let mut last = None;
        for s in candidates {
            let doc: hns::HostComputeNetwork = serde_json::from_value(json!({
                "Name": name, "Type": ty, "Policies": policies,
                "Ipams": [{"Type": "Static", "Subnets": [{"IpAddressPrefix": s}]}]
            }))
            .map_err(|e| ApiError::bad_request(format!("network document: {e}")))?;
            match net.create_network(doc) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == hns::ErrorKind::FailedPrecondition => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .map(ApiError::from)
            .unwrap_or_else(|| ApiError::conflict("no free subnet for the network")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("create network: {e}")))??;
    d.emit(
        "network",
        "create",
        &created.id,
        vec![("name".into(), created.name.clone())],
    );
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": created.id, "Warning": ""}),
    ))
}

pub fn remove(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    if matches!(id, "host" | "none") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{id} is a pre-defined network and cannot be removed"),
        ));
    }
    let n = find(d, id)?;
    let users: Vec<String> = d
        .all_containers()
        .iter()
        .filter(|c| c.lock().attachments().any(|a| a.network_id == n.id))
        .map(|c| c.lock().name.clone())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "error while removing network: network {} has active endpoints (containers: {})",
            n.name,
            users.join(", ")
        )));
    }
    d.hns()?.delete_network(&n.id)?;
    d.stop_dns(&n.id);
    d.emit("network", "destroy", &n.id, vec![("name".into(), n.name)]);
    Ok(empty(StatusCode::NO_CONTENT))
}

pub fn prune(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let mut deleted = Vec::new();
    if let Ok(net) = d.hns() {
        for n in net.list_networks()? {
            if n.name == DEFAULT_NETWORK {
                continue;
            }
            if remove(d, &n.id).is_ok() {
                deleted.push(n.name);
            }
        }
    }
    Ok(json(StatusCode::OK, &json!({"NetworksDeleted": deleted})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    #[serde(deserialize_with = "null_default")]
    container: String,
    force: bool,
    #[serde(deserialize_with = "null_default")]
    endpoint_config: Value,
}

/// Adds a network to a container. A running one gets an endpoint in its namespace at once;
/// one that is not running joins the network when it starts.
pub async fn connect(d: &Arc<Daemon>, id: &str, mut r: Req) -> ApiResult<Resp> {
    let n = find(d, id)?;
    let b: ConnectBody = r.json().await?;
    let c = d.lookup(&b.container)?;
    let _op = c.op.lock().await;
    let (name, mode, live, joined) = {
        let r = c.lock();
        let first = network_name(&r.host.network_mode).to_string();
        let joined = first == n.name
            || first == n.id
            || r.networks.iter().any(|x| *x == n.name || *x == n.id)
            || r.attachment(&n.id).is_some();
        (
            r.name.clone(),
            r.host.network_mode.clone(),
            r.state.status.is_live(),
            joined,
        )
    };
    if mode == "host" || mode.starts_with("container:") {
        return Err(ApiError::bad_request(format!(
            "container {name} uses the network stack of {}: it cannot be connected to other networks",
            if mode == "host" { "the host" } else { &mode["container:".len()..] }
        )));
    }
    if joined && mode != "none" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "endpoint with name {name} already exists in network {}",
                n.name
            ),
        ));
    }
    let opts = EndpointOpts::from_docker(&b.endpoint_config)
        .map_err(|e| ApiError::bad_request(format!("EndpointConfig: {e}")))?;
    {
        let mut r = c.lock();
        if opts == EndpointOpts::default() {
            r.endpoint_opts.remove(&n.name);
        } else {
            r.endpoint_opts.insert(n.name.clone(), opts);
        }
    }
    if live {
        if mode == "none" {
            return Err(ApiError::conflict(format!(
                "container {name} runs with --network none: it cannot be connected while it runs; stop it first"
            )));
        }
        d.connect_running(&c, &n.name).await?;
    } else if mode == "none" {
        c.lock().host.network_mode = n.name.clone();
        d.persist(&c)?;
    } else {
        c.lock().networks.push(n.name.clone());
        d.persist(&c)?;
    }
    d.emit(
        "network",
        "connect",
        &n.id,
        vec![
            ("container".into(), c.id.clone()),
            ("name".into(), n.name.clone()),
        ],
    );
    Ok(empty(StatusCode::OK))
}

/// Takes a network from a container: at once when it runs (its endpoint goes), for the
/// next start otherwise.
pub async fn disconnect(d: &Arc<Daemon>, id: &str, mut r: Req) -> ApiResult<Resp> {
    let n = find(d, id)?;
    let b: ConnectBody = r.json().await?;
    let c = d.lookup(&b.container)?;
    let _op = c.op.lock().await;
    let (name, live, first, extra, attached) = {
        let r = c.lock();
        let first = network_name(&r.host.network_mode);
        (
            r.name.clone(),
            r.state.status.is_live(),
            first == n.name || first == n.id,
            r.networks.iter().any(|x| *x == n.name || *x == n.id),
            r.attachment(&n.id).is_some(),
        )
    };
    if live && attached {
        d.disconnect_running(&c, &n.id).await?;
    } else if !live && (first || extra) {
        let mut r = c.lock();
        r.networks.retain(|x| *x != n.name && *x != n.id);
        if first {
            r.host.network_mode = if r.networks.is_empty() {
                "none".into()
            } else {
                r.networks.remove(0)
            };
        }
        drop(r);
        d.persist(&c)?;
    } else if !b.force {
        return Err(ApiError::bad_request(format!(
            "container {name} is not connected to network {}",
            n.name
        )));
    }
    d.emit(
        "network",
        "disconnect",
        &n.id,
        vec![
            ("container".into(), c.id.clone()),
            ("name".into(), n.name.clone()),
        ],
    );
    Ok(empty(StatusCode::OK))
}
