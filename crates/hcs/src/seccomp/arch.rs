//! Architectures a filter covers, and syscall name -> number for each.
//!
//! Numbers come from the `syscalls` crate (generated from the kernel's per-architecture tables),
//! with the few libseccomp names it lacks added here, and the x32 table derived from x86_64 the
//! way the kernel's `syscall_64.tbl` defines it.

use oci_spec::runtime::Arch as OciArch;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// Bit set in `seccomp_data.nr` for x32 syscalls (which report `AUDIT_ARCH_X86_64`).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
const AUDIT_ARCH_RISCV64: u32 = 0xc000_00f3;
const AUDIT_ARCH_PPC64LE: u32 = 0xc000_0015;
const AUDIT_ARCH_PPC64: u32 = 0x8000_0015;
const AUDIT_ARCH_S390X: u32 = 0x8000_0016;
const AUDIT_ARCH_LOONGARCH64: u32 = 0xc000_0102;

/// An architecture with a syscall table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Riscv64,
    Ppc64le,
    Ppc64,
    S390x,
    Loongarch64,
}

const ALL: [Arch; 10] = [
    Arch::X86_64,
    Arch::X86,
    Arch::X32,
    Arch::Aarch64,
    Arch::Arm,
    Arch::Riscv64,
    Arch::Ppc64le,
    Arch::Ppc64,
    Arch::S390x,
    Arch::Loongarch64,
];

