//! Scenarios for what changes existing mappings: device-pool recycling, owner annotations
//! (with block splits) and unmapping.

use super::walker::{DEVICE_ATTRIBUTES, Leaf, MEMORY_ATTRIBUTES, RawView};
use super::*;

/// RAM at 1 GiB (64 MiB), a 48-bit IPA space, and a device pool of `device_tables`.
fn far_device_setup(device_tables: usize) -> (Backing, [IpaRange; 1]) {
    let ram = [range(GIB, 64 * MIB)];
    let backing = Backing::new(&MemoryMap::new(&ram, 48).unwrap(), device_tables);
    (backing, ram)
}

#[test]
fn device_pool_exhaustion_recycles_every_device_mapping_and_retries() {
    let (mut backing, ram) = far_device_setup(1);
    let map = MemoryMap::new(&ram, 48).unwrap();
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let foreign = [GIB + 3 * MIB];
    // RAM mapped as blocks and pages (the fill maps all of it but the foreign page in two
    // faults), and device blocks in a memory-pool table (4 GiB, and the fill's 2 to 511 GiB).
    for ipa in [GIB, GIB + 2 * MIB, 4 * GIB] {
        stage2
            .handle_fault(ipa, Access::Read, all_but(&foreign), &mut no_tlb())
            .unwrap();
    }
    let ram_before: Vec<Leaf> = leaves(&stage2)
        .into_iter()
        .filter(|leaf| ram[0].contains(leaf.ipa))
        .collect();
    let count = |level| ram_before.iter().filter(|leaf| leaf.level == level).count();
    assert_eq!((count(2), count(3)), (31, 511));
    assert_eq!(RawView::of(&stage2).translate(foreign[0]), None);
    identity(
        &RawView::of(&stage2).translate(5 * GIB).unwrap(),
        DEVICE_ATTRIBUTES,
    );
    // 512 GiB takes the one device-pool table (a level-1 table for its 512 GiB), which the
    // fill maps whole.
    let first = stage2
        .handle_fault(512 * GIB, Access::Read, everything, &mut no_tlb())
        .unwrap();
    assert!(matches!(
        first,
        Mapped::New {
            level: 1,
            recycled: false,
            filled: [0, 511, 0, 0],
            ..
        }
    ));
    assert_eq!(stage2.stats().device_tables, 1);

    // 1 TiB needs another: every device mapping goes, the whole VMID is invalidated, retry.
    let mut log = Vec::new();
    let second = stage2.handle_fault(1024 * GIB + 0x1000, Access::Read, everything, &mut |w| {
        log.push(w)
    });
    assert_eq!(
        second.unwrap(),
        Mapped::New {
            range: range(1024 * GIB, GIB),
            level: 1,
            kind: RegionKind::Device,
            recycled: true,
            filled: [0, 511, 0, 0],
        }
    );
    assert_eq!(log, [Invalidation::All]);
    let view = RawView::of(&stage2);
    identity(&view.translate(1024 * GIB).unwrap(), DEVICE_ATTRIBUTES);
    identity(&view.translate(1535 * GIB).unwrap(), DEVICE_ATTRIBUTES);
    assert_eq!(
        view.translate(512 * GIB),
        None,
        "old device mapping dropped"
    );
    for ipa in [4 * GIB, 5 * GIB, 511 * GIB] {
        assert_eq!(
            view.translate(ipa),
            None,
            "device mapping in a memory-pool table dropped"
        );
    }
    let ram_after: Vec<Leaf> = leaves(&stage2)
        .into_iter()
        .filter(|leaf| ram[0].contains(leaf.ipa))
        .collect();
    assert_eq!(ram_after, ram_before, "RAM mappings untouched");
    let stats = stage2.stats();
    assert_eq!(
        (
            stats.device_recycles,
            stats.device_tables,
            stats.device_tables_peak
        ),
        (1, 1, 1)
    );

    // The old device faults again later and is mapped again, at the new one's expense.
    let again = stage2
        .handle_fault(512 * GIB, Access::Read, everything, &mut |w| log.push(w))
        .unwrap();
    assert!(matches!(
        again,
        Mapped::New {
            level: 1,
            recycled: true,
            ..
        }
    ));
    assert_eq!(RawView::of(&stage2).translate(1024 * GIB), None);
    assert_eq!(stage2.stats().device_recycles, 2);
    for leaf in leaves(&stage2) {
        identity(
            &leaf,
            if ram[0].contains(leaf.ipa) {
                MEMORY_ATTRIBUTES
            } else {
                DEVICE_ATTRIBUTES
            },
        );
    }
}

