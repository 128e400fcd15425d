//! The supervisor component (component index 0 by convention).
//!
//! - Serves the `supervisor` interface: `Ping` → `Pong` with the same nonce, `Status` → the
//!   restart and fault counters.
//! - On [`NOTIFY_COMPONENT_FAULTED`](hv_ipc::abi::NOTIFY_COMPONENT_FAULTED) (and once at start,
//!   in case it was itself restarted while others were down) it reads every other component's
//!   state with `kernel_op::COMPONENT_STATE` and restarts each Faulted one with
//!   `kernel_op::RESTART`, with the back-off [`policy`] decides (a `READ_COUNTER` deadline).
//!
//! The policy is host-tested; the rest only exists for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

// On the host only the tests use the policy.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod policy;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod swap;

#[cfg(target_os = "none")]
mod component {
    //! The component proper: the server loop around the policy.

    use defmt::{info, warn};
    use hv_component_rt::hv_ipc;
    use hv_component_rt::hv_ipc::abi::{
        ComponentState, MESSAGE_MAX, NOTIFY_COMPONENT_FAULTED, kernel_op,
    };
    use hv_component_rt::hv_ipc::interfaces::supervisor::{
        SupervisorInterface, SupervisorReply, SupervisorServer,
    };
    use hv_component_rt::{Ipc, Server, StartInfo, serve_forever, syscall};

    use crate::policy::{MAX_COMPONENTS, Supervisor};

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        info!(
            "supervisor: component {=usize} up (start {=u64})",
            info.index, info.start_count
        );
        let mut server = SupervisorComponent {
            own_index: info.index,
            policy: Supervisor::new(&crate::policy::restart_policies(
                &hv_component_rt::config().system,
            )),
        };
        server.check_components();
        serve_forever(&mut ipc, &mut server)
    }

    struct SupervisorComponent {
        own_index: usize,
        policy: Supervisor,
    }

    impl SupervisorComponent {
        /// Looks at every other component and restarts the faulted ones.
        fn check_components(&mut self) {
            let (now, hz) = syscall::read_counter().unwrap_or_else(|error| {
                warn!(
                    "supervisor: READ_COUNTER failed ({=i64}); restarting without back-off",
                    error as i64
                );
                (0, 0)
            });
            for index in (0..MAX_COMPONENTS).filter(|&index| index != self.own_index) {
                // Indices without a component answer NoSuchTarget: nothing to do.
                let Ok(status) = syscall::component_state(index) else {
                    continue;
                };
                if status.state != ComponentState::Faulted as u64 {
                    continue;
                }
                if self.policy.never_restarts(index) {
                    // Counted, then told to the kernel once: the component reads Retired
                    // from now on, and calls to it fail instead of waiting for a restart.
                    self.policy.component_faulted(index, status.faults, now, hz);
                    warn!(
                        "supervisor: component {=usize} faulted (ESR {=u64:#x}) and is never restarted",
                        index, status.last_esr
                    );
                    if let Err(error) = syscall::restart(index, kernel_op::RESTART_NEVER) {
                        warn!(
                            "supervisor: RESTART never of component {=usize} refused ({=i64})",
                            index, error as i64
                        );
                    }
                    continue;
                }
                let Some(decision) = self.policy.component_faulted(index, status.faults, now, hz)
                else {
                    continue;
                };
                info!(
                    "supervisor: restart component {=usize} (fault {=u64}, ESR {=u64:#x}), delay {=u64} ms",
                    index, status.faults, status.last_esr, decision.delay_ms
                );
                match syscall::restart(index, decision.deadline) {
                    Ok(()) => self.policy.restarted(index),
                    Err(error) => {
                        warn!(
                            "supervisor: RESTART of component {=usize} refused ({=i64})",
                            index, error as i64
                        );
                        self.policy.restart_failed(index);
                    }
                }
            }
        }
    }

    impl SupervisorServer for SupervisorComponent {
        fn ping(&mut self, nonce: u32) -> SupervisorReply {
            SupervisorReply::Pong { nonce }
        }

        fn status(&mut self) -> SupervisorReply {
            SupervisorReply::Status {
                restarts: self.policy.restarts,
                components_faulted: self.policy.faults,
            }
        }
    }

    impl Server for SupervisorComponent {
        fn handle_call(
            &mut self,
            _sender: u64,
            interface: u16,
            request: &[u8],
            reply: &mut [u8; MESSAGE_MAX],
        ) -> usize {
            hv_ipc::dispatch::<SupervisorInterface, _>(self, interface, request, reply)
        }

        fn handle_notification(&mut self, bits: u64) {
            if bits & NOTIFY_COMPONENT_FAULTED != 0 {
                self.check_components();
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
