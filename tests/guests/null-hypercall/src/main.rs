//! Benchmark guest `null-hypercall`: the cost of hypercall round trips that do nothing.
//!
//! Times [`ITERATIONS`] `HVC #0` calls of two kinds with the virtual counter:
//! - `null-hypercall`: an unknown vendor-hyp function ID. The kernel routes it to the VM
//!   manager component, which answers `NOT_SUPPORTED`: guest → kernel → component → kernel →
//!   guest.
//! - `ping-supervisor`: our HYP_PING_SUPERVISOR call, for which the VM manager calls the
//!   supervisor component and returns its answer: the same path plus one component-to-component
//!   call and reply.
//!
//! For each it prints one line
//!
//! ```text
//! BENCH <name> iterations=<N> ticks=<T> counter-hz=<F> insns-per-call=<I>
//! ```
//!
//! with `I = T * (1_000_000_000 / F) / N`, then powers off with `SYSTEM_OFF`. Under QEMU with
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

    /// Number of timed hypercalls of each kind.
    const ITERATIONS: u64 = 10_000;

    /// An unknown vendor-hyp SMC64 fast call: the hypervisor's cheapest answer.
    const NULL_FUNCTION_ID: u32 = 0xC600_00FF;
    /// The nonce the ping carries (and must come back).
    const NONCE: u64 = 0x5eed;

    hv_guest_rt::guest_main!(bench);

    /// Times `ITERATIONS` runs of `call` and prints the figure as `name`.
    fn time(name: &str, hz: u64, call: impl Fn() -> u64) {
        let start = counter::ticks();
        for _ in 0..ITERATIONS {
            call();
        }
        let ticks = counter::ticks() - start;
        let insns_per_call = ticks * (1_000_000_000 / hz) / ITERATIONS;
        println!(
            "BENCH {name} iterations={ITERATIONS} ticks={ticks} counter-hz={hz} \
             insns-per-call={insns_per_call}"
        );
    }

    fn bench(_env: &'static Env) -> ! {
        let hz = counter::frequency();
        if hz == 0 {
            fail_run(format_args!("CNTFRQ_EL0 is 0"));
        }
        // One untimed call of each, to check the answers and warm up.
        let x0 = smccc::hvc_id_only(NULL_FUNCTION_ID);
        if x0 as i64 != smccc::NOT_SUPPORTED && x0 as u32 != smccc::NOT_SUPPORTED as u32 {
            fail_run(format_args!(
                "HVC {NULL_FUNCTION_ID:#x} returned {x0:#x}, expected NOT_SUPPORTED"
            ));
        }
        let ping = || smccc::hvc(smccc::host::HYP_PING_SUPERVISOR, &[NONCE])[0];
        let answer = ping();
        if answer != NONCE {
            fail_run(format_args!(
                "HYP_PING_SUPERVISOR returned {answer:#x}, expected {NONCE:#x}"
            ));
        }

        time("null-hypercall", hz, || {
            smccc::hvc_id_only(NULL_FUNCTION_ID)
        });
        time("ping-supervisor", hz, ping);
        psci::system_off()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