#[test]
fn a_device_mapping_too_big_for_the_pool_fails_after_one_recycle() {
    let (mut backing, ram) = far_device_setup(2);
    let map = MemoryMap::new(&ram, 48).unwrap();
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    stage2
        .handle_fault(GIB, Access::Read, everything, &mut no_tlb())
        .unwrap();
    let ram_before = leaves(&stage2);
    // A foreign page next to it forces a level-1, a level-2 and a level-3 table: three.
    let foreign = [512 * GIB + 0x2000];
    let mut log = Vec::new();
    let result = stage2.handle_fault(512 * GIB, Access::Read, all_but(&foreign), &mut |w| {
        log.push(w)
    });
    assert_eq!(result, Err(Stage2Error::OutOfTables(PoolKind::Device)));
    assert_eq!(log, [Invalidation::All]);
    assert_eq!(leaves(&stage2), ram_before);
    let stats = stage2.stats();
    assert_eq!(
        (stats.failed, stats.device_tables, stats.device_recycles),
        (1, 0, 1)
    );
    // With no device pool at all, the same holds.
    let (mut backing, ram) = far_device_setup(0);
    let mut stage2 = backing.stage2(
        MemoryMap::new(&ram, 48).unwrap(),
        MappingPolicy::LargestBlock,
    );
    let result = stage2.handle_fault(512 * GIB, Access::Read, everything, &mut |_| {});
    assert_eq!(result, Err(Stage2Error::OutOfTables(PoolKind::Device)));
}

