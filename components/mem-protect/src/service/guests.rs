//! Guest memory, as the VM manager asks for it (`MemProtectInterface`): memslots given to a
//! guest and mapped in full, devices passed through, and wipes.
//!
//! # AddMemslot: every check, then the commits
//!
//! Checks, in this order (the first refusal is the answer, and nothing has changed):
//! 1. the VM is a guest of the configuration (`NotAGuest`);
//! 2. the range is page aligned, non-empty, does not wrap, lies below the guest's IPA limit and
//!    in RAM (`BadRange`);
//! 3. the IPA range overlaps none of the guest's memslots and devices, and it has room
//!    (`Overlaps`, `TooManySlots`);
//! 4. the guest's stage 2 is empty over the range and its pool holds the tables the mapping
//!    lacks (`OutOfTables`): a [`Reservation`];
//! 5. every page is RAM the host owns exclusively (`NotHostOwned`): not the hypervisor's, not
//!    shared, not another guest's. The ownership table checks every page and only then gives
//!    them all to `Party::Guest(vm)` ([`OwnershipTable::host_donate_guest`]), so this check is
//!    the first commit.
//!
//! For a VM with a shared IPA bit the reservation (4) also covers the memslot's alias range
//! (the same IPAs with the bit set): nothing may be mapped there, and the level-3 tables that
//! would map every page of it are counted and, at the commit, linked empty, so that MEM_SHARE
//! never needs a table (see `sharing.rs`). The memslot must lie below the bit (`BadRange`).
//!
//! Then, none of which can fail: the host's stage 2 loses the pages (every leaf over them
//! unmapped with its TLB invalidation, then each page annotated with its new owner, which
//! needs no more invalidation since the entries are empty by then), *then* the guest's stage
//! 2 maps them (the ownership table's order: the host must not reach a page the guest already
//! can), and the memslot is recorded. Unmapping first costs one invalidation per leaf the host
//! had, where annotating a mapped page at a time costs one per page (65 536 for 256 MiB); a
//! host block reaching past the range goes whole and comes back on the host's next fault.
//!
//! # MapDevice
//!
//! Only MMIO the configuration passes through to that guest: the PA range must lie inside one
//! of its passthrough devices (page-rounded), hence outside RAM (`BadRange` otherwise). Device
//! pages have no ownership record; the host never maps a device passed through to a guest
//! because the layout makes it a hole in the host's stage 2 ([`crate::layout`]).
//!
//! # WipeVm
//!
//! First every page the guest shares is unshared, as MEM_UNSHARE does (its alias unmapped,
//! the host's access removed, the guest's VMID invalidated once at the end): a reset guest
//! starts with all its memory private. Then each memslot's pages are zeroed and cleaned to the point of coherency by the kernel
//! (ZERO_PAGES), one request per memslot; mappings and ownership stay. A refusal stops there and
//! answers `WipeFailed`: the memslots before it are zeroed already (zeroing cannot be undone,
//! and a reset wipes them anyway).

use core::ops::Range;

use hv_component_config::MAX_DEVICES;
use hv_component_config::heapless::Vec;
use hv_ipc::interfaces::mem_protect::MemProtectRefusal;

use super::{Kernel, MemProtect};
use crate::memslots::{Memslots, Slot, SlotError, SlotKind};
use crate::ownership::{OwnershipError, PhysAddr};
use crate::stage2::{GuestMapError, GuestStage2, IpaRange, RegionKind, Reservation};

/// Most guest VMs (every VM of a configuration but the host).
pub const MAX_GUESTS: usize = hv_component_config::MAX_VMS - 1;

/// One guest VM of the configuration: what it may be given, what it has, and its stage 2.
pub struct GuestVm<'a> {
    pub(super) vm: u16,
    /// The MMIO the configuration passes through to it (physical, page-rounded).
    devices: Vec<IpaRange, MAX_DEVICES>,
    pub(super) slots: Memslots,
    pub(super) stage2: GuestStage2<'a>,
    /// Pages it shares with the host now (what HOST_GUEST_SHARED counts).
    pub(super) shared_pages: u64,
}

