//! A private wharfd for one test: its own data and exec roots, its own API socket, and its own
//! network namespace (created by the test; the daemon's bridge, nftables table and published
//! ports live there, so traffic never leaves it). Dropping the guard kills the daemon, stops
//! every container it started and removes the namespace and the directories.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub netns: String,
    pub sock: PathBuf,
    pub child: Option<Child>,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?}");
}

pub fn wharfd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wharfd"))
}

/// runhcs next to wharfd (cargo builds every workspace binary into the same directory).
pub fn runhcs_bin() -> PathBuf {
    let p = wharfd_bin().with_file_name("runhcs");
    assert!(
        p.exists(),
        "{} missing: build the workspace (cargo build --workspace) first",
        p.display()
    );
    p
}

/// `None` when not root (outside CI).
pub fn daemon(tag: &str) -> Option<Daemon> {
    if !nix::unistd::Uid::effective().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "wharfd tests need root under CI"
        );
        eprintln!("skipped: wharfd tests need root");
        return None;
    }
    let netns = format!("wdt{}{tag}", std::process::id() % 100_000);
    ip(&["netns", "add", &netns]);
    ip(&["-n", &netns, "link", "set", "lo", "up"]);
    let dir = tempfile::Builder::new()
        .prefix("wharfd-test-")
        .tempdir()
        .expect("tempdir");
    let sock = dir.path().join("run/wharf.sock");
    let mut d = Daemon {
        dir,
        netns,
        sock,
        child: None,
    };
    d.start();
    Some(d)
}

impl Daemon {
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Starts wharfd in the test's network namespace and waits for its socket.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("wharfd.log"))
            .expect("log");
        // nsenter switches only the network namespace: mounts stay visible to the test.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(wharfd_bin())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--runhcs")
            .arg(runhcs_bin())
            .arg("-D")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start wharfd");
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "wharfd did not listen on {} in 20 s; log:\n{}",
            self.sock.display(),
            self.log()
        );
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // nsenter execs wharfd, so the child is the daemon itself.
            c.kill().expect("kill wharfd");
            c.wait().expect("reap wharfd");
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharfd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .expect("run docker (the CLI is installed at /usr/local/bin/docker)")
    }

    /// docker, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\nwharfd log tail:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs a command inside the daemon's network namespace (the "host" of its containers).
    pub fn in_netns(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Imports the busybox rootfs as `busybox:latest`.
    pub fn import_busybox(&self) {
        let tar = busybox_tar(self.dir.path());
        self.ok(&["import", tar.to_str().expect("utf8"), "busybox:latest"]);
    }

    /// One raw HTTP request on the API socket; returns (status, body).
    pub fn raw(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = UnixStream::connect(&self.sock).expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_none() {
            return self.cleanup_rest();
        }
        // Remove every container through the API so monitors, mounts and cgroups go too.
        let ids = self.docker(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).to_string();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            drop(self.docker(&args));
        }
        self.kill9();
        self.cleanup_rest();
    }
}

impl Daemon {
    fn cleanup_rest(&mut self) {
        // Anything still mounted below the test directory (a failed test's leftovers).
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut mps: Vec<&str> = mi
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| Path::new(m).starts_with(self.dir.path()))
                .collect();
            mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mps {
                if let Err(e) = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
                    eprintln!("cleanup: unmount {m}: {e}");
                }
            }
        }
        drop(
            Command::new("ip")
                .args(["netns", "del", &self.netns])
                .status(),
        );
    }
}

/// A root filesystem from the host's busybox-static: /bin/busybox, an applet symlink per
/// command, /etc/passwd and /etc/group. Returns the tarball's path.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("busybox-rootfs");
    let tar = dir.join("busybox.tar");
    if tar.exists() {
        return tar;
    }
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev", "var/www"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copy busybox (install busybox-static)");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if a != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("symlink");
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    tar
}
