//! What the kernel does when a guest traps to EL2: decode, count, act, resume.
//!
//! Calls (HVC, trapped SMC) go through [`hv_kernel::smccc`]; stage-2 faults on memory the
//! guest's stage 2 does not map are answered by injecting a synchronous external abort, so the
//! guest's own exception handling runs and the hypervisor never stops for what a guest touched.
//! Anything else a guest cannot do becomes an UNDEFINED instruction exception in the guest.

use crate::arch::{self, GuestFrame};
use crate::cpus;
use hv_abi::ExitStatus;
use hv_kernel::esr::{Syndrome, Trap};
use hv_kernel::inject::{self, AbortKind, InjectedException};
use hv_kernel::smccc::{self, CallAction};
use hv_kernel::trap_stats::{TrapClass, TrapCounters};

/// Trap counts of the whole run, reported when it ends.
pub static COUNTERS: TrapCounters = TrapCounters::new();

/// Exception kinds as the vectors in entry.S number them.
const KIND_SYNC: u64 = 0;
const KIND_AARCH32: u64 = 4;

/// Called by entry.S for every exception from a guest; returns to resume it from `frame`.
#[unsafe(no_mangle)]
extern "C" fn handle_guest_exit(frame: &mut GuestFrame, kind: u64) {
    let cpu = arch::cpu_index();
    if kind == KIND_AARCH32 {
        defmt::error!(
            "cpu{=usize}: AArch32 guest state, which is not supported",
            cpu
        );
        crate::end_run(ExitStatus::HypervisorFault);
    }
    if kind != KIND_SYNC {
        // With IMO/FMO/AMO clear, interrupts go to EL1; one here is spurious. Count it.
        COUNTERS.record(cpu, TrapClass::Interrupt);
        return;
    }
    let (esr, far, ipa) = arch::trap_registers();
    let trap = Syndrome(esr).decode();
    COUNTERS.record(cpu, class_of(&trap));
    match trap {
        Trap::Hvc { .. } => host_call(frame, cpu),
        Trap::Smc { .. } => {
            // A trapped SMC returns to the SMC itself; the call is done once answered.
            frame.elr += 4;
            host_call(frame, cpu);
        }
        Trap::DataAbort(abort) => {
            defmt::warn!(
                "cpu{=usize}: guest {=str} at unmapped IPA {=u64:#x} (va {=u64:#x}, pc {=u64:#x}): external abort injected",
                cpu,
                if abort.write { "write" } else { "read" },
                ipa | (far & 0xfff),
                far,
                frame.elr
            );
            inject_into(
                frame,
                inject::external_abort(
                    AbortKind::Data { write: abort.write },
                    far,
                    frame.elr,
                    frame.spsr,
                    arch::guest_vbar(),
                ),
            );
        }
        Trap::InstructionAbort(_) => {
            defmt::warn!(
                "cpu{=usize}: guest fetch at unmapped IPA {=u64:#x}: external abort injected",
                cpu,
                ipa | (far & 0xfff)
            );
            inject_into(
                frame,
                inject::external_abort(
                    AbortKind::Instruction,
                    far,
                    frame.elr,
                    frame.spsr,
                    arch::guest_vbar(),
                ),
            );
        }
        Trap::SysReg(_) | Trap::Wfx { .. } | Trap::Other { .. } => {
            defmt::warn!(
                "cpu{=usize}: unexpected trap (ESR {=u64:#x}) at pc {=u64:#x}: undefined instruction injected",
                cpu,
                esr,
                frame.elr
            );
            inject_into(
                frame,
                inject::undefined_instruction(frame.elr, frame.spsr, arch::guest_vbar()),
            );
        }
    }
}

fn class_of(trap: &Trap) -> TrapClass {
    match trap {
        Trap::Hvc { .. } => TrapClass::Hvc,
        Trap::Smc { .. } => TrapClass::Smc,
        Trap::DataAbort(_) => TrapClass::DataAbort,
        Trap::InstructionAbort(_) => TrapClass::InstructionAbort,
        Trap::SysReg(_) => TrapClass::SysReg,
        Trap::Wfx { .. } => TrapClass::Wfx,
        Trap::Other { .. } => TrapClass::Other,
    }
}

