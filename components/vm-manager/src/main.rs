//! The VM manager component: decides what guests' SMCCC calls mean.
//!
//! The kernel routes a guest's SMCCC call (HVC, or SMC trapped by HCR_EL2.TSC) to this
//! component as a `guest_trap` request, on the stopped vCPU's behalf; the component answers with
//! a `TrapResolution` the kernel carries out. The decisions live in [`policy`] (host-tested);
//! each PSCI call is logged with its name and result.
//!
//! Test builds may carry a crash hook ([`crash_hook`]) and a grant probe ([`probe`]), both set
//! up by `build.rs`.
//!
//! Everything but the policy and the hook's settings exists only for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

// On the host only the tests use these; without the hook, its constructors are unused.
#[cfg_attr(
    any(not(target_os = "none"), not(vm_manager_crash_hook)),
    allow(dead_code)
)]
mod crash_hook;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod policy;
// On the host only the tests use these; without the probe, nothing does.
#[cfg_attr(
    any(not(target_os = "none"), not(vm_manager_probe_grants)),
    allow(dead_code)
)]
mod probe;

#[cfg(target_os = "none")]
mod component {
    //! The component proper: the server loop around the policy.

    use defmt::{debug, info, warn};
    use hv_component_rt::hv_ipc::abi::MESSAGE_MAX;
    use hv_component_rt::hv_ipc::interfaces::guest_trap::{
        GuestTrap, GuestTrapInterface, TrapResolution,
    };
    use hv_component_rt::hv_ipc::interfaces::supervisor::{
        SupervisorInterface, SupervisorReply, SupervisorRequest,
    };
    use hv_component_rt::hv_ipc::{self, Client, Interface, RemoteError};
    use hv_component_rt::{Ipc, Server, StartInfo, arch, serve_forever};

    use crate::crash_hook::{self, CrashKind};
    use crate::policy;

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        info!(
            "vm-manager: component {=usize} up (start {=u64})",
            info.index, info.start_count
        );
        if let Some(hook) = crash_hook::HOOK {
            info!(
                "vm-manager: crash hook: {=str} on request {=u64} (armed: {=bool})",
                hook.kind.name(),
                hook.on_call,
                info.start_count == 0
            );
        }
        #[cfg(vm_manager_probe_grants)]
        crate::probe::run(&mut ipc);
        let mut server = VmManager {
            start_count: info.start_count,
            served: 0,
        };
        serve_forever(&mut ipc, &mut server)
    }

    struct VmManager {
        /// The instance's start count (x3 at entry), for the crash hook.
        start_count: u64,
        /// guest_trap requests this instance has taken.
        served: u64,
    }

    impl VmManager {
        /// Crashes here if the test hook says so for this request.
        fn crash_hook(&self) {
            let Some(hook) = crash_hook::HOOK else {
                return;
            };
            if !hook.fires(self.served, self.start_count) {
                return;
            }
            warn!(
                "vm-manager: crash hook fires on request {=u64}: {=str}",
                self.served,
                hook.kind.name()
            );
            match hook.kind {
                CrashKind::Undefined => arch::udf(),
                CrashKind::AbortKernel { address } => {
                    // SAFETY: Deliberately reads outside the component's region: the stage-2
                    // translation faults and the kernel stops the component, so the read never
                    // completes and nothing observes a value.
                    unsafe { core::ptr::read_volatile(address as *const u64) };
                    panic!("crash hook: read of {address:#x} did not fault");
                }
                CrashKind::Panic => panic!("crash hook: request {}", self.served),
            }
        }
    }

    impl VmManager {
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
                    policy::NOT_SUPPORTED
                }
            };
            TrapResolution::Return {
                regs: [x0, 0, 0, 0],
            }
        }
    }

    impl Server for VmManager {
        fn serve_call(&mut self, ipc: &mut Ipc, sender: u64, interface: u16, len: usize) -> usize {
            let request =
                hv_ipc::decode_request::<GuestTrapInterface>(&ipc.rx()[..len.min(MESSAGE_MAX)]);
            if let (GuestTrapInterface::ID, Ok(GuestTrap::Smccc { regs, .. })) =
                (interface, &request)
                && regs[0] as u32 == policy::HYP_PING_SUPERVISOR
            {
                self.served += 1;
                let resolution = Self::ping_supervisor(ipc, regs[1] as u32);
                return hv_ipc::encode_reply::<GuestTrapInterface>(&Ok(resolution), ipc.tx())
                    .unwrap_or(0);
            }
            let (rx, tx) = ipc.rx_tx();
            self.handle_call(sender, interface, &rx[..len.min(MESSAGE_MAX)], tx)
        }

        fn handle_call(
            &mut self,
            _sender: u64,
            interface: u16,
            request: &[u8],
            reply: &mut [u8; MESSAGE_MAX],
        ) -> usize {
            if interface != GuestTrapInterface::ID {
                return hv_ipc::encode_reply::<GuestTrapInterface>(
                    &Err(RemoteError::UnknownOperation),
                    reply,
                )
                .unwrap_or(0);
            }
            self.served += 1;
            self.crash_hook();
            hv_ipc::serve::<GuestTrapInterface>(request, reply, |trap| match trap {
                GuestTrap::Smccc { vm, vcpu, regs, .. } => {
                    let resolution = policy::decide(&regs);
                    let function = regs[0] as u32;
                    let (kind, value) = policy::summarize(&resolution);
                    // Calls that change a CPU's or the VM's state are logged; queries (VERSION,
                    // FEATURES, AFFINITY_INFO, unknown IDs) only at debug level, so a guest
                    // polling them does not flood the log.
                    let changes_state = !matches!(resolution, TrapResolution::Return { .. });
                    if let (true, Some(name)) =
                        (changes_state, policy::psci_function_name(function))
                    {
                        info!(
                            "vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) -> {=str} {=u64:#x}",
                            vm, vcpu, name, function, kind, value
                        );
                    } else {
                        debug!(
                            "vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) -> {=str} {=u64:#x}",
                            vm,
                            vcpu,
                            policy::psci_function_name(function)
                                .unwrap_or(policy::function_name(function)),
                            function,
                            kind,
                            value
                        );
                    }
                    resolution
                }
            })
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
