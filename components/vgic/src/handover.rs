//! A distributor's state across a hot-swap of the VM manager (docs/hot-swap.md): written by
//! the old instance, read by the new one into a distributor of the same shape.
//!
//! Only what differs from the reset state is written: a GIC model holds 480 interrupts and
//! 224 SPI routes, most of which a guest never touches, so the whole state of a Linux guest
//! is about 3 KiB instead of 7 (and several guests fit the hand-over's 32 KiB). The bytes are
//! a sequence of postcard values:
//!
//! 1. `(version: u8, nr_vcpus: u8, group_enables: u32, processor_sleep: u8)`, the sleep bits
//!    one per vCPU slot;
//! 2. `count: u16`, then per interrupt that differs from reset, in increasing `index` (vCPU
//!    `v`'s private INTID `i` is `v * 32 + i`, SPI `s` is `256 + s`): `(index: u16, enabled,
//!    group1, priority: u8, level_sensitive, line_high, latched: u8, lr_pending: u8,
//!    active: u8, in_lr: u8)`;
//! 3. `count: u16`, then per SPI whose GICv2 targets, GICv3 route or list-register vCPU is
//!    not zero, in increasing order: `(spi: u16, targets: u8, route: u64, lr_vcpu: u8)`.
//!
//! Reading checks every value against what the registers and the list-register cycle could
//! have made (priority bits, the slots an interrupt can use, SGIs edge-triggered, targets and
//! routes within the VM), so a damaged or foreign state is refused rather than taken.

use hv_ipc::lifecycle::{BadState, StateReader, StateWriter};

use crate::distributor::{CTLR_ENABLE_GRP0, CTLR_ENABLE_GRP1, NR_SPIS, reset_irq};
use crate::regs::{NR_PRIVATE, NR_SGIS};
use crate::state::{Irq, SLOT0};
use crate::{Distributor, MAX_VCPUS, PRIORITY_MASK, Version, v3};

/// The hand-over's shape, for the schema hash of the state that holds it.
pub const SCHEMA_TEXT: &str = "(version: u8, nr_vcpus: u8, group_enables: u32, \
     processor_sleep: u8), count: u16, then (index: u16, enabled: bool, group1: bool, \
     priority: u8, level_sensitive: bool, line_high: bool, latched: u8, lr_pending: u8, \
     active: u8, in_lr: u8), count: u16, then (spi: u16, targets: u8, route: u64, lr_vcpu: u8)";

/// Where SPIs start in the interrupt index.
const FIRST_SPI_INDEX: usize = MAX_VCPUS * NR_PRIVATE;

/// An interrupt's index and state.
type IrqRecord = (u16, Irq);
type SpiRecord = (u16, u8, u64, u8);

fn version_code(version: Version) -> u8 {
    match version {
        Version::V2 => 2,
        Version::V3 => 3,
    }
}

impl Distributor {
    /// Writes this distributor's state (what differs from its reset state); `None` if it
    /// does not fit.
    pub fn export(&self, out: &mut StateWriter) -> Option<()> {
        let sleep = self
            .processor_sleep
            .iter()
            .enumerate()
            .fold(0u8, |bits, (vcpu, &asleep)| bits | u8::from(asleep) << vcpu);
        out.put(&(
            version_code(self.version),
            self.nr_vcpus as u8,
            self.group_enables,
            sleep,
        ))?;
        let changed = || {
            let private = (0..self.nr_vcpus).flat_map(move |vcpu| {
                (0..NR_PRIVATE).map(move |intid| (vcpu * NR_PRIVATE + intid, vcpu, intid))
            });
            let spis = (NR_PRIVATE..NR_PRIVATE + NR_SPIS)
                .map(|intid| (FIRST_SPI_INDEX + intid - NR_PRIVATE, 0, intid));
            private
                .chain(spis)
                .filter(|&(_, bank, intid)| *self.irq(bank, intid) != reset_irq(intid))
        };
        out.put(&(changed().count() as u16))?;
        for (index, bank, intid) in changed() {
            let record: IrqRecord = (index as u16, *self.irq(bank, intid));
            out.put(&record)?;
        }
        let spi_extras = || {
            (0..NR_SPIS).filter(|&spi| {
                self.spi_targets[spi] != 0
                    || self.spi_routes[spi] != 0
                    || self.spi_lr_vcpu[spi] != 0
            })
        };
        out.put(&(spi_extras().count() as u16))?;
        for spi in spi_extras() {
            let extra: SpiRecord = (
                spi as u16,
                self.spi_targets[spi],
                self.spi_routes[spi],
                self.spi_lr_vcpu[spi],
            );
            out.put(&extra)?;
        }
        Some(())
    }

