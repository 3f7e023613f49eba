#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Container lifecycle: create/start/state/kill/delete, run, list, pause/resume.

mod common;

use std::time::Duration;

use common::{each_runtime, pid_alive, Bundle};

#[test]
fn run_propagates_exit_code() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.sh("exit 7");
        rt.container(&b).run().code_is(7);
        b.sh("echo out; echo err >&2");
        let out = rt.container(&b).run().ok();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr.trim_end(), "err");
    });
}

#[test]
fn create_start_kill_delete() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        c.create().ok();
        let st = c.state();
        assert_eq!(st["status"], "created", "{st}");
        assert_eq!(st["id"], c.id.as_str());
        assert_eq!(st["pid"].as_i64(), Some(c.pid() as i64));
        assert!(c.pid() > 0 && pid_alive(c.pid()), "init pid must be alive");
        let bundle = st["bundle"].as_str().expect("state.bundle");
        assert_eq!(
            std::fs::canonicalize(bundle).expect("bundle path"),
            std::fs::canonicalize(b.path()).expect("bundle path")
        );
        c.start().ok();
        assert_eq!(c.status(), "running");
        c.kill("KILL").ok();
        assert_eq!(c.wait_exit(), Some(128 + 9));
        assert_eq!(c.status(), "stopped");
        c.delete().ok();
        let err = c.try_state().expect_err("state after delete must fail");
        assert!(err.code.is_some(), "{err}");
        assert!(!c.root().join(&c.id).exists(), "state dir left behind");
    });
}

#[test]
fn run_detached() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.sh("echo detached-hello; exec sleep 1000");
        let c = rt.container(&b);
        let out = c.run_detached().ok();
        assert!(
            out.elapsed < Duration::from_secs(10),
            "run -d must return promptly"
        );
        assert_eq!(c.status(), "running");
        assert!(pid_alive(c.pid()));
        assert!(common::poll_until(Duration::from_secs(5), || c
            .init_stdout()
            .contains("detached-hello")));
    });
}

#[test]
fn pid_file_matches_state() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        let pid_file = c.scratch().join("init.pid");
        c.create_with(&["--pid-file", &pid_file.to_string_lossy()])
            .ok();
        let text = std::fs::read_to_string(&pid_file).expect("pid file written");
        assert_eq!(text.trim().parse::<i32>().ok(), Some(c.pid()), "{text:?}");
    });
}

#[test]
fn list_shows_container() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        c.create().ok();
        let table = c.cmd(&["list"]).run().ok();
        let header = table.stdout.lines().next().unwrap_or("");
        for col in ["ID", "PID", "STATUS", "BUNDLE"] {
            assert!(header.contains(col), "list header lacks {col}: {table}");
        }
        let row = table
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
            .unwrap_or_else(|| panic!("list lacks {}: {table}", c.id));
        assert!(row.contains("created"), "{row}");
        assert!(row.contains(&c.pid().to_string()), "{row}");

        let json = c.cmd(&["list", "--format", "json"]).run().ok();
        let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("list json");
        let arr = v.as_array().expect("list --format json is an array");
        assert_eq!(arr.len(), 1, "{v}");
        assert_eq!(arr[0]["id"], c.id.as_str());
        assert_eq!(arr[0]["status"], "created");
        assert_eq!(arr[0]["pid"].as_i64(), Some(c.pid() as i64));

        // `-q` prints ids only.
        let q = c.cmd(&["list", "-q"]).run().ok();
        assert_eq!(q.stdout.trim(), c.id);
    });
}

/// youki 0.7 loses the SIGCHLD of an instantly exiting container ~5% of the time and hangs.
/// `/bin/true` and `/bin/false` alternate so a runtime that runs nothing cannot pass.
#[test]
fn instant_exit_never_hangs() {
    each_runtime(|rt| {
        let mut bt = Bundle::busybox();
        bt.args(&["/bin/true"]);
        let mut bf = Bundle::busybox();
        bf.args(&["/bin/false"]);
        let (ct, cf) = (rt.container(&bt), rt.container(&bf));
        for i in 0..50 {
            let (c, b, want) = if i % 2 == 0 {
                (&ct, &bt, 0)
            } else {
                (&cf, &bf, 1)
            };
            let id = format!("{}-{i}", c.id);
            let mut cmd = c.cmd(&["run", "--bundle"]);
            cmd.arg(b.path()).arg(&id).timeout(Duration::from_secs(10));
            let out = cmd.run();
            assert_eq!(out.code, Some(want), "iteration {i}: {out}");
        }
        for c in [&ct, &cf] {
            let left = c.cmd(&["list", "-q"]).run().ok();
            assert_eq!(left.stdout.trim(), "", "run must delete its container");
        }
    });
}

