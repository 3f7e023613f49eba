#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The real docker CLI (28.x, `DOCKER_HOST=unix://...`) driving a private wharfd.

mod common;

use std::process::Command;

#[test]
fn system_images_volumes_networks_and_bad_input() {
    let Some(d) = common::daemon("a") else { return };
    let v = d.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.50 linux");
    let info = d.ok(&["info", "--format", "{{json .}}"]);
    let info: serde_json::Value = serde_json::from_str(&info).expect("info json");
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["Isolation"], "process");

    d.import_busybox();
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == "busybox:latest"), "{images}");
    d.ok(&["tag", "busybox", "example.com/team/bb:v1"]);
    let inspect = d.ok(&[
        "image",
        "inspect",
        "example.com/team/bb:v1",
        "--format",
        "{{.Os}} {{len .RootFS.Layers}}",
    ]);
    assert_eq!(inspect.trim(), "linux 1");
    let hist = d.ok(&["history", "busybox"]);
    assert!(hist.contains("import"), "{hist}");

    // save, remove, load back.
    let tar = d.dir.path().join("saved.tar");
    d.ok(&[
        "save",
        "-o",
        tar.to_str().unwrap(),
        "example.com/team/bb:v1",
    ]);
    d.ok(&["rmi", "example.com/team/bb:v1"]);
    let o = d.docker(&["image", "inspect", "example.com/team/bb:v1"]);
    assert!(!o.status.success());
    let loaded = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.contains("Loaded image: example.com/team/bb:v1"),
        "{loaded}"
    );

    // Volumes.
    d.ok(&["volume", "create", "data1"]);
    let vols = d.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(vols.lines().any(|l| l == "data1"));
    let mp = d.ok(&["volume", "inspect", "data1", "--format", "{{.Mountpoint}}"]);
    assert!(std::path::Path::new(mp.trim()).is_dir());
    d.ok(&["volume", "rm", "data1"]);
    assert!(!std::path::Path::new(mp.trim()).exists());

    // Networks.
    let id = d.ok(&["network", "create", "backend"]);
    assert!(!id.trim().is_empty());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.contains("backend nat"), "{nets}");
    assert!(nets.contains("nat nat"), "{nets}");
    let o = d.docker(&["network", "create", "backend"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    d.ok(&["network", "rm", "backend"]);

    // Past events replay with --since (and the stream ends at --until).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ev = d.ok(&[
        "events",
        "--since",
        "1",
        "--until",
        &(now + 1).to_string(),
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert!(
        ev.contains("network create") && ev.contains("volume destroy"),
        "{ev}"
    );

    // Bad input: clear 4xx, nothing changes.
    let before = d.ok(&["ps", "-aq"]);
    let (st, body) = d.raw("POST", "/v1.50/containers/create", "{not json");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid JSON"), "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memory":1024}}"#,
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("Memory"), "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"busybox","HostConfig":{"NanoCpus":999000000000}}"#,
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Binds":["/etc:relative"]}}"#,
    );
    assert!(st == 400 || st == 201, "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create?name=..bad",
        r#"{"Image":"busybox"}"#,
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"nosuchimage"}"#,
    );
    assert_eq!(st, 404, "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Isolation":"hyperv"}}"#,
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not available yet"), "{body}");
    let (st, _) = d.raw("GET", "/v1.99/version", "");
    assert_eq!(st, 400);
    let (st, _) = d.raw("GET", "/v1.50/containers/nonexistent/json", "");
    assert_eq!(st, 404);
    let (st, _) = d.raw("GET", "/v1.50/volumes/nonexistent", "");
    assert_eq!(st, 404);
    // Whatever create left in place must be cleaned: only the bind-relative case may have
    // succeeded, and it was refused at start at the latest. Remove it to compare.
    let after = d.ok(&["ps", "-aq"]);
    for id in after.split_whitespace().filter(|i| !before.contains(i)) {
        let name = d.ok(&["inspect", "--format", "{{json .HostConfig.Binds}}", id]);
        assert!(
            name.contains("relative"),
            "unexpected container {id}: {name}"
        );
        d.ok(&["rm", id]);
    }
}