    /// Reads a state [`Distributor::export`] wrote for a distributor of the same version and
    /// vCPU count, and takes it. On a refusal this distributor is left in its reset state.
    pub fn import(&mut self, input: &mut StateReader) -> Result<(), BadState> {
        let (version, nr_vcpus) = (self.version, self.nr_vcpus);
        self.reset();
        let existing = ((1u16 << nr_vcpus) - 1) as u8;
        let (_, _, group_enables, sleep) =
            input.take_if(|&(code, vcpus, enables, sleep): &(u8, u8, u32, u8)| {
                code == version_code(version)
                    && usize::from(vcpus) == nr_vcpus
                    && enables & !(CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1) == 0
                    // Slots past the last vCPU stay asleep, as at reset.
                    && sleep | existing == 0xff
            })?;
        let result = self.take_interrupts(input, existing);
        if result.is_err() {
            self.reset();
            return result;
        }
        self.group_enables = group_enables;
        for (vcpu, asleep) in self.processor_sleep.iter_mut().enumerate() {
            *asleep = sleep & 1 << vcpu != 0;
        }
        Ok(())
    }

    fn take_interrupts(&mut self, input: &mut StateReader, existing: u8) -> Result<(), BadState> {
        let nr_vcpus = self.nr_vcpus;
        let v2 = self.version == Version::V2;
        let count: u16 = input.take()?;
        let mut next = 0;
        for _ in 0..count {
            let (index, irq): IrqRecord = input.take()?;
            let index = usize::from(index);
            let (bank, intid) = match index.checked_sub(FIRST_SPI_INDEX) {
                Some(spi) if spi < NR_SPIS => (0, NR_PRIVATE + spi),
                Some(_) => return Err(BadState),
                None if index / NR_PRIVATE < nr_vcpus => (index / NR_PRIVATE, index % NR_PRIVATE),
                None => return Err(BadState),
            };
            let sgi = intid < NR_SGIS;
            // A GICv2 SGI is pending per sender (slot n: vCPU n); everything else uses one slot.
            let slots = if v2 && sgi { existing } else { SLOT0 };
            let valid = index >= next
                && irq.priority & !PRIORITY_MASK == 0
                && !(sgi && (irq.level_sensitive || irq.line_high))
                && (irq.latched | irq.lr_pending | irq.active | irq.in_lr) & !slots == 0;
            if !valid {
                return Err(BadState);
            }
            next = index + 1;
            *self.irq_mut(bank, intid) = irq;
        }
        let count: u16 = input.take()?;
        let mut next = 0;
        for _ in 0..count {
            let (spi, targets, route, lr_vcpu): SpiRecord = input.take()?;
            let spi = usize::from(spi);
            let valid = spi >= next
                && spi < NR_SPIS
                && targets & !existing == 0
                && route & !v3::ROUTER_WRITABLE == 0
                && usize::from(lr_vcpu) < nr_vcpus;
            if !valid {
                return Err(BadState);
            }
            next = spi + 1;
            self.spi_targets[spi] = targets;
            self.spi_routes[spi] = route;
            self.spi_lr_vcpu[spi] = lr_vcpu;
        }
        Ok(())
    }
}
