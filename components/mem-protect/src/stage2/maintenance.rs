//! Changes to the host stage 2 other than lazy mapping: owner annotations, unmapping, and
//! recycling the device pool.

use super::descriptor::{self, Descriptor, align_down, entry_size};
use super::pools::TableRef;
use super::{
    HostStage2, Invalidation, IpaRange, LAST_LEVEL, OwnerId, PAGE_SIZE, PoolKind, Stage2Error,
    TlbMaintenance,
};

impl HostStage2<'_> {
    /// Marks `page` as owned by `owner` with an annotated invalid entry (see the module docs),
    /// replacing a mapping or an older annotation. A block holding the page is split first,
    /// break-before-make, so every other page it mapped stays mapped identically. Fails with
    /// [`Stage2Error::OutOfTables`] (changing nothing) if the tables this needs are not free;
    /// for the device pool, [`Self::recycle_device_mappings`] and a retry can make room.
    pub fn set_owner_annotation(
        &mut self,
        page: u64,
        owner: OwnerId,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), Stage2Error> {
        self.check_page(page)?;
        let slot = self.walk(page)?;
        let annotation = descriptor::annotation(owner);
        let leaf_range = IpaRange::sized(align_down(page, slot.level), entry_size(slot.level));
        match descriptor::decode(slot.desc, slot.level) {
            Descriptor::Empty => {
                let desc = self.build(&slot, page, LAST_LEVEL, annotation, None)?;
                self.set(&slot, page, desc)
            }
            Descriptor::Annotated(_) if slot.level == LAST_LEVEL => {
                self.set(&slot, page, annotation)
            }
            Descriptor::Leaf(_) if slot.level == LAST_LEVEL => {
                self.set(&slot, page, annotation)?;
                tlb.invalidate(Invalidation::Range(leaf_range));
                Ok(())
            }
            Descriptor::Leaf(block) => {
                let table = self.build(&slot, page, LAST_LEVEL, annotation, Some(block))?;
                self.set(&slot, page, 0)?;
                tlb.invalidate(Invalidation::Range(leaf_range));
                self.set(&slot, page, table)
            }
            Descriptor::Annotated(_) | Descriptor::Table(_) | Descriptor::Unknown => {
                Err(Stage2Error::Corrupt {
                    ipa: page,
                    level: slot.level,
                })
            }
        }
    }

    /// Removes the annotation of `page`, if it has one, and returns its owner. The page becomes
    /// unmapped; the host's next access maps it again (if the host then owns it).
    pub fn clear_annotation(&mut self, page: u64) -> Result<Option<OwnerId>, Stage2Error> {
        self.check_page(page)?;
        let slot = self.walk(page)?;
        match descriptor::decode(slot.desc, slot.level) {
            Descriptor::Annotated(owner) => {
                self.set(&slot, page, 0)?;
                Ok(Some(owner))
            }
            _ => Ok(None),
        }
    }

    /// Unmaps every mapping that overlaps the page-aligned `range`, invalidating each, and
    /// returns the span of what was removed. A block reaching past the range is removed whole
    /// (the host's identity map is rebuilt lazily on the next fault). Annotations stay.
    pub fn unmap(
        &mut self,
        range: IpaRange,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<Option<IpaRange>, Stage2Error> {
        for address in [range.start, range.end] {
            if !address.is_multiple_of(PAGE_SIZE) {
                return Err(Stage2Error::Misaligned(address));
            }
        }
        if range.end > self.map.ipa_limit() {
            return Err(Stage2Error::OutsideIpaSpace(range.end));
        }
        let mut removed = None;
        if !range.is_empty() {
            self.unmap_in(self.root, 0, 0, &range, tlb, &mut removed)?;
        }
        Ok(removed)
    }

    fn unmap_in(
        &mut self,
        table: TableRef,
        level: u8,
        base: u64,
        range: &IpaRange,
        tlb: &mut impl TlbMaintenance,
        removed: &mut Option<IpaRange>,
    ) -> Result<(), Stage2Error> {
        for (position, entry) in self.entries(level, base) {
            if !entry.overlaps(range) {
                continue;
            }
            let desc = self.read(table, position, entry.start, level)?;
            match descriptor::decode(desc, level) {
                Descriptor::Table(pa) => {
                    let child = self.resolve(pa, entry.start, level)?;
                    self.unmap_in(child, level + 1, entry.start, range, tlb, removed)?;
                }
                Descriptor::Leaf(_) => {
                    self.write(table, position, entry.start, level, 0)?;
                    tlb.invalidate(Invalidation::Range(entry));
                    *removed = Some(match *removed {
                        Some(span) => IpaRange::new(span.start.min(entry.start), entry.end),
                        None => entry,
                    });
                }
                Descriptor::Empty | Descriptor::Annotated(_) | Descriptor::Unknown => {}
            }
        }
        Ok(())
    }

    /// Drops every device mapping and frees every device-pool table: device leaves in
    /// memory-pool tables are cleared, and every descriptor linking a device-pool table is
    /// cleared with everything below it. Then the whole VMID is invalidated (before any freed
    /// table can be reused). RAM mappings are untouched, and so are annotations, except those
    /// of MMIO pages held in device-pool tables, which go with their tables.
    pub fn recycle_device_mappings(
        &mut self,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), Stage2Error> {
        let result = self.unlink_device(self.root, 0, 0);
        tlb.invalidate(Invalidation::All);
        if result.is_ok() {
            self.pools.free_all_device_tables();
            self.counters.device_recycles += 1;
        }
        result
    }

    fn unlink_device(&mut self, table: TableRef, level: u8, base: u64) -> Result<(), Stage2Error> {
        for (position, entry) in self.entries(level, base) {
            let desc = self.read(table, position, entry.start, level)?;
            let clear = match descriptor::decode(desc, level) {
                Descriptor::Table(pa) => {
                    let child = self.resolve(pa, entry.start, level)?;
                    // A memory-pool table wholly inside RAM holds no device mapping.
                    if child.pool == PoolKind::Memory && !self.map.within_ram(&entry) {
                        self.unlink_device(child, level + 1, entry.start)?;
                    }
                    child.pool == PoolKind::Device
                }
                Descriptor::Leaf(_) => !self.map.intersects_ram(&entry),
                Descriptor::Empty | Descriptor::Annotated(_) | Descriptor::Unknown => false,
            };
            if clear {
                self.write(table, position, entry.start, level, 0)?;
            }
        }
        Ok(())
    }
}
