//! `ComputeSystem` and [`Process`]: the HCS-shaped API over the process isolation backend.
//!
//! One document creates a compute system; small operations then act on it, as with
//! `HcsCreateComputeSystem` and friends:
//!
//! ```text
//! create(id, document) ──► Created ──start──► Running ◄──resume── Paused
//!                              │                 │ └─────pause─────►┘
//!                              │      shutdown (SIGTERM, then SIGKILL) / terminate / init exits
//!                              └───────────────► Stopped ──delete──► (gone)
//! ```
//!
//! `properties(query)` answers `Statistics` (from the cgroups) and `ProcessList` (from /proc);
//! `modify(request)` updates memory and processor limits; `create_process(parameters)` starts a
//! further process in the running system and returns a [`Process`].
//!
//! The calling process must be single-threaded when it creates a system or a process (both
//! `clone3` a child that sets the container up): the CLI, the per-container shim and the guest
//! agent are; a multi-threaded daemon goes through a shim. A system created here has its init as
//! a child of the caller, so [`ComputeSystem::wait`] returns its exit code; a system
//! [`opened`](ComputeSystem::open) from another process only knows *that* it stopped.

mod modify;
mod process;
mod properties;

pub use process::Process;

use crate::process::{exec, launch, ops, state, Bundle, Launched, Record, Status};
use crate::schema::{self, PropertyQuery, PropertyType, SystemKind};
use crate::{Error, Result};
use process::Pipes;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::process::CreateOptions;

/// HCS's view of a system's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemState {
    Created,
    Running,
    Paused,
    Stopped,
}

impl From<Status> for SystemState {
    fn from(s: Status) -> Self {
        match s {
            Status::Creating | Status::Created => SystemState::Created,
            Status::Running => SystemState::Running,
            Status::Paused => SystemState::Paused,
            Status::Stopped => SystemState::Stopped,
        }
    }
}

impl From<SystemState> for schema::State {
    fn from(s: SystemState) -> Self {
        match s {
            SystemState::Created => schema::State::Created,
            SystemState::Running => schema::State::Running,
            SystemState::Paused => schema::State::Paused,
            SystemState::Stopped => schema::State::Stopped,
        }
    }
}

/// A compute system (a container), identified by id under a state root.
pub struct ComputeSystem {
    root: PathBuf,
    record: Record,
    /// Set when this process created the system: its init is our child.
    init: Option<InitHandles>,
    /// Created for a foreground `run`: started over the setup channel, not the exec fifo.
    foreground: bool,
    exit_code: Option<i32>,
}

impl ComputeSystem {
    /// `HcsCreateComputeSystem`: validates the document and creates the system, set up and
    /// waiting to be started. For a Linux container the document is a `HostedSystem` with an
    /// `OciSpecification` and an `OciBundlePath` and no `HostingSystemId`.
    pub fn create(
        root: &Path,
        id: &str,
        doc: &schema::ComputeSystem,
        opts: &CreateOptions,
    ) -> Result<Self> {
        let kind = doc.validate().map_err(|e| Error::InvalidArgument {
            field: e.field,
            reason: e.reason,
        })?;
        if kind != SystemKind::Container {
            return Err(Error::Unsupported {
                what: format!("{kind:?} documents"),
                why: "this build of hcs has the process isolation backend only".into(),
            });
        }
        let Some(hosted) = &doc.hosted_system else {
            return Err(Error::Unsupported {
                what: "a Container (Windows silo) document".into(),
                why: "this host runs Linux containers: send the OCI spec as \
                      HostedSystem.OciSpecification with HostedSystem.OciBundlePath"
                    .into(),
            });
        };
        // validate() guarantees both for a process-isolated hosted system.
        let (Some(spec), Some(dir)) = (&hosted.oci_specification, &hosted.oci_bundle_path) else {
            return Err(Error::InvalidArgument {
                field: "HostedSystem.OciSpecification".into(),
                reason: "is required".into(),
            });
        };
        let bundle = Bundle::from_spec(
            Path::new(dir),
            spec.clone(),
            Path::new("HostedSystem.OciSpecification"),
        )?;
        let mut opts = opts.clone();
        if let Some(owner) = &doc.owner {
            opts.owner = owner.clone();
        }
        Self::create_from_bundle(root, id, bundle, &opts)
    }

    /// Creates a system from an OCI bundle already loaded (`runhcs create`/`run`). With
    /// `opts.foreground` the system is started by [`ComputeSystem::start`] over the setup
    /// channel and its terminal (if any) comes back to this process.
    pub fn create_from_bundle(
        root: &Path,
        id: &str,
        bundle: Bundle,
        opts: &CreateOptions,
    ) -> Result<Self> {
        let mode = if opts.foreground {
            launch::LaunchMode::Run
        } else {
            launch::LaunchMode::Create
        };
        let launched = launch::create(root, id, bundle, mode, opts)?;
        Ok(ComputeSystem {
            root: root.to_path_buf(),
            record: launched.record,
            init: Some(InitHandles {
                pidfd: launched.pidfd,
                chan: launched.chan,
                master: launched.master,
            }),
            foreground: opts.foreground,
            exit_code: None,
        })
    }

