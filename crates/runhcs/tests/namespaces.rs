#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Namespaces: created, shared with the host when omitted, joined by path, user/cgroup/time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{each_runtime, host, host_ns, ns_inode, Bundle};
use serde_json::json;

const ALL: [&str; 8] = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time"];

/// `readlink /proc/self/ns/*` as seen by the container process, keyed by ns name.
fn container_ns(rt: &common::Runtime, b: &mut Bundle) -> BTreeMap<String, String> {
    let script: String = ALL
        .iter()
        .map(|n| format!("echo {n} $(readlink /proc/self/ns/{n}); "))
        .collect();
    b.sh(&script);
    let out = rt.container(b).run().ok().stdout;
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), ns_inode(v)))
        .collect()
}

fn check(got: &BTreeMap<String, String>, new: &[&str]) {
    for n in ALL {
        let hostv = host_ns("self", n);
        let c = got.get(n).unwrap_or_else(|| panic!("no {n} ns in {got:?}"));
        if new.contains(&n) {
            assert_ne!(c, &hostv, "{n} ns must differ from the host's");
        } else {
            assert_eq!(c, &hostv, "{n} ns must be the host's");
        }
    }
}

#[test]
fn configured_namespaces_differ_from_host() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        let got = container_ns(rt, &mut b);
        check(&got, &["pid", "net", "ipc", "uts", "mnt"]);
    });
}

#[test]
fn omitted_namespaces_are_the_hosts() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.remove_namespace("network")
            .remove_namespace("ipc")
            .remove_namespace("uts")
            .remove("/hostname"); // a hostname needs a uts namespace
        let got = container_ns(rt, &mut b);
        check(&got, &["pid", "mnt"]);
    });
}

/// A named netns created by the test (`ip netns add`), deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = format!("wt-{}", common::unique());
        host("ip", &["netns", "add", &name]).ok();
        NetNs(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ignored = std::panic::catch_unwind(|| host("ip", &["netns", "del", &self.0]));
    }
}

#[test]
fn join_network_namespace_by_path() {
    each_runtime(|rt| {
        let ns = NetNs::new();
        let want = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(ns.path())
                .expect("stat netns")
                .ino()
                .to_string()
        };
        let mut b = Bundle::busybox();
        b.namespace("network", Some(&ns.path()));
        b.sh("readlink /proc/self/ns/net");
        let out = rt.container(&b).run().ok();
        assert_eq!(
            ns_inode(&out.stdout),
            want,
            "container must join {}",
            ns.path()
        );

        // A path that is not a namespace of that type is refused.
        let mut b = Bundle::busybox();
        b.namespace("network", Some("/proc/self/ns/ipc"));
        b.args(&["true"]);
        rt.container(&b).run().fails();
    });
}

#[test]
fn user_namespace_with_mappings() {
    each_runtime(|rt| {
        let host_file = common::host_dir("wt-userns-");
        std::fs::write(host_file.path().join("owned-by-host-root"), "x").expect("write");
        let mut b = Bundle::busybox();
        b.chown_rootfs(100000, 100000);
        b.namespace("user", None);
        b.set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        );
        b.set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        );
        b.bind(host_file.path(), "/mnt/host", &["ro"]);
        b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; \
             stat -c '%u:%g' /bin/busybox /mnt/host/owned-by-host-root; exec sleep 1000");
        let c = rt.container(&b);
        c.run_detached().ok();
        assert!(common::poll_until(Duration::from_secs(5), || c
            .init_stdout()
            .lines()
            .count()
            >= 5));
        let out = c.init_stdout();
        let norm: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            norm,
            [
                "0 100000 65536",
                "0 100000 65536",
                "0",
                "0:0",         // rootfs owned by host 100000 = container root
                "65534:65534"  // host root is unmapped: the overflow id
            ],
            "{out}"
        );
        // From the host, container root is uid 100000.
        let st = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).expect("status");
        assert_eq!(
            common::status_field(&st, "Uid"),
            Some("100000\t100000\t100000\t100000")
        );
        assert_ne!(
            host_ns(&c.pid().to_string(), "user"),
            host_ns("self", "user")
        );
    });
}

#[test]
fn cgroup_namespace() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.cgroups_path();
        b.namespace("cgroup", None);
        b.sh("readlink /proc/self/ns/cgroup; cat /proc/self/cgroup");
        let out = rt.container(&b).run().ok().stdout;
        let mut lines = out.lines();
        let ns = ns_inode(lines.next().unwrap_or(""));
        assert_ne!(ns, host_ns("self", "cgroup"));
        let rest: Vec<&str> = lines.collect();
        assert!(!rest.is_empty());
        for l in rest {
            // Inside its own cgroup namespace the container's cgroup is the root.
            assert!(l.ends_with(":/"), "cgroup not virtualized: {l:?} in {out}");
        }
    });
}

/// runhcs-only: runc 1.1.5 rejects the time namespace (`namespace {"time" ""} does not
/// exist`); support arrived in runc 1.2. Kernel 6.18 supports it.
#[test]
fn time_namespace_with_offsets() {
    common::each_runtime_where(
        |rt| rt.is_runhcs(),
        |rt| {
            let mut b = Bundle::busybox();
            b.namespace("time", None);
            b.set(
                "/linux/timeOffsets",
                json!({"monotonic": {"secs": 86400, "nanosecs": 0},
                       "boottime": {"secs": 172800, "nanosecs": 0}}),
            );
            b.sh("readlink /proc/self/ns/time; cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime");
            let out = rt.container(&b).run().ok().stdout;
            let lines: Vec<String> = out
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            assert_eq!(lines.len(), 4, "{out}");
            assert_ne!(ns_inode(&lines[0]), host_ns("self", "time"));
            assert_eq!(lines[1], "monotonic 86400 0");
            assert_eq!(lines[2], "boottime 172800 0");
            let up: u64 = lines[3].parse().expect("uptime");
            assert!(up >= 172800, "boottime offset not applied: uptime {up}");
        },
    );
}

/// `linux.netDevices` (runtime-spec 1.2): a host interface moved into the container's network
/// namespace under a new name. The veth device is the test's own and dies with the namespace.
#[test]
fn net_devices_move_into_the_container() {
    common::each_runtime_where(
        |rt| !rt.is_runc(),
        |rt| {
            let host_name = format!("wtd{}", std::process::id() % 1_000_000);
            struct Gone(String);
            impl Drop for Gone {
                fn drop(&mut self) {
                    common::host("ip", &["link", "del", &self.0]);
                }
            }
            // A veth pair (this kernel has no dummy driver); the peer stays on the host.
            let peer = format!("{host_name}p");
            common::host(
                "ip",
                &[
                    "link", "add", &host_name, "type", "veth", "peer", "name", &peer,
                ],
            )
            .ok();
            let _gone = Gone(host_name.clone());
            let mut b = Bundle::busybox();
            b.set(
                "/linux/netDevices",
                serde_json::json!({ &host_name: { "name": "eth7" } }),
            );
            b.sh("cat /sys/class/net/eth7/type; ls /sys/class/net | sort | tr '\\n' ' '");
            let out = rt.container(&b).run().ok().stdout;
            // ARPHRD_ETHER; only lo and the moved device in the namespace.
            assert_eq!(out, "1\neth7 lo ", "{out}");

            b.set(
                "/linux/netDevices",
                serde_json::json!({ "wt-no-such-if": {} }),
            );
            let err = rt.container(&b).run().fails();
            assert!(
                err.all().contains("linux.netDevices.wt-no-such-if"),
                "{err}"
            );
        },
    );
}
