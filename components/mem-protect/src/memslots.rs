//! A guest's memslots and devices: which IPA ranges its stage 2 translates, and to what.
//!
//! The VM manager decides a guest's memslots (DESIGN decision 3); this component keeps its own
//! record of those it was asked to map, because it checks every new one against them (an IPA
//! is mapped once: overlaps are refused, adjacent ranges are fine) and a wipe zeroes exactly
//! their pages. Fixed capacity ([`MAX_MEMSLOTS`] memslots, [`MAX_DEVICES`] devices): no
//! allocator, and a bound the caller hears about ([`SlotError::Full`]).
//!
//! A VM with a shared IPA bit (seed 004, DESIGN decision 14) reaches each page of its RAM at
//! two IPAs, without and with the bit: lookups of RAM strip the bit, so both aliases resolve
//! to the same memslot page. Slots must therefore lie wholly below the bit
//! ([`SlotError::AboveSharedBit`]): an IPA with the bit set always names an alias. Devices
//! have no alias.

use hv_component_config::MAX_DEVICES;
use hv_component_config::heapless::Vec;

/// Most memslots one guest has. Guests declared in the manifest have one (their RAM); the rest
/// is room for the VM manager to split or add RAM.
pub const MAX_MEMSLOTS: usize = 8;

/// IPA `[ipa, ipa + size)` translated to PA `[pa, pa + size)`; page aligned, non-empty and
/// not wrapping (the caller checks before it asks for one to be added).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// First IPA.
    pub ipa: u64,
    /// First physical address.
    pub pa: u64,
    /// Bytes.
    pub size: u64,
}

impl Slot {
    /// The first IPA past the slot.
    pub const fn ipa_end(&self) -> u64 {
        self.ipa + self.size
    }

    /// The physical address of `ipa`, if the slot holds it.
    pub const fn translate(&self, ipa: u64) -> Option<u64> {
        if self.ipa <= ipa && ipa < self.ipa_end() {
            Some(self.pa + (ipa - self.ipa))
        } else {
            None
        }
    }

    /// Whether the two slots share an IPA.
    pub const fn overlaps(&self, other: &Slot) -> bool {
        self.ipa < other.ipa_end() && other.ipa < self.ipa_end()
    }
}

/// RAM or a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A memslot: the guest's RAM.
    Memory,
    /// A device passed through.
    Device,
}

/// Why a slot cannot be added. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// Its IPA range overlaps this memslot or device.
    Overlaps(Slot),
    /// The table holds as many slots of that kind as it can.
    Full,
    /// The slot reaches the shared IPA bit.
    AboveSharedBit,
}

/// One guest's memslots and devices.
#[derive(Clone, Debug, Default)]
pub struct Memslots {
    memory: Vec<Slot, MAX_MEMSLOTS>,
    devices: Vec<Slot, MAX_DEVICES>,
    /// The shared IPA bit as a mask, 0 for none.
    shared: u64,
}

impl Memslots {
    /// No memslot and no device.
    pub const fn new() -> Self {
        Self {
            memory: Vec::new(),
            devices: Vec::new(),
            shared: 0,
        }
    }

    /// No memslot and no device, for a VM whose shared IPA bit is `bit` (12 to 47: a bit of a
    /// page number in a 48-bit IPA); `None` for another bit.
    pub const fn with_shared_bit(bit: u8) -> Option<Self> {
        if bit < 12 || bit >= 48 {
            return None;
        }
        Some(Self {
            memory: Vec::new(),
            devices: Vec::new(),
            shared: 1 << bit,
        })
    }

    /// The shared IPA bit as a mask (0 for a VM without one).
    pub const fn shared_mask(&self) -> u64 {
        self.shared
    }

    /// `ipa` without the shared bit: the IPA memslots are looked up with.
    pub const fn canonical(&self, ipa: u64) -> u64 {
        ipa & !self.shared
    }

    /// The shared alias of `ipa` (the bit set), if the VM has a shared bit.
    pub const fn alias(&self, ipa: u64) -> Option<u64> {
        if self.shared == 0 {
            None
        } else {
            Some(ipa | self.shared)
        }
    }

