//! Thin wrappers over the system calls (`hv_ipc::abi`), one function each.
//!
//! Register use (`HVC #0`; x0 = call number on entry, status on return: 0 or a non-negative
//! result kind, or a negative [`SyscallError`] code):
//!
//! - RECV: returns x0 = kind (`RECV_CALL` / `RECV_NOTIFICATION`); for a call x1 = sender,
//!   x2 = interface, x3 = request length (in `__ipc_rx`); for a notification x2 = bits.
//! - REPLY: x1 = reply length (in `__ipc_tx`).
//! - CALL: x1 = interface, x2 = request length (in `__ipc_tx`); returns x1 = reply length (in
//!   `__ipc_rx`).
//! - NOTIFY: x1 = target component index, x2 = bits.
//! - LOG: x1 = pointer, x2 = length (defmt frames).
//! - PANIC: x1 = pointer, x2 = length (UTF-8 message); never returns.
//! - FAULT: x1 = ESR_EL1, x2 = FAR_EL1, x3 = ELR_EL1; never returns.
//! - KERNEL_OP: x1 = operation, x2..x5 = arguments; returns x1..x3.
//!
//! LOG and PANIC pass a pointer into the component's own region and a length (not the TX
//! buffer), so that logging and panicking never disturb a message being built or served.
//!
//! The calls that move messages through `__ipc_rx` / `__ipc_tx` (RECV, REPLY, CALL) are
//! methods of [`crate::Ipc`], whose borrow rules keep references to the buffers from living
//! across them; the ones here touch no shared buffer.

use crate::arch;
use hv_ipc::abi::{SyscallError, kernel_op as op, syscall};

/// Turns a raw x0 status into a result.
///
/// A negative code this runtime does not know (a newer kernel) is reported as
/// [`SyscallError::UnknownSyscall`], the closest meaning: the kernel did not do what was asked.
pub(crate) fn status(x0: u64) -> Result<u64, SyscallError> {
    let code = x0 as i64;
    if code >= 0 {
        Ok(x0)
    } else {
        Err(SyscallError::from_code(code).unwrap_or(SyscallError::UnknownSyscall))
    }
}

/// Sets notification `bits` on component `target`; `NotAllowed` unless the manifest's
/// `notifies` names it.
pub fn notify(target: usize, bits: u64) -> Result<(), SyscallError> {
    // SAFETY: NOTIFY touches no memory of this component.
    let [x0, ..] = unsafe { arch::hvc(syscall::NOTIFY, [target as u64, bits, 0, 0, 0]) };
    status(x0).map(drop)
}

/// Performs kernel operation `operation` ([`hv_ipc::abi::kernel_op`]) with `args` in x2..x5;
/// returns x1..x3.
pub fn kernel_op(operation: u64, args: [u64; 4]) -> Result<[u64; 3], SyscallError> {
    let [a, b, c, d] = args;
    // SAFETY: kernel operations act on components and counters, never on this component's
    // memory.
    let [x0, x1, x2, x3, _] = unsafe { arch::hvc(syscall::KERNEL_OP, [operation, a, b, c, d]) };
    status(x0).map(|_| [x1, x2, x3])
}

/// Writes `bytes` (defmt frames) to the kernel's log. Errors are ignored: there is nowhere to
/// report them.
pub fn log(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: LOG only reads `bytes.len()` bytes at `bytes.as_ptr()`, which the shared borrow
    // keeps valid and unchanged for the duration of the call.
    unsafe {
        arch::hvc(
            syscall::LOG,
            [bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0],
        )
    };
}

/// Reports a panic with a UTF-8 `message` and stops the component. Never returns.
pub fn panic(message: &[u8]) -> ! {
    // SAFETY: PANIC only reads `message`, which stays borrowed (the call does not return).
    unsafe {
        arch::hvc(
            syscall::PANIC,
            [message.as_ptr() as u64, message.len() as u64, 0, 0, 0],
        )
    };
    arch::halt()
}

/// Reports an exception the component took (what the vectors do, callable from Rust for
/// completeness). Never returns.
pub fn fault(esr: u64, far: u64, elr: u64) -> ! {
    // SAFETY: FAULT touches no memory of this component.
    unsafe { arch::hvc(syscall::FAULT, [esr, far, elr, 0, 0]) };
    arch::halt()
}

