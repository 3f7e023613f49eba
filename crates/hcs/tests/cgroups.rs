//! Root tests of `hcs::cgroups` against the real cgroupfs of this host (any layout; the project
//! machines are hybrid). Each test creates uniquely named cgroups and removes them, and kills
//! its processes, in a `Drop` guard. Without root they print that they skipped; with `CI=true`
//! they fail instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Named so that `cargo test -p hcs cgroups` selects these tests.
mod cgroups {

    use hcs::cgroups::{attach_device_filter, layout, DeviceFilter, Manager, Mode};
    use nix::sys::signal::Signal;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxHugepageLimitBuilder,
        LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    };
    use std::io::{BufRead, BufReader, Write};
    use std::path::Path;
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    fn root_or_skip(test: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test} needs root (CI=true, so this is a failure, not a skip)");
        }
        eprintln!("skipped {test}: needs root");
        false
    }

    fn unique(tag: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "wharf-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Kills the child and removes the cgroup whatever happens in the test.
    struct Guard {
        manager: Manager,
        child: Option<Child>,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(child) = self.child.as_mut() {
                // Best effort: the child may have exited already.
                if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
                    eprintln!("cleanup: kill child: {e}");
                }
            }
            if !self.manager.paths().iter().any(|p| p.exists()) {
                return;
            }
            // Thaw first: a frozen cgroup would keep killed processes around.
            if let Err(e) = self.manager.thaw() {
                eprintln!("cleanup: {e}");
            }
            if let Err(e) = self.manager.destroy() {
                eprintln!("cleanup: {e}");
            }
        }
    }

    /// `sh` that waits for a line on stdin, then runs `script` (its output comes back on stdout).
    fn waiting_shell(script: &str) -> (Child, ChildStdin, BufReader<ChildStdout>) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read x; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (child, stdin, stdout)
    }

    fn read_file(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
            .trim()
            .to_string()
    }

    fn proc_state(pid: i32) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("State:")).unwrap();
        line["State:".len()..].trim().to_string()
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resources() -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(5)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap()
    }

    #[test]
    fn lifecycle_limits_freeze_stats_kill_destroy() {
        if !root_or_skip("lifecycle_limits_freeze_stats_kill_destroy") {
            return;
        }
        let id = unique("life");
        let manager = Manager::new(None, &id).unwrap();
        // Round-trip through JSON as runhcs does between commands.
        let manager: Manager =
            serde_json::from_str(&serde_json::to_string(&manager).unwrap()).unwrap();
        let mut guard = Guard {
            manager: manager.clone(),
            child: None,
        };

        let start = Instant::now();
        manager.create().unwrap();
        manager.apply(&resources()).unwrap();
        let setup = start.elapsed();
        for p in manager.paths() {
            assert!(p.is_dir(), "{} not created", p.display());
            assert!(p.ends_with(format!("runhcs/{id}")), "{}", p.display());
        }

        let v2 = layout().unwrap().mode == Mode::Unified;
        let mem = manager.path_for("memory").unwrap();
        let pids_dir = manager.path_for("pids").unwrap();
        let cpu = manager.path_for("cpu").unwrap();
        if v2 {
            assert_eq!(read_file(mem, "memory.max"), (64u64 << 20).to_string());
            assert_eq!(read_file(mem, "memory.swap.max"), (64u64 << 20).to_string());
            assert_eq!(read_file(cpu, "cpu.max"), "50000 100000");
            assert_eq!(read_file(cpu, "cpu.weight"), "20");
        } else {
            assert_eq!(
                read_file(mem, "memory.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            assert_eq!(
                read_file(mem, "memory.memsw.limit_in_bytes"),
                (128u64 << 20).to_string()
            );
            assert_eq!(read_file(cpu, "cpu.cfs_quota_us"), "50000");
            assert_eq!(read_file(cpu, "cpu.cfs_period_us"), "100000");
            assert_eq!(read_file(cpu, "cpu.shares"), "512");
            let devices = manager.path_for("devices").unwrap();
            assert_eq!(read_file(devices, "devices.list"), "c 1:3 rwm\nc 1:5 rwm");
            // A fresh v1 cpuset got its parent's cpus/mems, else adding the task below would fail.
            let cpuset = manager.path_for("cpuset").unwrap();
            let parent = cpuset.parent().unwrap();
            assert_eq!(
                read_file(cpuset, "cpuset.cpus"),
                read_file(parent, "cpuset.cpus")
            );
            assert_eq!(
                read_file(cpuset, "cpuset.mems"),
                read_file(parent, "cpuset.mems")
            );
        }
        assert_eq!(read_file(pids_dir, "pids.max"), "32");

        // A real process: it waits until it is inside, burns a little CPU there, then sleeps.
        let (child, mut stdin, _stdout) =
            waiting_shell("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000");
        let pid = child.id() as i32;
        guard.child = Some(child);
        let start = Instant::now();
        manager.add_process(pid).unwrap();
        let setup = setup + start.elapsed();
        eprintln!("create+apply+add_process took {setup:?} (wall)");
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(own.contains(&format!("/runhcs/{id}")), "{own}");
        writeln!(stdin, "go").unwrap();
        wait_for("the loop to exec sleep", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        assert_eq!(manager.pids().unwrap(), [pid]);

        manager.freeze().unwrap();
        assert!(manager.is_frozen().unwrap());
        let frozen = proc_state(pid);
        // v1 freezer: D (disk sleep); v2: the task sits in a freezer trap, S.
        assert!(
            frozen.starts_with('D') || (v2 && frozen.starts_with('S')),
            "frozen state {frozen}"
        );
        manager.thaw().unwrap();
        assert!(!manager.is_frozen().unwrap());
        // Thawed, the task runs briefly (R) on its way back into its sleep.
        wait_for("the thawed process to sleep again", || {
            proc_state(pid).starts_with('S')
        });

        let stats = manager.stats().unwrap();
        eprintln!("{stats:?}");
        assert!(stats.cpu.usage_total_ns > 0);
        assert!(stats.memory.usage > 0);
        assert_eq!(stats.memory.limit, Some(64 << 20));
        assert_eq!(stats.pids.current, 1);
        assert_eq!(stats.pids.limit, Some(32));

        manager.kill_all(Signal::SIGKILL).unwrap();
        let status = guard.child.take().unwrap().wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));

        let start = Instant::now();
        manager.destroy().unwrap();
        eprintln!("destroy took {:?}", start.elapsed());
        for p in manager.paths() {
            assert!(!p.exists(), "{} still exists", p.display());
        }
        // Destroying again is fine: missing directories are not an error.
        manager.destroy().unwrap();
    }

    #[test]
    fn v1_memory_limits_can_shrink_and_grow() {
        if !root_or_skip("v1_memory_limits_can_shrink_and_grow") {
            return;
        }
        let manager = Manager::new(Some(Path::new(&format!("/{}", unique("mem")))), "x").unwrap();
        let _guard = Guard {
            manager: manager.clone(),
            child: None,
        };
        manager.create().unwrap();
        let mem = manager.path_for("memory").unwrap();
        let set = |limit: i64, swap: i64| {
            let r = LinuxResourcesBuilder::default()
                .memory(
                    LinuxMemoryBuilder::default()
                        .limit(limit)
                        .swap(swap)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap();
            manager.apply(&r)
        };
        set(64 << 20, 128 << 20).unwrap();
        set(32 << 20, 48 << 20).unwrap();
        // Growing past the old memory+swap needs memsw first: the manager retries in that order.
        set(256 << 20, 512 << 20).unwrap();
        if layout().unwrap().mode != Mode::Unified {
            assert_eq!(
                read_file(mem, "memory.limit_in_bytes"),
                (256u64 << 20).to_string()
            );
            assert_eq!(
                read_file(mem, "memory.memsw.limit_in_bytes"),
                (512u64 << 20).to_string()
            );
        }
        // A limit the kernel refuses is an error naming the file and the value.
        let e = set(64 << 20, 32 << 20).unwrap_err().to_string();
        assert!(e.contains("swap") || e.contains("memsw"), "{e}");
    }

    #[test]
    fn hugetlb_goes_to_cgroup2_on_hybrid() {
        if !root_or_skip("hugetlb_goes_to_cgroup2_on_hybrid") {
            return;
        }
        let layout = layout().unwrap();
        let on_v2 = layout.unified().is_some_and(|u| u.has("hugetlb"));
        if !on_v2 {
            eprintln!("skipped: hugetlb is not a cgroup2 controller on this host");
            return;
        }
        let manager = Manager::new(None, &unique("huge")).unwrap();
        let _guard = Guard {
            manager: manager.clone(),
            child: None,
        };
        manager.create().unwrap();
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(8 << 20)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        manager.apply(&r).unwrap();
        let dir = manager.path_for("hugetlb").unwrap();
        assert!(dir.starts_with(&layout.unified().unwrap().mount_point));
        assert_eq!(read_file(dir, "hugetlb.2MB.max"), (8u64 << 20).to_string());
        let rsvd = dir.join("hugetlb.2MB.rsvd.max");
        if rsvd.exists() {
            assert_eq!(
                read_file(dir, "hugetlb.2MB.rsvd.max"),
                (8u64 << 20).to_string()
            );
        }
    }

    /// The cgroup2 device filter, attached to a cgroup of the cgroup2 hierarchy. On hybrid hosts
    /// the kernel runs cgroup2 device programs too (before the v1 devices check), so this works
    /// without a pure v2 host.
    #[test]
    fn bpf_device_filter_denies_and_allows() {
        if !root_or_skip("bpf_device_filter_denies_and_allows") {
            return;
        }
        let Some(unified) = layout().unwrap().unified() else {
            eprintln!("skipped: no cgroup2 hierarchy");
            return;
        };
        let dir = unified.mount_point.join(unique("bpf"));
        std::fs::create_dir(&dir).unwrap();
        struct RmDir<'a>(&'a Path);
        impl Drop for RmDir<'_> {
            fn drop(&mut self) {
                for _ in 0..50 {
                    if std::fs::remove_dir(self.0).is_ok() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        let _rm = RmDir(&dir);

        let allow = |minor: i64| {
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(minor)
                .access("rwm")
                .build()
                .unwrap()
        };
        // /dev/zero (1:5) only; then a second list with /dev/null (1:3) only replaces it.
        let rules = hcs::cgroups::DeviceFilter::new(&rules_of(&[allow(5)]));
        attach_device_filter(&dir, &rules).unwrap();
        let probe = "if cat /dev/null; then echo null=ok; else echo null=denied; fi; \
                 echo zero=$(head -c1 /dev/zero | wc -c)";
        let (mut child, mut stdin, mut stdout) = waiting_shell(probe);
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        writeln!(stdin, "go").unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        stdout.read_line(&mut out).unwrap();
        child.wait().unwrap();
        assert_eq!(out, "null=denied\nzero=1\n");

        attach_device_filter(&dir, &DeviceFilter::new(&rules_of(&[allow(3)]))).unwrap();
        let (mut child, mut stdin, mut stdout) = waiting_shell(probe);
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        writeln!(stdin, "go").unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        stdout.read_line(&mut out).unwrap();
        child.wait().unwrap();
        // Only one program is attached after the replacement.
        assert_eq!(out, "null=ok\nzero=0\n");
    }

    fn rules_of(spec: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Vec<hcs::cgroups::DeviceRule> {
        hcs::cgroups::DeviceRule::from_spec(spec).unwrap()
    }

    fn thread_cpu() -> Duration {
        let usage =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).unwrap();
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000)
        };
        tv(usage.user_time()) + tv(usage.system_time())
    }

    /// CPU cost of the container-start hot path (`cargo test -- --ignored perf`): new (from a
    /// serialized manager's point of view, detection is cached), create, apply, add_process,
    /// destroy, measured on this thread only.
    #[test]
    #[ignore]
    fn perf_hot_path_cpu_time() {
        if !root_or_skip("perf_hot_path_cpu_time") {
            return;
        }
        let resources = resources();
        let rounds = 50;
        let mut cpu = Duration::ZERO;
        let mut wall = Duration::ZERO;
        for _ in 0..rounds {
            let mut child = Command::new("sleep").arg("100").spawn().unwrap();
            let (c0, w0) = (thread_cpu(), Instant::now());
            let manager = Manager::new(None, &unique("perf")).unwrap();
            manager.create().unwrap();
            manager.apply(&resources).unwrap();
            manager.add_process(child.id() as i32).unwrap();
            let (c1, w1) = (thread_cpu(), Instant::now());
            child.kill().unwrap();
            child.wait().unwrap();
            let (c2, w2) = (thread_cpu(), Instant::now());
            manager.destroy().unwrap();
            cpu += (c1 - c0) + (thread_cpu() - c2);
            wall += (w1 - w0) + w2.elapsed();
        }
        eprintln!(
            "per container: {:?} CPU, {:?} wall (new+create+apply+add_process+destroy)",
            cpu / rounds,
            wall / rounds
        );
    }

    /// The v2 code paths on the real kernel: this host's cgroup2 mount used as if it were a pure v2
    /// host (on hybrid hosts it has few controllers, but freezing, cgroup.kill, pids, device
    /// filters and destroy are core cgroup2 features).
    #[test]
    fn v2_paths_on_the_cgroup2_mount() {
        if !root_or_skip("v2_paths_on_the_cgroup2_mount") {
            return;
        }
        let Some(unified) = layout().unwrap().unified() else {
            eprintln!("skipped: no cgroup2 hierarchy");
            return;
        };
        let v2_only = hcs::cgroups::Layout {
            mode: Mode::Unified,
            hierarchies: vec![unified.clone()],
        };
        let path = format!("/{}", unique("v2"));
        let manager =
            Manager::with_layout(&v2_only, Some(Path::new(&path)), "x", || unreachable!()).unwrap();
        let mut guard = Guard {
            manager: manager.clone(),
            child: None,
        };
        manager.create().unwrap();
        let dir = manager.paths()[0].to_path_buf();
        assert_eq!(dir, unified.mount_point.join(&path[1..]));

        // Devices through apply(): no v1 devices hierarchy in this manager, so a BPF program.
        let mut r = resources();
        r.set_memory(None).set_cpu(None).set_pids(None);
        manager.apply(&r).unwrap();
        if unified.has("memory") {
            manager.apply(&resources()).unwrap();
        } else {
            let e = manager.apply(&resources()).unwrap_err().to_string();
            assert!(e.contains("linux.resources.memory"), "{e}");
        }

        // A busy process: running (R) until frozen.
        let (child, mut stdin, mut stdout) = waiting_shell(
            "if cat /dev/null; then echo null=ok; else echo null=denied; fi; \
         if cat /dev/tty0 2>/dev/null; then echo tty0=ok; else echo tty0=denied; fi; \
         while :; do :; done",
        );
        let pid = child.id() as i32;
        guard.child = Some(child);
        manager.add_process(pid).unwrap();
        writeln!(stdin, "go").unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        stdout.read_line(&mut out).unwrap();
        assert_eq!(out, "null=ok\ntty0=denied\n");
        assert_eq!(manager.pids().unwrap(), [pid]);

        manager.freeze().unwrap();
        assert!(manager.is_frozen().unwrap());
        let frozen = proc_state(pid);
        assert!(!frozen.starts_with('R'), "frozen state {frozen}");
        manager.thaw().unwrap();
        assert!(!manager.is_frozen().unwrap());
        wait_for("the thawed loop to run", || {
            proc_state(pid).starts_with('R')
        });

        // SIGKILL goes through cgroup.kill (kernel >= 5.14) with no freezing.
        manager.kill_all(Signal::SIGKILL).unwrap();
        let status = guard.child.take().unwrap().wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        manager.destroy().unwrap();
        assert!(!dir.exists());
    }

    /// kill_all with a catchable signal: freeze, signal each process, thaw.
    #[test]
    fn kill_all_with_sigterm_reaches_every_process() {
        if !root_or_skip("kill_all_with_sigterm_reaches_every_process") {
            return;
        }
        let manager = Manager::new(None, &unique("term")).unwrap();
        let mut guard = Guard {
            manager: manager.clone(),
            child: None,
        };
        manager.create().unwrap();
        // The shell forks a second sleeper inside the cgroup, then waits.
        let (child, mut stdin, mut stdout) = waiting_shell("sleep 1000 & echo $!; wait");
        guard.child = Some(child);
        manager
            .add_process(guard.child.as_ref().unwrap().id() as i32)
            .unwrap();
        writeln!(stdin, "go").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let mut pids = manager.pids().unwrap();
        pids.sort();
        assert!(pids.contains(&grandchild) && pids.len() == 2, "{pids:?}");
        manager.kill_all(Signal::SIGTERM).unwrap();
        let status = guard.child.take().unwrap().wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        wait_for("the grandchild to die", || {
            manager.pids().is_ok_and(|p| p.is_empty())
        });
        manager.destroy().unwrap();
    }
}
