//! Failing the whole run: the panic handler and unexpected exceptions end up here.
//!
//! The reason is printed on the console and the run ends with PSCI `SYSTEM_RESET` (failure).
//! A failure while already failing (e.g. the reset call itself faults) parks the CPU instead of
//! recursing.

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
    crate::println!("guest-rt: FATAL: {reason}");
    crate::psci::system_reset()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fail_run(format_args!("{info}"))
}
