//! Secondary CPUs: starting one with PSCI `CPU_ON` to run Rust code, and sharing data with it.
//!
//! # Starting a CPU
//!
//! ```ignore
//! use hv_guest_rt::smp::{self, SecondaryStack, SharedWord};
//!
//! static CPU1_STACK: SecondaryStack<0x4000> = SecondaryStack::new();
//! static CPU1_DONE: SharedWord = SharedWord::new(0);
//!
//! fn cpu1_main(arg: u64) -> ! {
//!     // ... work, results in SharedWords written only by this CPU ...
//!     CPU1_DONE.store(1);
//!     hv_guest_rt::smp::park()
//! }
//!
//! let stack = CPU1_STACK.take().expect("stack taken once");
//! smp::start_secondary(1, stack, cpu1_main, 42).map_err(psci::error_name)?;
//! ```
//!
//! [`start_secondary`] writes a [`SecondaryDescriptor`] (entry function and argument) at the top
//! of the stack it is given and calls PSCI `CPU_ON` through the DTB's conduit with the runtime's
//! secondary entry code and the descriptor's address as the context id. The new CPU masks
//! interrupts, enables FP/SIMD, takes the descriptor's address as its stack pointer (the stack
//! grows down from just below the descriptor), installs the runtime's vector table and calls
//! `entry(arg)`. The MPIDRs of the machine's CPUs are in the DTB ([`Env::cpu_mpidrs`]).
//!
//! # Sharing memory between CPUs
//!
//! The MMU is off in guests, so every data access is to Device-nGnRnE memory. Exclusive
//! load/store pairs (and so every atomic read-modify-write, compare-exchange or lock built on
//! them) are not guaranteed to work on Device memory, and nothing is cached: there is no way to
//! make a read-modify-write atomic. Data shared between CPUs must therefore follow one rule:
//!
//! - **every shared location is an aligned word written by one CPU only** (any number of CPUs
//!   may read it), through plain volatile loads and stores: [`SharedWord`], which also puts a
//!   `DMB SY` after each load and before each store, so a flag written after the data it
//!   announces is seen after that data (message passing works as expected).
//!
//! A counter two CPUs both increment, or a flag both set and clear, loses updates. Give each CPU
//! its own words (e.g. a progress count and a done flag per CPU) and let one CPU combine them.
//!
//! # What a secondary CPU may use
//!
//! - [`env()`](crate::env()), the console, PSCI and SMCCC calls, the counter: yes. Console output
//!   from two CPUs at once interleaves character by character; let one CPU print (e.g. the
//!   boot CPU prints what the others left in [`SharedWord`]s).
//! - [`expect_exception`](crate::expect_exception) / [`catch_exception`](crate::catch_exception):
//!   **boot CPU only**. Their armed state is global; called on another CPU they panic.
//! - An exception on a secondary CPU is always unexpected, and a panic there is a panic: both
//!   end the run as a failure ([`fail_run`](crate::fail_run), which names the CPU), as on the
//!   boot CPU. If two CPUs fail at the same moment, both may print their reason.
//! - [`run_tests`](crate::run_tests) runs on the boot CPU; a secondary that is done should
//!   [`park`] (the run ends when the boot CPU calls `SYSTEM_OFF` or `SYSTEM_RESET`).

use core::cell::UnsafeCell;

#[cfg(doc)]
use crate::Env;
#[cfg(target_os = "none")]
use crate::global::Global;

/// The affinity fields of `MPIDR_EL1` (Aff3 in bits 39:32, Aff2..Aff0 in bits 23:0): the value
/// PSCI calls take as a CPU's id, and the DTB's `/cpus/cpu@…` `reg`.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The smallest stack [`start_secondary`] accepts, below the descriptor (bytes). Formatting a
/// failure message needs a few hundred bytes; 16 KiB is a comfortable size for test code.
pub const MIN_SECONDARY_STACK: usize = 2048;

/// What the secondary entry code needs, written by [`start_secondary`] at the top of the new
/// CPU's stack; its address is the `CPU_ON` context id and the CPU's initial stack pointer.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct SecondaryDescriptor {
    /// Called on the new CPU, on its new stack.
    pub entry: fn(u64) -> !,
    /// `entry`'s argument.
    pub arg: u64,
}

/// Size of a [`SecondaryDescriptor`]: it keeps the stack pointer below it 16-byte aligned.
const DESCRIPTOR_SIZE: usize = core::mem::size_of::<SecondaryDescriptor>();

const _: () = assert!(DESCRIPTOR_SIZE == 16);