impl<'a> GuestVm<'a> {
    /// Guest VM `vm`, to which the configuration passes through `devices`, with an empty
    /// `stage2`.
    pub fn new(vm: u16, devices: Vec<IpaRange, MAX_DEVICES>, stage2: GuestStage2<'a>) -> Self {
        Self {
            vm,
            devices,
            slots: Memslots::new(),
            stage2,
            shared_pages: 0,
        }
    }

    /// The same VM using IPA bit `bit` as its shared attribute (seed 004): a page it shares is
    /// also mapped at its IPA with the bit set. `None` (the VM unchanged is dropped) unless the
    /// bit is a page-number bit below 48, every alias fits its stage 2's IPA space
    /// (`2 << bit` at most its limit), and nothing was added yet.
    pub fn with_shared_bit(mut self, bit: u8) -> Option<Self> {
        let slots = Memslots::with_shared_bit(bit)?;
        let fits = 2u64.checked_shl(u32::from(bit))? <= self.stage2.ipa_limit();
        let empty = self.slots.memory().is_empty() && self.slots.devices().is_empty();
        if !fits || !empty {
            return None;
        }
        self.slots = slots;
        Some(self)
    }

    /// Its shared IPA bit, if it has one.
    pub fn shared_bit(&self) -> Option<u8> {
        let mask = self.slots.shared_mask();
        (mask != 0).then(|| mask.trailing_zeros() as u8)
    }

    /// Pages it shares with the host now.
    pub fn shared_pages(&self) -> u64 {
        self.shared_pages
    }

    /// Its VM id.
    pub fn vm(&self) -> u16 {
        self.vm
    }

    /// Its memslots and devices.
    pub fn slots(&self) -> &Memslots {
        &self.slots
    }

    /// Its stage 2.
    pub fn stage2(&self) -> &GuestStage2<'a> {
        &self.stage2
    }
}

/// The guests the component serves.
pub type Guests<'a> = Vec<GuestVm<'a>, MAX_GUESTS>;

/// What a WipeVm did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wiped {
    /// Bytes zeroed.
    pub bytes: u64,
    /// Pages it shared that were unshared first.
    pub unshared: u64,
    /// Table changes of the unsharing that failed (see [`super::GuestCallOutcome`]).
    pub table_failures: u64,
}

/// What an AddMemslot did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemslotAdded {
    /// Leaves written into the guest's stage 2, by level (index 1: 1 GiB, 2: 2 MiB, 3: 4 KiB).
    pub leaves: [u64; 4],
    /// Tables the guest's stage 2 took from its pool.
    pub tables: usize,
    /// Pages the host's stage 2 could not annotate (they were unmapped instead): a table
    /// problem worth an error in the log.
    pub host_failures: u64,
    /// Set if the guest's stage 2 failed to write what it had reserved, which a reservation
    /// rules out unless memory was corrupted: worth an error in the log.
    pub mapping_error: Option<GuestMapError>,
}

impl<'a> MemProtect<'a> {
    /// Serves `guests` too (the VMs of the configuration other than the host). Host calls
    /// may no longer name their numbers: their pages are the VM manager's to give.
    pub fn with_guests(mut self, guests: Guests<'a>) -> Self {
        self.guests = guests;
        self
    }

