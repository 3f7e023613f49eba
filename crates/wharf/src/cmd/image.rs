//! Image verbs: pull, push, images, rmi, tag, history, save, load, import, prune.

use std::io::{IsTerminal, Read};

use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::run::{pull_image, pull_stream, split_ref};
use super::{confirm, each, filters, short_id};
use crate::cli::{
    HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, PullArgs, PushArgs, RmiArgs,
    SaveArgs,
};
use crate::client::{next_chunk, path_seg, Body, Client, JsonLines, Query};
use crate::error::{Error, Result};
use crate::output::{self, ago, human_size, Format};
use crate::progress::{self, Target};

pub async fn pull(c: &Client, a: PullArgs) -> Result<()> {
    if a.quiet {
        let mut lines = pull_stream(c, &a.name, a.platform.as_deref()).await?;
        while let Some(m) = lines.next().await? {
            if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
                return Err(Error::Stream(e.to_string()));
            }
        }
    } else {
        pull_image(c, &a.name, a.platform.as_deref(), Target::Stdout).await?;
    }
    let (repo, tag) = split_ref(&a.name);
    let sep = if tag.starts_with("sha256:") { "@" } else { ":" };
    println!("{repo}{sep}{tag}");
    Ok(())
}

pub async fn push(c: &Client, a: PushArgs) -> Result<()> {
    let (repo, tag) = split_ref(&a.name);
    let q = Query::new().add("tag", tag);
    let resp = c
        .request(
            Method::POST,
            &format!("/images/{}/push", path_seg(&repo)),
            q,
            Body::Empty,
            &[("x-registry-auth", "e30=")],
        )
        .await?;
    let aux = if a.quiet {
        let mut lines = JsonLines::new(resp);
        while let Some(m) = lines.next().await? {
            if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
                return Err(Error::Stream(e.to_string()));
            }
        }
        Vec::new()
    } else {
        progress::display(JsonLines::new(resp), Target::Stdout).await?
    };
    if a.quiet {
        println!("{}", a.name);
    }
    drop(aux);
    Ok(())
}

/// Rows of `images`: one per tag (`<none>` when untagged).
fn image_rows(list: &[Value], a: &ImagesArgs) -> Vec<Value> {
    let mut rows = Vec::new();
    for v in list {
        let id = v["Id"].as_str().unwrap_or("");
        let created = v["Created"].as_i64().unwrap_or(0);
        let digests: Vec<&str> = v["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut tags: Vec<(String, String)> = v["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(split_ref)
            .collect();
        if tags.is_empty() {
            tags.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in tags {
            if let Some(r) = &a.reference {
                let (want_repo, want_tag) = split_ref(r);
                let tag_given = r.contains(':') && !r.ends_with('/');
                if repo != want_repo && !repo.ends_with(&format!("/{want_repo}")) {
                    continue;
                }
                if tag_given && tag != want_tag {
                    continue;
                }
            }
            let digest = digests
                .iter()
                .find(|d| d.starts_with(&format!("{repo}@")))
                .and_then(|d| d.split_once('@').map(|x| x.1))
                .unwrap_or("<none>");
            rows.push(json!({
                "ID": short_id(id, a.no_trunc), "Repository": repo, "Tag": tag, "Digest": digest,
                "CreatedSince": ago(created), "CreatedAt": created,
                "Size": human_size(v["Size"].as_i64().unwrap_or(0)),
                "Containers": v["Containers"].as_i64().map_or("N/A".to_string(), |n| if n < 0 { "N/A".into() } else { n.to_string() }),
            }));
        }
    }
    rows
}

pub async fn images(c: &Client, a: ImagesArgs) -> Result<()> {
    let q = Query::new()
        .flag("all", a.all)
        .opt("filters", &filters(&a.filter)?);
    let list: Vec<Value> = c.get("/images/json", q).await?;
    let rows = image_rows(&list, &a);
    if a.quiet {
        let mut ids: Vec<String> = rows.iter().map(|r| output::cell(&r["ID"])).collect();
        ids.dedup();
        return output::print_str(&ids.iter().map(|i| format!("{i}\n")).collect::<String>());
    }
    let mut cols = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if a.digests {
        cols.push(("DIGEST", "Digest"));
    }
    cols.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    output::print_rows(&rows, &Format::parse(a.format.as_deref()), &cols)
}

pub async fn rmi(c: &Client, a: RmiArgs) -> Result<()> {
    each(&a.names, false, |n| {
        let q = Query::new()
            .flag("force", a.force)
            .flag("noprune", a.no_prune);
        async move {
            let v = c.delete(&format!("/images/{}", path_seg(&n)), q).await?;
            for item in v.as_array().into_iter().flatten() {
                if let Some(u) = item["Untagged"].as_str() {
                    println!("Untagged: {u}");
                }
                if let Some(d) = item["Deleted"].as_str() {
                    println!("Deleted: {d}");
                }
            }
            Ok(())
        }
    })
    .await
}

pub async fn tag(c: &Client, source: &str, target: &str) -> Result<()> {
    let (repo, tag) = split_ref(target);
    let q = Query::new().add("repo", repo).add("tag", tag);
    c.post(&format!("/images/{}/tag", path_seg(source)), q, None)
        .await
        .map(drop)
}

pub async fn history(c: &Client, a: HistoryArgs) -> Result<()> {
    let list: Vec<Value> = c
        .get(
            &format!("/images/{}/history", path_seg(&a.image)),
            Query::new(),
        )
        .await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" {
                id.to_string()
            } else {
                short_id(id, a.no_trunc)
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("");
            let by = if a.no_trunc || by.chars().count() <= 45 {
                by.to_string()
            } else {
                format!("{}…", by.chars().take(44).collect::<String>())
            };
            let size = h["Size"].as_i64().unwrap_or(0);
            json!({
                "ID": id, "CreatedSince": if a.human { ago(created) } else { created.to_string() },
                "CreatedAt": created, "CreatedBy": by, "Comment": h["Comment"],
                "Size": if a.human { human_size(size) } else { size.to_string() },
            })
        })
        .collect();
    if a.quiet {
        return output::print_column(&rows, "ID");
    }
    output::print_rows(
        &rows,
        &Format::parse(a.format.as_deref()),
        &[
            ("IMAGE", "ID"),
            ("CREATED", "CreatedSince"),
            ("CREATED BY", "CreatedBy"),
            ("SIZE", "Size"),
            ("COMMENT", "Comment"),
        ],
    )
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i.clone());
    }
    let resp = c
        .request(Method::GET, "/images/get", q, Body::Empty, &[])
        .await?;
    let mut body = resp.into_body();
    let mut out: Box<dyn std::io::Write> = match &a.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).map_err(|e| Error::io(format!("create {p}"), e))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = next_chunk(&mut body).await? {
        out.write_all(&chunk)
            .map_err(|e| Error::io("write archive", e))?;
    }
    out.flush().map_err(|e| Error::io("write archive", e))
}

