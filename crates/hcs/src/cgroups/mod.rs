//! Control groups of containers, on all three host layouts: pure v1, pure v2 (unified) and
//! hybrid (v1 controllers plus a cgroup2 mount that holds the controllers v1 does not).
//!
//! # Lifecycle
//!
//! A [`Manager`] is the cgroup of one container in every hierarchy of the host. `runhcs create`
//! builds it with [`Manager::new`] (which resolves `linux.cgroupsPath` against the host
//! [`layout`], detected once per process), then calls [`Manager::create`] (mkdir everywhere),
//! [`Manager::apply`] (write the limits of `linux.resources`) and [`Manager::add_process`] (move
//! the container's init in). The manager is then stored in the container's `state.json`; later
//! commands deserialize it and call [`Manager::freeze`] / [`Manager::thaw`], [`Manager::pids`],
//! [`Manager::stats`], [`Manager::kill_all`] and finally [`Manager::destroy`] without detecting
//! anything again.
//!
//! # Controller placement
//!
//! Every controller is driven where the host mounts it: in a v1 hierarchy if it is bound to one,
//! otherwise in the cgroup2 hierarchy if it is listed in its `cgroup.controllers`. So on hybrid
//! hosts `hugetlb` (or whatever v1 left out) is limited through cgroup2 while everything else is
//! v1. Named v1 hierarchies (`name=systemd`) get the cgroup and the processes, no limits.
//!
//! Limits that cannot be applied are errors, never skipped: a cgroup limit is security-relevant.
//! The exceptions are fields that have no meaning on the host's controller version and that
//! runc also ignores there (kernel memory, swappiness / OOM-killer / leaf weights on v2); they
//! are logged at `warn`.

mod devices;
pub(crate) mod fs;
mod layout;
mod stats;
mod v1;
pub(crate) mod v2;

pub use devices::{attach_device_filter, DeviceFilter, Kind as DeviceKind, Rule as DeviceRule};
pub use layout::{layout, Hierarchy, Layout, Mode};
pub use stats::{BlkioStats, CpuStats, MemoryStats, PidsStats, Stats};

use fs::{
    collect_pids, mkdir_p, read, read_path, remove_cgroup, write, write_if_exists, write_raw,
};
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no cgroup hierarchy is mounted (checked /proc/self/mountinfo)")]
    NoHierarchy,

    #[error("find own cgroup in hierarchy {hierarchy}: {reason}")]
    OwnCgroup { hierarchy: String, reason: String },

    #[error("{field} {path:?}: {reason}")]
    InvalidPath {
        field: &'static str,
        path: String,
        reason: &'static str,
    },

    #[error("{field} = {value:?}: {reason}")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },

    #[error("{field} is not supported on this host: {reason}")]
    Unsupported { field: String, reason: String },

    #[error("create cgroup directory {}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("remove cgroup directory {}", path.display())]
    RemoveDir { path: PathBuf, source: io::Error },

    #[error("list cgroup directory {}", path.display())]
    ListDir { path: PathBuf, source: io::Error },

    #[error("read {}", path.display())]
    ReadFile { path: PathBuf, source: io::Error },

    #[error("write {value:?} to {}", path.display())]
    WriteFile {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    #[error("parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },

    #[error("cgroup {} did not become {want} within {waited:?}", path.display())]
    StateTimeout {
        path: PathBuf,
        want: &'static str,
        waited: Duration,
    },

    #[error("send {signal} to process {pid}")]
    Signal {
        pid: i32,
        signal: Signal,
        source: nix::Error,
    },

    #[error("device filter: {step} on {}", path.display())]
    Bpf {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl Error {
    /// How the edges should report this error.
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind as K;
        match self {
            Error::InvalidPath { .. } | Error::InvalidValue { .. } => K::InvalidArgument,
            Error::Unsupported { .. } | Error::NoHierarchy => K::Unsupported,
            Error::StateTimeout { .. } => K::FailedPrecondition,
            Error::Signal {
                source: nix::Error::ESRCH,
                ..
            } => K::NotFound,
            // A limit the kernel refuses (EINVAL, ENOSPC, ...) is a bad value in the spec.
            Error::WriteFile { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
                K::InvalidArgument
            }
            _ => K::Internal,
        }
    }
}

/// The cgroup directory of a container in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Dir {
    path: PathBuf,
    /// The hierarchy's mount point; `path` lies below it.
    mount: PathBuf,
    /// v1: controllers bound to the hierarchy (or `name=<n>`); v2: controllers usable there.
    controllers: Vec<String>,
    v2: bool,
}

