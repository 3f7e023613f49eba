//! Unit tests against fake cgroup trees in a tempdir: interface files are plain files that the
//! test creates (the manager never creates files, like cgroupfs), then reads back.

use super::*;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};
use std::collections::HashMap;
use std::fs;

const PROC_SELF_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/80b6
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

fn hierarchy(root: &Path, name: &str, controllers: &[&str], v2: bool) -> Hierarchy {
    Hierarchy {
        v2,
        mount_point: root.join(name),
        root: "/".into(),
        controllers: controllers.iter().map(|c| c.to_string()).collect(),
    }
}

/// This machine's shape: v1 controllers plus cgroup2 holding only hugetlb.
fn hybrid(root: &Path) -> Layout {
    let mut hierarchies: Vec<Hierarchy> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    ]
    .iter()
    .map(|c| hierarchy(root, c, &[c], false))
    .collect();
    hierarchies.push(hierarchy(root, "systemd", &["name=systemd"], false));
    hierarchies.push(hierarchy(root, "unified", &["hugetlb"], true));
    Layout {
        mode: Mode::Hybrid,
        hierarchies,
    }
}

fn unified(root: &Path) -> Layout {
    let ctrls = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];
    Layout {
        mode: Mode::Unified,
        hierarchies: vec![hierarchy(root, "unified", &ctrls, true)],
    }
}

fn legacy(root: &Path) -> Layout {
    let mut l = hybrid(root);
    l.hierarchies.retain(|h| !h.v2);
    l.mode = Mode::Legacy;
    l
}

fn manager(layout: &Layout, path: Option<&str>) -> Manager {
    Manager::with_layout(layout, path.map(Path::new), "c1", || {
        Ok(PROC_SELF_CGROUP.into())
    })
    .unwrap()
}

/// Creates `dir` and empty (or given) interface files in it.
fn files(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn touch(dir: &Path, names: &[&str]) {
    files(dir, &names.iter().map(|n| (*n, "")).collect::<Vec<_>>());
}

fn cat(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn paths_default_relative_absolute() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let l = hybrid(root);
    let m = manager(&l, None);
    assert_eq!(
        m.path_for("memory").unwrap(),
        root.join("memory/process_api/80b6/runhcs/c1")
    );
    assert_eq!(m.path_for("cpu").unwrap(), root.join("cpu/runhcs/c1"));
    assert_eq!(
        m.path_for("hugetlb").unwrap(),
        root.join("unified/runhcs/c1")
    );
    assert_eq!(m.paths().len(), 10);
    assert!(m
        .paths()
        .contains(&root.join("systemd/runhcs/c1").as_path()));

    let m = manager(&l, Some("pods/x"));
    assert_eq!(
        m.path_for("memory").unwrap(),
        root.join("memory/process_api/80b6/pods/x")
    );

    // Absolute paths never look at /proc/self/cgroup.
    let m =
        Manager::with_layout(&l, Some(Path::new("/wharf/c1")), "c1", || unreachable!()).unwrap();
    assert_eq!(m.path_for("memory").unwrap(), root.join("memory/wharf/c1"));
    assert_eq!(
        m.path_for("hugetlb").unwrap(),
        root.join("unified/wharf/c1")
    );

    let e = Manager::with_layout(&l, Some(Path::new("/a/../../etc")), "c1", || unreachable!());
    assert!(e.unwrap_err().to_string().contains("linux.cgroupsPath"));
}

#[test]
fn controller_placement_per_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(&unified(tmp.path()), None);
    assert_eq!(m.path_for("memory"), m.path_for("hugetlb"));
    assert!(m
        .path_for("memory")
        .unwrap()
        .starts_with(tmp.path().join("unified")));
    let m = manager(&legacy(tmp.path()), None);
    assert!(m.path_for("hugetlb").is_none());
    assert_eq!(m.paths().len(), 9);
}

#[test]
fn manager_round_trips_through_json() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(&hybrid(tmp.path()), None);
    let json = serde_json::to_string(&m).unwrap();
    let back: Manager = serde_json::from_str(&json).unwrap();
    assert_eq!(m, back);
}