/// Where [`start_secondary`] puts the descriptor in the stack `[start, start + len)`: the
/// highest 16-byte aligned address with room for it, provided at least
/// [`MIN_SECONDARY_STACK`] bytes remain below it. `None` if the stack is too small.
pub fn descriptor_address(start: usize, len: usize) -> Option<usize> {
    let top = start.checked_add(len)? & !15;
    let descriptor = top.checked_sub(DESCRIPTOR_SIZE)?;
    (descriptor >= start && descriptor - start >= MIN_SECONDARY_STACK).then_some(descriptor)
}

/// An aligned 64-bit word shared between CPUs, for flags and counters.
///
/// Loads and stores are single volatile 64-bit accesses; a load is followed and a store
/// preceded by `DMB SY`, so a store is observed after everything this CPU wrote before it, and
/// what a CPU reads after a load is not older than what that load saw. There is no
/// read-modify-write: **only one CPU may ever store to a given word** (see the
/// [module documentation](self)).
#[repr(C, align(8))]
pub struct SharedWord(UnsafeCell<u64>);

// SAFETY: Every access is a single aligned volatile load or store of a u64 (no references to
// the contents are handed out), and the one-writer rule documented above keeps the value
// meaningful; a torn or reordered access cannot make one, as each is a single instruction.
unsafe impl Sync for SharedWord {}

impl SharedWord {
    /// A word holding `value`.
    pub const fn new(value: u64) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// Reads the word, then `DMB SY`.
    pub fn load(&self) -> u64 {
        // SAFETY: The pointer comes from the cell and is valid and aligned; see the Sync impl.
        let value = unsafe { self.0.get().read_volatile() };
        barrier();
        value
    }

    /// `DMB SY`, then writes the word. Only one CPU may store to a given word.
    pub fn store(&self, value: u64) {
        barrier();
        // SAFETY: As in `load`.
        unsafe { self.0.get().write_volatile(value) }
    }
}

/// A full memory barrier between CPUs (also a compiler barrier).
fn barrier() {
    #[cfg(target_os = "none")]
    crate::arch::dmb_sy();
    #[cfg(not(target_os = "none"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// A stack for a secondary CPU, as a `static`: `N` bytes, 16-byte aligned, in `.bss`.
///
/// [`take`](Self::take) hands it out once, for [`start_secondary`].
#[repr(C, align(16))]
pub struct SecondaryStack<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    #[cfg(target_os = "none")]
    taken: Global<bool>,
}

// SAFETY: The bytes are only reachable through `take`, which hands out one reference, once,
// and only on the boot CPU (so the check and the set of `taken` cannot race).
unsafe impl<const N: usize> Sync for SecondaryStack<N> {}

impl<const N: usize> SecondaryStack<N> {
    /// A zeroed stack, not yet taken.
    #[allow(clippy::new_without_default)] // Meant for statics, where `Default` is no help.
    pub const fn new() -> Self {
        Self {
            bytes: UnsafeCell::new([0; N]),
            #[cfg(target_os = "none")]
            taken: Global::new(false),
        }
    }

    /// The stack, the first time; `None` after that.
    ///
    /// # Panics
    ///
    /// On any CPU but the boot CPU.
    #[cfg(target_os = "none")]
    // Hands out the unique reference once, guarded by `taken` (the `std::sync::OnceLock`-like
    // pattern clippy cannot see through).
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut [u8]> {
        assert!(
            is_boot_cpu(),
            "SecondaryStack::take is for the boot CPU only"
        );
        if self.taken.get() {
            return None;
        }
        self.taken.set(true);
        // SAFETY: `taken` was false and is now true, and only the boot CPU gets here (so there
        // is no race between the check and the set): this is the only reference ever made to
        // the bytes.
        Some(unsafe { &mut *self.bytes.get() })
    }
}

/// Starts the CPU `mpidr` (its affinity fields, as in the DTB's `/cpus`) running
/// `entry(arg)` on `stack`, with PSCI `CPU_ON` through the DTB's conduit.
///
/// The stack is given away for good: its top 16 bytes hold the [`SecondaryDescriptor`]
/// ([`descriptor_address`]), the rest is the new CPU's stack. On success the CPU has been
/// started (PSCI `SUCCESS`), though it may not have reached `entry` yet; `Err` carries the
/// PSCI error code (e.g. [`ALREADY_ON`](crate::psci::error::ALREADY_ON) if the CPU is running;
/// [`psci::error_name`](crate::psci::error_name) names it). See the
/// [module documentation](self) for what code on the new CPU may do.
///
/// # Panics
///
/// If fewer than [`MIN_SECONDARY_STACK`] bytes of stack would remain below the descriptor.
#[cfg(target_os = "none")]
pub fn start_secondary(
    mpidr: u64,
    stack: &'static mut [u8],
    entry: fn(u64) -> !,
    arg: u64,
) -> Result<(), i64> {
    let Some(address) = descriptor_address(stack.as_mut_ptr() as usize, stack.len()) else {
        panic!(
            "start_secondary: a {}-byte stack is too small (at least {} + {} bytes)",
            stack.len(),
            MIN_SECONDARY_STACK,
            DESCRIPTOR_SIZE
        );
    };
    let descriptor = address as *mut SecondaryDescriptor;
    // SAFETY: `descriptor_address` put the descriptor inside `stack`, 16-byte aligned, and the
    // exclusive 'static borrow of the stack makes that memory ours for good.
    unsafe { descriptor.write_volatile(SecondaryDescriptor { entry, arg }) };
    // The new CPU must see the descriptor: order the store before the CPU_ON call.
    crate::arch::dmb_sy();
    let code = crate::psci::cpu_on(
        mpidr,
        crate::arch::secondary_entry_address(),
        address as u64,
    );
    if code == crate::psci::error::SUCCESS {
        Ok(())
    } else {
        Err(code)
    }
}

