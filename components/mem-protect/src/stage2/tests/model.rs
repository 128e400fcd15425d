//! The property test: random sequences of faults, annotations, clears, unmaps and recycles,
//! run on the mapper and on a reference model (sets of table windows, leaves and annotations),
//! with the tables walked after every step and compared with the model.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::select;

use super::super::*;
use super::walker::{DEVICE_ATTRIBUTES, Leaf, MEMORY_ATTRIBUTES, RawView};
use super::{Backing, GIB, MIB};

const BITS: u8 = 42;
const LIMIT: u64 = 1 << BITS;

/// RAM with a 1 GiB-aligned GiB, unaligned ends, a small aligned region and an unaligned one.
const RAM: [IpaRange; 3] = [
    IpaRange::new(GIB, 2 * GIB + 4 * MIB + 0x2000),
    IpaRange::new(2 * GIB + 6 * MIB, 2 * GIB + 8 * MIB),
    IpaRange::new(4 * GIB + 0x3000, 4 * GIB + 2 * MIB + 0x5000),
];

fn size(level: u8) -> u64 {
    1 << (12 + 9 * (3 - u32::from(level)))
}

fn align(ipa: u64, level: u8) -> u64 {
    ipa & !(size(level) - 1)
}

/// The range an entry at `level` covers around `ipa`.
fn window(level: u8, ipa: u64) -> IpaRange {
    IpaRange::sized(align(ipa, level), size(level))
}

fn free_of(foreign: &BTreeSet<u64>, range: &IpaRange) -> bool {
    foreign.range(range.start..range.end).next().is_none()
}

struct Model {
    policy: MappingPolicy,
    device_cap: usize,
    /// Entries that are table descriptors, as (level of the entry, first IPA it covers).
    tables: BTreeSet<(u8, u64)>,
    /// Valid leaves by first IPA.
    leaves: BTreeMap<u64, (u8, RegionKind)>,
    annotations: BTreeMap<u64, u32>,
    /// Leaves mapped by faults, by level, as [`Stats::blocks_mapped`] counts them.
    mapped: [u64; 4],
}

impl Model {
    fn region(ipa: u64) -> (IpaRange, RegionKind) {
        if let Some(ram) = RAM.iter().find(|ram| ram.contains(ipa)) {
            return (*ram, RegionKind::Memory);
        }
        let start = RAM
            .iter()
            .map(|ram| ram.end)
            .filter(|end| *end <= ipa)
            .max()
            .unwrap_or(0);
        let end = RAM
            .iter()
            .map(|ram| ram.start)
            .filter(|start| *start > ipa)
            .min()
            .unwrap_or(LIMIT);
        (IpaRange::new(start, end), RegionKind::Device)
    }

    fn has_ram(range: &IpaRange) -> bool {
        RAM.iter().any(|ram| ram.overlaps(range))
    }

    fn device_tables(&self) -> usize {
        self.tables
            .iter()
            .filter(|(level, ipa)| !Self::has_ram(&window(*level, *ipa)))
            .count()
    }

    fn memory_tables(&self) -> usize {
        1 + self.tables.len() - self.device_tables()
    }

    fn leaf_of(&self, page: u64) -> Option<(u64, u8, RegionKind)> {
        (1..=3).find_map(|level| {
            let base = align(page, level);
            let (found, kind) = *self.leaves.get(&base)?;
            (found == level).then_some((base, level, kind))
        })
    }

    /// The level of the first entry on the walk to `page` that is not a table descriptor.
    fn slot_level(&self, page: u64) -> u8 {
        (0..3)
            .find(|&level| !self.tables.contains(&(level, align(page, level))))
            .unwrap_or(3)
    }

    /// New tables hanging below entries at `levels`, if the device pool has room for them.
    fn new_tables(&self, page: u64, levels: std::ops::Range<u8>) -> Option<Vec<(u8, u64)>> {
        let new: Vec<_> = levels.map(|level| (level, align(page, level))).collect();
        let device = new
            .iter()
            .filter(|(level, ipa)| !Self::has_ram(&window(*level, *ipa)))
            .count();
        (self.device_tables() + device <= self.device_cap).then_some(new)
    }

