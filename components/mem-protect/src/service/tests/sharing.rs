//! Tests of guests sharing memory with the host: MEM_SHARE and MEM_UNSHARE (the host's access
//! and the shared alias, what each asks of the kernel and in which order), every refusal
//! changing nothing, HOST_GUEST_SHARED, host calls on shared pages, and wipes.

use super::*;
use crate::memslots::Slot;
use crate::ownership::PageState;
use crate::stage2::{Attributes, GuestStage2};
use hv_component_config::heapless;
use hv_ipc::interfaces::mem_protect::MemProtectRefusal;

const GIB: u64 = 1 << 30;
/// Guest 1's shared IPA bit, as the manifest gives it.
pub(super) const SHARED: u64 = 1 << 40;
/// The guests' RAM as they see it: the board's RAM base.
pub(super) const GUEST_IPA: u64 = 0x4000_0000;
/// Guest 1's first memslot: 2 MiB at its RAM base, backed 2 MiB aligned (one block).
pub(super) const SLOT_A: Slot = Slot {
    ipa: GUEST_IPA,
    pa: 0x4100_0000,
    size: 2 * MIB,
};
/// Its second, next in IPA: four pages backed below the first, off a 2 MiB boundary.
pub(super) const SLOT_B: Slot = Slot {
    ipa: GUEST_IPA + 2 * MIB,
    pa: 0x4080_1000,
    size: 4 * PAGE_SIZE,
};
/// Guest 2's memslot (it has no shared bit).
pub(super) const SLOT_C: Slot = Slot {
    ipa: GUEST_IPA,
    pa: 0x4200_0000,
    size: 4 * PAGE_SIZE,
};
/// A device passed through to guest 1, mapped at IPA 0x0900_0000.
const DEVICE: IpaRange = IpaRange::new(0x0a00_0000, 0x0a00_1000);
const DEVICE_IPA: u64 = 0x0900_0000;

/// Roots and pools for guests 1 (shared bit 40, a 41-bit stage 2) and 2 (none).
pub(super) struct SharingBacking {
    roots: [Table; 2],
    pools: [Vec<Table>; 2],
}

impl SharingBacking {
    pub(super) fn new() -> Self {
        Self {
            roots: [[0; TABLE_ENTRIES]; 2],
            pools: [vec![[0; TABLE_ENTRIES]; 16], vec![[0; TABLE_ENTRIES]; 16]],
        }
    }

    pub(super) fn guests(&mut self) -> Guests<'_> {
        let [root1, root2] = &mut self.roots;
        let [pool1, pool2] = &mut self.pools;
        let mut guests = Guests::new();
        for (vm, root, pool) in [(1u16, root1, pool1), (2, root2, pool2)] {
            let at = 0x7000_0000_0000 + u64::from(vm) * 0x100_0000;
            let bits = if vm == 1 { 41 } else { 40 };
            let stage2 = GuestStage2::new(root, at, pool, at + 0x1000, bits).unwrap();
            let devices = heapless::Vec::from_slice(&[DEVICE]).unwrap();
            let mut guest = GuestVm::new(vm, devices, stage2);
            if vm == 1 {
                guest = guest.with_shared_bit(40).unwrap();
            }
            assert!(guests.push(guest).is_ok());
        }
        guests
    }
}

