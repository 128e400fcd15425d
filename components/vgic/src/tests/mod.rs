//! Host tests. `helpers` here; the rules per topic in the submodules.

extern crate std;

mod delivery;
mod handover;
mod random;
mod registers;
mod v2;
mod v3;

use std::vec::Vec;

use crate::{Changes, Distributor, Frame, GICR_SGI_BASE, Pending, Version};

// Register offsets shared by GICv2's GICD, GICv3's GICD and SGI_base.
pub(crate) const IGROUPR: u64 = 0x080;
pub(crate) const ISENABLER: u64 = 0x100;
pub(crate) const ICENABLER: u64 = 0x180;
pub(crate) const ISPENDR: u64 = 0x200;
pub(crate) const ICPENDR: u64 = 0x280;
pub(crate) const ISACTIVER: u64 = 0x300;
pub(crate) const ICACTIVER: u64 = 0x380;
pub(crate) const IPRIORITYR: u64 = 0x400;
pub(crate) const ICFGR: u64 = 0xC00;
pub(crate) const CTLR: u64 = 0x000;
pub(crate) const TYPER: u64 = 0x004;
pub(crate) const IIDR: u64 = 0x008;

pub(crate) fn gic(version: Version, nr_vcpus: usize) -> Distributor {
    Distributor::new(version, nr_vcpus).expect("a valid configuration")
}

pub(crate) fn read(gic: &mut Distributor, frame: Frame, vcpu: usize, offset: u64, size: u8) -> u64 {
    gic.read(frame, vcpu, offset, size)
        .unwrap_or_else(|e| panic!("read {frame:?} {offset:#x}/{size}: {e:?}"))
}

pub(crate) fn write(
    gic: &mut Distributor,
    frame: Frame,
    vcpu: usize,
    offset: u64,
    size: u8,
    value: u64,
) -> Changes {
    gic.write(frame, vcpu, offset, size, value)
        .unwrap_or_else(|e| panic!("write {frame:?} {offset:#x}/{size}: {e:?}"))
}

/// Where `vcpu` reaches the per-interrupt register at `base` (a family above) for `intid`:
/// (frame, accessing vCPU, offset of the 32-bit word, bit or byte index in it).
pub(crate) fn locate(
    version: Version,
    vcpu: usize,
    intid: u32,
    base: u64,
    bits_per_irq: u32,
) -> (Frame, usize, u64, u32) {
    let per_word = 32 / bits_per_irq;
    let word_offset = base + u64::from(intid / per_word) * 4;
    let index = intid % per_word;
    match version {
        Version::V3 if intid < 32 => (
            Frame::Redistributor(vcpu),
            vcpu,
            GICR_SGI_BASE + word_offset,
            index,
        ),
        _ => (Frame::Gicd, vcpu, word_offset, index),
    }
}

/// Reads one interrupt's bit of a one-bit family, as `vcpu` sees it.
pub(crate) fn irq_bit(gic: &mut Distributor, vcpu: usize, intid: u32, base: u64) -> bool {
    let (frame, accessor, offset, bit) = locate(gic.version(), vcpu, intid, base, 1);
    read(gic, frame, accessor, offset, 4) >> bit & 1 != 0
}

/// Writes a single 1 bit to a one-bit family, as `vcpu`.
pub(crate) fn set_irq_bit(gic: &mut Distributor, vcpu: usize, intid: u32, base: u64) -> Changes {
    let (frame, accessor, offset, bit) = locate(gic.version(), vcpu, intid, base, 1);
    write(gic, frame, accessor, offset, 4, 1 << bit)
}

pub(crate) fn irq_priority(gic: &mut Distributor, vcpu: usize, intid: u32) -> u8 {
    let (frame, accessor, offset, byte) = locate(gic.version(), vcpu, intid, IPRIORITYR, 8);
    (read(gic, frame, accessor, offset + u64::from(byte), 1)) as u8
}

pub(crate) fn set_priority(gic: &mut Distributor, vcpu: usize, intid: u32, priority: u8) {
    let (frame, accessor, offset, byte) = locate(gic.version(), vcpu, intid, IPRIORITYR, 8);
    write(
        gic,
        frame,
        accessor,
        offset + u64::from(byte),
        1,
        priority.into(),
    );
}

/// Enables `intid`, makes it group 1 when asked, and enables both groups in GICD_CTLR.
pub(crate) fn enable(gic: &mut Distributor, vcpu: usize, intid: u32, group1: bool) {
    set_irq_bit(gic, vcpu, intid, ISENABLER);
    let (frame, accessor, offset, bit) = locate(gic.version(), vcpu, intid, IGROUPR, 1);
    let groups = read(gic, frame, accessor, offset, 4);
    let groups = if group1 {
        groups | 1 << bit
    } else {
        groups & !(1 << bit)
    };
    write(gic, frame, accessor, offset, 4, groups);
    write(gic, Frame::Gicd, 0, CTLR, 4, 0b11);
}

/// Everything `vcpu` should be shown, most urgent first.
pub(crate) fn deliverable(gic: &Distributor, vcpu: usize) -> Vec<Pending> {
    let mut out = [Pending::default(); 512];
    let count = gic.deliverable(vcpu, &mut out);
    out[..count].to_vec()
}

pub(crate) fn intids(pending: &[Pending]) -> Vec<u32> {
    pending.iter().map(|p| p.intid).collect()
}

#[test]
fn configurations_outside_one_to_eight_vcpus_are_refused() {
    use crate::ConfigError;
    assert_eq!(Distributor::new(Version::V2, 0), Err(ConfigError::NoVcpus));
    assert_eq!(
        Distributor::new(Version::V3, 9),
        Err(ConfigError::TooManyVcpus)
    );
    assert!(Distributor::new(Version::V3, 8).is_ok());
    assert!(Distributor::new(Version::V2, 1).is_ok());
}

#[test]
fn changes_name_vcpus() {
    let changes = Changes::vcpu(1) | Changes::vcpu(3);
    assert_eq!(changes.mask(), 0b1010);
    assert!(changes.includes(3) && !changes.includes(0) && !changes.includes(100));
    assert_eq!(changes.iter().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(Changes::vcpu(8), Changes::NONE);
    assert_eq!(Changes::first(3).mask(), 0b111);
    assert_eq!(Changes::first(8).mask(), 0xFF);
    assert!(Changes::NONE.is_empty());
}
