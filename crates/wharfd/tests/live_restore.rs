#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Live restore: containers outlive a SIGKILLed daemon; the restarted daemon re-attaches to
//! every monitor; nothing is left half-created; `rm` leaves no mount, cgroup, namespace, link
//! or nftables rule behind.

mod common;

use std::collections::BTreeSet;

const N: usize = 20;

fn nft_rules(d: &common::Daemon) -> usize {
    let o = d.in_netns(&["nft", "-a", "list", "table", "ip", "wharf"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| {
            l.contains("# handle")
                && !l.trim_start().starts_with("chain")
                && !l.trim_start().starts_with("table")
        })
        .count()
}

/// Every link in the daemon's namespace (endpoints live in the containers' namespaces; a
/// link of an endpoint here would be a leftover).
fn links(d: &common::Daemon) -> usize {
    let o = d.in_netns(&["ip", "-o", "link", "show"]);
    String::from_utf8_lossy(&o.stdout).lines().count()
}

fn mounts_under(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| std::path::Path::new(m).starts_with(p))
        .collect()
}

fn cgroup_dirs(ids: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for root in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpu,cpuacct",
    ] {
        for id in ids {
            let p = format!("{root}/wharf/{id}");
            if std::path::Path::new(&p).exists() {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn containers_survive_a_killed_daemon_and_rm_leaves_nothing() {
    let Some(mut d) = common::daemon("l") else {
        return;
    };
    d.import_busybox();
    let base_rules = nft_rules(&d);
    let base_links = links(&d);

    let mut ids = Vec::new();
    for i in 0..N {
        let id = d.ok(&[
            "run",
            "-d",
            "--name",
            &format!("live{i}"),
            "busybox",
            "sh",
            "-c",
            &format!("echo ready-{i}; while true; do sleep 1; done"),
        ]);
        ids.push(id.trim().to_string());
    }
    // Operations in flight while the daemon dies: creates, runs and a stop.
    let host = d.host();
    let inflight: Vec<_> = (0..3)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || {
                std::process::Command::new("docker")
                    .args([
                        "run",
                        "-d",
                        "--name",
                        &format!("flight{i}"),
                        "busybox",
                        "sleep",
                        "1000",
                    ])
                    .env("DOCKER_HOST", host)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(150));
    d.kill9();
    for t in inflight {
        drop(t.join());
    }
    d.start();

    // Every container is listed and running, its logs intact, manageable.
    let running: BTreeSet<String> = d
        .ok(&["ps", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(
            running.contains(id),
            "live{i} not running after restart\n{}",
            common::tail(&d.log(), 40)
        );
        let logs = d.ok(&["logs", &format!("live{i}")]);
        assert!(
            logs.contains(&format!("ready-{i}")),
            "live{i} logs: {logs:?}"
        );
    }
    assert_eq!(
        d.ok(&["exec", "live3", "echo", "still here"]),
        "still here\n"
    );
    d.ok(&["stop", "-t", "1", "live4"]);
    let st = d.ok(&["inspect", "--format", "{{.State.Status}}", "live4"]);
    assert_eq!(st.trim(), "exited");

    // Nothing half-created: every container the daemon lists can be inspected and is in a
    // consistent state; running ones answer exec.
    for id in d.ok(&["ps", "-aq", "--no-trunc"]).lines() {
        let st = d.ok(&["inspect", "--format", "{{.State.Status}}", id]);
        match st.trim() {
            "running" => assert_eq!(d.ok(&["exec", id, "true"]), ""),
            "created" | "exited" => {}
            other => panic!("container {id} in state {other}"),
        }
    }

    // A container started after the restart works too; then remove everything.
    d.ok(&["run", "--rm", "busybox", "true"]);
    let all: Vec<String> = d
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    let mut args = vec!["rm", "-f"];
    args.extend(all.iter().map(String::as_str));
    d.ok(&args);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());

    let leftovers = mounts_under(&d.exec_root());
    assert!(leftovers.is_empty(), "mounts left: {leftovers:?}");
    let netns_dir = d.exec_root().join("netns");
    let pins: Vec<_> = std::fs::read_dir(&netns_dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(pins.is_empty(), "namespace pins left: {pins:?}");
    assert_eq!(links(&d), base_links, "links left");
    assert_eq!(nft_rules(&d), base_rules, "nftables rules left");
    let cg = cgroup_dirs(&all);
    assert!(cg.is_empty(), "cgroups left: {cg:?}");
    let bundles: Vec<_> = std::fs::read_dir(d.exec_root().join("containers"))
        .unwrap()
        .flatten()
        .collect();
    assert!(bundles.is_empty(), "bundles left: {}", bundles.len());
}
