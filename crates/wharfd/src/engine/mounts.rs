//! What a container sees besides its image: the process user and environment, bind mounts,
//! volumes, tmpfs, and the `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` the daemon
//! writes for it.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::model::MountPoint;
use crate::daemon::{Ctr, Daemon};
use crate::error::{ApiError, ApiResult};

pub struct Prepared {
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub gids: Vec<u32>,
    pub mounts: Vec<Value>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Opens `rel` inside `root` with `flags`, never leaving it: symlinks (absolute ones too)
/// resolve inside the root (`openat2` with `RESOLVE_IN_ROOT`), magic links are refused.
pub fn open_in_root(root: &Path, rel: &str, flags: nix::fcntl::OFlag) -> nix::Result<OwnedFd> {
    let root_fd = nix::fcntl::open(
        root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let how = nix::fcntl::OpenHow::new()
        .flags(flags | nix::fcntl::OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let rel = rel.trim_start_matches('/');
    nix::fcntl::openat2(&root_fd, if rel.is_empty() { "." } else { rel }, how)
}

/// Reads a file of the container's root filesystem without following any symlink out of it;
/// missing files read as empty.
pub fn read_in_root(root: &Path, rel: &str, limit: u64) -> ApiResult<String> {
    match open_in_root(root, rel, nix::fcntl::OFlag::O_RDONLY) {
        Ok(fd) => {
            let mut s = String::new();
            std::fs::File::from(fd)
                .take(limit)
                .read_to_string(&mut s)
                .map_err(|e| ApiError::internal(format!("read {rel} in rootfs: {e}")))?;
            Ok(s)
        }
        Err(nix::errno::Errno::ENOENT) => Ok(String::new()),
        Err(e) => Err(ApiError::internal(format!(
            "open {rel} in rootfs {}: {e}",
            root.display()
        ))),
    }
}

/// Resolves Docker's `user[:group]` (names or numbers) against the image's passwd and group.
pub fn resolve_user(rootfs: &Path, user: &str) -> ApiResult<(u32, u32, Vec<u32>)> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd", 4 << 20)?;
    let group = read_in_root(rootfs, "etc/group", 4 << 20)?;
    let mut uid = None;
    let mut gid = None;
    let mut uname = None;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            continue;
        }
        if f[0] == u || (u.parse::<u32>().ok() == f[2].parse().ok() && u.parse::<u32>().is_ok()) {
            uid = f[2].parse().ok();
            gid = f[3].parse().ok();
            uname = Some(f[0].to_string());
            break;
        }
    }
    let uid = match (uid, u.parse::<u32>()) {
        (Some(x), _) => x,
        (None, Ok(n)) => n,
        (None, Err(_)) => {
            return Err(ApiError::bad_request(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    let mut gid = gid.unwrap_or(0);
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut gids = Vec::new();
    if let Some(name) = uname {
        for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !gids.contains(&n) {
                        gids.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, gids))
}

/// Parses a bind string `src:dst[:opts]` into (source, destination, read-only, propagation).
pub fn parse_bind(b: &str) -> ApiResult<(String, String, bool, Option<String>)> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, dst, opts) = match parts[..] {
        [src, dst] => (src, dst, ""),
        [src, dst, opts] => (src, dst, opts),
        [dst] => ("", dst, ""),
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid volume specification: '{b}'"
            )))
        }
    };
    if !dst.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "invalid volume specification: '{b}': mount path must be absolute"
        )));
    }
    if dst == "/" {
        return Err(ApiError::bad_request(format!(
            "invalid volume specification: '{b}': destination can't be '/'"
        )));
    }
    if dst.split('/').any(|c| c == "..") {
        return Err(ApiError::bad_request(format!(
            "invalid volume specification: '{b}': destination must not contain '..'"
        )));
    }
    let mut ro = false;
    let mut prop = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                prop = Some(o.to_string())
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid volume specification: '{b}': unknown option {o:?}"
                )))
            }
        }
    }
    Ok((src.to_string(), dst.to_string(), ro, prop))
}

