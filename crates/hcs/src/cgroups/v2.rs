//! Limits through cgroup2 interface files (`memory.max`, `cpu.max`, `io.max`, ...), with runc's
//! conversions from the v1-shaped OCI values.

use super::fs::{failed_with, read, write};
use super::v1::check_before_update;
use super::{Dir, Error};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};
use std::path::Path;

/// Enables the controllers of `dir` in `cgroup.subtree_control` of every ancestor from the
/// mount point down, so that the leaf gets their interface files. A level whose parent did not
/// delegate all of them gets the ones it has.
pub(super) fn enable_controllers(dir: &Dir) -> Result<(), Error> {
    let wanted: String = dir.controllers.iter().map(|c| format!("+{c} ")).collect();
    let wanted = wanted.trim_end();
    let mut levels: Vec<&Path> = dir
        .path
        .ancestors()
        .skip(1)
        .take_while(|p| p.starts_with(&dir.mount))
        .collect();
    levels.reverse();
    for level in levels {
        let first = write(level, "cgroup.subtree_control", wanted);
        if first.is_ok() {
            continue;
        }
        let available = read(level, "cgroup.controllers")?;
        let subset: String = available
            .split_whitespace()
            .filter(|c| dir.controllers.iter().any(|w| w == c))
            .map(|c| format!("+{c} "))
            .collect();
        if subset.trim_end() == wanted {
            // Everything was available: the failure was something else (EBUSY: the level has
            // processes of its own, so it cannot delegate).
            return first;
        }
        if !subset.is_empty() {
            write(level, "cgroup.subtree_control", subset.trim_end())?;
        }
    }
    Ok(())
}

/// OCI `memory.swap` (memory+swap, v1 style) to `memory.swap.max` (swap only), as runc does.
/// 0 means unset and -1 unlimited on both sides; `None` means do not write the file.
pub fn swap_to_v2(memory: i64, swap: i64) -> Result<Option<i64>, String> {
    // Unlimited memory with unset swap means both unlimited (as v1 treats it).
    if memory == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(-1)),
        _ => {}
    }
    if memory == 0 || memory == -1 {
        return Err("a swap limit needs a memory limit".into());
    }
    if memory < 0 || swap < 0 {
        return Err("negative limit".into());
    }
    if swap < memory {
        return Err("memory+swap must not be below the memory limit".into());
    }
    Ok(Some(swap - memory))
}

/// OCI `cpu.shares` (2..262144, v1) to `cpu.weight` (1..10000), as runc does.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// OCI `blockIO.weight` (10..1000, v1) to `io.weight` (1..10000), as runc does.
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

fn limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    check_before_update(dir, m, "memory.current")?;
    let mem = m.limit().unwrap_or(0);
    let swap = swap_to_v2(mem, m.swap().unwrap_or(0)).map_err(|reason| Error::InvalidValue {
        field: "linux.resources.memory.swap".into(),
        value: m.swap().unwrap_or(0).to_string(),
        reason,
    })?;
    // Swap first: lowering memory.max below usage reclaims into swap, which must be allowed.
    if let Some(swap) = swap {
        write(dir, "memory.swap.max", &limit(swap))?;
    }
    if mem != 0 {
        write(dir, "memory.max", &limit(mem))?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(dir, "memory.low", &limit(r))?;
    }
    let ignored = [
        ("swappiness", m.swappiness().is_some_and(|s| s != u64::MAX)),
        ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
        ("kernelTCP", m.kernel_tcp().is_some_and(|v| v != 0)),
    ];
    for (field, set) in ignored {
        if set {
            tracing::warn!(field = %format!("linux.resources.memory.{field}"), "no cgroup v2 equivalent; ignored");
        }
    }
    Ok(())
}

/// `cpu.max` content for quota/period (`None`: leave the file alone).
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut value = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    if let Some(p) = period {
        value.push(' ');
        value.push_str(&p.to_string());
    }
    Some(value)
}

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    let realtime =
        c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0);
    if realtime {
        return Err(Error::Unsupported {
            field: "linux.resources.cpu.realtimeRuntime".into(),
            reason: "cgroup v2 has no realtime cpu limits".into(),
        });
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        write(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
    }
    if let Some(value) = cpu_max(c.quota(), c.period()) {
        write(dir, "cpu.max", &value)?;
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

pub(super) fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    // BFQ takes the v1 scale unchanged; io.weight (iocost) needs the conversion.
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        io_weight(dir, "", w)?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            io_weight(dir, &format!("{}:{} ", d.major(), d.minor()), w)?;
        }
        if d.leaf_weight().is_some() {
            tracing::warn!(
                field = "linux.resources.blockIO.weightDevice[].leafWeight",
                "no cgroup v2 equivalent; ignored"
            );
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        tracing::warn!(
            field = "linux.resources.blockIO.leafWeight",
            "no cgroup v2 equivalent; ignored"
        );
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            // 0 removes a v1 throttle; "max" is how v2 says it.
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

fn io_weight(dir: &Path, device: &str, weight: u16) -> Result<(), Error> {
    let bfq = write(dir, "io.bfq.weight", &format!("{device}{weight}"));
    if failed_with(&bfq, libc::ENOENT) {
        let converted = blkio_weight_to_io(weight);
        return write(dir, "io.weight", &format!("{device}{converted}"));
    }
    bfq
}
