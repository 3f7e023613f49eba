//! `info`, `version`, `events`, `system df`, `system prune` and `completion`.

use clap::CommandFactory;
use serde_json::{json, Value};

use super::{confirm, filters};
use crate::cli::{Cli, EventsArgs, FormatArg, SystemPruneArgs};
use crate::client::{Body, Client, JsonLines, Query, CLIENT_API};
use crate::error::Result;
use crate::output::{self, human_bytes, human_size, Format, Template};

/// `--format`: `json` prints the object, anything else is a template; `None` for the text.
fn formatted(v: &Value, f: &FormatArg) -> Result<bool> {
    match f.format.as_deref() {
        None | Some("") => Ok(false),
        Some("json") => output::print_str(&format!("{v}\n")).map(|()| true),
        Some(t) => {
            let s = Template::parse(&t.replace("\\n", "\n").replace("\\t", "\t"))?.render(v)?;
            output::print_str(&format!("{s}\n")).map(|()| true)
        }
    }
}

pub async fn version(c: &Client, f: FormatArg) -> Result<()> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let server: Value = c.get("/version", Query::new()).await?;
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": c.version(), "DefaultAPIVersion": CLIENT_API,
        "Os": "linux", "Arch": arch, "Platform": {"Name": "wharf"},
    });
    let all = json!({"Client": client, "Server": server});
    if formatted(&all, &f)? {
        return Ok(());
    }
    let s = |v: &Value| output::cell(v);
    let api = if c.version() == CLIENT_API {
        c.version().to_string()
    } else {
        format!("{} (downgraded from {CLIENT_API})", c.version())
    };
    let text = format!(
        "Client:\n Version:           {}\n API version:       {api}\n OS/Arch:           linux/{arch}\n\n\
         Server: {}\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  \
         OS/Arch:          {}/{}\n  Kernel Version:   {}\n",
        env!("CARGO_PKG_VERSION"),
        s(&server["Platform"]["Name"]),
        s(&server["Version"]),
        s(&server["ApiVersion"]),
        s(&server["MinAPIVersion"]),
        s(&server["Os"]),
        s(&server["Arch"]),
        s(&server["KernelVersion"]),
    );
    output::print_str(&text)
}

pub async fn info(c: &Client, f: FormatArg) -> Result<()> {
    let v: Value = c.get("/info", Query::new()).await?;
    if formatted(&v, &f)? {
        return Ok(());
    }
    let s = |k: &str| output::cell(&v[k]);
    let mut t = String::new();
    t.push_str(&format!(
        "Client:\n Version:    {}\n Context:    default\n\n",
        env!("CARGO_PKG_VERSION")
    ));
    t.push_str(&format!(
        "Server:\n Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n",
        s("Containers"),
        s("ContainersRunning"),
        s("ContainersPaused"),
        s("ContainersStopped"),
        s("Images")
    ));
    t.push_str(&format!(
        " Server Version: {}\n Storage Driver: {}\n",
        s("ServerVersion"),
        s("Driver")
    ));
    for kv in v["DriverStatus"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "  {}: {}\n",
            output::cell(&kv[0]),
            output::cell(&kv[1])
        ));
    }
    t.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n",
        s("LoggingDriver"),
        s("CgroupDriver"),
        s("CgroupVersion")
    ));
    let runtimes: Vec<&String> = v["Runtimes"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .collect();
    t.push_str(&format!(
        " Runtimes: {}\n Default Runtime: {}\n",
        runtimes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        s("DefaultRuntime")
    ));
    let modes: Vec<&String> = v["IsolationModes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, on)| on.as_bool() == Some(true))
        .map(|(k, _)| k)
        .collect();
    t.push_str(&format!(
        " Default Isolation: {}\n Isolation Modes: {}\n KVM Usable: {}\n",
        s("Isolation"),
        modes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        s("KvmUsable")
    ));
    let sec: Vec<String> = v["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(output::cell)
        .collect();
    if !sec.is_empty() {
        t.push_str(&format!(" Security Options:\n  {}\n", sec.join("\n  ")));
    }
    t.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n",
        s("KernelVersion"),
        s("OperatingSystem"),
        s("OSType"),
        s("Architecture"),
        s("NCPU"),
        human_bytes(v["MemTotal"].as_u64().unwrap_or(0)),
        s("Name"),
        s("ID"),
        s("DockerRootDir")
    ));
    output::print_str(&t)
}

pub async fn events(c: &Client, a: EventsArgs) -> Result<()> {
    let q = Query::new()
        .opt(
            "since",
            &output::time_arg("--since", a.since.as_deref().unwrap_or(""))?,
        )
        .opt(
            "until",
            &output::time_arg("--until", a.until.as_deref().unwrap_or(""))?,
        )
        .opt("filters", &filters(&a.filter)?);
    let resp = c
        .request(hyper::Method::GET, "/events", q, Body::Empty, &[])
        .await?;
    let mut lines = JsonLines::new(resp);
    let fmt = Format::parse(a.format.as_deref());
    let tpl = match &fmt {
        Format::Template(t) | Format::TableTemplate(t) => Some(Template::parse(t)?),
        _ => None,
    };
    while let Some(e) = lines.next().await? {
        let line = match (&fmt, &tpl) {
            (Format::Json, _) => e.to_string(),
            (_, Some(t)) => t.render(&e)?,
            _ => event_text(&e),
        };
        output::print_str(&format!("{line}\n"))?;
    }
    Ok(())
}

