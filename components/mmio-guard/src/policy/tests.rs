//! Tests of the MMIO guard's policy: every call's good and bad arguments, the checks, the modes,
//! and random sequences of calls against a simple model.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// VM 0: optional, RAM at 1 GiB..2 GiB (like the host VM).
const OPTIONAL_VM: u16 = 0;
/// VM 1: enforced, RAM at 2 GiB..2 GiB + 128 MiB.
const ENFORCED_VM: u16 = 1;
/// VM 2: off, no RAM known.
const OFF_VM: u16 = 2;
/// VM 3 is not in the table.
const UNLISTED_VM: u16 = 3;

const RAM_START: u64 = 0x4000_0000;
const RAM_END: u64 = 0x8000_0000;
/// A device page below RAM (QEMU virt's PL011).
const UART: u64 = 0x0900_0000;
/// The next granule.
const UART_NEXT: u64 = UART + GRANULE_SIZE;

const TABLE: &[VmConfig] = &[
    VmConfig {
        vm: OPTIONAL_VM,
        ram_start: RAM_START,
        ram_end: RAM_END,
        mode: Mode::Optional,
    },
    VmConfig {
        vm: ENFORCED_VM,
        ram_start: 0x8000_0000,
        ram_end: 0x8800_0000,
        mode: Mode::Enforced,
    },
    VmConfig {
        vm: OFF_VM,
        ram_start: 0,
        ram_end: 0,
        mode: Mode::Off,
    },
];

const ALL_FUNCTIONS: [u32; 5] = [
    HYP_MEMINFO,
    MMIO_GUARD_INFO,
    MMIO_GUARD_ENROLL,
    MMIO_GUARD_MAP,
    MMIO_GUARD_UNMAP,
];

fn guard() -> Guard {
    Guard::new(TABLE)
}

fn call(guard: &mut Guard, vm: u16, function: u32, args: [u64; 3]) -> Answer {
    guard.hypercall(
        vm,
        &[
            function.into(),
            args[0],
            args[1],
            args[2],
            0xdead,
            0xbeef,
            0,
            0,
        ],
    )
}

fn status(code: i64) -> Answer {
    Answer {
        regs: [code as u64, 0, 0, 0],
        change: None,
    }
}

fn success(change: Change) -> Answer {
    Answer {
        regs: [SUCCESS as u64, 0, 0, 0],
        change: Some(change),
    }
}

fn map(guard: &mut Guard, vm: u16, ipa: u64) -> Answer {
    call(guard, vm, MMIO_GUARD_MAP, [ipa, 0, 0])
}

fn unmap(guard: &mut Guard, vm: u16, ipa: u64) -> Answer {
    call(guard, vm, MMIO_GUARD_UNMAP, [ipa, 0, 0])
}

fn enroll(guard: &mut Guard, vm: u16) -> Answer {
    call(guard, vm, MMIO_GUARD_ENROLL, [0; 3])
}

fn allowed(guard: &mut Guard, vm: u16, ipa: u64, len: u64) -> bool {
    guard.check(vm, Ipa(ipa), len).allowed
}

/// Everything observable about one VM, to show that a failed call changed nothing.
fn snapshot(guard: &Guard, vm: u16) -> (bool, Vec<GranuleRange>, u64) {
    (
        guard.is_enrolled(vm),
        guard.mapped(vm).to_vec(),
        guard.refused(vm),
    )
}

/// The numbers of the granules VM `vm` has mapped, in ascending order.
fn mapped_granules(guard: &Guard, vm: u16) -> Vec<u64> {
    guard
        .mapped(vm)
        .iter()
        .flat_map(|range| range.first.0..range.end.0)
        .collect()
}

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
fn map_declares_a_granule_once() {
    let mut guard = guard();
    let granule = Granule::containing(UART);
    assert_eq!(
        map(&mut guard, OPTIONAL_VM, UART),
        success(Change::Mapped(granule))
    );
    assert_eq!(map(&mut guard, OPTIONAL_VM, UART), status(SUCCESS));
    assert_eq!(guard.mapped(OPTIONAL_VM), [GranuleRange::single(granule)]);
    assert_eq!(granule.base(), UART);
    // Per VM.
    assert_eq!(guard.mapped(ENFORCED_VM), []);
}

