//! The system calls components make (`HVC #0`, numbers in `hv_ipc::abi::syscall`): receiving,
//! replying, calling, notifying, logging, reporting faults and the kernel operations the
//! manifest grants. Every call is checked against the caller's grants (`hv_kernel::grants`:
//! CALL, NOTIFY, KERNEL_OP) and its own region.

use super::{
    Caller, Component, Delivery, Level, acquire, current, fault, go_idle, read_tx, registry,
    release, restart_locked, server_of, switch_to, this_cpu, write_rx,
};
use crate::arch::{self, GuestFrame};
use core::sync::atomic::Ordering;
use hv_ipc::abi::{self, ComponentState, SyscallError, kernel_op, syscall};
use hv_ipc::interfaces::guest_trap::GuestTrapInterface;
use hv_kernel::grants;
use hv_kernel::pending::Refusal;

/// Handles an HVC (a system call) from the component on top of this CPU's stack.
pub fn syscall(frame: &mut GuestFrame) {
    let Some(index) = current() else { return };
    let component = &registry().components[index];
    let args = [frame.x[1], frame.x[2], frame.x[3]];
    let result: Result<[u64; 3], SyscallError> = match frame.x[0] {
        syscall::RECV => return receive(frame, index),
        syscall::REPLY => return reply(frame, index, args[0] as usize),
        syscall::CALL => return call(frame, index, args[0] as u16, args[1] as usize),
        syscall::NOTIFY => notify(component, args[0], args[1]).map(|()| [0; 3]),
        syscall::LOG => log(component, index, args[0], args[1]).map(|()| [0; 3]),
        syscall::PANIC => {
            report_panic(component, args[0], args[1]);
            return fault(frame, index, 0);
        }
        syscall::FAULT => {
            defmt::error!(
                "component {=str} took an exception at EL1: ESR {=u64:#x} FAR {=u64:#x} ELR {=u64:#x}",
                component.descriptor.name(),
                args[0],
                args[1],
                args[2]
            );
            return fault(frame, index, args[0]);
        }
        syscall::KERNEL_OP => kernel_operation(component, args[0], args[1], args[2]),
        _ => Err(SyscallError::UnknownSyscall),
    };
    match result {
        Ok(values) => {
            frame.x[0] = 0;
            frame.x[1..4].copy_from_slice(&values);
        }
        Err(error) => frame.x[0] = error as i64 as u64,
    }
}

/// RECV: hand over a pending start-up delivery or notifications, or go idle and return the
/// CPU to the world below.
fn receive(frame: &mut GuestFrame, index: usize) {
    let cpu = this_cpu();
    let Some(Level::Component {
        caller, pending, ..
    }) = cpu.stack.last_mut()
    else {
        return;
    };
    if let Some(delivery) = pending.take() {
        frame.x[..4].copy_from_slice(&delivery.registers());
        return;
    }
    let component = &registry().components[index];
    let bits = component.notifications.swap(0, Ordering::AcqRel);
    if bits != 0 {
        frame.x[..4].copy_from_slice(&Delivery::Notification(bits).registers());
        return;
    }
    if *caller != Caller::Kernel {
        defmt::error!(
            "component {=str} waited for a call while its caller waits for its reply",
            component.descriptor.name()
        );
        return fault(frame, index, 0);
    }
    go_idle(frame, index);
}

