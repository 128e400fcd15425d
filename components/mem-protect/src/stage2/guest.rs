//! A guest VM's stage-2 tables: IPA ≠ PA, mapped in full when a memslot or device is added,
//! never lazily.
//!
//! The format is the host's (same descriptors and attributes, level-0 root, 4 KiB granule,
//! VTCR_EL2.SL0 = 2: the kernel uses one VTCR for every world), so this module writes its
//! leaves with [`super::descriptor`]: RAM as Normal write-back inner-shareable RWX, devices as
//! Device-nGnRE RW execute-never. What differs is how tables are filled:
//!
//! - A range is mapped at once with the leaves [`plan::leaves`] lists: at each address the
//!   largest block (1 GiB, 2 MiB, else a 4 KiB page) that fits and that both the IPA and the
//!   PA are aligned for. A guest with locked memslots takes no stage-2 fault on its RAM (seed
//!   002), so there is nothing to map lazily, and the largest blocks keep its TLB reach high.
//! - The root is a table of its own (the `GUEST_STAGE2_ROOTS` slot the kernel loads into
//!   VTTBR_EL2); the other tables come from this guest's share of the guest pool, which
//!   `build.rs` sizes with the same plan ([`plan::vm_tables`]).
//! - Mapping is a reservation then a commit: [`GuestStage2::reserve`] walks every planned leaf,
//!   refuses a range that meets anything already mapped and counts the tables it lacks against
//!   what the pool has left; [`GuestStage2::commit`] then writes, and cannot run out. So a
//!   refused request changes nothing, and the caller can make its other checks (ownership)
//!   between the two (DESIGN decision 6).
//! - Memslots and devices are never unmapped or split, and leaves are only written into empty
//!   entries, so mapping them needs no TLB maintenance (invalid entries are never cached). A
//!   new table is zeroed before the descriptor linking it is written, with a release fence
//!   between, as on the host.
//!
//! # Shared aliases (seed 004)
//!
//! A VM with a shared IPA bit sees a page it shared (MEM_SHARE) at a second IPA, the page's
//! IPA with the bit set. Aliases are single pages ([`Attributes::SHARED`]: RW, never
//! executable), written into and cleared from level-3 tables that a memslot's reservation
//! prepared when it was added ([`GuestStage2::reserve_with_alias`]: the tables its alias
//! range needs, linked and empty). So mapping an alias takes no table and cannot run out
//! ([`GuestStage2::reserve_alias_page`] refuses where the tables are missing instead), and
//! unmapping one ([`GuestStage2::unmap_alias`]) only clears an entry: the caller then has the
//! guest's TLB entry for that IPA invalidated, since a valid entry may be cached. Nothing but
//! an alias page is ever cleared.

use core::sync::atomic::{Ordering, fence};

use super::descriptor::{self, Descriptor, align_down, index};
use super::plan::{self, GuestRange, TableCount};
use super::pools::Pool;
use super::{Attributes, Entry, IPA_BITS, LAST_LEVEL, RegionKind, SetupError, Stage2Error, Table};

/// How a committed leaf is written.
#[derive(Clone, Copy)]
enum LeafKind {
    /// RAM or a device, the largest blocks the plan allows.
    Region(RegionKind),
    /// A shared alias page.
    Alias,
}

/// A table of a guest's stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GuestTable {
    Root,
    Pool(usize),
}

/// Why a range cannot be mapped. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMapError {
    /// The range is empty, not page aligned, wraps, or reaches past the IPA limit or the
    /// 48-bit output address.
    BadRange,
    /// The IPA is mapped already (by a leaf, or inside a block).
    Overlaps {
        /// The first IPA of the planned leaf that met the mapping.
        ipa: u64,
    },
    /// The guest's pool has `available` tables; the range needs `needed` more.
    OutOfTables {
        /// Tables the range needs.
        needed: usize,
        /// Tables the pool has left.
        available: usize,
    },
    /// The walk met a descriptor this module never writes, or a table outside the guest's.
    Corrupt {
        /// The IPA walked.
        ipa: u64,
        /// The level of the offending descriptor.
        level: u8,
    },
    /// A reservation was committed to another stage 2, or after another commit.
    StaleReservation,
    /// An alias page's level-3 table does not exist: no memslot prepared it.
    Unprepared {
        /// The alias IPA.
        ipa: u64,
    },
    /// The entry at this IPA is a mapping that is not a shared alias page (a memslot's block
    /// or page, a device): aliases never replace or remove one.
    NotAnAlias {
        /// The IPA.
        ipa: u64,
    },
}