#[test]
fn map_and_unmap_ignore_x2_and_x3() {
    let mut guard = guard();
    for (x2, x3) in [(0, 0), (1, 0), (7, 0), (0xff, u64::MAX), (u64::MAX, 0x1234)] {
        let answer = call(&mut guard, OPTIONAL_VM, MMIO_GUARD_MAP, [UART, x2, x3]);
        assert_eq!(answer.regs, [SUCCESS as u64, 0, 0, 0], "{x2:#x} {x3:#x}");
        let answer = call(&mut guard, OPTIONAL_VM, MMIO_GUARD_UNMAP, [UART, x2, x3]);
        assert_eq!(answer.regs, [SUCCESS as u64, 0, 0, 0], "{x2:#x} {x3:#x}");
    }
}

#[test]
fn map_and_unmap_refuse_bad_ipas() {
    let mut guard = guard();
    map(&mut guard, OPTIONAL_VM, UART_NEXT);
    let bad = [
        // Misaligned.
        UART + 1,
        UART + 0x800,
        UART + GRANULE_SIZE - 1,
        UART_NEXT + 8,
        // Inside RAM: first granule, one in the middle, the last.
        RAM_START,
        RAM_START + 0x10_0000,
        RAM_END - GRANULE_SIZE,
        // Beyond the IPA space.
        IPA_LIMIT,
        IPA_LIMIT + GRANULE_SIZE,
        !(GRANULE_SIZE - 1),
        u64::MAX,
    ];
    for function in [MMIO_GUARD_MAP, MMIO_GUARD_UNMAP] {
        for ipa in bad {
            let before = snapshot(&guard, OPTIONAL_VM);
            assert_eq!(
                call(&mut guard, OPTIONAL_VM, function, [ipa, 0, 0]),
                status(INVALID_PARAMETER),
                "{function:#x} {ipa:#x}"
            );
            assert_eq!(snapshot(&guard, OPTIONAL_VM), before, "{ipa:#x}");
        }
    }
}

#[test]
fn map_accepts_the_edges_of_ram_and_of_the_ipa_space() {
    let mut guard = guard();
    for ipa in [
        0,
        RAM_START - GRANULE_SIZE,
        RAM_END,
        IPA_LIMIT - GRANULE_SIZE,
    ] {
        assert_eq!(
            map(&mut guard, OPTIONAL_VM, ipa),
            success(Change::Mapped(Granule::containing(ipa))),
            "{ipa:#x}"
        );
    }
    // A VM with no RAM known may map anything in the IPA space.
    let mut guard = Guard::new(&[VmConfig {
        vm: 0,
        ram_start: 0,
        ram_end: 0,
        mode: Mode::Optional,
    }]);
    assert_eq!(map(&mut guard, 0, RAM_START).regs[0], SUCCESS as u64);
}

#[test]
fn ram_bounds_need_not_be_aligned_for_the_policy() {
    // build.rs refuses them, but the policy still never lets MMIO overlap RAM.
    let mut guard = Guard::new(&[VmConfig {
        vm: 0,
        ram_start: 0x1800,
        ram_end: 0x4800,
        mode: Mode::Optional,
    }]);
    assert_eq!(map(&mut guard, 0, 0).regs[0], SUCCESS as u64);
    for ipa in [0x1000, 0x2000, 0x4000] {
        assert_eq!(
            map(&mut guard, 0, ipa),
            status(INVALID_PARAMETER),
            "{ipa:#x}"
        );
    }
    assert_eq!(map(&mut guard, 0, 0x5000).regs[0], SUCCESS as u64);
}