fn inject_into(frame: &mut GuestFrame, injected: Result<InjectedException, inject::InjectError>) {
    match injected {
        Ok(injected) => {
            arch::write_guest_exception(&injected);
            frame.elr = injected.pc;
            frame.spsr = injected.pstate;
        }
        Err(error) => {
            defmt::error!(
                "cannot inject into the guest: {}",
                defmt::Debug2Format(&error)
            );
            crate::end_run(ExitStatus::HypervisorFault);
        }
    }
}

fn set_return(frame: &mut GuestFrame, values: [u64; 4]) {
    frame.x[..4].copy_from_slice(&values);
}

/// Answers an SMCCC call from the host VM.
fn host_call(frame: &mut GuestFrame, cpu: usize) {
    let regs = [frame.x[0], frame.x[1], frame.x[2], frame.x[3]];
    match smccc::decide(regs) {
        CallAction::Return(values) => set_return(frame, values),
        CallAction::CpuOn {
            target_mpidr,
            entry,
            context,
        } => {
            let result = start_cpu(target_mpidr, entry, context);
            defmt::info!(
                "cpu{=usize}: PSCI CPU_ON mpidr {=u64:#x} entry {=u64:#x} -> {=i64}",
                cpu,
                target_mpidr,
                entry,
                result as i64
            );
            set_return(frame, [result, 0, 0, 0]);
        }
        CallAction::CpuOff => {
            defmt::info!("cpu{=usize}: PSCI CPU_OFF", cpu);
            let result = arch::firmware_psci([regs[0], 0, 0, 0]);
            // Only returns if the firmware refused.
            set_return(frame, [result, 0, 0, 0]);
        }
        CallAction::AffinityInfo {
            target_mpidr,
            lowest_level,
        } => {
            let result = arch::firmware_psci([regs[0], target_mpidr, lowest_level, 0]);
            set_return(frame, [result, 0, 0, 0]);
        }
        CallAction::Suspend => {
            arch::wait_for_interrupt();
            set_return(frame, [0, 0, 0, 0]);
        }
        CallAction::SystemOff => {
            defmt::info!("cpu{=usize}: PSCI SYSTEM_OFF", cpu);
            crate::end_run(ExitStatus::PoweredOff);
        }
        CallAction::SystemReset => {
            defmt::info!("cpu{=usize}: PSCI SYSTEM_RESET", cpu);
            crate::end_run(ExitStatus::Reset);
        }
    }
}

/// Starts the CPU `target_mpidr` at the kernel's secondary entry, which then enters the host
/// at `entry` with x0 = `context`. Returns the PSCI status for the caller.
fn start_cpu(target_mpidr: u64, entry: u64, context: u64) -> u64 {
    let Some(index) = cpus::index_of(target_mpidr) else {
        return smccc::INVALID_PARAMETERS;
    };
    match hv_board::CURRENT.secondary_start {
        hv_board::SecondaryStart::PsciSmc => {
            cpus::set_host_entry(index, entry, context);
            let cpu_on = smccc::psci::PSCI_CPU_ON_64 as u64;
            arch::firmware_psci([
                cpu_on,
                target_mpidr,
                arch::secondary_entry_address(),
                index as u64,
            ])
        }
        // The spin-table path arrives with the Raspberry Pi 4 board support.
        hv_board::SecondaryStart::SpinTable => smccc::NOT_SUPPORTED,
    }
}

/// Reports the non-zero trap counters (the benchmark parses these lines).
pub fn report_counters() {
    for cpu in 0..hv_kernel::trap_stats::MAX_CPUS {
        let total: u64 = TrapClass::ALL
            .iter()
            .map(|&class| COUNTERS.get(cpu, class))
            .sum();
        if total == 0 {
            continue;
        }
        for class in TrapClass::ALL
            .into_iter()
            .filter(|&class| COUNTERS.get(cpu, class) != 0)
        {
            defmt::info!(
                "trap-count cpu={=usize} class={=str} count={=u64}",
                cpu,
                class.name(),
                COUNTERS.get(cpu, class)
            );
        }
    }
}
