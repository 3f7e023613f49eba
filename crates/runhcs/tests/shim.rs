#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `runhcs shim`: the per-container monitor, driven over its socket as the daemon drives it
//! (the protocol is `hcs::shim`).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{pid_alive, poll_until, unique, Bundle, Output, Runtime};
use hcs::shim::{read_frame, ExitStatus, STREAM_ERROR, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

/// The runhcs under test, or None (skip) when not root.
fn runhcs() -> Option<Runtime> {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("these tests need root and CI=true: refusing to skip");
        }
        eprintln!("skipped: needs root");
        return None;
    }
    let path = std::env::var_os("RUNHCS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runhcs")));
    Some(Runtime {
        name: "runhcs".into(),
        path,
    })
}

/// One container under its monitor. Dropping it kills the container (through the monitor, or
/// directly if the monitor is gone) and removes every directory it made.
struct Shim {
    rt: Runtime,
    id: String,
    dir: tempfile::TempDir,
    invoker: Output,
}

impl Shim {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("logs").join("ctr.log")
    }
    fn sock(&self) -> PathBuf {
        self.state_dir().join("shim.sock")
    }

    /// Runs `runhcs shim` for `b` with `extra` flags; returns the handle and the invoker's result.
    fn try_new(rt: &Runtime, b: &Bundle, extra: &[&str]) -> Shim {
        b.write();
        let dir = tempfile::Builder::new()
            .prefix("wt-shim-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let id = format!("wt-shim-{}-{}", common::test_name(), unique());
        let mut s = Shim {
            rt: rt.clone(),
            id,
            dir,
            invoker: Output {
                desc: String::new(),
                code: None,
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                elapsed: Duration::ZERO,
            },
        };
        let (root, state, log) = (s.root(), s.state_dir(), s.log_path());
        let mut cmd = rt.cmd(&["--root"]);
        cmd.arg(&root)
            .args(&["shim", "--id", &s.id, "--bundle"])
            .arg(b.path())
            .arg("--state-dir")
            .arg(&state)
            .arg("--log-path")
            .arg(&log)
            .args(extra);
        s.invoker = cmd.run();
        s
    }

    fn new(rt: &Runtime, b: &Bundle, extra: &[&str]) -> Shim {
        let s = Shim::try_new(rt, b, extra);
        assert!(s.invoker.success(), "runhcs shim failed: {}", s.invoker);
        s
    }

    fn monitor_pid(&self) -> i32 {
        fs::read_to_string(self.state_dir().join("shim.pid"))
            .expect("shim.pid")
            .trim()
            .parse()
            .expect("pid")
    }

    fn connect(&self, req: &Value) -> UnixStream {
        let mut s = UnixStream::connect(self.sock()).expect("connect to the monitor");
        s.set_read_timeout(Some(T)).unwrap();
        let mut line = serde_json::to_vec(req).unwrap();
        line.push(b'\n');
        s.write_all(&line).unwrap();
        s
    }

    /// One request, its reply.
    fn request(&self, req: Value) -> Value {
        let mut s = self.connect(&req);
        read_line(&mut s)
    }

    /// A request that turns into a stream: the ok reply, then the connection.
    fn stream(&self, req: Value) -> UnixStream {
        let mut s = self.connect(&req);
        let r = read_line(&mut s);
        assert_eq!(r["ok"], true, "{req} -> {r}");
        s
    }

    fn start(&self) -> i32 {
        let r = self.request(json!({"op": "start"}));
        assert_eq!(r["ok"], true, "start: {r}");
        r["pid"].as_i64().unwrap() as i32
    }

    /// Waits for the monitor to finish: its socket gone and the process gone.
    fn wait_gone(&self) {
        let pid = self.monitor_pid_or_none();
        assert!(
            poll_until(T, || !self.sock().exists()
                && pid.is_none_or(|p| !pid_alive(p))),
            "the monitor did not exit"
        );
    }

    fn monitor_pid_or_none(&self) -> Option<i32> {
        fs::read_to_string(self.state_dir().join("shim.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn exit_file(&self) -> ExitStatus {
        serde_json::from_slice(&fs::read(self.state_dir().join("exit.json")).unwrap()).unwrap()
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if self.sock().exists() {
            if let Ok(mut s) = UnixStream::connect(self.sock()) {
                s.write_all(b"{\"op\":\"kill\",\"signal\":9,\"all\":true}\n")
                    .ok();
            }
            // The pid may be reused by another test's process once the monitor is reaped:
            // only a process whose command line names this shim's id is ours.
            let ours = |p: i32| {
                fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&self.id))
            };
            let pid = self.monitor_pid_or_none();
            poll_until(Duration::from_secs(5), || {
                pid.is_none_or(|p| !pid_alive(p) || !ours(p))
            });
            if let Some(p) = pid.filter(|p| pid_alive(*p) && ours(*p)) {
                // SAFETY: kill(2) on a pid we read from the monitor's pid file; no memory.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        let root = self.root();
        let mut d = self.rt.cmd(&["--root"]);
        d.arg(&root).args(&["delete", "--force", &self.id]);
        d.timeout(Duration::from_secs(10)).run();
    }
}

fn read_line(s: &mut UnixStream) -> Value {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => line.push(b[0]),
            Ok(_) => break,
            Err(e) => panic!(
                "read reply: {e} (so far {:?})",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    serde_json::from_slice(&line)
        .unwrap_or_else(|e| panic!("reply {:?}: {e}", String::from_utf8_lossy(&line)))
}

/// Every frame until the stream ends.
fn frames(s: &mut UnixStream) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(f) = read_frame(s).expect("read frame") {
        out.push((f.stream, f.payload));
    }
    out
}

fn joined(frames: &[(u8, Vec<u8>)], stream: u8) -> String {
    let b: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == stream)
        .flat_map(|f| f.1.clone())
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// Reads frames until the stdout text contains `needle`; returns the text so far.
fn read_until(s: &mut UnixStream, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + T;
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in {seen:?}");
        match read_frame(s).expect("read frame") {
            Some(f) => seen.push_str(&String::from_utf8_lossy(&f.payload)),
            None => panic!("stream ended before {needle:?}; saw {seen:?}"),
        }
    }
}

fn log_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect()
}