/// `2024-01-02T03:04:05.000000000Z container start <id> (image=busybox, name=x)`.
fn event_text(e: &Value) -> String {
    let ns = e["timeNano"]
        .as_i64()
        .unwrap_or(e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let attrs: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", output::cell(v)))
        .collect();
    let mut s = format!(
        "{} {} {} {}",
        rfc3339_nano(ns),
        output::cell(&e["Type"]),
        output::cell(&e["Action"]),
        output::cell(&e["Actor"]["ID"])
    );
    if !attrs.is_empty() {
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

fn rfc3339_nano(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub async fn df(c: &Client, f: FormatArg) -> Result<()> {
    let v: Value = c.get("/system/df", Query::new()).await?;
    if formatted(&v, &f)? {
        return Ok(());
    }
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let size = |items: &[Value], key: &str| {
        items
            .iter()
            .map(|i| i[key].as_i64().unwrap_or(0).max(0))
            .sum::<i64>()
    };
    let image_size = v["LayersSize"]
        .as_i64()
        .unwrap_or_else(|| size(&images, "Size"));
    // Containers name their image by reference or ID; an image is active if either matches.
    let used: std::collections::HashSet<&str> = containers
        .iter()
        .flat_map(|c| [c["Image"].as_str(), c["ImageID"].as_str()])
        .flatten()
        .collect();
    let active_images = images
        .iter()
        .filter(|i| {
            i["Containers"].as_i64().unwrap_or(0) > 0
                || i["Id"].as_str().is_some_and(|id| used.contains(id))
                || i["RepoTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|t| {
                        used.contains(t)
                            || t.strip_suffix(":latest").is_some_and(|s| used.contains(s))
                    })
        })
        .count();
    let running = containers
        .iter()
        .filter(|c| c["State"].as_str() == Some("running"))
        .count();
    let ctr_size = size(&containers, "SizeRw");
    let vol_size: i64 = volumes
        .iter()
        .map(|x| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let active_vols = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let mut t = output::Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    t.row(vec![
        "Images".into(),
        images.len().to_string(),
        active_images.to_string(),
        human_size(image_size),
        "-".into(),
    ]);
    t.row(vec![
        "Containers".into(),
        containers.len().to_string(),
        running.to_string(),
        human_size(ctr_size),
        "-".into(),
    ]);
    t.row(vec![
        "Local Volumes".into(),
        volumes.len().to_string(),
        active_vols.to_string(),
        human_size(vol_size),
        "-".into(),
    ]);
    t.row(vec![
        "Build Cache".into(),
        "0".into(),
        "0".into(),
        "0B".into(),
        "0B".into(),
    ]);
    t.print()
}

pub async fn prune(c: &Client, a: SystemPruneArgs) -> Result<()> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    });
    if !confirm(a.prune.force, &warning)? {
        return Ok(());
    }
    let f = filters(&a.prune.filter)?;
    let mut s = String::new();
    let v = c
        .post("/containers/prune", Query::new().opt("filters", &f), None)
        .await?;
    let ids: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !ids.is_empty() {
        s.push_str(&format!("Deleted Containers:\n{}\n\n", ids.join("\n")));
    }
    let v = c
        .post("/networks/prune", Query::new().opt("filters", &f), None)
        .await?;
    let nets: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !nets.is_empty() {
        s.push_str(&format!("Deleted Networks:\n{}\n\n", nets.join("\n")));
    }
    if a.volumes {
        let v = c
            .post("/volumes/prune", Query::new().opt("filters", &f), None)
            .await?;
        let vols: Vec<&str> = v["VolumesDeleted"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !vols.is_empty() {
            s.push_str(&format!("Deleted Volumes:\n{}\n\n", vols.join("\n")));
        }
    }
    let mut img_filters = a.prune.filter.clone();
    img_filters.push(format!("dangling={}", !a.all));
    let v = c
        .post(
            "/images/prune",
            Query::new().opt("filters", &filters(&img_filters)?),
            None,
        )
        .await?;
    s.push_str(&super::image::prune_report(&v));
    output::print_str(&s)
}

pub fn completion(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "wharf", &mut out);
    output::print_str(&String::from_utf8_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        assert_eq!(
            rfc3339_nano(86_401_000_000_005),
            "1970-01-02T00:00:01.000000005Z"
        );
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x"}}, "timeNano": 0});
        assert_eq!(
            event_text(&e),
            "1970-01-01T00:00:00.000000000Z container start abc (name=x)"
        );
    }
}
