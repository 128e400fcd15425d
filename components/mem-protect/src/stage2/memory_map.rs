//! The physical memory map the host's stage 2 serves: RAM regions (from the DTB or the
//! manifest), and MMIO in every gap between them up to the IPA limit. Like pKVM's
//! `find_mem_range()`, a fault is resolved inside the one region or gap around it, so a block
//! never straddles RAM and MMIO (their attributes differ).

use super::SetupError;
use super::descriptor::{entry_size, shift};

/// A half-open range of intermediate physical addresses, `start..end`. On the host's identity
/// map an IPA is also the physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpaRange {
    /// The first address in the range.
    pub start: u64,
    /// The first address past the range.
    pub end: u64,
}

impl IpaRange {
    /// `start..end`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The range of `len` bytes from `start` (saturating at the top of the address space).
    pub const fn sized(start: u64, len: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(len),
        }
    }

    /// Bytes in the range.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no address.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `ipa` is in the range.
    pub const fn contains(&self, ipa: u64) -> bool {
        self.start <= ipa && ipa < self.end
    }

    /// Whether every address of `other` is in this range.
    pub const fn contains_range(&self, other: &IpaRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Whether the two ranges share an address.
    pub const fn overlaps(&self, other: &IpaRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// What a region of the memory map is, and so how the host's stage 2 maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// RAM: normal write-back memory, read/write/execute; tables from the memory pool.
    Memory,
    /// Anything that is not RAM: Device-nGnRE, read/write, never executable.
    Device,
}

/// The RAM region, or the MMIO gap between two RAM regions, around an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Where the region starts and ends.
    pub range: IpaRange,
    /// RAM or MMIO.
    pub kind: RegionKind,
}

/// RAM regions, sorted and disjoint, below an IPA limit of 2^`ipa_bits`.
#[derive(Clone, Copy, Debug)]
pub struct MemoryMap<'a> {
    ram: &'a [IpaRange],
    ipa_bits: u8,
}

/// The IPA sizes a level-0 root serves with a 4 KiB granule (VTCR_EL2.SL0 = 2 needs
/// T0SZ = 16..=24).
pub const IPA_BITS: core::ops::RangeInclusive<u8> = 40..=48;

impl<'a> MemoryMap<'a> {
    /// The map of `ram` (page-aligned, non-empty, sorted, disjoint ranges below 2^`ipa_bits`)
    /// for an IPA space of `ipa_bits` bits (40 to 48: the CPU's physical address size).
    pub fn new(ram: &'a [IpaRange], ipa_bits: u8) -> Result<Self, SetupError> {
        if !IPA_BITS.contains(&ipa_bits) {
            return Err(SetupError::IpaBits(ipa_bits));
        }
        let limit = 1u64 << ipa_bits;
        let mut previous_end = 0;
        for (index, range) in ram.iter().enumerate() {
            if !range.start.is_multiple_of(super::PAGE_SIZE)
                || !range.end.is_multiple_of(super::PAGE_SIZE)
            {
                return Err(SetupError::RamMisaligned { index });
            }
            if range.is_empty() {
                return Err(SetupError::RamEmpty { index });
            }
            if range.start < previous_end {
                return Err(SetupError::RamUnsorted { index });
            }
            if range.end > limit {
                return Err(SetupError::RamBeyondIpaLimit { index });
            }
            previous_end = range.end;
        }
        Ok(Self { ram, ipa_bits })
    }

    /// The RAM regions.
    pub fn ram(&self) -> &'a [IpaRange] {
        self.ram
    }

    /// The IPA size in bits.
    pub fn ipa_bits(&self) -> u8 {
        self.ipa_bits
    }

    /// The first IPA past the IPA space.
    pub fn ipa_limit(&self) -> u64 {
        1 << self.ipa_bits
    }

    /// The RAM region or MMIO gap holding `ipa` (which must be below the IPA limit).
    pub fn region_around(&self, ipa: u64) -> Region {
        let next = self.ram.partition_point(|range| range.end <= ipa);
        match self.ram.get(next) {
            Some(range) if range.start <= ipa => Region {
                range: *range,
                kind: RegionKind::Memory,
            },
            following => {
                let start = match next.checked_sub(1).and_then(|i| self.ram.get(i)) {
                    Some(previous) => previous.end,
                    None => 0,
                };
                let end = following.map_or(self.ipa_limit(), |range| range.start);
                Region {
                    range: IpaRange::new(start, end),
                    kind: RegionKind::Device,
                }
            }
        }
    }

    /// Whether any address of `range` is RAM.
    pub fn intersects_ram(&self, range: &IpaRange) -> bool {
        let next = self.ram.partition_point(|ram| ram.end <= range.start);
        self.ram.get(next).is_some_and(|ram| ram.start < range.end)
    }

    /// Whether `range` lies inside one RAM region.
    pub fn within_ram(&self, range: &IpaRange) -> bool {
        let next = self.ram.partition_point(|ram| ram.end <= range.start);
        self.ram
            .get(next)
            .is_some_and(|ram| ram.contains_range(range))
    }

    /// The pool a new table covering `window` comes from: the memory pool whenever the window
    /// holds any RAM, so that device-pool tables hold only MMIO mappings and recycling them can
    /// never lose a RAM mapping.
    pub(super) fn pool_for(&self, window: &IpaRange) -> super::PoolKind {
        if self.intersects_ram(window) {
            super::PoolKind::Memory
        } else {
            super::PoolKind::Device
        }
    }
}

/// Tables the memory pool must hold so every RAM page can be mapped page by page: the root,
/// and one table for each 512 GiB, 1 GiB and 2 MiB window (the reach of a level-1, -2 and -3
/// table) that holds any RAM. A table is taken from the memory pool exactly when the window it
/// covers holds RAM, and never twice for one window, so a pool this size never runs out.
pub fn memory_pool_tables(map: &MemoryMap<'_>) -> usize {
    let windows = (0..=2u8)
        .map(|level| distinct_windows(map.ram, shift(level)))
        .sum::<u64>();
    usize::try_from(1 + windows).unwrap_or(usize::MAX)
}

/// How many aligned windows of 2^`window_shift` bytes hold part of the sorted ranges.
fn distinct_windows(ram: &[IpaRange], window_shift: u32) -> u64 {
    let mut count = 0;
    let mut last_counted: Option<u64> = None;
    for range in ram.iter().filter(|range| !range.is_empty()) {
        let last = (range.end - 1) >> window_shift;
        let first = match last_counted {
            Some(counted) if counted >= range.start >> window_shift => counted + 1,
            _ => range.start >> window_shift,
        };
        if last >= first {
            count += last - first + 1;
            last_counted = Some(last);
        }
    }
    count
}

/// Tables for a device pool that can map one GiB of MMIO page by page wherever it lies (a
/// default in the spirit of pKVM's 5.13 sizing): up to 513 level-3 tables for an unaligned GiB,
/// and two tables at each level above. Exhaustion is survivable (every device mapping is
/// recycled and rebuilt lazily), so this is a performance knob, not a correctness bound.
pub const DEFAULT_DEVICE_POOL_TABLES: usize = (entry_size(1) / entry_size(2)) as usize + 1 + 2 + 2;
