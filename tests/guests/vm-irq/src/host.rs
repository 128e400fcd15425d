//! Test guest `vm-irq-host`: the host VM beside the `vm-irq` guest
//! (`manifests/tests/guest-irq.toml`). Its one case, `the_guest_powers_off`, polls
//! HOST_VM_STATE(1) until the guest has run its cases and powered off (60 s at most), so the
//! run ends after the guest's. With `idle` on its command line it does nothing at all (it waits
//! for an interrupt that never comes), so that under `-icount` the guest's CPU runs alone
//! (`cargo xtask bench`, which ends that run at its timeout).
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test case (bare metal only).

    use hv_guest_rt::smccc::host::code::SUCCESS;
    use hv_guest_rt::smccc::host::{HOST_VM_STATE, vm_state};
    use hv_guest_rt::{Env, TestResult, counter, ensure, smccc::hvc};

    /// The guest VM's id.
    const GUEST: u64 = 1;
    /// How long the guest may take.
    const PATIENCE_S: u64 = 60;

    hv_guest_rt::test_guest![the_guest_powers_off];

    fn the_guest_powers_off(env: &Env) -> TestResult {
        let idle = env
            .fdt()
            .chosen()
            .bootargs()
            .is_some_and(|args| args.split(' ').any(|arg| arg == "idle"));
        if idle {
            hv_guest_rt::println!("idle: waiting for nothing");
            loop {
                // SAFETY: WFI only waits; the host gets no interrupt, so it waits for good.
                unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
            }
        }
        let deadline = counter::ticks() + PATIENCE_S * counter::frequency();
        loop {
            let [code, state, ..] = hvc(HOST_VM_STATE, &[GUEST]);
            if code as i64 == SUCCESS && state == vm_state::OFF {
                return Ok(());
            }
            ensure!(
                counter::ticks() < deadline,
                "the guest did not power off within {PATIENCE_S} s"
            );
            core::hint::spin_loop();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