#[test]
fn unmap_removes_and_accesses_are_refused_again() {
    let mut guard = guard();
    enroll(&mut guard, OPTIONAL_VM);
    map(&mut guard, OPTIONAL_VM, UART);
    assert!(allowed(&mut guard, OPTIONAL_VM, UART + 0x18, 4));
    assert_eq!(
        unmap(&mut guard, OPTIONAL_VM, UART),
        success(Change::Unmapped(Granule::containing(UART)))
    );
    assert_eq!(guard.mapped(OPTIONAL_VM), []);
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART + 0x18, 4));
    // Unmapping what is not mapped succeeds and changes nothing.
    assert_eq!(unmap(&mut guard, OPTIONAL_VM, UART), status(SUCCESS));
    assert_eq!(unmap(&mut guard, OPTIONAL_VM, UART_NEXT), status(SUCCESS));
}

#[test]
fn map_before_enroll_takes_effect_at_enrolment() {
    let mut guard = guard();
    assert_eq!(map(&mut guard, OPTIONAL_VM, UART).regs[0], SUCCESS as u64);
    // Not enrolled: everything is allowed, mapped or not.
    assert!(allowed(&mut guard, OPTIONAL_VM, UART, 4));
    assert!(allowed(&mut guard, OPTIONAL_VM, UART_NEXT, 4));
    enroll(&mut guard, OPTIONAL_VM);
    assert!(allowed(&mut guard, OPTIONAL_VM, UART, 4));
    assert!(!allowed(&mut guard, OPTIONAL_VM, UART_NEXT, 4));
}

#[test]
fn a_full_set_refuses_new_ranges_only() {
    let mut guard = guard();
    enroll(&mut guard, OPTIONAL_VM);
    // Every other granule: each one a range of its own.
    let base = 0x1000_0000;
    let scattered = |index: u64| base + index * 2 * GRANULE_SIZE;
    let last = MAX_GRANULE_RANGES as u64 - 1;
    for index in (0..=last).rev() {
        // In descending order, each MAP a new range before the others.
        let ipa = scattered(index);
        assert_eq!(
            map(&mut guard, OPTIONAL_VM, ipa),
            success(Change::Mapped(Granule::containing(ipa))),
            "{ipa:#x}"
        );
    }
    assert_eq!(guard.mapped(OPTIONAL_VM).len(), MAX_GRANULE_RANGES);
    let full = snapshot(&guard, OPTIONAL_VM);
    // A granule adjacent to none mapped needs a range more.
    for ipa in [UART, scattered(last + 1), base - 2 * GRANULE_SIZE] {
        assert_eq!(
            map(&mut guard, OPTIONAL_VM, ipa),
            status(INVALID_PARAMETER),
            "{ipa:#x}"
        );
        assert_eq!(snapshot(&guard, OPTIONAL_VM), full);
    }
    // Mapping a granule that is there still succeeds.
    assert_eq!(map(&mut guard, OPTIONAL_VM, base), status(SUCCESS));
    // So does extending a range, at either end.
    for ipa in [base - GRANULE_SIZE, scattered(last) + GRANULE_SIZE] {
        assert_eq!(
            map(&mut guard, OPTIONAL_VM, ipa),
            success(Change::Mapped(Granule::containing(ipa))),
            "{ipa:#x}"
        );
    }
    assert_eq!(guard.mapped(OPTIONAL_VM).len(), MAX_GRANULE_RANGES);
    // And filling a hole, which frees a range.
    let hole = base + GRANULE_SIZE;
    assert_eq!(
        map(&mut guard, OPTIONAL_VM, hole),
        success(Change::Mapped(Granule::containing(hole)))
    );
    assert_eq!(guard.mapped(OPTIONAL_VM).len(), MAX_GRANULE_RANGES - 1);
    assert_eq!(
        map(&mut guard, OPTIONAL_VM, UART),
        success(Change::Mapped(Granule::containing(UART)))
    );
    // Full again: an UNMAP inside a range would split it, so it is refused and the granule
    // stays mapped, as the guest is told.
    let full = snapshot(&guard, OPTIONAL_VM);
    assert_eq!(
        unmap(&mut guard, OPTIONAL_VM, base),
        status(INVALID_PARAMETER)
    );
    assert_eq!(snapshot(&guard, OPTIONAL_VM), full);
    assert!(allowed(&mut guard, OPTIONAL_VM, base, 8));
    assert_eq!(
        unmap(&mut guard, OPTIONAL_VM, hole),
        status(INVALID_PARAMETER)
    );
    assert_eq!(snapshot(&guard, OPTIONAL_VM), full);
    // An UNMAP at a range's end needs no new range.
    let front = base - GRANULE_SIZE;
    assert_eq!(
        unmap(&mut guard, OPTIONAL_VM, front),
        success(Change::Unmapped(Granule::containing(front)))
    );
    assert!(!allowed(&mut guard, OPTIONAL_VM, front, 8));
    // Another VM's set is its own.
    assert_eq!(map(&mut guard, ENFORCED_VM, UART).regs[0], SUCCESS as u64);
    let mapped = guard.mapped(OPTIONAL_VM);
    assert!(mapped.windows(2).all(|pair| pair[0].end < pair[1].first));
}

