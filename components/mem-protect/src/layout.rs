//! What mem-protect serves, derived from its configuration: the RAM bank, the hypervisor's
//! reserved range, the device holes (the host's emulated devices and every device passed
//! through to a guest, which a host device block must never cover), the mapping policy, and
//! each guest VM with the devices it may be given. Pure, host-tested; `main.rs` takes the
//! configuration from the runtime and `build.rs` sizes the static pools with
//! [`memory_pool_tables_for`] and [`plan::vm_tables`](crate::stage2::plan::vm_tables).

use crate::service::MAX_GUEST_VMS;
use crate::stage2::plan::{page_span, passthrough_spans};
use crate::stage2::{IpaRange, MappingPolicy};
use hv_component_config::heapless::Vec;
use hv_component_config::{ComponentConfig, DeviceMode, MAX_DEVICES, MAX_VMS, System};

/// The page size every range is rounded to.
const PAGE: u64 = 4096;
/// Most device holes: every device of every VM, the GIC ranges kept from the host, its
/// console when shared, and hot-swap's control line.
pub const MAX_HOLES: usize =
    MAX_DEVICES * MAX_VMS + hv_component_config::MAX_FILTERED_GIC_RANGES + 2;
/// The host's IPA space (40 bits).
const IPA_LIMIT: u64 = 1 << 40;

/// What the host's stage 2 is built over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLayout {
    /// The RAM bank.
    pub ram: IpaRange,
    /// The hypervisor's part of it, owned by the hypervisor from boot.
    pub reserved: [IpaRange; 1],
    /// Ranges outside RAM never mapped into the host, page aligned and sorted: its emulated
    /// devices (which must keep faulting), the devices passed through to guests (theirs), and
    /// hot-swap's control line (the hypervisor's).
    pub device_holes: Vec<IpaRange, MAX_HOLES>,
    /// How large the lazily made mappings may be.
    pub policy: MappingPolicy,
}

/// Why a configuration cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The system has no host VM.
    NoHost,
    /// The RAM is empty, unaligned or beyond the 40-bit IPA space.
    BadRam,
    /// The hypervisor's range is not inside the RAM.
    ReservedOutsideRam,
    /// An emulated device of the host, or a guest's passed-through device, overlaps the RAM.
    HoleInRam,
    /// A guest VM's id is 0 or too large for a guest number.
    BadGuest(u16),
    /// A guest VM's shared IPA bit is not a page-number bit below 48, or its RAM or a device
    /// reaches it.
    BadSharedBit(u16),
}

/// A guest VM as mem-protect serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestLayout {
    /// Its VM id (1 to [`MAX_GUEST_VMS`]).
    pub vm: u16,
    /// The devices passed through to it: the only MMIO it may be given (physical, page
    /// aligned).
    pub devices: Vec<IpaRange, MAX_DEVICES>,
    /// The IPA bit it uses as its shared attribute (seed 004), if any.
    pub shared_bit: Option<u8>,
}

/// The IPA size of a guest's stage 2: the host's 40 bits, or more so that the alias of every
/// IPA below its shared bit fits (bit 40 needs 41). The kernel's VTCR_EL2 translates the
/// CPU's physical address size (at least 40 bits, at most 48), which must cover it.
pub const fn guest_ipa_bits(shared_bit: Option<u8>) -> u8 {
    match shared_bit {
        Some(bit) if bit >= 40 => bit + 1,
        _ => 40,
    }
}

