//! `exec`: a new process inside a running container's namespaces and cgroup.

use super::foreground;
use super::init::{self, Mode};
use super::launch::{ns_flag, ns_proc_name, write_pid_file};
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
}

/// Runs `process` in the container; returns its exit code (foreground) or 0 once started (detach).
pub fn exec(root: &Path, rec: &Record, process: &Process, opts: &ExecOptions) -> Result<i32> {
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
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument {
            field: "--console-socket".into(),
            reason: "cannot allocate tty if runhcs will detach without setting console socket"
                .into(),
        });
    }
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
    let console = match &opts.console_socket {
        Some(p) => Some(
            super::tty::connect_console_socket(p)
                .map_err(|e| Error::io("connect to --console-socket", p, e))?,
        ),
        None => None,
    };
    let (parent_chan, child_chan) =
        sync::pair().map_err(|e| Error::sys("create sync socket", e))?;
    for (t, fd) in &parent_join {
        nix::sched::setns(fd, nix::sched::CloneFlags::from_bits_retain(ns_flag(*t)))
            .map_err(|e| Error::sys(format!("join {t:?} namespace"), e))?;
    }
    let old_mask = foreground::block_all().map_err(|e| Error::sys("block signals", e))?;
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
                tty_to_parent: terminal && !opts.detach,
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
            foreground::restore_mask(&old_mask);
            return Err(Error::sys("clone exec process", e));
        }
    };
    if opts.detach {
        foreground::restore_mask(&old_mask);
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
    if opts.detach {
        return Ok(0);
    }
    let code = foreground::wait(pid, &pidfd, master)
        .map_err(|e| Error::sys("wait for exec process", e))?;
    foreground::restore_mask(&old_mask);
    Ok(code)
}
