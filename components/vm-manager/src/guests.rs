//! Creating the guest VMs the manifest declares (DESIGN decision 12), as a plan the component
//! carries out: for each guest, its memslots (locked: given to it and mapped in full by the
//! memory-protection component before it first runs), the devices passed through to it, and
//! then its start. Pure, host-tested; the component makes the calls (`component/guest_vms.rs`).
//!
//! A guest sees a standard machine: its RAM at the board's RAM base (the configuration's
//! `ram_ipa`) whatever physical memory backs it, its devices at their board addresses. One
//! memslot per guest today (the manifest gives each VM one RAM range); the memory-protection
//! component keeps several, so a VM with split RAM needs no new protocol.

use hv_component_config::{DeviceMode, Region, System, Vm};
use hv_ipc::guest_abi::host::vm_state;
use hv_ipc::lifecycle::{BadState, StateReader, StateWriter};

/// Most memslots and devices one guest is created with: its RAM, its passed-through devices
/// and a GICv2 virtual CPU interface.
pub const MAX_STEPS: usize = 2 + hv_component_config::MAX_DEVICES;

/// One step of a guest's creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Give the guest `[pa, pa + size)` as its IPA range `[ipa, ipa + size)`.
    Memslot {
        /// First IPA.
        ipa: u64,
        /// First physical address.
        pa: u64,
        /// Bytes.
        size: u64,
    },
    /// Map device registers `[pa, pa + size)` at `[ipa, ipa + size)`: a device passed through
    /// (IPA = PA), or the GICv2 virtual CPU interface (GICV) where the guest's GIC has its CPU
    /// interface (GICC).
    Device {
        /// First IPA.
        ipa: u64,
        /// First physical address.
        pa: u64,
        /// Bytes, page aligned.
        size: u64,
    },
}

/// Work on the guest VMs that waits for the component's next request: a component makes
/// calls only while it serves one, and both kinds of work call mem-protect and the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum GuestWork {
    /// Nothing.
    #[default]
    Idle = 0,
    /// Create and start every guest (the kernel said the system started).
    Create = 1,
    /// This instance was restarted after a fault: what the last one emulated for the guests
    /// (their GICs, consoles, life) is lost, so they cannot go on as they were (see
    /// [`recovery`]).
    Recover = 2,
}

impl GuestWork {
    /// The work a hand-over's code stands for.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Idle),
            1 => Some(Self::Create),
            2 => Some(Self::Recover),
            _ => None,
        }
    }
}

/// What a VM manager restarted without its predecessor's state does with one guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// It never ran (its creation was lost with the last instance): create and start it.
    Create,
    /// It ran: a guest whose interrupt controller and console were lost would go on against a
    /// model in its reset state (its interrupts disabled behind its back), so it is stopped and
    /// left off, for the host to restart (HOST_VM_RESTART) as after a power-off.
    Stop,
}

/// [`Recovery`] for a guest of which the kernel says (VM_STATUS) `vcpus_on` vCPUs are on and
/// whether it is `stopped`.
pub const fn recovery(vcpus_on: u64, stopped: bool) -> Recovery {
    if vcpus_on == 0 && !stopped {
        Recovery::Create
    } else {
        Recovery::Stop
    }
}

/// The guests of `system`, in VM id order.
pub fn guests(system: &System) -> impl Iterator<Item = &Vm> {
    system.vms.iter().filter(|vm| !vm.host)
}

