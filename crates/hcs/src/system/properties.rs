//! Answers to `properties(PropertyQuery)` for a process-isolated system: `Statistics` from the
//! container's cgroups and `ProcessList` from `/proc`, in HCS's units (100 ns ticks, bytes).

use crate::cgroups::Stats;
use crate::process::state::rfc3339;
use crate::schema::{MemoryStats, ProcessDetails, ProcessorStats, Statistics, StorageStats};

const NS_PER_TICK100: u64 = 100;

/// `Statistics` from a cgroup snapshot taken at `now` (seconds, nanos since the epoch) for a
/// system created at `created` (RFC 3339, kept as given).
pub(super) fn statistics(
    s: &Stats,
    created: &str,
    created_unix_ns: Option<u128>,
    now: std::time::Duration,
) -> Statistics {
    let uptime = created_unix_ns
        .map(|c| (now.as_nanos().saturating_sub(c) / u128::from(NS_PER_TICK100)) as u64);
    Statistics {
        timestamp: Some(rfc3339(now.as_secs() as i64, now.subsec_nanos())),
        container_start_time: Some(created.to_string()),
        uptime100ns: uptime,
        processor: Some(ProcessorStats {
            total_runtime100ns: Some(s.cpu.usage_total_ns / NS_PER_TICK100),
            runtime_user100ns: Some(s.cpu.usage_user_ns / NS_PER_TICK100),
            runtime_kernel100ns: Some(s.cpu.usage_system_ns / NS_PER_TICK100),
        }),
        memory: Some(MemoryStats {
            memory_usage_commit_bytes: Some(s.memory.usage),
            memory_usage_commit_peak_bytes: Some(s.memory.max_usage.max(s.memory.usage)),
            memory_usage_private_working_set_bytes: Some(
                s.memory.usage.saturating_sub(s.memory.cache),
            ),
        }),
        storage: Some(StorageStats {
            read_count_normalized: Some(s.blkio.read_ops),
            read_size_bytes: Some(s.blkio.read_bytes),
            write_count_normalized: Some(s.blkio.write_ops),
            write_size_bytes: Some(s.blkio.write_bytes),
        }),
    }
}

/// One `ProcessDetails` per pid, read from `/proc`; pids that vanished meanwhile are skipped.
pub(super) fn process_list(pids: &[i32]) -> Vec<ProcessDetails> {
    let tick = clock_ticks();
    let page = page_size();
    let boot_ns = boot_time_ns();
    pids.iter()
        .filter_map(|&pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = stat.get(open + 1..close)?.to_string();
            let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
            // After "pid (comm) ": state is field 3 → index 0; utime 14 → 11, stime 15 → 12,
            // starttime 22 → 19.
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            let to100ns = |t: u64| t.saturating_mul(10_000_000) / tick;
            // statm: total program size, then resident set, in pages.
            let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
            let mut pages = statm.split(' ').map(|v| v.parse::<u64>().ok());
            let vm_pages = pages.next().flatten();
            let rss_pages = pages.next().flatten();
            let created = match (boot_ns, num(19)) {
                (Some(boot), Some(start)) => {
                    let ns = boot + u128::from(start) * 1_000_000_000 / u128::from(tick);
                    Some(rfc3339(
                        (ns / 1_000_000_000) as i64,
                        (ns % 1_000_000_000) as u32,
                    ))
                }
                _ => None,
            };
            Some(ProcessDetails {
                process_id: Some(pid as u32),
                image_name: Some(comm),
                create_timestamp: created,
                user_time100ns: num(11).map(to100ns),
                kernel_time100ns: num(12).map(to100ns),
                memory_commit_bytes: vm_pages.map(|p| p * page),
                memory_working_set_private_bytes: rss_pages.map(|p| p * page),
                memory_working_set_shared_bytes: None,
            })
        })
        .collect()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a valid name; no memory involved.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// The wall-clock time of boot, in ns since the epoch (`btime` of /proc/stat, whole seconds).
fn boot_time_ns() -> Option<u128> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u128 = s
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(secs * 1_000_000_000)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::process::state::parse_rfc3339_ns;

    #[test]
    fn rfc3339_round_trip() {
        for (secs, nanos) in [(0i64, 0u32), (1_700_000_000, 5), (951_782_400, 999_999_999)] {
            let s = rfc3339(secs, nanos);
            assert_eq!(
                parse_rfc3339_ns(&s),
                Some(secs as u128 * 1_000_000_000 + u128::from(nanos)),
                "{s}"
            );
        }
        assert_eq!(
            parse_rfc3339_ns("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000_000_000)
        );
        assert_eq!(parse_rfc3339_ns("not a time"), None);
    }

    #[test]
    fn own_process_is_listed() {
        let me = std::process::id() as i32;
        let list = process_list(&[me, i32::MAX]);
        assert_eq!(list.len(), 1, "a missing pid is skipped");
        let d = &list[0];
        assert_eq!(d.process_id, Some(me as u32));
        assert!(d.image_name.as_deref().is_some_and(|n| !n.is_empty()));
        assert!(d.memory_working_set_private_bytes.unwrap() > 0);
        assert!(d.create_timestamp.as_deref().unwrap().ends_with('Z'));
    }

    #[test]
    fn statistics_units() {
        let mut s = Stats::default();
        s.cpu.usage_total_ns = 1_000;
        s.cpu.usage_user_ns = 600;
        s.cpu.usage_system_ns = 400;
        s.memory.usage = 10 << 20;
        s.memory.cache = 4 << 20;
        let created = "1970-01-01T00:00:01.000000000Z";
        let st = statistics(
            &s,
            created,
            parse_rfc3339_ns(created),
            std::time::Duration::from_secs(2),
        );
        assert_eq!(st.uptime100ns, Some(10_000_000));
        let p = st.processor.unwrap();
        assert_eq!(
            (
                p.total_runtime100ns,
                p.runtime_user100ns,
                p.runtime_kernel100ns
            ),
            (Some(10), Some(6), Some(4))
        );
        let m = st.memory.unwrap();
        assert_eq!(m.memory_usage_private_working_set_bytes, Some(6 << 20));
        assert_eq!(m.memory_usage_commit_peak_bytes, Some(10 << 20));
    }
}
