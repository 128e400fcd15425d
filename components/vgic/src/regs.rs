//! The decoded register an access is to, and the register families every frame shares: one bit
//! per interrupt (IGROUPR, IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER), one byte per interrupt
//! (IPRIORITYR) and two bits per interrupt (ICFGR). GICv2's GICD holds them for all interrupts;
//! GICv3's GICD only for SPIs (its SGI/PPI words read as zero under affinity routing) and each
//! redistributor's SGI_base only for its vCPU's SGIs and PPIs: [`Scope`] says which.

use crate::access::{self, Widths};
use crate::distributor::Distributor;
use crate::state::SLOT0;
use crate::{Changes, NR_IRQS, Version};

/// Interrupts below this are private to a vCPU (SGIs and PPIs).
pub(crate) const NR_PRIVATE: usize = 32;
/// Interrupts below this are SGIs.
pub(crate) const NR_SGIS: usize = 16;

/// A register, as a frame's map decodes an offset. Per-interrupt registers carry the first
/// interrupt they cover; interrupts the frame does not hold read as zero and ignore writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reg {
    /// Reserved, unimplemented or left out: reads as zero, writes are ignored.
    Reserved(Widths),
    /// GICD_CTLR.
    DistCtlr,
    /// GICD_TYPER.
    DistTyper,
    /// GICD_IIDR and GICR_IIDR.
    Iidr,
    /// PIDR2 (the architecture revision) of GICD and GICR.
    Pidr2,
    Bits {
        family: BitFamily,
        first_intid: usize,
    },
    /// IPRIORITYR: a byte per interrupt.
    Priority { first_intid: usize },
    /// ICFGR: two bits per interrupt.
    Config { first_intid: usize },
    /// GICv2 GICD_ITARGETSR: a byte per interrupt.
    Targets { first_intid: usize },
    /// GICv2 GICD_SGIR (write-only).
    Sgir,
    /// GICv2 GICD_SPENDSGIR (`set`) or GICD_CPENDSGIR: a byte of sources per SGI.
    SgiSources { set: bool, first_sgi: usize },
    /// GICv3 GICD_IROUTER<n>.
    Router { intid: usize },
    /// GICv3 GICR_TYPER.
    RedistTyper,
    /// GICv3 GICR_WAKER.
    RedistWaker,
}

impl Reg {
    pub fn widths(self) -> Widths {
        match self {
            Self::Reserved(widths) => widths,
            Self::Priority { .. } | Self::Targets { .. } | Self::SgiSources { .. } => {
                Widths::BYTE_OR_WORD
            }
            Self::Router { .. } | Self::RedistTyper => Widths::WORD_OR_DOUBLEWORD,
            _ => Widths::WORD,
        }
    }
}

/// Decodes the per-interrupt registers, at the same offsets in GICv2's GICD, GICv3's GICD and a
/// redistributor's SGI_base frame; `None` elsewhere.
pub(crate) fn decode_per_interrupt(offset: u64) -> Option<Reg> {
    // Offsets inside a frame are below 64 KiB: the conversions cannot truncate.
    let from = |base: u64| (offset - base) as usize;
    let bits = |family, base| Reg::Bits {
        family,
        first_intid: from(base) / 4 * 32,
    };
    Some(match offset {
        0x080..=0x0FF => bits(BitFamily::Group, 0x080),
        0x100..=0x17F => bits(BitFamily::SetEnable, 0x100),
        0x180..=0x1FF => bits(BitFamily::ClearEnable, 0x180),
        0x200..=0x27F => bits(BitFamily::SetPending, 0x200),
        0x280..=0x2FF => bits(BitFamily::ClearPending, 0x280),
        0x300..=0x37F => bits(BitFamily::SetActive, 0x300),
        0x380..=0x3FF => bits(BitFamily::ClearActive, 0x380),
        0x400..=0x7FB => Reg::Priority {
            first_intid: from(0x400),
        },
        0xC00..=0xCFF => Reg::Config {
            first_intid: from(0xC00) / 4 * 16,
        },
        _ => return None,
    })
}

/// The one-bit-per-interrupt registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitFamily {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

/// Which interrupts a frame's per-interrupt registers hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// GICv2 GICD: all of them (SGIs and PPIs banked per accessing vCPU).
    All,
    /// GICv3 GICD: SPIs only.
    Spis,
    /// GICv3 redistributor: its vCPU's SGIs and PPIs.
    Private,
}

impl Scope {
    pub fn covers(self, intid: usize) -> bool {
        match self {
            Self::All => intid < NR_IRQS,
            Self::Spis => (NR_PRIVATE..NR_IRQS).contains(&intid),
            Self::Private => intid < NR_PRIVATE,
        }
    }
}

