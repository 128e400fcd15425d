//! The host VM's stage-2 translation tables, built lazily by the memory-protection component,
//! and guests' ([`GuestStage2`], mapped in full from a [`plan`]; see `guest.rs`), which share
//! the descriptor format, the attributes and the table allocator below.
//!
//! The host runs on an identity map (IPA = PA) that starts empty and grows one fault at a time,
//! as in pKVM's "wrap the host with a stage 2" (Quentin Perret, merged in Linux 5.13). The
//! component keeps the tables in its own memory and writes them; the EL2 kernel only loads
//! VTTBR_EL2 with [`HostStage2::root_pa`] (VTCR_EL2.SL0 = 2: the root is a level-0 table, 4 KiB
//! granule, IPA size = the CPU's physical address size) and does the TLB maintenance asked of
//! it through [`TlbMaintenance`].
//!
//! # What a fault maps
//!
//! [`HostStage2::handle_fault`] maps the largest block (1 GiB at level 1, 2 MiB at level 2, else
//! a 4 KiB page) around the faulting IPA that lies wholly inside the RAM region or MMIO gap
//! holding it ([`MemoryMap::region_around`]) and wholly inside what the host owns: the caller
//! answers `host_owns(range)`, so a page owned by someone else is never mapped, not even inside
//! a block. RAM is Normal write-back, inner shareable, read/write/execute; MMIO is
//! Device-nGnRE, read/write, never executable. A fault on an IPA another CPU has just mapped
//! is [`Mapped::AlreadyMapped`]: harmless, the access is simply retried.
//!
//! # The table fill
//!
//! Under [`MappingPolicy::LargestBlock`] a fault then fills the tables its walk went through,
//! from the one holding the first empty entry it met down to the one holding the new leaf:
//! every other *empty* entry whose block (1 GiB, 2 MiB or 4 KiB, as the entry's level says)
//! lies wholly inside the same region or gap and wholly inside what the host owns
//! (`host_owns`, asked once per block) is mapped as an identity leaf with the same attributes.
//! A block only partly the host's is skipped and left to a later fault, which maps it at a
//! finer level (and fills the finer table it makes). Why: a host stage-2 fault is a full
//! round trip through the component, and when the hypervisor's region sits at the start of a
//! GiB of RAM no 1 GiB block fits, so without the fill every 2 MiB the host touches costs one;
//! with it one fault maps the whole GiB but the hypervisor's part (`docs/mem-protect.md` has
//! the figures).
//!
//! The fill allocates no table and never replaces an entry (tables, leaves and annotations
//! stay), so the pools' bounds below hold unchanged: tables are only made on the faulting
//! page's walk and by block splits, as without it. It writes valid leaves into empty entries
//! only, which needs no TLB maintenance (invalid entries are never cached); another CPU that
//! does not see a new leaf yet faults and finds it mapped ([`Mapped::AlreadyMapped`]).
//! [`Mapped::New`] counts the leaves it mapped. [`MappingPolicy::PageOnly`] maps one 4 KiB page per fault and fills nothing, so
//! a benchmark can compare the two.
//!
//! # Table pools
//!
//! Tables come from two pools of the component's memory ([`TablePools`]). A table covering any
//! RAM comes from the memory pool, which [`memory_pool_tables`] sizes so that all RAM can be
//! mapped page by page: it never runs out. A table covering only MMIO comes from the device
//! pool, which has a fixed size. When a device fault finds it empty, every device mapping is
//! unmapped, all device-pool tables are freed (the TLBs are invalidated for the whole VMID
//! before any is reused) and the fault is retried once; MMIO is remapped lazily as the host
//! touches it again. RAM mappings are never touched by this, since none lives in a device-pool
//! table.
//!
//! # Annotated invalid entries
//!
//! [`HostStage2::set_owner_annotation`] marks a page the host gave away with an invalid
//! level-3 descriptor naming its owner, splitting a block if needed, so a later host fault on
//! it ([`Stage2Error::OwnedBy`]) is told from a fault on a page not mapped yet. The hardware
//! ignores bits 63:1 of an invalid descriptor; this module uses them so:
//!
//! | bits  | content                                                     |
//! |-------|-------------------------------------------------------------|
//! | 0     | 0: invalid, every access faults                             |
//! | 4:1   | type, 0b0001 = owner annotation (never all-zero, so never empty) |
//! | 31:5  | reserved, 0                                                 |
//! | 63:32 | owner id ([`OwnerId`], as the ownership tracker names it)   |
//!
//! Annotations are a record for the fault path, not the authority on ownership: the ownership
//! tracker is. A device recycle drops annotations held in device-pool tables (MMIO pages given
//! away), and a later fault there is refused by `host_owns` instead.
//!
//! # TLB maintenance and ordering
//!
//! Each change asks for TLB maintenance where the architecture requires it, through the
//! caller's [`TlbMaintenance`], which runs it before returning:
//! - a valid entry made invalid (unmap, annotating a mapped page): invalidate its range;
//! - a block split into a table: break-before-make (Arm ARM, "Using break-before-make when
//!   updating translation table entries"): the block entry is zeroed, its range invalidated,
//!   and only then is the table descriptor written;
//! - a device recycle: invalidate the whole VMID before any freed table is reused.
//!
//! Mapping into an empty entry needs none (invalid entries are never cached). A new table is
//! filled before the descriptor linking it is written, with a release fence (DMB ISH) between,
//! so a walker on another CPU never reads a half-built table.
//!
//! # Why our own mapper rather than the aarch64-paging crate
//!
//! Three needs it is not built for: two pools where the pool depends on what a table covers and
//! device tables are recycled all at once; invalid entries that carry an owner and survive
//! block splits; and running inside a component with the MMU off, where tables are plain
//! slices at known physical addresses, so no allocator, no address translation and no
//! `unsafe`.

