//! The device allow-list (`linux.resources.devices`): v1 `devices.allow`/`devices.deny` writes,
//! and on cgroup2 an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE` generated here and
//! loaded with the raw `bpf(2)` syscall.
//!
//! Semantics on both versions: everything is denied unless a rule allows it, and when several
//! rules match an access the **last** one in the list decides (as in runc). An allow rule
//! matches when it grants every requested access; a deny rule matches when it forbids any of
//! them (so `deny c 1:3 w` blocks opening `/dev/null` read-write even after `allow c 1:3 rwm`).

use super::Error;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Access bits, with the kernel's `BPF_DEVCG_ACC_*` values.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

/// `BPF_DEVCG_DEV_*`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Block,
    Char,
}

/// One normalised rule of `linux.resources.devices`; `None` numbers are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    pub fn from_spec(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, Error> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::one(i, r))
            .collect()
    }

    fn one(i: usize, r: &LinuxDeviceCgroup) -> Result<Rule, Error> {
        let invalid = |field: &str, value: String, reason: &str| Error::InvalidValue {
            field: format!("linux.resources.devices[{i}].{field}"),
            value,
            reason: reason.into(),
        };
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::P => {
                return Err(invalid(
                    "type",
                    "p".into(),
                    "the device cgroup knows only a, b and c",
                ))
            }
        };
        let number = |field: &str, v: Option<i64>| match v {
            None | Some(-1) => Ok(None),
            // Linux device numbers have 12 (major) and 20 (minor) bits; anything up to i32::MAX
            // is accepted and compared exactly.
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| i32::try_from(*n).is_ok())
                .map(Some)
                .ok_or_else(|| {
                    invalid(field, n.to_string(), "not a device number (or -1 for any)")
                }),
        };
        let mut access = 0;
        let text = r.access().as_deref().unwrap_or("");
        for c in text.chars() {
            access |= match c {
                'r' => READ,
                'w' => WRITE,
                'm' => MKNOD,
                _ => {
                    return Err(invalid(
                        "access",
                        text.into(),
                        "only r, w and m are allowed",
                    ))
                }
            };
        }
        Ok(Rule {
            allow: r.allow(),
            kind,
            major: number("major", r.major())?,
            minor: number("minor", r.minor())?,
            // Omitted access means all of them (runc).
            access: if access == 0 { ALL_ACCESS } else { access },
        })
    }

    /// `a *:* rwm`: matches everything, so it resets whatever came before.
    fn is_total(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ALL_ACCESS
    }
}

/// The v1 writes for `rules`: `(file, line)` pairs, starting with a default-deny `a` unless the
/// list resets the default itself. Rules before the last total `a *:* rwm` rule are dropped
/// (that write would discard them anyway).
pub fn render_v1(rules: &[Rule]) -> Vec<(&'static str, String)> {
    let start = rules.iter().rposition(Rule::is_total);
    let mut out = Vec::with_capacity(rules.len() + 1);
    let rest = match start {
        Some(i) => {
            out.push((file(rules[i].allow), "a".to_string()));
            &rules[i + 1..]
        }
        None => {
            out.push(("devices.deny", "a".to_string()));
            rules
        }
    };
    for r in rest {
        // v1 treats any `a` line as "everything", whatever its numbers and access: spell out
        // partial `a` rules per type so they mean what they say.
        let kinds: &[char] = match r.kind {
            Kind::All => &['c', 'b'],
            Kind::Char => &['c'],
            Kind::Block => &['b'],
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if r.access & bit != 0 {
                access.push(c);
            }
        }
        for t in kinds {
            out.push((
                file(r.allow),
                format!("{t} {}:{} {access}", num(r.major), num(r.minor)),
            ));
        }
    }
    out
}

fn file(allow: bool) -> &'static str {
    if allow {
        "devices.allow"
    } else {
        "devices.deny"
    }
}

/// Writes the rules to a v1 devices cgroup, one write per rule on one open file each.
pub(super) fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<(), Error> {
    let mut allow: Option<std::fs::File> = None;
    let mut deny: Option<std::fs::File> = None;
    for (name, line) in render_v1(rules) {
        let path = dir.join(name);
        let slot = if name == "devices.allow" {
            &mut allow
        } else {
            &mut deny
        };
        let result = match slot {
            Some(f) => f.write_all(line.as_bytes()),
            None => std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| slot.insert(f).write_all(line.as_bytes())),
        };
        result.map_err(|source| Error::WriteFile {
            path,
            value: line,
            source,
        })?;
    }
    Ok(())
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst register in the low nibble, src register in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes used by the generator (and understood by the test interpreter).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst = (u32)(dst & imm)
const ALU32_RSH_K: u8 = 0x74; // dst = (u32)(dst >> imm)
const MOV64_X: u8 = 0xbf; // dst = src
const MOV64_K: u8 = 0xb7; // dst = imm
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const EXIT: u8 = 0x95; // return r0

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// A generated device-cgroup program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFilter {
    pub insns: Vec<Insn>,
}

