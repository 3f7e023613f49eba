use anyhow::{Context, Result};
use oci_spec::runtime::LinuxResources;
use std::io::Read;
use std::path::Path;

pub struct Flags {
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
}

pub fn run(root: &Path, id: &str, resources: Option<&Path>, f: Flags) -> Result<i32> {
    let system = hcs::ComputeSystem::open(root, id)?;
    let mut res: serde_json::Value = match resources {
        Some(p) if p == Path::new("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read resources from stdin")?;
            serde_json::from_str(&s).context("parse resources from stdin")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("parse {}", p.display()))?,
        None => serde_json::json!({}),
    };
    let obj = res
        .as_object_mut()
        .context("resources must be a JSON object")?;
    if let Some(m) = f.memory {
        obj.insert("memory".into(), serde_json::json!({ "limit": m }));
    }
    if let Some(p) = f.pids_limit {
        obj.insert("pids".into(), serde_json::json!({ "limit": p }));
    }
    if f.cpu_shares.is_some() || f.cpu_quota.is_some() || f.cpu_period.is_some() {
        obj.insert("cpu".into(), serde_json::json!({ "shares": f.cpu_shares, "quota": f.cpu_quota, "period": f.cpu_period }));
    }
    let res: LinuxResources = serde_json::from_value(res).context("resources")?;
    system.update(&res)?;
    Ok(0)
}
