//! Creating, resetting and stopping the guest VMs: at the system's start (the plan from
//! [`guests`] carried out with the memory-protection component and the kernel), for a guest's
//! own SYSTEM_RESET, and for the host's HOST_VM_STOP and HOST_VM_RESTART.

use defmt::{info, warn};
use hv_component_rt::Ipc;
use hv_component_rt::hv_component_config::{Region, Vm};
use hv_component_rt::hv_ipc::Client;
use hv_component_rt::hv_ipc::abi::kernel_op;
use hv_component_rt::hv_ipc::guest_abi::{host, smccc};
use hv_component_rt::hv_ipc::interfaces::guest_trap::TrapResolution;
use hv_component_rt::hv_ipc::interfaces::mem_protect::{
    MemProtectInterface, MemProtectReply, MemProtectRequest,
};

use super::VmManager;
use crate::guests::{self, GuestWork, Recovery, Step};

impl VmManager {
    /// Does the guest work that waits for a request ([`GuestWork`]), once.
    #[cold]
    pub(super) fn guest_work(&mut self, ipc: &mut Ipc) {
        match core::mem::take(&mut self.guest_work) {
            GuestWork::Idle => {}
            GuestWork::Create => {
                for vm in guests::guests(self.system) {
                    self.create_and_start(ipc, vm);
                }
            }
            GuestWork::Recover => self.recover_guests(ipc),
        }
    }

    /// After a restart without the last instance's state: each guest that never ran is
    /// created now; each that ran is stopped and left off for the host (`guests::recovery`).
    fn recover_guests(&mut self, ipc: &mut Ipc) {
        for vm in guests::guests(self.system) {
            let status =
                hv_component_rt::kernel_op(kernel_op::VM_STATUS, [u64::from(vm.id), 0, 0, 0]);
            let Ok([vcpus_on, stopped, _]) = status else {
                self.lifecycle.failed(vm.id);
                continue;
            };
            if guests::recovery(vcpus_on, stopped == 1) == Recovery::Create {
                info!(
                    "vm-manager: restarted before guest VM {=u16} {=str} ran: creating it now",
                    vm.id,
                    vm.name.as_str()
                );
                self.create_and_start(ipc, vm);
                continue;
            }
            let stop = hv_component_rt::kernel_op(kernel_op::VM_STOP, [u64::from(vm.id), 0, 0, 0]);
            self.lifecycle.off(vm.id);
            warn!(
                "vm-manager: restarted without its guests' state: guest VM {=u16} {=str} {=str}; the host may restart it (HOST_VM_RESTART)",
                vm.id,
                vm.name.as_str(),
                match (stopped, stop) {
                    (1, _) => "was off and stays off",
                    (_, Ok(_)) => "is stopped (its GIC and console were lost)",
                    (_, Err(_)) => "could not be stopped (VM_STOP refused)",
                }
            );
        }
    }

    /// Creates guest `vm` and starts its vCPU 0.
    fn create_and_start(&mut self, ipc: &mut Ipc, vm: &Vm) {
        // A GICv2 guest's CPU interface is GICV, mapped where the board has GICC.
        let virtual_cpu_interface = self
            .gics
            .layout()
            .filter(|layout| layout.version == hv_vgic::Version::V2)
            .map(|layout| (layout.cpu_interface.base, layout.virtual_cpu_interface));
        if let Err(why) = Self::create_guest(ipc, vm, virtual_cpu_interface) {
            self.lifecycle.failed(vm.id);
            warn!(
                "vm-manager: guest VM {=u16} {=str} not created: {=str}",
                vm.id,
                vm.name.as_str(),
                why
            );
            return;
        }
        match hv_component_rt::kernel_op(kernel_op::VM_START, [u64::from(vm.id), 0, 0, 0]) {
            Ok([0, ..]) => {
                self.lifecycle.running(vm.id);
                info!(
                    "vm-manager: guest VM {=u16} {=str} started",
                    vm.id,
                    vm.name.as_str()
                );
            }
            Ok([status, ..]) => warn!(
                "vm-manager: guest VM {=u16} {=str}: its CPU did not start ({=i64})",
                vm.id,
                vm.name.as_str(),
                status as i64
            ),
            Err(error) => warn!(
                "vm-manager: guest VM {=u16} {=str}: VM_START refused ({=i64})",
                vm.id,
                vm.name.as_str(),
                error.code()
            ),
        }
    }

