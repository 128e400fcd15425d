//! The table fill of [`MappingPolicy::LargestBlock`](super::MappingPolicy::LargestBlock): once
//! a fault has mapped its leaf, the other empty entries of the tables its walk went through
//! are mapped too, where the host wholly owns their block (see the module docs of
//! [`stage2`](super) for why, and why the pools' bounds still hold).

use super::descriptor::{self, Descriptor, align_down, index};
use super::pools::TableRef;
use super::{FIRST_BLOCK_LEVEL, HostStage2, IpaRange, Region};

impl HostStage2<'_> {
    /// Maps, as identity leaves of their level with `region`'s attributes, the empty entries
    /// of the tables on the walk to `page`, from the table holding the entry at `from_level`
    /// (the first empty entry the fault's walk met) down to the one holding the faulting
    /// leaf at `leaf_level`, wherever the entry's block lies wholly inside `region` and the
    /// host owns all of it. Level-0 entries cannot be blocks and are never filled.
    ///
    /// Returns the leaves mapped, by level. Allocates no table and writes only entries that
    /// were empty. The fault is served already, so a walk that does not go on as expected
    /// (which the caller's own walk just ruled out) ends the fill early rather than failing,
    /// still counting what it mapped.
    pub(super) fn fill(
        &mut self,
        page: u64,
        from_level: u8,
        leaf_level: u8,
        region: &Region,
        host_owns: &mut impl FnMut(IpaRange) -> bool,
    ) -> [u16; 4] {
        let mut filled = [0; 4];
        let mut table = self.root;
        for level in 0..=leaf_level {
            if level >= from_level.max(FIRST_BLOCK_LEVEL) {
                filled[usize::from(level)] = self.fill_table(table, level, page, region, host_owns);
            }
            if level == leaf_level {
                break;
            }
            match self.child(table, level, page) {
                Some(child) => table = child,
                None => break,
            }
        }
        filled
    }

    /// Fills `table`, at `level` (1 to 3) on the walk to `page`, and returns how many leaves
    /// it wrote; it stops at an entry it cannot read or write.
    fn fill_table(
        &mut self,
        table: TableRef,
        level: u8,
        page: u64,
        region: &Region,
        host_owns: &mut impl FnMut(IpaRange) -> bool,
    ) -> u16 {
        let mut filled = 0;
        // A table at `level` covers one entry of the level above.
        let base = align_down(page, level - 1);
        for (position, entry) in self.entries(level, base) {
            if !region.range.contains_range(&entry) {
                continue;
            }
            match self.read(table, position, entry.start, level) {
                Ok(0) if host_owns(entry) => {}
                Ok(_) => continue,
                Err(_) => break,
            }
            let leaf = descriptor::leaf(entry.start, level, region.kind);
            if self
                .write(table, position, entry.start, level, leaf)
                .is_err()
            {
                break;
            }
            filled += 1;
        }
        filled
    }

    /// The table the entry for `page` in `table` (at `level`) links to, if it is a table
    /// descriptor.
    fn child(&self, table: TableRef, level: u8, page: u64) -> Option<TableRef> {
        let desc = self.read(table, index(page, level), page, level).ok()?;
        match descriptor::decode(desc, level) {
            Descriptor::Table(pa) => self.resolve(pa, page, level).ok(),
            _ => None,
        }
    }
}
