//! `/images/...` and `/commit`: listing, inspect, history, pull (and import) with Docker's
//! JSON-lines progress, push, tag, remove, save, load, prune (in [`super::image_prune`]).

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use images::progress::{Event, Progress, Step};
use images::registry::{Auth, Options as RegistryOptions};
use images::Reference;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::daemon::Daemon;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, json, Req, Resp};

pub async fn list(d: &Arc<Daemon>, r: &Req) -> ApiResult<Resp> {
    // Of the listing filters only `dangling` is understood; others list everything.
    let filters: Value = r
        .q("filters")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(json!({}));
    let dangling = match &filters["dangling"] {
        Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_string),
        Value::Object(o) => o.keys().next().cloned(),
        _ => None,
    }
    .map(|v| v == "true" || v == "1");
    let imgs = d.list_images().await?;
    let out: Vec<Value> = imgs
        .iter()
        .filter(|i| dangling.is_none_or(|want| i.names.is_empty() == want))
        .map(|i| {
            let labels = serde_json::from_slice::<Value>(&i.resolved.config_bytes)
                .ok()
                .and_then(|v| v["config"]["Labels"].as_object().cloned());
            json!({
                "Id": i.id, "ParentId": "", "RepoTags": i.names, "RepoDigests": i.digests,
                "Created": i.created, "Size": i.size, "SharedSize": -1, "VirtualSize": i.size,
                "Labels": labels, "Containers": -1,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

pub async fn inspect(d: &Arc<Daemon>, name: &str) -> ApiResult<Resp> {
    let (reference, res) = d.find_image(name).await?;
    let cfg: Value = serde_json::from_slice(&res.config_bytes).unwrap_or(json!({}));
    let all = d.list_images().await?;
    let id = res.manifest.config.digest.to_string();
    let (tags, digests) = all
        .iter()
        .find(|i| i.id == id)
        .map(|i| (i.names.clone(), i.digests.clone()))
        .unwrap_or_default();
    let size: u64 = res.manifest.layers.iter().map(|l| l.size).sum();
    drop(reference);
    Ok(json(
        StatusCode::OK,
        &json!({
            "Id": id, "RepoTags": tags, "RepoDigests": digests, "Parent": "",
            "Comment": cfg["comment"].as_str().unwrap_or(""), "Created": cfg["created"],
            "Author": cfg["author"].as_str().unwrap_or(""), "Config": cfg["config"],
            "Architecture": cfg["architecture"], "Os": cfg["os"], "Variant": cfg["variant"],
            "Size": size, "VirtualSize": size,
            "GraphDriver": {"Name": "overlay", "Data": null},
            "RootFS": {"Type": "layers", "Layers": cfg["rootfs"]["diff_ids"]},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }),
    ))
}

pub async fn history(d: &Arc<Daemon>, name: &str) -> ApiResult<Resp> {
    let (_, res) = d.find_image(name).await?;
    let cfg: Value = serde_json::from_slice(&res.config_bytes).unwrap_or(json!({}));
    let hist = cfg["history"].as_array().cloned().unwrap_or_default();
    let mut layer = res.manifest.layers.iter().rev();
    let id = res.manifest.config.digest.to_string();
    let mut out = Vec::new();
    for (i, h) in hist.iter().rev().enumerate() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty {
            0
        } else {
            layer.next().map_or(0, |l| l.size)
        };
        let created = h["created"]
            .as_str()
            .and_then(crate::engine::images::parse_rfc3339)
            .unwrap_or(0);
        out.push(json!({
            "Id": if i == 0 { id.clone() } else { "<missing>".into() },
            "Created": created, "CreatedBy": h["created_by"], "Tags": null,
            "Size": size, "Comment": h["comment"].as_str().unwrap_or(""),
        }));
    }
    Ok(json(StatusCode::OK, &out))
}

fn auth_from_header(r: &Req) -> Auth {
    let Some(h) = r.header("x-registry-auth") else {
        return Auth::Anonymous;
    };
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(
            h.trim_end_matches('=').to_string()
                + &"=".repeat((4 - h.trim_end_matches('=').len() % 4) % 4),
        )
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&raw).unwrap_or(json!({}));
    match (
        v["username"].as_str(),
        v["password"].as_str(),
        v["identitytoken"].as_str(),
    ) {
        (_, _, Some(t)) if !t.is_empty() => Auth::Bearer(t.to_string()),
        (Some(u), Some(p), _) if !u.is_empty() => Auth::Basic {
            username: u.into(),
            password: p.into(),
        },
        _ => Auth::Anonymous,
    }
}

fn short(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Turns progress events into Docker's JSON-lines messages.
fn progress_line(e: &Event, push: bool) -> Option<Value> {
    let id = short(&e.id);
    let detail = |e: &Event| match e.total {
        Some(t) => json!({"current": e.done, "total": t}),
        None => json!({"current": e.done}),
    };
    Some(match e.step {
        Step::Resolving => return None,
        Step::Downloading => {
            json!({"status": "Downloading", "progressDetail": detail(e), "id": id})
        }
        Step::Uploading => json!({"status": "Pushing", "progressDetail": detail(e), "id": id}),
        Step::Writing => json!({"status": "Writing", "progressDetail": detail(e), "id": id}),
        Step::Verifying => json!({"status": "Verifying Checksum", "progressDetail": {}, "id": id}),
        Step::Unpacking => json!({"status": "Extracting", "progressDetail": detail(e), "id": id}),
        Step::Exists => {
            json!({"status": if push { "Layer already exists" } else { "Already exists" }, "progressDetail": {}, "id": id})
        }
        Step::Mounted => {
            json!({"status": "Mounted from another repository", "progressDetail": {}, "id": id})
        }
        Step::Done => {
            json!({"status": if push { "Pushed" } else { "Download complete" }, "progressDetail": {}, "id": id})
        }
    })
}

async fn send_line(tx: &mpsc::Sender<Bytes>, v: &Value) -> bool {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    tx.send(Bytes::from(b)).await.is_ok()
}

/// A progress sink that forwards events as JSON lines to the response body.
fn progress_to(tx: mpsc::Sender<Bytes>, push: bool) -> (Progress, tokio::task::JoinHandle<()>) {
    let (etx, mut erx) = mpsc::unbounded_channel::<Event>();
    let p = Progress::callback(move |e| {
        let _receiver_gone_means_client_gone = etx.send(e);
    });
    let task = tokio::spawn(async move {
        while let Some(e) = erx.recv().await {
            if let Some(v) = progress_line(&e, push) {
                if !send_line(&tx, &v).await {
                    return;
                }
            }
        }
    });
    (p, task)
}

/// Runs a registry operation on a current-thread runtime of its own (its future is not `Send`:
/// the registry client's stream closures borrow across awaits).
async fn on_own_runtime<T, F, Fut>(f: F) -> images::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = images::Result<T>>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| images::Error::Internal {
                step: "start registry runtime",
                reason: e.to_string(),
            })?;
        rt.block_on(f())
    })
    .await
    .map_err(|e| images::Error::Internal {
        step: "registry task",
        reason: e.to_string(),
    })?
}

