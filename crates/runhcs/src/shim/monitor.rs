//! The monitor's event loop: one `poll` over everything, rebuilt each round from the objects
//! below, so an object removed in a round is simply not polled in the next.

use super::conn::{self, Incoming, Pending, SendError};
use super::exit::{self, Diag};
use super::jsonlog::JsonLog;
use super::stdio::{Got, Stdio};
use super::trim::trim;
use super::Config;
use hcs::shim::{ExitStatus, Reply, STREAM_ERROR, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT};
use hcs::ComputeSystem;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Size of the one read buffer (and so of the largest output frame).
const READ_BUF: usize = 32 * 1024;

/// After the init exits: how long to wait for the rest of its output (a process that escaped
/// the kill may hold the pipe).
const DRAIN: Duration = Duration::from_secs(2);

/// After an exec'd process exits: how long to wait for the end of its output (a terminal's
/// last bytes, or a background child holding the pipe).
const EXEC_LINGER: Duration = Duration::from_millis(250);

/// Quiet time after which the monitor gives back memory it no longer uses ([`trim`]).
const IDLE: Duration = Duration::from_secs(1);

/// The signals the monitor takes through its signalfd: SIGCHLD to reap, the rest to ignore.
fn handled() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGTERM,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks the handled signals and returns a signalfd for them. Blocked (not ignored): a
/// blocked mask is reset for the container's processes, an ignored disposition would be
/// inherited by them.
pub fn signals() -> nix::Result<SignalFd> {
    let set = handled();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// A client attached to the container's stdio.
pub struct Attached {
    pub sock: UnixStream,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub close_stdin_on_eof: bool,
    /// The client has not half-closed yet.
    pub reading: bool,
    pub dead: bool,
}

/// A process started by `Exec`, and the connection that streams it.
pub struct Exec {
    pub id: String,
    pub pid: i32,
    /// Keeps the process's pidfd (and `hcs`'s handle on it) for its lifetime.
    pub _process: hcs::Process,
    pub stdio: Stdio,
    pub conn: Option<UnixStream>,
    pub conn_reading: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub exit: Option<(ExitStatus, Instant)>,
    pub done: bool,
}

/// A `Wait` request waiting for the init's exit.
pub struct Waiter {
    pub sock: UnixStream,
    pub dead: bool,
}

/// What a pollfd in the current round belongs to.
#[derive(Clone, Copy)]
enum Token {
    Listener,
    Signals,
    InitOut(usize),
    InitIn,
    Pending(usize),
    Attached(usize),
    Waiter(usize),
    ExecOut(usize, usize),
    ExecIn(usize),
    ExecConn(usize),
}

pub struct Parts {
    pub cfg: Config,
    pub system: ComputeSystem,
    pub init_pid: i32,
    pub stdio: Stdio,
    pub log: JsonLog,
    pub listener: UnixListener,
    pub signals: SignalFd,
    pub diag: Diag,
    pub sock_path: PathBuf,
    pub pid_path: PathBuf,
}

pub struct Monitor {
    pub(super) cfg: Config,
    pub(super) system: ComputeSystem,
    pub(super) init_pid: i32,
    pub(super) init: Stdio,
    log: JsonLog,
    log_failed: bool,
    listener: UnixListener,
    signals: SignalFd,
    diag: Diag,
    sock_path: PathBuf,
    pid_path: PathBuf,
    oom_before: Option<u64>,
    pending: Vec<Pending>,
    pub(super) attached: Vec<Attached>,
    pub(super) waiters: Vec<Waiter>,
    pub(super) execs: Vec<Exec>,
    /// The init's exit, from the moment it is reaped; the monitor then drains until `drain_until`.
    pub(super) exit: Option<ExitStatus>,
    drain_until: Option<Instant>,
    /// Something happened since the last trim.
    trim_due: bool,
    buf: Box<[u8]>,
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
}

impl Monitor {
    pub fn new(p: Parts) -> Self {
        let oom_before = exit::oom_kills(&p.system);
        Monitor {
            cfg: p.cfg,
            system: p.system,
            init_pid: p.init_pid,
            init: p.stdio,
            log: p.log,
            log_failed: false,
            listener: p.listener,
            signals: p.signals,
            diag: p.diag,
            sock_path: p.sock_path,
            pid_path: p.pid_path,
            oom_before,
            pending: Vec::new(),
            attached: Vec::new(),
            waiters: Vec::new(),
            execs: Vec::new(),
            exit: None,
            drain_until: None,
            trim_due: true,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            fds: Vec::with_capacity(16),
            tokens: Vec::with_capacity(16),
        }
    }

    pub fn warn(&self, msg: &str) {
        self.diag.warn(msg);
    }

    /// The invoker vanished before the handshake: remove the container and leave.
    pub fn abandon(self) -> ! {
        self.system.delete(true).ok();
        std::fs::remove_file(&self.sock_path).ok();
        std::fs::remove_file(&self.pid_path).ok();
        std::process::exit(1)
    }

    pub fn run(mut self) -> ! {
        loop {
            if let Some(until) = self.drain_until {
                let execs_done = self.execs.iter().all(|e| e.exit.is_none() || e.done);
                if (self.init.outputs_done() && execs_done) || Instant::now() >= until {
                    self.finish();
                }
            }
            self.build_poll_set();
            let mut timeout = self.timeout_ms();
            if self.trim_due && !(0..IDLE.as_millis() as i32).contains(&timeout) {
                timeout = IDLE.as_millis() as i32;
            }
            // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the duration of the call.
            let n = unsafe {
                libc::poll(
                    self.fds.as_mut_ptr(),
                    self.fds.len() as libc::nfds_t,
                    timeout,
                )
            };
            if n < 0 {
                let e = Errno::last();
                if e != Errno::EINTR {
                    self.warn(&format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            if n == 0 && self.trim_due && self.drain_until.is_none() {
                trim();
                self.trim_due = false;
            }
            self.trim_due |= n > 0;
            for i in 0..self.fds.len() {
                let rev = self.fds[i].revents;
                if rev != 0 {
                    self.dispatch(self.tokens[i], rev);
                }
            }
            self.finish_execs();
            self.sweep();
        }
    }

    fn build_poll_set(&mut self) {
        self.fds.clear();
        self.tokens.clear();
        let mut add = |fds: &mut Vec<libc::pollfd>, fd: i32, events: i16, t: Token| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            self.tokens.push(t);
        };
        let fds = &mut self.fds;
        add(
            fds,
            self.listener.as_raw_fd(),
            libc::POLLIN,
            Token::Listener,
        );
        add(fds, self.signals.as_raw_fd(), libc::POLLIN, Token::Signals);
        for (i, f) in self.init.out.iter().enumerate() {
            if let Some(f) = f {
                add(fds, f.as_raw_fd(), libc::POLLIN, Token::InitOut(i));
            }
        }
        if let (true, Some(fd)) = (self.init.input_pending(), self.init.input_fd()) {
            add(fds, fd, libc::POLLOUT, Token::InitIn);
        }
        for (i, p) in self.pending.iter().enumerate() {
            add(fds, p.sock.as_raw_fd(), libc::POLLIN, Token::Pending(i));
        }
        let init_accepts = self.init.accepts_input();
        for (i, a) in self.attached.iter().enumerate() {
            // Hang-ups are always reported; read only while the input has room (or the bytes
            // would be dropped anyway, for a client that does not send stdin).
            let read = a.reading && (!a.stdin || init_accepts);
            let ev = if read { libc::POLLIN } else { 0 };
            add(fds, a.sock.as_raw_fd(), ev, Token::Attached(i));
        }
        for (i, w) in self.waiters.iter().enumerate() {
            add(fds, w.sock.as_raw_fd(), 0, Token::Waiter(i));
        }
        for (i, e) in self.execs.iter().enumerate() {
            for (s, f) in e.stdio.out.iter().enumerate() {
                if let Some(f) = f {
                    add(fds, f.as_raw_fd(), libc::POLLIN, Token::ExecOut(i, s));
                }
            }
            if let (true, Some(fd)) = (e.stdio.input_pending(), e.stdio.input_fd()) {
                add(fds, fd, libc::POLLOUT, Token::ExecIn(i));
            }
            if let Some(c) = &e.conn {
                let read = e.conn_reading && e.stdio.accepts_input();
                let ev = if read { libc::POLLIN } else { 0 };
                add(fds, c.as_raw_fd(), ev, Token::ExecConn(i));
            }
        }
    }

    /// Until the next deadline (the drain, an exec's linger), or for ever.
    fn timeout_ms(&self) -> i32 {
        let deadlines = self
            .execs
            .iter()
            .filter(|e| !e.done)
            .filter_map(|e| e.exit.map(|(_, at)| at + EXEC_LINGER))
            .chain(self.drain_until);
        match deadlines.min() {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so the deadline has passed when poll returns.
                (left.as_millis() + 1).min(i32::MAX as u128) as i32
            }
        }
    }

    /// Not inlined into the loop: the handlers' frames then lie below the loop's, where an
    /// idle [`trim`] can give their stack pages back.
    #[inline(never)]
    fn dispatch(&mut self, t: Token, rev: i16) {
        match t {
            Token::Listener => self.accept(),
            Token::Signals => self.on_signals(),
            Token::InitOut(s) => self.on_init_output(s),
            Token::InitIn => self.init.flush_input(),
            Token::Pending(i) => self.on_pending(i),
            Token::Attached(i) => self.on_attached(i, rev),
            Token::Waiter(i) => {
                if rev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                    self.waiters[i].dead = true;
                }
            }
            Token::ExecOut(i, s) => self.on_exec_output(i, s),
            Token::ExecIn(i) => self.execs[i].stdio.flush_input(),
            Token::ExecConn(i) => self.on_exec_conn(i, rev),
        }
    }

    fn accept(&mut self) {
        // A bounded batch per round, so a flood of connections cannot starve the output.
        for _ in 0..16 {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if let Err(e) = sock.set_nonblocking(true) {
                        self.warn(&format!("accepted connection: set non-blocking: {e}"));
                        continue;
                    }
                    self.pending.push(Pending::new(sock));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: leave the rest queued for a later round.
                    self.warn(&format!("accept on {}: {e}", self.sock_path.display()));
                    return;
                }
            }
        }
    }

    fn on_signals(&mut self) {
        let mut child = false;
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    if info.ssi_signo == Signal::SIGCHLD as u32 {
                        child = true;
                    }
                }
                Ok(None) => break,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    self.warn(&format!("read signalfd: {e}"));
                    break;
                }
            }
        }
        if child {
            self.reap();
        }
    }

    /// Collects every exited child: the init, exec'd processes, and orphans re-parented here.
    fn reap(&mut self) {
        loop {
            let (pid, code) = match nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.warn(&format!("waitpid: {e}"));
                    return;
                }
            };
            let status = ExitStatus {
                exit_code: code,
                finished_at_ns: exit::now_ns(),
                oom_killed: false,
            };
            if pid == self.init_pid {
                self.on_init_exit(status);
            } else if let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid) {
                e.exit = Some((status, Instant::now()));
            }
        }
    }

    fn on_init_exit(&mut self, mut status: ExitStatus) {
        if self.exit.is_some() {
            return;
        }
        status.oom_killed = match (self.oom_before, exit::oom_kills(&self.system)) {
            (before, Some(after)) => after > before.unwrap_or(0),
            _ => false,
        };
        self.exit = Some(status);
        self.drain_until = Some(Instant::now() + DRAIN);
        // Whatever is left of the container goes now (with a pid namespace the kernel already
        // did it); its output then ends and the drain is short.
        let cg = &self.system.record().cgroup;
        if cg.pids().is_ok_and(|p| !p.is_empty()) {
            if let Err(e) = cg.kill_all(Signal::SIGKILL) {
                self.warn(&format!(
                    "kill the remaining processes of container {}: {}",
                    self.cfg.id,
                    hcs::process::error_chain(&e)
                ));
            }
        }
    }

    fn on_init_output(&mut self, slot: usize) {
        let stream = if slot == 0 {
            STREAM_STDOUT
        } else {
            STREAM_STDERR
        };
        let n = match self.init.read(slot, &mut self.buf) {
            Got::Data(n) => n,
            Got::Nothing => return,
            Got::Eof => {
                self.log_result(|log| log.flush(stream));
                return;
            }
        };
        let res = self.log.write(stream, &self.buf[..n]);
        self.log_result(|_| res);
        let data = &self.buf[..n];
        for a in &mut self.attached {
            let wants = if stream == STREAM_STDOUT {
                a.stdout
            } else {
                a.stderr
            };
            if !wants || a.dead {
                continue;
            }
            if let Err(e) = conn::send_frame(&a.sock, stream, data) {
                a.dead = true;
                if let SendError::Full = e {
                    self.diag.warn(&format!(
                        "attached client dropped: it does not keep up with the output of container {}",
                        self.cfg.id
                    ));
                }
            }
        }
    }

    fn log_result(&mut self, f: impl FnOnce(&mut JsonLog) -> std::io::Result<()>) {
        match f(&mut self.log) {
            Ok(()) => self.log_failed = false,
            Err(e) => self.log_error(e),
        }
    }

    fn log_error(&mut self, e: std::io::Error) {
        // Once per failure streak: a full disk must not fill the diagnostics too.
        if !self.log_failed {
            self.log_failed = true;
            self.warn(&format!(
                "write log file {}: {e}",
                self.cfg.log_path.display()
            ));
        }
    }

    fn on_pending(&mut self, i: usize) {
        let p = &mut self.pending[i];
        if p.dead {
            return;
        }
        match p.read(&mut self.buf) {
            Incoming::More => {}
            Incoming::Gone(why) => {
                p.dead = true;
                if let Some(why) = why {
                    conn::send_reply(&p.sock, &Reply::err("invalid_argument", why)).ok();
                }
            }
            Incoming::Line(line, rest) => {
                p.dead = true;
                let sock = p.sock.try_clone();
                match sock {
                    Ok(sock) => self.request(sock, &line, &rest),
                    Err(e) => self.warn(&format!("take over a connection: {e}")),
                }
            }
        }
    }

    fn on_attached(&mut self, i: usize, rev: i16) {
        if rev & libc::POLLIN != 0 {
            let a = &mut self.attached[i];
            match conn::read_input(&a.sock, &mut self.buf) {
                Ok(None) => {}
                Ok(Some(0)) => {
                    a.reading = false;
                    if a.stdin && a.close_stdin_on_eof {
                        self.init.close_input();
                    }
                }
                Ok(Some(n)) => {
                    if a.stdin {
                        self.init.write_input(&self.buf[..n]);
                    }
                }
                Err(_) => a.dead = true,
            }
            return;
        }
        if rev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            self.attached[i].dead = true;
        }
    }

    fn on_exec_output(&mut self, i: usize, slot: usize) {
        let e = &mut self.execs[i];
        let n = match e.stdio.read(slot, &mut self.buf) {
            Got::Data(n) => n,
            Got::Nothing | Got::Eof => return,
        };
        let (stream, wants) = if slot == 0 {
            (STREAM_STDOUT, e.stdout)
        } else {
            (STREAM_STDERR, e.stderr)
        };
        let Some(c) = &e.conn else { return };
        if !wants {
            return;
        }
        if let Err(err) = conn::send_frame(c, stream, &self.buf[..n]) {
            e.conn = None;
            if let SendError::Full = err {
                self.diag.warn(&format!(
                    "exec {} client dropped: it does not keep up with the output",
                    e.id
                ));
            }
        }
    }

    fn on_exec_conn(&mut self, i: usize, rev: i16) {
        let e = &mut self.execs[i];
        let Some(c) = &e.conn else { return };
        if rev & libc::POLLIN != 0 {
            match conn::read_input(c, &mut self.buf) {
                Ok(None) => {}
                // The client's half-close ends the process's stdin (`docker exec -i`).
                Ok(Some(0)) => {
                    e.conn_reading = false;
                    e.stdio.close_input();
                }
                Ok(Some(n)) => e.stdio.write_input(&self.buf[..n]),
                Err(_) => e.conn = None,
            }
            return;
        }
        if rev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            // The client left; the process runs on (as a detached `docker exec` would).
            e.conn = None;
        }
    }

    /// Ends the streams of exec'd processes that exited and whose output is drained (or whose
    /// linger passed): the exit frame, then close.
    fn finish_execs(&mut self) {
        let now = Instant::now();
        for e in &mut self.execs {
            let Some((status, at)) = e.exit else { continue };
            if e.done || !(e.stdio.outputs_done() || now >= at + EXEC_LINGER) {
                continue;
            }
            e.done = true;
            if let Some(c) = e.conn.take() {
                let payload = serde_json::to_vec(&status).unwrap_or_default();
                // The client may be gone; nothing to do about it then.
                conn::send_last_frame(&c, STREAM_EXIT, &payload).ok();
            }
        }
    }

    fn sweep(&mut self) {
        self.pending.retain(|p| !p.dead);
        self.attached.retain(|a| !a.dead);
        self.waiters.retain(|w| !w.dead);
        self.execs.retain(|e| !e.done);
    }

    /// The init has exited and its output is drained: record, answer, clean up, exit.
    fn finish(mut self) -> ! {
        for s in [STREAM_STDOUT, STREAM_STDERR] {
            self.log_result(|log| log.flush(s));
        }
        let status = self.exit.unwrap_or_default();
        if let Err(e) = exit::write_exit_file(&self.cfg.state_dir, &status) {
            self.warn(&format!(
                "write {}: {e}",
                self.cfg.state_dir.join(hcs::shim::EXIT_FILE).display()
            ));
        }
        let reply = Reply {
            exit: Some(status),
            ..Reply::ok()
        };
        for w in &self.waiters {
            conn::send_reply(&w.sock, &reply).ok();
        }
        self.waiters.clear();
        self.attached.clear();
        let msg = format!("container {} exited", self.cfg.id);
        for e in &mut self.execs {
            let Some(c) = e.conn.take() else { continue };
            match e.exit {
                Some((st, _)) => {
                    let payload = serde_json::to_vec(&st).unwrap_or_default();
                    conn::send_last_frame(&c, STREAM_EXIT, &payload).ok()
                }
                None => conn::send_last_frame(&c, STREAM_ERROR, msg.as_bytes()).ok(),
            };
        }
        self.execs.clear();
        let Monitor {
            system,
            diag,
            sock_path,
            pid_path,
            cfg,
            listener,
            pending,
            mut buf,
            ..
        } = self;
        if let Err(e) = system.delete(true) {
            diag.warn(&format!(
                "delete container {}: {}",
                cfg.id,
                hcs::process::error_chain(&e)
            ));
        }
        // Orphans the kill left as zombies.
        while let Ok(st) = nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
        }
        // No new connection can arrive once the socket is unlinked; the ones already queued or
        // half-read get an answer from the exit status instead of a reset.
        std::fs::remove_file(&sock_path).ok();
        std::fs::remove_file(&pid_path).ok();
        let late = |mut p: Pending, buf: &mut [u8]| {
            let deadline = Instant::now() + LATE_REQUEST;
            let reply = loop {
                match p.read(buf) {
                    Incoming::Line(line, _) => break late_reply(&cfg.id, &line, status),
                    Incoming::Gone(_) => return,
                    Incoming::More if Instant::now() >= deadline => return,
                    Incoming::More => std::thread::sleep(Duration::from_millis(5)),
                }
            };
            conn::send_reply(&p.sock, &reply).ok();
        };
        for p in pending.into_iter().filter(|p| !p.dead) {
            late(p, &mut buf);
        }
        while let Ok((sock, _)) = listener.accept() {
            if sock.set_nonblocking(true).is_ok() {
                late(Pending::new(sock), &mut buf);
            }
        }
        std::process::exit(0)
    }
}

/// How long a connection that arrived during the exit may take to send its request.
const LATE_REQUEST: Duration = Duration::from_millis(500);

/// The answer to a request that arrives while the monitor exits: `Wait` and `State` get the
/// exit status, anything else is refused.
fn late_reply(id: &str, line: &[u8], status: ExitStatus) -> Reply {
    match serde_json::from_slice::<hcs::shim::Request>(line) {
        Ok(hcs::shim::Request::Wait) => Reply {
            exit: Some(status),
            ..Reply::ok()
        },
        Ok(hcs::shim::Request::State) => Reply {
            status: Some("stopped".into()),
            exit: Some(status),
            ..Reply::ok()
        },
        Ok(_) => Reply::err(
            "failed_precondition",
            format!("container {id} has exited; its monitor is stopping"),
        ),
        Err(e) => Reply::err("invalid_argument", format!("parse request: {e}")),
    }
}