/// Runs `test` on a service whose guest 1 has memslots A and B and a device, and guest 2
/// memslot C; the host has touched its RAM (the fill mapped it) before they were given, and
/// the kernel's records start empty.
pub(super) fn with_sharing(test: impl FnOnce(&mut MemProtect<'_>, &mut FakeKernel)) {
    let mut backing = Backing::new(8);
    let mut guest_backing = SharingBacking::new();
    let mut service = backing
        .service(MappingPolicy::LargestBlock)
        .with_guests(guest_backing.guests());
    let kernel = &mut FakeKernel::default();
    assert!(matches!(
        service.stage2_fault(Ipa(RAM.start), Access::Read, kernel),
        FaultOutcome::Mapped(_)
    ));
    for (vm, slot) in [(1, SLOT_A), (1, SLOT_B), (2, SLOT_C)] {
        service
            .add_memslot(vm, slot.ipa, slot.pa, slot.size, kernel)
            .unwrap();
    }
    service
        .map_device(1, DEVICE_IPA, DEVICE.start, DEVICE.len())
        .unwrap();
    test(&mut service, &mut FakeKernel::default());
}

pub(super) fn share(ipa: u64) -> [u64; 8] {
    call(function::MEM_SHARE, ipa, 0, 0)
}

pub(super) fn unshare(ipa: u64) -> [u64; 8] {
    call(function::MEM_UNSHARE, ipa, 0, 0)
}

fn host_access(service: &mut MemProtect<'_>, pa: u64, kernel: &mut FakeKernel) -> bool {
    match service.stage2_fault(Ipa(pa), Access::Write, kernel) {
        FaultOutcome::Mapped(_) => true,
        FaultOutcome::Refused { .. } => false,
        other => panic!("{other:?}"),
    }
}

/// What guest 1's stage 2 maps at `ipa`: the physical page and whether it is a shared alias.
fn guest_maps(service: &MemProtect<'_>, vm: u16, ipa: u64) -> Option<(u64, bool)> {
    match service.guest(vm).unwrap().stage2().lookup(ipa).unwrap() {
        Entry::Mapped { pa, attrs, .. } => Some((pa, attrs == Attributes::SHARED)),
        Entry::Unmapped => None,
        other => panic!("{other:?}"),
    }
}

/// Every page of every memslot, as `(vm, ipa, pa)`.
fn slot_pages() -> impl Iterator<Item = (u16, u64, u64)> {
    [(1, SLOT_A), (1, SLOT_B), (2, SLOT_C)]
        .into_iter()
        .flat_map(|(vm, slot)| {
            (0..slot.size)
                .step_by(PAGE_SIZE as usize)
                .map(move |offset| (vm, slot.ipa + offset, slot.pa + offset))
        })
}

/// What a guest's stage 2 maps at a page's own IPA and at its alias.
type Aliases = (Option<(u64, bool)>, Option<(u64, bool)>);

/// Everything a refused call must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    states: Vec<(PageState, PageState)>,
    host: Vec<Entry>,
    guests: Vec<Aliases>,
    counts: Vec<(u64, u64, usize)>,
}

fn snapshot(service: &MemProtect<'_>) -> Snapshot {
    let ownership = service.ownership();
    Snapshot {
        states: slot_pages()
            .map(|(vm, _, pa)| {
                (
                    ownership.state(PhysAddr(pa), Party::Host).unwrap(),
                    ownership
                        .state(PhysAddr(pa), Party::Guest(vm as u8))
                        .unwrap(),
                )
            })
            .collect(),
        host: slot_pages()
            .map(|(_, _, pa)| service.stage2().lookup(pa).unwrap())
            .collect(),
        guests: slot_pages()
            .map(|(vm, ipa, _)| {
                (
                    guest_maps(service, vm, ipa),
                    guest_maps(service, vm, ipa | SHARED),
                )
            })
            .collect(),
        counts: [1, 2]
            .map(|vm| {
                let guest = service.guest(vm).unwrap();
                (
                    guest.shared_pages(),
                    guest.stage2().aliases(),
                    guest.stage2().tables_used(),
                )
            })
            .to_vec(),
    }
}