fn registry_opts(d: &Daemon, r: &Req) -> ApiResult<RegistryOptions> {
    let mut o = RegistryOptions {
        auth: auth_from_header(r),
        insecure: d.cfg.insecure_registries.clone(),
        ..Default::default()
    };
    if let Some(p) = r.q("platform").filter(|p| !p.is_empty()) {
        o.platform = images::platform::Matcher::parse(p)?;
    }
    Ok(o)
}

pub async fn create(d: &Arc<Daemon>, mut r: Req) -> ApiResult<Resp> {
    if let Some(src) = r.q("fromSrc").map(str::to_string) {
        return import(d, r, &src).await;
    }
    let from = r
        .q("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("pull: missing query parameter fromImage"))?
        .to_string();
    let tag = r.q("tag").unwrap_or("").to_string();
    let full = if tag.is_empty() {
        from.clone()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let reference = Reference::parse(&full)?;
    let opts = registry_opts(d, &r)?;
    drop(r.body_bytes(0).await);
    let (resp, tx) = http::stream(StatusCode::OK, "application/json");
    let d = d.clone();
    tokio::spawn(async move {
        let tagname = reference.tag().unwrap_or("latest").to_string();
        send_line(
            &tx,
            &json!({"status": format!("Pulling from {}", reference.repository()), "id": tagname}),
        )
        .await;
        let (progress, task) = progress_to(tx.clone(), false);
        let before = d.images.images.get(&reference).ok();
        let result = {
            let (svc, r2, p2) = (d.images.clone(), reference.clone(), progress.clone());
            on_own_runtime(
                move || async move { images::registry::pull(&svc, &r2, &opts, &p2).await },
            )
            .await
        };
        drop(progress);
        drop(task.await);
        match result {
            Ok(rec) => {
                send_line(
                    &tx,
                    &json!({"status": format!("Digest: {}", rec.target.digest)}),
                )
                .await;
                let same = before.is_some_and(|b| b.target.digest == rec.target.digest);
                let msg = if same {
                    format!("Status: Image is up to date for {}", reference.familiar())
                } else {
                    format!(
                        "Status: Downloaded newer image for {}",
                        reference.familiar()
                    )
                };
                send_line(&tx, &json!({"status": msg})).await;
                d.emit("image", "pull", &reference.to_string(), vec![]);
            }
            Err(e) => {
                let m = e.to_string();
                send_line(&tx, &json!({"errorDetail": {"message": m}, "error": m})).await;
            }
        }
    });
    Ok(resp)
}

async fn import(d: &Arc<Daemon>, mut r: Req, src: &str) -> ApiResult<Resp> {
    if src != "-" {
        return Err(ApiError::bad_request(
            "import: only fromSrc=- (the tarball in the request body) is supported; this daemon does not download URLs",
        ));
    }
    let repo = r.q("repo").unwrap_or("").to_string();
    let tag = r.q("tag").unwrap_or("").to_string();
    let message = r.q("message").map(str::to_string);
    let changes = parse_changes(&r.q_all("changes"))?;
    // Without a repository the image is dangling (`<none>:<none>`), as Docker's.
    let target = if repo.is_empty() {
        None
    } else if tag.is_empty() {
        Some(Reference::parse(&repo)?)
    } else {
        Some(Reference::parse(&format!("{repo}:{tag}"))?)
    };
    let body = r.body_bytes(8 << 30).await?;
    let id = d
        .import_rootfs(body.to_vec(), target, changes, message)
        .await?;
    d.emit("image", "import", &id, vec![]);
    Ok(json(StatusCode::OK, &json!({"status": id})))
}

/// Dockerfile-style `--change` instructions (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`,
/// `EXPOSE`, `LABEL`, `VOLUME`, `STOPSIGNAL`) as config fields.
pub fn parse_changes(list: &[String]) -> ApiResult<Option<serde_json::Map<String, Value>>> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    let words = |s: &str| -> Value {
        match serde_json::from_str::<Vec<String>>(s) {
            Ok(v) => json!(v),
            Err(_) => json!(["/bin/sh", "-c", s]),
        }
    };
    for c in list {
        let (ins, arg) = c
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((c.trim(), ""));
        let arg = arg.trim();
        match ins.to_ascii_uppercase().as_str() {
            "CMD" => { m.insert("Cmd".into(), words(arg)); }
            "ENTRYPOINT" => { m.insert("Entrypoint".into(), words(arg)); }
            "WORKDIR" => { m.insert("WorkingDir".into(), json!(arg)); }
            "USER" => { m.insert("User".into(), json!(arg)); }
            "STOPSIGNAL" => { m.insert("StopSignal".into(), json!(arg)); }
            "ENV" => {
                let kv = arg.split_once('=').or_else(|| arg.split_once(' ')).ok_or_else(|| ApiError::bad_request(format!("invalid change {c:?}: ENV needs key=value")))?;
                let e = m.entry("Env").or_insert(json!([]));
                if let Some(a) = e.as_array_mut() { a.push(json!(format!("{}={}", kv.0, kv.1.trim()))); }
            }
            "EXPOSE" => {
                let e = m.entry("ExposedPorts").or_insert(json!({}));
                for p in arg.split_whitespace() {
                    let k = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                    e[k] = json!({});
                }
            }
            "VOLUME" => {
                let e = m.entry("Volumes").or_insert(json!({}));
                let paths: Vec<String> = serde_json::from_str(arg).unwrap_or_else(|_| arg.split_whitespace().map(str::to_string).collect());
                for p in paths { e[p] = json!({}); }
            }
            "LABEL" => {
                let e = m.entry("Labels").or_insert(json!({}));
                for kv in arg.split_whitespace() {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    e[k.to_string()] = json!(v.trim_matches('"'));
                }
            }
            o => return Err(ApiError::bad_request(format!("invalid change {c:?}: {o} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)"))),
        }
    }
    Ok(Some(m))
}

pub async fn push(d: &Arc<Daemon>, name: &str, r: Req) -> ApiResult<Resp> {
    let tag = r.q("tag").unwrap_or("").to_string();
    let full = if tag.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{tag}")
    };
    let reference = Reference::parse(&full)?;
    // The image must exist locally before anything streams.
    d.find_image(&reference.to_string()).await?;
    let opts = registry_opts(d, &r)?;
    let (resp, tx) = http::stream(StatusCode::OK, "application/json");
    let d = d.clone();
    tokio::spawn(async move {
        send_line(
            &tx,
            &json!({"status": format!("The push refers to repository [{}]", reference.name())}),
        )
        .await;
        let (progress, task) = progress_to(tx.clone(), true);
        let result = {
            let (svc, r2, p2) = (d.images.clone(), reference.clone(), progress.clone());
            on_own_runtime(move || async move {
                images::registry::push(&svc, &r2, &r2, &opts, &p2).await
            })
            .await
        };
        drop(progress);
        drop(task.await);
        match result {
            Ok(desc) => {
                let t = reference.tag().unwrap_or("latest").to_string();
                send_line(
                    &tx,
                    &json!({"status": format!("{t}: digest: {} size: {}", desc.digest, desc.size)}),
                )
                .await;
                send_line(&tx, &json!({"progressDetail": {}, "aux": {"Tag": t, "Digest": desc.digest.to_string(), "Size": desc.size}})).await;
                d.emit("image", "push", &reference.to_string(), vec![]);
            }
            Err(e) => {
                let m = e.to_string();
                send_line(&tx, &json!({"errorDetail": {"message": m}, "error": m})).await;
            }
        }
    });
    Ok(resp)
}

