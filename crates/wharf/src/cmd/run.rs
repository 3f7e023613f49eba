//! `run`, `create` and `start`: flags to docker's create body, the pull-and-retry on a 404
//! from create, and the attach → wait → start order that loses no output and no exit.

use std::io::IsTerminal;

use hyper::Method;
use serde_json::{json, Map, Value};

use super::{expand_env, labels, read_env_files};
use crate::cli::{CreateOpts, RunArgs, StartArgs};
use crate::client::{path_seg, Body, Client, JsonLines, Query};
use crate::error::{start_failure_code, Error, Result};
use crate::progress::{self, Target};
use crate::stdio::{self, End, RawTerminal};

/// `512m`, `1g`, `100k`, `1024` → bytes (binary units, like docker's `RAMInBytes`).
pub fn parse_memory(v: &str) -> Result<i64> {
    let s = v.trim().to_ascii_lowercase();
    let s = s
        .strip_suffix('b')
        .filter(|r| r.ends_with(['k', 'm', 'g', 't', 'p']))
        .unwrap_or(&s);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        Some('p') => (&s[..s.len() - 1], 1 << 50),
        Some('b') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::usage(format!("invalid size: {v:?}")))?;
    if n < 0.0 {
        return Err(Error::usage(format!("invalid size: {v:?}")));
    }
    Ok((n * mult as f64) as i64)
}

/// `-p [ip:][hostPort:]containerPort[/proto]` → (`port/proto`, host ip, host port); ranges
/// expand one binding per port.
pub fn parse_publish(p: &str) -> Result<Vec<(String, String, String)>> {
    let bad = || {
        Error::usage(format!(
            "invalid --publish value {p:?} (expected [ip:][hostPort:]containerPort[/proto])"
        ))
    };
    let (spec, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    // An IPv6 host address is written in brackets: [::1]:8080:80
    let (ip, rest) = match spec.strip_prefix('[') {
        Some(r) => {
            let (ip, rest) = r.split_once("]:").ok_or_else(bad)?;
            (ip.to_string(), rest.to_string())
        }
        None => {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                1 | 2 => (String::new(), spec.to_string()),
                3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
                _ => return Err(bad()),
            }
        }
    };
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest),
    };
    let range = |s: &str| -> Result<(u32, u32)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (a, b) = (
            a.parse::<u32>().map_err(|_| bad())?,
            b.parse::<u32>().map_err(|_| bad())?,
        );
        if a == 0 || a > b || b > 65535 {
            return Err(bad());
        }
        Ok((a, b))
    };
    let (c0, c1) = range(&ctr)?;
    let hr = if host.is_empty() {
        None
    } else {
        Some(range(&host)?)
    };
    if let Some((h0, h1)) = hr {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(Error::usage(format!(
                "invalid --publish value {p:?}: host and container port ranges differ in size"
            )));
        }
    }
    Ok((c0..=c1)
        .map(|c| {
            let hp = match hr {
                None => String::new(),
                Some((h0, h1)) if h0 == h1 => h0.to_string(),
                Some((h0, _)) => (h0 + c - c0).to_string(),
            };
            (format!("{c}/{proto}"), ip.clone(), hp)
        })
        .collect())
}

/// `--mount type=bind,source=/a,target=/b,readonly` → a HostConfig.Mounts entry.
pub fn parse_mount(m: &str) -> Result<Value> {
    let mut kind = "volume".to_string();
    let (mut src, mut dst, mut ro) = (String::new(), String::new(), false);
    for kv in m.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k.trim() {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            other => {
                return Err(Error::usage(format!(
                    "--mount: unsupported key {other:?} in {m:?}"
                )))
            }
        }
    }
    if dst.is_empty() {
        return Err(Error::usage(format!(
            "--mount: target is required in {m:?}"
        )));
    }
    Ok(json!({"Type": kind, "Source": src, "Target": dst, "ReadOnly": ro}))
}

fn abs_bind(v: &str) -> Result<String> {
    if !v.starts_with('.') {
        return Ok(v.to_string());
    }
    let (src, rest) = v.split_once(':').unwrap_or((v, ""));
    let cwd = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
    let abs = cwd.join(src);
    Ok(if rest.is_empty() {
        abs.display().to_string()
    } else {
        format!("{}:{rest}", abs.display())
    })
}

