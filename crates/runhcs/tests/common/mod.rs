#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Harness for the OCI runtime conformance suite.
//!
//! Owns: choosing the runtimes under test (`WHARF_TEST_RUNTIMES`), running a test body once per
//! runtime and naming the runtime that failed, busybox bundles with a `runc spec`-like
//! config, and driving containers through the runtime's CLI with a timeout on every invocation
//! and a `Drop` guard that force-deletes whatever a test left behind.
//!
//! Does not own: what a runtime must do. Every expectation lives in the test files, and every
//! expectation that is not meant to hold for runc is marked there as runhcs-only with the reason.
//!
//! Conventions that make tests parallel-safe: each container has a unique id and its own
//! `--root` state dir inside its own temp dir; cgroup paths, netns names and host dirs a test
//! creates carry a unique suffix.

#![allow(dead_code)]

pub mod bundle;
pub mod term;

pub use bundle::Bundle;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// How long one runtime invocation may take before it is killed and the test fails.
pub const RUNTIME_TIMEOUT: Duration = Duration::from_secs(20);

/// A runtime binary under test.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
}

impl Runtime {
    pub fn is_runc(&self) -> bool {
        self.name == "runc"
    }

    pub fn is_runhcs(&self) -> bool {
        self.name == "runhcs"
    }

    /// A container handle for `bundle` with a unique id and state root.
    pub fn container<'a>(&'a self, bundle: &'a Bundle) -> Container<'a> {
        Container::new(self, bundle)
    }

    /// An invocation of the runtime with no container (e.g. `spec`, `features`, `--version`).
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        let dir = tempfile::Builder::new()
            .prefix("wt-cmd-")
            .tempdir()
            .expect("temp dir for command output");
        let mut c = Cmd::new(self, dir.path().to_path_buf(), 0);
        c.args(args);
        c.keep_dir = Some(dir);
        c
    }
}

/// The runtimes selected by `WHARF_TEST_RUNTIMES` (default `runc,runhcs`).
///
/// Returns an empty list when not root (the test then skips; under `CI=true` it panics instead).
pub fn runtimes() -> Vec<Runtime> {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("these tests need root and CI=true: refusing to skip");
        }
        eprintln!("skipped: needs root");
        return Vec::new();
    }
    init_process();
    let sel = std::env::var("WHARF_TEST_RUNTIMES").unwrap_or_else(|_| "runc,runhcs".into());
    sel.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            let path = match name {
                // $RUNHCS runs the suite against another build (e.g. the static release one).
                "runhcs" => std::env::var_os("RUNHCS")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runhcs"))),
                "runc" => which("runc").expect("runc not found in PATH (run scripts/deps.sh)"),
                other => which(other).unwrap_or_else(|| PathBuf::from(other)),
            };
            Runtime {
                name: name.to_string(),
                path,
            }
        })
        .collect()
}

/// Runs `body` once per selected runtime. All runtimes run even if one fails; the panic names
/// every runtime that failed and why.
pub fn each_runtime(body: impl Fn(&Runtime)) {
    each_runtime_where(|_| true, body)
}

/// Like [`each_runtime`], restricted to runtimes for which `filter` holds. Callers say why in
/// a comment (e.g. runhcs-only because runc's behaviour differs).
pub fn each_runtime_where(filter: impl Fn(&Runtime) -> bool, body: impl Fn(&Runtime)) {
    let mut failures = Vec::new();
    for rt in runtimes().iter() {
        if !filter(rt) {
            eprintln!(
                "[{}] skipped: expectation does not apply to this runtime",
                rt.name
            );
            continue;
        }
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(rt)));
        if let Err(payload) = res {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into());
            failures.push(format!("[{}] {}", rt.name, msg));
        }
    }
    if !failures.is_empty() {
        panic!("failed on runtime(s):\n{}", failures.join("\n"));
    }
}

