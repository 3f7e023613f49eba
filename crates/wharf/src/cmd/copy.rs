//! `cp` (tar archives through `/containers/{id}/archive`, with docker's rename rules) and
//! `commit`. Archives stream: from a container into [`archive::unpack`] on the host, from
//! [`archive::build`] into a container, from one container into another (through
//! [`archive::rebase`] when the top entry is renamed), and `-` for a tar on stdin or stdout.
//! At most a few channel chunks of an archive are in memory at once.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use hyper::body::Incoming;
use hyper::Method;
use serde_json::Value;
use tokio::sync::mpsc;

use super::run::split_ref;
use crate::archive::{self, ChannelReader, Chunk};
use crate::cli::{CommitArgs, CpArgs};
use crate::client::{next_chunk, path_seg, Body, Client, Query};
use crate::error::{Error, Result};
use crate::output::human_size;

/// `ctr:/path` → Some((ctr, /path)); local paths (absolute, `./x`, no colon) → None.
fn split_cp(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// Whether the stat the daemon sends with HEAD/GET archive is a directory's.
fn stat_is_dir(resp: &hyper::Response<Incoming>) -> bool {
    resp.headers()
        .get("x-docker-container-path-stat")
        .and_then(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h.as_bytes())
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["mode"].as_u64())
        .is_some_and(|m| m & 0x8000_0000 != 0)
}

fn base_name(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map_or_else(|| ".".to_string(), |n| n.to_string_lossy().into_owned())
}

fn archive_path(ctr: &str) -> String {
    format!("/containers/{}/archive", path_seg(ctr))
}

/// A blocking task's result, its panic or cancellation included.
async fn joined<T>(h: tokio::task::JoinHandle<std::io::Result<T>>, what: &str) -> Result<T> {
    match h.await {
        Ok(r) => r.map_err(|e| Error::io(what.to_string(), e)),
        Err(e) => Err(Error::io(what.to_string(), std::io::Error::other(e))),
    }
}

pub async fn cp(c: &Client, a: CpArgs) -> Result<()> {
    match (split_cp(&a.src), split_cp(&a.dst)) {
        (Some((ctr, path)), None) => from_container(c, ctr, path, &a).await,
        (None, Some((ctr, path))) => to_container(c, ctr, path, &a).await,
        (Some(src), Some(dst)) => between_containers(c, src, dst, &a).await,
        (None, None) => Err(Error::usage(
            "must specify at least one container source (CONTAINER:PATH)",
        )),
    }
}

/// `GET` archive: the container path's tar stream.
async fn get_archive(c: &Client, ctr: &str, path: &str) -> Result<Incoming> {
    let q = Query::new().add("path", path);
    let resp = c
        .request(Method::GET, &archive_path(ctr), q, Body::Empty, &[])
        .await?;
    Ok(resp.into_body())
}