#![forbid(unsafe_code)]

mod descriptor;
mod fill;
mod guest;
mod maintenance;
mod memory_map;
pub mod plan;
mod pools;
#[cfg(test)]
mod tests;
mod types;

use core::sync::atomic::{Ordering, fence};

pub use descriptor::{Attributes, OwnerId};
use descriptor::{Descriptor, align_down, entry_size, index};
pub use guest::{GuestMapError, GuestStage2, Reservation};
pub use memory_map::{
    DEFAULT_DEVICE_POOL_TABLES, IPA_BITS, IpaRange, MemoryMap, Region, RegionKind,
    memory_pool_tables,
};
use pools::TableRef;
pub use pools::{PoolError, PoolKind, TABLE_ENTRIES, Table, TablePools};
pub use types::{
    Access, Entry, Invalidation, Mapped, MappingPolicy, SetupError, Stage2Error, Stats,
    TlbMaintenance,
};

/// The translation granule and the smallest mapping.
pub const PAGE_SIZE: u64 = 4096;

/// The level of page descriptors.
const LAST_LEVEL: u8 = 3;
/// The level of the largest block: a level-0 entry cannot be a block with a 4 KiB granule
/// (without FEAT_LPA2).
const FIRST_BLOCK_LEVEL: u8 = 1;

/// Where a walk stopped: the first descriptor that is not a table descriptor.
#[derive(Clone, Copy, Debug)]
struct Slot {
    table: TableRef,
    level: u8,
    index: usize,
    desc: u64,
}

/// The host's stage 2.
pub struct HostStage2<'a> {
    pools: TablePools<'a>,
    map: MemoryMap<'a>,
    policy: MappingPolicy,
    root: TableRef,
    counters: Stats,
}

impl<'a> HostStage2<'a> {
    /// An empty stage 2 serving `map`, with its root taken from the memory pool, which must
    /// hold at least [`memory_pool_tables`]`(&map)` tables.
    ///
    /// The root is always the memory pool's first table (at the `memory_pa` given to
    /// [`TablePools::new`]): the pools are new (nothing can be allocated from them before this
    /// call) and allocate in order, so a component can hand the pool's address to the kernel
    /// as the host's VTTBR before this runs (an all-zero table is an empty root).
    pub fn new(
        mut pools: TablePools<'a>,
        map: MemoryMap<'a>,
        policy: MappingPolicy,
    ) -> Result<Self, SetupError> {
        let needed = memory_pool_tables(&map);
        let given = pools.capacity(PoolKind::Memory);
        let too_small = SetupError::MemoryPoolTooSmall { needed, given };
        if given < needed {
            return Err(too_small);
        }
        if pools.used(PoolKind::Memory) != 0 {
            return Err(SetupError::PoolsInUse);
        }
        let root = pools.alloc(PoolKind::Memory).ok_or(too_small)?;
        Ok(Self {
            pools,
            map,
            policy,
            root,
            counters: Stats::default(),
        })
    }

