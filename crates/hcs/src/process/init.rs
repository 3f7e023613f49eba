//! The container's init process: everything that happens in the child between `clone3` and
//! `execve`. It runs single-threaded in a copy of the runtime, reports failures over the sync
//! channel and never returns.
//!
//! Order (create): close stray fds → wait for `Go` (cgroup joined, id maps written) → join
//! namespaces → hostname → mounts → createRuntime hooks (parent) → createContainer hooks →
//! pivot_root → console → readonly/masked paths → sysctls → rlimits, NNP, seccomp, user and
//! capabilities → cwd → `Ready` → wait for start (exec fifo or `Start`) → startContainer hooks →
//! late seccomp → close fds → exec.

use super::caps;
use super::rootfs;
use super::sync::{Channel, Msg};
use super::sys;
use super::tty;
use crate::seccomp::Filter;
use crate::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `create`: wait on the exec fifo after `Ready`.
    Create,
    /// foreground `run`: wait for `Msg::Start` after `Ready`.
    Run,
    /// `exec` into a running container: no rootfs setup, no hooks.
    Exec,
}

pub struct Config<'a> {
    pub mode: Mode,
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub chan: &'a Channel,
    pub fifo: Option<&'a OwnedFd>,
    pub console_socket: Option<&'a OwnedFd>,
    /// Descriptors to put on the process's stdin, stdout and stderr (else it inherits ours).
    pub stdio: Option<[RawFd; 3]>,
    /// Send the pty master to the parent (foreground terminal) instead of a console socket.
    pub tty_to_parent: bool,
    /// Namespaces to join with setns, in order; the user namespace (if any) comes last.
    pub join: &'a [(LinuxNamespaceType, OwnedFd)],
    /// Namespaces to unshare after joining (used when a user namespace is joined by path).
    pub unshare_flags: libc::c_int,
    pub new_userns: bool,
    pub new_netns: bool,
    pub new_cgroupns: bool,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a Filter>,
    /// The container's cgroup directories on the host, one per hierarchy.
    pub cgroup_paths: &'a [PathBuf],
    #[allow(dead_code)]
    pub parent_pid: i32,
}

