//! `inspect`: containers, images, networks and volumes, tried in docker's order when no
//! `--type` is given; printed as indented JSON, `--format json` or a template.

use serde_json::Value;

use crate::cli::InspectArgs;
use crate::client::{path_seg, Client, Query};
use crate::error::{Error, Result};
use crate::output::{self, Template};

const KINDS: [&str; 4] = ["container", "image", "network", "volume"];

async fn fetch(c: &Client, kind: &str, name: &str, size: bool) -> Result<Value> {
    let n = path_seg(name);
    match kind {
        "container" => {
            c.get(
                &format!("/containers/{n}/json"),
                Query::new().flag("size", size),
            )
            .await
        }
        "image" => c.get(&format!("/images/{n}/json"), Query::new()).await,
        "network" => c.get(&format!("/networks/{n}"), Query::new()).await,
        "volume" => c.get(&format!("/volumes/{n}"), Query::new()).await,
        k => Err(Error::usage(format!(
            "\"{k}\" is not a valid value for --type (container, image, network, volume)"
        ))),
    }
}

pub async fn inspect(c: &Client, a: InspectArgs, kind: Option<&str>) -> Result<()> {
    let kind = a.kind.as_deref().or(kind);
    let tpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(
            &f.replace("\\t", "\t").replace("\\n", "\n"),
        )?),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        let result = match kind {
            Some(k) => fetch(c, k, name, a.size).await,
            None => {
                let mut r = Err(Error::Usage(format!("Error: No such object: {name}")));
                for k in KINDS {
                    match fetch(c, k, name, a.size).await {
                        Err(e) if e.is_not_found() => continue,
                        other => {
                            r = other;
                            break;
                        }
                    }
                }
                r
            }
        };
        match result {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    let out = match (&tpl, a.format.as_deref()) {
        (Some(t), _) => found
            .iter()
            .map(|v| t.render(v).map(|s| s + "\n"))
            .collect::<Result<String>>()?,
        (None, Some("json")) => found.iter().map(|v| format!("{v}\n")).collect(),
        (None, _) => format!("{}\n", output::pretty(&Value::Array(found))),
    };
    output::print_str(&out)?;
    match errors.len() {
        0 => Ok(()),
        _ => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(Error::Status(1))
        }
    }
}
