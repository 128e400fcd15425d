//! Scenarios for the table fill of the largest-block policy: what one fault maps besides its
//! own leaf, what it must leave alone, and that the pools still cover the worst case.

use super::walker::{DEVICE_ATTRIBUTES, MEMORY_ATTRIBUTES, RawView};
use super::*;

/// A `host_owns` for a host that owns no page of `foreign` ranges.
fn all_but_ranges(foreign: &[IpaRange]) -> impl FnMut(IpaRange) -> bool + '_ {
    move |range| !foreign.iter().any(|other| other.overlaps(&range))
}

fn filled(mapped: Mapped) -> [u16; 4] {
    match mapped {
        Mapped::New { filled, .. } => filled,
        Mapped::AlreadyMapped => panic!("nothing new was mapped"),
    }
}

/// The Linux boot's case: the hypervisor's 32 MiB at the start of a GiB of RAM rule out the
/// 1 GiB block, and one fault maps every 2 MiB block of the GiB the host wholly owns.
#[test]
fn one_fault_maps_every_host_owned_block_of_the_table() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let hypervisor = range(GIB, 32 * MIB);
    let donated = range(GIB + 100 * MIB + 0x5000, 4096);
    let foreign = [hypervisor, donated];
    let mapped = stage2
        .handle_fault(
            GIB + 40 * MIB,
            Access::Write,
            all_but_ranges(&foreign),
            &mut no_tlb(),
        )
        .unwrap();
    // 512 blocks - 16 of the hypervisor's - the one holding the donated page - the faulting one.
    assert_eq!(
        mapped,
        Mapped::New {
            range: range(GIB + 40 * MIB, 2 * MIB),
            level: 2,
            kind: RegionKind::Memory,
            recycled: false,
            filled: [0, 0, 494, 0],
        }
    );
    let partial = range(GIB + 100 * MIB, 2 * MIB);
    let view = RawView::of(&stage2);
    for leaf in view.contents().0 {
        assert_eq!(leaf.level, 2);
        identity(&leaf, MEMORY_ATTRIBUTES);
        let block = range(leaf.ipa, leaf.size());
        assert!(
            !block.overlaps(&hypervisor) && block != partial,
            "{leaf:x?}"
        );
    }
    for ipa in [GIB, GIB + 32 * MIB - 4096, partial.start, donated.start] {
        assert_eq!(view.translate(ipa), None, "{ipa:#x}");
    }
    for ipa in [
        GIB + 32 * MIB,
        GIB + 98 * MIB,
        GIB + 102 * MIB,
        2 * GIB - 4096,
    ] {
        assert!(view.translate(ipa).is_some(), "{ipa:#x}");
    }

    // The partly owned block is left to a later fault, which maps pages and fills its table
    // but for the donated page.
    let mapped = stage2
        .handle_fault(
            partial.start,
            Access::Read,
            all_but_ranges(&foreign),
            &mut no_tlb(),
        )
        .unwrap();
    assert_eq!(filled(mapped), [0, 0, 0, 510]);
    assert_eq!(stage2.lookup(donated.start), Ok(Entry::Unmapped));
    // Every other access of the host now finds its RAM mapped, or is refused.
    for ipa in [GIB + 32 * MIB, partial.end - 4096, 2 * GIB - 8] {
        assert_eq!(
            stage2.handle_fault(ipa, Access::Fetch, all_but_ranges(&foreign), &mut no_tlb()),
            Ok(Mapped::AlreadyMapped)
        );
    }
    for page in [GIB, donated.start] {
        assert_eq!(
            stage2.handle_fault(page, Access::Read, all_but_ranges(&foreign), &mut no_tlb()),
            Err(Stage2Error::NotHostOwned(page))
        );
    }
    let stats = stage2.stats();
    assert_eq!(
        (stats.faults, stats.already_mapped, stats.refused),
        (7, 3, 2)
    );
    assert_eq!(stats.blocks_mapped, [0, 0, 495, 511]);
    // Root, the level-1 table, the level-2 table, the partial block's level-3 table.
    assert_eq!(stats.memory_tables, 4);
    let covered: u64 = leaves(&stage2).iter().map(Leaf::size).sum();
    assert_eq!(covered, GIB - hypervisor.len() - donated.len());
}

