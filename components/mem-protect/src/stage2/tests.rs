//! Tests of the host stage 2 and of guests' stage 2. Every check reads the tables through
//! [`walker`], which knows only the Arm ARM's descriptor format, never the mapper's internals.
//! [`model`] holds the property test against a reference model; the scenarios here pin down
//! faults, pool sizing and bad input, those in [`changes`] annotation, unmapping and
//! device-pool recycling, those in [`fill`] the largest-block policy's table fill, those in
//! [`guest`] a guest's stage 2, mapped in full, and those in [`aliases`] its shared aliases.

mod aliases;
mod changes;
mod fill;
mod guest;
mod model;
mod walker;

use super::*;
use walker::{DEVICE_ATTRIBUTES, Leaf, MEMORY_ATTRIBUTES, RawView};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Where the tests pretend the pools sit in physical memory.
const MEMORY_PA: u64 = 0x8000_0000_0000;
const DEVICE_PA: u64 = 0x9000_0000_0000;

/// Vec-backed pool memory.
struct Backing {
    memory: Vec<Table>,
    device: Vec<Table>,
}

impl Backing {
    fn new(map: &MemoryMap<'_>, device_tables: usize) -> Self {
        Self {
            memory: vec![[0; TABLE_ENTRIES]; memory_pool_tables(map)],
            device: vec![[0; TABLE_ENTRIES]; device_tables],
        }
    }

    fn stage2<'a>(&'a mut self, map: MemoryMap<'a>, policy: MappingPolicy) -> HostStage2<'a> {
        let pools =
            TablePools::new(&mut self.memory, MEMORY_PA, &mut self.device, DEVICE_PA).unwrap();
        HostStage2::new(pools, map, policy).unwrap()
    }
}

fn range(start: u64, len: u64) -> IpaRange {
    IpaRange::sized(start, len)
}

fn everything(_: IpaRange) -> bool {
    true
}

/// A `host_owns` for a host that owns every page except `foreign`.
fn all_but(foreign: &[u64]) -> impl FnMut(IpaRange) -> bool + '_ {
    move |range| !foreign.iter().any(|page| range.contains(*page))
}

/// A TLB that must not be asked for anything.
fn no_tlb() -> impl FnMut(Invalidation) {
    |what| panic!("unexpected TLB invalidation {what:?}")
}

fn identity(leaf: &Leaf, attributes: u64) {
    assert_eq!(leaf.oa(), leaf.ipa, "{leaf:x?} is not an identity mapping");
    assert_eq!(
        leaf.attributes(),
        attributes,
        "{leaf:x?} has the wrong attributes"
    );
}

fn leaves(stage2: &HostStage2<'_>) -> Vec<Leaf> {
    RawView::of(stage2).contents().0
}

#[test]
fn memory_pool_size_for_1_and_4_gib_of_ram() {
    let size = |ram: &[IpaRange]| memory_pool_tables(&MemoryMap::new(ram, 40).unwrap());
    // Root + one level-1 table + one level-2 table + 512 level-3 tables.
    assert_eq!(size(&[range(GIB, GIB)]), 1 + 1 + 1 + 512);
    // Root + one level-1 table + four level-2 tables + 2048 level-3 tables.
    assert_eq!(size(&[range(GIB, 4 * GIB)]), 1 + 1 + 4 + 2048);
    // An unaligned GiB touches two 1 GiB windows and 513 2 MiB windows.
    assert_eq!(size(&[range(GIB + 2 * MIB + 4096, GIB)]), 1 + 1 + 2 + 513);
    // Two regions sharing windows count them once.
    let shared = [
        range(GIB, 4096),
        range(GIB + 8192, 4096),
        range(GIB + 2 * MIB, 4096),
    ];
    assert_eq!(size(&shared), 1 + 1 + 1 + 2);
    assert_eq!(size(&[]), 1);
    // The default device pool: 1 GiB of MMIO page by page, wherever it lies.
    assert_eq!(DEFAULT_DEVICE_POOL_TABLES, 513 + 2 + 2);
}

#[test]
fn a_pool_of_that_size_maps_all_ram_page_by_page() {
    let ram = [
        range(GIB - 2 * MIB + 4096, 4 * MIB + 8192),
        range(5 * GIB, 2 * MIB),
    ];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let needed = memory_pool_tables(&map);
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::PageOnly);
    for region in ram {
        for page in (region.start..region.end).step_by(PAGE_SIZE as usize) {
            let mapped = stage2
                .handle_fault(page, Access::Read, everything, &mut no_tlb())
                .unwrap();
            assert!(matches!(
                mapped,
                Mapped::New {
                    level: 3,
                    kind: RegionKind::Memory,
                    ..
                }
            ));
        }
    }
    assert_eq!(stage2.stats().memory_tables, needed);
    assert_eq!(stage2.stats().device_tables, 0);
}

