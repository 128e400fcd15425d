//! Failing the whole run: the panic handler and unexpected exceptions end up here.
//!
//! The reason is printed on the console (naming the CPU when it is not the boot CPU) and the
//! run ends with PSCI `SYSTEM_RESET` (failure). A failure while already failing (e.g. the reset
//! call itself faults, or another CPU is failing too) parks the CPU instead of recursing.
//!
//! Any CPU may fail the run. The `FAILING` flag is a plain volatile word (there are no atomics
//! with the MMU off, see [`crate::smp`]), so two CPUs failing at the same moment may both print
//! their reason; the first `SYSTEM_RESET` ends the run either way.

use core::fmt;

use crate::global::Global;

/// Set once the run is being failed.
static FAILING: Global<bool> = Global::new(false);

/// Prints `reason` and ends the run as a failure.
pub fn fail_run(reason: fmt::Arguments<'_>) -> ! {
    if FAILING.get() {
        crate::arch::halt();
    }
    FAILING.set(true);
    crate::println!();
    if crate::smp::is_boot_cpu() {
        crate::println!("guest-rt: FATAL: {reason}");
    } else {
        let cpu = crate::smp::current_mpidr();
        crate::println!("guest-rt: FATAL on cpu {cpu:#x}: {reason}");
    }
    crate::psci::system_reset()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fail_run(format_args!("{info}"))
}
