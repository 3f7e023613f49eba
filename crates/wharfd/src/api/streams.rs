//! Hijacked streams (attach, exec start) and the archive endpoints (`docker cp`, export).
//!
//! After `101 UPGRADED` the client socket is a raw duplex pipe: the daemon writes Docker's
//! multiplexed frames (or raw bytes for a tty), the client writes raw stdin and half-closes
//! when stdin ends. The monitor speaks the same frame layout, so frames pass through.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::Bytes;
use hcs::shim::{ExitStatus, Request, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT};
use hyper::header::HeaderValue;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::daemon::{Ctr, Daemon};
use crate::engine::model::Status;
use crate::engine::shim::check;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, empty, json, Req, Resp};

fn upgrade_response(tty: bool) -> Resp {
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    h.insert("upgrade", HeaderValue::from_static("tcp"));
    h.insert(
        "content-type",
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    r
}

/// Reads one frame from the monitor (header + payload).
async fn read_frame(s: &mut (impl AsyncRead + Unpin)) -> Option<(u8, Vec<u8>)> {
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr).await.ok()?;
    let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.ok()?;
    Some((hdr[0], p))
}

/// Output sink of a stream: the hijacked socket, or a response body for old clients.
enum Sink<W> {
    Socket(W),
    Body(tokio::sync::mpsc::Sender<Bytes>),
}

impl<W: AsyncWrite + Unpin> Sink<W> {
    async fn write(&mut self, b: &[u8]) -> bool {
        match self {
            Sink::Socket(w) => w.write_all(b).await.is_ok(),
            Sink::Body(tx) => tx.send(Bytes::copy_from_slice(b)).await.is_ok(),
        }
    }
    async fn close(&mut self) {
        if let Sink::Socket(w) = self {
            let _peer_may_be_gone = w.shutdown().await;
        }
    }
}

pub async fn attach(d: &Arc<Daemon>, id: &str, mut r: Req) -> ApiResult<Resp> {
    let c = d.lookup(id)?;
    let (stdin, stdout, stderr) = (r.q_bool("stdin"), r.q_bool("stdout"), r.q_bool("stderr"));
    let (tty, stdin_once, status) = {
        let rec = c.lock();
        (rec.config.tty, rec.config.stdin_once, rec.state.status)
    };
    // Attach comes before start (`docker run`, `docker start -a`): a container that is not
    // running gets its monitor now. If that fails (say the command does not exist), the
    // attach still succeeds with an empty stream and `start` reports the error, as Docker does.
    if matches!(status, Status::Created | Status::Exited | Status::Dead) {
        if let Err(e) = d.ensure_runtime(&c).await {
            tracing::debug!("attach {}: {e}", c.id);
            if !r.wants_upgrade() {
                return Err(e);
            }
            let on_upgrade = r.on_upgrade()?;
            tokio::spawn(async move {
                if let Ok(up) = on_upgrade.await {
                    let mut io = TokioIo::new(up);
                    let _closed = io.shutdown().await;
                }
            });
            return Ok(upgrade_response(tty));
        }
    }
    let (conn, reply) = d
        .shim(&c.id)
        .open(&Request::Attach {
            stdin,
            stdout,
            stderr,
            close_stdin_on_eof: stdin_once,
        })
        .await?;
    check(reply)?;
    d.emit("container", "attach", &c.id, vec![]);
    if !r.wants_upgrade() {
        let (resp, tx) = http::stream(StatusCode::OK, "application/vnd.docker.raw-stream");
        tokio::spawn(async move {
            pump::<tokio::io::Empty, tokio::io::Sink>(conn, None, Sink::Body(tx), tty).await;
        });
        return Ok(resp);
    }
    let on_upgrade = r.on_upgrade()?;
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else { return };
        let (cr, cw) = tokio::io::split(TokioIo::new(up));
        let (_, mut out) = pump(
            conn,
            if stdin { Some(cr) } else { None },
            Sink::Socket(cw),
            tty,
        )
        .await;
        out.close().await;
    });
    Ok(upgrade_response(tty))
}