#[test]
fn faults_map_the_largest_block_that_fits() {
    // RAM from 1 GiB to 2 GiB + 4 MiB + 8 KiB: a 1 GiB block, 2 MiB blocks, then pages.
    let ram = [range(GIB, GIB + 4 * MIB + 8192)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 4);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let mut fault = |ipa| match stage2
        .handle_fault(ipa, Access::Read, everything, &mut no_tlb())
        .unwrap()
    {
        Mapped::New {
            range,
            level,
            kind,
            filled,
            ..
        } => (range, level, kind, filled),
        Mapped::AlreadyMapped => panic!("{ipa:#x} already mapped"),
    };
    assert_eq!(
        fault(GIB + 0x1234),
        (range(GIB, GIB), 1, RegionKind::Memory, [0; 4])
    );
    // The fill takes the RAM block before it; the one after is only partly RAM.
    assert_eq!(
        fault(2 * GIB + 3 * MIB),
        (
            range(2 * GIB + 2 * MIB, 2 * MIB),
            2,
            RegionKind::Memory,
            [0, 0, 1, 0]
        )
    );
    assert_eq!(
        fault(2 * GIB + 4 * MIB + 4096),
        (
            range(2 * GIB + 4 * MIB + 4096, 4096),
            3,
            RegionKind::Memory,
            [0, 0, 0, 1]
        )
    );
    // MMIO right after RAM: a page, and the fill maps the rest up to the next 2 MiB boundary
    // (512 pages - 2 of RAM - the faulting one); then a 2 MiB block, and the fill maps the
    // rest of that GiB (512 - the RAM block and the table before - this one).
    assert_eq!(
        fault(2 * GIB + 4 * MIB + 8192),
        (
            range(2 * GIB + 4 * MIB + 8192, 4096),
            3,
            RegionKind::Device,
            [0, 0, 0, 509]
        )
    );
    assert_eq!(
        fault(2 * GIB + 7 * MIB),
        (
            range(2 * GIB + 6 * MIB, 2 * MIB),
            2,
            RegionKind::Device,
            [0, 0, 508, 0]
        )
    );
    // MMIO below RAM: its gap is exactly the GiB, so the fill finds nothing else in it.
    assert_eq!(
        fault(0x900_0000),
        (range(0, GIB), 1, RegionKind::Device, [0; 4])
    );
    let stats = stage2.stats();
    assert_eq!(stats.blocks_mapped, [0, 2, 2 + 1 + 508, 2 + 1 + 509]);
    assert_eq!(stats.faults, 6);
    for leaf in leaves(&stage2) {
        let memory = ram[0].contains(leaf.ipa);
        identity(
            &leaf,
            if memory {
                MEMORY_ATTRIBUTES
            } else {
                DEVICE_ATTRIBUTES
            },
        );
    }
}

#[test]
fn pages_owned_by_someone_else_break_up_blocks_and_stay_unmapped() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let foreign = [GIB + 5 * MIB + 0x3000];
    let mapped = stage2.handle_fault(
        GIB + 2 * MIB,
        Access::Read,
        all_but(&foreign),
        &mut no_tlb(),
    );
    // The table fill maps every other 2 MiB block of the GiB but the one holding the foreign
    // page (512 - the faulting one - that one = 510).
    assert_eq!(
        mapped.unwrap(),
        Mapped::New {
            range: range(GIB + 2 * MIB, 2 * MIB),
            level: 2,
            kind: RegionKind::Memory,
            recycled: false,
            filled: [0, 0, 510, 0],
        }
    );
    assert_eq!(stage2.lookup(GIB + 4 * MIB).unwrap(), Entry::Unmapped);
    // That block faults later, page by page: its table is filled but for the foreign page.
    let mapped = stage2.handle_fault(
        GIB + 5 * MIB,
        Access::Read,
        all_but(&foreign),
        &mut no_tlb(),
    );
    assert!(matches!(
        mapped.unwrap(),
        Mapped::New {
            level: 3,
            filled: [0, 0, 0, 510],
            ..
        }
    ));
    let refused = stage2.handle_fault(
        foreign[0] + 12,
        Access::Read,
        all_but(&foreign),
        &mut no_tlb(),
    );
    assert_eq!(refused, Err(Stage2Error::NotHostOwned(foreign[0])));
    assert_eq!(stage2.lookup(foreign[0]).unwrap(), Entry::Unmapped);
    assert_eq!(RawView::of(&stage2).translate(foreign[0]), None);
    let stats = stage2.stats();
    assert_eq!(stats.refused, 1);
    assert_eq!(stats.blocks_mapped, [0, 0, 511, 511]);
    let covered: u64 = leaves(&stage2).iter().map(Leaf::size).sum();
    assert_eq!(covered, GIB - PAGE_SIZE);
}