/// A range [`GuestStage2::reserve`] checked: it can be committed as long as nothing else was
/// committed to the same stage 2 in between.
#[must_use = "a reservation maps nothing until it is committed"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    range: GuestRange,
    /// The first IPA of the range's alias, whose tables the commit prepares.
    alias: Option<u64>,
    /// Whether the leaf is a shared alias page.
    shared: bool,
    root_pa: u64,
    generation: u64,
    tables: usize,
    leaves: [u64; 4],
}

impl Reservation {
    /// The tables the commit allocates.
    pub fn tables(&self) -> usize {
        self.tables
    }

    /// The leaves the commit writes, by level (index 1: 1 GiB, 2: 2 MiB, 3: 4 KiB; 0 unused).
    pub fn leaves(&self) -> [u64; 4] {
        self.leaves
    }
}

/// One guest's stage 2.
pub struct GuestStage2<'a> {
    root: &'a mut Table,
    root_pa: u64,
    pool: Pool<'a>,
    ipa_limit: u64,
    /// Commits so far: a reservation is only good for the generation it was made in.
    generation: u64,
    /// Leaves written, by level.
    leaves: [u64; 4],
    /// Alias pages mapped now.
    aliases: u64,
}

impl<'a> GuestStage2<'a> {
    /// An empty stage 2 with its root at `root` (physical address `root_pa`, which the kernel
    /// loads into VTTBR_EL2; zeroed here) and its other tables from `pool` (at `pool_pa`),
    /// serving IPAs below 2^`ipa_bits`.
    pub fn new(
        root: &'a mut Table,
        root_pa: u64,
        pool: &'a mut [Table],
        pool_pa: u64,
        ipa_bits: u8,
    ) -> Result<Self, SetupError> {
        if !IPA_BITS.contains(&ipa_bits) {
            return Err(SetupError::IpaBits(ipa_bits));
        }
        super::pools::check_table_memory(root_pa, 1).map_err(SetupError::GuestRoot)?;
        let pool = Pool::new(pool, pool_pa).map_err(SetupError::GuestPool)?;
        if pool.raw().1 < root_pa + 4096 && root_pa < pool.end_pa() {
            return Err(SetupError::PoolsOverlap);
        }
        root.fill(0);
        Ok(Self {
            root,
            root_pa,
            pool,
            ipa_limit: 1 << ipa_bits,
            generation: 0,
            leaves: [0; 4],
            aliases: 0,
        })
    }

    /// The physical address of the level-0 root: VTTBR_EL2.BADDR.
    pub fn root_pa(&self) -> u64 {
        self.root_pa
    }

    /// The first IPA past the IPA space.
    pub fn ipa_limit(&self) -> u64 {
        self.ipa_limit
    }

    /// Pool tables in use (the root not counted).
    pub fn tables_used(&self) -> usize {
        self.pool.used()
    }

    /// Pool tables still free.
    pub fn tables_available(&self) -> usize {
        self.pool.available()
    }

    /// Leaves memslots and devices wrote so far, by level (index 1: 1 GiB, 2: 2 MiB, 3: 4 KiB).
    pub fn leaves(&self) -> [u64; 4] {
        self.leaves
    }

    /// Shared alias pages mapped now.
    pub fn aliases(&self) -> u64 {
        self.aliases
    }

    /// The root and the pool as raw tables with their physical addresses: what a walker (a
    /// test, a dump) needs to follow descriptors without this module's help.
    pub fn raw(&self) -> [(&[Table], u64); 2] {
        [
            (core::slice::from_ref(&*self.root), self.root_pa),
            self.pool.raw(),
        ]
    }

    /// Checks that IPA `[ipa, ipa + size)` → PA `[pa, pa + size)` can be mapped: the range is
    /// valid, every planned leaf's entry is empty (nothing of it is mapped), and the pool has
    /// the tables it lacks. Changes nothing.
    pub fn reserve(&self, ipa: u64, pa: u64, size: u64) -> Result<Reservation, GuestMapError> {
        self.reserve_with_alias(ipa, pa, size, None)
    }

