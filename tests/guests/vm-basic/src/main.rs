//! Test guest `vm-basic`: runs as a guest VM beside the host (`manifests/tests/guest-vm.toml`
//! and `guest-vm-reset.toml`) and checks the machine a guest is promised and its isolation.
//!
//! Cases:
//!
//! - `ram_is_at_the_board_ram_base`: the DTB has one memory range, at 0x4000_0000 (QEMU virt's
//!   RAM base, whatever physical memory backs it), with the size the manifest gives; its first
//!   and last words read and write.
//! - `cpus_are_numbered_from_zero`: the DTB lists its vCPUs as `reg` 0, 1, ..., and MPIDR_EL1
//!   reads 0 in its affinity fields; PSCI AFFINITY_INFO says vCPU 0 is on and CPU_ON of a vCPU
//!   the VM does not have is INVALID_PARAMETERS.
//! - `a_second_vcpu_starts_and_stops` (a VM with two vCPUs or more): CPU_ON of vCPU 1 runs Rust
//!   code there, which reads MPIDR_EL1 = 1 and powers itself off with CPU_OFF; AFFINITY_INFO
//!   then says OFF. (With one vCPU: nothing to start.)
//! - `memory_outside_its_ram_aborts`: reads and writes just past its RAM and at 0x7000_0000
//!   (RAM of the machine, but not this VM's) take a synchronous external data abort, and a
//!   fetch there an instruction abort; the guest goes on.
//! - `devices_it_was_not_given_abort`: the PL031 RTC (0x0901_0000) and the PL061 GPIO
//!   (0x0903_0000) are the board's, not this VM's: reads take a data abort.
//! - `its_memory_was_wiped_before_it_started`: a page of its RAM outside the image and the DTB
//!   reads all zeros, then is filled with a pattern: after a reset or a restart the pattern
//!   must be gone.
//!
//! - `allocation_tags_are_as_the_manifest_says` (on a CPU with MTE): with its command line
//!   saying `mte` (the manifest's `mte = true`), no allocation tag of its RAM (every 64 KiB,
//!   and every granule of that page) is non-zero at start, although the test build of the
//!   hypervisor dirtied them before it started and the previous run set some; then tags set on
//!   that page read back. Without `mte`, tags set do not stick (the hypervisor withholds
//!   tag access).
//!
//! Then it prints the summary and ends with PSCI SYSTEM_OFF, or SYSTEM_RESET if its command
//! line says `then=reset` (the VM starts again from a wiped memory).
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use core::ptr;

    use hv_guest_rt::{
        Env, TestCase, TestResult, counter, ensure, ensure_eq,
        exception::ec,
        expect_data_aborts, expect_exception, expect_fetch_abort, fail, mte, println, psci,
        run_cases,
        smp::{self, SecondaryStack, SharedWord},
    };

    hv_guest_rt::guest_main!(main);

    /// QEMU virt's RAM base: where a guest sees its RAM.
    const RAM_BASE: u64 = 0x4000_0000;
    /// RAM of the machine at an address no guest's RAM reaches (a guest's IPA space starts at
    /// RAM_BASE and holds only its own memory).
    const OTHER_RAM: u64 = 0x7000_0000;
    const RTC: u64 = 0x0901_0000;
    const GPIO: u64 = 0x0903_0000;
    const PAGE: u64 = 4096;
    const PATTERN: u64 = 0x6775_6573_7476_6d00;

    unsafe extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }

    fn main(env: &'static Env) -> ! {
        let (_, failed) = run_cases(&[
            TestCase {
                name: "ram_is_at_the_board_ram_base",
                run: ram_is_at_the_board_ram_base,
            },
            TestCase {
                name: "cpus_are_numbered_from_zero",
                run: cpus_are_numbered_from_zero,
            },
            TestCase {
                name: "a_second_vcpu_starts_and_stops",
                run: a_second_vcpu_starts_and_stops,
            },
            TestCase {
                name: "memory_outside_its_ram_aborts",
                run: memory_outside_its_ram_aborts,
            },
            TestCase {
                name: "devices_it_was_not_given_abort",
                run: devices_it_was_not_given_abort,
            },
            TestCase {
                name: "its_memory_was_wiped_before_it_started",
                run: its_memory_was_wiped_before_it_started,
            },
            TestCase {
                name: "allocation_tags_are_as_the_manifest_says",
                run: allocation_tags_are_as_the_manifest_says,
            },
        ]);
        let reset = has_argument(env, "then=reset");
        if reset && failed == 0 {
            hv_guest_rt::println!("resetting");
            psci::system_reset()
        }
        psci::system_off()
    }

    /// Whether the command line (`/chosen/bootargs`) holds `argument`.
    fn has_argument(env: &Env, argument: &str) -> bool {
        env.fdt()
            .chosen()
            .bootargs()
            .is_some_and(|args| args.split(' ').any(|arg| arg == argument))
    }

    fn read(address: u64) -> u64 {
        // SAFETY: an aligned doubleword of this VM's RAM, or an access expected to fault (then
        // the load is skipped by the exception handler).
        unsafe { ptr::read_volatile(address as *const u64) }
    }

    fn write(address: u64, value: u64) {
        // SAFETY: as for `read`: a word of RAM this guest does not otherwise use, or a store
        // expected to fault.
        unsafe { ptr::write_volatile(address as *mut u64, value) }
    }

    /// The VM's RAM: (start, end) of its one memory range.
    fn ram(env: &Env) -> Result<(u64, u64), hv_guest_rt::TestFailure> {
        let memory = env.fdt().memory();
        let mut regions = memory.regions();
        let Some(region) = regions.next() else {
            fail!("the DTB has no memory range");
        };
        ensure!(
            regions.next().is_none(),
            "the DTB has more than one memory range"
        );
        let start = region.starting_address as u64;
        let Some(size) = region.size else {
            fail!("the memory range at {start:#x} has no size");
        };
        Ok((start, start + size as u64))
    }

    /// A page of RAM holding neither the image (with its stack) nor the DTB.
    fn scratch_page(env: &Env) -> Result<u64, hv_guest_rt::TestFailure> {
        let (start, end) = ram(env)?;
        let image = (&raw const __image_start) as u64..(&raw const __image_end) as u64;
        let dtb_start = env.dtb_address() as u64;
        let dtb = dtb_start..dtb_start + env.fdt().total_size() as u64;
        let overlaps = |page: u64, range: &core::ops::Range<u64>| {
            page < range.end && range.start < page + PAGE
        };
        [end - PAGE, end - 0x20_0000, start + 0x10_0000]
            .into_iter()
            .find(|&page| page >= start && !overlaps(page, &image) && !overlaps(page, &dtb))
            .ok_or_else(|| "no free page in RAM".into())
    }

    fn ram_is_at_the_board_ram_base(env: &Env) -> TestResult {
        let (start, end) = ram(env)?;
        ensure_eq!(start, RAM_BASE);
        ensure!(
            end - start >= 0x20_0000 && (end - start).is_multiple_of(0x20_0000),
            "RAM {start:#x}..{end:#x}: not a whole number of 2 MiB blocks"
        );
        let page = scratch_page(env)?;
        for address in [page, page + PAGE - 8] {
            write(address, PATTERN ^ address);
            ensure_eq!(read(address), PATTERN ^ address);
        }
        Ok(())
    }

    /// How many vCPUs the DTB lists.
    fn vcpus(env: &Env) -> u64 {
        env.cpu_mpidrs().count() as u64
    }

    fn cpus_are_numbered_from_zero(env: &Env) -> TestResult {
        for (index, mpidr) in env.cpu_mpidrs().enumerate() {
            ensure_eq!(mpidr, index as u64, "CPU {index} of the DTB");
        }
        ensure!(vcpus(env) >= 1, "the DTB lists no CPU");
        ensure_eq!(smp::current_mpidr() & smp::MPIDR_AFFINITY_MASK, 0);
        ensure_eq!(
            psci::affinity_info(0, 0),
            psci::AFFINITY_ON,
            "AFFINITY_INFO(0)"
        );
        let entry = (&raw const __image_start) as u64;
        ensure_eq!(
            psci::cpu_on(vcpus(env), entry, 0),
            psci::error::INVALID_PARAMETERS,
            "CPU_ON of a vCPU it does not have"
        );
        Ok(())
    }

    static VCPU1_STACK: SecondaryStack<0x4000> = SecondaryStack::new();
    /// What vCPU 1 read as its MPIDR affinity, plus one (0: it has not run yet).
    static VCPU1_SAW: SharedWord = SharedWord::new(0);

    fn vcpu1_main(_arg: u64) -> ! {
        VCPU1_SAW.store((smp::current_mpidr() & smp::MPIDR_AFFINITY_MASK) + 1);
        psci::cpu_off();
        smp::park()
    }

    /// Polls until `done` or 5 s of counter time pass.
    fn wait_until(done: impl Fn() -> bool) -> bool {
        let deadline = counter::ticks() + 5 * counter::frequency();
        while !done() {
            if counter::ticks() > deadline {
                return false;
            }
        }
        true
    }

    fn a_second_vcpu_starts_and_stops(env: &Env) -> TestResult {
        if vcpus(env) < 2 {
            println!("(one vCPU: nothing to start)");
            return Ok(());
        }
        let Some(stack) = VCPU1_STACK.take() else {
            fail!("vCPU 1's stack was taken already");
        };
        ensure_eq!(
            psci::affinity_info(1, 0),
            psci::AFFINITY_OFF,
            "vCPU 1 at start"
        );
        if let Err(code) = smp::start_secondary(1, stack, vcpu1_main, 0) {
            fail!("CPU_ON of vCPU 1: {}", psci::error_name(code));
        }
        ensure!(
            wait_until(|| VCPU1_SAW.load() != 0),
            "vCPU 1 did not run within 5 s"
        );
        ensure_eq!(VCPU1_SAW.load() - 1, 1, "vCPU 1's MPIDR affinity");
        ensure!(
            wait_until(|| psci::affinity_info(1, 0) == psci::AFFINITY_OFF),
            "vCPU 1 is not OFF 5 s after its CPU_OFF"
        );
        Ok(())
    }

    fn memory_outside_its_ram_aborts(env: &Env) -> TestResult {
        let (_, end) = ram(env)?;
        for (address, what) in [
            (end, "the first byte past its RAM"),
            (OTHER_RAM, "the machine's RAM outside its own"),
        ] {
            for taken in expect_data_aborts(address, what)? {
                ensure!(
                    taken.is_data_external_abort(),
                    "an access to {what} ({address:#x}): not an external abort: {taken}"
                );
            }
            expect_fetch_abort(address, what)?;
        }
        Ok(())
    }

    fn devices_it_was_not_given_abort(_env: &Env) -> TestResult {
        for (address, what) in [(RTC, "the RTC"), (GPIO, "the GPIO controller")] {
            let taken = expect_exception(|| read(address));
            let Some(taken) = taken else {
                fail!("a read of {what} ({address:#x}) did not abort");
            };
            ensure!(
                taken.ec() == ec::DATA_ABORT_SAME_EL,
                "a read of {what} ({address:#x}): not a data abort: {taken}"
            );
        }
        Ok(())
    }

    fn its_memory_was_wiped_before_it_started(env: &Env) -> TestResult {
        let page = scratch_page(env)?;
        // The last case: `ram_is_at_the_board_ram_base` wrote the page's first and last word,
        // so look at the words between, then leave the pattern everywhere for the next start.
        for address in (page + 8..page + PAGE - 8).step_by(8) {
            let value = read(address);
            ensure!(
                value == 0,
                "{address:#x} holds {value:#x} at start: the memory was not wiped"
            );
        }
        for address in (page..page + PAGE).step_by(8) {
            write(address, PATTERN);
        }
        Ok(())
    }

    /// The tag the test sets.
    const TAG: u8 = 0x5;

    fn allocation_tags_are_as_the_manifest_says(env: &Env) -> TestResult {
        if !mte::has_mte2() {
            println!("(no MTE on this CPU: nothing to check)");
            return Ok(());
        }
        let may_use_tags = has_argument(env, "mte");
        let (start, end) = ram(env)?;
        let page = scratch_page(env)?;
        let samples = (start..end)
            .step_by(0x1_0000)
            .chain((page..page + PAGE).step_by(16));
        // SAFETY: the closure reads tags of this VM's RAM and writes tags (never data) of its
        // scratch page; it touches no device.
        let (first_tagged, kept) = unsafe {
            mte::with_tagged_identity_mmu(|| {
                let first_tagged = samples
                    .map(|address| (address, mte::load_tag(address)))
                    .find(|&(_, tag)| tag != 0);
                for address in (page..page + PAGE).step_by(16) {
                    mte::store_tag(address, TAG);
                }
                (first_tagged, mte::load_tag(page + 32))
            })
        };
        if may_use_tags {
            if let Some((address, tag)) = first_tagged {
                fail!("{address:#x} has allocation tag {tag:#x} at start: not scrubbed");
            }
            ensure_eq!(kept, TAG, "a tag set on its own RAM does not read back");
        } else {
            ensure_eq!(kept, 0, "a VM without MTE kept an allocation tag");
        }
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
