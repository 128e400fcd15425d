//! MAP and UNMAP: their arguments, RAM and the IPA space, a full set of ranges, a Linux boot.

use super::*;

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
