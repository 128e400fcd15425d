//! The [`Distributor`]: one VM's interrupt state, guest accesses to its frames, and the
//! interrupt-side calls of the integrator (device lines, SGIs, the list-register cycle).

use crate::access;
use crate::regs::{NR_PRIVATE, NR_SGIS, Reg, Scope, View};
use crate::state::{Irq, SLOT0};
use crate::{
    BadAccess, Changes, ConfigError, Frame, GICD_V2_FRAME_SIZE, GICD_V3_FRAME_SIZE,
    GICR_FRAME_SIZE, LrState, MAX_VCPUS, NR_IRQS, Pending, Version, v2, v3,
};

pub(crate) const NR_SPIS: usize = NR_IRQS - NR_PRIVATE;

/// GICD_CTLR bit 0: group 0 enable (GICv2: "Enable"; GICv3: EnableGrp0).
pub(crate) const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_CTLR bit 1: group 1 enable (GICv3: EnableGrp1 with a single security state).
pub(crate) const CTLR_ENABLE_GRP1: u32 = 1 << 1;

/// A vCPU's SGIs (edge-triggered) and PPIs (level-sensitive) at reset.
const PRIVATE_RESET: [Irq; NR_PRIVATE] = {
    let mut bank = [Irq::new(true); NR_PRIVATE];
    let mut sgi = 0;
    while sgi < NR_SGIS {
        bank[sgi] = Irq::new(false);
        sgi += 1;
    }
    bank
};

/// Interrupt `intid`'s reset state (of any vCPU, for a private one).
pub(crate) fn reset_irq(intid: usize) -> Irq {
    match PRIVATE_RESET.get(intid) {
        Some(&private) => private,
        None => Irq::new(true),
    }
}

/// One guest VM's emulated distributor (and, on GICv3, its redistributors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distributor {
    pub(crate) version: Version,
    pub(crate) nr_vcpus: usize,
    /// GICD_CTLR's group enables ([`CTLR_ENABLE_GRP0`], [`CTLR_ENABLE_GRP1`]).
    pub(crate) group_enables: u32,
    /// Each vCPU's SGIs and PPIs.
    pub(crate) private: [[Irq; NR_PRIVATE]; MAX_VCPUS],
    /// SPIs, indexed from INTID 32.
    pub(crate) spis: [Irq; NR_SPIS],
    /// GICv2 GICD_ITARGETSR of each SPI: a mask of existing vCPUs.
    pub(crate) spi_targets: [u8; NR_SPIS],
    /// GICv3 GICD_IROUTER of each SPI (its writable fields only).
    pub(crate) spi_routes: [u64; NR_SPIS],
    /// The vCPU whose list register holds each SPI, while one does.
    pub(crate) spi_lr_vcpu: [u8; NR_SPIS],
    /// GICv3 GICR_WAKER.ProcessorSleep of each redistributor.
    pub(crate) processor_sleep: [bool; MAX_VCPUS],
}

impl Distributor {
    /// A distributor in its reset state for a VM with `nr_vcpus` vCPUs (vCPU i has MPIDR
    /// affinity 0.0.0.i).
    pub fn new(version: Version, nr_vcpus: usize) -> Result<Self, ConfigError> {
        match nr_vcpus {
            0 => Err(ConfigError::NoVcpus),
            1..=MAX_VCPUS => Ok(Self::in_reset_state(version, nr_vcpus)),
            _ => Err(ConfigError::TooManyVcpus),
        }
    }

    /// Back to the reset state (a VM reset): every register and interrupt state, input lines
    /// low, list registers taken as empty.
    pub fn reset(&mut self) {
        *self = Self::in_reset_state(self.version, self.nr_vcpus);
    }

    fn in_reset_state(version: Version, nr_vcpus: usize) -> Self {
        Self {
            version,
            nr_vcpus,
            group_enables: 0,
            private: [PRIVATE_RESET; MAX_VCPUS],
            spis: [Irq::new(true); NR_SPIS],
            spi_targets: [0; NR_SPIS],
            spi_routes: [0; NR_SPIS],
            spi_lr_vcpu: [0; NR_SPIS],
            processor_sleep: [true; MAX_VCPUS],
        }
    }

