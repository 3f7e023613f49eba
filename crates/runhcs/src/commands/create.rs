use crate::cli::{CreateArgs, Global};
use anyhow::Result;
use hcs::process::{Bundle, CreateOptions};
use hcs::ComputeSystem;
use std::path::Path;

fn options(g: &Global, a: &CreateArgs, foreground: bool) -> CreateOptions {
    CreateOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        owner: g.owner.clone(),
        foreground,
        stdio: None,
    }
}

pub fn create(root: &Path, g: &Global, a: &CreateArgs) -> Result<i32> {
    let bundle = Bundle::load(&a.bundle)?;
    ComputeSystem::create_from_bundle(root, &a.id, bundle, &options(g, a, false))?;
    Ok(0)
}

pub fn run(root: &Path, g: &Global, a: &CreateArgs, detach: bool) -> Result<i32> {
    let bundle = Bundle::load(&a.bundle)?;
    let mut system =
        ComputeSystem::create_from_bundle(root, &a.id, bundle, &options(g, a, !detach))?;
    if detach {
        if let Err(e) = system.start() {
            // Do not leave a half-started container behind.
            system.delete(true).ok();
            return Err(e.into());
        }
        return Ok(0);
    }
    Ok(system.run_foreground()?)
}
