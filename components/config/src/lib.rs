//! A component's configuration: the one typed path from the manifest to a component.
//!
//! `cargo xtask build` turns the checked manifest (`hv-manifest`'s model) into one
//! [`ComponentConfig`] per component and writes it as TOML beside the image
//! (`target/xtask/<system>/components/<name>.toml`, readable by a person). The component's
//! build script calls [`build::configure`] (feature `std`), which reads that file, refuses it
//! with the component's name and the field when it is missing or malformed, links the component
//! at its region with its stack, and embeds the configuration as postcard bytes. At start the
//! component's runtime decodes those bytes once (`hv_component_rt::config()`).
//!
//! Why build time and not a page the composer fills: mem-protect sizes its static table pools
//! and ownership records from the RAM it serves, and a refused configuration should stop the
//! build, not a running system. Why TOML on disk and postcard inside: the file is for people
//! and gives field-naming errors; the component decodes the compact form without an allocator.
//!
//! Every list is bounded (heapless), so a component knows its worst case at compile time.
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
pub mod build;
mod settings;

pub use heapless;
pub use settings::{
    CrashHook, CrashKind, MappingPolicy, MemProtectSettings, Settings, TemplateSettings,
    VmManagerSettings,
};

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Most VMs a system has (the host included).
pub const MAX_VMS: usize = 4;
/// Most components a system has.
pub const MAX_COMPONENTS: usize = 8;
/// Most devices one VM is given.
pub const MAX_DEVICES: usize = 16;
/// Most vCPUs one VM has.
pub const MAX_VCPUS: usize = 8;
/// Most GIC ranges the host is kept from: the distributor and one per guest CPU.
pub const MAX_FILTERED_GIC_RANGES: usize = 1 + MAX_VMS * MAX_VCPUS;
/// Longest name (of a VM, a component or a device) in bytes.
pub const NAME_MAX: usize = 32;

/// Bytes of the start-up stack: the free top of a component's region that its runtime decodes
/// the configuration on (the linker script keeps this much free above the image). Decoding
/// nests one `Result` per level and took about five times the configuration's size in stack
/// when measured (17 KiB for a 3.5 KiB configuration), so a test keeps
/// `size_of::<ComponentConfig>()` under an eighth of this.
pub const STARTUP_STACK: u64 = 0x10000;

/// A name from the manifest.
pub type Name = String<NAME_MAX>;

/// A physical (or, for a VM's own view, intermediate physical) address range.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether `address` lies inside.
    pub const fn contains(&self, address: u64) -> bool {
        address >= self.base && address - self.base < self.size
    }
}

/// Everything one component is told.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentConfig {
    /// Its name in the manifest.
    pub name: Name,
    /// The cargo package that builds it (a file meant for another crate is refused).
    #[serde(rename = "crate")]
    pub crate_name: Name,
    /// Its id: its position among the manifest's components.
    pub id: u16,
    /// The memory it is loaded into and runs in (IPA = PA).
    pub region: Region,
    /// Its stack in bytes, just above its IPC buffers at the region's start (an overflow
    /// faults below the region instead of running into its data).
    pub stack: u64,
    /// The system around it.
    pub system: System,
    /// Its own settings (the manifest's `[component.settings]`).
    #[serde(default)]
    pub settings: Settings,
    /// A misbehaviour to show in a hot-swap (`cargo xtask swap --test-hook`; never set by a
    /// manifest): the system tests of each rollback cause build a new image with one.
    #[serde(default)]
    pub swap_test: Option<SwapTest>,
}

/// How a test build misbehaves when it is swapped in (docs/hot-swap.md).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SwapTest {
    /// Nothing: a build that differs from the running one only by this setting (a new build
    /// id), and swaps in normally.
    Rebuilt,
    /// It refuses the state the old instance hands over.
    RefuseState,
    /// It faults as it starts, before it is ready.
    FaultAtStart,
    /// It takes longer than the swap's deadline to accept the state.
    Slow,
    /// It never answers: it loops for good before accepting the state (the kernel takes its
    /// CPU back at the swap's deadline).
    Hang,
    /// Its served interface's schema hash differs (as if the interface had changed), without
    /// a migration declared.
    SchemaChange,
}

