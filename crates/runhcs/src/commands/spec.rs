use anyhow::{bail, Context, Result};
use std::path::Path;

/// The default spec, as `runc spec` writes it (busybox-friendly `sh`, terminal on).
const DEFAULT_SPEC: &str = include_str!("default-config.json");

pub fn run(bundle: &Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec: serde_json::Value =
        serde_json::from_str(DEFAULT_SPEC).context("built-in default spec")?;
    if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
        if let Some(ns) = linux["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
            ns.push(serde_json::json!({ "type": "user" }));
        }
        linux.as_object_mut().map(|o| o.remove("resources"));
    }
    std::fs::write(&path, serde_json::to_string_pretty(&spec)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