    /// Which GIC the guest sees.
    pub fn version(&self) -> Version {
        self.version
    }

    /// How many vCPUs the VM has.
    pub fn nr_vcpus(&self) -> usize {
        self.nr_vcpus
    }

    /// A guest read of `size` bytes at `offset` in `frame` by `accessing_vcpu`.
    pub fn read(
        &mut self,
        frame: Frame,
        accessing_vcpu: usize,
        offset: u64,
        size: u8,
    ) -> Result<u64, BadAccess> {
        let (reg, view) = self.decode(frame, accessing_vcpu, offset, size)?;
        Ok(match reg {
            Reg::Reserved(_) | Reg::Sgir => 0,
            Reg::DistCtlr => u64::from(self.ctlr()),
            Reg::DistTyper => u64::from(self.typer()),
            Reg::Iidr => u64::from(IIDR),
            Reg::Pidr2 => u64::from(self.pidr2()),
            Reg::Bits {
                family,
                first_intid,
            } => self.read_bits(view, family, first_intid),
            Reg::Priority { first_intid } => self.read_priorities(view, first_intid, size),
            Reg::Config { first_intid } => self.read_config(view, first_intid),
            Reg::Targets { first_intid } => self.read_targets(view, first_intid, size),
            Reg::SgiSources { first_sgi, .. } => self.read_sgi_sources(view, first_sgi, size),
            Reg::Router { intid } => access::read_half(self.read_router(intid), offset, size),
            Reg::RedistTyper => access::read_half(self.redist_typer(view.bank), offset, size),
            Reg::RedistWaker => u64::from(self.redist_waker(view.bank)),
        })
    }

    /// A guest write of `size` bytes of `value` at `offset` in `frame` by `accessing_vcpu`.
    pub fn write(
        &mut self,
        frame: Frame,
        accessing_vcpu: usize,
        offset: u64,
        size: u8,
        value: u64,
    ) -> Result<Changes, BadAccess> {
        let (reg, view) = self.decode(frame, accessing_vcpu, offset, size)?;
        Ok(match reg {
            Reg::Reserved(_) | Reg::DistTyper | Reg::Iidr | Reg::Pidr2 | Reg::RedistTyper => {
                Changes::NONE
            }
            Reg::DistCtlr => self.write_ctlr(value),
            Reg::Bits {
                family,
                first_intid,
            } => self.write_bits(view, family, first_intid, value),
            Reg::Priority { first_intid } => self.write_priorities(view, first_intid, size, value),
            Reg::Config { first_intid } => self.write_config(view, first_intid, value),
            Reg::Targets { first_intid } => self.write_targets(first_intid, size, value),
            Reg::Sgir => self.write_sgir(accessing_vcpu, value),
            Reg::SgiSources { set, first_sgi } => {
                self.write_sgi_sources(view, set, first_sgi, size, value)
            }
            Reg::Router { intid } => self.write_router(intid, offset, size, value),
            Reg::RedistWaker => self.write_redist_waker(view.bank, value),
        })
    }

    /// Drives a level-sensitive input line (a device's SPI, or a PPI of `vcpu_for_ppi`). An
    /// interrupt configured edge-triggered latches pending on the rising edge instead.
    /// Ignored for SGIs, unknown INTIDs, and PPIs without an existing vCPU.
    pub fn set_level(&mut self, intid: u32, vcpu_for_ppi: Option<usize>, level: bool) -> Changes {
        match self.input(intid, vcpu_for_ppi) {
            Some((bank, intid)) if intid >= NR_SGIS => {
                self.update(bank, intid, |irq| irq.set_line(level))
            }
            _ => Changes::NONE,
        }
    }

    /// Makes an interrupt pending once (an edge, or a message): an SPI, or an SGI or PPI of
    /// `vcpu_for_ppi`. On a level-sensitive interrupt it latches pending like a set-pending
    /// write. Ignored for GICv2 SGIs (they need a sender: GICD_SGIR), unknown INTIDs, and
    /// private interrupts without an existing vCPU.
    pub fn inject_edge(&mut self, intid: u32, vcpu_for_ppi: Option<usize>) -> Changes {
        match self.input(intid, vcpu_for_ppi) {
            Some((_, intid)) if intid < NR_SGIS && self.version == Version::V2 => Changes::NONE,
            Some((bank, intid)) => self.update(bank, intid, |irq| irq.set_pending(SLOT0)),
            None => Changes::NONE,
        }
    }

