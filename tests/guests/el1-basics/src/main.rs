//! Test guest `el1-basics`: the guest runs at EL1, cannot touch the hypervisor's memory, and
//! gets SMCCC-conformant answers for unknown calls and `PSCI_VERSION`.
//!
//! Cases:
//!
//! - `runs_at_el1`: `CurrentEL` is 1.
//! - `hypervisor_memory_unreadable` / `hypervisor_memory_unwritable`: the first and last 8
//!   bytes of every `/reserved-memory/hypervisor@…` range take a synchronous data abort at EL1
//!   (EC 0x25, FAR = the address, WnR = 0 for the read and 1 for the write) of one of the two
//!   kinds the hypervisor injects: a synchronous external abort (DFSC 0x10) where the kernel's
//!   static stage 2 leaves the memory out, or the abort the memory-protection component has
//!   injected, pKVM's (the stage-2 syndrome with ISS.S1PTW set as the marker).
//! - `unknown_smccc_returns_not_supported`: unknown function IDs from several owner ranges
//!   return `NOT_SUPPORTED` through both `HVC #0` and `SMC #0`.
//! - `psci_version_is_reported`: `PSCI_VERSION` through the DTB's conduit is at least 1.0.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use core::ptr;

    use hv_guest_rt::{
        Env, MemoryRange, TakenException, TestResult, catch_exception, ensure, ensure_eq,
        exception::{FSC_SYNC_EXTERNAL_ABORT, ec},
        expect_exception, fail,
        psci::{PSCI_VERSION, PsciVersion},
        smccc::{Conduit, NOT_SUPPORTED},
    };

    hv_guest_rt::test_guest![
        runs_at_el1,
        hypervisor_memory_unreadable,
        hypervisor_memory_unwritable,
        unknown_smccc_returns_not_supported,
        psci_version_is_reported,
    ];

    fn runs_at_el1(_env: &Env) -> TestResult {
        ensure_eq!(hv_guest_rt::current_el(), 1);
        Ok(())
    }

    /// Calls `probe` with the first and the last 8-byte-aligned doubleword of every hypervisor
    /// range in the DTB; fails if there is none.
    fn for_each_hypervisor_edge(
        env: &Env,
        mut probe: impl FnMut(MemoryRange, u64) -> TestResult,
    ) -> TestResult {
        let mut ranges = 0;
        for range in env.hypervisor_memory() {
            ranges += 1;
            ensure!(range.size >= 8, "{range}: smaller than 8 bytes");
            let first = range.base.next_multiple_of(8);
            let last = (range.end() - 8) & !7;
            probe(range, first)?;
            probe(range, last)?;
        }
        ensure!(
            ranges > 0,
            "the DTB has no /reserved-memory/hypervisor@... node"
        );
        Ok(())
    }

    /// Checks that `taken` is the synchronous external abort a `write`/read of `address` must
    /// cause.
    fn check_external_abort(
        range: MemoryRange,
        address: u64,
        write: bool,
        taken: Option<TakenException>,
    ) -> TestResult {
        let access = if write { "write" } else { "read" };
        let Some(taken) = taken else {
            fail!("{access} of {address:#x} ({range}) did not fault");
        };
        ensure!(
            taken.ec() == ec::DATA_ABORT_SAME_EL,
            "{access} of {address:#x}: EC {:#x}, expected {:#x}: {taken}",
            taken.ec(),
            ec::DATA_ABORT_SAME_EL
        );
        // ISS bit 7: S1PTW, the marker of an abort the hypervisor injected for the host.
        let s1ptw_marker = taken.iss() & (1 << 7) != 0;
        ensure!(
            taken.fsc() == FSC_SYNC_EXTERNAL_ABORT || s1ptw_marker,
            "{access} of {address:#x}: DFSC {:#x}, expected {:#x} or the S1PTW marker: {taken}",
            taken.fsc(),
            FSC_SYNC_EXTERNAL_ABORT
        );
        ensure!(
            taken.far == address,
            "{access} of {address:#x}: wrong FAR: {taken}"
        );
        ensure!(
            taken.is_write() == write,
            "{access} of {address:#x}: wrong WnR: {taken}"
        );
        Ok(())
    }

    fn hypervisor_memory_unreadable(env: &Env) -> TestResult {
        for_each_hypervisor_edge(env, |range, address| {
            let p = address as *const u64;
            // SAFETY: Reading the hypervisor's memory has no effect on the guest: either it
            // faults (handled by expect_exception, which skips the load) or returns a value.
            let taken = expect_exception(|| unsafe { ptr::read_volatile(p) });
            check_external_abort(range, address, false, taken)
        })
    }

    fn hypervisor_memory_unwritable(env: &Env) -> TestResult {
        for_each_hypervisor_edge(env, |range, address| {
            let p = address as *mut u64;
            // SAFETY: The address is outside the guest's memory, so no guest data is touched;
            // the store is expected to fault (and is then skipped).
            let taken = expect_exception(|| unsafe { ptr::write_volatile(p, 0x6775_6573_7421) });
            check_external_abort(range, address, true, taken)
        })
    }

    /// Function IDs no SMCCC service implements, from different owner ranges.
    const UNKNOWN_FUNCTION_IDS: [(u32, &str); 5] = [
        (0xC600_00FF, "vendor-hyp SMC64 fast call"),
        (0x8600_00FF, "vendor-hyp SMC32 fast call"),
        (0x8400_00FF, "standard service (PSCI range) SMC32"),
        (0xC300_0F00, "OEM SMC64 fast call"),
        (0x8000_FFF0, "arch SMC32 fast call"),
    ];

    fn unknown_smccc_returns_not_supported(_env: &Env) -> TestResult {
        for conduit in [Conduit::Hvc, Conduit::Smc] {
            for (id, what) in UNKNOWN_FUNCTION_IDS {
                let name = conduit.name();
                let x0 = match catch_exception(|| conduit.call(id, &[])[0]) {
                    Ok(regs) => regs,
                    Err(taken) => fail!("{name} {id:#x} ({what}) trapped: {taken}"),
                };
                // NOT_SUPPORTED is -1: all of x0 for the SMC64 view; the 32-bit view
                // (w0 = 0xffff_ffff, upper half zero) is accepted as well.
                let full = x0 as i64 == NOT_SUPPORTED;
                let w0_only = x0 == u64::from(NOT_SUPPORTED as u32);
                ensure!(
                    full || w0_only,
                    "{name} {id:#x} ({what}): x0 = {x0:#x}, expected NOT_SUPPORTED (-1)"
                );
            }
        }
        Ok(())
    }

    fn psci_version_is_reported(env: &Env) -> TestResult {
        let Some(conduit) = env.psci_conduit() else {
            fail!("the DTB names no PSCI conduit (/psci method = hvc | smc)");
        };
        let raw = match catch_exception(|| conduit.call(PSCI_VERSION, &[])[0]) {
            Ok(x0) => x0 as u32,
            Err(taken) => fail!("PSCI_VERSION via {} trapped: {taken}", conduit.name()),
        };
        let Some(version) = PsciVersion::from_raw(raw) else {
            fail!(
                "PSCI_VERSION via {} returned error {raw:#x}",
                conduit.name()
            );
        };
        ensure!(
            version.major >= 1,
            "PSCI version {version} is older than 1.0"
        );
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
