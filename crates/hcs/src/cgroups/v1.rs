//! Limits through v1 controller files (`memory.limit_in_bytes`, `cpu.cfs_quota_us`, ...).

use super::fs::{failed_with, read, write};
use super::Error;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};
use std::path::Path;

/// Whether any field of the memory section would write something (0 means unset, as in runc).
pub(super) fn memory_is_set(m: &LinuxMemory) -> bool {
    let set = |v: Option<i64>| v.is_some_and(|v| v != 0);
    set(m.limit())
        || set(m.reservation())
        || set(m.swap())
        || set(m.kernel_tcp())
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some()
}

/// Whether any field of the cpu section other than `cpus`/`mems` is set.
pub(super) fn cpu_is_set(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
}

pub(super) fn blkio_is_set(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
}

fn nonzero(v: Option<i64>) -> Option<i64> {
    v.filter(|v| *v != 0)
}

/// Checks `checkBeforeUpdate`: a new limit below current usage is refused.
pub(super) fn check_before_update(
    dir: &Path,
    m: &LinuxMemory,
    usage_file: &str,
) -> Result<(), Error> {
    let Some(limit) = nonzero(m.limit()).filter(|l| *l > 0) else {
        return Ok(());
    };
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let usage = read(dir, usage_file)?;
    let usage: i64 = usage.trim().parse().map_err(|_| Error::Parse {
        path: dir.join(usage_file),
        reason: format!("{usage:?} is not a number"),
    })?;
    if limit < usage {
        return Err(Error::InvalidValue {
            field: "linux.resources.memory.limit".into(),
            value: limit.to_string(),
            reason: format!("below the current usage of {usage} bytes (checkBeforeUpdate)"),
        });
    }
    Ok(())
}

pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    check_before_update(dir, m, "memory.usage_in_bytes")?;
    // `swap` is memory+swap here, and the kernel keeps memsw >= limit at every moment: try the
    // usual order (limit first, right for a new cgroup or a raise) and on EINVAL the reverse.
    match (nonzero(m.limit()), nonzero(m.swap())) {
        (Some(limit), Some(swap)) => {
            let first = write(dir, LIMIT, &limit.to_string());
            if failed_with(&first, libc::EINVAL) {
                write(dir, MEMSW, &swap.to_string())?;
                write(dir, LIMIT, &limit.to_string())?;
            } else {
                first?;
                write(dir, MEMSW, &swap.to_string())?;
            }
        }
        (Some(limit), None) => write(dir, LIMIT, &limit.to_string())?,
        (None, Some(swap)) => write(dir, MEMSW, &swap.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = nonzero(m.reservation()) {
        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(tcp) = nonzero(m.kernel_tcp()) {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    // `kernel` (memory.kmem.limit_in_bytes) is deprecated and ignored, as runc does.
    if let Some(s) = m.swappiness() {
        // u64 view of Docker's -1 ("unset").
        if s != u64::MAX {
            if s > 100 {
                return Err(Error::InvalidValue {
                    field: "linux.resources.memory.swappiness".into(),
                    value: s.to_string(),
                    reason: "must be between 0 and 100".into(),
                });
            }
            write(dir, "memory.swappiness", &s.to_string())?;
        }
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if let Some(h) = m.use_hierarchy() {
        write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        write(dir, "cpu.shares", &shares.to_string())?;
    }
    let quota = c
        .quota()
        .filter(|q| *q != 0)
        .map(|q| if q < 0 { -1 } else { q });
    match (c.period().filter(|p| *p != 0), quota) {
        (Some(period), quota) => {
            // A period shorter than the current quota allows may be refused until the quota
            // is lowered: then write the quota first.
            let first = write(dir, "cpu.cfs_period_us", &period.to_string());
            match quota {
                Some(q) if failed_with(&first, libc::EINVAL) => {
                    write(dir, "cpu.cfs_quota_us", &q.to_string())?;
                    write(dir, "cpu.cfs_period_us", &period.to_string())?;
                }
                Some(q) => {
                    first?;
                    write(dir, "cpu.cfs_quota_us", &q.to_string())?;
                }
                None => first?,
            }
        }
        (None, Some(q)) => write(dir, "cpu.cfs_quota_us", &q.to_string())?,
        (None, None) => {}
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    // The runtime is checked against the period: period first.
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        write(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

pub(super) fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        weight(dir, "blkio.weight", "blkio.bfq.weight", &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let value = format!("{}:{} {w}", d.major(), d.minor());
            weight(
                dir,
                "blkio.weight_device",
                "blkio.bfq.weight_device",
                &value,
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            let value = format!("{}:{} {w}", d.major(), d.minor());
            write(dir, "blkio.leaf_weight_device", &value)?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// CFQ's weight file, or BFQ's where CFQ is gone (kernels >= 5.0 without CFQ).
fn weight(dir: &Path, cfq: &str, bfq: &str, value: &str) -> Result<(), Error> {
    let first = write(dir, cfq, value);
    if failed_with(&first, libc::ENOENT) {
        return write(dir, bfq, value);
    }
    first
}

/// A new v1 cpuset cgroup starts with empty `cpus`/`mems`, which makes adding tasks fail with
/// ENOSPC. The `created` trailing levels of `leaf` get the values of the level above them; that
/// level is itself filled from its ancestors if it is empty (a non-empty cpuset implies
/// non-empty ancestors, so the common case costs one read per file).
pub(super) fn init_cpuset(leaf: &Path, mount: &Path, created: usize) -> Result<(), Error> {
    let mut new_levels: Vec<&Path> = leaf.ancestors().take(created).collect();
    new_levels.reverse();
    let Some(existing) = leaf.ancestors().nth(created) else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = ensure_cpuset(existing, mount, file)?;
        for level in &new_levels {
            write(level, file, &value)?;
        }
    }
    Ok(())
}

/// The value of `file` at `level`, copied down from the ancestors first if it is empty.
fn ensure_cpuset(level: &Path, mount: &Path, file: &str) -> Result<String, Error> {
    let value = read(level, file)?.trim().to_string();
    if !value.is_empty() || level == mount {
        return Ok(value);
    }
    let Some(parent) = level.parent() else {
        return Ok(value);
    };
    let inherited = ensure_cpuset(parent, mount, file)?;
    write(level, file, &inherited)?;
    Ok(inherited)
}
