//! The supervisor component (component index 0 by convention).
//!
//! - Serves the `supervisor` interface: `Ping` → `Pong` with the same nonce, `Status` → the
//!   restart and fault counters.
//! - On [`NOTIFY_COMPONENT_FAULTED`](hv_ipc::abi::NOTIFY_COMPONENT_FAULTED) (and once at start,
//!   in case it was itself restarted while others were down) it reads every other component's
//!   state with `kernel_op::COMPONENT_STATE` and restarts each Faulted one with
//!   `kernel_op::RESTART`, with the back-off [`policy`] decides (a `READ_COUNTER` deadline).
//!
//! - With `hot-swap = true` in the manifest, it serves the board's control line
//!   (`NOTIFY_CONTROL_INPUT`): reads the tool's frames, stages the image ([`swap`]), asks the
//!   kernel for the swap (SWAP) and, when it ends (`NOTIFY_SWAP_DONE`), tells the tool how
//!   (docs/hot-swap.md).
//!
//! The policy and the transfer's checks are host-tested; the rest only exists for
//! `target_os = "none"`.
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
        ComponentState, MESSAGE_MAX, NOTIFY_COMPONENT_FAULTED, NOTIFY_CONTROL_INPUT,
        NOTIFY_SWAP_DONE, SwapOutcome, kernel_op,
    };
    use hv_component_rt::hv_ipc::interfaces::supervisor::{
        SupervisorInterface, SupervisorReply, SupervisorServer,
    };
    use hv_component_rt::hv_ipc::swap::{FRAME_MAX, FrameDecoder, Request, Step};
    use hv_component_rt::{Ipc, Server, StartInfo, serve_forever, syscall};

    use crate::policy::{MAX_COMPONENTS, Supervisor};
    use crate::swap::{Action, Receiver, Target, final_response};

    /// Where a swapped-in image is received: the largest image the supervisor takes.
    const STAGING: usize = 512 * 1024;
    static mut STAGING_AREA: [u8; STAGING] = [0; STAGING];

    /// How long a new instance may take to accept the state, from the swap's start: past it,
    /// the kernel rolls the swap back (docs/hot-swap.md).
    const SWAP_DEADLINE_MS: u64 = 2_000;

    /// How long the line may stay quiet in the middle of a transfer before the supervisor
    /// goes back to waiting (the tool waits for each answer, so a pause means it is gone).
    const TRANSFER_PAUSE_MS: u32 = 500;

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        info!(
            "supervisor: component {=usize} up (start {=u64})",
            info.index, info.start_count
        );
        let staging = &raw mut STAGING_AREA;
        let mut server = SupervisorComponent {
            own_index: info.index,
            policy: Supervisor::new(&crate::policy::restart_policies(
                &hv_component_rt::config().system,
            )),
            // SAFETY: `main` runs once per start and is the only code that names the static.
            receiver: Receiver::new(unsafe { &mut *staging }, info.index),
            decoder: FrameDecoder::new(),
            swapping: false,
        };
        server.check_components();
        serve_forever(&mut ipc, &mut server)
    }

    struct SupervisorComponent {
        own_index: usize,
        policy: Supervisor,
        /// The hot-swap transfer from the control line.
        receiver: Receiver<'static>,
        decoder: FrameDecoder,
        /// A SWAP was asked for and has not ended.
        swapping: bool,
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

    impl SupervisorComponent {
        /// Reads the control line while the tool talks, answering each frame; returns when
        /// the line is quiet or a swap is ordered (it happens once this component waits).
        fn serve_control_line(&mut self) {
            let mut bytes = [0u8; MESSAGE_MAX];
            loop {
                // Frame by frame: each is answered as soon as it is complete.
                let Ok(count) = syscall::control_read(&mut bytes, TRANSFER_PAUSE_MS, true) else {
                    return;
                };
                if count == 0 {
                    return;
                }
                for &byte in &bytes[..count] {
                    let action = match self.decoder.push(byte) {
                        Step::Pending => continue,
                        Step::Dropped(error) => self.receiver.refuse_frame(error),
                        Step::Frame(len) => match self.decoder.take::<Request>(len) {
                            Ok(request) => {
                                let targets = targets();
                                self.receiver.handle(request, &targets, |index| {
                                    syscall::component_build(index).unwrap_or(0)
                                })
                            }
                            Err(error) => self.receiver.refuse_frame(error),
                        },
                    };
                    self.act(action);
                }
                if self.swapping {
                    return;
                }
            }
        }

        fn act(&mut self, action: Action) {
            match action {
                Action::Ignore => {}
                Action::Reply(response) => send(&response),
                Action::Swap(order) => {
                    let image = self.receiver.image();
                    info!(
                        "supervisor: swapping component {=usize} for build {=u64:#x} ({=u32} bytes)",
                        order.index, order.build_id, order.image_len
                    );
                    match syscall::swap(image, order.args(), SWAP_DEADLINE_MS) {
                        Ok(()) => self.swapping = true,
                        Err(error) => {
                            warn!("supervisor: SWAP refused ({=i64})", error as i64);
                            self.receiver.finished();
                            send(&hv_component_rt::hv_ipc::swap::Response::Refused {
                                reason: "the kernel refused the swap (image too large for its slot, or a swap under way)",
                            });
                        }
                    }
                }
            }
        }

        /// The kernel's swap ended: tell the tool how.
        fn swap_done(&mut self) {
            self.swapping = false;
            let Ok((code, micros, state_len)) = syscall::swap_status() else {
                return;
            };
            let outcome = SwapOutcome::of(code).unwrap_or(SwapOutcome::None);
            if let Some(order) = self.receiver.finished() {
                info!(
                    "supervisor: swap of component {=usize} ended: {=str}",
                    order.index,
                    outcome.describe()
                );
                send(&final_response(&order, outcome, micros, state_len));
            }
        }
    }

    /// Every component, where the configuration placed it.
    fn targets() -> heapless::Vec<Target<'static>, MAX_COMPONENTS> {
        hv_component_rt::config()
            .system
            .components
            .iter()
            .map(|component| Target {
                name: component.name.as_str(),
                region_start: component.region.base,
                region_end: component.region.base + component.region.size,
            })
            .collect()
    }

    /// Sends `response` on the control line.
    fn send(response: &hv_component_rt::hv_ipc::swap::Response<'_>) {
        let mut frame = [0u8; FRAME_MAX];
        if let Ok(bytes) = hv_component_rt::hv_ipc::swap::encode(response, &mut frame) {
            let _ = syscall::control_write(bytes);
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
            if bits & NOTIFY_SWAP_DONE != 0 {
                self.swap_done();
            }
            if bits & NOTIFY_CONTROL_INPUT != 0 && !self.swapping {
                self.serve_control_line();
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