/// Pumps the monitor's frames to the client (unwrapping them for a tty) and the client's
/// stdin to the monitor. Returns the exit status if the monitor sent one (exec streams), and
/// the sink, still open.
async fn pump<R, W>(
    conn: UnixStream,
    cr: Option<R>,
    out: Sink<W>,
    tty: bool,
) -> (Option<ExitStatus>, Sink<W>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let mut out = out;
    let (mut sr, mut sw) = conn.into_split();
    let stdin_task = cr.map(|mut cr| {
        tokio::spawn(async move {
            drop(tokio::io::copy(&mut cr, &mut sw).await);
            drop(sw.shutdown().await);
        })
    });
    let mut exit = None;
    while let Some((stream, payload)) = read_frame(&mut sr).await {
        match stream {
            STREAM_EXIT => {
                exit = serde_json::from_slice(&payload).ok();
                break;
            }
            STREAM_STDOUT | STREAM_STDERR if tty => {
                if !out.write(&payload).await {
                    break;
                }
            }
            s => {
                let mut b = Vec::with_capacity(payload.len() + 8);
                b.extend_from_slice(&hcs::shim::frame_header(s, payload.len() as u32));
                b.extend_from_slice(&payload);
                if !out.write(&b).await {
                    break;
                }
            }
        }
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    (exit, out)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
    tty: bool,
    #[serde(deserialize_with = "crate::engine::model::null_default")]
    console_size: Vec<u16>,
}

pub async fn exec_start(d: &Arc<Daemon>, id: &str, mut r: Req) -> ApiResult<Resp> {
    let e = d.get_exec(id)?;
    let c = d.lookup(&e.container_id)?;
    let body: ExecStartBody = r.json().await?;
    if !c.lock().state.status.is_live() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    {
        let mut st = e.state();
        if st.started {
            return Err(ApiError::conflict(format!(
                "exec {id} has already been started"
            )));
        }
        st.started = true;
        st.running = true;
    }
    let process = d.exec_process(&c, &e)?;
    let tty = e.config.tty || body.tty;
    let size = match (&body.console_size[..], &e.config.console_size[..]) {
        ([h, w], _) | ([], [h, w]) if *h > 0 && *w > 0 => Some((*h, *w)),
        _ => None,
    };
    let detach = body.detach || e.config.detach;
    let (conn, reply) = match d
        .shim(&c.id)
        .open(&Request::Exec {
            exec_id: e.id.clone(),
            process,
            stdin: e.config.attach_stdin && !detach,
            stdout: e.config.attach_stdout || detach,
            stderr: e.config.attach_stderr || detach,
            console_size: size,
        })
        .await
        .and_then(|(c, r)| check(r).map(|r| (c, r)))
    {
        Ok(x) => x,
        Err(err) => {
            let mut st = e.state();
            st.running = false;
            st.exit_code = Some(126);
            return Err(err);
        }
    };
    e.state().pid = reply.pid.unwrap_or(0);
    d.emit(
        "container",
        "exec_start",
        &c.id,
        vec![("execID".into(), e.id.clone())],
    );
    let finish = {
        let e = e.clone();
        let d = d.clone();
        let cid = c.id.clone();
        move |exit: Option<ExitStatus>| {
            let mut st = e.state();
            st.running = false;
            st.exit_code = Some(exit.map_or(126, |x| x.exit_code));
            drop(st);
            d.emit(
                "container",
                "exec_die",
                &cid,
                vec![("execID".into(), e.id.clone())],
            );
        }
    };
    if detach || !r.wants_upgrade() {
        if detach {
            tokio::spawn(async move {
                let (ex, _) = pump::<tokio::io::Empty, tokio::io::Sink>(
                    conn,
                    None,
                    Sink::Socket(tokio::io::sink()),
                    false,
                )
                .await;
                finish(ex);
            });
            return Ok(empty(StatusCode::OK));
        }
        let (resp, tx) = http::stream(StatusCode::OK, "application/vnd.docker.raw-stream");
        tokio::spawn(async move {
            let (ex, _) =
                pump::<tokio::io::Empty, tokio::io::Sink>(conn, None, Sink::Body(tx), tty).await;
            finish(ex);
        });
        return Ok(resp);
    }
    let on_upgrade = r.on_upgrade()?;
    let stdin = e.config.attach_stdin;
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else {
            return;
        };
        let (cr, cw) = tokio::io::split(TokioIo::new(up));
        let (ex, mut out) = pump(
            conn,
            if stdin { Some(cr) } else { None },
            Sink::Socket(cw),
            tty,
        )
        .await;
        // The exit code is recorded before the stream closes: the CLI reads it right after EOF.
        finish(ex);
        out.close().await;
    });
    Ok(upgrade_response(tty))
}

