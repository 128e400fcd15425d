//! Page ownership: who owns each page of RAM and who else may access it, as a state machine
//! kept apart from the page tables.
//!
//! # Why a table of its own
//!
//! The host's stage 2 is built lazily with the largest blocks that fit (`reference/pkvm.md`
//! section 3), so it cannot be the record of who owns what: a page the host has never touched
//! has no entry at all, recording a state per page would mean splitting blocks, and every
//! question would cost a walk. pKVM moved the host and hypervisor states out of PTE software
//! bits into the vmemmap for the same reasons (section 2.2: storing the state in the tables
//! "forces … to break block mappings"). Here the table is the truth and the stage-2 tables are
//! derived from it: the host stage-2 fault path maps a page only when
//! [`OwnershipTable::host_may_access`] says so (a block only when
//! [`OwnershipTable::host_may_access_range`] does), and writes [`OwnershipTable::annotation`]
//! into the invalid entry of a page it must not map.
//!
//! # Parties and states (`reference/pkvm.md` section 2.1)
//!
//! The parties are the host, the hypervisor (the kernel and its components) and up to
//! [`MAX_GUESTS`] guests. A guest VM of the configuration is the guest numbered by its VM id
//! (1 to 3): its memslots are donated to it with [`host_donate_guest`]; the host's own calls
//! may not name those numbers (see `crate::service`). Each page has, for each party, a
//! [`PageState`]:
//!
//! | page | owner's state | borrower's state | everyone else |
//! |---|---|---|---|
//! | exclusive | `Owned` | none | `NoPage` |
//! | shared | `SharedOwned` | `SharedBorrowed` | `NoPage` |
//!
//! So a page has exactly one owner and at most one borrower, and the borrower follows from the
//! owner: the host shares with the hypervisor, a guest shares with the host. No other sharing
//! has a transition yet.
//!
//! # Storage: one byte per page
//!
//! The caller hands over a `&mut [u8]` with one byte per page of a contiguous RAM range (no
//! allocator). A byte holds:
//!
//! | bits | meaning |
//! |---|---|
//! | 5:0 | the owner's id: 0 host, 1 hypervisor, 2 + n guest n ([`Party::id`]) |
//! | 6 | the owner shares the page with its borrower |
//! | 7 | zero |
//!
//! A zero byte is "owned by the host, not shared", so like pKVM's zeroed vmemmap a cleared table
//! already says what the host has before anything was given away. Every byte the table writes
//! decodes to a valid state, and the decoding is total, so there is no "corrupt entry" case.
//! The owner id is also the annotation for an invalid host stage-2 entry: it fits in
//! [`ANNOTATION_BITS`] bits.
//!
//! Addresses outside the range are not memory (device MMIO, or nothing) and every call refuses
//! them with [`OwnershipError::NotMemory`]: ownership is about RAM only.
//!
//! # Transitions (`reference/pkvm.md` section 2.3)
//!
//! | call | every page must be | afterwards |
//! |---|---|---|
//! | [`reserve_for_hypervisor`] (boot) | host `Owned` | hypervisor `Owned`, host `NoPage` |
//! | [`host_share_hyp`] | host `Owned` | host `SharedOwned`, hypervisor `SharedBorrowed` |
//! | [`host_unshare_hyp`] | host `SharedOwned` | host `Owned`, hypervisor `NoPage` |
//! | [`host_donate_guest`] | host `Owned` | guest `Owned`, host `NoPage` |
//! | [`host_reclaim`] | guest `Owned` | host `Owned`, guest `NoPage`; pages to zero |
//! | [`guest_share_host`] (MEM_SHARE) | guest `Owned` | guest `SharedOwned`, host `SharedBorrowed` |
//! | [`guest_unshare_host`] (MEM_UNSHARE) | guest `SharedOwned` | guest `Owned`, host `NoPage` |
//!
//! Each transition checks every page first and only then writes them all; the write cannot fail,
//! and a refused call changes nothing. Ownership changes are never rolled back (section 2.3, the
//! maintainer rule: another CPU may already have used the page), so whatever the caller needs to
//! finish the job on the page tables (table pages from its pool, above all) must be reserved
//! *before* it calls a transition. The checks run in a fixed order and the first failure is the
//! answer: the guest number, then alignment, then an empty range, then the RAM bounds, then each
//! page's state in address order.
//!
//! # Where we differ from pKVM, and why
//!
//! - **Ranges.** `host_donate_guest` and `host_reclaim` take a range, not one page: a guest's
//!   memory is donated in one call, all or nothing.
//! - **Reclaim needs an unshared page.** pKVM reclaims a dying guest's shared pages too; here
//!   the guest (or whoever tears it down) unshares first, so every reclaimed page is one only the
//!   guest has seen, and every one must be zeroed.
//! - **Zeroing is the caller's job.** The component cannot zero memory it does not map; it asks
//!   the kernel, so [`host_reclaim`] returns the pages as a [`Reclaim`] to hand over.
//! - **No pins.** pKVM refuses to unshare a page the hypervisor has pinned (-EBUSY). Nothing
//!   here keeps a shared page mapped in the hypervisor yet; when something does, the pin count
//!   belongs in this table.
//! - **No way back from the hypervisor.** Boot-time reservations are permanent.
//!
//! [`reserve_for_hypervisor`]: OwnershipTable::reserve_for_hypervisor
//! [`host_share_hyp`]: OwnershipTable::host_share_hyp
//! [`host_unshare_hyp`]: OwnershipTable::host_unshare_hyp
//! [`host_donate_guest`]: OwnershipTable::host_donate_guest
//! [`host_reclaim`]: OwnershipTable::host_reclaim
//! [`guest_share_host`]: OwnershipTable::guest_share_host
//! [`guest_unshare_host`]: OwnershipTable::guest_unshare_host

