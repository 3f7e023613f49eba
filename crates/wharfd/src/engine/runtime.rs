//! Running containers: the runtime side of a container (rootfs mount, network, bundle, monitor),
//! start / kill / stop / pause, exit handling with restart policies, and re-attaching to live
//! monitors when the daemon starts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hcs::shim::{ExitStatus, Request};
use nix::mount::{umount2, MntFlags};

use super::model::Status;
use super::shim::{self, Shim};
use crate::daemon::{now_ns, Ctr, Daemon};
use crate::error::{ApiError, ApiResult};

/// Signal names (`TERM`, `SIGTERM`) or numbers to a number.
pub fn parse_signal(s: &str) -> ApiResult<i32> {
    hcs::process::parse_signal(s)
        .ok_or_else(|| ApiError::bad_request(format!("invalid signal: {s}")))
}

impl Daemon {
    pub fn shim(&self, id: &str) -> Shim {
        Shim::new(self.shim_dir(id))
    }

    /// Makes sure a monitor holds the container (created, not yet started). Called by attach
    /// and start; a second call while the monitor lives does nothing.
    pub async fn ensure_runtime(self: &Arc<Self>, c: &Arc<Ctr>) -> ApiResult<()> {
        let _op = c.op.lock().await;
        self.ensure_runtime_locked(c).await
    }

    async fn ensure_runtime_locked(self: &Arc<Self>, c: &Arc<Ctr>) -> ApiResult<()> {
        let shim = self.shim(&c.id);
        if shim.socket().exists() && shim.alive().await {
            return Ok(());
        }
        // Leftovers of an earlier run (exit recorded, monitor gone).
        self.teardown_runtime(c).await;
        let rec = c.snapshot();
        let bundle = self.bundle_dir(&c.id);
        let rootfs = bundle.join("rootfs");
        let state_dir = self.shim_dir(&c.id);
        std::fs::create_dir_all(&rootfs)
            .and_then(|_| std::fs::create_dir_all(&state_dir))
            .map_err(|e| ApiError::internal(format!("create bundle for {}: {e}", rec.name)))?;
        let result = async {
            self.mount_rootfs(&rec.snapshot, &rootfs).await?;
            let net = self.setup_network(c).await?;
            let prepared = self.prepare_mounts(c, &rootfs).await?;
            let spec = super::spec::build(
                &c.snapshot(),
                super::spec::SpecInputs {
                    rootfs: &rootfs,
                    caps: super::spec::capabilities(&rec)?,
                    netns: net.netns.as_deref(),
                    new_netns: net.new_netns,
                    env: prepared.env,
                    uid: prepared.uid,
                    gid: prepared.gid,
                    additional_gids: prepared.gids,
                    mounts: prepared.mounts,
                    cgroups_path: format!("/wharf/{}", c.id),
                },
            );
            let bytes = serde_json::to_vec_pretty(&spec)
                .map_err(|e| ApiError::internal(format!("encode spec: {e}")))?;
            std::fs::write(bundle.join("config.json"), bytes)
                .map_err(|e| ApiError::internal(format!("write bundle config: {e}")))?;
            drop(std::fs::remove_file(state_dir.join(hcs::shim::EXIT_FILE)));
            let console = match rec.host.console_size[..] {
                [h, w] if h > 0 && w > 0 => Some((h, w)),
                _ => None,
            };
            let runhcs = self.cfg.runhcs_path();
            let log_path = self.log_path(&c.id);
            shim::spawn(shim::SpawnArgs {
                runhcs: &runhcs,
                runtime_root: &self.runtime_root(),
                id: &c.id,
                bundle: &bundle,
                state_dir: &state_dir,
                log_path: &log_path,
                log_max_size: log_opt(&rec.host.log_config.config, "max-size")
                    .unwrap_or(self.cfg.log_max_size),
                log_max_files: log_opt(&rec.host.log_config.config, "max-file")
                    .map(|v| v as u32)
                    .unwrap_or(self.cfg.log_max_files),
                stdin: rec.config.open_stdin,
                tty: rec.config.tty,
                console_size: console,
            })
            .await
        }
        .await;
        if let Err(e) = result {
            self.teardown_runtime(c).await;
            let mut r = c.lock();
            r.state.error = e.message.clone();
            drop(r);
            self.persist(c).ok();
            return Err(e);
        }
        Ok(())
    }

    /// Mounts the container's snapshot (overlay over its image layers) at `target`.
    async fn mount_rootfs(&self, key: &str, target: &Path) -> ApiResult<()> {
        let snaps = self.snaps.clone();
        let key = key.to_string();
        let target = target.to_path_buf();
        tokio::task::spawn_blocking(move || mount_snapshot(&snaps, &key, &target))
            .await
            .map_err(|e| ApiError::internal(format!("mount rootfs: {e}")))?
    }

