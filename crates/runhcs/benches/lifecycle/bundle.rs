#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The bundles the bench runs: a busybox root filesystem shared by a plain `runc spec`-like
//! config and one with a default-like seccomp profile.

use super::{workspace_root, BUSYBOX, CAPS};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const CONTAINERS_SECCOMP: &str = "/usr/share/containers/seccomp.json";

pub struct Bundle {
    pub name: &'static str,
    pub dir: PathBuf,
}

/// The busybox root filesystem: the static binary, its applet links and a minimal /etc.
pub fn build_rootfs(rootfs: &Path) -> Result<()> {
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
    ] {
        fs::create_dir_all(rootfs.join(dir)).with_context(|| format!("create {dir}"))?;
    }
    fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
        .with_context(|| format!("copy {BUSYBOX} (install busybox-static: scripts/deps.sh)"))?;
    let list = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .context("busybox --list-full")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = rootfs.join(applet);
        if applet.is_empty() || applet == "bin/busybox" || link.exists() {
            continue;
        }
        symlink("/bin/busybox", &link).with_context(|| format!("link {applet}"))?;
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// `runc spec` with `terminal: false`, the given args and an absolute, shared rootfs.
pub fn runc_like_spec(rootfs: &Path, args: &[&str], seccomp: Option<&Value>) -> Value {
    let caps = json!(CAPS);
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs, "readonly": true },
        "hostname": "bench",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                            { "type": "uts" }, { "type": "mount" } ],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if let Some(seccomp) = seccomp {
        spec["linux"]["seccomp"] = seccomp.clone();
    }
    spec
}

pub fn write_bundle(base: &Path, name: &'static str, spec: &Value) -> Result<Bundle> {
    let dir = base.join(format!("bundle-{name}"));
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("config.json"), serde_json::to_vec_pretty(spec)?)
        .with_context(|| format!("write {}/config.json", dir.display()))?;
    Ok(Bundle { name, dir })
}

/// The seccomp profile for the second bundle, as an OCI `LinuxSeccomp` object, and where it
/// came from; `None` when neither source exists.
pub fn seccomp_profile() -> Result<Option<(Value, String)>> {
    let ours = workspace_root().join("crates/hcs/src/seccomp/default-profile.json");
    if ours.is_file() {
        let text = fs::read_to_string(&ours).with_context(|| format!("read {}", ours.display()))?;
        let profile =
            serde_json::from_str(&text).with_context(|| format!("parse {}", ours.display()))?;
        return Ok(Some((profile, ours.display().to_string())));
    }
    if Path::new(CONTAINERS_SECCOMP).is_file() {
        let text = fs::read_to_string(CONTAINERS_SECCOMP)?;
        let profile: Value =
            serde_json::from_str(&text).context("parse containers seccomp.json")?;
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let oci = containers_profile_to_oci(&profile, &CAPS, &kernel);
        return Ok(Some((
            oci,
            format!("{CONTAINERS_SECCOMP} (resolved for amd64 and the bundle's caps)"),
        )));
    }
    Ok(None)
}

/// Resolves a Docker / containers-common profile (with `archMap`, `includes`, `excludes`) into the
/// OCI form for amd64 and the given capabilities, as the engines do before calling a runtime.
fn containers_profile_to_oci(profile: &Value, caps: &[&str], kernel: &str) -> Value {
    let arch = "amd64";
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let kernel_at_least = |min: &str| version_tuple(kernel) >= version_tuple(min);
    let mut syscalls = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &rule["includes"];
        let exc = &rule["excludes"];
        let inc_arches = strs(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == arch) {
            continue;
        }
        if strs(&exc["arches"]).iter().any(|a| a == arch) {
            continue;
        }
        if !strs(&inc["caps"])
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if strs(&exc["caps"])
            .iter()
            .any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if let Some(min) = inc["minKernel"].as_str() {
            if !kernel_at_least(min) {
                continue;
            }
        }
        let mut out = json!({ "names": rule["names"], "action": rule["action"] });
        if let Some(args) = rule["args"].as_array().filter(|a| !a.is_empty()) {
            out["args"] = Value::Array(args.clone());
        }
        if let Some(errno) = rule["errnoRet"].as_u64() {
            out["errnoRet"] = errno.into();
        }
        syscalls.push(out);
    }
    let mut architectures = Vec::new();
    for entry in profile["archMap"].as_array().into_iter().flatten() {
        if entry["architecture"] == "SCMP_ARCH_X86_64" {
            architectures.push(entry["architecture"].clone());
            architectures.extend(
                entry["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let mut oci = json!({ "defaultAction": profile["defaultAction"], "architectures": architectures, "syscalls": syscalls });
    if let Some(errno) = profile["defaultErrnoRet"].as_u64() {
        oci["defaultErrnoRet"] = errno.into();
    }
    oci
}

fn version_tuple(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}