    fn fault(&mut self, ipa: u64, foreign: &BTreeSet<u64>) -> Result<Mapped, Stage2Error> {
        if ipa >= LIMIT {
            return Err(Stage2Error::OutsideIpaSpace(ipa));
        }
        let page = align(ipa, 3);
        if self.leaf_of(page).is_some() {
            return Ok(Mapped::AlreadyMapped);
        }
        if let Some(owner) = self.annotations.get(&page) {
            return Err(Stage2Error::OwnedBy(OwnerId(*owner)));
        }
        if foreign.contains(&page) {
            return Err(Stage2Error::NotHostOwned(page));
        }
        if let Some(mapped) = self.try_map(page, foreign, false) {
            return Ok(mapped);
        }
        self.recycle();
        self.try_map(page, foreign, true)
            .ok_or(Stage2Error::OutOfTables(PoolKind::Device))
    }

    fn try_map(&mut self, page: u64, foreign: &BTreeSet<u64>, recycled: bool) -> Option<Mapped> {
        let (region, kind) = Self::region(page);
        let slot = self.slot_level(page);
        let level = match self.policy {
            MappingPolicy::PageOnly => 3,
            MappingPolicy::LargestBlock => (slot.max(1)..3)
                .find(|&level| {
                    let block = window(level, page);
                    region.contains_range(&block) && free_of(foreign, &block)
                })
                .unwrap_or(3),
        };
        let new = self.new_tables(page, slot..level)?;
        self.tables.extend(new);
        let range = window(level, page);
        self.leaves.insert(range.start, (level, kind));
        self.mapped[usize::from(level)] += 1;
        let filled = match self.policy {
            MappingPolicy::PageOnly => [0; 4],
            MappingPolicy::LargestBlock => self.fill(page, slot..=level, region, kind, foreign),
        };
        Some(Mapped::New {
            range,
            level,
            kind,
            recycled,
            filled,
        })
    }

    /// The table fill: in the tables at `levels` on the walk to `page`, every entry with no
    /// table, leaf or annotation whose block lies in `region` and holds no foreign page.
    fn fill(
        &mut self,
        page: u64,
        levels: std::ops::RangeInclusive<u8>,
        region: IpaRange,
        kind: RegionKind,
        foreign: &BTreeSet<u64>,
    ) -> [u16; 4] {
        let mut filled = [0; 4];
        for level in levels.filter(|level| *level >= 1) {
            let table = window(level - 1, page);
            for start in (0..512).map(|i| table.start + i * size(level)) {
                let block = IpaRange::sized(start, size(level));
                let annotated = level == 3 && self.annotations.contains_key(&start);
                let taken = self.tables.contains(&(level, start))
                    || self.leaves.contains_key(&start)
                    || annotated;
                if !taken && region.contains_range(&block) && free_of(foreign, &block) {
                    self.leaves.insert(start, (level, kind));
                    filled[usize::from(level)] += 1;
                    self.mapped[usize::from(level)] += 1;
                }
            }
        }
        filled
    }

    fn recycle(&mut self) {
        self.leaves
            .retain(|_, (_, kind)| *kind == RegionKind::Memory);
        self.tables
            .retain(|(level, ipa)| Self::has_ram(&window(*level, *ipa)));
        self.annotations
            .retain(|page, _| Self::has_ram(&window(2, *page)));
    }

    fn annotate(&mut self, page: u64, owner: u32) -> Result<(), Stage2Error> {
        let out_of_tables = Stage2Error::OutOfTables(PoolKind::Device);
        if let Some((base, level, kind)) = self.leaf_of(page) {
            let new = self.new_tables(page, level..3).ok_or(out_of_tables)?;
            self.leaves.remove(&base);
            for sub_level in level + 1..=3 {
                let parent = align(page, sub_level - 1);
                for sub in (0..512).map(|i| parent + i * size(sub_level)) {
                    if sub != align(page, sub_level) {
                        self.leaves.insert(sub, (sub_level, kind));
                    }
                }
            }
            self.tables.extend(new);
        } else if !self.annotations.contains_key(&page) {
            let new = self
                .new_tables(page, self.slot_level(page)..3)
                .ok_or(out_of_tables)?;
            self.tables.extend(new);
        }
        self.annotations.insert(page, owner);
        Ok(())
    }

