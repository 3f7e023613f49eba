use crate::cli::ExecArgs;
use anyhow::{bail, Context, Result};
use hcs::process::{spec, ExecOptions};
use oci_spec::runtime::{Capability, Process};
use std::path::Path;
use std::str::FromStr;

pub fn run(root: &Path, a: &ExecArgs) -> Result<i32> {
    let system = hcs::ComputeSystem::open(root, &a.id)?;
    let process = match &a.process {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("read --process {}", p.display()))?;
            spec::parse_process(&bytes, p)?
        }
        None => from_flags(system.record().spec.process().as_ref(), a)?,
    };
    let opts = ExecOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        stdio: None,
    };
    Ok(system.exec(&process, &opts)?)
}

/// runc's rule: the container's process is the template; flags override or add.
fn from_flags(template: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        bail!("exec: the command to run is missing (give it after the container id, or use --process)");
    }
    let mut p = template.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (
                u.parse::<u32>().context("--user uid")?,
                Some(g.parse::<u32>().context("--user gid")?),
            ),
            None => (u.parse::<u32>().context("--user must be UID[:GID]")?, None),
        };
        let mut user = p.user().clone();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let name = c.to_ascii_uppercase();
            let cap = Capability::from_str(name.strip_prefix("CAP_").unwrap_or(&name))
                .with_context(|| format!("--cap {c}: unknown capability"))?;
            let mut b = caps.bounding().clone().unwrap_or_default();
            b.insert(cap);
            caps.set_bounding(Some(b));
            let mut e = caps.effective().clone().unwrap_or_default();
            e.insert(cap);
            caps.set_effective(Some(e));
            let mut pm = caps.permitted().clone().unwrap_or_default();
            pm.insert(cap);
            caps.set_permitted(Some(pm));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