#[test]
fn sharing_lets_the_host_map_the_page_and_maps_the_alias() {
    with_sharing(|service, kernel| {
        let (ipa, pa) = (SLOT_A.ipa + 5 * PAGE_SIZE, SLOT_A.pa + 5 * PAGE_SIZE);
        assert!(!host_access(service, pa, kernel));
        let tables = service.guest(1).unwrap().stage2().tables_used();
        let outcome = service.guest_call(1, &share(ipa), kernel);
        assert_eq!(
            outcome,
            GuestCallOutcome {
                code: code::SUCCESS,
                call: Some(GuestCall::Share { ipa }),
                page: Some(PhysAddr(pa)),
                alias: Some(ipa | SHARED),
                table_failures: 0,
            }
        );
        let ownership = service.ownership();
        assert_eq!(
            ownership.state(PhysAddr(pa), Party::Guest(1)),
            Ok(PageState::SharedOwned)
        );
        assert_eq!(
            ownership.state(PhysAddr(pa), Party::Host),
            Ok(PageState::SharedBorrowed)
        );
        // Both aliases reach the one page; the alias takes no table.
        assert_eq!(guest_maps(service, 1, ipa), Some((pa, false)));
        assert_eq!(guest_maps(service, 1, ipa | SHARED), Some((pa, true)));
        assert_eq!(guest_maps(service, 1, (ipa + PAGE_SIZE) | SHARED), None);
        assert_eq!(service.guest(1).unwrap().stage2().tables_used(), tables);
        // The annotation is gone, so the host's next access maps the page, and only it.
        assert_eq!(service.stage2().lookup(pa), Ok(Entry::Unmapped));
        assert!(host_access(service, pa, kernel));
        assert!(matches!(
            service.stage2().lookup(pa),
            Ok(Entry::Mapped { level: 3, .. })
        ));
        assert!(!host_access(service, pa + PAGE_SIZE, kernel));
        assert!(!host_access(service, pa - PAGE_SIZE, kernel));
        // Only empty entries became valid: no invalidation asked for.
        assert!(kernel.sequence.is_empty(), "{:?}", kernel.sequence);
        assert_eq!(service.guest(1).unwrap().shared_pages(), 1);
    });
}

#[test]
fn unsharing_takes_both_away_and_invalidates_both_before_it_returns() {
    with_sharing(|service, kernel| {
        let (ipa, pa) = (SLOT_B.ipa + PAGE_SIZE, SLOT_B.pa + PAGE_SIZE);
        assert_eq!(
            service.guest_call(1, &share(ipa), kernel).code,
            code::SUCCESS
        );
        assert!(host_access(service, pa, kernel));
        kernel.sequence.clear();
        let outcome = service.guest_call(1, &unshare(ipa), kernel);
        assert_eq!(
            (outcome.code, outcome.alias, outcome.table_failures),
            (code::SUCCESS, Some(ipa | SHARED), 0)
        );
        // The alias's entry, then the host's page: each invalidated.
        assert_eq!(kernel.sequence, ["guest-tlb", "host-tlb"]);
        assert_eq!(
            kernel.guest_invalidations,
            [(1, GuestInvalidation::Page(ipa | SHARED))]
        );
        assert_eq!(
            kernel.invalidations,
            [Invalidation::Range(IpaRange::sized(pa, PAGE_SIZE))]
        );
        assert_eq!(guest_maps(service, 1, ipa | SHARED), None);
        assert_eq!(guest_maps(service, 1, ipa), Some((pa, false)));
        assert_eq!(
            service.stage2().lookup(pa),
            Ok(Entry::Annotated(OwnerId(3)))
        );
        assert_eq!(
            service.stage2_fault(Ipa(pa), Access::Read, kernel),
            FaultOutcome::Refused {
                page: pa,
                owner: Some(Party::Guest(1))
            }
        );
        assert_eq!(
            service.ownership().state(PhysAddr(pa), Party::Guest(1)),
            Ok(PageState::Owned)
        );
        assert_eq!(service.guest(1).unwrap().shared_pages(), 0);
        // Unsharing a page the host never mapped asks only for the alias's invalidation.
        assert_eq!(
            service.guest_call(1, &share(ipa), kernel).code,
            code::SUCCESS
        );
        kernel.sequence.clear();
        assert_eq!(
            service.guest_call(1, &unshare(ipa), kernel).code,
            code::SUCCESS
        );
        assert_eq!(kernel.sequence, ["guest-tlb"]);
    });
}

