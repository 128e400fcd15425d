//! The system calls the kernel serves itself, after `hv_kernel::worlds` has handled the
//! message calls (RECV, REPLY, CALL, NOTIFY) and the kernel operations on components: LOG,
//! PANIC, FAULT and the granted kernel operations that touch the machine.

use super::{Here, registry};
use crate::{arch, guests, interrupts};
use hv_abi::ComponentDescriptor;
use hv_ipc::abi::{self, SyscallError, kernel_op, kernel_op_args, syscall};
use hv_kernel::virq::VirtualIrq;

/// Serves system call `number` with x1..x3 = `args` from component `index` (on top of this
/// CPU). KERNEL_OP has been checked against the manifest's grants.
pub fn serve(here: &mut Here, index: usize, number: u64, args: [u64; 3]) {
    let component = &registry().components()[index].descriptor;
    match number {
        syscall::LOG => here.set_result(log(component, index, args[0], args[1]).map(|()| [0; 3])),
        syscall::PANIC => {
            report_panic(component, args[0], args[1]);
            here.fault(0);
        }
        syscall::FAULT => {
            // The syndrome registers are the component's own (it is on top), read here rather
            // than trusted from its arguments.
            let (esr, far, elr) = arch::el1::exception_registers();
            defmt::error!(
                "component {=str} took an exception at EL1: ESR {=u64:#x} FAR {=u64:#x} ELR {=u64:#x}",
                component.name(),
                esr,
                far,
                elr
            );
            here.fault(esr);
        }
        syscall::KERNEL_OP => {
            let vcpu = here.vcpu();
            here.set_result(kernel_operation(component, vcpu, args[0], args[1], args[2]))
        }
        _ => here.set_result(Err(SyscallError::UnknownSyscall)),
    }
}

/// `[address, address + len)` of the component's region, read in place, if it lies inside.
fn region_bytes(
    component: &ComponentDescriptor,
    address: u64,
    len: u64,
) -> Result<&'static [u8], SyscallError> {
    let region = component.region;
    let inside = address >= region.start
        && len <= abi::MESSAGE_MAX as u64
        && address
            .checked_add(len)
            .is_some_and(|end| end <= region.end);
    if !inside {
        return Err(SyscallError::BadArgument);
    }
    // SAFETY: the range lies inside the component's region (checked above), mapped at EL2; the
    // component is stopped in this system call, and the bytes are used before it runs again.
    Ok(unsafe { core::slice::from_raw_parts(address as *const u8, len as usize) })
}

/// `[address, address + len)` of the component's region, to write into, if it lies inside.
fn region_bytes_mut(
    component: &ComponentDescriptor,
    address: u64,
    len: u64,
) -> Result<&'static mut [u8], SyscallError> {
    let bytes = region_bytes(component, address, len)?;
    // SAFETY: as in `region_bytes`: the component's own memory, which it does not touch while
    // it is stopped in this system call; the kernel fills it before the component runs again.
    Ok(unsafe { core::slice::from_raw_parts_mut(bytes.as_ptr() as *mut u8, bytes.len()) })
}

/// LOG: forwards encoded defmt frames; the host tool decodes them with the component's ELF.
fn log(
    component: &ComponentDescriptor,
    index: usize,
    address: u64,
    len: u64,
) -> Result<(), SyscallError> {
    let bytes = region_bytes(component, address, len)?;
    defmt::info!("component-log {=usize} {=[u8]}", index, bytes);
    Ok(())
}

fn report_panic(component: &ComponentDescriptor, address: u64, len: u64) {
    let message = region_bytes(component, address, len)
        .ok()
        .and_then(|bytes| core::str::from_utf8(bytes).ok())
        .unwrap_or("(unreadable message)");
    defmt::error!(
        "component {=str} panicked: {=str}",
        component.name(),
        message
    );
}

