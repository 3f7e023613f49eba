//! OCI seccomp object -> classic BPF program.
//!
//! Shape of the generated program:
//!
//! ```text
//!   ld  [arch]
//!   jeq AUDIT_ARCH(native) -> section 1      (one compare per listed audit arch, native first)
//!   jeq AUDIT_ARCH(compat) -> section 2
//!   ret BAD_ARCH                              (SECCOMP_RET_KILL_THREAD, libseccomp's default)
//! section:
//!   ld  [nr]
//!   binary search tree of `jge` over the boundaries of the intervals of syscall numbers that
//!   share one outcome (a run of consecutive allowed syscalls is one interval), whose leaves
//!   jump to a `ret` of the section's pool or to a rule block
//!   the section's `ret` pool, one per distinct return value
//!   rule blocks (syscalls with argument conditions): the syscall's rules in profile order, each
//!   a chain of 64-bit comparisons; the first rule whose conditions all hold returns its
//!   action, else the default action; each block ends with its own `ret`s
//! ```
//!
//! A Docker-sized profile (~350 allowed names, default ERRNO) becomes ~60 intervals per
//! architecture: a syscall is decided after ~8 instructions instead of a scan of 350 compares.

use super::arch::Arch;
use super::bpf::{self, Asm, Label, JEQ_K, JGE_K, JGT_K};
use super::Error;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Operator,
};
use std::collections::{BTreeMap, HashMap};

// seccomp(2) return values (linux/seccomp.h).
pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;

/// What a syscall of an architecture the filter does not cover gets: libseccomp's default
/// `SCMP_FLTATR_ACT_BADARCH` (`SCMP_ACT_KILL`, i.e. kill the thread), which runc and crun keep.
pub(crate) const RET_BAD_ARCH: u32 = RET_KILL_THREAD;

// seccomp(2) filter flags.
pub(crate) const FLAG_TSYNC: u32 = 1 << 0;
pub(crate) const FLAG_LOG: u32 = 1 << 1;
pub(crate) const FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub(crate) const FLAG_NEW_LISTENER: u32 = 1 << 3;
pub(crate) const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub(crate) const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;
pub(crate) const ALL_FLAGS: u32 = (1 << 6) - 1;

const ERRNO_DEFAULT: u32 = libc::EPERM as u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument comparison, as libseccomp defines it: unsigned 64-bit; for `MaskedEq`,
/// `(arg & a) == b` (OCI `value` is the mask, `valueTwo` the datum, as runc passes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Cond {
    index: u8,
    op: Op,
    a: u64,
    b: u64,
}

/// A rule of the profile before names are resolved: its conditions are ANDed.
struct Rule<'a> {
    entry: usize,
    names: &'a [String],
    conds: Vec<Cond>,
    ret: u32,
}

/// A rule for one syscall of one architecture, ready to emit.
type ArchRule = (Vec<Cond>, u32);

/// The compiled program and the flags for seccomp(2).
pub(crate) struct Program {
    pub(crate) insns: Vec<libc::sock_filter>,
    pub(crate) flags: u32,
}

fn invalid(field: String, reason: impl Into<String>) -> Error {
    Error::InvalidProfile {
        field,
        reason: reason.into(),
    }
}

fn action_ret(
    action: Action,
    errno: Option<u32>,
    field: impl Fn() -> String,
) -> Result<u32, Error> {
    let data = |default: u32| -> Result<u32, Error> {
        let v = errno.unwrap_or(default);
        if v > 0xffff {
            return Err(invalid(
                field(),
                format!("{v} does not fit in the 16-bit SECCOMP_RET_DATA"),
            ));
        }
        Ok(v)
    };
    Ok(match action {
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActErrno => RET_ERRNO | data(ERRNO_DEFAULT)?,
        Action::ScmpActTrace => RET_TRACE | data(ERRNO_DEFAULT)?,
        Action::ScmpActNotify => RET_USER_NOTIF,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActAllow => RET_ALLOW,
    })
}

pub(crate) fn flags_of(seccomp: &LinuxSeccomp, needs_notify: bool) -> u32 {
    let mut flags = 0;
    for f in seccomp.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    if needs_notify {
        flags |= FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC with NEW_LISTENER unless a TSYNC failure is reported as
        // ESRCH (the return value is then the listener fd, not a thread id).
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
        tracing::debug!(
            "seccomp flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no SCMP_ACT_NOTIFY rule"
        );
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }
    flags
}