    fn unmap(&mut self, range: &IpaRange) -> Option<IpaRange> {
        let removed: Vec<IpaRange> = self
            .leaves
            .iter()
            .map(|(base, (level, _))| IpaRange::sized(*base, size(*level)))
            .filter(|leaf| leaf.overlaps(range))
            .collect();
        for leaf in &removed {
            self.leaves.remove(&leaf.start);
        }
        let first = removed.first()?;
        Some(IpaRange::new(first.start, removed.last()?.end))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Fault(u64),
    Annotate(u64, u32),
    /// Annotate a page inside the n-th mapped leaf (modulo their number), `offset` pages in.
    AnnotateMapped(usize, u64, u32),
    /// Give the n-th annotated page (modulo their number) back to the host.
    Clear(usize),
    Unmap(u64, u64),
    Recycle,
}

fn interesting() -> Vec<u64> {
    let mut addresses = vec![
        0,
        512 * GIB,
        513 * GIB + 2 * MIB,
        1024 * GIB,
        2048 * GIB + 5 * MIB,
    ];
    addresses.extend([LIMIT - 0x1000, LIMIT, 3 * GIB, 4 * GIB]);
    for ram in RAM {
        addresses.extend([ram.start, ram.end, ram.start - 2 * MIB, ram.end + 2 * MIB]);
        addresses.extend([align(ram.start, 2), align(ram.end + 2 * MIB - 1, 2)]);
    }
    addresses
}

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        5 => (select(interesting()), -3i64..3).prop_map(|(base, pages)| base.wrapping_add_signed(pages * 0x1000)),
        2 => RAM[0].start..RAM[0].end,
        1 => RAM[2].start - 4 * MIB..RAM[2].end + 4 * MIB,
        1 => 0..LIMIT + GIB,
    ]
}

fn page() -> impl Strategy<Value = u64> {
    address().prop_map(|address| align(address % LIMIT, 3))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (address(), 0..0x1000u64).prop_map(|(address, offset)| Op::Fault(address.wrapping_add(offset))),
        2 => (page(), 1..1000u32).prop_map(|(page, owner)| Op::Annotate(page, owner)),
        2 => (any::<usize>(), any::<u64>(), 1..1000u32)
            .prop_map(|(nth, offset, owner)| Op::AnnotateMapped(nth, offset, owner)),
        1 => any::<usize>().prop_map(Op::Clear),
        1 => (page(), 1..1200u64).prop_map(|(page, pages)| Op::Unmap(page, pages)),
        1 => Just(Op::Recycle),
    ]
}

