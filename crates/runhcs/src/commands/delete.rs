use anyhow::Result;
use hcs::process::{ops, state};
use std::path::Path;

pub fn run(root: &Path, id: &str, force: bool) -> Result<i32> {
    let rec = match state::load(root, id) {
        Ok(r) => r,
        // runc: deleting a container that does not exist with --force is not an error.
        Err(hcs::Error::NotFound { .. }) if force => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    ops::delete(root, &rec, force)?;
    Ok(0)
}
