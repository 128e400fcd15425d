//! Test guest `vm-share-host`: runs as the host beside the guest VM of `src/main.rs`
//! (`manifests/tests/guest-share.toml`) and plays the host's side of its shared page.
//!
//! Cases:
//!
//! - `bad_queries_are_refused`: HOST_GUEST_SHARED of the host (VM 0) and of VM 5 answer
//!   INVALID_PARAMETER.
//! - `the_shared_page_is_found_read_answered_and_lost_again`: polls HOST_GUEST_SHARED(1, 0)
//!   until the guest has shared its page; the page holds the guest's pattern and takes the
//!   host's answer; once the guest has unshared it (HOST_GUEST_SHARED finds none), a read and a
//!   write of it take the abort pKVM injects for memory the host does not own (S1PTW set).
//! - `the_guest_powers_off`: HOST_VM_STATE(1) says off within 30 s.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use core::ptr;

    use hv_guest_rt::smccc::host::code::{INVALID_PARAMETER, SUCCESS};
    use hv_guest_rt::smccc::host::{HOST_GUEST_SHARED, HOST_VM_STATE, vm_state};
    use hv_guest_rt::{
        Env, TestResult, counter, ensure, ensure_eq, expect_data_aborts, fail, smccc::hvc,
    };
    use vm_share_common::{ANSWER, GUEST, GUEST_WORD, HOST_WORD, PATIENCE_S, PATTERN};

    hv_guest_rt::test_guest![
        bad_queries_are_refused,
        the_shared_page_is_found_read_answered_and_lost_again,
        the_guest_powers_off,
    ];

    fn read(address: u64) -> u64 {
        // SAFETY: an aligned doubleword of the page the guest shares with the host.
        unsafe { ptr::read_volatile(address as *const u64) }
    }

    fn write(address: u64, value: u64) {
        // SAFETY: as for `read`; the host writes only its own word of the page.
        unsafe { ptr::write_volatile(address as *mut u64, value) }
    }

    /// HOST_GUEST_SHARED(vm, n): (x0, the PA, how many).
    fn shared(vm: u64, n: u64) -> (i64, u64, u64) {
        let [x0, x1, x2, ..] = hvc(HOST_GUEST_SHARED, &[vm, n]);
        (x0 as i64, x1, x2)
    }

    /// Polls `probe` until it gives `Some`, for [`PATIENCE_S`] seconds at most.
    fn wait_for<T>(probe: impl Fn() -> Option<T>) -> Option<T> {
        let deadline = counter::ticks() + PATIENCE_S * counter::frequency();
        loop {
            if let Some(found) = probe() {
                return Some(found);
            }
            if counter::ticks() > deadline {
                return None;
            }
        }
    }

    fn bad_queries_are_refused(_env: &Env) -> TestResult {
        for vm in [0, 5] {
            ensure_eq!(
                shared(vm, 0).0,
                INVALID_PARAMETER,
                "HOST_GUEST_SHARED({vm}, 0)"
            );
        }
        Ok(())
    }

    fn the_shared_page_is_found_read_answered_and_lost_again(_env: &Env) -> TestResult {
        let Some(page) = wait_for(|| {
            let (code, pa, count) = shared(GUEST, 0);
            (code == SUCCESS && count == 1).then_some(pa)
        }) else {
            fail!("the guest shared no page within {PATIENCE_S} s");
        };
        ensure!(page.is_multiple_of(4096), "{page:#x}: not a page");
        ensure_eq!(
            shared(GUEST, 1).0,
            INVALID_PARAMETER,
            "a second shared page"
        );
        ensure_eq!(
            read(page + GUEST_WORD),
            PATTERN,
            "the guest's pattern at {page:#x}"
        );
        write(page + HOST_WORD, ANSWER);
        let unshared = wait_for(|| (shared(GUEST, 0).0 == INVALID_PARAMETER).then_some(()));
        ensure!(
            unshared.is_some(),
            "the guest did not take its page back within {PATIENCE_S} s"
        );
        for taken in expect_data_aborts(page, "the page the guest took back")? {
            ensure!(
                taken.is_host_ownership_abort(),
                "the page the guest took back ({page:#x}): not the injected abort: {taken}"
            );
        }
        Ok(())
    }

    fn the_guest_powers_off(_env: &Env) -> TestResult {
        let off = wait_for(|| {
            let [code, state, ..] = hvc(HOST_VM_STATE, &[GUEST]);
            (code as i64 == SUCCESS && state == vm_state::OFF).then_some(())
        });
        ensure!(
            off.is_some(),
            "the guest did not power off within {PATIENCE_S} s"
        );
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
