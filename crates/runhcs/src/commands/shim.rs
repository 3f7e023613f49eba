use crate::cli::{Global, ShimArgs};
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, g: &Global, a: &ShimArgs) -> Result<i32> {
    crate::shim::run(root, &g.owner, g.log.as_deref(), a)
}
