#![allow(clippy::expect_used, clippy::unwrap_used)]
//! TCP throughput between two containers on one hns `NAT` network (two namespaces, each with
//! an endpoint on the network's switch) against a bare veth pair between two namespaces,
//! measured with iperf3 and interleaved round by round. Every namespace is created here and
//! all traffic stays inside them. Needs root and iperf3 (scripts/deps.sh); prints medians and
//! the ratio (goal >= 0.9x).
//!
//! `HNS_TPUT_ROUNDS` (default 5) rounds of `HNS_TPUT_SECS` (default 3) seconds per side.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hns::linux::netns;
use hns::{Config, HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork, NetworkService};

const PORT: &str = "5299";

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// Everything the bench created: named namespaces and iperf3 servers.
struct Lab {
    named: Vec<String>,
    servers: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            drop(s.kill());
            drop(s.wait());
        }
        for n in &self.named {
            drop(Command::new("ip").args(["netns", "del", n]).status());
        }
    }
}

impl Lab {
    fn netns(&mut self, name: String) -> PathBuf {
        ip(&["netns", "add", &name]);
        self.named.push(name.clone());
        PathBuf::from(format!("/run/netns/{name}"))
    }

    fn server(&mut self, ns: &Path, addr: &str) {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["iperf3", "-s", "-B", addr, "-p", PORT])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3 server (scripts/deps.sh installs iperf3)");
        self.servers.push(child);
    }
}

/// Runs one iperf3 client in `ns` against `addr`; returns the receiver's bits per second.
fn client(ns: &Path, addr: &str, secs: u64) -> f64 {
    for _ in 0..50 {
        let o = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args([
                "iperf3",
                "-c",
                addr,
                "-p",
                PORT,
                "-J",
                "-t",
                &secs.to_string(),
            ])
            .output()
            .unwrap();
        // iperf3 -J reports failures (a server not listening yet, or still finishing the
        // previous test) as an "error" field, sometimes with a zero exit status.
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if let Some(bps) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            if o.status.success() && v.get("error").is_none() {
                return bps;
            }
        }
        // The server may not be listening yet.
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("iperf3 client in {} to {addr} kept failing", ns.display());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let have_iperf = Command::new("iperf3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !nix::unistd::Uid::effective().is_root() || !have_iperf {
        eprintln!("skipped: needs root and iperf3 (scripts/deps.sh)");
        return;
    }
    let rounds = env_or("HNS_TPUT_ROUNDS", 5).max(1);
    let secs = env_or("HNS_TPUT_SECS", 3).max(1);
    let pid = std::process::id();
    let mut lab = Lab {
        named: Vec::new(),
        servers: Vec::new(),
    };

    // Bare veth pair between two namespaces.
    let (va, vb) = (format!("whta{pid}"), format!("whtb{pid}"));
    let a_path = lab.netns(va.clone());
    let b_path = lab.netns(vb.clone());
    ip(&[
        "-n", &va, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &vb,
    ]);
    for (ns, addr) in [(&va, "10.237.0.1/24"), (&vb, "10.237.0.2/24")] {
        ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    lab.server(&b_path, "10.237.0.2");

    // Two containers on one hns NAT network, the service in its own host namespace.
    let host = lab.netns(format!("whth{pid}"));
    let dir = tempfile::tempdir().unwrap();
    let fd = netns::open(&host).unwrap();
    nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let svc = NetworkService::open(Config {
        db_path: dir.path().join("hns.redb"),
        netns_dir: dir.path().join("netns"),
    })
    .unwrap();
    let net: HostComputeNetwork = serde_json::from_value(serde_json::json!({
        "Name": "tput", "Type": "NAT", "Ipams": [{"Subnets": [{"IpAddressPrefix": "10.236.0.0/24"}]}]
    }))
    .unwrap();
    svc.create_network(net).unwrap();
    let mut containers = Vec::new();
    for name in ["client", "server"] {
        let ep = svc
            .create_endpoint(HostComputeEndpoint {
                name: name.into(),
                host_compute_network: "tput".into(),
                ..Default::default()
            })
            .unwrap();
        let ns = svc
            .create_namespace(HostComputeNamespace::default())
            .unwrap();
        svc.attach(&ns.id, &ep.id).unwrap();
        containers.push((
            ep.ip_configurations[0].ip_address.clone(),
            svc.namespace_path(&ns.id),
            ns.id,
            ep.id,
        ));
    }
    let server_ip = containers[1].0.clone();
    lab.server(&containers[1].1, &server_ip);

    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let mut run_hns = || ours.push(client(&containers[0].1, &server_ip, secs));
        if r % 2 == 0 {
            run_hns();
            bare.push(client(&a_path, "10.237.0.2", secs));
        } else {
            bare.push(client(&a_path, "10.237.0.2", secs));
            run_hns();
        }
    }
    let (o, b) = (median(ours), median(bare));
    println!(
        "iperf3 TCP ({rounds} interleaved rounds of {secs}s): hns containers median {:.2} Gbit/s, bare veth median {:.2} Gbit/s, ratio {:.2}x (goal >= 0.9x)",
        o / 1e9,
        b / 1e9,
        o / b
    );

    for s in &mut lab.servers {
        drop(s.kill());
        drop(s.wait());
    }
    lab.servers.clear();
    for (_, _, ns, ep) in &containers {
        svc.detach(ns, ep).unwrap();
        svc.delete_endpoint(ep).unwrap();
        svc.delete_namespace(ns).unwrap();
    }
    svc.delete_network("tput").unwrap();
}