/// A component's state as [`op::COMPONENT_STATE`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentStatus {
    /// The state code ([`hv_ipc::abi::ComponentState`] as u64; unknown codes kept raw).
    pub state: u64,
    /// Faults so far.
    pub faults: u64,
    /// The last fault's ESR (0 for a panic).
    pub last_esr: u64,
}

/// [`op::COMPONENT_STATE`] for component `index`.
pub fn component_state(index: usize) -> Result<ComponentStatus, SyscallError> {
    let [state, faults, last_esr] = kernel_op(op::COMPONENT_STATE, [index as u64, 0, 0, 0])?;
    Ok(ComponentStatus {
        state,
        faults,
        last_esr,
    })
}

/// [`op::RESTART`] of component `index`, not before counter value `deadline` (0: at once).
pub fn restart(index: usize, deadline: u64) -> Result<(), SyscallError> {
    kernel_op(op::RESTART, [index as u64, deadline, 0, 0]).map(drop)
}

/// [`op::READ_COUNTER`]: the physical counter and its frequency, as `(ticks, hz)`.
pub fn read_counter() -> Result<(u64, u64), SyscallError> {
    kernel_op(op::READ_COUNTER, [0; 4]).map(|[ticks, hz, _]| (ticks, hz))
}

/// [`op::CONTROL_READ`]: reads the control line into `buffer`, waiting up to `wait_ms` for
/// the first byte, and returning at the end of a frame (a zero byte past the first) with
/// `until_zero`; returns how many bytes came.
pub fn control_read(
    buffer: &mut [u8],
    wait_ms: u32,
    until_zero: bool,
) -> Result<usize, SyscallError> {
    let len = buffer.len().min(hv_ipc::abi::MESSAGE_MAX) as u32;
    let args = op::control_read_args(len, wait_ms, until_zero);
    kernel_op(op::CONTROL_READ, [buffer.as_mut_ptr() as u64, args, 0, 0])
        .map(|[count, ..]| count as usize)
}

/// [`op::CONTROL_WRITE`]: sends `bytes` (at most `MESSAGE_MAX` at a time) on the control line.
pub fn control_write(bytes: &[u8]) -> Result<(), SyscallError> {
    for chunk in bytes.chunks(hv_ipc::abi::MESSAGE_MAX) {
        kernel_op(
            op::CONTROL_WRITE,
            [chunk.as_ptr() as u64, chunk.len() as u64, 0, 0],
        )?;
    }
    Ok(())
}

/// [`op::SWAP`]: swap a component for `image` (in this component's memory), with `args`
/// ([`op::swap_args`]: the component, the image's length, its entry offset), rolling back if
/// the new instance has not taken the state `deadline_ms` after the start. The swap happens
/// once this component waits again.
pub fn swap(image: &[u8], args: u64, deadline_ms: u64) -> Result<(), SyscallError> {
    kernel_op(op::SWAP, [image.as_ptr() as u64, args, deadline_ms, 0]).map(drop)
}

/// [`op::SWAP_STATUS`]: how the last swap ended, the microseconds it took and the bytes of
/// state handed over.
pub fn swap_status() -> Result<(u64, u64, u64), SyscallError> {
    kernel_op(op::SWAP_STATUS, [0; 4]).map(|[outcome, micros, state]| (outcome, micros, state))
}

/// [`op::COMPONENT_BUILD`]: the build id of component `index`'s running instance.
pub fn component_build(index: usize) -> Result<u64, SyscallError> {
    kernel_op(op::COMPONENT_BUILD, [index as u64, 0, 0, 0]).map(|[build, ..]| build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(status(0), Ok(0));
        assert_eq!(status(1), Ok(1));
        assert_eq!(status(-4i64 as u64), Err(SyscallError::CalleeFaulted));
        assert_eq!(status(-7i64 as u64), Err(SyscallError::CalleeStopped));
        assert_eq!(status(-100i64 as u64), Err(SyscallError::UnknownSyscall));
    }
}
