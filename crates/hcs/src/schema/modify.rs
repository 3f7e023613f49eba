//! `ModifySettingRequest`: change a running compute system. The host part is addressed by a
//! resource path ([`super::resource_paths`]); the optional guest part is forwarded verbatim to the
//! guest agent. A request may carry either part or both. hcsshim
//! `schema2/modify_setting_request.go`, `internal/protocol/guestrequest`.

use super::container::{Memory, Processor};
use super::resource_paths;
use super::virtual_machine::{Attachment, Plan9Share};
use super::SchemaError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestType {
    Add,
    Remove,
    Update,
    /// Only for Windows guest networking (before the host adds the NIC).
    PreAdd,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifySettingRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_type: Option<RequestType>,
    /// The resource document; its type depends on the resource path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_request: Option<GuestModificationRequest>,
}

/// The guest half of a modify request (`guestrequest.ModificationRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GuestModificationRequest {
    /// `"MappedVirtualDisk"`, `"MappedDirectory"`, `"CombinedLayers"`, `"Network"`,
    /// `"ContainerConstraints"`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_type: Option<RequestType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
}

fn to_settings(field: &str, settings: &impl Serialize) -> Result<Value, SchemaError> {
    serde_json::to_value(settings).map_err(|e| SchemaError::new(field, e.to_string()))
}

impl ModifySettingRequest {
    /// A host-only request.
    pub fn host(
        resource_path: impl Into<String>,
        request_type: RequestType,
        settings: Option<&impl Serialize>,
    ) -> Result<Self, SchemaError> {
        Ok(ModifySettingRequest {
            resource_path: Some(resource_path.into()),
            request_type: Some(request_type),
            settings: settings.map(|s| to_settings("Settings", s)).transpose()?,
            guest_request: None,
        })
    }

    /// A guest-only request.
    pub fn guest(
        resource_type: impl Into<String>,
        request_type: RequestType,
        settings: &impl Serialize,
    ) -> Result<Self, SchemaError> {
        Ok(ModifySettingRequest {
            guest_request: Some(GuestModificationRequest {
                resource_type: Some(resource_type.into()),
                request_type: Some(request_type),
                settings: Some(to_settings("GuestRequest.Settings", settings)?),
            }),
            ..Default::default()
        })
    }

    /// Adds a guest part to a request.
    pub fn with_guest(
        mut self,
        resource_type: impl Into<String>,
        request_type: RequestType,
        settings: &impl Serialize,
    ) -> Result<Self, SchemaError> {
        let guest = Self::guest(resource_type, request_type, settings)?;
        self.guest_request = guest.guest_request;
        Ok(self)
    }

    /// `Container/Memory/SizeInMB` update; the settings are the bare number.
    pub fn update_container_memory(size_in_mb: u64) -> Self {
        ModifySettingRequest {
            resource_path: Some(resource_paths::CONTAINER_MEMORY_SIZE_IN_MB.into()),
            request_type: Some(RequestType::Update),
            settings: Some(Value::from(size_in_mb)),
            guest_request: None,
        }
    }

    /// `Container/Processor` update.
    pub fn update_container_processor(processor: &Processor) -> Result<Self, SchemaError> {
        Self::host(
            resource_paths::CONTAINER_PROCESSOR,
            RequestType::Update,
            Some(processor),
        )
    }

    /// Hot-add a disk at `VirtualMachine/Devices/Scsi/{controller}/Attachments/{lun}`.
    pub fn add_scsi_attachment(
        controller: usize,
        lun: u32,
        attachment: &Attachment,
    ) -> Result<Self, SchemaError> {
        let path = resource_paths::scsi_attachment(controller, lun)?;
        Self::host(path, RequestType::Add, Some(attachment))
    }

    /// Hot-remove the disk at a SCSI controller index and LUN.
    pub fn remove_scsi_attachment(controller: usize, lun: u32) -> Result<Self, SchemaError> {
        let path = resource_paths::scsi_attachment(controller, lun)?;
        Self::host(path, RequestType::Remove, None::<&Value>)
    }

    /// Share a host directory into the VM over 9p.
    pub fn add_plan9_share(share: &Plan9Share) -> Result<Self, SchemaError> {
        Self::host(
            resource_paths::VM_PLAN9_SHARES,
            RequestType::Add,
            Some(share),
        )
    }

    /// The settings as a typed document, e.g. `request.settings_as::<Memory>()`.
    pub fn settings_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, SchemaError> {
        let settings = self
            .settings
            .clone()
            .ok_or_else(|| SchemaError::new("Settings", "is required"))?;
        serde_json::from_value(settings).map_err(|e| SchemaError::new("Settings", e.to_string()))
    }

    /// At least one part, and a host part has a path and a request type.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let host =
            self.resource_path.is_some() || self.request_type.is_some() || self.settings.is_some();
        if !host && self.guest_request.is_none() {
            return Err(SchemaError::new(
                "ResourcePath",
                "a modify request needs a ResourcePath or a GuestRequest",
            ));
        }
        if host {
            match self.resource_path.as_deref() {
                None | Some("") => {
                    return Err(SchemaError::new(
                        "ResourcePath",
                        "is required with Settings or RequestType",
                    ))
                }
                Some(_) => {}
            }
            if self.request_type.is_none() {
                return Err(SchemaError::new(
                    "RequestType",
                    "is required with ResourcePath",
                ));
            }
        }
        if let Some(guest) = &self.guest_request {
            if guest.resource_type.as_deref().is_none_or(str::is_empty) {
                return Err(SchemaError::new("GuestRequest.ResourceType", "is required"));
            }
            if guest.request_type.is_none() {
                return Err(SchemaError::new("GuestRequest.RequestType", "is required"));
            }
        }
        Ok(())
    }
}