/// Process-wide setup: become a child subreaper (as a containerd shim is), so detached
/// container processes are re-parented to the test and `wait_exit` can read their exit code.
///
/// A subreaper must reap everything it inherits: an unreaped `exec`'d process keeps the
/// container's pid-1 stuck in `zap_pid_ns_processes` forever. So one thread reaps every
/// child (`waitpid(-1)`) and files the statuses in [`REAPED`]; nothing else calls wait.
fn init_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on this process.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER failed");
        std::thread::spawn(reaper_loop);
    });
}

/// Exit statuses (raw wait status) of reaped children and when they were reaped, by pid.
/// pid_max is 32768 here, so pids get reused: lookups ignore entries older than the process
/// they are looking for.
static REAPED: Mutex<Option<HashMap<i32, (i32, Instant)>>> = Mutex::new(None);
static REAPED_CV: Condvar = Condvar::new();

fn reaper_loop() {
    loop {
        // Peek first (WNOWAIT) and file the status, then reap: a waiter that sees the pid
        // gone from /proc always finds it filed.
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a valid out-pointer.
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        // SAFETY: waitid filled `info` for a child that changed state.
        let (pid, st) = unsafe { (info.si_pid(), info.si_status()) };
        if rc == 0 && pid > 0 {
            // The raw wait status waitpid would have given.
            let status = match info.si_code {
                libc::CLD_EXITED => (st & 0xff) << 8,
                libc::CLD_DUMPED => st | 0x80,
                _ => st,
            };
            {
                let mut g = REAPED.lock().unwrap_or_else(|e| e.into_inner());
                g.get_or_insert_with(HashMap::new)
                    .insert(pid, (status, Instant::now()));
            }
            let mut raw = 0;
            // WNOHANG: if a Command's own wait reaped it meanwhile and the pid was reused,
            // this must not block on the new process.
            // SAFETY: waitpid with a valid out-pointer, for the child just filed.
            unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
            REAPED_CV.notify_all();
        } else {
            // ECHILD (no children yet) or EINTR.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Waits for the reaper to report `pid` (reaped after `since`); returns its raw wait status,
/// or None on timeout or when `pid` is gone without having been reaped here.
fn wait_reaped(pid: i32, since: Instant, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    let mut g = REAPED.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let m = g.get_or_insert_with(HashMap::new);
        if let Some((st, at)) = m.remove(&pid) {
            if at >= since {
                return Some(st);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let step = left.min(Duration::from_millis(50));
        g = REAPED_CV
            .wait_timeout(g, step)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        // A pid that is not (or no longer) our child and is gone: give up early.
        if !Path::new(&format!("/proc/{pid}")).exists()
            && g.as_ref()
                .is_none_or(|m| m.get(&pid).is_none_or(|e| e.1 < since))
        {
            return None;
        }
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// A short unique suffix: process id, a counter and some randomness.
pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:08x}", h.finish() as u32)
}

/// The current test's name (libtest names the thread after it), sanitized for ids.
pub fn test_name() -> String {
    let t = std::thread::current();
    let raw = t.name().unwrap_or("test");
    let last = raw.rsplit("::").next().unwrap_or(raw);
    let s: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.chars().take(24).collect()
}

/// Result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct Output {
    pub desc: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "expected success: {self}");
        self
    }

    /// Asserts a non-zero exit (not a signal/timeout) and returns self.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected failure: {self}"
        );
        self
    }

    #[track_caller]
    pub fn code_is(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "exit code: {self}");
        self
    }

    /// stdout and stderr together, for error-message checks.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> code {:?} signal {:?} in {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc, self.code, self.signal, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// One runtime invocation, with stdout/stderr captured to files (not pipes: a detached
/// container inherits them and would keep a pipe open forever).
pub struct Cmd {
    cmd: Command,
    desc: String,
    timeout: Duration,
    out: PathBuf,
    err: PathBuf,
    capture: bool,
    stdin_set: bool,
    keep_dir: Option<tempfile::TempDir>,
}