mod record;
#[cfg(test)]
mod tests;

use core::fmt;
use core::ops::Range;

use record::Record;

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// The unit of ownership: a 4 KiB page, the stage-2 granule.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// RAM ends at or below this: Armv8's largest physical address space (52 bits).
pub const PHYS_ADDR_LIMIT: u64 = 1 << 52;
/// Guests are numbered `0..MAX_GUESTS`; the number fills the owner id's bits.
pub const MAX_GUESTS: u8 = (1 << ANNOTATION_BITS) - FIRST_GUEST_ID;
/// The width of an owner id, hence of the annotation in an invalid host stage-2 entry.
pub const ANNOTATION_BITS: u32 = 6;

const HOST_ID: u8 = 0;
const HYPERVISOR_ID: u8 = 1;
const FIRST_GUEST_ID: u8 = 2;

/// A physical address (the shared type: the host's stage 2 is an identity map, so a host IPA
/// converts with `Ipa::identity`).
pub use hv_ipc::addr::PhysAddr;

/// Someone who can own or borrow a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    /// The host VM (Linux), which starts out owning all RAM.
    Host,
    /// The hypervisor: the kernel and its components.
    Hypervisor,
    /// A guest VM, numbered below [`MAX_GUESTS`].
    Guest(u8),
}

impl Party {
    /// The party's owner id: 0 host, 1 hypervisor, 2 + n guest n. `None` for a guest number at
    /// or above [`MAX_GUESTS`], which no page can belong to.
    pub const fn id(self) -> Option<u8> {
        match self.checked_id() {
            Ok(id) => Some(id),
            Err(_) => None,
        }
    }

    /// The party an owner id (for example an annotation read back from an invalid host stage-2
    /// entry) names; `None` for an id wider than [`ANNOTATION_BITS`].
    pub const fn from_id(id: u8) -> Option<Party> {
        if id < 1 << ANNOTATION_BITS {
            Some(Party::from_owner_bits(id))
        } else {
            None
        }
    }

    /// Decodes an id already known to fit [`ANNOTATION_BITS`]: every such value names a party,
    /// which keeps decoding a table byte total.
    const fn from_owner_bits(id: u8) -> Party {
        match id {
            HOST_ID => Party::Host,
            HYPERVISOR_ID => Party::Hypervisor,
            guest => Party::Guest(guest - FIRST_GUEST_ID),
        }
    }

    /// Who borrows a page this party shares. The hypervisor shares nothing yet.
    const fn borrower(self) -> Option<Party> {
        match self {
            Party::Host => Some(Party::Hypervisor),
            Party::Guest(_) => Some(Party::Host),
            Party::Hypervisor => None,
        }
    }

