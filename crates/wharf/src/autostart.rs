//! Starts wharfd in the background when the default socket does not answer, so that
//! `wharf run ...` works on a fresh machine. The daemon gets its own session (no controlling
//! terminal: ctrl-c in this shell does not reach it) and logs to a file.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

const WAIT: Duration = Duration::from_secs(10);
const LOG_FILES: [&str; 2] = ["/var/log/wharfd.log", "/run/wharf/wharfd.log"];

/// `wharfd` next to this binary, else on `PATH`.
fn find_wharfd() -> Option<PathBuf> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        let p = dir.join("wharfd");
        if p.is_file() {
            return Some(p);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("wharfd"))
        .find(|p| p.is_file())
}

fn open_log() -> Result<(std::fs::File, PathBuf)> {
    let mut last = None;
    for p in LOG_FILES {
        let path = PathBuf::from(p);
        if let Some(dir) = path.parent() {
            drop(std::fs::create_dir_all(dir));
        }
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) => last = Some(Error::io(format!("open daemon log {p}"), e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::Autostart("no log file".into())))
}

/// Starts wharfd and waits until `socket` accepts connections.
pub async fn start(socket: &Path) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Autostart(format!(
            "wharfd is not running at {} and starting it needs root",
            socket.display()
        )));
    }
    let bin = find_wharfd().ok_or_else(|| {
        Error::Autostart(
            "wharfd is not running and no wharfd binary was found next to wharf or on PATH".into(),
        )
    })?;
    let (log, log_path) = open_log()?;
    let err_log = log
        .try_clone()
        .map_err(|e| Error::io("duplicate daemon log handle", e))?;
    let mut cmd = Command::new(&bin);
    cmd.stdin(Stdio::null()).stdout(log).stderr(err_log);
    // SAFETY: the closure runs in the forked child before exec and only calls setsid(2),
    // which is async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Autostart(format!("run {}: {e}", bin.display())))?;
    eprintln!(
        "wharf: started wharfd (pid {}, log {})",
        child.id(),
        log_path.display()
    );
    let t0 = Instant::now();
    while t0.elapsed() < WAIT {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(Error::Autostart(format!(
                "wharfd exited ({st}) before it opened {}; see {}",
                socket.display(),
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Autostart(format!(
        "wharfd did not open {} within {}s; see {}",
        socket.display(),
        WAIT.as_secs(),
        log_path.display()
    )))
}