/// Compiles `seccomp` for a kernel of architecture `native`.
pub(crate) fn compile(seccomp: &LinuxSeccomp, native: Arch) -> Result<Program, Error> {
    let default = action_ret(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        || "linux.seccomp.defaultErrnoRet".to_string(),
    )?;
    if default == RET_USER_NOTIF {
        return Err(invalid(
            "linux.seccomp.defaultAction".into(),
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }

    // Architectures: the native one always (libseccomp adds it on seccomp_init), then the listed
    // ones this kernel can report; others can never reach the filter.
    let mut arches = vec![native];
    for (i, a) in seccomp.architectures().iter().flatten().enumerate() {
        match Arch::from_oci(*a, native) {
            Some(arch) if native.reachable().contains(&arch) => {
                if !arches.contains(&arch) {
                    arches.push(arch);
                }
            }
            _ => tracing::debug!(
                index = i,
                arch = %a,
                native = %native,
                "seccomp architecture ignored: a {native} kernel never reports it"
            ),
        }
    }

    let rules = parse_rules(seccomp, default)?;
    let needs_notify = rules.iter().any(|r| r.ret == RET_USER_NOTIF);

    // Per architecture: (syscall number, rule index), sorted, so each syscall's rules are
    // contiguous and in profile order.
    let mut per_arch: BTreeMap<Arch, Vec<(u32, usize)>> = BTreeMap::new();
    for &arch in &arches {
        let mut pairs = Vec::with_capacity(rules.iter().map(|r| r.names.len()).sum());
        for (r, rule) in rules.iter().enumerate() {
            for name in rule.names {
                match arch.syscall(name) {
                    Some(nr) => pairs.push((nr, r)),
                    None => {
                        tracing::debug!(syscall = %name, arch = %arch, entry = rule.entry, "unknown syscall ignored");
                    }
                }
            }
        }
        pairs.sort_unstable();
        per_arch.insert(arch, pairs);
    }

    let mut asm = Asm::default();

    // Sections: one per audit arch, in order of first appearance (native first).
    let mut audits: Vec<u32> = Vec::new();
    for a in &arches {
        if !audits.contains(&a.audit()) {
            audits.push(a.audit());
        }
    }
    let mut sections = Vec::new();
    for &audit in &audits {
        // The ABIs sharing this audit arch, each owning a range of nr: all of x86_64's
        // [0, X32_SYSCALL_BIT) and x32's [X32_SYSCALL_BIT, 2^32) when the audit arch is x86_64.
        let abis: Vec<Arch> = if audit == Arch::X86_64.audit() {
            vec![Arch::X86_64, Arch::X32]
        } else {
            arches
                .iter()
                .copied()
                .filter(|a| a.audit() == audit)
                .collect()
        };
        let mut segs = Vec::new();
        for abi in abis {
            let (outside, pairs) = match per_arch.get(&abi) {
                Some(pairs) => (default, pairs.as_slice()),
                None => (RET_BAD_ARCH, &[][..]),
            };
            segs.push((abi, abi.nr_start(), outside, pairs));
        }
        sections.push((audit, segs));
    }

    // Arch dispatch; an uncovered arch falls through to the bad-arch return.
    asm.load(bpf::OFF_ARCH);
    let bad_arch = asm.label();
    let mut entries = Vec::new();
    for (i, (audit, _)) in sections.iter().enumerate() {
        let entry = asm.label();
        let next = if i + 1 == sections.len() {
            bad_arch
        } else {
            asm.label()
        };
        asm.cond(JEQ_K, *audit, entry, next);
        asm.bind(next);
        entries.push(entry);
    }
    asm.ret(RET_BAD_ARCH);

    for ((_, segs), entry) in sections.iter().zip(entries) {
        emit_section(&mut asm, &rules, segs, entry);
    }

    Ok(Program {
        insns: asm.finish()?,
        flags: flags_of(seccomp, needs_notify),
    })
}

/// An ABI's part of a section: (ABI, first nr, return for nrs without rules, sorted
/// (nr, rule index) pairs).
type Segment<'a> = (Arch, u32, u32, &'a [(u32, usize)]);

/// Emits one audit arch's section: `ld [nr]`, the search tree, the section's return pool (close
/// to the tree, so leaves rarely need long jumps), then the rule blocks, each with its own
/// returns so that a block never jumps far.
fn emit_section(asm: &mut Asm, rules: &[Rule<'_>], segs: &[Segment<'_>], entry: Label) {
    // Leaves: a return, or a rule block (deduplicated).
    let mut blocks: Vec<(Vec<ArchRule>, u32)> = Vec::new();
    let mut block_ids: HashMap<(Vec<ArchRule>, u32), usize> = HashMap::new();
    let mut intervals: Vec<(u32, Leaf)> = Vec::new();
    for (i, &(abi, start, outside, pairs)) in segs.iter().enumerate() {
        let end = segs
            .get(i + 1)
            .map_or(u64::from(u32::MAX) + 1, |s| u64::from(s.1));
        push_interval(&mut intervals, start, Leaf::Ret(outside));
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let nr = group[0].0;
            if u64::from(nr) >= end || nr < start {
                continue; // not this ABI's range (cannot happen with the kernel's tables)
            }
            let nr_rules = group.iter().map(|&(_, r)| &rules[r]);
            let leaf = match simplify(abi, nr_rules) {
                Simplified::Default => Leaf::Ret(outside),
                Simplified::Ret(v) => Leaf::Ret(v),
                Simplified::Block(rules) => {
                    let key = (rules, outside);
                    let id = match block_ids.get(&key) {
                        Some(&id) => id,
                        None => {
                            blocks.push(key.clone());
                            block_ids.insert(key, blocks.len() - 1);
                            blocks.len() - 1
                        }
                    };
                    Leaf::Block(id)
                }
            };
            push_interval(&mut intervals, nr, leaf);
            if let Some(next) = nr.checked_add(1) {
                if u64::from(next) < end {
                    push_interval(&mut intervals, next, Leaf::Ret(outside));
                }
            }
        }
    }
    let block_labels: Vec<Label> = blocks.iter().map(|_| asm.label()).collect();
    let mut pool = RetPool::default();

    asm.bind(entry);
    if let [(_, only)] = intervals.as_slice() {
        let target = leaf_label(asm, &mut pool, &block_labels, *only);
        asm.jump(target);
    } else {
        asm.load(bpf::OFF_NR);
        // Binary search over interval starts; the left child is laid out right after its
        // parent so most `jf` offsets are 0.
        let mut stack = vec![(None, 0, intervals.len())];
        while let Some((label, lo, hi)) = stack.pop() {
            if let Some(label) = label {
                asm.bind(label);
            }
            let mid = (lo + hi) / 2;
            let mut child = |asm: &mut Asm, lo: usize, hi: usize| {
                if hi - lo == 1 {
                    leaf_label(asm, &mut pool, &block_labels, intervals[lo].1)
                } else {
                    let l = asm.label();
                    stack.push((Some(l), lo, hi));
                    l
                }
            };
            let right = child(asm, mid, hi);
            let left = child(asm, lo, mid);
            asm.cond(JGE_K, intervals[mid].0, right, left);
        }
    }
    pool.emit(asm);

    for ((rules, outside), label) in blocks.iter().zip(&block_labels) {
        asm.bind(*label);
        let mut local = RetPool::default();
        for (i, (conds, ret)) in rules.iter().enumerate() {
            let matched = local.label(asm, *ret);
            let last = i + 1 == rules.len();
            let fail = if last {
                local.label(asm, *outside)
            } else {
                asm.label()
            };
            if conds.is_empty() {
                // Only the last rule can be unconditional (see `simplify`).
                asm.jump(matched);
            }
            for (j, c) in conds.iter().enumerate() {
                let last_cond = j + 1 == conds.len();
                let pass = if last_cond { matched } else { asm.label() };
                emit_cond(asm, c, pass, fail);
                if !last_cond {
                    asm.bind(pass);
                }
            }
            if !last {
                asm.bind(fail);
            }
        }
        local.emit(asm);
    }
}