    /// [`Party::id`], or the refusal for a guest that cannot exist.
    const fn checked_id(self) -> Result<u8, OwnershipError> {
        match self {
            Party::Host => Ok(HOST_ID),
            Party::Hypervisor => Ok(HYPERVISOR_ID),
            Party::Guest(guest) if guest < MAX_GUESTS => Ok(FIRST_GUEST_ID + guest),
            Party::Guest(guest) => Err(OwnershipError::NoSuchGuest { guest }),
        }
    }
}

/// What one party has of one page (`PKVM_PAGE_*` in `reference/pkvm.md` section 2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// Owned, and nobody else may access it.
    Owned,
    /// Owned, and one other party may access it too.
    SharedOwned,
    /// Not owned, but accessible: the owner shares it with this party.
    SharedBorrowed,
    /// Not accessible.
    NoPage,
}

impl PageState {
    /// Whether a party in this state may access the page.
    pub const fn is_accessible(self) -> bool {
        !matches!(self, PageState::NoPage)
    }
}

/// Why a call was refused. A refused call changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnershipError {
    /// `addr` is outside the RAM the table tracks: device memory or nothing, which nobody owns.
    /// For a range, the first such page.
    NotMemory { addr: PhysAddr },
    /// `addr` (a page, or either end of a range) is not page aligned.
    Misaligned { addr: PhysAddr },
    /// The range holds no page: its end is not above its start.
    EmptyRange { start: PhysAddr, end: PhysAddr },
    /// The tracked RAM would run past [`PHYS_ADDR_LIMIT`] (only from [`OwnershipTable::new`]).
    OutOfRange,
    /// Guest numbers stop below [`MAX_GUESTS`].
    NoSuchGuest { guest: u8 },
    /// The host does not own the page at `addr`; `owner` does.
    NotOwnedByHost { addr: PhysAddr, owner: Party },
    /// `guest` does not own the page at `addr`; `owner` does.
    NotOwnedByGuest {
        addr: PhysAddr,
        guest: u8,
        owner: Party,
    },
    /// The page at `addr` is shared with `borrower`. Sharing it again, donating it or
    /// reclaiming it needs it unshared first.
    AlreadyShared { addr: PhysAddr, borrower: Party },
    /// The page at `addr` is not shared, so there is nothing to unshare.
    NotShared { addr: PhysAddr },
}

impl fmt::Display for OwnershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotMemory { addr } => write!(f, "{addr} is not RAM"),
            Self::Misaligned { addr } => write!(f, "{addr} is not page aligned"),
            Self::EmptyRange { start, end } => write!(f, "range {start}..{end} is empty"),
            Self::OutOfRange => write!(f, "RAM runs past the physical address space"),
            Self::NoSuchGuest { guest } => write!(f, "no guest {guest}"),
            Self::NotOwnedByHost { addr, owner } => {
                write!(f, "page {addr} is owned by {owner:?}, not the host")
            }
            Self::NotOwnedByGuest { addr, guest, owner } => {
                write!(f, "page {addr} is owned by {owner:?}, not guest {guest}")
            }
            Self::AlreadyShared { addr, borrower } => {
                write!(f, "page {addr} is shared with {borrower:?}")
            }
            Self::NotShared { addr } => write!(f, "page {addr} is not shared"),
        }
    }
}

/// Pages the host got back from a guest, still holding the guest's data.
///
/// The host must not see them before they are zeroed and cleaned to the point of coherency
/// (`reference/pkvm.md` section 2.3: `hyp_poison_page` cleans to PoC, not with the FWB-aware
/// clean, or the host could read the old contents). The table already says the host owns them,
/// so the caller (the mem-protect component) asks the kernel to zero and clean every page here
/// before it answers the call that reclaimed them. It serves one call at a time, so no host
/// stage-2 fault on these pages is handled in between, and the fault path restores the host's
/// mapping only after the zeroing. Dropping this without zeroing leaks the guest's memory to
/// the host.
#[must_use = "reclaimed pages hold the guest's data: zero them and clean to PoC before the host maps them"]
#[derive(Debug, PartialEq, Eq)]
pub struct Reclaim {
    pages: Range<PhysAddr>,
}

