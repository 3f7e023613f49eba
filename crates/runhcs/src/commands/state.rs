use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, id: &str) -> Result<i32> {
    let system = hcs::ComputeSystem::open(root, id)?;
    println!("{}", serde_json::to_string_pretty(&system.oci_state())?);
    Ok(0)
}