/// How guest `vm` is created: its memslot, then its passed-through devices (each rounded out
/// to whole pages), then, on a GICv2, `virtual_cpu_interface` (GICV's physical range and the
/// GICC address the guest finds it at).
pub fn plan(
    vm: &Vm,
    virtual_cpu_interface: Option<(u64, Region)>,
) -> heapless::Vec<Step, MAX_STEPS> {
    const PAGE: u64 = 4096;
    let mut steps = heapless::Vec::new();
    // The capacity holds one memslot and every device a VM can have.
    let _ = steps.push(Step::Memslot {
        ipa: vm.ram_ipa,
        pa: vm.memory.base,
        size: vm.memory.size,
    });
    for device in vm
        .devices
        .iter()
        .filter(|device| device.mode == DeviceMode::Passthrough)
    {
        let base = device.region.base & !(PAGE - 1);
        let end = device.region.end().next_multiple_of(PAGE);
        let _ = steps.push(Step::Device {
            ipa: base,
            pa: base,
            size: end - base,
        });
    }
    if let Some((ipa, gicv)) = virtual_cpu_interface {
        let _ = steps.push(Step::Device {
            ipa,
            pa: gicv.base,
            size: gicv.size,
        });
    }
    steps
}

/// What the VM manager knows of each guest's life, for the host's HOST_VM_STATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// `vm_state` codes by VM id (the host's entry unused).
    states: [u64; hv_component_config::MAX_VMS],
    /// Starts by VM id: creation, resets, restarts.
    starts: [u64; hv_component_config::MAX_VMS],
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// Before creation every guest counts as failed: nothing runs until it is started.
    pub const fn new() -> Self {
        Self {
            states: [vm_state::FAILED; hv_component_config::MAX_VMS],
            starts: [0; hv_component_config::MAX_VMS],
        }
    }

    fn set(&mut self, vm: u16, state: u64) {
        if let Some(slot) = self.states.get_mut(usize::from(vm)) {
            *slot = state;
        }
    }

    /// Writes what it knows for a hot-swap's hand-over.
    pub fn export(&self, out: &mut StateWriter) -> Option<()> {
        out.put(&self.states)?;
        out.put(&self.starts)
    }

    /// Takes what [`Self::export`] wrote; every state must be one of `vm_state`'s.
    pub fn import(&mut self, input: &mut StateReader) -> Result<(), BadState> {
        let known = [vm_state::RUNNING, vm_state::OFF, vm_state::FAILED];
        self.states = input.take_if(|states: &[u64; hv_component_config::MAX_VMS]| {
            states.iter().all(|state| known.contains(state))
        })?;
        self.starts = input.take()?;
        Ok(())
    }

    /// Guest `vm` was started: created, reset or restarted.
    pub fn running(&mut self, vm: u16) {
        self.set(vm, vm_state::RUNNING);
        if let Some(starts) = self.starts.get_mut(usize::from(vm)) {
            *starts += 1;
        }
    }

    /// Whether guest `vm` is off, so that it may be restarted.
    pub fn is_off(&self, vm: u16) -> bool {
        self.states.get(usize::from(vm)) == Some(&vm_state::OFF)
    }

    /// Guest `vm` powered off, or could not be reset.
    pub fn off(&mut self, vm: u16) {
        self.set(vm, vm_state::OFF);
    }

    /// Guest `vm` could not be created or started.
    pub fn failed(&mut self, vm: u16) {
        self.set(vm, vm_state::FAILED);
    }

    /// HOST_VM_STATE for guest `vm` of `system`: its state code and starts, or `None` if `vm`
    /// is not a guest.
    pub fn state(&self, system: &System, vm: u64) -> Option<(u64, u64)> {
        let vm = guest_id(system, vm)?;
        let index = usize::from(vm);
        Some((self.states[index], self.starts[index]))
    }
}