fn bundle(script: &str) -> Bundle {
    let mut b = Bundle::busybox();
    b.cgroups_path();
    b.sh(script);
    b
}

fn process(args: &[&str]) -> Value {
    json!({
        "args": args,
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"],
    })
}

#[test]
fn attach_before_start_sees_output_framed_and_wait_gets_exit_code() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("echo out1; echo err1 >&2; echo out2; exit 7");
    let s = Shim::new(&rt, &b, &[]);
    let st = s.request(json!({"op": "state"}));
    assert_eq!(st["status"], "created", "{st}");
    let mut attach = s.stream(json!({"op": "attach", "stdout": true, "stderr": true}));
    let mut wait = s.connect(&json!({"op": "wait"}));
    let pid = s.start();
    assert!(pid > 0);
    let f = frames(&mut attach);
    assert_eq!(joined(&f, STREAM_STDOUT), "out1\nout2\n", "{f:?}");
    assert_eq!(joined(&f, STREAM_STDERR), "err1\n", "{f:?}");
    let w = read_line(&mut wait);
    assert_eq!(w["ok"], true, "{w}");
    assert_eq!(w["exit"]["exit_code"], 7, "{w}");
    let file = s.exit_file();
    assert_eq!(serde_json::to_value(file).unwrap(), w["exit"]);
    assert!(!file.oom_killed);

    let lines = log_lines(&s.log_path());
    let of = |stream: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["stream"] == stream)
            .map(|l| l["log"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(of("stdout"), ["out1\n", "out2\n"], "{lines:?}");
    assert_eq!(of("stderr"), ["err1\n"], "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l["time"].as_str().unwrap().ends_with('Z')));

    s.wait_gone();
    assert!(!s.root().join(&s.id).exists(), "runhcs state left behind");
    assert!(!s.state_dir().join("shim.pid").exists());
}

#[test]
fn stdin_through_attach_reaches_cat_and_eof_closes_it() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("cat; echo cat-done");
    let s = Shim::new(&rt, &b, &["--stdin"]);
    let mut a = s.connect(&json!({"op": "attach", "stdin": true, "stdout": true,
        "stderr": true, "close_stdin_on_eof": true}));
    let r = read_line(&mut a);
    assert_eq!(r["ok"], true, "{r}");
    a.write_all(b"first line\n").unwrap();
    s.start();
    a.write_all(b"second line\n").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let f = frames(&mut a);
    assert_eq!(
        joined(&f, STREAM_STDOUT),
        "first line\nsecond line\ncat-done\n"
    );
    let w = s.request(json!({"op": "wait"}));
    assert_eq!(w["exit"]["exit_code"], 0, "{w}");
}

#[test]
fn request_and_stdin_in_one_write() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("cat");
    let s = Shim::new(&rt, &b, &["--stdin"]);
    let mut a = UnixStream::connect(s.sock()).unwrap();
    a.set_read_timeout(Some(T)).unwrap();
    a.write_all(
        b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"close_stdin_on_eof\":true}\npiggyback\n",
    )
    .unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_line(&mut a)["ok"], true);
    s.start();
    assert_eq!(joined(&frames(&mut a), STREAM_STDOUT), "piggyback\n");
}