    /// [`Self::reserve`], and with `alias` (the first IPA of the range's shared alias, above
    /// the range and page aligned) also the level-3 tables that would map every page of
    /// `[alias, alias + size)`: none of those pages may be mapped, and the tables missing are
    /// counted too. The commit then links them, empty, so that later alias pages need none.
    pub fn reserve_with_alias(
        &self,
        ipa: u64,
        pa: u64,
        size: u64,
        alias: Option<u64>,
    ) -> Result<Reservation, GuestMapError> {
        let range = self.checked_range(ipa, pa, size)?;
        if let Some(alias) = alias {
            // Above the range, so the table count below stays in IPA order.
            let fits = alias.is_multiple_of(plan::PAGE)
                && alias >= ipa + size
                && alias
                    .checked_add(size)
                    .is_some_and(|end| end <= self.ipa_limit);
            if !fits {
                return Err(GuestMapError::BadRange);
            }
        }
        let mut missing = TableCount::default();
        let mut leaves = [0u64; 4];
        for leaf in plan::leaves(range) {
            leaves[usize::from(leaf.level)] += 1;
            let mut table = GuestTable::Root;
            let mut level = 0;
            while level < leaf.level {
                let desc = self.read(table, leaf.ipa, level)?;
                match descriptor::decode(desc, level) {
                    Descriptor::Table(pa) => table = self.resolve(pa, leaf.ipa, level)?,
                    Descriptor::Empty => break,
                    Descriptor::Leaf(_) => return Err(GuestMapError::Overlaps { ipa: leaf.ipa }),
                    Descriptor::Annotated(_) | Descriptor::Unknown => {
                        return Err(GuestMapError::Corrupt {
                            ipa: leaf.ipa,
                            level,
                        });
                    }
                }
                level += 1;
            }
            if level < leaf.level {
                // The entry at `level` is empty: every table below it is missing.
                missing.add(leaf.ipa, level + 1, leaf.level);
            } else if self.read(table, leaf.ipa, level)? != 0 {
                return Err(GuestMapError::Overlaps { ipa: leaf.ipa });
            }
        }
        if let Some(alias) = alias {
            for window in plan::alias_windows(alias, size) {
                self.count_alias_window(window, alias, alias + size, &mut missing)?;
            }
        }
        let (needed, available) = (missing.tables(), self.pool.available());
        if needed > available {
            return Err(GuestMapError::OutOfTables { needed, available });
        }
        Ok(Reservation {
            range,
            alias,
            shared: false,
            root_pa: self.root_pa,
            generation: self.generation,
            tables: needed,
            leaves,
        })
    }

    /// Maps what `reservation` checked, RAM or device attributes as `kind` says (and links
    /// the empty tables of its alias, if it has one), and returns the leaves written by level.
    /// Fails only for a reservation of another stage 2, one made before another change, or an
    /// alias page's (nothing is written then): the reservation counted every table, so the
    /// pool cannot run out.
    pub fn commit(
        &mut self,
        reservation: Reservation,
        kind: RegionKind,
    ) -> Result<[u64; 4], GuestMapError> {
        if reservation.shared {
            return Err(GuestMapError::StaleReservation);
        }
        self.commit_as(reservation, LeafKind::Region(kind))?;
        for (total, more) in self.leaves.iter_mut().zip(reservation.leaves) {
            *total += more;
        }
        Ok(reservation.leaves)
    }

    /// Checks that the page at `ipa` can become a shared alias of the page at `pa`: both page
    /// aligned, `ipa` in the IPA space, its level-3 table there already (a memslot's
    /// reservation prepared it: [`GuestMapError::Unprepared`] otherwise) and its entry empty.
    /// Changes nothing.
    pub fn reserve_alias_page(&self, ipa: u64, pa: u64) -> Result<Reservation, GuestMapError> {
        // A missing table is missing whether or not the pool could make it.
        let reservation = match self.reserve(ipa, pa, plan::PAGE) {
            Err(GuestMapError::OutOfTables { .. }) => Err(GuestMapError::Unprepared { ipa }),
            other => other,
        }?;
        if reservation.tables != 0 {
            return Err(GuestMapError::Unprepared { ipa });
        }
        Ok(Reservation {
            shared: true,
            ..reservation
        })
    }

    /// Maps the alias page [`Self::reserve_alias_page`] checked. Needs no TLB maintenance (the
    /// entry was empty) and takes no table; fails, writing nothing, only for a stale
    /// reservation or one that is not an alias page's.
    pub fn commit_alias(&mut self, reservation: Reservation) -> Result<(), GuestMapError> {
        if !reservation.shared {
            return Err(GuestMapError::StaleReservation);
        }
        self.commit_as(reservation, LeafKind::Alias)?;
        self.aliases += 1;
        Ok(())
    }

    /// What the entry at `ipa` (page aligned) holds as an alias: the physical page a shared
    /// alias page maps, or `None` if nothing is mapped there. [`GuestMapError::NotAnAlias`]
    /// for any other mapping (a block over it, a page with other attributes).
    pub fn alias_at(&self, ipa: u64) -> Result<Option<u64>, GuestMapError> {
        let Some(table) = self.page_table(ipa)? else {
            return Ok(None);
        };
        let level = LAST_LEVEL;
        match descriptor::decode(self.read(table, ipa, level)?, level) {
            Descriptor::Empty => Ok(None),
            Descriptor::Leaf(desc) if Attributes::of(desc) == Attributes::SHARED => {
                Ok(Some(descriptor::leaf_address(desc, level)))
            }
            Descriptor::Leaf(_) => Err(GuestMapError::NotAnAlias { ipa }),
            _ => Err(GuestMapError::Corrupt { ipa, level }),
        }
    }