/// Runs the init; never returns. Errors are sent to the parent, then the process exits 1.
pub fn run(cfg: Config) -> ! {
    let code = match setup_and_exec(&cfg) {
        Ok(never) => match never {},
        Err(e) => {
            // The parent reports it as `Error::Init`: do not say "container init" twice.
            let msg = match &e {
                Error::Init(inner) => inner.clone(),
                other => error_chain(other),
            };
            if cfg.chan.send(&Msg::Error(msg.clone())).is_err() {
                eprintln!("runhcs init: {msg}");
            }
            1
        }
    };
    // SAFETY: _exit is async-signal-safe and skips atexit handlers that belong to the parent.
    unsafe { libc::_exit(code) }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

enum Never {}

fn sys_err(step: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    let step = step.into();
    move |e| Error::sys(step, e)
}

fn setup_and_exec(cfg: &Config) -> Result<Never> {
    // Die with the runtime while we are being set up.
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64)
        .map_err(sys_err("set parent death signal"))?;
    // (If the runtime died before that, the channel below reads EOF and we stop.)
    if let Some(fds) = cfg.stdio {
        sys::install_stdio(fds).map_err(sys_err("set up stdio"))?;
    }
    // No descriptor of the runtime's caller may reach the container (CVE-2024-21626 class):
    // close everything above stdio and the preserved fds except our own channels.
    let mut keep: Vec<RawFd> = vec![cfg.chan.raw()];
    keep.extend(cfg.fifo.map(|f| f.as_raw_fd()));
    keep.extend(cfg.console_socket.map(|f| f.as_raw_fd()));
    keep.extend(cfg.join.iter().map(|(_, f)| f.as_raw_fd()));
    sys::close_fds_except(3 + cfg.preserve_fds as RawFd, &keep)
        .map_err(sys_err("close inherited descriptors"))?;
    // Do not let the container read this process's memory or /proc/<pid>/exe while we set up.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).map_err(sys_err("set non-dumpable"))?;

    if cfg.mode == Mode::Exec {
        super::sched::exec_affinity(cfg.process, true)?;
    }
    match cfg.chan.recv().map_err(sys_err("wait for runtime"))? {
        Some((Msg::Go, _)) => {}
        Some((other, _)) => return Err(Error::Init(format!("unexpected message {other:?}"))),
        None => return Err(Error::Init("runtime went away".into())),
    }

    nix::unistd::setsid().map_err(sys_err("setsid"))?;
    // Our pid as the host sees it, for hook state (the host's /proc is still mounted here).
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);

    for (typ, fd) in cfg.join {
        nix::sched::setns(
            fd,
            nix::sched::CloneFlags::from_bits_retain(super::launch::ns_flag(*typ)),
        )
        .map_err(sys_err(format!("join {typ:?} namespace")))?;
    }
    if cfg.unshare_flags != 0 {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(cfg.unshare_flags))
            .map_err(sys_err("unshare namespaces"))?;
    }
    if cfg.new_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(sys_err("unshare cgroup namespace"))?;
    }
    if cfg.new_userns {
        // Become root of the new user namespace (the maps are written by now).
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(sys_err("become root in user namespace (gid)"))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(sys_err("become root in user namespace (uid)"))?;
    }

    let process = cfg.process;
    let mut master: Option<OwnedFd> = None;
    if cfg.mode == Mode::Exec {
        if process.terminal().unwrap_or(false) {
            master = Some(open_tty(cfg, false)?);
        }
    } else {
        if let Some(h) = cfg.spec.hostname().as_ref() {
            nix::unistd::sethostname(h).map_err(sys_err(format!("set hostname {h:?}")))?;
        }
        if let Some(d) = cfg.spec.domainname().as_ref() {
            set_domainname(d).map_err(sys_err(format!("set domainname {d:?}")))?;
        }
        let ctx = rootfs::Ctx {
            spec: cfg.spec,
            rootfs: cfg.rootfs,
            bundle: cfg.bundle,
            new_userns: cfg.new_userns,
            new_netns: cfg.new_netns,
            new_cgroupns: cfg.new_cgroupns,
            cgroup_paths: cfg.cgroup_paths,
        };
        rootfs::prepare(&ctx)?;
        ensure_cwd(cfg.rootfs, process.cwd());
        cfg.chan
            .send(&Msg::CreateRuntime)
            .map_err(sys_err("report namespaces ready"))?;
        match cfg
            .chan
            .recv()
            .map_err(sys_err("wait for createRuntime hooks"))?
        {
            Some((Msg::HooksDone, _)) => {}
            Some((Msg::Error(e), _)) => return Err(Error::Init(e)),
            _ => return Err(Error::Init("runtime went away during hooks".into())),
        }
        let state = hook_state(cfg, super::state::Status::Creating, host_pid);
        super::hooks::run(
            "createContainer",
            cfg.spec
                .hooks()
                .as_ref()
                .and_then(|h| h.create_container().as_ref()),
            &state,
        )?;
        rootfs::pivot(cfg.rootfs, cfg.no_pivot)?;
        if process.terminal().unwrap_or(false) {
            master = Some(open_tty(cfg, true)?);
        }
        if let Some(linux) = cfg.spec.linux() {
            for (k, v) in linux.sysctl().iter().flatten() {
                write_sysctl(k, v)?;
            }
        }
        rootfs::finalize(cfg.spec)?;
        if let Some(linux) = cfg.spec.linux() {
            if let Some(p) = linux.personality() {
                if p.domain() == oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 {
                    // SAFETY: personality with an integer argument.
                    sys::check(unsafe { libc::personality(0x0008) } as libc::c_long)
                        .map_err(sys_err("set personality LINUX32"))?;
                }
            }
        }
    }
    if let Some(m) = master.as_ref() {
        if cfg.tty_to_parent {
            cfg.chan
                .send_with_fd(&Msg::PtyMaster, Some(m.as_raw_fd()))
                .map_err(sys_err("send pty master"))?;
        }
    }
    drop(master);

    super::sched::apply(process)?;
    if let Some(mp) = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        super::sched::memory_policy(mp)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            Error::io(
                "set process.oomScoreAdj (lowering it needs CAP_SYS_RESOURCE)",
                "/proc/self/oom_score_adj",
                e,
            )
        })?;
    }
    set_rlimits(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    if nnp {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(sys_err("set no_new_privs"))?;
    }
    // Without no_new_privs the filter must go in while we still hold CAP_SYS_ADMIN. A filter
    // with SCMP_ACT_NOTIFY goes in here too: its listener must reach the runtime, which is
    // only still listening before `Ready`.
    let early = cfg.seccomp.filter(|f| !nnp || f.needs_notify());
    if let Some(f) = early {
        if let Some(listener) = f.install()? {
            cfg.chan
                .send_with_fd(&Msg::SeccompListener, Some(listener.as_raw_fd()))
                .map_err(sys_err("send seccomp listener"))?;
        }
    }
    set_user_and_caps(process)?;
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).map_err(sys_err(format!("chdir to process.cwd {}", cwd.display())))?;
    verify_cwd()?;
    let argv: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .map(sys::cstr)
        .collect::<std::result::Result<_, _>>()
        .map_err(sys_err("process.args"))?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    let envp: Vec<CString> = env
        .iter()
        .map(sys::cstr)
        .collect::<std::result::Result<_, _>>()
        .map_err(sys_err("process.env"))?;
    let exe = find_executable(
        &process
            .args()
            .as_ref()
            .map(|a| a[0].clone())
            .unwrap_or_default(),
        process.env().as_deref().unwrap_or(&[]),
    )?;

    sys::prctl(libc::PR_SET_PDEATHSIG, 0).map_err(sys_err("clear parent death signal"))?;
    cfg.chan
        .send(&Msg::Ready)
        .map_err(sys_err("report ready"))?;
    let mut fifo = None;
    match cfg.mode {
        Mode::Create => fifo = open_fifo(cfg.fifo)?,
        Mode::Run => match cfg.chan.recv().map_err(sys_err("wait for start"))? {
            Some((Msg::Start, _)) => {}
            _ => return Err(Error::Init("runtime went away before start".into())),
        },
        Mode::Exec => {}
    }
    if cfg.mode != Mode::Exec {
        let state = hook_state(cfg, super::state::Status::Created, host_pid);
        super::hooks::run(
            "startContainer",
            cfg.spec
                .hooks()
                .as_ref()
                .and_then(|h| h.start_container().as_ref()),
            &state,
        )?;
    }
    // Tell `start` we are going; the fifo stays open (close-on-exec) so `start` sees it hang up
    // exactly when the exec has happened, and only then runs poststart hooks.
    if let Some(f) = fifo.as_ref() {
        use std::io::Write;
        (&*f)
            .write_all(&[0])
            .map_err(|e| Error::io("write exec fifo", "exec.fifo", e))?;
    }
    if let (Some(f), None) = (cfg.seccomp, early) {
        f.install()?;
    }
    // Everything above the preserved fds closes on exec; preserved ones stay open.
    sys::cloexec_from(3 + cfg.preserve_fds).map_err(sys_err("mark descriptors close-on-exec"))?;
    for fd in 3..3 + cfg.preserve_fds as RawFd {
        match sys::set_cloexec(fd, false) {
            Ok(()) | Err(Errno::EBADF) => {}
            Err(e) => return Err(sys_err(format!("keep preserved fd {fd}"))(e)),
        }
    }
    if cfg.mode == Mode::Exec {
        super::sched::exec_affinity(process, false)?;
    }
    reset_signals();
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: exe, argv and envp are valid NUL-terminated arrays of C strings that live until exec.
    unsafe { libc::execve(exe.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    let e = Errno::last();
    eprintln!("runhcs: exec {:?}: {e}", exe);
    Err(Error::sys(format!("exec {:?}", exe), e))
}

fn hook_state(cfg: &Config, status: super::state::Status, pid: i32) -> super::state::OciState {
    super::state::OciState {
        oci_version: cfg.spec.version().clone(),
        id: cfg.id.to_string(),
        status,
        pid,
        bundle: cfg.bundle.to_path_buf(),
        rootfs: cfg.rootfs.to_path_buf(),
        created: String::new(),
        annotations: cfg.spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
    }
}

fn open_tty(cfg: &Config, bind_console: bool) -> Result<OwnedFd> {
    let size = cfg
        .process
        .console_size()
        .as_ref()
        .map(|b| (b.height() as u16, b.width() as u16));
    let master = tty::open_in_container(size, bind_console).map_err(|(s, e)| Error::sys(s, e))?;
    if let Some(sock) = cfg.console_socket {
        tty::send_master(sock.as_raw_fd(), &master)
            .map_err(sys_err("send pty master to console socket"))?;
    }
    Ok(master)
}

/// Blocks until `start` opens the exec fifo for reading.
fn open_fifo(fifo: Option<&OwnedFd>) -> Result<Option<std::fs::File>> {
    let Some(fifo) = fifo else { return Ok(None) };
    let path = sys::fd_path(fifo);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map(Some)
        .map_err(|e| Error::io("open exec fifo", &path, e))
}

fn set_domainname(d: &str) -> Result<(), Errno> {
    // SAFETY: pointer and length of a valid byte buffer.
    sys::check(unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } as libc::c_long)
        .map(|_| ())
}

