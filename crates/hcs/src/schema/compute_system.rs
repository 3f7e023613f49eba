//! `ComputeSystem`: the document that creates a compute system. hcsshim
//! `internal/hcs/schema2/compute_system.go`, plus the LCOW hosted-system document of
//! `internal/hcsoci/hcsdoc_lcow.go`.

use super::container::Container;
use super::virtual_machine::VirtualMachine;
use super::{SchemaError, Version};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

/// A create document. It has exactly one of three shapes (see [`SystemKind`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComputeSystem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<Version>,
    /// The utility VM that hosts [`ComputeSystem::hosted_system`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosting_system_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosted_system: Option<HostedSystem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_machine: Option<VirtualMachine>,
    /// Terminate the system when the last handle to it is closed (the shim dies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub should_terminate_on_last_handle_closed: Option<bool>,
}

/// Which backend a [`ComputeSystem`] document asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemKind {
    /// Process isolation on this kernel: a `Container` (silo) document, or a Linux container
    /// given as `HostedSystem.OciSpecification` *without* a `HostingSystemId` (the host itself is
    /// the hosting system, exactly as the guest agent receives the document inside a utility VM).
    Container,
    /// `VirtualMachine`: a utility VM.
    VirtualMachine,
    /// `HostingSystemId` + `HostedSystem`: a container inside a running utility VM.
    HostedInVm,
}

/// The document of a container that runs inside a utility VM. For a Linux container
/// (`OciSpecification` set) the guest agent runs the OCI bundle at `OciBundlePath`; for a Windows
/// one (`Container` set) the guest's HCS creates a silo from the inner [`Container`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostedSystem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<Version>,
    /// The bundle directory in the guest (`/run/gcs/c/<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci_bundle_path: Option<String>,
    /// The OCI runtime spec, trimmed for the guest. A missing `process.user` / `process.cwd` reads
    /// as Go's zero value, as hcsshim's does.
    #[serde(
        default,
        deserialize_with = "super::oci::spec",
        skip_serializing_if = "Option::is_none"
    )]
    pub oci_specification: Option<Spec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scratch_dir_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

impl ComputeSystem {
    /// Which of the three shapes this document is; an error names the field that is missing or
    /// conflicting when the document is none or more than one of them.
    pub fn kind(&self) -> Result<SystemKind, SchemaError> {
        if self.hosting_system_id.is_none()
            && self.container.is_none()
            && self.virtual_machine.is_none()
            && self
                .hosted_system
                .as_ref()
                .is_some_and(|h| h.oci_specification.is_some())
        {
            return Ok(SystemKind::Container);
        }
        let hosted = self.hosted_system.is_some() || self.hosting_system_id.is_some();
        let present: Vec<(&str, SystemKind)> = [
            ("Container", self.container.is_some(), SystemKind::Container),
            (
                "VirtualMachine",
                self.virtual_machine.is_some(),
                SystemKind::VirtualMachine,
            ),
            ("HostedSystem", hosted, SystemKind::HostedInVm),
        ]
        .into_iter()
        .filter_map(|(name, set, kind)| set.then_some((name, kind)))
        .collect();

        match present.as_slice() {
            [] => Err(SchemaError::new(
                "Container",
                "a compute system document must set one of Container, VirtualMachine or \
                 HostingSystemId+HostedSystem",
            )),
            [(_, kind)] => Ok(*kind),
            [(first, _), (second, _), ..] => Err(SchemaError::new(
                *second,
                format!("conflicts with {first}: set only one of Container, VirtualMachine or HostedSystem"),
            )),
        }
    }

