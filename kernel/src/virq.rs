//! Virtual interrupts of guest vCPUs: what a list register holds (GICv2's GICH_LRn and GICv3's
//! ICH_LR<n>_EL2 encode the same fields differently) and which of a vCPU's waiting interrupts
//! go into its list registers on the way back to the guest.
//!
//! The guest's CPU interface is the hardware's virtual interface: the guest acknowledges,
//! completes and masks its interrupts there without trapping. The kernel only fills list
//! registers. What is waiting comes from two places: the VM manager, which emulates the
//! guest's distributor and asks the kernel to make an interrupt pending on a vCPU
//! ([`Waiting::add`]), and the kernel itself for the one interrupt it forwards from the
//! hardware, the vCPU's virtual timer, which it links to the physical interrupt (a hardware
//! entry: the guest's deactivation deactivates the physical one, so the timer cannot fire again
//! until the guest has handled it).
//!
//! [`fill`] runs before a vCPU resumes whenever something waits: highest priority first, an
//! interrupt already in a list register is merged into that entry (an active one becomes
//! pending and active, as a second edge would make it), the others take free list registers.
//! What finds no free register keeps waiting, and the caller asks for the underflow maintenance
//! interrupt, which comes when the guest has completed enough of what the registers hold.

use heapless::Vec;
use hv_ipc::abi::kernel_op_args;

/// Most list registers an implementation has (ICH_VTR_EL2.ListRegs + 1 ≤ 16; GICv2 ≤ 64, of
/// which the kernel uses 16).
pub const MAX_LIST_REGISTERS: usize = 16;

/// Interrupts that may wait for a vCPU's list registers: as many as the GIC's SGIs and PPIs,
/// with room for SPIs. The VM manager resends what did not fit once the vCPU drained.
pub const WAITING_DEPTH: usize = 32;

/// Largest interrupt ID a list register can name here (the GICv2 field is 10 bits; IDs 1020 and
/// up are special).
pub const MAX_INTID: u32 = 1019;

/// Which list-register format (the GIC architecture version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// GICv2: 32-bit GICH_LRn.
    V2,
    /// GICv3: 64-bit ICH_LR<n>_EL2.
    V3,
}

/// One virtual interrupt to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualIrq {
    /// The interrupt ID the guest acknowledges.
    pub intid: u32,
    /// Its priority as the guest set it (8-bit GIC priority; list registers keep the top 5
    /// bits).
    pub priority: u8,
    /// Group 1 (GICv3 guests, which acknowledge with ICC_IAR1) or group 0 (GICv2 guests, whose
    /// group 0 is signalled as IRQ).
    pub group1: bool,
    /// The physical interrupt it stands for, which the guest's deactivation deactivates.
    pub hardware: Option<u32>,
    /// For a GICv2 SGI, the vCPU that sent it (the guest reads it in GICC_IAR.CPUID).
    pub source: u8,
}

impl VirtualIrq {
    /// Whether `other` is the same interrupt (for an SGI of GICv2, from the same source).
    pub fn same_as(&self, other: &VirtualIrq) -> bool {
        self.intid == other.intid && self.source == other.source
    }

    /// Packs it into one word for the VM manager's kernel operation: INTID in bits 0..10,
    /// priority 16..24, group 1 in bit 24, GICv2 SGI source in 32..35. (Hardware links are
    /// the kernel's own and are not packed.)
    pub fn pack(&self) -> u64 {
        kernel_op_args::interrupt(self.intid, self.priority, self.group1, self.source)
    }

    /// The inverse of [`VirtualIrq::pack`]; `None` for an INTID no list register can hold, a
    /// source past 7 or bits set elsewhere.
    pub fn unpack(word: u64) -> Option<Self> {
        let (intid, priority, group1, source) = kernel_op_args::interrupt_of(word)?;
        (intid <= MAX_INTID).then_some(Self {
            intid,
            priority,
            group1,
            hardware: None,
            source,
        })
    }
}

/// A list register's state field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    /// Empty.
    Invalid,
    /// Pending: the guest has not acknowledged it.
    Pending,
    /// Acknowledged, not yet deactivated.
    Active,
    /// Acknowledged, and pending again.
    PendingActive,
}

impl LrState {
    fn bits(self) -> u64 {
        match self {
            LrState::Invalid => 0,
            LrState::Pending => 1,
            LrState::Active => 2,
            LrState::PendingActive => 3,
        }
    }

    fn from_bits(bits: u64) -> Self {
        match bits & 3 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }
}

/// A list register's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The interrupt.
    pub irq: VirtualIrq,
    /// Its state.
    pub state: LrState,
}

impl ListEntry {
    /// An empty register.
    pub const EMPTY: Self = Self {
        irq: VirtualIrq {
            intid: 0,
            priority: 0,
            group1: false,
            hardware: None,
            source: 0,
        },
        state: LrState::Invalid,
    };