/// The host's stage 2 keeps the level-3 table its annotations needed, so even with every page
/// of a 2 MiB window shared the host maps pages (its fill maps them all at once), and an
/// unshare takes exactly one back.
#[test]
fn unsharing_one_of_many_shared_pages_takes_only_that_one_from_the_host() {
    with_sharing(|service, kernel| {
        for offset in (0..SLOT_A.size).step_by(PAGE_SIZE as usize) {
            let code = service
                .guest_call(1, &share(SLOT_A.ipa + offset), kernel)
                .code;
            assert_eq!(code, code::SUCCESS);
        }
        assert_eq!(service.guest(1).unwrap().shared_pages(), 512);
        let FaultOutcome::Mapped(Mapped::New { level, filled, .. }) =
            service.stage2_fault(Ipa(SLOT_A.pa), Access::Read, kernel)
        else {
            panic!("not mapped");
        };
        assert_eq!((level, filled), (3, [0, 0, 0, 511]));
        kernel.sequence.clear();
        let last = SLOT_A.size - PAGE_SIZE;
        assert_eq!(
            service
                .guest_call(1, &unshare(SLOT_A.ipa + last), kernel)
                .code,
            code::SUCCESS
        );
        assert_eq!(kernel.sequence, ["guest-tlb", "host-tlb"]);
        assert_eq!(
            kernel.invalidations,
            [Invalidation::Range(IpaRange::sized(
                SLOT_A.pa + last,
                PAGE_SIZE
            ))]
        );
        assert_eq!(
            service.stage2().lookup(SLOT_A.pa + last),
            Ok(Entry::Annotated(OwnerId(3)))
        );
        assert!(host_access(service, SLOT_A.pa + last - PAGE_SIZE, kernel));
        assert!(!host_access(service, SLOT_A.pa + last, kernel));
    });
}

#[test]
fn either_alias_names_the_page() {
    with_sharing(|service, kernel| {
        let (ipa, pa) = (SLOT_A.ipa + 7 * PAGE_SIZE, SLOT_A.pa + 7 * PAGE_SIZE);
        let outcome = service.guest_call(1, &share(ipa | SHARED), kernel);
        assert_eq!(outcome.code, code::SUCCESS);
        assert_eq!(
            (outcome.page, outcome.alias),
            (Some(PhysAddr(pa)), Some(ipa | SHARED))
        );
        assert_eq!(guest_maps(service, 1, ipa | SHARED), Some((pa, true)));
        // The same page by its own IPA: shared already.
        assert_eq!(
            service.guest_call(1, &share(ipa), kernel).code,
            code::ALREADY_SHARED
        );
        assert_eq!(
            service.guest_call(1, &unshare(ipa), kernel).code,
            code::SUCCESS
        );
        assert_eq!(
            service.guest_call(1, &unshare(ipa | SHARED), kernel).code,
            code::NOT_SHARED
        );
        assert_eq!(
            kernel.guest_invalidations,
            [(1, GuestInvalidation::Page(ipa | SHARED))]
        );
    });
}