#[test]
fn create_copies_cpuset_and_enables_v2_controllers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let l = hybrid(root);
    let m = manager(&l, None);
    files(
        &root.join("cpuset"),
        &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")],
    );
    // The kernel would create these files with the directories.
    touch(&root.join("cpuset/runhcs"), &["cpuset.cpus", "cpuset.mems"]);
    touch(
        &root.join("cpuset/runhcs/c1"),
        &["cpuset.cpus", "cpuset.mems"],
    );
    touch(&root.join("unified"), &["cgroup.subtree_control"]);
    touch(&root.join("unified/runhcs"), &["cgroup.subtree_control"]);
    m.create().unwrap();
    assert_eq!(cat(&root.join("cpuset/runhcs/c1"), "cpuset.cpus"), "0-3");
    assert_eq!(cat(&root.join("cpuset/runhcs/c1"), "cpuset.mems"), "0");
    assert_eq!(
        cat(&root.join("unified"), "cgroup.subtree_control"),
        "+hugetlb"
    );
    assert_eq!(
        cat(&root.join("unified/runhcs"), "cgroup.subtree_control"),
        "+hugetlb"
    );
    for p in m.paths() {
        assert!(p.is_dir(), "{}", p.display());
    }
}

#[test]
fn v1_limits_are_written_and_unset_ones_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = manager(&hybrid(root), Some("/c1"));
    touch(
        &root.join("memory/c1"),
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
        ],
    );
    touch(
        &root.join("cpu/c1"),
        &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
    );
    touch(&root.join("cpuset/c1"), &["cpuset.cpus"]);
    touch(&root.join("pids/c1"), &["pids.max"]);
    touch(
        &root.join("blkio/c1"),
        &["blkio.bfq.weight", "blkio.throttle.read_bps_device"],
    );
    touch(&root.join("unified/c1"), &["hugetlb.2MB.max"]);
    touch(&root.join("devices/c1"), &["devices.allow", "devices.deny"]);

    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .swap(2 << 20)
                .reservation(512 << 10)
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000)
                .period(100_000u64)
                .cpus("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .rate(1_000_000u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 << 21)
            .build()
            .unwrap()])
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
        ])
        .build()
        .unwrap();
    m.apply(&r).unwrap();
    let d = |c: &str| root.join(c).join("c1");
    assert_eq!(cat(&d("memory"), "memory.limit_in_bytes"), "1048576");
    assert_eq!(cat(&d("memory"), "memory.memsw.limit_in_bytes"), "2097152");
    assert_eq!(cat(&d("memory"), "memory.soft_limit_in_bytes"), "524288");
    assert_eq!(cat(&d("memory"), "memory.swappiness"), "10");
    assert_eq!(cat(&d("cpu"), "cpu.shares"), "512");
    assert_eq!(cat(&d("cpu"), "cpu.cfs_period_us"), "100000");
    assert_eq!(cat(&d("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(cat(&d("cpuset"), "cpuset.cpus"), "0");
    assert_eq!(cat(&d("pids"), "pids.max"), "64");
    // No blkio.weight (CFQ) here: BFQ's file takes it.
    assert_eq!(cat(&d("blkio"), "blkio.bfq.weight"), "300");
    assert_eq!(
        cat(&d("blkio"), "blkio.throttle.read_bps_device"),
        "8:0 1000000"
    );
    // hugetlb goes to cgroup2 on hybrid; no rsvd file here, which is fine.
    assert_eq!(cat(&d("unified"), "hugetlb.2MB.max"), "8388608");
    // Plain files keep only the last write: the allow rule (deny a went to devices.deny).
    assert_eq!(cat(&d("devices"), "devices.deny"), "a");
    assert_eq!(cat(&d("devices"), "devices.allow"), "c 1:3 rwm");

    // An empty memory section writes nothing (the files are gone now: it would fail).
    fs::remove_dir_all(d("memory")).unwrap();
    let empty = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().build().unwrap())
        .build()
        .unwrap();
    m.apply(&empty).unwrap();
}

#[test]
fn v2_limits_use_runc_conversions() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = manager(&unified(root), Some("/c1"));
    let d = root.join("unified/c1");
    touch(
        &d,
        &[
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "io.weight",
            "io.max",
            "pids.max",
            "memory.high",
        ],
    );
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swap(150 << 20)
                .reservation(10 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(-1)
                .period(50_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(16)
                    .rate(100u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .unified(HashMap::from([(
            "memory.high".to_string(),
            "90000000".to_string(),
        )]))
        .build()
        .unwrap();
    m.apply(&r).unwrap();
    assert_eq!(cat(&d, "memory.max"), (100u64 << 20).to_string());
    assert_eq!(cat(&d, "memory.swap.max"), (50u64 << 20).to_string());
    assert_eq!(cat(&d, "memory.low"), (10u64 << 20).to_string());
    assert_eq!(cat(&d, "cpu.weight"), "39");
    assert_eq!(cat(&d, "cpu.max"), "max 50000");
    assert_eq!(cat(&d, "pids.max"), "max");
    assert_eq!(
        cat(&d, "io.weight"),
        v2::blkio_weight_to_io(500).to_string()
    );
    assert_eq!(cat(&d, "io.max"), "8:16 wiops=100");
    assert_eq!(cat(&d, "memory.high"), "90000000");

    // Realtime limits cannot be honoured on v2: an error naming the field, not a skip.
    let rt = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_runtime(1000)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(m
        .apply(&rt)
        .unwrap_err()
        .to_string()
        .contains("realtimeRuntime"));
}

#[test]
fn unsupported_fields_name_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let unified_map = |k: &str| {
        LinuxResourcesBuilder::default()
            .unified(HashMap::from([(k.to_string(), "1".to_string())]))
            .build()
            .unwrap()
    };
    let v1 = manager(&legacy(root), None);
    let e = v1
        .apply(&unified_map("memory.high"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux.resources.unified[\"memory.high\"]"),
        "{e}"
    );
    // Hybrid: memory is a v1 controller here.
    let hy = manager(&hybrid(root), None);
    let e = hy
        .apply(&unified_map("memory.high"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory.high") && e.contains("cgroup v1"), "{e}");
    let e = hy.apply(&unified_map("../x")).unwrap_err().to_string();
    assert!(e.contains("unified"), "{e}");

    let net = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(0x10001u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = hy.apply(&net).unwrap_err().to_string();
    assert!(e.contains("linux.resources.network.classID"), "{e}");

    let hp = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2M/../x")
            .limit(1)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    let e = hy.apply(&hp).unwrap_err().to_string();
    assert!(e.contains("hugepageLimits[0].pageSize"), "{e}");
    let hp = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(1)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    let e = v1.apply(&hp).unwrap_err().to_string();
    assert!(e.contains("hugepageLimits") && e.contains("hugetlb"), "{e}");
}

#[test]
fn failed_write_names_file_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(&legacy(tmp.path()), Some("/c1"));
    fs::create_dir_all(tmp.path().join("pids/c1")).unwrap();
    let r = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
        .build()
        .unwrap();
    let e = m.apply(&r).unwrap_err();
    assert!(matches!(&e, Error::WriteFile { value, .. } if value == "10"));
    assert!(e.to_string().contains("pids/c1/pids.max"), "{e}");
}

#[test]
fn v1_memsw_order_retries_only_on_einval() {
    // A plain file never returns EINVAL, so the straightforward order is used; the retry path
    // is covered by the root test that shrinks limits on a real cgroup.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("m");
    touch(&d, &["memory.limit_in_bytes"]);
    let mem = LinuxMemoryBuilder::default()
        .limit(1 << 20)
        .swap(2 << 20)
        .build()
        .unwrap();
    let e = v1::memory(&d, &mem).unwrap_err();
    assert!(e.to_string().contains("memory.memsw.limit_in_bytes"), "{e}");
}

#[test]
fn freeze_v1_on_fake_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(&legacy(tmp.path()), Some("/c1"));
    files(
        &tmp.path().join("freezer/c1"),
        &[("freezer.state", "THAWED\n")],
    );
    assert!(!m.is_frozen().unwrap());
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
}

#[test]
fn pids_walk_child_cgroups() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(&unified(tmp.path()), Some("/c1"));
    let d = tmp.path().join("unified/c1");
    files(&d, &[("cgroup.procs", "10\n11\n")]);
    files(&d.join("sub"), &[("cgroup.procs", "12\n")]);
    let mut pids = m.pids().unwrap();
    pids.sort();
    assert_eq!(pids, [10, 11, 12]);
}

#[test]
fn stats_v1_and_v2() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = manager(&legacy(root), Some("/c1"));
    files(
        &root.join("cpuacct/c1"),
        &[
            ("cpuacct.usage", "3000\n"),
            ("cpuacct.usage_user", "2000\n"),
            ("cpuacct.usage_sys", "1000\n"),
        ],
    );
    files(
        &root.join("cpu/c1"),
        &[(
            "cpu.stat",
            "nr_periods 5\nnr_throttled 2\nthrottled_time 77\n",
        )],
    );
    files(
        &root.join("memory/c1"),
        &[
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.max_usage_in_bytes", "8192\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.stat", "cache 100\nrss 5\ntotal_cache 200\n"),
        ],
    );
    files(
        &root.join("pids/c1"),
        &[("pids.current", "3\n"), ("pids.max", "max\n")],
    );
    files(
        &root.join("blkio/c1"),
        &[
            (
                "blkio.throttle.io_service_bytes",
                "8:0 Read 10\n8:0 Write 20\n8:16 Read 1\nTotal 31\n",
            ),
            (
                "blkio.throttle.io_serviced",
                "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
            ),
        ],
    );
    let s = m.stats().unwrap();
    assert_eq!(
        s.cpu,
        CpuStats {
            usage_total_ns: 3000,
            usage_user_ns: 2000,
            usage_system_ns: 1000,
            periods: 5,
            throttled_periods: 2,
            throttled_time_ns: 77
        }
    );
    assert_eq!(
        s.memory,
        MemoryStats {
            usage: 4096,
            max_usage: 8192,
            limit: None,
            cache: 200
        }
    );
    assert_eq!(
        s.pids,
        PidsStats {
            current: 3,
            limit: None
        }
    );
    assert_eq!(
        s.blkio,
        BlkioStats {
            read_bytes: 11,
            write_bytes: 20,
            read_ops: 1,
            write_ops: 2
        }
    );

    let m = manager(&unified(root), Some("/c1"));
    files(
        &root.join("unified/c1"),
        &[
            ("cpu.stat", "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 0\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "1048576\n"),
            ("memory.stat", "anon 1\nfile 300\n"),
            ("pids.current", "1\n"),
            ("pids.max", "10\n"),
            ("io.stat", "8:0 rbytes=5 wbytes=6 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=0 rios=1 wios=0\n"),
        ],
    );
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage_total_ns, 30_000);
    assert_eq!(s.cpu.usage_user_ns, 20_000);
    assert_eq!(
        s.memory,
        MemoryStats {
            usage: 4096,
            max_usage: 0,
            limit: Some(1 << 20),
            cache: 300
        }
    );
    assert_eq!(
        s.pids,
        PidsStats {
            current: 1,
            limit: Some(10)
        }
    );
    assert_eq!(
        s.blkio,
        BlkioStats {
            read_bytes: 10,
            write_bytes: 6,
            read_ops: 2,
            write_ops: 2
        }
    );
}

#[test]
fn shares_to_weight_matches_runc() {
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(1024), 39);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
    // Out-of-range shares are clamped rather than wrapping.
    assert_eq!(v2::shares_to_weight(1), 1);
    assert_eq!(v2::shares_to_weight(1 << 40), 10_000);
    assert_eq!(v2::blkio_weight_to_io(10), 1);
    assert_eq!(v2::blkio_weight_to_io(1000), 10_000);
}

#[test]
fn swap_conversion_matches_runc() {
    use v2::swap_to_v2;
    assert_eq!(swap_to_v2(0, 0), Ok(None));
    assert_eq!(swap_to_v2(-1, 0), Ok(Some(-1)));
    assert_eq!(swap_to_v2(100, 0), Ok(None));
    assert_eq!(swap_to_v2(100, -1), Ok(Some(-1)));
    assert_eq!(swap_to_v2(100, 300), Ok(Some(200)));
    // memory == memory+swap: no swap at all.
    assert_eq!(swap_to_v2(100, 100), Ok(Some(0)));
    assert!(swap_to_v2(100, 50).is_err());
    assert!(swap_to_v2(0, 100).is_err());
    assert!(swap_to_v2(-1, 100).is_err());
}

#[test]
fn cpu_max_forms() {
    assert_eq!(v2::cpu_max(None, None), None);
    assert_eq!(v2::cpu_max(Some(50_000), None).as_deref(), Some("50000"));
    assert_eq!(
        v2::cpu_max(Some(50_000), Some(100_000)).as_deref(),
        Some("50000 100000")
    );
    assert_eq!(
        v2::cpu_max(Some(-1), Some(100_000)).as_deref(),
        Some("max 100000")
    );
    assert_eq!(
        v2::cpu_max(None, Some(20_000)).as_deref(),
        Some("max 20000")
    );
}
