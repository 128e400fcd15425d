//! Interrupts on the CPUs that run guest vCPUs: the physical interrupts the kernel takes there
//! and the virtual interrupts it delivers through the list registers
//! ([`hv_kernel::virq`] decides what goes where; `arch::gic` touches the GIC).
//!
//! Mechanism only. The VM manager emulates each guest's distributor and decides which
//! interrupt is pending on which vCPU, with what priority and group: it hands the kernel an
//! interrupt to deliver ([`inject`], kernel operation VIRQ_INJECT) and tells it how the guest
//! configured its virtual timer's PPI ([`configure_timer`], VIRQ_TIMER). The kernel forwards
//! the one interrupt a guest's hardware raises itself, its virtual timer, and keeps a vCPU's
//! waiting interrupts until they fit in its list registers.
//!
//! vCPUs are pinned, so a CPU's list registers and virtual CPU interface belong to one vCPU for
//! as long as it is on; they are reset when it starts (at the VM's start and reset, and PSCI
//! CPU_ON) rather than saved and restored. Components that run on a guest CPU run with
//! HCR_EL2.IMO clear and interrupts masked: an interrupt that comes meanwhile is taken when
//! the vCPU resumes.

use crate::arch::gic;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hv_ipc::abi::SyscallError;
use hv_kernel::trap_stats::MAX_CPUS;
use hv_kernel::virq::{self, VirtualIrq, Waiting};

/// The guest's view of its virtual timer's PPI: enabled (bit 40), and priority and group
/// packed as [`VirtualIrq::pack`] does. Zero: disabled, as a PPI is at reset.
const TIMER_ENABLED: u64 = hv_ipc::abi::kernel_op_args::TIMER_ENABLED;

/// One guest CPU's virtual interrupts.
struct CpuInterrupts {
    /// What waits for its list registers.
    waiting: spin::Mutex<Waiting>,
    /// The timer's configuration as the VM manager last set it.
    timer: AtomicU64,
    /// The timer's configuration as this CPU's GIC has it (touched by this CPU only).
    timer_applied: AtomicU64,
    /// List registers this CPU has (0: it runs no guest vCPU, or there is no GIC).
    list_registers: AtomicU64,
}

/// Per CPU: something waits for its vCPU, or its timer's configuration changed, so look before
/// resuming the vCPU. Kept apart from [`CpuInterrupts`] so that every other exit costs one byte
/// load (the trap path's hot loop runs through here on each exit).
static LOOK: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