    /// The physical address of the level-0 root table: VTTBR_EL2.BADDR.
    pub fn root_pa(&self) -> u64 {
        self.pools.pa_of(self.root)
    }

    /// The memory map served.
    pub fn memory_map(&self) -> &MemoryMap<'a> {
        &self.map
    }

    /// The pools, for walkers and dumps that read the raw tables.
    pub fn pools(&self) -> &TablePools<'a> {
        &self.pools
    }

    /// The mapping policy.
    pub fn policy(&self) -> MappingPolicy {
        self.policy
    }

    /// The counters, with the pools' current use.
    pub fn stats(&self) -> Stats {
        Stats {
            memory_tables: self.pools.used(PoolKind::Memory),
            device_tables: self.pools.used(PoolKind::Device),
            device_tables_peak: self.pools.peak(PoolKind::Device),
            ..self.counters
        }
    }

    /// Resolves a host stage-2 fault at `ipa` by mapping the identity block around it (see the
    /// module docs). `host_owns(range)` says whether the host owns, and may access, every page
    /// of a page-aligned range; it is asked about the page, then about the candidate blocks,
    /// then (under the largest-block policy) about the block of each empty entry the table
    /// fill considers.
    /// `tlb` is used only if the device pool must be recycled.
    pub fn handle_fault(
        &mut self,
        ipa: u64,
        access: Access,
        mut host_owns: impl FnMut(IpaRange) -> bool,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<Mapped, Stage2Error> {
        self.counters.faults += 1;
        let result = self.resolve_fault(ipa, access, &mut host_owns, tlb);
        match result {
            Ok(Mapped::New { level, filled, .. }) => {
                if let Some(count) = self.counters.blocks_mapped.get_mut(usize::from(level)) {
                    *count += 1;
                }
                for (count, more) in self.counters.blocks_mapped.iter_mut().zip(filled) {
                    *count += u64::from(more);
                }
            }
            Ok(Mapped::AlreadyMapped) => self.counters.already_mapped += 1,
            Err(Stage2Error::NotHostOwned(_) | Stage2Error::OwnedBy(_)) => {
                self.counters.refused += 1
            }
            Err(_) => self.counters.failed += 1,
        }
        result
    }

    fn resolve_fault(
        &mut self,
        ipa: u64,
        access: Access,
        host_owns: &mut impl FnMut(IpaRange) -> bool,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<Mapped, Stage2Error> {
        if ipa >= self.map.ipa_limit() {
            return Err(Stage2Error::OutsideIpaSpace(ipa));
        }
        let page = align_down(ipa, LAST_LEVEL);
        let region = self.map.region_around(page);
        match self.map_identity(page, access, &region, host_owns) {
            Err(Stage2Error::OutOfTables(PoolKind::Device)) => {
                self.recycle_device_mappings(tlb)?;
                match self.map_identity(page, access, &region, host_owns)? {
                    Mapped::New {
                        range,
                        level,
                        kind,
                        filled,
                        ..
                    } => Ok(Mapped::New {
                        range,
                        level,
                        kind,
                        recycled: true,
                        filled,
                    }),
                    Mapped::AlreadyMapped => Ok(Mapped::AlreadyMapped),
                }
            }
            other => other,
        }
    }

    /// One attempt at mapping `page` for `access`; changes nothing when it fails.
    ///
    /// A fault on a page that is mapped already is a race another CPU won *only* if the leaf
    /// permits the access; otherwise (a fetch from device memory, say) resuming would fault
    /// again forever, so it is refused. Likewise a fetch never creates a device mapping.
    fn map_identity(
        &mut self,
        page: u64,
        access: Access,
        region: &Region,
        host_owns: &mut impl FnMut(IpaRange) -> bool,
    ) -> Result<Mapped, Stage2Error> {
        let slot = self.walk(page)?;
        match descriptor::decode(slot.desc, slot.level) {
            Descriptor::Empty => {}
            Descriptor::Leaf(desc) if Attributes::of(desc).permits(access) => {
                return Ok(Mapped::AlreadyMapped);
            }
            Descriptor::Leaf(_) => return Err(Stage2Error::NotPermitted { ipa: page, access }),
            Descriptor::Annotated(owner) => return Err(Stage2Error::OwnedBy(owner)),
            Descriptor::Table(_) | Descriptor::Unknown => {
                return Err(Stage2Error::Corrupt {
                    ipa: page,
                    level: slot.level,
                });
            }
        }
        if !host_owns(IpaRange::sized(page, PAGE_SIZE)) {
            return Err(Stage2Error::NotHostOwned(page));
        }
        if access == Access::Fetch && region.kind == RegionKind::Device {
            return Err(Stage2Error::NotPermitted { ipa: page, access });
        }
        let level = self.leaf_level(page, slot.level, &region.range, host_owns);
        let range = IpaRange::sized(align_down(page, level), entry_size(level));
        let leaf = descriptor::leaf(range.start, level, region.kind);
        let desc = self.build(&slot, page, level, leaf, None)?;
        self.set(&slot, page, desc)?;
        let filled = match self.policy {
            MappingPolicy::LargestBlock => self.fill(page, slot.level, level, region, host_owns),
            MappingPolicy::PageOnly => [0; 4],
        };
        Ok(Mapped::New {
            range,
            level,
            kind: region.kind,
            recycled: false,
            filled,
        })
    }

    /// The level of the largest block holding `page` that can hang below an empty entry at
    /// `empty_level` and lies inside `region` and inside what the host owns.
    fn leaf_level(
        &self,
        page: u64,
        empty_level: u8,
        region: &IpaRange,
        host_owns: &mut impl FnMut(IpaRange) -> bool,
    ) -> u8 {
        if self.policy == MappingPolicy::PageOnly {
            return LAST_LEVEL;
        }
        (empty_level.max(FIRST_BLOCK_LEVEL)..LAST_LEVEL)
            .find(|&level| {
                let block = IpaRange::sized(align_down(page, level), entry_size(level));
                region.contains_range(&block) && host_owns(block)
            })
            .unwrap_or(LAST_LEVEL)
    }

    /// What the tables say about `ipa`.
    pub fn lookup(&self, ipa: u64) -> Result<Entry, Stage2Error> {
        if ipa >= self.map.ipa_limit() {
            return Ok(Entry::Unmapped);
        }
        let slot = self.walk(ipa)?;
        Ok(match descriptor::decode(slot.desc, slot.level) {
            Descriptor::Empty => Entry::Unmapped,
            Descriptor::Annotated(owner) => Entry::Annotated(owner),
            Descriptor::Leaf(desc) => Entry::Mapped {
                pa: descriptor::leaf_address(desc, slot.level)
                    + (ipa - align_down(ipa, slot.level)),
                level: slot.level,
                attrs: Attributes::of(desc),
            },
            Descriptor::Table(_) | Descriptor::Unknown => {
                return Err(Stage2Error::Corrupt {
                    ipa,
                    level: slot.level,
                });
            }
        })
    }

    fn check_page(&self, page: u64) -> Result<(), Stage2Error> {
        if page >= self.map.ipa_limit() {
            Err(Stage2Error::OutsideIpaSpace(page))
        } else if !page.is_multiple_of(PAGE_SIZE) {
            Err(Stage2Error::Misaligned(page))
        } else {
            Ok(())
        }
    }

    /// Follows table descriptors from the root towards `ipa`.
    fn walk(&self, ipa: u64) -> Result<Slot, Stage2Error> {
        let mut table = self.root;
        let mut level = 0;
        loop {
            let index = index(ipa, level);
            let desc = self.read(table, index, ipa, level)?;
            match descriptor::decode(desc, level) {
                // `decode` finds tables only at levels 0 to 2, so this ends by level 3.
                Descriptor::Table(pa) => {
                    table = self.resolve(pa, ipa, level)?;
                    level += 1;
                }
                _ => {
                    return Ok(Slot {
                        table,
                        level,
                        index,
                        desc,
                    });
                }
            }
        }
    }

    /// New tables linking the entry at `slot` down to `bottom` (a leaf or an annotation) at
    /// `leaf_level` for `page`, returning the descriptor to write at `slot`. When `split` holds
    /// the block descriptor at `slot`, every other entry of the new tables maps the block's
    /// pages as it did. The pools are checked first, so nothing is allocated unless all is.
    fn build(
        &mut self,
        slot: &Slot,
        page: u64,
        leaf_level: u8,
        bottom: u64,
        split: Option<u64>,
    ) -> Result<u64, Stage2Error> {
        let window = |level: u8| IpaRange::sized(align_down(page, level), entry_size(level));
        for pool in [PoolKind::Memory, PoolKind::Device] {
            let needed = (slot.level..leaf_level)
                .filter(|&level| self.map.pool_for(&window(level)) == pool)
                .count();
            if needed > self.pools.available(pool) {
                return Err(Stage2Error::OutOfTables(pool));
            }
        }
        let block_start = window(slot.level).start;
        let mut child = bottom;
        for level in (slot.level..leaf_level).rev() {
            // The new table hangs below the entry at `level` and covers that entry's window.
            let covered = window(level);
            let pool = self.map.pool_for(&covered);
            let new = self
                .pools
                .alloc(pool)
                .ok_or(Stage2Error::OutOfTables(pool))?;
            let pa = self.pools.pa_of(new);
            let table = self
                .pools
                .table_mut(new)
                .ok_or(Stage2Error::Corrupt { ipa: page, level })?;
            if let Some(block) = split {
                let sub_level = level + 1;
                let block_oa = descriptor::leaf_address(block, slot.level);
                for (position, entry) in table.iter_mut().enumerate() {
                    let ipa = covered.start + position as u64 * entry_size(sub_level);
                    *entry =
                        descriptor::leaf_like(block, block_oa + (ipa - block_start), sub_level);
                }
            }
            table[index(page, level + 1)] = child;
            child = descriptor::table(pa);
        }
        if leaf_level > slot.level {
            // The new tables' contents before the descriptor that publishes them.
            fence(Ordering::Release);
        }
        Ok(child)
    }

    /// The entries of a table at `level` covering from `base` below the IPA limit, with the
    /// range each covers.
    fn entries(&self, level: u8, base: u64) -> impl Iterator<Item = (usize, IpaRange)> + use<> {
        let size = entry_size(level);
        let limit = self.map.ipa_limit();
        (0..TABLE_ENTRIES)
            .map(move |position| {
                let covered = IpaRange::sized(base + position as u64 * size, size);
                (position, covered)
            })
            .take_while(move |(_, entry)| entry.start < limit)
    }

    fn set(&mut self, slot: &Slot, ipa: u64, desc: u64) -> Result<(), Stage2Error> {
        self.write(slot.table, slot.index, ipa, slot.level, desc)
    }

    fn read(
        &self,
        table: TableRef,
        position: usize,
        ipa: u64,
        level: u8,
    ) -> Result<u64, Stage2Error> {
        self.pools
            .table(table)
            .and_then(|table| table.get(position))
            .copied()
            .ok_or(Stage2Error::Corrupt { ipa, level })
    }

    fn write(
        &mut self,
        table: TableRef,
        position: usize,
        ipa: u64,
        level: u8,
        desc: u64,
    ) -> Result<(), Stage2Error> {
        let entry = self
            .pools
            .table_mut(table)
            .and_then(|table| table.get_mut(position))
            .ok_or(Stage2Error::Corrupt { ipa, level })?;
        *entry = desc;
        Ok(())
    }

    fn resolve(&self, pa: u64, ipa: u64, level: u8) -> Result<TableRef, Stage2Error> {
        self.pools
            .resolve(pa)
            .ok_or(Stage2Error::Corrupt { ipa, level })
    }
}