/// The settings of a `Container/Memory` resource as a document (rather than a bare number).
impl From<u64> for Memory {
    fn from(size_in_mb: u64) -> Self {
        Memory {
            size_in_mb: Some(size_in_mb),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::*;
    use crate::schema::{AttachmentType, Plan9ShareFlags};

    #[test]
    fn examples_round_trip() {
        let attach: ModifySettingRequest = assert_round_trip(EXAMPLE_MODIFY_SCSI_ATTACH);
        attach.validate().unwrap();
        let disk: Attachment = attach.settings_as().unwrap();
        assert_eq!(disk.attachment_type, Some(AttachmentType::VirtualDisk));
        assert_eq!(disk.read_only, Some(true));

        let mount: ModifySettingRequest = assert_round_trip(EXAMPLE_MODIFY_GUEST_MOUNT);
        mount.validate().unwrap();
        let guest = mount.guest_request.unwrap();
        assert_eq!(guest.resource_type.as_deref(), Some("MappedVirtualDisk"));
        assert_eq!(guest.settings.unwrap()["Lun"], 1);

        let overlay: ModifySettingRequest = assert_round_trip(EXAMPLE_MODIFY_OVERLAY);
        overlay.validate().unwrap();
        assert_eq!(
            overlay.guest_request.unwrap().request_type,
            Some(RequestType::Add)
        );

        let plan9: ModifySettingRequest = assert_round_trip(EXAMPLE_MODIFY_PLAN9);
        plan9.validate().unwrap();
        let share: Plan9Share = plan9.settings_as().unwrap();
        assert_eq!(
            share.flags,
            Some(Plan9ShareFlags::READ_ONLY | Plan9ShareFlags::LINUX_METADATA)
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        for example in [
            EXAMPLE_MODIFY_SCSI_ATTACH,
            EXAMPLE_MODIFY_GUEST_MOUNT,
            EXAMPLE_MODIFY_OVERLAY,
        ] {
            let r: ModifySettingRequest =
                serde_json::from_str(&with_unknown_fields(example)).unwrap();
            r.validate().unwrap();
        }
    }

    #[test]
    fn helpers_build_the_documented_shapes() {
        let attach = Attachment {
            attachment_type: Some(AttachmentType::VirtualDisk),
            path: Some("C:\\layers\\l1\\layer.vhd".into()),
            read_only: Some(true),
            ..Default::default()
        };
        let built = ModifySettingRequest::add_scsi_attachment(0, 1, &attach).unwrap();
        let example: ModifySettingRequest =
            serde_json::from_str(EXAMPLE_MODIFY_SCSI_ATTACH).unwrap();
        assert_eq!(built, example);

        let memory = ModifySettingRequest::update_container_memory(256);
        assert_eq!(
            serde_json::to_value(&memory).unwrap(),
            serde_json::json!({ "ResourcePath": "Container/Memory/SizeInMB", "RequestType": "Update", "Settings": 256 })
        );
        let cpu = ModifySettingRequest::update_container_processor(&Processor {
            maximum: Some(5000),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cpu.settings, Some(serde_json::json!({ "Maximum": 5000 })));

        let remove = ModifySettingRequest::remove_scsi_attachment(3, 63).unwrap();
        assert_eq!(
            serde_json::to_value(&remove).unwrap(),
            serde_json::json!({ "ResourcePath": "VirtualMachine/Devices/Scsi/305891a9-b251-5dfe-91a2-c25d9212275b/Attachments/63",
                                "RequestType": "Remove" })
        );
        assert_eq!(
            ModifySettingRequest::remove_scsi_attachment(4, 0)
                .unwrap_err()
                .field,
            "Controller"
        );

        let share = Plan9Share {
            name: Some("3".into()),
            port: Some(564),
            ..Default::default()
        };
        let both = ModifySettingRequest::add_plan9_share(&share)
            .unwrap()
            .with_guest(
                "MappedDirectory",
                RequestType::Add,
                &serde_json::json!({ "ShareName": "3" }),
            )
            .unwrap();
        both.validate().unwrap();
        assert_eq!(
            both.resource_path.as_deref(),
            Some("VirtualMachine/Devices/Plan9/Shares")
        );
        assert_eq!(
            both.guest_request.unwrap().resource_type.as_deref(),
            Some("MappedDirectory")
        );

        let m: Memory = 64.into();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"SizeInMB":64}"#);
    }

    #[test]
    fn validate_names_the_field() {
        let field = |json: Value| {
            serde_json::from_value::<ModifySettingRequest>(json)
                .unwrap()
                .validate()
                .unwrap_err()
                .field
        };
        assert_eq!(field(serde_json::json!({})), "ResourcePath");
        assert_eq!(
            field(serde_json::json!({ "RequestType": "Add", "Settings": 1 })),
            "ResourcePath"
        );
        assert_eq!(
            field(serde_json::json!({ "ResourcePath": "Container/Processor" })),
            "RequestType"
        );
        assert_eq!(
            field(serde_json::json!({ "GuestRequest": { "RequestType": "Add" } })),
            "GuestRequest.ResourceType"
        );
        assert_eq!(
            field(serde_json::json!({ "GuestRequest": { "ResourceType": "Network" } })),
            "GuestRequest.RequestType"
        );
        assert!(
            serde_json::from_str::<ModifySettingRequest>(r#"{"RequestType": "Upsert"}"#).is_err()
        );
        let r: ModifySettingRequest = serde_json::from_str(r#"{"RequestType": "PreAdd"}"#).unwrap();
        assert_eq!(r.request_type, Some(RequestType::PreAdd));
    }
}
