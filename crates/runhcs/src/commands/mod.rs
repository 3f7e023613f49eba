//! One thin file per verb: parse → call `hcs` → print.

mod create;
mod delete;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod shim;
mod spec;
mod start;
mod state;
mod update;

use crate::cli::{Cli, Command};
use anyhow::{bail, Result};

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let g = &cli.global;
    if g.systemd_cgroup {
        bail!("--systemd-cgroup: systemd cgroup management is not supported by runhcs (no systemd on this host); use cgroupfs paths in linux.cgroupsPath");
    }
    let root = g.root.as_path();
    match &cli.command {
        Command::Create(a) => create::create(root, g, a),
        Command::Run { create, detach, .. } => create::run(root, g, create, *detach),
        Command::Start { id } => start::run(root, id),
        Command::Exec(a) => exec::run(root, a),
        Command::Kill { all, id, signal } => kill::run(root, id, signal, *all),
        Command::Delete { force, id } => delete::run(root, id, *force),
        Command::State { id } => state::run(root, id),
        Command::List { format, quiet } => list::run(root, format, *quiet),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps::run(root, id, format, ps_args),
        Command::Pause { id } => pause::pause(root, id),
        Command::Resume { id } => pause::resume(root, id),
        Command::Update {
            resources,
            memory,
            pids_limit,
            cpu_shares,
            cpu_quota,
            cpu_period,
            id,
        } => update::run(
            root,
            id,
            resources.as_deref(),
            update::Flags {
                memory: *memory,
                pids_limit: *pids_limit,
                cpu_shares: *cpu_shares,
                cpu_quota: *cpu_quota,
                cpu_period: *cpu_period,
            },
        ),
        Command::Spec { bundle, rootless } => spec::run(bundle, *rootless),
        Command::Features => features::run(),
        Command::Shim(a) => shim::run(root, g, a),
    }
}
