//! A directory of compiled filters, `<cache_dir>/<sha256 hex>.bpf`.
//!
//! The key hashes everything the program depends on: a format version (bump it whenever the
//! generator's output changes), the native architecture, and the profile serialized from its
//! typed form (so key order and whitespace of the original JSON do not matter). Files are
//! written to a temporary name and renamed, so a reader sees a whole file or none; no fsync: a
//! file truncated by a crash fails validation and is rewritten.

use super::arch::Arch;
use super::{Error, Filter};
use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bump when the generated program for the same profile may change.
const FORMAT_VERSION: &str = "wharf-seccomp-bpf/1";

pub(crate) fn key(seccomp: &LinuxSeccomp, native: Arch) -> Option<String> {
    let json = serde_json::to_vec(seccomp).ok()?;
    let mut h = Sha256::new();
    h.update(FORMAT_VERSION.as_bytes());
    h.update([0]);
    h.update(native.name().as_bytes());
    h.update([0]);
    h.update(&json);
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for b in h.finalize() {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    Some(hex)
}

pub(crate) fn path(cache_dir: &Path, key: &str) -> PathBuf {
    cache_dir.join(format!("{key}.bpf"))
}

pub(crate) fn compile_cached(
    seccomp: &LinuxSeccomp,
    native: Arch,
    cache_dir: &Path,
) -> Result<Filter, Error> {
    let Some(key) = key(seccomp, native) else {
        return Filter::compile_for(seccomp, native);
    };
    let file = path(cache_dir, &key);
    match fs::read(&file) {
        Ok(bytes) => match Filter::from_bytes(&bytes) {
            Ok(filter) => return Ok(filter),
            Err(e) => {
                tracing::warn!(path = %file.display(), error = %e, "ignoring invalid seccomp cache file");
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %file.display(), error = %e, "cannot read seccomp cache file");
        }
    }
    let filter = Filter::compile_for(seccomp, native)?;
    if let Err(e) = write_atomic(cache_dir, &file, &filter.to_bytes()) {
        tracing::warn!(path = %file.display(), error = %e, "cannot write seccomp cache file");
    }
    Ok(filter)
}

fn write_atomic(dir: &Path, file: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".tmp-{}-{nanos}.bpf", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, file)
    })();
    if result.is_err() {
        // Best effort: the temporary file may not even exist.
        if let Err(e) = fs::remove_file(&tmp) {
            tracing::debug!(path = %tmp.display(), error = %e, "cannot remove temporary cache file");
        }
    }
    result
}
