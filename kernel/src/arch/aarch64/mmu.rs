//! The kernel's translation tables: its own EL2 stage 1 and the host's stage 2, both identity
//! maps built with `aarch64-paging` from a [`memory_map`](hv_kernel::memory_map) region list.
//!
//! Tables come from a fixed pool in the kernel's bss (no allocator after boot, and only the boot
//! CPU builds tables, before any secondary starts). Tables are never freed: these maps live as
//! long as the kernel.

use aarch64_paging::{
    Mapping,
    descriptor::{El23Attributes, PagingAttributes, PhysicalAddress, Stage2Attributes},
    paging::{Constraints, El2, MemoryRegion, PageTable, Stage2, Translation},
};
use core::{cell::UnsafeCell, ptr::NonNull};
use hv_kernel::memory_map::{MemoryKind, RegionList};

/// Bits of virtual address the EL2 stage 1 translates (root at level 1).
pub const VA_BITS: u64 = 39;
/// Level of the EL2 stage-1 root table (39-bit VA).
const EL2_ROOT_LEVEL: usize = 1;
/// Level of the stage-2 root table: level 0 so the IPA space can reach the CPU's physical
/// address size (up to 48 bits) without concatenated root tables, which aarch64-paging lacks.
/// A 39-bit IPA space would cut off QEMU virt's high PCIe window at 512 GiB.
pub const STAGE2_ROOT_LEVEL: usize = 0;
/// Table pages in the pool. An identity map of a few RAM banks with 1 GiB and 2 MiB blocks
/// needs a handful; the rest is headroom for boards with more banks.
const POOL_PAGES: usize = 64;

#[repr(C, align(4096))]
struct TablePage([u8; 4096]);

struct TablePool {
    pages: UnsafeCell<[TablePage; POOL_PAGES]>,
    next: UnsafeCell<usize>,
}

// SAFETY: the pool is used only by the boot CPU before secondaries start (module contract).
unsafe impl Sync for TablePool {}

static POOL: TablePool = TablePool {
    pages: UnsafeCell::new([const { TablePage([0; 4096]) }; POOL_PAGES]),
    next: UnsafeCell::new(0),
};

/// Hands out zeroed pages from [`POOL`]; IPA = PA = VA, so translation is the identity.
struct PoolTranslation;

impl<A: PagingAttributes> Translation<A> for PoolTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<A>>, PhysicalAddress) {
        // SAFETY: single-threaded use at boot (module contract); each index is handed out once
        // and the pages start zeroed in bss.
        let page = unsafe {
            let next = &mut *POOL.next.get();
            assert!(*next < POOL_PAGES, "page-table pool exhausted");
            let page = (POOL.pages.get() as *mut TablePage).add(*next);
            *next += 1;
            page
        };
        let table = NonNull::new(page.cast::<PageTable<A>>()).expect("pool page is not null");
        (table, PhysicalAddress(page as usize))
    }

    unsafe fn deallocate_table(&mut self, _page_table: NonNull<PageTable<A>>) {
        // Tables live as long as the kernel; the identity maps built here are never torn down.
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<A>> {
        NonNull::new(pa.0 as *mut PageTable<A>).expect("table address is not null")
    }
}

/// Table pages used so far (for the benchmark's figures).
pub fn pool_pages_used() -> usize {
    // SAFETY: a plain read; tables are only built by the boot CPU at boot.
    unsafe { *POOL.next.get() }
}

/// Builds the EL2 stage-1 identity map of `regions` and returns its root's physical address.
pub fn build_el2_map(regions: &RegionList) -> u64 {
    let mut mapping = Mapping::new(PoolTranslation, EL2_ROOT_LEVEL, El2);
    for region in regions {
        let attributes = match region.kind {
            MemoryKind::Normal => {
                El23Attributes::VALID
                    | El23Attributes::ATTRIBUTE_INDEX_1
                    | El23Attributes::INNER_SHAREABLE
                    | El23Attributes::ACCESSED
                    | El23Attributes::USER_RES1
            }
            MemoryKind::Device => {
                El23Attributes::VALID
                    | El23Attributes::ATTRIBUTE_INDEX_0
                    | El23Attributes::ACCESSED
                    | El23Attributes::USER_RES1
                    | El23Attributes::XN
            }
        };
        map(
            &mut mapping,
            region.range.start,
            region.range.end,
            attributes,
        );
    }
    let root = mapping.root_address().0 as u64;
    // The tables stay in the pool for the kernel's lifetime; nothing may tear them down.
    core::mem::forget(mapping);
    root
}

/// Builds a stage-2 identity map of `regions` and returns its root's physical address.
pub fn build_stage2_map(regions: &RegionList) -> u64 {
    let mut mapping = Mapping::new(PoolTranslation, STAGE2_ROOT_LEVEL, Stage2);
    for region in regions {
        let common = Stage2Attributes::VALID | Stage2Attributes::ACCESS_FLAG;
        let attributes = match region.kind {
            MemoryKind::Normal => {
                common
                    | Stage2Attributes::MEMATTR_NORMAL_INNER_WB
                    | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
                    | Stage2Attributes::S2AP_ACCESS_RW
                    | Stage2Attributes::SH_INNER
            }
            MemoryKind::Device => {
                common
                    | Stage2Attributes::MEMATTR_DEVICE_nGnRE
                    | Stage2Attributes::S2AP_ACCESS_RW
                    | Stage2Attributes::XN
            }
        };
        map(
            &mut mapping,
            region.range.start,
            region.range.end,
            attributes,
        );
    }
    let root = mapping.root_address().0 as u64;
    core::mem::forget(mapping);
    root
}

/// Builds a component's stage 2: its region as normal memory, nothing else.
pub fn build_component_map(region: hv_abi::PhysRange) -> u64 {
    let mut regions = RegionList::new();
    let _ = regions.push(hv_kernel::memory_map::Region {
        range: region,
        kind: MemoryKind::Normal,
    });
    build_stage2_map(&regions)
}

fn map<R, A>(mapping: &mut Mapping<PoolTranslation, R>, start: u64, end: u64, attributes: A)
where
    R: aarch64_paging::paging::TranslationRegime<Attributes = A, Asid = (), VaRange = ()>,
    A: PagingAttributes,
    PoolTranslation: Translation<A>,
{
    let region = MemoryRegion::new(start as usize, end as usize);
    mapping
        .map_range(
            &region,
            PhysicalAddress(start as usize),
            attributes,
            Constraints::empty(),
        )
        .expect("identity map of a validated region");
}