fn restart_policy(r: &str) -> Result<Value> {
    let (name, count) = r.split_once(':').unwrap_or((r, "0"));
    if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(Error::usage(format!(
            "invalid restart policy {name:?} (no, always, unless-stopped, on-failure[:N])"
        )));
    }
    let n: i64 = count
        .parse()
        .map_err(|_| Error::usage(format!("invalid restart policy count {count:?}")))?;
    if n > 0 && name != "on-failure" {
        return Err(Error::usage(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        )));
    }
    Ok(json!({"Name": name, "MaximumRetryCount": n}))
}

/// The create request body for these flags, and the image.
pub fn create_body(o: &CreateOpts, attach: bool) -> Result<(Value, String)> {
    let (image, cmd) = o
        .args
        .split_first()
        .ok_or_else(|| Error::usage("\"run\" requires at least 1 argument: IMAGE"))?;
    if o.rm && o.restart.as_deref().is_some_and(|r| r != "no") {
        return Err(Error::usage("Conflicting options: --restart and --rm"));
    }
    let mut env = read_env_files(&o.env_file)?;
    env.extend(o.env.iter().map(|e| expand_env(e)));
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for e in &o.expose {
        let k = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(k, json!({}));
    }
    for p in &o.publish {
        for (k, ip, hp) in parse_publish(p)? {
            exposed.insert(k.clone(), json!({}));
            let e = bindings.entry(k).or_insert_with(|| json!([]));
            if let Some(a) = e.as_array_mut() {
                a.push(json!({"HostIp": ip, "HostPort": hp}));
            }
        }
    }
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &o.volume {
        if v.starts_with('/') && !v.contains(':') {
            volumes.insert(v.clone(), json!({}));
        } else {
            binds.push(abs_bind(v)?);
        }
    }
    let mounts = o
        .mount
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<Vec<_>>>()?;
    let tmpfs: Map<String, Value> = o
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, opts)) => (p.to_string(), json!(opts)),
            None => (t.clone(), json!("")),
        })
        .collect();
    let extra_hosts: Vec<String> = o.add_host.iter().map(|h| h.replacen('=', ":", 1)).collect();
    let tty = o.tty;
    let console = if tty {
        stdio::terminal_size().map(|(h, w)| json!([h, w]))
    } else {
        None
    };
    let network = o
        .network
        .first()
        .cloned()
        .unwrap_or_else(|| "default".into());
    let mut endpoints: serde_json::Map<String, Value> = if o.network.is_empty() {
        std::iter::once((network.clone(), json!({}))).collect()
    } else {
        o.network.iter().map(|n| (n.clone(), json!({}))).collect()
    };
    // Aliases and a fixed address go to the first network, as docker applies them.
    if let Some(first) = endpoints.get_mut(&network) {
        if !o.network_alias.is_empty() {
            first["Aliases"] = json!(o.network_alias);
        }
        if let Some(ip) = &o.ip {
            first["IPAMConfig"] = json!({"IPv4Address": ip});
        }
    }
    let mut host = json!({
        "Binds": binds, "NetworkMode": network, "PortBindings": bindings,
        "RestartPolicy": match &o.restart { Some(r) => restart_policy(r)?, None => json!({"Name": "no", "MaximumRetryCount": 0}) },
        "AutoRemove": o.rm, "PublishAllPorts": o.publish_all, "Privileged": o.privileged,
        "ReadonlyRootfs": o.read_only, "CapAdd": o.cap_add, "CapDrop": o.cap_drop,
        "SecurityOpt": o.security_opt, "Dns": o.dns, "ExtraHosts": extra_hosts,
        "Tmpfs": tmpfs, "Mounts": mounts, "Isolation": o.isolation.clone().unwrap_or_default(),
        "LogConfig": {"Type": "", "Config": {}},
    });
    if let Some(m) = &o.memory {
        host["Memory"] = json!(parse_memory(m)?);
    }
    if let Some(c) = o.cpus {
        if c < 0.0 {
            return Err(Error::usage(format!("invalid --cpus value {c}")));
        }
        host["NanoCpus"] = json!((c * 1e9) as i64);
    }
    if let Some(p) = o.pids_limit {
        host["PidsLimit"] = json!(p);
    }
    if let Some(cs) = &console {
        host["ConsoleSize"] = cs.clone();
    }
    let mut body = json!({
        "Hostname": o.hostname.clone().unwrap_or_default(),
        "User": o.user.clone().unwrap_or_default(),
        "AttachStdin": attach && o.interactive, "AttachStdout": attach, "AttachStderr": attach,
        "ExposedPorts": exposed, "Tty": tty, "OpenStdin": o.interactive,
        "StdinOnce": attach && o.interactive, "Env": env,
        "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
        "Image": image, "Volumes": volumes, "WorkingDir": o.workdir.clone().unwrap_or_default(),
        "Entrypoint": o.entrypoint.as_ref().map_or(Value::Null, |e| json!([e])),
        "Labels": labels(&o.label), "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if let Some(s) = &o.stop_signal {
        body["StopSignal"] = json!(s);
    }
    if let Some(t) = o.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    Ok((body, image.clone()))
}