#[test]
fn every_refused_guest_call_changes_nothing() {
    with_sharing(|service, kernel| {
        let shared = SLOT_A.ipa + 3 * PAGE_SIZE;
        assert_eq!(
            service.guest_call(1, &share(shared), kernel).code,
            code::SUCCESS
        );
        kernel.sequence.clear();
        let private = SLOT_B.ipa;
        let cases: &[(u16, [u64; 8], i64)] = &[
            // The host, and VMs the component does not serve, are not guests here.
            (0, share(private), code::NOT_SUPPORTED),
            (0, unshare(shared), code::NOT_SUPPORTED),
            (3, share(private), code::NOT_SUPPORTED),
            // Another function.
            (
                1,
                call(function::HOST_SHARE_HYP, private, 0, 0),
                code::NOT_SUPPORTED,
            ),
            // Bad arguments: x2 or x3 set, misaligned.
            (
                1,
                call(function::MEM_SHARE, private, 1, 0),
                code::INVALID_PARAMETER,
            ),
            (
                1,
                call(function::MEM_SHARE, private, 0, 1),
                code::INVALID_PARAMETER,
            ),
            (
                1,
                call(function::MEM_UNSHARE, shared, 0, 8),
                code::INVALID_PARAMETER,
            ),
            (1, share(private + 8), code::INVALID_PARAMETER),
            (1, unshare(shared | SHARED | 0x800), code::INVALID_PARAMETER),
            // Not its RAM: past a memslot at either alias, a device, another bit, nothing.
            (1, share(SLOT_B.ipa + SLOT_B.size), code::INVALID_PARAMETER),
            (
                1,
                share((SLOT_B.ipa + SLOT_B.size) | SHARED),
                code::INVALID_PARAMETER,
            ),
            (1, share(DEVICE_IPA), code::INVALID_PARAMETER),
            (1, share(DEVICE_IPA | SHARED), code::INVALID_PARAMETER),
            (1, share(private | (SHARED << 1)), code::INVALID_PARAMETER),
            (1, share(0), code::INVALID_PARAMETER),
            (1, share(!0xfff), code::INVALID_PARAMETER),
            // Guest 2 has no shared bit: an IPA with bit 40 set is not its RAM.
            (2, share(SLOT_C.ipa | SHARED), code::INVALID_PARAMETER),
            // Wrong states.
            (1, share(shared), code::ALREADY_SHARED),
            (1, share(shared | SHARED), code::ALREADY_SHARED),
            (1, unshare(private), code::NOT_SHARED),
            (1, unshare(private | SHARED), code::NOT_SHARED),
            (2, unshare(SLOT_C.ipa), code::NOT_SHARED),
        ];
        let before = snapshot(service);
        for &(vm, regs, expected) in cases {
            let outcome = service.guest_call(vm, &regs, kernel);
            assert_eq!(outcome.code, expected, "vm {vm} {regs:x?}");
            assert_eq!(outcome.table_failures, 0);
            assert_eq!(snapshot(service), before, "vm {vm} {regs:x?}");
        }
        assert!(kernel.sequence.is_empty(), "{:?}", kernel.sequence);
        // The host's own page-ownership calls on a guest's pages: refused too.
        let pa = SLOT_A.pa + 3 * PAGE_SIZE;
        for (regs, expected) in [
            (
                call(function::HOST_RECLAIM, pa, 1, 1),
                code::INVALID_PARAMETER,
            ),
            (
                call(function::HOST_DONATE_GUEST, pa, 1, 1),
                code::INVALID_PARAMETER,
            ),
            (call(function::HOST_RECLAIM, pa, 1, 5), code::NOT_OWNED),
            (call(function::HOST_DONATE_GUEST, pa, 1, 5), code::NOT_OWNED),
            (call(function::HOST_SHARE_HYP, pa, 0, 0), code::NOT_OWNED),
            (call(function::HOST_UNSHARE_HYP, pa, 0, 0), code::NOT_OWNED),
            (
                call(function::HOST_RECLAIM, SLOT_B.pa, 1, 5),
                code::NOT_OWNED,
            ),
            (
                call(function::HOST_DONATE_GUEST, SLOT_B.pa, 1, 5),
                code::NOT_OWNED,
            ),
            // MEM_SHARE is not a host call.
            (share(pa), code::NOT_SUPPORTED),
        ] {
            let outcome = service.host_call(&regs, kernel);
            assert_eq!(outcome.code, expected, "{regs:x?}");
            assert_eq!(snapshot(service), before, "{regs:x?}");
        }
        assert!(kernel.sequence.is_empty(), "{:?}", kernel.sequence);
    });
}

