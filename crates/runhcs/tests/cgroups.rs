#![allow(clippy::expect_used, clippy::unwrap_used)]
//! cgroup v1 (hybrid host): limits visible on the host and inside, enforced, cleaned up.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{each_runtime, Bundle};
use serde_json::json;

const MEM: u64 = 64 * 1024 * 1024;

fn v1(ctrl: &str, path: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{path}"))
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn limited_bundle() -> (Bundle, String) {
    let mut b = Bundle::busybox();
    let cg = b.cgroups_path();
    b.set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": MEM},
            "pids": {"limit": 32},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000}
        }),
    );
    (b, cg)
}

#[test]
fn limits_visible_on_host_and_cleaned_up() {
    each_runtime(|rt| {
        let (mut b, cg) = limited_bundle();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        c.run_detached().ok();
        assert_eq!(
            read(v1("memory", &cg).join("memory.limit_in_bytes")),
            MEM.to_string()
        );
        assert_eq!(read(v1("pids", &cg).join("pids.max")), "32");
        assert_eq!(read(v1("cpu", &cg).join("cpu.shares")), "512");
        assert_eq!(read(v1("cpu", &cg).join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(v1("cpu", &cg).join("cpu.cfs_period_us")), "100000");
        // The init really is in that cgroup.
        let procs = read(v1("pids", &cg).join("cgroup.procs"));
        assert!(
            procs.split_whitespace().any(|p| p == c.pid().to_string()),
            "init {} not in {procs}",
            c.pid()
        );
        c.delete_force().ok();
        for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
            assert!(
                !v1(ctrl, &cg).exists(),
                "{ctrl}{cg} left behind after delete"
            );
        }
    });
}

#[test]
fn limits_visible_inside() {
    each_runtime(|rt| {
        let (mut b, _cg) = limited_bundle();
        b.mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        );
        b.sh(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
             /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        );
        let out = rt.container(&b).run().ok().stdout;
        assert_eq!(out, format!("{MEM}\n32\n512\n50000\n"));
    });
}

#[test]
fn pids_limit_enforced() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.cgroups_path();
        b.set("/linux/resources/pids", json!({"limit": 5}));
        b.sh("for i in $(seq 20); do sleep 5 & done; echo ALL-FORKED");
        let out = rt.container(&b).run();
        assert!(
            !out.stdout.contains("ALL-FORKED"),
            "pids.max=5 not enforced: {out}"
        );
        assert!(out.stderr.contains("fork"), "{out}");
        out.fails();
    });
}

#[test]
fn memory_limit_enforced() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.cgroups_path();
        b.set(
            "/linux/resources/memory",
            json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024}),
        );
        b.mount("/big", "tmpfs", "tmpfs", &["size=64m"]);
        // tmpfs pages are charged to the writer's memory cgroup.
        b.sh("echo STARTED; dd if=/dev/zero of=/big/f bs=1M count=48 && echo FILLED");
        let out = rt.container(&b).run();
        assert!(
            out.stdout.starts_with("STARTED"),
            "container did not run: {out}"
        );
        assert!(
            !out.stdout.contains("FILLED"),
            "memory limit not enforced: {out}"
        );
    });
}