    /// `HcsOpenComputeSystem`: a system created earlier, maybe by another process.
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        Ok(ComputeSystem {
            root: root.to_path_buf(),
            record: state::load(root, id)?,
            init: None,
            foreground: false,
            exit_code: None,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The host pid of the system's init process.
    pub fn pid(&self) -> i32 {
        self.record.pid
    }

    pub fn state(&self) -> SystemState {
        state::status(&self.root, &self.record).into()
    }

    /// Runs the spec's process: releases the init and runs the poststart hooks once it runs.
    pub fn start(&mut self) -> Result<()> {
        match (&self.init, self.foreground) {
            (Some(l), true) => launch::release(&self.root, &l.chan, &self.record),
            _ => launch::start(&self.root, &self.record),
        }
    }

    pub fn pause(&self) -> Result<()> {
        ops::pause(&self.root, &self.record)
    }

    pub fn resume(&self) -> Result<()> {
        ops::resume(&self.root, &self.record)
    }

    /// Graceful stop: SIGTERM to the init, then SIGKILL to every process after `timeout`.
    pub fn shutdown(&mut self, timeout: Duration) -> Result<()> {
        ops::kill(&self.root, &self.record, libc::SIGTERM, false)?;
        if self.wait(Some(timeout))?.is_some() || !state::init_alive(&self.record) {
            return Ok(());
        }
        self.terminate()
    }

    /// Forced stop of every process of the system.
    pub fn terminate(&self) -> Result<()> {
        ops::kill(&self.root, &self.record, libc::SIGKILL, true)
    }

    /// Signals the init (or, with `all`, every process of the system).
    pub fn signal(&self, signal: i32, all: bool) -> Result<()> {
        ops::kill(&self.root, &self.record, signal, all)
    }

    /// Waits until the init exits (or `timeout` passes: `Ok(None)`). Returns its exit code when
    /// this process created the system, else `Some(-1)` once it is gone.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Option<i32>> {
        if self.exit_code.is_some() {
            return Ok(self.exit_code);
        }
        if let Some(l) = &self.init {
            match process::reap(&l.pidfd, timeout) {
                Ok(code) => self.exit_code = code,
                // Reaped through another handle (its Process): it has exited.
                Err(nix::errno::Errno::ECHILD) => self.exit_code = Some(-1),
                Err(e) => return Err(Error::sys(format!("wait for container {}", self.id()), e)),
            }
            return Ok(self.exit_code);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        while state::init_alive(&self.record) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.exit_code = Some(-1);
        Ok(self.exit_code)
    }

    /// Removes a stopped system (with `force`, a running one is killed first), runs poststop
    /// hooks and reaps the init if it is our child.
    pub fn delete(mut self, force: bool) -> Result<()> {
        ops::delete(&self.root, &self.record, force)?;
        if self.init.is_some() && self.exit_code.is_none() {
            self.wait(Some(Duration::from_secs(10)))?;
        }
        Ok(())
    }

    /// Foreground `run`: starts the system, forwards signals to it and copies its terminal,
    /// waits for the exit, deletes the system. Returns the exit code.
    pub fn run_foreground(mut self) -> Result<i32> {
        let Some(InitHandles {
            pidfd,
            chan,
            master,
        }) = self.init.take()
        else {
            return Err(Error::InvalidArgument {
                field: "foreground".into(),
                reason: "only a system created here with CreateOptions.foreground can run in the foreground".into(),
            });
        };
        let root = std::mem::take(&mut self.root);
        launch::run_foreground(
            &root,
            Launched {
                record: self.record,
                pidfd,
                chan,
                master,
            },
        )
    }

    /// `runhcs exec`: runs `process` in the system, in the foreground (returns its exit code)
    /// or detached (returns 0 once it runs).
    pub fn exec(
        &self,
        process: &oci_spec::runtime::Process,
        opts: &exec::ExecOptions,
    ) -> Result<i32> {
        exec::exec(&self.root, &self.record, process, opts)
    }

    /// The pids of every process of the system.
    pub fn pids(&self) -> Result<Vec<i32>> {
        ops::pids(&self.root, &self.record)
    }

    /// `HcsGetComputeSystemProperties`. The basic fields always; `Statistics` and `ProcessList`
    /// when asked for. Types that only a utility VM has are refused, naming the type.
    pub fn properties(&self, query: &PropertyQuery) -> Result<schema::Properties> {
        let st = self.state();
        let mut p = schema::Properties {
            id: Some(self.record.id.clone()),
            system_type: Some(schema::SystemType::Container),
            runtime_os_type: Some("Linux".into()),
            owner: Some(self.record.owner.clone()),
            state: Some(st.into()),
            stopped: Some(st == SystemState::Stopped),
            ..Default::default()
        };
        for t in query.property_types.iter().flatten() {
            match t {
                PropertyType::Statistics => {
                    let stats = self.record.cgroup.stats()?;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    p.statistics = Some(properties::statistics(
                        &stats,
                        &self.record.created,
                        crate::process::state::parse_rfc3339_ns(&self.record.created),
                        now,
                    ));
                }
                PropertyType::ProcessList => {
                    p.process_list = Some(properties::process_list(&self.pids()?));
                }
                PropertyType::TerminateOnLastHandleClosed => {
                    p.terminate_on_last_handle_closed = Some(false);
                }
                other => {
                    return Err(Error::InvalidArgument {
                        field: "PropertyTypes".into(),
                        reason: format!("{other:?} is a utility VM property; a process-isolated container has Statistics, ProcessList and TerminateOnLastHandleClosed"),
                    })
                }
            }
        }
        Ok(p)
    }

    /// `HcsModifyComputeSystem`: `Container/Memory/SizeInMB` and `Container/Processor` updates.
    pub fn modify(&self, req: &schema::ModifySettingRequest) -> Result<()> {
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let res = modify::resources(req, host_cpus)?;
        if self.state() == SystemState::Stopped {
            return Err(Error::InvalidState {
                id: self.record.id.clone(),
                op: "modify",
                state: "stopped".into(),
            });
        }
        Ok(self.record.cgroup.apply(&res)?)
    }

    /// OCI-native resource update (`runhcs update`): applies `resources` to the cgroups.
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        Ok(self.record.cgroup.apply(resources)?)
    }

    /// The OCI state document (plus `created` and `owner`).
    pub fn oci_state(&self) -> state::OciState {
        state::oci_state(&self.root, &self.record)
    }

    /// `HcsCreateProcess`: starts a further process in the running system. For a Linux
    /// container `OciProcess` is the process; otherwise it is built from the container's own
    /// process with `CommandArgs`/`CommandLine`, `Environment`, `WorkingDirectory` and `User`
    /// (`uid[:gid]`) applied. Stdio is a pipe where `CreateStd*Pipe` asks for one, a terminal
    /// with `EmulateConsole`, `/dev/null` otherwise.
    pub fn create_process(&self, params: &schema::ProcessParameters) -> Result<Process> {
        if params.create_in_utility_vm == Some(true) {
            return Err(Error::Unsupported {
                what: "CreateInUtilityVM".into(),
                why: "a process-isolated container has no utility VM".into(),
            });
        }
        let process = process_from_parameters(self.record.spec.process().as_ref(), params)?;
        let (pipes, child) = stdio(params)?;
        let opts = exec::ExecOptions {
            stdio: Some([
                child[0].as_raw_fd(),
                child[1].as_raw_fd(),
                child[2].as_raw_fd(),
            ]),
            ..Default::default()
        };
        let sp = exec::spawn(&self.root, &self.record, &process, &opts)?;
        drop(child);
        Ok(Process::new(sp.pid, sp.pidfd, pipes, sp.master))
    }

    /// The system's init as a [`Process`] (its exit code, its terminal), when this process
    /// created the system. Its stdio is whatever [`CreateOptions::stdio`] gave it.
    pub fn init_process(&mut self) -> Option<Process> {
        let l = self.init.as_mut()?;
        let pidfd = l.pidfd.try_clone().ok()?;
        Some(Process::new(
            self.record.pid,
            pidfd,
            Pipes::default(),
            l.master.take(),
        ))
    }
}

/// What the creating process holds of a system's init (its child).
struct InitHandles {
    pidfd: OwnedFd,
    chan: crate::process::sync::Channel,
    master: Option<OwnedFd>,
}

/// The parent's ends and the child's ends (stdin, stdout, stderr) of a new process's stdio.
fn stdio(params: &schema::ProcessParameters) -> Result<(Pipes, [OwnedFd; 3])> {
    let null = || -> Result<OwnedFd> {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| Error::io("open", "/dev/null", e))
    };
    let pipe = || -> Result<(OwnedFd, OwnedFd)> {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::sys("create stdio pipe", e))
    };
    // (parent's end, child's end) of one stdio stream; `input` is the child's stdin.
    let stream = |wanted: Option<bool>, input: bool| -> Result<(Option<File>, OwnedFd)> {
        if wanted != Some(true) {
            return Ok((None, null()?));
        }
        let (r, w) = pipe()?;
        Ok(if input {
            (Some(File::from(w)), r)
        } else {
            (Some(File::from(r)), w)
        })
    };
    let (stdin, child_in) = stream(params.create_std_in_pipe, true)?;
    let (stdout, child_out) = stream(params.create_std_out_pipe, false)?;
    let (stderr, child_err) = stream(params.create_std_err_pipe, false)?;
    Ok((
        Pipes {
            stdin,
            stdout,
            stderr,
        },
        [child_in, child_out, child_err],
    ))
}

