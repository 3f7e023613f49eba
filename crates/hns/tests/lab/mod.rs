//! A throwaway network lab: an "upstream" namespace (the outside world, 198.18.0.2 and
//! fd00:198:18::2) wired by a veth pair to a "host" namespace (198.18.0.1, fd00:198:18::1)
//! where the service runs; container namespaces are the
//! service's own pinned ones under a temp dir. Probes are Rust threads that `setns` into a
//! namespace, so traffic only ever goes to addresses inside these namespaces.
// Shared by several test binaries; each uses a part.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hns::linux::netns;
use hns::{
    Config, EndpointPolicy, HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork,
    NetworkService,
};

pub const HOST_IP: &str = "198.18.0.1";
pub const UPSTREAM_IP: &str = "198.18.0.2";
pub const HOST_IP6: &str = "fd00:198:18::1";
pub const UPSTREAM_IP6: &str = "fd00:198:18::2";

/// A network document with one subnet per prefix given.
pub fn network(name: &str, ty: &str, subnets: &[&str]) -> HostComputeNetwork {
    let subnets: Vec<_> = subnets
        .iter()
        .map(|s| serde_json::json!({"IpAddressPrefix": s}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "Name": name, "Type": ty,
        "Ipams": [{"Type": "Static", "Subnets": subnets}]
    }))
    .unwrap()
}

pub fn endpoint(name: &str, net: &str, policies: Vec<EndpointPolicy>) -> HostComputeEndpoint {
    HostComputeEndpoint {
        name: name.into(),
        host_compute_network: net.into(),
        policies,
        ..Default::default()
    }
}

/// Creates an endpoint and a namespace and attaches them; returns (endpoint, namespace path).
pub fn container(svc: &NetworkService, ep: HostComputeEndpoint) -> (HostComputeEndpoint, PathBuf) {
    let ep = svc.create_endpoint(ep).unwrap();
    let ns = svc
        .create_namespace(HostComputeNamespace::default())
        .unwrap();
    svc.attach(&ns.id, &ep.id).unwrap();
    let ep = svc.get_endpoint(&ep.id).unwrap();
    (ep, svc.namespace_path(&ns.id))
}

/// The endpoint's first address of the family (`v6`).
pub fn addr_of(ep: &HostComputeEndpoint, v6: bool) -> String {
    ep.ip_configurations
        .iter()
        .map(|c| c.ip_address.clone())
        .find(|a| a.contains(':') == v6)
        .unwrap()
}

pub struct Lab {
    /// The host's end of the link to upstream (a `Transparent` network's adapter).
    pub host_if: String,
    pub host: String,
    pub upstream: String,
    pub dir: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// `None` (after printing why) when the tests cannot run here.
pub fn lab(tag: &str) -> Option<Lab> {
    if !nix::unistd::Uid::effective().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "network tests need root under CI"
        );
        eprintln!("skipped: network tests need root");
        return None;
    }
    let id = format!("{}{}", std::process::id() % 100000, tag);
    let (h, u) = (format!("wth{id}"), format!("wtu{id}"));
    let lab = Lab {
        host_if: h.clone(),
        host: format!("whh{id}"),
        upstream: format!("whu{id}"),
        dir: tempfile::tempdir().unwrap(),
    };
    ip(&["netns", "add", &lab.host]);
    ip(&["netns", "add", &lab.upstream]);
    ip(&[
        "-n",
        &lab.host,
        "link",
        "add",
        &h,
        "type",
        "veth",
        "peer",
        "name",
        &u,
        "netns",
        &lab.upstream,
    ]);
    ip(&[
        "-n",
        &lab.host,
        "addr",
        "add",
        &format!("{HOST_IP}/24"),
        "dev",
        &h,
    ]);
    ip(&[
        "-n",
        &lab.upstream,
        "addr",
        "add",
        &format!("{UPSTREAM_IP}/24"),
        "dev",
        &u,
    ]);
    for (ns, dev, addr) in [(&lab.host, &h, HOST_IP6), (&lab.upstream, &u, UPSTREAM_IP6)] {
        let a = format!("{addr}/64");
        ip(&["-n", ns, "addr", "add", &a, "dev", dev, "nodad"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&[
        "-n",
        &lab.host,
        "route",
        "add",
        "default",
        "via",
        UPSTREAM_IP,
    ]);
    ip(&[
        "-n",
        &lab.host,
        "-6",
        "route",
        "add",
        "default",
        "via",
        UPSTREAM_IP6,
    ]);
    Some(lab)
}

impl Lab {
    pub fn host_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.host))
    }
    pub fn upstream_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.upstream))
    }
    pub fn config(&self) -> Config {
        Config {
            db_path: self.dir.path().join("hns.redb"),
            netns_dir: self.dir.path().join("netns"),
        }
    }
    /// Resolves host and upstream as IPv6 neighbours once. On a fresh veth pair the first
    /// neighbour solicitation goes unanswered and the retry comes a second later (seen with
    /// no wharf code involved), longer than the probes' connect timeout.
    pub fn warm_ipv6(&self) {
        let st = Command::new("ip")
            .args(["netns", "exec", &self.host, "busybox", "ping", "-c1", "-W3"])
            .arg(UPSTREAM_IP6)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ping {UPSTREAM_IP6} from the host namespace");
    }
    /// Moves the calling (test) thread into the host namespace and opens the service there.
    pub fn service(&self) -> NetworkService {
        let fd = netns::open(&self.host_path()).unwrap();
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        NetworkService::open(self.config()).unwrap()
    }
    /// Runs `nft list table ip wharf` in the host namespace.
    pub fn nft_list(&self) -> String {
        self.nft_list_family("ip")
    }
    /// Runs `nft list table <family> wharf` in the host namespace.
    pub fn nft_list_family(&self, family: &str) -> String {
        let o = Command::new("ip")
            .args([
                "netns", "exec", &self.host, "nft", "list", "table", family, "wharf",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("netns")) {
            for e in rd.flatten() {
                drop(netns::remove_pinned(&e.path()));
            }
        }
        for ns in [&self.host, &self.upstream] {
            drop(Command::new("ip").args(["netns", "del", ns]).status());
        }
    }
}

/// Serves `count` TCP connections on `port` inside `ns`; each gets "hello" and its peer
/// address is sent back. Returns once listening.
pub fn serve(ns: &Path, port: u16, count: usize) -> mpsc::Receiver<SocketAddr> {
    serve_on(ns, "0.0.0.0", port, count)
}

/// [`serve`] on one address (`::` for IPv6).
pub fn serve_on(ns: &Path, bind: &str, port: u16, count: usize) -> mpsc::Receiver<SocketAddr> {
    let bind: std::net::IpAddr = bind.parse().unwrap();
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let fd = netns::open(ns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind((bind, port)).unwrap();
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            match l.accept() {
                Ok((mut s, peer)) => {
                    drop(s.write_all(b"hello"));
                    served += 1;
                    if tx.send(peer).is_err() {
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    ready_rx.recv().unwrap();
    rx
}

/// Connects from inside `ns` to `addr` and reads the greeting.
pub fn connect(ns: &Path, addr: &str) -> std::io::Result<String> {
    let fd = netns::open(ns).unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    netns::in_netns(fd.as_fd(), move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(700))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap()
}

/// The peer address a server saw, or panics after a while.
pub fn seen(rx: &mpsc::Receiver<SocketAddr>) -> String {
    rx.recv_timeout(Duration::from_secs(3))
        .unwrap()
        .ip()
        .to_string()
}