/// `vm` as the id of one of `system`'s guests, if it is one.
pub fn guest_id(system: &System, vm: u64) -> Option<u16> {
    let vm = u16::try_from(vm).ok()?;
    guests(system).any(|guest| guest.id == vm).then_some(vm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hv_component_config::{Device, DeviceKind, MmioGuardMode, Name, Region};

    fn vm(id: u16, host: bool, devices: &[(u64, u64, DeviceMode)]) -> Vm {
        Vm {
            id,
            name: Name::try_from("vm").unwrap(),
            host,
            memory: Region {
                base: 0x7c00_0000,
                size: 0x400_0000,
            },
            ram_ipa: 0x4000_0000,
            mte: false,
            shared_ipa_bit: None,
            cpus: Default::default(),
            mmio_guard: MmioGuardMode::Optional,
            devices: devices
                .iter()
                .map(|&(base, size, mode)| Device {
                    name: Name::try_from("dev").unwrap(),
                    kind: DeviceKind::Other,
                    region: Region { base, size },
                    mode,
                    interrupt: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_guest_gets_its_ram_at_the_board_ram_base_and_its_passed_through_devices() {
        let guest = vm(
            1,
            false,
            &[
                (0x0900_0000, 0x1000, DeviceMode::Emulated),
                (0x0901_0800, 0x100, DeviceMode::Passthrough),
            ],
        );
        assert_eq!(
            plan(&guest, None).as_slice(),
            [
                Step::Memslot {
                    ipa: 0x4000_0000,
                    pa: 0x7c00_0000,
                    size: 0x400_0000
                },
                // Emulated devices stay unmapped; a passed-through one is rounded to its page.
                Step::Device {
                    ipa: 0x0901_0000,
                    pa: 0x0901_0000,
                    size: 0x1000
                },
            ]
        );
        // On a GICv2 the virtual CPU interface comes last, at the CPU interface's address.
        let gicv = Region {
            base: 0x0804_0000,
            size: 0x2000,
        };
        assert_eq!(
            plan(&guest, Some((0x0801_0000, gicv))).last(),
            Some(&Step::Device {
                ipa: 0x0801_0000,
                pa: 0x0804_0000,
                size: 0x2000
            })
        );
    }

    fn system() -> System {
        let mut system = System {
            ram: Region::default(),
            hypervisor: Region::default(),
            vms: Default::default(),
            components: Default::default(),
            gics: Default::default(),
            console: Region::default(),
            control_line: None,
        };
        system.vms.push(vm(0, true, &[])).unwrap();
        system.vms.push(vm(1, false, &[])).unwrap();
        system.vms.push(vm(2, false, &[])).unwrap();
        system
    }

    #[test]
    fn the_lifecycle_answers_for_guests_only() {
        let system = system();
        let mut lifecycle = Lifecycle::new();
        assert_eq!(lifecycle.state(&system, 1), Some((vm_state::FAILED, 0)));
        lifecycle.running(1);
        lifecycle.running(2);
        lifecycle.off(2);
        assert!(lifecycle.is_off(2) && !lifecycle.is_off(1));
        assert_eq!(lifecycle.state(&system, 1), Some((vm_state::RUNNING, 1)));
        assert_eq!(lifecycle.state(&system, 2), Some((vm_state::OFF, 1)));
        lifecycle.running(2);
        assert_eq!(lifecycle.state(&system, 2), Some((vm_state::RUNNING, 2)));
        lifecycle.failed(1);
        assert_eq!(lifecycle.state(&system, 1), Some((vm_state::FAILED, 1)));
        // Not guests: the host, VMs the system does not have, ids beyond u16.
        for vm in [0, 3, 17, u64::from(u16::MAX) + 2] {
            assert_eq!(lifecycle.state(&system, vm), None, "vm {vm}");
        }
        // Out-of-range ids are ignored, not a panic.
        lifecycle.running(u16::MAX);
    }

    #[test]
    fn the_host_is_not_a_guest() {
        let system = system();
        let ids: Vec<u16> = guests(&system).map(|vm| vm.id).collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn a_restart_creates_guests_that_never_ran_and_stops_the_rest() {
        assert_eq!(recovery(0, false), Recovery::Create);
        assert_eq!(recovery(2, false), Recovery::Stop);
        assert_eq!(recovery(0, true), Recovery::Stop, "powered off: left off");
        for work in [GuestWork::Idle, GuestWork::Create, GuestWork::Recover] {
            assert_eq!(GuestWork::from_code(work as u8), Some(work));
        }
        assert_eq!(GuestWork::from_code(3), None);
    }
}
