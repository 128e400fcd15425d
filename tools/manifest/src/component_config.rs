//! From the checked manifest to each component's configuration (`hv-component-config`): the
//! one typed path by which components learn about the system. `cargo xtask` writes the result
//! beside the image; the component's build reads it back.

use crate::format::{DeviceMode, MmioGuard};
use crate::model::{Manifest, Restart};
use hv_component_config as config;
use hv_component_config::heapless;

/// Why a manifest's system does not fit what components can be told (bounded lists, names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn name(what: &str, text: &str) -> Result<config::Name, ConfigError> {
    config::Name::try_from(text).map_err(|_| {
        ConfigError(format!(
            "{what} \"{text}\" is longer than {} bytes",
            config::NAME_MAX
        ))
    })
}

fn region(region: hv_board::Region) -> config::Region {
    config::Region {
        base: region.base,
        size: region.size,
    }
}

fn push<T, const N: usize>(
    list: &mut heapless::Vec<T, N>,
    item: T,
    what: &str,
) -> Result<(), ConfigError> {
    list.push(item)
        .map_err(|_| ConfigError(format!("more than {N} {what}: components cannot be told")))
}

impl Manifest {
    /// The system as every component is told it (without the components' regions, which the
    /// composer places: [`Self::component_config`] has them).
    pub fn component_system(&self) -> Result<config::System, ConfigError> {
        self.component_system_in(&[])
    }

    /// The system with the components' regions, by id.
    fn component_system_in(
        &self,
        regions: &[hv_board::Region],
    ) -> Result<config::System, ConfigError> {
        let mut vms = heapless::Vec::new();
        for (id, vm) in self.vms.iter().enumerate() {
            let mut devices = heapless::Vec::new();
            for grant in &vm.devices {
                let device = config::Device {
                    name: name("device", grant.device.name)?,
                    kind: match grant.device.compatible {
                        "arm,pl011" => config::DeviceKind::Pl011,
                        _ => config::DeviceKind::Other,
                    },
                    region: region(grant.device.region),
                    mode: match grant.mode {
                        DeviceMode::Passthrough => config::DeviceMode::Passthrough,
                        DeviceMode::Emulated => config::DeviceMode::Emulated,
                    },
                    interrupt: grant.device.interrupt,
                };
                push(&mut devices, device, "devices in one VM")?;
            }
            let mut cpus = heapless::Vec::new();
            for &cpu in &vm.cpus {
                let cpu = u8::try_from(cpu).map_err(|_| ConfigError(format!("CPU {cpu}")))?;
                push(&mut cpus, cpu, "vCPUs in one VM")?;
            }
            let vm = config::Vm {
                id: u16::try_from(id).map_err(|_| ConfigError("too many VMs".into()))?,
                name: name("VM", &vm.name)?,
                host: vm.host,
                memory: region(vm.memory),
                ram_ipa: if vm.host {
                    vm.memory.base
                } else {
                    self.board.ram_base
                },
                mte: vm.mte,
                shared_ipa_bit: vm.shared_ipa_bit,
                cpus,
                mmio_guard: match vm.mmio_guard {
                    MmioGuard::Off => config::MmioGuardMode::Off,
                    MmioGuard::Optional => config::MmioGuardMode::Optional,
                    MmioGuard::Enforced => config::MmioGuardMode::Enforced,
                },
                devices,
            };
            push(&mut vms, vm, "VMs")?;
        }
        let mut components = heapless::Vec::new();
        for component in &self.components {
            let summary = config::ComponentSummary {
                name: name("component", &component.name)?,
                serves: component
                    .serves
                    .as_deref()
                    .map(|interface| name("interface", interface))
                    .transpose()?,
                restart: match component.restart {
                    Restart::Backoff {
                        min_delay,
                        max_delay,
                    } => config::Restart::Backoff {
                        min_ms: min_delay.as_millis() as u64,
                        max_ms: max_delay.as_millis() as u64,
                    },
                    Restart::Never => config::Restart::Never,
                },
                region: regions
                    .get(components.len())
                    .copied()
                    .map(region)
                    .unwrap_or_default(),
            };
            push(&mut components, summary, "components")?;
        }
        let mut gics = heapless::Vec::new();
        for gic in self.board.gics {
            let mut described = config::Gic {
                version: 2,
                distributor: region(gic.gicd),
                redistributors: config::Region::default(),
                redistributor_stride: 0,
                cpu_interface: config::Region::default(),
                virtual_cpu_interface: config::Region::default(),
                virtual_timer: self.board.timer.virt,
            };
            match gic.cpu_interfaces {
                hv_board::GicCpuInterfaces::V2 { gicc, gicv, .. } => {
                    described.cpu_interface = region(gicc);
                    described.virtual_cpu_interface = region(gicv);
                }
                hv_board::GicCpuInterfaces::V3 { gicr, gicr_stride } => {
                    described.version = 3;
                    described.redistributors = region(gicr);
                    described.redistributor_stride = gicr_stride;
                }
            }
            push(&mut gics, described, "GICs")?;
        }
        Ok(config::System {
            ram: region(self.machine.usable),
            hypervisor: region(self.machine.hypervisor),
            vms,
            components,
            gics,
            console: region(self.board.console().region),
            control_line: self
                .board
                .control_page()
                .filter(|_| self.hot_swap)
                .map(region),
        })
    }

    /// Component `id`'s configuration, given the regions the composer gave every component
    /// (by id).
    pub fn component_config(
        &self,
        id: usize,
        regions: &[hv_board::Region],
    ) -> Result<config::ComponentConfig, ConfigError> {
        let placed_at = *regions
            .get(id)
            .ok_or_else(|| ConfigError(format!("no region for component {id}")))?;
        let component = self
            .components
            .get(id)
            .ok_or_else(|| ConfigError(format!("no component {id}")))?;
        Ok(config::ComponentConfig {
            name: name("component", &component.name)?,
            crate_name: name("crate", &component.crate_name)?,
            id: id as u16,
            region: region(placed_at),
            stack: component.stack,
            system: self.component_system_in(regions)?,
            settings: component.settings,
            swap_test: None,
        })
    }
}
