//! Seccomp: the OCI `linux.seccomp` object compiled to a classic BPF program, in pure Rust.
//!
//! Lifecycle: the runtime calls [`Filter::compile`] (or [`Filter::compile_cached`], which keeps
//! compiled programs in a directory keyed by the profile's hash) before it forks the container's
//! init, so a bad profile is reported before anything is created. The init process then calls
//! [`Filter::install`] after `fork`, single-threaded, as the last step before `execve` (or before
//! dropping capabilities when `noNewPrivileges` is off — the caller orders that). When the profile
//! uses `SCMP_ACT_NOTIFY`, `install` returns the listener fd, which the runtime hands to the agent
//! at `listenerPath`.
//!
//! Semantics, chosen to match runc + libseccomp, which is what profiles in the wild are written
//! against:
//! - **Architectures.** The native architecture always gets the rules (libseccomp adds it on
//!   `seccomp_init`); so does every listed architecture this kernel can report (x86 and x32 on
//!   x86_64, arm on aarch64). Listed architectures it can never report are ignored. A syscall
//!   made through an ABI that is not covered (e.g. an i386 `int 0x80` when only x86_64 is
//!   listed, or an x32 syscall, which carries `__X32_SYSCALL_BIT`) gets libseccomp's bad-arch
//!   action, `SCMP_ACT_KILL` (`SECCOMP_RET_KILL_THREAD`), as under runc and crun.
//! - **Unknown names.** A syscall name the architecture does not have is skipped (logged at
//!   debug): profiles list the syscalls of many kernels and architectures. An empty name, an
//!   empty `names`, an argument index above 5 or an errno that does not fit in 16 bits is an
//!   invalid profile.
//! - **Rules.** Several rules for one syscall are tried in profile order; the first whose
//!   conditions all hold decides, else the default action applies. Rules whose action equals the
//!   default action are dropped (runc does so; libseccomp rejects them). Conditions within a
//!   rule are ANDed, except that a rule comparing the same argument twice is split into one rule
//!   per condition (ORed), as runc does.
//! - **Comparisons** are unsigned 64-bit (libseccomp's). `SCMP_CMP_MASKED_EQ` is
//!   `(arg & value) == valueTwo`. On 32-bit ABIs (x86, arm) the kernel zero-extends arguments,
//!   so the high half is taken as 0 and only the low half is compared at run time.
//! - **Actions.** `SCMP_ACT_KILL` is kill-thread; `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` take
//!   `errnoRet` (default `EPERM`, like runc). `SCMP_ACT_NOTIFY` cannot be the default action.

mod arch;
mod bpf;
mod cache;
mod compile;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // the workspace has no clippy.toml with allow-unwrap-in-tests
mod tests;

pub use arch::Arch;
pub use bpf::MAX_INSNS;

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};
use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile is wrong; `field` is its JSON path, e.g. `linux.seccomp.syscalls[3].names[0]`.
    #[error("{field}: {reason}")]
    InvalidProfile { field: String, reason: String },

    #[error("linux.seccomp: the filter needs {count} BPF instructions, more than the kernel's limit of 4096")]
    TooLarge { count: usize },

    #[error("seccomp is not supported on this machine's architecture ({0})")]
    UnsupportedArch(&'static str),

    #[error("decode compiled seccomp filter: {0}")]
    Decode(&'static str),

    #[error("install seccomp filter (seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}))")]
    Install {
        flags: u32,
        #[source]
        source: std::io::Error,
    },

    #[error("install seccomp filter with SECCOMP_FILTER_FLAG_TSYNC: thread {tid} could not be synchronized")]
    Tsync { tid: i64 },

    /// A bug in the generator, never a property of the profile.
    #[error("generate seccomp filter: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Whether the profile itself is at fault (the edges map this to "invalid argument").
    pub fn is_invalid_profile(&self) -> bool {
        matches!(self, Error::InvalidProfile { .. } | Error::TooLarge { .. })
    }
}

/// A compiled seccomp filter: the BPF program and the flags for `seccomp(2)`.
#[derive(Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    flags: u32,
}

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// Serialized form: magic (with format version), flags, instruction count, SHA-256 of the
/// flags, count and instructions, then the instructions (code u16, jt u8, jf u8, k u32; all
/// little-endian). Every part is a multiple of 8 bytes.
const MAGIC: &[u8; 8] = b"WHSCMP\x00\x01";
const HEADER_LEN: usize = 8 + 4 + 4 + 32;

impl Filter {
    /// Compiles `seccomp` for the architecture this program runs on.
    pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, Error> {
        let native = Arch::native().ok_or(Error::UnsupportedArch(std::env::consts::ARCH))?;
        Self::compile_for(seccomp, native)
    }

    /// Compiles `seccomp` for a kernel of architecture `native`.
    pub fn compile_for(seccomp: &LinuxSeccomp, native: Arch) -> Result<Filter, Error> {
        let program = compile::compile(seccomp, native)?;
        Ok(Filter {
            insns: program.insns,
            flags: program.flags,
        })
    }

