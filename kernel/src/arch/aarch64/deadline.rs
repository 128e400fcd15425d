//! This CPU's deadline for component runs: the EL2 physical timer (CNTHP) and its PPI, which
//! the kernel otherwise never uses. Components run until they yield; while a swap runs on a
//! CPU (`hv_kernel::worlds::swap`) an instance that never answers would keep that CPU for
//! good, so for the swap's duration the timer is set to its deadline and components run with
//! physical IRQs taken to EL2 (`TrapControls::component_under_deadline`).
//!
//! The host owns the GIC's CPU interface and its CPUs' banked PPI registers, so arming
//! borrows them (`gic::let_only_through`): the timer's PPI enabled at the highest priority and
//! the priority mask raised so that nothing else is signalled meanwhile (the host's own
//! interrupts stay pending, and reach it when the swap ends). Disarming gives every bit back.
//! The PPI is level-sensitive: stopping the timer lowers it, so it is never acknowledged.

use super::gic::{self, OnlyThrough};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTHP_CTL_EL2, Readable, Writeable};
use core::arch::asm;
use hv_kernel::trap_stats::MAX_CPUS;

/// What arming borrowed on each CPU (`None` while disarmed), by CPU index.
static BORROWED: [spin::Mutex<Option<Option<OnlyThrough>>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];

fn borrowed() -> &'static spin::Mutex<Option<Option<OnlyThrough>>> {
    &BORROWED[super::cpu_index()]
}

/// Arms (or moves) this CPU's deadline to counter tick `at`.
pub fn arm(at: u64) {
    let mut borrowed = borrowed().lock();
    if borrowed.is_none() {
        *borrowed = Some(gic::let_only_through(hv_board::CURRENT.timer.hypervisor));
    }
    // SAFETY: CNTHP_CVAL_EL2 (which `aarch64-cpu` does not name) is the EL2 timer's compare
    // value: it only decides when the timer's PPI rises.
    unsafe { asm!("msr cnthp_cval_el2, {}", in(reg) at, options(nostack, nomem)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
    barrier::isb(barrier::SY);
}

/// Disarms this CPU's deadline and gives the GIC back as it was; nothing if it is not armed.
pub fn disarm() {
    CNTHP_CTL_EL2.set(0);
    if let Some(saved) = borrowed().lock().take().flatten() {
        gic::restore_after_only(saved);
    }
    barrier::isb(barrier::SY);
}

/// Whether this CPU's deadline is armed.
pub fn armed() -> bool {
    borrowed().lock().is_some()
}

/// Whether this CPU's deadline is armed and has passed.
pub fn passed() -> bool {
    armed() && CNTHP_CTL_EL2.is_set(CNTHP_CTL_EL2::ISTATUS)
}
