//! Hot-swap on the world stack: replacing a component's image while the system runs
//! (docs/hot-swap.md has the protocol and its guarantees).
//!
//! The supervisor asks with the SWAP kernel operation ([`Registry::request_swap`]); the CPU it
//! runs on carries the swap out as soon as its stack is empty again (it then holds no
//! component's lock, so taking the target's cannot deadlock). From then on the CPU holds the
//! target's lock until the swap ends: its callers on other CPUs wait in the lock's FIFO, and
//! are served afterwards by whichever instance is then in place. Nothing refuses them.
//!
//! The steps are calls on the lifecycle interface (`hv_ipc::lifecycle`) whose caller is the
//! kernel itself ([`Caller::Swap`]); each answer moves the swap on ([`Registry::swap_reply`],
//! or [`Registry::swap_fault`] when the component faults instead):
//!
//! 1. **Export**: the old instance hands its state over page by page into the kernel's
//!    hand-off buffer, or says it is not swappable (then nothing has changed).
//! 2. **Import**: the new image is copied from the requester's staging area into the region
//!    (the image store still holds the old one), started afresh, and handed the state.
//! 3. **Commit** when it accepts: the new image goes into the image store (restarts use it).
//!    **Rollback** when it refuses, faults, answers nonsense or answers after the deadline:
//!    the old image is reloaded from the store and handed its own state back.
//!
//! An instance that never answers is caught too: for the whole swap this CPU's deadline is
//! armed ([`Machine::set_deadline`]: the EL2 timer, whose interrupt takes the CPU back from a
//! component), at the swap's deadline, and afresh for a rollback. When it passes
//! ([`Registry::deadline_passed`]) the instance called is stopped and the swap ends as if it had
//! faulted, or answered too late.

use core::sync::atomic::Ordering;

use hv_abi::PhysRange;
use hv_ipc::abi::{self, ComponentState, MESSAGE_MAX, SwapOutcome, SyscallError};
use hv_ipc::lifecycle::{self, LifecycleReply, LifecycleRequest, PAGE_MAX, STATE_MAX, StateTag};

use super::{Caller, Cpu, Delivery, Event, Level, Machine, Registry, release};

/// A swap this CPU carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapJob {
    /// The component swapped.
    pub target: usize,
    /// Who asked (notified when it ends).
    requester: usize,
    /// The new image, in the requester's region.
    image: PhysRange,
    /// Its entry point.
    entry: u64,
    phase: Phase,
    /// When the swap started (counter ticks), once it has.
    started: u64,
    /// The old instance's build.
    old_build: u64,
    /// How long the new instance may take to accept the state, from the start (the
    /// requester's choice), in milliseconds.
    deadline_ms: u64,
    /// The state handed over: its tag and length (valid once exported).
    tag: StateTag,
    total: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Asked for; starts when this CPU's stack is empty.
    Requested,
    /// The old instance hands its state over; `received` bytes so far.
    Exporting { received: u32 },
    /// The new instance takes the state; `sent` bytes so far.
    Importing { sent: u32 },
    /// Rolling back for `reason`: the old instance takes its state back; `sent` bytes so far.
    Restoring { reason: SwapOutcome, sent: u32 },
}

/// How the last swap ended, for SWAP_STATUS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapReport {
    /// How.
    pub outcome: SwapOutcome,
    /// From its start to its end, in counter ticks.
    pub ticks: u64,
    /// Bytes of state handed over.
    pub state_len: u32,
}

impl SwapReport {
    /// Before any swap ended.
    pub const NONE: Self = Self {
        outcome: SwapOutcome::None,
        ticks: 0,
        state_len: 0,
    };
}