pub async fn tag(d: &Arc<Daemon>, name: &str, r: &Req) -> ApiResult<Resp> {
    let (_, res) = d.find_image(name).await?;
    let repo = r
        .q("repo")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("tag: missing query parameter repo"))?;
    let full = match r.q("tag").filter(|s| !s.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let target = Reference::parse(&full)?;
    d.images.images.put(
        &target,
        res.record.target.clone(),
        res.record.labels.clone(),
    )?;
    d.emit(
        "image",
        "tag",
        res.manifest.config.digest.as_ref(),
        vec![("name".into(), target.familiar())],
    );
    Ok(http::empty(StatusCode::CREATED))
}

pub async fn remove(d: &Arc<Daemon>, name: &str, r: &Req) -> ApiResult<Resp> {
    let force = r.q_bool("force");
    let (reference, res) = d.find_image(name).await?;
    let id = res.manifest.config.digest.to_string();
    // Names pointing at this image: removing by id removes them all (with force if several).
    let all = d.list_images().await?;
    let names: Vec<String> = all
        .iter()
        .find(|i| i.id == id)
        .map(|i| i.names.clone())
        .unwrap_or_default();
    let by_id = name
        .trim_start_matches("sha256:")
        .chars()
        .all(|c| c.is_ascii_hexdigit())
        && !names.iter().any(|n| n == name);
    let targets: Vec<String> = if by_id {
        d.images
            .images
            .list()?
            .into_iter()
            .filter(|rec| {
                Reference::parse(&rec.name)
                    .ok()
                    .and_then(|r| d.images.resolve_host(&r).ok())
                    .is_some_and(|x| x.manifest.config.digest.to_string() == id)
            })
            .map(|rec| rec.name)
            .collect()
    } else {
        vec![reference.clone()]
    };
    if by_id && targets.len() > 1 && !force {
        return Err(ApiError::conflict(format!("conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories", short(&id))));
    }
    let last_name = targets.len() >= names.len().max(1);
    if last_name {
        if let Some(c) = d.all_containers().iter().find(|c| c.lock().image_id == id) {
            let running = c.lock().state.status.is_live();
            if running || !force {
                return Err(ApiError::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by {} container {}",
                    short(&id), if running { "running" } else { "stopped" }, &c.id[..12]
                )));
            }
        }
    }
    let mut out = Vec::new();
    for t in &targets {
        let rf = Reference::parse(t)?;
        d.images.images.delete(&rf)?;
        if !images::image_store::is_dangling_name(t) {
            out.push(json!({"Untagged": rf.familiar()}));
        }
    }
    if last_name {
        out.push(json!({"Deleted": id}));
        let svc = d.images.clone();
        drop(tokio::task::spawn_blocking(move || svc.gc()).await);
    }
    d.emit("image", "delete", &id, vec![]);
    Ok(json(StatusCode::OK, &out))
}

