//! `Container`: a process-isolated container (a "silo"), and the inner document of a Windows
//! container hosted in a utility VM. hcsshim `internal/hcs/schema2/container.go` and friends.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_os: Option<GuestOs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_directories: Option<Vec<MappedDirectory>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_pipes: Option<Vec<MappedPipe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor: Option<Processor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<Networking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hv_socket: Option<ContainerHvSocket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_credential_guard: Option<ContainerCredentialGuard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_changes: Option<RegistryChanges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_devices: Option<Vec<Device>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_device_namespace: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation_type: Option<IsolationType>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GuestOs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Storage {
    /// Read-only layers, topmost parent first, base layer last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Layer>>,
    /// The scratch (writable) volume or directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(rename = "QoS", skip_serializing_if = "Option::is_none")]
    pub qos: Option<StorageQoS>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged_container_root_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Layer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageQoS {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iops_maximum: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_maximum: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappedDirectory {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappedPipe {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_pipe_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path_type: Option<String>,
}

/// Also the settings of a `Container/Memory/SizeInMB` update (as a bare number).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(rename = "SizeInMB", skip_serializing_if = "Option::is_none")]
    pub size_in_mb: Option<u64>,
}

/// CPU limits of a container; HCS accepts only one of the three. Also the settings of a
/// `Container/Processor` update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Processor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// 1..=10000: percent of the host's CPUs times 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

impl Processor {
    /// The names of the limits that are set, in key order.
    pub fn limits_set(&self) -> Vec<&'static str> {
        [
            ("Count", self.count.is_some()),
            ("Maximum", self.maximum.is_some()),
            ("Weight", self.weight.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Networking {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_unqualified_dns_query: Option<bool>,
    /// Comma-separated DNS suffixes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_search_list: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_shared_container_name: Option<String>,
    /// The id of the HNS namespace the container joins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_adapters: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerHvSocket {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<HvSocketSystemConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_power_shell_direct: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HvSocketSystemConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_bind_security_descriptor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_connect_security_descriptor: Option<String>,
    /// Keyed by service GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_table: Option<BTreeMap<String, HvSocketServiceConfig>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HvSocketServiceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_security_descriptor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_security_descriptor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_wildcard_binds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// gMSA credentials of a Windows container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCredentialGuard {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_values: Option<Vec<RegistryValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_keys: Option<Vec<RegistryKey>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryHive {
    System,
    Software,
    Security,
    Sam,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryKey {
    pub hive: RegistryHive,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatile: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryValueType {
    None,
    String,
    ExpandedString,
    MultiString,
    Binary,
    DWord,
    QWord,
    CustomType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<RegistryKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub value_type: Option<RegistryValueType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    #[serde(rename = "DWordValue", skip_serializing_if = "Option::is_none")]
    pub dword_value: Option<u32>,
    #[serde(rename = "QWordValue", skip_serializing_if = "Option::is_none")]
    pub qword_value: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_type: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceType {
    ClassGuid,
    DeviceInstance,
    GpuMirror,
}

/// A host device assigned to the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Device {
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub device_type: Option<DeviceType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_class_guid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolationType {
    /// A job-object container that shares the host's namespaces ("HostProcess").
    HostProcess,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::assert_round_trip;

    #[test]
    fn key_names_that_pascal_case_would_get_wrong() {
        let json = r#"{
            "Memory": { "SizeInMB": 512 },
            "Storage": { "QoS": { "IopsMaximum": 1, "BandwidthMaximum": 2 } },
            "HvSocket": { "Config": { "ServiceTable": { "g": { "AllowWildcardBinds": true } } },
                          "EnablePowerShellDirect": true },
            "RegistryChanges": { "AddValues": [ { "Key": { "Hive": "Software", "Name": "k" },
                "Type": "DWord", "DWordValue": 7, "QWordValue": 8 } ] },
            "AssignedDevices": [ { "Type": "ClassGuid", "InterfaceClassGuid": "5B45201D" } ],
            "IsolationType": "HostProcess"
        }"#;
        let c: Container = assert_round_trip(json);
        assert_eq!(c.memory.and_then(|m| m.size_in_mb), Some(512));
        let value = &c.registry_changes.unwrap().add_values.unwrap()[0];
        assert_eq!(value.dword_value, Some(7));
        assert_eq!(value.value_type, Some(RegistryValueType::DWord));
    }

    #[test]
    fn processor_limits_set() {
        let p = Processor {
            count: Some(2),
            weight: Some(5),
            ..Default::default()
        };
        assert_eq!(p.limits_set(), ["Count", "Weight"]);
        assert!(Processor::default().limits_set().is_empty());
    }

    #[test]
    fn empty_container_serializes_to_empty_object() {
        assert_eq!(serde_json::to_string(&Container::default()).unwrap(), "{}");
    }
}