    /// Whether `slot` can be added as a `kind`: it lies below the shared bit, its IPA range
    /// overlaps no memslot and no device, and there is room.
    pub fn check(&self, kind: SlotKind, slot: &Slot) -> Result<(), SlotError> {
        if self.shared != 0 && slot.ipa_end() > self.shared {
            return Err(SlotError::AboveSharedBit);
        }
        if let Some(other) = self.all().find(|other| other.overlaps(slot)) {
            return Err(SlotError::Overlaps(*other));
        }
        let full = match kind {
            SlotKind::Memory => self.memory.is_full(),
            SlotKind::Device => self.devices.is_full(),
        };
        if full {
            return Err(SlotError::Full);
        }
        Ok(())
    }

    /// Adds `slot` as a `kind`, after [`Self::check`].
    pub fn add(&mut self, kind: SlotKind, slot: Slot) -> Result<(), SlotError> {
        self.check(kind, &slot)?;
        let pushed = match kind {
            SlotKind::Memory => self.memory.push(slot),
            SlotKind::Device => self.devices.push(slot),
        };
        // `check` found room.
        pushed.map_err(|_| SlotError::Full)
    }

    /// The physical address `ipa` translates to, and whether it is RAM or a device. RAM is
    /// looked up without the shared bit (both aliases name one page); devices as they are.
    pub fn translate(&self, ipa: u64) -> Option<(u64, SlotKind)> {
        let canonical = self.canonical(ipa);
        if let Some(pa) = self
            .memory
            .iter()
            .find_map(|slot| slot.translate(canonical))
        {
            return Some((pa, SlotKind::Memory));
        }
        let device = self.devices.iter().find_map(|slot| slot.translate(ipa));
        device.map(|pa| (pa, SlotKind::Device))
    }

    /// The memslots, in the order they were added.
    pub fn memory(&self) -> &[Slot] {
        &self.memory
    }

    /// The devices, in the order they were added.
    pub fn devices(&self) -> &[Slot] {
        &self.devices
    }