impl Daemon {
    pub async fn prepare_mounts(
        self: &Arc<Self>,
        c: &Arc<Ctr>,
        rootfs: &Path,
    ) -> ApiResult<Prepared> {
        let rec = c.snapshot();
        let (uid, gid, gids) = resolve_user(rootfs, &rec.config.user)?;
        let mut env = rec.config.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        let hostname = if rec.config.hostname.is_empty() {
            rec.id[..12].to_string()
        } else {
            rec.config.hostname.clone()
        };
        env.retain(|e| !e.starts_with("HOSTNAME="));
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
        if rec.config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }

        let mut mounts: Vec<Value> = Vec::new();
        let mut points: Vec<MountPoint> = Vec::new();
        let mut taken: Vec<String> = Vec::new();
        let bind = |src: &str, dst: &str, ro: bool, prop: Option<&str>| {
            let mut opts = vec![
                "rbind".to_string(),
                if ro { "ro" } else { "rw" }.to_string(),
            ];
            opts.push(prop.unwrap_or("rprivate").to_string());
            json!({"destination": dst, "type": "bind", "source": src, "options": opts})
        };

        for b in &rec.host.binds {
            let (src, dst, ro, prop) = parse_bind(b)?;
            taken.push(dst.clone());
            if src.starts_with('/') {
                std::fs::metadata(&src).map_err(|e| {
                    ApiError::bad_request(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {src}: {e}"
                    ))
                })?;
                mounts.push(bind(&src, &dst, ro, prop.as_deref()));
                points.push(MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: src,
                    destination: dst,
                    rw: !ro,
                });
            } else {
                let (name, anonymous) = if src.is_empty() {
                    (super::containers::random_id(), true)
                } else {
                    (src.clone(), false)
                };
                let path = self.ensure_volume(&name, anonymous)?;
                mounts.push(bind(&path.to_string_lossy(), &dst, ro, prop.as_deref()));
                points.push(MountPoint {
                    kind: "volume".into(),
                    name,
                    source: path.to_string_lossy().into_owned(),
                    destination: dst,
                    rw: !ro,
                });
            }
        }
        for m in &rec.host.mounts {
            if !m.target.starts_with('/') || m.target == "/" {
                return Err(ApiError::bad_request(format!(
                    "invalid mount config: target {:?} must be an absolute path other than /",
                    m.target
                )));
            }
            taken.push(m.target.clone());
            match m.r#type.as_str() {
                "bind" => {
                    if !Path::new(&m.source).is_absolute() || std::fs::metadata(&m.source).is_err()
                    {
                        return Err(ApiError::bad_request(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    mounts.push(bind(&m.source, &m.target, m.read_only, None));
                    points.push(MountPoint {
                        kind: "bind".into(),
                        name: String::new(),
                        source: m.source.clone(),
                        destination: m.target.clone(),
                        rw: !m.read_only,
                    });
                }
                "volume" => {
                    let (name, anon) = if m.source.is_empty() {
                        (super::containers::random_id(), true)
                    } else {
                        (m.source.clone(), false)
                    };
                    let path = self.ensure_volume(&name, anon)?;
                    mounts.push(bind(&path.to_string_lossy(), &m.target, m.read_only, None));
                    points.push(MountPoint {
                        kind: "volume".into(),
                        name,
                        source: path.to_string_lossy().into_owned(),
                        destination: m.target.clone(),
                        rw: !m.read_only,
                    });
                }
                "tmpfs" => {
                    mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "mode=1777"]}));
                }
                o => {
                    return Err(ApiError::bad_request(format!(
                    "invalid mount config: mount type {o:?} is not supported (bind, volume, tmpfs)"
                )))
                }
            }
        }
        for (dst, opts) in &rec.host.tmpfs {
            if !dst.starts_with('/') || dst == "/" {
                return Err(ApiError::bad_request(format!(
                    "invalid HostConfig.Tmpfs: {dst:?} must be an absolute path other than /"
                )));
            }
            taken.push(dst.clone());
            let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            o.extend(
                opts.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string),
            );
            mounts.push(
                json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}),
            );
        }
        // Image VOLUMEs not covered by a bind get anonymous volumes.
        for dst in rec.config.volumes.keys() {
            if taken.iter().any(|t| t == dst) {
                continue;
            }
            let name = super::containers::random_id();
            let path = self.ensure_volume(&name, true)?;
            mounts.push(bind(&path.to_string_lossy(), dst, false, None));
            points.push(MountPoint {
                kind: "volume".into(),
                name,
                source: path.to_string_lossy().into_owned(),
                destination: dst.clone(),
                rw: true,
            });
        }

        // /etc files, unless the user bound their own.
        let dir = self.container_dir(&c.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("create {}: {e}", dir.display())))?;
        // `rec` is taken after the networks were joined.
        let ip = rec.net.as_ref().map(|n| n.ip.clone()).unwrap_or_default();
        // The embedded responder of the first user network the container is on.
        let dns_att = rec.attachments().find(|n| n.dns);
        let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
        if !ip.is_empty() {
            hosts.push_str(&format!("{ip}\t{hostname}\n"));
        }
        for h in &rec.host.extra_hosts {
            let (name, addr) = h.split_once(':').ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid HostConfig.ExtraHosts entry {h:?}: want host:ip"
                ))
            })?;
            hosts.push_str(&format!("{addr}\t{name}\n"));
        }
        let mut resolv =
            self.resolv_conf(&rec.host.dns, &rec.host.dns_search, &rec.host.dns_options);
        if let Some(n) = dns_att.as_ref().filter(|_| rec.host.dns.is_empty()) {
            // User networks: the embedded responder first (peers by name, the rest forwarded).
            let rest: String = resolv
                .lines()
                .filter(|l| !l.starts_with("nameserver"))
                .map(|l| format!("{l}\n"))
                .collect();
            resolv = format!("nameserver {}\n{rest}options ndots:0\n", n.gateway);
        }
        let host_mode = rec.host.network_mode == "host";
        for (file, content) in [
            ("hostname", format!("{hostname}\n")),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            let dst = format!("/etc/{file}");
            if taken.contains(&dst) {
                continue;
            }
            let src = if host_mode && file != "hostname" {
                std::path::PathBuf::from(&dst)
            } else {
                let p = dir.join(file);
                std::fs::write(&p, content)
                    .map_err(|e| ApiError::internal(format!("write {}: {e}", p.display())))?;
                p
            };
            mounts.push(bind(&src.to_string_lossy(), &dst, false, None));
        }
        c.lock().mounts = points;
        Ok(Prepared {
            env,
            uid,
            gid,
            gids,
            mounts,
        })
    }

    /// resolv.conf for a container: explicit DNS settings, else the host's (loopback servers,
    /// which cannot work from another network namespace, are left out).
    fn resolv_conf(&self, dns: &[String], search: &[String], options: &[String]) -> String {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut out = String::new();
        let servers: Vec<String> = if dns.is_empty() {
            host.lines()
                .filter_map(|l| l.strip_prefix("nameserver"))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.starts_with("127.") && s != "::1")
                .collect()
        } else {
            dns.to_vec()
        };
        for s in servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        let search: Vec<String> = if search.is_empty() {
            host.lines()
                .filter_map(|l| l.strip_prefix("search"))
                .flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect()
        } else {
            search.to_vec()
        };
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let (s, d, ro, _) = parse_bind("/a:/b:ro").expect("bind");
        assert_eq!((s.as_str(), d.as_str(), ro), ("/a", "/b", true));
        assert!(parse_bind("/a:b").is_err());
        assert!(parse_bind("/a:/").is_err());
        assert!(parse_bind("/a:/x/../y").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
        let (s, _, _, _) = parse_bind("vol:/data").expect("volume");
        assert_eq!(s, "vol");
    }

    #[test]
    fn users_resolve_inside_the_root_only() {
        let t = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(t.path().join("etc")).expect("etc");
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            t.path().join("etc/group"),
            "web:x:1000:\nextra:x:2000:web\n",
        )
        .expect("group");
        assert_eq!(
            resolve_user(t.path(), "web").expect("web"),
            (1000, 1000, vec![2000])
        );
        assert_eq!(
            resolve_user(t.path(), "5:7").expect("numeric"),
            (5, 7, vec![])
        );
        assert!(resolve_user(t.path(), "nobody").is_err());
        // An absolute symlink resolves inside the root, never to the host's file.
        std::fs::remove_file(t.path().join("etc/group")).expect("rm");
        std::os::unix::fs::symlink("/etc/shadow", t.path().join("etc/group")).expect("symlink");
        assert_eq!(read_in_root(t.path(), "etc/group", 1024).expect("read"), "");
    }
}
