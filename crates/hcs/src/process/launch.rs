//! The runtime side of `create` / `run`: everything before and around `clone3`.

use super::init::{self, Mode};
use super::spec::Bundle;
use super::state::{self, OciState, Record, Status};
use super::sync::{self, Msg};
use super::sys::{self, Forked};
use super::{foreground, hooks};
use crate::cgroups;
use crate::seccomp::Filter;
use crate::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How the container is launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchMode {
    /// `create`: the init waits on the exec fifo for `start`.
    Create,
    /// `run`: create and start at once; the caller waits in the foreground or detaches.
    Run,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub owner: String,
    /// `run` without `-d`: hand a terminal to this process instead of a console socket.
    pub foreground: bool,
    /// Descriptors for the init's stdin, stdout and stderr (borrowed for the call); `None`
    /// inherits this process's stdio.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// A container whose init is set up and waiting (create) or released (run).
pub struct Launched {
    pub record: Record,
    pub pidfd: OwnedFd,
    pub chan: sync::Channel,
    pub master: Option<OwnedFd>,
}

pub fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => 0x80,
    }
}

pub fn ns_proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Namespaces split into what `clone3` creates, what the child unshares or joins, and what
/// this process must join before cloning (pid and time apply to children only).
#[derive(Default)]
pub struct NsPlan {
    pub clone_flags: libc::c_int,
    pub unshare_flags: libc::c_int,
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    pub parent_join: Vec<(LinuxNamespaceType, OwnedFd)>,
    pub new_userns: bool,
    pub new_netns: bool,
    pub new_cgroupns: bool,
    pub new_timens: bool,
}

fn open_ns(path: &Path, field: String) -> Result<OwnedFd> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::InvalidArgument {
            field,
            reason: format!("open {}: {e}", path.display()),
        })
}

pub fn plan_namespaces(spec: &Spec) -> Result<NsPlan> {
    let mut plan = NsPlan::default();
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let user_joined = nss
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
    let mut user_join = None;
    for (i, ns) in nss.iter().enumerate() {
        let t = ns.typ();
        match ns.path() {
            Some(p) => {
                let fd = open_ns(p, format!("linux.namespaces[{i}].path"))?;
                match t {
                    LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {
                        plan.parent_join.push((t, fd))
                    }
                    LinuxNamespaceType::User => user_join = Some((t, fd)),
                    _ => plan.join.push((t, fd)),
                }
            }
            None => match t {
                LinuxNamespaceType::Cgroup => plan.new_cgroupns = true,
                LinuxNamespaceType::Time => plan.new_timens = true,
                LinuxNamespaceType::Pid => plan.clone_flags |= libc::CLONE_NEWPID,
                LinuxNamespaceType::User => {
                    plan.new_userns = true;
                    plan.clone_flags |= libc::CLONE_NEWUSER;
                }
                other => {
                    if other == LinuxNamespaceType::Network {
                        plan.new_netns = true;
                    }
                    if user_joined {
                        plan.unshare_flags |= ns_flag(other);
                    } else {
                        plan.clone_flags |= ns_flag(other);
                    }
                }
            },
        }
    }
    if plan.new_userns && !plan.join.is_empty() {
        return Err(Error::Unsupported {
            what: "a new user namespace together with joining other namespaces by path".into(),
            why: "join the user namespace by path too, or create all namespaces".into(),
        });
    }
    // The user namespace is joined last: the namespaces unshared after it belong to it.
    plan.join.extend(user_join);
    Ok(plan)
}

/// The namespaces this process's *children* are put in (pid, time), saved before `setns` or
/// `unshare` aims them at a container and put back after the clone, so a long-lived caller (a
/// shim, the guest agent) that creates many containers is left as it was.
pub struct ChildNamespaces {
    saved: Vec<(libc::c_int, OwnedFd)>,
}

