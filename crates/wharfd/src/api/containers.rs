//! `/containers/...`: the Docker wire shapes of containers (create body, list, inspect, wait,
//! stats, top, logs) and the lifecycle endpoints.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::daemon::{now_ns, rfc3339_nano, Ctr, Daemon};
use crate::engine::exec::ExecConfig;
use crate::engine::logs::LogOpts;
use crate::engine::model::{Container, ContainerConfig, EndpointOpts, HostConfig, Status};
use crate::engine::runtime::parse_signal;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, empty, json, Req, Resp};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    #[serde(flatten)]
    config: ContainerConfig,
    #[serde(deserialize_with = "crate::engine::model::null_default")]
    host_config: HostConfig,
    #[serde(deserialize_with = "crate::engine::model::null_default")]
    networking_config: Value,
}

pub async fn create(d: &Arc<Daemon>, mut r: Req) -> ApiResult<Resp> {
    let name = r.q("name").map(str::to_string);
    let body: CreateBody = r.json().await?;
    // Networks after the first (`--network a --network b`, API 1.44+); the first is
    // HostConfig.NetworkMode.
    let mut host = body.host_config;
    let mut extra = Vec::new();
    let mut opts = std::collections::BTreeMap::new();
    if let Some(eps) = body
        .networking_config
        .get("EndpointsConfig")
        .and_then(Value::as_object)
    {
        let first = crate::engine::network::network_name(&host.network_mode).to_string();
        for (k, v) in eps {
            let k = crate::engine::network::network_name(k).to_string();
            let o = EndpointOpts::from_docker(v).map_err(|e| {
                ApiError::bad_request(format!("NetworkingConfig.EndpointsConfig[{k}]: {e}"))
            })?;
            if o != EndpointOpts::default() {
                opts.insert(k.clone(), o);
            }
            if host.network_mode.is_empty() && extra.is_empty() && k != first {
                host.network_mode = k;
            } else if k != first && !extra.contains(&k) {
                extra.push(k);
            }
        }
    }
    // Networks are kept by name, and one that does not exist is refused now, as Docker does.
    if let Ok(net) = d.hns() {
        let resolve = |k: &str| -> ApiResult<String> {
            net.get_network(k)
                .map(|n| n.name)
                .map_err(|_| ApiError::not_found(format!("network {k} not found")))
        };
        for k in &mut extra {
            let n = resolve(k)?;
            if let Some(o) = opts.remove(k.as_str()) {
                opts.insert(n.clone(), o);
            }
            *k = n;
        }
        let first = crate::engine::network::network_name(&host.network_mode).to_string();
        if !matches!(first.as_str(), "host" | "none") && !first.starts_with("container:") {
            let n = resolve(&first)?;
            if n != first {
                if let Some(o) = opts.remove(&first) {
                    opts.insert(n.clone(), o);
                }
                host.network_mode = n;
            }
        }
    }
    let (id, warnings) = d
        .create_container(name, body.config, host, extra, opts)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

/// "Up 3 seconds", "Exited (0) 5 minutes ago", "Created", ... as `docker ps` shows.
fn human_duration(ns: i64) -> String {
    let s = (ns / 1_000_000_000).max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn status_text(c: &Container) -> String {
    let now = now_ns();
    match c.state.status {
        Status::Running => format!("Up {}", human_duration(now - c.state.started_at_ns)),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - c.state.started_at_ns)
        ),
        Status::Restarting => "Restarting".into(),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            human_duration(now - c.state.finished_at_ns)
        ),
    }
}

fn ports_json(c: &Container) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(n) = &c.net {
        for (k, ip, hp) in &n.ports {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            out.push(json!({"IP": if ip.is_empty() { "0.0.0.0" } else { ip }, "PrivatePort": p.parse::<u16>().unwrap_or(0), "PublicPort": hp, "Type": proto}));
        }
    }
    for k in c.config.exposed_ports.keys() {
        let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        let published = c
            .net
            .as_ref()
            .is_some_and(|n| n.ports.iter().any(|x| &x.0 == k));
        if !published {
            out.push(json!({"PrivatePort": p.parse::<u16>().unwrap_or(0), "Type": proto}));
        }
    }
    out
}

