//! The composition root: every service the daemon uses is built here, explicitly, from the
//! configuration. Nothing else opens databases or stores.
//!
//! ```text
//! <data-root>/images/            content store and image records (images::Service)
//! <data-root>/snapshots/         layer and container snapshots
//! <data-root>/containers/<id>/   json-file log, hostname, hosts, resolv.conf
//! <data-root>/volumes/<name>/    named and anonymous volumes (`_data`)
//! <data-root>/wharfd.redb        containers and volumes
//! <data-root>/hns.redb           networks, endpoints, namespaces, IPAM
//! <exec-root>/containers/<id>/   bundle (config.json, rootfs mount)
//! <exec-root>/s/<id prefix>/     the monitor's state (socket, exit.json)
//! <exec-root>/runhcs/            runtime state of the containers
//! <exec-root>/netns/             pinned network namespaces
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use images::snapshots::Snapshotter;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::engine::model::Container;
use crate::engine::store::{Store, CONTAINERS};
use crate::error::{ApiError, ApiResult};

/// One container known to the daemon.
pub struct Ctr {
    pub id: String,
    pub rec: Mutex<Container>,
    /// Serializes lifecycle operations (start, stop, remove, exit handling) on this container.
    pub op: tokio::sync::Mutex<()>,
    /// Bumped on every exit; waiters for `next-exit` watch it.
    pub exits: watch::Sender<u64>,
    /// Set once the container is removed.
    pub removed: watch::Sender<bool>,
}

impl Ctr {
    pub fn new(rec: Container) -> Arc<Ctr> {
        Arc::new(Ctr {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            exits: watch::channel(0).0,
            removed: watch::channel(false).0,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Container> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Container {
        self.lock().clone()
    }
}

/// An event for `/events`.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: Vec<(String, String)>,
    pub time_ns: i64,
}

pub struct Daemon {
    pub cfg: Config,
    pub images: images::Service,
    pub snaps: Arc<Snapshotter>,
    pub net: Option<Arc<hns::NetworkService>>,
    pub store: Store,
    pub containers: Mutex<HashMap<String, Arc<Ctr>>>,
    pub execs: Mutex<HashMap<String, Arc<crate::engine::exec::Exec>>>,
    pub events: broadcast::Sender<Event>,
    /// The DNS responders of user networks, by network id.
    pub dns: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// The most recent events, for `/events?since=`.
    pub history: Mutex<std::collections::VecDeque<Event>>,
    pub started: Instant,
    /// Why networking is unavailable, when it is.
    pub net_error: Option<String>,
}

impl Daemon {
    /// Opens (or creates) every store under the configured roots.
    pub fn open(cfg: Config) -> ApiResult<Daemon> {
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.data_root.join("volumes"),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("runhcs"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| ApiError::internal(format!("create {}: {e}", d.display())))?;
        }
        let images = images::Service::open(cfg.data_root.join("images"))?;
        let snaps = Arc::new(Snapshotter::open(cfg.data_root.join("snapshots"))?);
        let store = Store::open(&cfg.data_root.join("wharfd.redb"))?;
        let (net, net_error) = match hns::NetworkService::open(hns::Config {
            db_path: cfg.data_root.join("hns.redb"),
            netns_dir: cfg.exec_root.join("netns"),
        }) {
            Ok(n) => (Some(Arc::new(n)), None),
            Err(e) => {
                tracing::warn!("networking unavailable: {e}");
                (None, Some(e.to_string()))
            }
        };
        let mut map = HashMap::new();
        for c in store.list::<Container>(CONTAINERS)? {
            map.insert(c.id.clone(), Ctr::new(c));
        }
        Ok(Daemon {
            cfg,
            images,
            snaps,
            net,
            store,
            containers: Mutex::new(map),
            execs: Mutex::new(HashMap::new()),
            events: broadcast::channel(256).0,
            history: Mutex::new(std::collections::VecDeque::new()),
            dns: Mutex::new(HashMap::new()),
            started: Instant::now(),
            net_error,
        })
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    /// The monitor's state directory. Short (`<exec-root>/s/<24 hex>`): its socket path must
    /// fit in `sockaddr_un` (108 bytes).
    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.cfg
            .exec_root
            .join("s")
            .join(id.get(..24).unwrap_or(id))
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.cfg.exec_root.join("runhcs")
    }

    pub fn all_containers(&self) -> Vec<Arc<Ctr>> {
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Finds a container by full id, name (with or without the leading `/`) or unique id
    /// prefix, as Docker does.
    pub fn lookup(&self, key: &str) -> ApiResult<Arc<Ctr>> {
        let map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.lock().name == name) {
            return Ok(c.clone());
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = map.values().filter(|c| c.id.starts_with(key));
            if let Some(c) = hits.next() {
                if hits.next().is_some() {
                    return Err(ApiError::bad_request(format!(
                        "multiple containers match the id prefix {key:?}; give more characters"
                    )));
                }
                return Ok(c.clone());
            }
        }
        Err(ApiError::no_such_container(key))
    }

    /// Records the container's current state in the database.
    pub fn persist(&self, c: &Ctr) -> ApiResult<()> {
        let rec = c.snapshot();
        self.store.put(CONTAINERS, &rec.id, &rec)
    }

    pub fn emit(&self, kind: &'static str, action: &str, id: &str, attrs: Vec<(String, String)>) {
        let ev = Event {
            kind,
            action: action.to_string(),
            id: id.to_string(),
            attributes: attrs,
            time_ns: now_ns(),
        };
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() >= EVENT_HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ignored_when_nobody_listens = self.events.send(ev);
    }
}

/// Events kept for `since` queries.
const EVENT_HISTORY: usize = 1024;

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// RFC 3339 with nanoseconds in UTC (`2026-11-22T04:32:10.123456789Z`); zero time for 0.
pub fn rfc3339_nano(ns: i64) -> String {
    if ns <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    hcs::process::state::rfc3339(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_nano(0), "0001-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }
}
