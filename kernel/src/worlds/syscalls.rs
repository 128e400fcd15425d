//! The system calls the world stack serves for a component: the message calls (RECV, REPLY,
//! CALL, NOTIFY) and the kernel operations on components (RESTART, COMPONENT_STATE). The kernel
//! serves the rest itself ([`Syscall::Kernel`]).

use core::sync::atomic::Ordering;

use hv_ipc::abi::{ComponentState, MESSAGE_MAX, SyscallError, kernel_op, syscall};
use hv_ipc::interfaces::guest_trap::{GuestTrapInterface, hot};

use super::{
    Caller, Component, Cpu, Delivery, Event, Level, Machine, Registry, Syscall,
    pending_notifications, release, set_result,
};
use crate::grants;
use crate::pending::{self, PendingTrap, Refusal, TrapKind};

impl<E: Copy + Send> Registry<E> {
    /// Handles the system call (HVC) of the component on top of `cpu`: the message calls
    /// (RECV, REPLY, CALL, NOTIFY) and the kernel operations on components (RESTART,
    /// COMPONENT_STATE) here, the rest by the kernel ([`Syscall::Kernel`]).
    #[inline(always)]
    pub fn syscall<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) -> Syscall {
        let Some((index, frame)) = self.top_component_frame(cpu) else {
            return Syscall::Done;
        };
        let number = frame.x[0];
        let args = [frame.x[1], frame.x[2], frame.x[3]];
        let result = match number {
            syscall::RECV => return self.receive(machine, cpu),
            syscall::REPLY => return self.reply(machine, cpu, args[0] as usize),
            syscall::CALL => return self.call(machine, cpu, args[0] as u16, args[1] as usize),
            syscall::NOTIFY => self.notify(index, args[0], args[1]).map(|()| [0; 3]),
            syscall::KERNEL_OP => {
                let granted = grants::check_kernel_op(&self.components[index].descriptor, args[0]);
                match (granted, args[0]) {
                    (Err(error), _) => Err(error),
                    (Ok(()), kernel_op::RESTART) => self
                        .restart(machine, args[1] as usize, args[2])
                        .map(|()| [0; 3]),
                    (Ok(()), kernel_op::COMPONENT_STATE) => self.component_state(args[1] as usize),
                    (Ok(()), kernel_op::SWAP) => {
                        let (target, len, entry_offset) = kernel_op::swap_args_of(args[2]);
                        // x4: the deadline, past the three words the other operations use.
                        let deadline_ms = frame.x[4];
                        hv_abi::PhysRange::from_size(args[1], len)
                            .ok_or(SyscallError::BadArgument)
                            .and_then(|image| {
                                let deadline = deadline_ms;
                                self.request_swap(cpu, index, target, image, entry_offset, deadline)
                            })
                            .map(|()| [0; 3])
                    }
                    (Ok(()), kernel_op::COMPONENT_BUILD) => self
                        .components
                        .get(args[1] as usize)
                        .map(|_| [self.build(args[1] as usize), 0, 0])
                        .ok_or(SyscallError::NoSuchTarget),
                    (Ok(()), kernel_op::SWAP_STATUS) => {
                        let report = self.last_swap();
                        let micros = report.ticks.saturating_mul(1_000_000)
                            / machine.ticks_per_second().max(1);
                        Ok([report.outcome as u64, micros, u64::from(report.state_len)])
                    }
                    (Ok(()), _) => {
                        return Syscall::Kernel {
                            index,
                            number,
                            args,
                        };
                    }
                }
            }
            syscall::LOG | syscall::PANIC | syscall::FAULT => {
                return Syscall::Kernel {
                    index,
                    number,
                    args,
                };
            }
            _ => Err(SyscallError::UnknownSyscall),
        };
        set_result(frame, result);
        Syscall::Done
    }

    /// RECV: hands over a pending start-up delivery or notifications, or goes idle and returns
    /// the CPU to the world below.
    fn receive<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) -> Syscall {
        let Some(level) = cpu.stack.last_mut() else {
            return Syscall::Done;
        };
        let (index, caller, delivery) = (level.index, level.caller, level.delivery.take());
        let component = &self.components[index];
        let delivery = delivery.or_else(|| {
            let bits = component.notifications.swap(0, Ordering::AcqRel);
            (bits != 0).then(|| Delivery::Notification(bits).registers())
        });
        if let Some(registers) = delivery {
            // SAFETY: on top of this CPU's stack, so locked by this CPU.
            let frame = unsafe { &mut component.saved().frame };
            frame.x[..4].copy_from_slice(&registers);
            frame.x[4] = pending_notifications(component, &registers);
            return Syscall::Done;
        }
        if caller != Caller::Kernel {
            machine.report(Event::ReceivedWhileCalled { index });
            self.fault(machine, cpu, 0);
            return Syscall::Done;
        }
        self.leave(machine, cpu);
        Syscall::Done
    }

    /// REPLY: gives the caller the first `len` bytes of TX and resumes it; the server waits as
    /// in RECV.
    #[inline(always)]
    fn reply<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>, len: usize) -> Syscall {
        let Some(&Level { index, caller, .. }) = cpu.stack.last() else {
            return Syscall::Done;
        };
        let component = &self.components[index];
        let refuse = match caller {
            _ if len > MESSAGE_MAX => Some(SyscallError::MessageTooLong),
            Caller::Kernel => Some(SyscallError::NotServing),
            _ => None,
        };
        if let Some(error) = refuse {
            // SAFETY: on top of this CPU's stack, so locked by this CPU.
            unsafe { component.saved().frame.x[0] = error as i64 as u64 };
            return Syscall::Done;
        }
        match caller {
            Caller::Vcpu => {
                // Decoded in place: the component is stopped here and locked by this CPU.
                let reply = &machine.message_buffer(component.descriptor.ipc_tx)[..len];
                if smccc_results_to_vcpu(cpu, reply) {
                    // Done: the hot answer.
                } else if let Some(pending) = cpu.pending {
                    // An emulated access's answer by hand too, anything else as usual.
                    let hot = match pending.kind {
                        TrapKind::Mmio { .. } => hot::decode_mmio_answer(reply),
                        _ => None,
                    };
                    let answer = match hot {
                        Some(resolution) => Ok(resolution),
                        None => match hv_ipc::decode_reply::<GuestTrapInterface>(reply) {
                            Ok(Ok(resolution)) => Ok(resolution),
                            Ok(Err(remote)) => Err(Refusal::Remote(remote)),
                            Err(_) => Err(Refusal::Undecodable),
                        },
                    };
                    // Checked against the trap; what only sets the vCPU's registers is done
                    // now, the rest is the kernel's once the vCPU is back on top.
                    let decision = pending::decide(&pending, answer);
                    match pending::apply_to_registers(&mut cpu.vcpu.frame, decision) {
                        Ok(()) => cpu.pending = None,
                        Err(decision) => cpu.answer = Some(decision),
                    }
                }
            }
            Caller::Component(caller_index) => {
                reply_to_component(machine, component, &self.components[caller_index], len);
            }
            Caller::Kernel => {}
            Caller::Swap => {
                self.swap_reply(machine, cpu, len);
                return Syscall::Done;
            }
        }
        self.leave(machine, cpu);
        Syscall::Done
    }

    /// CALL: runs the server of `interface` on this CPU with the request in the caller's TX.
    fn call<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        interface: u16,
        len: usize,
    ) -> Syscall {
        let Some(index) = cpu.current() else {
            return Syscall::Done;
        };
        let caller = &self.components[index];
        let target = (|| {
            if len > MESSAGE_MAX {
                return Err(SyscallError::MessageTooLong);
            }
            grants::check_call(&caller.descriptor, interface)?;
            // A granted interface is below 32 (the grant is a 32-bit set).
            let target = self
                .servers
                .get(usize::from(interface))
                .copied()
                .flatten()
                .ok_or(SyscallError::NoSuchTarget)?;
            if target == index {
                return Err(SyscallError::BadArgument);
            }
            self.acquire(machine, target).map(|_| target)
        })();
        let target = match target {
            Ok(found) => found,
            Err(error) => {
                // SAFETY: on top of this CPU's stack, so locked by this CPU.
                unsafe { caller.saved().frame.x[0] = error as i64 as u64 };
                return Syscall::Done;
            }
        };
        self.deliver_call(machine, cpu, index, target, interface, len);
        Syscall::Done
    }

    /// Component `index` (on top of `cpu`) calls component `target` (locked by this CPU and
    /// free) on `interface` with the first `len` bytes of its TX: they go to the target's RX,
    /// which runs.
    #[inline(always)]
    pub(super) fn deliver_call<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        target: usize,
        interface: u16,
        len: usize,
    ) {
        let (caller, callee) = (&self.components[index], &self.components[target]);
        machine.copy_message(caller.descriptor.ipc_tx, callee.descriptor.ipc_rx, len);
        let delivery = Delivery::Call {
            sender: index as u64,
            interface,
            len,
        };
        self.enter(machine, cpu, target, Caller::Component(index), delivery);
    }

    /// NOTIFY: sets `bits` on component `target`, if `caller`'s manifest `notifies` names it.
    fn notify(&self, caller: usize, target: u64, bits: u64) -> Result<(), SyscallError> {
        grants::check_notify(&self.components[caller].descriptor, target)?;
        // The boot table's check makes every granted target a component; this lookup is for a
        // table that somehow says otherwise.
        let component = usize::try_from(target)
            .ok()
            .and_then(|target| self.components.get(target))
            .ok_or(SyscallError::NoSuchTarget)?;
        component.notifications.fetch_or(bits, Ordering::AcqRel);
        Ok(())
    }

    /// COMPONENT_STATE: the state code, fault count and last fault's ESR of component `index`.
    fn component_state(&self, index: usize) -> Result<[u64; 3], SyscallError> {
        let target = self
            .components
            .get(index)
            .ok_or(SyscallError::NoSuchTarget)?;
        Ok([
            target.state(),
            target.faults.load(Ordering::Relaxed),
            target.last_esr.load(Ordering::Relaxed),
        ])
    }

    /// RESTART: restarts a stopped component now, arms a deadline (`not_before`, in counter
    /// ticks) after which the next call restarts it, or retires it
    /// ([`kernel_op::RESTART_NEVER`]).
    pub fn restart<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        index: usize,
        not_before: u64,
    ) -> Result<(), SyscallError> {
        let component = self
            .components
            .get(index)
            .ok_or(SyscallError::NoSuchTarget)?;
        if component.state() != ComponentState::Faulted as u64 {
            return Err(SyscallError::BadArgument);
        }
        if not_before == kernel_op::RESTART_NEVER {
            component.set_state(ComponentState::Retired);
            machine.report(Event::Retired { index });
            return Ok(());
        }
        if not_before > machine.now() {
            component.restart_at.store(not_before, Ordering::Relaxed);
            machine.report(Event::RestartDeferred { index });
            return Ok(());
        }
        let Some(guard) = component.lock.try_lock() else {
            return Err(SyscallError::BadArgument);
        };
        core::mem::forget(guard);
        // SAFETY: locked just above; a faulted component is on no CPU's stack.
        unsafe { self.restart_locked(machine, index) };
        release(component);
        Ok(())
    }
}

