//! A guest's shared aliases (seed 004): a memslot added with an alias gets the alias's tables,
//! empty; alias pages map into them without taking a table, at the same physical page as the
//! memslot's own IPA; unmapping clears exactly the alias; the planned pool covers every page
//! of every memslot shared; random share/unshare sequences against a model.

use std::collections::BTreeSet;

use super::walker::{Leaf, MEMORY_ATTRIBUTES, RawView, SHARED_ATTRIBUTES};
use super::*;
use plan::{GuestRange, TableCount};
use proptest::prelude::*;

const KIB: u64 = 1 << 10;
const PAGE: u64 = 4 * KIB;
const ROOT_PA: u64 = 0x7000_0000_0000;
const POOL_PA: u64 = 0x7000_0010_0000;
/// The shared bit of these tests, and the IPA size it needs.
const BIT: u8 = 40;
const SHARED: u64 = 1 << BIT;
const IPA_BITS: u8 = 41;

/// A memslot at the board's RAM base, backed 2 MiB aligned: two 2 MiB blocks and two pages.
const RAM: GuestRange = GuestRange {
    ipa: GIB,
    pa: 0x4820_0000,
    size: 4 * MIB + 2 * PAGE,
};

struct Backing {
    root: Table,
    pool: Vec<Table>,
}

impl Backing {
    fn new(tables: usize) -> Self {
        Self {
            root: [0; TABLE_ENTRIES],
            pool: vec![[0x5a5a; TABLE_ENTRIES]; tables],
        }
    }

    fn stage2(&mut self) -> GuestStage2<'_> {
        GuestStage2::new(&mut self.root, ROOT_PA, &mut self.pool, POOL_PA, IPA_BITS).unwrap()
    }
}

/// The tables the plan counts for `range` and its alias, as `build.rs` sizes them.
fn planned(range: GuestRange) -> usize {
    let mut count = TableCount::default();
    for leaf in plan::leaves(range) {
        count.add(leaf.ipa, 1, leaf.level);
    }
    for window in plan::alias_windows(range.ipa | SHARED, range.size) {
        count.add(window, 1, 3);
    }
    count.tables()
}