static CPUS: [CpuInterrupts; MAX_CPUS] = [const {
    CpuInterrupts {
        waiting: spin::Mutex::new(Waiting::new()),
        timer: AtomicU64::new(0),
        timer_applied: AtomicU64::new(0),
        list_registers: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// How many virtual interrupts were written into list registers, for the run's report.
static DELIVERED: AtomicU64 = AtomicU64::new(0);

fn board_timer() -> u32 {
    hv_board::CURRENT.timer.virt
}

fn board_maintenance() -> Option<u32> {
    hv_board::CURRENT
        .gics
        .first()
        .map(|gic| gic.maintenance_interrupt)
}

/// Readies CPU `index` to run a guest vCPU from its first instruction: its GIC state, an empty
/// virtual interface, nothing waiting and the timer disabled (as after a reset).
pub fn start_vcpu(index: usize) {
    let Some(maintenance) = board_maintenance() else {
        return;
    };
    let cpu = &CPUS[index];
    let count = gic::set_up_guest_cpu(index, maintenance, board_timer());
    cpu.list_registers.store(count as u64, Ordering::Relaxed);
    cpu.timer_applied.store(0, Ordering::Relaxed);
    let waits = !cpu.waiting.lock().is_empty();
    let timer_on = cpu.timer.load(Ordering::Relaxed) != 0;
    LOOK[index].store(waits || timer_on, Ordering::Relaxed);
}

/// Forgets what waits for CPU `index`'s vCPU and the guest's timer configuration (its VM is
/// reset: the VM manager's distributor starts afresh too).
pub fn forget(index: usize) {
    let cpu = &CPUS[index];
    cpu.waiting.lock().clear();
    cpu.timer.store(0, Ordering::Relaxed);
}

/// VIRQ_INJECT: makes `irq` pending on the vCPU pinned to CPU `target`; `here` is the calling
/// CPU. Another CPU is kicked so it fills its list registers now.
pub fn inject(here: usize, target: usize, irq: VirtualIrq) -> Result<(), SyscallError> {
    if irq.intid >= virq::MAX_INTID || irq.intid == board_timer() {
        // The timer is the kernel's to forward.
        return Err(SyscallError::BadArgument);
    }
    let cpu = CPUS.get(target).ok_or(SyscallError::BadArgument)?;
    cpu.waiting
        .lock()
        .add(irq)
        .map_err(|virq::Full| SyscallError::BadArgument)?;
    LOOK[target].store(true, Ordering::Release);
    if target != here {
        gic::kick(target);
    }
    Ok(())
}

/// VIRQ_TIMER: the guest enabled (with this priority and group) or disabled its virtual
/// timer's PPI on the vCPU pinned to CPU `target`.
pub fn configure_timer(here: usize, target: usize, enabled: bool, priority: u8, group1: bool) {
    let Some(cpu) = CPUS.get(target) else { return };
    let configuration = if enabled {
        TIMER_ENABLED
            | VirtualIrq {
                intid: board_timer(),
                priority,
                group1,
                hardware: None,
                source: 0,
            }
            .pack()
    } else {
        0
    };
    cpu.timer.store(configuration, Ordering::Relaxed);
    LOOK[target].store(true, Ordering::Release);
    if target != here {
        gic::kick(target);
    }
}

/// A physical interrupt taken from the guest vCPU on CPU `index`.
pub fn take_physical(index: usize) {
    let iar = gic::acknowledge();
    let intid = iar & 0x3ff;
    if intid >= gic::FIRST_SPECIAL_INTID {
        return;
    }
    gic::drop_priority(iar);
    let cpu = &CPUS[index];
    if intid == board_timer() {
        let timer = cpu.timer_applied.load(Ordering::Relaxed);
        match VirtualIrq::unpack(timer & !TIMER_ENABLED) {
            Some(irq) if timer & TIMER_ENABLED != 0 => {
                // Stays active until the guest deactivates its virtual twin: the timer cannot
                // interrupt again before the guest has handled it.
                let forwarded = VirtualIrq {
                    hardware: Some(intid),
                    ..irq
                };
                if cpu.waiting.lock().add(forwarded).is_ok() {
                    LOOK[index].store(true, Ordering::Relaxed);
                    return;
                }
                gic::deactivate(iar);
            }
            _ => {
                // Disabled by the guest since: masked until it enables it again.
                gic::set_ppi_enabled(intid, false);
                gic::deactivate(iar);
            }
        }
        return;
    }
    // The kick and the maintenance interrupt only make the CPU look at what waits, which it
    // does before resuming the vCPU; anything else is not the guest's.
    gic::deactivate(iar);
    LOOK[index].store(true, Ordering::Relaxed);
}

/// Before CPU `index` resumes its guest vCPU: applies the timer's configuration if it changed,
/// then fills the list registers with what waits.
#[inline(always)]
pub fn before_resuming_vcpu(index: usize) {
    if LOOK
        .get(index)
        .is_some_and(|look| look.load(Ordering::Acquire))
    {
        fill(index);
    }
}

#[inline(never)]
fn fill(index: usize) {
    let cpu = &CPUS[index];
    LOOK[index].store(false, Ordering::Relaxed);
    let count = cpu.list_registers.load(Ordering::Relaxed) as usize;
    if count == 0 {
        return;
    }
    let timer = cpu.timer.load(Ordering::Relaxed);
    if timer != cpu.timer_applied.swap(timer, Ordering::Relaxed) {
        gic::set_ppi_enabled(board_timer(), timer & TIMER_ENABLED != 0);
    }
    let mut waiting = cpu.waiting.lock();
    if waiting.is_empty() {
        gic::set_underflow_interrupt(false);
        return;
    }
    let filled = virq::fill(&mut waiting, &mut gic::HardwareListRegisters { count });
    DELIVERED.fetch_add(filled.written as u64, Ordering::Relaxed);
    gic::set_underflow_interrupt(filled.still_waiting != 0);
}

/// Virtual interrupts written into list registers so far.
pub fn delivered() -> u64 {
    DELIVERED.load(Ordering::Relaxed)
}
