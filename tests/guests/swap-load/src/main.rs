//! Test guest `swap-load`, mode `calls` by default: both CPUs call the VM manager
//! (HYP_PING_SUPERVISOR, PSCI_VERSION, SMCCC_VERSION) in a tight loop while a component is
//! hot-swapped, until a `q` is typed (`manifests/tests/hot-swap-vm-manager.toml`). See the
//! `swap_load` library for the loop, the options and the output.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    hv_guest_rt::guest_main!(main);

    fn main(env: &'static hv_guest_rt::Env) -> ! {
        swap_load::run(env, swap_load::Options::CALLS)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
