#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The HCS-shaped API end to end on a real busybox container: create from a document, start,
//! processes with pipes and a console, properties from cgroups and /proc, modify, pause,
//! graceful shutdown, delete. Needs root. A plain program (harness = false): the API requires
//! a single-threaded caller.

use hcs::schema::{
    self, HostedSystem, ModifySettingRequest, ProcessParameters, PropertyQuery, PropertyType,
    RequestType, SignalOptions, Version,
};
use hcs::{ComputeSystem, CreateOptions, ErrorKind, SystemState};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn busybox() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("busybox-static (scripts/deps.sh)")
}

fn bundle(dir: &Path) {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "tmp", "sys"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "sleep", "cat", "stty", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
}

fn spec(args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {
            "args": args, "cwd": "/", "user": { "uid": 0, "gid": 0 },
            "env": ["PATH=/bin", "GREETING=hello"],
            "capabilities": { "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"] },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs" },
        "hostname": "system-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] }
        ],
        "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
    })
}

fn document(bundle: &Path, spec: serde_json::Value) -> schema::ComputeSystem {
    schema::ComputeSystem {
        owner: Some("system-test".into()),
        schema_version: Some(Version::V2_1),
        hosted_system: Some(HostedSystem {
            schema_version: Some(Version::V2_1),
            oci_bundle_path: Some(bundle.to_string_lossy().into_owned()),
            oci_specification: Some(serde_json::from_value(spec).unwrap()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Removes the system on every exit path, panics included.
struct Guard<'a> {
    root: &'a Path,
    id: &'a str,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Ok(s) = ComputeSystem::open(self.root, self.id) {
            s.delete(true).ok();
        }
    }
}

fn read_all(mut f: impl Read) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

fn cgroup_file(sys: &ComputeSystem, controller: &str, v1: &str, v2: &str) -> String {
    let dir = sys
        .record()
        .cgroup
        .path_for(controller)
        .expect("controller")
        .to_path_buf();
    let f = if dir.join(v1).exists() {
        dir.join(v1)
    } else {
        dir.join(v2)
    };
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .to_string()
}

fn bad_documents(root: &Path, bundle_dir: &Path) {
    let mut doc = document(bundle_dir, spec(&["sh"]));
    doc.hosted_system.as_mut().unwrap().oci_bundle_path = None;
    let e = ComputeSystem::create(root, "bad-doc", &doc, &CreateOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.to_string().starts_with("HostedSystem.OciBundlePath"),
        "{e}"
    );

    let mut s = spec(&["sh"]);
    s["process"]["args"] = serde_json::json!([]);
    let e = ComputeSystem::create(
        root,
        "bad-doc",
        &document(bundle_dir, s),
        &CreateOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .contains("HostedSystem.OciSpecification: process.args"),
        "{e}"
    );

    let mut doc = document(bundle_dir, spec(&["sh"]));
    doc.virtual_machine = Some(Default::default());
    doc.hosted_system = None;
    let e = ComputeSystem::create(root, "bad-doc", &doc, &CreateOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        !root.join("bad-doc").exists(),
        "a refused document leaves nothing behind"
    );
}

fn lifecycle(root: &Path, bundle_dir: &Path) {
    let id = format!("system-test-{}", std::process::id());
    let _guard = Guard { root, id: &id };
    // The init traps SIGTERM and exits 3: shutdown must be graceful when the process cooperates.
    let init = spec(&[
        "sh",
        "-c",
        "trap 'exit 3' TERM; echo init:$GREETING:$(hostname); while :; do sleep 0.05; done",
    ]);
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let opts = CreateOptions {
        stdio: Some([null.as_raw_fd(), out_w.as_raw_fd(), out_w.as_raw_fd()]),
        ..Default::default()
    };
    let mut sys = ComputeSystem::create(root, &id, &document(bundle_dir, init), &opts).unwrap();
    drop(out_w);
    assert_eq!(sys.state(), SystemState::Created);
    let e = ComputeSystem::create(
        root,
        &id,
        &document(bundle_dir, spec(&["sh"])),
        &CreateOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    sys.start().unwrap();
    assert_eq!(sys.state(), SystemState::Running);
    let mut line = [0u8; 64];
    let n = nix::unistd::read(&out_r, &mut line).unwrap();
    assert_eq!(
        std::str::from_utf8(&line[..n]).unwrap(),
        "init:hello:system-test\n"
    );

    // A process with stdin and stdout pipes.
    let mut cat = sys
        .create_process(&ProcessParameters {
            command_args: Some(vec!["cat".into()]),
            create_std_in_pipe: Some(true),
            create_std_out_pipe: Some(true),
            ..Default::default()
        })
        .unwrap();
    cat.stdin()
        .unwrap()
        .write_all(b"ping through the pipe")
        .unwrap();
    cat.close_stdin();
    assert_eq!(
        read_all(cat.take_stdout().unwrap()),
        "ping through the pipe"
    );
    assert_eq!(cat.wait(None).unwrap(), Some(0));
    assert_eq!(cat.status().exit_code, Some(0));

    // Command line, environment and working directory from the parameters; exit code.
    let mut p = sys
        .create_process(&ProcessParameters {
            command_line: Some("sh -c 'echo $GREETING $EXTRA $(pwd) >&2; exit 7'".into()),
            environment: Some([("EXTRA".to_string(), "extra".to_string())].into()),
            working_directory: Some("/tmp".into()),
            create_std_err_pipe: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(read_all(p.take_stderr().unwrap()), "hello extra /tmp\n");
    assert_eq!(p.wait(None).unwrap(), Some(7));

    // Signals reach the process; a timed wait times out while it runs.
    let mut sleeper = sys
        .create_process(&ProcessParameters {
            command_args: Some(vec!["sleep".into(), "60".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(sleeper.wait(Some(Duration::from_millis(50))).unwrap(), None);
    let e = sleeper.signal(&SignalOptions { signal: 99 }).unwrap_err();
    assert!(e.to_string().starts_with("Signal"), "{e}");

    // Properties: the process list and statistics come from the container itself.
    let props = sys
        .properties(&PropertyQuery::of(&[
            PropertyType::Statistics,
            PropertyType::ProcessList,
        ]))
        .unwrap();
    assert_eq!(props.state, Some(schema::State::Running));
    assert_eq!(props.owner.as_deref(), Some("system-test"));
    let list = props.process_list.unwrap();
    let pids: Vec<u32> = list.iter().filter_map(|d| d.process_id).collect();
    assert!(
        pids.contains(&(sys.pid() as u32)),
        "init {} in {pids:?}",
        sys.pid()
    );
    assert!(
        pids.contains(&(sleeper.pid() as u32)),
        "sleeper {} in {pids:?}",
        sleeper.pid()
    );
    let stats = props.statistics.unwrap();
    assert!(stats.memory.unwrap().memory_usage_commit_bytes.unwrap() > 0);
    assert!(stats.processor.unwrap().total_runtime100ns.unwrap() > 0);
    let e = sys
        .properties(&PropertyQuery::of(&[PropertyType::GuestConnection]))
        .unwrap_err();
    assert!(e.to_string().starts_with("PropertyTypes"), "{e}");

    sleeper
        .signal(&SignalOptions {
            signal: libc::SIGTERM,
        })
        .unwrap();
    assert_eq!(
        sleeper.wait(Some(Duration::from_secs(5))).unwrap(),
        Some(128 + libc::SIGTERM)
    );

    // A console: resized before the process reads its size.
    let mut tty = sys
        .create_process(&ProcessParameters {
            command_args: Some(vec![
                "sh".into(),
                "-c".into(),
                "sleep 0.3; stty size".into(),
            ]),
            emulate_console: Some(true),
            console_size: Some([24, 80]),
            ..Default::default()
        })
        .unwrap();
    tty.resize_console(30, 100).unwrap();
    let master = tty.take_console().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = nix::unistd::read(&master, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&out).trim(), "30 100");
    assert_eq!(tty.wait(None).unwrap(), Some(0));

    // Modify: memory and processor limits land in the container's cgroups.
    let modify = |path: &str, settings: serde_json::Value| ModifySettingRequest {
        resource_path: Some(path.into()),
        request_type: Some(RequestType::Update),
        settings: Some(settings),
        guest_request: None,
    };
    sys.modify(&modify("Container/Memory/SizeInMB", serde_json::json!(64)))
        .unwrap();
    assert_eq!(
        cgroup_file(&sys, "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    sys.modify(&modify(
        "Container/Processor",
        serde_json::json!({ "Count": 1 }),
    ))
    .unwrap();
    let quota = cgroup_file(&sys, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota == "100000" || quota == "100000 100000", "{quota}");
    let e = sys
        .modify(&modify(
            "Container/MappedDirectories",
            serde_json::json!({}),
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    sys.pause().unwrap();
    assert_eq!(sys.state(), SystemState::Paused);
    sys.resume().unwrap();
    assert_eq!(sys.state(), SystemState::Running);

    sys.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(
        sys.wait(None).unwrap(),
        Some(3),
        "graceful exit through the TERM trap"
    );
    assert_eq!(sys.state(), SystemState::Stopped);
    sys.delete(false).unwrap();
    let e = ComputeSystem::open(root, &id).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

fn forced_shutdown(root: &Path, bundle_dir: &Path) {
    let id = format!("system-test-kill-{}", std::process::id());
    let _guard = Guard { root, id: &id };
    // pid 1 of a pid namespace ignores SIGTERM without a handler: shutdown must escalate.
    let mut sys = ComputeSystem::create(
        root,
        &id,
        &document(bundle_dir, spec(&["sleep", "60"])),
        &CreateOptions::default(),
    )
    .unwrap();
    sys.start().unwrap();
    sys.shutdown(Duration::from_millis(200)).unwrap();
    assert_eq!(
        sys.wait(Some(Duration::from_secs(10))).unwrap(),
        Some(128 + libc::SIGKILL)
    );
    sys.delete(false).unwrap();
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("system: skipped (needs root)");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("wt-system-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("state");
    let bundle_dir = tmp.path().join("bundle");
    bundle(&bundle_dir);
    for (name, f) in [
        ("bad_documents", bad_documents as fn(&Path, &Path)),
        ("lifecycle", lifecycle),
        ("forced_shutdown", forced_shutdown),
    ] {
        f(&root, &bundle_dir);
        println!("test system::{name} ... ok");
    }
}