    /// The raw register value in `format` (GICv2's fits in the low 32 bits).
    pub fn encode(&self, format: Format) -> u64 {
        let irq = &self.irq;
        let priority = u64::from(irq.priority & 0xf8);
        match format {
            Format::V2 => {
                let link = match irq.hardware {
                    Some(physical) => (1 << 31) | (u64::from(physical) & 0x3ff) << 10,
                    None => (u64::from(irq.source) & 0x7) << 10,
                };
                (u64::from(irq.intid) & 0x3ff)
                    | link
                    | (priority >> 3) << 23
                    | self.state.bits() << 28
                    | u64::from(irq.group1) << 30
            }
            Format::V3 => {
                let link = match irq.hardware {
                    Some(physical) => (1 << 61) | (u64::from(physical) & 0x1fff) << 32,
                    None => 0,
                };
                u64::from(irq.intid)
                    | link
                    | priority << 48
                    | u64::from(irq.group1) << 60
                    | self.state.bits() << 62
            }
        }
    }

    /// Reads a raw register value in `format`.
    pub fn decode(raw: u64, format: Format) -> Self {
        match format {
            Format::V2 => {
                let hardware = raw & (1 << 31) != 0;
                Self {
                    irq: VirtualIrq {
                        intid: (raw & 0x3ff) as u32,
                        priority: (((raw >> 23) & 0x1f) << 3) as u8,
                        group1: raw & (1 << 30) != 0,
                        hardware: hardware.then_some(((raw >> 10) & 0x3ff) as u32),
                        source: if hardware {
                            0
                        } else {
                            ((raw >> 10) & 0x7) as u8
                        },
                    },
                    state: LrState::from_bits(raw >> 28),
                }
            }
            Format::V3 => {
                let hardware = raw & (1 << 61) != 0;
                Self {
                    irq: VirtualIrq {
                        intid: raw as u32,
                        priority: ((raw >> 48) & 0xf8) as u8,
                        group1: raw & (1 << 60) != 0,
                        hardware: hardware.then_some(((raw >> 32) & 0x1fff) as u32),
                        source: 0,
                    },
                    state: LrState::from_bits(raw >> 62),
                }
            }
        }
    }
}

/// A CPU's list registers, as [`fill`] uses them (the hardware's, or a test's array).
pub trait ListRegisters {
    /// How many there are.
    fn count(&self) -> usize;
    /// Register `n`'s contents.
    fn read(&self, n: usize) -> ListEntry;
    /// Sets register `n`.
    fn write(&mut self, n: usize, entry: ListEntry);
}

/// The waiting set was full: the interrupt was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Interrupts waiting for one vCPU's list registers.
#[derive(Clone, Debug, Default)]
pub struct Waiting {
    irqs: Vec<VirtualIrq, WAITING_DEPTH>,
}

impl Waiting {
    /// Nothing waiting.
    pub const fn new() -> Self {
        Self { irqs: Vec::new() }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.irqs.is_empty()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.irqs.len()
    }

    /// Makes `irq` pending for the vCPU. An interrupt already waiting stays once, with the
    /// new priority and group (a pending interrupt is pending once, however many edges).
    pub fn add(&mut self, irq: VirtualIrq) -> Result<(), Full> {
        if let Some(waiting) = self.irqs.iter_mut().find(|waiting| waiting.same_as(&irq)) {
            *waiting = irq;
            return Ok(());
        }
        self.irqs.push(irq).map_err(|_| Full)
    }

    /// Forgets everything (the vCPU starts afresh).
    pub fn clear(&mut self) {
        self.irqs.clear();
    }
}

/// What [`fill`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// Interrupts written into free list registers.
    pub written: usize,
    /// Interrupts merged into the list register already holding them.
    pub merged: usize,
    /// Interrupts still waiting (no free register): the caller asks for the underflow
    /// maintenance interrupt.
    pub still_waiting: usize,
}

/// Moves what waits into `lrs`, highest priority (lowest value) first, then lowest INTID.
pub fn fill(waiting: &mut Waiting, lrs: &mut impl ListRegisters) -> Filled {
    let mut filled = Filled::default();
    waiting
        .irqs
        .sort_unstable_by_key(|irq| (irq.priority, irq.intid, irq.source));
    let count = lrs.count().min(MAX_LIST_REGISTERS);
    let mut entries = [ListEntry::EMPTY; MAX_LIST_REGISTERS];
    for (n, entry) in entries.iter_mut().enumerate().take(count) {
        *entry = lrs.read(n);
    }
    let mut kept = Vec::<VirtualIrq, WAITING_DEPTH>::new();
    for irq in waiting.irqs.iter() {
        let holding = entries[..count]
            .iter()
            .position(|entry| entry.state != LrState::Invalid && entry.irq.same_as(irq));
        if let Some(n) = holding {
            // Pending already: one pending instance is all the GIC keeps. Active: pending
            // again behind it, as a new edge makes it. A hardware entry cannot be both (the
            // physical interrupt stays active until the guest deactivates it), so it stays.
            let entry = &mut entries[n];
            if entry.state == LrState::Active && entry.irq.hardware.is_none() {
                entry.state = LrState::PendingActive;
                lrs.write(n, *entry);
            }
            filled.merged += 1;
        } else if let Some(n) = entries[..count]
            .iter()
            .position(|entry| entry.state == LrState::Invalid)
        {
            entries[n] = ListEntry {
                irq: *irq,
                state: LrState::Pending,
            };
            lrs.write(n, entries[n]);
            filled.written += 1;
        } else {
            // Cannot overflow: `kept` is no larger than `waiting`.
            let _ = kept.push(*irq);
        }
    }
    filled.still_waiting = kept.len();
    waiting.irqs = kept;
    filled
}

#[cfg(test)]
mod tests;
