//! `modify(ModifySettingRequest)` for a process-isolated system: the HCS resource paths that
//! mean something on this kernel, turned into cgroup updates.
//!
//! - `Container/Memory/SizeInMB` (settings: a number of MiB, or `{"SizeInMB": n}`) → memory limit.
//! - `Container/Processor` (settings: `Processor` with one of `Count`, `Maximum`, `Weight`) →
//!   CFS quota over a 100 ms period (`Count` CPUs, or `Maximum`/10000 of the host's CPUs) or
//!   CPU shares (v1) / `cpu.weight` (v2, where `Weight` lands exactly).

use crate::schema::{resource_paths, Memory, ModifySettingRequest, Processor, RequestType};
use crate::{Error, Result};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

const PERIOD_US: u64 = 100_000;
const MIB: i64 = 1 << 20;

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The cgroup resources a modify request asks for.
pub(super) fn resources(req: &ModifySettingRequest, host_cpus: u64) -> Result<LinuxResources> {
    req.validate().map_err(|e| invalid(&e.field, e.reason))?;
    if req.guest_request.is_some() {
        return Err(Error::Unsupported {
            what: "GuestRequest".into(),
            why: "a process-isolated system has no guest; guest requests go to a utility VM".into(),
        });
    }
    let path = req.resource_path.as_deref().unwrap_or_default();
    if req.request_type != Some(RequestType::Update) {
        return Err(invalid(
            "RequestType",
            format!("{path} can only be updated (RequestType \"Update\")"),
        ));
    }
    let mut res = LinuxResources::default();
    match path {
        resource_paths::CONTAINER_MEMORY_SIZE_IN_MB => {
            let mb = match &req.settings {
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                Some(_) => {
                    req.settings_as::<Memory>()
                        .map_err(|e| invalid(&e.field, e.reason))?
                        .size_in_mb
                }
                None => None,
            }
            .ok_or_else(|| invalid("Settings", "must be a memory size in MiB"))?;
            if mb == 0 {
                return Err(invalid(
                    "Settings",
                    "a memory limit of 0 MiB is not allowed",
                ));
            }
            let bytes = i64::try_from(mb)
                .ok()
                .and_then(|m| m.checked_mul(MIB))
                .ok_or_else(|| invalid("Settings", format!("{mb} MiB is too large")))?;
            let mut mem = LinuxMemory::default();
            mem.set_limit(Some(bytes));
            res.set_memory(Some(mem));
        }
        resource_paths::CONTAINER_PROCESSOR => {
            let p: Processor = req.settings_as().map_err(|e| invalid(&e.field, e.reason))?;
            res.set_cpu(Some(cpu(&p, host_cpus)?));
        }
        other => {
            return Err(Error::Unsupported {
                what: format!("ResourcePath {other:?}"),
                why: "a process-isolated Linux container can update Container/Memory/SizeInMB \
                      and Container/Processor"
                    .into(),
            })
        }
    }
    Ok(res)
}

fn cpu(p: &Processor, host_cpus: u64) -> Result<LinuxCpu> {
    let mut cpu = LinuxCpu::default();
    match p.limits_set().as_slice() {
        [] => return Err(invalid("Settings", "set one of Count, Maximum or Weight")),
        [_] => {}
        [first, second, ..] => {
            return Err(invalid(
                &format!("Settings.{second}"),
                format!(
                    "conflicts with Settings.{first}: set only one of Count, Maximum or Weight"
                ),
            ))
        }
    }
    let host = host_cpus.max(1);
    if let Some(count) = p.count {
        if count < 1 {
            return Err(invalid("Settings.Count", "must be at least 1"));
        }
        // As hcsshim does, more processors than the host has means all of them.
        let n = (count as u64).min(host);
        cpu.set_quota(Some((n * PERIOD_US) as i64));
        cpu.set_period(Some(PERIOD_US));
    }
    if let Some(max) = p.maximum {
        if !(1..=10_000).contains(&max) {
            return Err(invalid("Settings.Maximum", "must be in 1..=10000"));
        }
        let quota = (max as u64 * host * PERIOD_US / 10_000).max(1_000);
        cpu.set_quota(Some(quota as i64));
        cpu.set_period(Some(PERIOD_US));
    }
    if let Some(w) = p.weight {
        if !(1..=10_000).contains(&w) {
            return Err(invalid("Settings.Weight", "must be in 1..=10000"));
        }
        cpu.set_shares(Some(weight_to_shares(w as u64)));
    }
    Ok(cpu)
}

/// The smallest CPU shares value whose v2 weight (runc's conversion) is `w`.
fn weight_to_shares(w: u64) -> u64 {
    2 + ((w - 1) * 262_142).div_ceil(9_999)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cgroups::v2::shares_to_weight;

    fn req(path: &str, settings: serde_json::Value) -> ModifySettingRequest {
        ModifySettingRequest {
            resource_path: Some(path.into()),
            request_type: Some(RequestType::Update),
            settings: Some(settings),
            guest_request: None,
        }
    }

    #[test]
    fn memory_in_mib() {
        for s in [
            serde_json::json!(256),
            serde_json::json!({ "SizeInMB": 256 }),
        ] {
            let r = resources(&req("Container/Memory/SizeInMB", s), 2).unwrap();
            assert_eq!(r.memory().as_ref().unwrap().limit(), Some(256 * MIB));
        }
        let e =
            resources(&req("Container/Memory/SizeInMB", serde_json::json!("x")), 2).unwrap_err();
        assert!(e.to_string().starts_with("Settings"), "{e}");
    }

    #[test]
    fn processor_limits() {
        let r = resources(
            &req("Container/Processor", serde_json::json!({ "Count": 1 })),
            2,
        )
        .unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(100_000));
        let r = resources(
            &req("Container/Processor", serde_json::json!({ "Count": 64 })),
            2,
        )
        .unwrap();
        assert_eq!(
            r.cpu().as_ref().unwrap().quota(),
            Some(200_000),
            "clamped to the host"
        );
        let r = resources(
            &req(
                "Container/Processor",
                serde_json::json!({ "Maximum": 2500 }),
            ),
            2,
        )
        .unwrap();
        assert_eq!(
            r.cpu().as_ref().unwrap().quota(),
            Some(50_000),
            "a quarter of 2 CPUs"
        );
        let e = resources(
            &req(
                "Container/Processor",
                serde_json::json!({ "Count": 1, "Weight": 5 }),
            ),
            2,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("Settings.Weight: conflicts"),
            "{e}"
        );
        let e = resources(
            &req("Container/Processor", serde_json::json!({ "Maximum": 0 })),
            2,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("Settings.Maximum"), "{e}");
    }

    #[test]
    fn weight_is_exact_on_v2() {
        for w in [1, 2, 39, 100, 5000, 9999, 10_000] {
            assert_eq!(shares_to_weight(weight_to_shares(w)), w, "weight {w}");
        }
    }

    #[test]
    fn other_paths_and_types_are_refused() {
        let e = resources(
            &req("Container/MappedDirectories", serde_json::json!({})),
            2,
        )
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unsupported);
        let mut r = req("Container/Processor", serde_json::json!({ "Count": 1 }));
        r.request_type = Some(RequestType::Add);
        assert!(resources(&r, 2)
            .unwrap_err()
            .to_string()
            .starts_with("RequestType"));
    }
}
