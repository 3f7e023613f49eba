//! Capability sets: bounding, effective, permitted, inheritable, ambient — as raw bitmasks.

use super::sys;
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

/// The five sets as 64-bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(caps: &Option<Capabilities>) -> u64 {
    caps.iter()
        .flatten()
        .filter_map(|c| caps::Capability::from_str(&format!("CAP_{c}")).ok())
        .fold(0u64, |m, c| m | (1u64 << c.index()))
}

impl Sets {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Sets {
        let Some(c) = c else { return Sets::default() };
        Sets {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted: mask(c.permitted()),
            inheritable: mask(c.inheritable()),
            ambient: mask(c.ambient()),
        }
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// The calling thread's permitted set.
pub fn current_permitted() -> Result<u64, Errno> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a v3 header and room for two data structs, as the ABI requires.
    sys::check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability not in `keep` from the bounding set. Needs CAP_SETPCAP; do it before
/// the uid change.
pub fn drop_bounding(keep: u64) -> Result<(), Errno> {
    for cap in 0..=last_cap() {
        if keep & (1u64 << cap) == 0 {
            match sys::prctl(libc::PR_CAPBSET_DROP, u64::from(cap)) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable, then raises the ambient set.
pub fn apply(s: &Sets) -> Result<(), Errno> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: s.effective as u32,
            permitted: s.permitted as u32,
            inheritable: s.inheritable as u32,
        },
        CapData {
            effective: (s.effective >> 32) as u32,
            permitted: (s.permitted >> 32) as u32,
            inheritable: (s.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: capset with a v3 header and two data structs, as the ABI requires.
    sys::check(unsafe {
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr())
    })?;
    // SAFETY: prctl with integer arguments.
    sys::check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
            0u64,
            0u64,
            0u64,
        )
    } as libc::c_long)?;
    for cap in 0..64u64 {
        if s.ambient & (1 << cap) != 0 {
            // SAFETY: as above.
            sys::check(unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as u64,
                    cap,
                    0u64,
                    0u64,
                )
            } as libc::c_long)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn masks_match_kernel_numbers() {
        let set: Capabilities = [
            Capability::AuditWrite,
            Capability::Kill,
            Capability::NetBindService,
        ]
        .into_iter()
        .collect();
        let c = oci_spec::runtime::LinuxCapabilitiesBuilder::default()
            .bounding(set)
            .build()
            .unwrap();
        assert_eq!(Sets::from_spec(Some(&c)).bounding, 0x2000_0420);
    }
}