/// The cgroup of one container, in every hierarchy this host has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manager {
    mode: Mode,
    dirs: Vec<Dir>,
}

/// How long [`Manager::freeze`] / [`Manager::thaw`] wait for the kernel.
const STATE_TIMEOUT: Duration = Duration::from_secs(2);

impl Manager {
    /// The container's cgroup for `linux.cgroupsPath` on this host. An absolute path is relative
    /// to each hierarchy's root; a relative path (and `None`, which means `runhcs/<id>`) is
    /// relative to the caller's own cgroup in each hierarchy. Creates nothing.
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Self, Error> {
        Self::with_layout(layout()?, cgroups_path, id, || {
            let path = Path::new("/proc/self/cgroup");
            read_path(path).map_err(|source| Error::ReadFile {
                path: path.into(),
                source,
            })
        })
    }

    /// [`Manager::new`] against an explicit layout (tests use a fake tree in a tempdir);
    /// `own_cgroup` yields the text of `/proc/self/cgroup` and is called only for relative paths.
    pub fn with_layout(
        layout: &Layout,
        cgroups_path: Option<&Path>,
        id: &str,
        own_cgroup: impl FnOnce() -> Result<String, Error>,
    ) -> Result<Self, Error> {
        let (absolute, rel) = layout::parse_cgroups_path(cgroups_path, id)?;
        let own = if absolute {
            String::new()
        } else {
            own_cgroup()?
        };
        let mut dirs = Vec::with_capacity(layout.hierarchies.len());
        for h in &layout.hierarchies {
            let mut path = h.mount_point.clone();
            if !absolute {
                path.push(layout::own_cgroup(&own, h)?);
            }
            path.push(&rel);
            dirs.push(Dir {
                path,
                mount: h.mount_point.clone(),
                controllers: h.controllers.clone(),
                v2: h.v2,
            });
        }
        Ok(Manager {
            mode: layout.mode,
            dirs,
        })
    }

