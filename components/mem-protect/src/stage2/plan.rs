//! The plan of a guest's stage 2: which leaves map a range (the largest block both addresses
//! are aligned for), and how many tables they need. The guest mapper ([`super::GuestStage2`]) follows
//! it, and `build.rs` sizes the guest table pool with it (it compiles this file by path), so
//! the pool is exactly what the configuration's own memslot and devices need.
//!
//! A VM with a shared IPA bit (seed 004) also gets, for each memslot, the tables its shared
//! alias needs were every page of it shared page by page ([`alias_windows`]): aliases are only
//! ever 4 KiB pages, one per MEM_SHARE, so the pool is sized for all of them and MEM_SHARE
//! never needs a table it might not get.
//!
//! Self-contained on purpose: it names only `core` and `hv_component_config`, which the build
//! script has too.

use hv_component_config::heapless::Vec;
use hv_component_config::{DeviceMode, Gic, MAX_DEVICES, Region, Vm};

/// The translation granule: the smallest leaf.
pub const PAGE: u64 = 4096;
/// The level of page descriptors.
const LAST_LEVEL: u8 = 3;
/// The largest blocks are level-1 (1 GiB): level 0 has none with a 4 KiB granule.
const FIRST_BLOCK_LEVEL: u8 = 1;

/// Bytes one entry at `level` maps: 512 GiB, 1 GiB, 2 MiB, 4 KiB for levels 0 to 3.
const fn block_size(level: u8) -> u64 {
    1 << (12 + 9 * (3 - level as u32))
}

/// IPA `[ipa, ipa + size)` translated to PA `[pa, pa + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRange {
    /// First IPA.
    pub ipa: u64,
    /// First physical address.
    pub pa: u64,
    /// Bytes.
    pub size: u64,
}

/// One leaf the plan writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedLeaf {
    /// The first IPA it maps.
    pub ipa: u64,
    /// The physical address it maps that IPA to.
    pub pa: u64,
    /// 1 (1 GiB block), 2 (2 MiB block) or 3 (4 KiB page).
    pub level: u8,
}

/// The leaves mapping `range`, in IPA order: at each address the largest block (1 GiB, then
/// 2 MiB) that fits in what is left and that both the IPA and the PA are aligned for, else a
/// page. `range` must be page aligned and must not wrap (the callers check).
pub fn leaves(range: GuestRange) -> impl Iterator<Item = PlannedLeaf> {
    let end = range.ipa.saturating_add(range.size);
    let (mut ipa, mut pa) = (range.ipa, range.pa);
    core::iter::from_fn(move || {
        if ipa >= end {
            return None;
        }
        let left = end - ipa;
        let level = (FIRST_BLOCK_LEVEL..LAST_LEVEL)
            .find(|&level| {
                let size = block_size(level);
                ipa.is_multiple_of(size) && pa.is_multiple_of(size) && left >= size
            })
            .unwrap_or(LAST_LEVEL);
        let leaf = PlannedLeaf { ipa, pa, level };
        ipa = ipa.saturating_add(block_size(level));
        pa = pa.wrapping_add(block_size(level));
        Some(leaf)
    })
}

/// Counts distinct tables below the root. A leaf at level L hangs in a level-L table, which
/// hangs in a level L-1 table, up to a level-1 table in the root; the level-k table on the
/// walk to an IPA covers the IPA's window of one level-(k-1) entry. Fed in IPA order, each
/// window is counted once.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableCount {
    /// The last window counted at each level (index 1 to 3).
    last: [Option<u64>; 4],
    tables: usize,
}

impl TableCount {
    /// Counts the tables of levels `from..=to` (from at least 1) on the walk to `ipa` that
    /// were not counted yet.
    pub fn add(&mut self, ipa: u64, from: u8, to: u8) {
        for level in from.max(FIRST_BLOCK_LEVEL)..=to.min(LAST_LEVEL) {
            let window = ipa / block_size(level - 1);
            let last = &mut self.last[usize::from(level)];
            if *last != Some(window) {
                *last = Some(window);
                self.tables += 1;
            }
        }
    }

    /// Tables counted.
    pub fn tables(&self) -> usize {
        self.tables
    }
}

