//! `exec`: a new process inside a running container's namespaces and cgroup.

use super::foreground;
use super::init::{self, Mode};
use super::launch::{ns_proc_name, write_pid_file};
use super::state::{self, Record, Status};
use super::sync::{self, Msg};
use super::sys::{self, Forked};
use crate::seccomp::Filter;
use crate::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Process};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// Descriptors for the process's stdin, stdout and stderr (borrowed for the call); `None`
    /// inherits this process's stdio.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// A process started in a container by [`spawn`]; this process is its parent.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master, when the process has a terminal and no console socket took it.
    pub master: Option<OwnedFd>,
}

/// Runs `process` in the container; returns its exit code (foreground) or 0 once started (detach).
pub fn exec(root: &Path, rec: &Record, process: &Process, opts: &ExecOptions) -> Result<i32> {
    if process.terminal().unwrap_or(false) && opts.detach && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument {
            field: "--console-socket".into(),
            reason: "cannot allocate tty if runhcs will detach without setting console socket"
                .into(),
        });
    }
    // Foreground: keep every signal blocked from before the clone until the wait, so none
    // meant for the process is lost (the wait forwards them).
    let old_mask = foreground::block_all().map_err(|e| Error::sys("block signals", e))?;
    let res = start_process(root, rec, process, opts);
    let sp = match res {
        Ok(sp) if !opts.detach => sp,
        other => {
            foreground::restore_mask(&old_mask);
            return other.map(|_| 0);
        }
    };
    let code = foreground::wait(sp.pid, &sp.pidfd, sp.master)
        .map_err(|e| Error::sys("wait for exec process", e))?;
    foreground::restore_mask(&old_mask);
    Ok(code)
}

/// Starts `process` in the container and returns it running, without waiting for it. A terminal
/// goes to the console socket if one is given, else its master is returned.
pub fn spawn(root: &Path, rec: &Record, process: &Process, opts: &ExecOptions) -> Result<Spawned> {
    let old_mask = foreground::block_all().map_err(|e| Error::sys("block signals", e))?;
    let res = start_process(root, rec, process, opts);
    foreground::restore_mask(&old_mask);
    res
}

/// The clone and setup of an exec'd process; called with all signals blocked.
fn start_process(
    root: &Path,
    rec: &Record,
    process: &Process,
    opts: &ExecOptions,
) -> Result<Spawned> {
    let st = state::status(root, rec);
    if st != Status::Running && st != Status::Created {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "exec in",
            state: st.to_string(),
        });
    }
    super::spec::validate_process(process, Path::new("process"))?;
    let terminal = process.terminal().unwrap_or(false);
    let seccomp = match rec.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(Filter::compile_cached(
            s,
            &root.join(".cache").join("seccomp"),
        )?),
        None => None,
    };
    // Join every namespace the container's init is in (those it shares with us are skipped).
    let mut join: Vec<(LinuxNamespaceType, OwnedFd)> = Vec::new();
    let mut parent_join = Vec::new();
    let mut user = None;
    let types = [
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Time,
        LinuxNamespaceType::User,
    ];
    for t in types {
        let name = ns_proc_name(t);
        let theirs = format!("/proc/{}/ns/{name}", rec.pid);
        let (Ok(a), Ok(b)) = (
            std::fs::metadata(&theirs),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let fd: OwnedFd = std::fs::File::open(&theirs)
            .map_err(|e| Error::io("open namespace", &theirs, e))?
            .into();
        match t {
            LinuxNamespaceType::Pid | LinuxNamespaceType::Time => parent_join.push((t, fd)),
            LinuxNamespaceType::User => user = Some((t, fd)),
            _ => join.push((t, fd)),
        }
    }
    join.extend(user);
    if !state::init_alive(rec) {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "exec in",
            state: "stopped".into(),
        });
    }
    let console = super::tty::connect_console_socket(opts.console_socket.as_deref())?;
    let (parent_chan, child_chan) =
        sync::pair().map_err(|e| Error::sys("create sync socket", e))?;
    let child_ns = super::launch::ChildNamespaces::enter(&parent_join, false)?;
    let cgroup_paths: Vec<PathBuf> = rec.cgroup.paths().into_iter().map(PathBuf::from).collect();
    // SAFETY: runhcs is single-threaded, as clone3 requires.
    let (pid, pidfd) = match unsafe { sys::clone3(0) } {
        Ok(Forked::Child) => {
            drop(parent_chan);
            init::run(init::Config {
                mode: Mode::Exec,
                id: &rec.id,
                spec: &rec.spec,
                process,
                rootfs: &rec.rootfs,
                bundle: &rec.bundle,
                chan: &child_chan,
                fifo: None,
                console_socket: console.as_ref(),
                stdio: opts.stdio,
                tty_to_parent: terminal && console.is_none(),
                join: &join,
                unshare_flags: 0,
                new_userns: false,
                new_netns: false,
                new_cgroupns: false,
                no_pivot: rec.no_pivot,
                preserve_fds: opts.preserve_fds,
                seccomp: seccomp.as_ref(),
                cgroup_paths: &cgroup_paths,
                parent_pid: std::process::id() as i32,
            })
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            if let Some(ns) = &child_ns {
                ns.restore()?;
            }
            return Err(Error::sys("clone exec process", e));
        }
    };
    if let Some(ns) = &child_ns {
        if let Err(e) = ns.restore() {
            sys::pidfd_send_signal(&pidfd, libc::SIGKILL).ok();
            return Err(e);
        }
    }
    drop(child_chan);
    drop(console);
    let fail = |e: Error| {
        sys::pidfd_send_signal(&pidfd, libc::SIGKILL).ok();
        e
    };
    rec.cgroup.add_process(pid).map_err(|e| fail(e.into()))?;
    parent_chan
        .send(&Msg::Go)
        .map_err(|e| fail(Error::sys("release exec process", e)))?;
    let mut master = None;
    loop {
        match parent_chan
            .recv()
            .map_err(|e| fail(Error::sys("read from exec process", e)))?
        {
            Some((Msg::PtyMaster, fd)) => master = fd,
            Some((Msg::SeccompListener, Some(fd))) => {
                super::listener::send(&rec.spec, pid, &state::oci_state(root, rec), fd)
                    .map_err(fail)?;
            }
            Some((Msg::Ready, _)) => break,
            Some((Msg::Error(e), _)) => return Err(Error::Init(e)),
            Some((other, _)) => {
                return Err(fail(Error::Init(format!("unexpected message {other:?}"))))
            }
            None => return Err(Error::Init("exec process exited during setup".into())),
        }
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(Spawned { pid, pidfd, master })
}
