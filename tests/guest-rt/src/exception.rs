//! Exceptions: expecting a synchronous exception in a test, and failing the run on any other.
//!
//! [`catch_exception`] / [`expect_exception`] arm the handler and run a closure. If a
//! synchronous exception from the current EL (`VBAR_EL1 + 0x200`) arrives while armed, the
//! handler records `ESR_EL1`, `FAR_EL1` and `ELR_EL1`, disarms, advances `ELR_EL1` by 4 (skipping
//! the faulting instruction) and returns into the closure. Any exception that is not expected
//! prints its syndrome and ends the run as a failure.
//!
//! Only the boot CPU may expect exceptions: the armed state is global, so
//! [`catch_exception`] / [`expect_exception`] panic on a secondary CPU (see [`crate::smp`]),
//! and every exception a secondary CPU takes is unexpected, i.e. fatal.
//!
//! The closure should make the faulting access with a single instruction, e.g.
//! `core::ptr::read_volatile` of an aligned `u64`: after the skip, the access's destination
//! register holds whatever it held before.

use core::fmt;

#[cfg(target_os = "none")]
use crate::global::Global;

/// Exception classes (`ESR_ELx.EC`) tests commonly look for.
pub mod ec {
    /// Unknown reason (e.g. an UNDEFINED instruction such as `SMC` without EL3).
    pub const UNKNOWN: u8 = 0x00;
    /// `HVC` executed in AArch64 state (seen by the EL it traps to).
    pub const HVC64: u8 = 0x16;
    /// `SMC` executed in AArch64 state (seen by the EL it traps to).
    pub const SMC64: u8 = 0x17;
    /// Instruction abort taken without a change in exception level.
    pub const INSTRUCTION_ABORT_SAME_EL: u8 = 0x21;
    /// Data abort taken without a change in exception level.
    pub const DATA_ABORT_SAME_EL: u8 = 0x25;
}

/// `DFSC`/`IFSC` value of a synchronous external abort (not on a translation table walk).
pub const FSC_SYNC_EXTERNAL_ABORT: u8 = 0x10;

/// A synchronous exception taken while armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakenException {
    /// `ESR_EL1`.
    pub esr: u64,
    /// `FAR_EL1` (meaningful for aborts only).
    pub far: u64,
    /// `ELR_EL1` at exception entry: the address of the instruction that took it.
    pub elr: u64,
}

impl TakenException {
    /// Exception class, `ESR_EL1[31:26]`.
    pub fn ec(&self) -> u8 {
        ((self.esr >> 26) & 0x3f) as u8
    }

    /// Instruction-specific syndrome, `ESR_EL1[24:0]`.
    pub fn iss(&self) -> u32 {
        (self.esr & 0x1ff_ffff) as u32
    }

    /// Data/instruction fault status code, `ISS[5:0]` (for aborts).
    pub fn fsc(&self) -> u8 {
        (self.esr & 0x3f) as u8
    }

    /// `ISS.WnR` (bit 6): a data abort caused by a write.
    pub fn is_write(&self) -> bool {
        self.esr & (1 << 6) != 0
    }

    /// A synchronous external abort on a data access from EL1 (EC 0x25, DFSC 0x10).
    pub fn is_data_external_abort(&self) -> bool {
        self.ec() == ec::DATA_ABORT_SAME_EL && self.fsc() == FSC_SYNC_EXTERNAL_ABORT
    }

    /// The abort pKVM injects into its host for memory the host does not own: a data abort
    /// from EL1 with `ISS.S1PTW` (bit 7) set as the marker.
    pub fn is_host_ownership_abort(&self) -> bool {
        self.ec() == ec::DATA_ABORT_SAME_EL && self.esr & (1 << 7) != 0
    }
}

/// Reads and then writes the doubleword at `address` (`what` names it in failures), expecting
/// each to take a data abort from EL1 at that address; returns the read's and the write's
/// exceptions for further checks.
#[cfg(target_os = "none")]
pub fn expect_data_aborts(
    address: u64,
    what: &str,
) -> Result<[TakenException; 2], crate::TestFailure> {
    let mut taken = [None; 2];
    for (slot, write) in taken.iter_mut().zip([false, true]) {
        let access = if write { "write" } else { "read" };
        // SAFETY: an access expected to fault; the handler skips the instruction. Were it not
        // to fault, a write would store into memory the caller says is not its to touch, and
        // the test fails right below.
        let exception = expect_exception(|| unsafe {
            if write {
                core::ptr::write_volatile(address as *mut u64, 0x6775_6573_7421);
            } else {
                core::ptr::read_volatile(address as *const u64);
            }
        });
        let Some(exception) = exception else {
            crate::fail!("a {access} of {what} ({address:#x}) did not abort");
        };
        crate::ensure!(
            exception.ec() == ec::DATA_ABORT_SAME_EL && exception.far == address,
            "a {access} of {what} ({address:#x}): not a data abort there: {exception}"
        );
        *slot = Some(exception);
    }
    let [Some(read), Some(write)] = taken else {
        unreachable!("both accesses were checked")
    };
    Ok([read, write])
}

/// Branches with link to `address` (`what` names it), expecting an instruction abort there
/// (the guest goes on after the `blr`); returns it.
#[cfg(target_os = "none")]
pub fn expect_fetch_abort(address: u64, what: &str) -> Result<TakenException, crate::TestFailure> {
    // SAFETY: the caller names an address where nothing executable is: the fetch aborts and
    // the handler resumes after the `blr` (were something there, the test fails on whatever
    // it did).
    let taken = expect_exception(|| unsafe { crate::branch_and_link(address) });
    let Some(taken) = taken else {
        crate::fail!("a fetch from {what} ({address:#x}) did not abort");
    };
    crate::ensure!(
        taken.ec() == ec::INSTRUCTION_ABORT_SAME_EL && taken.far == address,
        "a fetch from {what} ({address:#x}): not an instruction abort there: {taken}"
    );
    Ok(taken)
}

