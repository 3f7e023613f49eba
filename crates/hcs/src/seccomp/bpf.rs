//! Classic BPF for seccomp: opcodes, a small assembler with labels and long-jump relaxation, and
//! a structural validator for programs read back from a cache.
//!
//! Conditional jumps in classic BPF carry 8-bit forward offsets (at most 255 instructions); only
//! `BPF_JA` has a 32-bit offset. The assembler lays the program out, and every conditional jump
//! whose target is too far gets a `BPF_JA` trampoline right after it; it repeats until no jump is
//! out of range (inserting trampolines only lengthens distances, so this terminates).

use super::Error;

// Instruction classes, sizes, modes, operations (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;

pub(crate) const LD_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
pub(crate) const AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
pub(crate) const JA: u16 = BPF_JMP | BPF_JA;
pub(crate) const JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
pub(crate) const JGT_K: u16 = BPF_JMP | BPF_JGT | BPF_K;
pub(crate) const JGE_K: u16 = BPF_JMP | BPF_JGE | BPF_K;
pub(crate) const JSET_K: u16 = BPF_JMP | BPF_JSET | BPF_K;
pub(crate) const RET_K: u16 = BPF_RET | BPF_K;

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Size of `struct seccomp_data`: nr (4), arch (4), instruction_pointer (8), args (6 * 8).
pub(crate) const SECCOMP_DATA_LEN: u32 = 64;
pub(crate) const OFF_NR: u32 = 0;
pub(crate) const OFF_ARCH: u32 = 4;

