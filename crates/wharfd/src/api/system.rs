//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;

use crate::daemon::Daemon;
use crate::error::ApiResult;
use crate::http::{self, json, Req, Resp, API_VERSION, MIN_API_VERSION};

pub fn ping(r: &Req) -> Resp {
    let mut resp = if r.method == hyper::Method::HEAD {
        http::empty(StatusCode::OK)
    } else {
        http::with_type(StatusCode::OK, "text/plain; charset=utf-8", b"OK".to_vec())
    };
    let h = resp.headers_mut();
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    resp
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

pub fn version() -> Resp {
    let v = env!("CARGO_PKG_VERSION");
    let k = kernel();
    json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "wharf"},
            "Components": [{
                "Name": "Engine", "Version": v,
                "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux", "Arch": arch(), "KernelVersion": k, "Experimental": "false",
                    "GitCommit": "", "GoVersion": "n/a (Rust)"}
            }],
            "Version": v, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "", "GoVersion": "n/a (Rust)", "Os": "linux", "Arch": arch(),
            "KernelVersion": k, "BuildTime": "",
        }),
    )
}

fn os_name() -> String {
    let t = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    t.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// cgroup version and driver as Docker reports them.
fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// Whether /dev/kvm is there and answers KVM_GET_API_VERSION.
pub fn kvm_usable() -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    else {
        return false;
    };
    // KVM_GET_API_VERSION = _IO(0xAE, 0x00)
    // SAFETY: an argument-less ioctl on a descriptor we own; it only returns a number.
    let v = unsafe { libc::ioctl(f.as_raw_fd(), 0xAE00) };
    v == 12
}

pub async fn info(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let all = d.all_containers();
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    for c in &all {
        match c.lock().state.status {
            crate::engine::model::Status::Running => running += 1,
            crate::engine::model::Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let n_images = d.list_images().await.map(|v| v.len()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kvm = kvm_usable();
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": "wharf",
            "Containers": all.len(), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": stopped,
            "Images": n_images,
            "Driver": "overlay", "DriverStatus": [["Backing Filesystem", "overlay snapshots"]],
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": cgroup_version(),
            "KernelVersion": kernel(), "OperatingSystem": os_name(), "OSType": "linux",
            "OSVersion": "", "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "MemTotal": mem, "Name": host,
            "DockerRootDir": d.cfg.data_root, "ServerVersion": env!("CARGO_PKG_VERSION"),
            "DefaultRuntime": "runhcs",
            "Runtimes": {"runhcs": {"path": d.cfg.runhcs_path()}},
            "Isolation": "process",
            "IsolationModes": {"process": true, "hyperv": false},
            "KvmUsable": kvm,
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false},
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Plugins": {"Volume": ["local"], "Network": ["nat", "private", "transparent", "host", "null"], "Log": ["json-file"]},
            "Warnings": d.net_error.iter().map(|e| format!("WARNING: networking unavailable: {e}")).collect::<Vec<_>>(),
        }),
    ))
}

pub fn events(d: &Arc<Daemon>, r: &Req) -> ApiResult<Resp> {
    let mut rx = d.events.subscribe();
    let parse_t = |k: &str| -> crate::error::ApiResult<Option<i64>> {
        match r.q(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(|f| Some((f * 1e9) as i64))
                .map_err(|_| {
                    crate::error::ApiError::bad_request(format!(
                        "invalid value for {k}: {v:?} (want unix seconds)"
                    ))
                }),
        }
    };
    let since_ns = parse_t("since")?;
    let until_ns = parse_t("until")?;
    let until = until_ns.map(|u| u / 1_000_000_000);
    let past: Vec<crate::daemon::Event> = match since_ns {
        Some(s) => d
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.time_ns >= s && until_ns.is_none_or(|u| e.time_ns <= u))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let filters: serde_json::Value = r
        .q("filters")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(json!({}));
    let want = move |key: &str, v: &str| -> bool {
        match filters.get(key) {
            None => true,
            Some(serde_json::Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(v)),
            Some(serde_json::Value::Object(o)) => o.contains_key(v),
            _ => true,
        }
    };
    let (resp, tx) = http::stream(StatusCode::OK, "application/json");
    let want_owned = move |e: &crate::daemon::Event| {
        want("type", e.kind)
            && want("event", &e.action)
            && (want("container", &e.id)
                || e.attributes
                    .iter()
                    .any(|(k, v)| k == "name" && want("container", v)))
    };
    let render = |e: &crate::daemon::Event| -> Bytes {
        let attrs: serde_json::Map<String, serde_json::Value> = e
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut line = serde_json::to_vec(&json!({
            "Type": e.kind, "Action": e.action, "status": e.action, "id": e.id,
            "Actor": {"ID": e.id, "Attributes": attrs},
            "scope": "local", "time": e.time_ns / 1_000_000_000, "timeNano": e.time_ns,
        }))
        .unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    };
    tokio::spawn(async move {
        for e in past.iter().filter(|e| want_owned(e)) {
            if tx.send(render(e)).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let now = crate::daemon::now_ns() / 1_000_000_000;
            tokio::time::Instant::now()
                + std::time::Duration::from_secs(u.saturating_sub(now).max(0) as u64)
        });
        loop {
            let ev = match deadline {
                Some(dl) => match tokio::time::timeout_at(dl, rx.recv()).await {
                    Ok(e) => e,
                    Err(_) => return,
                },
                None => tokio::select! {
                    e = rx.recv() => e,
                    _ = tx.closed() => return,
                },
            };
            let Ok(e) = ev else { continue };
            if !want_owned(&e) {
                continue;
            }
            if tx.send(render(&e)).await.is_err() {
                return;
            }
        }
    });
    Ok(resp)
}

pub async fn df(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let imgs = d.list_images().await?;
    let images: Vec<_> = imgs
        .iter()
        .map(|i| json!({"Id": i.id, "RepoTags": i.names, "Size": i.size, "SharedSize": -1, "Containers": -1, "Created": i.created}))
        .collect();
    let containers: Vec<_> = d
        .all_containers()
        .iter()
        .map(|c| {
            let r = c.lock();
            let rw = d.snaps.usage(&r.snapshot).map(|u| u.size).unwrap_or(0);
            json!({"Id": r.id, "Names": [format!("/{}", r.name)], "Image": r.image, "SizeRw": rw, "State": r.state.status.as_str()})
        })
        .collect();
    let volumes: Vec<_> = d
        .list_volumes()?
        .iter()
        .map(|v| {
            let mut j = d.volume_json(v);
            j["UsageData"] = json!({"Size": dir_size(&d.volume_path(&v.name)), "RefCount": d.volume_users(&v.name).len()});
            j
        })
        .collect();
    let layers: u64 = imgs.iter().map(|i| i.size).sum();
    Ok(json(
        StatusCode::OK,
        &json!({"LayersSize": layers, "Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []}),
    ))
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}
