//! What the VM manager takes from its configuration (`hv_component_rt::config()`): the devices
//! it emulates, the VMs' names for console prefixes, and whether an MMIO guard runs. Pure
//! derivations, host-tested; the configuration itself comes from the manifest.

use hv_component_config::{DeviceKind, DeviceMode, System};
use hv_ipc::Interface;
use hv_ipc::interfaces::MmioGuardInterface;

/// Most emulated devices across all VMs.
pub const MAX_EMULATED: usize = 8;

/// A device of a VM that its stage 2 leaves unmapped and this component emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulatedDevice<'a> {
    /// The VM.
    pub vm: u16,
    /// The device's name in the manifest.
    pub name: &'a str,
    /// Base IPA (4 KiB aligned).
    pub base: u64,
    /// Size in bytes (a non-zero multiple of 4 KiB).
    pub size: u64,
    /// The interrupt (GIC INTID) its model raises, if the board gives it one.
    pub interrupt: Option<u32>,
}

impl EmulatedDevice<'_> {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// Every emulated device the VM manager has a model for (PL011s), in configuration order.
/// Emulated devices it has no model for are left out: accesses to them get an external abort.
pub fn emulated_devices(system: &System) -> heapless::Vec<EmulatedDevice<'_>, MAX_EMULATED> {
    system
        .vms
        .iter()
        .flat_map(|vm| vm.devices.iter().map(move |device| (vm.id, device)))
        .filter(|(_, device)| {
            device.mode == DeviceMode::Emulated && device.kind == DeviceKind::Pl011
        })
        .map(|(vm, device)| EmulatedDevice {
            vm,
            name: device.name.as_str(),
            base: device.region.base,
            size: device.region.size,
            interrupt: device.interrupt,
        })
        .take(MAX_EMULATED)
        .collect()
}

/// Whether the system has an MMIO guard to ask before emulating an access.
pub fn has_mmio_guard(system: &System) -> bool {
    system.serves(MmioGuardInterface::NAME)
}

/// Whether the memory-protection component serves the system (it takes the guests' MEM_SHARE
/// and MEM_UNSHARE by function ID).
pub fn shares_guest_memory(system: &System) -> bool {
    system.serves(hv_ipc::interfaces::MemProtectInterface::NAME)
}

/// The name of VM `vm`, if it has one.
pub fn vm_name(system: &System, vm: u16) -> Option<&str> {
    system.vm(vm).map(|vm| vm.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hv_component_config::{ComponentSummary, Device, MmioGuardMode, Name, Region, Restart, Vm};

    fn name(text: &str) -> Name {
        Name::try_from(text).unwrap()
    }

    fn system(with_guard: bool) -> System {
        let uart = |vm_name: &str, base, mode| Device {
            name: name(vm_name),
            kind: DeviceKind::Pl011,
            region: Region { base, size: 0x1000 },
            mode,
            interrupt: None,
        };
        let vm = |id, vm_name: &str, devices: &[Device]| Vm {
            id,
            name: name(vm_name),
            host: id == 0,
            memory: Region::default(),
            ram_ipa: 0,
            mte: false,
            shared_ipa_bit: None,
            cpus: Default::default(),
            mmio_guard: MmioGuardMode::Optional,
            devices: devices.iter().cloned().collect(),
        };
        let mut components = heapless::Vec::new();
        if with_guard {
            components
                .push(ComponentSummary {
                    name: name("guard"),
                    serves: Some(name("mmio-guard")),
                    restart: Restart::Never,
                    region: Region::default(),
                })
                .unwrap();
        }
        System {
            ram: Region::default(),
            hypervisor: Region::default(),
            vms: [
                vm(
                    0,
                    "host",
                    &[
                        uart("uart0", 0x900_0000, DeviceMode::Emulated),
                        uart("uart1", 0x900_1000, DeviceMode::Passthrough),
                    ],
                ),
                vm(
                    1,
                    "guest-a",
                    &[uart("uart0", 0x900_0000, DeviceMode::Emulated)],
                ),
            ]
            .into_iter()
            .collect(),
            components,
            gics: Default::default(),
            console: Region::default(),
            control_line: None,
        }
    }

    #[test]
    fn emulated_devices_are_the_emulated_pl011s_of_every_vm() {
        let system = system(false);
        let devices = emulated_devices(&system);
        assert_eq!(
            devices.as_slice(),
            [
                EmulatedDevice {
                    vm: 0,
                    name: "uart0",
                    base: 0x900_0000,
                    size: 0x1000,
                    interrupt: None
                },
                EmulatedDevice {
                    vm: 1,
                    name: "uart0",
                    base: 0x900_0000,
                    size: 0x1000,
                    interrupt: None
                },
            ]
        );
        assert_eq!(devices[0].end(), 0x900_1000);
    }

    #[test]
    fn names_and_the_guard() {
        let system = system(true);
        assert_eq!(vm_name(&system, 1), Some("guest-a"));
        assert_eq!(vm_name(&system, 7), None);
        assert!(has_mmio_guard(&system));
        assert!(!has_mmio_guard(&self::system(false)));
    }
}