    /// Unmaps the shared alias page at `ipa`, if one is mapped there, and returns the physical
    /// page it mapped. Anything but an alias page is refused ([`Self::alias_at`]) and left
    /// alone. The caller must then have the guest's TLB entries for `ipa` invalidated before
    /// it relies on the page being unreachable there.
    pub fn unmap_alias(&mut self, ipa: u64) -> Result<Option<u64>, GuestMapError> {
        let Some(pa) = self.alias_at(ipa)? else {
            return Ok(None);
        };
        // `alias_at` walked to this table.
        let table = self
            .page_table(ipa)?
            .ok_or(GuestMapError::Corrupt { ipa, level: 0 })?;
        self.write(table, ipa, LAST_LEVEL, 0)?;
        self.generation += 1;
        self.aliases -= 1;
        Ok(Some(pa))
    }

    fn commit_as(&mut self, reservation: Reservation, kind: LeafKind) -> Result<(), GuestMapError> {
        if reservation.root_pa != self.root_pa || reservation.generation != self.generation {
            return Err(GuestMapError::StaleReservation);
        }
        self.generation += 1;
        for leaf in plan::leaves(reservation.range) {
            let mut table = GuestTable::Root;
            for level in 0..leaf.level {
                table = self.descend(table, leaf.ipa, level)?;
            }
            let desc = match kind {
                LeafKind::Region(kind) => descriptor::leaf(leaf.pa, leaf.level, kind),
                LeafKind::Alias => descriptor::shared_page(leaf.pa),
            };
            self.write(table, leaf.ipa, leaf.level, desc)?;
        }
        if let Some(alias) = reservation.alias {
            for window in plan::alias_windows(alias, reservation.range.size) {
                let mut table = GuestTable::Root;
                for level in 0..LAST_LEVEL {
                    table = self.descend(table, window, level)?;
                }
            }
        }
        Ok(())
    }

    /// Counts the tables the alias window from `window` (2 MiB) lacks, and checks that no page
    /// of `[start, end)` in it is mapped (nor any block over it).
    fn count_alias_window(
        &self,
        window: u64,
        start: u64,
        end: u64,
        missing: &mut TableCount,
    ) -> Result<(), GuestMapError> {
        let mut table = GuestTable::Root;
        for level in 0..LAST_LEVEL {
            match descriptor::decode(self.read(table, window, level)?, level) {
                Descriptor::Table(pa) => table = self.resolve(pa, window, level)?,
                Descriptor::Empty => {
                    missing.add(window, level + 1, LAST_LEVEL);
                    return Ok(());
                }
                Descriptor::Leaf(_) => {
                    return Err(GuestMapError::Overlaps {
                        ipa: window.max(start),
                    });
                }
                Descriptor::Annotated(_) | Descriptor::Unknown => {
                    return Err(GuestMapError::Corrupt { ipa: window, level });
                }
            }
        }
        let window_end = window + descriptor::entry_size(LAST_LEVEL - 1);
        let pages = window.max(start)..window_end.min(end);
        for page in pages.step_by(plan::PAGE as usize) {
            if self.read(table, page, LAST_LEVEL)? != 0 {
                return Err(GuestMapError::Overlaps { ipa: page });
            }
        }
        Ok(())
    }

    /// The level-3 table holding the entry for `ipa` (page aligned, in the IPA space), or
    /// `None` if the walk meets an empty entry first. A block on the way is
    /// [`GuestMapError::NotAnAlias`].
    fn page_table(&self, ipa: u64) -> Result<Option<GuestTable>, GuestMapError> {
        if !ipa.is_multiple_of(plan::PAGE) || ipa >= self.ipa_limit {
            return Err(GuestMapError::BadRange);
        }
        let mut table = GuestTable::Root;
        for level in 0..LAST_LEVEL {
            match descriptor::decode(self.read(table, ipa, level)?, level) {
                Descriptor::Table(pa) => table = self.resolve(pa, ipa, level)?,
                Descriptor::Empty => return Ok(None),
                Descriptor::Leaf(_) => return Err(GuestMapError::NotAnAlias { ipa }),
                Descriptor::Annotated(_) | Descriptor::Unknown => {
                    return Err(GuestMapError::Corrupt { ipa, level });
                }
            }
        }
        Ok(Some(table))
    }

