//! Tests of guest memory as the VM manager asks for it: memslots given and mapped in full,
//! every refusal changing nothing (ownership, the host's stage 2, the guest's), devices,
//! wipes, and host calls kept off guest VMs.

use super::*;
use crate::stage2::GuestStage2;
use hv_component_config::heapless;
use hv_ipc::interfaces::mem_protect::MemProtectRefusal;

const GIB: u64 = 1 << 30;
/// The guests' RAM as they see it: the board's RAM base.
const GUEST_IPA: u64 = 0x4000_0000;
/// Backing for guest 1: 16 MiB, 2 MiB aligned, inside the host's RAM.
const SLOT_PA: u64 = 0x4100_0000;
const SLOT_SIZE: u64 = 16 * MIB;
/// The MMIO the configuration passes through to each guest.
const GUEST_DEVICE: IpaRange = IpaRange::new(0x0a00_0000, 0x0a00_2000);

/// Roots and pools for guests 1 and 2.
struct GuestBacking {
    roots: [Table; 2],
    pools: [Vec<Table>; 2],
}

impl GuestBacking {
    fn new(tables: [usize; 2]) -> Self {
        Self {
            roots: [[0; TABLE_ENTRIES]; 2],
            pools: tables.map(|tables| vec![[0; TABLE_ENTRIES]; tables]),
        }
    }

    fn guests(&mut self) -> Guests<'_> {
        let [root1, root2] = &mut self.roots;
        let [pool1, pool2] = &mut self.pools;
        let mut guests = Guests::new();
        for (vm, root, pool) in [(1u16, root1, pool1), (2, root2, pool2)] {
            let at = 0x7000_0000_0000 + u64::from(vm) * 0x100_0000;
            let stage2 = GuestStage2::new(root, at, pool, at + 0x1000, 40).unwrap();
            let devices = heapless::Vec::from_slice(&[GUEST_DEVICE]).unwrap();
            assert!(guests.push(GuestVm::new(vm, devices, stage2)).is_ok());
        }
        guests
    }
}

/// Everything a refusal must leave as it was: every page's owner, the host's tables and each
/// guest's tables and slots.
#[derive(Debug, PartialEq)]
struct Snapshot {
    owners: Vec<Party>,
    host: Vec<Entry>,
    guests: Vec<(usize, [u64; 4], usize, usize)>,
}

fn snapshot(service: &MemProtect<'_>) -> Snapshot {
    let pages = (RAM.start..RAM.end).step_by(PAGE_SIZE as usize);
    Snapshot {
        owners: pages
            .clone()
            .map(|page| service.ownership().owner(PhysAddr(page)).unwrap())
            .collect(),
        host: pages
            .map(|page| service.stage2().lookup(page).unwrap())
            .collect(),
        guests: [1, 2]
            .map(|vm| {
                let guest = service.guest(vm).unwrap();
                (
                    guest.stage2().tables_used(),
                    guest.stage2().leaves(),
                    guest.slots().memory().len(),
                    guest.slots().devices().len(),
                )
            })
            .to_vec(),
    }
}

