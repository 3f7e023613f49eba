#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Endpoint create + attach to a fresh namespace + delete: wharf's hns against the CNI
//! `bridge` plugin (with `host-local` IPAM) doing the same job, in the same host namespace.
//! Both sides create the namespace the same way (in-process, pinned), so the difference is
//! the endpoint work. Needs root and `containernetworking-plugins`; prints medians and ratio.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hns::linux::netns;
use hns::{Config, HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork, NetworkService};

const CNI_BRIDGE: &str = "/usr/lib/cni/bridge";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() || !std::path::Path::new(CNI_BRIDGE).exists() {
        eprintln!("skipped: needs root and {CNI_BRIDGE} (scripts/deps.sh)");
        return;
    }
    let iters: usize = std::env::var("HNS_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let host = format!("whbench{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &host])
        .status()
        .unwrap()
        .success());
    let dir = tempfile::tempdir().unwrap();
    let fd = netns::open(std::path::Path::new(&format!("/run/netns/{host}"))).unwrap();
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
    let mut ours = Vec::new();
    for i in 0..iters {
        let t = Instant::now();
        let ep = svc
            .create_endpoint(HostComputeEndpoint {
                name: format!("e{i}"),
                host_compute_network: "bench".into(),
                ..Default::default()
            })
            .unwrap();
        let ns = svc
            .create_namespace(HostComputeNamespace::default())
            .unwrap();
        svc.attach(&ns.id, &ep.id).unwrap();
        svc.detach(&ns.id, &ep.id).unwrap();
        svc.delete_endpoint(&ep.id).unwrap();
        svc.delete_namespace(&ns.id).unwrap();
        ours.push(t.elapsed());
    }
    svc.delete_network("bench").unwrap();

    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "cnibench", "type": "bridge", "bridge": "cnibr0",
        "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "subnet": "10.235.0.0/24",
                 "dataDir": dir.path().join("cni-ipam").to_str().unwrap(),
                 "routes": [{"dst": "0.0.0.0/0"}]}
    })
    .to_string();
    let cni = |cmd: &str, ns: &std::path::Path, id: &str| {
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
    let mut theirs = Vec::new();
    for i in 0..iters {
        let ns = dir.path().join(format!("cni{i}"));
        let t = Instant::now();
        netns::create_pinned(&ns).unwrap();
        cni("ADD", &ns, &format!("c{i}"));
        cni("DEL", &ns, &format!("c{i}"));
        netns::remove_pinned(&ns).unwrap();
        theirs.push(t.elapsed());
    }
    drop(Command::new("ip").args(["netns", "del", &host]).status());
    let (a, b) = (median(ours), median(theirs));
    println!("endpoint create+attach+delete ({iters} runs): hns median {a:?}, CNI bridge median {b:?}, ratio {:.2}x (goal <= 0.5x)", a.as_secs_f64() / b.as_secs_f64());
}
