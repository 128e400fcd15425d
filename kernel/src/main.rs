//! The EL2 kernel binary: entry points, trap dispatch and the end of a run.
//!
//! Built for `aarch64-unknown-none-softfloat` by `cargo xtask build`; the soft-float target keeps
//! the compiler away from FP/SIMD registers, so the guest's never need saving on a trap. The
//! portable logic lives in the `hv_kernel` library next to this file; on the host this binary
//! is empty.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod arch {
    //! The architecture seam: the kernel supports AArch64 only.
    mod aarch64;
    pub use aarch64::*;
}
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod components;
#[cfg(target_os = "none")]
mod control;
#[cfg(target_os = "none")]
mod cpus;
#[cfg(target_os = "none")]
mod guests;
#[cfg(target_os = "none")]
mod interrupts;
#[cfg(target_os = "none")]
mod log;
#[cfg(target_os = "none")]
mod traps;

#[cfg(target_os = "none")]
mod runtime {
    //! Entry points called from `entry.S`, the end of a run and the panic path.
    use crate::{arch, boot, components, log, traps};
    use hv_abi::ExitStatus;

    #[unsafe(no_mangle)]
    extern "C" fn boot_cpu_main(firmware_dtb: usize) -> ! {
        boot::boot_cpu(firmware_dtb)
    }

    #[unsafe(no_mangle)]
    extern "C" fn secondary_cpu_main(index: usize) -> ! {
        boot::secondary_cpu(index)
    }

    /// Called by entry.S for an exception taken at EL2: a kernel bug. Reports and stops.
    #[unsafe(no_mangle)]
    extern "C" fn handle_el2_fault(frame: &arch::GuestFrame, kind: u64) -> ! {
        let (esr, far, _) = arch::trap_registers();
        defmt::error!(
            "EL2 exception kind {=u64} on cpu{=usize}: ESR {=u64:#x} FAR {=u64:#x} ELR {=u64:#x}",
            kind,
            arch::cpu_index(),
            esr,
            far,
            frame.elr
        );
        end_run(ExitStatus::HypervisorFault)
    }

    /// Ends the run with `status`: reports the trap counters, then stops the machine (through
    /// semihosting on QEMU; on boards without it, by parking every CPU that reaches here).
    pub fn end_run(status: ExitStatus) -> ! {
        if !log::is_busy() {
            traps::report_counters();
            components::report();
            defmt::info!("run ends: {=str}", status.describe());
        }
        match hv_board::CURRENT.log_sink {
            hv_board::LogSink::Semihosting => arch::semihosting::exit(status as u32),
            hv_board::LogSink::MiniUart { .. } => arch::park(),
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        if !log::is_busy() {
            defmt::error!(
                "panic on cpu{=usize}: {}",
                arch::cpu_index(),
                defmt::Display2Format(info)
            );
        }
        end_run(ExitStatus::HypervisorPanic)
    }
}

#[cfg(target_os = "none")]
use runtime::end_run;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hv-kernel runs at EL2 on aarch64; build it with `cargo xtask build`.");
}
