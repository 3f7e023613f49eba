//! The OCI runtime spec of a container: the image config merged with the container's
//! configuration, Docker's defaults (capabilities, masked paths, seccomp), mounts and limits.

use std::path::Path;

use serde_json::{json, Value};

use super::model::Container;
use crate::error::{ApiError, ApiResult};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this kernel knows (for `--privileged` and `--cap-add ALL`), in number
/// order; read once.
pub fn all_caps() -> Vec<String> {
    static ALL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<caps::Capability> = caps::runtime::procfs_all_supported(None)
            .map(|s| s.into_iter().collect())
            .unwrap_or_else(|_| caps::all().into_iter().collect());
        v.sort_by_key(|c| c.index());
        v.iter().map(|c| c.to_string()).collect()
    })
    .clone()
}

/// Normalises `net_admin`, `CAP_NET_ADMIN`, `ALL` to `CAP_NET_ADMIN` / `ALL`.
fn norm_cap(c: &str) -> String {
    let u = c.trim().to_ascii_uppercase();
    if u == "ALL" || u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// The capability set after `--cap-add` / `--cap-drop` (Docker's order: drop, then add).
pub fn capabilities(c: &Container) -> ApiResult<Vec<String>> {
    if c.host.privileged {
        return Ok(all_caps());
    }
    let known = all_caps();
    let check = |list: &[String], field: &str| -> ApiResult<Vec<String>> {
        list.iter()
            .map(|x| {
                let n = norm_cap(x);
                if n != "ALL" && !known.contains(&n) {
                    return Err(ApiError::bad_request(format!(
                        "invalid HostConfig.{field}: unknown capability {x:?}"
                    )));
                }
                Ok(n)
            })
            .collect()
    };
    let add = check(&c.host.cap_add, "CapAdd")?;
    let drop = check(&c.host.cap_drop, "CapDrop")?;
    let mut set: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|s| !drop.contains(s))
            .collect()
    };
    if add.iter().any(|a| a == "ALL") {
        return Ok(known);
    }
    for a in add {
        if !set.contains(&a) {
            set.push(a);
        }
    }
    Ok(set)
}

/// Paths Docker masks or makes read-only in unprivileged containers.
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Syscalls Docker's profile adds when the container holds a capability beyond the default set.
const CAP_SYSCALLS: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The default seccomp profile (omitted for `--privileged` or `seccomp=unconfined`).
fn seccomp(c: &Container, caps: &[String]) -> Option<Value> {
    if c.host.privileged
        || c.host
            .security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined")
    {
        return None;
    }
    // Docker's allow-list for the default capability set (kept in hcs), widened by the
    // syscalls of each extra capability the container holds, as Docker does.
    static DOCKER: std::sync::OnceLock<Option<Value>> = std::sync::OnceLock::new();
    let mut profile = DOCKER
        .get_or_init(|| serde_json::to_value(hcs::seccomp::default_profile()).ok())
        .clone()?;
    let extra: Vec<&str> = CAP_SYSCALLS
        .iter()
        .filter(|(cap, _)| caps.iter().any(|c| c == cap))
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    if !extra.is_empty() {
        if let Some(rules) = profile["syscalls"].as_array_mut() {
            rules.push(json!({"names": extra, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    Some(profile)
}

/// Everything the spec needs besides the container record.
pub struct SpecInputs<'a> {
    pub rootfs: &'a Path,
    pub caps: Vec<String>,
    /// Network namespace to join; `None` with `new_netns` makes an empty one (`--network none`).
    pub netns: Option<&'a Path>,
    pub new_netns: bool,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Extra mounts (binds, volumes, tmpfs, /etc files) in order.
    pub mounts: Vec<Value>,
    pub cgroups_path: String,
}

pub fn build(c: &Container, i: SpecInputs<'_>) -> Value {
    let mut args = Vec::new();
    if !c.path.is_empty() {
        args.push(c.path.clone());
    }
    args.extend(c.args.iter().cloned());
    let cwd = if c.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        c.config.working_dir.clone()
    };
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match (i.netns, i.new_netns) {
        (Some(p), _) => namespaces.push(json!({"type": "network", "path": p})),
        (None, true) => namespaces.push(json!({"type": "network"})),
        (None, false) => {}
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if c.host.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", if c.host.shm_size > 0 { c.host.shm_size } else { 64 << 20 })]}),
    ];
    mounts.extend(i.mounts);

    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if c.host.memory > 0 {
        resources["memory"] = json!({"limit": c.host.memory});
        if c.host.memory_swap != 0 {
            resources["memory"]["swap"] = json!(c.host.memory_swap);
        }
    }
    let mut cpu = json!({});
    if c.host.nano_cpus > 0 {
        cpu["period"] = json!(100_000u64);
        cpu["quota"] = json!(c.host.nano_cpus / 10_000);
    } else if c.host.cpu_quota > 0 {
        cpu["quota"] = json!(c.host.cpu_quota);
        cpu["period"] = json!(if c.host.cpu_period > 0 {
            c.host.cpu_period
        } else {
            100_000
        });
    }
    if c.host.cpu_shares > 0 {
        cpu["shares"] = json!(c.host.cpu_shares);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        resources["cpu"] = cpu;
    }
    if let Some(p) = c.host.pids_limit.filter(|p| *p > 0) {
        resources["pids"] = json!({"limit": p});
    }
    if c.host.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    } else {
        // The standard character devices every container gets.
        resources["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        ]);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": i.cgroups_path,
        "sysctl": c.host.sysctls,
    });
    if !c.host.privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    if let Some(s) = seccomp(c, &i.caps) {
        linux["seccomp"] = s;
    }
    let mut user = json!({"uid": i.uid, "gid": i.gid});
    if !i.additional_gids.is_empty() {
        user["additionalGids"] = json!(i.additional_gids);
    }
    let no_new_privs = c.host.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let hostname = if c.config.hostname.is_empty() {
        c.id[..12].to_string()
    } else {
        c.config.hostname.clone()
    };
    let mut process = json!({
        "terminal": c.config.tty,
        "user": user,
        "args": args,
        "env": i.env,
        "cwd": cwd,
        "capabilities": {
            "bounding": i.caps, "effective": i.caps, "permitted": i.caps,
        },
        "noNewPrivileges": no_new_privs,
    });
    if c.config.tty {
        if let [h, w] = c.host.console_size[..] {
            if h > 0 && w > 0 {
                process["consoleSize"] = json!({"height": h, "width": w});
            }
        }
    }
    json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": i.rootfs, "readonly": c.host.readonly_rootfs},
        "hostname": hostname,
        "domainname": c.config.domainname,
        "mounts": mounts,
        "linux": linux,
    })
}