pub async fn save(d: &Arc<Daemon>, names: &[String]) -> ApiResult<Resp> {
    if names.is_empty() {
        return Err(ApiError::bad_request("save: no image names given"));
    }
    let mut refs = Vec::new();
    for n in names {
        let (r, _) = d.find_image(n).await?;
        refs.push(Reference::parse(&r)?);
    }
    let (resp, tx) = http::stream(StatusCode::OK, "application/x-tar");
    let svc = d.images.clone();
    tokio::task::spawn_blocking(move || {
        let w = http::BodyWriter(tx);
        if let Err(e) = images::archive::save(
            &svc,
            &refs,
            images::archive::Format::DockerArchive,
            w,
            &Progress::none(),
        ) {
            tracing::warn!("save: {e}");
        }
    });
    Ok(resp)
}

pub async fn load(d: &Arc<Daemon>, mut r: Req) -> ApiResult<Resp> {
    // `quiet` only hides per-layer progress, which this endpoint does not send.
    let body = r.body_bytes(16 << 30).await?;
    let svc = d.images.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        images::archive::load(&svc, std::io::Cursor::new(body), &Progress::none())
    })
    .await
    .map_err(|e| ApiError::internal(format!("load: {e}")))?
    .map_err(|e| ApiError::from(e).context("load"))?;
    let mut out = Vec::new();
    for l in &loaded {
        let v = json!({"stream": format!("Loaded image: {}\n", l.name.familiar())});
        out.extend(serde_json::to_vec(&v).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        d.emit("image", "load", &l.name.to_string(), vec![]);
    }
    Ok(http::with_type(StatusCode::OK, "application/json", out))
}

