//! Container records: create (image resolution, validation, the writable snapshot), rename,
//! remove, listing.

use std::collections::BTreeMap;
use std::sync::Arc;

use images::manifest::chain_ids;
use images::unpack;

use super::model::{Container, ContainerConfig, EndpointOpts, HostConfig, Status};
use crate::daemon::{now_ns, Ctr, Daemon};
use crate::engine::store::CONTAINERS;
use crate::error::{ApiError, ApiResult};

/// Docker's container name rule.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub fn random_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    let n = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if n.is_err() {
        // Fall back to time and pid mixed through sha256; ids only need to be unique.
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(now_ns().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        b.copy_from_slice(&h.finalize());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Docker-style generated names (`adjective_surname`), from a short fixed list.
fn generated_name(d: &Daemon, id: &str) -> String {
    const LEFT: &[&str] = &[
        "brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty",
        "proud", "quiet", "sharp", "swift", "tender", "vivid", "wise", "zealous",
    ];
    const RIGHT: &[&str] = &[
        "babbage", "curie", "darwin", "euler", "fermat", "galois", "hopper", "kepler", "lovelace",
        "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
    ];
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    for i in 0..64u64 {
        let l = LEFT[((n >> 8) as usize + i as usize) % LEFT.len()];
        let r = RIGHT[(n as usize + (i as usize) * 7) % RIGHT.len()];
        let name = if i == 0 {
            format!("{l}_{r}")
        } else {
            format!("{l}_{r}{i}")
        };
        if d.lookup(&name).is_err() {
            return name;
        }
    }
    format!("c_{}", &id[..12])
}

fn check_isolation(v: &str) -> ApiResult<()> {
    match v.to_ascii_lowercase().as_str() {
        "" | "default" | "process" => Ok(()),
        "hyperv" => Err(ApiError::bad_request(
            "isolation 'hyperv' is not available yet: wharf's VM isolation (utility VM with a guest agent) has not landed; use --isolation=process",
        )),
        _ => Err(ApiError::bad_request(format!("invalid isolation '{v}'"))),
    }
}

/// Limits Docker refuses too, with the field named.
fn check_limits(h: &HostConfig) -> ApiResult<()> {
    if h.memory < 0 {
        return Err(ApiError::bad_request("invalid HostConfig.Memory: negative"));
    }
    if h.memory > 0 && h.memory < 6 << 20 {
        return Err(ApiError::bad_request(
            "invalid HostConfig.Memory: minimum memory limit allowed is 6MB",
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if h.nano_cpus < 0 || h.nano_cpus > cpus * 1_000_000_000 {
        return Err(ApiError::bad_request(format!(
            "invalid HostConfig.NanoCpus: range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    if h.nano_cpus > 0 && h.nano_cpus < 10_000_000 {
        return Err(ApiError::bad_request(format!(
            "invalid HostConfig.NanoCpus: range of CPUs is from 0.01 to {cpus}.00"
        )));
    }
    if h.cpu_shares < 0 || h.cpu_quota < 0 || h.cpu_period < 0 || h.shm_size < 0 {
        return Err(ApiError::bad_request(
            "invalid HostConfig: CpuShares, CpuQuota, CpuPeriod and ShmSize must not be negative",
        ));
    }
    if let Some(p) = h.pids_limit {
        if p < -1 {
            return Err(ApiError::bad_request(format!(
                "invalid HostConfig.PidsLimit: {p}"
            )));
        }
    }
    match h.restart_policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {}
        "on-failure" => {
            if h.restart_policy.maximum_retry_count < 0 {
                return Err(ApiError::bad_request(
                    "invalid HostConfig.RestartPolicy.MaximumRetryCount: negative",
                ));
            }
        }
        o => {
            return Err(ApiError::bad_request(format!(
                "invalid HostConfig.RestartPolicy.Name: {o:?} (want no, always, unless-stopped or on-failure)"
            )))
        }
    }
    if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return Err(ApiError::bad_request(
            "conflicting options: AutoRemove and RestartPolicy cannot be used together",
        ));
    }
    for (k, list) in &h.port_bindings {
        parse_port_key(k)?;
        for b in list {
            if !b.host_port.is_empty() {
                let ok = b
                    .host_port
                    .split_once('-')
                    .map_or(b.host_port.parse::<u16>().is_ok(), |(a, z)| {
                        a.parse::<u16>().is_ok() && z.parse::<u16>().is_ok()
                    });
                if !ok {
                    return Err(ApiError::bad_request(format!(
                        "invalid HostConfig.PortBindings[{k}]: host port {:?}",
                        b.host_port
                    )));
                }
            }
            if !b.host_ip.is_empty() && b.host_ip.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiError::bad_request(format!(
                    "invalid HostConfig.PortBindings[{k}]: host IP {:?}",
                    b.host_ip
                )));
            }
        }
    }
    Ok(())
}

/// `80/tcp` → (80, "tcp").
pub fn parse_port_key(k: &str) -> ApiResult<(u16, String)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let port: u16 = p
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid port {k:?}")))?;
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(ApiError::bad_request(format!(
            "invalid protocol in port {k:?}: want tcp or udp"
        )));
    }
    Ok((port, proto))
}

impl Daemon {
    /// Creates a container record and its writable snapshot; nothing runs yet.
    pub async fn create_container(
        self: &Arc<Self>,
        name: Option<String>,
        mut config: ContainerConfig,
        host: HostConfig,
        networks: Vec<String>,
        endpoint_opts: BTreeMap<String, EndpointOpts>,
    ) -> ApiResult<(String, Vec<String>)> {
        check_isolation(&host.isolation)?;
        if !networks.is_empty() && matches!(host.network_mode.as_str(), "host" | "none") {
            return Err(ApiError::bad_request(format!(
                "invalid NetworkingConfig: a container with --network {} cannot join other networks ({})",
                host.network_mode,
                networks.join(", ")
            )));
        }
        check_limits(&host)?;
        if config.image.is_empty() {
            return Err(ApiError::bad_request(
                "invalid Config.Image: no image given",
            ));
        }
        let id = random_id();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(&n).to_string();
                if !valid_name(&n) {
                    return Err(ApiError::bad_request(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n
            }
            None => generated_name(self, &id),
        };
        let (reference, resolved) = self.find_image(&config.image).await?;
        let img_cfg = resolved.config()?;
        let diff_ids = resolved.diff_ids()?;
        let image_id = resolved.manifest.config.digest.to_string();

        // Merge the image's defaults (Docker's rules: Entrypoint from the container replaces
        // the image's and clears its Cmd; env is image env overridden by container env).
        let ic = img_cfg.config().clone().unwrap_or_default();
        let (path, args) = {
            let (ep, cmd) = match (&config.entrypoint, &config.cmd) {
                (Some(ep), cmd) => (ep.clone(), cmd.clone().unwrap_or_default()),
                (None, Some(cmd)) => (ic.entrypoint().clone().unwrap_or_default(), cmd.clone()),
                (None, None) => (
                    ic.entrypoint().clone().unwrap_or_default(),
                    ic.cmd().clone().unwrap_or_default(),
                ),
            };
            let mut all = ep;
            all.extend(cmd);
            if all.is_empty() {
                return Err(ApiError::bad_request(
                    "no command specified: the image has no Cmd or Entrypoint and none was given",
                ));
            }
            let path = all.remove(0);
            (path, all)
        };
        let mut env: Vec<String> = ic.env().clone().unwrap_or_default();
        for e in &config.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        config.env = env;
        if config.working_dir.is_empty() {
            config.working_dir = ic.working_dir().clone().unwrap_or_default();
        }
        if config.user.is_empty() {
            config.user = ic.user().clone().unwrap_or_default();
        }
        if config.cmd.is_none() && config.entrypoint.is_none() {
            config.cmd = ic.cmd().clone();
        }
        if config.entrypoint.is_none() {
            config.entrypoint = ic.entrypoint().clone();
        }
        if let Some(v) = ic.volumes() {
            for k in v {
                config
                    .volumes
                    .entry(k.clone())
                    .or_insert(serde_json::json!({}));
            }
        }
        if let Some(p) = ic.exposed_ports() {
            for k in p {
                config
                    .exposed_ports
                    .entry(k.clone())
                    .or_insert(serde_json::json!({}));
            }
        }
        if let Some(l) = ic.labels() {
            for (k, v) in l {
                config.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if config.stop_signal.is_none() {
            config.stop_signal = ic.stop_signal().clone();
        }

        // Unpack the image's layers (shared, keyed by chain id) and prepare the container's
        // writable layer on top.
        let top = self.unpack_image(&resolved, &diff_ids).await?;
        let snapshot = format!("container-{id}");
        {
            let snaps = self.snaps.clone();
            let key = snapshot.clone();
            tokio::task::spawn_blocking(move || snaps.prepare(&key, top.as_deref()))
                .await
                .map_err(|e| ApiError::internal(format!("prepare snapshot: {e}")))??;
        }

        let rec = Container {
            id: id.clone(),
            name: name.clone(),
            created_ns: now_ns(),
            image: config.image.clone(),
            image_ref: reference,
            image_id,
            path,
            args,
            config,
            host,
            snapshot: snapshot.clone(),
            networks,
            endpoint_opts,
            ..Default::default()
        };
        // Names are claimed under the map lock, so two creates cannot take the same one.
        let clash = {
            let mut map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
            let other = map
                .values()
                .find(|c| c.lock().name == name)
                .map(|c| c.id.clone());
            if other.is_none() {
                map.insert(id.clone(), Ctr::new(rec.clone()));
            }
            other
        };
        if let Some(other) = clash {
            self.drop_snapshot(&snapshot).await;
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        if let Err(e) = self.store.put(CONTAINERS, &id, &rec) {
            self.containers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            self.drop_snapshot(&snapshot).await;
            return Err(e);
        }
        std::fs::create_dir_all(self.container_dir(&id)).map_err(|e| {
            ApiError::internal(format!("create container directory for {name}: {e}"))
        })?;
        self.emit(
            "container",
            "create",
            &id,
            vec![("name".into(), name), ("image".into(), rec.image.clone())],
        );
        Ok((id, Vec::new()))
    }

    async fn drop_snapshot(&self, key: &str) {
        let snaps = self.snaps.clone();
        let key = key.to_string();
        let r = tokio::task::spawn_blocking(move || snaps.remove(&key)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!("remove snapshot: {e}");
        }
    }

    /// Unpacks every layer not yet unpacked; returns the top layer's snapshot key.
    pub async fn unpack_image(
        &self,
        resolved: &images::service::Resolved,
        diff_ids: &[images::Digest],
    ) -> ApiResult<Option<String>> {
        let chain = chain_ids(diff_ids);
        let layers = resolved.manifest.layers.clone();
        let content = self.images.content.clone();
        let snaps = self.snaps.clone();
        let diff_ids = diff_ids.to_vec();
        tokio::task::spawn_blocking(move || -> ApiResult<Option<String>> {
            let mut parent: Option<String> = None;
            for ((layer, diff_id), chain_id) in layers.iter().zip(&diff_ids).zip(&chain) {
                let key = chain_id.to_string();
                if snaps.stat(&key).is_err() {
                    let blob = content.open_blob(&layer.digest)?;
                    let opts = unpack::Options {
                        diff_id: Some(diff_id.clone()),
                        ..Default::default()
                    };
                    snaps.apply_layer(&key, parent.as_deref(), blob, &opts)?;
                }
                parent = Some(key);
            }
            Ok(parent)
        })
        .await
        .map_err(|e| ApiError::internal(format!("unpack image: {e}")))?
    }

    pub async fn rename_container(&self, c: &Arc<Ctr>, new: &str) -> ApiResult<()> {
        let new = new.strip_prefix('/').unwrap_or(new);
        if !valid_name(new) {
            return Err(ApiError::bad_request(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        {
            let map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(o) = map.values().find(|o| o.lock().name == new) {
                return Err(ApiError::conflict(format!(
                    "Conflict. The container name \"/{new}\" is already in use by container \"{}\".",
                    o.id
                )));
            }
            c.lock().name = new.to_string();
        }
        self.persist(c)?;
        self.emit(
            "container",
            "rename",
            &c.id,
            vec![("name".into(), new.into())],
        );
        Ok(())
    }

    /// Removes a stopped container (or a running one with `force`): its runtime, snapshot,
    /// directories, record and, with `volumes`, its anonymous volumes.
    pub async fn remove_container(
        self: &Arc<Self>,
        c: &Arc<Ctr>,
        force: bool,
        volumes: bool,
    ) -> ApiResult<()> {
        let status = c.lock().state.status;
        if status.is_live() || status == Status::Restarting {
            if !force {
                let name = c.lock().name.clone();
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"/{name}\": container is {}: stop the container before removing or force remove",
                    status.as_str()
                )));
            }
            self.kill_container(c, 9).await.ok();
            self.wait_not_running(c, std::time::Duration::from_secs(10))
                .await;
        }
        let _op = c.op.lock().await;
        self.teardown_runtime(c).await;
        let rec = c.snapshot();
        self.drop_snapshot(&rec.snapshot).await;
        if volumes {
            for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
                if self.volume_is_anonymous(&m.name) {
                    if let Err(e) = self.remove_volume(&m.name, true) {
                        tracing::warn!("remove volume {}: {e}", m.name);
                    }
                }
            }
        }
        for d in [
            self.container_dir(&c.id),
            self.bundle_dir(&c.id),
            self.shim_dir(&c.id),
        ] {
            if let Err(e) = std::fs::remove_dir_all(&d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("remove {}: {e}", d.display());
                }
            }
        }
        self.store.delete(CONTAINERS, &c.id)?;
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        let exec_ids = rec.exec_ids.clone();
        {
            let mut ex = self.execs.lock().unwrap_or_else(|p| p.into_inner());
            for e in exec_ids {
                ex.remove(&e);
            }
        }
        c.removed.send_replace(true);
        self.emit(
            "container",
            "destroy",
            &c.id,
            vec![("name".into(), rec.name)],
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports() {
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert_eq!(parse_port_key("80/tcp").expect("port").0, 80);
        assert_eq!(parse_port_key("53/UDP").expect("port").1, "udp");
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert!(check_isolation("HyperV").is_err());
        assert!(check_isolation("Process").is_ok());
        assert!(check_isolation("bogus")
            .expect_err("bogus")
            .message
            .contains("invalid isolation"));
    }

    #[test]
    fn ids_are_hex_and_unique() {
        let a = random_id();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_id());
    }
}