impl DeviceFilter {
    /// Compiles `rules`: r2 = type, r3 = access, r4 = major, r5 = minor; then one block per rule
    /// from the last to the first, each returning its verdict when it matches and jumping to the
    /// next block otherwise; finally deny.
    pub fn new(rules: &[Rule]) -> DeviceFilter {
        let mut p = vec![
            insn(LDX_MEM_W, 2, 1, 0, 0),
            insn(ALU32_AND_K, 2, 0, 0, 0xffff),
            insn(LDX_MEM_W, 3, 1, 0, 0),
            insn(ALU32_RSH_K, 3, 0, 0, 16),
            insn(LDX_MEM_W, 4, 1, 4, 0),
            insn(LDX_MEM_W, 5, 1, 8, 0),
        ];
        for rule in rules.iter().rev() {
            // Conditional jumps, each to the end of this block (patched below).
            let mut block: Vec<Insn> = Vec::new();
            match rule.kind {
                Kind::All => {}
                Kind::Block => block.push(insn(JNE_K, 2, 0, 0, DEV_BLOCK)),
                Kind::Char => block.push(insn(JNE_K, 2, 0, 0, DEV_CHAR)),
            }
            if rule.access != ALL_ACCESS {
                block.push(insn(MOV64_X, 1, 3, 0, 0));
                if rule.allow {
                    // Skip unless every requested bit is granted: (access & ~rule) == 0.
                    block.push(insn(
                        ALU32_AND_K,
                        1,
                        0,
                        0,
                        i32::from(!rule.access & ALL_ACCESS),
                    ));
                    block.push(insn(JNE_K, 1, 0, 0, 0));
                } else {
                    // Skip unless some requested bit is forbidden: (access & rule) != 0.
                    block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(rule.access)));
                    block.push(insn(JEQ_K, 1, 0, 0, 0));
                }
            }
            // The registers hold zero-extended u32s and imm is sign-extended: `from_spec` keeps
            // numbers below 2^31 so the comparison is exact.
            if let Some(major) = rule.major {
                block.push(insn(JNE_K, 4, 0, 0, major as i32));
            }
            if let Some(minor) = rule.minor {
                block.push(insn(JNE_K, 5, 0, 0, minor as i32));
            }
            let verdict = [
                insn(MOV64_K, 0, 0, 0, i32::from(rule.allow)),
                insn(EXIT, 0, 0, 0, 0),
            ];
            let len = block.len() + verdict.len();
            for (i, ins) in block.iter_mut().enumerate() {
                if matches!(ins.code, JNE_K | JEQ_K) {
                    // Target = first instruction after this block.
                    ins.off = (len - i - 1) as i16;
                }
            }
            let unconditional = block.is_empty();
            p.extend(block);
            p.extend(verdict);
            if unconditional {
                // This rule matches everything: earlier rules can never be reached.
                return DeviceFilter { insns: p };
            }
        }
        p.push(insn(MOV64_K, 0, 0, 0, 0));
        p.push(insn(EXIT, 0, 0, 0, 0));
        DeviceFilter { insns: p }
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` prefix of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` prefix of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The `BPF_PROG_QUERY` prefix of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

/// `bpf(cmd, attr, sizeof attr)`, returning the non-negative result.
///
/// # Safety
/// `attr` must be the `union bpf_attr` prefix that `cmd` expects, and any pointers in it must
/// be valid for the kernel to read (or write, for output buffers) for the call's duration.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: the caller guarantees `attr` matches `cmd`; the size passed is its exact size, and
    // the kernel zero-checks nothing beyond it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of a file descriptor the kernel just returned.
fn owned_fd(fd: i64) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful bpf(2) call that creates a descriptor, so
    // it is open and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads `filter` and attaches it to the cgroup2 directory `cgroup` (with `BPF_F_ALLOW_MULTI`),
/// then detaches device programs that were attached there before, so a new rule list replaces
/// the old one without a window where no filter is in place.
pub fn attach_device_filter(cgroup: &Path, filter: &DeviceFilter) -> Result<(), Error> {
    let bpf_err = |step: &'static str| {
        move |source| Error::Bpf {
            step,
            path: cgroup.into(),
            source,
        }
    };
    let dir = std::fs::File::open(cgroup).map_err(bpf_err("open cgroup"))?;
    let target = dir.as_raw_fd() as u32;

    let mut old_ids = [0u32; 64];
    let mut query = QueryAttr {
        target_fd: target,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: old_ids.as_mut_ptr() as u64,
        prog_cnt: old_ids.len() as u32,
        ..QueryAttr::default()
    };
    // SAFETY: QueryAttr is the BPF_PROG_QUERY layout; `prog_ids` points to `prog_cnt` writable
    // u32s that outlive the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut query) }.map_err(bpf_err("query attached programs"))?;
    let old = &old_ids[..(query.prog_cnt as usize).min(old_ids.len())];

    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"wharf_devs");
    let mut load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: filter.insns.len() as u32,
        insns: filter.insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    // SAFETY: ProgLoadAttr is the BPF_PROG_LOAD layout; `insns` points to `insn_cnt` `Insn`s
    // (repr(C), the kernel's struct bpf_insn) and `license` to a NUL-terminated string, both
    // alive for the call; no log buffer is passed (log_level 0).
    let prog = unsafe { bpf(BPF_PROG_LOAD, &mut load) }.map_err(bpf_err("load program"))?;
    let prog = owned_fd(prog);

    let mut attach = AttachAttr {
        target_fd: target,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: AttachAttr is the BPF_PROG_ATTACH layout and holds only descriptors.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attach) }.map_err(bpf_err("attach program"))?;

    for &id in old {
        let mut by_id = [id, 0, 0];
        // SAFETY: three u32s are the BPF_PROG_GET_FD_BY_ID layout (prog_id, next_id, open_flags).
        let fd = match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) } {
            Ok(fd) => owned_fd(fd),
            // Detached meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("open previous program")(e)),
        };
        let mut detach = AttachAttr {
            target_fd: target,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        // SAFETY: AttachAttr is the BPF_PROG_DETACH layout and holds only descriptors.
        unsafe { bpf(BPF_PROG_DETACH, &mut detach) }.map_err(bpf_err("detach previous program"))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
