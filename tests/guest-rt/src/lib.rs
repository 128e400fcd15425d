//! `hv-guest-rt`: the runtime for bare-metal Rust test guests of the hypervisor.
//!
//! A guest built on this crate is an ELF linked at `0x4200_0000` whose first bytes are an arm64
//! Linux Image header, so the ELF converted to a raw binary boots like a Linux `Image`. The
//! runtime then:
//!
//! 1. enters at EL1h with the MMU off, `x0` = DTB address; sets up a 64 KiB stack, zeroes `.bss`
//!    and installs its vector table in `VBAR_EL1` (the private `arch` module);
//! 2. parses the DTB ([`Env`]), finds the console PL011 through `/chosen/stdout-path`
//!    ([`console`], [`println!`]) and the PSCI conduit through `/psci`'s `method` ([`psci`]);
//! 3. calls the guest's main function, declared with [`guest_main!`] (or [`test_guest!`]).
//!
//! # Writing a test guest
//!
//! ```ignore
//! #![cfg_attr(target_os = "none", no_std, no_main)]
//!
//! #[cfg(target_os = "none")]
//! mod guest {
//!     use hv_guest_rt::{Env, TestResult, ensure_eq};
//!
//!     hv_guest_rt::test_guest![answer_is_42];
//!
//!     fn answer_is_42(_env: &Env) -> TestResult {
//!         ensure_eq!(6 * 7, 42);
//!         Ok(())
//!     }
//! }
//!
//! #[cfg(not(target_os = "none"))]
//! fn main() {}
//! ```
//!
//! [`test_guest!`] runs the listed functions as [`TestCase`]s named after them with
//! [`run_tests`], which prints `test <name> ... ok` / `test <name> ... FAILED: <reason>` and a
//! closing `<N> passed, <M> failed`, then powers off with PSCI `SYSTEM_OFF` (all passed) or
//! `SYSTEM_RESET` (some failed). For anything else (e.g. a benchmark), use
//! `guest_main!(my_main)` with `fn my_main(env: &'static Env) -> !`, and end with
//! [`psci::system_off`]. A panic or an unexpected exception prints its reason and ends the run
//! with `SYSTEM_RESET`.
//!
//! The guest's build script links with the runtime's script (`guest.ld`, published by this
//! crate's build script on the linker search path):
//!
//! ```ignore
//! if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
//!     println!("cargo:rustc-link-arg-bins=-Tguest.ld");
//! }
//! ```
//!
//! Tests can expect synchronous exceptions ([`expect_exception`], [`catch_exception`]), make
//! SMCCC calls through either conduit ([`smccc`], with the KVM vendor-hypervisor and MMIO
//! guard call numbers in [`smccc::kvm`]) and read the virtual counter ([`counter`]). The
//! runtime runs with the MMU off (all data accesses Device memory); [`with_identity_mmu`] runs
//! a closure with it on over a static identity map, where misaligned accesses are possible.
//!
//! # More than one CPU
//!
//! The runtime boots on one CPU (the boot CPU). [`smp::start_secondary`] starts another with
//! PSCI `CPU_ON`, running a Rust function on a stack the guest provides
//! ([`smp::SecondaryStack`]). With the MMU off there are no working atomics: CPUs share data
//! only through aligned words each written by one CPU ([`smp::SharedWord`]). Only the boot CPU
//! may expect exceptions; any exception or panic on a secondary CPU fails the run. See
//! [`smp`].
//!
//! # Running a guest directly on QEMU
//!
//! Without the hypervisor, `qemu-system-aarch64 -M virt -cpu cortex-a72 -nographic -no-reboot
//! -kernel <guest ELF>` starts the ELF at EL1 with `x0 = 0`, the DTB at `0x4000_0000` and PSCI
//! over HVC; the runtime falls back to that DTB address when `x0` is 0 for exactly this case.
//!
//! # Host builds
//!
//! On the host (`cargo check --workspace`) only the portable parts exist (types, DTB helpers,
//! message formatting); everything that needs the hardware is `cfg(target_os = "none")`.

#![cfg_attr(target_os = "none", no_std)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    missing_docs
)]
// The crate docs link to the bare-metal API, which host builds leave out.
#![cfg_attr(not(target_os = "none"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(all(target_os = "none", not(target_arch = "aarch64")))]
compile_error!("hv-guest-rt only supports aarch64 bare-metal targets");

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod counter;
mod env;
pub mod exception;
#[cfg(target_os = "none")]
mod fatal;
#[cfg(target_os = "none")]
mod global;
mod harness;
pub mod psci;
pub mod smccc;
pub mod smp;

#[cfg(target_os = "none")]
pub use arch::{IDENTITY_MAP_END, branch_and_link, current_el, mmu_enabled, with_identity_mmu};

/// Memory tagging (FEAT_MTE2): allocation tags read and written under
/// [`mte::with_tagged_identity_mmu`].
#[cfg(target_os = "none")]
pub mod mte {
    pub use crate::arch::{has_mte2, load_tag, store_tag, with_tagged_identity_mmu};
}
#[cfg(target_os = "none")]
pub use boot::{QEMU_DIRECT_DTB_ADDRESS, env};
pub use env::{BadDtb, Env, MemoryRange};
pub use exception::TakenException;
#[cfg(target_os = "none")]
pub use exception::{catch_exception, expect_data_aborts, expect_exception, expect_fetch_abort};
#[cfg(target_os = "none")]
pub use fatal::fail_run;
pub use harness::{FAILURE_MESSAGE_CAPACITY, TestCase, TestFailure, TestResult};
#[cfg(target_os = "none")]
pub use harness::{run_cases, run_tests};

/// Declares the guest's main function: `guest_main!(path)` where `path` is a
/// `fn(&'static Env) -> !`. The runtime calls it once boot has finished.
#[macro_export]
macro_rules! guest_main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __guest_rt_main(env: &'static $crate::Env) -> ! {
            let main: fn(&'static $crate::Env) -> ! = $main;
            main(env)
        }
    };
}

/// Declares a test guest whose main function runs the listed test functions (each a
/// `fn(&Env) -> TestResult`) with [`run_tests`], as [`TestCase`]s named after the functions.
#[macro_export]
macro_rules! test_guest {
    ($($case:ident),+ $(,)?) => {
        $crate::guest_main!(__guest_rt_run_test_cases);

        fn __guest_rt_run_test_cases(_env: &'static $crate::Env) -> ! {
            $crate::run_tests(&[
                $($crate::TestCase { name: ::core::stringify!($case), run: $case },)+
            ])
        }
    };
}
