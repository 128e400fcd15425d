//! GICv3 (ARM IHI 0069) with affinity routing always on and one security state: the
//! distributor's and the redistributors' register maps, and what only GICv3 has: GICD_IROUTER
//! (SPI routing by affinity), GICR_TYPER, GICR_WAKER and ICC_SGI1R_EL1 decoding.
//!
//! The affinity scheme: vCPU i has MPIDR affinity 0.0.0.i (Aff3.Aff2.Aff1.Aff0), so an
//! affinity names a vCPU exactly when Aff3, Aff2 and Aff1 are zero and Aff0 < nr_vcpus.

use crate::access::{self, Widths};
use crate::distributor::Distributor;
use crate::regs::{self, NR_PRIVATE, Reg};
use crate::state::SLOT0;
use crate::{Changes, GICR_SGI_BASE, NR_IRQS};

/// GICD_CTLR bits that read as one and ignore writes: ARE (bit 4, affinity routing) and DS
/// (bit 6, a single security state).
pub(crate) const CTLR_FIXED: u32 = 1 << 4 | 1 << 6;

/// GICD_TYPER: ITLinesNumber 7 (256 interrupt IDs), IDbits 9 (10 ID bits), No1N (no 1-of-N
/// SPI routing). No LPIs, MBIs, extended ranges, Aff3 (A3V) or range selectors (RSS);
/// CPUNumber 0 as there is no legacy (non-affinity-routed) operation.
pub(crate) const TYPER: u32 = (NR_IRQS / 32 - 1) as u32 | 9 << 19 | 1 << 25;

/// GICD_IROUTER's writable fields: Aff2 [23:16], Aff1 [15:8], Aff0 [7:0]. Aff3 [39:32] is RES0
/// (TYPER.A3V = 0) and so is IRM [31] (TYPER.No1N = 1).
pub(crate) const ROUTER_WRITABLE: u64 = 0x00FF_FFFF;

/// GICR_TYPER.Last: the highest redistributor.
const REDIST_TYPER_LAST: u64 = 1 << 4;

/// GICR_WAKER: ProcessorSleep [1] and ChildrenAsleep [2].
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// ICC_SGI1R_EL1.IRM: every vCPU but the sender.
const SGI1R_IRM: u64 = 1 << 40;

/// Decodes an offset in the 64 KiB GICv3 distributor frame. Per-interrupt registers reach
/// only SPIs here (the `Scope`); the SGI/PPI words are the redistributors'.
pub(crate) fn decode_gicd(offset: u64) -> Reg {
    match offset {
        0x0000 => Reg::DistCtlr,
        0x0004 => Reg::DistTyper,
        0x0008 => Reg::Iidr,
        // GICD_TYPER2 (0x000C) is zero: no vPEs, no extended ranges. ITARGETSR and
        // SPENDSGIR/CPENDSGIR are reserved under affinity routing, byte-accessible still.
        0x0800..=0x0BFB | 0x0F10..=0x0F2F => Reg::Reserved(Widths::BYTE_OR_WORD),
        0x6000..=0x7FDF => Reg::Router {
            intid: ((offset - 0x6000) / 8) as usize,
        },
        0xFFE8 => Reg::Pidr2,
        // IGRPMODR (0x0D00) and NSACR (0x0E00): one security state, RAZ/WI.
        _ => regs::decode_per_interrupt(offset).unwrap_or(Reg::Reserved(Widths::WORD)),
    }
}

/// Decodes an offset in a 128 KiB redistributor: RD_base, then SGI_base.
pub(crate) fn decode_gicr(offset: u64) -> Reg {
    if let Some(sgi_offset) = offset.checked_sub(GICR_SGI_BASE) {
        // IGRPMODR0 (0x0D00) and NSACR (0x0E00) are RAZ/WI as in the distributor.
        return regs::decode_per_interrupt(sgi_offset).unwrap_or(Reg::Reserved(Widths::WORD));
    }
    match offset {
        // GICR_CTLR (0x0000) reads as zero: no LPIs to enable, writes never pending (RWP).
        0x0004 => Reg::Iidr,
        0x0008 | 0x000C => Reg::RedistTyper,
        0x0014 => Reg::RedistWaker,
        0xFFE8 => Reg::Pidr2,
        _ => Reg::Reserved(Widths::WORD),
    }
}