#[test]
fn killed_container_reports_128_plus_signal() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("sleep 1000");
    let s = Shim::new(&rt, &b, &[]);
    s.start();
    let st = s.request(json!({"op": "state"}));
    assert_eq!(st["status"], "running", "{st}");
    let bad = s.request(json!({"op": "kill", "signal": 0}));
    assert_eq!(bad["kind"], "invalid_argument", "{bad}");
    let k = s.request(json!({"op": "kill", "signal": 9}));
    assert_eq!(k["ok"], true, "{k}");
    let w = s.request(json!({"op": "wait"}));
    assert_eq!(w["exit"]["exit_code"], 128 + 9, "{w}");
    assert_eq!(s.exit_file().exit_code, 137);
    s.wait_gone();
}

#[test]
fn log_rotates_by_size() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("i=1; while [ $i -le 100 ]; do echo line-$i; i=$((i+1)); done");
    let s = Shim::new(&rt, &b, &["--log-max-size", "600", "--log-max-files", "3"]);
    s.start();
    assert_eq!(s.request(json!({"op": "wait"}))["exit"]["exit_code"], 0);
    let logs = s.log_path();
    let name = |suffix: &str| PathBuf::from(format!("{}{suffix}", logs.display()));
    assert!(
        !name(".3").exists(),
        "only max-files - 1 rotated files are kept"
    );
    let mut all = Vec::new();
    for suffix in [".2", ".1", ""] {
        let p = name(suffix);
        let len = fs::metadata(&p).unwrap().len();
        assert!(len > 0 && len <= 600, "{}: {len} bytes", p.display());
        all.extend(log_lines(&p));
    }
    let texts: Vec<&str> = all.iter().map(|l| l["log"].as_str().unwrap()).collect();
    assert_eq!(*texts.last().unwrap(), "line-100\n");
    let first: usize = texts[0]["line-".len()..].trim().parse().unwrap();
    for (k, t) in texts.iter().enumerate() {
        assert_eq!(*t, format!("line-{}\n", first + k), "lines are consecutive");
    }
}

#[test]
fn exec_streams_output_then_exit_frame() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("sleep 1000");
    let s = Shim::new(&rt, &b, &[]);
    s.start();
    // Two at once: the slower one started first.
    let req = |id: &str, script: &str| {
        json!({"op": "exec", "exec_id": id, "process": process(&["sh", "-c", script]),
               "stdout": true, "stderr": true})
    };
    let mut slow = s.stream(req("slow", "sleep 0.3; echo slow-out; exit 5"));
    let mut fast = s.stream(req("fast", "echo fast-out; echo fast-err >&2; exit 3"));
    let dup = s.request(req("slow", "true"));
    assert_eq!(dup["kind"], "already_exists", "{dup}");
    for (sock, out, err, code) in [
        (&mut fast, "fast-out\n", "fast-err\n", 3),
        (&mut slow, "slow-out\n", "", 5),
    ] {
        let f = frames(sock);
        assert_eq!(joined(&f, STREAM_STDOUT), out, "{f:?}");
        assert_eq!(joined(&f, STREAM_STDERR), err, "{f:?}");
        let last = f.last().unwrap();
        assert_eq!(last.0, STREAM_EXIT, "{f:?}");
        let st: ExitStatus = serde_json::from_slice(&last.1).unwrap();
        assert_eq!(st.exit_code, code);
    }
    // stdin to an exec, closed by the half-close.
    let mut cat = s.stream(json!({"op": "exec", "exec_id": "cat",
        "process": process(&["cat"]), "stdin": true, "stdout": true}));
    cat.write_all(b"to exec\n").unwrap();
    cat.shutdown(std::net::Shutdown::Write).unwrap();
    let f = frames(&mut cat);
    assert_eq!(joined(&f, STREAM_STDOUT), "to exec\n");
    assert_eq!(f.last().unwrap().0, STREAM_EXIT);
    let bad = s.request(json!({"op": "exec", "exec_id": "x",
        "process": process(&["/no/such/binary"]), "stdout": true}));
    assert_eq!(bad["ok"], false, "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("exec x in container"),
        "{bad}"
    );
    let st = s.request(json!({"op": "state"}));
    assert_eq!(
        st["status"], "running",
        "the container outlives its execs: {st}"
    );
}

