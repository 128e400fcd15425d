//! Checks of accesses: before and after enrolment, both ends mapped, malformed, refusals counted.

use super::*;

#[test]
fn checks_before_enrolment_allow_everything_well_formed() {
    let mut guard = guard();
    let verdict = guard.check(OPTIONAL_VM, Ipa(UART), 4);
    assert_eq!(
        verdict,
        Verdict {
            allowed: true,
            enrolled: false
        }
    );
    assert!(allowed(&mut guard, OPTIONAL_VM, RAM_START, 8));
    assert_eq!(guard.refused(OPTIONAL_VM), 0);
}

#[test]
fn enrolled_checks_need_both_ends_mapped() {
    let mut guard = guard();
    enroll(&mut guard, OPTIONAL_VM);
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART, 4));
    map(&mut guard, OPTIONAL_VM, UART);
    for (ipa, len) in [(UART, 1), (UART, 8), (UART + 0xff8, 8), (UART + 0xfff, 1)] {
        assert!(allowed(&mut guard, OPTIONAL_VM, ipa, len), "{ipa:#x}+{len}");
    }
    // Straddling into the next granule, which is not mapped.
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART + 0xffc, 8));
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART + 0xfff, 2));
    // Straddling in from the granule before, which is not mapped.
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART - 4, 8));
    // The next granule alone.
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART_NEXT, 4));
    map(&mut guard, OPTIONAL_VM, UART_NEXT);
    assert!(allowed(&mut guard, OPTIONAL_VM, UART + 0xffc, 8));
    // Only the last byte's granule mapped.
    unmap(&mut guard, OPTIONAL_VM, UART);
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART + 0xffc, 8));
    assert!(allowed(&mut guard, OPTIONAL_VM, UART_NEXT, 8));
}

#[test]
fn refusals_are_counted_per_vm() {
    let mut guard = guard();
    enroll(&mut guard, OPTIONAL_VM);
    for _ in 0..3 {
        assert!(!allowed(&mut guard, OPTIONAL_VM, UART, 4));
    }
    assert!(!allowed(&mut guard, ENFORCED_VM, UART, 4));
    map(&mut guard, OPTIONAL_VM, UART);
    assert!(allowed(&mut guard, OPTIONAL_VM, UART, 4));
    assert_eq!(guard.refused(OPTIONAL_VM), 3);
    assert_eq!(guard.refused(ENFORCED_VM), 1);
    assert_eq!(guard.refused(OFF_VM), 0);
}

#[test]
fn malformed_checks_are_refused_in_every_mode() {
    let mut guard = guard();
    for vm in [OPTIONAL_VM, ENFORCED_VM, OFF_VM, UNLISTED_VM, 0xffff] {
        map(&mut guard, vm, UART);
        for (ipa, len) in [
            (UART, 0),
            (UART, 9),
            (UART, 16),
            (UART, u64::MAX),
            (u64::MAX, 2),
            (u64::MAX - 6, 8),
        ] {
            let before = guard.refused(vm);
            let verdict = guard.check(vm, Ipa(ipa), len);
            assert!(!verdict.allowed, "vm{vm} {ipa:#x}+{len}");
            assert_eq!(guard.refused(vm), before + 1);
        }
        // The last byte of the address space is fine.
        assert!(guard.check(vm, Ipa(u64::MAX), 1).allowed || vm == ENFORCED_VM);
    }
}
