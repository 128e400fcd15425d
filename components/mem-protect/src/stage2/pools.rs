//! The two table pools of the host's stage 2, carved from memory the component owns, and the
//! bump allocator ([`Pool`]) they and each guest's pool ([`super::GuestStage2`]) are made of.
//!
//! Every pool allocates by bumping an index. Memory-pool tables are never freed: the pool is
//! sized for every RAM window (see [`super::memory_pool_tables`]), and a table once linked stays
//! linked. Device-pool tables are only ever freed all together, when every device mapping is
//! recycled, which resets the index. Guest tables are never freed.

use super::SetupError;

/// Entries in a translation table with a 4 KiB granule.
pub const TABLE_ENTRIES: usize = 512;

/// One translation table: 512 descriptors, 4 KiB, 4 KiB aligned in physical memory.
pub type Table = [u64; TABLE_ENTRIES];

/// Bytes in a table.
const TABLE_BYTES: u64 = 4096;

/// Table descriptors hold a 48-bit output address (bits 47:12), so tables must lie below it.
const OUTPUT_ADDRESS_LIMIT: u64 = 1 << 48;

/// Which pool a table comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Tables covering any RAM; sized never to run out.
    Memory,
    /// Tables covering only MMIO; recycled when they run out.
    Device,
}

/// A table in one of the pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TableRef {
    pub pool: PoolKind,
    pub index: usize,
}

/// Why memory cannot hold tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// Its physical address is not 4 KiB aligned.
    Misaligned,
    /// It reaches beyond the 48-bit output address a table descriptor holds.
    BeyondOutputAddress,
}

/// Tables at a known physical address, handed out in order.
pub(super) struct Pool<'a> {
    tables: &'a mut [Table],
    base_pa: u64,
    used: usize,
    peak: usize,
}

impl<'a> Pool<'a> {
    pub(super) fn new(tables: &'a mut [Table], base_pa: u64) -> Result<Self, PoolError> {
        check_table_memory(base_pa, tables.len())?;
        Ok(Self {
            tables,
            base_pa,
            used: 0,
            peak: 0,
        })
    }

    pub(super) fn end_pa(&self) -> u64 {
        self.base_pa + self.tables.len() as u64 * TABLE_BYTES
    }

    /// A zeroed table's index, or `None` when the pool is exhausted.
    pub(super) fn alloc(&mut self) -> Option<usize> {
        let index = self.used;
        self.tables.get_mut(index)?.fill(0);
        self.used += 1;
        self.peak = self.peak.max(self.used);
        Some(index)
    }

    /// Tables in use.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Tables still free.
    pub(super) fn available(&self) -> usize {
        self.tables.len() - self.used
    }

    /// The raw tables and the physical address of the first.
    pub(super) fn raw(&self) -> (&[Table], u64) {
        (self.tables, self.base_pa)
    }

    /// The physical address of table `index`.
    pub(super) fn pa_of(&self, index: usize) -> u64 {
        self.base_pa + index as u64 * TABLE_BYTES
    }

    /// Table `index`, if it is in use.
    pub(super) fn get(&self, index: usize) -> Option<&Table> {
        self.tables[..self.used].get(index)
    }

    /// Table `index`, if it is in use.
    pub(super) fn get_mut(&mut self, index: usize) -> Option<&mut Table> {
        self.tables[..self.used].get_mut(index)
    }

    /// The in-use table at physical address `pa`, if there is one.
    pub(super) fn index_of(&self, pa: u64) -> Option<usize> {
        let offset = pa.checked_sub(self.base_pa)?;
        if !offset.is_multiple_of(TABLE_BYTES) {
            return None;
        }
        let index = usize::try_from(offset / TABLE_BYTES).ok()?;
        (index < self.used).then_some(index)
    }
}

/// The memory pool and the device pool.
pub struct TablePools<'a> {
    memory: Pool<'a>,
    device: Pool<'a>,
}