#[test]
fn delete_running_needs_force() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        c.run_detached().ok();
        c.delete().fails();
        assert_eq!(
            c.status(),
            "running",
            "a refused delete must leave it running"
        );
        c.delete_force().ok();
        assert!(
            c.try_state().is_err(),
            "state must fail after delete --force"
        );
        assert!(
            c.wait_exit().is_some() || !pid_alive(c.pid()),
            "init must be dead"
        );
    });
}

#[test]
fn kill_all_signals_every_process() {
    each_runtime(|rt| {
        // Without a pid namespace, killing init does not kill its children: only --all does.
        let mut b = Bundle::busybox();
        b.remove_namespace("pid");
        let cg = b.cgroups_path();
        b.sh("sleep 1001 & sleep 1002 & wait");
        let c = rt.container(&b);
        c.run_detached().ok();
        let procs_file = format!("/sys/fs/cgroup/pids{cg}/cgroup.procs");
        let mut pids = Vec::new();
        assert!(
            common::poll_until(Duration::from_secs(5), || {
                pids = std::fs::read_to_string(&procs_file)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                    .collect();
                pids.len() >= 3
            }),
            "expected init + 2 sleeps in {procs_file}: {pids:?}"
        );
        c.cmd(&["kill", "--all", &c.id, "KILL"]).run().ok();
        for p in &pids {
            assert!(
                common::wait_pid(*p, Duration::from_secs(10)).is_some(),
                "pid {p} survived kill --all"
            );
        }
        assert_eq!(c.status(), "stopped");
    });
}

#[test]
fn kill_signal_by_name_and_number() {
    each_runtime(|rt| {
        for sig in ["KILL", "SIGKILL", "9"] {
            let mut b = Bundle::busybox();
            b.args(&["sleep", "1000"]);
            let c = rt.container(&b);
            c.run_detached().ok();
            c.kill(sig).ok();
            assert_eq!(c.wait_exit(), Some(128 + 9), "kill {sig}");
        }
        // A catchable signal reaches the process's handler; no signal argument means TERM.
        for (args, code) in [(vec!["TERM"], 3), (vec!["USR1"], 4), (vec![], 3)] {
            let mut b = Bundle::busybox();
            b.sh(
                "trap 'exit 3' TERM; trap 'exit 4' USR1; echo ready; while :; do sleep 0.05; done",
            );
            let c = rt.container(&b);
            c.run_detached().ok();
            assert!(common::poll_until(Duration::from_secs(5), || c
                .init_stdout()
                .contains("ready")));
            let mut k = c.cmd(&["kill", &c.id]);
            k.args(&args);
            k.run().ok();
            assert_eq!(c.wait_exit(), Some(code), "kill {args:?}");
        }
    });
}

#[test]
fn duplicate_id_refused() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        c.create().ok();
        let pid = c.pid();
        let mut again = c.cmd(&["create", "--bundle"]);
        again.arg(b.path()).arg(&c.id);
        let out = again.run().fails();
        assert!(
            out.stderr.contains("exist"),
            "error should say the id exists: {out}"
        );
        let st = c.state();
        assert_eq!(st["status"], "created");
        assert_eq!(st["pid"].as_i64(), Some(pid as i64));
    });
}

#[test]
fn pause_and_resume() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done");
        let c = rt.container(&b);
        c.run_detached().ok();
        let count = || c.init_stdout().lines().count();
        assert!(common::poll_until(Duration::from_secs(5), || count() > 2));
        c.cmd(&["pause", &c.id]).run().ok();
        assert_eq!(c.status(), "paused");
        std::thread::sleep(Duration::from_millis(100));
        let frozen = count();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(count(), frozen, "counter advanced while paused");
        c.cmd(&["resume", &c.id]).run().ok();
        assert_eq!(c.status(), "running");
        assert!(
            common::poll_until(Duration::from_secs(5), || count() > frozen + 2),
            "counter did not advance after resume"
        );
    });
}
