//! GICv2 (ARM IHI 0048B): the distributor's register map, and the registers only GICv2 has:
//! GICD_ITARGETSR (SPI targets as a CPU mask), GICD_SGIR (software-generated interrupts with a
//! target filter) and GICD_SPENDSGIR/GICD_CPENDSGIR (an SGI's pending state per source).

use crate::access::{self, Widths};
use crate::distributor::Distributor;
use crate::regs::{self, NR_PRIVATE, Reg, View};
use crate::{Changes, NR_IRQS};

/// Decodes an offset in the 4 KiB GICv2 distributor frame.
pub(crate) fn decode_gicd(offset: u64) -> Reg {
    let from = |base: u64| (offset - base) as usize;
    match offset {
        0x000 => Reg::DistCtlr,
        0x004 => Reg::DistTyper,
        0x008 => Reg::Iidr,
        0x800..=0xBFB => Reg::Targets {
            first_intid: from(0x800),
        },
        0xF00 => Reg::Sgir,
        0xF10..=0xF1F => Reg::SgiSources {
            set: false,
            first_sgi: from(0xF10),
        },
        0xF20..=0xF2F => Reg::SgiSources {
            set: true,
            first_sgi: from(0xF20),
        },
        0xFE8 => Reg::Pidr2,
        _ => regs::decode_per_interrupt(offset).unwrap_or(Reg::Reserved(Widths::WORD)),
    }
}

/// GICD_TYPER: ITLinesNumber 7 (256 interrupt IDs), CPUNumber, no Security Extensions.
pub(crate) fn typer(nr_vcpus: usize) -> u32 {
    let lines = (crate::NR_IRQS / 32 - 1) as u32;
    let cpus = nr_vcpus.saturating_sub(1) as u32;
    lines | cpus << 5
}

/// The vCPU an SPI with this ITARGETSR goes to: the lowest-numbered one it names. (A GIC would
/// signal every target and let the first to acknowledge take it; one list register cannot be
/// in several vCPUs at once.) With one vCPU, ITARGETSR reads as zero and everything goes to it.
pub(crate) fn delivery_target(nr_vcpus: usize, targets: u8) -> Option<usize> {
    if nr_vcpus == 1 {
        Some(0)
    } else if targets == 0 {
        None
    } else {
        Some(targets.trailing_zeros() as usize)
    }
}

impl Distributor {
    /// ITARGETSR: SGIs and PPIs (ITARGETSR0-7) read as the accessing vCPU's own bit and ignore
    /// writes; all of them read as zero with one vCPU (a uniprocessor GIC).
    pub(crate) fn read_targets(&self, view: View, first_intid: usize, size: u8) -> u64 {
        access::read_lanes(size, |lane| {
            let intid = first_intid + lane;
            if self.nr_vcpus == 1 || intid >= NR_IRQS {
                0
            } else if intid < NR_PRIVATE {
                1 << view.bank
            } else {
                self.spi_targets[intid - NR_PRIVATE]
            }
        })
    }

    /// Bits of vCPUs the VM does not have read as zero and ignore writes.
    pub(crate) fn write_targets(&mut self, first_intid: usize, size: u8, value: u64) -> Changes {
        let mut changes = Changes::NONE;
        if self.nr_vcpus == 1 {
            return changes;
        }
        let existing = self.vcpu_mask();
        access::write_lanes(size, value, |lane, targets| {
            let intid = first_intid + lane;
            if (NR_PRIVATE..NR_IRQS).contains(&intid) {
                changes |= self.retarget(intid, |gicd| {
                    gicd.spi_targets[intid - NR_PRIVATE] = targets & existing;
                });
            }
        });
        changes
    }

    /// GICD_SGIR: TargetListFilter [25:24] (0: the CPUTargetList [23:16]; 1: all but the
    /// sender; 2: the sender; 3: reserved, nothing), SGIINTID [3:0]. Each target records the
    /// sender, so an SGI from two vCPUs is pending twice.
    pub(crate) fn write_sgir(&mut self, sender: usize, value: u64) -> Changes {
        let existing = self.vcpu_mask();
        let sender_bit = 1u8 << sender;
        let targets = match value >> 24 & 0b11 {
            0 => (value >> 16) as u8 & existing,
            1 => existing & !sender_bit,
            2 => sender_bit,
            _ => 0,
        };
        let sgi = (value & 0xF) as usize;
        let mut changes = Changes::NONE;
        for target in (0..self.nr_vcpus).filter(|&vcpu| targets & (1 << vcpu) != 0) {
            changes |= self.update(target, sgi, |irq| irq.set_pending(sender_bit));
        }
        changes
    }

    /// SPENDSGIR/CPENDSGIR: a byte per SGI of the accessing vCPU, bit s = pending from vCPU s.
    pub(crate) fn read_sgi_sources(&self, view: View, first_sgi: usize, size: u8) -> u64 {
        let existing = self.vcpu_mask();
        access::read_lanes(size, |lane| {
            self.irq(view.bank, first_sgi + lane).pending() & existing
        })
    }

    pub(crate) fn write_sgi_sources(
        &mut self,
        view: View,
        set: bool,
        first_sgi: usize,
        size: u8,
        value: u64,
    ) -> Changes {
        let existing = self.vcpu_mask();
        let mut changes = Changes::NONE;
        access::write_lanes(size, value, |lane, sources| {
            let sources = sources & existing;
            changes |= self.update(view.bank, first_sgi + lane, |irq| {
                if set {
                    irq.set_pending(sources);
                } else {
                    irq.clear_pending(sources);
                }
            });
        });
        changes
    }
}
