//! `cp` (tar archives through `/containers/{id}/archive`, both directions, with docker's
//! rename rules) and `commit`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use hyper::Method;
use serde_json::Value;

use super::run::split_ref;
use crate::cli::{CommitArgs, CpArgs};
use crate::client::{path_seg, read_all, Body, Client, Query};
use crate::error::{Error, Result};
use crate::output::human_size;

/// `ctr:/path` → Some((ctr, /path)); local paths (absolute, `./x`, no colon) → None.
fn split_cp(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// The stat the daemon sends with HEAD/GET archive: (is_dir).
fn stat_is_dir(resp: &hyper::Response<hyper::body::Incoming>) -> bool {
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

/// An entry path renamed from `from` to `to` at its first component; refuses `..` and
/// absolute paths (a hostile archive must not write outside the destination).
fn renamed(entry: &Path, from: &str, to: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for (i, c) in entry.components().enumerate() {
        match c {
            Component::Normal(n) if i == 0 && n == from => out.push(to),
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn extract(tar_bytes: &[u8], dest_dir: &Path, from: &str, to: &str, archive: bool) -> Result<()> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.set_preserve_ownerships(archive);
    ar.set_preserve_permissions(true);
    let entries = ar
        .entries()
        .map_err(|e| Error::io("read archive from the container", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("read archive entry", e))?;
        let path = entry
            .path()
            .map_err(|e| Error::io("archive entry path", e))?
            .into_owned();
        let rel = renamed(&path, from, to).ok_or_else(|| {
            Error::Stream(format!(
                "archive entry {} escapes the destination",
                path.display()
            ))
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest_dir.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
        }
        entry
            .unpack(&target)
            .map_err(|e| Error::io(format!("write {}", target.display()), e))?;
    }
    Ok(())
}

fn make_tar(src: &Path, name: &str, follow: bool) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(src)
        .map_err(|e| Error::io(format!("stat {}", src.display()), e))?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let r = if meta.is_dir() {
        b.append_dir_all(name, src)
    } else {
        b.append_path_with_name(src, name)
    };
    r.map_err(|e| Error::io(format!("archive {}", src.display()), e))?;
    b.into_inner().map_err(|e| Error::io("finish archive", e))
}

pub async fn cp(c: &Client, a: CpArgs) -> Result<()> {
    match (split_cp(&a.src), split_cp(&a.dst)) {
        (Some((ctr, path)), None) => from_container(c, ctr, path, &a).await,
        (None, Some((ctr, path))) => to_container(c, ctr, path, &a).await,
        (Some(_), Some(_)) => Err(Error::usage("copying between containers is not supported")),
        (None, None) => Err(Error::usage(
            "must specify at least one container source (CONTAINER:PATH)",
        )),
    }
}

async fn from_container(c: &Client, ctr: &str, path: &str, a: &CpArgs) -> Result<()> {
    let q = Query::new().add("path", path);
    let resp = c
        .request(
            Method::GET,
            &format!("/containers/{}/archive", path_seg(ctr)),
            q,
            Body::Empty,
            &[],
        )
        .await?;
    let tar_bytes = read_all(resp).await?;
    if a.dst == "-" {
        return crate::stdio::write_out(&tar_bytes);
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
    extract(&tar_bytes, &dir, &from, &to, a.archive)?;
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {}",
            human_size(tar_bytes.len() as i64),
            a.dst
        );
    }
    Ok(())
}

async fn to_container(c: &Client, ctr: &str, path: &str, a: &CpArgs) -> Result<()> {
    let archive_path = format!("/containers/{}/archive", path_seg(ctr));
    let (body, dest) = if a.src == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| Error::io("read tar from stdin", e))?;
        (b, path.to_string())
    } else {
        let src = PathBuf::from(&a.src);
        let src_is_dir = std::fs::metadata(&src).map(|m| m.is_dir()).unwrap_or(false);
        let stat = c
            .request(
                Method::HEAD,
                &archive_path,
                Query::new().add("path", path),
                Body::Empty,
                &[],
            )
            .await;
        let (dest, name) = match stat {
            Ok(r) if stat_is_dir(&r) => (path.to_string(), base_name(&a.src)),
            Ok(_) if src_is_dir => {
                return Err(Error::usage(format!(
                    "cannot copy a directory to the file {ctr}:{path}"
                )));
            }
            Err(e) if !e.is_not_found() => return Err(e),
            _ => {
                if path.ends_with('/') {
                    return Err(Error::usage(format!(
                        "destination directory {ctr}:{path} does not exist"
                    )));
                }
                let parent = Path::new(path)
                    .parent()
                    .map_or("/".to_string(), |p| p.display().to_string());
                let parent = if parent.is_empty() {
                    "/".to_string()
                } else {
                    parent
                };
                (parent, base_name(path))
            }
        };
        (make_tar(&src, &name, a.follow_link)?, dest)
    };
    let n = body.len();
    let q = Query::new().add("path", dest).flag("copyUIDGID", a.archive);
    c.request(
        Method::PUT,
        &archive_path,
        q,
        Body::Full(Some(body.into())),
        &[("content-type", "application/x-tar")],
    )
    .await?;
    if !a.quiet && a.src != "-" {
        eprintln!(
            "Successfully copied {} to {ctr}:{path}",
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

    #[test]
    fn renames_and_refuses_escapes() {
        assert_eq!(
            renamed(Path::new("hosts"), "hosts", "h2"),
            Some(PathBuf::from("h2"))
        );
        assert_eq!(
            renamed(Path::new("etc/a/b"), "etc", "x"),
            Some(PathBuf::from("x/a/b"))
        );
        assert_eq!(renamed(Path::new("../evil"), "a", "b"), None);
        assert_eq!(renamed(Path::new("/abs"), "a", "b"), None);
    }

    #[test]
    fn tar_round_trip() {
        let d = tempfile::tempdir().expect("tempdir");
        let src = d.path().join("dir");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("sub/f"), b"data").expect("write");
        let t = make_tar(&src, "dir", false).expect("tar");
        let out = d.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        extract(&t, &out, "dir", "renamed", false).expect("extract");
        assert_eq!(
            std::fs::read(out.join("renamed/sub/f")).expect("read"),
            b"data"
        );
    }
}