/// Rust entry of a secondary CPU, called by the entry code with SP just below `descriptor`.
#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn __guest_rt_secondary_start_rust(descriptor: *const SecondaryDescriptor) -> ! {
    // SAFETY: The context id PSCI passed is the descriptor `start_secondary` wrote (and ordered
    // before CPU_ON) at the top of a stack it owns for good; nothing writes it afterwards.
    let SecondaryDescriptor { entry, arg } = unsafe { descriptor.read_volatile() };
    entry(arg)
}

/// The boot CPU's affinity, recorded by the runtime before the guest's main function runs
/// (`u64::MAX`, no CPU, until then).
#[cfg(target_os = "none")]
static BOOT_MPIDR: Global<u64> = Global::new(u64::MAX);

/// Records the CPU running this as the boot CPU (called once, early in boot).
#[cfg(target_os = "none")]
pub(crate) fn record_boot_cpu() {
    BOOT_MPIDR.set(current_mpidr());
}

/// The affinity fields of the current CPU's `MPIDR_EL1` ([`MPIDR_AFFINITY_MASK`]).
#[cfg(target_os = "none")]
pub fn current_mpidr() -> u64 {
    crate::arch::read_mpidr_el1() & MPIDR_AFFINITY_MASK
}

/// The boot CPU's affinity fields (the CPU that ran the runtime's boot code).
#[cfg(target_os = "none")]
pub fn boot_cpu_mpidr() -> u64 {
    BOOT_MPIDR.get()
}

/// Whether this is the boot CPU.
#[cfg(target_os = "none")]
pub fn is_boot_cpu() -> bool {
    current_mpidr() == BOOT_MPIDR.get()
}

/// Parks the calling CPU for good (interrupts are masked, so it waits in `WFI` forever). For a
/// secondary CPU that is done; the run ends when the boot CPU powers off or resets.
#[cfg(target_os = "none")]
pub fn park() -> ! {
    crate::arch::halt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_sits_at_the_aligned_top() {
        assert_eq!(descriptor_address(0x1000, 0x4000), Some(0x4ff0));
        // An unaligned end is rounded down first.
        assert_eq!(descriptor_address(0x1000, 0x4008), Some(0x4ff0));
        assert_eq!(descriptor_address(0x1003, 0x4000), Some(0x4ff0));
    }

    #[test]
    fn small_stacks_are_refused() {
        let exact = MIN_SECONDARY_STACK + DESCRIPTOR_SIZE;
        assert_eq!(
            descriptor_address(0x1000, exact),
            Some(0x1000 + MIN_SECONDARY_STACK)
        );
        assert_eq!(descriptor_address(0x1000, exact - 1), None);
        assert_eq!(descriptor_address(0x1008, exact), None);
        assert_eq!(descriptor_address(0x1000, 0), None);
        assert_eq!(descriptor_address(8, 8), None);
    }

    #[test]
    fn overflowing_stacks_are_refused() {
        assert_eq!(descriptor_address(usize::MAX - 16, 0x4000), None);
    }

    #[test]
    fn shared_word_round_trips() {
        let word = SharedWord::new(3);
        assert_eq!(word.load(), 3);
        word.store(0xdead_beef);
        assert_eq!(word.load(), 0xdead_beef);
    }

    #[test]
    fn affinity_mask_drops_mt_and_u_bits() {
        // MPIDR_EL1 of a Cortex-A72 core 1 as read at EL1: RES1 bit 31 set.
        assert_eq!(0x8000_0001 & MPIDR_AFFINITY_MASK, 1);
        // Aff3 survives, bit 30 (U) and bit 24 (MT) do not.
        assert_eq!(0x01_4100_0203 & MPIDR_AFFINITY_MASK, 0x01_0000_0203);
    }
}
