//! The types callers of the host stage 2 see: the mapping policy, TLB maintenance requests,
//! what a fault did, what an IPA holds, errors and counters.

use super::{Attributes, IpaRange, OwnerId, PoolError, PoolKind, RegionKind};

/// How large the mappings a fault creates may be, and how many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MappingPolicy {
    /// The largest block that fits (pKVM's behaviour), and with it the table fill: every other
    /// empty entry of the tables the fault's walk went through whose block lies in the same
    /// RAM region or MMIO gap and is wholly the host's (see the module docs).
    #[default]
    LargestBlock,
    /// One 4 KiB page per fault.
    PageOnly,
}

/// TLB entries the kernel must invalidate, in the host's VMID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// The entries for one leaf (a block or a page) that was removed or split: one
    /// TLBI IPAS2E1IS at its start, then TLBI VMALLE1IS for combined stage-1+2 entries.
    Range(IpaRange),
    /// Every entry of the VMID, including walk caches (TLBI VMALLS12E1IS).
    All,
}

/// The caller's way to have TLBs invalidated, synchronously: the implementation makes the
/// table writes made so far visible to walkers (DSB ISHST), invalidates, and waits for
/// completion (DSB ISH) before returning. Closures taking an [`Invalidation`] implement it.
pub trait TlbMaintenance {
    /// Invalidates `what`.
    fn invalidate(&mut self, what: Invalidation);
}

impl<F: FnMut(Invalidation)> TlbMaintenance for F {
    fn invalidate(&mut self, what: Invalidation) {
        self(what)
    }
}

/// The kind of access that faulted: what a mapping must permit for the access to succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// What a fault did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// A new identity mapping of `range`, a leaf at `level`.
    New {
        /// The block or page mapped.
        range: IpaRange,
        /// 1 (1 GiB), 2 (2 MiB) or 3 (4 KiB).
        level: u8,
        /// RAM or MMIO attributes.
        kind: RegionKind,
        /// Whether the device pool ran out and every device mapping was dropped first (the
        /// whole VMID was invalidated through the caller's [`TlbMaintenance`]).
        recycled: bool,
        /// Leaves the table fill mapped besides this one, by level (index 1: 1 GiB, 2: 2 MiB,
        /// 3: 4 KiB; 0 unused). All zero under [`MappingPolicy::PageOnly`].
        filled: [u16; 4],
    },
    /// The IPA was already mapped for this access (another CPU won the race); nothing changed.
    /// Only returned when the existing leaf permits the access, so resuming cannot fault again
    /// the same way.
    AlreadyMapped,
}

/// What the tables say about one IPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// No mapping and no annotation: the next access faults and is mapped lazily.
    Unmapped,
    /// The page belongs to someone else.
    Annotated(OwnerId),
    /// Mapped by a leaf at `level`.
    Mapped {
        /// The physical address the IPA translates to.
        pa: u64,
        /// The leaf's level: 1 (1 GiB), 2 (2 MiB) or 3 (4 KiB).
        level: u8,
        /// The leaf's stage-2 attributes.
        attrs: Attributes,
    },
}

/// Why an operation on the tables failed. A failed operation changed nothing, except as noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage2Error {
    /// The IPA is at or above the IPA limit.
    OutsideIpaSpace(u64),
    /// An address or range that must be page-aligned is not.
    Misaligned(u64),
    /// The host does not own (or may not access) the faulting page: inject an abort.
    NotHostOwned(u64),
    /// The page carries an owner annotation: inject an abort.
    OwnedBy(OwnerId),
    /// The pool ran out. For the device pool on a fault, this is after one recycle (which did
    /// drop every device mapping).
    OutOfTables(PoolKind),
    /// The IPA is mapped, but not for this access (a fetch from device memory, a write to a
    /// read-only page): mapping cannot help, so the access gets an abort, as on the hardware.
    NotPermitted {
        /// The faulting IPA.
        ipa: u64,
        /// What the access was.
        access: Access,
    },
    /// The walk met a descriptor this module never writes, or a table outside the pools.
    Corrupt {
        /// The IPA being walked.
        ipa: u64,
        /// The level of the offending descriptor.
        level: u8,
    },
}

/// Why the memory map or the pools cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The IPA size is outside [`IPA_BITS`](super::IPA_BITS).
    IpaBits(u8),
    /// RAM range `index` does not start and end on a page boundary.
    RamMisaligned {
        /// Its position in the list.
        index: usize,
    },
    /// RAM range `index` is empty.
    RamEmpty {
        /// Its position in the list.
        index: usize,
    },
    /// RAM range `index` starts before the previous one ends.
    RamUnsorted {
        /// Its position in the list.
        index: usize,
    },
    /// RAM range `index` ends above the IPA limit.
    RamBeyondIpaLimit {
        /// Its position in the list.
        index: usize,
    },
    /// The pool's physical address is not 4 KiB aligned.
    PoolMisaligned(PoolKind),
    /// The pool reaches beyond the 48-bit output address a table descriptor holds.
    PoolBeyondOutputAddress(PoolKind),
    /// The two pools (or a guest's root and pool) share memory.
    PoolsOverlap,
    /// The memory pool has tables in use already, so the root would not be its first table.
    PoolsInUse,
    /// A guest's root table cannot be linked from VTTBR_EL2.
    GuestRoot(PoolError),
    /// A guest's table pool cannot be linked from a descriptor.
    GuestPool(PoolError),
    /// The memory pool is smaller than [`memory_pool_tables`](super::memory_pool_tables).
    MemoryPoolTooSmall {
        /// Tables needed.
        needed: usize,
        /// Tables given.
        given: usize,
    },
}

/// Counters for benchmarks and dumps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Faults handled, whatever their outcome.
    pub faults: u64,
    /// Faults on an IPA already mapped.
    pub already_mapped: u64,
    /// Faults refused because the host does not own the page.
    pub refused: u64,
    /// Faults that failed otherwise (outside the IPA space, out of tables, corrupt tables).
    pub failed: u64,
    /// Leaves mapped by faults, by level (index 1: 1 GiB, 2: 2 MiB, 3: 4 KiB; 0 unused): the
    /// faulting page's and those the table fill mapped with it.
    pub blocks_mapped: [u64; 4],
    /// Times every device mapping was dropped to recycle the device pool.
    pub device_recycles: u64,
    /// Memory-pool tables in use (the root included).
    pub memory_tables: usize,
    /// Device-pool tables in use.
    pub device_tables: usize,
    /// The most device-pool tables ever in use at once.
    pub device_tables_peak: usize,
}
