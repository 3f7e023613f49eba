//! `runhcs shim`: the per-container monitor (the daemon side of the protocol is `hcs::shim`).
//!
//! Life of a monitor, in the order things happen:
//!
//! 1. **Handshake** ([`run`]): the invoking process forks the monitor and waits on a pipe. The
//!    monitor starts a new session, becomes a child subreaper, listens on `<state dir>/shim.sock`,
//!    creates the container through `hcs` with stdio it owns (pipes, or a terminal whose master
//!    it receives over a console socket), opens the json-file log and writes `shim.pid`. Then it
//!    says `ok` on the pipe and the invoker exits 0; on any error it undoes what it made and
//!    sends the message instead (the invoker prints it and exits 1).
//! 2. **Monitor** ([`monitor`]): one thread, one `poll` loop over the socket, a signalfd
//!    (SIGCHLD; SIGINT/SIGHUP/SIGTERM are swallowed), the container's output and input, the
//!    connections and the execs' stdio. Requests are handled in [`requests`].
//! 3. **Exit**: when the init is reaped, the rest of the container is killed, output is drained,
//!    `exit.json` is written, waiters are answered, streams are closed, the container is deleted
//!    and the monitor removes its socket and exits.
//!
//! The monitor stays small: no threads, no async runtime, one shared read buffer, queues that
//! shrink back when emptied, and after a second without events it gives back the memory the
//! create path left touched ([`trim`]): about 0.5 MiB RSS when idle for the static release build.
//!
//! With `--tty` the container's stdin is the terminal: `--stdin` decides whether attached
//! clients may type into it. Closing it on a client's half-close cannot reach the container
//! (the terminal stays open); a `Kill` ends such a container.

mod conn;
mod exit;
mod jsonlog;
mod monitor;
mod requests;
mod stdio;
mod trim;

use crate::cli::ShimArgs;
use anyhow::{anyhow, bail, Context, Result};
use exit::{write_atomic, Diag};
use hcs::process::{Bundle, CreateOptions};
use hcs::shim::{PID_FILE, SOCKET_NAME};
use hcs::ComputeSystem;
use nix::unistd::ForkResult;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Where the init's terminal master arrives (inside the state directory, removed at once).
const CONSOLE_SOCKET: &str = "console.sock";

/// Everything the monitor is started with, paths made absolute.
pub struct Config {
    pub root: PathBuf,
    pub owner: String,
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub stdin: bool,
    pub tty: bool,
    pub console_size: Option<(u16, u16)>,
    pub diag_log: Option<PathBuf>,
}

/// `runhcs shim`: forks the monitor and returns once it reports the container created.
pub fn run(root: &Path, owner: &str, diag_log: Option<&Path>, a: &ShimArgs) -> Result<i32> {
    let cwd = std::env::current_dir().context("shim: read the current directory")?;
    let cfg = Config {
        root: cwd.join(root),
        owner: owner.to_string(),
        id: a.id.clone(),
        bundle: cwd.join(&a.bundle),
        state_dir: cwd.join(&a.state_dir),
        log_path: cwd.join(&a.log_path),
        log_max_size: a.log_max_size,
        log_max_files: a.log_max_files,
        stdin: a.stdin,
        tty: a.tty,
        console_size: a.console_size,
        diag_log: diag_log.map(|p| cwd.join(p)),
    };
    hcs::process::state::validate_id(&cfg.id)?;
    let (mut ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map(|(r, w)| (std::fs::File::from(r), std::fs::File::from(w)))
        .context("shim: create the handshake pipe")?;
    // SAFETY: runhcs is single-threaded, so the child may run any code after the fork.
    match unsafe { nix::unistd::fork() }.context("shim: fork the monitor")? {
        ForkResult::Parent { child } => {
            drop(ready_w);
            let mut msg = String::new();
            ready_r
                .read_to_string(&mut msg)
                .context("shim: read the monitor's handshake")?;
            if msg == "ok" {
                return Ok(0);
            }
            // The monitor exits after reporting a failure: collect it.
            nix::sys::wait::waitpid(child, None).ok();
            if msg.is_empty() {
                bail!(
                    "shim: the monitor of container {} exited during setup",
                    cfg.id
                );
            }
            Err(anyhow!("shim: {msg}"))
        }
        ForkResult::Child => {
            drop(ready_r);
            monitor_main(cfg, ready_w)
        }
    }
}

/// The monitor process: set up, report, run until the container exits.
fn monitor_main(cfg: Config, mut ready: std::fs::File) -> ! {
    let m = match setup(cfg) {
        Ok(m) => m,
        Err(e) => {
            // The invoker prints it; nothing else is left to report to.
            ready.write_all(format!("{e:#}").as_bytes()).ok();
            std::process::exit(1);
        }
    };
    if ready.write_all(b"ok").is_err() {
        // The invoker is gone and will never know the container exists: do not leave it.
        m.abandon();
    }
    drop(ready);
    if let Err(e) = detach_stdio() {
        m.warn(&format!("redirect the monitor's stdio to /dev/null: {e}"));
    }
    trim::trim();
    m.run()
}

/// Undoes a half-made monitor (socket, console socket, pid file, the container) on an error.
struct Undo {
    paths: Vec<PathBuf>,
    system: Option<ComputeSystem>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(s) = self.system.take() {
            // Best effort on a path that already failed; the first error is the one reported.
            s.delete(true).ok();
        }
        for p in &self.paths {
            std::fs::remove_file(p).ok();
        }
    }
}