/// In MMIO space the fill skips blocks holding a device hole, stays inside the fault's gap
/// (never mapping RAM as a device) and maps with device attributes.
#[test]
fn the_fill_in_device_space_skips_holes_and_other_regions() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 4);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let hole = range(0x900_0000, 4096);
    let foreign = [hole];
    let mut fault = |ipa| {
        stage2
            .handle_fault(ipa, Access::Read, all_but_ranges(&foreign), &mut no_tlb())
            .unwrap()
    };
    // The GiB below RAM holds the hole: a 2 MiB block, and the fill takes the other 510 that
    // do not hold it.
    assert_eq!(filled(fault(0x800_0000)), [0, 0, 510, 0]);
    // Next to the hole: pages, and the fill takes all but the hole.
    assert_eq!(filled(fault(hole.end)), [0, 0, 0, 510]);
    // Above RAM: a 1 GiB block, and the fill takes every other GiB of the level-1 table above
    // RAM (2 to 511 GiB, this one aside).
    assert_eq!(filled(fault(3 * GIB)), [0, 509, 0, 0]);
    let view = RawView::of(&stage2);
    assert_eq!(view.translate(hole.start), None);
    assert_eq!(
        view.translate(GIB),
        None,
        "RAM is never mapped by a device fault"
    );
    assert_eq!(view.translate(512 * GIB), None, "beyond the level-1 table");
    for leaf in view.contents().0 {
        identity(&leaf, DEVICE_ATTRIBUTES);
        assert!(!range(leaf.ipa, leaf.size()).overlaps(&hole));
    }
    let stats = stage2.stats();
    assert_eq!(stats.blocks_mapped, [0, 510, 511, 511]);
    // The fill allocated nothing: the tables are those of the three faulting walks.
    assert_eq!((stats.memory_tables, stats.device_tables), (2, 2));
}

/// The fill writes only empty entries: a page annotated as someone else's stays so even if
/// `host_owns` (wrongly) says the host owns it, and existing leaves are not rewritten.
#[test]
fn the_fill_leaves_annotations_and_leaves_alone() {
    let ram = [range(GIB, 4 * MIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let annotated = GIB + 0x7000;
    stage2
        .set_owner_annotation(annotated, OwnerId(5), &mut no_tlb())
        .unwrap();
    let mapped = stage2
        .handle_fault(GIB, Access::Read, everything, &mut no_tlb())
        .unwrap();
    // A page (the annotation made the tables down to level 3), and the fill takes the other
    // 510. The second 2 MiB block is in a table the walk only passed through, not one it
    // found an empty entry in: it is left to a fault of its own.
    assert_eq!(filled(mapped), [0, 0, 0, 510]);
    assert_eq!(stage2.lookup(GIB + 2 * MIB), Ok(Entry::Unmapped));
    assert_eq!(stage2.lookup(annotated), Ok(Entry::Annotated(OwnerId(5))));
    let before = stage2.pools().raw(PoolKind::Memory).0.to_vec();
    // Give the page back and fault on it: only it is new.
    stage2.clear_annotation(annotated).unwrap();
    let mapped = stage2
        .handle_fault(annotated, Access::Read, everything, &mut no_tlb())
        .unwrap();
    assert_eq!(filled(mapped), [0; 4]);
    let after = stage2.pools().raw(PoolKind::Memory).0;
    let changed: Vec<usize> = (0..before.len())
        .flat_map(|table| (0..TABLE_ENTRIES).map(move |entry| (table, entry)))
        .filter(|&(table, entry)| before[table][entry] != after[table][entry])
        .map(|(table, _)| table)
        .collect();
    assert_eq!(changed.len(), 1, "one entry changed: the page's");
}

/// Page-only never fills: one fault, one page.
#[test]
fn page_only_fills_nothing() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 4);
    let mut stage2 = backing.stage2(map, MappingPolicy::PageOnly);
    for ipa in [GIB + 32 * MIB, 0x800_0000, 3 * GIB] {
        let mapped = stage2
            .handle_fault(ipa, Access::Read, everything, &mut no_tlb())
            .unwrap();
        assert_eq!(filled(mapped), [0; 4]);
    }
    assert_eq!(leaves(&stage2).len(), 3);
}

/// The pool bound still holds with the fill: it never allocates, so mapping all RAM with it,
/// splitting every block down to pages by annotation, then faulting every page back in,
/// takes exactly the tables `memory_pool_tables` counts and never runs out.
#[test]
fn the_memory_pool_covers_the_fill_and_every_split() {
    let ram = [
        range(GIB - 2 * MIB + 4096, 4 * MIB + 8192),
        range(5 * GIB, 2 * MIB),
    ];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let needed = memory_pool_tables(&map);
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let pages = || {
        ram.iter()
            .flat_map(|region| (region.start..region.end).step_by(PAGE_SIZE as usize))
    };
    for page in pages() {
        stage2
            .handle_fault(page, Access::Read, everything, &mut no_tlb())
            .unwrap();
    }
    // Each of the four 2 MiB windows took one fault, the fill did the rest.
    let stats = stage2.stats();
    assert_eq!(stats.faults - stats.already_mapped, 4);
    for page in pages() {
        stage2
            .set_owner_annotation(page, OwnerId(1), &mut |_| {})
            .unwrap();
    }
    assert!(leaves(&stage2).is_empty());
    for page in pages() {
        stage2.clear_annotation(page).unwrap();
    }
    for page in pages() {
        stage2
            .handle_fault(page, Access::Read, everything, &mut no_tlb())
            .unwrap();
    }
    let stats = stage2.stats();
    assert_eq!(stats.memory_tables, needed);
    assert_eq!(stats.failed, 0);
}
