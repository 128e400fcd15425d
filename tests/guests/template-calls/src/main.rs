//! Test guest `template-calls`: the host VM of `manifests/tests/template.toml`, which routes
//! TEMPLATE_ADD and TEMPLATE_READ to the component template (`components/template`, started
//! with `settings = { start = 40 }`).
//!
//! Cases:
//!
//! - `the_counter_starts_where_the_manifest_says`: READ → 0, x1 = 40.
//! - `adds_accumulate`: ADD 1 → 41, ADD 1 → 42, READ → 42.
//! - `an_overflow_is_refused_and_changes_nothing`: ADD u64::MAX → INVALID_PARAMETER and
//!   x1 still 42; READ → 42.
//! - `other_functions_stay_with_the_vm_manager`: a function just past the template's range is
//!   not routed there and gets NOT_SUPPORTED from the VM manager.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use hv_guest_rt::smccc::host::{TEMPLATE_ADD, TEMPLATE_READ, code::SUCCESS};
    use hv_guest_rt::smccc::{INVALID_PARAMETER, NOT_SUPPORTED, hvc};
    use hv_guest_rt::{Env, TestResult, ensure_eq};

    hv_guest_rt::test_guest![
        the_counter_starts_where_the_manifest_says,
        adds_accumulate,
        an_overflow_is_refused_and_changes_nothing,
        other_functions_stay_with_the_vm_manager,
    ];

    /// Where the manifest starts the counter.
    const START: u64 = 40;

    fn call(function: u32, x1: u64) -> (i64, u64) {
        let regs = hvc(function, &[x1]);
        (regs[0] as i64, regs[1])
    }

    fn the_counter_starts_where_the_manifest_says(_env: &Env) -> TestResult {
        ensure_eq!(call(TEMPLATE_READ, 0), (SUCCESS, START));
        Ok(())
    }

    fn adds_accumulate(_env: &Env) -> TestResult {
        ensure_eq!(call(TEMPLATE_ADD, 1), (SUCCESS, START + 1));
        ensure_eq!(call(TEMPLATE_ADD, 1), (SUCCESS, START + 2));
        ensure_eq!(call(TEMPLATE_READ, 0), (SUCCESS, START + 2));
        Ok(())
    }

    fn an_overflow_is_refused_and_changes_nothing(_env: &Env) -> TestResult {
        ensure_eq!(call(TEMPLATE_ADD, u64::MAX), (INVALID_PARAMETER, START + 2));
        ensure_eq!(call(TEMPLATE_READ, 0), (SUCCESS, START + 2));
        Ok(())
    }

    fn other_functions_stay_with_the_vm_manager(_env: &Env) -> TestResult {
        ensure_eq!(call(TEMPLATE_READ + 1, 0).0, NOT_SUPPORTED);
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