    /// [`Self::reserve`], then [`Self::commit`].
    pub fn map(
        &mut self,
        ipa: u64,
        pa: u64,
        size: u64,
        kind: RegionKind,
    ) -> Result<[u64; 4], GuestMapError> {
        let reservation = self.reserve(ipa, pa, size)?;
        self.commit(reservation, kind)
    }

    /// What the tables say about `ipa`.
    pub fn lookup(&self, ipa: u64) -> Result<Entry, Stage2Error> {
        if ipa >= self.ipa_limit {
            return Ok(Entry::Unmapped);
        }
        let corrupt = |level| Stage2Error::Corrupt { ipa, level };
        let mut table = GuestTable::Root;
        for level in 0..=LAST_LEVEL {
            let desc = self.read(table, ipa, level).map_err(|_| corrupt(level))?;
            match descriptor::decode(desc, level) {
                Descriptor::Empty => return Ok(Entry::Unmapped),
                Descriptor::Table(pa) => {
                    table = self.resolve(pa, ipa, level).map_err(|_| corrupt(level))?;
                }
                Descriptor::Leaf(desc) => {
                    return Ok(Entry::Mapped {
                        pa: descriptor::leaf_address(desc, level) + (ipa - align_down(ipa, level)),
                        level,
                        attrs: Attributes::of(desc),
                    });
                }
                Descriptor::Annotated(_) | Descriptor::Unknown => return Err(corrupt(level)),
            }
        }
        Err(corrupt(LAST_LEVEL))
    }

    /// The range, if it is page aligned, non-empty, below the IPA limit and the output
    /// address limit, and does not wrap.
    fn checked_range(&self, ipa: u64, pa: u64, size: u64) -> Result<GuestRange, GuestMapError> {
        let aligned = [ipa, pa, size]
            .iter()
            .all(|value| value.is_multiple_of(plan::PAGE));
        let ipa_end = ipa.checked_add(size);
        let pa_end = pa.checked_add(size);
        let fits = ipa_end.is_some_and(|end| end <= self.ipa_limit)
            && pa_end.is_some_and(|end| end <= descriptor::ADDRESS_MASK + plan::PAGE);
        if !aligned || size == 0 || !fits {
            return Err(GuestMapError::BadRange);
        }
        Ok(GuestRange { ipa, pa, size })
    }

    /// The table the entry for `ipa` at `level` links to, made (zeroed, then linked) if the
    /// entry is empty.
    fn descend(
        &mut self,
        table: GuestTable,
        ipa: u64,
        level: u8,
    ) -> Result<GuestTable, GuestMapError> {
        let desc = self.read(table, ipa, level)?;
        match descriptor::decode(desc, level) {
            Descriptor::Table(pa) => self.resolve(pa, ipa, level),
            Descriptor::Empty => {
                let new = self
                    .pool
                    .alloc()
                    .ok_or(GuestMapError::Corrupt { ipa, level })?;
                // The new table's zeroes before the descriptor that publishes it.
                fence(Ordering::Release);
                self.write(table, ipa, level, descriptor::table(self.pool.pa_of(new)))?;
                Ok(GuestTable::Pool(new))
            }
            _ => Err(GuestMapError::Corrupt { ipa, level }),
        }
    }

    fn resolve(&self, pa: u64, ipa: u64, level: u8) -> Result<GuestTable, GuestMapError> {
        if pa == self.root_pa {
            // A table descriptor pointing at the root would make the walk a loop.
            return Err(GuestMapError::Corrupt { ipa, level });
        }
        self.pool
            .index_of(pa)
            .map(GuestTable::Pool)
            .ok_or(GuestMapError::Corrupt { ipa, level })
    }

    fn read(&self, table: GuestTable, ipa: u64, level: u8) -> Result<u64, GuestMapError> {
        let table = match table {
            GuestTable::Root => Some(&*self.root),
            GuestTable::Pool(index) => self.pool.get(index),
        };
        table
            .map(|table| table[index(ipa, level)])
            .ok_or(GuestMapError::Corrupt { ipa, level })
    }

    fn write(
        &mut self,
        table: GuestTable,
        ipa: u64,
        level: u8,
        desc: u64,
    ) -> Result<(), GuestMapError> {
        let table = match table {
            GuestTable::Root => Some(&mut *self.root),
            GuestTable::Pool(index) => self.pool.get_mut(index),
        };
        let table = table.ok_or(GuestMapError::Corrupt { ipa, level })?;
        table[index(ipa, level)] = desc;
        Ok(())
    }
}
