//! Images as the engine sees them: lookup by name or id, the listing, import of a root
//! filesystem tarball, commit of a container, and prune of the images no container uses.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use images::image_store::ImageRecord;
use images::service::Resolved;
use images::Reference;

use crate::daemon::{Ctr, Daemon};
use crate::error::{ApiError, ApiResult};

/// Which images `image prune` removes, besides "no container uses it".
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// Only images without a tag (Docker's default; `-a` sends `dangling=false`).
    pub dangling_only: bool,
    /// Only images created before this time (seconds since the epoch).
    pub until: Option<u64>,
    /// Only images whose config labels match every one of these.
    pub labels: Vec<LabelFilter>,
}

/// `label=key`, `label=key=value`, or their negations (`label!=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
    pub negate: bool,
}

impl LabelFilter {
    pub fn parse(s: &str, negate: bool) -> LabelFilter {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (s.to_string(), None),
        };
        LabelFilter { key, value, negate }
    }

    fn matches(&self, labels: &serde_json::Map<String, serde_json::Value>) -> bool {
        let hit = match (labels.get(&self.key), &self.value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(want)) => v.as_str() == Some(want.as_str()),
        };
        hit != self.negate
    }
}

/// One line of Docker's prune answer, in its order: an image's names, then the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pruned {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Default)]
pub struct PruneReport {
    pub items: Vec<Pruned>,
    /// Bytes of content-store blobs that garbage collection freed.
    pub reclaimed: u64,
}

/// One image for listings: every name pointing at the same config is one image.
pub struct ImageSummary {
    pub id: String,
    pub names: Vec<String>,
    pub digests: Vec<String>,
    pub created: u64,
    pub size: u64,
    pub resolved: Resolved,
}

