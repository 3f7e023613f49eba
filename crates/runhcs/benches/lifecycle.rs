#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Start-latency benchmark: runhcs against crun and runc on this machine.
//!
//! Runs a `/bin/true` container in two modes and measures wall time and CPU time (user+sys of
//! every process of the lifecycle, from `RUSAGE_CHILDREN` deltas):
//! - `run`:   `RT --root R run --bundle B ID` in the foreground;
//! - `cycle`: `create --pid-file` -> `start` -> wait for the init to exit -> `delete`.
//!
//! Runtimes are interleaved round-robin in one process (the order rotates each iteration), so a
//! machine that gets busier or quieter affects them alike. A command that exceeds `--timeout` is
//! killed, counted as hung, cleaned up with `delete -f` and left out of the figures.
//!
//! Needs root. `scripts/bench.sh` builds runhcs in release mode and runs this; by hand:
//! `cargo bench -p runhcs --bench lifecycle -- -n 50 -w 5 --mode both --runtimes crun,runc`.

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "lifecycle/bundle.rs"]
mod bundle;
#[path = "lifecycle/report.rs"]
mod report;

use bundle::{
    build_rootfs, runc_like_spec, seccomp_profile, write_bundle, Bundle, CONTAINERS_SECCOMP,
};
use report::{goal_line, print_table, samples_json, Series};

const USAGE: &str = "usage: lifecycle [-n N] [-w W] [--mode run|cycle|both] [--runtimes a,b,c] \
[--timeout SECONDS] [--json FILE]\n  a runtime is NAME or NAME=PATH; runhcs defaults to $RUNHCS or \
target/release/runhcs (scripts/bench.sh sets $RUNHCS to the static build)";

const BUSYBOX: &str = "/bin/busybox";
/// The capabilities of the bundle (runc spec's defaults).
const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

struct Options {
    iterations: usize,
    warmup: usize,
    modes: Vec<Mode>,
    runtimes: Vec<String>,
    timeout: Duration,
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Cycle,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Cycle => "cycle",
        }
    }
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        iterations: 50,
        warmup: 5,
        modes: vec![Mode::Run, Mode::Cycle],
        runtimes: vec!["runhcs".into(), "crun".into(), "runc".into()],
        timeout: Duration::from_secs(5),
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "-n" => o.iterations = value()?.parse().context("-n")?,
            "-w" => o.warmup = value()?.parse().context("-w")?,
            "--mode" => {
                o.modes = match value()?.as_str() {
                    "run" => vec![Mode::Run],
                    "cycle" => vec![Mode::Cycle],
                    "both" => vec![Mode::Run, Mode::Cycle],
                    other => bail!("--mode {other}: expected run, cycle or both"),
                }
            }
            "--runtimes" => o.runtimes = value()?.split(',').map(str::to_owned).collect(),
            "--timeout" => {
                o.timeout = Duration::from_secs_f64(value()?.parse().context("--timeout")?)
            }
            "--json" => o.json = Some(value()?.into()),
            // cargo bench passes --bench to harness-less targets.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if o.iterations == 0 || o.runtimes.is_empty() {
        bail!("nothing to measure: -n must be > 0 and --runtimes not empty");
    }
    Ok(o)
}

/// The workspace root: this file is `crates/runhcs/benches/lifecycle.rs`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Runtime {
    name: String,
    path: PathBuf,
    root: PathBuf,
    version: String,
    /// stderr of the runtime and the container; truncated before each lifecycle.
    log: File,
}