#[test]
fn tty_with_resize_for_container_and_exec() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("stty size; read x; stty size; read y");
    let s = Shim::new(&rt, &b, &["--tty", "--stdin", "--console-size", "30x100"]);
    let mut a = s.stream(json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true}));
    s.start();
    let mut seen = String::new();
    read_until(&mut a, &mut seen, "30 100");
    let r = s.request(json!({"op": "resize", "height": 40, "width": 120}));
    assert_eq!(r["ok"], true, "{r}");
    a.write_all(b"go\n").unwrap();
    read_until(&mut a, &mut seen, "40 120");

    // An exec with its own terminal, resized by exec id.
    let mut e = s.stream(json!({"op": "exec", "exec_id": "t",
        "process": {"args": ["sh", "-c", "stty size; read x; stty size; [ -t 0 ] && echo is-tty"],
                    "terminal": true, "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "env": ["PATH=/bin"]},
        "stdin": true, "stdout": true, "console_size": [20, 60]}));
    let mut eseen = String::new();
    read_until(&mut e, &mut eseen, "20 60");
    let r = s.request(json!({"op": "resize", "height": 21, "width": 61, "exec_id": "t"}));
    assert_eq!(r["ok"], true, "{r}");
    e.write_all(b"x\n").unwrap();
    let rest = frames(&mut e);
    let text = format!("{eseen}{}", joined(&rest, STREAM_STDOUT));
    assert!(
        text.contains("21 61") && text.contains("is-tty"),
        "{text:?}"
    );
    assert_eq!(rest.last().unwrap().0, STREAM_EXIT, "{rest:?}");
    let none = s.request(json!({"op": "resize", "height": 1, "width": 1, "exec_id": "gone"}));
    assert_eq!(none["kind"], "not_found", "{none}");

    a.write_all(b"done\n").unwrap();
    frames(&mut a);
    assert_eq!(s.request(json!({"op": "wait"}))["exit"]["exit_code"], 0);
    // Everything the terminal showed is in the log as stdout.
    let log: String = log_lines(&s.log_path())
        .iter()
        .inspect(|l| assert_eq!(l["stream"], "stdout"))
        .map(|l| l["log"].as_str().unwrap().to_string())
        .collect();
    assert!(log.contains("30 100") && log.contains("40 120"), "{log:?}");
}

#[test]
fn monitor_is_detached_and_leaks_no_fds() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("sleep 1000");
    let s = Shim::new(&rt, &b, &[]);
    let init = s.start();
    let mon = s.monitor_pid();
    // The invoker has exited; the monitor runs on in its own session, stdio on /dev/null.
    assert!(pid_alive(mon));
    let stat = fs::read_to_string(format!("/proc/{mon}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[3],
        mon.to_string(),
        "session id is the monitor's pid"
    );
    for fd in 0..3 {
        let t = fs::read_link(format!("/proc/{mon}/fd/{fd}")).unwrap();
        assert_eq!(t, Path::new("/dev/null"), "monitor fd {fd}");
    }
    // Terminal and session signals do not stop it (the daemon uses Kill).
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: kill(2) on the monitor's pid; no memory involved.
        assert_eq!(unsafe { libc::kill(mon, sig) }, 0);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(pid_alive(mon), "the monitor died of a signal");
    let st = s.request(json!({"op": "state"}));
    assert_eq!(st["status"], "running", "{st}");
    // The container's init is the monitor's child and sees only its stdio.
    let ppid = fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let ppid = ppid
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(ppid, mon.to_string());
    let mut fds: Vec<String> = fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"]);
    // Same for an exec'd process, seen from inside.
    let mut e = s.stream(json!({"op": "exec", "exec_id": "fds",
        "process": process(&["ls", "/proc/1/fd", "/proc/self/fd"]), "stdout": true}));
    let out = joined(&frames(&mut e), STREAM_STDOUT);
    let self_fds: Vec<&str> = out
        .split("/proc/self/fd:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    // 3 is ls's own handle on the directory it lists.
    assert_eq!(self_fds, ["0", "1", "2", "3"], "{out}");
    let pids = s.request(json!({"op": "pids"}));
    assert_eq!(pids["pids"], json!([init]), "{pids}");
    let props = s.request(json!({"op": "properties", "query": {"PropertyTypes": ["ProcessList"]}}));
    assert_eq!(props["ok"], true, "{props}");
}

#[test]
fn slow_client_is_dropped_and_container_runs_on() {
    let Some(rt) = runhcs() else { return };
    // ~2 MB of output: far beyond a socket buffer the client never drains.
    let b = bundle("yes 0123456789012345678901234567890123456789 | head -n 50000; echo end");
    let s = Shim::new(&rt, &b, &[]);
    let stuck = s.stream(json!({"op": "attach", "stdout": true}));
    s.start();
    let started = Instant::now();
    let w = s.request(json!({"op": "wait"}));
    assert_eq!(w["exit"]["exit_code"], 0, "{w}");
    assert!(
        started.elapsed() < T,
        "output was held up by the slow client"
    );
    let lines = log_lines(&s.log_path());
    assert_eq!(lines.len(), 50001);
    assert_eq!(lines.last().unwrap()["log"], "end\n");
    drop(stuck);
    s.wait_gone();
    let diag = fs::read_to_string(s.state_dir().join("shim.log")).unwrap_or_default();
    assert!(diag.contains("does not keep up"), "{diag}");
}

#[test]
fn failed_create_reports_the_step_and_leaves_nothing() {
    let Some(rt) = runhcs() else { return };
    let mut b = Bundle::busybox();
    b.cgroups_path();
    b.args(&["/no/such/binary"]);
    let s = Shim::try_new(&rt, &b, &[]);
    let out = &s.invoker;
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("create container"), "{out}");
    assert!(!s.sock().exists());
    assert!(!s.state_dir().join("shim.pid").exists());
    assert!(!s.root().join(&s.id).exists());
}

