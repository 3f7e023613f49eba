//! Operations on an existing container: kill, delete, pause, resume, list, processes.

use super::launch::wait_pidfd;
use super::state::{self, Record, Status};
use super::{hooks, init, sys};
use crate::{Error, Result};
use std::path::Path;

pub fn kill(root: &Path, rec: &Record, sig: i32, all: bool) -> Result<()> {
    let st = state::status(root, rec);
    if st == Status::Stopped {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "signal",
            state: st.to_string(),
        });
    }
    if all {
        let sig = nix::sys::signal::Signal::try_from(sig)
            .map_err(|e| Error::sys(format!("signal {sig}"), e))?;
        return Ok(rec.cgroup.kill_all(sig)?);
    }
    let pidfd = sys::pidfd_open(rec.pid).map_err(|e| Error::sys("open container init", e))?;
    // The pidfd pins the process; make sure it is still our init before signalling.
    if !state::init_alive(rec) {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "signal",
            state: "stopped".into(),
        });
    }
    sys::pidfd_send_signal(&pidfd, sig)
        .map_err(|e| Error::sys(format!("send signal {sig} to container {}", rec.id), e))
}

/// Removes a container. A running or paused one needs `force` (it is killed first); a created
/// one is killed like runc does.
pub fn delete(root: &Path, rec: &Record, force: bool) -> Result<()> {
    let st = state::status(root, rec);
    match st {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_and_wait(rec)?,
        Status::Running | Status::Paused if force => {
            if st == Status::Paused {
                rec.cgroup.thaw()?;
            }
            kill_and_wait(rec)?;
        }
        Status::Running | Status::Paused => {
            return Err(Error::InvalidState {
                id: rec.id.clone(),
                op: "delete",
                state: format!("{st} (use --force)"),
            });
        }
    }
    // Processes left in the cgroup (exec'd, or the init's children after it died) go too.
    if rec.cgroup.pids().map(|p| !p.is_empty()).unwrap_or(false) {
        rec.cgroup.kill_all(nix::sys::signal::Signal::SIGKILL)?;
    }
    destroy_cgroup(rec)?;
    let st = state::oci_state(root, rec);
    for e in hooks::run_all(
        "poststop",
        rec.spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref()),
        &st,
    ) {
        tracing::warn!(container_id = %rec.id, error = %init::error_chain(&e), "poststop hook failed");
    }
    let dir = state::dir(root, &rec.id);
    std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove state directory", dir, e))
}

fn destroy_cgroup(rec: &Record) -> Result<()> {
    let mut last = None;
    for _ in 0..200 {
        match rec.cgroup.destroy() {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(last
        .map(Error::from)
        .unwrap_or_else(|| Error::Init("remove cgroup".into())))
}

fn kill_and_wait(rec: &Record) -> Result<()> {
    if !state::init_alive(rec) {
        return Ok(());
    }
    let pidfd = match sys::pidfd_open(rec.pid) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(Error::sys("open container init", e)),
    };
    if !state::init_alive(rec) {
        return Ok(());
    }
    match sys::pidfd_send_signal(&pidfd, libc::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => return Err(Error::sys(format!("kill container {}", rec.id), e)),
    }
    if !wait_pidfd(&pidfd, 10_000) {
        return Err(Error::Init(format!(
            "container {} did not exit after SIGKILL",
            rec.id
        )));
    }
    // A zombie counts as gone for us (its parent reaps it); wait until it is not "alive".
    for _ in 0..1000 {
        if !state::init_alive(rec) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

pub fn pause(root: &Path, rec: &Record) -> Result<()> {
    let st = state::status(root, rec);
    if st != Status::Running && st != Status::Created {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "pause",
            state: st.to_string(),
        });
    }
    Ok(rec.cgroup.freeze()?)
}

pub fn resume(root: &Path, rec: &Record) -> Result<()> {
    let st = state::status(root, rec);
    if st != Status::Paused {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "resume",
            state: st.to_string(),
        });
    }
    Ok(rec.cgroup.thaw()?)
}

pub fn pids(root: &Path, rec: &Record) -> Result<Vec<i32>> {
    if state::status(root, rec) == Status::Stopped {
        return Ok(Vec::new());
    }
    Ok(rec.cgroup.pids()?)
}

/// Every container under `root`, sorted by id; unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<Record>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list containers in", root, e)),
    };
    let mut out: Vec<Record> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|id| state::load(root, id).ok())
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