/// Creates `process.cwd` inside the rootfs if the image lacks it (as runc does).
fn ensure_cwd(rootfs: &Path, cwd: &Path) {
    if let Ok(root) = sys::openat2(
        libc::AT_FDCWD,
        rootfs,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    ) {
        // A read-only image without the directory makes the later chdir fail with a clear error.
        rootfs::ensure_in_root(&root, cwd, false).ok();
    }
}

/// After chdir: the working directory must be inside the container's root.
fn verify_cwd() -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() && !p.starts_with("(unreachable)") => Ok(()),
        Ok(p) => Err(Error::Init(format!(
            "process.cwd resolves outside the container root ({})",
            p.display()
        ))),
        Err(e) => Err(Error::sys(
            "process.cwd is not inside the container root",
            e,
        )),
    }
}

fn write_sysctl(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.contains("..") || key.contains('\0') || key.starts_with(['/', '.']) {
        return Err(Error::InvalidArgument {
            field: format!("linux.sysctl[{key:?}]"),
            reason: "not a sysctl name".into(),
        });
    }
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|e| Error::io("write linux.sysctl", path, e))
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn set_rlimits(p: &Process) -> Result<()> {
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit with a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            let e = Errno::last();
            let hint = if e == Errno::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            return Err(Error::InvalidArgument {
                field: format!("process.rlimits[{i}]"),
                reason: format!(
                    "{:?} soft={} hard={}: {e}{hint}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            });
        }
    }
    Ok(())
}

fn set_user_and_caps(p: &Process) -> Result<()> {
    let want = caps::Sets::from_spec(p.capabilities().as_ref());
    // Capabilities this runtime does not hold cannot be granted; never keep more than asked.
    let have = caps::current_permitted().map_err(sys_err("read capabilities"))?;
    let dropped = (want.permitted | want.effective | want.inheritable | want.ambient) & !have;
    if dropped != 0 {
        tracing::warn!(
            mask = format!("{dropped:#x}"),
            "capabilities requested but not held by the runtime are not granted"
        );
    }
    let sets = caps::Sets {
        bounding: want.bounding,
        effective: want.effective & have,
        permitted: want.permitted & have,
        inheritable: want.inheritable & have,
        ambient: want.ambient & have & want.permitted & want.inheritable,
    };
    caps::drop_bounding(sets.bounding).map_err(sys_err("drop bounding capabilities"))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).map_err(sys_err("keep capabilities across setuid"))?;
    let u = p.user();
    let gids: Vec<nix::unistd::Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        // In a user namespace with setgroups denied, only an empty list is possible.
        Err(Errno::EPERM) if gids.is_empty() => {}
        Err(e) => return Err(Error::sys("set process.user.additionalGids", e)),
    }
    nix::unistd::setresgid(u.gid().into(), u.gid().into(), u.gid().into())
        .map_err(sys_err(format!("set process.user.gid {}", u.gid())))?;
    nix::unistd::setresuid(u.uid().into(), u.uid().into(), u.uid().into())
        .map_err(sys_err(format!("set process.user.uid {}", u.uid())))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).map_err(sys_err("clear keepcaps"))?;
    caps::apply(&sets).map_err(sys_err("set capabilities"))?;
    if let Some(m) = u.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    Ok(())
}

/// Resolves `args[0]` like execvp with the container's PATH, failing early with a clear error.
fn find_executable(arg0: &str, env: &[String]) -> Result<CString> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| {
            m.is_file() && {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode() & 0o111 != 0
            }
        })
    };
    if arg0.contains('/') {
        if executable(Path::new(arg0)) {
            return sys::cstr(arg0).map_err(sys_err("process.args[0]"));
        }
        return Err(Error::Init(format!(
            "exec: {arg0:?}: no such executable file"
        )));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(arg0);
        if executable(&cand) {
            return sys::cstr(cand.as_os_str()).map_err(sys_err("process.args[0]"));
        }
    }
    Err(Error::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// Unblocks every signal and restores SIGPIPE (Rust's runtime ignores it) before exec.
fn reset_signals() {
    // SAFETY: an empty sigset is a valid mask; signal() with SIG_DFL is always valid for SIGPIPE.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The home directory of `uid` from the container's /etc/passwd, or `/` (as runc does).
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}
