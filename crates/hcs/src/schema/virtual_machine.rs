//! `VirtualMachine`: a utility VM. hcsshim `internal/hcs/schema2/virtual_machine.go` and the
//! device documents it refers to. On wharf a utility VM is a qemu VM: SCSI attachments become
//! virtio-scsi/virtio-blk disks, Plan9 shares virtio-9p, VirtualPMem nvdimm/virtio-pmem, and
//! HvSocket vsock (same port numbers).

use super::container::{HvSocketSystemConfig, RegistryChanges, StorageQoS};
use super::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualMachine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// Treat a guest reboot as a stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_on_reset: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chipset: Option<Chipset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_topology: Option<Topology>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Devices>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_state: Option<GuestState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_state: Option<RestoreState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_changes: Option<RegistryChanges>,
    #[serde(rename = "StorageQoS", skip_serializing_if = "Option::is_none")]
    pub storage_qos: Option<StorageQoS>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_connection: Option<GuestConnection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_settings: Option<SecuritySettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Chipset {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uefi: Option<Uefi>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_num_lock_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_board_serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chassis_serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chassis_asset_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_utc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux_kernel_direct: Option<LinuxKernelDirect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware_file: Option<FirmwareFile>,
}

/// Boot a Linux kernel (and initrd) directly, without firmware.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LinuxKernelDirect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_rd_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cmd_line: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Uefi {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_debugger: Option<bool>,
    /// `"Apply"` or `"Skip"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_secure_boot_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_boot_template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_this: Option<UefiBootEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UefiBootEntry {
    /// `"ScsiDrive"`, `"VmbFs"`, `"Network"`, `"File"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_number: Option<u16>,
    /// For a kernel boot entry: the kernel command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmb_fs_root_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FirmwareFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
}

/// `ComputeTopology`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Topology {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<VirtualMachineMemory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor: Option<VirtualMachineProcessor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numa: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryBacking {
    Physical,
    Virtual,
    Hybrid,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualMachineMemory {
    #[serde(rename = "SizeInMB", skip_serializing_if = "Option::is_none")]
    pub size_in_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<MemoryBacking>,
    /// Back guest memory with host virtual memory (pages committed on use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_overcommit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_hot_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_cold_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_cold_discard_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_deferred_commit: Option<bool>,
    #[serde(rename = "LowMmioGapInMB", skip_serializing_if = "Option::is_none")]
    pub low_mmio_gap_in_mb: Option<u64>,
    #[serde(rename = "HighMmioBaseInMB", skip_serializing_if = "Option::is_none")]
    pub high_mmio_base_in_mb: Option<u64>,
    #[serde(rename = "HighMmioGapInMB", skip_serializing_if = "Option::is_none")]
    pub high_mmio_gap_in_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slit_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualMachineProcessor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// 0..=100000: percent of the VM's processors times 1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_group: Option<CpuGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CpuGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Settings of a `VirtualMachine/ComputeTopology/Processor/Limits` update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<u64>,
    #[serde(
        rename = "MaximumFrequencyMHz",
        skip_serializing_if = "Option::is_none"
    )]
    pub maximum_frequency_mhz: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Devices {
    /// Keyed by port number as a string (`"0"`, `"1"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub com_ports: Option<BTreeMap<String, ComPort>>,
    /// Keyed by controller GUID; see [`crate::schema::resource_paths::SCSI_CONTROLLER_GUIDS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsi: Option<BTreeMap<String, Scsi>>,
    #[serde(rename = "VirtualPMem", skip_serializing_if = "Option::is_none")]
    pub virtual_pmem: Option<VirtualPMem>,
    /// Keyed by NIC id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_adapters: Option<BTreeMap<String, NetworkAdapter>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hv_socket: Option<HvSocket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan9: Option<Plan9>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_smb: Option<VirtualSmb>,
    /// Keyed by device GUID; the assignment documents are passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_pci: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComPort {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_pipe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimize_for_debugger: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Scsi {
    /// Keyed by LUN as a string (`"0"`..`"63"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<BTreeMap<String, Attachment>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentType {
    VirtualDisk,
    PassThru,
    ExtensibleVirtualDisk,
}

/// A disk on a SCSI controller; also the settings of a
/// `VirtualMachine/Devices/Scsi/{ctrl}/Attachments/{lun}` add.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub attachment_type: Option<AttachmentType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_flushes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caching_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_write_hardening: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensible_virtual_disk_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualPMem {
    /// Keyed by device number as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<BTreeMap<String, VirtualPMemDevice>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualPMemDevice {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `"Vhd1"`, `"Vhdx"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_format: Option<String>,
}

/// A NIC of the VM, connected to an HNS endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAdapter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iov_settings: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HvSocket {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hv_socket_config: Option<HvSocketConfigDevice>,
}

/// `Devices.HvSocket.HvSocketConfig`: the same shape as a container's HvSocket system config.
pub type HvSocketConfigDevice = HvSocketSystemConfig;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plan9 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<Plan9Share>>,
}