fn command_line(c: &Container) -> String {
    let mut s = c.path.clone();
    for a in &c.args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

fn matches_filters(c: &Container, f: &Value) -> bool {
    let Some(obj) = f.as_object() else {
        return true;
    };
    for (k, v) in obj {
        let vals: Vec<String> = match v {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => continue,
        };
        let ok = vals.iter().any(|want| match k.as_str() {
            "status" => c.state.status.as_str() == want,
            "name" => c.name.contains(want.trim_start_matches('/')),
            "id" => c.id.starts_with(want),
            "label" => match want.split_once('=') {
                Some((lk, lv)) => c.config.labels.get(lk).is_some_and(|x| x == lv),
                None => c.config.labels.contains_key(want),
            },
            "ancestor" => {
                c.image == *want
                    || c.image_id.contains(want.as_str())
                    || c.image_ref.contains(want.as_str())
            }
            "exited" => c.state.status == Status::Exited && want.parse() == Ok(c.state.exit_code),
            "network" => c.attachment(want).is_some(),
            _ => true,
        });
        if !ok {
            return false;
        }
    }
    true
}

pub fn list(d: &Arc<Daemon>, r: &Req) -> ApiResult<Resp> {
    let all = r.q_bool("all");
    let filters: Value = match r.q("filters") {
        Some(f) if !f.is_empty() => serde_json::from_str(f)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?,
        _ => json!({}),
    };
    let mut v: Vec<Container> = d.all_containers().iter().map(|c| c.snapshot()).collect();
    v.sort_by_key(|c| std::cmp::Reverse(c.created_ns));
    let limit = r.q_i64("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let out: Vec<Value> = v
        .iter()
        .filter(|c| all || limit.is_some() || c.state.status.is_live() || filters.get("status").is_some())
        .filter(|c| matches_filters(c, &filters))
        .take(limit.unwrap_or(usize::MAX))
        .map(|c| {
            let mut nets = serde_json::Map::new();
            for n in c.attachments() {
                nets.insert(n.network.clone(), json!({"NetworkID": n.network_id, "EndpointID": n.endpoint_id, "Gateway": n.gateway, "IPAddress": n.ip, "IPPrefixLen": n.prefix_len, "MacAddress": n.mac}));
            }
            json!({
                "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image,
                "ImageID": c.image_id, "Command": command_line(c),
                "Created": c.created_ns / 1_000_000_000, "Ports": ports_json(c),
                "Labels": c.config.labels, "State": c.state.status.as_str(),
                "Status": status_text(c),
                "HostConfig": {"NetworkMode": if c.host.network_mode.is_empty() { "default" } else { &c.host.network_mode }},
                "NetworkSettings": {"Networks": nets},
                "Mounts": mounts_json(c),
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

fn mounts_json(c: &Container) -> Vec<Value> {
    c.mounts
        .iter()
        .map(|m| {
            json!({"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.destination,
                   "Driver": if m.kind == "volume" { "local" } else { "" }, "Mode": "", "RW": m.rw, "Propagation": if m.kind == "bind" { "rprivate" } else { "" }})
        })
        .collect()
}

pub fn inspect_json(d: &Daemon, c: &Container) -> Value {
    let s = &c.state;
    let mut ports = serde_json::Map::new();
    for k in c.config.exposed_ports.keys() {
        ports.insert(k.clone(), Value::Null);
    }
    let mut nets = serde_json::Map::new();
    if let Some(n) = &c.net {
        for (k, ip, hp) in &n.ports {
            let e = ports.entry(k.clone()).or_insert(json!([]));
            if !e.is_array() {
                *e = json!([]);
            }
            if let Some(a) = e.as_array_mut() {
                a.push(json!({"HostIp": if ip.is_empty() { "0.0.0.0" } else { ip }, "HostPort": hp.to_string()}));
            }
        }
    }
    for n in c.attachments() {
        let mut aliases = vec![c.name.clone(), c.id[..12].to_string()];
        aliases.extend(n.aliases.iter().cloned());
        nets.insert(n.network.clone(), json!({"NetworkID": n.network_id, "EndpointID": n.endpoint_id, "Gateway": n.gateway, "IPAddress": n.ip, "IPPrefixLen": n.prefix_len, "MacAddress": n.mac, "Aliases": aliases}));
    }
    if !c.state.status.is_live() {
        // Networks it joins at the next start, as Docker lists them for stopped containers.
        let first = crate::engine::network::network_name(&c.host.network_mode);
        for n in std::iter::once(first).chain(c.networks.iter().map(String::as_str)) {
            if !matches!(n, "none" | "host") && !nets.contains_key(n) {
                nets.insert(n.to_string(), json!({"NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}));
            }
        }
    }
    let primary = c.net.clone().unwrap_or_default();
    let mut host = serde_json::to_value(&c.host).unwrap_or(json!({}));
    if c.host.network_mode.is_empty() {
        host["NetworkMode"] = json!("default");
    }
    host["Isolation"] = json!(match c.host.isolation.to_ascii_lowercase().as_str() {
        "" | "default" => "process".to_string(),
        o => o.to_string(),
    });
    json!({
        "Id": c.id, "Created": rfc3339_nano(c.created_ns), "Path": c.path, "Args": c.args,
        "State": {
            "Status": s.status.as_str(), "Running": s.status.is_live(),
            "Paused": s.status == Status::Paused, "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed, "Dead": s.status == Status::Dead, "Pid": s.pid,
            "ExitCode": s.exit_code, "Error": s.error,
            "StartedAt": rfc3339_nano(s.started_at_ns), "FinishedAt": rfc3339_nano(s.finished_at_ns),
        },
        "Image": c.image_id, "ResolvConfPath": d.container_dir(&c.id).join("resolv.conf"),
        "HostnamePath": d.container_dir(&c.id).join("hostname"),
        "HostsPath": d.container_dir(&c.id).join("hosts"),
        "LogPath": d.log_path(&c.id), "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count, "Driver": "overlay", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": if c.exec_ids.is_empty() { Value::Null } else { json!(c.exec_ids) },
        "HostConfig": host,
        "GraphDriver": {"Name": "overlay", "Data": null},
        "Mounts": mounts_json(c),
        "Config": {
            "Hostname": if c.config.hostname.is_empty() { &c.id[..12] } else { &c.config.hostname },
            "Domainname": c.config.domainname, "User": c.config.user,
            "AttachStdin": c.config.attach_stdin, "AttachStdout": c.config.attach_stdout,
            "AttachStderr": c.config.attach_stderr, "ExposedPorts": c.config.exposed_ports,
            "Tty": c.config.tty, "OpenStdin": c.config.open_stdin, "StdinOnce": c.config.stdin_once,
            "Env": c.config.env, "Cmd": c.config.cmd, "Image": c.image,
            "Volumes": c.config.volumes, "WorkingDir": c.config.working_dir,
            "Entrypoint": c.config.entrypoint, "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": primary.namespace_id, "Ports": ports,
            "SandboxKey": if primary.namespace_id.is_empty() { String::new() } else { d.cfg.exec_root.join("netns").join(&primary.namespace_id).to_string_lossy().into_owned() },
            "Gateway": primary.gateway, "IPAddress": primary.ip, "IPPrefixLen": primary.prefix_len,
            "MacAddress": primary.mac, "Networks": nets,
        },
    })
}

pub fn inspect(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let rec = c.snapshot();
    Ok(json(StatusCode::OK, &inspect_json(d, &rec)))
}

pub async fn start(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    if d.start_container(&c).await? {
        Ok(empty(StatusCode::NO_CONTENT))
    } else {
        Ok(empty(StatusCode::NOT_MODIFIED))
    }
}

pub async fn stop(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let sig = r
        .q("signal")
        .filter(|s| !s.is_empty())
        .map(parse_signal)
        .transpose()?;
    if d.stop_container(&c, r.q_i64("t")?, sig).await? {
        Ok(empty(StatusCode::NO_CONTENT))
    } else {
        Ok(empty(StatusCode::NOT_MODIFIED))
    }
}

pub async fn restart(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let sig = r
        .q("signal")
        .filter(|s| !s.is_empty())
        .map(parse_signal)
        .transpose()?;
    d.stop_container(&c, r.q_i64("t")?, sig).await?;
    d.start_container(&c).await?;
    d.emit("container", "restart", &c.id, vec![]);
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn kill(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let sig = match r.q("signal").filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s)?,
        None => 9,
    };
    d.kill_container(&c, sig).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Headers go out at once (the CLI waits for them before it sends start); the body is the
/// exit status when the condition is met.
pub fn wait(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let cond = r.q("condition").unwrap_or("not-running").to_string();
    if !matches!(cond.as_str(), "not-running" | "next-exit" | "removed" | "") {
        return Err(ApiError::bad_request(format!(
            "invalid condition: {cond:?}"
        )));
    }
    let mut exits = c.exits.subscribe();
    let mut removed = c.removed.subscribe();
    exits.borrow_and_update();
    let (resp, tx) = http::stream(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        let done = async {
            match cond.as_str() {
                "next-exit" => {
                    drop(exits.changed().await);
                }
                "removed" => {
                    while !*removed.borrow_and_update() {
                        if removed.changed().await.is_err() {
                            break;
                        }
                    }
                }
                _ => {
                    while c.lock().state.status.is_live()
                        || c.lock().state.status == Status::Restarting
                    {
                        tokio::select! {
                            r = exits.changed() => if r.is_err() { break },
                            _ = removed.changed() => break,
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = done => {}
            _ = tx.closed() => return,
        }
        let (code, err) = {
            let r = c.lock();
            (r.state.exit_code, r.state.error.clone())
        };
        let body = if err.is_empty() || code == 0 {
            json!({"StatusCode": code, "Error": null})
        } else {
            json!({"StatusCode": code, "Error": {"Message": err}})
        };
        let mut b = serde_json::to_vec(&body).unwrap_or_default();
        b.push(b'\n');
        let _client_may_be_gone = tx.send(bytes::Bytes::from(b)).await;
    });
    Ok(resp)
}

pub async fn remove(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    d.remove_container(&c, r.q_bool("force"), r.q_bool("v"))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn rename(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let new = r
        .q("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("rename: missing query parameter name"))?;
    d.rename_container(&c, new).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn pause(d: &Arc<Daemon>, id: &str, p: bool) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    d.pause_container(&c, p).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn running(c: &Arc<Ctr>) -> ApiResult<()> {
    if c.lock().state.status.is_live() {
        Ok(())
    } else {
        Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )))
    }
}

pub async fn top(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    running(&c)?;
    let r = d.shim(&c.id).call_ok(&hcs::shim::Request::Pids).await?;
    let mut procs = Vec::new();
    for pid in r.pids.unwrap_or_default() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or("0")
            .to_string();
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .map(|v| v.split_whitespace().next().unwrap_or("0").to_string())
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|x| *x == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        procs.push(vec![
            uid,
            pid.to_string(),
            ppid,
            "0".into(),
            "".into(),
            "?".into(),
            "00:00:00".into(),
            cmd,
        ]);
    }
    Ok(json(
        StatusCode::OK,
        &json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": procs}),
    ))
}

async fn stats_once(d: &Arc<Daemon>, c: &Arc<Ctr>, prev: &Value) -> Value {
    let rec = c.snapshot();
    let q = json!({"PropertyTypes": ["Statistics"]});
    let props = d
        .shim(&c.id)
        .call_ok(&hcs::shim::Request::Properties { query: q })
        .await
        .ok()
        .and_then(|r| r.properties)
        .unwrap_or(json!({}));
    let st = &props["Statistics"];
    let total = st["Processor"]["TotalRuntime100ns"].as_u64().unwrap_or(0) * 100;
    let user = st["Processor"]["RuntimeUser100ns"].as_u64().unwrap_or(0) * 100;
    let kern = st["Processor"]["RuntimeKernel100ns"].as_u64().unwrap_or(0) * 100;
    let mem = st["Memory"]["MemoryUsageCommitBytes"].as_u64().unwrap_or(0);
    let system = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
                    * (1_000_000_000 / 100)
            })
        })
        .unwrap_or(0);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = if rec.host.memory > 0 {
        rec.host.memory as u64
    } else {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    };
    let pids = d
        .shim(&c.id)
        .call_ok(&hcs::shim::Request::Pids)
        .await
        .ok()
        .and_then(|r| r.pids)
        .map_or(0, |p| p.len());
    json!({
        "read": rfc3339_nano(now_ns()), "preread": prev["read"].clone(),
        "name": format!("/{}", rec.name), "id": rec.id,
        "pids_stats": {"current": pids},
        "cpu_stats": {"cpu_usage": {"total_usage": total, "usage_in_usermode": user, "usage_in_kernelmode": kern},
                      "system_cpu_usage": system, "online_cpus": cpus},
        "precpu_stats": prev["cpu_stats"].clone(),
        "memory_stats": {"usage": mem, "limit": limit, "stats": {}},
        "networks": {},
    })
}

pub async fn stats(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let stream = r.q("stream").is_none_or(|s| s != "0" && s != "false");
    let one_shot = r.q_bool("one-shot");
    let empty_stats = json!({"read": "0001-01-01T00:00:00Z", "cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0}});
    if !c.lock().state.status.is_live() {
        return Ok(json(
            StatusCode::OK,
            &json!({"name": format!("/{}", c.lock().name), "id": c.id, "read": "0001-01-01T00:00:00Z", "cpu_stats": {}, "precpu_stats": {}, "memory_stats": {}, "pids_stats": {}}),
        ));
    }
    if !stream {
        let first = if one_shot {
            empty_stats
        } else {
            let f = stats_once(d, &c, &empty_stats).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            f
        };
        return Ok(json(StatusCode::OK, &stats_once(d, &c, &first).await));
    }
    let (resp, tx) = http::stream(StatusCode::OK, "application/json");
    let d = d.clone();
    tokio::spawn(async move {
        let mut prev = empty_stats;
        loop {
            if !c.lock().state.status.is_live() {
                return;
            }
            let s = stats_once(&d, &c, &prev).await;
            let mut b = serde_json::to_vec(&s).unwrap_or_default();
            b.push(b'\n');
            if tx.send(bytes::Bytes::from(b)).await.is_err() {
                return;
            }
            prev = s;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(resp)
}

fn parse_time(v: Option<&str>) -> ApiResult<i64> {
    let Some(v) = v.filter(|v| !v.is_empty() && *v != "0") else {
        return Ok(0);
    };
    if let Ok(f) = v.parse::<f64>() {
        return Ok((f * 1e9) as i64);
    }
    crate::engine::images::parse_rfc3339(v)
        .map(|s| s as i64 * 1_000_000_000)
        .ok_or_else(|| ApiError::bad_request(format!("invalid time value {v:?}")))
}

pub fn logs(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let tail = match r.q("tail") {
        None | Some("all") | Some("") => None,
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail value {t:?}")))?,
        ),
    };
    let o = LogOpts {
        stdout: r.q_bool("stdout"),
        stderr: r.q_bool("stderr"),
        follow: r.q_bool("follow"),
        tail,
        since_ns: parse_time(r.q("since"))?,
        until_ns: parse_time(r.q("until"))?,
        timestamps: r.q_bool("timestamps"),
        raw: c.lock().config.tty,
    };
    if !o.stdout && !o.stderr {
        return Err(ApiError::bad_request("you must choose at least one stream"));
    }
    let ctype = if o.raw {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (resp, tx) = http::stream(StatusCode::OK, ctype);
    tokio::spawn(d.clone().stream_logs(c, o, tx));
    Ok(resp)
}

pub async fn resize(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let h = r.q_i64("h")?.unwrap_or(0);
    let w = r.q_i64("w")?.unwrap_or(0);
    if !(0..=65535).contains(&h) || !(0..=65535).contains(&w) {
        return Err(ApiError::bad_request(
            "invalid resize: h and w must be 0..65535",
        ));
    }
    running(&c)?;
    d.shim(&c.id)
        .call_ok(&hcs::shim::Request::Resize {
            height: h as u16,
            width: w as u16,
            exec_id: None,
        })
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn exec_create(d: &Arc<Daemon>, id: &str, mut r: Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let cfg: ExecConfig = r.json().await?;
    let id = d.create_exec(&c, cfg)?;
    Ok(json(StatusCode::CREATED, &json!({"Id": id})))
}

pub async fn prune(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let mut deleted = Vec::new();
    for c in d.all_containers() {
        let st = c.lock().state.status;
        if matches!(st, Status::Exited | Status::Created | Status::Dead)
            && d.remove_container(&c, false, false).await.is_ok()
        {
            deleted.push(c.id.clone());
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

pub async fn archive_get(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let path = r
        .q("path")
        .ok_or_else(|| ApiError::bad_request("archive: missing query parameter path"))?;
    crate::api::streams::archive_get(d, &c, path, r.method == hyper::Method::HEAD).await
}

pub async fn archive_put(d: &Arc<Daemon>, id: &str, mut r: Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let path = r
        .q("path")
        .ok_or_else(|| ApiError::bad_request("archive: missing query parameter path"))?
        .to_string();
    let body = r.body_bytes(1 << 30).await?;
    crate::api::streams::archive_put(d, &c, &path, body).await
}

pub async fn export(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    crate::api::streams::archive_get(d, &c, "/", false).await
}