/// The layout `config` describes.
pub fn host_layout(config: &ComponentConfig) -> Result<HostLayout, LayoutError> {
    let system = &config.system;
    let host = config.host().ok_or(LayoutError::NoHost)?;
    let ram = IpaRange::sized(system.ram.base, system.ram.size);
    if ram.is_empty()
        || !ram.start.is_multiple_of(PAGE)
        || !ram.end.is_multiple_of(PAGE)
        || ram.end > IPA_LIMIT
    {
        return Err(LayoutError::BadRam);
    }
    let reserved = IpaRange::sized(system.hypervisor.base, system.hypervisor.size);
    if reserved.start < ram.start || reserved.end > ram.end {
        return Err(LayoutError::ReservedOutsideRam);
    }
    let emulated = host
        .devices
        .iter()
        .filter(|device| device.mode == DeviceMode::Emulated);
    let given_to_guests = system
        .vms
        .iter()
        .filter(|vm| !vm.host)
        .flat_map(passthrough_spans);
    // With guests, the host reaches the GIC's shared parts only through the VM manager's filter.
    let filtered_gic = system.host_filtered_gic_ranges();
    let mut device_holes: Vec<IpaRange, MAX_HOLES> = emulated
        .map(|device| page_span(&device.region))
        .chain(given_to_guests)
        .chain(filtered_gic.iter().map(page_span))
        .chain(system.host_console_mux().iter().map(page_span))
        .chain(system.control_line.iter().map(page_span))
        .map(|(start, end)| IpaRange::new(start, end))
        .collect();
    if device_holes
        .iter()
        .any(|hole| hole.start < ram.end && ram.start < hole.end)
    {
        return Err(LayoutError::HoleInRam);
    }
    device_holes.sort_unstable_by_key(|hole| hole.start);
    let policy = match config.settings.mem_protect().policy {
        hv_component_config::MappingPolicy::LargestBlock => MappingPolicy::LargestBlock,
        hv_component_config::MappingPolicy::PageOnly => MappingPolicy::PageOnly,
    };
    Ok(HostLayout {
        ram,
        reserved: [reserved],
        device_holes,
        policy,
    })
}

/// The GICv2 virtual CPU interfaces (GICV) of the board, as `(start, end)` pages.
fn virtual_cpu_interfaces(system: &System) -> impl Iterator<Item = (u64, u64)> + '_ {
    system
        .gics
        .iter()
        .filter(|gic| gic.version == 2 && gic.virtual_cpu_interface.size != 0)
        .map(|gic| page_span(&gic.virtual_cpu_interface))
}

/// The guest VMs `config` declares (every VM but the host), by id.
pub fn guest_layouts(
    config: &ComponentConfig,
) -> Result<Vec<GuestLayout, MAX_GUEST_VMS>, LayoutError> {
    let mut guests = Vec::new();
    for vm in config.system.vms.iter().filter(|vm| !vm.host) {
        if vm.id == 0 || usize::from(vm.id) > MAX_GUEST_VMS {
            return Err(LayoutError::BadGuest(vm.id));
        }
        // Its passed-through devices, and a GICv2's virtual CPU interface (GICV, banked per
        // CPU), which the VM manager maps where the guest finds its CPU interface.
        let devices: Vec<IpaRange, MAX_DEVICES> = passthrough_spans(vm)
            .chain(virtual_cpu_interfaces(&config.system))
            .map(|(start, end)| IpaRange::new(start, end))
            .take(MAX_DEVICES)
            .collect();
        if let Some(bit) = vm.shared_ipa_bit {
            // A page-number bit below 48 (`alias` of 0 is the bit itself), above its RAM and
            // devices (IPA = PA), so every IPA with the bit set is an alias.
            let bad = Err(LayoutError::BadSharedBit(vm.id));
            let Some(limit) = crate::stage2::plan::alias(0, bit) else {
                return bad;
            };
            let ram_end = vm.ram_ipa.checked_add(vm.memory.size);
            if ram_end.is_none_or(|end| end > limit) || devices.iter().any(|d| d.end > limit) {
                return bad;
            }
        }
        // At most MAX_VMS - 1 guests besides the host.
        guests
            .push(GuestLayout {
                vm: vm.id,
                devices,
                shared_bit: vm.shared_ipa_bit,
            })
            .map_err(|_| LayoutError::BadGuest(vm.id))?;
    }
    guests.sort_unstable_by_key(|guest| guest.vm);
    Ok(guests)
}