fn process_from_parameters(
    template: Option<&oci_spec::runtime::Process>,
    params: &schema::ProcessParameters,
) -> Result<oci_spec::runtime::Process> {
    let invalid = |field: &str, reason: String| Error::InvalidArgument {
        field: field.into(),
        reason,
    };
    let mut p = match &params.oci_process {
        Some(p) => p.clone(),
        None => {
            let mut p = template.cloned().unwrap_or_default();
            let args = match (&params.command_args, &params.command_line) {
                (Some(a), _) if !a.is_empty() => a.clone(),
                (_, Some(line)) => {
                    split_command_line(line).map_err(|r| invalid("CommandLine", r.into()))?
                }
                _ => {
                    return Err(invalid(
                        "CommandLine",
                        "is required (or CommandArgs, or OciProcess)".into(),
                    ))
                }
            };
            if args.is_empty() {
                return Err(invalid("CommandLine", "is empty".into()));
            }
            p.set_args(Some(args));
            if let Some(env) = &params.environment {
                let mut all = p.env().clone().unwrap_or_default();
                for (k, v) in env {
                    if k.is_empty() || k.contains('=') {
                        return Err(invalid("Environment", format!("bad variable name {k:?}")));
                    }
                    all.retain(|e| e.split('=').next() != Some(k.as_str()));
                    all.push(format!("{k}={v}"));
                }
                p.set_env(Some(all));
            }
            if let Some(cwd) = &params.working_directory {
                p.set_cwd(PathBuf::from(cwd));
            }
            if let Some(u) = &params.user {
                let parse = |s: &str| {
                    s.parse::<u32>()
                        .map_err(|_| invalid("User", format!("{u:?}: give a numeric uid[:gid]")))
                };
                let mut user = p.user().clone();
                match u.split_once(':') {
                    Some((uid, gid)) => {
                        user.set_uid(parse(uid)?);
                        user.set_gid(parse(gid)?);
                    }
                    None => {
                        user.set_uid(parse(u)?);
                    }
                }
                p.set_user(user);
            }
            p.set_console_size(None);
            p
        }
    };
    if let Some(tty) = params.emulate_console {
        p.set_terminal(Some(tty));
    }
    if let Some([h, w]) = params.console_size {
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(h as u64)
            .width(w as u64)
            .build()
            .map_err(|e| invalid("ConsoleSize", e.to_string()))?;
        p.set_console_size(Some(size));
    }
    Ok(p)
}