impl Arch {
    /// The architecture this program was built for, if it has a table.
    pub fn native() -> Option<Arch> {
        if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Some(Arch::X32)
        } else if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "arm") {
            Some(Arch::Arm)
        } else if cfg!(target_arch = "riscv64") {
            Some(Arch::Riscv64)
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Some(Arch::Ppc64le)
        } else if cfg!(target_arch = "powerpc64") {
            Some(Arch::Ppc64)
        } else if cfg!(target_arch = "s390x") {
            Some(Arch::S390x)
        } else if cfg!(target_arch = "loongarch64") {
            Some(Arch::Loongarch64)
        } else {
            None
        }
    }

    /// The architectures whose syscalls a kernel of this native architecture can report in
    /// `seccomp_data.arch`/`nr` (the native one and its compat ABIs that we have tables for).
    pub(crate) fn reachable(self) -> &'static [Arch] {
        match self {
            Arch::X86_64 => &[Arch::X86_64, Arch::X86, Arch::X32],
            Arch::X32 => &[Arch::X32, Arch::X86_64, Arch::X86],
            Arch::Aarch64 => &[Arch::Aarch64, Arch::Arm],
            Arch::X86 => &[Arch::X86],
            Arch::Arm => &[Arch::Arm],
            Arch::Riscv64 => &[Arch::Riscv64],
            Arch::Ppc64le => &[Arch::Ppc64le],
            Arch::Ppc64 => &[Arch::Ppc64],
            Arch::S390x => &[Arch::S390x],
            Arch::Loongarch64 => &[Arch::Loongarch64],
        }
    }

    /// Maps an OCI architecture; `None` for one we have no table for (MIPS, PA-RISC, ...).
    pub(crate) fn from_oci(arch: OciArch, native: Arch) -> Option<Arch> {
        Some(match arch {
            OciArch::ScmpArchNative => native,
            OciArch::ScmpArchX86_64 => Arch::X86_64,
            OciArch::ScmpArchX86 => Arch::X86,
            OciArch::ScmpArchX32 => Arch::X32,
            OciArch::ScmpArchAarch64 => Arch::Aarch64,
            OciArch::ScmpArchArm => Arch::Arm,
            OciArch::ScmpArchRiscv64 => Arch::Riscv64,
            OciArch::ScmpArchPpc64le => Arch::Ppc64le,
            OciArch::ScmpArchPpc64 => Arch::Ppc64,
            OciArch::ScmpArchS390x => Arch::S390x,
            OciArch::ScmpArchLoongarch64 => Arch::Loongarch64,
            _ => return None,
        })
    }

    /// The value the kernel puts in `seccomp_data.arch` (`AUDIT_ARCH_*`).
    pub(crate) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
            Arch::Riscv64 => AUDIT_ARCH_RISCV64,
            Arch::Ppc64le => AUDIT_ARCH_PPC64LE,
            Arch::Ppc64 => AUDIT_ARCH_PPC64,
            Arch::S390x => AUDIT_ARCH_S390X,
            Arch::Loongarch64 => AUDIT_ARCH_LOONGARCH64,
        }
    }

    /// The range of `seccomp_data.nr` that belongs to this ABI under its audit arch: x86_64 and
    /// x32 share `AUDIT_ARCH_X86_64` and are told apart by `X32_SYSCALL_BIT`.
    pub(crate) fn nr_start(self) -> u32 {
        if self == Arch::X32 {
            X32_SYSCALL_BIT
        } else {
            0
        }
    }

    /// Whether syscall arguments are 32-bit (the kernel zero-extends them into the 64-bit
    /// `seccomp_data.args`, so their high half is always 0).
    pub(crate) fn args_are_32bit(self) -> bool {
        matches!(self, Arch::X86 | Arch::Arm)
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::X32 => "x32",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::Riscv64 => "riscv64",
            Arch::Ppc64le => "ppc64le",
            Arch::Ppc64 => "ppc64",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loongarch64",
        }
    }

    /// The syscall number of `name` on this architecture, `None` if it has no such syscall.
    pub fn syscall(self, name: &str) -> Option<u32> {
        table(self).get(name).copied()
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

type Table = Vec<(&'static str, u32)>;
type Map = HashMap<&'static str, u32, BuildHasherDefault<Fnv1a>>;

/// Name -> number; built once per process on first use of an architecture (~20 us).
fn table(arch: Arch) -> &'static Map {
    static TABLES: [OnceLock<Map>; ALL.len()] = [const { OnceLock::new() }; ALL.len()];
    let i = ALL.iter().position(|a| *a == arch).unwrap_or(0);
    TABLES[i].get_or_init(|| {
        let entries = build(arch);
        let mut map = Map::with_capacity_and_hasher(entries.len(), Default::default());
        map.extend(entries);
        map
    })
}

/// FNV-1a: syscall names are short, trusted keys, so a fast non-keyed hash is the right one
/// (SipHash would dominate the lookups of a ~350-name profile).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// All (name, number) pairs of a `syscalls::<arch>::Sysno` enum. (Its `iter()` stops before the
/// last entry, so walk the number range instead.)
macro_rules! sysno_table {
    ($arch:ident) => {{
        use syscalls::$arch::Sysno;
        let (first, last) = (Sysno::first().id(), Sysno::last().id());
        (first..=last)
            .filter_map(|id| usize::try_from(id).ok().and_then(Sysno::new))
            .filter_map(|s| u32::try_from(s.id()).ok().map(|nr| (s.name(), nr)))
            .collect::<Table>()
    }};
}

fn build(arch: Arch) -> Table {
    let mut t = match arch {
        Arch::X86_64 => sysno_table!(x86_64),
        Arch::X86 => sysno_table!(x86),
        Arch::X32 => x32_table(),
        Arch::Aarch64 => sysno_table!(aarch64),
        Arch::Arm => sysno_table!(arm),
        Arch::Riscv64 => sysno_table!(riscv64),
        Arch::Ppc64le | Arch::Ppc64 => sysno_table!(powerpc64),
        Arch::S390x => sysno_table!(s390x),
        Arch::Loongarch64 => sysno_table!(loongarch64),
    };
    // Names libseccomp (and so every profile) uses that the generated tables spell differently
    // or lack.
    let extra: &[(&str, u32)] = match arch {
        // The generic table's `fstatat` is `newfstatat` on 64-bit architectures.
        Arch::Aarch64 | Arch::Loongarch64 => &[("newfstatat", 79)],
        // ARM private syscalls (__ARM_NR_BASE = 0x0f0000) and the generic alias of 341.
        Arch::Arm => &[
            ("breakpoint", 0x0f_0001),
            ("cacheflush", 0x0f_0002),
            ("usr26", 0x0f_0003),
            ("usr32", 0x0f_0004),
            ("set_tls", 0x0f_0005),
            ("get_tls", 0x0f_0006),
            ("sync_file_range2", 341),
        ],
        _ => &[],
    };
    t.extend_from_slice(extra);
    t
}

/// x32 syscalls: every x86_64 "common" syscall at its x86_64 number, the x32-specific compat
/// entry points at 512..=547, and none of the 64-bit-only ones; all with `X32_SYSCALL_BIT` set.
fn x32_table() -> Table {
    const X32_SPECIFIC: [&str; 36] = [
        "rt_sigaction",
        "rt_sigreturn",
        "ioctl",
        "readv",
        "writev",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "execve",
        "ptrace",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigqueueinfo",
        "sigaltstack",
        "timer_create",
        "mq_notify",
        "kexec_load",
        "waitid",
        "set_robust_list",
        "get_robust_list",
        "vmsplice",
        "move_pages",
        "preadv",
        "pwritev",
        "rt_tgsigqueueinfo",
        "recvmmsg",
        "sendmmsg",
        "process_vm_readv",
        "process_vm_writev",
        "setsockopt",
        "getsockopt",
        "io_setup",
        "io_submit",
        "execveat",
        "preadv2",
        "pwritev2",
    ];
    // 64-bit-only entries of syscall_64.tbl that have no x32 counterpart at all.
    const X86_64_ONLY: [&str; 14] = [
        "uselib",
        "_sysctl",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "nfsservctl",
        "getpmsg",
        "putpmsg",
        "afs_syscall",
        "tuxcall",
        "security",
        "set_thread_area",
        "get_thread_area",
        "vserver",
    ];
    const OLD_EPOLL: [&str; 2] = ["epoll_ctl_old", "epoll_wait_old"];
    let mut t: Table = sysno_table!(x86_64)
        .into_iter()
        .filter(|(name, _)| {
            !X86_64_ONLY.contains(name) && !OLD_EPOLL.contains(name) && !X32_SPECIFIC.contains(name)
        })
        .map(|(name, nr)| (name, nr | X32_SYSCALL_BIT))
        .collect();
    t.extend(
        (512u32..)
            .zip(X32_SPECIFIC)
            .map(|(nr, name)| (name, nr | X32_SYSCALL_BIT)),
    );
    t
}