#[inline(never)]
fn setup(cfg: Config) -> Result<monitor::Monitor> {
    nix::unistd::setsid().context("start a new session")?;
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("become a child subreaper");
    }
    let signals = monitor::signals().context("set up the monitor's signals")?;
    let id = cfg.id.clone();
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("create state directory {}", cfg.state_dir.display()))?;
    let mut undo = Undo {
        paths: Vec::new(),
        system: None,
    };
    let sock_path = cfg.state_dir.join(SOCKET_NAME);
    let listener = listen(&sock_path)?;
    undo.paths.push(sock_path.clone());

    let mut bundle = Bundle::load(&cfg.bundle)
        .with_context(|| format!("load bundle {}", cfg.bundle.display()))?;
    set_terminal(&mut bundle, cfg.tty, cfg.console_size)?;
    let (stdio, child, console) = if cfg.tty {
        let path = cfg.state_dir.join(CONSOLE_SOCKET);
        std::fs::remove_file(&path).ok();
        let l = UnixListener::bind(&path)
            .with_context(|| format!("listen on console socket {}", path.display()))?;
        undo.paths.push(path.clone());
        let null = || stdio::dev_null().context("open /dev/null");
        (None, [null()?, null()?, null()?], Some((l, path)))
    } else {
        let (s, child) = stdio::Stdio::pipes(cfg.stdin).context("create stdio pipes")?;
        (Some(s), child, None)
    };
    let opts = CreateOptions {
        console_socket: console.as_ref().map(|(_, p)| p.clone()),
        owner: cfg.owner.clone(),
        stdio: Some([
            child[0].as_raw_fd(),
            child[1].as_raw_fd(),
            child[2].as_raw_fd(),
        ]),
        ..Default::default()
    };
    let system = ComputeSystem::create_from_bundle(&cfg.root, &id, bundle, &opts)
        .with_context(|| format!("create container {id}"))?;
    let init_pid = system.pid();
    undo.system = Some(system);
    drop(child);
    let stdio = match (stdio, console) {
        (Some(s), _) => s,
        (None, Some((l, path))) => {
            let master = receive_master(&l)
                .with_context(|| format!("receive the terminal of container {id}"))?;
            std::fs::remove_file(&path).ok();
            stdio::Stdio::console(master, cfg.stdin)
                .with_context(|| format!("set up the terminal of container {id}"))?
        }
        (None, None) => unreachable!("a terminal always comes with its console socket"),
    };
    let log = jsonlog::JsonLog::open(&cfg.log_path, cfg.log_max_size, cfg.log_max_files)
        .with_context(|| format!("open log file {}", cfg.log_path.display()))?;
    let pid_path = cfg.state_dir.join(PID_FILE);
    write_atomic(&pid_path, std::process::id().to_string().as_bytes())
        .with_context(|| format!("write pid file {}", pid_path.display()))?;
    undo.paths.push(pid_path.clone());
    // Keep no directory busy (the bundle, the daemon's working directory).
    std::env::set_current_dir("/").context("change directory to /")?;

    let diag = Diag::new(
        cfg.diag_log
            .clone()
            .unwrap_or_else(|| cfg.state_dir.join("shim.log")),
        &id,
    );
    let system = undo
        .system
        .take()
        .ok_or_else(|| anyhow!("container {id} vanished during setup"))?;
    undo.paths.clear();
    Ok(monitor::Monitor::new(monitor::Parts {
        cfg,
        system,
        init_pid,
        stdio,
        log,
        listener,
        signals,
        diag,
        sock_path,
        pid_path,
    }))
}

/// Binds the monitor's socket, refusing to take over one another monitor still serves.
fn listen(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "listen on {}: another monitor is serving it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    l.set_nonblocking(true)
        .with_context(|| format!("listen on {}", path.display()))?;
    Ok(l)
}

/// The spec's terminal follows `--tty` (the daemon decides), with `--console-size`.
fn set_terminal(bundle: &mut Bundle, tty: bool, size: Option<(u16, u16)>) -> Result<()> {
    let mut process = bundle.spec.process().clone().ok_or_else(|| {
        anyhow!(
            "bundle {}: config.json has no process",
            bundle.dir.display()
        )
    })?;
    process.set_terminal(Some(tty));
    if let (true, Some((rows, cols))) = (tty, size) {
        let b = oci_spec::runtime::BoxBuilder::default()
            .height(u64::from(rows))
            .width(u64::from(cols))
            .build()
            .context("--console-size")?;
        process.set_console_size(Some(b));
    }
    bundle.spec.set_process(Some(process));
    Ok(())
}

/// Accepts the init's connection on the console socket and takes the pty master it sent (it
/// is sent during setup, so it is there once the container is created).
fn receive_master(l: &UnixListener) -> Result<OwnedFd> {
    l.set_nonblocking(true).context("console socket")?;
    let (sock, _) = l
        .accept()
        .context("accept on the console socket (the init did not connect)")?;
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    )
    .context("receive the pty master")?;
    for c in msg.cmsgs().context("receive the pty master")? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            let mut master = None;
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor for us; nobody owns it. Any
                // extra ones are owned too, so they are closed.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                master.get_or_insert(owned);
            }
            if let Some(m) = master {
                return Ok(m);
            }
        }
    }
    bail!("the console socket message carried no descriptor")
}

/// Points stdin, stdout and stderr at /dev/null: the invoker's pipes must not stay open.
fn detach_stdio() -> std::io::Result<()> {
    let null = stdio::dev_null()?;
    for fd in 0..3 {
        // SAFETY: dup2 of a descriptor we own onto a stdio slot; no Rust object owns 0-2.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
