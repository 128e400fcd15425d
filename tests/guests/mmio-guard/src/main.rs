//! Test guest `mmio-guard`: the MMIO guard over an emulated console, for a VM that may enrol
//! (`manifests/tests/mmio-guard.toml`: the host VM's `uart0`, QEMU virt's PL011 at
//! 0x0900_0000 and the guest's console, is emulated by the VM manager; the mmio-guard component
//! serves HYP_MEMINFO and MMIO_GUARD_*, mode `optional`).
//!
//! Cases, in this order (enrolment is for good, so the order matters):
//!
//! - `discovery_matches_what_is_served`: the vendor hypervisor UID is KVM's; the KVM FEATURES
//!   bitmap is exactly FEATURES, HYP_MEMINFO and MMIO_GUARD_INFO/ENROLL/MAP/UNMAP (bits 0, 2,
//!   5..=8; x1..x3 zero); MMIO_GUARD_INFO and HYP_MEMINFO report a 4 KiB granule.
//! - `console_works_before_enroll`: the DTB's console is the PL011 at 0x0900_0000, and its
//!   UARTFR reads 0x90 (TXFE | RXFE) without an exception.
//! - `enroll_then_console_aborts_until_mapped`: ENROLL succeeds; a UARTFR read then takes a
//!   synchronous external abort (EC 0x25, DFSC 0x10, FAR = 0x0900_0018); after MAP of the
//!   console granule it reads 0x90; after UNMAP it aborts again; MAP again.
//! - `straddling_access_aborts`: with the console granule mapped and the next one not, an
//!   8-byte load at 0x0900_0FFC (first byte mapped, last byte not) aborts with FAR =
//!   0x0900_0FFC. Such a load must be misaligned, which Device memory (the MMU off) refuses
//!   at EL1 with an alignment fault, so the case turns the EL1 MMU on over a static identity
//!   map ([`hv_guest_rt::with_identity_mmu`]) for the access; two controls show the MMU path
//!   works (an emulated UARTFR read, a misaligned load from RAM).
//! - `bad_arguments_are_refused`: MAP and UNMAP of a misaligned IPA, MAP of an IPA in the
//!   guest's RAM, MMIO_GUARD_INFO and HYP_MEMINFO with x1 = 1 all return INVALID_PARAMETER
//!   (-3), and the console stays mapped after each (a failed call changes nothing).
//!
//! While the console is unmapped nothing may be printed; the cases that can leave it unmapped
//! run inside [`mmio_guard_common::restoring_console`], which maps it again before the harness prints.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use core::arch::asm;

    use hv_guest_rt::smccc::{INVALID_PARAMETER, hvc, kvm};
    use hv_guest_rt::{
        Env, TestResult, catch_exception, ensure, ensure_eq, expect_exception, fail,
    };
    use mmio_guard_common::{
        FR_IDLE, GRANULE, KVM_FEATURES_SERVED, UART, check_external_abort, console_aborts,
        console_works, enroll, hyp_meminfo, info, map, read_fr, restoring_console, unmap,
    };

    hv_guest_rt::test_guest![
        discovery_matches_what_is_served,
        console_works_before_enroll,
        enroll_then_console_aborts_until_mapped,
        straddling_access_aborts,
        bad_arguments_are_refused,
    ];

    /// The w registers of an SMC32 call's results (their upper halves are not part of them).
    fn w(regs: &[u64]) -> [u32; 4] {
        [
            regs[0] as u32,
            regs[1] as u32,
            regs[2] as u32,
            regs[3] as u32,
        ]
    }

    fn discovery_matches_what_is_served(_env: &Env) -> TestResult {
        let uid = hvc(kvm::VENDOR_HYP_CALL_UID, &[]);
        let kvm_uid = kvm::UID_REGS.map(|reg| reg as u32);
        ensure!(
            w(&uid) == kvm_uid,
            "vendor hypervisor UID {:x?}, expected KVM's {kvm_uid:x?}",
            w(&uid)
        );
        let features = w(&hvc(kvm::FEATURES, &[]));
        ensure!(
            features == [KVM_FEATURES_SERVED as u32, 0, 0, 0],
            "KVM features {features:#x?}, expected [{KVM_FEATURES_SERVED:#x}, 0, 0, 0]"
        );
        ensure_eq!(info(0), GRANULE as i64);
        ensure_eq!(hyp_meminfo(0), GRANULE as i64);
        Ok(())
    }

    fn console_works_before_enroll(env: &Env) -> TestResult {
        ensure!(
            env.console_pl011() == Some(UART as usize),
            "the DTB's console is at {:x?}, expected {UART:#x}",
            env.console_pl011()
        );
        console_works("before ENROLL")
    }

    fn enroll_then_console_aborts_until_mapped(_env: &Env) -> TestResult {
        restoring_console(|| {
            ensure_eq!(enroll(), 0);
            console_aborts("enrolled, console not mapped")?;
            ensure_eq!(map(UART), 0);
            console_works("after MAP")?;
            ensure_eq!(unmap(UART), 0);
            console_aborts("after UNMAP")?;
            // `restoring_console` maps it again (and checks that it works).
            Ok(())
        })
    }

    /// Bytes 0..16, for a misaligned load from RAM.
    #[repr(C, align(16))]
    struct Pattern([u8; 16]);
    static PATTERN: Pattern = Pattern([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

    /// One 8-byte load (`LDR Xt`) from `address`, aligned or not: a single access, so that
    /// a fault reports it whole.
    ///
    /// # Safety
    ///
    /// `address` must be readable for 8 bytes, or the load must fault (and the fault be
    /// expected); with the MMU off (Device memory) it must be 8-byte aligned.
    unsafe fn load_u64(address: u64) -> u64 {
        let value: u64;
        // SAFETY: The caller's contract; the load has no other effect.
        unsafe {
            asm!(
                "ldr {value}, [{address}]",
                value = out(reg) value,
                address = in(reg) address,
                options(nostack, readonly, preserves_flags),
            )
        };
        value
    }

    fn straddling_access_aborts(_env: &Env) -> TestResult {
        restoring_console(|| {
            // The console granule mapped, the next one (nothing there) not.
            ensure_eq!(map(UART), 0);
            ensure_eq!(unmap(UART + GRANULE), 0);
            console_works("before the MMU is turned on")?;
            let straddle = UART + GRANULE - 4;
            let misaligned_ram = PATTERN.0.as_ptr() as u64 + 1;
            let probe = || {
                let console = read_fr();
                // SAFETY: PATTERN's bytes 1..9, readable; with the MMU on they are Normal
                // memory, which takes the misaligned load.
                let ram = catch_exception(|| unsafe { load_u64(misaligned_ram) });
                // SAFETY: Expected to abort (and then skipped): its first byte is in the mapped
                // console granule, its last one in the unmapped granule after it.
                let taken = expect_exception(|| unsafe { load_u64(straddle) });
                (console, ram, taken)
            };
            // SAFETY: `probe` touches only the emulated console (no read side effects, and
            // nothing real behind it) and the guest's own RAM, all below 2 GiB, and leaves the
            // translation registers alone.
            let (console, ram, taken) = unsafe { hv_guest_rt::with_identity_mmu(probe) };
            ensure!(!hv_guest_rt::mmu_enabled(), "the MMU is still on");
            match console {
                Ok(FR_IDLE) => {}
                Ok(value) => fail!("MMU on: UARTFR reads {value:#x}, expected {FR_IDLE:#x}"),
                Err(taken) => fail!("MMU on: UARTFR read aborted: {taken}"),
            }
            match ram {
                Ok(value) => ensure_eq!(
                    value,
                    u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
                    "MMU on: misaligned load from RAM read {value:#x}"
                ),
                Err(taken) => fail!("MMU on: misaligned load from RAM faulted: {taken}"),
            }
            check_external_abort(
                "8-byte load straddling the granules",
                straddle,
                false,
                taken,
            )?;
            console_works("after the MMU is turned off")
        })
    }

    fn bad_arguments_are_refused(_env: &Env) -> TestResult {
        const MISALIGNED: u64 = UART + 4;
        /// The guest's own image: RAM, never MMIO.
        const RAM: u64 = 0x4200_0000;
        restoring_console(|| {
            ensure_eq!(map(UART), 0);
            type Call = fn() -> i64;
            let calls: [(&str, Call); 5] = [
                ("MAP of a misaligned IPA", || map(MISALIGNED)),
                ("UNMAP of a misaligned IPA", || unmap(MISALIGNED)),
                ("MAP of an IPA in RAM", || map(RAM)),
                ("MMIO_GUARD_INFO with x1 = 1", || info(1)),
                ("HYP_MEMINFO with x1 = 1", || hyp_meminfo(1)),
            ];
            for (what, call) in calls {
                let x0 = call();
                ensure!(
                    x0 == INVALID_PARAMETER,
                    "{what}: {x0}, expected INVALID_PARAMETER ({INVALID_PARAMETER})"
                );
                // The failed call changed nothing: the console is still mapped.
                console_works(what)?;
            }
            Ok(())
        })
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