    /// Checks what a backend relies on before it looks at the document: the schema version, one
    /// shape ([`ComputeSystem::kind`]), a hosting system for a hosted document, and at most one
    /// processor limit.
    pub fn validate(&self) -> Result<SystemKind, SchemaError> {
        match self.schema_version {
            None => return Err(SchemaError::new("SchemaVersion", "is required")),
            Some(v) if !v.is_v2() => {
                return Err(SchemaError::new(
                    "SchemaVersion",
                    format!("{v} is not a v2 schema version"),
                ))
            }
            Some(_) => {}
        }
        let kind = self.kind()?;
        match kind {
            SystemKind::Container => {
                if let Some(container) = &self.container {
                    validate_container(container, "Container")?;
                }
                if let Some(hosted) = &self.hosted_system {
                    if hosted.container.is_some() {
                        return Err(SchemaError::new(
                            "HostedSystem.Container",
                            "conflicts with HostedSystem.OciSpecification",
                        ));
                    }
                    if hosted.oci_bundle_path.as_deref().unwrap_or("").is_empty() {
                        return Err(SchemaError::new(
                            "HostedSystem.OciBundlePath",
                            "is required with HostedSystem.OciSpecification",
                        ));
                    }
                }
            }
            SystemKind::VirtualMachine => {}
            SystemKind::HostedInVm => {
                match self.hosting_system_id.as_deref() {
                    None => {
                        return Err(SchemaError::new(
                            "HostingSystemId",
                            "is required with HostedSystem",
                        ))
                    }
                    Some("") => {
                        return Err(SchemaError::new("HostingSystemId", "must not be empty"))
                    }
                    Some(_) => {}
                }
                let Some(hosted) = &self.hosted_system else {
                    return Err(SchemaError::new(
                        "HostedSystem",
                        "is required with HostingSystemId",
                    ));
                };
                match (&hosted.oci_specification, &hosted.container) {
                    (None, None) => {
                        return Err(SchemaError::new(
                            "HostedSystem.OciSpecification",
                            "a hosted system needs an OciSpecification (Linux) or a Container (Windows)",
                        ))
                    }
                    (Some(_), Some(_)) => {
                        return Err(SchemaError::new(
                            "HostedSystem.Container",
                            "conflicts with HostedSystem.OciSpecification",
                        ))
                    }
                    (None, Some(container)) => validate_container(container, "HostedSystem.Container")?,
                    (Some(_), None) => {}
                }
            }
        }
        Ok(kind)
    }
}

