//! The calls other than MAP and UNMAP: MEMINFO, INFO, ENROLL, functions not served, registers.

use super::*;

#[test]
fn meminfo_and_info_report_the_granule() {
    let mut guard = guard();
    for function in [HYP_MEMINFO, MMIO_GUARD_INFO] {
        for vm in [OPTIONAL_VM, ENFORCED_VM] {
            let answer = call(&mut guard, vm, function, [0; 3]);
            assert_eq!(answer.regs, [4096, 0, 0, 0], "{function:#x}");
            assert_eq!(answer.change, None);
        }
    }
}

#[test]
fn meminfo_and_info_refuse_nonzero_reserved_arguments() {
    let mut guard = guard();
    for function in [HYP_MEMINFO, MMIO_GUARD_INFO] {
        for args in [
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [u64::MAX; 3],
            [0, 0, 1 << 63],
        ] {
            let before = snapshot(&guard, OPTIONAL_VM);
            assert_eq!(
                call(&mut guard, OPTIONAL_VM, function, args),
                status(INVALID_PARAMETER),
                "{function:#x} {args:x?}"
            );
            assert_eq!(snapshot(&guard, OPTIONAL_VM), before);
        }
    }
}

#[test]
fn enroll_once_changes_state_and_is_idempotent() {
    let mut guard = guard();
    assert!(!guard.is_enrolled(OPTIONAL_VM));
    assert!(!guard.check(OPTIONAL_VM, Ipa(UART), 4).enrolled);
    assert_eq!(enroll(&mut guard, OPTIONAL_VM), success(Change::Enrolled));
    assert!(guard.is_enrolled(OPTIONAL_VM));
    assert_eq!(enroll(&mut guard, OPTIONAL_VM), status(SUCCESS));
    assert!(guard.check(OPTIONAL_VM, Ipa(UART), 4).enrolled);
    // Other VMs are not affected.
    assert!(!guard.is_enrolled(OFF_VM));
}

#[test]
fn enroll_ignores_x1_to_x3() {
    // Android's Linux makes the call without setting them.
    let mut guard = guard();
    assert_eq!(
        call(
            &mut guard,
            OPTIONAL_VM,
            MMIO_GUARD_ENROLL,
            [0xffff_0000_1234, 7, u64::MAX]
        ),
        success(Change::Enrolled)
    );
}

#[test]
fn other_functions_are_not_supported() {
    let mut guard = guard();
    for function in [
        // The 32-bit IDs of the same functions are not served.
        0x8600_0002,
        0x8600_0005,
        0x8600_0006,
        0x8600_0007,
        0x8600_0008,
        // Other KVM vendor functions: FEATURES, PTP, MEM_SHARE / UNSHARE, MEM_RELINQUISH,
        // the ranged MMIO guard calls.
        0x8600_0000,
        0xC600_0000,
        0xC600_0001,
        0xC600_0003,
        0xC600_0004,
        0xC600_0009,
        0xC600_000A,
        0xC600_000B,
        // PSCI, SMCCC, nonsense.
        0x8400_0000,
        0x8000_0000,
        0,
        u32::MAX,
    ] {
        let before = snapshot(&guard, OPTIONAL_VM);
        assert_eq!(
            call(&mut guard, OPTIONAL_VM, function, [UART, 0, 0]),
            status(NOT_SUPPORTED),
            "{function:#x}"
        );
        assert_eq!(snapshot(&guard, OPTIONAL_VM), before);
    }
}

#[test]
fn only_the_low_32_bits_of_x0_name_the_function() {
    let mut guard = guard();
    let answer = guard.hypercall(
        OPTIONAL_VM,
        &[
            0xffff_ffff_0000_0000 | u64::from(MMIO_GUARD_INFO),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ],
    );
    assert_eq!(answer.regs, [GRANULE_SIZE, 0, 0, 0]);
}

#[test]
fn x4_to_x7_are_ignored() {
    let mut guard = guard();
    let answer = guard.hypercall(
        OPTIONAL_VM,
        &[HYP_MEMINFO.into(), 0, 0, 0, 1, 2, 3, u64::MAX],
    );
    assert_eq!(answer.regs, [GRANULE_SIZE, 0, 0, 0]);
}

#[test]
fn names() {
    assert_eq!(function_name(MMIO_GUARD_MAP), "MMIO_GUARD_MAP");
    assert_eq!(function_name(0x8600_0007), "UNKNOWN");
    for function in ALL_FUNCTIONS {
        assert_ne!(function_name(function), "UNKNOWN");
    }
    assert_eq!(Mode::Enforced.name(), "enforced");
}