/// A granted kernel operation from `component`, which runs on this CPU above its vCPU
/// `(vm, vcpu)`.
fn kernel_operation(
    component: &ComponentDescriptor,
    (vm, vcpu): (u16, u16),
    operation: u64,
    a: u64,
    b: u64,
) -> Result<[u64; 3], SyscallError> {
    match operation {
        kernel_op::READ_COUNTER => {
            let (ticks, frequency) = arch::counter();
            Ok([ticks, frequency, 0])
        }
        kernel_op::HOST_TLB_INVALIDATE => {
            let range = (b != u64::MAX).then_some((a, b));
            arch::invalidate_stage2(crate::boot::host_vttbr(), range);
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
            let bytes = region_bytes(component, a, b)?;
            arch::console::write(bytes);
            Ok([0; 3])
        }
        kernel_op::VM_START => {
            let vm = u16::try_from(a).map_err(|_| SyscallError::BadArgument)?;
            let status = guests::start_vm(vm)?;
            defmt::info!(
                "VM {=str} started -> {=i64}",
                guests::name(vm),
                status as i64
            );
            Ok([status, 0, 0])
        }
        kernel_op::VM_STOP => {
            let vm = u16::try_from(a).map_err(|_| SyscallError::BadArgument)?;
            guests::request_stop(vm).map(|stopped| [u64::from(stopped), 0, 0])
        }
        kernel_op::VM_STATUS => {
            let vm = u16::try_from(a).map_err(|_| SyscallError::BadArgument)?;
            guests::status(vm).map(|(on, stopped)| [on, u64::from(stopped), 0])
        }
        kernel_op::GUEST_TLB_INVALIDATE => {
            let vm = u16::try_from(a).map_err(|_| SyscallError::BadArgument)?;
            let vttbr = guests::vttbr(vm).ok_or(SyscallError::BadArgument)?;
            let range = (b != u64::MAX).then_some((b, 4096));
            arch::invalidate_stage2(vttbr, range);
            Ok([0; 3])
        }
        kernel_op::VM_LOAD => {
            let target = u16::try_from(a).map_err(|_| SyscallError::BadArgument)?;
            // The vCPU under this call, if it is the VM's, is stopped here serving the reset.
            let caller = (target == vm).then_some(usize::from(vcpu));
            guests::load(target, caller).map(|()| [0; 3])
        }
        kernel_op::VIRQ_INJECT => {
            let target = guests::cpu_of_vcpu(a)?;
            let irq = VirtualIrq::unpack(b).ok_or(SyscallError::BadArgument)?;
            interrupts::inject(arch::cpu_index(), target, irq).map(|()| [0; 3])
        }
        kernel_op::GIC_ACCESS => {
            let (address, size, write) = kernel_op_args::access_of(a);
            arch::gic::host_access(address, size, write, b)
                .map(|value| [value, 0, 0])
                .ok_or(SyscallError::BadArgument)
        }
        kernel_op::CONSOLE_ACCESS => {
            let (address, size, write) = kernel_op_args::access_of(a);
            arch::console_access(address, size, write, b)
                .map(|value| [value, 0, 0])
                .ok_or(SyscallError::BadArgument)
        }
        kernel_op::CONTROL_READ => {
            if !crate::control::on() {
                return Err(SyscallError::NoSuchTarget);
            }
            let (len, wait_ms, until_zero) = kernel_op::control_read_args_of(b);
            let buffer = region_bytes_mut(component, a, len)?;
            Ok([
                crate::control::read(buffer, wait_ms, until_zero) as u64,
                0,
                0,
            ])
        }
        kernel_op::CONTROL_WRITE => {
            if !crate::control::on() {
                return Err(SyscallError::NoSuchTarget);
            }
            crate::control::write(region_bytes(component, a, b)?);
            Ok([0; 3])
        }
        kernel_op::VIRQ_TIMER => {
            let target = guests::cpu_of_vcpu(a)?;
            let enabled = b & kernel_op_args::TIMER_ENABLED != 0;
            let irq = VirtualIrq::unpack(b & !kernel_op_args::TIMER_ENABLED)
                .ok_or(SyscallError::BadArgument)?;
            interrupts::configure_timer(
                arch::cpu_index(),
                target,
                enabled,
                irq.priority,
                irq.group1,
            );
            Ok([0; 3])
        }
        _ => Err(SyscallError::NoSuchTarget),
    }
}