/// If the vCPU waits on an SMCCC call and `reply` is its results (`hot::decode_return`): puts
/// them in its x0..x3, what `pending::decide` and `pending::apply_to_registers` make of the
/// pair, without the answer's trip through them. Returns whether it did.
#[inline(always)]
pub(super) fn smccc_results_to_vcpu<E>(cpu: &mut Cpu<E>, reply: &[u8]) -> bool {
    let Some(PendingTrap {
        kind: TrapKind::Smccc,
        ..
    }) = cpu.pending
    else {
        return false;
    };
    let Some(results) = hot::decode_return(reply) else {
        return false;
    };
    cpu.vcpu.frame.x[..4].copy_from_slice(&results);
    cpu.pending = None;
    true
}

/// The REPLY of `replier` with the first `len` bytes of its TX to `caller`, below it on this
/// CPU's stack (so locked by this CPU): they go to the caller's RX, and its CALL returns 0
/// with the length.
#[inline(always)]
pub(super) fn reply_to_component<E, M: Machine<El1 = E>>(
    machine: &mut M,
    replier: &Component<E>,
    caller: &Component<E>,
    len: usize,
) {
    machine.copy_message(replier.descriptor.ipc_tx, caller.descriptor.ipc_rx, len);
    // SAFETY: the caller is below the replier on this CPU's stack, so this CPU holds its lock;
    // no other reference to its frame is alive.
    let frame = unsafe { &mut caller.saved().frame };
    frame.x[0] = 0;
    frame.x[1] = len as u64;
}
