//! Benchmark guest `mmio-bench`: the cost of the MMIO guard's paths, booted on
//! `manifests/tests/mmio-guard.toml` (the console, uart0, is emulated and guarded).
//!
//! Times with the virtual counter, under QEMU `-icount shift=0` (1 ns of virtual time per
//! instruction), and prints one line each:
//!
//! ```text
//! BENCH mmio-guard-map iterations=<N> ticks=<T> counter-hz=<F> insns-per-call=<I>
//! BENCH guarded-console-write iterations=<N> ticks=<T> counter-hz=<F> insns-per-call=<I>
//! ```
//!
//! - `mmio-guard-map`: MMIO_GUARD_MAP of the (already mapped) console granule: guest → kernel
//!   → mmio-guard component → kernel → guest.
//! - `guarded-console-write`: one byte stored to the emulated PL011's data register after
//!   ENROLL: the stage-2 fault → kernel → vm-manager → (Check) mmio-guard → vm-manager → kernel
//!   → guest, the byte buffered by the emulation (a line goes to the real console every 120).
//!
//! Then it powers off with `SYSTEM_OFF`.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The benchmark (bare metal only).

    use hv_guest_rt::smccc::kvm::{MMIO_GUARD_ENROLL as ENROLL, MMIO_GUARD_MAP as MAP};
    use hv_guest_rt::{Env, counter, fail_run, println, psci, smccc};

    /// Timed operations of each kind.
    const ITERATIONS: u64 = 1_000;
    /// The emulated console (QEMU virt's PL011).
    const CONSOLE: u64 = 0x0900_0000;

    hv_guest_rt::guest_main!(bench);

    fn time(name: &str, hz: u64, operation: impl Fn()) {
        let start = counter::ticks();
        for _ in 0..ITERATIONS {
            operation();
        }
        let ticks = counter::ticks() - start;
        let insns_per_call = ticks * (1_000_000_000 / hz) / ITERATIONS;
        println!();
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
        // Map the console before enrolling, so printing never aborts.
        for (name, call, args) in [("MAP", MAP, [CONSOLE, 1]), ("ENROLL", ENROLL, [0, 0])] {
            let answer = smccc::hvc(call, &args)[0];
            if answer != 0 {
                fail_run(format_args!("{name} returned {answer:#x}, expected 0"));
            }
        }
        time("mmio-guard-map", hz, || {
            smccc::hvc(MAP, &[CONSOLE, 1]);
        });
        time("guarded-console-write", hz, || {
            // SAFETY: CONSOLE is the PL011's data register at the board's fixed address; the
            // store is a single 32-bit write, which the hypervisor emulates (a '.').
            unsafe { core::ptr::write_volatile(CONSOLE as *mut u32, u32::from(b'.')) };
        });
        psci::system_off()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
