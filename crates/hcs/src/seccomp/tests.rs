//! Decisions of generated programs, checked with a classic-BPF interpreter that executes them on
//! a `seccomp_data` the way the kernel does.

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::bpf::{self, AND_K, JA, JEQ_K, JGE_K, JGT_K, JSET_K, LD_ABS, RET_K};
use super::compile::*;
use super::{default_profile, Error, Filter};
use oci_spec::runtime::LinuxSeccomp;

const ALLOW: u32 = RET_ALLOW;
const KILL_THREAD: u32 = RET_KILL_THREAD;

fn errno(e: u32) -> u32 {
    RET_ERRNO | e
}

/// Runs `insns` on a seccomp_data; returns (return value, instructions executed).
fn run(insns: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&nr.to_ne_bytes());
    data.extend_from_slice(&arch.to_ne_bytes());
    data.extend_from_slice(&0x7fff_1234_5678u64.to_ne_bytes());
    for a in args {
        data.extend_from_slice(&a.to_ne_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let i = insns[pc];
        steps += 1;
        pc += 1;
        match i.code {
            LD_ABS => {
                let k = i.k as usize;
                acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
            }
            AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                let taken = match i.code {
                    JEQ_K => acc == i.k,
                    JGT_K => acc > i.k,
                    JGE_K => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            RET_K => return (i.k, steps),
            c => panic!("unexpected opcode {c:#x} at {}", pc - 1),
        }
    }
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn compile(json: &str) -> Filter {
    Filter::compile_for(&profile(json), Arch::X86_64).unwrap()
}

fn nr(arch: Arch, name: &str) -> u32 {
    arch.syscall(name)
        .unwrap_or_else(|| panic!("{name} on {arch}"))
}

/// Decision for syscall `name` of ABI `arch` with `args`.
fn decide(f: &Filter, arch: Arch, name: &str, args: [u64; 6]) -> u32 {
    run(f.instructions(), arch.audit(), nr(arch, name), args).0
}

fn decide0(f: &Filter, arch: Arch, name: &str) -> u32 {
    decide(f, arch, name, [0; 6])
}

#[test]
fn default_action_and_bad_arch() {
    let f = compile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    assert_eq!(decide0(&f, Arch::X86_64, "read"), ALLOW);
    assert_eq!(
        run(f.instructions(), Arch::X86_64.audit(), 100_000, [0; 6]).0,
        ALLOW
    );
    // No architectures listed: only the native one is covered, like libseccomp.
    assert_eq!(decide0(&f, Arch::X86, "read"), KILL_THREAD);
    assert_eq!(decide0(&f, Arch::Aarch64, "read"), KILL_THREAD);
    assert_eq!(decide0(&f, Arch::X32, "read"), KILL_THREAD);
    assert_eq!(f.flags(), 0);
    assert!(!f.needs_notify());
}

#[test]
fn allow_list_and_errno_values() {
    let f = compile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["read","write","openat","close","exit_group"],"action":"SCMP_ACT_ALLOW"},
            {"names":["mkdirat","getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":99},
            {"names":["kexec_load"],"action":"SCMP_ACT_ERRNO"},
            {"names":["ptrace"],"action":"SCMP_ACT_TRACE","errnoRet":7},
            {"names":["reboot"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["swapon"],"action":"SCMP_ACT_KILL"},
            {"names":["swapoff"],"action":"SCMP_ACT_KILL_THREAD"},
            {"names":["acct"],"action":"SCMP_ACT_TRAP"},
            {"names":["uname"],"action":"SCMP_ACT_LOG"}
        ]}"#,
    );
    for name in ["read", "write", "openat", "close", "exit_group"] {
        assert_eq!(decide0(&f, Arch::X86_64, name), ALLOW, "{name}");
    }
    assert_eq!(decide0(&f, Arch::X86_64, "mkdirat"), errno(99));
    assert_eq!(decide0(&f, Arch::X86_64, "getcwd"), errno(99));
    assert_eq!(
        decide0(&f, Arch::X86_64, "kexec_load"),
        errno(1),
        "ERRNO defaults to EPERM"
    );
    assert_eq!(decide0(&f, Arch::X86_64, "ptrace"), RET_TRACE | 7);
    assert_eq!(decide0(&f, Arch::X86_64, "reboot"), RET_KILL_PROCESS);
    assert_eq!(decide0(&f, Arch::X86_64, "swapon"), KILL_THREAD);
    assert_eq!(decide0(&f, Arch::X86_64, "swapoff"), KILL_THREAD);
    assert_eq!(decide0(&f, Arch::X86_64, "acct"), RET_TRAP);
    assert_eq!(decide0(&f, Arch::X86_64, "uname"), RET_LOG);
    assert_eq!(decide0(&f, Arch::X86_64, "getpid"), errno(38));
    assert_eq!(
        run(f.instructions(), Arch::X86_64.audit(), 0x3fff_ffff, [0; 6]).0,
        errno(38)
    );
    assert_eq!(
        run(f.instructions(), Arch::X86_64.audit(), u32::MAX, [0; 6]).0,
        KILL_THREAD
    );
}