    /// A GICv3 vCPU's write of ICC_SGI1R_EL1 (trapped to EL2): sends a group 1 SGI. Ignored on
    /// GICv2. See the `v3` module for the decoding.
    pub fn send_sgi_v3(&mut self, sending_vcpu: usize, icc_sgi1r: u64) -> Changes {
        if self.version != Version::V3 || sending_vcpu >= self.nr_vcpus {
            return Changes::NONE;
        }
        self.send_sgi1r(sending_vcpu, icc_sgi1r)
    }

    /// Fills `out` with the interrupts `vcpu` should be shown, most urgent first (lowest
    /// priority value, then lowest INTID, then lowest source), and returns how many it wrote.
    /// Listed: enabled, pending, of a group GICD_CTLR enables, targeted at this vCPU, and
    /// neither active nor already in a list register. When `out` is too short it holds the
    /// most urgent ones.
    pub fn deliverable(&self, vcpu: usize, out: &mut [Pending]) -> usize {
        let mut count = 0;
        if vcpu >= self.nr_vcpus {
            return 0;
        }
        for intid in 0..NR_IRQS {
            if intid >= NR_PRIVATE && self.spi_target(intid) != Some(vcpu) {
                continue;
            }
            let irq = self.irq(vcpu, intid);
            if !self.group_enabled(irq.group1) {
                continue;
            }
            let slots = irq.deliverable();
            for source in 0..8u8 {
                if slots & (1 << source) == 0 {
                    continue;
                }
                let pending = Pending {
                    intid: intid as u32,
                    priority: irq.priority,
                    group1: irq.group1,
                    source: self.has_sources(intid).then_some(source),
                };
                count = insert_by_urgency(out, count, pending);
            }
        }
        count
    }

    /// How `vcpu`'s private interrupt `intid` (a PPI) is to be delivered, for one whose
    /// pending state lives elsewhere (the virtual timer, which the kernel forwards from the
    /// hardware): its priority and group while it is enabled and its group is enabled in
    /// GICD_CTLR, `None` otherwise (also for an SGI, an SPI or a vCPU the VM does not have).
    pub fn private_delivery(&self, vcpu: usize, intid: u32) -> Option<(u8, bool)> {
        let intid = intid as usize;
        if vcpu >= self.nr_vcpus || !(NR_SGIS..NR_PRIVATE).contains(&intid) {
            return None;
        }
        let irq = self.irq(vcpu, intid);
        (irq.enabled && self.group_enabled(irq.group1)).then_some((irq.priority, irq.group1))
    }

    /// The kernel put this interrupt into one of `vcpu`'s list registers, as pending. An edge
    /// moves its pending state into the register; a level-sensitive interrupt stays pending as
    /// long as its line is high. `source`: the sender of a GICv2 SGI (ignored otherwise).
    pub fn mark_in_list_register(&mut self, vcpu: usize, intid: u32, source: Option<u8>) {
        if let Some((bank, intid, slot)) = self.lr_slot(vcpu, intid, source) {
            if let Some(spi) = intid.checked_sub(NR_PRIVATE) {
                self.spi_lr_vcpu[spi] = vcpu as u8;
            }
            self.irq_mut(bank, intid).enter_list_register(slot);
        }
    }

    /// Folds back what the list register of `vcpu` holding this interrupt now says: the guest
    /// acknowledged it (active), ended it ([`LrState::Invalid`]: inactive, the register is
    /// free, and a level-sensitive interrupt whose line is still high is pending again), or
    /// neither. Any state but `Invalid` means the register still holds it.
    pub fn sync_from_list_register(
        &mut self,
        vcpu: usize,
        intid: u32,
        source: Option<u8>,
        lr_state: LrState,
    ) {
        if let Some((bank, intid, slot)) = self.lr_slot(vcpu, intid, source) {
            self.irq_mut(bank, intid).fold_list_register(slot, lr_state);
        }
    }