#[test]
fn a_linux_boot_maps_in_a_few_ranges() {
    // Page by page, as Linux's ioremap hook does: the GICv3 distributor, 4096 redistributor
    // pages, the console, a PCIe ECAM, the RTC.
    let regions = [
        (0x0800_0000, 16),
        (0x40_0000_0000, 4096),
        (UART, 1),
        (0x40_1000_0000, 65_536),
        (0x0901_0000, 1),
    ];
    let mut guard = guard();
    enroll(&mut guard, OPTIONAL_VM);
    for (base, pages) in regions {
        for page in 0..pages {
            let ipa = base + page * GRANULE_SIZE;
            assert_eq!(
                map(&mut guard, OPTIONAL_VM, ipa),
                success(Change::Mapped(Granule::containing(ipa))),
                "{ipa:#x}"
            );
        }
    }
    let mut expected: Vec<GranuleRange> = regions
        .iter()
        .map(|&(base, pages)| GranuleRange {
            first: Granule::containing(base),
            end: Granule::containing(base + pages * GRANULE_SIZE),
        })
        .collect();
    expected.sort_by_key(|range| range.first);
    assert_eq!(guard.mapped(OPTIONAL_VM), expected);
    for (base, pages) in regions {
        let end = base + pages * GRANULE_SIZE;
        assert!(allowed(&mut guard, OPTIONAL_VM, base, 4), "{base:#x}");
        assert!(allowed(&mut guard, OPTIONAL_VM, end - 8, 8), "{base:#x}");
        assert!(!allowed(&mut guard, OPTIONAL_VM, base - 4, 4), "{base:#x}");
        assert!(!allowed(&mut guard, OPTIONAL_VM, end, 4), "{base:#x}");
    }
}

#[test]
fn the_guard_fits_the_component_stack() {
    // main.rs keeps the guard on the component's stack (64 KiB by default), and building it
    // takes as much again: MAX_GRANULE_RANGES's documentation states this size.
    assert!(size_of::<Guard>() <= 8392, "{}", size_of::<Guard>());
}

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

#[test]
fn enforced_vms_are_enrolled_from_the_start_for_good() {
    let mut guard = guard();
    assert!(guard.is_enrolled(ENFORCED_VM));
    assert_eq!(
        guard.check(ENFORCED_VM, Ipa(UART), 4),
        Verdict {
            allowed: false,
            enrolled: true
        }
    );
    // ENROLL is accepted and changes nothing.
    assert_eq!(enroll(&mut guard, ENFORCED_VM), status(SUCCESS));
    map(&mut guard, ENFORCED_VM, UART);
    assert!(allowed(&mut guard, ENFORCED_VM, UART, 4));
    // Nothing a guest can call un-enrols it.
    for function in ALL_FUNCTIONS.into_iter().chain([0xC600_0009, 0x8600_0006]) {
        for x1 in [0, UART, UART + 1, 0x8000_0000] {
            call(&mut guard, ENFORCED_VM, function, [x1, 0, 0]);
            assert!(guard.is_enrolled(ENFORCED_VM));
        }
    }
    assert!(!allowed(&mut guard, ENFORCED_VM, UART, 4));
}

