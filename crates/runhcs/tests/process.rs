#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `process.*` and the per-process bits of `linux.*`, checked from inside the container.

mod common;

use common::{each_runtime, status_field, Bundle};
use serde_json::json;

#[test]
fn args_are_exact() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["cat", "/proc/self/cmdline"]);
        let out = rt.container(&b).run().ok();
        assert_eq!(out.stdout, "cat\0/proc/self/cmdline\0");
        b.args(&["echo", "a  b", "", "c"]);
        let out = rt.container(&b).run().ok();
        assert_eq!(out.stdout, "a  b  c\n");
    });
}

#[test]
fn env_is_exact() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set(
            "/process/env",
            json!(["PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/root"]),
        );
        // `cat /proc/self/environ` shows exactly what execve got (a shell adds variables).
        b.args(&["cat", "/proc/self/environ"]);
        let out = rt.container(&b).run().ok();
        let mut got: Vec<&str> = out.stdout.split('\0').filter(|s| !s.is_empty()).collect();
        got.sort_unstable();
        assert_eq!(got, ["EMPTY=", "FOO=bar baz", "HOME=/root", "PATH=/bin"]);
    });
}

#[test]
fn home_defaults_from_passwd() {
    // runc (like Docker) sets HOME from the user's passwd entry when the spec has none.
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.sh("echo $HOME");
        assert_eq!(rt.container(&b).run().ok().stdout, "/home/user\n");
    });
}

#[test]
fn cwd() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set("/process/cwd", json!("/etc"));
        b.args(&["pwd"]);
        assert_eq!(rt.container(&b).run().ok().stdout, "/etc\n");
    });
}

#[test]
fn user_uid_gid_additional_gids() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set(
            "/process/user",
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 65534]}),
        );
        b.args(&["cat", "/proc/self/status"]);
        let st = rt.container(&b).run().ok().stdout;
        assert_eq!(status_field(&st, "Uid"), Some("1000\t1000\t1000\t1000"));
        assert_eq!(status_field(&st, "Gid"), Some("1000\t1000\t1000\t1000"));
        let mut groups: Vec<&str> = status_field(&st, "Groups")
            .unwrap_or("")
            .split_whitespace()
            .collect();
        groups.sort_unstable();
        assert_eq!(groups, ["10", "65534"], "{st}");

        b.args(&["id"]);
        let id = rt.container(&b).run().ok().stdout;
        assert!(id.starts_with("uid=1000(user) gid=1000(user)"), "{id}");
        assert!(
            id.contains("10(wheel)") && id.contains("65534(nogroup)"),
            "{id}"
        );
    });
}

#[test]
fn umask() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set("/process/user/umask", json!(0o027));
        b.args(&["sh", "-c", "umask"]);
        assert_eq!(rt.container(&b).run().ok().stdout, "0027\n");
    });
}

#[test]
fn rlimits() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set(
            "/process/rlimits",
            json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
                {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
            ]),
        );
        b.sh("ulimit -n; ulimit -Hn; cat /proc/self/limits");
        let out = rt.container(&b).run().ok().stdout;
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("512"));
        assert_eq!(lines.next(), Some("1000"));
        let limit = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        assert_eq!(limit("Max open files"), "Max open files 512 1000 files");
        assert_eq!(limit("Max processes"), "Max processes 300 400 processes");
        assert_eq!(limit("Max core file size"), "Max core file size 0 0 bytes");
    });
}

#[test]
fn no_new_privileges() {
    each_runtime(|rt| {
        for (nnp, want) in [(true, "1"), (false, "0")] {
            let mut b = Bundle::busybox();
            b.set("/process/noNewPrivileges", json!(nnp));
            b.args(&["cat", "/proc/self/status"]);
            let st = rt.container(&b).run().ok().stdout;
            assert_eq!(status_field(&st, "NoNewPrivs"), Some(want), "nnp={nnp}");
        }
    });
}

fn caps_of(rt: &common::Runtime, b: &Bundle) -> [String; 5] {
    let st = rt.container(b).run().ok().stdout;
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .map(|k| status_field(&st, k).unwrap_or("missing").to_string())
}

/// AUDIT_WRITE(29) | KILL(5) | NET_BIND_SERVICE(10).
const DEFAULT_CAPS: &str = "0000000020000420";
const NONE: &str = "0000000000000000";

#[test]
fn capabilities_default_spec() {
    each_runtime(|rt| {
        // The `runc spec` default lists ambient caps but no inheritable set. The kernel only
        // raises an ambient cap that is also inheritable, so ambient stays empty (runc ignores
        // the failed raise; a runtime aiming at runc compatibility must run this spec too).
        let mut b = Bundle::busybox();
        b.args(&["cat", "/proc/self/status"]);
        assert_eq!(
            caps_of(rt, &b),
            [NONE, DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, NONE]
        );
    });
}