/// libseccomp's semantics: unsigned 64-bit; masked: (arg & value) == valueTwo.
fn reference(op: &str, arg: u64, v: u64, v2: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != v,
        "SCMP_CMP_LT" => arg < v,
        "SCMP_CMP_LE" => arg <= v,
        "SCMP_CMP_EQ" => arg == v,
        "SCMP_CMP_GE" => arg >= v,
        "SCMP_CMP_GT" => arg > v,
        "SCMP_CMP_MASKED_EQ" => arg & v == v2,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

const VALUES: [u64; 9] = [
    0,
    5,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0x7fff_ffff_0000_0000,
    0x8000_0000_0000_0005,
    0xffff_ffff_0000_0005,
    u64::MAX,
];

fn probes(v: u64) -> Vec<u64> {
    let mut p = vec![
        0,
        1,
        5,
        6,
        4,
        0xffff_ffff,
        0x1_0000_0000,
        u64::MAX,
        v,
        v ^ (1 << 32),
        v ^ 1,
        v | 0xff,
    ];
    p.push(v.wrapping_add(1));
    p.push(v.wrapping_sub(1));
    p.push(v.wrapping_add(1 << 32));
    p.push(v.wrapping_sub(1 << 32));
    p
}

#[test]
fn every_operator_on_64_bit_values() {
    for op in OPS {
        for v in VALUES {
            for v2 in [0u64, 5, 0x1_0000_0000, v & 0xffff_0000_ffff] {
                if op != "SCMP_CMP_MASKED_EQ" && v2 != 0 {
                    continue;
                }
                let json = format!(
                    r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                    "syscalls":[{{"names":["read"],"action":"SCMP_ACT_ALLOW",
                    "args":[{{"index":3,"value":{v},"valueTwo":{v2},"op":"{op}"}}]}}]}}"#
                );
                let f = compile(&json);
                for arg in probes(v) {
                    let mut args = [0u64; 6];
                    args[3] = arg;
                    let want = if reference(op, arg, v, v2) {
                        ALLOW
                    } else {
                        errno(1)
                    };
                    assert_eq!(
                        decide(&f, Arch::X86_64, "read", args),
                        want,
                        "{op} {v:#x}/{v2:#x} arg {arg:#x}"
                    );
                    // A 32-bit ABI: the kernel zero-extends, so the arg has no high half.
                    let arg32 = arg & 0xffff_ffff;
                    args[3] = arg32;
                    let want = if reference(op, arg32, v, v2) {
                        ALLOW
                    } else {
                        errno(1)
                    };
                    assert_eq!(
                        decide(&f, Arch::X86, "read", args),
                        want,
                        "x86 {op} {v:#x}/{v2:#x} arg {arg32:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn conditions_are_anded_and_rules_are_first_match() {
    // containers-common's socket rules: EINVAL for (AF_NETLINK, NETLINK_AUDIT), else allowed.
    let f = compile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
          {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[
             {"index":0,"value":16,"op":"SCMP_CMP_EQ"},{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]},
          {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":9,"op":"SCMP_CMP_NE"}]},
          {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":16,"op":"SCMP_CMP_NE"}]},
          {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
          {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
          {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]},
          {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
          {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":6},
          {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}
        ]}"#,
    );
    let sock = |a0, a2| decide(&f, Arch::X86_64, "socket", [a0, 2, a2, 0, 0, 0]);
    assert_eq!(sock(16, 9), errno(22));
    assert_eq!(sock(16, 0), ALLOW);
    assert_eq!(sock(2, 9), ALLOW);
    assert_eq!(sock(2, 0), ALLOW);
    let pers = |a0| decide(&f, Arch::X86_64, "personality", [a0, 0, 0, 0, 0, 0]);
    assert_eq!(pers(0), ALLOW);
    assert_eq!(pers(8), ALLOW);
    assert_eq!(pers(0xffff_ffff), ALLOW);
    assert_eq!(pers(1), errno(1));
    assert_eq!(pers(0x1_0000_0000), errno(1));
    // First match wins; the unconditional rule ends the list.
    assert_eq!(
        decide(&f, Arch::X86_64, "getpid", [1, 0, 0, 0, 0, 0]),
        errno(5)
    );
    assert_eq!(
        decide(&f, Arch::X86_64, "getpid", [2, 0, 0, 0, 0, 0]),
        errno(6)
    );
}

#[test]
fn rules_with_the_default_action_are_dropped_and_repeated_args_are_ored() {
    let f = compile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
          {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
          {"names":["read"],"action":"SCMP_ACT_ALLOW"},
          {"names":["write"],"action":"SCMP_ACT_ALLOW","args":[
             {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}
        ]}"#,
    );
    // runc skips a rule whose action is the default one, so the later ALLOW decides.
    assert_eq!(decide0(&f, Arch::X86_64, "read"), ALLOW);
    // runc splits a rule comparing one argument twice into one rule per comparison.
    let w = |fd| decide(&f, Arch::X86_64, "write", [fd, 0, 0, 0, 0, 0]);
    assert_eq!(w(1), ALLOW);
    assert_eq!(w(2), ALLOW);
    assert_eq!(w(3), errno(1));
}

#[test]
fn compat_arches_and_x32() {
    let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],
        "syscalls":[{"names":["read","_llseek","execve","no_such_syscall","arch_prctl"],"action":"SCMP_ACT_ALLOW"},
                    {"names":["rt_sigaction"],"action":"SCMP_ACT_ERRNO","errnoRet":77}]}"#;
    let f = compile(json);
    assert_eq!(decide0(&f, Arch::X86_64, "read"), ALLOW);
    assert_eq!(decide0(&f, Arch::X86, "read"), ALLOW);
    assert_eq!(decide0(&f, Arch::X86, "_llseek"), ALLOW);
    assert_eq!(decide0(&f, Arch::X86, "write"), errno(1));
    assert_eq!(decide0(&f, Arch::X32, "read"), ALLOW);
    assert_eq!(nr(Arch::X32, "read"), X32_SYSCALL_BIT);
    assert_eq!(nr(Arch::X32, "execve"), X32_SYSCALL_BIT | 520);
    assert_eq!(decide0(&f, Arch::X32, "execve"), ALLOW);
    assert_eq!(decide0(&f, Arch::X32, "rt_sigaction"), errno(77));
    // The 64-bit entry point of execve with the x32 bit is not an x32 syscall.
    assert_eq!(
        run(
            f.instructions(),
            Arch::X86_64.audit(),
            X32_SYSCALL_BIT | 59,
            [0; 6]
        )
        .0,
        errno(1)
    );
    assert_eq!(decide0(&f, Arch::X86_64, "execve"), ALLOW);
    assert_eq!(decide0(&f, Arch::X86_64, "rt_sigaction"), errno(77));
    // aarch64 is listed but an x86_64 kernel never reports it: it is not in the program.
    assert_eq!(decide0(&f, Arch::Aarch64, "read"), KILL_THREAD);
    // Compiled for an aarch64 kernel, the same profile covers aarch64 only (arm not listed).
    let g = Filter::compile_for(&profile(json), Arch::Aarch64).unwrap();
    assert_eq!(decide0(&g, Arch::Aarch64, "read"), ALLOW);
    assert_eq!(decide0(&g, Arch::Aarch64, "write"), errno(1));
    assert_eq!(decide0(&g, Arch::X86_64, "read"), KILL_THREAD);
    assert_eq!(decide0(&g, Arch::Arm, "read"), KILL_THREAD);
    // x86_64 with x32 not listed: x32 syscalls get the bad-arch action.
    let h = compile(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#);
    assert_eq!(decide0(&h, Arch::X32, "read"), KILL_THREAD);
    assert_eq!(decide0(&h, Arch::X86_64, "read"), ALLOW);
}

#[test]
fn syscall_tables() {
    assert_eq!(nr(Arch::X86_64, "read"), 0);
    assert_eq!(nr(Arch::X86_64, "mkdirat"), 258);
    assert_eq!(
        nr(Arch::X86_64, "file_setattr"),
        469,
        "last entry of the table"
    );
    assert_eq!(nr(Arch::X86, "_llseek"), 140);
    assert_eq!(nr(Arch::X86, "socketcall"), 102);
    assert_eq!(nr(Arch::Aarch64, "newfstatat"), 79);
    assert_eq!(nr(Arch::Arm, "set_tls"), 0x0f_0005);
    assert_eq!(Arch::X86_64.syscall("_llseek"), None);
    assert_eq!(Arch::X32.syscall("uselib"), None);
    #[cfg(target_arch = "x86_64")]
    for (name, n) in [
        ("openat", libc::SYS_openat),
        ("clone3", libc::SYS_clone3),
        ("getcwd", libc::SYS_getcwd),
        ("seccomp", libc::SYS_seccomp),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("close_range", libc::SYS_close_range),
    ] {
        assert_eq!(i64::from(nr(Arch::X86_64, name)), n, "{name}");
    }
}

/// Every x86_64 syscall with its own errno: ~380 intervals, a deep tree whose leaves jump to
/// ~380 distinct returns more than 255 instructions away.
#[test]
fn big_profile_needs_long_jumps() {
    let names: Vec<(&str, u32)> = (0..1000)
        .filter_map(|n| syscalls::x86_64::Sysno::new(n).map(|s| (s.name(), n as u32)))
        .collect();
    let rules: Vec<String> = names
        .iter()
        .map(|(name, n)| {
            format!(
                r#"{{"names":["{name}"],"action":"SCMP_ACT_ERRNO","errnoRet":{}}}"#,
                n + 100
            )
        })
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
        rules.join(",")
    );
    let f = compile(&json);
    let insns = f.instructions();
    assert!(insns.len() > 512, "{} instructions", insns.len());
    let far = insns.iter().filter(|i| i.code == JA && i.k > 255).count();
    assert!(far > 0, "expected long jumps");
    let mut max_steps = 0;
    for (name, n) in &names {
        let (ret, steps) = run(insns, Arch::X86_64.audit(), *n, [0; 6]);
        assert_eq!(ret, errno(n + 100), "{name}");
        max_steps = max_steps.max(steps);
    }
    assert_eq!(run(insns, Arch::X86_64.audit(), 999, [0; 6]).0, ALLOW);
    assert!(
        max_steps < 20,
        "binary search expected, took {max_steps} steps"
    );
    assert!(bpf::validate(insns).is_ok());

    // The same with argument rules: long jumps out of the rule blocks too.
    let rules: Vec<String> = names
        .iter()
        .map(|(name, n)| {
            format!(
                r#"{{"names":["{name}"],"action":"SCMP_ACT_ERRNO","errnoRet":{e},"args":[{{"index":1,"value":{v},"op":"SCMP_CMP_GT"}}]}}"#,
                e = n + 100,
                v = (u64::from(*n) << 32) | 7
            )
        })
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
        rules.join(",")
    );
    let f = compile(&json);
    assert!(f.instructions().len() > 1500);
    for (name, n) in &names {
        let v = (u64::from(*n) << 32) | 7;
        assert_eq!(
            decide(&f, Arch::X86_64, name, [0, v + 1, 0, 0, 0, 0]),
            errno(n + 100),
            "{name}"
        );
        assert_eq!(
            decide(&f, Arch::X86_64, name, [0, v, 0, 0, 0, 0]),
            ALLOW,
            "{name}"
        );
    }
}

#[test]
fn too_large_is_an_invalid_profile() {
    let rules: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":{},"args":[{{"index":0,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#,
                i % 4000 + 2
            )
        })
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
        rules.join(",")
    );
    let err = Filter::compile_for(&profile(&json), Arch::X86_64).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.is_invalid_profile());
}

