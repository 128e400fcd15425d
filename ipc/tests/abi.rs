//! The system-call ABI's codes.

use hv_ipc::abi::{ComponentState, SyscallError};

/// Exhaustive: a new error is a compile error here until `ALL` and this test know it.
fn listed(error: SyscallError) -> bool {
    match error {
        SyscallError::NotAllowed
        | SyscallError::NoSuchTarget
        | SyscallError::MessageTooLong
        | SyscallError::CalleeFaulted
        | SyscallError::NotServing
        | SyscallError::BadArgument
        | SyscallError::CalleeStopped
        | SyscallError::UnknownSyscall
        | SyscallError::CalleeRetired => SyscallError::ALL.contains(&error),
    }
}

#[test]
fn syscall_error_codes_round_trip() {
    for error in SyscallError::ALL {
        assert!(listed(error));
        assert!(
            error.code() < 0,
            "{error:?} must be negative: 0 and up are success values"
        );
        assert_eq!(SyscallError::from_code(error.code()), Some(error));
    }
    // Codes are -1, -2, ... in order, none skipped or repeated.
    for (index, error) in SyscallError::ALL.into_iter().enumerate() {
        assert_eq!(error.code(), -(index as i64) - 1);
    }
}

#[test]
fn other_values_are_not_syscall_errors() {
    for code in [0, 1, 2, i64::MAX, -10, -100, i64::MIN] {
        assert_eq!(SyscallError::from_code(code), None, "code {code}");
    }
    // x0 is a u64 register: a status read back as unsigned still decodes after the cast.
    assert_eq!(
        SyscallError::from_code(u64::MAX as i64),
        Some(SyscallError::NotAllowed)
    );
}

#[test]
fn component_state_codes_round_trip() {
    for state in [
        ComponentState::Idle,
        ComponentState::Running,
        ComponentState::Faulted,
        ComponentState::Retired,
    ] {
        assert_eq!(ComponentState::from_code(state as u64), Some(state));
    }
    assert_eq!(ComponentState::from_code(4), None);
}