    /// The cgroup directory in every hierarchy (v1 ones first).
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.path.as_path()).collect()
    }

    /// The directory that drives `controller` (`memory`, `cpu`, `hugetlb`, ...), if any.
    pub fn path_for(&self, controller: &str) -> Option<&Path> {
        self.dir_for(controller).map(|d| d.path.as_path())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn dir_for(&self, controller: &str) -> Option<&Dir> {
        let has = |d: &&Dir| d.controllers.iter().any(|c| c == controller);
        let v1 = self.dirs.iter().filter(|d| !d.v2).find(has);
        v1.or_else(|| self.dirs.iter().filter(|d| d.v2).find(has))
    }

    fn v2_dir(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.v2)
    }

    /// Creates the cgroup in every hierarchy (existing directories are fine). On v1 `cpuset`
    /// new levels inherit their parent's `cpus`/`mems` (else adding a task fails); on cgroup2
    /// every ancestor enables the controllers available there in `cgroup.subtree_control`.
    ///
    /// cgroup2's "no internal processes" rule applies: an ancestor that holds processes itself
    /// (other than the root) cannot delegate, and `create` fails with EBUSY naming its
    /// `cgroup.subtree_control`. Use an absolute `cgroupsPath` from such a caller.
    pub fn create(&self) -> Result<(), Error> {
        for dir in &self.dirs {
            let created = mkdir_p(&dir.path, &dir.mount)?;
            if dir.v2 {
                if !dir.controllers.is_empty() {
                    v2::enable_controllers(dir)?;
                }
            } else if dir.controllers.iter().any(|c| c == "cpuset") {
                v1::init_cpuset(&dir.path, &dir.mount, created)?;
            }
        }
        Ok(())
    }

    /// Writes every limit that `resources` sets; unset fields write nothing.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), Error> {
        if let Some(memory) = resources.memory().as_ref().filter(|m| v1::memory_is_set(m)) {
            match self.need("memory", "linux.resources.memory")? {
                d if d.v2 => v2::memory(&d.path, memory)?,
                d => v1::memory(&d.path, memory)?,
            }
        }
        if let Some(cpu) = resources.cpu() {
            if v1::cpu_is_set(cpu) {
                match self.need("cpu", "linux.resources.cpu")? {
                    d if d.v2 => v2::cpu(&d.path, cpu)?,
                    d => v1::cpu(&d.path, cpu)?,
                }
            }
            if cpu.cpus().is_some() || cpu.mems().is_some() {
                let d = self.need("cpuset", "linux.resources.cpu.cpus")?;
                cpuset(&d.path, cpu)?;
            }
        }
        if let Some(pids) = resources.pids() {
            if pids.limit() != 0 {
                let d = self.need("pids", "linux.resources.pids")?;
                let value = if pids.limit() > 0 {
                    pids.limit().to_string()
                } else {
                    "max".into()
                };
                write(&d.path, "pids.max", &value)?;
            }
        }
        if let Some(blkio) = resources
            .block_io()
            .as_ref()
            .filter(|b| v1::blkio_is_set(b))
        {
            match self.dir_for("blkio").or_else(|| self.dir_for("io")) {
                Some(d) if d.v2 => v2::io(&d.path, blkio)?,
                Some(d) => v1::blkio(&d.path, blkio)?,
                None => return Err(no_controller("linux.resources.blockIO", "blkio/io")),
            }
        }
        if let Some(limits) = resources.hugepage_limits() {
            if !limits.is_empty() {
                let d = self.need("hugetlb", "linux.resources.hugepageLimits")?;
                hugetlb(d, limits)?;
            }
        }
        if let Some(network) = resources.network() {
            if let Some(class_id) = network.class_id() {
                let d = self.need_v1("net_cls", "linux.resources.network.classID")?;
                write(&d.path, "net_cls.classid", &class_id.to_string())?;
            }
            if let Some(priorities) = network.priorities() {
                let field = "linux.resources.network.priorities";
                let d = self.need_v1("net_prio", field)?;
                for p in priorities {
                    write(
                        &d.path,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                    )?;
                }
            }
        }
        if let Some(rdma) = resources.rdma() {
            if !rdma.is_empty() {
                let d = self.need("rdma", "linux.resources.rdma")?;
                for (device, limit) in rdma {
                    let mut value = device.clone();
                    if let Some(n) = limit.hca_handles() {
                        value.push_str(&format!(" hca_handle={n}"));
                    }
                    if let Some(n) = limit.hca_objects() {
                        value.push_str(&format!(" hca_object={n}"));
                    }
                    write(&d.path, "rdma.max", &value)?;
                }
            }
        }
        if let Some(devices) = resources.devices() {
            let rules = devices::Rule::from_spec(devices)?;
            if let Some(d) = self.dirs.iter().find(|d| !d.v2 && has(d, "devices")) {
                devices::apply_v1(&d.path, &rules)?;
            } else if let Some(d) = self.v2_dir() {
                let filter = DeviceFilter::new(&rules);
                attach_device_filter(&d.path, &filter)?;
            } else {
                return Err(no_controller("linux.resources.devices", "devices"));
            }
        }
        if let Some(unified) = resources.unified() {
            if !unified.is_empty() {
                self.apply_unified(unified)?;
            }
        }
        Ok(())
    }

    fn apply_unified(
        &self,
        unified: &std::collections::HashMap<String, String>,
    ) -> Result<(), Error> {
        // Sorted so that errors and effects are deterministic.
        let mut entries: Vec<_> = unified.iter().collect();
        entries.sort();
        for (key, value) in entries {
            let field = format!("linux.resources.unified[{key:?}]");
            let Some(dir) = self.v2_dir() else {
                return Err(Error::Unsupported {
                    field,
                    reason: "this host has no cgroup2 hierarchy (cgroup v1 only)".into(),
                });
            };
            if key.contains('/') || key.starts_with('.') || key.is_empty() {
                return Err(Error::InvalidValue {
                    field,
                    value: key.clone(),
                    reason: "not a cgroup interface file name".into(),
                });
            }
            let controller = key.split('.').next().unwrap_or_default();
            if controller != "cgroup" && self.dirs.iter().any(|d| !d.v2 && has(d, controller)) {
                return Err(Error::Unsupported {
                    field,
                    reason: format!("the {controller} controller is mounted as cgroup v1 here"),
                });
            }
            write(&dir.path, key, value)?;
        }
        Ok(())
    }

    fn need(&self, controller: &str, field: &str) -> Result<&Dir, Error> {
        self.dir_for(controller)
            .ok_or_else(|| no_controller(field, controller))
    }

    fn need_v1(&self, controller: &str, field: &str) -> Result<&Dir, Error> {
        self.dirs
            .iter()
            .find(|d| !d.v2 && has(d, controller))
            .ok_or_else(|| no_controller(field, controller))
    }

    /// Moves process `pid` (all its threads) into the cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), Error> {
        let value = pid.to_string();
        for dir in &self.dirs {
            write(&dir.path, "cgroup.procs", &value)?;
        }
        Ok(())
    }

    /// Freezes every process of the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    /// Thaws the cgroup and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    /// Where freezing happens: the v1 freezer hierarchy, else cgroup2's core `cgroup.freeze`.
    fn freezer(&self) -> Result<(&Dir, bool), Error> {
        if let Some(d) = self.dirs.iter().find(|d| !d.v2 && has(d, "freezer")) {
            return Ok((d, false));
        }
        self.v2_dir()
            .map(|d| (d, true))
            .ok_or_else(|| no_controller("freeze", "freezer"))
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let (dir, v2) = self.freezer()?;
        let (file, value, want) = match (v2, frozen) {
            (false, true) => ("freezer.state", "FROZEN", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED", "THAWED"),
            (true, true) => ("cgroup.freeze", "1", "frozen"),
            (true, false) => ("cgroup.freeze", "0", "thawed"),
        };
        write(&dir.path, file, value)?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(50);
        let mut round = 0u32;
        loop {
            if self.frozen_state(dir, v2)? == frozen {
                return Ok(());
            }
            if start.elapsed() > STATE_TIMEOUT {
                if frozen {
                    // Do not leave a half-frozen container behind; the timeout is the error.
                    if let Err(e) = write(&dir.path, file, if v2 { "0" } else { "THAWED" }) {
                        tracing::warn!(error = %e, "thaw after freeze timeout");
                    }
                }
                return Err(Error::StateTimeout {
                    path: dir.path.clone(),
                    want,
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
            round += 1;
            // v1 may get stuck in FREEZING when tasks fork meanwhile: asking again helps.
            if !v2 && round.is_multiple_of(8) {
                write(&dir.path, file, value)?;
            }
        }
    }

    fn frozen_state(&self, dir: &Dir, v2: bool) -> Result<bool, Error> {
        if v2 {
            let events = read(&dir.path, "cgroup.events")?;
            Ok(events.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            Ok(read(&dir.path, "freezer.state")?.trim() == "FROZEN")
        }
    }

    /// Whether the cgroup is (completely) frozen.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        let (dir, v2) = self.freezer()?;
        self.frozen_state(dir, v2)
    }

    /// Every process in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let dir = match self.mode {
            Mode::Unified => self.v2_dir(),
            // Any v1 hierarchy holds every process; prefer ones with real controllers.
            _ => self
                .dirs
                .iter()
                .find(|d| !d.v2 && !d.controllers.iter().all(|c| c.starts_with("name=")))
                .or_else(|| self.dirs.first()),
        };
        let mut pids = Vec::new();
        if let Some(dir) = dir {
            collect_pids(&dir.path, &mut pids)?;
        }
        Ok(pids)
    }

    /// Resource usage of the cgroup; controllers the host lacks report zeros.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        let v = |c: &str| self.dir_for(c).map(|d| (d.path.as_path(), d.v2));
        if let Some((path, v2)) = v("cpuacct").or_else(|| v("cpu")) {
            s.cpu = stats::cpu(path, v2)?;
        }
        // Throttling lives in the cpu controller's cpu.stat (v1: a different hierarchy).
        if let Some((path, false)) = v("cpu") {
            stats::cpu_throttling_v1(path, &mut s.cpu)?;
        }
        if let Some((path, v2)) = v("memory") {
            s.memory = stats::memory(path, v2)?;
        }
        if let Some((path, _)) = v("pids") {
            s.pids = stats::pids(path)?;
        }
        if let Some((path, v2)) = v("blkio").or_else(|| v("io")) {
            s.blkio = stats::blkio(path, v2)?;
        }
        Ok(s)
    }

    /// Sends `signal` to every process of the cgroup: through `cgroup.kill` on cgroup2 for
    /// SIGKILL, otherwise freeze, signal every pid, thaw (so no process forks away meanwhile).
    pub fn kill_all(&self, signal: Signal) -> Result<(), Error> {
        let (dir, v2) = self.freezer()?;
        if v2 && signal == Signal::SIGKILL {
            match write_raw(&dir.path.join("cgroup.kill"), "1") {
                Ok(()) => return Ok(()),
                // Kernels before 5.14 have no cgroup.kill.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::WriteFile {
                        path: dir.path.join("cgroup.kill"),
                        value: "1".into(),
                        source,
                    })
                }
            }
        }
        // Frozen, nothing can fork away between listing and signalling. If freezing fails (a
        // task stuck in the kernel), signalling anyway is still the best that can be done.
        let frozen = self.freeze();
        if let Err(e) = &frozen {
            tracing::warn!(error = %e, "signalling the cgroup without freezing it");
        }
        let signalled = self.signal_each(signal);
        let thawed = if frozen.is_ok() { self.thaw() } else { Ok(()) };
        signalled.and(thawed)
    }

    fn signal_each(&self, signal: Signal) -> Result<(), Error> {
        for pid in self.pids()? {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(source) => {
                    return Err(Error::Signal {
                        pid,
                        signal,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Removes the cgroup (and any child cgroups) from every hierarchy. Missing directories are
    /// fine; a cgroup still busy with exiting tasks is retried briefly.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut first_error = None;
        for dir in &self.dirs {
            if let Err(e) = remove_cgroup(&dir.path) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn has(dir: &Dir, controller: &str) -> bool {
    dir.controllers.iter().any(|c| c == controller)
}

fn no_controller(field: &str, controller: &str) -> Error {
    Error::Unsupported {
        field: field.into(),
        reason: format!("no {controller} controller is mounted"),
    }
}

fn cpuset(dir: &Path, cpu: &oci_spec::runtime::LinuxCpu) -> Result<(), Error> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

fn hugetlb(dir: &Dir, limits: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<(), Error> {
    for (i, l) in limits.iter().enumerate() {
        let size = l.page_size();
        let digits = size
            .strip_suffix('B')
            .and_then(|s| s.strip_suffix(['K', 'M', 'G']))
            .unwrap_or_default();
        let well_formed = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(Error::InvalidValue {
                field: format!("linux.resources.hugepageLimits[{i}].pageSize"),
                value: size.clone(),
                reason: "expected <number><K|M|G>B, e.g. 2MB".into(),
            });
        }
        let (limit, rsvd, value) = if dir.v2 {
            let value = if l.limit() < 0 {
                "max".to_string()
            } else {
                l.limit().to_string()
            };
            (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
                value,
            )
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                l.limit().to_string(),
            )
        };
        write(&dir.path, &limit, &value)?;
        // Reservation limits exist since 5.7; where they do they must match (runc does this).
        write_if_exists(&dir.path, &rsvd, &value)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