    /// Guest VM `vm`, if the component serves it.
    pub fn guest(&self, vm: u16) -> Option<&GuestVm<'a>> {
        self.guests.iter().find(|guest| guest.vm == vm)
    }

    /// Whether ownership guest number `guest` is a guest VM of the configuration.
    pub(super) fn is_guest_vm(&self, guest: u8) -> bool {
        self.guest(u16::from(guest)).is_some()
    }

    /// Gives guest `vm` the memslot IPA `[ipa, ipa + size)` → PA `[pa, pa + size)` and maps it
    /// in full (see the module docs for the order).
    pub fn add_memslot(
        &mut self,
        vm: u16,
        ipa: u64,
        pa: u64,
        size: u64,
        kernel: &mut impl Kernel,
    ) -> Result<MemslotAdded, MemProtectRefusal> {
        let index = self.guest_index(vm)?;
        let slot = checked_slot(ipa, pa, size, self.guests[index].stage2.ipa_limit())?;
        let ram = self.ownership.ram();
        if slot.pa < ram.start.0 || slot.pa + slot.size > ram.end.0 {
            return Err(MemProtectRefusal::BadRange);
        }
        let reservation = self.reserve(index, SlotKind::Memory, &slot)?;
        // Guest VM ids are below MAX_VMS, so they fit a guest number.
        let guest = u8::try_from(vm).map_err(|_| MemProtectRefusal::NotAGuest)?;
        let pages = PhysAddr(slot.pa)..PhysAddr(slot.pa + slot.size);
        self.ownership
            .host_donate_guest(pages.clone(), guest)
            .map_err(ownership_refusal)?;

        // Committed: from here on nothing refuses.
        let host_failures = self.take_from_host(pages, kernel);
        let tables = reservation.tables();
        let guest = &mut self.guests[index];
        let (leaves, mapping_error) = match guest.stage2.commit(reservation, RegionKind::Memory) {
            Ok(leaves) => (leaves, None),
            Err(error) => (reservation.leaves(), Some(error)),
        };
        let recorded = guest.slots.add(SlotKind::Memory, slot);
        debug_assert!(recorded.is_ok(), "checked before the commit");
        Ok(MemslotAdded {
            leaves,
            tables,
            host_failures,
            mapping_error,
        })
    }

    /// Maps IPA `[ipa, ipa + size)` of guest `vm` to the MMIO at PA `[pa, pa + size)`, which
    /// must lie in one device the configuration passes through to it. Returns the leaves
    /// written, by level.
    pub fn map_device(
        &mut self,
        vm: u16,
        ipa: u64,
        pa: u64,
        size: u64,
    ) -> Result<[u64; 4], MemProtectRefusal> {
        let index = self.guest_index(vm)?;
        let guest = &self.guests[index];
        let slot = checked_slot(ipa, pa, size, guest.stage2.ipa_limit())?;
        let physical = IpaRange::new(slot.pa, slot.pa + slot.size);
        if !guest
            .devices
            .iter()
            .any(|device| device.contains_range(&physical))
        {
            return Err(MemProtectRefusal::BadRange);
        }
        let ram = self.ownership.ram();
        if physical.overlaps(&IpaRange::new(ram.start.0, ram.end.0)) {
            return Err(MemProtectRefusal::BadRange);
        }
        let reservation = self.reserve(index, SlotKind::Device, &slot)?;
        let guest = &mut self.guests[index];
        let leaves = guest
            .stage2
            .commit(reservation, RegionKind::Device)
            .map_err(map_refusal)?;
        let recorded = guest.slots.add(SlotKind::Device, slot);
        debug_assert!(recorded.is_ok(), "checked before the commit");
        Ok(leaves)
    }

    /// Unshares every page guest `vm` shares, then zeroes every page of its memslots and
    /// cleans it to the point of coherency through the kernel.
    pub fn wipe_vm(
        &mut self,
        vm: u16,
        kernel: &mut impl Kernel,
    ) -> Result<Wiped, MemProtectRefusal> {
        let index = self.guest_index(vm)?;
        let (unshared, table_failures) = self.unshare_all(index, kernel);
        let mut bytes = 0;
        for slot in self.guests[index].slots.memory() {
            if !kernel.zero_pages(slot.pa, slot.size) {
                return Err(MemProtectRefusal::WipeFailed);
            }
            bytes += slot.size;
        }
        Ok(Wiped {
            bytes,
            unshared,
            table_failures,
        })
    }

    pub(super) fn guest_index(&self, vm: u16) -> Result<usize, MemProtectRefusal> {
        self.guests
            .iter()
            .position(|guest| guest.vm == vm && vm != 0)
            .ok_or(MemProtectRefusal::NotAGuest)
    }

    /// Checks `slot` against guest `index`'s slots and stage 2, and reserves its tables.
    fn reserve(
        &self,
        index: usize,
        kind: SlotKind,
        slot: &Slot,
    ) -> Result<Reservation, MemProtectRefusal> {
        let guest = &self.guests[index];
        guest.slots.check(kind, slot).map_err(|error| match error {
            SlotError::Overlaps(_) => MemProtectRefusal::Overlaps,
            SlotError::Full => MemProtectRefusal::TooManySlots,
            SlotError::AboveSharedBit => MemProtectRefusal::BadRange,
        })?;
        // RAM has an alias when the VM has a shared bit; devices never do.
        let alias = match kind {
            SlotKind::Memory => guest.slots.alias(slot.ipa),
            SlotKind::Device => None,
        };
        guest
            .stage2
            .reserve_with_alias(slot.ipa, slot.pa, slot.size, alias)
            .map_err(map_refusal)
    }

    /// Removes `pages`, just given away, from the host's stage 2: unmaps every leaf over them
    /// (invalidating each), then annotates each page with its owner. Returns the pages whose
    /// annotation failed (left unmapped, which the ownership check covers).
    fn take_from_host(&mut self, pages: Range<PhysAddr>, kernel: &mut impl Kernel) -> u64 {
        let range = IpaRange::new(pages.start.0, pages.end.0);
        let unmapped = self
            .stage2
            .unmap(range, &mut |what| kernel.invalidate(what));
        // If the unmap failed, annotating still replaces each mapped page, invalidating it.
        let failures = self.annotate_given_away(pages, kernel);
        failures + u64::from(unmapped.is_err())
    }
}