/// A directory shared into the VM over 9p; also the settings of a
/// `VirtualMachine/Devices/Plan9/Shares` add.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plan9Share {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name the guest mounts (`aname`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 564 by convention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// A [`Plan9ShareFlags`] bitmask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_files: Option<Vec<String>>,
}

/// Bits of [`Plan9Share::flags`].
pub struct Plan9ShareFlags;

impl Plan9ShareFlags {
    pub const READ_ONLY: u32 = 0x1;
    pub const LINUX_METADATA: u32 = 0x4;
    pub const CASE_SENSITIVE: u32 = 0x8;
    pub const USE_SHARE_ROOT_IDENTITY: u32 = 0x10;
    pub const RESTRICT_FILE_ACCESS: u32 = 0x80;
    pub const UNLIMITED_CONNECTIONS: u32 = 0x100;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualSmb {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<VirtualSmbShare>>,
    #[serde(
        rename = "DirectFileMappingInMB",
        skip_serializing_if = "Option::is_none"
    )]
    pub direct_file_mapping_in_mb: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualSmbShare {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_files: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<VirtualSmbShareOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualSmbShareOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_read: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_io: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_oplocks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_backup_privilege: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_share_root_identity: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_directmap: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_locks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_dirnotify: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_shared_memory: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restrict_file_access: Option<bool>,
    #[serde(
        rename = "ForceLevelIIOplocks",
        skip_serializing_if = "Option::is_none"
    )]
    pub force_level_ii_oplocks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reparse_base_layer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_oplocks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_cache_io: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_dirnotify: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_file_mapping: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GuestState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_state_file_path: Option<String>,
    /// `"FileMode"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_state_file_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_state_file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_transient_state: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_state_file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_system_id: Option<String>,
}

/// How the host talks to the guest agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GuestConnection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_vsock: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_connected_suspend: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecuritySettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_tpm: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<SecurityIsolation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityIsolation {
    /// `"SecureNestedPaging"`, `"VirtualizationBasedSecurity"`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hcl_enabled: Option<bool>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::assert_round_trip;

    #[test]
    fn devices_keys() {
        let json = r#"{
            "ComPorts": { "0": { "NamedPipe": "\\\\.\\pipe\\vm-com1", "OptimizeForDebugger": true } },
            "VirtualPMem": { "Devices": { "0": { "HostPath": "rootfs.vhd", "ReadOnly": true, "ImageFormat": "Vhd1" } },
                             "MaximumCount": 64, "MaximumSizeBytes": 4294967296 },
            "NetworkAdapters": { "nic0": { "EndpointId": "e1", "MacAddress": "00-15-5D-00-00-01" } },
            "Plan9": { "Shares": [ { "Name": "3", "AccessName": "3", "Path": "/src", "Port": 564,
                                      "Flags": 13, "AllowedFiles": ["a"] } ] },
            "VirtualSmb": { "Shares": [ { "Name": "os", "Path": "C:\\uvm",
                "Options": { "ReadOnly": true, "TakeBackupPrivilege": true, "ForceLevelIIOplocks": true } } ],
                "DirectFileMappingInMB": 1024 }
        }"#;
        let d: Devices = assert_round_trip(json);
        let pmem = d.virtual_pmem.unwrap();
        assert_eq!(pmem.maximum_count, Some(64));
        let flags = d.plan9.unwrap().shares.unwrap()[0].flags.unwrap();
        assert_ne!(flags & Plan9ShareFlags::LINUX_METADATA, 0);
    }

    #[test]
    fn topology_and_security_keys() {
        let json = r#"{
            "Version": { "Major": 2, "Minor": 5 },
            "ComputeTopology": {
                "Memory": { "SizeInMB": 2048, "Backing": "Virtual", "AllowOvercommit": true,
                            "EnableDeferredCommit": true, "LowMmioGapInMB": 256,
                            "HighMmioBaseInMB": 1024, "HighMmioGapInMB": 512 },
                "Processor": { "Count": 2, "Limit": 50000, "Weight": 100, "CpuGroup": { "Id": "g" } } },
            "GuestState": { "GuestStateFilePath": "a.vmgs", "GuestStateFileType": "FileMode",
                            "ForceTransientState": true },
            "SecuritySettings": { "EnableTpm": false,
                "Isolation": { "IsolationType": "SecureNestedPaging", "HclEnabled": true } },
            "GuestConnection": { "UseVsock": true, "UseConnectedSuspend": true },
            "Chipset": { "Uefi": { "ApplySecureBootTemplate": "Apply",
                "BootThis": { "DeviceType": "VmbFs", "DevicePath": "\\vmlinux", "OptionalData": "quiet" } } }
        }"#;
        let vm: VirtualMachine = assert_round_trip(json);
        let memory = vm.compute_topology.unwrap().memory.unwrap();
        assert_eq!(memory.backing, Some(MemoryBacking::Virtual));
        assert_eq!(memory.low_mmio_gap_in_mb, Some(256));
    }

    #[test]
    fn processor_limits_key() {
        let l: ProcessorLimits = assert_round_trip(r#"{"Limit": 1, "MaximumFrequencyMHz": 2000}"#);
        assert_eq!(l.maximum_frequency_mhz, Some(2000));
    }
}
