//! What the MMIO guard test guests (`hv-guest-mmio-guard`, `hv-guest-mmio-enforced`) share: the
//! emulated console's addresses, the MMIO guard calls, and the checks.
//!
//! Both guests run as the host VM with `uart0` (QEMU virt's PL011 at 0x0900_0000, also their
//! console) emulated by the VM manager and guarded by the mmio-guard component. Once a VM is
//! enrolled, a console access outside MAPped granules takes an external abort, so **a guest
//! must not print while its console is unmapped**: the harness prints between cases, so every
//! case that may leave the console unmapped runs inside [`restoring_console`].

#![cfg_attr(target_os = "none", no_std)]
#![deny(clippy::undocumented_unsafe_blocks)]

/// The emulated console, QEMU virt's PL011 (one 4 KiB granule).
pub const UART: u64 = 0x0900_0000;
/// Its flag register, `UARTFR`.
pub const UARTFR: u64 = UART + 0x18;
/// What the emulated `UARTFR` reads: TXFE | RXFE.
pub const FR_IDLE: u32 = 0x90;
/// The MMIO guard's granule (what MMIO_GUARD_INFO and HYP_MEMINFO report).
pub const GRANULE: u64 = 4096;
/// The KVM FEATURES bitmap (x0) of a system with an MMIO guard: FEATURES, HYP_MEMINFO and
/// MMIO_GUARD_INFO / ENROLL / MAP / UNMAP.
pub const KVM_FEATURES_SERVED: u64 =
    (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
/// The x2 passed to MMIO_GUARD_MAP (a MAIR index in the call's definition; ignored).
pub const MAP_ATTRIBUTES: u64 = 1;

#[cfg(target_os = "none")]
pub use guest::*;

#[cfg(target_os = "none")]
mod guest {
    use hv_guest_rt::exception::{FSC_SYNC_EXTERNAL_ABORT, ec};
    use hv_guest_rt::smccc::{hvc, kvm};
    use hv_guest_rt::{TakenException, TestResult, catch_exception, ensure, fail};

    use super::{FR_IDLE, MAP_ATTRIBUTES, UART, UARTFR};

    /// x0 of a vendor-hypervisor call, signed.
    fn call(function: u32, args: &[u64]) -> i64 {
        hvc(function, args)[0] as i64
    }

    /// MMIO_GUARD_ENROLL.
    pub fn enroll() -> i64 {
        call(kvm::MMIO_GUARD_ENROLL, &[])
    }

    /// MMIO_GUARD_MAP of the granule at `ipa` (x2 = [`MAP_ATTRIBUTES`]).
    pub fn map(ipa: u64) -> i64 {
        call(kvm::MMIO_GUARD_MAP, &[ipa, MAP_ATTRIBUTES])
    }

    /// MMIO_GUARD_UNMAP of the granule at `ipa`.
    pub fn unmap(ipa: u64) -> i64 {
        call(kvm::MMIO_GUARD_UNMAP, &[ipa])
    }

    /// MMIO_GUARD_INFO with `x1` (0 is the valid call).
    pub fn info(x1: u64) -> i64 {
        call(kvm::MMIO_GUARD_INFO, &[x1])
    }

    /// HYP_MEMINFO with `x1` (0 is the valid call).
    pub fn hyp_meminfo(x1: u64) -> i64 {
        call(kvm::HYP_MEMINFO, &[x1])
    }

    /// Reads the console's `UARTFR` with an exception expected or not: the value, or the
    /// exception. Prints nothing.
    pub fn read_fr() -> Result<u32, TakenException> {
        // SAFETY: UARTFR is an aligned 32-bit register of the (emulated) PL011; reading it has
        // no side effects on memory. An abort is caught, and the load is then skipped. It is
        // read twice: the first read may still show the transmitter busy with what the test
        // runtime just printed (the emulated FIFO drains by the guest's next access, see
        // docs/guest-abi.md), the second shows it idle.
        // One exception per `catch_exception`: an abort on the first read ends it there.
        catch_exception(|| unsafe { core::ptr::read_volatile(UARTFR as *const u32) })?;
        // SAFETY: as above.
        catch_exception(|| unsafe { core::ptr::read_volatile(UARTFR as *const u32) })
    }

    /// Checks that `taken` is the synchronous external abort (EC 0x25, DFSC 0x10) a read
    /// (`write` false) or write of `address` must cause. Prints nothing.
    pub fn check_external_abort(
        what: &str,
        address: u64,
        write: bool,
        taken: Option<TakenException>,
    ) -> TestResult {
        let Some(taken) = taken else {
            fail!("{what}: {address:#x} did not abort");
        };
        ensure!(
            taken.ec() == ec::DATA_ABORT_SAME_EL,
            "{what}: EC {:#x}, expected {:#x}: {taken}",
            taken.ec(),
            ec::DATA_ABORT_SAME_EL
        );
        ensure!(
            taken.fsc() == FSC_SYNC_EXTERNAL_ABORT,
            "{what}: DFSC {:#x}, expected {:#x} (external abort): {taken}",
            taken.fsc(),
            FSC_SYNC_EXTERNAL_ABORT
        );
        ensure!(
            taken.far == address,
            "{what}: FAR {:#x}, expected {address:#x}: {taken}",
            taken.far
        );
        ensure!(taken.is_write() == write, "{what}: wrong WnR: {taken}");
        Ok(())
    }

    /// Fails unless reading `UARTFR` (twice, see [`read_fr`]) returns [`FR_IDLE`] without an
    /// exception.
    pub fn console_works(when: &str) -> TestResult {
        match read_fr() {
            Ok(FR_IDLE) => Ok(()),
            Ok(value) => fail!("{when}: UARTFR reads {value:#x}, expected {FR_IDLE:#x}"),
            Err(taken) => fail!("{when}: UARTFR read aborted: {taken}"),
        }
    }

    /// Fails unless reading `UARTFR` now takes the external abort of an unmapped granule.
    pub fn console_aborts(when: &str) -> TestResult {
        match read_fr() {
            Ok(value) => fail!("{when}: UARTFR read {value:#x} instead of aborting"),
            Err(taken) => check_external_abort(when, UARTFR, false, Some(taken)),
        }
    }

    /// Runs `case`, which may leave the console unmapped, then MAPs the console again so the
    /// harness can print, and returns `case`'s result.
    ///
    /// If that MAP fails or the console still aborts, nothing can be printed any more (the
    /// harness's next line would be an unexpected abort): the run ends at once as a failure
    /// (PSCI `SYSTEM_RESET`), silently.
    ///
    /// Only for cases after enrolment: a MAP before ENROLL takes effect when the VM enrols.
    pub fn restoring_console(case: impl FnOnce() -> TestResult) -> TestResult {
        let result = case();
        if map(UART) != 0 || read_fr().is_err() {
            hv_guest_rt::psci::system_reset();
        }
        result
    }
}