fn validate_container(container: &Container, at: &str) -> Result<(), SchemaError> {
    if let Some(processor) = &container.processor {
        if let [first, second, ..] = processor.limits_set().as_slice() {
            return Err(SchemaError::new(
                format!("{at}.Processor.{second}"),
                format!("conflicts with {at}.Processor.{first}: set only one of Count, Maximum or Weight"),
            ));
        }
        if let Some(max) = processor.maximum {
            if !(1..=10000).contains(&max) {
                return Err(SchemaError::new(
                    format!("{at}.Processor.Maximum"),
                    "must be in 1..=10000",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::*;
    use crate::schema::Processor;
    use serde_json::Value;

    #[test]
    fn windows_container_example() {
        let doc: ComputeSystem = assert_round_trip(EXAMPLE_WINDOWS_CONTAINER);
        assert_eq!(doc.validate().unwrap(), SystemKind::Container);
        assert_eq!(doc.schema_version, Some(Version::V2_1));
        let c = doc.container.unwrap();
        assert_eq!(c.guest_os.unwrap().host_name.as_deref(), Some("web-1"));
        let storage = c.storage.unwrap();
        assert_eq!(storage.layers.as_ref().map(Vec::len), Some(2));
        assert_eq!(storage.qos.unwrap().bandwidth_maximum, Some(10_485_760));
        assert_eq!(c.memory.unwrap().size_in_mb, Some(512));
        assert_eq!(
            c.networking.unwrap().dns_search_list.as_deref(),
            Some("svc.local")
        );
    }

    #[test]
    fn lcow_uvm_example() {
        let doc: ComputeSystem = assert_round_trip(EXAMPLE_LCOW_UVM);
        assert_eq!(doc.validate().unwrap(), SystemKind::VirtualMachine);
        let vm = doc.virtual_machine.unwrap();
        assert_eq!(vm.stop_on_reset, Some(true));
        let direct = vm.chipset.unwrap().linux_kernel_direct.unwrap();
        assert!(direct.kernel_cmd_line.unwrap().contains("/bin/gcs"));
        let topology = vm.compute_topology.unwrap();
        assert_eq!(topology.memory.unwrap().allow_overcommit, Some(true));
        assert_eq!(topology.processor.unwrap().count, Some(2));
        let devices = vm.devices.unwrap();
        let scsi = devices.scsi.unwrap();
        assert!(
            scsi[crate::schema::resource_paths::SCSI_CONTROLLER_GUIDS[0]]
                .attachments
                .as_ref()
                .unwrap()
                .is_empty()
        );
        assert_eq!(devices.plan9, Some(Default::default()));
    }

    #[test]
    fn lcow_hosted_container_example() {
        let doc: ComputeSystem = assert_parse_round_trip(EXAMPLE_LCOW_CONTAINER);
        assert_eq!(doc.validate().unwrap(), SystemKind::HostedInVm);
        assert_eq!(doc.hosting_system_id.as_deref(), Some("pod1@vm"));
        // Everything in the input is in the output with the same keys; the OCI spec gains the
        // zero-valued `process.user` that oci-spec always writes.
        let input: Value = serde_json::from_str(EXAMPLE_LCOW_CONTAINER).unwrap();
        let output = serde_json::to_value(&doc).unwrap();
        assert_contains(&output, &input, "$");
        assert_eq!(
            output["HostedSystem"]["OciSpecification"]["process"]["user"],
            serde_json::json!({"uid": 0, "gid": 0})
        );
        let hosted = doc.hosted_system.unwrap();
        assert_eq!(hosted.oci_bundle_path.as_deref(), Some("/run/gcs/c/ctr1"));
        let spec = hosted.oci_specification.unwrap();
        assert_eq!(spec.version(), "1.1.0");
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap()[0],
            "/bin/sh"
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        for example in [
            EXAMPLE_WINDOWS_CONTAINER,
            EXAMPLE_LCOW_UVM,
            EXAMPLE_LCOW_CONTAINER,
        ] {
            let plain: ComputeSystem = serde_json::from_str(example).unwrap();
            let extended: ComputeSystem =
                serde_json::from_str(&with_unknown_fields(example)).unwrap();
            assert_eq!(plain, extended);
        }
    }

    fn doc(json: Value) -> ComputeSystem {
        serde_json::from_value(json).unwrap()
    }

    fn field_of(json: Value) -> String {
        doc(json).validate().unwrap_err().field
    }

    #[test]
    fn validate_names_the_field() {
        let v = serde_json::json!({ "Major": 2, "Minor": 1 });
        assert_eq!(
            field_of(serde_json::json!({ "SchemaVersion": v })),
            "Container"
        );
        assert_eq!(
            field_of(serde_json::json!({ "Container": {} })),
            "SchemaVersion"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": { "Major": 1, "Minor": 0 }, "Container": {} })
            ),
            "SchemaVersion"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "Container": {}, "VirtualMachine": {} })
            ),
            "VirtualMachine"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "VirtualMachine": {}, "HostingSystemId": "vm" })
            ),
            "HostedSystem"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "HostedSystem": { "OciSpecification": {} } })
            ),
            "HostedSystem.OciBundlePath"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "HostingSystemId": "", "HostedSystem": { "Container": {} } })
            ),
            "HostingSystemId"
        );
        assert_eq!(
            field_of(serde_json::json!({ "SchemaVersion": v, "HostingSystemId": "vm" })),
            "HostedSystem"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "HostingSystemId": "vm", "HostedSystem": {} })
            ),
            "HostedSystem.OciSpecification"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "Container": { "Processor": { "Count": 1, "Weight": 2 } } })
            ),
            "Container.Processor.Weight"
        );
        assert_eq!(
            field_of(
                serde_json::json!({ "SchemaVersion": v, "Container": { "Processor": { "Maximum": 0 } } })
            ),
            "Container.Processor.Maximum"
        );
        let e = doc(serde_json::json!({ "SchemaVersion": v, "HostedSystem": { "Container": {} } }))
            .validate()
            .unwrap_err();
        assert!(e.to_string().starts_with("HostingSystemId: "), "{e}");
    }

    #[test]
    fn kind_of_each_shape() {
        let mut d = ComputeSystem {
            schema_version: Some(Version::V2_1),
            ..Default::default()
        };
        d.virtual_machine = Some(Default::default());
        assert_eq!(d.kind().unwrap(), SystemKind::VirtualMachine);
        d.virtual_machine = None;
        d.container = Some(crate::schema::Container {
            processor: Some(Processor {
                count: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(d.validate().unwrap(), SystemKind::Container);
        d.container = None;
        d.hosting_system_id = Some("uvm".into());
        d.hosted_system = Some(HostedSystem {
            container: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(d.validate().unwrap(), SystemKind::HostedInVm);
    }

    #[test]
    fn oci_spec_without_hosting_system_is_process_isolation() {
        let spec = serde_json::json!({ "ociVersion": "1.1.0", "root": { "path": "rootfs" } });
        let d = doc(
            serde_json::json!({ "SchemaVersion": { "Major": 2, "Minor": 1 },
            "HostedSystem": { "OciBundlePath": "/b", "OciSpecification": spec } }),
        );
        assert_eq!(d.validate().unwrap(), SystemKind::Container);
        let d = doc(
            serde_json::json!({ "SchemaVersion": { "Major": 2, "Minor": 1 },
            "HostedSystem": { "OciSpecification": spec } }),
        );
        assert_eq!(
            d.validate().unwrap_err().field,
            "HostedSystem.OciBundlePath"
        );
        let d = doc(
            serde_json::json!({ "SchemaVersion": { "Major": 2, "Minor": 1 },
            "HostingSystemId": "vm", "HostedSystem": { "OciBundlePath": "/b", "OciSpecification": spec } }),
        );
        assert_eq!(d.validate().unwrap(), SystemKind::HostedInVm);
    }
}
