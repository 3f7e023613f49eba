use anyhow::Result;
use std::path::Path;

pub fn pause(root: &Path, id: &str) -> Result<i32> {
    hcs::ComputeSystem::open(root, id)?.pause()?;
    Ok(0)
}

pub fn resume(root: &Path, id: &str) -> Result<i32> {
    hcs::ComputeSystem::open(root, id)?.resume()?;
    Ok(0)
}
