//! The fast path, as seL4 has one: the transitions of a guest's hypercall that a component
//! answers (the vCPU's SMCCC call into the component its function ID routes to, and that
//! component's REPLY with the call's results) and of a call between components (CALL, and the
//! REPLY to the caller), taken with the fewest steps.
//!
//! Each takes only the common case: no swap under way, the server free (no other CPU holds or
//! waits for it) and not stopped, the call granted, and, for the REPLY to the vCPU, an answer
//! the hot codec reads (`guest_trap::hot`). Otherwise it returns `false` having changed
//! nothing, and the general path takes the trap ([`Registry::call_from_vcpu`],
//! [`Registry::syscall`]), with its errors and waiting. What each does is exactly what the
//! general path does in that case; the tests run both on the same worlds and compare them.

use hv_ipc::abi::{self, ComponentState, MESSAGE_MAX, syscall};
use hv_ipc::interfaces::guest_trap::{Conduit, hot};

use super::syscalls::{reply_to_component, smccc_results_to_vcpu};
use super::{Caller, Component, Cpu, Delivery, Level, Machine, Registry, release};
use crate::grants;
use crate::pending::{PendingTrap, TrapKind};

impl<E: Copy + Send> Registry<E> {
    /// The vCPU on top of `cpu` (vCPU `vcpu` of VM `vm`) made an SMCCC call with HVC, whose
    /// retry point is `retry_pc`: sends it to the component its function ID routes to, as
    /// [`Registry::call_from_vcpu`] with the request of `hot::encode_smccc` would. Returns
    /// whether it did; `false` leaves everything as it was.
    #[inline(always)]
    pub fn fast_smccc_call<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        (vm, vcpu): (u16, u16),
        retry_pc: u64,
    ) -> bool {
        if !cpu.stack.is_empty() || cpu.swap.is_some() {
            return false;
        }
        let Some(index) = self.smccc_route(cpu.vcpu.frame.x[0] as u32) else {
            return false;
        };
        let Some(component) = self.components.get(index) else {
            return false;
        };
        if !take_if_idle(component) {
            return false;
        }
        let Some(regs) = cpu.vcpu.frame.x.first_chunk::<8>() else {
            release(component);
            return false;
        };
        let rx = machine.message_buffer(component.descriptor.ipc_rx);
        let len = hot::encode_smccc(rx, vm, vcpu, Conduit::Hvc, regs);
        cpu.pending = Some(PendingTrap {
            kind: TrapKind::Smccc,
            retry_pc,
        });
        let delivery = Delivery::Call {
            sender: abi::SENDER_KERNEL,
            interface: abi::interface::GUEST_TRAP,
            len,
        };
        self.enter(machine, cpu, index, Caller::Vcpu, delivery);
        true
    }

    /// The component on top of `cpu` made a system call: if it is the REPLY that gives the
    /// vCPU below it its SMCCC call's results, puts them in the vCPU's x0..x3 and resumes it,
    /// as [`Registry::syscall`] would. Returns whether it did; `false` leaves everything as it
    /// was.
    #[inline(always)]
    pub fn fast_reply_to_vcpu<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
    ) -> bool {
        let [
            Level {
                index,
                caller: Caller::Vcpu,
                ..
            },
        ] = cpu.stack.as_slice()
        else {
            return false;
        };
        let Some(component) = self.components.get(*index) else {
            return false;
        };
        // SAFETY: on top of this CPU's stack, so locked by this CPU; read before the switch.
        let (number, len) = unsafe {
            let frame = &component.saved().frame;
            (frame.x[0], frame.x[1])
        };
        // The system call first: the component's other calls (CALL, the kernel operations)
        // leave here at once.
        if number != syscall::REPLY || len > MESSAGE_MAX as u64 || cpu.swap.is_some() {
            return false;
        }
        let tx = machine.message_buffer(component.descriptor.ipc_tx);
        if !smccc_results_to_vcpu(cpu, &tx[..len as usize]) {
            return false;
        }
        self.leave(machine, cpu);
        true
    }

    /// The component on top of `cpu` made a system call: if it is a CALL to a free server or
    /// a REPLY to the component that called it, carries it out as [`Registry::syscall`]
    /// would. Returns whether it did; `false` leaves everything as it was.
    #[inline(always)]
    pub fn fast_call_or_reply<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
    ) -> bool {
        let Some(&Level { index, caller, .. }) = cpu.stack.last() else {
            return false;
        };
        if cpu.swap.is_some() {
            return false;
        }
        let Some(component) = self.components.get(index) else {
            return false;
        };
        // SAFETY: on top of this CPU's stack, so locked by this CPU; read before any switch.
        let [number, first, second] = unsafe {
            let frame = &component.saved().frame;
            [frame.x[0], frame.x[1], frame.x[2]]
        };
        match (number, caller) {
            (syscall::REPLY, Caller::Component(caller)) => {
                self.fast_reply_to_component(machine, cpu, index, caller, first)
            }
            (syscall::CALL, _) => self.fast_call(machine, cpu, index, first as u16, second),
            _ => false,
        }
    }

    /// REPLY of component `index` (on top) with `len` bytes to component `caller`, below it.
    #[inline(always)]
    fn fast_reply_to_component<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        caller: usize,
        len: u64,
    ) -> bool {
        let Some(caller) = self.components.get(caller) else {
            return false;
        };
        if len > MESSAGE_MAX as u64 {
            return false;
        }
        reply_to_component(machine, &self.components[index], caller, len as usize);
        self.leave(machine, cpu);
        true
    }

    /// CALL of component `index` (on top) on `interface` with `len` bytes: if the manifest
    /// grants it and the interface's server is free and not stopped, runs the server.
    #[inline(always)]
    fn fast_call<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        interface: u16,
        len: u64,
    ) -> bool {
        let caller = &self.components[index];
        if len > MESSAGE_MAX as u64 || grants::check_call(&caller.descriptor, interface).is_err() {
            return false;
        }
        let Some(&Some(target)) = self.servers.get(usize::from(interface)) else {
            return false;
        };
        let Some(component) = self.components.get(target).filter(|_| target != index) else {
            return false;
        };
        if !take_if_idle(component) {
            return false;
        }
        self.deliver_call(machine, cpu, index, target, interface, len as usize);
        true
    }
}

/// Takes `component`'s lock if it is free and the component idle (started and not stopped);
/// otherwise leaves both to the general path, which queues this CPU behind the others, and
/// restarts a stopped component or refuses the call. (Taken by another CPU between the look
/// and the lock, this CPU waits its turn, as the general path would.)
#[inline(always)]
fn take_if_idle<E>(component: &Component<E>) -> bool {
    if component.lock.is_locked() {
        return false;
    }
    core::mem::forget(component.lock.lock());
    if component.state() != ComponentState::Idle as u64 {
        release(component);
        return false;
    }
    true
}
