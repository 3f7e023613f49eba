use anyhow::Result;
use hcs::ComputeSystem;
use std::path::Path;

pub fn run(root: &Path, id: &str, force: bool) -> Result<i32> {
    let system = match ComputeSystem::open(root, id) {
        Ok(r) => r,
        // runc: deleting a container that does not exist with --force is not an error.
        Err(hcs::Error::NotFound { .. }) if force => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    system.delete(force)?;
    Ok(0)
}