/// REPLY: give the caller the reply in TX and resume it; the server waits as in RECV.
fn reply(frame: &mut GuestFrame, index: usize, len: usize) {
    let cpu = this_cpu();
    let Some(Level::Component { caller, .. }) = cpu.stack.last().copied() else {
        return;
    };
    let component = &registry().components[index];
    if len > abi::MESSAGE_MAX {
        frame.x[0] = SyscallError::MessageTooLong as i64 as u64;
        return;
    }
    let mut buffer = [0u8; abi::MESSAGE_MAX];
    match caller {
        Caller::Kernel => {
            frame.x[0] = SyscallError::NotServing as i64 as u64;
            return;
        }
        Caller::Vcpu => {
            let reply = read_tx(component, len, &mut buffer);
            let answer = match hv_ipc::decode_reply::<GuestTrapInterface>(reply) {
                Ok(Ok(resolution)) => Ok(resolution),
                Ok(Err(remote)) => Err(Refusal::Remote(remote)),
                Err(_) => Err(Refusal::Undecodable),
            };
            cpu.vcpu_reply = cpu.vcpu_pending.take().map(|pending| (pending, answer));
        }
        Caller::Component(caller_index) => {
            let reply = read_tx(component, len, &mut buffer);
            let caller_component = &registry().components[caller_index];
            write_rx(caller_component, reply);
            // SAFETY: the caller is below us on this CPU's stack, so this CPU holds its lock.
            let saved = unsafe { &mut *caller_component.saved.get() };
            saved.frame.x[0] = 0;
            saved.frame.x[1] = len as u64;
        }
    }
    go_idle(frame, index);
}

/// CALL: run the server of `interface` on this CPU with the request in the caller's TX.
fn call(frame: &mut GuestFrame, index: usize, interface: u16, len: usize) {
    let caller = &registry().components[index];
    let checked = (|| {
        if len > abi::MESSAGE_MAX {
            return Err(SyscallError::MessageTooLong);
        }
        grants::check_call(&caller.descriptor, interface)?;
        let target = server_of(interface).ok_or(SyscallError::NoSuchTarget)?;
        if target == index {
            return Err(SyscallError::BadArgument);
        }
        Ok(target)
    })();
    let target = match checked.and_then(|target| acquire(target).map(|c| (target, c))) {
        Ok(found) => found,
        Err(error) => {
            frame.x[0] = error as i64 as u64;
            return;
        }
    };
    let mut buffer = [0u8; abi::MESSAGE_MAX];
    let request = read_tx(caller, len, &mut buffer);
    write_rx(target.1, request);
    let delivery = Delivery::Call {
        sender: index as u64,
        interface,
        len,
    };
    switch_to(frame, target.0, Caller::Component(index), delivery, true);
}

/// NOTIFY: set `bits` on component `target`, if the caller's manifest `notifies` names it.
fn notify(caller: &Component, target: u64, bits: u64) -> Result<(), SyscallError> {
    grants::check_notify(&caller.descriptor, target)?;
    // The boot table's check makes every granted target a component; this lookup is for a
    // table that somehow says otherwise.
    let component = usize::try_from(target)
        .ok()
        .and_then(|target| registry().components.get(target))
        .ok_or(SyscallError::NoSuchTarget)?;
    component.notifications.fetch_or(bits, Ordering::AcqRel);
    Ok(())
}

/// Copies `[address, address + len)` out of the component's region, if it lies inside.
fn copy_from_region<'a>(
    component: &Component,
    address: u64,
    len: u64,
    out: &'a mut [u8; abi::MESSAGE_MAX],
) -> Result<&'a [u8], SyscallError> {
    let region = component.descriptor.region;
    let inside = address >= region.start
        && len <= abi::MESSAGE_MAX as u64
        && address
            .checked_add(len)
            .is_some_and(|end| end <= region.end);
    if !inside {
        return Err(SyscallError::BadArgument);
    }
    // SAFETY: the range lies inside the component's region (checked above), mapped at EL2.
    unsafe { core::ptr::copy_nonoverlapping(address as *const u8, out.as_mut_ptr(), len as usize) };
    Ok(&out[..len as usize])
}

/// LOG: forwards encoded defmt frames; the host tool decodes them with the component's ELF.
fn log(component: &Component, index: usize, address: u64, len: u64) -> Result<(), SyscallError> {
    let mut buffer = [0u8; abi::MESSAGE_MAX];
    let bytes = copy_from_region(component, address, len, &mut buffer)?;
    defmt::info!("component-log {=usize} {=[u8]}", index, bytes);
    Ok(())
}