pub async fn commit(d: &Arc<Daemon>, mut r: Req) -> ApiResult<Resp> {
    let cid = r
        .q("container")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("commit: missing query parameter container"))?
        .to_string();
    let c = d.lookup(&cid)?;
    let repo = r.q("repo").map(str::to_string);
    let tag = r.q("tag").map(str::to_string);
    let comment = r.q("comment").map(str::to_string).filter(|s| !s.is_empty());
    let author = r.q("author").map(str::to_string).filter(|s| !s.is_empty());
    let mut changes = parse_changes(&r.q_all("changes"))?;
    let body: Value = r.json().await.unwrap_or(json!({}));
    if let Some(o) = body.as_object().filter(|o| !o.is_empty()) {
        let m = changes.get_or_insert_with(serde_json::Map::new);
        for k in [
            "Cmd",
            "Entrypoint",
            "Env",
            "WorkingDir",
            "User",
            "Labels",
            "ExposedPorts",
            "Volumes",
        ] {
            if let Some(v) = o.get(k).filter(|v| !v.is_null()) {
                m.insert(k.to_string(), v.clone());
            }
        }
    }
    let pause = r.q("pause").is_none_or(|p| p != "0" && p != "false");
    let paused_here = pause
        && c.lock().state.status == crate::engine::model::Status::Running
        && d.pause_container(&c, true).await.is_ok();
    let result = d
        .commit_container(&c, repo, tag, comment, author, changes)
        .await;
    if paused_here {
        drop(d.pause_container(&c, false).await);
    }
    let id = result?;
    Ok(json(StatusCode::CREATED, &json!({"Id": id})))
}
