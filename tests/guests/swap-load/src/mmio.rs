//! Test guest `swap-load`, mode `mmio` by default: both CPUs MAP and UNMAP a granule of their
//! own and ask the MMIO guard's INFO calls in a tight loop while the mmio-guard component is
//! hot-swapped, with the console (emulated and guarded) kept mapped throughout
//! (`manifests/tests/hot-swap-mmio-guard.toml`). Its console receives nothing typed, so the run
//! stops by itself after `swap_load::MMIO_STOP_AFTER_SECONDS` (or on a `q`, should one come).
//! See the `swap_load` library for the loop, the options and the output.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    hv_guest_rt::guest_main!(main);

    fn main(env: &'static hv_guest_rt::Env) -> ! {
        swap_load::run(env, swap_load::Options::MMIO)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
