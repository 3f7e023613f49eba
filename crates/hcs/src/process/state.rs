//! Persisted container state: `<root>/<id>/state.json`, written atomically.
//!
//! The on-disk record holds what later commands need (init pid and its start time, bundle,
//! the spec, the cgroup); the status is *derived* each time from the live process, the exec
//! fifo and the freezer, so a crash between two commands can never leave a stale status.

use crate::cgroups;
use crate::process::sys;
use crate::{Error, Result};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks: tells our init from a recycled pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub cgroup: cgroups::Manager,
    pub spec: Spec,
    /// Whether `--systemd-cgroup`-style or other per-container options were used; kept for ps/exec.
    #[serde(default)]
    pub no_pivot: bool,
}

impl Record {
    pub fn annotations(&self) -> HashMap<String, String> {
        self.spec.annotations().clone().unwrap_or_default()
    }
}

/// Checks a container id the way runc does: letters, digits, `_+-.`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("reserved name");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits and _+-. are allowed");
    }
    Ok(())
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn load(root: &Path, id: &str) -> Result<Record> {
    validate_id(id)?;
    let path = dir(root, id).join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound { id: id.into() })
        }
        Err(e) => return Err(Error::io("read state", path, e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidConfig {
        file: path,
        field: "(state)".into(),
        reason: e.to_string(),
    })
}

pub fn save(root: &Path, rec: &Record) -> Result<()> {
    let d = dir(root, &rec.id);
    let tmp = d.join(".state.json.tmp");
    let bytes = serde_json::to_vec(rec).map_err(|e| Error::Init(format!("encode state: {e}")))?;
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("write state", &tmp, e))?;
    std::fs::rename(&tmp, d.join(STATE_FILE))
        .map_err(|e| Error::io("commit state", d.join(STATE_FILE), e))
}

/// Whether the record's init process is still the live process it was.
pub fn init_alive(rec: &Record) -> bool {
    rec.pid > 0
        && matches!(sys::proc_stat(rec.pid), Some((start, st)) if start == rec.pid_start && st != 'Z' && st != 'X')
}

pub fn status(root: &Path, rec: &Record) -> Status {
    if !init_alive(rec) {
        return Status::Stopped;
    }
    if dir(root, &rec.id).join(EXEC_FIFO).exists() {
        return Status::Created;
    }
    if rec.cgroup.is_frozen().unwrap_or(false) {
        return Status::Paused;
    }
    Status::Running
}

/// The OCI state document plus runhcs's `created` and `owner`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

pub fn oci_state(root: &Path, rec: &Record) -> OciState {
    let status = status(root, rec);
    OciState {
        oci_version: rec.spec.version().clone(),
        id: rec.id.clone(),
        status,
        pid: if status == Status::Stopped {
            0
        } else {
            rec.pid
        },
        bundle: rec.bundle.clone(),
        rootfs: rec.rootfs.clone(),
        created: rec.created.clone(),
        annotations: rec.annotations(),
        owner: rec.owner.clone(),
    }
}

/// RFC 3339 with nanoseconds in UTC, e.g. `2026-11-22T01:02:03.123456789Z`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) to nanoseconds since the epoch.
pub fn parse_rfc3339_ns(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = s.get(19..)?;
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (frac, zone) = rest.split_at(zone_at);
    let nanos = match frac {
        "" => 0,
        frac => {
            let digits = frac.strip_prefix('.')?;
            let mut n: u128 = digits.get(..digits.len().min(9))?.parse().ok()?;
            for _ in digits.len()..9 {
                n *= 10;
            }
            n
        }
    };
    let offset = match zone {
        "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let oh: i64 = z.get(1..3)?.parse().ok()?;
            let om: i64 = z.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from civil (inverse of `rfc3339`), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    u128::try_from(secs).ok().map(|s| s * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }
}