fn resolve_runtime(spec: &str, state: &Path) -> Result<Runtime> {
    let (name, path) = match spec.split_once('=') {
        Some((name, path)) => (name.to_owned(), PathBuf::from(path)),
        None if spec == "runhcs" => {
            let path = std::env::var_os("RUNHCS")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target/release/runhcs"));
            (spec.to_owned(), path)
        }
        None => (
            spec.to_owned(),
            which(spec).with_context(|| format!("{spec} is not on PATH (run scripts/deps.sh)"))?,
        ),
    };
    if !path.is_file() {
        bail!("{name}: {} does not exist", path.display());
    }
    let version = Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let root = state.join(&name);
    fs::create_dir_all(&root).with_context(|| format!("create state root {}", root.display()))?;
    let log_path = state.join(format!("{name}.log"));
    let log = File::options()
        .create(true)
        .append(true)
        .read(true)
        .open(&log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    Ok(Runtime {
        name,
        path,
        root,
        version,
        log,
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// A private mount namespace in which `/sys/fs/cgroup/unified` is gone, so that every runtime
/// sees a pure cgroup v1 host (crun refuses the hybrid layout). The process is still
/// single-threaded here, so `unshare` in place has the same effect as re-executing under
/// `unshare -m`.
fn enter_private_mount_namespace() -> Result<()> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare mount namespace")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / rprivate")?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    let unified = "/sys/fs/cgroup/unified";
    if mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(unified))
    {
        umount2(unified, MntFlags::MNT_DETACH).context("unmount /sys/fs/cgroup/unified")?;
        println!("cgroup: hybrid layout; /sys/fs/cgroup/unified unmounted in the bench's mount namespace");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running one lifecycle

#[derive(Debug, Default, Clone)]
struct Sample {
    wall_ms: f64,
    cpu_ms: f64,
    /// cycle only: create, start, wait (after start returned), delete.
    phases: Option<[f64; 4]>,
}

enum Outcome {
    Done(Sample),
    Hung(String),
    Failed(String),
}

fn cpu_of_children_ms() -> f64 {
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let ms =
                |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
            ms(u.user_time()) + ms(u.system_time())
        }
        Err(_) => f64::NAN,
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until `pid` (our child) exits or `deadline` passes; `None` on timeout. Reaps it.
fn wait_child(pid: i32, deadline: Instant) -> Result<Option<WaitStatus>> {
    let pidfd = pidfd_open(pid).with_context(|| format!("pidfd_open {pid}"))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if Instant::now() >= deadline => return Ok(None),
            Ok(0) => continue,
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll pidfd"),
        }
    }
    match waitpid(Pid::from_raw(pid), None) {
        Ok(status) => Ok(Some(status)),
        // Exited, but not our child (a runtime kept it under an intermediate process), so its
        // parent reaps it.
        Err(nix::errno::Errno::ECHILD) => Ok(Some(WaitStatus::StillAlive)),
        Err(e) => Err(e).with_context(|| format!("waitpid {pid}")),
    }
}

/// Reaps any leftover children (inits orphaned by a killed runtime) so their CPU is not
/// charged to the next sample.
fn reap_strays() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

enum Step {
    Ok,
    Hung,
    Failed(String),
}

impl Runtime {
    fn command(&self, args: &[&str]) -> Result<Child> {
        let err = self.log.try_clone().context("clone log fd")?;
        Command::new(&self.path)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            // Own process group, so a timeout kills whatever the runtime started too.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawn {}", self.path.display()))
    }

    /// Runs one runtime command to completion (or kills it at the timeout).
    fn step(&self, args: &[&str], timeout: Duration) -> Result<Step> {
        let mut child = self.command(args)?;
        let pid = i32::try_from(child.id()).context("pid")?;
        match wait_child(pid, Instant::now() + timeout)? {
            None => {
                killpg(Pid::from_raw(pid), Signal::SIGKILL).ok();
                child.wait().ok();
                Ok(Step::Hung)
            }
            Some(WaitStatus::Exited(_, 0)) => Ok(Step::Ok),
            Some(status) => Ok(Step::Failed(format!(
                "{} {}: {status:?}: {}",
                self.name,
                args[0],
                self.last_log()
            ))),
        }
    }

    fn last_log(&self) -> String {
        let mut text = String::new();
        let mut log = &self.log;
        log.rewind().ok();
        log.read_to_string(&mut text).ok();
        text.trim()
            .lines()
            .last()
            .unwrap_or("(no stderr)")
            .to_owned()
    }

    fn force_delete(&self, id: &str, timeout: Duration) {
        if let Ok(child) = self.command(&["delete", "-f", id]) {
            let pid = child.id() as i32;
            if !matches!(wait_child(pid, Instant::now() + timeout), Ok(Some(_))) {
                killpg(Pid::from_raw(pid), Signal::SIGKILL).ok();
                waitpid(Pid::from_raw(pid), None).ok();
            }
        }
        reap_strays();
    }

    fn lifecycle(
        &self,
        bundle: &Bundle,
        mode: Mode,
        id: &str,
        timeout: Duration,
    ) -> Result<Outcome> {
        reap_strays();
        self.log.set_len(0).ok();
        let bundle_dir = bundle.dir.to_str().context("bundle path is not UTF-8")?;
        let cpu0 = cpu_of_children_ms();
        let t0 = Instant::now();
        let mut phases = [0.0; 4];
        let finish = |outcome: Step, what: &str| -> Option<Outcome> {
            match outcome {
                Step::Ok => None,
                Step::Hung => Some(Outcome::Hung(format!(
                    "{} {what} exceeded {timeout:?}",
                    self.name
                ))),
                Step::Failed(msg) => Some(Outcome::Failed(msg)),
            }
        };
        match mode {
            Mode::Run => {
                if let Some(bad) = finish(
                    self.step(&["run", "--bundle", bundle_dir, id], timeout)?,
                    "run",
                ) {
                    self.force_delete(id, timeout);
                    return Ok(bad);
                }
            }
            Mode::Cycle => {
                let pid_file = self.root.join(format!("{id}.pid"));
                let pid_arg = pid_file.to_str().context("pid file path is not UTF-8")?;
                let t = Instant::now();
                let create = self.step(
                    &["create", "--bundle", bundle_dir, "--pid-file", pid_arg, id],
                    timeout,
                )?;
                phases[0] = ms_since(t);
                if let Some(bad) = finish(create, "create") {
                    self.force_delete(id, timeout);
                    return Ok(bad);
                }
                let init: i32 = match fs::read_to_string(&pid_file).map(|s| s.trim().parse()) {
                    Ok(Ok(pid)) => pid,
                    _ => {
                        self.force_delete(id, timeout);
                        return Ok(Outcome::Failed(format!(
                            "{} create wrote no pid file",
                            self.name
                        )));
                    }
                };
                fs::remove_file(&pid_file).ok();
                let t = Instant::now();
                let start = self.step(&["start", id], timeout)?;
                phases[1] = ms_since(t);
                if let Some(bad) = finish(start, "start") {
                    self.force_delete(id, timeout);
                    return Ok(bad);
                }
                // The init was re-parented to us (we are a subreaper) when create exited.
                let t = Instant::now();
                if wait_child(init, Instant::now() + timeout)?.is_none() {
                    self.force_delete(id, timeout);
                    return Ok(Outcome::Hung(format!(
                        "{} container init did not exit",
                        self.name
                    )));
                }
                phases[2] = ms_since(t);
                let t = Instant::now();
                let delete = self.step(&["delete", id], timeout)?;
                phases[3] = ms_since(t);
                if let Some(bad) = finish(delete, "delete") {
                    self.force_delete(id, timeout);
                    return Ok(bad);
                }
            }
        }
        let wall_ms = ms_since(t0);
        let cpu_ms = cpu_of_children_ms() - cpu0;
        Ok(Outcome::Done(Sample {
            wall_ms,
            cpu_ms,
            phases: (mode == Mode::Cycle).then_some(phases),
        }))
    }

    /// A runtime that does not really run containers would produce meaningless numbers: check
    /// that `run` reports the container's exit code.
    fn probe(&self, bundle: &Bundle, timeout: Duration) -> Result<()> {
        self.log.set_len(0).ok();
        let id = format!("wharf-bench-probe-{}", std::process::id());
        let mut child = self.command(&[
            "run",
            "--bundle",
            bundle.dir.to_str().context("utf-8")?,
            &id,
        ])?;
        let status = wait_child(child.id() as i32, Instant::now() + timeout)?;
        if status.is_none() {
            killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL).ok();
            child.wait().ok();
        }
        self.force_delete(&id, timeout);
        match status {
            Some(WaitStatus::Exited(_, 7)) => Ok(()),
            Some(s) => bail!(
                "probe container should exit 7, got {s:?}: {}",
                self.last_log()
            ),
            None => bail!("probe run hung"),
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

fn main() {
    if let Err(e) = real_main() {
        eprintln!("lifecycle bench: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let opts = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root (the runtimes create namespaces and cgroups)");
    }
    enter_private_mount_namespace()?;
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;

    let work = tempfile::Builder::new()
        .prefix("wharf-bench-")
        .tempdir()
        .context("create temp dir")?;
    let rootfs = work.path().join("rootfs");
    build_rootfs(&rootfs)?;
    let plain = write_bundle(
        work.path(),
        "plain",
        &runc_like_spec(&rootfs, &["/bin/true"], None),
    )?;
    let probe = write_bundle(
        work.path(),
        "probe",
        &runc_like_spec(&rootfs, &["/bin/sh", "-c", "exit 7"], None),
    )?;
    let mut bundles = vec![plain];
    match seccomp_profile()? {
        Some((profile, source)) => {
            let rules = profile["syscalls"].as_array().map_or(0, Vec::len);
            let names: usize = profile["syscalls"].as_array().into_iter().flatten()
                .map(|r| r["names"].as_array().map_or(0, Vec::len)).sum();
            println!("seccomp bundle: {source}: {rules} rules, {names} syscall names");
            bundles.push(write_bundle(work.path(), "seccomp", &runc_like_spec(&rootfs, &["/bin/true"], Some(&profile)))?);
        }
        None => println!(
            "seccomp bundle: skipped (no crates/hcs/src/seccomp/default-profile.json and no {CONTAINERS_SECCOMP})"
        ),
    }

    let state = work.path().join("state");
    let mut runtimes = Vec::new();
    for spec in &opts.runtimes {
        let rt = match resolve_runtime(spec, &state) {
            Ok(rt) => rt,
            Err(e) => {
                println!("runtime {spec}: skipped: {e:#}");
                continue;
            }
        };
        match rt.probe(&probe, opts.timeout) {
            Ok(()) => {
                println!(
                    "runtime {}: {} ({})",
                    rt.name,
                    rt.path.display(),
                    rt.version
                );
                runtimes.push(rt);
            }
            Err(e) => println!("runtime {}: skipped: {e:#}", rt.name),
        }
    }
    if runtimes.is_empty() {
        bail!("no runtime left to measure");
    }
    println!(
        "n={} warm-up={} timeout={:?}, runtimes interleaved round-robin, order rotated each iteration",
        opts.iterations, opts.warmup, opts.timeout
    );

    let mut results: Vec<(String, Mode, Vec<Series>)> = Vec::new();
    let mut counter = 0u64;
    for bundle in &bundles {
        for &mode in &opts.modes {
            let mut series: Vec<Series> = runtimes.iter().map(|_| Series::default()).collect();
            for it in 0..opts.warmup + opts.iterations {
                for k in 0..runtimes.len() {
                    let i = (it + k) % runtimes.len();
                    counter += 1;
                    let id = format!("wb{}-{counter}", std::process::id());
                    let outcome = runtimes[i].lifecycle(bundle, mode, &id, opts.timeout)?;
                    if it < opts.warmup {
                        continue;
                    }
                    let s = &mut series[i];
                    match outcome {
                        Outcome::Done(sample) => s.samples.push(sample),
                        Outcome::Hung(msg) => {
                            s.hung += 1;
                            s.first_error.get_or_insert(msg);
                        }
                        Outcome::Failed(msg) => {
                            s.failed += 1;
                            s.first_error.get_or_insert(msg);
                        }
                    }
                }
            }
            print_table(bundle.name, mode, &runtimes, &series);
            results.push((bundle.name.to_owned(), mode, series));
        }
    }

    println!();
    println!("{}", goal_line(&results, &runtimes, "plain", 0.7));
    println!("{}", goal_line(&results, &runtimes, "seccomp", 1.0));

    if let Some(path) = &opts.json {
        let doc = json!({
            "iterations": opts.iterations,
            "warmup": opts.warmup,
            "timeout_s": opts.timeout.as_secs_f64(),
            "runtimes": runtimes.iter().map(|r| json!({ "name": r.name, "path": r.path, "version": r.version })).collect::<Vec<_>>(),
            "results": results.iter().map(|(bundle, mode, series)| json!({
                "bundle": bundle,
                "mode": mode.name(),
                "runtimes": runtimes.iter().zip(series).map(|(r, s)| (r.name.clone(), samples_json(s))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        });
        let mut f = File::create(path).with_context(|| format!("create {}", path.display()))?;
        f.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
        println!("raw samples: {}", path.display());
    }
    Ok(())
}