/// Splits a command line the way a POSIX shell splits words (no expansion): whitespace
/// separates, single quotes keep everything, double quotes keep all but `\"` and `\\`, a
/// backslash outside quotes escapes the next character.
fn split_command_line(line: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().ok_or("trailing backslash")?);
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        assert_eq!(
            split_command_line("sh -c 'echo a  b'").unwrap(),
            ["sh", "-c", "echo a  b"]
        );
        assert_eq!(
            split_command_line(r#"  echo "x \"y\"" z\ w ''"#).unwrap(),
            ["echo", r#"x "y""#, "z w", ""]
        );
        assert!(split_command_line("echo 'x").is_err());
        assert!(split_command_line("").unwrap().is_empty());
    }

    #[test]
    fn parameters_onto_the_template() {
        let mut t = oci_spec::runtime::Process::default();
        t.set_env(Some(vec!["PATH=/bin".into(), "A=1".into()]));
        let params = schema::ProcessParameters {
            command_line: Some("ls -l /".into()),
            environment: Some([("A".to_string(), "2".to_string())].into()),
            working_directory: Some("/tmp".into()),
            user: Some("1000:100".into()),
            emulate_console: Some(true),
            console_size: Some([24, 80]),
            ..Default::default()
        };
        let p = process_from_parameters(Some(&t), &params).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["ls", "-l", "/"]);
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=2"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(
            p.console_size().as_ref().map(|b| (b.height(), b.width())),
            Some((24, 80))
        );
        let e =
            process_from_parameters(Some(&t), &schema::ProcessParameters::default()).unwrap_err();
        assert!(e.to_string().starts_with("CommandLine"), "{e}");
        let bad = schema::ProcessParameters {
            command_line: Some("x".into()),
            user: Some("root".into()),
            ..Default::default()
        };
        assert!(process_from_parameters(Some(&t), &bad)
            .unwrap_err()
            .to_string()
            .starts_with("User"));
    }
}