    fn all(&self) -> impl Iterator<Item = &Slot> {
        self.memory.iter().chain(self.devices.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn slot(ipa: u64, pa: u64, size: u64) -> Slot {
        Slot { ipa, pa, size }
    }

    #[test]
    fn lookups_translate_ipa_to_pa_in_every_slot() {
        let mut slots = Memslots::new();
        slots
            .add(SlotKind::Memory, slot(0x4000_0000, 0x6000_0000, 16 * MIB))
            .unwrap();
        slots
            .add(SlotKind::Memory, slot(0x8000_0000, 0x4800_0000, MIB))
            .unwrap();
        slots
            .add(SlotKind::Device, slot(0x900_0000, 0x900_0000, 0x1000))
            .unwrap();
        assert_eq!(
            slots.translate(0x4000_0000),
            Some((0x6000_0000, SlotKind::Memory))
        );
        assert_eq!(
            slots.translate(0x40ff_ffff),
            Some((0x60ff_ffff, SlotKind::Memory))
        );
        assert_eq!(slots.translate(0x4100_0000), None);
        assert_eq!(
            slots.translate(0x8000_1234),
            Some((0x4800_1234, SlotKind::Memory))
        );
        assert_eq!(
            slots.translate(0x900_0010),
            Some((0x900_0010, SlotKind::Device))
        );
        assert_eq!(slots.translate(0x900_1000), None);
        assert_eq!(slots.translate(0), None);
        assert_eq!(slots.memory().len(), 2);
        assert_eq!(slots.devices().len(), 1);
    }

    #[test]
    fn overlaps_are_refused_and_adjacent_slots_are_fine() {
        let mut slots = Memslots::new();
        let first = slot(0x4000_0000, 0x6000_0000, 2 * MIB);
        slots.add(SlotKind::Memory, first).unwrap();
        // Overlapping from below, from above, inside, around: refused, whatever the PA.
        for (ipa, size) in [
            (0x3ff0_0000, 2 * MIB),
            (0x4010_0000, 2 * MIB),
            (0x4000_1000, 0x1000),
            (0x3000_0000, 1 << 30),
        ] {
            let other = slot(ipa, 0x7000_0000, size);
            assert_eq!(
                slots.add(SlotKind::Memory, other),
                Err(SlotError::Overlaps(first))
            );
            assert_eq!(
                slots.add(SlotKind::Device, other),
                Err(SlotError::Overlaps(first))
            );
        }
        // A device over a memslot is refused as well, and a memslot over a device.
        let device = slot(0x900_0000, 0x900_0000, 0x1000);
        slots.add(SlotKind::Device, device).unwrap();
        assert_eq!(
            slots.add(SlotKind::Memory, slot(0x8ff_f000, 0x7000_0000, 0x2000)),
            Err(SlotError::Overlaps(device))
        );
        // Adjacent on either side: fine.
        slots
            .add(SlotKind::Memory, slot(0x3fe0_0000, 0x7000_0000, 2 * MIB))
            .unwrap();
        slots
            .add(SlotKind::Memory, slot(0x4020_0000, 0x7020_0000, 2 * MIB))
            .unwrap();
        slots
            .add(SlotKind::Device, slot(0x900_1000, 0x900_1000, 0x1000))
            .unwrap();
        assert_eq!(slots.memory().len(), 3);
        assert_eq!(slots.devices().len(), 2);
    }

    #[test]
    fn with_a_shared_bit_both_aliases_of_ram_name_one_page() {
        const SHARED: u64 = 1 << 40;
        let mut slots = Memslots::with_shared_bit(40).unwrap();
        assert_eq!(slots.shared_mask(), SHARED);
        let ram = slot(0x4000_0000, 0x6000_0000, 16 * MIB);
        slots.add(SlotKind::Memory, ram).unwrap();
        slots
            .add(SlotKind::Device, slot(0x900_0000, 0x900_0000, 0x1000))
            .unwrap();
        for ipa in [0x4000_0000, 0x4000_1234, 0x40ff_f000] {
            let expected = Some((0x6000_0000 + (ipa - 0x4000_0000), SlotKind::Memory));
            assert_eq!(slots.translate(ipa), expected);
            assert_eq!(slots.translate(ipa | SHARED), expected);
            assert_eq!(slots.canonical(ipa | SHARED), ipa);
            assert_eq!(slots.alias(ipa), Some(ipa | SHARED));
        }
        // Devices have no alias; past the memslot is nothing at either alias.
        assert_eq!(
            slots.translate(0x900_0000),
            Some((0x900_0000, SlotKind::Device))
        );
        assert_eq!(slots.translate(0x900_0000 | SHARED), None);
        assert_eq!(slots.translate(0x4100_0000 | SHARED), None);
        // A slot reaching the bit is refused, RAM or device; one ending at it is fine.
        for kind in [SlotKind::Memory, SlotKind::Device] {
            assert_eq!(
                slots.check(kind, &slot(SHARED - 0x1000, 0x7000_0000, 0x2000)),
                Err(SlotError::AboveSharedBit)
            );
            assert_eq!(
                slots.check(kind, &slot(SHARED | 0x4000_0000, 0x7000_0000, 0x1000)),
                Err(SlotError::AboveSharedBit)
            );
            assert_eq!(
                slots.check(kind, &slot(SHARED - 0x1000, 0x7000_0000, 0x1000)),
                Ok(())
            );
        }
        // Without a bit, an IPA is what it says; bits that name no page are refused.
        let plain = Memslots::new();
        assert_eq!(plain.alias(0x4000_0000), None);
        assert_eq!(plain.canonical(SHARED | 0x4000_0000), SHARED | 0x4000_0000);
        for bit in [0, 11, 48, 63, 64, 255] {
            assert!(Memslots::with_shared_bit(bit).is_none(), "{bit}");
        }
    }

    #[test]
    fn at_most_max_memslots_and_max_devices() {
        let mut slots = Memslots::new();
        for n in 0..MAX_MEMSLOTS as u64 {
            slots
                .add(SlotKind::Memory, slot(n * 2 * MIB, n * 2 * MIB, 2 * MIB))
                .unwrap();
        }
        let next = slot(1 << 32, 1 << 32, 2 * MIB);
        assert_eq!(slots.check(SlotKind::Memory, &next), Err(SlotError::Full));
        assert_eq!(slots.add(SlotKind::Memory, next), Err(SlotError::Full));
        assert_eq!(slots.memory().len(), MAX_MEMSLOTS);
        // Devices have their own room.
        for n in 0..MAX_DEVICES as u64 {
            let ipa = (1 << 33) + n * 0x1000;
            slots.add(SlotKind::Device, slot(ipa, ipa, 0x1000)).unwrap();
        }
        assert_eq!(
            slots.add(SlotKind::Device, slot(1 << 34, 1 << 34, 0x1000)),
            Err(SlotError::Full)
        );
        assert_eq!(slots.devices().len(), MAX_DEVICES);
    }
}
