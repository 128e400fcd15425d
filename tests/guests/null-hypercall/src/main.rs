//! Benchmark guest `null-hypercall`: the cost of a hypercall round trip that does nothing.
//!
//! Times [`ITERATIONS`] `HVC #0` calls with an unknown vendor-hyp function ID (the hypervisor
//! answers `NOT_SUPPORTED` without doing any work) using the virtual counter, prints
//!
//! ```text
//! BENCH null-hypercall iterations=<N> ticks=<T> counter-hz=<F> insns-per-call=<I>
//! ```
//!
//! with `I = T * (1_000_000_000 / F) / N`, and powers off with `SYSTEM_OFF`. Under QEMU with
//! `-icount shift=0` virtual time advances 1 ns per instruction, so ns per call are
//! instructions per call (including the guest's loop: `mov`, `hvc`, counter update, branch).
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The benchmark (bare metal only).

    use hv_guest_rt::{Env, counter, fail_run, println, psci, smccc};

    /// Number of timed hypercalls.
    const ITERATIONS: u64 = 10_000;

    /// An unknown vendor-hyp SMC64 fast call: the hypervisor's cheapest answer.
    const NULL_FUNCTION_ID: u32 = 0xC600_00FF;

    hv_guest_rt::guest_main!(bench);

    fn bench(_env: &'static Env) -> ! {
        // One untimed call, to check the answer and warm up.
        let x0 = smccc::hvc_id_only(NULL_FUNCTION_ID);
        if x0 as i64 != smccc::NOT_SUPPORTED && x0 as u32 != smccc::NOT_SUPPORTED as u32 {
            fail_run(format_args!(
                "HVC {NULL_FUNCTION_ID:#x} returned {x0:#x}, expected NOT_SUPPORTED"
            ));
        }

        let start = counter::ticks();
        for _ in 0..ITERATIONS {
            smccc::hvc_id_only(NULL_FUNCTION_ID);
        }
        let ticks = counter::ticks() - start;

        let hz = counter::frequency();
        if hz == 0 {
            fail_run(format_args!("CNTFRQ_EL0 is 0"));
        }
        let insns_per_call = ticks * (1_000_000_000 / hz) / ITERATIONS;
        println!(
            "BENCH null-hypercall iterations={ITERATIONS} ticks={ticks} counter-hz={hz} \
             insns-per-call={insns_per_call}"
        );
        psci::system_off()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