impl ChildNamespaces {
    /// Aims this process's children at the pid/time namespaces of `join` (and, with
    /// `new_timens`, a new time namespace), saving the current ones first. `None` when there is
    /// nothing to change. On an error the saved namespaces are back in place.
    pub fn enter(join: &[(LinuxNamespaceType, OwnedFd)], new_timens: bool) -> Result<Option<Self>> {
        if join.is_empty() && !new_timens {
            return Ok(None);
        }
        let saved = Self::save()?;
        let res = join
            .iter()
            .try_for_each(|(t, fd)| {
                nix::sched::setns(fd, nix::sched::CloneFlags::from_bits_retain(ns_flag(*t)))
                    .map_err(|e| Error::sys(format!("join {t:?} namespace"), e))
            })
            .and_then(|()| {
                if new_timens {
                    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(0x80))
                        .map_err(|e| Error::sys("unshare time namespace", e))?;
                }
                Ok(())
            });
        match res {
            Ok(()) => Ok(Some(saved)),
            Err(e) => {
                saved.restore()?;
                Err(e)
            }
        }
    }

    fn save() -> Result<Self> {
        let mut saved = Vec::new();
        for (flag, path) in [
            (libc::CLONE_NEWPID, "/proc/self/ns/pid_for_children"),
            (0x80, "/proc/self/ns/time_for_children"),
        ] {
            match std::fs::File::open(path) {
                Ok(f) => saved.push((flag, OwnedFd::from(f))),
                // No time namespaces on this kernel: nothing to restore.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && flag == 0x80 => {}
                Err(e) => return Err(Error::io("save namespace for children", path, e)),
            }
        }
        Ok(ChildNamespaces { saved })
    }

    pub fn restore(&self) -> Result<()> {
        for (flag, fd) in &self.saved {
            nix::sched::setns(fd, nix::sched::CloneFlags::from_bits_retain(*flag))
                .map_err(|e| Error::sys("restore the runtime's namespace for children", e))?;
        }
        Ok(())
    }
}

