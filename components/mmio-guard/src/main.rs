//! The MMIO guard component: lets a VM declare where emulated MMIO may happen, and answers
//! whether an access may be emulated.
//!
//! It serves two interfaces from one loop:
//!
//! - `guest-trap`: the kernel routes the MMIO guard's SMCCC calls (HYP_MEMINFO,
//!   MMIO_GUARD_INFO, ENROLL, MAP, UNMAP; the manifest's route table names the function IDs) to
//!   this component, on the calling vCPU's behalf; each is answered with
//!   `TrapResolution::Return`;
//! - `mmio-guard`: a component about to emulate an access (the VM manager) asks `Check` and
//!   gets a verdict. Every refusal is logged at warn level and counted per VM.
//!
//! The decisions live in [`policy`] (host-tested); the VM table comes from the manifest through
//! the component's configuration (`hv_component_rt::config()`, see [`policy::vm_configs`]). State changes (enrolment, map,
//! unmap) are logged at info level, the calls themselves at debug level, so a guest cannot
//! flood the log with repeated calls.
//!
//! Everything but the policy exists only for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

// On the host only the tests use the policy.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod policy;

#[cfg(target_os = "none")]
mod component {
    //! The component proper: the server loop around the policy.

    use defmt::{debug, info, warn};
    use hv_component_rt::hv_ipc;
    use hv_component_rt::hv_ipc::abi::MESSAGE_MAX;
    use hv_component_rt::hv_ipc::addr::Ipa;
    use hv_component_rt::hv_ipc::interfaces::guest_trap::{
        Conduit, GuestTrapInterface, GuestTrapServer, TrapResolution,
    };
    use hv_component_rt::hv_ipc::interfaces::mmio_guard::{
        MmioGuardInterface, MmioGuardReply, MmioGuardServer,
    };
    use hv_component_rt::{Ipc, Server, StartInfo, serve_forever};

    use crate::policy::{self, Change, Guard};

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        info!(
            "mmio-guard: component {=usize} up (start {=u64})",
            info.index, info.start_count
        );
        if info.start_count > 0 {
            warn!("mmio-guard: restarted: enrolments and maps made before are lost");
        }
        let mut server = MmioGuardComponent {
            guard: Guard::new(&policy::vm_configs(&hv_component_rt::config().system)),
        };
        for config in server.guard.configs() {
            info!(
                "mmio-guard: vm{=u16}: {=str}, RAM {=u64:#x}..{=u64:#x}",
                config.vm,
                config.mode.name(),
                config.ram_start,
                config.ram_end
            );
        }
        serve_forever(&mut ipc, &mut server)
    }

    struct MmioGuardComponent {
        guard: Guard,
    }

    /// Guest traps: the MMIO guard's SMCCC calls.
    impl GuestTrapServer for MmioGuardComponent {
        fn smccc(
            &mut self,
            vm: u16,
            vcpu: u16,
            _conduit: Conduit,
            regs: [u64; 8],
        ) -> TrapResolution {
            let answer = self.guard.hypercall(vm, &regs);
            let function = regs[0] as u32;
            debug!(
                "mmio-guard: vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) x1 {=u64:#x} -> {=u64:#x}",
                vm,
                vcpu,
                policy::function_name(function),
                function,
                regs[1],
                answer.regs[0]
            );
            match answer.change {
                Some(Change::Enrolled) => info!("mmio-guard: vm{=u16} enrolled", vm),
                Some(Change::Mapped(granule)) => {
                    info!("mmio-guard: vm{=u16} mapped {=u64:#x}", vm, granule.base())
                }
                Some(Change::Unmapped(granule)) => {
                    info!(
                        "mmio-guard: vm{=u16} unmapped {=u64:#x}",
                        vm,
                        granule.base()
                    )
                }
                None => {}
            }
            TrapResolution::Return { regs: answer.regs }
        }
    }

    /// Questions from other components.
    impl MmioGuardServer for MmioGuardComponent {
        fn check(&mut self, vm: u16, ipa: Ipa, len: u64) -> MmioGuardReply {
            let verdict = self.guard.check(vm, ipa, len);
            if !verdict.allowed {
                warn!(
                    "mmio-guard: refused vm{=u16} ipa {=u64:#x} len {=u64}",
                    vm, ipa.0, len
                );
            }
            MmioGuardReply::Verdict {
                allowed: verdict.allowed,
                enrolled: verdict.enrolled,
            }
        }
    }

    impl Server for MmioGuardComponent {
        fn handle_call(
            &mut self,
            _sender: u64,
            interface: u16,
            request: &[u8],
            reply: &mut [u8; MESSAGE_MAX],
        ) -> usize {
            hv_ipc::dispatch::<(GuestTrapInterface, MmioGuardInterface), _>(
                self, interface, request, reply,
            )
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
