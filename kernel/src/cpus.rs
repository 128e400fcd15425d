//! The physical CPUs the kernel runs on: their MPIDRs (the boot CPU is index 0) and what each
//! secondary does when it arrives at the kernel's entry point.

use crate::arch::{self, spin_table::SpinTableError};
use core::sync::atomic::{AtomicU64, Ordering};
use hv_ipc::guest_abi::psci;
use hv_kernel::trap_stats::MAX_CPUS;

/// MPIDR of each CPU index; `u64::MAX` marks an absent CPU.
static MPIDRS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Where each secondary enters the host VM, and its x0 (from the host's PSCI CPU_ON).
static HOST_ENTRY: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static HOST_CONTEXT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Records the CPUs: the boot CPU's MPIDR first, then the others in firmware order.
/// Returns how many were recorded (extra CPUs beyond [`MAX_CPUS`] are left offline).
pub fn record(boot_mpidr: u64, firmware_order: impl Iterator<Item = u64>) -> usize {
    MPIDRS[0].store(boot_mpidr, Ordering::Relaxed);
    let mut count = 1;
    for mpidr in firmware_order.filter(|&mpidr| mpidr != boot_mpidr) {
        if count == MAX_CPUS {
            break;
        }
        MPIDRS[count].store(mpidr, Ordering::Relaxed);
        count += 1;
    }
    count
}

/// The index of the CPU with this MPIDR.
pub fn index_of(mpidr: u64) -> Option<usize> {
    let mpidr = mpidr & 0xff_00ff_ffff;
    MPIDRS
        .iter()
        .position(|slot| slot.load(Ordering::Relaxed) == mpidr)
}

/// Sets where CPU `index` enters the host when it starts.
pub fn set_host_entry(index: usize, entry: u64, context: u64) {
    HOST_ENTRY[index].store(entry, Ordering::Relaxed);
    HOST_CONTEXT[index].store(context, Ordering::Release);
}

/// Where CPU `index` enters the host, and its x0.
pub fn host_entry(index: usize) -> (u64, u64) {
    let context = HOST_CONTEXT[index].load(Ordering::Acquire);
    (HOST_ENTRY[index].load(Ordering::Relaxed), context)
}

/// The MPIDR of CPU `index`, if the machine has it.
pub fn mpidr_of(index: usize) -> Option<u64> {
    let mpidr = MPIDRS.get(index)?.load(Ordering::Relaxed);
    (mpidr != u64::MAX).then_some(mpidr)
}

/// Powers CPU `index` on at the kernel's secondary entry (which then runs whatever that CPU
/// was set up for: a host vCPU or a guest's). Returns the PSCI status.
///
/// With PSCI firmware the kernel forwards a CPU_ON for its own entry point. On a spin-table
/// board (the Pi) the kernel plays the firmware's part: it releases the CPU from the spin table
/// once and answers ALREADY_ON after that.
pub fn power_on(index: usize) -> u64 {
    let Some(mpidr) = mpidr_of(index) else {
        return psci_status(psci::error::INVALID_PARAMETERS);
    };
    match hv_board::CURRENT.secondary_start {
        hv_board::SecondaryStart::PsciSmc => arch::firmware_psci([
            psci::PSCI_CPU_ON_64 as u64,
            mpidr,
            arch::secondary_entry_address(),
            index as u64,
        ]),
        hv_board::SecondaryStart::SpinTable => match arch::spin_table::claim(index, mpidr) {
            Ok(claimed) => {
                arch::spin_table::release(claimed);
                psci_status(psci::error::SUCCESS)
            }
            Err(SpinTableError::UnknownCpu) => psci_status(psci::error::INVALID_PARAMETERS),
            Err(SpinTableError::AlreadyStarted) => psci_status(psci::error::ALREADY_ON),
            Err(SpinTableError::IndexIsNotAff0) => {
                defmt::error!(
                    "cpu mpidr {=u64:#x} has index {=usize}: the spin-table entry needs index = Aff0",
                    mpidr,
                    index
                );
                psci_status(psci::error::INTERNAL_FAILURE)
            }
        },
    }
}

/// Powers this CPU off through the firmware; on a board without PSCI firmware (or if the
/// firmware refuses) it parks instead. Never returns.
pub fn power_off_this_cpu() -> ! {
    arch::firmware_psci([psci::PSCI_CPU_OFF as u64, 0, 0, 0]);
    arch::park()
}

/// A PSCI status code as the register value the caller receives.
pub const fn psci_status(code: i64) -> u64 {
    code as u64
}
