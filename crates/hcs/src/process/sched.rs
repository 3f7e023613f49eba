//! CPU and I/O scheduling of the container's process: `process.scheduler` (sched_setattr),
//! `process.ioPriority` (ioprio_set) and, for exec'd processes, `process.execCPUAffinity`
//! (sched_setaffinity before the cgroup join and right before exec). Applied by the init while
//! it still holds the runtime's privileges; each error names the field.

use crate::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    MemoryPolicyFlagType, MemoryPolicyModeType, Process,
};

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `struct sched_attr` (include/uapi/linux/sched/types.h), SCHED_ATTR_SIZE_VER1.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Applies `process.scheduler` and `process.ioPriority` to the calling process.
pub fn apply(p: &Process) -> Result<()> {
    if let Some(s) = p.scheduler() {
        let pol = *s.policy();
        let (nice, prio, runtime, deadline_ns, period) = (
            *s.nice(),
            *s.priority(),
            *s.runtime(),
            *s.deadline(),
            *s.period(),
        );
        let policy = match pol {
            LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER,
            LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO,
            LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR,
            LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH,
            LinuxSchedulerPolicy::SchedIso => 4,
            LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE,
            LinuxSchedulerPolicy::SchedDeadline => 6,
        } as u32;
        let realtime = matches!(
            pol,
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
        );
        let deadline = pol == LinuxSchedulerPolicy::SchedDeadline;
        if nice.is_some()
            && !matches!(
                pol,
                LinuxSchedulerPolicy::SchedOther | LinuxSchedulerPolicy::SchedBatch
            )
        {
            return Err(invalid(
                "process.scheduler.nice",
                "only SCHED_OTHER and SCHED_BATCH take a nice value",
            ));
        }
        if let Some(n) = nice {
            if !(-20..=19).contains(&n) {
                return Err(invalid("process.scheduler.nice", "must be in -20..=19"));
            }
        }
        let priority = prio.unwrap_or(0);
        if realtime && !(1..=99).contains(&priority) {
            return Err(invalid(
                "process.scheduler.priority",
                "SCHED_FIFO and SCHED_RR need a priority in 1..=99",
            ));
        }
        if !realtime && priority != 0 {
            return Err(invalid(
                "process.scheduler.priority",
                "only SCHED_FIFO and SCHED_RR take a priority",
            ));
        }
        if !deadline && (runtime.is_some() || deadline_ns.is_some() || period.is_some()) {
            return Err(invalid(
                "process.scheduler.runtime",
                "runtime, deadline and period are for SCHED_DEADLINE only",
            ));
        }
        let mut flags = 0u64;
        for f in s.flags().iter().flatten() {
            flags |= match f {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            };
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy,
            flags,
            nice: nice.unwrap_or(0),
            priority: priority as u32,
            runtime: runtime.unwrap_or(0),
            deadline: deadline_ns.unwrap_or(0),
            period: period.unwrap_or(0),
            ..Default::default()
        };
        // SAFETY: sched_setattr on ourselves (pid 0) with a sched_attr of the size we pass.
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        super::sys::check(rc).map_err(|e| Error::sys("set process.scheduler", e))?;
    }
    if let Some(io) = p.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        let prio = io.priority();
        if !(0..=7).contains(&prio) {
            return Err(invalid("process.ioPriority.priority", "must be in 0..=7"));
        }
        // IOPRIO_WHO_PROCESS = 1, class in the top bits above IOPRIO_CLASS_SHIFT (13).
        // SAFETY: ioprio_set on ourselves with integer arguments.
        let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | prio) };
        super::sys::check(rc).map_err(|e| Error::sys("set process.ioPriority", e))?;
    }
    Ok(())
}

/// `linux.memoryPolicy`: the NUMA memory policy of the process (set_mempolicy), inherited by
/// everything it starts.
pub fn memory_policy(mp: &LinuxMemoryPolicy) -> Result<()> {
    let mode: i32 = match mp.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let mut flags = 0i32;
    for f in mp.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let nodes = match mp.nodes().as_deref() {
        Some(list) => parse_cpu_list(list).map_err(|r| invalid("linux.memoryPolicy.nodes", r))?,
        None => Vec::new(),
    };
    let needs_nodes = !matches!(
        mp.mode(),
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
    );
    if needs_nodes && nodes.is_empty() {
        return Err(invalid("linux.memoryPolicy.nodes", "this mode needs nodes"));
    }
    if !needs_nodes && !nodes.is_empty() {
        return Err(invalid(
            "linux.memoryPolicy.nodes",
            "MPOL_DEFAULT and MPOL_LOCAL take no nodes",
        ));
    }
    let mut mask = vec![0u64; nodes.iter().max().map_or(0, |m| m / 64 + 1)];
    for n in &nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    // The kernel reads maxnode - 1 bits.
    let maxnode = (mask.len() * 64 + 1) as libc::c_ulong;
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: set_mempolicy reads `maxnode - 1` bits from `ptr`, which has that many (or is null
    // with no nodes).
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) };
    super::sys::check(rc).map_err(|e| Error::sys("set linux.memoryPolicy", e))?;
    Ok(())
}

/// `execCPUAffinity.initial` (before the cgroup join) or `.final` (right before exec).
pub fn exec_affinity(p: &Process, initial: bool) -> Result<()> {
    let Some(a) = p.exec_cpu_affinity() else {
        return Ok(());
    };
    let (list, field) = if initial {
        (a.initial().as_deref(), "process.execCPUAffinity.initial")
    } else {
        (
            a.cpu_affinity_final().as_deref(),
            "process.execCPUAffinity.final",
        )
    };
    let Some(list) = list else {
        return Ok(());
    };
    let cpus = parse_cpu_list(list).map_err(|r| invalid(field, r))?;
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(c)
            .map_err(|_| invalid(field, format!("CPU {c} is beyond what this host supports")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e: Errno| Error::sys(format!("set {field} {list:?}"), e))
}

/// A kernel CPU list: `0-3,7`.
pub fn parse_cpu_list(s: &str) -> std::result::Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("{t:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        return Err("empty CPU list".into());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,7").unwrap(), [0, 1, 2, 3, 7]);
        assert_eq!(parse_cpu_list("1").unwrap(), [1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