#[test]
fn a_fault_on_a_mapped_ipa_is_a_no_op() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    stage2
        .handle_fault(GIB + 0x5000, Access::Read, everything, &mut no_tlb())
        .unwrap();
    let before = stage2.pools().raw(PoolKind::Memory).0.to_vec();
    let stats = stage2.stats();
    let mut asked = 0;
    let again = stage2.handle_fault(
        GIB + 0x3000_0000,
        Access::Read,
        |_| {
            asked += 1;
            true
        },
        &mut no_tlb(),
    );
    assert_eq!(again, Ok(Mapped::AlreadyMapped));
    assert_eq!(asked, 0, "ownership is not consulted for a mapped IPA");
    assert_eq!(stage2.pools().raw(PoolKind::Memory).0, &before[..]);
    let after = stage2.stats();
    assert_eq!(after.already_mapped, 1);
    assert_eq!(
        (after.blocks_mapped, after.memory_tables),
        (stats.blocks_mapped, stats.memory_tables)
    );
}

#[test]
fn page_only_policy_maps_only_pages() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 44).unwrap();
    let mut backing = Backing::new(&map, 16);
    let mut stage2 = backing.stage2(map, MappingPolicy::PageOnly);
    for ipa in [
        GIB,
        GIB + 0x20_1000,
        0,
        0x900_0000,
        4 * GIB,
        600 * GIB,
        (1 << 44) - 4096,
    ] {
        let mapped = stage2
            .handle_fault(ipa, Access::Read, everything, &mut no_tlb())
            .unwrap();
        assert!(
            matches!(mapped, Mapped::New { level: 3, .. }),
            "{ipa:#x}: {mapped:?}"
        );
    }
    let found = leaves(&stage2);
    assert_eq!(found.len(), 7);
    assert!(found.iter().all(|leaf| leaf.level == 3));
    assert_eq!(stage2.stats().blocks_mapped, [0, 0, 0, 7]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let good = [range(GIB, GIB)];
    assert_eq!(
        MemoryMap::new(&good, 39).unwrap_err(),
        SetupError::IpaBits(39)
    );
    assert_eq!(
        MemoryMap::new(&good, 49).unwrap_err(),
        SetupError::IpaBits(49)
    );
    let cases = [
        (
            vec![range(GIB + 1, GIB)],
            SetupError::RamMisaligned { index: 0 },
        ),
        (vec![range(GIB, 0)], SetupError::RamEmpty { index: 0 }),
        (
            vec![range(2 * GIB, GIB), range(GIB, GIB)],
            SetupError::RamUnsorted { index: 1 },
        ),
        (
            vec![range(GIB, GIB), range((1 << 40) - 4096, 8192)],
            SetupError::RamBeyondIpaLimit { index: 1 },
        ),
    ];
    for (ram, error) in cases {
        assert_eq!(MemoryMap::new(&ram, 40).unwrap_err(), error);
    }

    let mut memory = vec![[0; TABLE_ENTRIES]; 4];
    let mut device = vec![[0; TABLE_ENTRIES]; 4];
    let pools = |memory_pa, device_pa, memory: &mut [Table], device: &mut [Table]| {
        TablePools::new(memory, memory_pa, device, device_pa).err()
    };
    assert_eq!(
        pools(0x1001, 0x10_0000, &mut memory, &mut device),
        Some(SetupError::PoolMisaligned(PoolKind::Memory))
    );
    assert_eq!(
        pools(0x1000, 1 << 48, &mut memory, &mut device),
        Some(SetupError::PoolBeyondOutputAddress(PoolKind::Device))
    );
    assert_eq!(
        pools(0x1000, 0x4000, &mut memory, &mut device),
        Some(SetupError::PoolsOverlap)
    );
    assert_eq!(pools(0x1000, 0x5000, &mut memory, &mut device), None);
    assert_eq!(pools(0x1000, 0x2000, &mut memory, &mut []), None);

    let map = MemoryMap::new(&good, 40).unwrap();
    let small = TablePools::new(&mut memory, 0x1000, &mut device, 0x10_0000).unwrap();
    let error = HostStage2::new(small, map, MappingPolicy::LargestBlock).err();
    assert_eq!(
        error,
        Some(SetupError::MemoryPoolTooSmall {
            needed: 515,
            given: 4
        })
    );

    let mut backing = Backing::new(&map, 1);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    assert_eq!(
        stage2.handle_fault(1 << 40, Access::Read, everything, &mut no_tlb()),
        Err(Stage2Error::OutsideIpaSpace(1 << 40))
    );
    assert_eq!(
        stage2.handle_fault(u64::MAX, Access::Read, everything, &mut no_tlb()),
        Err(Stage2Error::OutsideIpaSpace(u64::MAX))
    );
    assert_eq!(stage2.lookup(u64::MAX), Ok(Entry::Unmapped));
    assert_eq!(stage2.stats().failed, 2);
}

