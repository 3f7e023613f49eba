#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The `wharf` CLI against a private wharfd: system verbs, images, volumes, networks, the
//! container lifecycle, run/exec/logs/cp/commit, and a `-it` session through a pty.

mod common;

use std::process::Command;

use common::describe;
use serde_json::Value;

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn system_images_volumes_networks() {
    let Some(d) = common::daemon("s") else { return };

    let v = d.ok(&["version"]);
    assert!(
        v.contains("Server: wharf") && v.contains("API version:      1.50"),
        "{v}"
    );
    let v = d.ok(&[
        "version",
        "--format",
        "{{.Server.ApiVersion}} {{.Client.ApiVersion}}",
    ]);
    assert_eq!(v.trim(), "1.50 1.50");
    let info = d.ok(&["info"]);
    assert!(
        info.contains("OSType: linux") && info.contains("Default Isolation: process"),
        "{info}"
    );
    let info: Value = serde_json::from_str(&d.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["OSType"], "linux");

    d.import_busybox();
    let table = d.ok(&["images"]);
    let rows = lines(&table);
    assert!(
        rows[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{table}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("busybox      latest ")),
        "{table}"
    );
    let json: Vec<Value> = d
        .ok(&["images", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bb = json
        .iter()
        .find(|i| i["Repository"] == "busybox")
        .expect("busybox row");
    assert_eq!(bb["Tag"], "latest");
    assert_eq!(bb["ID"].as_str().unwrap().len(), 12);
    let q = d.ok(&["images", "-q"]);
    assert_eq!(q.trim(), bb["ID"].as_str().unwrap());
    let os = d.ok(&[
        "image",
        "inspect",
        "busybox",
        "--format",
        "{{.Os}} {{len .RootFS.Layers}}",
    ]);
    assert_eq!(os.trim(), "linux 1");
    let full: Value = serde_json::from_str(&d.ok(&["inspect", "busybox"])).unwrap();
    assert!(
        full[0]["Id"].as_str().unwrap().starts_with("sha256:"),
        "{full}"
    );

    // tag, save, rmi, load.
    d.ok(&["tag", "busybox", "example.com/team/bb:v1"]);
    let saved = d.dir.path().join("saved.tar");
    d.ok(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "example.com/team/bb:v1",
    ]);
    let rmi = d.ok(&["rmi", "example.com/team/bb:v1"]);
    assert!(rmi.contains("Untagged: example.com/team/bb:v1"), "{rmi}");
    let o = d.wharf(&["image", "inspect", "example.com/team/bb:v1"]);
    assert_eq!(o.status.code(), Some(1));
    let loaded = d.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(
        loaded.contains("Loaded image: example.com/team/bb:v1"),
        "{loaded}"
    );
    let hist = d.ok(&["history", "busybox"]);
    assert!(
        lines(&hist)[0].starts_with("IMAGE") && hist.contains("import"),
        "{hist}"
    );

    // Volumes.
    assert_eq!(d.ok(&["volume", "create", "cli-vol1"]).trim(), "cli-vol1");
    let vols = d.ok(&["volume", "ls"]);
    assert!(vols.lines().any(|l| l == "local     cli-vol1"), "{vols}");
    let mp = d.ok(&[
        "volume",
        "inspect",
        "cli-vol1",
        "--format",
        "{{.Mountpoint}}",
    ]);
    assert!(std::path::Path::new(mp.trim()).is_dir(), "{mp}");
    assert_eq!(d.ok(&["volume", "rm", "cli-vol1"]).trim(), "cli-vol1");
    assert!(!d.ok(&["volume", "ls", "-q"]).contains("cli-vol1"));

    // Networks.
    let id = d.ok(&["network", "create", "--subnet", "10.91.0.0/24", "cli-net1"]);
    assert!(!id.trim().is_empty());
    let nets = d.ok(&["network", "ls"]);
    assert!(lines(&nets)[0].starts_with("NETWORK ID     NAME"), "{nets}");
    assert!(nets.lines().any(|l| l.contains(" cli-net1 ")), "{nets}");
    let rows: Vec<Value> = d
        .ok(&["network", "ls", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.iter().any(|r| r["Name"] == "cli-net1"), "{rows:?}");
    let subnet = d.ok(&[
        "network",
        "inspect",
        "cli-net1",
        "--format",
        "{{json .IPAM.Config}}",
    ]);
    assert!(subnet.contains("10.91.0.0/24"), "{subnet}");
    let o = d.wharf(&["network", "create", "cli-net1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Error response from daemon: "),
        "{}",
        describe(&o, "")
    );
    // A container on two networks, then one taken away and another added while stopped.
    d.ok(&["network", "create", "cli-net2"]);
    d.ok(&[
        "create",
        "--name",
        "cli-multi",
        "--network",
        "cli-net1",
        "--network",
        "cli-net2",
        "busybox",
        "true",
    ]);
    let nets_of = || {
        let v: Value = serde_json::from_str(&d.ok(&[
            "inspect",
            "cli-multi",
            "--format",
            "{{json .NetworkSettings.Networks}}",
        ]))
        .unwrap();
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.join(" ")
    };
    assert_eq!(nets_of(), "cli-net1 cli-net2");
    d.ok(&["network", "disconnect", "cli-net1", "cli-multi"]);
    assert_eq!(nets_of(), "cli-net2");
    d.ok(&["rm", "cli-multi"]);
    d.ok(&["network", "rm", "cli-net2"]);
    assert_eq!(d.ok(&["network", "rm", "cli-net1"]).trim(), "cli-net1");

    // Containers without running them: create, ps -a, inspect, rm.
    let id = d.ok(&[
        "create",
        "--name",
        "cli-created",
        "-e",
        "A=1",
        "-l",
        "k=v",
        "busybox",
        "echo",
        "hi",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let ps = d.ok(&["ps", "-a"]);
    assert!(
        lines(&ps)[0].starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{ps}"
    );
    let row = ps
        .lines()
        .find(|l| l.ends_with("cli-created"))
        .expect("row");
    assert!(
        row.starts_with(&id[..12]) && row.contains("\"echo hi\"") && row.contains("Created"),
        "{row}"
    );
    assert!(
        !d.ok(&["ps"]).contains("cli-created"),
        "plain ps lists only running containers"
    );
    let st = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{json .Config.Env}} {{.Config.Labels.k}}",
        "cli-created",
    ]);
    assert_eq!(st.trim(), "created [\"A=1\"] v");
    assert_eq!(d.ok(&["rm", "cli-created"]).trim(), "cli-created");

    // Errors: the daemon's message and exit 1; a missing object for inspect.
    let o = d.wharf(&["rm", "cli-nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "Error response from daemon: No such container: cli-nonexistent"
    );
    let o = d.wharf(&["inspect", "cli-nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such object: cli-nonexistent"));
}

#[test]
fn run_exec_logs_cp_commit() {
    let Some(d) = common::daemon("r") else { return };
    d.import_busybox();

    // Attached run: both streams, the container's exit code.
    let o = d.wharf(&[
        "run",
        "--name",
        "cli-att",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o, &d.log()));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let st = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "cli-att",
    ]);
    assert_eq!(st.trim(), "exited 3");
    // start -a on a created container: attached output and its exit code.
    d.ok(&[
        "create",
        "--name",
        "cli-sa",
        "busybox",
        "sh",
        "-c",
        "echo sa; exit 2",
    ]);
    let o = d.wharf(&["start", "-a", "cli-sa"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o, &d.log()));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sa\n");

    // --rm: the container is gone afterwards; stdin reaches the container with -i.
    let o = d.wharf_stdin(
        &["run", "--rm", "-i", "--name", "cli-rm", "busybox", "cat"],
        b"hello-stdin\n",
    );
    assert!(o.status.success(), "{}", describe(&o, &d.log()));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello-stdin\n");
    assert!(!d
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .any(|l| l == "cli-rm"));

    // docker's exit codes: 127 for a missing command, 125 for a daemon error.
    let o = d.wharf(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", describe(&o, &d.log()));
    let o = d.wharf(&["run", "--rm", "--isolation", "bogus", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", describe(&o, &d.log()));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("Error response from daemon: "));

    // Detached: logs, exec (exit code, env, workdir), top, port, stop, rm.
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "cli-web",
        "-p",
        "8081:80",
        "busybox",
        "sh",
        "-c",
        "echo ready; while true; do sleep 0.2; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    let mut logs = String::new();
    for _ in 0..50 {
        logs = d.ok(&["logs", "cli-web"]);
        if logs.contains("ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(logs, "ready\n");
    let o = d.wharf(&[
        "exec",
        "-e",
        "X=42",
        "-w",
        "/tmp",
        "cli-web",
        "sh",
        "-c",
        "echo $X $(pwd); exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", describe(&o, &d.log()));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "42 /tmp\n");
    let top = d.ok(&["top", "cli-web"]);
    assert!(top.starts_with("UID") && top.contains("sleep"), "{top}");
    assert_eq!(d.ok(&["port", "cli-web"]).trim(), "80/tcp -> 0.0.0.0:8081");
    let ps = d.ok(&["ps", "--format", "{{.Names}}|{{.State}}|{{.Ports}}"]);
    assert!(
        ps.lines()
            .any(|l| l == "cli-web|running|0.0.0.0:8081->80/tcp"),
        "{ps}"
    );

    // cp both ways, including a directory and a rename.
    let src = d.dir.path().join("payload");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/file.txt"), "payload-data\n").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), "cli-web:/tmp/"]);
    let o = d.ok(&["exec", "cli-web", "cat", "/tmp/payload/sub/file.txt"]);
    assert_eq!(o, "payload-data\n");
    d.ok(&[
        "cp",
        src.join("sub/file.txt").to_str().unwrap(),
        "cli-web:/tmp/renamed.txt",
    ]);
    assert_eq!(
        d.ok(&["exec", "cli-web", "cat", "/tmp/renamed.txt"]),
        "payload-data\n"
    );
    let back = d.dir.path().join("back");
    d.ok(&["cp", "cli-web:/tmp/payload", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("sub/file.txt")).unwrap(),
        "payload-data\n"
    );
    let one = d.dir.path().join("hostname.txt");
    d.ok(&["cp", "cli-web:/etc/passwd", one.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&one).unwrap().starts_with("root:"));

    // commit, then run the new image.
    let img = d.ok(&[
        "commit",
        "-m",
        "with payload",
        "-c",
        "CMD [\"cat\", \"/tmp/renamed.txt\"]",
        "cli-web",
        "cli-committed:v1",
    ]);
    assert!(img.trim().starts_with("sha256:"), "{img}");
    let o = d.wharf(&["run", "--rm", "cli-committed:v1"]);
    assert!(o.status.success(), "{}", describe(&o, &d.log()));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "payload-data\n");

    assert_eq!(d.ok(&["stop", "-t", "1", "cli-web"]).trim(), "cli-web");
    let st = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=cli-web",
        "--format",
        "{{.State}}",
    ]);
    assert_eq!(st.trim(), "exited");
    assert_eq!(
        d.ok(&["rm", "cli-web", "cli-att", "cli-sa"]),
        "cli-web\ncli-att\ncli-sa\n"
    );
    // Left: only the --rm container whose command did not exist (wharfd keeps an AutoRemove
    // container whose start failed; dockerd removes it).
    let left = d.ok(&["ps", "-a", "--format", "{{.Command}} {{.Status}}"]);
    assert!(
        left.lines().all(|l| l == "\"no-such-command\" Created"),
        "{left}"
    );
}

#[test]
fn interactive_tty_session() {
    let Some(d) = common::daemon("t") else { return };
    d.import_busybox();
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) is not installed");
        return;
    }
    // script(1) gives wharf a pty of 40x120; the shell inside sees the size, the exit code
    // comes back, and the terminal is restored afterwards.
    let wharf = common::wharf_bin();
    let cmd = format!(
        "stty rows 40 cols 120; {} -H unix://{} run -it --rm busybox sh -c 'read line; echo got:$line; stty size; exit 5'; echo rc=$?; stty -a | grep -o -- '-\\?icanon' | head -1",
        wharf.display(),
        d.sock.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::io::Write::write_all(&mut stdin, b"typed\r").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    assert!(out.contains("got:typed"), "{out}");
    assert!(out.contains("40 120"), "{out}");
    assert!(out.contains("rc=5"), "{out}");
    assert!(
        out.lines().any(|l| l == "icanon"),
        "terminal left in raw mode: {out}"
    );
}

/// `count` bytes of xorshift noise (incompressible, no holes) written to `path`.
fn write_noise(path: &std::path::Path, count: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..count / block.len() {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn sha256_host(path: &std::path::Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn sha256_in(d: &common::Daemon, ctr: &str, path: &str) -> String {
    d.ok(&["exec", ctr, "sha256sum", path])
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Runs wharf under GNU time when it is installed; returns wharf's output and its peak
/// resident set size in KiB (`None` without /usr/bin/time).
fn wharf_measured(
    d: &common::Daemon,
    args: &[&str],
    stdin: std::process::Stdio,
    stdout: std::process::Stdio,
) -> (std::process::Output, Option<u64>) {
    let time = std::path::Path::new("/usr/bin/time");
    let rss_file = d.dir.path().join("rss.txt");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
        c.arg(common::wharf_bin());
        c
    } else {
        Command::new(common::wharf_bin())
    };
    let o = cmd
        .arg("-H")
        .arg(format!("unix://{}", d.sock.display()))
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("WHARF_HOST")
        .stdin(stdin)
        .stdout(stdout)
        .output()
        .expect("run wharf");
    assert!(
        o.status.success(),
        "wharf {args:?}: {}",
        describe(&o, &d.log())
    );
    let rss = time
        .exists()
        .then(|| std::fs::read_to_string(&rss_file).unwrap())
        .map(|s| s.trim().parse().expect("peak RSS in KiB"));
    (o, rss)
}

#[test]
fn cp_streams_large_files_both_ways_and_between_containers() {
    use std::process::Stdio;
    let Some(d) = common::daemon("c") else { return };
    d.import_busybox();
    for n in ["cp-a", "cp-b"] {
        d.ok(&["run", "-d", "--name", n, "busybox", "sleep", "600"]);
    }
    const SIZE: usize = 64 << 20;
    let big = d.dir.path().join("big.bin");
    write_noise(&big, SIZE);
    let want = sha256_host(&big);
    let big_s = big.to_str().unwrap();
    // The archive streams: wharf's peak RSS stays far below the 64 MiB it moves.
    let limit_kib = (SIZE / 4 / 1024) as u64;
    let mut peaks = Vec::new();
    let mut measured = |args: &[&str], stdin: Stdio, stdout: Stdio| {
        let (o, rss) = wharf_measured(&d, args, stdin, stdout);
        if let Some(kib) = rss {
            assert!(kib < limit_kib, "wharf {args:?} peaked at {kib} KiB");
            peaks.push((args.join(" "), kib));
        }
        o
    };

    // Host to container, into a directory.
    let o = measured(&["cp", big_s, "cp-a:/tmp/"], Stdio::null(), Stdio::null());
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Successfully copied 67.1MB to cp-a:/tmp/"),
        "{}",
        describe(&o, "")
    );
    assert_eq!(sha256_in(&d, "cp-a", "/tmp/big.bin"), want);

    // Container to container: renamed (the archive is rewritten on the way) and into a
    // directory (the bytes pass straight through).
    measured(
        &["cp", "cp-a:/tmp/big.bin", "cp-b:/tmp/copy.bin"],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(sha256_in(&d, "cp-b", "/tmp/copy.bin"), want);
    measured(
        &["cp", "cp-a:/tmp/big.bin", "cp-b:/root/"],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(sha256_in(&d, "cp-b", "/root/big.bin"), want);

    // Container to host: renamed, and into a directory.
    let back = d.dir.path().join("back.bin");
    measured(
        &["cp", "cp-b:/tmp/copy.bin", back.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(sha256_host(&back), want);
    let into = d.dir.path().join("into");
    std::fs::create_dir(&into).unwrap();
    measured(
        &["cp", "cp-b:/root/big.bin", into.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(sha256_host(&into.join("big.bin")), want);

    // `-`: the tar itself on stdout, and back in on stdin.
    let tar = d.dir.path().join("out.tar");
    measured(
        &["cp", "cp-a:/tmp/big.bin", "-"],
        Stdio::null(),
        Stdio::from(std::fs::File::create(&tar).unwrap()),
    );
    let listed = Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!(" {SIZE} ")) && listed.trim_end().ends_with(" big.bin"),
        "{listed}"
    );
    d.ok(&["exec", "cp-b", "mkdir", "/fromstdin"]);
    measured(
        &["cp", "-", "cp-b:/fromstdin"],
        Stdio::from(std::fs::File::open(&tar).unwrap()),
        Stdio::null(),
    );
    assert_eq!(sha256_in(&d, "cp-b", "/fromstdin/big.bin"), want);

    // A directory with a sparse file, container to container under a new name.
    let tree = d.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f.txt"), "tree-data\n").unwrap();
    let sparse = std::fs::File::create(tree.join("sparse")).unwrap();
    sparse.set_len(16 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"middle", 8 << 20).unwrap();
    drop(sparse);
    d.ok(&["cp", tree.to_str().unwrap(), "cp-a:/tmp/"]);
    d.ok(&["cp", "cp-a:/tmp/tree", "cp-b:/tmp/tree2"]);
    assert_eq!(
        d.ok(&["exec", "cp-b", "cat", "/tmp/tree2/sub/f.txt"]),
        "tree-data\n"
    );
    assert_eq!(
        sha256_in(&d, "cp-b", "/tmp/tree2/sparse"),
        sha256_host(&tree.join("sparse"))
    );
    d.ok(&["cp", "cp-a:/tmp/tree", "cp-b:/root/"]);
    assert_eq!(
        sha256_in(&d, "cp-b", "/root/tree/sparse"),
        sha256_host(&tree.join("sparse"))
    );
    let tree_back = d.dir.path().join("tree-back");
    d.ok(&["cp", "cp-b:/root/tree", tree_back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(tree_back.join("sub/f.txt")).unwrap(),
        "tree-data\n"
    );
    assert_eq!(
        sha256_host(&tree_back.join("sparse")),
        sha256_host(&tree.join("sparse"))
    );

    // Errors name what is missing.
    let o = d.wharf(&["cp", "cp-a:/nonexistent", "cp-b:/tmp/"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent"),
        "{}",
        describe(&o, "")
    );
    let o = d.wharf(&["cp", "cp-a:/tmp/tree", "cp-b:/tmp/copy.bin"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot copy a directory to the file"),
        "{}",
        describe(&o, "")
    );
    eprintln!("peak RSS of wharf (KiB): {peaks:?}");
}