pub async fn exec_resize(d: &Arc<Daemon>, id: &str, r: &Req) -> ApiResult<Resp> {
    let e = d.get_exec(id)?;
    let h = r.q_i64("h")?.unwrap_or(0).clamp(0, 65535) as u16;
    let w = r.q_i64("w")?.unwrap_or(0).clamp(0, 65535) as u16;
    if !e.state().running {
        return Err(ApiError::conflict(format!("exec {id} is not running")));
    }
    d.shim(&e.container_id)
        .call_ok(&Request::Resize {
            height: h,
            width: w,
            exec_id: Some(e.id.clone()),
        })
        .await?;
    Ok(empty(StatusCode::OK))
}

pub fn exec_inspect(d: &Arc<Daemon>, id: &str) -> ApiResult<Resp> {
    let e = d.get_exec(id)?;
    let st = e.state();
    let (ep, args) = e
        .config
        .cmd
        .split_first()
        .map_or((String::new(), vec![]), |(a, b)| (a.clone(), b.to_vec()));
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": e.id, "Running": st.running, "ExitCode": st.exit_code,
            "ProcessConfig": {"tty": e.config.tty, "entrypoint": ep, "arguments": args,
                              "privileged": e.config.privileged, "user": e.config.user},
            "OpenStdin": e.config.attach_stdin, "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout, "CanRemove": !st.running,
            "ContainerID": e.container_id, "DetachKeys": e.config.detach_keys, "Pid": st.pid,
        }),
    ))
}

/// The container's root filesystem for `cp`: the live mount, or the snapshot mounted for the
/// duration of the call.
struct RootGuard {
    path: std::path::PathBuf,
    temp: bool,
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if self.temp {
            if let Err(e) = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!("unmount {}: {e}", self.path.display());
            }
            drop(std::fs::remove_dir(&self.path));
        }
    }
}

fn container_root(d: &Daemon, c: &Ctr) -> ApiResult<RootGuard> {
    let live = d.bundle_dir(&c.id).join("rootfs");
    if c.lock().state.status.is_live() {
        return Ok(RootGuard {
            path: live,
            temp: false,
        });
    }
    let snapshot = c.lock().snapshot.clone();
    let path = d
        .cfg
        .exec_root
        .join("cp")
        .join(crate::engine::containers::random_id());
    std::fs::create_dir_all(&path)
        .map_err(|e| ApiError::internal(format!("create {}: {e}", path.display())))?;
    let mut guard = RootGuard {
        path: path.clone(),
        temp: false,
    };
    crate::engine::runtime::mount_snapshot(&d.snaps, &snapshot, &path)?;
    guard.temp = true;
    Ok(guard)
}

/// Opens `path` inside the container root for `cp` (symlinks resolve inside it).
fn open_in_root(root: &std::path::Path, path: &str) -> ApiResult<std::os::fd::OwnedFd> {
    crate::engine::mounts::open_in_root(root, path, nix::fcntl::OFlag::O_PATH).map_err(
        |e| match e {
            nix::errno::Errno::ENOENT => {
                ApiError::not_found(format!("Could not find the file {path} in container"))
            }
            e => ApiError::bad_request(format!("open {path} in container: {e}")),
        },
    )
}

