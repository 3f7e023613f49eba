#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `exec` into a running container.

mod common;

use std::fs;
use std::time::Duration;

use common::{each_runtime, host_ns, ns_inode, Bundle};
use serde_json::json;

fn running(b: &mut Bundle) {
    b.args(&["sleep", "1000"]);
}

#[test]
fn exec_sees_same_namespaces_and_cgroup() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.cgroups_path();
        running(&mut b);
        let c = rt.container(&b);
        c.run_detached().ok();
        let pid = c.pid().to_string();
        let out = c
            .exec(&[
                "sh",
                "-c",
                "for n in pid mnt net ipc uts; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup",
            ])
            .ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (i, n) in ["pid", "mnt", "net", "ipc", "uts"].iter().enumerate() {
            assert_eq!(
                ns_inode(lines[i]),
                host_ns(&pid, n),
                "{n} ns differs from init's"
            );
        }
        let mut got: Vec<&str> = lines[5..].to_vec();
        let want_raw = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        let mut want: Vec<&str> = want_raw.lines().collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            got, want,
            "exec'd process must be in the container's cgroups"
        );
    });
}

#[test]
fn exec_exit_code_env_cwd_user() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        running(&mut b);
        let c = rt.container(&b);
        c.run_detached().ok();
        c.exec(&["sh", "-c", "exit 42"]).code_is(42);
        let out = c.exec_with(&["--env", "FOO=bar"], &["env"]).ok();
        assert!(out.stdout.lines().any(|l| l == "FOO=bar"), "{out}");
        // The container's own env is the base.
        assert!(out.stdout.lines().any(|l| l == "TERM=xterm"), "{out}");
        let out = c.exec_with(&["--cwd", "/etc"], &["pwd"]).ok();
        assert_eq!(out.stdout, "/etc\n");
        let out = c.exec_with(&["--user", "1000:1000"], &["id", "-u"]).ok();
        assert_eq!(out.stdout, "1000\n");
        let out = c.exec_with(&["--user", "1000:1000"], &["id", "-g"]).ok();
        assert_eq!(out.stdout, "1000\n");
    });
}

#[test]
fn exec_process_json() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        running(&mut b);
        let c = rt.container(&b);
        c.run_detached().ok();
        let p = c.scratch().join("process.json");
        let proc = json!({
            "terminal": false,
            "user": {"uid": 65534, "gid": 65534},
            "args": ["sh", "-c", "echo $FOO; pwd; id -u; grep NoNewPrivs /proc/self/status"],
            "env": ["FOO=from-json", "PATH=/bin"],
            "cwd": "/bin",
            "noNewPrivileges": true
        });
        fs::write(&p, proc.to_string()).expect("write process.json");
        let out = c.exec_with(&["--process", &p.to_string_lossy()], &[]).ok();
        assert_eq!(out.stdout, "from-json\n/bin\n65534\nNoNewPrivs:\t1\n");
    });
}

#[test]
fn exec_detached_with_pid_file() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        running(&mut b);
        let c = rt.container(&b);
        c.run_detached().ok();
        let pf = c.scratch().join("exec.pid");
        let out = c
            .exec_with(
                &["-d", "--pid-file", &pf.to_string_lossy()],
                &["sleep", "1000"],
            )
            .ok();
        assert!(out.elapsed < Duration::from_secs(10));
        let pid: i32 = fs::read_to_string(&pf)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        assert!(common::pid_alive(pid));
        assert_eq!(
            host_ns(&pid.to_string(), "pid"),
            host_ns(&c.pid().to_string(), "pid")
        );
        // `exec -d` may return before the process has exec'd the payload (runc's init stub is
        // still running as that pid for a moment).
        let cmdline = || fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            common::poll_until(Duration::from_secs(5), || cmdline() == "sleep\x001000\x00"),
            "pid {pid} runs {:?}",
            cmdline()
        );
    });
}

#[test]
fn exec_into_stopped_container_fails() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["true"]);
        let c = rt.container(&b);
        c.create().ok();
        c.start().ok();
        c.wait_exit();
        assert_eq!(c.status(), "stopped");
        c.exec(&["true"]).fails();
    });
}
