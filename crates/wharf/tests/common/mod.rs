//! A private wharfd for one test, driven through the `wharf` binary: own data and exec roots,
//! own API socket, own network namespace (its bridge, nftables rules and published ports live
//! there). The guard removes every container, stops the daemon and deletes the namespace and
//! the directories.

#![allow(dead_code)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub netns: Netns,
    pub sock: PathBuf,
    child: Option<Child>,
}

pub fn wharf_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wharf"))
}

/// A workspace binary built next to `wharf` (cargo puts them in one directory).
fn sibling(name: &str) -> PathBuf {
    let p = wharf_bin().with_file_name(name);
    assert!(
        p.exists(),
        "{} missing: build it first (cargo build -p wharfd -p runhcs, or cargo build --workspace)",
        p.display()
    );
    p
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// Starts a daemon; `None` (skipped) when not root outside CI.
pub fn daemon(tag: &str) -> Option<Daemon> {
    if !is_root() {
        return None;
    }
    let netns = Netns::new(tag);
    let dir = tempfile::Builder::new()
        .prefix("wharf-cli-test-")
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
    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("wharfd.log")).expect("log file");
        // Only the network namespace changes: the test sees the daemon's mounts.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns.0))
            .arg("--")
            .arg(sibling("wharfd"))
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .arg("-H")
            .arg(&self.sock)
            .arg("--runhcs")
            .arg(sibling("runhcs"))
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
            "wharfd did not listen on {} within 20 s; log:\n{}",
            self.sock.display(),
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharfd.log")).unwrap_or_default()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(wharf_bin());
        c.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("WHARF_HOST");
        c
    }

    /// Runs wharf with stdin closed.
    pub fn wharf(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run wharf")
    }

    /// Runs wharf with `input` on stdin.
    pub fn wharf_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run wharf");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("wait wharf")
    }

    /// wharf, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.wharf(args);
        assert!(
            o.status.success(),
            "wharf {args:?} failed: {}",
            describe(&o, &self.log())
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs a command in the daemon's network namespace (the containers' host).
    pub fn in_netns(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns.0))
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Runs wharf with stdout piped, for streams that do not end by themselves.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run wharf")
    }

    /// Imports the busybox root filesystem as `busybox:latest`.
    pub fn import_busybox(&self) {
        let tar = busybox_tar(self.dir.path());
        let out = self.ok(&[
            "import",
            tar.to_str().expect("utf-8 path"),
            "busybox:latest",
        ]);
        assert!(out.trim().starts_with("sha256:"), "import printed {out:?}");
    }
}

pub fn describe(o: &Output, log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}\nwharfd log tail:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Through the API, so monitors, mounts, cgroups and endpoints go as well.
            let ids = self.wharf(&["ps", "-aq", "--no-trunc"]);
            let ids = String::from_utf8_lossy(&ids.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids);
                drop(self.wharf(&args));
            }
        }
        if let Some(mut c) = self.child.take() {
            drop(c.kill());
            drop(c.wait());
        }
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
        // The network namespace goes when the `netns` field drops.
    }
}

/// A root filesystem from the host's busybox-static (/bin/busybox, a symlink per applet,
/// /etc/passwd and /etc/group), as a tarball in `dir`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let tar = dir.join("busybox.tar");
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                .expect("applet symlink");
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar the busybox rootfs");
    tar
}

/// A network namespace for one test, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("wcli{}{tag}", std::process::id() % 100_000);
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(Command::new("ip").args(["netns", "del", &self.0]).status());
    }
}

/// Whether tests that need root should run (skips with a note outside CI).
pub fn is_root() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "wharf CLI tests need root under CI"
    );
    eprintln!("skipped: wharf CLI tests need root");
    false
}
