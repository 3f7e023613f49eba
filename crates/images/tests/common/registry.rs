//! A real registry (Debian's `docker-registry`, i.e. distribution 2.x) on a loopback port inside
//! a network namespace the test creates, and a TCP proxy that can cut a connection mid-blob.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Runs `f` on a thread inside a new network namespace with only `lo` (up). Processes and
/// threads started from `f` (the registry, tokio's workers, skopeo) inherit the namespace, so
/// no traffic touches the host's interfaces.
pub fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        super::run(Command::new("ip").args(["link", "set", "lo", "up"]));
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A multi-threaded tokio runtime whose threads are created from the calling thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A running registry; killed (and its storage removed with the test's temp dir) on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    pub storage: PathBuf,
}

impl Registry {
    /// Starts a registry storing under `dir`; with `htpasswd`, it requires basic auth.
    pub fn start(dir: &Path, htpasswd: Option<(&str, &str)>) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let auth = match htpasswd {
            Some((user, pass)) => {
                let out = super::run(Command::new("htpasswd").args(["-Bbn", user, pass]));
                let file = dir.join("htpasswd");
                std::fs::write(&file, out).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        Registry::start_with(dir, &auth)
    }

    /// Starts a registry with `auth_yaml` (an `auth:` section, or empty) in its config.
    pub fn start_with(dir: &Path, auth_yaml: &str) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        config.push_str(auth_yaml);
        let cfg = dir.join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        // Its log (every 404 of a HEAD probe is an "error") goes to a file next to the config.
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            addr,
            storage,
        };
        wait_listening(&r.addr);
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("kill registry: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("wait registry: {e}");
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never started listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP proxy to `upstream`. While armed, the first connection that has relayed more than
/// `cut_after` bytes from upstream is closed both ways (once); then the proxy is disarmed.
pub struct Proxy {
    pub addr: String,
    armed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    pub cuts: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: &str, cut_after: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let armed = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (a, s, c, up) = (
            armed.clone(),
            stop.clone(),
            cuts.clone(),
            upstream.to_string(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let (a, c) = (a.clone(), c.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c2, s2, None));
                std::thread::spawn(move || pump(server, client, Some((a, c, cut_after))));
            }
        });
        Proxy {
            addr,
            armed,
            stop,
            cuts,
        }
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        if let Err(e) = TcpStream::connect(&self.addr) {
            eprintln!("wake proxy: {e}");
        }
    }
}

type Cut = (Arc<AtomicBool>, Arc<AtomicU64>, u64);

fn pump(mut from: TcpStream, mut to: TcpStream, cut: Option<Cut>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut relayed = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        relayed += n as u64;
        if let Some((armed, cuts, after)) = &cut {
            if relayed > *after && armed.swap(false, Ordering::SeqCst) {
                cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
    }
    // Closing both directions ends the other pump too.
    for s in [&from, &to] {
        if let Err(e) = s.shutdown(Shutdown::Both) {
            if e.kind() != std::io::ErrorKind::NotConnected {
                eprintln!("proxy shutdown: {e}");
            }
        }
    }
}
