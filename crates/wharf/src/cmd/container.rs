//! Container verbs that are one request per container (stop, kill, rm, ...) and the listings
//! (`ps`, `top`, `stats`, `port`).

use serde_json::{json, Value};

use super::{confirm, each, filters, short_id};
use crate::cli::{KillArgs, PruneArgs, PsArgs, RmArgs, StatsArgs, StopArgs};
use crate::client::{path_seg, Client, Query};
use crate::error::{Error, Result};
use crate::output::{self, ago, human_bytes, human_size, Format, Table};

fn cpath(name: &str, verb: &str) -> String {
    format!("/containers/{}/{verb}", path_seg(name))
}

pub async fn stop(c: &Client, a: StopArgs, verb: &str) -> Result<()> {
    let q = || {
        Query::new()
            .opt("t", &a.time.map(|t| t.to_string()).unwrap_or_default())
            .opt("signal", a.signal.as_deref().unwrap_or(""))
    };
    each(&a.names, true, |n| async move {
        c.post(&cpath(&n, verb), q(), None).await.map(drop)
    })
    .await
}

pub async fn kill(c: &Client, a: KillArgs) -> Result<()> {
    let sig = a.signal.clone().unwrap_or_default();
    each(&a.names, true, |n| {
        let q = Query::new().opt("signal", &sig);
        async move { c.post(&cpath(&n, "kill"), q, None).await.map(drop) }
    })
    .await
}

/// A verb with no options (pause, unpause).
pub async fn simple(c: &Client, names: &[String], verb: &str) -> Result<()> {
    each(names, true, |n| async move {
        c.post(&cpath(&n, verb), Query::new(), None).await.map(drop)
    })
    .await
}

pub async fn rm(c: &Client, a: RmArgs) -> Result<()> {
    each(&a.names, true, |n| {
        let q = Query::new().flag("force", a.force).flag("v", a.volumes);
        async move {
            c.delete(&format!("/containers/{}", path_seg(&n)), q)
                .await
                .map(drop)
        }
    })
    .await
}

pub async fn rename(c: &Client, name: &str, new: &str) -> Result<()> {
    c.post(&cpath(name, "rename"), Query::new().add("name", new), None)
        .await
        .map(drop)
}

pub async fn wait(c: &Client, names: &[String]) -> Result<()> {
    each(names, false, |n| async move {
        let v = c.post(&cpath(&n, "wait"), Query::new(), None).await?;
        println!("{}", v["StatusCode"].as_i64().unwrap_or(0));
        Ok(())
    })
    .await
}

/// docker's `Ellipsis`: cut to `max` characters, the last one an ellipsis.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ports_text(ports: &Value) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in ports.as_array().into_iter().flatten() {
        let private = p["PrivatePort"].as_u64().unwrap_or(0);
        let proto = p["Type"].as_str().unwrap_or("tcp");
        match p["PublicPort"].as_u64().filter(|x| *x > 0) {
            Some(public) => {
                let ip = p["IP"].as_str().unwrap_or("0.0.0.0");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                out.push(format!("{ip}:{public}->{private}/{proto}"));
            }
            None => out.push(format!("{private}/{proto}")),
        }
    }
    out.dedup();
    out.join(", ")
}