#[test]
fn run_exec_logs_stop_commit_cp() {
    let Some(d) = common::daemon("b") else { return };
    d.import_busybox();

    // Attached run: output and exit code.
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{o:?}\n{}",
        common::tail(&d.log(), 30)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    assert!(
        d.ok(&["ps", "-aq"]).trim().is_empty(),
        "--rm removed the container"
    );

    // A command that does not exist: start fails with 127 and --rm still removes the container.
    let o = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    for _ in 0..50 {
        if d.ok(&["ps", "-aq"]).trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        d.ok(&["ps", "-aq"]).trim().is_empty(),
        "the failed --rm container is removed"
    );

    // start -a on an exited container attaches again.
    let o = d.docker(&[
        "run",
        "--name",
        "again",
        "busybox",
        "sh",
        "-c",
        "echo round; exit 2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = d.docker(&["start", "-a", "again"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "round\n");
    d.ok(&["rm", "again"]);

    // stdin through attach.
    let mut child = Command::new("docker")
        .args(["run", "-i", "--rm", "busybox", "tr", "a-z", "A-Z"])
        .env("DOCKER_HOST", d.host())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO STDIN\n");

    // Detached, logs, exec, stop, rm.
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("web Up"), "{ps}");
    wait_for(|| d.ok(&["logs", "web"]).contains("started"));
    assert_eq!(d.ok(&["exec", "web", "echo", "hi"]), "hi\n");
    let o = d.docker(&["exec", "web", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    // cp of a directory from a running container freezes it for the walk and thaws it after.
    let o = d.docker(&["cp", "web:/etc", "-"]);
    assert!(o.status.success());
    let names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "etc/passwd"), "{names:?}");
    wait_for(|| {
        d.ok(&["inspect", "--format", "{{.State.Status}}", "web"])
            .trim()
            == "running"
    });
    let top = d.ok(&["top", "web"]);
    assert!(top.contains("sleep") || top.contains("sh"), "{top}");
    d.ok(&["stop", "web"]);
    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(st.trim(), "exited 0");
    let logs = d.ok(&["logs", "-t", "web"]);
    assert!(logs.contains("started") && logs.contains("bye"), "{logs}");
    assert!(logs.starts_with("20"), "timestamps: {logs}");

    // logs -f follows until the container stops.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "follow",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 0.5; echo second",
    ]);
    let followed = d.ok(&["logs", "-f", "follow"]);
    assert_eq!(followed, "first\nsecond\n");
    d.ok(&["rm", "follow"]);

    // A tty run through a pty (script(1) gives the CLI a terminal).
    let out = Command::new("script")
        .args([
            "-qec",
            "docker run -it --rm busybox sh -c 'tty; stty size'",
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");

    // Commit: a changed file becomes a layer of a new image.
    d.ok(&[
        "run",
        "--name",
        "builder",
        "busybox",
        "sh",
        "-c",
        "echo baked > /baked.txt; rm /bin/vi",
    ]);
    d.ok(&["commit", "builder", "baked:1"]);
    assert_eq!(
        d.ok(&["run", "--rm", "baked:1", "cat", "/baked.txt"]),
        "baked\n"
    );
    let o = d.docker(&["run", "--rm", "baked:1", "ls", "/bin/vi"]);
    assert!(!o.status.success(), "the whiteout hides /bin/vi");

    // cp both ways (on the stopped container).
    let src = d.dir.path().join("cp-in.txt");
    std::fs::write(&src, "copied in\n").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), "builder:/tmp/"]);
    let dst = d.dir.path().join("cp-out");
    std::fs::create_dir_all(&dst).unwrap();
    d.ok(&["cp", "builder:/tmp/cp-in.txt", dst.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(dst.join("cp-in.txt")).unwrap(),
        "copied in\n"
    );
    d.ok(&["rm", "builder", "web"]);
}

#[test]
fn networks_resolve_names_and_publish_ports() {
    let Some(d) = common::daemon("c") else { return };
    d.import_busybox();
    d.ok(&["network", "create", "app"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        "busybox",
        "sh",
        "-c",
        "echo dbdata > /tmp/index.html; httpd -f -p 80 -h /tmp",
    ]);
    let got = d.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "wget",
        "-qO-",
        "http://db/index.html",
    ]);
    assert_eq!(got, "dbdata\n");
    // The embedded DNS responder on the network's gateway answers peer names.
    let db_ip = d.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "db",
    ]);
    let ns = d.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "nslookup",
        "db",
    ]);
    assert!(
        ns.contains(db_ip.trim()),
        "nslookup db: {ns} (want {db_ip})"
    );

    // Published port, reached from the daemon's host namespace via localhost and its address.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "18080:80",
        "busybox",
        "sh",
        "-c",
        "echo published > /tmp/index.html; httpd -f -p 80 -h /tmp",
    ]);
    let port = d.ok(&["port", "pub", "80/tcp"]);
    assert!(port.contains("18080"), "{port}");
    let mut body = String::new();
    for _ in 0..50 {
        let o = d.in_netns(&[
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1:18080/index.html",
        ]);
        body = String::from_utf8_lossy(&o.stdout).into_owned();
        if body == "published\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body, "published\n");

    // Volumes carry data between containers.
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "shared:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
    d.ok(&["rm", "-f", "db", "pub"]);
    d.ok(&["network", "rm", "app"]);
}

fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("condition not met in 5 s");
}

