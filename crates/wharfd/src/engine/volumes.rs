//! Local volumes: a directory `<data-root>/volumes/<name>/_data` and a record in the state
//! database. Anonymous volumes (from `-v /path` or an image's VOLUME) are removed with their
//! container by `rm -v`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::store::VOLUMES;
use crate::daemon::{now_ns, rfc3339_nano, Daemon};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created_ns: i64,
    pub labels: BTreeMap<String, String>,
    pub anonymous: bool,
}

fn valid_volume_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Daemon {
    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.cfg.data_root.join("volumes").join(name).join("_data")
    }

    pub fn list_volumes(&self) -> ApiResult<Vec<Volume>> {
        self.store.list(VOLUMES)
    }

    pub fn get_volume(&self, name: &str) -> ApiResult<Volume> {
        self.list_volumes()?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| ApiError::not_found(format!("get {name}: no such volume")))
    }

    pub fn volume_is_anonymous(&self, name: &str) -> bool {
        self.get_volume(name).is_ok_and(|v| v.anonymous)
    }

    /// Creates the volume if it does not exist; returns its data directory.
    pub fn ensure_volume(&self, name: &str, anonymous: bool) -> ApiResult<PathBuf> {
        if self.get_volume(name).is_err() {
            self.create_volume(name, BTreeMap::new(), anonymous)?;
        }
        Ok(self.volume_path(name))
    }

    pub fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> ApiResult<Volume> {
        if !valid_volume_name(name) {
            return Err(ApiError::bad_request(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        if let Ok(v) = self.get_volume(name) {
            return Ok(v);
        }
        let path = self.volume_path(name);
        std::fs::create_dir_all(&path).map_err(|e| {
            ApiError::internal(format!("create volume {name}: {}: {e}", path.display()))
        })?;
        let v = Volume {
            name: name.to_string(),
            created_ns: now_ns(),
            labels,
            anonymous,
        };
        self.store.put(VOLUMES, name, &v)?;
        self.emit("volume", "create", name, vec![]);
        Ok(v)
    }

    /// Containers (by name) that mount the volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all_containers()
            .iter()
            .filter_map(|c| {
                let r = c.lock();
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
                    .then(|| r.name.clone())
                    .or_else(|| {
                        r.host
                            .binds
                            .iter()
                            .any(|b| b.split(':').next() == Some(name))
                            .then(|| r.name.clone())
                    })
            })
            .collect()
    }

    pub fn remove_volume(&self, name: &str, force: bool) -> ApiResult<()> {
        self.get_volume(name)?;
        let users = self.volume_users(name);
        if !users.is_empty() && !force {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.cfg.data_root.join("volumes").join(name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(ApiError::internal(format!("remove volume {name}: {e}")));
            }
        }
        self.store.delete(VOLUMES, name)?;
        self.emit("volume", "destroy", name, vec![]);
        Ok(())
    }

    pub fn volume_json(&self, v: &Volume) -> serde_json::Value {
        serde_json::json!({
            "Name": v.name,
            "Driver": "local",
            "Mountpoint": self.volume_path(&v.name),
            "CreatedAt": rfc3339_nano(v.created_ns),
            "Labels": v.labels,
            "Scope": "local",
            "Options": {},
        })
    }
}