/// A `ps` row keyed by docker's placeholder names.
fn ps_row(v: &Value, no_trunc: bool) -> Value {
    let id = v["Id"].as_str().unwrap_or("");
    let names: Vec<String> = v["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let cmd = v["Command"].as_str().unwrap_or("");
    let cmd = if no_trunc {
        cmd.to_string()
    } else {
        ellipsis(cmd, 20)
    };
    let created = v["Created"].as_i64().unwrap_or(0);
    let labels: Vec<String> = v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    let networks: Vec<&String> = v["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .collect();
    let mounts: Vec<String> = v["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    json!({
        "ID": short_id(id, no_trunc), "Image": v["Image"], "Command": format!("{cmd:?}"),
        "CreatedAt": created, "RunningFor": ago(created), "Ports": ports_text(&v["Ports"]),
        "State": v["State"], "Status": v["Status"], "Names": names.join(","),
        "Labels": labels.join(","), "Networks": networks.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
        "Mounts": mounts.join(","), "Size": "",
    })
}

pub async fn ps(c: &Client, a: PsArgs) -> Result<()> {
    let limit = if a.latest { Some(1) } else { a.last };
    let q = Query::new()
        .flag("all", a.all)
        .opt("filters", &filters(&a.filter)?)
        .opt("limit", &limit.map(|l| l.to_string()).unwrap_or_default());
    let list: Vec<Value> = c.get("/containers/json", q).await?;
    if a.quiet {
        let s: String = list
            .iter()
            .map(|v| format!("{}\n", short_id(v["Id"].as_str().unwrap_or(""), a.no_trunc)))
            .collect();
        return output::print_str(&s);
    }
    let rows: Vec<Value> = list.iter().map(|v| ps_row(v, a.no_trunc)).collect();
    output::print_rows(
        &rows,
        &Format::parse(a.format.as_deref()),
        &[
            ("CONTAINER ID", "ID"),
            ("IMAGE", "Image"),
            ("COMMAND", "Command"),
            ("CREATED", "RunningFor"),
            ("STATUS", "Status"),
            ("PORTS", "Ports"),
            ("NAMES", "Names"),
        ],
    )
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    if !confirm(a.force, "WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let v = c
        .post(
            "/containers/prune",
            Query::new().opt("filters", &filters(&a.filter)?),
            None,
        )
        .await?;
    let mut s = String::new();
    if let Some(ids) = v["ContainersDeleted"].as_array().filter(|a| !a.is_empty()) {
        s.push_str("Deleted Containers:\n");
        for id in ids.iter().filter_map(Value::as_str) {
            s.push_str(id);
            s.push('\n');
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    ));
    output::print_str(&s)
}

pub async fn top(c: &Client, name: &str) -> Result<()> {
    let v: Value = c.get(&cpath(name, "top"), Query::new()).await?;
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut t = Table::new(&titles);
    for p in v["Processes"].as_array().into_iter().flatten() {
        t.row(
            p.as_array()
                .into_iter()
                .flatten()
                .map(output::cell)
                .collect(),
        );
    }
    t.print()
}

pub async fn port(c: &Client, name: &str, want: Option<&str>) -> Result<()> {
    let v: Value = c.get(&cpath(name, "json"), Query::new()).await?;
    let want = want.map(|w| {
        if w.contains('/') {
            w.to_string()
        } else {
            format!("{w}/tcp")
        }
    });
    let mut out = String::new();
    let mut found = false;
    for (k, binds) in v["NetworkSettings"]["Ports"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in binds.as_array().into_iter().flatten() {
            found = true;
            let hp = b["HostPort"].as_str().unwrap_or("");
            let ip = b["HostIp"].as_str().unwrap_or("0.0.0.0");
            let addr = if ip.contains(':') {
                format!("[{ip}]:{hp}")
            } else {
                format!("{ip}:{hp}")
            };
            if want.is_some() {
                out.push_str(&format!("{addr}\n"));
            } else {
                out.push_str(&format!("{k} -> {addr}\n"));
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        return Err(Error::usage(format!(
            "Error: No public port '{w}' published for {name}"
        )));
    }
    output::print_str(&out)
}

/// One `stats` row from a stats object.
fn stats_row(s: &Value) -> Value {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu_delta = num(&cpu["cpu_usage"]["total_usage"]) - num(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = num(&cpu["system_cpu_usage"]) - num(&pre["system_cpu_usage"]);
    let cpus = cpu["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu_pct = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let usage = s["memory_stats"]["usage"].as_u64().unwrap_or(0);
    let limit = s["memory_stats"]["limit"].as_u64().unwrap_or(0);
    let mem_pct = if limit > 0 {
        usage as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += n["rx_bytes"].as_u64().unwrap_or(0);
        tx += n["tx_bytes"].as_u64().unwrap_or(0);
    }
    let (mut br, mut bw) = (0u64, 0u64);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br += e["value"].as_u64().unwrap_or(0),
            Some("write") => bw += e["value"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or("");
    json!({
        "ID": short_id(id, false), "Container": short_id(id, false),
        "Name": s["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": format!("{cpu_pct:.2}%"), "MemPerc": format!("{mem_pct:.2}%"),
        "MemUsage": format!("{} / {}", human_bytes(usage), human_bytes(limit)),
        "NetIO": format!("{} / {}", human_size(rx as i64), human_size(tx as i64)),
        "BlockIO": format!("{} / {}", human_size(br as i64), human_size(bw as i64)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0),
    })
}

pub async fn stats(c: &Client, a: StatsArgs) -> Result<()> {
    let names = if a.names.is_empty() {
        let list: Vec<Value> = c
            .get("/containers/json", Query::new().flag("all", a.all))
            .await?;
        list.iter()
            .filter_map(|v| v["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.names.clone()
    };
    let fmt = Format::parse(a.format.as_deref());
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let mut set = tokio::task::JoinSet::new();
        for (i, n) in names.iter().enumerate() {
            let (c, path) = (c.clone(), cpath(n, "stats"));
            set.spawn(async move {
                (
                    i,
                    c.get::<Value>(&path, Query::new().add("stream", "false"))
                        .await,
                )
            });
        }
        let mut rows: Vec<(usize, Value)> = Vec::new();
        while let Some(r) = set.join_next().await {
            let (i, r) = r.map_err(|e| Error::Stream(format!("stats task: {e}")))?;
            rows.push((i, stats_row(&r?)));
        }
        rows.sort_by_key(|(i, _)| *i);
        let rows: Vec<Value> = rows.into_iter().map(|(_, r)| r).collect();
        if !a.no_stream && tty {
            output::print_str("\x1b[2J\x1b[H")?;
        }
        output::print_rows(
            &rows,
            &fmt,
            &[
                ("CONTAINER ID", "ID"),
                ("NAME", "Name"),
                ("CPU %", "CPUPerc"),
                ("MEM USAGE / LIMIT", "MemUsage"),
                ("MEM %", "MemPerc"),
                ("NET I/O", "NetIO"),
                ("BLOCK I/O", "BlockIO"),
                ("PIDS", "PIDs"),
            ],
        )?;
        if a.no_stream {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows() {
        let v = json!({"Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox",
            "Command": "sh -c 'while true; do sleep 1; done'", "Created": 0, "State": "running", "Status": "Up 1 second",
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 443, "Type": "tcp"}]});
        let r = ps_row(&v, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Command"], "\"sh -c 'while true; …\"");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp, 443/tcp");
    }

    #[test]
    fn stats_math() {
        let s = json!({"id": "abcdef0123456789", "name": "/x",
            "cpu_stats": {"cpu_usage": {"total_usage": 200}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 1048576, "limit": 4194304}, "pids_stats": {"current": 3}});
        let r = stats_row(&s);
        assert_eq!(r["CPUPerc"], "20.00%");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["MemUsage"], "1MiB / 4MiB");
        assert_eq!(r["Name"], "x");
        assert_eq!(r["PIDs"], 3);
    }
}
