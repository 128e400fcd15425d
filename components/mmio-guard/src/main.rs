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
//!   gets a verdict. Every refusal is logged at warn level and counted per VM. A verdict is
//!   `cacheable` when the manifest lets this component notify the asker (probed once per asker
//!   with an empty NOTIFY): every enrolment or UNMAP of any VM then sets
//!   `NOTIFY_MMIO_GUARD_CHANGED` on each such asker (askers keep only "allowed", which a MAP
//!   never takes back), and so does a restart of this component
//!   (on every component, since it no longer knows who kept what).
//!
//! The decisions live in [`policy`] (host-tested); the VM table comes from the manifest through
//! the component's configuration (`hv_component_rt::config()`, see [`policy::vm_configs`]). Enrolments, unmaps
//! and MAPs that start a new range are logged at info level, other MAPs and the calls
//! themselves at debug level, so a guest cannot flood the log (Linux maps page by page).
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
        Conduit, GuestTrapServer, TrapResolution, hot,
    };
    use hv_component_rt::hv_ipc::interfaces::mmio_guard::{
        MmioGuardInterface, MmioGuardReply, MmioGuardServer, NOTIFY_MMIO_GUARD_CHANGED,
    };
    use hv_component_rt::hv_ipc::lifecycle::{Refusal, StateTag};
    use hv_component_rt::{Ipc, Server, StartInfo, SwapState, serve_forever};

    use crate::policy::{self, Change, Guard};

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        info!(
            "mmio-guard: component {=usize} up (start {=u64})",
            info.index, info.start_count
        );
        let system = &hv_component_rt::config().system;
        if info.start_count > 0 {
            warn!(
                "mmio-guard: started again: enrolments and maps made before are lost, unless a swap hands them over"
            );
            // Whoever kept a verdict of the previous instance must drop it; the manifest's
            // `notifies` decides who can be told (the others are refused, and kept nothing).
            for id in (0..system.components.len()).filter(|&id| id != info.index) {
                let _ = hv_component_rt::notify(id, NOTIFY_MMIO_GUARD_CHANGED);
            }
        }
        let mut server = MmioGuardComponent {
            guard: Guard::new(&policy::vm_configs(system)),
            asker: 0,
            probed: 0,
            notifiable: 0,
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
        /// The sender of the call being served.
        asker: u64,
        /// Components (bit = id) already probed for whether they can be notified.
        probed: u64,
        /// Those that can: they get `NOTIFY_MMIO_GUARD_CHANGED` on every change.
        notifiable: u64,
    }

    impl MmioGuardComponent {
        /// Whether component `id` can be notified (the manifest's `notifies`), probed once with
        /// an empty NOTIFY.
        fn can_notify(&mut self, id: u64) -> bool {
            let Some(bit) = 1u64.checked_shl(id as u32).filter(|_| id < 64) else {
                return false;
            };
            if self.probed & bit == 0 {
                self.probed |= bit;
                if hv_component_rt::notify(id as usize, 0).is_ok() {
                    self.notifiable |= bit;
                }
            }
            self.notifiable & bit != 0
        }

        /// Tells every component that may keep verdicts that they changed.
        fn verdicts_changed(&self) {
            for id in (0..64).filter(|id| self.notifiable & (1 << id) != 0) {
                if hv_component_rt::notify(id, NOTIFY_MMIO_GUARD_CHANGED).is_err() {
                    warn!(
                        "mmio-guard: cannot notify component {=usize} of a change",
                        id
                    );
                }
            }
        }
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
            let ranges_before = self.guard.mapped(vm).len();
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
                // Linux maps every ioremapped page, one call each (tens of thousands per boot):
                // only a MAP that starts a new range of declared granules is worth a line.
                Some(Change::Mapped(granule)) if self.guard.mapped(vm).len() > ranges_before => {
                    info!(
                        "mmio-guard: vm{=u16} mapped {=u64:#x} ({=usize} ranges)",
                        vm,
                        granule.base(),
                        self.guard.mapped(vm).len()
                    )
                }
                Some(Change::Mapped(granule)) => {
                    debug!("mmio-guard: vm{=u16} mapped {=u64:#x}", vm, granule.base())
                }
                // As MAPs that only grow a range: a guest that maps and unmaps in a loop must not
                // flood the log.
                Some(Change::Unmapped(granule)) => {
                    debug!(
                        "mmio-guard: vm{=u16} unmapped {=u64:#x}",
                        vm,
                        granule.base()
                    )
                }
                None => {}
            }
            // Askers keep only "allowed" verdicts, which a MAP cannot make wrong: only an
            // enrolment or an UNMAP takes one back.
            if matches!(answer.change, Some(Change::Enrolled | Change::Unmapped(_))) {
                self.verdicts_changed();
            }
            TrapResolution::results(answer.regs)
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
            let asker = self.asker;
            MmioGuardReply::Verdict {
                allowed: verdict.allowed,
                enrolled: verdict.enrolled,
                cacheable: self.can_notify(asker),
            }
        }
    }

    impl Server for MmioGuardComponent {
        fn handle_call(
            &mut self,
            sender: u64,
            interface: u16,
            request: &[u8],
            reply: &mut [u8; MESSAGE_MAX],
        ) -> usize {
            self.asker = sender;
            // The MMIO guard's hypercalls are SMCCC calls: by hand (`guest_trap::hot`).
            if interface == hv_ipc::abi::interface::GUEST_TRAP {
                return hot::serve(self, request, reply);
            }
            hv_ipc::dispatch::<MmioGuardInterface, _>(self, interface, request, reply)
        }

        /// Every VM's enrolment and mapped granules go to the next instance: a VM that
        /// declared its MMIO keeps its declarations across a swap.
        fn swap_state(&self) -> SwapState {
            SwapState::Keeps {
                schema: policy::STATE_SCHEMA,
                version: policy::STATE_VERSION,
            }
        }

        fn interface_schema(&self) -> u64 {
            <MmioGuardInterface as hv_ipc::Interface>::SCHEMA_HASH
        }

        fn export_state(&mut self, out: &mut [u8]) -> Option<usize> {
            self.guard.export(out)
        }

        fn import_state(&mut self, tag: StateTag, state: &[u8]) -> Result<(), Refusal> {
            if (tag.schema, tag.version) != (policy::STATE_SCHEMA, policy::STATE_VERSION) {
                warn!(
                    "mmio-guard: a swap hands over state {=u64:#x} v{=u32}, not ours",
                    tag.schema, tag.version
                );
                return Err(Refusal::State);
            }
            match self.guard.import(state) {
                Ok(()) => {
                    for config in self.guard.configs() {
                        info!(
                            "mmio-guard: vm{=u16} taken over: {=usize} mapped ranges",
                            config.vm,
                            self.guard.mapped(config.vm).len()
                        );
                    }
                    Ok(())
                }
                Err(policy::NotTaken) => {
                    warn!("mmio-guard: the state handed over is not a valid guard state");
                    Err(Refusal::State)
                }
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