/// The slot, if its addresses and size are page aligned, it is not empty, neither end wraps
/// and the IPA range ends at or below `ipa_limit`.
fn checked_slot(ipa: u64, pa: u64, size: u64, ipa_limit: u64) -> Result<Slot, MemProtectRefusal> {
    let aligned = [ipa, pa, size]
        .iter()
        .all(|value| value.is_multiple_of(crate::ownership::PAGE_SIZE));
    let ipa_fits = ipa.checked_add(size).is_some_and(|end| end <= ipa_limit);
    if !aligned || size == 0 || !ipa_fits || pa.checked_add(size).is_none() {
        return Err(MemProtectRefusal::BadRange);
    }
    Ok(Slot { ipa, pa, size })
}

/// The refusal for a guest stage-2 reservation that failed.
fn map_refusal(error: GuestMapError) -> MemProtectRefusal {
    match error {
        GuestMapError::BadRange => MemProtectRefusal::BadRange,
        GuestMapError::OutOfTables { .. } => MemProtectRefusal::OutOfTables,
        // Something is there already: what the slot table missed, the tables show (a corrupt
        // or stale walk included, which the interface has no better word for).
        GuestMapError::Overlaps { .. }
        | GuestMapError::Corrupt { .. }
        | GuestMapError::StaleReservation
        | GuestMapError::Unprepared { .. }
        | GuestMapError::NotAnAlias { .. } => MemProtectRefusal::Overlaps,
    }
}

/// The refusal for a donation the ownership table refused.
fn ownership_refusal(error: OwnershipError) -> MemProtectRefusal {
    match error {
        OwnershipError::NotMemory { .. }
        | OwnershipError::Misaligned { .. }
        | OwnershipError::EmptyRange { .. }
        | OwnershipError::OutOfRange => MemProtectRefusal::BadRange,
        OwnershipError::NoSuchGuest { .. } => MemProtectRefusal::NotAGuest,
        OwnershipError::NotOwnedByHost { .. }
        | OwnershipError::NotOwnedByGuest { .. }
        | OwnershipError::AlreadyShared { .. }
        | OwnershipError::NotShared { .. } => MemProtectRefusal::NotHostOwned,
    }
}