#[test]
fn the_host_lists_the_shared_pages_in_ascending_physical_order() {
    with_sharing(|service, kernel| {
        let guest_shared = |service: &mut MemProtect<'_>, vm: u64, n: u64| {
            let outcome = service.host_call(
                &call(function::HOST_GUEST_SHARED, vm, n, 0),
                &mut FakeKernel::default(),
            );
            (outcome.code, outcome.results)
        };
        // Nothing shared: every n is past the last.
        assert_eq!(
            guest_shared(service, 1, 0),
            (code::INVALID_PARAMETER, [0; 3])
        );
        // Slot B lies below slot A in PA although above it in IPA.
        let pages = [
            (SLOT_A.ipa + 9 * PAGE_SIZE, SLOT_A.pa + 9 * PAGE_SIZE),
            (SLOT_B.ipa + 3 * PAGE_SIZE, SLOT_B.pa + 3 * PAGE_SIZE),
            (SLOT_A.ipa, SLOT_A.pa),
            (SLOT_B.ipa | SHARED, SLOT_B.pa),
        ];
        for (ipa, _) in pages {
            assert_eq!(
                service.guest_call(1, &share(ipa), kernel).code,
                code::SUCCESS
            );
        }
        let mut ascending: Vec<u64> = pages.iter().map(|&(_, pa)| pa).collect();
        ascending.sort();
        // In order, out of order, and the same n twice: the cursor never changes the answer.
        for n in [0, 1, 2, 3, 3, 1, 0, 2, 2, 3] {
            assert_eq!(
                guest_shared(service, 1, n),
                (code::SUCCESS, [ascending[n as usize], 4, 0]),
                "n = {n}"
            );
        }
        for (vm, n) in [(1, 4), (1, u64::MAX), (2, 0), (0, 0), (3, 0), (1 << 16, 0)] {
            assert_eq!(
                guest_shared(service, vm, n),
                (code::INVALID_PARAMETER, [0; 3]),
                "vm {vm} n {n}"
            );
        }
        // A change forgets the cursor: after an unshare the list is the new one.
        assert_eq!(
            guest_shared(service, 1, 2),
            (code::SUCCESS, [ascending[2], 4, 0])
        );
        assert_eq!(
            service.guest_call(1, &unshare(SLOT_B.ipa), kernel).code,
            code::SUCCESS
        );
        ascending.retain(|&pa| pa != SLOT_B.pa);
        for n in 0..3 {
            assert_eq!(
                guest_shared(service, 1, n),
                (code::SUCCESS, [ascending[n as usize], 3, 0])
            );
        }
        assert_eq!(guest_shared(service, 1, 3).0, code::INVALID_PARAMETER);
        // Guest 2 lists its own.
        assert_eq!(
            service
                .guest_call(2, &share(SLOT_C.ipa + PAGE_SIZE), kernel)
                .code,
            code::SUCCESS
        );
        assert_eq!(
            guest_shared(service, 2, 0),
            (code::SUCCESS, [SLOT_C.pa + PAGE_SIZE, 1, 0])
        );
    });
}

#[test]
fn a_wipe_unshares_every_page_before_it_zeroes() {
    with_sharing(|service, kernel| {
        let shared = [
            SLOT_A.ipa,
            SLOT_A.ipa + 100 * PAGE_SIZE,
            SLOT_B.ipa + 2 * PAGE_SIZE,
        ];
        for ipa in shared {
            assert_eq!(
                service.guest_call(1, &share(ipa), kernel).code,
                code::SUCCESS
            );
        }
        assert_eq!(
            service.guest_call(2, &share(SLOT_C.ipa), kernel).code,
            code::SUCCESS
        );
        // The host maps them all (the first fault's fill maps the second, in the same table).
        assert!(host_access(service, SLOT_A.pa, kernel));
        assert!(matches!(
            service.stage2().lookup(SLOT_A.pa + 100 * PAGE_SIZE),
            Ok(Entry::Mapped { level: 3, .. })
        ));
        assert!(host_access(service, SLOT_B.pa + 2 * PAGE_SIZE, kernel));
        kernel.sequence.clear();
        let wiped = service.wipe_vm(1, kernel).unwrap();
        assert_eq!(
            wiped,
            Wiped {
                bytes: SLOT_A.size + SLOT_B.size,
                unshared: 3,
                table_failures: 0
            }
        );
        // The host's three pages, the guest's whole VMID once, then the zeroing.
        assert_eq!(
            kernel.sequence,
            [
                "host-tlb",
                "host-tlb",
                "host-tlb",
                "guest-tlb",
                "zero",
                "zero"
            ]
        );
        assert_eq!(kernel.guest_invalidations, [(1, GuestInvalidation::All)]);
        for ipa in shared {
            let pa = service.guest(1).unwrap().slots().translate(ipa).unwrap().0;
            assert_eq!(guest_maps(service, 1, ipa | SHARED), None);
            assert_eq!(guest_maps(service, 1, ipa), Some((pa, false)));
            assert_eq!(
                service.ownership().state(PhysAddr(pa), Party::Host),
                Ok(PageState::NoPage)
            );
            assert!(!host_access(service, pa, kernel));
        }
        assert_eq!(service.guest(1).unwrap().shared_pages(), 0);
        assert_eq!(service.guest(1).unwrap().stage2().aliases(), 0);
        assert_eq!(
            service
                .host_call(&call(function::HOST_GUEST_SHARED, 1, 0, 0), kernel)
                .code,
            code::INVALID_PARAMETER
        );
        // Guest 2's page is not touched by guest 1's wipe.
        assert!(host_access(service, SLOT_C.pa, kernel));
        // Nothing shared: nothing to invalidate.
        kernel.sequence.clear();
        assert_eq!(service.wipe_vm(1, kernel).unwrap().unshared, 0);
        assert_eq!(kernel.sequence, ["zero", "zero"]);
        // The zeroing refused: the pages are unshared all the same (the VM is stopped).
        assert_eq!(
            service.guest_call(1, &share(SLOT_A.ipa), kernel).code,
            code::SUCCESS
        );
        kernel.refuse_zeroing = true;
        assert_eq!(
            service.wipe_vm(1, kernel),
            Err(MemProtectRefusal::WipeFailed)
        );
        assert_eq!(guest_maps(service, 1, SLOT_A.ipa | SHARED), None);
        assert_eq!(service.guest(1).unwrap().shared_pages(), 0);
    });
}

