#![allow(clippy::expect_used, clippy::unwrap_used)]
//! OCI bundles for tests: a busybox rootfs and a `config.json` equivalent to `runc spec`
//! (with `terminal: false`), held as a `serde_json::Value` so tests can set any field,
//! including deliberately wrong ones.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// A bundle directory: `rootfs/` plus `config.json`, removed on drop.
pub struct Bundle {
    dir: tempfile::TempDir,
    pub spec: Value,
}

/// Where Debian's busybox-static installs the binary.
pub fn busybox_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("busybox not found: install busybox-static (scripts/deps.sh)")
    })
}

fn applets() -> &'static [String] {
    static A: OnceLock<Vec<String>> = OnceLock::new();
    A.get_or_init(|| {
        // Through the harness: a bare `Command::output` would race the subreaper's reaper.
        let out = super::host(&busybox_path().to_string_lossy(), &["--list"]).ok();
        out.stdout
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect()
    })
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\ntty:x:5:\nwheel:x:10:\nuser:x:1000:\nnogroup:x:65534:\n";

/// The `runc spec` (runc 1.1) default config with `terminal: false` and no cgroup mount.
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

impl Bundle {
    /// A fresh bundle with a busybox rootfs and the default spec.
    pub fn busybox() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("wt-bundle-")
            .tempdir()
            .expect("bundle temp dir");
        // World-searchable: a user-namespaced container's root must traverse it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let rootfs = dir.path().join("rootfs");
        for d in [
            "",
            "bin",
            "etc",
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "home",
            "home/user",
            "mnt",
        ] {
            fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs dir");
            fs::set_permissions(rootfs.join(d), fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .expect("chmod tmp");
        fs::copy(busybox_path(), rootfs.join("bin/busybox")).expect("copy busybox");
        for a in applets() {
            let link = rootfs.join("bin").join(a);
            if !link.exists() {
                symlink("busybox", &link).expect("applet symlink");
            }
        }
        fs::write(rootfs.join("etc/passwd"), PASSWD).expect("write passwd");
        fs::write(rootfs.join("etc/group"), GROUP).expect("write group");
        Bundle {
            dir,
            spec: default_spec(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Writes `config.json` from `self.spec` (done by `Runtime::container`).
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.spec).expect("serialize spec");
        fs::write(self.config_path(), text).expect("write config.json");
    }

    /// `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Sets the value at a JSON pointer, creating intermediate objects.
    pub fn set(&mut self, pointer: &str, v: Value) -> &mut Self {
        *pointer_mut(&mut self.spec, pointer) = v;
        self
    }

    /// Appends to the array at a JSON pointer, creating it if needed.
    pub fn push(&mut self, pointer: &str, v: Value) -> &mut Self {
        let slot = pointer_mut(&mut self.spec, pointer);
        if !slot.is_array() {
            *slot = json!([]);
        }
        slot.as_array_mut().expect("array").push(v);
        self
    }

    /// Removes the key at a JSON pointer (if present).
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
        if let Some(obj) = self.spec.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.remove(key);
        }
        self
    }

    pub fn mount(&mut self, dest: &str, typ: &str, src: &str, opts: &[&str]) -> &mut Self {
        self.push(
            "/mounts",
            json!({"destination": dest, "type": typ, "source": src, "options": opts}),
        )
    }

    pub fn bind(&mut self, src: &Path, dest: &str, opts: &[&str]) -> &mut Self {
        let mut o = vec!["rbind"];
        o.extend_from_slice(opts);
        self.mount(dest, "bind", &src.to_string_lossy(), &o)
    }

    /// A writable tmpfs at `dest` (the root is read-only by default).
    pub fn tmpfs(&mut self, dest: &str) -> &mut Self {
        self.mount(dest, "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"])
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(a) = self.spec["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != typ);
        }
        self
    }

    /// Adds (or replaces) a namespace entry, optionally joining `path`.
    pub fn namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(typ);
        let mut ns = json!({"type": typ});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.push("/linux/namespaces", ns)
    }

    /// A unique absolute `linux.cgroupsPath` (top level, so nothing is left behind).
    pub fn cgroups_path(&mut self) -> String {
        let p = format!("/wt-{}-{}", super::test_name(), super::unique());
        self.set("/linux/cgroupsPath", json!(p));
        p
    }

    /// lchown every entry of the rootfs (for user-namespace tests).
    pub fn chown_rootfs(&self, uid: u32, gid: u32) {
        fn walk(p: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).expect("lchown");
            if p.is_dir() && !p.is_symlink() {
                for e in fs::read_dir(p).expect("read_dir") {
                    walk(&e.expect("dir entry").path(), uid, gid);
                }
            }
        }
        walk(&self.rootfs(), uid, gid);
    }
}

fn pointer_mut<'v>(root: &'v mut Value, pointer: &str) -> &'v mut Value {
    let mut cur = root;
    for tok in pointer.split('/').skip(1) {
        if cur.is_null() {
            *cur = json!({});
        }
        cur = match cur {
            Value::Object(m) => m.entry(tok.to_string()).or_insert(Value::Null),
            Value::Array(a) => {
                let i: usize = tok.parse().expect("array index");
                &mut a[i]
            }
            other => panic!("cannot index {other} with {tok}"),
        };
    }
    cur
}
