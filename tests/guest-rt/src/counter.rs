//! The generic timer's virtual counter, for benchmarks.
//!
//! Under QEMU with `-icount shift=0` virtual time advances 1 ns per executed instruction, so
//! nanoseconds measured with this counter are instruction counts.

/// `CNTVCT_EL0`, read after an `isb` so earlier instructions complete first.
#[inline(always)]
pub fn ticks() -> u64 {
    crate::arch::read_cntvct()
}

/// `CNTFRQ_EL0`: counter ticks per second.
pub fn frequency() -> u64 {
    crate::arch::read_cntfrq()
}