    /// What the list register of `vcpu` holding this interrupt should say now, for the caller
    /// to rewrite it after [`Changes`] (a guest cleared its pending or active state, a line
    /// dropped). [`LrState::Invalid`]: empty the register, then report it with
    /// [`Self::sync_from_list_register`].
    pub fn list_register_state(&self, vcpu: usize, intid: u32, source: Option<u8>) -> LrState {
        match self.lr_slot(vcpu, intid, source) {
            Some((bank, intid, slot)) => self.irq(bank, intid).list_register_state(slot),
            None => LrState::Invalid,
        }
    }

    // ---- Internal: where an interrupt lives, who it goes to, what changed. ----

    /// The interrupt `intid` as `bank` sees it: its own SGI or PPI, or the shared SPI.
    /// `intid < NR_IRQS` and `bank < MAX_VCPUS`.
    pub(crate) fn irq(&self, bank: usize, intid: usize) -> &Irq {
        match intid.checked_sub(NR_PRIVATE) {
            Some(spi) => &self.spis[spi],
            None => &self.private[bank][intid],
        }
    }

    pub(crate) fn irq_mut(&mut self, bank: usize, intid: usize) -> &mut Irq {
        match intid.checked_sub(NR_PRIVATE) {
            Some(spi) => &mut self.spis[spi],
            None => &mut self.private[bank][intid],
        }
    }

    /// Applies `change` to one interrupt and reports the vCPUs it concerns, if it changed.
    pub(crate) fn update(
        &mut self,
        bank: usize,
        intid: usize,
        change: impl FnOnce(&mut Irq),
    ) -> Changes {
        let irq = self.irq_mut(bank, intid);
        let before = *irq;
        change(irq);
        if *irq == before {
            Changes::NONE
        } else {
            self.concerned_vcpus(bank, intid)
        }
    }

    /// The vCPUs a change to this interrupt can matter to: its owner (SGI, PPI), or the vCPU an
    /// SPI goes to and the one whose list register holds it.
    pub(crate) fn concerned_vcpus(&self, bank: usize, intid: usize) -> Changes {
        let Some(spi) = intid.checked_sub(NR_PRIVATE) else {
            return Changes::vcpu(bank);
        };
        let mut vcpus = self.spi_target(intid).map_or(Changes::NONE, Changes::vcpu);
        if self.spis[spi].in_lr != 0 {
            vcpus |= Changes::vcpu(usize::from(self.spi_lr_vcpu[spi]));
        }
        vcpus
    }

    /// Applies `change` to an SPI's target (ITARGETSR, IROUTER) and reports the vCPUs it
    /// concerns, if the vCPU it is delivered to changed.
    pub(crate) fn retarget(&mut self, intid: usize, change: impl FnOnce(&mut Self)) -> Changes {
        let before = (self.spi_target(intid), self.concerned_vcpus(0, intid));
        change(self);
        if self.spi_target(intid) == before.0 {
            Changes::NONE
        } else {
            before.1 | self.concerned_vcpus(0, intid)
        }
    }

    /// The vCPU an SPI is delivered to, if any.
    pub(crate) fn spi_target(&self, intid: usize) -> Option<usize> {
        let spi = intid.checked_sub(NR_PRIVATE)?;
        match self.version {
            Version::V2 => v2::delivery_target(self.nr_vcpus, *self.spi_targets.get(spi)?),
            Version::V3 => v3::delivery_target(self.nr_vcpus, *self.spi_routes.get(spi)?),
        }
    }

    pub(crate) fn group_enabled(&self, group1: bool) -> bool {
        let enable = if group1 {
            CTLR_ENABLE_GRP1
        } else {
            CTLR_ENABLE_GRP0
        };
        self.group_enables & enable != 0
    }

    /// Whether this interrupt is pending per source (GICv2 SGIs).
    fn has_sources(&self, intid: usize) -> bool {
        self.version == Version::V2 && intid < NR_SGIS
    }

    /// A mask of the VM's vCPUs.
    pub(crate) fn vcpu_mask(&self) -> u8 {
        Changes::first(self.nr_vcpus).mask()
    }