fn leaf_label(asm: &mut Asm, pool: &mut RetPool, blocks: &[Label], leaf: Leaf) -> Label {
    match leaf {
        Leaf::Ret(v) => pool.label(asm, v),
        Leaf::Block(b) => blocks[b],
    }
}

/// `ret` instructions shared by the jumps of one region, emitted together, in value order.
#[derive(Default)]
struct RetPool(BTreeMap<u32, Label>);

impl RetPool {
    fn label(&mut self, asm: &mut Asm, value: u32) -> Label {
        *self.0.entry(value).or_insert_with(|| asm.label())
    }

    fn emit(self, asm: &mut Asm) {
        for (value, label) in self.0 {
            asm.bind(label);
            asm.ret(value);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    Block(usize),
}

/// Appends the interval starting at `start`, merging with the previous one when the leaf is
/// the same (a later interval at the same start replaces the earlier one).
fn push_interval(iv: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf) {
    if let Some(last) = iv.last_mut() {
        if last.0 == start {
            last.1 = leaf;
            if iv.len() >= 2 && iv[iv.len() - 2].1 == leaf {
                iv.pop();
            }
            return;
        }
        if last.1 == leaf {
            return;
        }
    }
    iv.push((start, leaf));
}

/// Marker bit in `Cond::index` (indexes are < 6): the high half of the argument is known to be
/// zero, so only the low half is compared.
const HIGH_KNOWN_ZERO: u8 = 0x80;

enum Simplified {
    /// No rule can match: the default action.
    Default,
    Ret(u32),
    Block(Vec<ArchRule>),
}

/// Resolves what can be decided at compile time for one syscall of one ABI: on 32-bit ABIs the
/// high half of every argument is 0, so a condition's high-half test is constant (the condition
/// is dropped when always true, the rule when always false); rules after the first
/// unconditional one are unreachable.
fn simplify<'r, 'a: 'r>(abi: Arch, rules: impl Iterator<Item = &'r Rule<'a>>) -> Simplified {
    let mut out: Vec<ArchRule> = Vec::new();
    for rule in rules {
        let (conds, ret) = (&rule.conds, rule.ret);
        if conds.is_empty() && out.is_empty() {
            return Simplified::Ret(ret); // the common case, without allocating
        }
        let mut kept = Vec::with_capacity(conds.len());
        let mut never = false;
        for c in conds {
            if !abi.args_are_32bit() {
                kept.push(*c);
                continue;
            }
            match high_outcome_when_zero(c) {
                Outcome::Pass => {}
                Outcome::Fail => never = true,
                Outcome::Low => kept.push(Cond {
                    index: c.index | HIGH_KNOWN_ZERO,
                    ..*c
                }),
            }
        }
        if never {
            continue;
        }
        let unconditional = kept.is_empty();
        out.push((kept, ret));
        if unconditional {
            break;
        }
    }
    match out.as_slice() {
        [] => Simplified::Default,
        [(conds, ret)] if conds.is_empty() => Simplified::Ret(*ret),
        _ => Simplified::Block(out),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    /// Decided by the low half.
    Low,
}

/// Outcomes of comparing one 32-bit half of the argument with the same half of the value, for
/// (arg > value, arg == value, arg < value). The high half decides unless equal.
fn outcomes(op: Op, high: bool) -> [Outcome; 3] {
    use Outcome::{Fail as F, Low as L, Pass as P};
    let on_equal = |low_equal| if high { L } else { low_equal };
    match op {
        Op::Eq => [F, on_equal(P), F],
        Op::Ne => [P, on_equal(F), P],
        Op::Gt => [P, on_equal(F), F],
        Op::Ge => [P, on_equal(P), F],
        Op::Lt => [F, on_equal(F), P],
        Op::Le => [F, on_equal(P), P],
        Op::MaskedEq => [F, on_equal(P), F], // not used: masked compares are emitted apart
    }
}

fn high_outcome_when_zero(c: &Cond) -> Outcome {
    let (vh, bh) = ((c.a >> 32) as u32, (c.b >> 32) as u32);
    if c.op == Op::MaskedEq {
        // (0 & mask_hi) == datum_hi
        return if bh == 0 { Outcome::Low } else { Outcome::Fail };
    }
    let [_gt, eq, lt] = outcomes(c.op, true);
    if vh == 0 {
        eq
    } else {
        lt
    }
}

fn emit_cond(asm: &mut Asm, c: &Cond, pass: Label, fail: Label) {
    let high_is_zero = c.index & HIGH_KNOWN_ZERO != 0;
    let index = c.index & !HIGH_KNOWN_ZERO;
    let (a_hi, a_lo) = ((c.a >> 32) as u32, c.a as u32);
    let (b_hi, b_lo) = ((c.b >> 32) as u32, c.b as u32);
    let target = |o: Outcome, low: Label| match o {
        Outcome::Pass => pass,
        Outcome::Fail => fail,
        Outcome::Low => low,
    };
    if c.op == Op::MaskedEq {
        if !high_is_zero && a_hi == 0 && b_hi != 0 {
            asm.jump(fail); // (hi & 0) can never equal a non-zero datum
            return;
        }
        if !high_is_zero && a_hi != 0 {
            let low = asm.label();
            asm.load(bpf::arg_offset(index, true));
            asm.and(a_hi);
            asm.cond(JEQ_K, b_hi, low, fail);
            asm.bind(low);
        }
        asm.load(bpf::arg_offset(index, false));
        asm.and(a_lo);
        asm.cond(JEQ_K, b_lo, pass, fail);
        return;
    }
    if !high_is_zero {
        let low = asm.label();
        let [g, e, l] = outcomes(c.op, true);
        asm.load(bpf::arg_offset(index, true));
        three_way(asm, a_hi, target(g, low), target(e, low), target(l, low));
        asm.bind(low);
    }
    let [g, e, l] = outcomes(c.op, false);
    asm.load(bpf::arg_offset(index, false));
    three_way(asm, a_lo, target(g, fail), target(e, fail), target(l, fail));
}

/// Branches on A compared with `k`: to `gt`, `eq` or `lt`, in one or two instructions.
fn three_way(asm: &mut Asm, k: u32, gt: Label, eq: Label, lt: Label) {
    if gt == eq && eq == lt {
        asm.jump(gt);
    } else if gt == eq {
        asm.cond(JGE_K, k, gt, lt);
    } else if eq == lt {
        asm.cond(JGT_K, k, gt, eq);
    } else if gt == lt {
        asm.cond(JEQ_K, k, eq, gt);
    } else {
        let not_gt = asm.label();
        asm.cond(JGT_K, k, gt, not_gt);
        asm.bind(not_gt);
        asm.cond(JEQ_K, k, eq, lt);
    }
}

/// Validates `syscalls[]` and turns it into rules in profile order.
///
/// - A rule whose action (with its errno) equals the default action is dropped, as runc does
///   (libseccomp refuses such rules): it can neither allow nor deny anything by itself.
/// - Conditions of one rule are ANDed; when one rule compares the same argument twice it is
///   split into one rule per condition (ORed), which is what runc does because libseccomp
///   allows one comparison per argument and rule.
fn parse_rules(seccomp: &LinuxSeccomp, default: u32) -> Result<Vec<Rule<'_>>, Error> {
    let mut rules = Vec::new();
    for (i, sc) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = |rest: &str| format!("linux.seccomp.syscalls[{i}]{rest}");
        if sc.names().is_empty() {
            return Err(invalid(field(".names"), "no syscall names"));
        }
        for (j, name) in sc.names().iter().enumerate() {
            if name.is_empty() {
                return Err(invalid(
                    field(&format!(".names[{j}]")),
                    "empty syscall name",
                ));
            }
        }
        let ret = action_ret(sc.action(), sc.errno_ret(), || field(".errnoRet"))?;
        let mut conds = Vec::new();
        for (j, arg) in sc.args().iter().flatten().enumerate() {
            let index = u8::try_from(arg.index())
                .ok()
                .filter(|i| *i < 6)
                .ok_or_else(|| {
                    invalid(
                        field(&format!(".args[{j}].index")),
                        format!("{} is not a syscall argument index (0..=5)", arg.index()),
                    )
                })?;
            let op = match arg.op() {
                Operator::ScmpCmpNe => Op::Ne,
                Operator::ScmpCmpLt => Op::Lt,
                Operator::ScmpCmpLe => Op::Le,
                Operator::ScmpCmpEq => Op::Eq,
                Operator::ScmpCmpGe => Op::Ge,
                Operator::ScmpCmpGt => Op::Gt,
                Operator::ScmpCmpMaskedEq => Op::MaskedEq,
            };
            conds.push(Cond {
                index,
                op,
                a: arg.value(),
                b: arg.value_two().unwrap_or(0),
            });
        }
        if ret == default {
            tracing::debug!(entry = i, "seccomp rule with the default action dropped");
            continue;
        }
        let mut seen = 0u8;
        let repeats = conds.iter().any(|c| {
            let bit = 1 << c.index;
            let dup = seen & bit != 0;
            seen |= bit;
            dup
        });
        if repeats {
            for c in conds {
                rules.push(Rule {
                    entry: i,
                    names: sc.names(),
                    conds: vec![c],
                    ret,
                });
            }
        } else {
            rules.push(Rule {
                entry: i,
                names: sc.names(),
                conds,
                ret,
            });
        }
    }
    Ok(rules)
}