/// Undoes a half-made container if creation fails at any step.
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<cgroups::Manager>,
    child: Option<OwnedFd>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pidfd) = &self.child {
            // Already-dead children are fine; we only need the process gone before rmdir.
            sys::pidfd_send_signal(pidfd, libc::SIGKILL).ok();
            wait_pidfd(pidfd, 2000);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::warn!(error = %e, "remove cgroup of failed container");
            }
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Polls a pidfd until the process exits (or `ms` pass).
pub fn wait_pidfd(pidfd: &OwnedFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

pub fn create(
    root: &Path,
    id: &str,
    bundle: Bundle,
    mode: LaunchMode,
    opts: &CreateOptions,
) -> Result<Launched> {
    state::validate_id(id)?;
    let spec = &bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument {
            field: "process".into(),
            reason: "missing".into(),
        })?;
    let terminal = process.terminal().unwrap_or(false);
    let detached = mode == LaunchMode::Create || !opts.foreground;
    if terminal && detached && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument {
            field: "--console-socket".into(),
            reason: "cannot allocate tty if runhcs will detach without setting console socket"
                .into(),
        });
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::InvalidArgument {
            field: "--console-socket".into(),
            reason: "cannot use console socket if runhcs will not detach or allocate tty".into(),
        });
    }
    let plan = plan_namespaces(spec)?;
    let net_devices = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref());
    if net_devices.is_some_and(|d| !d.is_empty()) && !plan.new_netns {
        return Err(Error::InvalidConfig {
            file: bundle.dir.join("config.json"),
            field: "linux.netDevices".into(),
            reason: "needs a new network namespace (a network entry without a path)".into(),
        });
    }
    if plan.clone_flags & libc::CLONE_NEWNS == 0
        && plan.unshare_flags & libc::CLONE_NEWNS == 0
        && !plan
            .join
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Mount)
    {
        return Err(Error::InvalidConfig {
            file: bundle.dir.join("config.json"),
            field: "linux.namespaces".into(),
            reason: "a mount namespace is required".into(),
        });
    }
    let linux = spec.linux().as_ref();
    let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(Filter::compile_cached(
            s,
            &root.join(".cache").join("seccomp"),
        )?),
        None => None,
    };
    super::listener::check(
        spec,
        seccomp.as_ref().is_some_and(|f| f.needs_notify()),
        &bundle.dir.join("config.json"),
    )?;

    std::fs::create_dir_all(root).map_err(|e| Error::io("create state root", root, e))?;
    let dir = state::dir(root, id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists { id: id.into() })
        }
        Err(e) => return Err(Error::io("create state directory", &dir, e)),
    }
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        cgroup: None,
        child: None,
        armed: true,
    };

    let cgroup = cgroups::Manager::new(linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
    cgroup.create()?;
    cleanup.cgroup = Some(cgroup.clone());
    if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.apply(&with_default_devices(
            res,
            linux.and_then(|l| l.devices().as_ref()),
        ))?;
    }

    let fifo = if mode == LaunchMode::Create || detached {
        let p = dir.join(state::EXEC_FIFO);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::sys(format!("create exec fifo {}", p.display()), e))?;
        // mkfifo honours the umask; the container's root (maybe a mapped id) must be able to open it.
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o622))
            .map_err(|e| Error::io("chmod exec fifo", &p, e))?;
        let (uid, gid) = root_ids(spec);
        std::os::unix::fs::chown(&p, Some(uid), Some(gid))
            .map_err(|e| Error::io("chown exec fifo", &p, e))?;
        Some(
            sys::openat2(libc::AT_FDCWD, &p, libc::O_PATH, 0, 0)
                .map_err(|e| Error::sys("open exec fifo", e))?,
        )
    } else {
        None
    };
    let console = super::tty::connect_console_socket(opts.console_socket.as_deref())?;
    let (parent_chan, child_chan) =
        sync::pair().map_err(|e| Error::sys("create sync socket", e))?;

    let child_ns = ChildNamespaces::enter(&plan.parent_join, plan.new_timens)?;
    if plan.new_timens {
        if let Err(e) = write_time_offsets(spec) {
            if let Some(ns) = &child_ns {
                ns.restore()?;
            }
            return Err(e);
        }
    }
    let old_mask = foreground::block_all().map_err(|e| Error::sys("block signals", e))?;
    let parent_pid = std::process::id() as i32;
    let cgroup_paths: Vec<PathBuf> = cgroup.paths().into_iter().map(PathBuf::from).collect();
    // SAFETY: runhcs is single-threaded (no runtime, no helper threads), as clone3 requires.
    let forked = unsafe { sys::clone3(plan.clone_flags as u64) };
    let (pid, pidfd) = match forked {
        Ok(Forked::Child) => {
            drop(parent_chan);
            init::run(init::Config {
                mode: if mode == LaunchMode::Create || detached {
                    Mode::Create
                } else {
                    Mode::Run
                },
                id,
                spec,
                process,
                rootfs: &bundle.rootfs,
                bundle: &bundle.dir,
                chan: &child_chan,
                fifo: fifo.as_ref(),
                console_socket: console.as_ref(),
                stdio: opts.stdio,
                tty_to_parent: terminal && !detached,
                join: &plan.join,
                unshare_flags: plan.unshare_flags,
                new_userns: plan.new_userns,
                new_netns: plan.new_netns,
                new_cgroupns: plan.new_cgroupns,
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                seccomp: seccomp.as_ref(),
                cgroup_paths: &cgroup_paths,
                parent_pid,
            })
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            foreground::restore_mask(&old_mask);
            if let Some(ns) = &child_ns {
                ns.restore()?;
            }
            return Err(Error::sys("clone container init", e));
        }
    };
    cleanup.child = Some(
        pidfd
            .try_clone()
            .map_err(|e| Error::io("dup pidfd", "", e))?,
    );
    if let Some(ns) = &child_ns {
        ns.restore()?;
    }
    if detached {
        foreground::restore_mask(&old_mask);
    }
    drop(child_chan);
    drop(console);

    cgroup.add_process(pid)?;
    if plan.new_userns {
        write_id_maps(spec, pid)?;
    }
    if let Some(devices) = net_devices {
        super::netdev::move_all(devices, pid)?;
    }
    parent_chan
        .send(&Msg::Go)
        .map_err(|e| Error::sys("release container init", e))?;

    let pid_start = sys::proc_stat(pid).map(|(s, _)| s).unwrap_or(0);
    let Bundle { dir, spec, rootfs } = bundle;
    let record = Record {
        id: id.to_string(),
        pid,
        pid_start,
        bundle: dir,
        rootfs,
        created: state::rfc3339_now(),
        owner: opts.owner.clone(),
        cgroup: cgroup.clone(),
        spec,
        no_pivot: opts.no_pivot,
    };
    let spec = &record.spec;
    let mut master = None;
    loop {
        match parent_chan
            .recv()
            .map_err(|e| Error::sys("read from container init", e))?
        {
            Some((Msg::CreateRuntime, _)) => {
                let st = OciState {
                    status: Status::Creating,
                    ..state::oci_state(root, &record)
                };
                let st = OciState { pid, ..st };
                let hooks = spec.hooks().as_ref();
                let res = hooks::run("prestart", hooks.and_then(|h| h.prestart().as_ref()), &st)
                    .and_then(|()| {
                        hooks::run(
                            "createRuntime",
                            hooks.and_then(|h| h.create_runtime().as_ref()),
                            &st,
                        )
                    });
                match res {
                    Ok(()) => parent_chan
                        .send(&Msg::HooksDone)
                        .map_err(|e| Error::sys("release container init", e))?,
                    Err(e) => {
                        parent_chan.send(&Msg::Error(e.to_string())).ok();
                        return Err(e);
                    }
                }
            }
            Some((Msg::PtyMaster, fd)) => master = fd,
            Some((Msg::SeccompListener, Some(fd))) => {
                let st = OciState {
                    status: Status::Creating,
                    pid,
                    ..state::oci_state(root, &record)
                };
                super::listener::send(spec, pid, &st, fd)?;
            }
            Some((Msg::Ready, _)) => break,
            Some((Msg::Error(e), _)) => return Err(Error::Init(e)),
            Some((other, _)) => return Err(Error::Init(format!("unexpected message {other:?}"))),
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
    state::save(root, &record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    cleanup.armed = false;
    drop(cleanup);
    Ok(Launched {
        record,
        pidfd,
        chan: parent_chan,
        master,
    })
}

fn write_id_maps(spec: &Spec, pid: i32) -> Result<()> {
    let linux = spec.linux().as_ref();
    for (file, maps) in [
        ("uid_map", linux.and_then(|l| l.uid_mappings().as_ref())),
        ("gid_map", linux.and_then(|l| l.gid_mappings().as_ref())),
    ] {
        let Some(maps) = maps.filter(|m| !m.is_empty()) else {
            continue;
        };
        let text: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text)
            .map_err(|e| Error::io("write user namespace id map", path, e))?;
    }
    Ok(())
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offs) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, o) in offs {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(Error::InvalidArgument {
                    field: format!("linux.timeOffsets.{other}"),
                    reason: "only monotonic and boottime can be offset".into(),
                })
            }
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| Error::io("write linux.timeOffsets", "/proc/self/timens_offsets", e))
}