    /// Gives guest `vm` its memory and devices through the memory-protection component.
    fn create_guest(
        ipc: &mut Ipc,
        vm: &hv_component_rt::hv_component_config::Vm,
        virtual_cpu_interface: Option<(u64, Region)>,
    ) -> Result<(), &'static str> {
        for step in guests::plan(vm, virtual_cpu_interface) {
            let request = match step {
                Step::Memslot { ipa, pa, size } => MemProtectRequest::AddMemslot {
                    vm: vm.id,
                    ipa,
                    pa,
                    size,
                },
                Step::Device { ipa, pa, size } => MemProtectRequest::MapDevice {
                    vm: vm.id,
                    ipa,
                    pa,
                    size,
                },
            };
            let answer = Client::<MemProtectInterface, _>::new(&mut *ipc).call(&request);
            match answer {
                Ok(MemProtectReply::Done { leaves }) => info!(
                    "vm-manager: vm{=u16}: {} mapped ({=u64} leaves)",
                    vm.id,
                    defmt::Debug2Format(&step),
                    leaves
                ),
                Ok(MemProtectReply::Refused { reason }) => {
                    warn!(
                        "vm-manager: vm{=u16}: {} refused: {}",
                        vm.id,
                        defmt::Debug2Format(&step),
                        defmt::Debug2Format(&reason)
                    );
                    return Err("the memory-protection component refused its memory");
                }
                Err(error) => {
                    warn!(
                        "vm-manager: vm{=u16}: mem-protect call failed: {}",
                        vm.id,
                        defmt::Debug2Format(&error)
                    );
                    return Err("the memory-protection component could not be called");
                }
            }
        }
        Ok(())
    }

    /// Takes in what the kernel knows of guest `vm` (if it is one): a guest the kernel
    /// reports stopped (after HOST_VM_STOP, or a trap nothing could answer) is off.
    pub(super) fn refresh_guest_state(&mut self, vm: u64) {
        let Some(vm) = guests::guest_id(self.system, vm) else {
            return;
        };
        if let Ok([_, 1, _]) =
            hv_component_rt::kernel_op(kernel_op::VM_STATUS, [u64::from(vm), 0, 0, 0])
        {
            self.lifecycle.off(vm);
        }
    }

    /// HOST_VM_STOP: guest `vm` stops (at once, or as its vCPUs next exit). Returns the
    /// code for the host's x0.
    pub(super) fn stop_guest(&mut self, vm: u64) -> i64 {
        let Some(vm) = guests::guest_id(self.system, vm) else {
            return smccc::INVALID_PARAMETER;
        };
        match hv_component_rt::kernel_op(kernel_op::VM_STOP, [u64::from(vm), 0, 0, 0]) {
            Ok([stopped, ..]) => {
                info!(
                    "vm-manager: vm{=u16} stopped for the host{=str}",
                    vm,
                    if stopped == 1 {
                        ""
                    } else {
                        " (as its vCPUs next exit)"
                    }
                );
                if stopped == 1 {
                    self.lifecycle.off(vm);
                }
                smccc::SUCCESS
            }
            Err(error) => {
                warn!(
                    "vm-manager: vm{=u16}: VM_STOP refused ({=i64})",
                    vm,
                    error.code()
                );
                smccc::NOT_SUPPORTED
            }
        }
    }

    /// HOST_VM_RESTART: guest `vm`, off, is wiped, reloaded and started afresh. Returns the
    /// code for the host's x0.
    pub(super) fn restart_guest(&mut self, ipc: &mut Ipc, vm: u64) -> i64 {
        let Some(vm) = guests::guest_id(self.system, vm) else {
            return smccc::INVALID_PARAMETER;
        };
        if !self.lifecycle.is_off(vm) {
            return host::code::VM_RUNNING;
        }
        self.reset_devices(vm);
        if Self::reset_guest(ipc, vm) != TrapResolution::SystemReset {
            return smccc::NOT_SUPPORTED;
        }
        match hv_component_rt::kernel_op(kernel_op::VM_START, [u64::from(vm), 0, 0, 0]) {
            Ok([0, ..]) => {
                self.lifecycle.running(vm);
                info!("vm-manager: vm{=u16} restarted for the host", vm);
                smccc::SUCCESS
            }
            other => {
                warn!(
                    "vm-manager: vm{=u16} could not be started again: {}",
                    vm,
                    defmt::Debug2Format(&other)
                );
                self.lifecycle.failed(vm);
                smccc::NOT_SUPPORTED
            }
        }
    }

    /// Wipes guest `vm`'s memory and reloads its images for its SYSTEM_RESET; on failure
    /// the VM cannot start afresh and is stopped instead.
    pub(super) fn reset_guest(ipc: &mut Ipc, vm: u16) -> TrapResolution {
        let wiped = Client::<MemProtectInterface, _>::new(&mut *ipc)
            .call(&MemProtectRequest::WipeVm { vm });
        if !matches!(wiped, Ok(MemProtectReply::Done { .. })) {
            warn!(
                "vm-manager: vm{=u16}: wipe failed ({}); the VM is stopped",
                vm,
                defmt::Debug2Format(&wiped)
            );
            return TrapResolution::SystemOff;
        }
        if let Err(error) = hv_component_rt::kernel_op(kernel_op::VM_LOAD, [u64::from(vm), 0, 0, 0])
        {
            warn!(
                "vm-manager: vm{=u16}: VM_LOAD refused ({=i64}); the VM is stopped",
                vm,
                error.code()
            );
            return TrapResolution::SystemOff;
        }
        info!("vm-manager: vm{=u16}: memory wiped and images reloaded", vm);
        TrapResolution::SystemReset
    }
}