    /// Like [`Filter::compile`], keeping compiled programs in `cache_dir` as `<sha256>.bpf`
    /// (key: the canonical JSON of `seccomp`, the native architecture, the format version).
    /// A cache file that fails validation is ignored and rewritten; failing to write the cache
    /// is logged and otherwise ignored.
    pub fn compile_cached(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter, Error> {
        let native = Arch::native().ok_or(Error::UnsupportedArch(std::env::consts::ARCH))?;
        cache::compile_cached(seccomp, native, cache_dir)
    }

    /// Installs the filter on the calling thread (all threads with `SECCOMP_FILTER_FLAG_TSYNC`).
    /// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN`. Returns the
    /// user-notification listener when the filter uses `SCMP_ACT_NOTIFY`.
    ///
    /// Does not allocate, so it is safe between `fork` and `execve`.
    pub fn install(&self) -> Result<Option<OwnedFd>, Error> {
        let len = u16::try_from(self.insns.len()).map_err(|_| Error::TooLarge {
            count: self.insns.len(),
        })?;
        let prog = libc::sock_fprog {
            len,
            filter: self.insns.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.insns`, `len` instructions that stay alive and unchanged
        // for the whole call; the kernel only reads (and copies) the program. The flags are
        // validated bits of seccomp(2)'s filter flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                std::ptr::from_ref(&prog),
            )
        };
        if rc < 0 {
            return Err(Error::Install {
                flags: self.flags,
                source: std::io::Error::last_os_error(),
            });
        }
        if self.needs_notify() {
            let fd = i32::try_from(rc).map_err(|_| Error::Internal("listener fd out of range"))?;
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns a
            // new file descriptor that nothing else owns (TSYNC failures come back as -ESRCH
            // because `flags_of` adds TSYNC_ESRCH).
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        if rc > 0 {
            // Without TSYNC_ESRCH, a TSYNC failure returns the id of the offending thread.
            return Err(Error::Tsync { tid: rc });
        }
        Ok(None)
    }

    /// Whether the filter uses `SCMP_ACT_NOTIFY` (and so is installed with
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER`, returning a listener fd).
    pub fn needs_notify(&self) -> bool {
        self.flags & compile::FLAG_NEW_LISTENER != 0
    }

    /// The `flags` argument of `seccomp(SECCOMP_SET_MODE_FILTER, ...)`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The BPF program.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// Serializes the filter (see [`Filter::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(8 + self.insns.len() * 8);
        body.extend_from_slice(&self.flags.to_le_bytes());
        // At most MAX_INSNS instructions: a compiled or decoded filter never has more.
        body.extend_from_slice(&(self.insns.len() as u32).to_le_bytes());
        for i in &self.insns {
            body.extend_from_slice(&i.code.to_le_bytes());
            body.push(i.jt);
            body.push(i.jf);
            body.extend_from_slice(&i.k.to_le_bytes());
        }
        let digest = Sha256::digest(&body);
        let mut out = Vec::with_capacity(HEADER_LEN + self.insns.len() * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&body[..8]);
        out.extend_from_slice(&digest);
        out.extend_from_slice(&body[8..]);
        out
    }

    /// Decodes a filter written by [`Filter::to_bytes`], checking its format, checksum, size
    /// (a multiple of 8 bytes, at most 4096 instructions), flags, and that the program only
    /// uses the instructions the compiler emits, jumps forward within bounds and ends in a
    /// return.
    pub fn from_bytes(bytes: &[u8]) -> Result<Filter, Error> {
        if bytes.len() < HEADER_LEN || !bytes.len().is_multiple_of(8) {
            return Err(Error::Decode(
                "length is not a header plus whole instructions",
            ));
        }
        if &bytes[..8] != MAGIC {
            return Err(Error::Decode("bad magic or format version"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let flags = word(8);
        let count = word(12) as usize;
        let program = &bytes[HEADER_LEN..];
        if count > MAX_INSNS || program.len() != count * 8 {
            return Err(Error::Decode("instruction count does not match the length"));
        }
        if flags & !compile::ALL_FLAGS != 0 {
            return Err(Error::Decode("unknown filter flags"));
        }
        let mut hasher = Sha256::new();
        hasher.update(&bytes[8..16]);
        hasher.update(program);
        if hasher.finalize().as_slice() != &bytes[16..48] {
            return Err(Error::Decode("checksum mismatch"));
        }
        let insns: Vec<libc::sock_filter> = program
            .chunks_exact(8)
            .map(|c| {
                bpf::insn(
                    u16::from_le_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        bpf::validate(&insns).map_err(Error::Decode)?;
        Ok(Filter { insns, flags })
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.flags == other.flags
            && self.insns.len() == other.insns.len()
            && self
                .insns
                .iter()
                .zip(&other.insns)
                .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k))
    }
}

impl Eq for Filter {}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("instructions", &self.insns.len())
            .finish()
    }
}

/// Docker's (moby's) default seccomp profile for amd64, as an OCI `linux.seccomp` object, with
/// the rules of its default capability set applied (no `CAP_SYS_ADMIN`: `clone` without
/// namespace flags, `clone3` answered with `ENOSYS` so libc falls back to `clone`).
pub fn default_profile() -> LinuxSeccomp {
    match serde_json::from_str(include_str!("default-profile.json")) {
        Ok(profile) => profile,
        // The embedded file is parsed by this module's tests.
        Err(e) => unreachable!("embedded default-profile.json does not parse: {e}"),
    }
}