impl Cmd {
    fn new(rt: &Runtime, io_dir: PathBuf, n: u32) -> Cmd {
        let mut cmd = Command::new(&rt.path);
        // Own process group so a timeout can kill the runtime and anything it forked.
        cmd.process_group(0);
        Cmd {
            cmd,
            desc: rt.name.clone(),
            timeout: RUNTIME_TIMEOUT,
            out: io_dir.join(format!("io-{n}.out")),
            err: io_dir.join(format!("io-{n}.err")),
            capture: true,
            stdin_set: false,
            keep_dir: None,
        }
    }

    pub fn arg(&mut self, a: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.desc.push(' ');
        self.desc.push_str(&a.as_ref().to_string_lossy());
        self.cmd.arg(a);
        self
    }

    pub fn args<S: AsRef<std::ffi::OsStr>>(&mut self, args: &[S]) -> &mut Self {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }

    pub fn stdin(&mut self, s: Stdio) -> &mut Self {
        self.cmd.stdin(s);
        self.stdin_set = true;
        self
    }

    /// Use the given stdio instead of capture files (e.g. a pty slave); output is then empty.
    pub fn stdio(&mut self, i: Stdio, o: Stdio, e: Stdio) -> &mut Self {
        self.cmd.stdin(i).stdout(o).stderr(e);
        self.stdin_set = true;
        self.capture = false;
        self
    }

    pub fn env(&mut self, k: &str, v: &str) -> &mut Self {
        self.cmd.env(k, v);
        self
    }

    /// Runs `f` in the child between fork and exec (e.g. to set up extra fds).
    ///
    /// # Safety
    /// Same contract as [`CommandExt::pre_exec`]: `f` must be async-signal-safe.
    pub unsafe fn pre_exec(
        &mut self,
        f: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        // SAFETY: forwarded contract, see the doc comment.
        unsafe { self.cmd.pre_exec(f) };
        self
    }

    pub fn stdout_path(&self) -> &Path {
        &self.out
    }

    /// Runs to completion; kills the process group and panics after the timeout.
    pub fn run(&mut self) -> Output {
        if self.capture {
            let o = fs::File::create(&self.out).expect("create stdout file");
            let e = fs::File::create(&self.err).expect("create stderr file");
            self.cmd.stdout(o).stderr(e);
        }
        if !self.stdin_set {
            self.cmd.stdin(Stdio::null());
        }
        init_process();
        let start = Instant::now();
        let pid = {
            // Hold the map while spawning so a stale entry for a reused pid can be dropped
            // before the reaper files this child's status.
            let mut g = REAPED.lock().unwrap_or_else(|e| e.into_inner());
            // Not waited on here: the harness's reaper thread collects every child's status.
            #[allow(clippy::zombie_processes)]
            let child = self
                .cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn `{}`: {e}", self.desc));
            let pid = child.id() as i32;
            g.get_or_insert_with(HashMap::new).remove(&pid);
            pid
        };
        let raw = match wait_reaped_child(pid, start, self.timeout) {
            Some(st) => st,
            None => {
                let _ignored = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                let _ignored = wait_reaped_child(pid, start, Duration::from_secs(5));
                panic!(
                    "`{}` timed out after {:?} (killed); stderr so far:\n{}",
                    self.desc,
                    self.timeout,
                    fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
        };
        let status = std::process::ExitStatus::from_raw(raw);
        let elapsed = start.elapsed();
        let (stdout, stderr) = if self.capture {
            (
                fs::read_to_string(&self.out).unwrap_or_default(),
                fs::read_to_string(&self.err).unwrap_or_default(),
            )
        } else {
            (String::new(), String::new())
        };
        Output {
            desc: self.desc.clone(),
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
            elapsed,
        }
    }
}

/// A container driven through the runtime CLI. Dropping it kills and force-deletes the
/// container and removes its state dir.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub bundle: &'a Bundle,
    pub id: String,
    dir: tempfile::TempDir,
    n: Cell<u32>,
    /// Capture file of the invocation that started the container process (create/run -d).
    init_out: Cell<Option<u32>>,
    pid: Cell<Option<i32>>,
    /// When the last create/run -d began (older reaped statuses for the pid are stale).
    started: Cell<Instant>,
}

impl<'a> Container<'a> {
    fn new(rt: &'a Runtime, bundle: &'a Bundle) -> Self {
        bundle.write();
        let dir = tempfile::Builder::new()
            .prefix("wt-state-")
            .tempdir()
            .expect("state temp dir");
        fs::create_dir(dir.path().join("root")).expect("mkdir state root");
        Container {
            rt,
            bundle,
            id: format!("wt-{}-{}", test_name(), unique()),
            dir,
            n: Cell::new(0),
            init_out: Cell::new(None),
            pid: Cell::new(None),
            started: Cell::new(Instant::now()),
        }
    }