impl Daemon {
    /// Resolves a user-given image (short name, full reference, `sha256:<id>` or an id
    /// prefix) to its normalized name and manifest for this host.
    pub async fn find_image(&self, name: &str) -> ApiResult<(String, Resolved)> {
        let svc = self.images.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || find_image_blocking(&svc, &name))
            .await
            .map_err(|e| ApiError::internal(format!("image lookup: {e}")))?
    }

    pub async fn list_images(&self) -> ApiResult<Vec<ImageSummary>> {
        let svc = self.images.clone();
        tokio::task::spawn_blocking(move || list_blocking(&svc))
            .await
            .map_err(|e| ApiError::internal(format!("image list: {e}")))?
    }

    /// `docker commit`: the container's writable layer becomes a new image.
    pub async fn commit_container(
        &self,
        c: &Arc<Ctr>,
        repo: Option<String>,
        tag: Option<String>,
        comment: Option<String>,
        author: Option<String>,
        changes: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> ApiResult<String> {
        let rec = c.snapshot();
        let upper = self.snaps.fs_path(&rec.snapshot)?;
        let repo = repo.filter(|r| !r.is_empty());
        let untagged = repo.is_none();
        let target = match repo {
            Some(r) => {
                let s = match tag.filter(|t| !t.is_empty()) {
                    Some(t) => format!("{r}:{t}"),
                    None => r,
                };
                Reference::parse(&s)?
            }
            // Untagged commits are recorded under a name of their own, then left dangling.
            None => Reference::parse(&format!("wharf.local/commit/{}:latest", &rec.id[..12]))?,
        };
        let base = Reference::parse(&rec.image_ref)?;
        let mut cfg = serde_json::Map::new();
        cfg.insert("Env".into(), serde_json::json!(rec.config.env));
        cfg.insert("Cmd".into(), serde_json::json!(rec.config.cmd));
        cfg.insert(
            "Entrypoint".into(),
            serde_json::json!(rec.config.entrypoint),
        );
        cfg.insert(
            "WorkingDir".into(),
            serde_json::json!(rec.config.working_dir),
        );
        cfg.insert("User".into(), serde_json::json!(rec.config.user));
        cfg.insert("Labels".into(), serde_json::json!(rec.config.labels));
        if !rec.config.exposed_ports.is_empty() {
            cfg.insert(
                "ExposedPorts".into(),
                serde_json::json!(rec.config.exposed_ports),
            );
        }
        if let Some(ch) = changes {
            cfg.extend(ch);
        }
        let opts = images::commit::Options {
            created_by: format!("{} {}", rec.path, rec.args.join(" ")),
            comment,
            author,
            runtime_config: Some(cfg),
            ..Default::default()
        };
        let svc = self.images.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let c = images::commit::commit(
                &svc,
                &upper,
                Some(&base),
                &target,
                &opts,
                &images::progress::Progress::none(),
            )?;
            if untagged {
                svc.images.untag(&target)?;
            }
            Ok::<_, images::Error>(c)
        })
        .await
        .map_err(|e| ApiError::internal(format!("commit: {e}")))??;
        self.emit("container", "commit", &c.id, vec![]);
        Ok(committed.config.digest.to_string())
    }

    /// `docker import`: a root filesystem tarball becomes a one-layer image, named `target` or
    /// dangling when there is none.
    pub async fn import_rootfs(
        &self,
        tar: Vec<u8>,
        target: Option<Reference>,
        changes: Option<serde_json::Map<String, serde_json::Value>>,
        message: Option<String>,
    ) -> ApiResult<String> {
        let svc = self.images.clone();
        let scratch = self.cfg.data_root.join("tmp");
        tokio::task::spawn_blocking(move || -> ApiResult<String> {
            std::fs::create_dir_all(&scratch)
                .map_err(|e| ApiError::internal(format!("create {}: {e}", scratch.display())))?;
            let dir = scratch.join(format!("import-{}", super::containers::random_id()));
            let _cleanup = RemoveOnDrop(dir.clone());
            let opts = images::unpack::Options {
                no_sync: true,
                ..Default::default()
            };
            images::unpack::unpack(std::io::Cursor::new(tar), &dir, &opts)
                .map_err(|e| ApiError::bad_request(format!("import: {e}")))?;
            let copts = images::commit::Options {
                created_by: "import".into(),
                comment: message,
                runtime_config: changes,
                ..Default::default()
            };
            let name = match &target {
                Some(t) => t.clone(),
                None => Reference::parse(&format!(
                    "wharf.local/import/{}:latest",
                    &super::containers::random_id()[..12]
                ))?,
            };
            let c = images::commit::commit(
                &svc,
                &dir,
                None,
                &name,
                &copts,
                &images::progress::Progress::none(),
            )?;
            if target.is_none() {
                svc.images.untag(&name)?;
            }
            Ok(c.config.digest.to_string())
        })
        .await
        .map_err(|e| ApiError::internal(format!("import: {e}")))?
    }
}

impl Daemon {
    /// `docker image prune`: removes the images that match `f` and that no container (in any
    /// state) was created from, then collects their content.
    pub async fn prune_images(&self, f: PruneFilter) -> ApiResult<PruneReport> {
        let used: HashSet<String> = self
            .all_containers()
            .iter()
            .map(|c| c.lock().image_id.clone())
            .collect();
        let svc = self.images.clone();
        tokio::task::spawn_blocking(move || prune_blocking(&svc, &used, &f))
            .await
            .map_err(|e| ApiError::internal(format!("image prune: {e}")))?
    }
}

fn prune_blocking(
    svc: &images::Service,
    used: &HashSet<String>,
    f: &PruneFilter,
) -> ApiResult<PruneReport> {
    // Records grouped by image: the config digest, or the target for a record that does not
    // resolve for this host (no container can use it).
    struct Group {
        records: Vec<ImageRecord>,
        created: u64,
        labels: serde_json::Map<String, serde_json::Value>,
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for rec in svc.images.list()? {
        let resolved = Reference::parse(&rec.name)
            .ok()
            .and_then(|r| svc.resolve_host(&r).ok());
        let (id, created, labels) = match &resolved {
            Some(res) => {
                let cfg: serde_json::Value =
                    serde_json::from_slice(&res.config_bytes).unwrap_or_default();
                let labels = cfg["config"]["Labels"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let created = image_created(res).unwrap_or(rec.created);
                (res.manifest.config.digest.to_string(), created, labels)
            }
            None => (
                rec.target.digest.to_string(),
                rec.created,
                Default::default(),
            ),
        };
        groups
            .entry(id)
            .or_insert_with(|| Group {
                records: Vec::new(),
                created,
                labels,
            })
            .records
            .push(rec);
    }
    let mut report = PruneReport::default();
    for (id, g) in groups {
        let tagged = g.records.iter().any(|r| {
            !r.is_dangling() && Reference::parse(&r.name).is_ok_and(|n| n.tag().is_some())
        });
        if used.contains(&id)
            || (f.dangling_only && tagged)
            || f.until.is_some_and(|u| g.created >= u)
            || !f.labels.iter().all(|l| l.matches(&g.labels))
        {
            continue;
        }
        for rec in &g.records {
            let name = Reference::parse(&rec.name)?;
            match svc.images.delete(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == images::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
            if !rec.is_dangling() {
                report.items.push(Pruned::Untagged(name.familiar()));
            }
        }
        report.items.push(Pruned::Deleted(id));
    }
    report.reclaimed = svc.gc()?.freed;
    Ok(report)
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("remove {}: {e}", self.0.display());
            }
        }
    }
}