/// Adds `range` with its alias to a stage 2 whose pool is exactly what the plan says.
fn with_memslot(range: GuestRange, test: impl FnOnce(&mut GuestStage2<'_>)) {
    let mut backing = Backing::new(planned(range));
    let mut stage2 = backing.stage2();
    let reservation = stage2
        .reserve_with_alias(range.ipa, range.pa, range.size, Some(range.ipa | SHARED))
        .unwrap();
    assert_eq!(reservation.tables(), planned(range));
    stage2.commit(reservation, RegionKind::Memory).unwrap();
    assert_eq!(stage2.tables_available(), 0);
    test(&mut stage2);
}

fn leaves_of(stage2: &GuestStage2<'_>) -> Vec<Leaf> {
    let (leaves, invalid) = RawView::of_guest(stage2).contents();
    assert!(invalid.is_empty());
    leaves
}

fn share(stage2: &mut GuestStage2<'_>, offset: u64) {
    let reservation = stage2
        .reserve_alias_page((RAM.ipa + offset) | SHARED, RAM.pa + offset)
        .unwrap();
    assert_eq!(reservation.tables(), 0);
    stage2.commit_alias(reservation).unwrap();
}

#[test]
fn a_memslots_alias_gets_its_tables_and_no_mapping() {
    // Memslot: a level-1, a level-2 and a level-3 table; alias (another 512 GiB): a level-1,
    // a level-2 and three level-3 tables.
    assert_eq!(planned(RAM), 3 + 5);
    with_memslot(RAM, |stage2| {
        let leaves = leaves_of(stage2);
        assert_eq!(leaves.len(), 4, "only the memslot's leaves: {leaves:x?}");
        assert!(leaves.iter().all(|leaf| leaf.ipa < SHARED));
        for offset in [0, 2 * MIB, RAM.size - PAGE] {
            assert_eq!(stage2.alias_at((RAM.ipa + offset) | SHARED), Ok(None));
            assert_eq!(
                stage2.lookup((RAM.ipa + offset) | SHARED),
                Ok(Entry::Unmapped)
            );
        }
        assert_eq!(stage2.aliases(), 0);
    });
}

#[test]
fn both_aliases_of_a_shared_page_reach_it_and_sharing_takes_no_table() {
    with_memslot(RAM, |stage2| {
        let pages: Vec<u64> = (0..RAM.size).step_by(PAGE as usize).collect();
        for &offset in &pages {
            share(stage2, offset);
        }
        assert_eq!(stage2.tables_used(), planned(RAM));
        assert_eq!(stage2.aliases(), pages.len() as u64);
        let view = RawView::of_guest(stage2);
        for &offset in &pages {
            let (ipa, alias) = (RAM.ipa + offset + 0x10, (RAM.ipa + offset + 0x10) | SHARED);
            let own = view.translate(ipa).unwrap();
            let shared = view.translate(alias).unwrap();
            assert_eq!(
                own.oa() + (ipa - own.ipa),
                shared.oa() + (alias - shared.ipa)
            );
            assert_eq!(shared.oa(), RAM.pa + offset);
            assert_eq!((shared.level, shared.attributes()), (3, SHARED_ATTRIBUTES));
            assert_eq!(own.attributes(), MEMORY_ATTRIBUTES);
            match stage2.lookup(alias).unwrap() {
                Entry::Mapped { pa, level, attrs } => {
                    assert_eq!(
                        (pa, level, attrs),
                        (RAM.pa + offset + 0x10, 3, Attributes::SHARED)
                    );
                    assert!(attrs.permits(Access::Write) && !attrs.permits(Access::Fetch));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(stage2.alias_at(alias - 0x10), Ok(Some(RAM.pa + offset)));
        }
    });
}

#[test]
fn unmapping_an_alias_clears_it_and_nothing_else() {
    with_memslot(RAM, |stage2| {
        share(stage2, PAGE);
        share(stage2, 2 * PAGE);
        let alias = (RAM.ipa + PAGE) | SHARED;
        assert_eq!(stage2.unmap_alias(alias), Ok(Some(RAM.pa + PAGE)));
        assert_eq!(stage2.lookup(alias), Ok(Entry::Unmapped));
        assert_eq!(stage2.aliases(), 1);
        // Again: nothing there.
        assert_eq!(stage2.unmap_alias(alias), Ok(None));
        // The memslot's own mappings are never an alias: refused, left alone (a block, then a
        // page of the tail).
        let before = leaves_of(stage2);
        for ipa in [RAM.ipa, RAM.ipa + 4 * MIB] {
            assert_eq!(
                stage2.unmap_alias(ipa),
                Err(GuestMapError::NotAnAlias { ipa })
            );
        }
        assert_eq!(
            stage2.unmap_alias(RAM.ipa + 8),
            Err(GuestMapError::BadRange)
        );
        assert_eq!(
            stage2.unmap_alias(1 << IPA_BITS),
            Err(GuestMapError::BadRange)
        );
        // Where no table is, nothing is mapped.
        assert_eq!(stage2.unmap_alias(SHARED | (8 * GIB)), Ok(None));
        assert_eq!(leaves_of(stage2), before);
        // The other alias still maps its page.
        assert_eq!(
            stage2.alias_at((RAM.ipa + 2 * PAGE) | SHARED),
            Ok(Some(RAM.pa + 2 * PAGE))
        );
    });
}

#[test]
fn alias_pages_need_a_prepared_empty_entry() {
    with_memslot(RAM, |stage2| {
        share(stage2, 0);
        let before = leaves_of(stage2);
        let alias = RAM.ipa | SHARED;
        // Mapped already.
        assert_eq!(
            stage2.reserve_alias_page(alias, RAM.pa),
            Err(GuestMapError::Overlaps { ipa: alias })
        );
        // No memslot prepared it: it would need tables.
        let far = SHARED | (8 * GIB);
        assert_eq!(
            stage2.reserve_alias_page(far, RAM.pa),
            Err(GuestMapError::Unprepared { ipa: far })
        );
        // Over the memslot's own block.
        assert_eq!(
            stage2.reserve_alias_page(RAM.ipa, RAM.pa),
            Err(GuestMapError::Overlaps { ipa: RAM.ipa })
        );
        // Each kind of reservation commits only its own way.
        let page = stage2
            .reserve_alias_page(alias + PAGE, RAM.pa + PAGE)
            .unwrap();
        assert_eq!(
            stage2.commit(page, RegionKind::Memory),
            Err(GuestMapError::StaleReservation)
        );
        assert_eq!(leaves_of(stage2), before);
        // And a reservation made before an alias changed is stale.
        stage2.commit_alias(page).unwrap();
        assert_eq!(
            stage2.commit_alias(page),
            Err(GuestMapError::StaleReservation)
        );
        assert_eq!(stage2.aliases(), 2);
    });
    // A memslot's reservation: the alias must lie above it, inside the IPA space.
    let mut backing = Backing::new(16);
    let mut stage2 = backing.stage2();
    for alias in [RAM.ipa, RAM.ipa + PAGE, (1 << IPA_BITS) - PAGE, SHARED | 8] {
        assert_eq!(
            stage2.reserve_with_alias(RAM.ipa, RAM.pa, RAM.size, Some(alias)),
            Err(GuestMapError::BadRange),
            "{alias:#x}"
        );
    }
    let memslot = stage2
        .reserve_with_alias(RAM.ipa, RAM.pa, RAM.size, None)
        .unwrap();
    assert_eq!(
        stage2.commit_alias(memslot),
        Err(GuestMapError::StaleReservation)
    );
    // Something mapped in the alias range refuses the memslot's alias.
    stage2
        .map(
            SHARED | (GIB + 2 * MIB),
            0x5000_0000,
            PAGE,
            RegionKind::Memory,
        )
        .unwrap();
    assert_eq!(
        stage2.reserve_with_alias(RAM.ipa, RAM.pa, RAM.size, Some(RAM.ipa | SHARED)),
        Err(GuestMapError::Overlaps {
            ipa: SHARED | (GIB + 2 * MIB)
        })
    );
    stage2
        .map(SHARED | (4 * GIB), 4 * GIB, 2 * MIB, RegionKind::Memory)
        .unwrap();
    assert_eq!(
        stage2.reserve_with_alias(4 * GIB - 4 * MIB, RAM.pa, 2 * MIB, Some(SHARED | (4 * GIB))),
        Err(GuestMapError::Overlaps {
            ipa: SHARED | (4 * GIB)
        })
    );
}

/// A VM configuration with a shared bit, RAM at the board's RAM base backed at `base`.
fn vm(base: u64, size: u64, devices: &[(u64, u64)]) -> hv_component_config::Vm {
    use hv_component_config::{Device, DeviceKind, DeviceMode, MmioGuardMode, Name, Region};
    hv_component_config::Vm {
        id: 1,
        name: Name::try_from("guest").unwrap(),
        host: false,
        memory: Region { base, size },
        ram_ipa: GIB,
        mte: false,
        shared_ipa_bit: Some(BIT),
        cpus: Default::default(),
        mmio_guard: MmioGuardMode::Off,
        devices: devices
            .iter()
            .map(|&(base, size)| Device {
                name: Name::try_from("dev").unwrap(),
                kind: DeviceKind::Other,
                region: Region { base, size },
                mode: DeviceMode::Passthrough,
                interrupt: None,
            })
            .collect(),
    }
}

/// The pool `build.rs` sizes for a VM with a shared bit (`plan::vm_tables`) is exactly what
/// its memslot, its alias tables and its devices take, and sharing every page of its RAM, one
/// by one, takes nothing more.
#[test]
fn the_planned_pool_covers_every_page_shared() {
    for vm in [
        vm(0x4820_0000, 16 * MIB, &[(0x0900_0000, 0x1000)]),
        vm(0x4820_1000, 4 * MIB + 3 * PAGE, &[]),
        vm(
            2 * GIB,
            GIB + 2 * MIB,
            &[(0x0900_0000, 0x1000), (0x0901_0000, 0x20)],
        ),
    ] {
        let tables = plan::vm_tables(&vm, &[]);
        let mut backing = Backing::new(tables);
        let mut stage2 = backing.stage2();
        for range in plan::vm_ranges(&vm, &[]) {
            let ram = range.ipa == vm.ram_ipa;
            let alias = ram.then(|| plan::alias(range.ipa, BIT).unwrap());
            let (kind, reservation) = (
                if ram {
                    RegionKind::Memory
                } else {
                    RegionKind::Device
                },
                stage2
                    .reserve_with_alias(range.ipa, range.pa, range.size, alias)
                    .unwrap(),
            );
            stage2.commit(reservation, kind).unwrap();
        }
        assert_eq!(stage2.tables_available(), 0, "{vm:?}");
        for offset in (0..vm.memory.size).step_by(PAGE as usize) {
            let reservation = stage2
                .reserve_alias_page((vm.ram_ipa + offset) | SHARED, vm.memory.base + offset)
                .unwrap();
            stage2.commit_alias(reservation).unwrap();
        }
        assert_eq!(stage2.aliases(), vm.memory.size / PAGE);
        assert_eq!(stage2.tables_available(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random shares and unshares of the memslot's pages: after each, exactly the shared pages
    /// have an alias, at their own physical page; the memslot's own leaves never change; no
    /// table is ever taken.
    #[test]
    fn random_shares_and_unshares_match_a_model(
        steps in prop::collection::vec((any::<bool>(), 0u64..(RAM.size / PAGE)), 1..80),
    ) {
        with_memslot(RAM, |stage2| {
            let own = leaves_of(stage2).into_iter().filter(|leaf| leaf.ipa < SHARED).collect::<Vec<_>>();
            let mut shared = BTreeSet::new();
            for (share, page) in steps {
                let offset = page * PAGE;
                let alias = (RAM.ipa + offset) | SHARED;
                if share {
                    let reserved = stage2.reserve_alias_page(alias, RAM.pa + offset);
                    assert_eq!(reserved.is_ok(), !shared.contains(&page));
                    if let Ok(reservation) = reserved {
                        stage2.commit_alias(reservation).unwrap();
                        shared.insert(page);
                    }
                } else {
                    let was = shared.remove(&page).then_some(RAM.pa + offset);
                    assert_eq!(stage2.unmap_alias(alias), Ok(was));
                }
                let leaves = leaves_of(stage2);
                let (mine, aliases): (Vec<_>, Vec<_>) =
                    leaves.into_iter().partition(|leaf| leaf.ipa < SHARED);
                assert_eq!(&mine, &own);
                let found: Vec<_> = aliases
                    .iter()
                    .map(|leaf| {
                        assert_eq!((leaf.level, leaf.attributes()), (3, SHARED_ATTRIBUTES));
                        let page = (leaf.ipa - (RAM.ipa | SHARED)) / PAGE;
                        assert_eq!(leaf.oa(), RAM.pa + page * PAGE);
                        page
                    })
                    .collect();
                assert_eq!(found, shared.iter().copied().collect::<Vec<_>>());
                assert_eq!(stage2.aliases(), shared.len() as u64);
                assert_eq!(stage2.tables_available(), 0);
            }
        });
    }
}
