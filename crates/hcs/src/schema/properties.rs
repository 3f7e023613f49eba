//! Property queries and their answers: [`PropertyQuery`] in, [`Properties`] out, with the
//! [`Statistics`] and [`ProcessDetails`] they can carry. hcsshim `schema2/properties.go`,
//! `property_query.go`, `statistics.go`, `process_details.go`.

use super::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a properties call returns besides the basic fields. Unknown types are rejected: a query
/// the service does not understand is an invalid argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PropertyType {
    Memory,
    GuestMemory,
    Statistics,
    ProcessList,
    TerminateOnLastHandleClosed,
    SharedMemoryRegion,
    ContainerCredentialGuard,
    GuestConnection,
    ICHeartbeatStatus,
    ProcessorTopology,
    CpuGroup,
    #[serde(rename = "SystemGUID")]
    SystemGuid,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PropertyQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_types: Option<Vec<PropertyType>>,
    /// Per-type query options, keyed by property type name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<BTreeMap<String, serde_json::Value>>,
}

impl PropertyQuery {
    pub fn of(types: &[PropertyType]) -> Self {
        PropertyQuery {
            property_types: Some(types.to_vec()),
            queries: None,
        }
    }

    /// Whether the query asks for `t`.
    pub fn wants(&self, t: PropertyType) -> bool {
        self.property_types
            .as_ref()
            .is_some_and(|types| types.contains(&t))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemType {
    Container,
    VirtualMachine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Properties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_type: Option<SystemType>,
    /// `"Linux"` or `"Windows"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_os_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(rename = "SystemGUID", skip_serializing_if = "Option::is_none")]
    pub system_guid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
    /// Why it stopped: `"GracefulExit"`, `"ForcedExit"`, `"UnexpectedExit"`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryInformationForVm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<Statistics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_list: Option<Vec<ProcessDetails>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminate_on_last_handle_closed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosting_system_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_memory_region_info: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_connection_info: Option<GuestConnectionInfo>,
    /// Answers to [`PropertyQuery::queries`], keyed by property type name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_responses: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "LCOWMetrics", skip_serializing_if = "Option::is_none")]
    pub lcow_metrics: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemoryInformationForVm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_node_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_machine_memory: Option<VmMemory>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VmMemory {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_memory: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_memory_buffer: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slp_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balancing_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm_operation_in_progress: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GuestConnectionInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_schema_versions: Option<Vec<Version>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_defined_capabilities: Option<serde_json::Value>,
}

/// Resource usage of a compute system. Times are in 100 ns units, as on Windows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statistics {
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime100ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor: Option<ProcessorStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_runtime100ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_user100ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_kernel100ns: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_usage_commit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_usage_commit_peak_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_usage_private_working_set_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_count_normalized: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_count_normalized: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_size_bytes: Option<u64>,
}

/// One entry of [`Properties::process_list`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_time100ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_time100ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_commit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_working_set_private_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_working_set_shared_bytes: Option<u64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::*;

    #[test]
    fn property_query_keys_and_types() {
        let json = r#"{"PropertyTypes": ["Memory", "GuestMemory", "Statistics", "ProcessList",
            "TerminateOnLastHandleClosed", "SharedMemoryRegion", "ContainerCredentialGuard",
            "GuestConnection", "ICHeartbeatStatus", "ProcessorTopology", "CpuGroup", "SystemGUID"],
            "Queries": {"ContainerCredentialGuard": {"Operation": "List"}}}"#;
        let q: PropertyQuery = assert_round_trip(json);
        assert!(q.wants(PropertyType::SystemGuid) && q.wants(PropertyType::ICHeartbeatStatus));
        assert!(!PropertyQuery::default().wants(PropertyType::Statistics));
        assert_eq!(
            serde_json::to_string(&PropertyQuery::of(&[PropertyType::Statistics])).unwrap(),
            r#"{"PropertyTypes":["Statistics"]}"#
        );
        assert!(serde_json::from_str::<PropertyQuery>(r#"{"PropertyTypes": ["Bogus"]}"#).is_err());
    }

    #[test]
    fn properties_response() {
        let json = r#"{
            "Id": "ctr1", "SystemType": "Container", "RuntimeOsType": "Linux", "Name": "ctr1",
            "Owner": "wharf", "RuntimeId": "5d1f", "SystemGUID": "5d1f", "State": "Running",
            "Stopped": false, "ExitType": "GracefulExit", "HostingSystemId": "pod1@vm",
            "TerminateOnLastHandleClosed": true,
            "Memory": { "VirtualNodeCount": 1, "VirtualMachineMemory": { "AvailableMemory": 100, "AssignedMemory": 1024 } },
            "Statistics": {
                "Timestamp": "2026-11-21T23:46:00.123456789Z", "ContainerStartTime": "2026-11-21T23:45:00Z",
                "Uptime100ns": 600000000,
                "Processor": { "TotalRuntime100ns": 30, "RuntimeUser100ns": 20, "RuntimeKernel100ns": 10 },
                "Memory": { "MemoryUsageCommitBytes": 1, "MemoryUsageCommitPeakBytes": 2,
                            "MemoryUsagePrivateWorkingSetBytes": 3 },
                "Storage": { "ReadCountNormalized": 4, "ReadSizeBytes": 5, "WriteCountNormalized": 6, "WriteSizeBytes": 7 }
            },
            "ProcessList": [ { "ProcessId": 1, "ImageName": "sh", "CreateTimestamp": "2026-11-21T23:45:00Z",
                "UserTime100ns": 1, "KernelTime100ns": 2, "MemoryCommitBytes": 3,
                "MemoryWorkingSetPrivateBytes": 4, "MemoryWorkingSetSharedBytes": 5 } ],
            "GuestConnectionInfo": { "SupportedSchemaVersions": [ { "Major": 2, "Minor": 1 } ], "ProtocolVersion": 4,
                                     "GuestDefinedCapabilities": { "SignalProcessSupported": true } },
            "LCOWMetrics": { "x": 1 }
        }"#;
        let p: Properties = assert_round_trip(json);
        assert_eq!(p.state, Some(State::Running));
        assert_eq!(
            p.statistics.unwrap().processor.unwrap().runtime_kernel100ns,
            Some(10)
        );
        assert_eq!(
            p.process_list.unwrap()[0].memory_working_set_shared_bytes,
            Some(5)
        );
        let states = ["Created", "Running", "Paused", "Stopped"]
            .map(|s| serde_json::from_value::<State>(serde_json::json!(s)).unwrap());
        assert_eq!(
            states,
            [
                State::Created,
                State::Running,
                State::Paused,
                State::Stopped
            ]
        );

        let extended: Properties = serde_json::from_str(&with_unknown_fields(json)).unwrap();
        assert_eq!(extended.id.as_deref(), Some("ctr1"));
    }
}