#[test]
fn invalid_profiles_name_the_field() {
    let cases = [
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":["write",""],"action":"SCMP_ACT_ERRNO"}]}"#,
            "linux.seccomp.syscalls[1].names[1]: empty syscall name",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#,
            "linux.seccomp.syscalls[0].names: no syscall names",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument index (0..=5)",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":65536}]}"#,
            "linux.seccomp.syscalls[0].errnoRet: 65536 does not fit in the 16-bit SECCOMP_RET_DATA",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#,
            "linux.seccomp.defaultErrnoRet: 70000 does not fit in the 16-bit SECCOMP_RET_DATA",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#,
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
    ];
    for (json, want) in cases {
        let err = Filter::compile_for(&profile(json), Arch::X86_64).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert!(err.is_invalid_profile());
    }
}

#[test]
fn flags_and_notify() {
    let f = compile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(f.needs_notify());
    assert_eq!(
        f.flags(),
        FLAG_TSYNC
            | FLAG_LOG
            | FLAG_SPEC_ALLOW
            | FLAG_WAIT_KILLABLE_RECV
            | FLAG_NEW_LISTENER
            | FLAG_TSYNC_ESRCH
    );
    assert_eq!(decide0(&f, Arch::X86_64, "mkdirat"), RET_USER_NOTIF);
    let g = compile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    );
    assert_eq!(g.flags(), FLAG_TSYNC, "WAIT_KILLABLE_RECV needs a listener");
}

