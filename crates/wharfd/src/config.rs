//! Daemon configuration: defaults, an optional TOML file, then command-line flags.
//!
//! ```toml
//! data-root = "/var/lib/wharf"     # images, containers, volumes, state database
//! exec-root = "/run/wharf"         # sockets, runtime state, mounts
//! host = "/run/wharf/wharf.sock"   # the API socket
//! runhcs = "/usr/local/bin/runhcs" # the runtime and shim binary
//! nat-subnet = "172.30.0.0/16"     # subnet of the default `nat` network
//! log-max-size = 10485760          # json-file log rotation (bytes; 0 = never)
//! log-max-files = 3
//! insecure-registries = ["localhost:5000"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub host: PathBuf,
    pub runhcs: Option<PathBuf>,
    pub nat_subnet: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub insecure_registries: Vec<String>,
    /// Skip creating the default `nat` network (hosts without bridge support).
    pub no_default_network: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_root: PathBuf::from("/var/lib/wharf"),
            exec_root: PathBuf::from("/run/wharf"),
            host: PathBuf::from("/run/wharf/wharf.sock"),
            runhcs: None,
            nat_subnet: "172.30.0.0/16".into(),
            log_max_size: 10 << 20,
            log_max_files: 3,
            insecure_registries: Vec::new(),
            no_default_network: false,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// The runhcs binary: configured, next to wharfd, or on PATH.
    pub fn runhcs_path(&self) -> PathBuf {
        if let Some(p) = &self.runhcs {
            return p.clone();
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            let p = dir.join("runhcs");
            if p.exists() {
                return p;
            }
        }
        PathBuf::from("runhcs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_and_rejects_unknown_keys() {
        let c: Config = toml::from_str("data-root = \"/x\"\nlog-max-files = 5\n").expect("parse");
        assert_eq!(c.data_root, PathBuf::from("/x"));
        assert_eq!(c.log_max_files, 5);
        assert_eq!(c.exec_root, PathBuf::from("/run/wharf"));
        let e = toml::from_str::<Config>("data_root = \"/x\"\n").expect_err("unknown key");
        assert!(e.to_string().contains("data_root"), "{e}");
    }
}