#[test]
fn off_vms_get_no_service_and_no_guard() {
    let mut guard = guard();
    for function in ALL_FUNCTIONS {
        for args in [[0; 3], [UART, 0, 0]] {
            assert_eq!(
                call(&mut guard, OFF_VM, function, args),
                status(NOT_SUPPORTED),
                "{function:#x}"
            );
        }
    }
    assert_eq!(snapshot(&guard, OFF_VM), (false, vec![], 0));
    assert_eq!(
        guard.check(OFF_VM, Ipa(UART), 4),
        Verdict {
            allowed: true,
            enrolled: false
        }
    );
}

#[test]
fn unlisted_vms_are_treated_as_off() {
    let mut guard = guard();
    for vm in [UNLISTED_VM, 4, 0xffff] {
        for function in ALL_FUNCTIONS {
            assert_eq!(
                call(&mut guard, vm, function, [0; 3]),
                status(NOT_SUPPORTED),
                "vm{vm} {function:#x}"
            );
        }
        assert_eq!(
            guard.check(vm, Ipa(UART), 4),
            Verdict {
                allowed: true,
                enrolled: false
            }
        );
        assert!(!guard.is_enrolled(vm));
        assert_eq!(guard.mapped(vm), []);
    }
    // Malformed checks for them are counted together.
    assert!(!allowed(&mut guard, UNLISTED_VM, UART, 0));
    assert!(!allowed(&mut guard, 0xffff, UART, 0));
    assert_eq!(guard.refused(4), 2);
    assert_eq!(guard.refused(OPTIONAL_VM), 0);
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
fn the_configuration_gives_each_vm_its_ram_and_mode() {
    use hv_component_config::{MmioGuardMode, Name, Region, System, Vm};
    let vm = |id: u16, host: bool, base: u64, mode| Vm {
        id,
        name: Name::try_from("vm").unwrap(),
        host,
        memory: Region {
            base,
            size: 0x1000_0000,
        },
        // A guest sees its RAM at the board's RAM base whatever backs it; the host at its PA.
        ram_ipa: if host { base } else { 0x4000_0000 },
        mte: false,
        shared_ipa_bit: None,
        cpus: Default::default(),
        mmio_guard: mode,
        devices: Default::default(),
    };
    let mut system = System {
        ram: Region {
            base: RAM_START,
            size: RAM_END - RAM_START,
        },
        hypervisor: Region {
            base: RAM_START,
            size: 0x200_0000,
        },
        vms: Default::default(),
        components: Default::default(),
        gics: Default::default(),
        console: Region::default(),
        control_line: None,
    };
    for config in [
        vm(0, true, 0x4200_0000, MmioGuardMode::Optional),
        vm(1, false, 0x6000_0000, MmioGuardMode::Enforced),
        vm(2, false, 0x7000_0000, MmioGuardMode::Off),
    ] {
        system.vms.push(config).unwrap();
    }
    let configs = vm_configs(&system);
    // The host's RAM is all of the system's, the hypervisor's part included; a guest's is where
    // it sees it (its IPAs), not the physical memory behind it.
    assert_eq!(
        configs[0],
        VmConfig {
            vm: 0,
            ram_start: RAM_START,
            ram_end: RAM_END,
            mode: Mode::Optional
        }
    );
    assert_eq!(
        configs[1],
        VmConfig {
            vm: 1,
            ram_start: 0x4000_0000,
            ram_end: 0x5000_0000,
            mode: Mode::Enforced
        }
    );
    assert_eq!(configs[2].mode, Mode::Off);
    // A guard built from it enforces VM 1 from the start and offers nothing to VM 2.
    let guard = Guard::new(&configs);
    assert_eq!(guard.configs().count(), 3);
}

#[test]
fn a_table_with_duplicates_or_large_ids_keeps_the_first_entry() {
    let guard = Guard::new(&[
        VmConfig { vm: 9, ..TABLE[0] },
        TABLE[1],
        VmConfig {
            mode: Mode::Off,
            ..TABLE[1]
        },
    ]);
    let configs: Vec<&VmConfig> = guard.configs().collect();
    assert_eq!(configs, [&TABLE[1]]);
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

// --- Random sequences of calls against a model ----------------------------------------------

/// What a VM should look like, kept the simplest way.
#[derive(Debug)]
struct ModelVm {
    config: VmConfig,
    enrolled: bool,
    mapped: BTreeSet<u64>,
    refused: u64,
}

impl ModelVm {
    fn new(config: VmConfig) -> Self {
        Self {
            config,
            enrolled: config.mode == Mode::Enforced,
            mapped: BTreeSet::new(),
            refused: 0,
        }
    }

    /// Whether a granule next to `granule` is mapped.
    fn has_neighbour(&self, granule: u64) -> bool {
        granule
            .checked_sub(1)
            .is_some_and(|before| self.mapped.contains(&before))
            || self.mapped.contains(&(granule + 1))
    }

    /// Whether the mapped granules make up as many runs as a VM can have.
    fn full(&self) -> bool {
        let runs = self
            .mapped
            .iter()
            .filter(|&&granule| granule == 0 || !self.mapped.contains(&(granule - 1)))
            .count();
        runs == MAX_GRANULE_RANGES
    }

    fn is_mmio_ipa(&self, ipa: u64) -> bool {
        ipa.is_multiple_of(4096)
            && ipa < 1 << 48
            && !(self.config.ram_start..self.config.ram_end).contains(&ipa)
    }

    fn hypercall(&mut self, function: u32, args: [u64; 3]) -> [u64; 4] {
        let x0: i64 = if self.config.mode == Mode::Off {
            NOT_SUPPORTED
        } else {
            match function {
                HYP_MEMINFO | MMIO_GUARD_INFO if args == [0; 3] => 4096,
                HYP_MEMINFO | MMIO_GUARD_INFO => INVALID_PARAMETER,
                MMIO_GUARD_ENROLL => {
                    self.enrolled = true;
                    SUCCESS
                }
                MMIO_GUARD_MAP if self.is_mmio_ipa(args[0]) => {
                    let granule = args[0] / 4096;
                    // A granule between two unmapped ones starts a run of its own.
                    if self.mapped.contains(&granule) || self.has_neighbour(granule) || !self.full()
                    {
                        self.mapped.insert(granule);
                        SUCCESS
                    } else {
                        INVALID_PARAMETER
                    }
                }
                MMIO_GUARD_UNMAP if self.is_mmio_ipa(args[0]) => {
                    let granule = args[0] / 4096;
                    // A granule between two mapped ones splits their run.
                    let splits = self.mapped.contains(&granule)
                        && granule
                            .checked_sub(1)
                            .is_some_and(|before| self.mapped.contains(&before))
                        && self.mapped.contains(&(granule + 1));
                    if splits && self.full() {
                        INVALID_PARAMETER
                    } else {
                        self.mapped.remove(&granule);
                        SUCCESS
                    }
                }
                MMIO_GUARD_MAP | MMIO_GUARD_UNMAP => INVALID_PARAMETER,
                _ => NOT_SUPPORTED,
            }
        };
        [x0 as u64, 0, 0, 0]
    }

    fn check(&mut self, ipa: u64, len: u64) -> Verdict {
        let well_formed = (1..=8).contains(&len) && ipa.checked_add(len - 1).is_some();
        let allowed = well_formed
            && (self.config.mode == Mode::Off
                || !self.enrolled
                || (self.mapped.contains(&(ipa / 4096))
                    && self.mapped.contains(&((ipa + len - 1) / 4096))));
        if !allowed {
            self.refused += 1;
        }
        Verdict {
            allowed,
            enrolled: self.enrolled,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Call {
        vm: u16,
        function: u32,
        args: [u64; 3],
    },
    Check {
        vm: u16,
        ipa: u64,
        len: u64,
    },
}

/// Device granules the random calls map and unmap: few, so runs join and split often. (Full
/// sets are tested with random calls in `ranges::tests`, with a capacity of a few ranges.)
const DEVICE_POOL: u64 = 80;

/// IPAs around a pool of device granules, RAM and the IPA limit.
fn ipa() -> impl Strategy<Value = u64> {
    let device = (0..DEVICE_POOL).prop_map(|index| 0x1000_0000 + index * 4096);
    let ram = (0..8u64).prop_map(|index| RAM_START + index * 0x80_0000);
    let edge = prop_oneof![
        Just(RAM_END),
        Just(RAM_START - 4096),
        Just(IPA_LIMIT - 4096),
        Just(IPA_LIMIT),
        Just(!0xfffu64),
    ];
    let base = prop_oneof![6 => device, 1 => ram, 1 => edge];
    let offset = prop_oneof![4 => Just(0u64), 1 => 1..4096u64, 1 => Just(4096 - 4)];
    (base, offset).prop_map(|(base, offset)| base.wrapping_add(offset))
}

fn op() -> impl Strategy<Value = Op> {
    let vm = prop_oneof![4 => Just(OPTIONAL_VM), 2 => Just(ENFORCED_VM), 1 => Just(OFF_VM)];
    let function = prop_oneof![
        1 => Just(HYP_MEMINFO),
        1 => Just(MMIO_GUARD_INFO),
        1 => Just(MMIO_GUARD_ENROLL),
        8 => Just(MMIO_GUARD_MAP),
        4 => Just(MMIO_GUARD_UNMAP),
        1 => any::<u32>(),
    ];
    let extra = prop_oneof![3 => Just(0u64), 1 => any::<u64>()];
    prop_oneof![
        (vm.clone(), function, ipa(), extra.clone(), extra).prop_map(
            |(vm, function, x1, x2, x3)| {
                // Reserved arguments are mostly zero, so INFO and MEMINFO mostly succeed.
                let x1 = if matches!(function, HYP_MEMINFO | MMIO_GUARD_INFO) && x2 == 0 {
                    0
                } else {
                    x1
                };
                Op::Call {
                    vm,
                    function,
                    args: [x1, x2, x3],
                }
            }
        ),
        (vm, ipa(), 0..=9u64).prop_map(|(vm, ipa, len)| Op::Check { vm, ipa, len }),
    ]
}

/// Mostly single operations, sometimes a burst of MAPs of consecutive device granules, as
/// Linux maps a device.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let burst = (0..2u16, 0..DEVICE_POOL, 8..DEVICE_POOL).prop_map(|(vm, first, count)| {
        (first..first + count)
            .map(|index| Op::Call {
                vm,
                function: MMIO_GUARD_MAP,
                args: [0x1000_0000 + index * 4096, 0, 0],
            })
            .collect::<Vec<_>>()
    });
    let step = prop_oneof![12 => op().prop_map(|op| vec![op]), 1 => burst];
    proptest::collection::vec(step, 1..200).prop_map(|steps| steps.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_calls_match_the_model(ops in ops()) {
        let mut guard = guard();
        let mut model: Vec<ModelVm> = TABLE.iter().copied().map(ModelVm::new).collect();
        for op in &ops {
            match *op {
                Op::Call { vm, function, args } => {
                    let before = mapped_granules(&guard, vm).len();
                    let answer = call(&mut guard, vm, function, args);
                    let expected = model[usize::from(vm)].hypercall(function, args);
                    prop_assert_eq!(answer.regs, expected, "{:x?}", op);
                    // A change is reported exactly when the set or the enrolment changed.
                    let after = mapped_granules(&guard, vm).len();
                    match answer.change {
                        Some(Change::Mapped(_)) => prop_assert_eq!(after, before + 1),
                        Some(Change::Unmapped(_)) => prop_assert_eq!(after + 1, before),
                        Some(Change::Enrolled) | None => prop_assert_eq!(after, before),
                    }
                }
                Op::Check { vm, ipa, len } => {
                    let verdict = guard.check(vm, Ipa(ipa), len);
                    prop_assert_eq!(verdict, model[usize::from(vm)].check(ipa, len), "{:x?}", op);
                }
            }
            for expected in &model {
                let vm = expected.config.vm;
                let mapped: Vec<u64> = expected.mapped.iter().copied().collect();
                prop_assert_eq!(mapped_granules(&guard, vm), mapped);
                prop_assert_eq!(guard.is_enrolled(vm), expected.enrolled);
                prop_assert_eq!(guard.refused(vm), expected.refused);
            }
        }
    }
}