impl Reclaim {
    /// The reclaimed physical range.
    pub fn range(&self) -> Range<PhysAddr> {
        self.pages.clone()
    }

    /// How many pages must be zeroed.
    pub fn page_count(&self) -> u64 {
        (self.pages.end.0 - self.pages.start.0) / PAGE_SIZE
    }

    /// Each page to zero, by its address, once.
    pub fn pages(&self) -> impl Iterator<Item = PhysAddr> + use<> {
        (self.pages.start.0..self.pages.end.0)
            .step_by(PAGE_SIZE as usize)
            .map(PhysAddr)
    }
}

/// Ownership of every page of one contiguous range of RAM.
pub struct OwnershipTable<'a> {
    ram_start: u64,
    ram_end: u64,
    /// One [`Record`] byte per page, the first for `ram_start`.
    records: &'a mut [u8],
}

impl fmt::Debug for OwnershipTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnershipTable")
            .field("ram", &self.ram())
            .finish_non_exhaustive()
    }
}

impl<'a> OwnershipTable<'a> {
    /// Tracks `records.len()` pages of RAM from `ram_start`, one byte of `records` each, and
    /// gives them all to the host (whatever `records` held is overwritten).
    pub fn new(ram_start: PhysAddr, records: &'a mut [u8]) -> Result<Self, OwnershipError> {
        if !ram_start.is_page_aligned() {
            return Err(OwnershipError::Misaligned { addr: ram_start });
        }
        let ram_end = u64::try_from(records.len())
            .ok()
            .and_then(|pages| pages.checked_mul(PAGE_SIZE))
            .and_then(|size| ram_start.0.checked_add(size))
            .filter(|&end| end <= PHYS_ADDR_LIMIT)
            .ok_or(OwnershipError::OutOfRange)?;
        records.fill(Record::HOST_OWNED.0);
        Ok(Self {
            ram_start: ram_start.0,
            ram_end,
            records,
        })
    }

    /// The RAM the table tracks; everything else is [`OwnershipError::NotMemory`].
    pub fn ram(&self) -> Range<PhysAddr> {
        PhysAddr(self.ram_start)..PhysAddr(self.ram_end)
    }

    /// Gives `range` to the hypervisor at boot (its own image, the components' memory, the
    /// page-table pools), before the host runs: the host's stage 2 never maps these pages.
    pub fn reserve_for_hypervisor(&mut self, range: Range<PhysAddr>) -> Result<(), OwnershipError> {
        let pages = self.pages_of(&range)?;
        self.check_each(pages.clone(), Record::expect_host_exclusive)?;
        self.commit(pages, Record::HYPERVISOR_OWNED);
        Ok(())
    }

    /// The host shares `page` with the hypervisor (pKVM `__pkvm_host_share_hyp`). The host keeps
    /// its mapping.
    pub fn host_share_hyp(&mut self, page: PhysAddr) -> Result<(), OwnershipError> {
        let pages = self.page(page)?;
        self.check_each(pages.clone(), Record::expect_host_exclusive)?;
        self.commit(pages, Record::HOST_OWNED.shared());
        Ok(())
    }

    /// The host takes back `page` it shared with the hypervisor (pKVM
    /// `__pkvm_host_unshare_hyp`). Whoever mapped it on the hypervisor's side must have
    /// unmapped it before.
    pub fn host_unshare_hyp(&mut self, page: PhysAddr) -> Result<(), OwnershipError> {
        let pages = self.page(page)?;
        self.check_each(pages.clone(), Record::expect_host_shared)?;
        self.commit(pages, Record::HOST_OWNED);
        Ok(())
    }

    /// The host gives every page of `range` to `guest` (pKVM `__pkvm_host_donate_guest`, for a
    /// range). Afterwards the caller removes the pages from the host's stage 2, leaving invalid
    /// entries with [`annotation`](Self::annotation), and invalidates the host's TLB entries
    /// for them before it maps them into the guest: until then another CPU of the host may
    /// still reach them.
    pub fn host_donate_guest(
        &mut self,
        range: Range<PhysAddr>,
        guest: u8,
    ) -> Result<(), OwnershipError> {
        let owner = Party::Guest(guest).checked_id()?;
        let pages = self.pages_of(&range)?;
        self.check_each(pages.clone(), Record::expect_host_exclusive)?;
        self.commit(pages, Record::owned_by(owner));
        Ok(())
    }