#[test]
fn options_limits_restart_policies_and_escapes() {
    let Some(d) = common::daemon("d") else { return };
    d.import_busybox();

    // Read-only rootfs, tmpfs, capabilities, user, env, workdir, hostname.
    let o = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert!(!o.status.success(), "read-only rootfs refused the write");
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            "touch /scratch/x && echo ok"
        ]),
        "ok\n"
    );
    let caps = d.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(caps.contains("0000000000000000"), "{caps}");
    let caps = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(
        caps.contains("00000000a80425fb"),
        "Docker's default set: {caps}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "-u", "65534:65534", "busybox", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-e",
            "A=b",
            "-w",
            "/tmp",
            "--hostname",
            "h1",
            "busybox",
            "sh",
            "-c",
            "echo $A $(pwd) $(hostname)"
        ]),
        "b /tmp h1\n"
    );
    // The default seccomp profile refuses unshare; --privileged lifts it.
    let o = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!o.status.success(), "unshare under the default profile");
    // Docker's allow-list widens with the capability: SYS_ADMIN allows unshare.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_ADMIN",
            "busybox",
            "sh",
            "-c",
            "unshare -m true && echo yes"
        ]),
        "yes\n"
    );

    // Limits reach the cgroup.
    let mem = d.ok(&["run", "--rm", "-m", "64m", "--pids-limit", "50", "busybox", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"]);
    assert!(mem.contains("67108864") && mem.contains("50"), "{mem}");

    // Restart policy: on-failure with a retry budget.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ]);
    let mut count = String::new();
    for _ in 0..100 {
        count = d.ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ]);
        if count.trim() == "2 exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(count.trim(), "2 exited");
    assert_eq!(d.ok(&["logs", "flaky"]).matches("try").count(), 3);

    // Pause, rename, stats, wait.
    d.ok(&["run", "-d", "--name", "p1", "busybox", "sleep", "1000"]);
    d.ok(&["pause", "p1"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "p1"])
            .trim(),
        "paused"
    );
    d.ok(&["unpause", "p1"]);
    d.ok(&["rename", "p1", "p2"]);
    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "p2",
    ]);
    assert!(stats.starts_with("p2 1"), "{stats}");
    d.ok(&["kill", "p2"]);
    assert_eq!(d.ok(&["wait", "p2"]).trim(), "137");

    // Log rotation by size.
    d.ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 200); do echo line-$i; done",
    ]);
    let log = d.ok(&["inspect", "--format", "{{.LogPath}}", "chatty"]);
    let log = log.trim();
    assert!(
        std::path::Path::new(&format!("{log}.1")).exists(),
        "rotated file"
    );
    assert!(
        !std::path::Path::new(&format!("{log}.2")).exists(),
        "max-file=2 keeps one rotated file"
    );
    assert!(std::fs::metadata(log).unwrap().len() <= 4096);

    // cp cannot be pointed outside the container: symlinks resolve inside its root.
    d.ok(&[
        "run",
        "--name",
        "esc",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc/passwd /leak; ln -s ../../../../../etc/passwd /leak2",
    ]);
    let image_passwd =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    for p in ["esc:/leak", "esc:/leak2", "esc:/../../../etc/passwd"] {
        let o = d.docker(&["cp", p, "-"]);
        assert!(o.status.success(), "{p}: {o:?}");
        let mut ar = tar::Archive::new(&o.stdout[..]);
        let mut e = ar.entries().unwrap().next().unwrap().unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        assert_eq!(
            s, image_passwd,
            "{p} must read the container's file, not the host's"
        );
    }
    d.ok(&["rm", "-f", "flaky", "p2", "chatty", "esc"]);
}

/// push and pull through wharfd against a real docker-registry on loopback in the daemon's
/// network namespace; the pulled image runs.
#[test]
fn push_and_pull_through_a_local_registry() {
    let Some(d) = common::daemon("r") else { return };
    if !std::path::Path::new("/usr/bin/docker-registry").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "docker-registry missing (scripts/deps.sh)"
        );
        eprintln!("skipped: docker-registry not installed");
        return;
    }
    d.import_busybox();
    let dir = d.dir.path().join("registry");
    std::fs::create_dir_all(&dir).unwrap();
    let port = 15000 + (std::process::id() % 1000) as u16;
    std::fs::write(
        dir.join("config.yml"),
        format!("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", dir.join("storage").display()),
    )
    .unwrap();
    let mut reg = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", d.netns))
        .args(["--", "/usr/bin/docker-registry", "serve"])
        .arg(dir.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            drop(self.0.kill());
            drop(self.0.wait());
        }
    }
    let _reg = Kill(&mut reg);
    let target = format!("127.0.0.1:{port}/team/bb:v1");
    d.ok(&["tag", "busybox", &target]);
    let mut pushed = String::new();
    for _ in 0..50 {
        let o = d.docker(&["push", &target]);
        if o.status.success() {
            pushed = String::from_utf8_lossy(&o.stdout).into_owned();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(pushed.contains("digest: sha256:"), "push: {pushed}");
    d.ok(&["rmi", &target]);
    let pulled = d.ok(&["pull", &target]);
    assert!(
        pulled.contains("Downloaded newer image") || pulled.contains(&target),
        "{pulled}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", &target, "echo", "pulled"]),
        "pulled\n"
    );
}