#[test]
fn annotating_a_page_splits_a_2_mib_block_and_keeps_the_other_511_pages() {
    let ram = [range(GIB + 2 * MIB, 4 * MIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let block = range(GIB + 2 * MIB, 2 * MIB);
    stage2
        .handle_fault(block.start, Access::Read, everything, &mut no_tlb())
        .unwrap();
    let before = RawView::of(&stage2).translate(block.start).unwrap();
    assert_eq!((before.ipa, before.level), (block.start, 2));

    let page = block.start + 0x5000;
    let mut log = Vec::new();
    stage2
        .set_owner_annotation(page, OwnerId(0xabcd_1234), &mut |w| log.push(w))
        .unwrap();
    assert_eq!(
        log,
        [Invalidation::Range(block)],
        "break-before-make invalidates the block"
    );

    let view = RawView::of(&stage2);
    // The fill mapped the RAM's other 2 MiB block with the first fault; it stays a block.
    let (pages, other): (Vec<Leaf>, Vec<Leaf>) = view
        .contents()
        .0
        .into_iter()
        .partition(|leaf| block.contains(leaf.ipa));
    assert_eq!((other[0].ipa, other[0].level), (block.end, 2));
    assert_eq!(pages.len(), 511);
    for leaf in &pages {
        assert!(block.contains(leaf.ipa) && leaf.ipa != page && leaf.level == 3);
        identity(leaf, before.attributes());
    }
    assert_eq!(view.annotations(), [(page, 0xabcd_1234)]);
    let (_, invalid) = view.contents();
    assert_eq!(
        invalid,
        [(page, 3, (0xabcd_1234 << 32) | 0b0010)],
        "annotation layout"
    );
    assert_eq!(
        stage2.lookup(page).unwrap(),
        Entry::Annotated(OwnerId(0xabcd_1234))
    );
    assert_eq!(
        stage2.lookup(page + 4096 + 8).unwrap(),
        Entry::Mapped {
            pa: page + 4096 + 8,
            level: 3,
            attrs: Attributes::MEMORY
        }
    );
    let refused = stage2.handle_fault(page, Access::Read, everything, &mut no_tlb());
    assert_eq!(refused, Err(Stage2Error::OwnedBy(OwnerId(0xabcd_1234))));

    // Given back: the annotation goes, and the next fault maps the page again.
    assert_eq!(
        stage2.clear_annotation(page),
        Ok(Some(OwnerId(0xabcd_1234)))
    );
    assert_eq!(stage2.clear_annotation(page), Ok(None));
    let mapped = stage2
        .handle_fault(page, Access::Read, everything, &mut no_tlb())
        .unwrap();
    assert_eq!(
        mapped,
        Mapped::New {
            range: range(page, 4096),
            level: 3,
            kind: RegionKind::Memory,
            recycled: false,
            filled: [0; 4],
        }
    );
}

#[test]
fn annotating_a_page_splits_a_1_gib_block_down_to_pages() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    stage2
        .handle_fault(GIB, Access::Read, everything, &mut no_tlb())
        .unwrap();
    let page = GIB + 7 * MIB;
    let mut log = Vec::new();
    stage2
        .set_owner_annotation(page, OwnerId(7), &mut |w| log.push(w))
        .unwrap();
    assert_eq!(log, [Invalidation::Range(range(GIB, GIB))]);
    let found = leaves(&stage2);
    assert_eq!(found.iter().filter(|leaf| leaf.level == 2).count(), 511);
    assert_eq!(found.iter().filter(|leaf| leaf.level == 3).count(), 511);
    let covered: u64 = found.iter().map(Leaf::size).sum();
    assert_eq!(covered, GIB - 4096);
    found
        .iter()
        .for_each(|leaf| identity(leaf, MEMORY_ATTRIBUTES));
    assert_eq!(stage2.stats().memory_tables, 1 + 1 + 1 + 1);
}

#[test]
fn annotating_pages_that_are_mapped_empty_or_annotated() {
    let ram = [range(GIB, 2 * MIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 2);
    let mut stage2 = backing.stage2(map, MappingPolicy::PageOnly);
    stage2
        .handle_fault(GIB, Access::Read, everything, &mut no_tlb())
        .unwrap();
    let mut log = Vec::new();
    stage2
        .set_owner_annotation(GIB, OwnerId(1), &mut |w| log.push(w))
        .unwrap();
    assert_eq!(log, [Invalidation::Range(range(GIB, 4096))]);
    // Empty and already-annotated entries need no invalidation.
    stage2
        .set_owner_annotation(GIB + 4096, OwnerId(2), &mut no_tlb())
        .unwrap();
    stage2
        .set_owner_annotation(GIB, OwnerId(3), &mut no_tlb())
        .unwrap();
    // An annotation in MMIO space, where no table exists yet.
    stage2
        .set_owner_annotation(0x900_0000, OwnerId(4), &mut no_tlb())
        .unwrap();
    let mut found = RawView::of(&stage2).annotations();
    found.sort();
    assert_eq!(found, [(0x900_0000, 4), (GIB, 3), (GIB + 4096, 2)]);
    assert_eq!(
        stage2.set_owner_annotation(GIB + 1, OwnerId(1), &mut no_tlb()),
        Err(Stage2Error::Misaligned(GIB + 1))
    );
    assert_eq!(
        stage2.set_owner_annotation(1 << 40, OwnerId(1), &mut no_tlb()),
        Err(Stage2Error::OutsideIpaSpace(1 << 40))
    );
}

#[test]
fn unmap_removes_overlapping_leaves_and_keeps_annotations() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let foreign = [GIB + 0x3000];
    // One fault maps pages for the first 2 MiB (the foreign page aside) and, by the fill,
    // 2 MiB blocks for the rest of the GiB.
    stage2
        .handle_fault(GIB, Access::Read, all_but(&foreign), &mut no_tlb())
        .unwrap();
    stage2
        .set_owner_annotation(foreign[0], OwnerId(9), &mut no_tlb())
        .unwrap();
    let mut log = Vec::new();
    let removed = stage2
        .unmap(range(GIB + 0x1000, 3 * MIB), &mut |w| log.push(w))
        .unwrap();
    assert_eq!(removed, Some(range(GIB + 0x1000, 4 * MIB - 0x1000)));
    // Each page from the second on (the foreign one holds no leaf), then the whole block.
    let mut expected: Vec<Invalidation> = (1..512)
        .filter(|&page| page != 3)
        .map(|page| Invalidation::Range(range(GIB + page * 4096, 4096)))
        .collect();
    expected.push(Invalidation::Range(range(GIB + 2 * MIB, 2 * MIB)));
    assert_eq!(log, expected);
    let remaining: Vec<u64> = leaves(&stage2).iter().map(|leaf| leaf.ipa).collect();
    assert_eq!(remaining.len(), 1 + 510);
    assert_eq!(remaining[..2], [GIB, GIB + 4 * MIB]);
    assert_eq!(
        stage2.lookup(foreign[0]).unwrap(),
        Entry::Annotated(OwnerId(9))
    );
    assert_eq!(stage2.unmap(range(0, 4096), &mut no_tlb()), Ok(None));
    assert_eq!(
        stage2.unmap(range(0, 100), &mut no_tlb()),
        Err(Stage2Error::Misaligned(100))
    );
    assert_eq!(
        stage2.unmap(range(0, 2 << 40), &mut no_tlb()),
        Err(Stage2Error::OutsideIpaSpace(2 << 40))
    );
}