fn policy() -> impl Strategy<Value = MappingPolicy> {
    prop_oneof![
        Just(MappingPolicy::LargestBlock),
        Just(MappingPolicy::PageOnly)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mapper_matches_the_model(
        policy in policy(),
        device_cap in 0usize..8,
        foreign in proptest::collection::btree_set(page(), 0..12),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(policy, device_cap, foreign, ops)?;
    }
}

fn run(
    policy: MappingPolicy,
    device_cap: usize,
    mut foreign: BTreeSet<u64>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let map = MemoryMap::new(&RAM, BITS).unwrap();
    let mut backing = Backing::new(&map, device_cap);
    let mut stage2 = backing.stage2(map, policy);
    let mut model = Model {
        policy,
        device_cap,
        tables: BTreeSet::new(),
        leaves: BTreeMap::new(),
        annotations: BTreeMap::new(),
        mapped: [0; 4],
    };
    for mut op in ops {
        if let Op::AnnotateMapped(nth, offset, owner) = op {
            let leaves: Vec<(u64, u8)> = model
                .leaves
                .iter()
                .map(|(ipa, (level, _))| (*ipa, *level))
                .collect();
            let Some(&(ipa, level)) = leaves.get(nth % leaves.len().max(1)) else {
                continue;
            };
            op = Op::Annotate(ipa + offset % (size(level) / 0x1000) * 0x1000, owner);
        }
        let before = RawView::of(&stage2).contents().0;
        let mut log = Vec::new();
        match op {
            Op::Fault(ipa) => {
                let expected = model.fault(ipa, &foreign);
                let owns = |range: IpaRange| free_of(&foreign, &range);
                let got = stage2.handle_fault(ipa, Access::Read, owns, &mut |what| log.push(what));
                prop_assert_eq!(got, expected, "fault at {:#x}", ipa);
                if got.is_ok() {
                    let leaf = RawView::of(&stage2).translate(ipa);
                    prop_assert!(leaf.is_some(), "{:#x} does not translate", ipa);
                    let leaf = leaf.unwrap();
                    prop_assert_eq!(leaf.oa() + (ipa - leaf.ipa), ipa);
                }
            }
            Op::Annotate(page, owner) => {
                let was_foreign = !foreign.insert(page);
                let mut expected = model.annotate(page, owner);
                if expected.is_err() {
                    model.recycle();
                    expected = model.annotate(page, owner);
                }
                let mut got =
                    stage2.set_owner_annotation(page, OwnerId(owner), &mut |w| log.push(w));
                if got == Err(Stage2Error::OutOfTables(PoolKind::Device)) {
                    stage2
                        .recycle_device_mappings(&mut |w| log.push(w))
                        .unwrap();
                    got = stage2.set_owner_annotation(page, OwnerId(owner), &mut |w| log.push(w));
                }
                prop_assert_eq!(got, expected, "annotate {:#x}", page);
                if got.is_err() && !was_foreign {
                    foreign.remove(&page);
                }
            }
            Op::Clear(nth) => {
                let annotated: Vec<u64> = model.annotations.keys().copied().collect();
                if let Some(&page) = annotated.get(nth % annotated.len().max(1)) {
                    foreign.remove(&page);
                    let expected = model.annotations.remove(&page).map(OwnerId);
                    prop_assert_eq!(stage2.clear_annotation(page), Ok(expected));
                }
            }
            Op::Unmap(start, pages) => {
                let range = IpaRange::new(start, (start + pages * 0x1000).min(LIMIT));
                let expected = model.unmap(&range);
                prop_assert_eq!(stage2.unmap(range, &mut |w| log.push(w)), Ok(expected));
            }
            Op::AnnotateMapped(..) => unreachable!("resolved above"),
            Op::Recycle => {
                model.recycle();
                stage2
                    .recycle_device_mappings(&mut |w| log.push(w))
                    .unwrap();
            }
        }
        check(&stage2, &model, &foreign, &before, &log)?;
    }
    Ok(())
}

/// Compares the walked tables with the model and checks what must hold whatever the model says.
fn check(
    stage2: &HostStage2<'_>,
    model: &Model,
    foreign: &BTreeSet<u64>,
    before: &[Leaf],
    log: &[Invalidation],
) -> Result<(), TestCaseError> {
    let view = RawView::of(stage2);
    let (leaves, _) = view.contents();
    let mut found = BTreeMap::new();
    for leaf in &leaves {
        let range = IpaRange::new(leaf.ipa, leaf.end());
        let (region, kind) = Model::region(leaf.ipa);
        prop_assert!(
            region.contains_range(&range),
            "{:x?} leaves its region {:x?}",
            leaf,
            region
        );
        prop_assert_eq!(leaf.oa(), leaf.ipa, "not an identity map");
        let attributes = match kind {
            RegionKind::Memory => MEMORY_ATTRIBUTES,
            RegionKind::Device => DEVICE_ATTRIBUTES,
        };
        prop_assert_eq!(leaf.attributes(), attributes, "attributes of {:x?}", leaf);
        prop_assert!(
            free_of(foreign, &range),
            "{:x?} maps a page the host does not own",
            leaf
        );
        if model.policy == MappingPolicy::PageOnly {
            prop_assert_eq!(leaf.level, 3);
        }
        found.insert(leaf.ipa, (leaf.level, kind));
    }
    prop_assert_eq!(&found, &model.leaves);
    let annotations: BTreeMap<u64, u32> = view.annotations().into_iter().collect();
    prop_assert_eq!(&annotations, &model.annotations);

    let stats = stage2.stats();
    prop_assert_eq!(stats.blocks_mapped, model.mapped);
    prop_assert_eq!(stats.memory_tables, model.memory_tables());
    prop_assert_eq!(stats.device_tables, model.device_tables());
    prop_assert!(stats.memory_tables <= memory_pool_tables(stage2.memory_map()));

    // Every leaf that went away or changed was invalidated.
    let now: BTreeSet<&Leaf> = leaves.iter().collect();
    for gone in before.iter().filter(|leaf| !now.contains(leaf)) {
        let range = IpaRange::new(gone.ipa, gone.end());
        let covered = log.iter().any(|what| match what {
            Invalidation::All => true,
            Invalidation::Range(invalidated) => invalidated.contains_range(&range),
        });
        prop_assert!(
            covered,
            "{:x?} removed without invalidation ({:x?})",
            gone,
            log
        );
    }
    Ok(())
}
