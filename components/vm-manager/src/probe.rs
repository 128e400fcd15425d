//! A test hook that checks the kernel enforces the manifest's grants: at start-up the VM manager
//! tries three things its manifest does not allow it and logs the kernel's answers, which should
//! all be `NotAllowed` (-1):
//!
//! ```text
//! grant probe: CALL guest-trap -> -1
//! grant probe: KERNEL_OP restart -> -1
//! grant probe: NOTIFY supervisor -> -1
//! ```
//!
//! - a CALL on the `guest_trap` interface (the manifest lets it call `supervisor` only; it
//!   serves `guest_trap` itself, so a missing grant check would show up as `BadArgument`, -6);
//! - the kernel operation RESTART of the supervisor (it is granted `read-counter` only; the
//!   supervisor is running, so a missing grant check would again answer `BadArgument`);
//! - a NOTIFY of the supervisor with the kernel's own `NOTIFY_COMPONENT_FAULTED` bit (its
//!   manifest `notifies` nobody; a missing grant check would deliver the forged notification
//!   and answer 0, and the supervisor, finding no component faulted, would do nothing).
//!
//! [`run`] runs only when the component's settings say `probe-grants = true` (a test system);
//! a normal system never makes the probes.

use hv_ipc::abi::SyscallError;

/// The component the RESTART and NOTIFY probes name: the supervisor (component 0).
pub const PROBE_TARGET: u64 = 0;

/// The value to log for a system call's outcome: 0 if the kernel did what was asked (the probe
/// then reports a hole in the grant checks), else the error's code.
pub fn outcome_code<T>(outcome: &Result<T, SyscallError>) -> i64 {
    match outcome {
        Ok(_) => 0,
        Err(error) => error.code(),
    }
}

/// Makes the three probes and logs the answers (`info!`).
#[cfg(target_os = "none")]
pub fn run(ipc: &mut hv_component_rt::Ipc) {
    use hv_ipc::abi::{NOTIFY_COMPONENT_FAULTED, interface, kernel_op};

    // An empty request: the grant check comes before anything looks at the message.
    let call = ipc.call(interface::GUEST_TRAP, 0);
    defmt::info!(
        "grant probe: CALL guest-trap -> {=i64}",
        outcome_code(&call)
    );
    let restart = hv_component_rt::syscall::kernel_op(kernel_op::RESTART, [PROBE_TARGET, 0, 0, 0]);
    defmt::info!(
        "grant probe: KERNEL_OP restart -> {=i64}",
        outcome_code(&restart)
    );
    let notify = hv_component_rt::notify(PROBE_TARGET as usize, NOTIFY_COMPONENT_FAULTED);
    defmt::info!(
        "grant probe: NOTIFY supervisor -> {=i64}",
        outcome_code(&notify)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_logged_as_codes() {
        assert_eq!(outcome_code::<usize>(&Ok(12)), 0);
        assert_eq!(outcome_code::<()>(&Err(SyscallError::NotAllowed)), -1);
        assert_eq!(outcome_code::<()>(&Err(SyscallError::BadArgument)), -6);
    }
}
