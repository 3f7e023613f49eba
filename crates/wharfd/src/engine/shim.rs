//! Talking to a container's monitor (`runhcs shim`, protocol in [`hcs::shim`]).

use std::path::{Path, PathBuf};

use hcs::shim::{ExitStatus, Reply, Request, EXIT_FILE, SOCKET_NAME};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{ApiError, ApiResult};

/// What the daemon passes to a new shim.
pub struct SpawnArgs<'a> {
    pub runhcs: &'a Path,
    pub runtime_root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub state_dir: &'a Path,
    pub log_path: &'a Path,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub stdin: bool,
    pub tty: bool,
    pub console_size: Option<(u16, u16)>,
}

/// Starts the monitor, which creates the container and stays in the background. Returns once
/// the container is created (the shim's foreground half has exited).
pub async fn spawn(a: SpawnArgs<'_>) -> ApiResult<()> {
    let mut cmd = tokio::process::Command::new(a.runhcs);
    cmd.arg("--root")
        .arg(a.runtime_root)
        .arg("shim")
        .arg("--id")
        .arg(a.id)
        .arg("--bundle")
        .arg(a.bundle)
        .arg("--state-dir")
        .arg(a.state_dir)
        .arg("--log-path")
        .arg(a.log_path)
        .arg("--log-max-size")
        .arg(a.log_max_size.to_string())
        .arg("--log-max-files")
        .arg(a.log_max_files.to_string());
    if a.stdin {
        cmd.arg("--stdin");
    }
    if a.tty {
        cmd.arg("--tty");
    }
    if let Some((h, w)) = a.console_size {
        cmd.arg("--console-size").arg(format!("{h}x{w}"));
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(false);
    let out = cmd.output().await.map_err(|e| {
        ApiError::internal(format!(
            "start the monitor for container {}: run {}: {e}",
            a.id,
            a.runhcs.display()
        ))
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim();
        return Err(start_error(a.id, msg));
    }
    Ok(())
}

/// Docker's CLI maps start errors that mention a missing executable to exit 127/126.
fn start_error(id: &str, msg: &str) -> ApiError {
    let m = format!("failed to create container {id}: {msg}");
    if msg.contains("no such file") || msg.contains("not found") {
        ApiError::bad_request(m)
    } else {
        ApiError::internal(m)
    }
}

#[derive(Clone, Debug)]
pub struct Shim {
    pub state_dir: PathBuf,
}

impl Shim {
    pub fn new(state_dir: PathBuf) -> Self {
        Shim { state_dir }
    }

    pub fn socket(&self) -> PathBuf {
        self.state_dir.join(SOCKET_NAME)
    }

    pub async fn connect(&self) -> std::io::Result<UnixStream> {
        UnixStream::connect(self.socket()).await
    }

    /// Whether a monitor answers on the socket.
    pub async fn alive(&self) -> bool {
        self.call(&Request::State).await.is_ok()
    }

    /// Sends one request and reads its reply; the connection is closed afterwards.
    pub async fn call(&self, req: &Request) -> ApiResult<Reply> {
        let (_s, reply) = self.open(req).await?;
        Ok(reply)
    }

    /// Like [`Shim::call`], but a reply with `ok: false` becomes an error.
    pub async fn call_ok(&self, req: &Request) -> ApiResult<Reply> {
        let r = self.call(req).await?;
        check(r)
    }

    /// Sends a request and returns the connection after the reply line (for streams).
    pub async fn open(&self, req: &Request) -> ApiResult<(UnixStream, Reply)> {
        let mut s = self.connect().await.map_err(|e| {
            ApiError::conflict(format!(
                "container monitor at {} is not running: {e}",
                self.socket().display()
            ))
        })?;
        let mut line = serde_json::to_vec(req)
            .map_err(|e| ApiError::internal(format!("encode shim request: {e}")))?;
        line.push(b'\n');
        s.write_all(&line)
            .await
            .map_err(|e| ApiError::internal(format!("send to container monitor: {e}")))?;
        let reply = read_line(&mut s).await?;
        let reply: Reply = serde_json::from_slice(&reply)
            .map_err(|e| ApiError::internal(format!("container monitor reply: {e}")))?;
        Ok((s, reply))
    }

    /// The exit recorded by the monitor, if the container has exited.
    pub fn exit_file(&self) -> Option<ExitStatus> {
        let b = std::fs::read(self.state_dir.join(EXIT_FILE)).ok()?;
        serde_json::from_slice(&b).ok()
    }
}

pub fn check(r: Reply) -> ApiResult<Reply> {
    if r.ok {
        return Ok(r);
    }
    let msg = r.error.clone().unwrap_or_else(|| "unknown error".into());
    Err(match r.kind.as_deref() {
        Some("not_found") => ApiError::not_found(msg),
        Some("invalid_argument") => ApiError::bad_request(msg),
        Some("failed_precondition") | Some("already_exists") => ApiError::conflict(msg),
        _ => ApiError::internal(msg),
    })
}

/// Reads one reply line byte by byte, so nothing of the stream after it is consumed.
async fn read_line(s: &mut UnixStream) -> ApiResult<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(0) => {
                return Err(ApiError::internal(
                    "container monitor closed the connection before replying",
                ))
            }
            Ok(_) if b[0] == b'\n' => return Ok(out),
            Ok(_) => {
                out.push(b[0]);
                if out.len() > 1 << 20 {
                    return Err(ApiError::internal("container monitor reply too long"));
                }
            }
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "read from container monitor: {e}"
                )))
            }
        }
    }
}
