//! Usage statistics read from the controller files of either version.

use super::Error;
use std::io;
use std::path::Path;

/// Resource usage of a cgroup. Fields a host cannot report are 0 (or `None` for limits).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuStats {
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryStats {
    /// Current usage in bytes (page cache included).
    pub usage: u64,
    /// Peak usage (v1 `max_usage_in_bytes`, v2 `memory.peak` where the kernel has it).
    pub max_usage: u64,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub cache: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlkioStats {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_ops: u64,
    pub write_ops: u64,
}

/// v1 reports "unlimited" as the largest page-aligned i64.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// The file's content, or `None` if it does not exist (controller feature absent).
fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, Error> {
    let path = dir.join(file);
    match super::fs::read_path(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadFile { path, source }),
    }
}

fn number(dir: &Path, file: &str, text: &str) -> Result<u64, Error> {
    text.trim().parse().map_err(|_| Error::Parse {
        path: dir.join(file),
        reason: format!("{:?} is not a number", text.trim()),
    })
}

/// A single-number file; 0 if absent.
fn single(dir: &Path, file: &str) -> Result<u64, Error> {
    read_opt(dir, file)?.map_or(Ok(0), |t| number(dir, file, &t))
}

/// A limit file: `max` (v2) or the v1 sentinel mean unlimited.
fn limit(dir: &Path, file: &str) -> Result<Option<u64>, Error> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(t) if t.trim() == "max" => Ok(None),
        Some(t) => Ok(Some(number(dir, file, &t)?).filter(|v| *v < V1_UNLIMITED)),
    }
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
pub(super) fn keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

fn key(text: &str, name: &str) -> u64 {
    keyed(text).find(|(k, _)| *k == name).map_or(0, |(_, v)| v)
}

pub(super) fn cpu(dir: &Path, v2: bool) -> Result<CpuStats, Error> {
    let mut s = CpuStats::default();
    if v2 {
        if let Some(t) = read_opt(dir, "cpu.stat")? {
            s.usage_total_ns = key(&t, "usage_usec") * 1000;
            s.usage_user_ns = key(&t, "user_usec") * 1000;
            s.usage_system_ns = key(&t, "system_usec") * 1000;
            s.periods = key(&t, "nr_periods");
            s.throttled_periods = key(&t, "nr_throttled");
            s.throttled_time_ns = key(&t, "throttled_usec") * 1000;
        }
        return Ok(s);
    }
    s.usage_total_ns = single(dir, "cpuacct.usage")?;
    match (
        read_opt(dir, "cpuacct.usage_user")?,
        read_opt(dir, "cpuacct.usage_sys")?,
    ) {
        (Some(u), Some(k)) => {
            s.usage_user_ns = number(dir, "cpuacct.usage_user", &u)?;
            s.usage_system_ns = number(dir, "cpuacct.usage_sys", &k)?;
        }
        // Older kernels: only clock ticks.
        _ => {
            if let Some(t) = read_opt(dir, "cpuacct.stat")? {
                // SAFETY: sysconf only reads a configuration value.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
                let ns_per_tick = if hz > 0 {
                    1_000_000_000 / hz as u64
                } else {
                    10_000_000
                };
                s.usage_user_ns = key(&t, "user") * ns_per_tick;
                s.usage_system_ns = key(&t, "system") * ns_per_tick;
            }
        }
    }
    Ok(s)
}

pub(super) fn cpu_throttling_v1(dir: &Path, s: &mut CpuStats) -> Result<(), Error> {
    if let Some(t) = read_opt(dir, "cpu.stat")? {
        s.periods = key(&t, "nr_periods");
        s.throttled_periods = key(&t, "nr_throttled");
        s.throttled_time_ns = key(&t, "throttled_time");
    }
    Ok(())
}

pub(super) fn memory(dir: &Path, v2: bool) -> Result<MemoryStats, Error> {
    let stat = read_opt(dir, "memory.stat")?.unwrap_or_default();
    Ok(if v2 {
        MemoryStats {
            usage: single(dir, "memory.current")?,
            max_usage: single(dir, "memory.peak")?,
            limit: limit(dir, "memory.max")?,
            cache: key(&stat, "file"),
        }
    } else {
        let cache = match keyed(&stat).find(|(k, _)| *k == "total_cache") {
            Some((_, v)) => v,
            None => key(&stat, "cache"),
        };
        MemoryStats {
            usage: single(dir, "memory.usage_in_bytes")?,
            max_usage: single(dir, "memory.max_usage_in_bytes")?,
            limit: limit(dir, "memory.limit_in_bytes")?,
            cache,
        }
    })
}

pub(super) fn pids(dir: &Path) -> Result<PidsStats, Error> {
    Ok(PidsStats {
        current: single(dir, "pids.current")?,
        limit: limit(dir, "pids.max")?,
    })
}

pub(super) fn blkio(dir: &Path, v2: bool) -> Result<BlkioStats, Error> {
    let mut s = BlkioStats::default();
    if v2 {
        // `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`
        let text = read_opt(dir, "io.stat")?.unwrap_or_default();
        for field in text.split_whitespace() {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "rbytes" => s.read_bytes += v,
                "wbytes" => s.write_bytes += v,
                "rios" => s.read_ops += v,
                "wios" => s.write_ops += v,
                _ => {}
            }
        }
        return Ok(s);
    }
    // `8:0 Read 4096` ... `Total 8192`
    let sum = |text: &str, op: &str| -> u64 {
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_dev, o, v) = (f.next()?, f.next()?, f.next()?);
                (o == op).then(|| v.parse::<u64>().ok()).flatten()
            })
            .sum()
    };
    if let Some(t) = read_opt(dir, "blkio.throttle.io_service_bytes")? {
        s.read_bytes = sum(&t, "Read");
        s.write_bytes = sum(&t, "Write");
    }
    if let Some(t) = read_opt(dir, "blkio.throttle.io_serviced")? {
        s.read_ops = sum(&t, "Read");
        s.write_ops = sum(&t, "Write");
    }
    Ok(s)
}
