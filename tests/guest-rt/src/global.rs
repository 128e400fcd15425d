//! Globals shared between the test code and the exception handler.
//!
//! The guest runs with the MMU off, so all memory is Device-nGnRnE: exclusive load/store pairs
//! (what atomic read-modify-write operations compile to on ARMv8.0) are not guaranteed to work
//! there. The runtime therefore keeps its few globals in [`Global`], a cell read and written
//! only with volatile accesses: never elided or merged by the compiler, and ordered against the
//! other volatile accesses the tests make, which is what matters when a synchronous exception
//! interrupts the code that armed it.
//!
//! Secondary CPUs ([`crate::smp`]) only read the runtime's globals (console, conduit, boot CPU),
//! except `fatal`'s `FAILING` flag, which any failing CPU sets (a benign race: see there). The
//! exception state is the boot CPU's alone.

use core::cell::UnsafeCell;

/// A `Copy` value accessed with volatile loads and stores only.
pub(crate) struct Global<T: Copy>(UnsafeCell<T>);

// SAFETY: Every access is a single volatile load or store of a `Copy` value (no reference to the
// contents is handed out). Concurrency is an exception handler interrupting code on the same
// CPU, or another CPU reading a value only the boot CPU writes (see the module documentation).
unsafe impl<T: Copy> Sync for Global<T> {}

impl<T: Copy> Global<T> {
    /// A cell holding `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// Reads the value.
    pub(crate) fn get(&self) -> T {
        // SAFETY: The pointer comes from the cell and is valid and aligned; see the `Sync` impl.
        unsafe { self.0.get().read_volatile() }
    }

    /// Replaces the value.
    pub(crate) fn set(&self, value: T) {
        // SAFETY: As in `get`.
        unsafe { self.0.get().write_volatile(value) }
    }
}
