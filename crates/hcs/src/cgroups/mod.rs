//! Control groups for containers: v1, v2, and the hybrid layout (v1 controllers plus a cgroup2
//! mount). STUB — being written; see the interface below.

use oci_spec::runtime::LinuxResources;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroups are not implemented yet")]
    NotImplemented,
}

/// The cgroup of one container, in every hierarchy this host has.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manager {
    path: String,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {}

impl Manager {
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Self, Error> {
        Ok(Manager { path: cgroups_path.map_or_else(|| format!("/runhcs/{id}"), |p| p.display().to_string()) })
    }
    pub fn create(&self) -> Result<(), Error> { Ok(()) }
    pub fn apply(&self, _resources: &LinuxResources) -> Result<(), Error> { Ok(()) }
    pub fn add_process(&self, _pid: i32) -> Result<(), Error> { Ok(()) }
    pub fn freeze(&self) -> Result<(), Error> { Err(Error::NotImplemented) }
    pub fn thaw(&self) -> Result<(), Error> { Err(Error::NotImplemented) }
    pub fn pids(&self) -> Result<Vec<i32>, Error> { Err(Error::NotImplemented) }
    pub fn stats(&self) -> Result<Stats, Error> { Err(Error::NotImplemented) }
    pub fn destroy(&self) -> Result<(), Error> { Ok(()) }
    pub fn is_frozen(&self) -> Result<bool, Error> { Ok(false) }
    pub fn kill_all(&self, _sig: i32) -> Result<(), Error> { Err(Error::NotImplemented) }
    pub fn path_in_hierarchy(&self) -> String { self.path.clone() }
}