/// Tables the memory pool needs for one RAM bank `start..end` (what
/// [`crate::stage2::memory_pool_tables`] says for a map with this one range): the root and one
/// table per 512 GiB, 1 GiB and 2 MiB window holding RAM. A `const fn` so the component sizes
/// its static pool with it.
pub const fn memory_pool_tables_for(start: u64, end: u64) -> usize {
    let mut windows = 0;
    let shifts = [39u32, 30, 21];
    let mut i = 0;
    while i < shifts.len() {
        windows += ((end - 1) >> shifts[i]) - (start >> shifts[i]) + 1;
        i += 1;
    }
    (1 + windows) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage2::{MemoryMap, memory_pool_tables};
    use hv_component_config::{
        Device, DeviceKind, MemProtectSettings, MmioGuardMode, Name, Region, Settings, System, Vm,
    };

    /// VM `id` (the host if 0) with its RAM at `ram_ipa` backed by `memory`, and `devices`.
    fn vm(id: u16, memory: Region, ram_ipa: u64, devices: &[(u64, u64, DeviceMode)]) -> Vm {
        Vm {
            id,
            name: Name::try_from("vm").unwrap(),
            host: id == 0,
            memory,
            ram_ipa,
            mte: false,
            shared_ipa_bit: None,
            cpus: Default::default(),
            mmio_guard: MmioGuardMode::Off,
            devices: devices
                .iter()
                .map(|&(base, size, mode)| Device {
                    name: Name::try_from("dev").unwrap(),
                    kind: DeviceKind::Pl011,
                    region: Region { base, size },
                    mode,
                    interrupt: None,
                })
                .collect(),
        }
    }

    fn config(devices: &[(u64, u64, DeviceMode)], settings: Settings) -> ComponentConfig {
        let memory = Region {
            base: 0x4200_0000,
            size: 0x3e00_0000,
        };
        let host = vm(0, memory, memory.base, devices);
        ComponentConfig {
            name: Name::try_from("mem-protect").unwrap(),
            crate_name: Name::try_from("hv-mem-protect").unwrap(),
            id: 0,
            region: Region {
                base: 0x4100_0000,
                size: 0x60_0000,
            },
            stack: 0x1_0000,
            system: System {
                ram: Region {
                    base: 0x4000_0000,
                    size: 0x4000_0000,
                },
                hypervisor: Region {
                    base: 0x4000_0000,
                    size: 0x200_0000,
                },
                vms: [host].into_iter().collect(),
                components: Default::default(),
                gics: Default::default(),
                console: Region::default(),
                control_line: None,
            },
            settings,
            swap_test: None,
        }
    }

    #[test]
    fn the_layout_follows_the_configuration() {
        let layout = host_layout(&config(
            &[
                (0x900_1000, 0x1000, DeviceMode::Emulated),
                (0x900_0010, 0x10, DeviceMode::Emulated),
                (0x900_2000, 0x1000, DeviceMode::Passthrough),
            ],
            Settings::MemProtect(MemProtectSettings {
                policy: hv_component_config::MappingPolicy::PageOnly,
                device_tables: None,
                crash: None,
            }),
        ))
        .unwrap();
        assert_eq!(layout.ram, IpaRange::new(0x4000_0000, 0x8000_0000));
        assert_eq!(layout.reserved, [IpaRange::new(0x4000_0000, 0x4200_0000)]);
        // Emulated devices only, rounded out to pages, sorted.
        assert_eq!(
            layout.device_holes.as_slice(),
            [
                IpaRange::new(0x900_0000, 0x900_1000),
                IpaRange::new(0x900_1000, 0x900_2000)
            ]
        );
        assert_eq!(layout.policy, MappingPolicy::PageOnly);
        // No settings: the default policy.
        let plain = host_layout(&config(&[], Settings::None)).unwrap();
        assert_eq!(plain.policy, MappingPolicy::LargestBlock);
    }

    #[test]
    fn the_control_line_is_never_the_hosts() {
        // Hot-swap's control line (a UART no VM is given) is a hole, so a host that pokes at it
        // takes an abort instead of reading the tool's frames.
        let mut with_line = config(&[], Settings::None);
        with_line.system.control_line = Some(Region {
            base: 0x904_0000,
            size: 0x1000,
        });
        let layout = host_layout(&with_line).unwrap();
        assert_eq!(
            layout.device_holes.as_slice(),
            [IpaRange::new(0x904_0000, 0x904_1000)]
        );
        // Hot-swap off: nothing is kept.
        assert!(
            host_layout(&config(&[], Settings::None))
                .unwrap()
                .device_holes
                .is_empty()
        );
    }

    #[test]
    fn unusable_configurations_are_refused() {
        let mut inside_ram = config(
            &[(0x5000_0000, 0x1000, DeviceMode::Emulated)],
            Settings::None,
        );
        assert_eq!(host_layout(&inside_ram), Err(LayoutError::HoleInRam));
        inside_ram.system.vms.clear();
        assert_eq!(host_layout(&inside_ram), Err(LayoutError::NoHost));
        let mut outside = config(&[], Settings::None);
        outside.system.hypervisor.base = 0x3000_0000;
        assert_eq!(host_layout(&outside), Err(LayoutError::ReservedOutsideRam));
        let mut huge = config(&[], Settings::None);
        huge.system.ram.size = 1 << 41;
        assert_eq!(host_layout(&huge), Err(LayoutError::BadRam));
    }

    fn guest(id: u16, devices: &[(u64, u64, DeviceMode)]) -> Vm {
        let memory = Region {
            base: 0x7000_0000,
            size: 0x1000_0000,
        };
        // Not the host, whatever its id (0 is refused, not taken for the host).
        Vm {
            host: false,
            ..vm(id, memory, 0x4000_0000, devices)
        }
    }

    #[test]
    fn guests_and_the_devices_passed_through_to_them() {
        let mut with_guests = config(
            &[(0x900_0000, 0x1000, DeviceMode::Emulated)],
            Settings::None,
        );
        let vms = &mut with_guests.system.vms;
        vms.push(guest(2, &[(0x901_0000, 0x1000, DeviceMode::Emulated)]))
            .unwrap();
        vms.push(guest(
            1,
            &[
                (0x903_0010, 0x20, DeviceMode::Passthrough),
                (0x902_0000, 0x1000, DeviceMode::Emulated),
            ],
        ))
        .unwrap();
        let guests = guest_layouts(&with_guests).unwrap();
        assert_eq!(
            guests.as_slice(),
            [
                GuestLayout {
                    vm: 1,
                    devices: Vec::from_slice(&[IpaRange::new(0x903_0000, 0x903_1000)]).unwrap(),
                    shared_bit: None,
                },
                GuestLayout {
                    vm: 2,
                    devices: Vec::new(),
                    shared_bit: None,
                },
            ]
        );
        // The host never maps a device passed through to a guest, nor its own emulated ones;
        // devices a guest has emulated stay the host's.
        let layout = host_layout(&with_guests).unwrap();
        assert_eq!(
            layout.device_holes.as_slice(),
            [
                IpaRange::new(0x900_0000, 0x900_1000),
                IpaRange::new(0x903_0000, 0x903_1000)
            ]
        );
        // A guest numbered 0 (the host's number) or past the guest VMs is refused.
        for bad in [0, MAX_GUEST_VMS as u16 + 1] {
            let mut config = config(&[], Settings::None);
            config.system.vms.push(guest(bad, &[])).unwrap();
            assert_eq!(guest_layouts(&config), Err(LayoutError::BadGuest(bad)));
        }
        // No guests: none.
        assert!(
            guest_layouts(&config(&[], Settings::None))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_shared_bit_lies_above_the_guests_ram_and_devices() {
        let with_bit = |bit: u8, devices: &[(u64, u64, DeviceMode)]| {
            let mut config = config(&[], Settings::None);
            let vm = Vm {
                shared_ipa_bit: Some(bit),
                ..guest(1, devices)
            };
            config.system.vms.push(vm).unwrap();
            guest_layouts(&config)
        };
        let passthrough = [(0x903_0000, 0x1000, DeviceMode::Passthrough)];
        // Its RAM is IPA 0x4000_0000..0x5000_0000.
        for bit in [31, 40, 47] {
            let guests = with_bit(bit, &passthrough).unwrap();
            assert_eq!(guests[0].shared_bit, Some(bit));
        }
        // Inside its RAM, below its end, outside a 48-bit IPA, not a page-number bit.
        for bit in [30, 29, 48, 63, 64, 200, 11, 0] {
            assert_eq!(
                with_bit(bit, &[]),
                Err(LayoutError::BadSharedBit(1)),
                "{bit}"
            );
        }
        // A device passed through at or above the bit.
        let high = [(1 << 32, 0x1000, DeviceMode::Passthrough)];
        assert_eq!(with_bit(32, &high), Err(LayoutError::BadSharedBit(1)));
        assert!(with_bit(33, &high).is_ok());
        // The stage 2 grows past 40 bits only for a bit that needs it.
        assert_eq!(guest_ipa_bits(None), 40);
        assert_eq!(guest_ipa_bits(Some(39)), 40);
        assert_eq!(guest_ipa_bits(Some(40)), 41);
        assert_eq!(guest_ipa_bits(Some(47)), 48);
    }

    #[test]
    fn the_const_pool_size_matches_the_memory_maps() {
        for (start, end) in [
            (0x4000_0000u64, 0x8000_0000u64),
            (0x4000_0000, 0x4000_1000),
            (0x3fe0_0000, 0x4020_0000),
            (0x80_0000_0000 - 0x20_0000, 0x80_0000_0000 + 0x20_0000),
        ] {
            let ram = [IpaRange::new(start, end)];
            let map = MemoryMap::new(&ram, 40).unwrap();
            assert_eq!(memory_pool_tables_for(start, end), memory_pool_tables(&map));
        }
    }
}