    /// The `--root` state directory of this container.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A scratch dir owned by this container handle (removed on drop).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `runtime --root <root> <args...>` (no container id appended).
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        let n = self.n.get() + 1;
        self.n.set(n);
        let mut c = Cmd::new(self.rt, self.dir.path().to_path_buf(), n);
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    fn remember_init_io(&self) {
        self.started.set(Instant::now());
        self.init_out.set(Some(self.n.get()));
    }

    /// Foreground `run --bundle B <extra...> ID`.
    pub fn run_with(&self, extra: &[&str]) -> Output {
        let mut c = self.cmd(&["run", "--bundle"]);
        c.arg(self.bundle.path()).args(extra).arg(&self.id);
        c.run()
    }

    pub fn run(&self) -> Output {
        self.run_with(&[])
    }

    /// `run -d`; records the pid on success.
    pub fn run_detached(&self) -> Output {
        let mut c = self.cmd(&["run", "-d", "--bundle"]);
        c.arg(self.bundle.path()).arg(&self.id);
        self.remember_init_io();
        let out = c.run();
        if out.success() {
            self.pid.set(Some(self.state_pid()));
        }
        out
    }

    /// `create --bundle B <extra...> ID`; records the pid on success.
    pub fn create_with(&self, extra: &[&str]) -> Output {
        let mut c = self.cmd(&["create", "--bundle"]);
        c.arg(self.bundle.path()).args(extra).arg(&self.id);
        self.remember_init_io();
        let out = c.run();
        if out.success() {
            self.pid.set(Some(self.state_pid()));
        }
        out
    }

    pub fn create(&self) -> Output {
        self.create_with(&[])
    }

    pub fn start(&self) -> Output {
        self.cmd(&["start", &self.id]).run()
    }

    /// `state ID` parsed, or the failed invocation.
    pub fn try_state(&self) -> Result<Value, Output> {
        let out = self.cmd(&["state", &self.id]).run();
        if !out.success() {
            return Err(out);
        }
        match serde_json::from_str(&out.stdout) {
            Ok(v) => Ok(v),
            Err(e) => panic!("state output is not JSON ({e}): {out}"),
        }
    }

    #[track_caller]
    pub fn state(&self) -> Value {
        self.try_state()
            .unwrap_or_else(|o| panic!("state failed: {o}"))
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .expect("state.status is a string")
            .to_string()
    }

    #[track_caller]
    fn state_pid(&self) -> i32 {
        let st = self.state();
        st["pid"].as_i64().expect("state.pid is a number") as i32
    }

    /// The container init's host pid (from the last create/run -d).
    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.pid.get().expect("container has no recorded pid")
    }

    pub fn kill(&self, sig: &str) -> Output {
        self.cmd(&["kill", &self.id, sig]).run()
    }

    pub fn delete(&self) -> Output {
        self.cmd(&["delete", &self.id]).run()
    }

    pub fn delete_force(&self) -> Output {
        self.cmd(&["delete", "--force", &self.id]).run()
    }

    /// `exec <opts...> ID <args...>`.
    pub fn exec_with(&self, opts: &[&str], args: &[&str]) -> Output {
        let mut c = self.cmd(&["exec"]);
        c.args(opts).arg(&self.id).args(args);
        c.run()
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_with(&[], args)
    }

    /// What the container process wrote to stdout/stderr so far (create or run -d).
    pub fn init_stdout(&self) -> String {
        let n = self.init_out.get().expect("no create/run -d yet");
        fs::read_to_string(self.dir.path().join(format!("io-{n}.out"))).unwrap_or_default()
    }

