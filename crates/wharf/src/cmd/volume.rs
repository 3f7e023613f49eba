//! `volume create/ls/rm/inspect/prune`.

use serde_json::{json, Map, Value};

use super::{confirm, each, filters, labels};
use crate::cli::{ListArgs, VolumeCmd, VolumeCreateArgs};
use crate::client::{path_seg, Client, Query};
use crate::error::{Error, Result};
use crate::output::{self, human_size, Format};

pub async fn run(c: &Client, cmd: VolumeCmd) -> Result<()> {
    match cmd {
        VolumeCmd::Create(a) => create(c, a).await,
        VolumeCmd::Ls(a) => ls(c, a).await,
        VolumeCmd::Rm(a) => {
            each(&a.names, true, |n| {
                let q = Query::new().flag("force", a.force);
                async move {
                    c.delete(&format!("/volumes/{}", path_seg(&n)), q)
                        .await
                        .map(drop)
                }
            })
            .await
        }
        VolumeCmd::Prune(a) => {
            if !confirm(a.prune.force, "WARNING! This will remove anonymous local volumes not used by at least one container.")? {
                return Ok(());
            }
            let mut f = a.prune.filter.clone();
            if a.all {
                f.push("all=true".into());
            }
            let v = c
                .post(
                    "/volumes/prune",
                    Query::new().opt("filters", &filters(&f)?),
                    None,
                )
                .await?;
            let mut s = String::new();
            let names: Vec<&str> = v["VolumesDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !names.is_empty() {
                s.push_str(&format!("Deleted Volumes:\n{}\n\n", names.join("\n")));
            }
            s.push_str(&format!(
                "Total reclaimed space: {}\n",
                human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
            ));
            output::print_str(&s)
        }
        VolumeCmd::Inspect(_) => Err(Error::usage("volume inspect is dispatched by inspect")),
    }
}

async fn create(c: &Client, a: VolumeCreateArgs) -> Result<()> {
    let opts: Map<String, Value> = a
        .opt
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (o.clone(), json!("")),
        })
        .collect();
    let body = json!({"Name": a.name.unwrap_or_default(), "Driver": a.driver, "DriverOpts": opts, "Labels": labels(&a.label)});
    let v = c.post("/volumes/create", Query::new(), Some(&body)).await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(())
}

async fn ls(c: &Client, a: ListArgs) -> Result<()> {
    let v: Value = c
        .get(
            "/volumes",
            Query::new().opt("filters", &filters(&a.filter)?),
        )
        .await?;
    let rows: Vec<Value> = v["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            json!({
                "Name": v["Name"], "Driver": v["Driver"], "Scope": v["Scope"], "Mountpoint": v["Mountpoint"],
                "CreatedAt": v["CreatedAt"],
                "Labels": output::labels_csv(&v["Labels"]),
            })
        })
        .collect();
    if a.quiet {
        return output::print_column(&rows, "Name");
    }
    output::print_rows(
        &rows,
        &Format::parse(a.format.as_deref()),
        &[("DRIVER", "Driver"), ("VOLUME NAME", "Name")],
    )
}
