//! `ModifySettingRequest.ResourcePath` values (hcsshim `internal/hcs/resourcepaths`), and the
//! fixed SCSI controller GUIDs of a utility VM.

use super::SchemaError;

// Process-isolated container ("silo").
pub const CONTAINER_DEVICES_GENERIC: &str = "Container/Devices/Generic";
pub const CONTAINER_MAPPED_DIRECTORIES: &str = "Container/MappedDirectories";
pub const CONTAINER_MAPPED_PIPES: &str = "Container/MappedPipes";
/// Update; settings = the size as a bare number.
pub const CONTAINER_MEMORY_SIZE_IN_MB: &str = "Container/Memory/SizeInMB";
/// Update; settings = [`super::Processor`].
pub const CONTAINER_PROCESSOR: &str = "Container/Processor";
pub const CONTAINER_REGISTRY_FLUSH_STATE: &str = "Container/RegistryFlushState";

// Utility VM.
pub const VM_MEMORY_SIZE_IN_MB: &str = "VirtualMachine/ComputeTopology/Memory/SizeInMB";
pub const VM_PROCESSOR_CPU_GROUP: &str = "VirtualMachine/ComputeTopology/Processor/CpuGroup";
/// Update; settings = [`super::ProcessorLimits`].
pub const VM_PROCESSOR_LIMITS: &str = "VirtualMachine/ComputeTopology/Processor/Limits";
pub const VM_PROCESSOR_IDLED_PROCESSORS: &str =
    "VirtualMachine/ComputeTopology/Processor/IdledProcessors";
pub const VM_PROCESSOR_CPU_FREQUENCY_POWER_CAP: &str =
    "VirtualMachine/ComputeTopology/Processor/CpuFrequencyPowerCap";
pub const VM_GPU: &str = "VirtualMachine/ComputeTopology/Gpu";
/// Add; settings = [`super::Plan9Share`].
pub const VM_PLAN9_SHARES: &str = "VirtualMachine/Devices/Plan9/Shares";
/// Add; settings = [`super::VirtualSmbShare`].
pub const VM_VIRTUAL_SMB_SHARES: &str = "VirtualMachine/Devices/VirtualSmb/Shares";
pub const VM_SHARED_MEMORY_REGIONS: &str = "VirtualMachine/Devices/SharedMemory/Regions";

/// The keys of `Devices.Scsi`: a utility VM has at most four SCSI controllers, always these.
pub const SCSI_CONTROLLER_GUIDS: [&str; 4] = [
    "df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
    "0110f83b-de10-5172-a266-78bca56bf50a",
    "b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
    "305891a9-b251-5dfe-91a2-c25d9212275b",
];

/// LUNs per SCSI controller.
pub const SCSI_LUNS_PER_CONTROLLER: u32 = 64;

/// The GUID of SCSI controller `index` (0..4).
pub fn scsi_controller_guid(index: usize) -> Option<&'static str> {
    SCSI_CONTROLLER_GUIDS.get(index).copied()
}

/// The index of a SCSI controller GUID (case-insensitive).
pub fn scsi_controller_index(guid: &str) -> Option<usize> {
    SCSI_CONTROLLER_GUIDS
        .iter()
        .position(|g| g.eq_ignore_ascii_case(guid))
}

/// `VirtualMachine/Devices/Scsi/{controllerGuid}/Attachments/{lun}`.
pub fn scsi_attachment(controller: usize, lun: u32) -> Result<String, SchemaError> {
    let guid = scsi_controller_guid(controller).ok_or_else(|| {
        SchemaError::new(
            "Controller",
            format!(
                "{controller} is out of range 0..{}",
                SCSI_CONTROLLER_GUIDS.len()
            ),
        )
    })?;
    if lun >= SCSI_LUNS_PER_CONTROLLER {
        return Err(SchemaError::new(
            "Lun",
            format!("{lun} is out of range 0..{SCSI_LUNS_PER_CONTROLLER}"),
        ));
    }
    Ok(format!(
        "VirtualMachine/Devices/Scsi/{guid}/Attachments/{lun}"
    ))
}

/// `VirtualMachine/Devices/NetworkAdapters/{nicId}`.
pub fn network_adapter(nic_id: &str) -> String {
    format!("VirtualMachine/Devices/NetworkAdapters/{nic_id}")
}

/// `VirtualMachine/Devices/VirtualPMem/Devices/{n}`.
pub fn virtual_pmem_device(n: u32) -> String {
    format!("VirtualMachine/Devices/VirtualPMem/Devices/{n}")
}

/// `VirtualMachine/Devices/VirtualPMem/Devices/{n}/Mappings/{m}`.
pub fn virtual_pmem_mapping(n: u32, m: u64) -> String {
    format!("VirtualMachine/Devices/VirtualPMem/Devices/{n}/Mappings/{m}")
}

/// `VirtualMachine/Devices/VirtualPci/{guid}`.
pub fn virtual_pci(guid: &str) -> String {
    format!("VirtualMachine/Devices/VirtualPci/{guid}")
}

/// `VirtualMachine/Devices/ComPorts/{n}`.
pub fn com_port(n: u32) -> String {
    format!("VirtualMachine/Devices/ComPorts/{n}")
}

/// `VirtualMachine/Devices/MappedPipes/{name}`.
pub fn mapped_pipe(name: &str) -> String {
    format!("VirtualMachine/Devices/MappedPipes/{name}")
}

/// `VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/{serviceGuid}`.
pub fn hv_socket_service(service_guid: &str) -> String {
    format!("VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/{service_guid}")
}

/// `VirtualMachine/Devices/FlexibleIov/{id}`.
pub fn flexible_iov(id: &str) -> String {
    format!("VirtualMachine/Devices/FlexibleIov/{id}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scsi_paths() {
        assert_eq!(
            scsi_attachment(0, 1).unwrap(),
            "VirtualMachine/Devices/Scsi/df6d0690-79e5-55b6-a5ec-c1e2f77f580a/Attachments/1"
        );
        assert_eq!(scsi_attachment(4, 0).unwrap_err().field, "Controller");
        assert_eq!(scsi_attachment(0, 64).unwrap_err().field, "Lun");
        assert_eq!(
            scsi_controller_index("0110F83B-DE10-5172-A266-78BCA56BF50A"),
            Some(1)
        );
        assert_eq!(scsi_controller_guid(3), Some(SCSI_CONTROLLER_GUIDS[3]));
        assert_eq!(scsi_controller_guid(4), None);
    }

    #[test]
    fn device_paths() {
        assert_eq!(
            network_adapter("nic0"),
            "VirtualMachine/Devices/NetworkAdapters/nic0"
        );
        assert_eq!(
            virtual_pmem_mapping(0, 2),
            "VirtualMachine/Devices/VirtualPMem/Devices/0/Mappings/2"
        );
        assert_eq!(
            virtual_pmem_device(7),
            "VirtualMachine/Devices/VirtualPMem/Devices/7"
        );
        assert_eq!(com_port(0), "VirtualMachine/Devices/ComPorts/0");
        assert_eq!(virtual_pci("g"), "VirtualMachine/Devices/VirtualPci/g");
        assert_eq!(mapped_pipe("p"), "VirtualMachine/Devices/MappedPipes/p");
        assert_eq!(
            hv_socket_service("s"),
            "VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/s"
        );
        assert_eq!(flexible_iov("i"), "VirtualMachine/Devices/FlexibleIov/i");
    }
}