/// Runs `test` on a service with guests 1 and 2, whose pools hold `tables` tables.
fn with_guests(tables: [usize; 2], test: impl FnOnce(&mut MemProtect<'_>, &mut FakeKernel)) {
    let mut backing = Backing::new(8);
    let mut guest_backing = GuestBacking::new(tables);
    let mut service = backing
        .service(MappingPolicy::LargestBlock)
        .with_guests(guest_backing.guests());
    test(&mut service, &mut FakeKernel::default());
}

fn pages_of(start: u64, size: u64) -> impl Iterator<Item = u64> {
    (start..start + size).step_by(PAGE_SIZE as usize)
}

#[test]
fn a_memslot_goes_to_the_guest_and_is_mapped_in_full() {
    with_guests([4, 4], |service, kernel| {
        // The host touches its RAM first: the fill maps every 2 MiB block it owns.
        assert!(matches!(
            service.stage2_fault(Ipa(RAM.start), Access::Read, kernel),
            FaultOutcome::Mapped(_)
        ));
        assert!(matches!(
            service.stage2().lookup(SLOT_PA),
            Ok(Entry::Mapped { level: 2, .. })
        ));

        let added = service
            .add_memslot(1, GUEST_IPA, SLOT_PA, SLOT_SIZE, kernel)
            .unwrap();
        // 2 MiB aligned on both sides, 1 GiB aligned on neither: eight 2 MiB blocks, two tables.
        assert_eq!(added.leaves, [0, 0, 8, 0]);
        assert_eq!(added.tables, 2);
        assert_eq!((added.host_failures, added.mapping_error), (0, None));

        // Ownership: every page is guest 1's, and only those.
        for page in pages_of(RAM.start, RAM.len() - HYP.len()) {
            let expected = if (SLOT_PA..SLOT_PA + SLOT_SIZE).contains(&page) {
                Party::Guest(1)
            } else {
                Party::Host
            };
            assert_eq!(service.ownership().owner(PhysAddr(page)), Ok(expected));
        }
        // The host's stage 2: each page annotated with its owner; a host access gets the abort.
        for page in pages_of(SLOT_PA, SLOT_SIZE) {
            assert_eq!(
                service.stage2().lookup(page),
                Ok(Entry::Annotated(OwnerId(3)))
            );
        }
        assert_eq!(
            service.stage2_fault(Ipa(SLOT_PA + 5 * MIB), Access::Write, kernel),
            FaultOutcome::Refused {
                page: SLOT_PA + 5 * MIB,
                owner: Some(Party::Guest(1))
            }
        );
        // One invalidation per host block removed, not one per page.
        assert_eq!(
            kernel.invalidations,
            (0..8)
                .map(|n| Invalidation::Range(IpaRange::sized(SLOT_PA + n * 2 * MIB, 2 * MIB)))
                .collect::<Vec<_>>()
        );
        // The host's other RAM is still its own.
        assert!(matches!(
            service.stage2_fault(Ipa(SLOT_PA - PAGE_SIZE), Access::Read, kernel),
            FaultOutcome::Mapped(_)
        ));

        // The guest's stage 2 and slot table translate IPA to PA.
        let guest = service.guest(1).unwrap();
        for offset in [0, 0x1234, 7 * MIB, SLOT_SIZE - 1] {
            match guest.stage2().lookup(GUEST_IPA + offset).unwrap() {
                Entry::Mapped { pa, level, attrs } => {
                    assert_eq!((pa, level), (SLOT_PA + offset, 2));
                    assert_eq!(attrs, crate::stage2::Attributes::MEMORY);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                guest.slots().translate(GUEST_IPA + offset),
                Some((SLOT_PA + offset, crate::memslots::SlotKind::Memory))
            );
        }
        assert_eq!(
            guest.stage2().lookup(GUEST_IPA + SLOT_SIZE),
            Ok(Entry::Unmapped)
        );
        // Guest 2 has nothing.
        assert_eq!(service.guest(2).unwrap().stage2().leaves(), [0; 4]);
    });
}

#[test]
fn adjacent_memslots_map_and_unaligned_ones_take_pages() {
    with_guests([8, 0], |service, kernel| {
        service
            .add_memslot(1, GUEST_IPA, SLOT_PA, 2 * MIB, kernel)
            .unwrap();
        // Right after it in IPA, backed 4 KiB off a 2 MiB boundary: pages.
        let added = service
            .add_memslot(
                1,
                GUEST_IPA + 2 * MIB,
                SLOT_PA + 4 * MIB + PAGE_SIZE,
                2 * MIB,
                kernel,
            )
            .unwrap();
        assert_eq!(added.leaves, [0, 0, 0, 512]);
        assert_eq!(added.tables, 1);
        let guest = service.guest(1).unwrap();
        assert_eq!(guest.slots().memory().len(), 2);
        assert_eq!(
            guest.stage2().lookup(GUEST_IPA + 2 * MIB + 0x10).unwrap(),
            Entry::Mapped {
                pa: SLOT_PA + 4 * MIB + PAGE_SIZE + 0x10,
                level: 3,
                attrs: crate::stage2::Attributes::MEMORY
            }
        );
    });
}

#[test]
fn every_refusal_changes_nothing() {
    use MemProtectRefusal::*;
    with_guests([4, 4], |service, kernel| {
        assert!(matches!(
            service.stage2_fault(Ipa(RAM.start), Access::Read, kernel),
            FaultOutcome::Mapped(_)
        ));
        service
            .add_memslot(1, GUEST_IPA, SLOT_PA, SLOT_SIZE, kernel)
            .unwrap();
        // A page the host shares with the hypervisor, and one the host gave away by a host call.
        let shared = SLOT_PA + SLOT_SIZE + 2 * MIB;
        let given = shared + PAGE_SIZE;
        assert_eq!(
            service
                .host_call(&call(function::HOST_SHARE_HYP, shared, 0, 0), kernel)
                .code,
            code::SUCCESS
        );
        assert_eq!(
            service
                .host_call(&call(function::HOST_DONATE_GUEST, given, 1, 7), kernel)
                .code,
            code::SUCCESS
        );
        let free = SLOT_PA + SLOT_SIZE + 4 * MIB;
        let cases: &[(u16, u64, u64, u64, MemProtectRefusal)] = &[
            // Not guests: the host, a VM the configuration does not have.
            (0, GUEST_IPA + GIB, free, 2 * MIB, NotAGuest),
            (3, GUEST_IPA, free, 2 * MIB, NotAGuest),
            (u16::MAX, GUEST_IPA, free, 2 * MIB, NotAGuest),
            // Bad ranges: unaligned, empty, wrapping, beyond the IPA limit, outside RAM.
            (1, GUEST_IPA + GIB + 8, free, 2 * MIB, BadRange),
            (1, GUEST_IPA + GIB, free + 8, 2 * MIB, BadRange),
            (1, GUEST_IPA + GIB, free, 2 * MIB + 8, BadRange),
            (1, GUEST_IPA + GIB, free, 0, BadRange),
            (1, !0xfff, free, 2 * MIB, BadRange),
            (1, GUEST_IPA + GIB, !0xfff, 2 * MIB, BadRange),
            (1, (1 << 40) - PAGE_SIZE, free, 2 * MIB, BadRange),
            (1, GUEST_IPA + GIB, RAM.start - 2 * MIB, 2 * MIB, BadRange),
            (1, GUEST_IPA + GIB, RAM.end - 2 * MIB, 4 * MIB, BadRange),
            (1, GUEST_IPA + GIB, 0x0900_0000, PAGE_SIZE, BadRange),
            // Overlapping guest 1's memslot in IPA (its PA is free).
            (
                1,
                GUEST_IPA + SLOT_SIZE - PAGE_SIZE,
                free,
                2 * MIB,
                Overlaps,
            ),
            (1, GUEST_IPA - PAGE_SIZE, free, 2 * PAGE_SIZE, Overlaps),
            // Pages that are not the host's to give: the hypervisor's, guest 1's (to guest 1
            // again and to guest 2), shared, given by a host call; the first bad page decides.
            (
                1,
                GUEST_IPA + GIB,
                HYP.start - 2 * MIB,
                4 * MIB,
                NotHostOwned,
            ),
            (1, GUEST_IPA + GIB, SLOT_PA, PAGE_SIZE, NotHostOwned),
            (
                2,
                GUEST_IPA,
                SLOT_PA + SLOT_SIZE - 2 * MIB,
                4 * MIB,
                NotHostOwned,
            ),
            (
                1,
                GUEST_IPA + GIB,
                SLOT_PA + SLOT_SIZE - PAGE_SIZE,
                2 * PAGE_SIZE,
                NotHostOwned,
            ),
            (1, GUEST_IPA + GIB, shared, PAGE_SIZE, NotHostOwned),
            (1, GUEST_IPA + GIB, given, PAGE_SIZE, NotHostOwned),
            // Guest 1's pool has two tables left; a page in another 512 GiB needs three.
            (1, 1 << 39, free, PAGE_SIZE, OutOfTables),
            // Checked before ownership: out of tables wins over pages that are not the host's.
            (1, 1 << 39, HYP.start, PAGE_SIZE, OutOfTables),
        ];
        let before = snapshot(service);
        let invalidations = kernel.invalidations.len();
        for (vm, ipa, pa, size, refusal) in cases.iter().cloned() {
            assert_eq!(
                service.add_memslot(vm, ipa, pa, size, kernel),
                Err(refusal),
                "vm {vm} ipa {ipa:#x} pa {pa:#x} size {size:#x}"
            );
            assert_eq!(snapshot(service), before, "vm {vm} ipa {ipa:#x}");
        }
        assert_eq!(kernel.invalidations.len(), invalidations);
        assert!(kernel.zeroed.is_empty());
        // Out of slots: fill guest 1's table with pages next to its RAM (one level-3 table for
        // all of them), then one more.
        let next = |n: u64| (GUEST_IPA + SLOT_SIZE + n * PAGE_SIZE, free + n * PAGE_SIZE);
        for n in 1..crate::memslots::MAX_MEMSLOTS as u64 {
            let (ipa, pa) = next(n);
            service.add_memslot(1, ipa, pa, PAGE_SIZE, kernel).unwrap();
        }
        let before = snapshot(service);
        let (ipa, pa) = next(100);
        assert_eq!(
            service.add_memslot(1, ipa, pa, PAGE_SIZE, kernel),
            Err(TooManySlots)
        );
        assert_eq!(snapshot(service), before);
    });
}

#[test]
fn devices_map_only_what_the_configuration_passes_through() {
    use MemProtectRefusal::*;
    with_guests([4, 4], |service, kernel| {
        service
            .add_memslot(1, GUEST_IPA, SLOT_PA, SLOT_SIZE, kernel)
            .unwrap();
        let before = snapshot(service);
        for (vm, ipa, pa, size, refusal) in [
            (0, 0x0900_0000, GUEST_DEVICE.start, PAGE_SIZE, NotAGuest),
            (3, 0x0900_0000, GUEST_DEVICE.start, PAGE_SIZE, NotAGuest),
            // Not (all) a device it is given: another device, past its end, RAM.
            (1, 0x0900_0000, 0x0900_0000, PAGE_SIZE, BadRange),
            (1, 0x0900_0000, GUEST_DEVICE.start, 3 * PAGE_SIZE, BadRange),
            (1, 0x0900_0000, SLOT_PA + SLOT_SIZE, PAGE_SIZE, BadRange),
            (1, 0x0900_0008, GUEST_DEVICE.start, PAGE_SIZE, BadRange),
            (1, 1 << 40, GUEST_DEVICE.start, PAGE_SIZE, BadRange),
            // Over its RAM.
            (1, GUEST_IPA, GUEST_DEVICE.start, PAGE_SIZE, Overlaps),
        ] {
            assert_eq!(
                service.map_device(vm, ipa, pa, size),
                Err(refusal),
                "vm {vm} ipa {ipa:#x} pa {pa:#x}"
            );
            assert_eq!(snapshot(service), before);
        }
        // At another IPA than its PA: one page, then the next page next to it.
        assert_eq!(
            service.map_device(1, 0x0900_0000, GUEST_DEVICE.start, PAGE_SIZE),
            Ok([0, 0, 0, 1])
        );
        assert_eq!(
            service.map_device(1, 0x0900_0000, GUEST_DEVICE.start, PAGE_SIZE),
            Err(Overlaps)
        );
        assert_eq!(
            service.map_device(1, 0x0900_1000, GUEST_DEVICE.start + PAGE_SIZE, PAGE_SIZE),
            Ok([0, 0, 0, 1])
        );
        let guest = service.guest(1).unwrap();
        match guest.stage2().lookup(0x0900_1010).unwrap() {
            Entry::Mapped { pa, attrs, .. } => {
                assert_eq!(pa, GUEST_DEVICE.start + PAGE_SIZE + 0x10);
                assert_eq!(attrs, crate::stage2::Attributes::DEVICE);
                assert!(!attrs.permits(Access::Fetch));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(guest.slots().devices().len(), 2);
        // Ownership and the host's stage 2 are not touched by devices.
        assert_eq!(snapshot(service).owners, before.owners);
        assert_eq!(snapshot(service).host, before.host);
    });
}

#[test]
fn a_wipe_zeroes_every_memslot_and_keeps_the_mappings() {
    with_guests([8, 4], |service, kernel| {
        service
            .add_memslot(1, GUEST_IPA, SLOT_PA, SLOT_SIZE, kernel)
            .unwrap();
        service
            .add_memslot(1, 2 * GIB, SLOT_PA + SLOT_SIZE, PAGE_SIZE, kernel)
            .unwrap();
        let before = snapshot(service);
        let wiped = |bytes| {
            Ok(Wiped {
                bytes,
                unshared: 0,
                table_failures: 0,
            })
        };
        assert_eq!(service.wipe_vm(1, kernel), wiped(SLOT_SIZE + PAGE_SIZE));
        assert_eq!(
            kernel.zeroed,
            [(SLOT_PA, SLOT_SIZE), (SLOT_PA + SLOT_SIZE, PAGE_SIZE)]
        );
        assert_eq!(snapshot(service), before);
        // A guest with no memslot: nothing to zero. Not guests: refused.
        assert_eq!(service.wipe_vm(2, kernel), wiped(0));
        assert_eq!(
            service.wipe_vm(0, kernel),
            Err(MemProtectRefusal::NotAGuest)
        );
        assert_eq!(
            service.wipe_vm(3, kernel),
            Err(MemProtectRefusal::NotAGuest)
        );
        // The kernel refuses: WipeFailed, mappings and ownership as they were.
        kernel.refuse_zeroing = true;
        assert_eq!(
            service.wipe_vm(1, kernel),
            Err(MemProtectRefusal::WipeFailed)
        );
        assert_eq!(snapshot(service), before);
    });
}

#[test]
fn host_calls_may_not_name_a_guest_vm() {
    use function::*;
    with_guests([4, 4], |service, kernel| {
        service
            .add_memslot(1, GUEST_IPA, SLOT_PA, SLOT_SIZE, kernel)
            .unwrap();
        let before = snapshot(service);
        // Reclaiming a guest VM's memory, or donating to one: refused, nothing changes.
        for (function, pa, guest) in [
            (HOST_RECLAIM, SLOT_PA, 1),
            (HOST_DONATE_GUEST, SLOT_PA + SLOT_SIZE, 1),
            (HOST_DONATE_GUEST, SLOT_PA + SLOT_SIZE, 2),
        ] {
            let outcome = service.host_call(&call(function, pa, 1, guest), kernel);
            assert_eq!(outcome.code, code::INVALID_PARAMETER);
            assert_eq!(snapshot(service), before);
        }
        assert!(kernel.zeroed.is_empty());
        // Other guest numbers are the host's to use, as before.
        assert_eq!(
            service
                .host_call(&call(HOST_DONATE_GUEST, SLOT_PA + SLOT_SIZE, 1, 3), kernel)
                .code,
            code::SUCCESS
        );
    });
}