    /// An input's interrupt: (bank, INTID), checked.
    fn input(&self, intid: u32, vcpu_for_ppi: Option<usize>) -> Option<(usize, usize)> {
        let intid = usize::try_from(intid).ok().filter(|&i| i < NR_IRQS)?;
        if intid >= NR_PRIVATE {
            return Some((0, intid));
        }
        let vcpu = vcpu_for_ppi.filter(|&v| v < self.nr_vcpus)?;
        Some((vcpu, intid))
    }

    /// A list register's interrupt: (bank, INTID, slot), checked.
    fn lr_slot(&self, vcpu: usize, intid: u32, source: Option<u8>) -> Option<(usize, usize, u8)> {
        let intid = usize::try_from(intid).ok().filter(|&i| i < NR_IRQS)?;
        if vcpu >= self.nr_vcpus {
            return None;
        }
        let slot = if self.has_sources(intid) {
            let source = source.filter(|&s| usize::from(s) < self.nr_vcpus)?;
            1 << source
        } else {
            SLOT0
        };
        Some((vcpu, intid, slot))
    }

    /// Checks an access and decodes it: the register, and how the frame sees the interrupts.
    fn decode(
        &self,
        frame: Frame,
        accessing_vcpu: usize,
        offset: u64,
        size: u8,
    ) -> Result<(Reg, View), BadAccess> {
        if accessing_vcpu >= self.nr_vcpus {
            return Err(BadAccess::NoSuchVcpu);
        }
        let (frame_size, view) = match (self.version, frame) {
            (Version::V2, Frame::Gicd) => (
                GICD_V2_FRAME_SIZE,
                View {
                    bank: accessing_vcpu,
                    scope: Scope::All,
                },
            ),
            (Version::V3, Frame::Gicd) => (
                GICD_V3_FRAME_SIZE,
                View {
                    bank: accessing_vcpu,
                    scope: Scope::Spis,
                },
            ),
            (Version::V3, Frame::Redistributor(vcpu)) if vcpu < self.nr_vcpus => (
                GICR_FRAME_SIZE,
                View {
                    bank: vcpu,
                    scope: Scope::Private,
                },
            ),
            _ => return Err(BadAccess::NoSuchFrame),
        };
        access::check(offset, size, frame_size)?;
        let reg = match frame {
            Frame::Gicd if self.version == Version::V2 => v2::decode_gicd(offset),
            Frame::Gicd => v3::decode_gicd(offset),
            Frame::Redistributor(_) => v3::decode_gicr(offset),
        };
        if !reg.widths().allows(size) {
            return Err(BadAccess::Size);
        }
        Ok((reg, view))
    }

    fn ctlr(&self) -> u32 {
        match self.version {
            Version::V2 => self.group_enables,
            Version::V3 => self.group_enables | v3::CTLR_FIXED,
        }
    }

    fn write_ctlr(&mut self, value: u64) -> Changes {
        let enables = value as u32 & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
        if enables == self.group_enables {
            return Changes::NONE;
        }
        self.group_enables = enables;
        Changes::first(self.nr_vcpus)
    }

    fn typer(&self) -> u32 {
        match self.version {
            Version::V2 => v2::typer(self.nr_vcpus),
            Version::V3 => v3::TYPER,
        }
    }

    fn pidr2(&self) -> u32 {
        let arch_rev = match self.version {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        arch_rev << 4
    }
}

/// GICD_IIDR and GICR_IIDR: zero. The model has no JEP106 implementer code of its own, and
/// claiming Arm's (with some product number) would match entries in guests' errata tables.
const IIDR: u32 = 0;

/// Inserts `pending` into the first `count` (sorted) entries of `out`, dropping the least
/// urgent when `out` is full; returns the new count.
fn insert_by_urgency(out: &mut [Pending], count: usize, pending: Pending) -> usize {
    let urgency = |p: &Pending| (p.priority, p.intid, p.source);
    let position = out[..count]
        .iter()
        .position(|listed| urgency(&pending) < urgency(listed))
        .unwrap_or(count);
    if position >= out.len() {
        return count;
    }
    let kept = count.min(out.len() - 1);
    out.copy_within(position..kept, position + 1);
    out[position] = pending;
    kept + 1
}
