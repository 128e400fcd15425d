//! Per-CPU counters of the traps the kernel takes, by class.
//!
//! Cheap static diagnostics (one relaxed atomic add per trap) that the benchmark reads out at
//! the end of a run, rather than ad-hoc prints on the trap path.

use core::sync::atomic::{AtomicU64, Ordering};

/// The most CPUs any supported board has.
pub const MAX_CPUS: usize = 8;

/// The classes traps are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum TrapClass {
    /// HVC from a guest.
    Hvc,
    /// SMC from a guest (HCR_EL2.TSC).
    Smc,
    /// Data abort from a guest (stage-2 fault).
    DataAbort,
    /// Instruction abort from a guest.
    InstructionAbort,
    /// Trapped system register access.
    SysReg,
    /// Trapped WFI/WFE.
    Wfx,
    /// An IRQ, FIQ or SError taken to EL2 from a guest.
    Interrupt,
    /// Any other synchronous class.
    Other,
    /// A system call from a component (its HVC).
    ComponentSyscall,
}

impl TrapClass {
    /// Every class, in counter order.
    pub const ALL: [TrapClass; 9] = [
        Self::Hvc,
        Self::Smc,
        Self::DataAbort,
        Self::InstructionAbort,
        Self::SysReg,
        Self::Wfx,
        Self::Interrupt,
        Self::Other,
        Self::ComponentSyscall,
    ];

    /// A short name for reports (stable: the benchmark parses it).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
            Self::DataAbort => "data-abort",
            Self::InstructionAbort => "instruction-abort",
            Self::SysReg => "sysreg",
            Self::Wfx => "wfx",
            Self::Interrupt => "interrupt",
            Self::Other => "other",
            Self::ComponentSyscall => "component-syscall",
        }
    }
}

const CLASSES: usize = TrapClass::ALL.len();

/// Counters for every CPU and class.
pub struct TrapCounters {
    counts: [[AtomicU64; CLASSES]; MAX_CPUS],
}

impl TrapCounters {
    /// All counters at zero.
    pub const fn new() -> Self {
        Self {
            counts: [const { [const { AtomicU64::new(0) }; CLASSES] }; MAX_CPUS],
        }
    }

    /// Counts one trap of `class` on `cpu` (ignored for a CPU index out of range). Each CPU
    /// counts only its own traps, so its row has one writer: a load and a store, not an atomic
    /// read-modify-write (this is on every trap).
    #[inline(always)]
    pub fn record(&self, cpu: usize, class: TrapClass) {
        if let Some(row) = self.counts.get(cpu) {
            let counter = &row[class as usize];
            counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// The count of `class` on `cpu`.
    pub fn get(&self, cpu: usize, class: TrapClass) -> u64 {
        self.counts
            .get(cpu)
            .map_or(0, |row| row[class as usize].load(Ordering::Relaxed))
    }

    /// The count of `class` summed over every CPU.
    pub fn total(&self, class: TrapClass) -> u64 {
        (0..MAX_CPUS).map(|cpu| self.get(cpu, class)).sum()
    }
}

impl Default for TrapCounters {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_cpu_and_class() {
        let counters = TrapCounters::new();
        counters.record(0, TrapClass::Smc);
        counters.record(1, TrapClass::Smc);
        counters.record(1, TrapClass::DataAbort);
        counters.record(MAX_CPUS, TrapClass::Hvc);
        assert_eq!(counters.get(1, TrapClass::Smc), 1);
        assert_eq!(counters.total(TrapClass::Smc), 2);
        assert_eq!(counters.total(TrapClass::DataAbort), 1);
        assert_eq!(counters.total(TrapClass::Hvc), 0);
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in TrapClass::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            for b in &TrapClass::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
