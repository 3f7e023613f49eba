//! Processes run in a running container (`docker exec`). The monitor runs them; the daemon
//! keeps their configuration and exit code for inspect.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::model::null_default;
use crate::daemon::{Ctr, Daemon};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    #[serde(deserialize_with = "null_default")]
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach: bool,
    #[serde(deserialize_with = "null_default")]
    pub detach_keys: String,
    #[serde(deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub working_dir: String,
    #[serde(deserialize_with = "null_default")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub console_size: Vec<u16>,
}

#[derive(Debug, Default)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
}

impl Exec {
    pub fn state(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Daemon {
    pub fn create_exec(&self, c: &Arc<Ctr>, cfg: ExecConfig) -> ApiResult<String> {
        if !c.lock().state.status.is_live() {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if c.lock().state.status == super::model::Status::Paused {
            return Err(ApiError::conflict(format!(
                "container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if cfg.cmd.is_empty() {
            return Err(ApiError::bad_request("No exec command specified"));
        }
        let id = super::containers::random_id();
        let e = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config: cfg,
            state: Mutex::new(ExecState::default()),
        });
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), e);
        c.lock().exec_ids.push(id.clone());
        self.emit("container", "exec_create", &c.id, vec![]);
        Ok(id)
    }

    pub fn get_exec(&self, id: &str) -> ApiResult<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    /// The OCI `process` for an exec: the container's process with the exec's overrides.
    pub fn exec_process(&self, c: &Arc<Ctr>, e: &Exec) -> ApiResult<serde_json::Value> {
        let bundle = self.bundle_dir(&c.id);
        let spec: serde_json::Value = std::fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "container {} has no runtime configuration; is it running?",
                    c.id
                ))
            })?;
        let mut p = spec["process"].clone();
        p["args"] = serde_json::json!(e.config.cmd);
        p["terminal"] = serde_json::json!(e.config.tty);
        if let Some(env) = p["env"].as_array_mut() {
            for kv in &e.config.env {
                let key = kv.split('=').next().unwrap_or(kv);
                env.retain(|x| x.as_str().and_then(|s| s.split('=').next()) != Some(key));
                env.push(serde_json::json!(kv));
            }
        }
        if !e.config.working_dir.is_empty() {
            p["cwd"] = serde_json::json!(e.config.working_dir);
        }
        if !e.config.user.is_empty() {
            let (uid, gid, gids) =
                super::mounts::resolve_user(&bundle.join("rootfs"), &e.config.user)?;
            p["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": gids});
        }
        if e.config.privileged {
            let all = super::spec::all_caps();
            p["capabilities"] =
                serde_json::json!({"bounding": all, "effective": all, "permitted": all});
        }
        if let Some(o) = p.as_object_mut() {
            o.remove("consoleSize");
        }
        Ok(p)
    }
}
