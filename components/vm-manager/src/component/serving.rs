//! Serving one guest trap: [`Serving`] answers the kernel's `guest-trap` requests
//! (`GuestTrapServer`): SMCCC calls, our own vendor-hypervisor calls (the supervisor ping, the
//! host's calls on guest VMs), SGI register writes and MMIO accesses; and the test crash hook,
//! which may fire on any of them.

use defmt::{debug, info, warn};
use hv_component_rt::hv_ipc::Client;
use hv_component_rt::hv_ipc::addr::Ipa;
use hv_component_rt::hv_ipc::guest_abi::{host, smccc};
use hv_component_rt::hv_ipc::interfaces::guest_trap::{
    Conduit, GuestTrapServer, SgiRegister, TrapResolution,
};
use hv_component_rt::hv_ipc::interfaces::supervisor::{
    SupervisorInterface, SupervisorReply, SupervisorRequest,
};
use hv_component_rt::{Ipc, arch};

use super::VmManager;
use super::emulation::{Access, Console, Devices, KernelVirqs};
use crate::crash_hook::{self, CrashHook, CrashKind};
use crate::host_gic::HostGic;
use crate::policy;

impl VmManager {
    /// Crashes here if the test hook says so for this request; for `misanswer`, returns
    /// the wrong answer to give instead. Inlined, so a system without a hook pays a
    /// test for it and no call.
    #[inline(always)]
    fn crash_hook(&mut self, function: Option<u32>) -> Option<TrapResolution> {
        let hook = self.crash?;
        self.armed_crash_hook(hook, function)
    }

    /// `function`: the SMCCC function ID of the request, if it is a call.
    #[inline(never)]
    fn armed_crash_hook(
        &mut self,
        hook: CrashHook,
        function: Option<u32>,
    ) -> Option<TrapResolution> {
        let request = match hook.on_function {
            None => self.served,
            Some(only) if Some(only) == function => {
                self.hook_requests += 1;
                self.hook_requests
            }
            Some(_) => return None,
        };
        if !crash_hook::fires(&hook, request, self.start_count) {
            return None;
        }
        warn!(
            "vm-manager: crash hook fires on request {=u64}: {=str}",
            request,
            crash_hook::kind_name(hook.kind)
        );
        match hook.kind {
            CrashKind::Undefined => arch::udf(),
            CrashKind::Read { address } => {
                // SAFETY: Deliberately reads outside the component's region: the stage-2
                // translation faults and the kernel stops the component, so the read never
                // completes and nothing observes a value.
                unsafe { core::ptr::read_volatile(address as *const u64) };
                panic!("crash hook: read of {address:#x} did not fault");
            }
            CrashKind::Panic => panic!("crash hook: request {request}"),
            CrashKind::StackOverflow => {
                let depth = crash_hook::overflow_stack(0);
                panic!("crash hook: {depth} frames did not overflow the stack");
            }
            CrashKind::Misanswer => Some(TrapResolution::Resume),
        }
    }

    /// HYP_PING_SUPERVISOR: a call to the supervisor while serving the guest's call.
    fn ping_supervisor(ipc: &mut Ipc, nonce: u32) -> TrapResolution {
        let answer = Client::<SupervisorInterface, _>::new(&mut *ipc)
            .call(&SupervisorRequest::Ping { nonce });
        let x0 = match answer {
            Ok(SupervisorReply::Pong { nonce }) => u64::from(nonce),
            other => {
                warn!(
                    "vm-manager: ping to the supervisor failed: {}",
                    defmt::Debug2Format(&other)
                );
                smccc::NOT_SUPPORTED as u64
            }
        };
        TrapResolution::results([x0, 0, 0, 0])
    }

    /// An SMCCC call other than HYP_PING_SUPERVISOR: decided by the policy, and logged.
    fn smccc(&mut self, vm: u16, vcpu: u16, regs: [u64; 8]) -> TrapResolution {
        // Only guests share memory; the host owns its own.
        let services = policy::Services {
            mem_share: self.services.mem_share && vm != 0,
            ..self.services
        };
        let resolution = policy::decide(&regs, services);
        let function = regs[0] as u32;
        // Calls that change a CPU's or the VM's state are logged; queries (VERSION,
        // FEATURES, AFFINITY_INFO, unknown IDs) only at debug level, so a guest polling
        // them does not flood the log. (Names and summaries are made only for a line that
        // is logged: a query is on the hypercall's hot path.)
        let changes_state = !matches!(resolution, TrapResolution::Return { .. });
        if changes_state && let Some(name) = policy::psci_function_name(function) {
            let (kind, value) = policy::summarize(&resolution);
            info!(
                "vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) -> {=str} {=u64:#x}",
                vm, vcpu, name, function, kind, value
            );
        } else {
            let (_kind, _value) = policy::summarize(&resolution);
            debug!(
                "vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) -> {=str} {=u64:#x}",
                vm,
                vcpu,
                policy::psci_function_name(function).unwrap_or(policy::function_name(function)),
                function,
                _kind,
                _value
            );
        }
        // The VM is going away: its console's last, unfinished line goes out now.
        if matches!(
            resolution,
            TrapResolution::SystemOff | TrapResolution::SystemReset
        ) {
            self.flush_consoles(vm);
        }
        resolution
    }
}