pub fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let tmp = p.with_file_name(format!(
        ".{}.tmp",
        p.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write --pid-file", &tmp, e))?;
    std::fs::rename(&tmp, p).map_err(|e| Error::io("write --pid-file", p, e))
}

/// Releases a created container: opens its exec fifo and waits for the init to pass it.
pub fn start(root: &Path, rec: &Record) -> Result<()> {
    let st = state::status(root, rec);
    if st != Status::Created {
        return Err(Error::InvalidState {
            id: rec.id.clone(),
            op: "start",
            state: st.to_string(),
        });
    }
    // The pidfd first: the init is blocked opening the fifo until we open it, and may run and
    // exit as soon as we do.
    let pidfd = match sys::pidfd_open(rec.pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => {
            return Err(Error::Init(
                "container init exited before it was started".into(),
            ))
        }
        Err(e) => return Err(Error::sys("open container init", e)),
    };
    // The pidfd pins the process: make sure it is our init and not a recycled pid.
    if !state::init_alive(rec) {
        return Err(Error::Init(
            "container init exited before it was started".into(),
        ));
    }
    let path = state::dir(root, &rec.id).join(state::EXEC_FIFO);
    let fifo = sys::openat2(
        libc::AT_FDCWD,
        &path,
        libc::O_RDONLY | libc::O_NONBLOCK,
        0,
        0,
    )
    .map_err(|e| Error::sys(format!("open {}", path.display()), e))?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: fifo.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: valid pollfd array of the length passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Error::sys("wait for exec fifo", Errno::last()));
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut b = [0u8; 1];
            // SAFETY: reading one byte into a valid buffer.
            if unsafe { libc::read(fifo.as_raw_fd(), b.as_mut_ptr().cast(), 1) } == 1 {
                wait_hangup(&fifo);
                break;
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            return Err(Error::Init(
                "container init exited before it was started".into(),
            ));
        }
    }
    std::fs::remove_file(&path).map_err(|e| Error::io("remove exec fifo", &path, e))?;
    poststart(root, rec);
    Ok(())
}