fn report_panic(component: &Component, address: u64, len: u64) {
    let mut buffer = [0u8; abi::MESSAGE_MAX];
    let message = copy_from_region(component, address, len, &mut buffer)
        .ok()
        .and_then(|bytes| core::str::from_utf8(bytes).ok())
        .unwrap_or("(unreadable message)");
    defmt::error!(
        "component {=str} panicked: {=str}",
        component.descriptor.name(),
        message
    );
}

fn kernel_operation(
    component: &Component,
    operation: u64,
    a: u64,
    b: u64,
) -> Result<[u64; 3], SyscallError> {
    grants::check_kernel_op(&component.descriptor, operation)?;
    match operation {
        kernel_op::RESTART => restart(a as usize, b).map(|()| [0; 3]),
        kernel_op::COMPONENT_STATE => {
            let target = registry()
                .components
                .get(a as usize)
                .ok_or(SyscallError::NoSuchTarget)?;
            Ok([
                target.state.load(Ordering::Relaxed),
                target.faults.load(Ordering::Relaxed),
                target.last_esr.load(Ordering::Relaxed),
            ])
        }
        kernel_op::READ_COUNTER => {
            let (ticks, frequency) = arch::counter();
            Ok([ticks, frequency, 0])
        }
        kernel_op::HOST_TLB_INVALIDATE => {
            let range = (b != u64::MAX).then_some((a, b));
            arch::invalidate_host_stage2(crate::boot::host_vttbr(), range);
            Ok([0; 3])
        }
        kernel_op::ZERO_PAGES => {
            let range = hv_abi::PhysRange::from_size(a, b).ok_or(SyscallError::BadArgument)?;
            if !crate::boot::is_host_ram(&range)
                || !a.is_multiple_of(4096)
                || !b.is_multiple_of(4096)
            {
                return Err(SyscallError::BadArgument);
            }
            // SAFETY: the range is page-aligned host RAM outside the hypervisor's region
            // (checked above), identity-mapped at EL2; the component that asks owns the host's
            // memory map and gives the pages back to the host only after this returns.
            unsafe { core::ptr::write_bytes(a as *mut u8, 0, b as usize) };
            arch::clean_dcache_to_poc(a, b);
            Ok([0; 3])
        }
        kernel_op::CONSOLE_WRITE => {
            let mut buffer = [0u8; abi::MESSAGE_MAX];
            let bytes = copy_from_region(component, a, b, &mut buffer)?;
            arch::console::write(bytes);
            Ok([0; 3])
        }
        _ => Err(SyscallError::NoSuchTarget),
    }
}

/// RESTART: restart a stopped component now, or arm a deadline (`not_before`, in counter
/// ticks) after which the next call restarts it.
fn restart(index: usize, not_before: u64) -> Result<(), SyscallError> {
    let component = registry()
        .components
        .get(index)
        .ok_or(SyscallError::NoSuchTarget)?;
    if component.state.load(Ordering::Relaxed) != ComponentState::Faulted as u64 {
        return Err(SyscallError::BadArgument);
    }
    if not_before == kernel_op::RESTART_NEVER {
        component
            .state
            .store(ComponentState::Retired as u64, Ordering::Relaxed);
        defmt::warn!(
            "component {=str} stays stopped for good (restart never)",
            component.descriptor.name()
        );
        return Ok(());
    }
    if not_before > arch::counter().0 {
        component.restart_at.store(not_before, Ordering::Relaxed);
        defmt::info!(
            "component {=str}: restart deferred",
            component.descriptor.name()
        );
        return Ok(());
    }
    let Some(guard) = component.lock.try_lock() else {
        return Err(SyscallError::BadArgument);
    };
    core::mem::forget(guard);
    restart_locked(index, component);
    release(component);
    Ok(())
}
