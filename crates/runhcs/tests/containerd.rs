#![allow(clippy::expect_used, clippy::unwrap_used)]
//! containerd as a real consumer of the runtime: Debian's `containerd` with its runc v2 shim
//! (`io.containerd.runc.v2`), the shim's `BinaryName` pointed at the runtime under test
//! (`ctr run --runc-binary`), driven with `ctr`.
//!
//! The shim calls the runtime as `RT --root R --log L --log-format json create --bundle B
//! --pid-file P ID`, then `start`, `state`, `ps --format json`, `exec --process F --detach
//! --pid-file P`, `kill`, `delete`: every verb and flag a shim uses is exercised, and the test
//! checks what the container itself printed, not only what containerd reports.
//!
//! Each test starts its own containerd (config, root, state dir and socket in a temp dir, CRI
//! and other unneeded plugins disabled) and a [`Containerd`] guard that, even on panic, deletes
//! the tasks, kills the shims and containerd, removes the cgroups containerd's default spec
//! created and the temp dir.

mod common;

use std::cell::RefCell;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    each_runtime, pid_alive, poll_until, unique, wait_pid, which, Bundle, Output, Runtime,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

/// Plugins this test does not need: CRI (it would want CNI and its own dirs), snapshotters
/// other than `native` (`--rootfs` bypasses snapshots, but the metadata store needs one),
/// tracing, and `opt` (it would create `/opt/containerd`).
const DISABLED_PLUGINS: &[&str] = &[
    "io.containerd.grpc.v1.cri",
    "io.containerd.internal.v1.opt",
    "io.containerd.internal.v1.tracing",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.snapshotter.v1.zfs",
];

/// Messages that mean the shim passed the runtime a flag or verb it does not understand.
const FLAG_ERRORS: &[&str] = &[
    "flag provided but not defined",
    "unknown flag",
    "unexpected argument",
    "unrecognized subcommand",
    "unknown command",
];

const TIMEOUT: Duration = Duration::from_secs(15);

/// A private containerd for one runtime, in one unique namespace. Dropping it cleans up
/// everything it started (see the module doc).
struct Containerd {
    dir: tempfile::TempDir,
    pid: i32,
    ns: String,
    ctr: Runtime,
    runtime: Runtime,
    /// Container ids created through this daemon (deleted by the guard if still there).
    ids: RefCell<Vec<String>>,
}