/// Whether a container path is a directory; `None` when it does not exist.
async fn stat_dir(c: &Client, ctr: &str, path: &str) -> Result<Option<bool>> {
    let q = Query::new().add("path", path);
    match c
        .request(Method::HEAD, &archive_path(ctr), q, Body::Empty, &[])
        .await
    {
        Ok(r) => Ok(Some(stat_is_dir(&r))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where a copy into `ctr:path` lands, docker's way: into `path` keeping the source's name
/// when `path` is a directory, else into its parent under `path`'s own name. Returns the
/// directory to extract into and the name the archive's top entry must have.
async fn put_target(
    c: &Client,
    ctr: &str,
    path: &str,
    src_is_dir: bool,
    src_name: &str,
) -> Result<(String, String)> {
    match stat_dir(c, ctr, path).await? {
        Some(true) => Ok((path.to_string(), src_name.to_string())),
        Some(false) if src_is_dir => Err(Error::usage(format!(
            "cannot copy a directory to the file {ctr}:{path}"
        ))),
        _ if path.ends_with('/') => Err(Error::usage(format!(
            "destination directory {ctr}:{path} does not exist"
        ))),
        _ => {
            let parent = Path::new(path)
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".to_string());
            Ok((parent, base_name(path)))
        }
    }
}

/// `PUT` archive: extracts the streamed tar `body` into the container directory `dir`.
async fn put_archive(c: &Client, ctr: &str, dir: &str, body: Body, copy_ids: bool) -> Result<()> {
    let q = Query::new().add("path", dir).flag("copyUIDGID", copy_ids);
    c.request(
        Method::PUT,
        &archive_path(ctr),
        q,
        body,
        &[("content-type", "application/x-tar")],
    )
    .await?;
    Ok(())
}

/// Forwards a response body into `tx`, returning the bytes forwarded. A read error is
/// forwarded as well (the consumer fails on it) and returned; a consumer that went away ends
/// the pump early without error (its own result says why).
async fn pump(mut body: Incoming, tx: mpsc::Sender<Chunk>) -> Result<u64> {
    let mut n = 0u64;
    loop {
        match next_chunk(&mut body).await {
            Ok(Some(b)) => {
                n += b.len() as u64;
                if tx.send(Ok(b)).await.is_err() {
                    return Ok(n);
                }
            }
            Ok(None) => return Ok(n),
            Err(e) => {
                drop(tx.send(Err(std::io::Error::other(e.to_string()))).await);
                return Err(e);
            }
        }
    }
}

/// The tar stream in `rx`, with its top entry renamed from `from` to `to` when they differ,
/// for blocking code: either `rx` itself or the output of a rebasing thread.
fn renaming(
    rx: mpsc::Receiver<Chunk>,
    from: &str,
    to: &str,
) -> (
    ChannelReader,
    Option<std::thread::JoinHandle<std::io::Result<u64>>>,
) {
    if from == to {
        return (ChannelReader::new(rx), None);
    }
    let (tx2, rx2) = archive::channel();
    let (from, to) = (from.to_string(), to.to_string());
    let t = std::thread::spawn(move || {
        archive::produce(tx2, |w| {
            archive::rebase(ChannelReader::new(rx), w, &from, &to)
        })
    });
    (ChannelReader::new(rx2), Some(t))
}

/// The error to report when a producer feeds a consumer: the producer's, unless it failed
/// only because the consumer had gone away (then the consumer's says why).
fn cause<T>(producer: Result<T>, consumer: Result<()>) -> Result<T> {
    match (producer, consumer) {
        (Ok(t), Ok(())) => Ok(t),
        (Err(Error::Io { source, .. }), Err(e))
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Err(e)
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

async fn from_container(c: &Client, ctr: &str, path: &str, a: &CpArgs) -> Result<()> {
    let mut body = get_archive(c, ctr, path).await?;
    if a.dst == "-" {
        while let Some(chunk) = next_chunk(&mut body).await? {
            crate::stdio::write_out(&chunk)?;
        }
        return Ok(());
    }
    let dst = PathBuf::from(&a.dst);
    let from = base_name(path);
    let (dir, to) = if dst.is_dir() {
        (dst.clone(), from.clone())
    } else {
        let parent = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !parent.is_dir() {
            return Err(Error::usage(format!(
                "destination directory {} does not exist",
                parent.display()
            )));
        }
        (parent, base_name(&a.dst))
    };
    let (tx, rx) = archive::channel();
    let keep_ids = a.archive;
    let unpack = tokio::task::spawn_blocking(move || {
        let (reader, rebasing) = renaming(rx, &from, &to);
        let unpacked = archive::unpack(reader, &dir, keep_ids);
        let rebased = match rebasing.map(|t| t.join()) {
            None => Ok(0),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the renaming thread panicked")),
        };
        match (rebased, unpacked) {
            (Err(e), Err(u)) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(u),
            (Err(e), _) => Err(e),
            (Ok(_), u) => u,
        }
    });
    let sent = pump(body, tx).await;
    let unpacked = joined(unpack, &format!("extract into {}", a.dst)).await;
    let n = cause(sent, unpacked)?;
    if !a.quiet {
        eprintln!("Successfully copied {} to {}", human_size(n as i64), a.dst);
    }
    Ok(())
}

/// Stdin's bytes as a stream (a blocking read on a thread of its own).
fn stdin_stream(tx: mpsc::Sender<Chunk>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let chunk = match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => Ok(bytes::Bytes::copy_from_slice(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
}

async fn to_container(c: &Client, ctr: &str, path: &str, a: &CpArgs) -> Result<()> {
    let (tx, rx) = archive::channel();
    if a.src == "-" {
        // A tar on stdin is extracted as it is into `path`, which must be a directory.
        stdin_stream(tx);
        return put_archive(c, ctr, path, Body::Stream(rx), a.archive).await;
    }
    let src = PathBuf::from(&a.src);
    let meta = if a.follow_link {
        std::fs::metadata(&src)
    } else {
        std::fs::symlink_metadata(&src)
    }
    .map_err(|e| Error::io(format!("stat {}", src.display()), e))?;
    let (dest, name) = put_target(c, ctr, path, meta.is_dir(), &base_name(&a.src)).await?;
    let follow = a.follow_link;
    let build = tokio::task::spawn_blocking(move || {
        archive::produce(tx, |w| archive::build(w, &src, &name, follow))
    });
    let put = put_archive(c, ctr, &dest, Body::Stream(rx), a.archive).await;
    // A failed build also fails the request; its own error says why.
    let n = cause(joined(build, &format!("archive {}", a.src)).await, put)?;
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {ctr}:{path}",
            human_size(n as i64)
        );
    }
    Ok(())
}

async fn between_containers(
    c: &Client,
    (sctr, spath): (&str, &str),
    (dctr, dpath): (&str, &str),
    a: &CpArgs,
) -> Result<()> {
    let src_is_dir = stat_dir(c, sctr, spath)
        .await?
        .ok_or_else(|| Error::Daemon {
            status: 404,
            message: format!("Could not find the file {spath} in container {sctr}"),
        })?;
    let from = base_name(spath);
    let (dest, to) = put_target(c, dctr, dpath, src_is_dir, &from).await?;
    let body = get_archive(c, sctr, spath).await?;
    let (tx, rx) = archive::channel();
    // Renaming needs the archive parsed and rewritten; otherwise the bytes pass straight on.
    let (pump_tx, rebase) = if from == to {
        (tx, None)
    } else {
        let (tx1, rx1) = archive::channel();
        let t = tokio::task::spawn_blocking(move || {
            archive::produce(tx, |w| {
                archive::rebase(ChannelReader::new(rx1), w, &from, &to)
            })
        });
        (tx1, Some(t))
    };
    let (put, sent) = tokio::join!(
        put_archive(c, dctr, &dest, Body::Stream(rx), a.archive),
        pump(body, pump_tx)
    );
    let n = sent?;
    match rebase {
        Some(t) => cause(joined(t, "rename the archive's entries").await, put).map(drop)?,
        None => put?,
    }
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {dctr}:{dpath}",
            human_size(n as i64)
        );
    }
    Ok(())
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<()> {
    let mut q = Query::new()
        .add("container", a.container.clone())
        .opt("author", a.author.as_deref().unwrap_or(""))
        .opt("comment", a.message.as_deref().unwrap_or(""))
        .add("pause", if a.pause { "1" } else { "0" });
    if let Some(r) = &a.repository {
        let (repo, tag) = split_ref(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    for ch in &a.change {
        q = q.add("changes", ch.clone());
    }
    let v = c.post("/commit", q, None).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(split_cp("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_cp("/tmp/a:b"), None);
        assert_eq!(split_cp("./a:b"), None);
        assert_eq!(split_cp("file"), None);
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/"), ".");
    }
}
