//! HCS schema v2 documents as serde types.
//!
//! **Owns:** the JSON shapes that cross the compute-service API, with the exact key names of the
//! Windows Host Compute Service (PascalCase, as hcsshim's `internal/hcs/schema2` Go tags spell
//! them): the create document [`ComputeSystem`] and its three shapes ([`Container`],
//! [`VirtualMachine`], [`HostedSystem`]), [`ProcessParameters`] and the process operations,
//! [`PropertyQuery`] / [`Properties`], [`ModifySettingRequest`] with its [`resource_paths`], and
//! the [`ResultDocument`] that accompanies every failed call.
//!
//! **Does not own:** what a document *means* on this host (the backends decide that), nor the
//! OCI runtime spec (carried verbatim as [`oci_spec::runtime::Spec`] /
//! [`oci_spec::runtime::Process`]).
//!
//! Conventions: optional fields are `Option<T>` and are left out when `None` (HCS uses
//! `omitempty` almost everywhere); unknown fields are ignored on input, so documents written for
//! a newer schema still parse; timestamps are RFC 3339 strings; maps keyed by ids (SCSI
//! controllers, LUNs, NICs, COM ports) are `BTreeMap`s so output is deterministic.

mod compute_system;
mod container;
mod modify;
mod oci;
mod process;
mod properties;
pub mod resource_paths;
mod result;
mod virtual_machine;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod testutil;

pub use compute_system::{ComputeSystem, HostedSystem, SystemKind};
pub use container::{
    Container, ContainerCredentialGuard, ContainerHvSocket, Device, DeviceType, GuestOs,
    HvSocketServiceConfig, HvSocketSystemConfig, IsolationType, Layer, MappedDirectory, MappedPipe,
    Memory, Networking, Processor, RegistryChanges, RegistryHive, RegistryKey, RegistryValue,
    RegistryValueType, Storage, StorageQoS,
};
pub use modify::{GuestModificationRequest, ModifySettingRequest, RequestType};
pub use process::{
    CloseHandle, ConsoleSize, ProcessModifyOperation, ProcessModifyRequest, ProcessParameters,
    ProcessStatus, SignalOptions, StdHandle,
};
pub use properties::{
    GuestConnectionInfo, MemoryInformationForVm, MemoryStats, ProcessDetails, ProcessorStats,
    Properties, PropertyQuery, PropertyType, State, Statistics, StorageStats, SystemType, VmMemory,
};
pub use result::{hresult, ErrorEvent, ResultDocument};
pub use virtual_machine::{
    Attachment, AttachmentType, Chipset, ComPort, Devices, FirmwareFile, GuestConnection,
    GuestState, HvSocket, HvSocketConfigDevice, LinuxKernelDirect, MemoryBacking, NetworkAdapter,
    Plan9, Plan9Share, Plan9ShareFlags, ProcessorLimits, RestoreState, Scsi, SecurityIsolation,
    SecuritySettings, Topology, Uefi, UefiBootEntry, VirtualMachine, VirtualMachineMemory,
    VirtualMachineProcessor, VirtualPMem, VirtualPMemDevice, VirtualSmb, VirtualSmbShare,
    VirtualSmbShareOptions,
};

use serde::{Deserialize, Serialize};

/// A schema version, `{"Major": 2, "Minor": 1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
}

impl Version {
    /// Legacy flat `schema1` documents (RS1–RS4). Parsed nowhere in wharf; named for completeness.
    pub const V1_0: Version = Version { major: 1, minor: 0 };
    /// The default v2 schema (RS5 / 1809 and later).
    pub const V2_1: Version = Version { major: 2, minor: 1 };
    /// v2 with confidential (SNP) utility VM settings.
    pub const V2_5: Version = Version { major: 2, minor: 5 };

    pub fn is_v2(self) -> bool {
        self.major == 2
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A document is well-formed JSON but not a valid document: `field` is the JSON path of the
/// offending field (HCS key names, dot-separated), `reason` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SchemaError {
    pub field: String,
    pub reason: String,
}

impl SchemaError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SchemaError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_and_order() {
        let v: Version = serde_json::from_str(r#"{"Major":2,"Minor":5,"Extra":1}"#).unwrap();
        assert_eq!(v, Version::V2_5);
        assert_eq!(
            serde_json::to_string(&Version::V2_1).unwrap(),
            r#"{"Major":2,"Minor":1}"#
        );
        assert!(Version::V2_1 < Version::V2_5 && Version::V1_0 < Version::V2_1);
        assert!(Version::V2_1.is_v2() && !Version::V1_0.is_v2());
        assert_eq!(Version::V2_1.to_string(), "2.1");
    }

    #[test]
    fn schema_error_message_names_the_field() {
        let e = SchemaError::new("HostingSystemId", "required with HostedSystem");
        assert_eq!(e.to_string(), "HostingSystemId: required with HostedSystem");
    }
}