#[test]
fn error_replies_name_the_step() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("sleep 1000");
    let s = Shim::new(&rt, &b, &[]);
    let r = s.request(json!({"op": "resize", "height": 1, "width": 1}));
    assert_eq!(r["kind"], "failed_precondition", "{r}");
    assert!(r["error"].as_str().unwrap().contains(&s.id), "{r}");
    let r = s.request(json!({"op": "bogus"}));
    assert_eq!(r["kind"], "invalid_argument", "{r}");
    s.start();
    let r = s.request(json!({"op": "start"}));
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap().starts_with("start container"),
        "{r}"
    );
    let e = s.stream(json!({"op": "exec", "exec_id": "long",
        "process": process(&["sleep", "1000"]), "stdout": true}));
    // The init's exit ends the exec stream with an error frame (its process was killed).
    assert_eq!(s.request(json!({"op": "kill", "signal": 9}))["ok"], true);
    let mut e = e;
    let f = frames(&mut e);
    let last = f.last().expect("a last frame");
    assert!(last.0 == STREAM_EXIT || last.0 == STREAM_ERROR, "{f:?}");
    s.wait_gone();
}

#[test]
fn oom_kill_is_recorded() {
    let Some(rt) = runhcs() else { return };
    // dd fills a 256 MiB buffer; the cgroup allows 32 MiB (and no swap).
    let mut b = bundle("dd if=/dev/zero of=/dev/null bs=256M count=1");
    b.set(
        "/linux/resources/memory",
        json!({"limit": 33554432, "swap": 33554432}),
    );
    let s = Shim::new(&rt, &b, &[]);
    s.start();
    let w = s.request(json!({"op": "wait"}));
    assert_eq!(w["exit"]["exit_code"], 128 + 9, "{w}");
    assert_eq!(w["exit"]["oom_killed"], true, "{w}");
    assert!(s.exit_file().oom_killed);
}

/// Idle RSS of a monitor. The 1 MiB budget is for the shipped build (`scripts/build-runhcs.sh`,
/// selected with `RUNHCS=...`); a debug build's code is several times larger, so only the
/// measurement is printed for it.
#[test]
fn idle_monitor_is_small() {
    let Some(rt) = runhcs() else { return };
    let b = bundle("sleep 1000");
    let s = Shim::new(&rt, &b, &[]);
    s.start();
    assert_eq!(s.request(json!({"op": "state"}))["status"], "running");
    let mon = s.monitor_pid();
    // The monitor trims after a second without events.
    std::thread::sleep(Duration::from_millis(1300));
    let status = fs::read_to_string(format!("/proc/{mon}/status")).unwrap();
    let kb = |key: &str| -> u64 {
        common::status_field(&status, key)
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} in {status}"))
    };
    let (rss, anon, file) = (kb("VmRSS"), kb("RssAnon"), kb("RssFile"));
    eprintln!(
        "idle monitor ({}): VmRSS {rss} kB (anon {anon} kB, file {file} kB)",
        rt.path.display()
    );
    if std::env::var_os("RUNHCS").is_some() {
        assert!(rss <= 1024, "idle monitor RSS {rss} kB > 1 MiB");
    }
}