/// Checks that `tables` tables from physical address `base_pa` can be linked from a
/// descriptor: 4 KiB aligned, and ending below the 48-bit output address.
pub(super) fn check_table_memory(base_pa: u64, tables: usize) -> Result<(), PoolError> {
    if !base_pa.is_multiple_of(TABLE_BYTES) {
        return Err(PoolError::Misaligned);
    }
    let end = (tables as u64)
        .checked_mul(TABLE_BYTES)
        .and_then(|bytes| base_pa.checked_add(bytes));
    if end.is_none_or(|end| end > OUTPUT_ADDRESS_LIMIT) {
        return Err(PoolError::BeyondOutputAddress);
    }
    Ok(())
}

impl<'a> TablePools<'a> {
    /// Pools over `memory` (at physical address `memory_pa`) and `device` (at `device_pa`).
    /// Their contents need not be zero: a table is zeroed when it is allocated.
    pub fn new(
        memory: &'a mut [Table],
        memory_pa: u64,
        device: &'a mut [Table],
        device_pa: u64,
    ) -> Result<Self, SetupError> {
        let setup_error = |kind| {
            move |error| match error {
                PoolError::Misaligned => SetupError::PoolMisaligned(kind),
                PoolError::BeyondOutputAddress => SetupError::PoolBeyondOutputAddress(kind),
            }
        };
        let memory = Pool::new(memory, memory_pa).map_err(setup_error(PoolKind::Memory))?;
        let device = Pool::new(device, device_pa).map_err(setup_error(PoolKind::Device))?;
        let both_in_use = !memory.tables.is_empty() && !device.tables.is_empty();
        if both_in_use && memory.base_pa < device.end_pa() && device.base_pa < memory.end_pa() {
            return Err(SetupError::PoolsOverlap);
        }
        Ok(Self { memory, device })
    }

    fn pool(&self, kind: PoolKind) -> &Pool<'a> {
        match kind {
            PoolKind::Memory => &self.memory,
            PoolKind::Device => &self.device,
        }
    }

    fn pool_mut(&mut self, kind: PoolKind) -> &mut Pool<'a> {
        match kind {
            PoolKind::Memory => &mut self.memory,
            PoolKind::Device => &mut self.device,
        }
    }

    /// The raw tables of a pool and the physical address of the first: what a walker (a test,
    /// a dump) needs to follow descriptors without this module's help.
    pub fn raw(&self, kind: PoolKind) -> (&[Table], u64) {
        self.pool(kind).raw()
    }

    /// Tables a pool holds.
    pub fn capacity(&self, kind: PoolKind) -> usize {
        self.pool(kind).tables.len()
    }

    /// Tables of a pool in use now.
    pub fn used(&self, kind: PoolKind) -> usize {
        self.pool(kind).used()
    }

    /// The most tables of a pool ever in use at once.
    pub fn peak(&self, kind: PoolKind) -> usize {
        self.pool(kind).peak
    }

    /// Tables of a pool still free.
    pub(super) fn available(&self, kind: PoolKind) -> usize {
        self.pool(kind).available()
    }

    /// A zeroed table from pool `kind`, or `None` when it is exhausted.
    pub(super) fn alloc(&mut self, kind: PoolKind) -> Option<TableRef> {
        let index = self.pool_mut(kind).alloc()?;
        Some(TableRef { pool: kind, index })
    }

    /// Frees every device-pool table. The caller has unlinked them all and invalidated the
    /// TLBs, so no walker can still reach one.
    pub(super) fn free_all_device_tables(&mut self) {
        self.device.used = 0;
    }

    /// The in-use table a table descriptor's address `pa` points at.
    pub(super) fn resolve(&self, pa: u64) -> Option<TableRef> {
        [PoolKind::Memory, PoolKind::Device]
            .into_iter()
            .find_map(|pool| {
                let index = self.pool(pool).index_of(pa)?;
                Some(TableRef { pool, index })
            })
    }

    /// The physical address of a table.
    pub(super) fn pa_of(&self, table: TableRef) -> u64 {
        self.pool(table.pool).pa_of(table.index)
    }

    pub(super) fn table(&self, table: TableRef) -> Option<&Table> {
        self.pool(table.pool).tables.get(table.index)
    }

    pub(super) fn table_mut(&mut self, table: TableRef) -> Option<&mut Table> {
        self.pool_mut(table.pool).tables.get_mut(table.index)
    }
}
