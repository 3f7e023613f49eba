//! Seccomp: the OCI seccomp object compiled to a BPF program. STUB — being written.

use oci_spec::runtime::LinuxSeccomp;
use std::os::fd::OwnedFd;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp is not implemented yet")]
    NotImplemented,
}

impl Error {
    pub fn is_invalid_profile(&self) -> bool { false }
}

#[derive(Debug, Clone)]
pub struct Filter {}

impl Filter {
    pub fn compile(_seccomp: &LinuxSeccomp) -> Result<Filter, Error> { Err(Error::NotImplemented) }
    pub fn compile_cached(seccomp: &LinuxSeccomp, _cache_dir: &Path) -> Result<Filter, Error> { Self::compile(seccomp) }
    pub fn install(&self) -> Result<Option<OwnedFd>, Error> { Err(Error::NotImplemented) }
}