/// The vCPU an SPI with this IROUTER goes to; none if its affinity names no vCPU.
pub(crate) fn delivery_target(nr_vcpus: usize, route: u64) -> Option<usize> {
    let (aff0, upper) = ((route & 0xFF) as usize, route & 0xFFFF_FF00);
    (upper == 0 && aff0 < nr_vcpus).then_some(aff0)
}

impl Distributor {
    /// IROUTER<n> of an SPI; zero for n < 32 (reserved) and INTIDs past the last.
    pub(crate) fn read_router(&self, intid: usize) -> u64 {
        match intid.checked_sub(NR_PRIVATE) {
            Some(spi) if intid < NR_IRQS => self.spi_routes[spi],
            _ => 0,
        }
    }

    pub(crate) fn write_router(
        &mut self,
        intid: usize,
        offset: u64,
        size: u8,
        value: u64,
    ) -> Changes {
        if !(NR_PRIVATE..NR_IRQS).contains(&intid) {
            return Changes::NONE;
        }
        let spi = intid - NR_PRIVATE;
        let route = access::write_half(self.spi_routes[spi], offset, size, value);
        self.retarget(intid, |gicd| gicd.spi_routes[spi] = route & ROUTER_WRITABLE)
    }

    /// GICR_TYPER: Affinity_Value [63:32] = 0.0.0.vcpu, Processor_Number [23:8] = vcpu, Last
    /// [4] on the highest vCPU; no LPIs (PLPIS, VLPIS zero), no extra PPIs.
    pub(crate) fn redist_typer(&self, vcpu: usize) -> u64 {
        let vcpu_number = vcpu as u64;
        let last = if vcpu + 1 == self.nr_vcpus {
            REDIST_TYPER_LAST
        } else {
            0
        };
        vcpu_number << 32 | vcpu_number << 8 | last
    }

    /// GICR_WAKER: ChildrenAsleep follows ProcessorSleep at once (there is nothing to quiesce).
    pub(crate) fn redist_waker(&self, vcpu: usize) -> u32 {
        if self.processor_sleep[vcpu] {
            WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
        } else {
            0
        }
    }

    /// ProcessorSleep is a handshake the guest's driver expects; it does not gate delivery.
    pub(crate) fn write_redist_waker(&mut self, vcpu: usize, value: u64) -> Changes {
        self.processor_sleep[vcpu] = value & u64::from(WAKER_PROCESSOR_SLEEP) != 0;
        Changes::NONE
    }

    /// ICC_SGI1R_EL1: TargetList [15:0] (bit n = Aff0 16 * RS + n), Aff1 [23:16], INTID
    /// [27:24], Aff2 [39:32], IRM [40] (every vCPU but the sender, the rest ignored), RS
    /// [47:44], Aff3 [55:48]. Only vCPUs whose SGI is group 1 take it: with a single security
    /// state, SGI1R generates group 1 SGIs and a target with the SGI in group 0 ignores it.
    pub(crate) fn send_sgi1r(&mut self, sender: usize, value: u64) -> Changes {
        let existing = self.vcpu_mask();
        let targets = if value & SGI1R_IRM != 0 {
            existing & !(1 << sender)
        } else {
            let aff1 = value >> 16 & 0xFF;
            let aff2 = value >> 32 & 0xFF;
            let range_selector = value >> 44 & 0xF;
            let aff3 = value >> 48 & 0xFF;
            if aff1 | aff2 | aff3 | range_selector == 0 {
                // TargetList bits 8-15 would be Aff0 8-15: no such vCPU.
                value as u8 & existing
            } else {
                0
            }
        };
        let sgi = (value >> 24 & 0xF) as usize;
        let mut changes = Changes::NONE;
        for target in (0..self.nr_vcpus).filter(|&vcpu| targets & (1 << vcpu) != 0) {
            if self.irq(target, sgi).group1 {
                changes |= self.update(target, sgi, |irq| irq.set_pending(SLOT0));
            }
        }
        changes
    }
}