#[test]
fn without_a_shared_bit_a_page_is_shared_with_the_host_only() {
    with_sharing(|service, kernel| {
        let (ipa, pa) = (SLOT_C.ipa + 2 * PAGE_SIZE, SLOT_C.pa + 2 * PAGE_SIZE);
        let outcome = service.guest_call(2, &share(ipa), kernel);
        assert_eq!((outcome.code, outcome.alias), (code::SUCCESS, None));
        assert_eq!(service.guest(2).unwrap().stage2().aliases(), 0);
        assert!(host_access(service, pa, kernel));
        kernel.sequence.clear();
        assert_eq!(
            service.guest_call(2, &unshare(ipa), kernel).code,
            code::SUCCESS
        );
        assert_eq!(kernel.sequence, ["host-tlb"]);
        assert!(!host_access(service, pa, kernel));
    });
}

#[test]
fn memslots_lie_below_the_shared_bit_and_bring_their_alias_tables() {
    with_sharing(|service, kernel| {
        let free = 0x4300_0000;
        let before = snapshot(service);
        // Reaching the bit, or above it: refused.
        for ipa in [SHARED - PAGE_SIZE, SHARED | GUEST_IPA] {
            assert_eq!(
                service.add_memslot(1, ipa, free, 2 * PAGE_SIZE, kernel),
                Err(MemProtectRefusal::BadRange),
                "{ipa:#x}"
            );
            assert_eq!(snapshot(service), before);
        }
        // A page at 3 GiB: a level-2 and a level-3 table for itself, as many for its alias.
        let guest = service.guest(1).unwrap().stage2();
        let (used, available) = (guest.tables_used(), guest.tables_available());
        assert_eq!(available, 7);
        let added = service
            .add_memslot(1, 3 * GIB, free, PAGE_SIZE, kernel)
            .unwrap();
        assert_eq!((added.leaves, added.tables), ([0, 0, 0, 1], 4));
        assert_eq!(service.guest(1).unwrap().stage2().tables_used(), used + 4);
        assert_eq!(
            service.guest_call(1, &share(3 * GIB), kernel).code,
            code::SUCCESS
        );
        assert_eq!(
            guest_maps(service, 1, SHARED | (3 * GIB)),
            Some((free, true))
        );
        // In another 512 GiB: three tables for itself, three for its alias; three are left.
        let before = snapshot(service);
        assert_eq!(
            service.add_memslot(1, 1 << 39, free + PAGE_SIZE, PAGE_SIZE, kernel),
            Err(MemProtectRefusal::OutOfTables)
        );
        assert_eq!(snapshot(service), before);
    });
}