fn find_image_blocking(svc: &images::Service, name: &str) -> ApiResult<(String, Resolved)> {
    let not_found = || ApiError::not_found(format!("No such image: {name}"));
    let id_like = name.strip_prefix("sha256:").unwrap_or(name);
    let looks_like_id = id_like.len() >= 4
        && id_like
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if let Ok(r) = Reference::parse(name) {
        match svc.resolve_host(&r) {
            Ok(res) => return Ok((r.to_string(), res)),
            Err(e) if e.kind() == images::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    } else if !looks_like_id {
        return Err(ApiError::bad_request(format!(
            "invalid reference format: {name:?}"
        )));
    }
    if looks_like_id {
        let mut hit: Option<(String, Resolved)> = None;
        for rec in svc.images.list()? {
            let Ok(r) = Reference::parse(&rec.name) else {
                continue;
            };
            let Ok(res) = svc.resolve_host(&r) else {
                continue;
            };
            let hex = res.manifest.config.digest.to_string();
            let hex = hex.strip_prefix("sha256:").unwrap_or(&hex).to_string();
            if hex.starts_with(id_like) {
                if let Some((_, other)) = &hit {
                    if other.manifest.config.digest != res.manifest.config.digest {
                        return Err(ApiError::bad_request(format!(
                            "image id prefix {name} is ambiguous"
                        )));
                    }
                    continue;
                }
                hit = Some((r.to_string(), res));
            }
        }
        if let Some(h) = hit {
            return Ok(h);
        }
    }
    Err(not_found())
}

fn list_blocking(svc: &images::Service) -> ApiResult<Vec<ImageSummary>> {
    let mut out: Vec<ImageSummary> = Vec::new();
    for rec in svc.images.list()? {
        let Ok(r) = Reference::parse(&rec.name) else {
            continue;
        };
        let Ok(res) = svc.resolve_host(&r) else {
            continue;
        };
        let id = res.manifest.config.digest.to_string();
        let size: u64 =
            res.manifest.layers.iter().map(|l| l.size).sum::<u64>() + res.manifest.config.size;
        let (name, digest) = if rec.is_dangling() {
            (None, None)
        } else if r.tag().is_some() {
            (Some(r.familiar()), None)
        } else {
            (None, Some(format!("{}@{}", r.name(), rec.target.digest)))
        };
        if let Some(s) = out.iter_mut().find(|s| s.id == id) {
            s.names.extend(name);
            s.digests.extend(digest);
            s.created = s.created.max(rec.created);
            continue;
        }
        out.push(ImageSummary {
            id,
            names: name.into_iter().collect(),
            digests: digest.into_iter().collect(),
            created: image_created(&res).unwrap_or(rec.created),
            size,
            resolved: res,
        });
    }
    Ok(out)
}

/// The image's own `created` time (from its config), in seconds.
pub fn image_created(res: &Resolved) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(&res.config_bytes).ok()?;
    parse_rfc3339(v.get("created")?.as_str()?)
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.678Z`, offsets honoured).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    hcs::process::state::parse_rfc3339_ns(s).and_then(|n| u64::try_from(n / 1_000_000_000).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_parse() {
        assert_eq!(
            super::parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            super::parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(super::parse_rfc3339("bogus"), None);
    }
}