impl Containerd {
    fn start(runtime: &Runtime) -> Containerd {
        let ctr = which("ctr").expect("ctr not found (run scripts/deps.sh)");
        let daemon = which("containerd").expect("containerd not found (run scripts/deps.sh)");
        let dir = tempfile::Builder::new()
            .prefix("wt-ctrd-")
            .tempdir()
            .expect("containerd temp dir");
        let d = dir.path();
        let disabled: Vec<String> = DISABLED_PLUGINS.iter().map(|p| format!("{p:?}")).collect();
        let config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\ndisabled_plugins = [{disabled}]\n\
             [grpc]\n  address = {sock:?}\n[ttrpc]\n  address = {ttrpc:?}\n\
             [debug]\n  level = \"debug\"\n",
            root = d.join("root"),
            state = d.join("state"),
            disabled = disabled.join(", "),
            sock = d.join("containerd.sock"),
            ttrpc = d.join("containerd.sock.ttrpc"),
        );
        fs::write(d.join("config.toml"), config).expect("write containerd config");
        let log = fs::File::create(d.join("containerd.log")).expect("create containerd log");
        // Spawned directly (it runs for the whole test); the harness's reaper thread reaps it,
        // so it is waited for with `wait_pid`, never through `Child`.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(daemon)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd {
            ns: format!("wt-ctrd-{}", unique()),
            pid: child.id() as i32,
            dir,
            ctr: Runtime {
                name: "ctr".into(),
                path: ctr,
            },
            runtime: runtime.clone(),
            ids: RefCell::new(Vec::new()),
        };
        let up = poll_until(TIMEOUT, || {
            (c.sock().exists() && c.ctr(&["version"]).success()) || !pid_alive(c.pid)
        });
        assert!(
            up && pid_alive(c.pid),
            "containerd did not come up:\n{}",
            c.log()
        );
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// Where the shim keeps the runtime's state (`--runc-root`; the shim appends the namespace).
    fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("runtime-root")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address SOCK --namespace NS <args...>`.
    fn ctr(&self, args: &[&str]) -> Output {
        let sock = self.sock();
        let mut full = vec![
            "--address",
            sock.to_str().expect("utf-8 path"),
            "--namespace",
            &self.ns,
        ];
        full.extend_from_slice(args);
        let mut c = self.ctr.cmd(&full);
        c.timeout(TIMEOUT);
        c.run()
    }

    /// [`Containerd::ctr`] that must succeed; the failure shows containerd's log.
    #[track_caller]
    fn ctr_ok(&self, args: &[&str]) -> Output {
        let out = self.ctr(args);
        assert!(
            out.success(),
            "expected success: {out}\n--- containerd log (tail) ---\n{}",
            tail(&self.log(), 40)
        );
        out
    }

    /// `ctr run -d` with the runc v2 shim and the runtime under test as its binary.
    /// `spec_args` selects the spec: `--rootfs DIR ID CMD...` or `--config FILE ID`.
    #[track_caller]
    fn run_detached(&self, id: &str, stdout: &Path, spec_args: &[&str]) -> Output {
        self.ids.borrow_mut().push(id.to_string());
        let log_uri = format!("file://{}", stdout.display());
        let bin = self.runtime.path.to_str().expect("utf-8 path").to_string();
        let root = self.runtime_root();
        let mut args = vec![
            "run",
            "-d",
            "--runtime",
            "io.containerd.runc.v2",
            "--runc-binary",
            &bin,
            "--runc-root",
            root.to_str().expect("utf-8 path"),
            "--log-uri",
            &log_uri,
        ];
        args.extend_from_slice(spec_args);
        self.ctr_ok(&args)
    }

    /// The task's row of `ctr task ls`: (pid, status).
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.stdout.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    #[track_caller]
    fn wait_status(&self, id: &str, want: &str) {
        let ok = poll_until(TIMEOUT, || self.task(id).is_some_and(|(_, s)| s == want));
        assert!(ok, "task {id} never became {want}: {:?}", self.task(id));
    }

    /// Fails the test if the shim (or the runtime, through the shim) reported an unknown flag.
    #[track_caller]
    fn assert_no_flag_errors(&self) {
        let log = self.log();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| FLAG_ERRORS.iter().any(|e| l.contains(e)))
            .collect();
        assert!(
            bad.is_empty(),
            "the shim used a flag the runtime rejected:\n{}",
            bad.join("\n")
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let quick = Duration::from_secs(5);
        let _ignored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for id in self.ids.borrow().iter() {
                // Leftovers only: after a passing test these fail quickly with "not found".
                self.ctr(&["task", "delete", "--force", id]);
                self.ctr(&["container", "delete", id]);
                let root = self.runtime_root().join(&self.ns);
                let mut d = self.runtime.cmd(&["--root"]);
                d.arg(&root).args(&["delete", "--force", id]).timeout(quick);
                d.run();
            }
            self.ctr(&["namespace", "remove", &self.ns]);
        }));
        // Shims are daemons re-parented away from containerd: find ours by the address they
        // were given (unique to this temp dir) and kill them by pid.
        let sock = self.sock();
        for pid in shim_pids(&sock) {
            let _ignored = kill(Pid::from_raw(pid), Signal::SIGKILL);
            wait_pid(pid, quick);
        }
        let _ignored = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        if wait_pid(self.pid, quick).is_none() {
            let _ignored = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            wait_pid(self.pid, quick);
        }
        // A killed shim leaves its socket in /run/containerd/s; its bundle records which.
        let tasks = self
            .dir
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns);
        for e in fs::read_dir(tasks).into_iter().flatten().flatten() {
            if let Ok(addr) = fs::read_to_string(e.path().join("address")) {
                if let Some(p) = addr.trim().strip_prefix("unix://") {
                    let _ignored = fs::remove_file(p);
                }
            }
        }
        // containerd's default spec puts each container at cgroup /<namespace>/<id>; the
        // runtime removes the leaf, the namespace level is left to whoever made it.
        for hierarchy in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ignored = fs::remove_dir(hierarchy.path().join(&self.ns));
        }
    }
}

/// Pids of `containerd-shim-runc-v2` processes serving the containerd at `sock`.
fn shim_pids(sock: &Path) -> Vec<i32> {
    let sock = sock.to_string_lossy();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|a| a.contains("containerd-shim"))
                && args.windows(2).any(|w| w[0] == "-address" && w[1] == sock)
        })
        .collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls a file the container writes to until it contains `needle`; returns its text.
#[track_caller]
fn wait_for_output(path: &Path, needle: &str) -> String {
    let found = poll_until(TIMEOUT, || {
        fs::read_to_string(path).is_ok_and(|s| s.contains(needle))
    });
    let text = fs::read_to_string(path).unwrap_or_default();
    assert!(
        found,
        "container never printed {needle:?}; it printed:\n{text}"
    );
    text
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname")
        .to_string_lossy()
        .into_owned()
}

/// containerd's own spec (`ctr run --rootfs`): the full task lifecycle through the shim.
fn default_spec_lifecycle(d: &Containerd) {
    let b = Bundle::busybox();
    let id = format!("a-{}", unique());
    let mark = unique();
    let out = d.dir.path().join(format!("{id}.out"));
    let rootfs = b.rootfs();
    let script = format!(
        "trap 'echo got-term-{mark}; exit 42' TERM; echo ready-{mark}; hostname; \
         sleep 1000 & wait"
    );
    let started = Instant::now();
    d.run_detached(
        &id,
        &out,
        &[
            "--rootfs",
            rootfs.to_str().expect("utf-8 path"),
            &id,
            "/bin/sh",
            "-c",
            &script,
        ],
    );
    let printed = wait_for_output(&out, &format!("ready-{mark}"));
    // A new UTS namespace starts as a copy of the host's (ctr sets no hostname).
    assert!(
        printed.lines().any(|l| l == host_hostname()),
        "container printed no hostname: {printed:?}"
    );

    let (pid, status) = d.task(&id).expect("task listed by `ctr task ls`");
    assert_eq!(status, "RUNNING");
    assert!(pid > 0 && pid_alive(pid), "task pid {pid} is not alive");
    assert_ne!(
        fs::read_link(format!("/proc/{pid}/ns/pid")).expect("init's pid ns"),
        fs::read_link("/proc/self/ns/pid").expect("own pid ns"),
        "container init must be in its own pid namespace"
    );

    // The shim really used the runtime under test: its own `state` (under the root the shim
    // was given) knows the container and the same pid.
    let root = d.runtime_root().join(&d.ns);
    let mut st = d.runtime.cmd(&["--root"]);
    st.arg(&root).args(&["state", &id]);
    let st = st.run().ok();
    let st: serde_json::Value = serde_json::from_str(&st.stdout).expect("state is JSON");
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(i64::from(pid)), "{st}");

    // `ps`: the shim asks the runtime (`ps --format json`) for the container's host pids.
    let ps = d.ctr_ok(&["task", "ps", &id]);
    let pids: Vec<i32> = ps
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(pids.contains(&pid), "`ctr task ps` lacks init {pid}: {ps}");
    assert_eq!(pids.len(), 2, "init and its sleep: {ps}");

    // exec: runs in the container's pid namespace and root, output comes back through ctr.
    let exec = d.ctr_ok(&[
        "task",
        "exec",
        "--exec-id",
        &format!("e1-{mark}"),
        &id,
        "/bin/sh",
        "-c",
        &format!(
            "echo exec-{mark} > /tmp/probe; echo pid=$$; \
             tr '\\0' ' ' < /proc/1/cmdline; echo; id -u"
        ),
    ]);
    let lines: Vec<&str> = exec.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "exec output: {exec}");
    let exec_pid: i32 = lines[0]
        .strip_prefix("pid=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("exec printed no pid: {exec}"));
    assert!(
        exec_pid > 1 && exec_pid < 100,
        "exec'd shell must see a container pid, got {exec_pid}"
    );
    assert!(
        lines[1].contains(&format!("ready-{mark}")),
        "pid 1 seen from exec must be the task's init: {exec}"
    );
    assert_eq!(lines[2], "0", "exec runs as root by default");
    assert_eq!(
        fs::read_to_string(rootfs.join("tmp/probe")).expect("file written by exec"),
        format!("exec-{mark}\n"),
        "the exec'd process must write into the container's rootfs"
    );
    let fail = d.ctr(&[
        "task",
        "exec",
        "--exec-id",
        &format!("e2-{mark}"),
        &id,
        "/bin/sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(fail.code, Some(3), "exec exit code must propagate: {fail}");

    // kill (SIGTERM by default) reaches the init's trap; the exit code reaches containerd.
    d.ctr_ok(&["task", "kill", &id]);
    d.wait_status(&id, "STOPPED");
    wait_for_output(&out, &format!("got-term-{mark}"));
    let del = d.ctr_ok(&["task", "delete", &id]);
    assert!(
        del.stderr.contains("exit code 42"),
        "`ctr task delete` must report the init's exit code 42: {del}"
    );
    assert!(d.task(&id).is_none(), "task still listed after delete");
    assert!(!pid_alive(pid), "init {pid} still alive after delete");
    d.ctr_ok(&["container", "delete", &id]);
    let ls = d.ctr_ok(&["container", "ls", "-q"]);
    assert!(!ls.stdout.contains(&id), "container still listed: {ls}");
    assert!(
        !d.runtime_root().join(&d.ns).join(&id).exists(),
        "the runtime left its state dir behind"
    );
    eprintln!(
        "[{}] containerd default-spec lifecycle took {:?}",
        d.runtime.name,
        started.elapsed()
    );
}

/// A full OCI spec handed over as is (`ctr run --config`): our harness's `runc spec`-like
/// bundle with a hostname, so the container's own output proves the spec reached it.
fn config_spec_hostname_and_sigkill(d: &Containerd) {
    let mut b = Bundle::busybox();
    let host = format!("wharf-{}", unique());
    b.set("/hostname", json!(host));
    let rootfs = b.rootfs();
    b.set("/root/path", json!(rootfs));
    b.cgroups_path();
    b.sh("echo hostname=$(hostname); exec sleep 1000");
    b.write();
    let id = format!("b-{}", unique());
    let out = d.dir.path().join(format!("{id}.out"));
    let config = b.config_path();
    d.run_detached(
        &id,
        &out,
        &["--config", config.to_str().expect("utf-8 path"), &id],
    );
    wait_for_output(&out, &format!("hostname={host}"));
    let exec = d.ctr_ok(&["task", "exec", "--exec-id", "h", &id, "hostname"]);
    assert_eq!(
        exec.stdout.trim(),
        host,
        "exec must share the UTS namespace"
    );
    d.ctr_ok(&["task", "kill", "--signal", "SIGKILL", &id]);
    d.wait_status(&id, "STOPPED");
    let del = d.ctr_ok(&["task", "delete", &id]);
    assert!(
        del.stderr.contains("exit code 137"),
        "`ctr task delete` must report 128+SIGKILL: {del}"
    );
    d.ctr_ok(&["container", "delete", &id]);
}

#[test]
fn containerd_runc_v2_shim_drives_runtime() {
    each_runtime(|rt| {
        let d = Containerd::start(rt);
        default_spec_lifecycle(&d);
        config_spec_hostname_and_sigkill(&d);
        d.assert_no_flag_errors();
    });
}