/// Waits until the init's end of the exec fifo closes: it is close-on-exec, so from then on the
/// container's process runs (or its exec failed and the init is gone).
fn wait_hangup(fifo: &OwnedFd) {
    loop {
        let mut p = libc::pollfd {
            fd: fifo.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        // POLLHUP (or an error): the writer is gone.
        return;
    }
}

/// poststart hooks: a failure is logged, the other hooks and the container go on (runtime spec).
pub fn poststart(root: &Path, rec: &Record) {
    let st = state::oci_state(root, rec);
    for e in hooks::run_all(
        "poststart",
        rec.spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref()),
        &st,
    ) {
        tracing::warn!(container_id = %rec.id, error = %init::error_chain(&e), "poststart hook failed");
    }
}

/// Starts a container created for a foreground `run` over its setup channel, then runs the
/// poststart hooks once the process runs: the channel is close-on-exec in the init, so EOF means
/// the exec happened (an error message means the setup failed late).
pub fn release(root: &Path, chan: &sync::Channel, record: &Record) -> Result<()> {
    chan.send(&Msg::Start)
        .map_err(|e| Error::sys("start container", e))?;
    loop {
        match chan.recv() {
            Ok(Some((Msg::Error(e), _))) => return Err(Error::Init(e)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break,
        }
    }
    poststart(root, record);
    Ok(())
}

/// Foreground `run`: release the init, run poststart hooks, wait for the exit, clean up.
/// Returns the container's exit code.
pub fn run_foreground(root: &Path, l: Launched) -> Result<i32> {
    if let Err(e) = release(root, &l.chan, &l.record) {
        super::ops::delete(root, &l.record, true).ok();
        return Err(e);
    }
    let code = foreground::wait(l.record.pid, &l.pidfd, l.master)
        .map_err(|e| Error::sys("wait for container", e))?;
    super::ops::delete(root, &l.record, true)?;
    Ok(code)
}

/// The device rules a container always gets after the spec's own (last match wins): the
/// standard nodes, ptys, and every node the spec itself creates in `linux.devices`.
fn with_default_devices(
    res: &oci_spec::runtime::LinuxResources,
    created: Option<&Vec<oci_spec::runtime::LinuxDevice>>,
) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let Some(rules) = res.devices().as_ref() else {
        return res.clone();
    };
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some("rwm".to_string()));
        r
    };
    let mut all = rules.clone();
    for (maj, min) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
    ] {
        all.push(rule(LinuxDeviceType::C, Some(maj), min));
    }
    for d in created.into_iter().flatten() {
        let t = if d.typ() == LinuxDeviceType::U {
            LinuxDeviceType::C
        } else {
            d.typ()
        };
        if t != LinuxDeviceType::P {
            all.push(rule(t, Some(d.major()), Some(d.minor())));
        }
    }
    let mut out = res.clone();
    out.set_devices(Some(all));
    out
}

/// The host ids of the container's root (uid/gid 0 through the user namespace maps, if any).
fn root_ids(spec: &Spec) -> (u32, u32) {
    let map = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.and_then(|v| {
            v.iter()
                .find(|e| e.container_id() == 0)
                .map(|e| e.host_id())
        })
        .unwrap_or(0)
    };
    let linux = spec.linux().as_ref();
    (
        map(linux.and_then(|l| l.uid_mappings().as_ref())),
        map(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}