#[test]
fn memory_map_regions_and_gaps() {
    let ram = [range(GIB, GIB), range(2 * GIB, 4096), range(3 * GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let region = |ipa| map.region_around(ipa);
    assert_eq!(
        region(0),
        Region {
            range: range(0, GIB),
            kind: RegionKind::Device
        }
    );
    assert_eq!(
        region(GIB),
        Region {
            range: ram[0],
            kind: RegionKind::Memory
        }
    );
    assert_eq!(
        region(2 * GIB),
        Region {
            range: ram[1],
            kind: RegionKind::Memory
        }
    );
    assert_eq!(
        region(2 * GIB + 4096),
        Region {
            range: IpaRange::new(2 * GIB + 4096, 3 * GIB),
            kind: RegionKind::Device
        }
    );
    assert_eq!(
        region(5 * GIB),
        Region {
            range: IpaRange::new(4 * GIB, 1 << 40),
            kind: RegionKind::Device
        }
    );
    assert!(map.intersects_ram(&range(2 * GIB - 4096, 8192)));
    assert!(!map.intersects_ram(&range(2 * GIB + 4096, GIB - 4096)));
    assert!(!map.within_ram(&range(2 * GIB - 4096, 8192)));
}

#[test]
fn root_is_the_memory_pools_first_table() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 4);
    backing.memory[0] = [0x55; TABLE_ENTRIES];
    let stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    assert_eq!(stage2.root_pa(), MEMORY_PA);
    let (memory, pa) = stage2.pools().raw(PoolKind::Memory);
    assert_eq!(pa, MEMORY_PA);
    assert!(
        memory[0].iter().all(|&desc| desc == 0),
        "the root is zeroed"
    );
}

/// A fault that mapping cannot cure is refused, never answered "already mapped": resuming
/// would fault again the same way, forever (a fetch past the end of RAM used to spin).
#[test]
fn a_fault_the_mapping_does_not_permit_is_refused_not_retried() {
    let ram = [range(GIB, GIB)];
    let map = MemoryMap::new(&ram, 40).unwrap();
    let mut backing = Backing::new(&map, 0);
    let mut stage2 = backing.stage2(map, MappingPolicy::LargestBlock);
    let past_ram = 2 * GIB;
    let mmio_gap = 0x0900_0000;

    // A fetch never creates a device mapping, wherever the device space is.
    for ipa in [past_ram, past_ram + 0x123, mmio_gap] {
        assert_eq!(
            stage2.handle_fault(ipa, Access::Fetch, everything, &mut no_tlb()),
            Err(Stage2Error::NotPermitted {
                ipa: ipa & !0xfff,
                access: Access::Fetch
            })
        );
        assert_eq!(stage2.lookup(ipa).unwrap(), Entry::Unmapped);
    }

    // Device pages a read mapped stay unexecutable: a later fetch is refused, not resumed.
    for access in [Access::Read, Access::Write] {
        stage2
            .handle_fault(past_ram, access, everything, &mut no_tlb())
            .unwrap();
    }
    assert_eq!(
        stage2.handle_fault(past_ram + 8, Access::Fetch, everything, &mut no_tlb()),
        Err(Stage2Error::NotPermitted {
            ipa: past_ram,
            access: Access::Fetch
        })
    );

    // RAM mapped by a read serves writes and fetches as a race already won.
    stage2
        .handle_fault(GIB + 0x5000, Access::Read, everything, &mut no_tlb())
        .unwrap();
    for access in [Access::Read, Access::Write, Access::Fetch] {
        assert_eq!(
            stage2.handle_fault(GIB + 0x6000, access, everything, &mut no_tlb()),
            Ok(Mapped::AlreadyMapped)
        );
    }
}

#[test]
fn leaf_attributes_say_which_accesses_they_permit() {
    use super::descriptor::Attributes;
    for access in [Access::Read, Access::Write, Access::Fetch] {
        assert!(Attributes::MEMORY.permits(access));
    }
    assert!(Attributes::DEVICE.permits(Access::Read));
    assert!(Attributes::DEVICE.permits(Access::Write));
    assert!(!Attributes::DEVICE.permits(Access::Fetch));
    let read_only = Attributes {
        s2ap: 0b01,
        ..Attributes::MEMORY
    };
    assert!(read_only.permits(Access::Read) && read_only.permits(Access::Fetch));
    assert!(!read_only.permits(Access::Write));
}
