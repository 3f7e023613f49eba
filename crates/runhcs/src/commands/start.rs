use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, id: &str) -> Result<i32> {
    hcs::ComputeSystem::open(root, id)?.start()?;
    Ok(0)
}