/// Streams a file (or stdin for `None`/`-`) as a chunked request body.
fn stream_file(path: Option<&str>) -> Result<Body> {
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(8);
    match path.filter(|p| *p != "-") {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| Error::io(format!("open {p}"), e))?;
            tokio::spawn(async move {
                let mut f = tokio::fs::File::from_std(f);
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = f.read(&mut buf).await {
                    if n == 0
                        || tx
                            .send(bytes::Bytes::copy_from_slice(&buf[..n]))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Error::usage(
                    "requested load from stdin, but stdin is empty (use -i FILE or a pipe)",
                ));
            }
            std::thread::spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = stdin.read(&mut buf) {
                    if n == 0
                        || tx
                            .blocking_send(bytes::Bytes::copy_from_slice(&buf[..n]))
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    }
    Ok(Body::Channel(rx))
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<()> {
    let body = stream_file(a.input.as_deref())?;
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let q = Query::new().add("quiet", if quiet { "1" } else { "0" });
    let resp = c
        .request(
            Method::POST,
            "/images/load",
            q,
            body,
            &[("content-type", "application/x-tar")],
        )
        .await?;
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if is_json {
        progress::display(JsonLines::new(resp), Target::Stdout).await?;
    } else {
        let b = crate::client::read_all(resp).await?;
        crate::stdio::write_out(&b)?;
    }
    Ok(())
}

pub async fn import(c: &Client, a: ImportArgs) -> Result<()> {
    let body = stream_file(Some(a.file.as_str()))?;
    let mut q = Query::new()
        .add("fromSrc", "-")
        .opt("message", a.message.as_deref().unwrap_or(""));
    q = q.opt("platform", a.platform.as_deref().unwrap_or(""));
    if let Some(r) = &a.repository {
        let (repo, tag) = split_ref(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    for ch in &a.change {
        q = q.add("changes", ch.clone());
    }
    let resp = c
        .request(
            Method::POST,
            "/images/create",
            q,
            body,
            &[("content-type", "application/x-tar")],
        )
        .await?;
    let mut lines = JsonLines::new(resp);
    while let Some(m) = lines.next().await? {
        if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
            return Err(Error::Stream(e.to_string()));
        }
        if let Some(s) = m["status"].as_str() {
            println!("{s}");
        }
    }
    Ok(())
}

pub async fn prune(c: &Client, a: ImagePruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirm(a.prune.force, warning)? {
        return Ok(());
    }
    let mut f = a.prune.filter.clone();
    f.push(format!("dangling={}", !a.all));
    let v = c
        .post(
            "/images/prune",
            Query::new().opt("filters", &filters(&f)?),
            None,
        )
        .await?;
    output::print_str(&prune_report(&v))
}

pub fn prune_report(v: &Value) -> String {
    let mut s = String::new();
    if let Some(items) = v["ImagesDeleted"].as_array().filter(|a| !a.is_empty()) {
        s.push_str("Deleted Images:\n");
        for i in items {
            if let Some(u) = i["Untagged"].as_str() {
                s.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(d) = i["Deleted"].as_str() {
                s.push_str(&format!("deleted: {d}\n"));
            }
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    ));
    s
}
