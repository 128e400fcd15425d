//! The physical CPUs the kernel runs on: their MPIDRs (the boot CPU is index 0) and what each
//! secondary does when it arrives at the kernel's entry point.

use core::sync::atomic::{AtomicU64, Ordering};
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