pub async fn archive_get(d: &Arc<Daemon>, c: &Arc<Ctr>, path: &str, head: bool) -> ApiResult<Resp> {
    let root = container_root(d, c)?;
    let fd = open_in_root(&root.path, path)?;
    let proc_path = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let meta = std::fs::metadata(&proc_path)
        .map_err(|e| ApiError::internal(format!("stat {path}: {e}")))?;
    let name = std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    use std::os::unix::fs::MetadataExt;
    // Go's os.FileMode: permission bits plus type bits at the top (ModeDir = 1<<31,
    // ModeSymlink = 1<<27), which is what the CLI decodes.
    let go_mode = (meta.mode() & 0o7777) | if meta.is_dir() { 1 << 31 } else { 0 };
    let stat = json!({"name": name, "size": meta.len(), "mode": go_mode,
        "mtime": crate::daemon::rfc3339_nano(meta.mtime() * 1_000_000_000 + meta.mtime_nsec()), "linkTarget": ""});
    let stat_hdr = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&stat).unwrap_or_default(),
    );
    let mut resp = if head {
        empty(StatusCode::OK)
    } else {
        let (resp, tx) = http::stream(StatusCode::OK, "application/x-tar");
        let is_dir = meta.is_dir();
        let entry_name = if path == "/" {
            ".".to_string()
        } else {
            name.clone()
        };
        // A running container could swap a directory for a symlink while the walk below it is
        // under way (the CVE-2018-15664 race): it is frozen for the copy, as Docker does.
        let freeze = is_dir && c.lock().state.status == Status::Running;
        if freeze {
            d.shim(&c.id).call_ok(&Request::Pause).await?;
        }
        let (shim, cid) = (d.shim(&c.id), c.id.clone());
        let walk = tokio::task::spawn_blocking(move || {
            let _root = root;
            let _fd = fd;
            let w = http::BodyWriter(tx);
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            // Plain entries only: a PUT archive (images::unpack) takes no GNU sparse ones.
            b.sparse(false);
            // The descriptor's magic link must not be archived as a symlink: directories are
            // walked below it, a file is read through a reopened descriptor.
            let r = if is_dir {
                b.append_dir_all(&entry_name, &proc_path)
            } else {
                std::fs::File::open(&proc_path).and_then(|mut f| b.append_file(&entry_name, &mut f))
            };
            if let Err(e) = r.and_then(|_| b.finish()) {
                tracing::warn!("archive: {e}");
            }
        });
        tokio::spawn(async move {
            drop(walk.await);
            if freeze {
                if let Err(e) = shim.call_ok(&Request::Resume).await {
                    tracing::warn!("resume {cid} after copy: {e}");
                }
            }
        });
        resp
    };
    if let Ok(v) = HeaderValue::from_str(&stat_hdr) {
        resp.headers_mut().insert("x-docker-container-path-stat", v);
    }
    Ok(resp)
}

pub async fn archive_put(
    d: &Arc<Daemon>,
    c: &Arc<Ctr>,
    path: &str,
    body: Bytes,
) -> ApiResult<Resp> {
    if c.lock().host.readonly_rootfs && c.lock().state.status.is_live() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "container rootfs is marked read-only",
        ));
    }
    let root = container_root(d, c)?;
    let fd = open_in_root(&root.path, path)?;
    let dir = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    if !std::fs::metadata(&dir).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ApiError::bad_request(format!(
            "extraction point {path} is not a directory"
        )));
    }
    tokio::task::spawn_blocking(move || {
        let _root = root;
        let _fd = &fd;
        let opts = images::unpack::Options {
            no_sync: true,
            ..Default::default()
        };
        images::unpack::unpack_into(std::io::Cursor::new(body), &dir, &opts)
    })
    .await
    .map_err(|e| ApiError::internal(format!("extract archive: {e}")))?
    .map_err(|e| ApiError::bad_request(format!("extract archive into {path}: {e}")))?;
    Ok(empty(StatusCode::OK))
}