/// `busybox` → (`busybox`, `latest`); `reg:5000/a/b:1` → (`reg:5000/a/b`, `1`); digests stay
/// whole in the tag (`sha256:...`).
pub fn split_ref(name: &str) -> (String, String) {
    if let Some((repo, digest)) = name.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (name.to_string(), "latest".to_string()),
    }
}

/// Starts pulling `image`: the daemon's JSON-lines progress stream.
pub async fn pull_stream(c: &Client, image: &str, platform: Option<&str>) -> Result<JsonLines> {
    let (repo, tag) = split_ref(image);
    let q = Query::new()
        .add("fromImage", repo)
        .add("tag", tag)
        .opt("platform", platform.unwrap_or(""));
    let resp = c
        .request(
            Method::POST,
            "/images/create",
            q,
            Body::Empty,
            &[("x-registry-auth", "e30=")],
        )
        .await?;
    Ok(JsonLines::new(resp))
}

/// Pulls `image`, progress on `target`.
pub async fn pull_image(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    target: Target,
) -> Result<()> {
    progress::display(pull_stream(c, image, platform).await?, target).await?;
    Ok(())
}

/// Creates the container, pulling the image and retrying once if create says 404.
async fn create_container(c: &Client, o: &CreateOpts, attach: bool) -> Result<String> {
    let (body, image) = create_body(o, attach)?;
    let qs = || {
        Query::new()
            .opt("name", o.name.as_deref().unwrap_or(""))
            .opt("platform", o.platform.as_deref().unwrap_or(""))
    };
    let resp = match c.post("/containers/create", qs(), Some(&body)).await {
        Err(e) if e.is_not_found() => {
            let (repo, tag) = split_ref(&image);
            eprintln!("Unable to find image '{repo}:{tag}' locally");
            pull_image(c, &image, o.platform.as_deref(), Target::Stderr).await?;
            c.post("/containers/create", qs(), Some(&body)).await?
        }
        r => r?,
    };
    if let Some(ws) = resp["Warnings"].as_array() {
        for w in ws.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    resp["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Stream("create: the daemon's answer has no Id".into()))
}

pub async fn create(c: &Client, o: CreateOpts) -> Result<()> {
    let id = create_container(c, &o, false).await?;
    println!("{id}");
    Ok(())
}

/// A failed start (or first attach) with docker's exit code: 127 for a missing command, 126
/// for one that cannot be invoked, 125 otherwise.
fn start_error(e: Error) -> Error {
    let code = match &e {
        Error::Daemon { message, .. } => start_failure_code(message),
        _ => 125,
    };
    e.with_code(code)
}

/// Reads the body of a pending wait: the container's exit code, or 125 with the error.
async fn wait_result(resp: hyper::Response<hyper::body::Incoming>) -> Result<i32> {
    let b = crate::client::read_all(resp).await?;
    let v: Value = serde_json::from_slice(&b).map_err(|source| Error::Decode {
        what: "wait result".into(),
        source,
    })?;
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Error::WithCode {
            code: 125,
            message: format!("Error response from daemon: {m}"),
        });
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

/// Attach (before start), wait (headers received before start), start, stream, exit code.
async fn attach_start_wait(
    c: &Client,
    id: &str,
    tty: bool,
    stdin: bool,
    condition: &str,
) -> Result<i32> {
    let _raw = if tty && stdin {
        RawTerminal::enable()?
    } else {
        None
    };
    let seg = path_seg(id);
    let io = stdio::attach_stream(c, id, stdin)
        .await
        // wharfd creates the container's process at the first attach, so a command that
        // cannot run may fail here rather than at start.
        .map_err(start_error)?;
    let wait = c
        .request(
            Method::POST,
            &format!("/containers/{seg}/wait"),
            Query::new().add("condition", condition),
            Body::Empty,
            &[],
        )
        .await?;
    c.post(&format!("/containers/{seg}/start"), Query::new(), None)
        .await
        .map_err(start_error)?;
    let resize = format!("/containers/{seg}/resize");
    let end = stdio::attended_session(c, io, tty, stdin, resize, Some(id)).await;
    if end? == End::Detached {
        drop(_raw);
        eprintln!("\r\nread escape sequence");
        return Ok(0);
    }
    wait_result(wait).await
}

pub async fn run(c: &Client, a: RunArgs) -> Result<()> {
    let o = &a.create;
    if !a.detach && o.tty && o.interactive && !std::io::stdin().is_terminal() {
        return Err(Error::WithCode {
            code: 1,
            message: "the input device is not a TTY".into(),
        });
    }
    let id = create_container(c, o, !a.detach)
        .await
        .map_err(|e| e.with_code(125))?;
    if a.detach {
        let seg = path_seg(&id);
        c.post(&format!("/containers/{seg}/start"), Query::new(), None)
            .await
            .map_err(start_error)?;
        println!("{id}");
        return Ok(());
    }
    let cond = if o.rm { "removed" } else { "next-exit" };
    match attach_start_wait(c, &id, o.tty, o.interactive, cond).await? {
        0 => Ok(()),
        code => Err(Error::Status(code)),
    }
}

pub async fn start(c: &Client, a: StartArgs) -> Result<()> {
    if !a.attach && !a.interactive {
        return super::each(&a.names, true, |n| async move {
            c.post(
                &format!("/containers/{}/start", path_seg(&n)),
                Query::new(),
                None,
            )
            .await
            .map(drop)
        })
        .await;
    }
    if a.names.len() > 1 {
        return Err(Error::usage(
            "you cannot start and attach multiple containers at once",
        ));
    }
    let name = &a.names[0];
    let info: Value = c
        .get(
            &format!("/containers/{}/json", path_seg(name)),
            Query::new(),
        )
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    match attach_start_wait(c, &id, tty, stdin, "next-exit").await? {
        0 => Ok(()),
        code => Err(Error::Status(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory() {
        assert_eq!(parse_memory("512m").expect("m"), 512 << 20);
        assert_eq!(parse_memory("1g").expect("g"), 1 << 30);
        assert_eq!(parse_memory("1GB").expect("gb"), 1 << 30);
        assert_eq!(parse_memory("100").expect("bytes"), 100);
        assert!(parse_memory("lots").is_err());
    }

    #[test]
    fn publish() {
        assert_eq!(
            parse_publish("8080:80").expect("p"),
            vec![("80/tcp".into(), "".into(), "8080".into())]
        );
        assert_eq!(
            parse_publish("127.0.0.1:53:53/udp").expect("p"),
            vec![("53/udp".into(), "127.0.0.1".into(), "53".into())]
        );
        assert_eq!(
            parse_publish("80").expect("p"),
            vec![("80/tcp".into(), "".into(), "".into())]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").expect("p"),
            vec![("80/tcp".into(), "::1".into(), "8080".into())]
        );
        assert_eq!(parse_publish("8000-8001:80-81").expect("p").len(), 2);
        assert!(parse_publish("a:b").is_err());
        assert!(parse_publish("0").is_err());
    }

    #[test]
    fn refs() {
        assert_eq!(split_ref("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_ref("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "latest".into())
        );
        assert_eq!(
            split_ref("localhost:5000/a/b:1"),
            ("localhost:5000/a/b".into(), "1".into())
        );
        assert_eq!(split_ref("a@sha256:00"), ("a".into(), "sha256:00".into()));
    }

    #[test]
    fn body() {
        let o = CreateOpts {
            args: vec!["busybox".into(), "echo".into(), "hi".into()],
            publish: vec!["8080:80".into()],
            volume: vec!["/data".into(), "/a:/b:ro".into()],
            memory: Some("64m".into()),
            restart: Some("on-failure:3".into()),
            mount: vec!["type=bind,src=/x,dst=/y,readonly".into()],
            tmpfs: vec!["/run:size=1m".into()],
            ..Default::default()
        };
        let (b, image) = create_body(&o, true).expect("body");
        assert_eq!(image, "busybox");
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert_eq!(
            b["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "8080"
        );
        assert_eq!(b["HostConfig"]["Binds"], json!(["/a:/b:ro"]));
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(b["HostConfig"]["Memory"], json!(64 << 20));
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(b["HostConfig"]["Mounts"][0]["ReadOnly"], json!(true));
        assert_eq!(b["HostConfig"]["Tmpfs"], json!({"/run": "size=1m"}));
        assert_eq!(b["AttachStdout"], json!(true));
        let bad = CreateOpts {
            args: vec!["x".into()],
            rm: true,
            restart: Some("always".into()),
            ..Default::default()
        };
        assert!(create_body(&bad, true).is_err());
    }
}
