//! `network create/ls/rm/inspect/connect/disconnect/prune`.

use serde_json::{json, Map, Value};

use super::{confirm, each, filters, labels, short_id};
use crate::cli::{ConnectArgs, DisconnectArgs, ListArgs, NetworkCmd, NetworkCreateArgs};
use crate::client::{path_seg, Client, Query};
use crate::error::{Error, Result};
use crate::output::{self, Format};

pub async fn run(c: &Client, cmd: NetworkCmd) -> Result<()> {
    match cmd {
        NetworkCmd::Create(a) => create(c, a).await,
        NetworkCmd::Ls(a) => ls(c, a).await,
        NetworkCmd::Rm(n) => {
            each(&n.names, true, |name| async move {
                c.delete(&format!("/networks/{}", path_seg(&name)), Query::new())
                    .await
                    .map(drop)
            })
            .await
        }
        NetworkCmd::Connect(a) => connect(c, a).await,
        NetworkCmd::Disconnect(a) => disconnect(c, a).await,
        NetworkCmd::Prune(a) => {
            if !confirm(
                a.force,
                "WARNING! This will remove all custom networks not used by at least one container.",
            )? {
                return Ok(());
            }
            let v = c
                .post(
                    "/networks/prune",
                    Query::new().opt("filters", &filters(&a.filter)?),
                    None,
                )
                .await?;
            let names: Vec<&str> = v["NetworksDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !names.is_empty() {
                output::print_str(&format!("Deleted Networks:\n{}\n", names.join("\n")))?;
            }
            Ok(())
        }
        NetworkCmd::Inspect(_) => Err(Error::usage("network inspect is dispatched by inspect")),
    }
}

/// `key=value` driver options as a map.
fn opts(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (o.clone(), json!("")),
        })
        .collect()
}

async fn create(c: &Client, a: NetworkCreateArgs) -> Result<()> {
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        return Err(Error::usage(
            "every --gateway and --ip-range needs a --subnet",
        ));
    }
    let config: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut m = json!({"Subnet": s});
            if let Some(g) = a.gateway.get(i) {
                m["Gateway"] = json!(g);
            }
            if let Some(r) = a.ip_range.get(i) {
                m["IPRange"] = json!(r);
            }
            m
        })
        .collect();
    let body = json!({
        "Name": a.name, "Driver": a.driver, "Internal": a.internal, "Attachable": a.attachable,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Options": opts(&a.opt), "Labels": labels(&a.label),
    });
    let v = c
        .post("/networks/create", Query::new(), Some(&body))
        .await?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

async fn ls(c: &Client, a: ListArgs) -> Result<()> {
    let list: Vec<Value> = c
        .get(
            "/networks",
            Query::new().opt("filters", &filters(&a.filter)?),
        )
        .await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            json!({
                "ID": short_id(n["Id"].as_str().unwrap_or(""), a.no_trunc), "Name": n["Name"],
                "Driver": n["Driver"], "Scope": n["Scope"], "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false),
                "Internal": n["Internal"].as_bool().unwrap_or(false), "CreatedAt": n["Created"],
                "Labels": output::labels_csv(&n["Labels"]),
            })
        })
        .collect();
    if a.quiet {
        return output::print_column(&rows, "ID");
    }
    output::print_rows(
        &rows,
        &Format::parse(a.format.as_deref()),
        &[
            ("NETWORK ID", "ID"),
            ("NAME", "Name"),
            ("DRIVER", "Driver"),
            ("SCOPE", "Scope"),
        ],
    )
}

async fn connect(c: &Client, a: ConnectArgs) -> Result<()> {
    let mut ep = json!({"Aliases": a.alias});
    if let Some(ip) = &a.ip {
        ep["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    let body = json!({"Container": a.container, "EndpointConfig": ep});
    c.post(
        &format!("/networks/{}/connect", path_seg(&a.network)),
        Query::new(),
        Some(&body),
    )
    .await
    .map(drop)
}

async fn disconnect(c: &Client, a: DisconnectArgs) -> Result<()> {
    let body = json!({"Container": a.container, "Force": a.force});
    c.post(
        &format!("/networks/{}/disconnect", path_seg(&a.network)),
        Query::new(),
        Some(&body),
    )
    .await
    .map(drop)
}
