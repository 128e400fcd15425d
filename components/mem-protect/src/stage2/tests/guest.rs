//! Scenarios for a guest's stage 2: ranges mapped in full with the largest blocks both
//! addresses allow, IPA ≠ PA, devices, overlaps, pool exhaustion (refused with nothing
//! changed), and the plan's table count against what the mapper really takes.

use super::walker::{DEVICE_ATTRIBUTES, Leaf, MEMORY_ATTRIBUTES, RawView};
use super::*;
use plan::{GuestRange, TableCount};
use proptest::prelude::*;

const KIB: u64 = 1 << 10;
/// Where the tests pretend the root and the pool sit in physical memory.
const ROOT_PA: u64 = 0x7000_0000_0000;
const POOL_PA: u64 = 0x7000_0010_0000;

/// Vec-backed root and pool.
struct GuestBacking {
    root: Table,
    pool: Vec<Table>,
}

impl GuestBacking {
    fn new(tables: usize) -> Self {
        Self {
            // Not zero: the stage 2 must clear its root.
            root: [0xdead_beef; TABLE_ENTRIES],
            pool: vec![[0x5a5a; TABLE_ENTRIES]; tables],
        }
    }

    fn stage2(&mut self) -> GuestStage2<'_> {
        GuestStage2::new(&mut self.root, ROOT_PA, &mut self.pool, POOL_PA, 40).unwrap()
    }
}

/// The leaves a walk of the raw tables finds, each with its output address.
fn guest_leaves(stage2: &GuestStage2<'_>) -> Vec<Leaf> {
    let (leaves, invalid) = RawView::of_guest(stage2).contents();
    assert!(invalid.is_empty(), "a guest stage 2 holds no invalid entry");
    leaves
}

/// Leaves by level, as `[_, l1, l2, l3]`.
fn levels(leaves: &[Leaf]) -> [u64; 4] {
    let mut count = [0; 4];
    for leaf in leaves {
        count[usize::from(leaf.level)] += 1;
    }
    count
}

/// Checks that every leaf translates its IPAs to `pa + (ipa - ipa_start)` with `attributes`,
/// that together they cover exactly `[ipa, ipa + size)`, and that lookups agree.
fn maps_exactly(stage2: &GuestStage2<'_>, ranges: &[(GuestRange, u64)]) {
    let view = RawView::of_guest(stage2);
    let mut leaves = guest_leaves(stage2);
    leaves.sort();
    let mut covered = 0;
    for leaf in &leaves {
        let (range, attributes) = ranges
            .iter()
            .find(|(range, _)| range.ipa <= leaf.ipa && leaf.end() <= range.ipa + range.size)
            .unwrap_or_else(|| panic!("{leaf:x?} maps outside the ranges"));
        assert_eq!(leaf.oa(), range.pa + (leaf.ipa - range.ipa), "{leaf:x?}");
        assert_eq!(leaf.attributes(), *attributes, "{leaf:x?}");
        covered += leaf.size();
    }
    assert_eq!(
        covered,
        ranges.iter().map(|(range, _)| range.size).sum::<u64>()
    );
    for (range, _) in ranges {
        for ipa in [
            range.ipa,
            range.ipa + range.size / 2,
            range.ipa + range.size - 1,
        ] {
            let expected = range.pa + (ipa - range.ipa);
            let leaf = view.translate(ipa).expect("mapped");
            assert_eq!(leaf.oa() + (ipa - leaf.ipa), expected);
            match stage2.lookup(ipa).unwrap() {
                Entry::Mapped { pa, level, .. } => {
                    assert_eq!((pa, level), (expected, leaf.level), "lookup of {ipa:#x}");
                }
                other => panic!("{ipa:#x}: {other:?}"),
            }
        }
        let end = range.ipa + range.size;
        if !ranges.iter().any(|(other, _)| other.ipa == end) {
            assert_eq!(stage2.lookup(end).unwrap(), Entry::Unmapped, "{end:#x}");
        }
    }
}

/// The tables the plan counts for `ranges` (in IPA order).
fn planned_tables(ranges: &[GuestRange]) -> usize {
    let mut count = TableCount::default();
    for leaf in ranges.iter().copied().flat_map(plan::leaves) {
        count.add(leaf.ipa, 1, leaf.level);
    }
    count.tables()
}