impl fmt::Display for TakenException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ESR={:#x} (EC {:#x}) FAR={:#x} ELR={:#x}",
            self.esr,
            self.ec(),
            self.far,
            self.elr
        )
    }
}

/// Vector index of "synchronous, current EL with SP_ELx" (`VBAR_EL1 + 0x200`).
#[cfg(target_os = "none")]
const SYNC_CURRENT_EL_SPX: u64 = 4;

/// Names of the 16 vector entries, by index.
#[cfg(target_os = "none")]
const VECTOR_NAMES: [&str; 16] = [
    "synchronous (current EL, SP_EL0)",
    "IRQ (current EL, SP_EL0)",
    "FIQ (current EL, SP_EL0)",
    "SError (current EL, SP_EL0)",
    "synchronous (current EL, SP_ELx)",
    "IRQ (current EL, SP_ELx)",
    "FIQ (current EL, SP_ELx)",
    "SError (current EL, SP_ELx)",
    "synchronous (lower EL, AArch64)",
    "IRQ (lower EL, AArch64)",
    "FIQ (lower EL, AArch64)",
    "SError (lower EL, AArch64)",
    "synchronous (lower EL, AArch32)",
    "IRQ (lower EL, AArch32)",
    "FIQ (lower EL, AArch32)",
    "SError (lower EL, AArch32)",
];

/// Vector index of "IRQ, current EL with SP_ELx" (`VBAR_EL1 + 0x280`).
#[cfg(target_os = "none")]
const IRQ_CURRENT_EL_SPX: u64 = 5;

/// The IRQ handler [`set_irq_handler`] installed (a `fn()` as an address; 0: none).
#[cfg(target_os = "none")]
static IRQ_HANDLER: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Installs `handler` for IRQs taken at EL1 on any CPU (tests of interrupt delivery). Without
/// one, an IRQ is an unexpected exception and ends the run. The handler acknowledges and
/// completes the interrupt itself; it runs with IRQs masked.
#[cfg(target_os = "none")]
pub fn set_irq_handler(handler: fn()) {
    IRQ_HANDLER.store(handler as usize, core::sync::atomic::Ordering::Release);
}

#[cfg(target_os = "none")]
static ARMED: Global<bool> = Global::new(false);
#[cfg(target_os = "none")]
static TAKEN: Global<Option<TakenException>> = Global::new(None);

/// Runs `f` with the handler armed for one synchronous exception.
///
/// Returns `Ok` with `f`'s result if no exception was taken, or `Err` with the exception's
/// registers if one was (in which case `f` ran to completion past the skipped instruction, and
/// its result is discarded).
///
/// # Panics
///
/// If called from inside `f` (no nesting), or on a CPU other than the boot CPU (the armed
/// state is global; see [`crate::smp`]).
#[cfg(target_os = "none")]
pub fn catch_exception<R>(f: impl FnOnce() -> R) -> Result<R, TakenException> {
    use core::sync::atomic::{Ordering, compiler_fence};

    assert!(
        crate::smp::is_boot_cpu(),
        "catch_exception/expect_exception are for the boot CPU only"
    );
    assert!(!ARMED.get(), "catch_exception does not nest");
    TAKEN.set(None);
    ARMED.set(true);
    // The handler runs like a signal handler: keep the compiler from moving `f`'s accesses
    // across the arming and disarming.
    compiler_fence(Ordering::SeqCst);
    let result = f();
    compiler_fence(Ordering::SeqCst);
    ARMED.set(false);
    match TAKEN.get() {
        None => Ok(result),
        Some(taken) => Err(taken),
    }
}

/// Runs `f` expecting a synchronous exception; returns it, or `None` if `f` completed without
/// one. See [`catch_exception`].
#[cfg(target_os = "none")]
pub fn expect_exception<R>(f: impl FnOnce() -> R) -> Option<TakenException> {
    catch_exception(f).err()
}

/// The Rust side of every vector, on any CPU: `kind` is the vector index (0..=15), `elr` the
/// saved `ELR_EL1` to return to. Only the boot CPU's exceptions can be expected.
#[cfg(target_os = "none")]
///
/// An expected instruction abort at the address it was fetched from (a branch to memory that
/// cannot be executed) resumes at `lr`, the return address of the `blr` that got there
/// ([`crate::branch_and_link`]); any other expected exception skips its instruction.
pub(crate) fn handle(kind: u64, elr: &mut u64, lr: u64, esr: u64, far: u64) {
    let taken = TakenException {
        esr,
        far,
        elr: *elr,
    };
    if kind == IRQ_CURRENT_EL_SPX {
        let handler = IRQ_HANDLER.load(core::sync::atomic::Ordering::Acquire);
        if handler != 0 {
            // SAFETY: only `set_irq_handler` stores here, and it stores a `fn()`.
            let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(handler) };
            handler();
            return;
        }
    }
    if kind == SYNC_CURRENT_EL_SPX && crate::smp::is_boot_cpu() && ARMED.get() {
        ARMED.set(false);
        TAKEN.set(Some(taken));
        if taken.ec() == ec::INSTRUCTION_ABORT_SAME_EL && *elr == far {
            *elr = lr;
        } else {
            *elr += 4;
        }
        return;
    }
    let name = VECTOR_NAMES.get(kind as usize).copied().unwrap_or("?");
    crate::fatal::fail_run(format_args!("unexpected exception: {name}: {taken}"));
}