    /// Undoes [`Daemon::ensure_runtime`]: unmounts, releases the network, removes runtime state.
    /// Safe to call repeatedly.
    pub async fn teardown_runtime(&self, c: &Arc<Ctr>) {
        let bundle = self.bundle_dir(&c.id);
        for m in self.mounted_under(&bundle) {
            if let Err(e) = umount2(m.as_path(), MntFlags::MNT_DETACH) {
                tracing::warn!("unmount {}: {e}", m.display());
            }
        }
        self.release_network(c).await;
        // The monitor deletes the runtime container; if it died, clean its state here.
        let rt = self.runtime_root().join(&c.id);
        if rt.exists() {
            let runhcs = self.cfg.runhcs_path();
            let deleted = tokio::process::Command::new(&runhcs)
                .arg("--root")
                .arg(self.runtime_root())
                .args(["delete", "--force", &c.id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
            if !deleted.is_ok_and(|s| s.success()) {
                tracing::warn!("runhcs delete --force {} failed", c.id);
            }
        }
    }

    /// Waits (briefly) until the container's monitor process has exited.
    async fn wait_monitor_gone(&self, id: &str) {
        let Some(pid) = std::fs::read_to_string(self.shim_dir(id).join(hcs::shim::PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("shim"))
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Mount points at or below `dir`, deepest first.
    fn mounted_under(&self, dir: &Path) -> Vec<std::path::PathBuf> {
        let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return Vec::new();
        };
        let mut v: Vec<std::path::PathBuf> = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mountinfo)
            .map(std::path::PathBuf::from)
            .filter(|p| p.starts_with(dir))
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        v.dedup();
        v
    }

    pub async fn start_container(self: &Arc<Self>, c: &Arc<Ctr>) -> ApiResult<bool> {
        let _op = c.op.lock().await;
        let status = c.lock().state.status;
        match status {
            Status::Running => return Ok(false),
            Status::Paused => {
                return Err(ApiError::conflict(format!(
                    "cannot start a paused container {}, try unpause instead",
                    c.id
                )))
            }
            Status::Removing | Status::Dead => {
                return Err(ApiError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            Status::Created | Status::Exited | Status::Restarting => {}
        }
        let reply = async {
            self.ensure_runtime_locked(c).await?;
            // Peers on a user network learn this container's name before its process runs.
            let nets = c.lock().user_network_ids();
            for n in nets {
                self.sync_hosts(&n);
            }
            self.shim(&c.id).call(&Request::Start).await
        }
        .await;
        let reply = match reply.and_then(shim::check) {
            Ok(r) => r,
            Err(e) => {
                self.teardown_runtime(c).await;
                let mut r = c.lock();
                r.state.error = e.message.clone();
                r.state.exit_code =
                    if e.message.contains("no such file") || e.message.contains("not found") {
                        127
                    } else {
                        126
                    };
                let auto_remove = r.host.auto_remove;
                drop(r);
                self.persist(c).ok();
                if auto_remove {
                    // `--rm`: a container that could not start goes away too.
                    let d = self.clone();
                    let c = c.clone();
                    tokio::spawn(async move {
                        if let Err(e) = d.remove_container(&c, true, true).await {
                            tracing::warn!("auto-remove {}: {e}", c.id);
                        }
                    });
                }
                return Err(e);
            }
        };
        {
            let mut r = c.lock();
            r.state.status = Status::Running;
            r.state.pid = reply.pid.unwrap_or(0);
            r.state.started_at_ns = now_ns();
            r.state.finished_at_ns = 0;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.state.stopped_by_user = false;
        }
        self.persist(c)?;
        self.emit(
            "container",
            "start",
            &c.id,
            vec![("name".into(), c.lock().name.clone())],
        );
        self.monitor(c.clone());
        Ok(true)
    }

    /// Watches a live container: a task holds a `Wait` on its monitor and handles the exit.
    pub fn monitor(self: &Arc<Self>, c: Arc<Ctr>) {
        let d = self.clone();
        tokio::spawn(async move {
            let shim = d.shim(&c.id);
            let exit = match shim.call(&Request::Wait).await {
                Ok(r) if r.ok => r.exit,
                Ok(r) => {
                    tracing::debug!("wait on {}: {:?}", c.id, r.error);
                    None
                }
                // A monitor gone before the wait connected has left its exit file.
                Err(e) => {
                    tracing::debug!("wait on {}: {e}", c.id);
                    None
                }
            };
            // The reply can race the exit file; the file is written first.
            let exit = exit.or_else(|| shim.exit_file());
            d.handle_exit(&c, exit).await;
        });
    }

    /// Records an exit, cleans the runtime side, then applies AutoRemove or the restart policy.
    pub async fn handle_exit(self: &Arc<Self>, c: &Arc<Ctr>, exit: Option<ExitStatus>) {
        let restart = {
            let _op = c.op.lock().await;
            if !c.lock().state.status.is_live() {
                return;
            }
            let nets = c.lock().user_network_ids();
            if exit.is_some() {
                // The monitor deletes the runtime container after recording the exit.
                self.wait_monitor_gone(&c.id).await;
            }
            self.teardown_runtime(c).await;
            for n in nets {
                self.sync_hosts(&n);
            }
            let mut r = c.lock();
            match exit {
                Some(e) => {
                    r.state.exit_code = e.exit_code;
                    r.state.finished_at_ns = e.finished_at_ns;
                    r.state.oom_killed = e.oom_killed;
                }
                None => {
                    r.state.exit_code = 255;
                    r.state.finished_at_ns = now_ns();
                    r.state.error = "container monitor exited without recording the exit".into();
                }
            }
            r.state.status = Status::Exited;
            r.state.pid = 0;
            let code = r.state.exit_code;
            let policy = r.host.restart_policy.clone();
            let by_user = r.state.stopped_by_user;
            let count = r.restart_count;
            let name = r.name.clone();
            drop(r);
            self.persist(c).ok();
            self.emit(
                "container",
                "die",
                &c.id,
                vec![("exitCode".into(), code.to_string()), ("name".into(), name)],
            );
            c.exits.send_modify(|g| *g += 1);
            match policy.name.as_str() {
                "always" => !by_user,
                "unless-stopped" => !by_user,
                "on-failure" => {
                    !by_user
                        && code != 0
                        && (policy.maximum_retry_count == 0
                            || i64::from(count) < policy.maximum_retry_count)
                }
                _ => false,
            }
        };
        if c.lock().host.auto_remove {
            if let Err(e) = self.remove_container(c, true, true).await {
                tracing::warn!("auto-remove {}: {e}", c.id);
            }
            return;
        }
        if restart {
            let count = {
                let mut r = c.lock();
                r.restart_count += 1;
                r.state.status = Status::Restarting;
                r.restart_count
            };
            self.persist(c).ok();
            // Docker's back-off: 100 ms doubling, capped.
            let delay = Duration::from_millis(100u64 << count.min(10)).min(Duration::from_secs(60));
            let d = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if c.lock().state.stopped_by_user || *c.removed.borrow() {
                    let mut r = c.lock();
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                    return;
                }
                if let Err(e) = d.start_container(&c).await {
                    tracing::warn!("restart {}: {e}", c.id);
                }
            });
        }
    }

    pub async fn kill_container(&self, c: &Arc<Ctr>, signal: i32) -> ApiResult<()> {
        let status = c.lock().state.status;
        if !status.is_live() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {}: container is not running",
                c.id
            )));
        }
        self.shim(&c.id)
            .call_ok(&Request::Kill { signal, all: false })
            .await?;
        self.emit(
            "container",
            "kill",
            &c.id,
            vec![("signal".into(), signal.to_string())],
        );
        Ok(())
    }

    /// Waits until the container is no longer running, up to `limit`.
    pub async fn wait_not_running(&self, c: &Arc<Ctr>, limit: Duration) -> bool {
        let mut rx = c.exits.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if !c.lock().state.status.is_live() {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return !c.lock().state.status.is_live(),
            }
        }
    }

    /// SIGTERM (or the configured stop signal), then SIGKILL after `timeout`. Returns false if
    /// the container was not running (the API answers 304).
    pub async fn stop_container(
        &self,
        c: &Arc<Ctr>,
        timeout: Option<i64>,
        signal: Option<i32>,
    ) -> ApiResult<bool> {
        {
            let mut r = c.lock();
            if r.state.status == Status::Restarting {
                // Waiting out a restart back-off: cancel it.
                r.state.stopped_by_user = true;
                r.state.status = Status::Exited;
                drop(r);
                self.persist(c)?;
                return Ok(true);
            }
        }
        if !c.lock().state.status.is_live() {
            return Ok(false);
        }
        if c.lock().state.status == Status::Paused {
            self.shim(&c.id).call_ok(&Request::Resume).await.ok();
        }
        c.lock().state.stopped_by_user = true;
        let (sig, t) = {
            let r = c.lock();
            let sig = match signal {
                Some(s) => s,
                None => match &r.config.stop_signal {
                    Some(s) => parse_signal(s)?,
                    None => 15,
                },
            };
            (sig, timeout.or(r.config.stop_timeout).unwrap_or(10))
        };
        if let Err(e) = self.kill_container(c, sig).await {
            tracing::debug!("stop signal: {e}");
        }
        if t >= 0
            && self
                .wait_not_running(c, Duration::from_secs(t as u64))
                .await
        {
            self.emit("container", "stop", &c.id, vec![]);
            return Ok(true);
        }
        if let Err(e) = self.kill_container(c, 9).await {
            tracing::debug!("stop kill: {e}");
        }
        self.wait_not_running(c, Duration::from_secs(30)).await;
        self.emit("container", "stop", &c.id, vec![]);
        Ok(true)
    }

    pub async fn pause_container(&self, c: &Arc<Ctr>, pause: bool) -> ApiResult<()> {
        let _op = c.op.lock().await;
        let status = c.lock().state.status;
        match (pause, status) {
            (true, Status::Running) => {
                self.shim(&c.id).call_ok(&Request::Pause).await?;
                c.lock().state.status = Status::Paused;
            }
            (false, Status::Paused) => {
                self.shim(&c.id).call_ok(&Request::Resume).await?;
                c.lock().state.status = Status::Running;
            }
            (true, Status::Paused) => {
                return Err(ApiError::conflict(format!(
                    "container {} is already paused",
                    c.id
                )))
            }
            (false, _) => {
                return Err(ApiError::conflict(format!(
                    "container {} is not paused",
                    c.id
                )))
            }
            (true, _) => {
                return Err(ApiError::conflict(format!(
                    "container {} is not running",
                    c.id
                )))
            }
        }
        self.persist(c)?;
        self.emit(
            "container",
            if pause { "pause" } else { "unpause" },
            &c.id,
            vec![],
        );
        Ok(())
    }

    /// At daemon start: re-attach to every monitor that is still alive, record the exits that
    /// happened while the daemon was away, and start containers whose restart policy asks.
    pub async fn restore(self: &Arc<Self>) {
        for c in self.all_containers() {
            let status = c.lock().state.status;
            if !status.is_live() {
                let policy = c.lock().host.restart_policy.name.clone();
                let by_user = c.lock().state.stopped_by_user;
                if status == Status::Restarting
                    || (status == Status::Exited
                        && (policy == "always" || (policy == "unless-stopped" && !by_user)))
                {
                    let d = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = d.start_container(&c).await {
                            tracing::warn!("restart {} at daemon start: {e}", c.id);
                        }
                    });
                }
                continue;
            }
            let shim = self.shim(&c.id);
            if shim.alive().await {
                tracing::info!("re-attached to container {}", c.id);
                let dns: Vec<(String, String)> = c
                    .lock()
                    .attachments()
                    .filter(|n| n.dns)
                    .map(|n| (n.network_id.clone(), n.gateway.clone()))
                    .collect();
                for (net, gw) in dns {
                    self.ensure_dns(&net, &gw);
                }
                self.monitor(c.clone());
            } else {
                let exit = shim.exit_file();
                self.handle_exit(&c, exit).await;
            }
        }
    }
}