/// The first IPA of each 2 MiB window (one level-3 table) holding part of `[ipa, ipa + size)`,
/// in IPA order: the tables a shared alias over that range takes, mapped page by page.
pub fn alias_windows(ipa: u64, size: u64) -> impl Iterator<Item = u64> {
    let window = block_size(LAST_LEVEL - 1);
    let end = ipa.saturating_add(size);
    // An empty range has no window.
    let first = if size == 0 { end } else { ipa & !(window - 1) };
    (0..)
        .map(move |n: u64| first.saturating_add(n.saturating_mul(window)))
        .take_while(move |&start| start < end)
}

/// `ipa` with the shared bit `bit` set: its alias. `None` if the bit is not a page-number bit
/// of a 48-bit IPA.
pub const fn alias(ipa: u64, bit: u8) -> Option<u64> {
    if bit < 12 || bit >= 48 {
        return None;
    }
    Some(ipa | 1 << bit)
}

/// The pages a region occupies: its start rounded down and its end rounded up to a page.
pub fn page_span(region: &Region) -> (u64, u64) {
    let start = region.base & !(PAGE - 1);
    let end = region.end().next_multiple_of(PAGE);
    (start, end)
}

/// The pages of each device passed through to `vm`, as `(start, end)`.
pub fn passthrough_spans(vm: &Vm) -> impl Iterator<Item = (u64, u64)> + '_ {
    vm.devices
        .iter()
        .filter(|device| device.mode == DeviceMode::Passthrough)
        .map(|device| page_span(&device.region))
}

/// What a guest's configuration maps into its stage 2, in IPA order: its RAM (one memslot,
/// IPA `ram_ipa` → PA `memory.base`), each device passed through to it, page-rounded, at the
/// address the VM sees it at (IPA = PA), and each of `gics`' GICv2 virtual CPU interfaces
/// (GICV) where the guest finds its CPU interface (GICC): the VM manager maps it there when
/// the machine's GIC is a GICv2.
pub fn vm_ranges(vm: &Vm, gics: &[Gic]) -> Vec<GuestRange, { MAX_DEVICES + 2 }> {
    let mut ranges: Vec<GuestRange, { MAX_DEVICES + 2 }> = Vec::new();
    let ram = GuestRange {
        ipa: vm.ram_ipa,
        pa: vm.memory.base,
        size: vm.memory.size,
    };
    let devices = passthrough_spans(vm).map(|(start, end)| GuestRange {
        ipa: start,
        pa: start,
        size: end - start,
    });
    let virtual_cpu_interfaces = gics
        .iter()
        .filter(|gic| gic.version == 2 && gic.virtual_cpu_interface.size != 0)
        .map(|gic| {
            let (start, end) = page_span(&gic.virtual_cpu_interface);
            GuestRange {
                ipa: gic.cpu_interface.base & !(PAGE - 1),
                pa: start,
                size: end - start,
            }
        })
        .take(1);
    // One memslot, at most MAX_DEVICES devices and one GICV: the capacity holds them all.
    for range in core::iter::once(ram)
        .chain(devices)
        .chain(virtual_cpu_interfaces)
    {
        if range.size > 0 {
            let _ = ranges.push(range);
        }
    }
    ranges.sort_unstable_by_key(|range| range.ipa);
    ranges
}

/// Tables below the root that mapping [`vm_ranges`] with [`leaves`] takes, and, for a VM with
/// a shared IPA bit, the tables of its RAM's alias mapped page by page ([`alias_windows`]):
/// the guest's share of the guest table pool. The alias lies above every range (the bit is
/// above the VM's RAM and devices), so counting it last keeps the count in IPA order.
pub fn vm_tables(vm: &Vm, gics: &[Gic]) -> usize {
    let mut count = TableCount::default();
    for leaf in vm_ranges(vm, gics).into_iter().flat_map(leaves) {
        count.add(leaf.ipa, FIRST_BLOCK_LEVEL, leaf.level);
    }
    if let Some(start) = vm.shared_ipa_bit.and_then(|bit| alias(vm.ram_ipa, bit)) {
        for window in alias_windows(start, vm.memory.size) {
            count.add(window, FIRST_BLOCK_LEVEL, LAST_LEVEL);
        }
    }
    count.tables()
}
