use crate::cli::{CreateArgs, Global};
use anyhow::Result;
use hcs::process::{launch, Bundle, CreateOptions, LaunchMode};
use std::path::Path;

fn options(g: &Global, a: &CreateArgs, foreground: bool) -> CreateOptions {
    CreateOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        owner: g.owner.clone(),
        foreground,
    }
}

pub fn create(root: &Path, g: &Global, a: &CreateArgs) -> Result<i32> {
    let bundle = Bundle::load(&a.bundle)?;
    launch::create(
        root,
        &a.id,
        &bundle,
        LaunchMode::Create,
        &options(g, a, false),
    )?;
    Ok(0)
}

pub fn run(root: &Path, g: &Global, a: &CreateArgs, detach: bool) -> Result<i32> {
    let bundle = Bundle::load(&a.bundle)?;
    let launched = launch::create(
        root,
        &a.id,
        &bundle,
        LaunchMode::Run,
        &options(g, a, !detach),
    )?;
    if detach {
        let rec = launched.record.clone();
        drop(launched);
        if let Err(e) = launch::start(root, &rec) {
            // Do not leave a half-started container behind.
            hcs::process::ops::delete(root, &rec, true).ok();
            return Err(e.into());
        }
        return Ok(0);
    }
    Ok(launch::run_foreground(root, launched)?)
}