    /// The host takes back every page of `range` from `guest` (pKVM
    /// `__pkvm_host_reclaim_page_guest`, for a range of unshared pages).
    ///
    /// The caller first removes the pages from the guest's stage 2 and invalidates the guest's
    /// TLB entries, so the guest cannot write after the zeroing. The answer lists the pages to
    /// zero and clean to PoC; the host's mapping is only restored (by the host stage-2 fault
    /// path) after that, see [`Reclaim`].
    pub fn host_reclaim(
        &mut self,
        range: Range<PhysAddr>,
        guest: u8,
    ) -> Result<Reclaim, OwnershipError> {
        Party::Guest(guest).checked_id()?;
        let pages = self.pages_of(&range)?;
        self.check_each(pages.clone(), |record, addr| {
            record.expect_guest_exclusive(addr, guest)
        })?;
        self.commit(pages, Record::HOST_OWNED);
        Ok(Reclaim { pages: range })
    }

    /// `guest` shares its `page` with the host (MEM_SHARE, pKVM `__pkvm_guest_share_host`). The
    /// caller has translated the guest's IPA to `page` through the guest's stage 2. Afterwards
    /// the host may access the page; its fault path maps it on first use.
    pub fn guest_share_host(&mut self, page: PhysAddr, guest: u8) -> Result<(), OwnershipError> {
        self.check_guest_share_host(page, guest)?;
        let (owner, pages) = (Party::Guest(guest).checked_id()?, self.page(page)?);
        self.commit(pages, Record::owned_by(owner).shared());
        Ok(())
    }

    /// What [`guest_share_host`](Self::guest_share_host) would answer, changing nothing: a
    /// caller with more to check (a guest's stage 2) checks this first and commits last.
    pub fn check_guest_share_host(&self, page: PhysAddr, guest: u8) -> Result<(), OwnershipError> {
        Party::Guest(guest).checked_id()?;
        let pages = self.page(page)?;
        self.check_each(pages, |record, addr| {
            record.expect_guest_exclusive(addr, guest)
        })
    }

    /// `guest` stops sharing `page` with the host (MEM_UNSHARE). Afterwards the caller removes
    /// the page from the host's stage 2 (annotated) and invalidates the host's TLB entries for
    /// it before answering the guest, which may then rely on the host no longer seeing it.
    pub fn guest_unshare_host(&mut self, page: PhysAddr, guest: u8) -> Result<(), OwnershipError> {
        self.check_guest_unshare_host(page, guest)?;
        let (owner, pages) = (Party::Guest(guest).checked_id()?, self.page(page)?);
        self.commit(pages, Record::owned_by(owner));
        Ok(())
    }

    /// What [`guest_unshare_host`](Self::guest_unshare_host) would answer, changing nothing.
    pub fn check_guest_unshare_host(
        &self,
        page: PhysAddr,
        guest: u8,
    ) -> Result<(), OwnershipError> {
        Party::Guest(guest).checked_id()?;
        let pages = self.page(page)?;
        self.check_each(pages, |record, addr| {
            record.expect_guest_shared(addr, guest)
        })
    }

    /// Who owns the page holding `addr` (any address in it).
    pub fn owner(&self, addr: PhysAddr) -> Result<Party, OwnershipError> {
        Ok(self.record(addr)?.owner())
    }

    /// What `party` has of the page holding `addr`.
    pub fn state(&self, addr: PhysAddr, party: Party) -> Result<PageState, OwnershipError> {
        party.checked_id()?;
        Ok(self.record(addr)?.state_of(party))
    }

    /// Whether the host may access the page holding `addr`: the question the host stage-2 fault
    /// path asks before mapping it. `false` means the host gets a data abort injected.
    pub fn host_may_access(&self, addr: PhysAddr) -> Result<bool, OwnershipError> {
        Ok(self.state(addr, Party::Host)?.is_accessible())
    }

