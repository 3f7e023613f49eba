use super::*;
use oci_spec::runtime::LinuxDeviceCgroupBuilder;

/// Runs `prog` the way the kernel runs a device program: r1 points to
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` with
/// `access_type = access << 16 | type`; returns r0. Panics on anything the generator should
/// never emit (unknown opcode, out-of-bounds jump or load, backward jump).
fn run(prog: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
    const CTX: u64 = 0x1000;
    let ctx = [(u32::from(access) << 16) | kind as u32, major, minor];
    let mut r = [0u64; 11];
    r[1] = CTX;
    let mut pc = 0usize;
    for _ in 0..4096 {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        let imm = i64::from(i.imm) as u64;
        pc += 1;
        match i.code {
            LDX_MEM_W => {
                let addr = r[src].wrapping_add(i.off as u64).wrapping_sub(CTX);
                assert!(addr % 4 == 0 && addr < 12, "load outside ctx at {}", pc - 1);
                r[dst] = u64::from(ctx[addr as usize / 4]);
            }
            ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
            ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = imm,
            JNE_K | JEQ_K => {
                assert!(i.off >= 0, "backward jump");
                if (r[dst] != imm) == (i.code == JNE_K) {
                    pc += i.off as usize;
                }
            }
            EXIT => return r[0],
            code => panic!("unexpected opcode {code:#x}"),
        }
        assert!(pc < prog.len(), "fell off the program");
    }
    panic!("no exit");
}

/// The semantics the module documents, evaluated directly.
fn reference(rules: &[Rule], kind: Kind, access: u8, major: u32, minor: u32) -> bool {
    for r in rules.iter().rev() {
        let kind_ok = r.kind == Kind::All || r.kind == kind;
        let nums_ok = r.major.is_none_or(|m| m == major) && r.minor.is_none_or(|m| m == minor);
        let access_ok = if r.allow {
            access & !r.access == 0
        } else {
            access & r.access != 0
        };
        if kind_ok && nums_ok && access_ok {
            return r.allow;
        }
    }
    false
}

fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: &str) -> Rule {
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => READ,
            'w' => WRITE,
            _ => MKNOD,
        };
    }
    Rule {
        allow,
        kind,
        major,
        minor,
        access: bits,
    }
}

fn allows(rules: &[Rule], kind: Kind, access: &str, major: u32, minor: u32) -> bool {
    let prog = DeviceFilter::new(rules).insns;
    let a = rule(true, kind, None, None, access).access;
    let t = if kind == Kind::Block {
        DEV_BLOCK
    } else {
        DEV_CHAR
    };
    let verdict = run(&prog, t, a, major, minor);
    assert!(verdict <= 1);
    assert_eq!(
        verdict == 1,
        reference(rules, kind, a, major, minor),
        "interpreter vs reference"
    );
    verdict == 1
}

/// What Docker/containerd put in a default spec (minus a few).
fn docker_default() -> Vec<Rule> {
    use Kind::*;
    vec![
        rule(false, All, None, None, "rwm"),
        rule(true, Char, None, None, "m"),
        rule(true, Block, None, None, "m"),
        rule(true, Char, Some(1), Some(3), "rwm"),
        rule(true, Char, Some(1), Some(5), "rwm"),
        rule(true, Char, Some(5), Some(0), "rwm"),
        rule(true, Char, Some(136), None, "rwm"),
        rule(false, Char, Some(10), Some(200), "rwm"),
    ]
}

#[test]
fn default_deny_and_docker_defaults() {
    let rules = docker_default();
    assert!(allows(&rules, Kind::Char, "rw", 1, 3));
    assert!(allows(&rules, Kind::Char, "r", 136, 7));
    assert!(allows(&rules, Kind::Block, "m", 8, 0));
    assert!(!allows(&rules, Kind::Block, "r", 8, 0));
    assert!(!allows(&rules, Kind::Char, "rw", 10, 200));
    assert!(!allows(&rules, Kind::Char, "rw", 1, 4));
    assert!(
        !allows(&[], Kind::Char, "r", 1, 3),
        "no rules: deny everything"
    );
}

#[test]
fn last_matching_rule_wins() {
    use Kind::*;
    let allow_then_deny = [
        rule(true, Char, Some(1), Some(3), "rwm"),
        rule(false, Char, Some(1), Some(3), "w"),
    ];
    assert!(allows(&allow_then_deny, Char, "r", 1, 3));
    assert!(
        !allows(&allow_then_deny, Char, "rw", 1, 3),
        "deny matches any forbidden bit"
    );
    assert!(!allows(&allow_then_deny, Char, "w", 1, 3));
    let deny_then_allow = [allow_then_deny[1], allow_then_deny[0]];
    assert!(allows(&deny_then_allow, Char, "rw", 1, 3));
    // A partial allow grants only what it names.
    let partial = [rule(true, Char, Some(1), Some(3), "r")];
    assert!(allows(&partial, Char, "r", 1, 3));
    assert!(!allows(&partial, Char, "rw", 1, 3));
    assert!(!allows(&partial, Char, "m", 1, 3));
    // `a` with numbers covers both types.
    let any_type = [rule(true, All, Some(7), None, "rwm")];
    assert!(allows(&any_type, Block, "r", 7, 1));
    assert!(allows(&any_type, Char, "r", 7, 9));
    assert!(!allows(&any_type, Char, "r", 8, 1));
}

#[test]
fn total_rule_cuts_the_program_short() {
    use Kind::*;
    let mut rules = docker_default();
    rules.push(rule(true, All, None, None, "rwm"));
    let prog = DeviceFilter::new(&rules).insns;
    // 6 loads + "r0 = 1; exit".
    assert_eq!(prog.len(), 8);
    assert!(allows(&rules, Block, "rwm", 8, 0));
    let deny_all_last = [
        rule(true, Char, Some(1), Some(3), "rwm"),
        rule(false, All, None, None, "rwm"),
    ];
    assert!(!allows(&deny_all_last, Char, "r", 1, 3));
}

#[test]
fn generator_agrees_with_reference_on_random_rule_lists() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let kinds = [Kind::All, Kind::Block, Kind::Char];
    for _ in 0..300 {
        let rules: Vec<Rule> = (0..next(6))
            .map(|_| Rule {
                allow: next(2) == 1,
                kind: kinds[next(3) as usize],
                major: [None, Some(1), Some(2)][next(3) as usize],
                minor: [None, Some(3), Some(4)][next(3) as usize],
                access: 1 + next(7) as u8,
            })
            .collect();
        let prog = DeviceFilter::new(&rules).insns;
        for kind in [Kind::Block, Kind::Char] {
            for access in 1..=7u8 {
                for major in 1..=2 {
                    for minor in 3..=4 {
                        let t = if kind == Kind::Block {
                            DEV_BLOCK
                        } else {
                            DEV_CHAR
                        };
                        let got = run(&prog, t, access, major, minor) == 1;
                        let want = reference(&rules, kind, access, major, minor);
                        assert_eq!(got, want, "{rules:?} {kind:?} {access} {major}:{minor}");
                    }
                }
            }
        }
    }
}

#[test]
fn v1_rendering() {
    use Kind::*;
    let lines = render_v1(&docker_default());
    let expect = [
        ("devices.deny", "a"),
        ("devices.allow", "c *:* m"),
        ("devices.allow", "b *:* m"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.allow", "c 1:5 rwm"),
        ("devices.allow", "c 5:0 rwm"),
        ("devices.allow", "c 136:* rwm"),
        ("devices.deny", "c 10:200 rwm"),
    ];
    let got: Vec<(&str, &str)> = lines.iter().map(|(f, l)| (*f, l.as_str())).collect();
    assert_eq!(got, expect);
    // No total rule: default deny is written first; partial `a` rules are spelled out per type.
    let lines = render_v1(&[rule(true, All, Some(7), None, "r")]);
    let got: Vec<(&str, &str)> = lines.iter().map(|(f, l)| (*f, l.as_str())).collect();
    assert_eq!(
        got,
        [
            ("devices.deny", "a"),
            ("devices.allow", "c 7:* r"),
            ("devices.allow", "b 7:* r")
        ]
    );
    // Everything before the last total rule is moot.
    let lines = render_v1(&[
        rule(true, Char, Some(1), Some(3), "rwm"),
        rule(true, All, None, None, "rwm"),
    ]);
    assert_eq!(lines, [("devices.allow", "a".to_string())]);
}

#[test]
fn rules_from_spec() {
    let spec = |f: fn(LinuxDeviceCgroupBuilder) -> LinuxDeviceCgroupBuilder| {
        Rule::from_spec(&[f(LinuxDeviceCgroupBuilder::default()).build().unwrap()])
    };
    let r = spec(|b| b.allow(true).typ(LinuxDeviceType::C).major(1).minor(-1)).unwrap();
    assert_eq!(
        r,
        [Rule {
            allow: true,
            kind: Kind::Char,
            major: Some(1),
            minor: None,
            access: ALL_ACCESS
        }]
    );
    let r = spec(|b| b.allow(false).access("rw")).unwrap();
    assert_eq!(r[0].kind, Kind::All);
    assert_eq!(r[0].access, READ | WRITE);
    let e = spec(|b| b.access("rx")).unwrap_err().to_string();
    assert!(e.contains("linux.resources.devices[0].access"), "{e}");
    let e = spec(|b| b.typ(LinuxDeviceType::P)).unwrap_err().to_string();
    assert!(e.contains("devices[0].type"), "{e}");
    let e = spec(|b| b.major(1i64 << 40)).unwrap_err().to_string();
    assert!(e.contains("devices[0].major"), "{e}");
    assert!(spec(|b| b.minor(-2)).is_err());
}
