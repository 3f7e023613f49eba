//! What wharfd records about a container. The configuration keeps Docker's field names, since
//! the API both takes and returns it; everything else is the engine's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Deserializes `null` as the type's default (Docker sends `"Env":null`, `"Cmd":null`, ...).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Accepts `["a","b"]` or a single string (`"Entrypoint":"sh"` in older clients).
pub fn string_or_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<L>::deserialize(d)? {
        None => None,
        Some(L::One(s)) => Some(vec![s]),
        Some(L::Many(v)) => Some(v),
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "null_default")]
    pub hostname: String,
    #[serde(deserialize_with = "null_default")]
    pub domainname: String,
    #[serde(deserialize_with = "null_default")]
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(deserialize_with = "null_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "string_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub image: String,
    #[serde(deserialize_with = "null_default")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(deserialize_with = "null_default")]
    pub working_dir: String,
    #[serde(deserialize_with = "string_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(deserialize_with = "null_default")]
    pub host_ip: String,
    #[serde(deserialize_with = "null_default")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    #[serde(deserialize_with = "null_default")]
    pub r#type: String,
    #[serde(deserialize_with = "null_default")]
    pub source: String,
    #[serde(deserialize_with = "null_default")]
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(deserialize_with = "null_default")]
    pub r#type: String,
    #[serde(deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "null_default")]
    pub binds: Vec<String>,
    pub log_config: LogConfig,
    #[serde(deserialize_with = "null_default")]
    pub network_mode: String,
    #[serde(deserialize_with = "null_default")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    #[serde(deserialize_with = "null_default")]
    pub console_size: Vec<u16>,
    #[serde(deserialize_with = "null_default")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub extra_hosts: Vec<String>,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_default")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub isolation: String,
    #[serde(deserialize_with = "null_default")]
    pub runtime: String,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    #[serde(deserialize_with = "null_default")]
    pub pids_limit: Option<i64>,
    pub shm_size: i64,
    #[serde(deserialize_with = "null_default")]
    pub mounts: Vec<MountSpec>,
    #[serde(deserialize_with = "null_default")]
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a shim (and a container process) is alive in this state.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at_ns: i64,
    pub finished_at_ns: i64,
    /// The container was stopped by the user (restart policies other than `always` skip it).
    #[serde(default)]
    pub stopped_by_user: bool,
}

/// The container's place on a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetAttachment {
    pub network: String,
    pub network_id: String,
    pub endpoint_id: String,
    pub namespace_id: String,
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac: String,
    /// Published ports actually bound: (container port/proto, host ip, host port).
    pub ports: Vec<(String, String, u16)>,
    /// The network's DNS responder answers on the gateway (user networks).
    #[serde(default)]
    pub dns: bool,
    /// Other names the container has on this network (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// What the user asked for on one network (Docker's `EndpointSettings`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointOpts {
    /// Names peers on the network may use besides the container's name.
    pub aliases: Vec<String>,
    /// A fixed IPv4 address (`--ip`).
    pub ipv4: String,
}

impl EndpointOpts {
    /// Reads Docker's `EndpointSettings` JSON (`Aliases`, `IPAMConfig.IPv4Address`).
    pub fn from_docker(v: &serde_json::Value) -> Result<EndpointOpts, String> {
        let aliases = match v.get("Aliases") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(a) => serde_json::from_value::<Vec<String>>(a.clone())
                .map_err(|e| format!("invalid Aliases: {e}"))?,
        };
        for a in &aliases {
            if a.is_empty() || a.len() > 253 || a.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(format!("invalid alias {a:?}"));
            }
        }
        let ipv4 = v
            .pointer("/IPAMConfig/IPv4Address")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string();
        if !ipv4.is_empty() && ipv4.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(format!(
                "invalid IPAMConfig.IPv4Address {ipv4:?}: not an IPv4 address"
            ));
        }
        Ok(EndpointOpts { aliases, ipv4 })
    }
}

/// A mount the container got, as inspect reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub rw: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub created_ns: i64,
    /// The image as the user named it, and as resolved.
    pub image: String,
    pub image_ref: String,
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host: HostConfig,
    pub state: State,
    /// The snapshot holding the container's writable layer.
    pub snapshot: String,
    pub restart_count: u32,
    pub net: Option<NetAttachment>,
    pub mounts: Vec<MountPoint>,
    /// Processes run with exec, by id (kept for inspect until the container is removed).
    #[serde(default)]
    pub exec_ids: Vec<String>,
    /// Networks (by name) the container joins besides `host.network_mode` when it starts.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Its places on those networks while it runs (`net` is the first network's).
    #[serde(default)]
    pub extra_nets: Vec<NetAttachment>,
    /// Aliases and fixed addresses asked for, by network name.
    #[serde(default)]
    pub endpoint_opts: BTreeMap<String, EndpointOpts>,
}

impl Container {
    /// Every network the running container is on, the first (default route) first.
    pub fn attachments(&self) -> impl Iterator<Item = &NetAttachment> {
        self.net.iter().chain(self.extra_nets.iter())
    }

    /// Ids of the user networks it is on: those where peers know it by name (the default
    /// network has no name resolution).
    pub fn user_network_ids(&self) -> Vec<String> {
        self.attachments()
            .filter(|a| a.network != super::network::DEFAULT_NETWORK)
            .map(|a| a.network_id.clone())
            .collect()
    }

    /// Its place on network `id_or_name`, if it has one.
    pub fn attachment(&self, id_or_name: &str) -> Option<&NetAttachment> {
        self.attachments()
            .find(|a| a.network_id == id_or_name || a.network == id_or_name)
    }
}