/// How an access sees the distributor: whose SGIs and PPIs, which interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// The vCPU whose SGIs and PPIs the frame shows: the accessing one on GICv2, the
    /// redistributor's on GICv3.
    pub bank: usize,
    pub scope: Scope,
}

impl Distributor {
    pub(crate) fn read_bits(&self, view: View, family: BitFamily, first_intid: usize) -> u64 {
        let mut word = 0;
        for bit in 0..32 {
            let intid = first_intid + bit;
            if !view.scope.covers(intid) {
                continue;
            }
            let irq = self.irq(view.bank, intid);
            let on = match family {
                BitFamily::Group => irq.group1,
                BitFamily::SetEnable | BitFamily::ClearEnable => irq.enabled,
                BitFamily::SetPending | BitFamily::ClearPending => irq.pending() != 0,
                BitFamily::SetActive | BitFamily::ClearActive => irq.active != 0,
            };
            word |= u64::from(on) << bit;
        }
        word
    }

    /// IGROUPR takes the whole word; the set and clear registers act on their 1 bits only.
    pub(crate) fn write_bits(
        &mut self,
        view: View,
        family: BitFamily,
        first_intid: usize,
        value: u64,
    ) -> Changes {
        let mut changes = Changes::NONE;
        for bit in 0..32 {
            let intid = first_intid + bit;
            if !view.scope.covers(intid) {
                continue;
            }
            let one = value >> bit & 1 != 0;
            // GICv2 keeps an SGI pending per source, which ISPENDR/ICPENDR cannot name: their
            // SGI bits ignore writes (SPENDSGIR/CPENDSGIR do it).
            let v2_sgi = self.version == Version::V2 && intid < NR_SGIS;
            // Likewise an SGI made active by ISACTIVER: taken as sent by the writing vCPU.
            let active_slot = if v2_sgi { 1 << view.bank } else { SLOT0 };
            changes |= match family {
                BitFamily::Group => self.update(view.bank, intid, |irq| irq.group1 = one),
                _ if !one => Changes::NONE,
                BitFamily::SetEnable => self.update(view.bank, intid, |irq| irq.enabled = true),
                BitFamily::ClearEnable => self.update(view.bank, intid, |irq| irq.enabled = false),
                BitFamily::SetPending | BitFamily::ClearPending if v2_sgi => Changes::NONE,
                BitFamily::SetPending => {
                    self.update(view.bank, intid, |irq| irq.set_pending(SLOT0))
                }
                BitFamily::ClearPending => {
                    self.update(view.bank, intid, |irq| irq.clear_pending(SLOT0))
                }
                BitFamily::SetActive => {
                    self.update(view.bank, intid, |irq| irq.active |= active_slot)
                }
                BitFamily::ClearActive => self.update(view.bank, intid, |irq| irq.active = 0),
            };
        }
        changes
    }

    pub(crate) fn read_priorities(&self, view: View, first_intid: usize, size: u8) -> u64 {
        access::read_lanes(size, |lane| {
            let intid = first_intid + lane;
            if view.scope.covers(intid) {
                self.irq(view.bank, intid).priority
            } else {
                0
            }
        })
    }

    pub(crate) fn write_priorities(
        &mut self,
        view: View,
        first_intid: usize,
        size: u8,
        value: u64,
    ) -> Changes {
        let mut changes = Changes::NONE;
        access::write_lanes(size, value, |lane, priority| {
            let intid = first_intid + lane;
            if view.scope.covers(intid) {
                changes |= self.update(view.bank, intid, |irq| irq.set_priority(priority));
            }
        });
        changes
    }

    /// ICFGR: bit 2n+1 of field n set = edge-triggered (bit 2n is reserved).
    pub(crate) fn read_config(&self, view: View, first_intid: usize) -> u64 {
        let mut word = 0;
        for field in 0..16 {
            let intid = first_intid + field;
            if view.scope.covers(intid) && !self.irq(view.bank, intid).level_sensitive {
                word |= 0b10 << (2 * field);
            }
        }
        word
    }

    pub(crate) fn write_config(&mut self, view: View, first_intid: usize, value: u64) -> Changes {
        let mut changes = Changes::NONE;
        for field in 0..16 {
            let intid = first_intid + field;
            if view.scope.covers(intid) && self.config_writable(intid) {
                let edge = value >> (2 * field + 1) & 1 != 0;
                changes |= self.update(view.bank, intid, |irq| irq.level_sensitive = !edge);
            }
        }
        changes
    }

    /// SGIs are always edge-triggered; PPIs are fixed level-sensitive on GICv2 and programmable
    /// on GICv3 (GICR_ICFGR1); SPIs are programmable.
    fn config_writable(&self, intid: usize) -> bool {
        match intid {
            0..NR_SGIS => false,
            NR_SGIS..NR_PRIVATE => self.version == Version::V3,
            _ => true,
        }
    }
}
