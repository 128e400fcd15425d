//! Test guest `vm-share`: a guest VM with a shared IPA bit (`manifests/tests/guest-share.toml`)
//! shares one page of its memory with the host through pKVM's MEM_SHARE, as Linux's pkvm-guest
//! driver does (one granule's IPA in x1), and takes it back with MEM_UNSHARE. The host side is
//! `src/host.rs`.
//!
//! Cases:
//!
//! - `its_dtb_names_its_shared_bit`: `/hypervisor` says `hv,shared-ipa-bit`, above its RAM.
//! - `a_private_page_is_not_reachable_through_the_alias`: a page it wrote reads back at its
//!   IPA, and a read and a write through the shared alias (IPA | 1 << bit) abort.
//! - `bad_calls_change_nothing`: MEM_SHARE of a misaligned IPA, of an IPA outside its RAM, with
//!   x2 non-zero, and MEM_UNSHARE of a private page are refused (INVALID_PARAMETER, or
//!   NOT_SHARED for the private page), and the page stays private (the alias still aborts).
//! - `a_shared_page_reaches_the_host_and_comes_back`: after MEM_SHARE the page reads the same
//!   through both aliases and a write through one shows through the other; a second MEM_SHARE
//!   answers ALREADY_SHARED; the host (`hv-guest-vm-share-host`) finds the page, reads the
//!   pattern and writes its answer, which the guest sees through both aliases; MEM_UNSHARE
//!   given the alias form of the IPA takes it back: the alias aborts at once (no stale TLB
//!   entry), the page still reads at its IPA.
//!
//! Then it powers off.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use core::ptr;

    use hv_guest_rt::smccc::host::code::{ALREADY_SHARED, INVALID_PARAMETER, NOT_SHARED, SUCCESS};
    use hv_guest_rt::smccc::kvm::{MEM_SHARE, MEM_UNSHARE};
    use hv_guest_rt::{
        Env, TestCase, TestFailure, TestResult, counter, ensure, ensure_eq, expect_data_aborts,
        fail, psci, run_cases, smccc::hvc,
    };
    use vm_share_common::{ANSWER, GUEST_WORD, HOST_WORD, PATIENCE_S, PATTERN};

    hv_guest_rt::guest_main!(main);

    const PAGE: u64 = 4096;

    /// The page it shares, alone in its page.
    #[repr(C, align(4096))]
    struct Page([u64; 512]);
    static mut SHARED: Page = Page([0; 512]);

    fn main(_env: &'static hv_guest_rt::Env) -> ! {
        run_cases(&[
            TestCase {
                name: "its_dtb_names_its_shared_bit",
                run: its_dtb_names_its_shared_bit,
            },
            TestCase {
                name: "a_private_page_is_not_reachable_through_the_alias",
                run: a_private_page_is_not_reachable_through_the_alias,
            },
            TestCase {
                name: "bad_calls_change_nothing",
                run: bad_calls_change_nothing,
            },
            TestCase {
                name: "a_shared_page_reaches_the_host_and_comes_back",
                run: a_shared_page_reaches_the_host_and_comes_back,
            },
        ]);
        psci::system_off()
    }

    fn read(address: u64) -> u64 {
        // SAFETY: an aligned doubleword of its own page (at either alias), or an access
        // expected to fault.
        unsafe { ptr::read_volatile(address as *const u64) }
    }

    fn write(address: u64, value: u64) {
        // SAFETY: as for `read`.
        unsafe { ptr::write_volatile(address as *mut u64, value) }
    }

    fn call(function: u32, args: &[u64]) -> i64 {
        hvc(function, args)[0] as i64
    }

    fn page() -> u64 {
        (&raw const SHARED) as u64
    }

    /// Its shared bit, from `/hypervisor`'s `hv,shared-ipa-bit`.
    fn shared_bit(env: &Env) -> Result<u64, TestFailure> {
        let Some(node) = env.find_node("/hypervisor") else {
            fail!("the DTB has no /hypervisor node");
        };
        let Some(bit) = node
            .property("hv,shared-ipa-bit")
            .and_then(|property| property.as_usize())
        else {
            fail!("/hypervisor has no hv,shared-ipa-bit");
        };
        Ok(bit as u64)
    }

    fn alias(env: &Env, address: u64) -> Result<u64, TestFailure> {
        Ok(address | 1 << shared_bit(env)?)
    }

    fn its_dtb_names_its_shared_bit(env: &Env) -> TestResult {
        let bit = shared_bit(env)?;
        ensure!((32..40).contains(&bit), "shared bit {bit}");
        ensure!(page() < 1 << bit, "its page lies above its shared bit");
        Ok(())
    }

    fn a_private_page_is_not_reachable_through_the_alias(env: &Env) -> TestResult {
        let page = page();
        write(page + GUEST_WORD, PATTERN);
        ensure_eq!(read(page + GUEST_WORD), PATTERN);
        expect_data_aborts(alias(env, page)?, "its private page through the alias")?;
        Ok(())
    }

    fn bad_calls_change_nothing(env: &Env) -> TestResult {
        let page = page();
        ensure_eq!(
            call(MEM_SHARE, &[page + 8, 0, 0]),
            INVALID_PARAMETER,
            "misaligned"
        );
        let ram_end = env
            .fdt()
            .memory()
            .regions()
            .filter_map(|region| Some(region.starting_address as u64 + region.size? as u64))
            .max()
            .unwrap_or(0);
        ensure_eq!(
            call(MEM_SHARE, &[ram_end, 0, 0]),
            INVALID_PARAMETER,
            "outside its RAM"
        );
        ensure_eq!(call(MEM_SHARE, &[page, 1, 0]), INVALID_PARAMETER, "x2 = 1");
        ensure_eq!(
            call(MEM_UNSHARE, &[page, 0, 0]),
            NOT_SHARED,
            "a private page"
        );
        expect_data_aborts(alias(env, page)?, "its page after refused calls")?;
        Ok(())
    }

    /// Waits until `done`, for [`PATIENCE_S`] seconds at most.
    fn wait_until(done: impl Fn() -> bool) -> bool {
        let deadline = counter::ticks() + PATIENCE_S * counter::frequency();
        while !done() {
            if counter::ticks() > deadline {
                return false;
            }
        }
        true
    }

    fn a_shared_page_reaches_the_host_and_comes_back(env: &Env) -> TestResult {
        let page = page();
        let shared = alias(env, page)?;
        ensure_eq!(call(MEM_SHARE, &[page, 0, 0]), SUCCESS, "MEM_SHARE");
        ensure_eq!(call(MEM_SHARE, &[shared, 0, 0]), ALREADY_SHARED, "twice");
        ensure_eq!(read(shared + GUEST_WORD), PATTERN, "through the alias");
        write(shared + PAGE - 8, 0x0061_6c69_6173);
        ensure_eq!(read(page + PAGE - 8), 0x0061_6c69_6173, "an alias write");
        ensure!(
            wait_until(|| read(page + HOST_WORD) == ANSWER),
            "the host did not answer within {PATIENCE_S} s"
        );
        ensure_eq!(
            read(shared + HOST_WORD),
            ANSWER,
            "the answer through the alias"
        );
        ensure_eq!(call(MEM_UNSHARE, &[shared, 0, 0]), SUCCESS, "MEM_UNSHARE");
        expect_data_aborts(shared, "the alias after MEM_UNSHARE")?;
        ensure_eq!(
            read(page + GUEST_WORD),
            PATTERN,
            "its page after MEM_UNSHARE"
        );
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
