//! Loading and validating an OCI bundle's `config.json`.
//!
//! Errors name the file and the JSON path of the field (`process.user.uid`), so a user can fix
//! the document without guessing.

use crate::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// A bundle whose `config.json` has been parsed and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Reads `<dir>/config.json`, resolves the root path and validates what the runtime relies on.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("open bundle", dir, e))?;
        let file = dir.join("config.json");
        let bytes = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
        let spec = parse_spec(&bytes, &file)?;
        let rootfs = rootfs_of(&spec, &dir, &file)?;
        validate(&spec, &file)?;
        Ok(Bundle { dir, spec, rootfs })
    }

    /// A bundle from a spec that came in a document rather than a file (`OciSpecification`):
    /// `source` names the document in errors.
    pub fn from_spec(dir: &Path, spec: Spec, source: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("open bundle", dir, e))?;
        let rootfs = rootfs_of(&spec, &dir, source)?;
        validate(&spec, source)?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Parses a runtime spec, reporting the JSON path of a bad field.
pub fn parse_spec(bytes: &[u8], file: &Path) -> Result<Spec> {
    parse_json(bytes, file)
}

/// Parses a `process.json` (for `exec --process`).
pub fn parse_process(bytes: &[u8], file: &Path) -> Result<oci_spec::runtime::Process> {
    parse_json(bytes, file)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], file: &Path) -> Result<T> {
    // The fast parser first; only a document that fails is parsed again with path tracking
    // (which costs several times as much) to name the field.
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::InvalidConfig {
            file: file.to_path_buf(),
            field: if path == "." {
                "(document)".into()
            } else {
                path
            },
            reason: e.into_inner().to_string(),
        }
    })
}

fn invalid(file: &Path, field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        file: file.to_path_buf(),
        field: field.into(),
        reason: reason.into(),
    }
}

fn rootfs_of(spec: &Spec, dir: &Path, file: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid(file, "root", "missing"))?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(invalid(file, "root.path", "empty"));
    }
    let abs = if p.is_absolute() {
        p.clone()
    } else {
        dir.join(p)
    };
    let canon = std::fs::canonicalize(&abs)
        .map_err(|e| invalid(file, "root.path", format!("{}: {e}", abs.display())))?;
    if !canon.is_dir() {
        return Err(invalid(
            file,
            "root.path",
            format!("{} is not a directory", canon.display()),
        ));
    }
    Ok(canon)
}

fn validate(spec: &Spec, file: &Path) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid(file, "process", "missing"))?;
    validate_process(process, file)?;
    let Some(linux) = spec.linux() else {
        return Err(invalid(
            file,
            "linux",
            "missing: this runtime runs Linux containers",
        ));
    };
    if linux.intel_rdt().is_some() {
        // The spec: a runtime that cannot apply intelRdt must fail, not ignore it.
        let why = if Path::new("/sys/fs/resctrl/schemata").exists() {
            "Intel RDT (resctrl) is not supported by this runtime yet"
        } else {
            "this host has no resctrl filesystem mounted at /sys/fs/resctrl"
        };
        return Err(invalid(file, "linux.intelRdt", why));
    }
    let mut seen = Vec::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if seen.contains(&ns.typ()) {
            return Err(invalid(
                file,
                &format!("linux.namespaces[{i}]"),
                format!("duplicate namespace {:?}", ns.typ()),
            ));
        }
        seen.push(ns.typ());
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    file,
                    &format!("linux.namespaces[{i}].path"),
                    "must be absolute",
                ));
            }
        }
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if has_maps && !has_userns {
        return Err(invalid(
            file,
            "linux.uidMappings",
            "mappings need a user namespace in linux.namespaces",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            file,
            "hostname",
            "setting a hostname needs a uts namespace",
        ));
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(
            p.as_str(),
            "" | "private"
                | "rprivate"
                | "slave"
                | "rslave"
                | "shared"
                | "rshared"
                | "unbindable"
                | "runbindable"
        ) {
            return Err(invalid(
                file,
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            ));
        }
    }
    if let Some(label) = linux.mount_label().as_ref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(invalid(
                file,
                "linux.mountLabel",
                format!("SELinux is not enabled on this host (label {label:?})"),
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                file,
                &format!("mounts[{i}].destination"),
                "must be an absolute path",
            ));
        }
    }
    Ok(())
}

/// Checks a process object (from config.json or an exec `--process` file).
pub fn validate_process(process: &oci_spec::runtime::Process, file: &Path) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid(file, "process.args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(file, "process.cwd", "must be an absolute path"));
    }
    if let Some(p) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(invalid(
                file,
                "process.apparmorProfile",
                format!("AppArmor is not enabled on this host (profile {p:?})"),
            ));
        }
        return Err(invalid(
            file,
            "process.apparmorProfile",
            "AppArmor profiles are not supported by this runtime yet",
        ));
    }
    if let Some(l) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(invalid(
                file,
                "process.selinuxLabel",
                format!("SELinux is not enabled on this host (label {l:?})"),
            ));
        }
        return Err(invalid(
            file,
            "process.selinuxLabel",
            "SELinux labels are not supported by this runtime yet",
        ));
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') || e.starts_with('=') {
            return Err(invalid(
                file,
                &format!("process.env[{i}]"),
                format!("{e:?} is not KEY=value"),
            ));
        }
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_field_path() {
        let doc = br#"{"ociVersion":"1.0.2","process":{"user":{"uid":"zero","gid":0},"cwd":"/","args":["sh"]},"root":{"path":"rootfs"}}"#;
        let err = parse_spec(doc, Path::new("/b/config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/b/config.json"), "{err}");
        assert!(err.contains("process.user.uid"), "{err}");
    }

    #[test]
    fn bad_json_is_reported() {
        let err = parse_spec(b"{", Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.json"), "{err}");
    }
}