    /// Whether the host may access every page of `range`: whether the fault path may map it
    /// with one block. The range must be page aligned, not empty, and all RAM.
    pub fn host_may_access_range(&self, range: Range<PhysAddr>) -> Result<bool, OwnershipError> {
        let pages = self.pages_of(&range)?;
        let records = self.records_in(pages)?;
        Ok(records
            .iter()
            .all(|&byte| Record(byte).state_of(Party::Host).is_accessible()))
    }

    /// The owner's id ([`Party::id`], [`ANNOTATION_BITS`] wide) for the invalid host stage-2
    /// entry of the page holding `addr`, so a later host fault on it can name the owner without
    /// another lookup. Meaningful where [`host_may_access`](Self::host_may_access) is `false`.
    pub fn annotation(&self, addr: PhysAddr) -> Result<u8, OwnershipError> {
        Ok(self.record(addr)?.owner_id())
    }

    /// The index of the page holding `addr`.
    fn index_of(&self, addr: PhysAddr) -> Result<usize, OwnershipError> {
        if !(self.ram_start..self.ram_end).contains(&addr.0) {
            return Err(OwnershipError::NotMemory { addr });
        }
        usize::try_from((addr.0 - self.ram_start) >> PAGE_SHIFT)
            .map_err(|_| OwnershipError::NotMemory { addr })
    }

    fn record(&self, addr: PhysAddr) -> Result<Record, OwnershipError> {
        let index = self.index_of(addr)?;
        self.records
            .get(index)
            .map(|&byte| Record(byte))
            .ok_or(OwnershipError::NotMemory { addr })
    }

    /// The index range of one page a transition names; it must be page aligned.
    fn page(&self, page: PhysAddr) -> Result<Range<usize>, OwnershipError> {
        if !page.is_page_aligned() {
            return Err(OwnershipError::Misaligned { addr: page });
        }
        let index = self.index_of(page)?;
        Ok(index..index + 1)
    }

    /// The index range of the pages of `range`: both ends page aligned, not empty, all in RAM.
    fn pages_of(&self, range: &Range<PhysAddr>) -> Result<Range<usize>, OwnershipError> {
        for addr in [range.start, range.end] {
            if !addr.is_page_aligned() {
                return Err(OwnershipError::Misaligned { addr });
            }
        }
        if range.end <= range.start {
            return Err(OwnershipError::EmptyRange {
                start: range.start,
                end: range.end,
            });
        }
        let first = self.index_of(range.start)?;
        if range.end.0 > self.ram_end {
            // The start is RAM, so the first page that is not lies at the end of RAM.
            return Err(OwnershipError::NotMemory {
                addr: PhysAddr(self.ram_end),
            });
        }
        let last = self.index_of(PhysAddr(range.end.0 - PAGE_SIZE))?;
        Ok(first..last + 1)
    }

    /// Runs `expect` on every page of `pages`, in address order, and stops at the first refusal.
    fn check_each(
        &self,
        pages: Range<usize>,
        expect: impl Fn(Record, PhysAddr) -> Result<(), OwnershipError>,
    ) -> Result<(), OwnershipError> {
        let first = self.addr_of(pages.start);
        let addrs = (first.0..).step_by(PAGE_SIZE as usize).map(PhysAddr);
        self.records_in(pages)?
            .iter()
            .zip(addrs)
            .try_for_each(|(&byte, addr)| expect(Record(byte), addr))
    }

    /// The bytes of `pages`. The indices come from `page` or `pages_of`, so they are in the
    /// table; if they were not, refusing is the safe answer.
    fn records_in(&self, pages: Range<usize>) -> Result<&[u8], OwnershipError> {
        let first = self.addr_of(pages.start);
        self.records
            .get(pages)
            .ok_or(OwnershipError::NotMemory { addr: first })
    }

    /// Writes `record` into every page of `pages`. Only called once `check_each` has passed on
    /// the same pages, and it cannot fail: this is the commit.
    fn commit(&mut self, pages: Range<usize>, record: Record) {
        if let Some(records) = self.records.get_mut(pages) {
            records.fill(record.0);
        }
    }

    /// The address of the page with this index (an index in the table).
    fn addr_of(&self, index: usize) -> PhysAddr {
        PhysAddr(self.ram_start + index as u64 * PAGE_SIZE)
    }
}