#[test]
fn capabilities_all_five_sets() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        b.set("/process/capabilities/inheritable", caps);
        b.args(&["cat", "/proc/self/status"]);
        assert_eq!(caps_of(rt, &b), [DEFAULT_CAPS; 5].map(String::from));

        // A non-root user keeps its caps across execve only through the ambient set.
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        assert_eq!(caps_of(rt, &b), [DEFAULT_CAPS; 5].map(String::from));

        // Bounding wider than effective; nothing ambient.
        let mut b = Bundle::busybox();
        b.set(
            "/process/capabilities",
            json!({
                "bounding": ["CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"],
                "permitted": ["CAP_KILL"],
                "effective": ["CAP_KILL"]
            }),
        );
        b.args(&["cat", "/proc/self/status"]);
        // NET_RAW(13) | SYS_CHROOT(18) | KILL(5)
        assert_eq!(
            caps_of(rt, &b),
            [
                NONE,
                "0000000000000020",
                "0000000000000020",
                "0000000000042020",
                NONE
            ]
        );
    });
}

#[test]
fn hostname() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set("/hostname", json!("wt-host"));
        b.args(&["hostname"]);
        assert_eq!(rt.container(&b).run().ok().stdout, "wt-host\n");
    });
}

/// runhcs-only: runc 1.1.5 ignores `domainname` (support arrived in runc 1.2; here it
/// prints "(none)"). The spec (1.0.2+) defines it, so runhcs must apply it.
#[test]
fn domainname() {
    common::each_runtime_where(
        |rt| rt.is_runhcs(),
        |rt| {
            let mut b = Bundle::busybox();
            b.set("/hostname", json!("wt-host"));
            b.set("/domainname", json!("wt.example"));
            b.sh("hostname; cat /proc/sys/kernel/domainname");
            assert_eq!(rt.container(&b).run().ok().stdout, "wt-host\nwt.example\n");
        },
    );
}

#[test]
fn oom_score_adj() {
    each_runtime(|rt| {
        // No CAP_SYS_RESOURCE on this host: only values >= the caller's (0) can be set.
        let mut b = Bundle::busybox();
        b.set("/process/oomScoreAdj", json!(123));
        b.args(&["cat", "/proc/self/oom_score_adj"]);
        assert_eq!(rt.container(&b).run().ok().stdout, "123\n");
    });
}

#[test]
fn sysctl_in_net_namespace() {
    each_runtime(|rt| {
        let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
        let mut b = Bundle::busybox();
        b.set(
            "/linux/sysctl",
            json!({"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "7 8"}),
        );
        b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ping_group_range");
        let out = rt.container(&b).run().ok().stdout;
        let got: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(got, ["1", "7 8"]);
        let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
        assert_eq!(host_before, host_after, "sysctl leaked to the host netns");
    });
}

/// `process.scheduler` and `process.ioPriority` (runtime-spec 1.2; runc 1.1.5 predates them).
#[test]
fn scheduler_and_io_priority() {
    common::each_runtime_where(
        |rt| !rt.is_runc(),
        |rt| {
            let mut b = Bundle::busybox();
            b.set(
                "/process/scheduler",
                json!({"policy": "SCHED_BATCH", "nice": 7}),
            );
            b.set(
                "/process/ioPriority",
                json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
            );
            // /proc/self/stat: nice is field 19, policy field 41 (SCHED_BATCH = 3).
            b.sh("cut -d' ' -f19,41 /proc/self/stat; ionice -p $$");
            let out = rt.container(&b).run().ok().stdout;
            let mut lines = out.lines();
            assert_eq!(lines.next(), Some("7 3"), "{out}");
            assert!(lines.next().is_some_and(|l| l.starts_with("idle")), "{out}");

            b.set(
                "/process/scheduler",
                json!({"policy": "SCHED_FIFO", "nice": 1}),
            );
            let err = rt.container(&b).run().fails();
            assert!(err.all().contains("process.scheduler.nice"), "{err}");
        },
    );
}

/// `execCPUAffinity.final` pins an exec'd process; the init keeps the cgroup's CPUs.
#[test]
fn exec_cpu_affinity() {
    common::each_runtime_where(
        |rt| !rt.is_runc(),
        |rt| {
            let mut b = Bundle::busybox();
            b.args(&["sleep", "1000"]);
            let c = rt.container(&b);
            c.run_detached().ok();
            let process = json!({
                "args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "env": ["PATH=/bin"], "execCPUAffinity": {"initial": "0", "final": "0"}
            });
            let dir = tempfile::tempdir().unwrap();
            let pj = dir.path().join("process.json");
            std::fs::write(&pj, process.to_string()).unwrap();
            let out = c
                .exec_with(&["--process", pj.to_str().unwrap()], &[])
                .ok()
                .stdout;
            let allowed = out
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(str::trim);
            assert_eq!(allowed, Some("0"), "{out}");
        },
    );
}

/// `linux.memoryPolicy` (runtime-spec 1.2): the process's NUMA policy, seen in numa_maps.
#[test]
fn memory_policy() {
    common::each_runtime_where(
        |rt| !rt.is_runc(),
        |rt| {
            let mut b = Bundle::busybox();
            b.set(
                "/linux/memoryPolicy",
                json!({"mode": "MPOL_BIND", "nodes": "0"}),
            );
            b.sh("grep -c ' bind:0 ' /proc/self/numa_maps");
            let out = rt.container(&b).run().ok().stdout;
            assert!(out.trim().parse::<u32>().unwrap() > 0, "{out}");

            b.set("/linux/memoryPolicy", json!({"mode": "MPOL_BIND"}));
            let err = rt.container(&b).run().fails();
            assert!(err.all().contains("linux.memoryPolicy.nodes"), "{err}");
        },
    );
}