impl<E: Copy + Send> Registry<E> {
    /// SWAP from component `requester` (on top of `cpu`): swap component `target` for the
    /// image at `image` in the requester's region, entered `entry_offset` bytes into the
    /// target's region, rolling back if the new instance has not accepted the state
    /// `deadline_ms` after the start. Checks the request and records it; the swap starts once
    /// `cpu`'s stack is empty.
    ///
    /// # Errors
    /// `NoSuchTarget` for no such component; `BadArgument` for the requester itself or the
    /// supervisor as target, an image outside the requester's region, empty, larger than the
    /// target's image store or region, an entry outside the region, or while another swap is
    /// under way.
    pub fn request_swap(
        &self,
        cpu: &mut Cpu<E>,
        requester: usize,
        target: usize,
        image: PhysRange,
        entry_offset: u64,
        deadline_ms: u64,
    ) -> Result<(), SyscallError> {
        let component = self
            .components
            .get(target)
            .ok_or(SyscallError::NoSuchTarget)?;
        let own = &self.components[requester].descriptor.region;
        let region = component.descriptor.region;
        let acceptable = target != requester
            && Some(target) != self.supervisor
            && image.start < image.end
            && image.start >= own.start
            && image.end <= own.end
            && image.len() <= component.descriptor.image_store.len()
            && image.len() <= region.len()
            && entry_offset < region.len()
            && deadline_ms > 0
            && cpu.swap.is_none();
        if !acceptable {
            return Err(SyscallError::BadArgument);
        }
        if self
            .swapping
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(SyscallError::BadArgument);
        }
        *self.last_swap.lock() = SwapReport::NONE;
        cpu.swap = Some(SwapJob {
            target,
            requester,
            image,
            entry: region.start + entry_offset,
            phase: Phase::Requested,
            started: 0,
            old_build: 0,
            deadline_ms,
            tag: StateTag {
                schema: 0,
                version: 0,
                interface: 0,
            },
            total: 0,
        });
        Ok(())
    }

    /// How the last swap ended.
    pub fn last_swap(&self) -> SwapReport {
        *self.last_swap.lock()
    }

    /// The build id of the instance of component `index` running now.
    pub fn build(&self, index: usize) -> u64 {
        self.components
            .get(index)
            .map_or(0, |component| component.build.load(Ordering::Relaxed))
    }

    /// Starts the swap this CPU has been asked for, if any and its stack is empty: takes the
    /// target's lock (waiting for a call it serves elsewhere to end) and asks the old instance
    /// for its state.
    pub fn start_swap<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) {
        let Some(mut job) = cpu.swap else { return };
        if job.phase != Phase::Requested || !cpu.stack.is_empty() {
            return;
        }
        let component = &self.components[job.target];
        core::mem::forget(component.lock.lock());
        job.started = machine.now();
        job.old_build = component.build.load(Ordering::Relaxed);
        let state = component.state();
        if state != ComponentState::Idle as u64 {
            release(component);
            cpu.swap = Some(job);
            return self.end_swap(machine, cpu, SwapOutcome::NotRunning);
        }
        job.phase = Phase::Exporting { received: 0 };
        cpu.swap = Some(job);
        machine.set_deadline(Some(job.started + deadline_ticks(machine, &job)));
        self.send_lifecycle(
            machine,
            cpu,
            job.target,
            &LifecycleRequest::Export { offset: 0 },
            true,
        );
    }

    /// The answer (`len` bytes of TX) of the component on top, which the swap called.
    pub(super) fn swap_reply<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        len: usize,
    ) {
        let Some(mut job) = cpu.swap else { return };
        let target = job.target;
        let component = &self.components[target];
        // Copied out: the buffer is the component's, and the next step may write over it.
        let mut reply = [0u8; MESSAGE_MAX];
        let len = len.min(MESSAGE_MAX);
        reply[..len].copy_from_slice(&machine.message_buffer(component.descriptor.ipc_tx)[..len]);
        let answer = lifecycle::decode::<LifecycleReply>(&reply[..len]);
        let late = machine.now().saturating_sub(job.started) > deadline_ticks(machine, &job);
        match (job.phase, answer) {
            (Phase::Exporting { received }, Some(LifecycleReply::State { tag, total, bytes })) => {
                let fits = total as usize <= STATE_MAX
                    && bytes.len() <= PAGE_MAX
                    && received as usize + bytes.len() <= total as usize
                    && (received == 0 || (tag, total) == (job.tag, job.total))
                    && (!bytes.is_empty() || total == received);
                if !fits {
                    let outcome = if total as usize > STATE_MAX {
                        SwapOutcome::StateTooLarge
                    } else {
                        SwapOutcome::NotSwappable
                    };
                    self.pop_swapped(machine, cpu);
                    return self.end_swap(machine, cpu, outcome);
                }
                let start = received as usize;
                machine.handover()[start..start + bytes.len()].copy_from_slice(bytes);
                let received = received + bytes.len() as u32;
                (job.tag, job.total) = (tag, total);
                if received < total {
                    job.phase = Phase::Exporting { received };
                    cpu.swap = Some(job);
                    let next = LifecycleRequest::Export { offset: received };
                    return self.send_lifecycle(machine, cpu, target, &next, false);
                }
                cpu.swap = Some(job);
                self.pop_swapped(machine, cpu);
                self.load_new(machine, cpu);
            }
            (Phase::Exporting { .. }, _) => {
                // Not swappable, or an answer outside the protocol: the old instance goes on.
                self.pop_swapped(machine, cpu);
                self.end_swap(machine, cpu, SwapOutcome::NotSwappable);
            }
            (Phase::Importing { .. }, _) if late => {
                self.roll_back(machine, cpu, SwapOutcome::TooSlow)
            }
            (Phase::Importing { sent }, Some(LifecycleReply::More)) if sent < job.total => {
                self.send_import(machine, cpu, sent)
            }
            (Phase::Importing { sent }, Some(LifecycleReply::Accepted)) if sent == job.total => {
                let image = job.image;
                machine.store_image(&component.descriptor, image);
                let build = machine.build_id(image);
                component.build.store(build, Ordering::Relaxed);
                self.pop_swapped(machine, cpu);
                self.end_swap(machine, cpu, SwapOutcome::Swapped);
            }
            (Phase::Importing { .. }, Some(LifecycleReply::Refused(refusal))) => {
                let reason = match refusal {
                    lifecycle::Refusal::State => SwapOutcome::StateRefused,
                    lifecycle::Refusal::Interface => SwapOutcome::InterfaceChanged,
                };
                self.roll_back(machine, cpu, reason)
            }
            (Phase::Importing { .. }, _) => self.roll_back(machine, cpu, SwapOutcome::Misbehaved),
            (Phase::Restoring { sent, .. }, Some(LifecycleReply::More)) if sent < job.total => {
                self.send_import(machine, cpu, sent)
            }
            (Phase::Restoring { reason, .. }, Some(LifecycleReply::Accepted)) => {
                self.pop_swapped(machine, cpu);
                self.end_swap(machine, cpu, reason);
            }
            (Phase::Restoring { reason, .. }, _) => {
                // The old image does not take its own state back: stopped as after a fault, so
                // the supervisor restarts it afresh.
                self.stop_swapped(machine, cpu, 0);
                self.end_swap(machine, cpu, reason);
            }
            (Phase::Requested, _) => {}
        }
    }

    /// The component the swap called faulted (syndrome `esr`) instead of answering.
    pub(super) fn swap_fault<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        esr: u64,
    ) {
        let Some(job) = cpu.swap else { return };
        match job.phase {
            Phase::Importing { .. } => {
                // Counted and reported as any fault; the rollback starts the old image.
                self.record_fault(machine, job.target, esr);
                self.roll_back(machine, cpu, SwapOutcome::NewFaulted);
            }
            Phase::Exporting { .. } => {
                self.stop_swapped(machine, cpu, esr);
                self.end_swap(machine, cpu, SwapOutcome::OldFaulted);
            }
            Phase::Restoring { reason, .. } => {
                self.stop_swapped(machine, cpu, esr);
                self.end_swap(machine, cpu, reason);
            }
            Phase::Requested => {}
        }
    }

    /// This CPU's deadline passed while a component ran (the kernel took the CPU back): the
    /// instance the swap called is stopped, and the swap ends as after a fault (the old
    /// instance handing over or taking back its state: it restarts afresh) or rolls back as
    /// after a late answer (the new instance). A component that instance called is left to
    /// answer it: the deadline is the swap's, and the instance's own answer comes too late.
    pub fn deadline_passed<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) {
        let Some(job) = cpu.swap else {
            return machine.set_deadline(None);
        };
        if !is_swap_level(cpu.stack.last()) {
            return machine.set_deadline(Some(machine.now() + deadline_ticks(machine, &job)));
        }
        machine.report(Event::Overdue { index: job.target });
        match job.phase {
            Phase::Importing { .. } => {
                self.record_fault(machine, job.target, 0);
                self.roll_back(machine, cpu, SwapOutcome::TooSlow);
            }
            Phase::Exporting { .. } => {
                self.stop_swapped(machine, cpu, 0);
                self.end_swap(machine, cpu, SwapOutcome::OldFaulted);
            }
            Phase::Restoring { reason, .. } => {
                self.stop_swapped(machine, cpu, 0);
                self.end_swap(machine, cpu, reason);
            }
            Phase::Requested => machine.set_deadline(None),
        }
    }

    /// Step 2: the new image into the region, started afresh with the first page of state.
    fn load_new<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) {
        let Some(mut job) = cpu.swap else { return };
        let component = &self.components[job.target];
        machine.load_image(&component.descriptor, job.image);
        let build = machine.build_id(job.image);
        machine.report(Event::Runs {
            index: job.target,
            build,
        });
        // SAFETY: locked by this CPU (the swap holds it) and on no stack.
        unsafe { self.reset_locked::<M>(job.target, job.entry) };
        job.phase = Phase::Importing { sent: 0 };
        cpu.swap = Some(job);
        self.send_import(machine, cpu, 0);
    }

    /// Rolls back for `reason`: pops the new instance, reloads the old image from the store
    /// and hands it its state back.
    fn roll_back<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        reason: SwapOutcome,
    ) {
        let Some(mut job) = cpu.swap else { return };
        self.pop_swapped(machine, cpu);
        let component = &self.components[job.target];
        let descriptor = &component.descriptor;
        machine.load_image(descriptor, descriptor.image_store);
        machine.report(Event::Runs {
            index: job.target,
            build: job.old_build,
        });
        // SAFETY: as in `load_new`.
        unsafe { self.reset_locked::<M>(job.target, descriptor.entry) };
        job.phase = Phase::Restoring { reason, sent: 0 };
        cpu.swap = Some(job);
        // The old image gets as long again to take its own state back.
        machine.set_deadline(Some(machine.now() + deadline_ticks(machine, &job)));
        self.send_import(machine, cpu, 0);
    }

    /// Sends the page of state from `sent` on to the instance being given it, pushing it if
    /// it starts afresh.
    fn send_import<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>, sent: u32) {
        let Some(mut job) = cpu.swap else { return };
        let end = (sent as usize + PAGE_MAX).min(job.total as usize);
        let mut page = [0u8; PAGE_MAX];
        let page = &mut page[..end - sent as usize];
        page.copy_from_slice(&machine.handover()[sent as usize..end]);
        let request = LifecycleRequest::Import {
            tag: job.tag,
            total: job.total,
            offset: sent,
            bytes: page,
        };
        let fresh = sent == 0;
        job.phase = match job.phase {
            Phase::Restoring { reason, .. } => Phase::Restoring {
                reason,
                sent: end as u32,
            },
            _ => Phase::Importing { sent: end as u32 },
        };
        cpu.swap = Some(job);
        self.send_lifecycle(machine, cpu, job.target, &request, fresh);
    }

    /// Writes `request` into component `index`'s RX buffer and delivers it: pushing the
    /// component (`push`, locked by this CPU and off the stack), or to the component on top,
    /// which is waiting in REPLY.
    fn send_lifecycle<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        request: &LifecycleRequest,
        push: bool,
    ) {
        let component = &self.components[index];
        let rx = machine.message_buffer(component.descriptor.ipc_rx);
        // Pages are sized to fit a message (`lifecycle`'s tests).
        let len = lifecycle::encode(request, rx).unwrap_or(0);
        let delivery = Delivery::Call {
            sender: abi::SENDER_KERNEL,
            interface: abi::interface::LIFECYCLE,
            len,
        };
        if push {
            self.enter(machine, cpu, index, Caller::Swap, delivery);
        } else {
            // SAFETY: on top of this CPU's stack, so locked by this CPU.
            let frame = unsafe { &mut component.saved().frame };
            frame.x[..4].copy_from_slice(&delivery.registers());
            frame.x[4] = 0;
            component.calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Pops the component the swap called off `cpu`'s stack, keeping its lock.
    fn pop_swapped<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) {
        let from = self.top_el1(cpu);
        if cpu.stack.pop().is_some() {
            self.switch_to_top(machine, cpu, from);
        }
    }

    /// Pops the component the swap called and stops it as after a fault (syndrome `esr`):
    /// the supervisor, told as after any fault, restarts it.
    fn stop_swapped<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>, esr: u64) {
        let Some(job) = cpu.swap else { return };
        self.pop_swapped(machine, cpu);
        self.record_fault(machine, job.target, esr);
        if let Some(supervisor) = self.supervisor {
            self.components[supervisor]
                .notifications
                .fetch_or(abi::NOTIFY_COMPONENT_FAULTED, Ordering::AcqRel);
        }
    }

    /// Ends the swap with `outcome`: unlocks the target (its waiting callers go on), records
    /// and reports the outcome, and notifies the requester (running it now if it is free).
    fn end_swap<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        outcome: SwapOutcome,
    ) {
        let Some(job) = cpu.swap.take() else { return };
        machine.set_deadline(None);
        let component = &self.components[job.target];
        if component.state() == ComponentState::Running as u64 {
            component.set_state(ComponentState::Idle);
        }
        release(component);
        let ticks = machine.now().saturating_sub(job.started);
        let state_len = match outcome {
            SwapOutcome::NotRunning | SwapOutcome::NotSwappable | SwapOutcome::OldFaulted => 0,
            _ => job.total,
        };
        *self.last_swap.lock() = SwapReport {
            outcome,
            ticks,
            state_len,
        };
        self.swapping.store(false, Ordering::Release);
        machine.report(Event::SwapEnded {
            index: job.target,
            outcome,
            old_build: job.old_build,
            new_build: component.build.load(Ordering::Relaxed),
            ticks,
            state_len,
        });
        self.notify_from_kernel(machine, cpu, job.requester, abi::NOTIFY_SWAP_DONE);
    }

    /// Resets component `index`'s registers for a fresh start at `entry` (its image is in
    /// place).
    ///
    /// # Safety
    /// This CPU holds the component's lock and it is on no CPU's stack.
    unsafe fn reset_locked<M: Machine<El1 = E>>(&self, index: usize, entry: u64) {
        let component = &self.components[index];
        let starts = component.starts.fetch_add(1, Ordering::Relaxed);
        let region = component.descriptor.region;
        let args = [
            index as u64,
            region.start,
            region.end - region.start,
            starts,
        ];
        // SAFETY: caller's contract.
        unsafe {
            *component.saved() = super::Saved {
                frame: crate::frame::GuestFrame::entering(entry, args),
                el1: M::component_el1(),
            };
            *component.fresh.get() = true;
        }
    }
}

/// Whether a level was pushed by a swap.
/// The swap's deadline in counter ticks, from its start.
fn deadline_ticks<M: Machine>(machine: &M, job: &SwapJob) -> u64 {
    job.deadline_ms.saturating_mul(machine.ticks_per_second()) / 1000
}

pub(super) fn is_swap_level(level: Option<&Level>) -> bool {
    matches!(
        level,
        Some(Level {
            caller: Caller::Swap,
            ..
        })
    )
}