#[test]
fn default_profile_decisions() {
    let p = default_profile();
    let f = Filter::compile_for(&p, Arch::X86_64).unwrap();
    let insns = f.instructions().len();
    let mut max_steps = 0;
    for n in 0..500 {
        max_steps = max_steps.max(run(f.instructions(), Arch::X86_64.audit(), n, [0; 6]).1);
    }
    println!(
        "default profile: {insns} instructions, at most {max_steps} executed per x86_64 syscall"
    );
    assert!(insns < 600, "{insns}");
    assert!(max_steps < 40, "{max_steps}");
    let d = |name: &str, args: [u64; 6]| decide(&f, Arch::X86_64, name, args);
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "mmap",
        "futex",
        "exit_group",
        "socket",
        "chroot",
        "arch_prctl",
    ] {
        assert_eq!(d(name, [0; 6]), ALLOW, "{name}");
    }
    for name in [
        "kexec_load",
        "mount",
        "umount2",
        "unshare",
        "setns",
        "reboot",
        "init_module",
        "bpf",
        "keyctl",
    ] {
        assert_eq!(d(name, [0; 6]), errno(1), "{name}");
    }
    assert_eq!(d("personality", [0; 6]), ALLOW);
    assert_eq!(d("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(d("personality", [0x0040_0000, 0, 0, 0, 0, 0]), errno(1));
    // clone: plain fork/thread flags allowed, namespace flags refused; clone3 -> ENOSYS.
    assert_eq!(
        d("clone", [u64::from(libc::SIGCHLD as u32), 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        d("clone", [0x003d_0f00, 0, 0, 0, 0, 0]),
        ALLOW,
        "pthread_create flags"
    );
    assert_eq!(
        d("clone", [libc::CLONE_NEWNS as u64 | 17, 0, 0, 0, 0, 0]),
        errno(1)
    );
    assert_eq!(
        d("clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        errno(1)
    );
    assert_eq!(d("clone3", [0; 6]), errno(38));
    // 32-bit x86 programs work too.
    assert_eq!(decide0(&f, Arch::X86, "_llseek"), ALLOW);
    assert_eq!(decide0(&f, Arch::X86, "socketcall"), ALLOW);
    assert_eq!(decide0(&f, Arch::X86, "kexec_load"), errno(1));
    assert_eq!(decide0(&f, Arch::X32, "read"), ALLOW);
    // Unknown to the kernel's table: default action.
    assert_eq!(
        run(f.instructions(), Arch::X86_64.audit(), 1000, [0; 6]).0,
        errno(1)
    );
}

/// Compile time of the default profile. Run with
/// `cargo test --release -p hcs seccomp::tests::compile_time -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release with --nocapture"]
fn compile_time() {
    let p = default_profile();
    let t = std::time::Instant::now();
    let f = Filter::compile(&p).unwrap();
    let cold = t.elapsed();
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(Filter::compile(std::hint::black_box(&p)).unwrap());
    }
    let warm = t.elapsed() / n;
    let dir = tempfile::tempdir().unwrap();
    Filter::compile_cached(&p, dir.path()).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(Filter::compile_cached(&p, dir.path()).unwrap());
    }
    let cached = t.elapsed() / n;
    println!(
        "default profile: {} instructions; first compile (with table setup) {cold:?}, then {warm:?} per compile; cache hit {cached:?}",
        f.instructions().len()
    );
}

#[test]
fn bytes_round_trip_and_validation() {
    let f = Filter::compile_for(&default_profile(), Arch::X86_64).unwrap();
    let bytes = f.to_bytes();
    assert_eq!(bytes.len() % 8, 0);
    assert_eq!(Filter::from_bytes(&bytes).unwrap(), f);
    assert!(
        Filter::from_bytes(&bytes[..bytes.len() - 8]).is_err(),
        "truncated"
    );
    assert!(
        Filter::from_bytes(&bytes[..bytes.len() - 3]).is_err(),
        "not a multiple of 8"
    );
    assert!(Filter::from_bytes(&[]).is_err());
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(Filter::from_bytes(&flipped).is_err(), "checksum");
    // Structural checks beyond the checksum.
    let ok = |insns: &[libc::sock_filter]| bpf::validate(insns).is_ok();
    let i = bpf::insn;
    assert!(ok(&[i(RET_K, 0, 0, ALLOW)]));
    assert!(
        !ok(&[i(LD_ABS, 0, 0, 64), i(RET_K, 0, 0, 0)]),
        "load past seccomp_data"
    );
    assert!(
        !ok(&[i(JEQ_K, 1, 0, 0), i(RET_K, 0, 0, 0)]),
        "jump past the end"
    );
    assert!(!ok(&[i(JA, 0, 0, 0)]), "jump past the end");
    assert!(!ok(&[i(LD_ABS, 0, 0, 0)]), "does not end in ret");
    assert!(
        !ok(&[i(0x07, 0, 0, 0), i(RET_K, 0, 0, 0)]),
        "unexpected instruction"
    );
}

#[test]
fn cache_hits_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let p = default_profile();
    let f = super::cache::compile_cached(&p, Arch::X86_64, dir.path()).unwrap();
    let key = super::cache::key(&p, Arch::X86_64).unwrap();
    let file = super::cache::path(dir.path(), &key);
    let written = std::fs::read(&file).unwrap();
    assert_eq!(Filter::from_bytes(&written).unwrap(), f);
    // A hit returns the same filter.
    assert_eq!(
        super::cache::compile_cached(&p, Arch::X86_64, dir.path()).unwrap(),
        f
    );
    // The key depends on the architecture and the profile.
    assert_ne!(super::cache::key(&p, Arch::Aarch64).unwrap(), key);
    let mut q = p.clone();
    q.set_default_errno_ret(Some(38));
    assert_ne!(super::cache::key(&q, Arch::X86_64).unwrap(), key);
    // Corrupt and truncated files are ignored and rewritten.
    for bad in [
        written[..written.len() - 8].to_vec(),
        vec![0u8; 48],
        b"garbage".to_vec(),
    ] {
        std::fs::write(&file, &bad).unwrap();
        assert_eq!(
            super::cache::compile_cached(&p, Arch::X86_64, dir.path()).unwrap(),
            f
        );
        assert_eq!(std::fs::read(&file).unwrap(), written);
    }
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // An unwritable cache directory still compiles.
    let f2 = super::cache::compile_cached(&p, Arch::X86_64, &file.join("not-a-dir")).unwrap();
    assert_eq!(f2, f);
}