/// The system as components need to know it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct System {
    /// The RAM the image is composed for (the hypervisor and every VM lie in it).
    pub ram: Region,
    /// The hypervisor's own part of `ram` (kernel, components); never any VM's.
    pub hypervisor: Region,
    /// Every VM, by id (the host is VM 0).
    pub vms: Vec<Vm, MAX_VMS>,
    /// Every component, by id.
    pub components: Vec<ComponentSummary, MAX_COMPONENTS>,
    /// The board's interrupt controllers, one per GIC version it may have (QEMU's virt has a
    /// GICv2 and a GICv3, chosen when it starts; the CPU tells which is there). Guests see the
    /// same layout, emulated.
    #[serde(default)]
    pub gics: Vec<Gic, 2>,
    /// The board's console UART (the host's, when it has it): with guests whose consoles are
    /// emulated, the VM manager shares its keyboard between them (`host_console_mux`).
    #[serde(default)]
    pub console: Region,
    /// The page of hot-swap's control line while hot-swap is on (docs/hot-swap.md): the
    /// hypervisor's alone, left out of every VM's stage 2 even where no device is described.
    #[serde(default)]
    pub control_line: Option<Region>,
}

/// One GIC configuration of the board, where every VM sees it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Gic {
    /// The architecture version: 2 or 3.
    pub version: u8,
    /// The distributor (GICD).
    pub distributor: Region,
    /// GICv3: the redistributors (GICR), one frame of `redistributor_stride` bytes per CPU.
    #[serde(default)]
    pub redistributors: Region,
    /// GICv3: bytes per CPU within `redistributors`.
    #[serde(default)]
    pub redistributor_stride: u64,
    /// GICv2: the CPU interface (GICC), where a guest finds its virtual one.
    #[serde(default)]
    pub cpu_interface: Region,
    /// GICv2: the virtual CPU interface (GICV) mapped at a guest's `cpu_interface`.
    #[serde(default)]
    pub virtual_cpu_interface: Region,
    /// The EL1 virtual timer's PPI (INTID).
    pub virtual_timer: u32,
}

impl System {
    /// VM `id`, if there is one.
    pub fn vm(&self, id: u16) -> Option<&Vm> {
        self.vms.iter().find(|vm| vm.id == id)
    }

    /// The GIC ranges the host may not reach directly once guests run beside it: the
    /// distributor (whose group enables gate every CPU's interrupts, the guests' included) and,
    /// on a GICv3, the redistributor frames of the CPUs guests are pinned to (frame *n* is CPU
    /// *n*'s), consecutive frames merged. They are left out of the host's stage 2 and its
    /// accesses there are filtered by the component that takes the `mmio` route
    /// (docs/vgic.md). Empty for a system without guests: the host keeps its direct GIC.
    pub fn host_filtered_gic_ranges(&self) -> Vec<Region, MAX_FILTERED_GIC_RANGES> {
        let mut ranges: Vec<Region, MAX_FILTERED_GIC_RANGES> = Vec::new();
        let mut guest_cpus: Vec<u8, { MAX_VMS * MAX_VCPUS }> = self
            .vms
            .iter()
            .filter(|vm| !vm.host)
            .flat_map(|vm| vm.cpus.iter().copied())
            .collect();
        if guest_cpus.is_empty() {
            return ranges;
        }
        guest_cpus.sort_unstable();
        // The distributors of every GIC version the board may have share a base: one range
        // covers the largest.
        if let Some(base) = self.gics.iter().map(|gic| gic.distributor.base).min() {
            let end = self
                .gics
                .iter()
                .map(|gic| gic.distributor.end())
                .max()
                .unwrap_or(base);
            let _ = ranges.push(Region {
                base,
                size: end - base,
            });
        }
        for gic in self.gics.iter().filter(|gic| gic.redistributor_stride != 0) {
            let stride = gic.redistributor_stride;
            for &cpu in &guest_cpus {
                let base = gic.redistributors.base + u64::from(cpu) * stride;
                if base + stride > gic.redistributors.end() {
                    continue;
                }
                match ranges.last_mut() {
                    Some(last) if last.end() == base => last.size += stride,
                    _ => {
                        let _ = ranges.push(Region { base, size: stride });
                    }
                }
            }
        }
        ranges
    }