/// Offset of the low or high 32-bit half of syscall argument `index` in `seccomp_data`. The
/// kernel fills `args` as native-endian u64, and `BPF_LD|BPF_W|BPF_ABS` loads a native-endian
/// u32, so which half sits first depends on the endianness of this machine.
pub(crate) fn arg_offset(index: u8, high: bool) -> u32 {
    let base = 16 + 8 * u32::from(index);
    let high_first = cfg!(target_endian = "big");
    if high == high_first {
        base
    } else {
        base + 4
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Op {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump(Label),
    Cond {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
}

/// An assembler: instructions reference [`Label`]s, which are bound to the position of the next
/// instruction emitted. All jumps must go forward.
#[derive(Default)]
pub(crate) struct Asm {
    ops: Vec<Op>,
    /// Label -> index in `ops` of the instruction it precedes (None while unbound).
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub(crate) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    pub(crate) fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.ops.len());
    }

    pub(crate) fn load(&mut self, offset: u32) {
        self.ops.push(Op::Stmt {
            code: LD_ABS,
            k: offset,
        });
    }

    pub(crate) fn and(&mut self, mask: u32) {
        self.ops.push(Op::Stmt {
            code: AND_K,
            k: mask,
        });
    }

    pub(crate) fn ret(&mut self, value: u32) {
        self.ops.push(Op::Stmt {
            code: RET_K,
            k: value,
        });
    }

    pub(crate) fn jump(&mut self, to: Label) {
        self.ops.push(Op::Jump(to));
    }

    /// `if A <code> k goto jt else goto jf`, with `code` one of `JEQ_K`, `JGT_K`, `JGE_K`.
    pub(crate) fn cond(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.ops.push(Op::Cond { code, k, jt, jf });
    }

    /// Lays out the program, inserting `BPF_JA` trampolines for conditional jumps that do not
    /// fit in 8 bits, and encodes it.
    pub(crate) fn finish(self) -> Result<Vec<libc::sock_filter>, Error> {
        let n = self.ops.len();
        // Index in `ops` of each label's target; a label bound at the very end has index n,
        // which is not an instruction and is rejected below.
        let target = |l: Label| -> Result<usize, Error> {
            match self.labels.get(l.0).copied().flatten() {
                Some(i) if i < n => Ok(i),
                _ => Err(Error::Internal("jump to an unbound label or past the end")),
            }
        };
        // far[i] = (true-branch trampoline, false-branch trampoline).
        let mut far = vec![(false, false); n];
        let mut pos = vec![0usize; n];
        let mut total;
        loop {
            total = 0;
            for i in 0..n {
                pos[i] = total;
                total += 1 + usize::from(far[i].0) + usize::from(far[i].1);
            }
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                if let Op::Cond { jt, jf, .. } = *op {
                    for (branch, label) in [(0, jt), (1, jf)] {
                        let t = target(label)?;
                        if t <= i {
                            return Err(Error::Internal("backward jump"));
                        }
                        let dist = pos[t] - (pos[i] + 1);
                        let is_far = if branch == 0 {
                            &mut far[i].0
                        } else {
                            &mut far[i].1
                        };
                        if !*is_far && dist > usize::from(u8::MAX) {
                            *is_far = true;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }

        if total == 0 {
            return Err(Error::Internal("empty program"));
        }
        if total > MAX_INSNS {
            return Err(Error::TooLarge { count: total });
        }
        let mut out = Vec::with_capacity(total);
        for (i, op) in self.ops.iter().enumerate() {
            match *op {
                Op::Stmt { code, k } => out.push(insn(code, 0, 0, k)),
                Op::Jump(label) => {
                    let t = target(label)?;
                    if t <= i {
                        return Err(Error::Internal("backward jump"));
                    }
                    out.push(insn(JA, 0, 0, offset32(pos[t] - (pos[i] + 1))?));
                }
                Op::Cond { code, k, jt, jf } => {
                    let (tt, tf) = (pos[target(jt)?], pos[target(jf)?]);
                    let here = pos[i] + 1;
                    let (far_t, far_f) = far[i];
                    // Trampolines follow the conditional jump: first the true one, then the false.
                    let tramp_t = here;
                    let tramp_f = here + usize::from(far_t);
                    let off_t = if far_t { tramp_t - here } else { tt - here };
                    let off_f = if far_f { tramp_f - here } else { tf - here };
                    out.push(insn(code, offset8(off_t)?, offset8(off_f)?, k));
                    if far_t {
                        out.push(insn(JA, 0, 0, offset32(tt - (tramp_t + 1))?));
                    }
                    if far_f {
                        out.push(insn(JA, 0, 0, offset32(tf - (tramp_f + 1))?));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn offset8(off: usize) -> Result<u8, Error> {
    u8::try_from(off).map_err(|_| Error::Internal("conditional jump offset out of range"))
}

fn offset32(off: usize) -> Result<u32, Error> {
    u32::try_from(off).map_err(|_| Error::Internal("jump offset out of range"))
}

pub(crate) fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Checks that a program only uses the instructions this module emits, loads only aligned words
/// inside `seccomp_data`, jumps only forward and inside the program, and ends in a return — so a
/// damaged cache file can never reach the kernel as something other than what we would emit.
pub(crate) fn validate(insns: &[libc::sock_filter]) -> Result<(), &'static str> {
    if insns.is_empty() {
        return Err("empty program");
    }
    if insns.len() > MAX_INSNS {
        return Err("more than 4096 instructions");
    }
    let n = insns.len();
    for (pc, i) in insns.iter().enumerate() {
        let rest = n - pc - 1; // instructions after this one
        match i.code {
            LD_ABS => {
                if !i.k.is_multiple_of(4) || i.k >= SECCOMP_DATA_LEN || i.jt != 0 || i.jf != 0 {
                    return Err("load outside seccomp_data");
                }
            }
            AND_K | RET_K => {
                if i.jt != 0 || i.jf != 0 {
                    return Err("jump offsets on a non-jump instruction");
                }
            }
            JA => {
                if usize::try_from(i.k).map_or(true, |k| k >= rest) {
                    return Err("jump past the end");
                }
            }
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                if usize::from(i.jt) >= rest || usize::from(i.jf) >= rest {
                    return Err("jump past the end");
                }
            }
            _ => return Err("unexpected instruction"),
        }
    }
    if insns[n - 1].code != RET_K {
        return Err("program does not end in a return");
    }
    Ok(())
}
