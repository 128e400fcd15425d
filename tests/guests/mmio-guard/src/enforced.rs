//! Test guest `mmio-enforced`: the MMIO guard for a VM the manifest enrols by force
//! (`manifests/tests/mmio-guard-enforced.toml`: as `mmio-guard.toml`, with mode `enforced`).
//!
//! Before printing anything, its first action is a read of the console's UARTFR, which must
//! take a synchronous external abort (the VM is enrolled from its first instruction and has
//! mapped nothing; it never called ENROLL). It records the outcome, MAPs the console granule
//! and only then runs the cases through the harness:
//!
//! - `forced_enrolment_blocks_unmapped_console`: that first read aborted (EC 0x25, DFSC 0x10,
//!   FAR = 0x0900_0018), and the MAP that followed succeeded.
//! - `enroll_is_still_accepted`: ENROLL of an already enrolled VM returns SUCCESS, and the
//!   console stays mapped.
//!
//! If the MAP fails the console cannot be used: the run ends at once, silently, as a failure.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The start-up probe and the test cases (bare metal only).

    use hv_guest_rt::smp::SharedWord;
    use hv_guest_rt::{Env, TakenException, TestCase, TestResult, ensure_eq, fail, psci};
    use mmio_guard_common::{
        UART, UARTFR, check_external_abort, console_works, enroll, map, read_fr, restoring_console,
    };

    /// What the first UARTFR read gave: 0 = an exception (in [`FIRST_ESR`] etc.), 1 = a value
    /// (in [`FIRST_VALUE`]).
    static FIRST_ABORTED: SharedWord = SharedWord::new(0);
    static FIRST_VALUE: SharedWord = SharedWord::new(0);
    static FIRST_ESR: SharedWord = SharedWord::new(0);
    static FIRST_FAR: SharedWord = SharedWord::new(0);
    static FIRST_ELR: SharedWord = SharedWord::new(0);
    /// x0 of the MAP after it.
    static FIRST_MAP: SharedWord = SharedWord::new(0);

    hv_guest_rt::guest_main!(main);

    fn main(_env: &'static Env) -> ! {
        // Nothing has been printed yet, and nothing may be until the console is mapped.
        match read_fr() {
            Ok(value) => FIRST_VALUE.store(u64::from(value)),
            Err(taken) => {
                FIRST_ABORTED.store(1);
                FIRST_ESR.store(taken.esr);
                FIRST_FAR.store(taken.far);
                FIRST_ELR.store(taken.elr);
            }
        }
        let mapped = map(UART);
        FIRST_MAP.store(mapped as u64);
        if mapped != 0 || read_fr().is_err() {
            psci::system_reset();
        }
        hv_guest_rt::run_tests(&[
            TestCase {
                name: "forced_enrolment_blocks_unmapped_console",
                run: forced_enrolment_blocks_unmapped_console,
            },
            TestCase {
                name: "enroll_is_still_accepted",
                run: enroll_is_still_accepted,
            },
        ])
    }

    fn forced_enrolment_blocks_unmapped_console(_env: &Env) -> TestResult {
        if FIRST_ABORTED.load() == 0 {
            fail!(
                "the first UARTFR read returned {:#x} instead of aborting",
                FIRST_VALUE.load()
            );
        }
        let taken = TakenException {
            esr: FIRST_ESR.load(),
            far: FIRST_FAR.load(),
            elr: FIRST_ELR.load(),
        };
        check_external_abort("first UARTFR read", UARTFR, false, Some(taken))?;
        ensure_eq!(FIRST_MAP.load() as i64, 0);
        console_works("after MAP")
    }

    fn enroll_is_still_accepted(_env: &Env) -> TestResult {
        restoring_console(|| {
            ensure_eq!(enroll(), 0);
            console_works("after ENROLL")
        })
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
