//! Starting secondary CPUs that the firmware parks on a spin table (the Raspberry Pi 4's stock
//! armstub, which has no PSCI).
//!
//! Protocol (Linux `Documentation/arch/arm64/booting.rst`, "spin-table"; the Pi firmware's
//! `armstub8.S`): each secondary core waits in WFE, rereading the 64-bit release address of its
//! MPIDR_EL1.Aff0 (`cpu-release-addr` in the DT; 0xd8, 0xe0, 0xe8, 0xf0 on the Pi) with its
//! MMU and caches off; once it reads a non-zero value it branches there at EL2 with x0..x3 = 0.
//! To start one, the kernel writes the physical address of `spin_table_entry` (entry.S),
//! cleans the line to the point of coherency so the waiting core's uncached read sees it, and
//! executes DSB and SEV. `spin_table_entry` takes the CPU index from Aff0, so only a CPU whose
//! index is its Aff0 can start this way (on the Pi the boot core is Aff0 0 and the others
//! follow in order). A core leaves the spin table once; nothing hands it back.

use super::{clean_dcache_to_poc, spin_table_entry_address};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use hv_kernel::trap_stats::MAX_CPUS;

// The entry path indexes per-CPU stacks by Aff0.
const _: () = assert!(hv_board::CURRENT.release_addresses.len() <= MAX_CPUS);

/// Which CPUs have been released (index 0, the boot CPU, never waits on the table).
static RELEASED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Why a CPU cannot be started from the spin table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpinTableError {
    /// The board has no release address for this MPIDR.
    UnknownCpu,
    /// The CPU's kernel index is not its Aff0, which `spin_table_entry` would assume.
    IndexIsNotAff0,
    /// The CPU already left the spin table (or is the boot CPU).
    AlreadyStarted,
}

/// A CPU this caller alone may release: its release address is the board's, and nobody has
/// released it before.
#[derive(Debug)]
pub struct Claimed {
    release_address: u64,
}

/// Claims the CPU at kernel index `index` with MPIDR `mpidr` for starting. Set up what it will
/// need (its host entry point) before [`release`]: it may run as soon as that returns.
pub fn claim(index: usize, mpidr: u64) -> Result<Claimed, SpinTableError> {
    let release_address = hv_board::CURRENT
        .release_address(mpidr)
        .ok_or(SpinTableError::UnknownCpu)?;
    if (mpidr & 0xff) as usize != index || index >= MAX_CPUS {
        return Err(SpinTableError::IndexIsNotAff0);
    }
    if index == 0 || RELEASED[index].swap(true, Ordering::AcqRel) {
        return Err(SpinTableError::AlreadyStarted);
    }
    Ok(Claimed { release_address })
}

/// True if the CPU at kernel index `index` runs: the boot CPU, or one released from the table
/// (a core never returns to the table, so this only ever turns true).
pub fn is_started(index: usize) -> bool {
    index == 0
        || RELEASED
            .get(index)
            .is_some_and(|released| released.load(Ordering::Acquire))
}

/// Sends the claimed CPU to `spin_table_entry`.
pub fn release(cpu: Claimed) {
    let entry = spin_table_entry_address();
    // SAFETY: the address is one of the board's release addresses (Claimed comes only from
    // `claim`): an aligned u64 in RAM below the image, inside the hypervisor's region (so no
    // guest maps it), identity-mapped by the EL2 map, and read only by the firmware's spin loop.
    unsafe { core::ptr::write_volatile(cpu.release_address as *mut u64, entry) };
    // Ends with DSB SY, so the write has reached memory before the event.
    clean_dcache_to_poc(cpu.release_address, 8);
    // SAFETY: SEV only wakes CPUs waiting in WFE.
    unsafe { asm!("sev", options(nomem, nostack)) };
}