    /// The console UART the host reaches only through the VM manager, which shares the
    /// keyboard between the host and the guests whose consoles it emulates (docs/vgic.md): the
    /// board's console when some guest has an emulated PL011 and the host is given that UART.
    pub fn host_console_mux(&self) -> Option<Region> {
        let guest_console = self.vms.iter().filter(|vm| !vm.host).any(|vm| {
            vm.devices.iter().any(|device| {
                device.mode == DeviceMode::Emulated && device.kind == DeviceKind::Pl011
            })
        });
        let host_has_it = self.vms.iter().filter(|vm| vm.host).any(|vm| {
            vm.devices.iter().any(|device| {
                device.mode == DeviceMode::Passthrough && device.region.base == self.console.base
            })
        });
        (guest_console && host_has_it && self.console.size != 0).then_some(self.console)
    }

    /// Whether some component serves the interface named `interface`.
    pub fn serves(&self, interface: &str) -> bool {
        self.components
            .iter()
            .any(|component| component.serves.as_deref() == Some(interface))
    }
}

/// One VM.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Vm {
    /// Its id (the host is 0).
    pub id: u16,
    /// Its name (console prefixes, logs).
    pub name: Name,
    /// Whether it is the host VM.
    pub host: bool,
    /// The physical memory backing its RAM.
    pub memory: Region,
    /// The IPA its RAM starts at: `memory.base` for the host (IPA = PA), the board's RAM base
    /// for a guest, which sees a standard machine whatever physical pages back it.
    pub ram_ipa: u64,
    /// Whether it may use MTE (allocation tags scrubbed before it runs; HCR_EL2.ATA set).
    pub mte: bool,
    /// The IPA bit it uses as its "shared" attribute (seed 004), if any: a page it shared
    /// (MEM_SHARE) is also reachable at its IPA with this bit set.
    #[serde(default)]
    pub shared_ipa_bit: Option<u8>,
    /// The physical CPU of each vCPU, by vCPU index.
    pub cpus: Vec<u8, MAX_VCPUS>,
    /// Its MMIO guard mode.
    pub mmio_guard: MmioGuardMode,
    /// The devices it is given.
    pub devices: Vec<Device, MAX_DEVICES>,
}

/// Whether a VM is offered the MMIO guard, and whether it must use it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MmioGuardMode {
    /// Not offered: the hypercalls answer NOT_SUPPORTED.
    Off,
    /// Offered; a VM that enrols has only what it mapped emulated.
    Optional,
    /// Enrolled from its first instruction.
    Enforced,
}

/// A device given to a VM.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Device {
    /// Its name on the board.
    pub name: Name,
    /// Its model.
    pub kind: DeviceKind,
    /// Where the VM sees it.
    pub region: Region,
    /// How the VM reaches it.
    pub mode: DeviceMode,
    /// Its interrupt (GIC INTID), if it has one: the SPI an emulated device raises.
    #[serde(default)]
    pub interrupt: Option<u32>,
}

/// Device models components tell apart.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// An Arm PrimeCell UART (`arm,pl011`).
    Pl011,
    /// Anything else (passed through, never emulated).
    Other,
}

/// How a VM reaches a device.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceMode {
    /// Mapped into its stage 2.
    Passthrough,
    /// Left unmapped; vm-manager emulates every access.
    Emulated,
}