/// The VM manager while it serves one call, with the IPC token: serving a guest trap may
/// call the supervisor or the MMIO guard.
pub(super) struct Serving<'a> {
    pub(super) manager: &'a mut VmManager,
    pub(super) ipc: &'a mut Ipc,
}

impl Serving<'_> {
    /// Our own vendor-hypervisor calls: the supervisor ping, and the host's calls on guest
    /// VMs (from the host only). `None`: not one of ours, for the policy to answer.
    #[inline(always)]
    fn vendor_call(&mut self, vm: u16, regs: &[u64; 8]) -> Option<TrapResolution> {
        let code = match regs[0] as u32 {
            host::HYP_PING_SUPERVISOR => {
                return Some(VmManager::ping_supervisor(self.ipc, regs[1] as u32));
            }
            host::HOST_VM_STATE if vm == 0 => {
                self.manager.refresh_guest_state(regs[1]);
                let state = self.manager.lifecycle.state(self.manager.system, regs[1]);
                let regs = match state {
                    Some((state, starts)) => [smccc::SUCCESS as u64, state, starts, 0],
                    None => [smccc::INVALID_PARAMETER as u64, 0, 0, 0],
                };
                return Some(TrapResolution::results(regs));
            }
            host::HOST_VM_RESTART if vm == 0 => {
                self.manager.refresh_guest_state(regs[1]);
                self.manager.restart_guest(self.ipc, regs[1])
            }
            host::HOST_VM_STOP if vm == 0 => self.manager.stop_guest(regs[1]),
            host::HOST_VM_CONSOLE_INPUT if vm == 0 => {
                return Some(self.manager.console_input(regs));
            }
            _ => return None,
        };
        Some(TrapResolution::results([code as u64, 0, 0, 0]))
    }
}

impl GuestTrapServer for Serving<'_> {
    fn smccc(&mut self, vm: u16, vcpu: u16, _conduit: Conduit, regs: [u64; 8]) -> TrapResolution {
        self.manager.served += 1;
        if let Some(answer) = self.vendor_call(vm, &regs) {
            return answer;
        }
        if let Some(wrong) = self.manager.crash_hook(Some(regs[0] as u32)) {
            return wrong;
        }
        let resolution = self.manager.smccc(vm, vcpu, regs);
        if vm == 0 {
            return resolution;
        }
        // A guest resets alone: its memory is wiped and reloaded before the kernel
        // restarts it. (The host's reset ends the run.)
        if resolution == TrapResolution::SystemReset {
            self.manager.reset_devices(vm);
            let resolution = VmManager::reset_guest(self.ipc, vm);
            if resolution == TrapResolution::SystemOff {
                self.manager.lifecycle.off(vm);
            } else {
                self.manager.lifecycle.running(vm);
            }
            return resolution;
        }
        if resolution == TrapResolution::SystemOff {
            self.manager.lifecycle.off(vm);
        }
        resolution
    }

    fn sgi_write(
        &mut self,
        vm: u16,
        vcpu: u16,
        register: SgiRegister,
        value: u64,
    ) -> TrapResolution {
        let manager = &mut *self.manager;
        manager.served += 1;
        // One security state: ICC_SGI1R_EL1 is how a guest sends; group 0 and the other
        // security state's SGIs reach no vCPU (as on a GIC whose guest SGIs are group 1).
        let sent = register == SgiRegister::Sgi1r
            && manager
                .gics
                .send_sgi(vm, usize::from(vcpu), value, &mut KernelVirqs);
        if !sent {
            debug!(
                "vm{=u16} vcpu{=u16}: SGI register write {=u64:#x} reaches no vCPU",
                vm, vcpu, value
            );
        }
        TrapResolution::MmioWritten
    }

    fn mmio(
        &mut self,
        vm: u16,
        vcpu: u16,
        ipa: Ipa,
        size: u8,
        write: bool,
        value: u64,
    ) -> TrapResolution {
        let manager = &mut *self.manager;
        manager.served += 1;
        if let Some(wrong) = manager.crash_hook(None) {
            return wrong;
        }
        let access = Access {
            vm,
            vcpu,
            ipa,
            size,
            write,
            value,
        };
        let mut console = Console {
            system: manager.system,
            failed: &mut manager.console_write_failed,
        };
        let devices = Devices {
            emulated: &manager.emulated,
            uarts: &mut manager.uarts,
            typed_ahead: &mut manager.typed_ahead,
            mmio_guard: manager
                .services
                .mmio_guard
                .then_some(&mut manager.guard_cache),
            host_gic: match (manager.gics.layout(), manager.host_filtered.first()) {
                (Some(layout), Some(&distributor)) => Some(HostGic {
                    version: layout.version,
                    distributor,
                    filtered: &manager.host_filtered,
                    guest_cpus: manager.guest_cpus,
                    all_cpus: manager.all_cpus,
                }),
                _ => None,
            },
            gics: &mut *manager.gics,
            console_mux: manager.console_mux.as_mut(),
        };
        VmManager::mmio(self.ipc, devices, access, &mut console)
    }
}
