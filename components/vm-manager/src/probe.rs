//! A test hook that checks the kernel enforces the manifest's grants: at start-up the VM manager
//! tries two things its manifest does not allow it and logs the kernel's answers, which should
//! both be `NotAllowed` (-1):
//!
//! ```text
//! grant probe: CALL guest-trap -> -1
//! grant probe: KERNEL_OP restart -> -1
//! ```
//!
//! - a CALL on the `guest_trap` interface (the manifest lets it call `supervisor` only; it
//!   serves `guest_trap` itself, so a missing grant check would show up as `BadArgument`, -6);
//! - the kernel operation RESTART of the supervisor (it is granted `read-counter` only; the
//!   supervisor is running, so a missing grant check would again answer `BadArgument`).
//!
//! [`run`] runs only when the component's settings say `probe-grants = true` (a test system);
//! a normal system never makes the probes.

use hv_ipc::abi::SyscallError;

/// The component the RESTART probe names: the supervisor (component 0).
pub const RESTART_TARGET: u64 = 0;

/// The value to log for a system call's outcome: 0 if the kernel did what was asked (the probe
/// then reports a hole in the grant checks), else the error's code.
pub fn outcome_code<T>(outcome: &Result<T, SyscallError>) -> i64 {
    match outcome {
        Ok(_) => 0,
        Err(error) => error.code(),
    }
}

/// Makes both probes and logs the answers (`info!`).
#[cfg(target_os = "none")]
pub fn run(ipc: &mut hv_component_rt::Ipc) {
    use hv_ipc::abi::{interface, kernel_op};

    // An empty request: the grant check comes before anything looks at the message.
    let call = ipc.call(interface::GUEST_TRAP, 0);
    defmt::info!(
        "grant probe: CALL guest-trap -> {=i64}",
        outcome_code(&call)
    );
    let restart =
        hv_component_rt::syscall::kernel_op(kernel_op::RESTART, [RESTART_TARGET, 0, 0, 0]);
    defmt::info!(
        "grant probe: KERNEL_OP restart -> {=i64}",
        outcome_code(&restart)
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