/// What a component needs to know about another.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentSummary {
    /// Its name.
    pub name: Name,
    /// The interface it serves, by name.
    #[serde(default)]
    pub serves: Option<Name>,
    /// What happens when it faults.
    pub restart: Restart,
    /// Its memory (the supervisor checks a hot-swapped image was linked for it).
    pub region: Region,
}

/// A restart policy.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Restart {
    /// Restart at once; in a crash loop wait `min-ms`, doubled up to `max-ms`.
    Backoff {
        /// The first wait in milliseconds.
        min_ms: u64,
        /// The longest wait in milliseconds.
        max_ms: u64,
    },
    /// Leave it stopped.
    Never,
}

/// Why embedded configuration bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl ComponentConfig {
    /// Decodes the postcard bytes [`build::configure`] embedded.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        postcard::from_bytes(bytes).map_err(|_| DecodeError)
    }

    /// The VM this system runs as the host.
    pub fn host(&self) -> Option<&Vm> {
        self.system.vms.iter().find(|vm| vm.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_fits_the_startup_stack() {
        let size = core::mem::size_of::<ComponentConfig>() as u64;
        assert!(
            size * 8 <= STARTUP_STACK,
            "ComponentConfig is {size} bytes: raise STARTUP_STACK (and check regions still fit)"
        );
    }

    fn system(guest_cpus: &[&[u8]]) -> System {
        let vm = |id: u16, cpus: &[u8]| Vm {
            id,
            name: Name::try_from("vm").unwrap(),
            host: id == 0,
            memory: Region::default(),
            ram_ipa: 0,
            mte: false,
            shared_ipa_bit: None,
            cpus: cpus.iter().copied().collect(),
            mmio_guard: MmioGuardMode::Off,
            devices: Vec::new(),
        };
        let mut vms: Vec<Vm, MAX_VMS> = Vec::new();
        let _ = vms.push(vm(0, &[0]));
        for (n, cpus) in guest_cpus.iter().enumerate() {
            let _ = vms.push(vm(n as u16 + 1, cpus));
        }
        let region = |base, size| Region { base, size };
        let mut gics = Vec::new();
        let _ = gics.push(Gic {
            version: 2,
            distributor: region(0x0800_0000, 0x1000),
            redistributors: Region::default(),
            redistributor_stride: 0,
            cpu_interface: region(0x0801_0000, 0x2000),
            virtual_cpu_interface: region(0x0804_0000, 0x2000),
            virtual_timer: 27,
        });
        let _ = gics.push(Gic {
            version: 3,
            distributor: region(0x0800_0000, 0x1_0000),
            redistributors: region(0x080a_0000, 8 * 0x2_0000),
            redistributor_stride: 0x2_0000,
            cpu_interface: Region::default(),
            virtual_cpu_interface: Region::default(),
            virtual_timer: 27,
        });
        System {
            ram: Region::default(),
            hypervisor: Region::default(),
            vms,
            components: Vec::new(),
            gics,
            console: Region::default(),
            control_line: None,
        }
    }

    #[test]
    fn the_host_is_kept_from_the_distributor_and_guest_redistributors() {
        assert!(
            system(&[]).host_filtered_gic_ranges().is_empty(),
            "no guest"
        );
        let ranges = system(&[&[2, 1], &[5]]).host_filtered_gic_ranges();
        assert_eq!(
            ranges.as_slice(),
            [
                Region {
                    base: 0x0800_0000,
                    size: 0x1_0000
                },
                // CPUs 1 and 2 merged, then CPU 5.
                Region {
                    base: 0x080c_0000,
                    size: 0x4_0000
                },
                Region {
                    base: 0x0814_0000,
                    size: 0x2_0000
                },
            ]
        );
        // A CPU past the redistributor region has no frame to keep.
        let past = system(&[&[9]]).host_filtered_gic_ranges();
        assert_eq!(past.len(), 1);
    }
}