/// Performs the mounts the snapshotter describes for `key` at `target`.
pub fn mount_snapshot(
    snaps: &images::snapshots::Snapshotter,
    key: &str,
    target: &Path,
) -> ApiResult<()> {
    for m in snaps.mounts(key)? {
        let opts = m.options.join(",");
        let (fstype, flags, data) = if m.kind == "bind" {
            (
                None,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                None,
            )
        } else {
            (
                Some(m.kind.as_str()),
                nix::mount::MsFlags::empty(),
                Some(opts.as_str()),
            )
        };
        nix::mount::mount(Some(&m.source), target, fstype, flags, data).map_err(|e| {
            ApiError::internal(format!(
                "mount {} snapshot {key} at {}: {e}",
                m.kind,
                target.display()
            ))
        })?;
    }
    Ok(())
}

fn log_opt(cfg: &std::collections::BTreeMap<String, String>, k: &str) -> Option<u64> {
    let v = cfg.get(k)?.trim().to_ascii_lowercase();
    let (num, mult) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v.as_str(), 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").expect("TERM"), 15);
        assert_eq!(parse_signal("SIGKILL").expect("KILL"), 9);
        assert_eq!(parse_signal("2").expect("2"), 2);
        assert!(parse_signal("BOGUS").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn log_opts() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("max-size".to_string(), "10m".to_string());
        assert_eq!(log_opt(&m, "max-size"), Some(10 << 20));
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
