//! What the monitor leaves behind: the exit file, and its own diagnostics.

use hcs::shim::ExitStatus;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `exit.json` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_exit_file(state_dir: &Path, exit: &ExitStatus) -> std::io::Result<()> {
    let path = state_dir.join(hcs::shim::EXIT_FILE);
    let tmp = state_dir.join(format!(".{}.tmp", hcs::shim::EXIT_FILE));
    let bytes = serde_json::to_vec(exit).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(state_dir)?.sync_all()
}

/// Writes a file atomically (temp file and rename), e.g. the pid file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The number of OOM kills the container's memory cgroup has seen (cgroup2 `memory.events`,
/// or v1 `memory.oom_control`, which has the counter since Linux 4.13).
pub fn oom_kills(system: &hcs::ComputeSystem) -> Option<u64> {
    let dir = system.record().cgroup.path_for("memory")?;
    ["memory.events", "memory.oom_control"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The monitor's own warnings (a dropped client, a log write that failed). Its stdio is
/// /dev/null once it runs, so they go to a file: runhcs's `--log` if given, else `shim.log` in
/// the state directory. Opened per line: warnings are rare and an idle monitor holds no file.
pub struct Diag {
    path: PathBuf,
    id: String,
}

impl Diag {
    pub fn new(path: PathBuf, id: &str) -> Self {
        Diag {
            path,
            id: id.to_string(),
        }
    }

    pub fn warn(&self, msg: &str) {
        let line = format!(
            "time=\"{}\" level=warning container_id={} msg={msg:?}\n",
            hcs::process::state::rfc3339_now(),
            self.id
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            // Nowhere else to report a failure to write the diagnostics themselves.
            f.write_all(line.as_bytes()).ok();
        }
    }
}