    pub fn init_stderr(&self) -> String {
        let n = self.init_out.get().expect("no create/run -d yet");
        fs::read_to_string(self.dir.path().join(format!("io-{n}.err"))).unwrap_or_default()
    }

    /// Waits for the container init to exit; returns its exit code (128+signal when killed)
    /// when the test process reaped it, or None when someone else did.
    #[track_caller]
    pub fn wait_exit(&self) -> Option<i32> {
        wait_pid_since(self.pid(), self.started.get(), RUNTIME_TIMEOUT)
            .unwrap_or_else(|| panic!("container {} did not exit within timeout", self.id))
    }
}

/// Waits for a spawned child (which stays in /proc as a zombie until reaped).
fn wait_reaped_child(pid: i32, since: Instant, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(st) = wait_reaped(pid, since, left) {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// Waits for `pid` (a process that started after `since`) to exit. Outer None: timeout.
/// Inner: the exit code (128+signal when killed) if it was our child (re-parented to this
/// subreaper), else None.
pub fn wait_pid_since(pid: i32, since: Instant, timeout: Duration) -> Option<Option<i32>> {
    let code = |raw: i32| {
        let st = std::process::ExitStatus::from_raw(raw);
        st.code().or(st.signal().map(|s| 128 + s)).unwrap_or(-1)
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(raw) = wait_reaped(pid, since, left.min(Duration::from_millis(100))) {
            return Some(Some(code(raw)));
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Gone: filed by the reaper meanwhile, or not our child.
            let mut g = REAPED.lock().unwrap_or_else(|e| e.into_inner());
            let st = g
                .get_or_insert_with(HashMap::new)
                .remove(&pid)
                .filter(|e| e.1 >= since);
            return Some(st.map(|e| code(e.0)));
        }
        if left.is_zero() {
            return None;
        }
    }
}

/// [`wait_pid_since`] for a process that started during this test (the last minute).
pub fn wait_pid(pid: i32, timeout: Duration) -> Option<Option<i32>> {
    let since = Instant::now()
        .checked_sub(Duration::from_secs(60))
        .unwrap_or_else(Instant::now);
    wait_pid_since(pid, since, timeout)
}

/// True if `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
        Err(_) => false,
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let quick = Duration::from_secs(10);
        let pid = self.pid.get();
        // Never panic in drop (we may already be unwinding): swallow timeouts.
        let _ignored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut k = self.cmd(&["kill", &self.id, "KILL"]);
            k.timeout(quick).run();
            // Reap the init if it was re-parented to us: a runtime waiting for a zombie
            // it cannot reap would make `delete --force` hang.
            if let Some(pid) = pid {
                wait_pid_since(pid, self.started.get(), Duration::from_secs(2));
            }
            let mut d = self.cmd(&["delete", "--force", &self.id]);
            d.timeout(quick).run();
        }));
    }
}

/// Runs a host command to completion (with a timeout) and returns its output.
pub fn host(cmd: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = Runtime {
        name: cmd.to_string(),
        path: which(cmd).unwrap_or_else(|| PathBuf::from(cmd)),
    };
    let mut c = Cmd::new(&rt, dir.path().to_path_buf(), 0);
    c.args(args);
    c.run()
}

/// The inode number of a namespace link like `/proc/self/ns/net` (`net:[4026531840]`).
pub fn ns_inode(link_text: &str) -> String {
    link_text
        .trim()
        .rsplit('[')
        .next()
        .unwrap_or("")
        .trim_end_matches(']')
        .to_string()
}

/// Host-side readlink of `/proc/<pid>/ns/<ns>`.
pub fn host_ns(pid: &str, ns: &str) -> String {
    let l = fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"));
    ns_inode(&l.to_string_lossy())
}

/// Parses `key:\tvalue` lines of `/proc/<pid>/status` output.
pub fn status_field<'s>(status: &'s str, key: &str) -> Option<&'s str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

/// A host temp dir whose contents a test controls (world-readable so a container's users can
/// read bind mounts of it).
pub fn host_dir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("host temp dir");
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}