fn guest_range(ipa: u64, pa: u64, size: u64) -> GuestRange {
    GuestRange { ipa, pa, size }
}

#[test]
fn the_root_is_cleared_and_nothing_is_mapped() {
    let mut backing = GuestBacking::new(4);
    let stage2 = backing.stage2();
    assert_eq!(stage2.root_pa(), ROOT_PA);
    assert_eq!(stage2.tables_used(), 0);
    assert_eq!(stage2.tables_available(), 4);
    assert!(guest_leaves(&stage2).is_empty());
    assert_eq!(stage2.lookup(GIB).unwrap(), Entry::Unmapped);
}

#[test]
fn aligned_ram_is_mapped_with_1_gib_and_2_mib_blocks() {
    // IPA and PA both 1 GiB aligned: a GiB, then 2 MiB blocks, then pages for the tail.
    let range = guest_range(GIB, 3 * GIB, GIB + 4 * MIB + 12 * KIB);
    let mut backing = GuestBacking::new(8);
    let mut stage2 = backing.stage2();
    let leaves = stage2
        .map(range.ipa, range.pa, range.size, RegionKind::Memory)
        .unwrap();
    assert_eq!(leaves, [0, 1, 2, 3]);
    assert_eq!(levels(&guest_leaves(&stage2)), [0, 1, 2, 3]);
    assert_eq!(stage2.leaves(), [0, 1, 2, 3]);
    maps_exactly(&stage2, &[(range, MEMORY_ATTRIBUTES)]);
    // A level-1 table, a level-2 table for the second GiB, a level-3 table for the tail.
    assert_eq!(stage2.tables_used(), 3);
    assert_eq!(planned_tables(&[range]), 3);
    match stage2.lookup(GIB + 5).unwrap() {
        Entry::Mapped { pa, level, attrs } => {
            assert_eq!((pa, level), (3 * GIB + 5, 1));
            assert_eq!(attrs, Attributes::MEMORY);
            assert!(attrs.permits(Access::Fetch) && attrs.permits(Access::Write));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocks_only_where_both_addresses_are_aligned() {
    for (range, expected_leaves, tables) in [
        // The guest's RAM at the board's RAM base (1 GiB aligned), backed 2 MiB aligned: no
        // 1 GiB block, 2 MiB blocks throughout; a level-1 and a level-2 table.
        (guest_range(GIB, 0x4820_0000, GIB), [0, 0, 512, 0], 2),
        // Backed 4 KiB off a 2 MiB boundary: pages only, one level-3 table per 2 MiB.
        (
            guest_range(GIB, 0x4820_1000, 8 * MIB),
            [0, 0, 0, 2048],
            1 + 1 + 4,
        ),
        // Unaligned ends with matching offsets: pages up to the first 2 MiB boundary, a block,
        // pages after the last (two level-3 tables).
        (
            guest_range(0x401f_e000, 0x601f_e000, 4 * MIB),
            [0, 0, 1, 2 + 510],
            1 + 1 + 2,
        ),
    ] {
        let mut backing = GuestBacking::new(8);
        let mut stage2 = backing.stage2();
        let leaves = stage2
            .map(range.ipa, range.pa, range.size, RegionKind::Memory)
            .unwrap();
        assert_eq!(leaves, expected_leaves, "{range:x?}");
        maps_exactly(&stage2, &[(range, MEMORY_ATTRIBUTES)]);
        assert_eq!(stage2.tables_used(), tables, "{range:x?}");
        assert_eq!(planned_tables(&[range]), tables, "{range:x?}");
    }
}

#[test]
fn devices_are_device_memory_and_never_executable() {
    let mut backing = GuestBacking::new(8);
    let mut stage2 = backing.stage2();
    // A UART page at another IPA, and a 2 MiB aligned MMIO window that takes a block.
    let uart = guest_range(0x0900_0000, 0x0900_0000, 4 * KIB);
    let window = guest_range(0x1000_0000, 0x1_0000_0000, 2 * MIB);
    assert_eq!(
        stage2
            .map(uart.ipa, uart.pa, uart.size, RegionKind::Device)
            .unwrap(),
        [0, 0, 0, 1]
    );
    assert_eq!(
        stage2
            .map(window.ipa, window.pa, window.size, RegionKind::Device)
            .unwrap(),
        [0, 0, 1, 0]
    );
    maps_exactly(
        &stage2,
        &[(uart, DEVICE_ATTRIBUTES), (window, DEVICE_ATTRIBUTES)],
    );
    match stage2.lookup(0x0900_0010).unwrap() {
        Entry::Mapped { pa, attrs, .. } => {
            assert_eq!(pa, 0x0900_0010);
            assert_eq!(attrs, Attributes::DEVICE);
            assert!(!attrs.permits(Access::Fetch));
            assert!(attrs.permits(Access::Read) && attrs.permits(Access::Write));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn overlaps_are_refused_and_change_nothing_while_adjacent_ranges_map() {
    let mut backing = GuestBacking::new(16);
    let mut stage2 = backing.stage2();
    let ram = guest_range(GIB, 2 * GIB, 4 * MIB);
    stage2
        .map(ram.ipa, ram.pa, ram.size, RegionKind::Memory)
        .unwrap();
    let before = guest_leaves(&stage2);
    let used = stage2.tables_used();
    // Inside a block, over its start, over its end, around it, page or block sized.
    for (ipa, size) in [
        (GIB + 4 * KIB, 4 * KIB),
        (GIB - 4 * KIB, 8 * KIB),
        (GIB + 4 * MIB - 4 * KIB, 8 * KIB),
        (GIB - 2 * MIB, 8 * MIB),
        (GIB + 2 * MIB, 2 * MIB),
    ] {
        let refused = stage2.map(ipa, 3 * GIB, size, RegionKind::Memory);
        assert!(
            matches!(refused, Err(GuestMapError::Overlaps { .. })),
            "{ipa:#x}+{size:#x}: {refused:?}"
        );
        assert_eq!(guest_leaves(&stage2), before);
        assert_eq!(stage2.tables_used(), used);
    }
    // Adjacent below and above: fine.
    let below = guest_range(GIB - 2 * MIB, 3 * GIB, 2 * MIB);
    let above = guest_range(GIB + 4 * MIB, 3 * GIB + 2 * MIB, 4 * KIB);
    for range in [below, above] {
        stage2
            .map(range.ipa, range.pa, range.size, RegionKind::Memory)
            .unwrap();
    }
    maps_exactly(
        &stage2,
        &[
            (below, MEMORY_ATTRIBUTES),
            (ram, MEMORY_ATTRIBUTES),
            (above, MEMORY_ATTRIBUTES),
        ],
    );
}

#[test]
fn pool_exhaustion_is_refused_with_nothing_changed() {
    // Pages only: a level-1, a level-2 and one level-3 table per 2 MiB window.
    let range = guest_range(GIB, 0x4820_1000, 4 * MIB);
    assert_eq!(planned_tables(&[range]), 4);
    let mut backing = GuestBacking::new(3);
    let mut stage2 = backing.stage2();
    let small = guest_range(8 * GIB, 0x4000_0000, 2 * MIB);
    stage2
        .map(small.ipa, small.pa, small.size, RegionKind::Memory)
        .unwrap();
    assert_eq!(stage2.tables_used(), 2);
    let before = guest_leaves(&stage2);
    let refused = stage2.map(range.ipa, range.pa, range.size, RegionKind::Memory);
    // The level-1 table exists; the level-2 and two level-3 tables do not.
    assert_eq!(
        refused,
        Err(GuestMapError::OutOfTables {
            needed: 3,
            available: 1
        })
    );
    assert_eq!(guest_leaves(&stage2), before);
    assert_eq!(stage2.tables_used(), 2);
    // What fits still maps, using the last table exactly.
    let fits = guest_range(8 * GIB + 2 * MIB, 0x4820_1000, 4 * KIB);
    assert_eq!(
        stage2
            .map(fits.ipa, fits.pa, fits.size, RegionKind::Memory)
            .unwrap(),
        [0, 0, 0, 1]
    );
    assert_eq!(stage2.tables_available(), 0);
    maps_exactly(
        &stage2,
        &[(small, MEMORY_ATTRIBUTES), (fits, MEMORY_ATTRIBUTES)],
    );
}

#[test]
fn bad_ranges_are_refused() {
    let mut backing = GuestBacking::new(4);
    let mut stage2 = backing.stage2();
    for (ipa, pa, size) in [
        (GIB + 1, 2 * GIB, 4 * KIB),
        (GIB, 2 * GIB + 8, 4 * KIB),
        (GIB, 2 * GIB, 4 * KIB + 1),
        (GIB, 2 * GIB, 0),
        ((1 << 40) - 4 * KIB, 2 * GIB, 8 * KIB),
        (!0xfff, 2 * GIB, 8 * KIB),
        (GIB, !0xfff, 8 * KIB),
        (GIB, 1 << 48, 4 * KIB),
    ] {
        assert_eq!(
            stage2.map(ipa, pa, size, RegionKind::Memory),
            Err(GuestMapError::BadRange),
            "{ipa:#x} -> {pa:#x} + {size:#x}"
        );
    }
    assert!(guest_leaves(&stage2).is_empty());
    // The last page below the IPA limit and below the output limit is fine.
    stage2
        .map(
            (1 << 40) - 4 * KIB,
            (1 << 48) - 4 * KIB,
            4 * KIB,
            RegionKind::Memory,
        )
        .unwrap();
}

#[test]
fn a_reservation_is_good_for_one_commit_to_its_own_stage_2() {
    let mut backing = GuestBacking::new(8);
    let mut stage2 = backing.stage2();
    let first = stage2.reserve(GIB, 2 * GIB, 2 * MIB).unwrap();
    let second = stage2.reserve(GIB, 3 * GIB, 2 * MIB).unwrap();
    assert_eq!(first.tables(), 2);
    assert_eq!(first.leaves(), [0, 0, 1, 0]);
    stage2.commit(first, RegionKind::Memory).unwrap();
    // The second was checked against tables that have changed since: it would overlap.
    assert_eq!(
        stage2.commit(second, RegionKind::Memory),
        Err(GuestMapError::StaleReservation)
    );
    let mut other_backing = GuestBacking::new(8);
    let mut other = GuestStage2::new(
        &mut other_backing.root,
        ROOT_PA + 0x1000,
        &mut other_backing.pool,
        POOL_PA + 0x10_0000,
        40,
    )
    .unwrap();
    let elsewhere = other.reserve(4 * GIB, 2 * GIB, 4 * KIB).unwrap();
    assert_eq!(
        stage2.commit(elsewhere, RegionKind::Memory),
        Err(GuestMapError::StaleReservation)
    );
    other.commit(elsewhere, RegionKind::Memory).unwrap();
    maps_exactly(
        &stage2,
        &[(guest_range(GIB, 2 * GIB, 2 * MIB), MEMORY_ATTRIBUTES)],
    );
}

#[test]
fn bad_setups_are_refused() {
    let mut root = [0; TABLE_ENTRIES];
    let mut pool = vec![[0; TABLE_ENTRIES]; 2];
    assert_eq!(
        GuestStage2::new(&mut root, ROOT_PA + 8, &mut pool, POOL_PA, 40).err(),
        Some(SetupError::GuestRoot(PoolError::Misaligned))
    );
    assert_eq!(
        GuestStage2::new(&mut root, ROOT_PA, &mut pool, POOL_PA + 8, 40).err(),
        Some(SetupError::GuestPool(PoolError::Misaligned))
    );
    assert_eq!(
        GuestStage2::new(&mut root, ROOT_PA, &mut pool, (1 << 48) - 4096, 40).err(),
        Some(SetupError::GuestPool(PoolError::BeyondOutputAddress))
    );
    assert_eq!(
        GuestStage2::new(&mut root, POOL_PA + 4096, &mut pool, POOL_PA, 40).err(),
        Some(SetupError::PoolsOverlap)
    );
    assert_eq!(
        GuestStage2::new(&mut root, ROOT_PA, &mut pool, POOL_PA, 39).err(),
        Some(SetupError::IpaBits(39))
    );
}

/// A VM configuration with RAM at `ram_ipa` backed at `base`, and `devices`.
fn vm(ram_ipa: u64, base: u64, size: u64, devices: &[(u64, u64)]) -> hv_component_config::Vm {
    use hv_component_config::{Device, DeviceKind, DeviceMode, MmioGuardMode, Name, Region};
    hv_component_config::Vm {
        id: 1,
        name: Name::try_from("guest").unwrap(),
        host: false,
        memory: Region { base, size },
        ram_ipa,
        mte: false,
        shared_ipa_bit: None,
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

/// The pool `build.rs` sizes for a VM (`plan::vm_tables`) is exactly what mapping its ranges
/// takes.
#[test]
fn the_planned_pool_is_exactly_what_a_vm_takes() {
    for vm in [
        vm(GIB, 0x4820_0000, 256 * MIB, &[(0x0900_0000, 0x1000)]),
        vm(GIB, 0x4820_1000, 16 * MIB, &[(0x0900_0000, 0x1000)]),
        vm(GIB, 2 * GIB, GIB, &[]),
        // Two devices in one 2 MiB window share its level-3 table; one not page sized.
        vm(
            GIB,
            3 * GIB,
            2 * GIB + 2 * MIB,
            &[(0x0900_0000, 0x1000), (0x0901_0000, 0x20)],
        ),
    ] {
        let tables = plan::vm_tables(&vm, &[]);
        let mut backing = GuestBacking::new(tables);
        let mut stage2 = backing.stage2();
        for range in plan::vm_ranges(&vm, &[]) {
            stage2
                .map(range.ipa, range.pa, range.size, RegionKind::Memory)
                .unwrap();
        }
        assert_eq!(stage2.tables_available(), 0, "{vm:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random non-overlapping ranges, in random order, into a pool of exactly the planned
    /// size: every one maps, the pool is used up exactly, every leaf is the largest block its
    /// addresses allow, and every IPA translates to its PA.
    #[test]
    fn random_ranges_map_exactly_with_the_planned_tables(
        pieces in prop::collection::vec((0u64..3, 1u64..1200, 0u64..1200, any::<bool>()), 1..6),
        order in any::<prop::sample::Index>(),
    ) {
        // Lay ranges out one after another in IPA, with gaps, some 2 MiB aligned in both
        // addresses, others not.
        let mut ranges = Vec::new();
        let mut ipa = GIB - 4 * MIB;
        for (index, &(gap, pages, pa_pages, aligned)) in pieces.iter().enumerate() {
            ipa += gap * MIB + if aligned { 0 } else { pages % 7 * 4 * KIB };
            let pa_base = (index as u64 + 4) * GIB;
            let pa = if aligned { pa_base + (ipa % (2 * MIB)) } else { pa_base + pa_pages * 4 * KIB };
            ranges.push(guest_range(ipa, pa, pages * 4 * KIB));
            ipa += pages * 4 * KIB;
        }
        let tables = planned_tables(&ranges);
        let mut backing = GuestBacking::new(tables);
        let mut stage2 = backing.stage2();
        let mut shuffled = ranges.clone();
        shuffled.rotate_left(order.index(ranges.len()));
        let mut written = [0; 4];
        for range in &shuffled {
            let leaves = stage2.map(range.ipa, range.pa, range.size, RegionKind::Memory).unwrap();
            for (total, more) in written.iter_mut().zip(leaves) {
                *total += more;
            }
        }
        prop_assert_eq!(stage2.tables_available(), 0);
        let found = guest_leaves(&stage2);
        prop_assert_eq!(levels(&found), written);
        for leaf in &found {
            // The largest: no block of the level above could start here, both addresses
            // aligned for it and inside the range.
            let range = ranges.iter().find(|r| r.ipa <= leaf.ipa && leaf.end() <= r.ipa + r.size).unwrap();
            if leaf.level > 1 {
                let size = leaf.size() << 9;
                let fits = leaf.ipa % size == 0
                    && leaf.oa() % size == 0
                    && leaf.ipa + size <= range.ipa + range.size;
                prop_assert!(!fits, "{:x?} could be a level-{} block", leaf, leaf.level - 1);
            }
        }
        let with_attributes: Vec<_> = ranges.iter().map(|&r| (r, MEMORY_ATTRIBUTES)).collect();
        maps_exactly(&stage2, &with_attributes);
    }
}
