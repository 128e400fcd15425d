//! Test guest `host-memory`: runs as the host VM on the stage 2 the memory-protection component
//! builds lazily (`manifests/tests/mem-protect.toml`), and checks the host calls and the abort
//! the host gets for memory it does not own.
//!
//! Cases:
//!
//! - `donated_page_aborts_with_the_s1ptw_marker`: a page of the guest's own, filled with a
//!   pattern, is donated to guest 1 (HOST_DONATE_GUEST → 0); a read of it takes a synchronous
//!   data abort at EL1 (EC 0x25) with ISS.S1PTW (bit 7) set and FAR = the address; after
//!   HOST_RECLAIM (→ 0) the page reads back all zeros.
//! - `hypervisor_memory_aborts_the_same_way`: the first and last 8 bytes of every
//!   `/reserved-memory/hypervisor@…` range abort the same way, on read and on write.
//! - `bad_calls_return_distinct_errors`: DONATE misaligned → -3, DONATE of 0 pages → -3,
//!   DONATE of a hypervisor page → -5, RECLAIM of a page not donated → -5, SHARE twice → -6 the
//!   second time, UNSHARE of a page not shared → -7; the page stays readable.
//! - `share_and_unshare_round_trip`: SHARE → 0, the page is still readable and writable,
//!   UNSHARE → 0.
//! - `accesses_no_mapping_can_serve_abort`: an instruction fetch (a `blr`) from the first page
//!   past the end of RAM, from an address in QEMU virt's MMIO gap, from the console UART's
//!   page and from the hypervisor's memory takes an instruction abort and the guest goes on;
//!   reads and writes past the end of RAM and in the gap take a data abort. (A fetch past RAM
//!   used to hang the vCPU: the device mapping a read made was taken for a race already won.)
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use core::ptr;

    use hv_guest_rt::{
        Env, TakenException, TestResult, catch_exception, ensure, ensure_eq, expect_data_aborts,
        expect_exception, expect_fetch_abort, fail, smccc::hvc,
    };

    hv_guest_rt::test_guest![
        donated_page_aborts_with_the_s1ptw_marker,
        hypervisor_memory_aborts_the_same_way,
        bad_calls_return_distinct_errors,
        share_and_unshare_round_trip,
        accesses_no_mapping_can_serve_abort,
    ];

    /// An address in no device's range on QEMU virt (between the UART at 0x0900_0000 and the
    /// RTC at 0x0901_0000): the hardware answers any access with an external abort.
    const MMIO_GAP: u64 = 0x0900_8000;

    /// The memory-protection component's host calls.
    use hv_guest_rt::smccc::host::code::{
        ALREADY_SHARED, INVALID_PARAMETER, NOT_OWNED, NOT_SHARED, SUCCESS,
    };
    use hv_guest_rt::smccc::host::{
        HOST_DONATE_GUEST, HOST_RECLAIM, HOST_SHARE_HYP, HOST_UNSHARE_HYP,
    };

    /// The guest the test donates to.
    const GUEST: u64 = 1;
    const PAGE_SIZE: u64 = 4096;
    const PATTERN: u64 = 0x686f_7374_6d65_6d00;

    /// A page of the guest's own memory, alone in its page.
    #[repr(C, align(4096))]
    struct Page([u64; 512]);

    static mut DONATED: Page = Page([0; 512]);
    static mut SHARED: Page = Page([0; 512]);
    static mut SCRATCH: Page = Page([0; 512]);

    fn call(function: u32, args: &[u64]) -> i64 {
        hvc(function, args)[0] as i64
    }

    fn read(address: u64) -> u64 {
        // SAFETY: `address` is an aligned doubleword of a page this guest owns (or one expected
        // to fault, in which case the load is skipped).
        unsafe { ptr::read_volatile(address as *const u64) }
    }

    fn write(address: u64, value: u64) {
        // SAFETY: as for `read`: one of the guest's own pages, or a store expected to fault.
        unsafe { ptr::write_volatile(address as *mut u64, value) }
    }

    /// Checks that `taken` is the abort the hypervisor injects for an access to memory the
    /// host does not own.
    fn check_marked_abort(address: u64, write: bool, taken: Option<TakenException>) -> TestResult {
        let access = if write { "write" } else { "read" };
        let Some(taken) = taken else {
            fail!("{access} of {address:#x} did not fault");
        };
        ensure!(
            taken.is_host_ownership_abort(),
            "{access} of {address:#x}: not a data abort with ISS.S1PTW set: {taken}"
        );
        ensure!(
            taken.far == address,
            "{access} of {address:#x}: wrong FAR: {taken}"
        );
        Ok(())
    }

    fn donated_page_aborts_with_the_s1ptw_marker(_env: &Env) -> TestResult {
        let page = (&raw const DONATED) as u64;
        for index in 0..512 {
            write(page + index * 8, PATTERN ^ index);
        }
        ensure_eq!(read(page + 8), PATTERN ^ 1);
        ensure_eq!(call(HOST_DONATE_GUEST, &[page, 1, GUEST]), SUCCESS);
        let taken = expect_exception(|| read(page));
        check_marked_abort(page, false, taken)?;
        let last = page + PAGE_SIZE - 8;
        let taken = expect_exception(|| read(last));
        check_marked_abort(last, false, taken)?;
        ensure_eq!(call(HOST_RECLAIM, &[page, 1, GUEST]), SUCCESS);
        for index in 0..512 {
            let address = page + index * 8;
            match catch_exception(|| read(address)) {
                Ok(0) => {}
                Ok(value) => fail!("{address:#x} reads {value:#x} after the reclaim, not 0"),
                Err(taken) => fail!("{address:#x} faults after the reclaim: {taken}"),
            }
        }
        Ok(())
    }

    fn hypervisor_memory_aborts_the_same_way(env: &Env) -> TestResult {
        let mut ranges = 0;
        for range in env.hypervisor_memory() {
            ranges += 1;
            ensure!(range.size >= 8, "{range}: smaller than 8 bytes");
            let first = range.base.next_multiple_of(8);
            let last = (range.end() - 8) & !7;
            for address in [first, last] {
                let taken = expect_exception(|| read(address));
                check_marked_abort(address, false, taken)?;
                let taken = expect_exception(|| write(address, 0x6775_6573_7421));
                check_marked_abort(address, true, taken)?;
            }
        }
        ensure!(
            ranges > 0,
            "the DTB has no /reserved-memory/hypervisor@... node"
        );
        Ok(())
    }

    fn bad_calls_return_distinct_errors(env: &Env) -> TestResult {
        let page = (&raw const SCRATCH) as u64;
        write(page, PATTERN);
        let Some(hypervisor) = env.hypervisor_memory().next() else {
            fail!("the DTB has no /reserved-memory/hypervisor@... node");
        };
        let hyp_page = hypervisor.base.next_multiple_of(PAGE_SIZE);
        ensure!(
            hyp_page + PAGE_SIZE <= hypervisor.end(),
            "{hypervisor}: no whole page"
        );
        ensure_eq!(
            call(HOST_DONATE_GUEST, &[page + 8, 1, GUEST]),
            INVALID_PARAMETER
        );
        ensure_eq!(
            call(HOST_DONATE_GUEST, &[page, 0, GUEST]),
            INVALID_PARAMETER
        );
        ensure_eq!(call(HOST_DONATE_GUEST, &[hyp_page, 1, GUEST]), NOT_OWNED);
        ensure_eq!(call(HOST_RECLAIM, &[page, 1, GUEST]), NOT_OWNED);
        ensure_eq!(call(HOST_SHARE_HYP, &[page]), SUCCESS);
        ensure_eq!(call(HOST_SHARE_HYP, &[page]), ALREADY_SHARED);
        ensure_eq!(call(HOST_UNSHARE_HYP, &[page]), SUCCESS);
        ensure_eq!(call(HOST_UNSHARE_HYP, &[page]), NOT_SHARED);
        match catch_exception(|| read(page)) {
            Ok(value) => ensure_eq!(value, PATTERN),
            Err(taken) => fail!("{page:#x} faults after the refused calls: {taken}"),
        }
        Ok(())
    }

    fn share_and_unshare_round_trip(_env: &Env) -> TestResult {
        let page = (&raw const SHARED) as u64;
        ensure_eq!(call(HOST_SHARE_HYP, &[page]), SUCCESS);
        match catch_exception(|| {
            write(page + 16, PATTERN);
            read(page + 16)
        }) {
            Ok(value) => ensure_eq!(value, PATTERN),
            Err(taken) => fail!("the shared page {page:#x} faults: {taken}"),
        }
        ensure_eq!(call(HOST_UNSHARE_HYP, &[page]), SUCCESS);
        match catch_exception(|| read(page + 16)) {
            Ok(value) => ensure_eq!(value, PATTERN),
            Err(taken) => fail!("the unshared page {page:#x} faults: {taken}"),
        }
        Ok(())
    }

    fn accesses_no_mapping_can_serve_abort(env: &Env) -> TestResult {
        let Some(ram_end) = env
            .fdt()
            .memory()
            .regions()
            .filter_map(|region| Some(region.starting_address as u64 + region.size? as u64))
            .max()
        else {
            fail!("the DTB has no memory node");
        };
        let Some(uart) = env.console_pl011() else {
            fail!("the DTB names no PL011 console");
        };
        let Some(hypervisor) = env.hypervisor_memory().next() else {
            fail!("the DTB has no /reserved-memory/hypervisor@... node");
        };
        // Twice each: the second fetch meets whatever the first one's fault left mapped.
        for _ in 0..2 {
            expect_fetch_abort(ram_end, "the first page past RAM")?;
            expect_fetch_abort(MMIO_GAP, "the MMIO gap")?;
            expect_fetch_abort(uart as u64, "the UART's page")?;
            expect_fetch_abort(
                hypervisor.base.next_multiple_of(8),
                "the hypervisor's memory",
            )?;
        }
        expect_data_aborts(ram_end, "the first page past RAM")?;
        expect_data_aborts(MMIO_GAP, "the MMIO gap")?;
        // A fetch after a data access mapped the page as device memory still aborts.
        expect_fetch_abort(ram_end + 0x40, "a device-mapped page past RAM")?;
        expect_fetch_abort(MMIO_GAP + 0x40, "a device-mapped page of the MMIO gap")?;
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
