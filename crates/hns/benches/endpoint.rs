#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Endpoint create + attach to a fresh namespace + delete: wharf's hns against the CNI
//! `bridge` plugin (with `host-local` IPAM) doing the same job, in the same host namespace,
//! interleaved run by run so both see the same machine. Both sides create the namespace the
//! same way (in-process, pinned), so the difference is the endpoint work. Needs root and
//! `containernetworking-plugins`; prints medians, the ratio, and hns's median per step.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hns::linux::netns;
use hns::{Config, HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork, NetworkService};

const CNI_BRIDGE: &str = "/usr/lib/cni/bridge";
const STEPS: [&str; 6] = [
    "create endpoint",
    "create namespace",
    "attach",
    "detach",
    "delete endpoint",
    "delete namespace",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Deletes the bench's host namespace however the bench ends.
struct HostNs(String);

impl Drop for HostNs {
    fn drop(&mut self) {
        drop(Command::new("ip").args(["netns", "del", &self.0]).status());
    }
}

/// One hns lifecycle; returns the time of each step.
fn hns_once(svc: &NetworkService, i: usize) -> [Duration; 6] {
    let mut t = Instant::now();
    let mut steps = [Duration::ZERO; 6];
    let mut lap = |k: usize| {
        steps[k] = t.elapsed();
        t = Instant::now();
    };
    let ep = svc
        .create_endpoint(HostComputeEndpoint {
            name: format!("e{i}"),
            host_compute_network: "bench".into(),
            ..Default::default()
        })
        .unwrap();
    lap(0);
    let ns = svc
        .create_namespace(HostComputeNamespace::default())
        .unwrap();
    lap(1);
    svc.attach(&ns.id, &ep.id).unwrap();
    lap(2);
    svc.detach(&ns.id, &ep.id).unwrap();
    lap(3);
    svc.delete_endpoint(&ep.id).unwrap();
    lap(4);
    svc.delete_namespace(&ns.id).unwrap();
    lap(5);
    steps
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() || !Path::new(CNI_BRIDGE).exists() {
        eprintln!("skipped: needs root and {CNI_BRIDGE} (scripts/deps.sh)");
        return;
    }
    let iters: usize = std::env::var("HNS_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let host = HostNs(format!("whbench{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &host.0])
        .status()
        .unwrap()
        .success());
    let dir = tempfile::tempdir().unwrap();
    let fd = netns::open(Path::new(&format!("/run/netns/{}", host.0))).unwrap();
    nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();

    let svc = NetworkService::open(Config {
        db_path: dir.path().join("hns.redb"),
        netns_dir: dir.path().join("netns"),
    })
    .unwrap();
    let net: HostComputeNetwork = serde_json::from_value(serde_json::json!({
        "Name": "bench", "Type": "NAT", "Ipams": [{"Subnets": [{"IpAddressPrefix": "10.234.0.0/24"}]}]
    }))
    .unwrap();
    svc.create_network(net).unwrap();

    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "cnibench", "type": "bridge", "bridge": "cnibr0",
        "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "subnet": "10.235.0.0/24",
                 "dataDir": dir.path().join("cni-ipam").to_str().unwrap(),
                 "routes": [{"dst": "0.0.0.0/0"}]}
    })
    .to_string();
    let cni = |cmd: &str, ns: &Path, id: &str| {
        let mut c = Command::new(CNI_BRIDGE)
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", ns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(conf.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "cni {cmd}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    };
    let cni_once = |i: usize| {
        let ns = dir.path().join(format!("cni{i}"));
        let t = Instant::now();
        netns::create_pinned(&ns).unwrap();
        cni("ADD", &ns, &format!("c{i}"));
        cni("DEL", &ns, &format!("c{i}"));
        netns::remove_pinned(&ns).unwrap();
        t.elapsed()
    };

    // One warm-up round each (first bridge port, first iptables run), not counted.
    hns_once(&svc, iters);
    cni_once(iters);
    let mut ours = Vec::new();
    let mut steps: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
    let mut theirs = Vec::new();
    for i in 0..iters {
        // Alternate which side goes first, so neither always follows the other's cleanup.
        let mut run_hns = || {
            let s = hns_once(&svc, i);
            ours.push(s.iter().sum());
            for (k, d) in s.into_iter().enumerate() {
                steps[k].push(d);
            }
        };
        if i % 2 == 0 {
            run_hns();
            theirs.push(cni_once(i));
        } else {
            theirs.push(cni_once(i));
            run_hns();
        }
    }
    svc.delete_network("bench").unwrap();
    let (a, b) = (median(ours), median(theirs));
    let per_step: Vec<String> = STEPS
        .iter()
        .zip(steps)
        .map(|(name, v)| format!("{name} {:.2?}", median(v)))
        .collect();
    println!("hns steps (medians): {}", per_step.join(", "));
    println!("endpoint create+attach+delete ({iters} interleaved runs): hns median {a:.2?}, CNI bridge median {b:.2?}, ratio {:.2}x (goal <= 0.5x)", a.as_secs_f64() / b.as_secs_f64());
}
