//! Carrying out what a component's answer to a vCPU's trap decided, when the world stack left it
//! to the kernel (`hv_kernel::pending::Decision`): starting, stopping and querying CPUs through
//! the firmware or a guest's own vCPUs, power-off and reset, injected exceptions, stopping a VM
//! whose answer does not fit its trap. Answers that only set the vCPU's registers never get
//! here: the REPLY carries them out (`pending::apply_to_registers`).

use super::{HOST_VM, inject_abort, inject_into, inject_undefined};
use crate::arch::{self, GuestFrame};
use crate::cpus::{self, psci_status};
use crate::guests;
use hv_abi::ExitStatus;
use hv_ipc::guest_abi::psci;
use hv_kernel::inject;
use hv_kernel::pending::{self, Decision, PendingTrap, Refusal};

/// Carries out what a component's answer to this CPU's vCPU trap `pending` decided and the
/// world stack left to the kernel (`frame` is the vCPU's, `(vm, vcpu)` who it is). Which
/// answers fit which trap is decided, and tested, in `hv_kernel::pending`; a guest's PSCI
/// answers act on its own vCPUs only.
pub(super) fn apply_decision(
    frame: &mut GuestFrame,
    cpu: usize,
    (vm, vcpu): (u16, u16),
    pending: &PendingTrap,
    decision: Decision,
) {
    if vm != HOST_VM {
        return apply_guest_resolution(frame, cpu, (vm, usize::from(vcpu)), pending, decision);
    }
    match decision {
        Decision::StartCpu {
            target_mpidr,
            entry,
            context,
        } => {
            let result = start_cpu(target_mpidr, entry, context);
            defmt::info!(
                "cpu{=usize}: starting cpu mpidr {=u64:#x} at {=u64:#x} -> {=i64}",
                cpu,
                target_mpidr,
                entry,
                result as i64
            );
            set_return(frame, [result, 0, 0, 0]);
        }
        Decision::StopCpu => {
            defmt::info!("cpu{=usize}: powering down", cpu);
            let result = arch::firmware_psci([psci::PSCI_CPU_OFF as u64, 0, 0, 0]);
            // Only returns if the firmware refused.
            set_return(frame, [result, 0, 0, 0]);
        }
        Decision::AffinityInfo {
            target_mpidr,
            lowest_level,
        } => set_return(frame, [affinity_info(target_mpidr, lowest_level), 0, 0, 0]),
        Decision::SystemOff => {
            defmt::info!("cpu{=usize}: VM powered off", cpu);
            crate::end_run(ExitStatus::PoweredOff);
        }
        Decision::SystemReset => {
            defmt::info!("cpu{=usize}: VM requested a reset", cpu);
            crate::end_run(ExitStatus::Reset);
        }
        Decision::Refuse(refusal) => {
            // The guest's registers stay as they were; nothing will answer this trap.
            log_refusal("host", pending, refusal);
            defmt::error!("host VM stopped at pc {=u64:#x}", frame.elr);
            crate::end_run(ExitStatus::VmStopped);
        }
        other => apply_common_resolution(frame, cpu, other),
    }
}

/// The decisions carried out alike for the host's and a guest's vCPU.
#[inline(always)]
fn apply_common_resolution(frame: &mut GuestFrame, cpu: usize, decision: Decision) {
    // Results, emulated accesses, retries: the world stack's REPLY does these, and they are
    // done the same way here for completeness.
    let Err(decision) = pending::apply_to_registers(frame, decision) else {
        return;
    };
    match decision {
        Decision::WaitForInterrupt => {
            arch::wait_for_interrupt();
            set_return(frame, [0, 0, 0, 0]);
        }
        Decision::InjectUndefined => inject_undefined(frame),
        Decision::InjectExternalAbort { write, far } => {
            defmt::info!(
                "cpu{=usize}: emulated access refused: external abort injected (va {=u64:#x})",
                cpu,
                far
            );
            inject_abort(frame, write, far);
        }
        Decision::InjectHostAbort { esr, far } => inject_into(
            frame,
            inject::host_abort(esr, far, frame.elr, frame.spsr, arch::guest_vbar()),
        ),
        // Done above, or handled per VM by the callers.
        Decision::Return(_)
        | Decision::Retry { .. }
        | Decision::CompleteMmio { .. }
        | Decision::Resume
        | Decision::StartCpu { .. }
        | Decision::StopCpu
        | Decision::AffinityInfo { .. }
        | Decision::SystemOff
        | Decision::SystemReset
        | Decision::Refuse(_) => {}
    }
}

/// Logs why VM `who`'s trap `pending` got no answer that can be carried out.
fn log_refusal(who: &str, pending: &PendingTrap, refusal: Refusal) {
    match refusal {
        Refusal::Undecodable => defmt::error!(
            "the answer to the {=str}'s {=str} does not decode",
            who,
            pending.kind.name()
        ),
        Refusal::Remote(remote) => defmt::error!(
            "the {=str}'s {=str} was refused: {}",
            who,
            pending.kind.name(),
            defmt::Debug2Format(&remote)
        ),
        Refusal::Mismatch { trap, resolution } => defmt::error!(
            "the {=str}'s {=str} was answered {=str}, which does not fit it",
            who,
            trap,
            resolution
        ),
    }
}

/// A guest vCPU's target in PSCI calls: the vCPU index, which is its MPIDR's Aff0 (its CPUs
/// are numbered from 0, higher affinity levels 0).
fn guest_vcpu_of(target_mpidr: u64) -> Option<usize> {
    (target_mpidr & 0xff_00ff_ff00 == 0).then_some((target_mpidr & 0xff) as usize)
}

/// [`apply_resolution`] for a guest's vCPU: the decisions that touch CPUs or the VM's life act
/// on that VM only; the rest are as for the host.
fn apply_guest_resolution(
    frame: &mut GuestFrame,
    cpu: usize,
    (vm, vcpu): (u16, usize),
    pending: &PendingTrap,
    decision: Decision,
) {
    let invalid = psci_status(psci::error::INVALID_PARAMETERS);
    match decision {
        Decision::StartCpu {
            target_mpidr,
            entry,
            context,
        } => {
            let result = guest_vcpu_of(target_mpidr).map_or(invalid, |target| {
                guests::start_vcpu(vm, target, entry, context)
            });
            set_return(frame, [result, 0, 0, 0]);
        }
        Decision::StopCpu => guests::vcpu_off(vm, vcpu),
        Decision::AffinityInfo { target_mpidr, .. } => {
            let result =
                guest_vcpu_of(target_mpidr).map_or(invalid, |target| guests::affinity(vm, target));
            set_return(frame, [result, 0, 0, 0]);
        }
        Decision::SystemOff => guests::stop(vm, vcpu, "it powered off (PSCI SYSTEM_OFF)"),
        Decision::SystemReset => {
            defmt::info!("VM {=str}: reset (vCPU {=usize})", guests::name(vm), vcpu);
            guests::reset(vm, vcpu, &arch::cpu_features())
        }
        Decision::Refuse(refusal) => {
            log_refusal(guests::name(vm), pending, refusal);
            guests::stop(vm, vcpu, "an answer to its trap could not be carried out")
        }
        other => apply_common_resolution(frame, cpu, other),
    }
}

fn set_return(frame: &mut GuestFrame, values: [u64; 4]) {
    frame.x[..4].copy_from_slice(&values);
}

/// Starts the host's CPU `target_mpidr` at the kernel's secondary entry, which then enters
/// the host at `entry` with x0 = `context`. Returns the PSCI status for the caller. A CPU the
/// manifest gives a guest is not the host's to start.
fn start_cpu(target_mpidr: u64, entry: u64, context: u64) -> u64 {
    let Some(index) = cpus::index_of(target_mpidr) else {
        return psci_status(psci::error::INVALID_PARAMETERS);
    };
    if guests::owner_of_cpu(index).is_some() {
        return psci_status(psci::error::DENIED);
    }
    cpus::set_host_entry(index, entry, context);
    cpus::power_on(index)
}

/// PSCI AFFINITY_INFO for `target_mpidr`: the firmware's answer where there is PSCI firmware;
/// on a spin-table board the kernel knows: a core is ON once released and never goes OFF again
/// (it cannot return to the table).
fn affinity_info(target_mpidr: u64, lowest_level: u64) -> u64 {
    match hv_board::CURRENT.secondary_start {
        hv_board::SecondaryStart::PsciSmc => {
            let call = psci::PSCI_AFFINITY_INFO_64 as u64;
            arch::firmware_psci([call, target_mpidr, lowest_level, 0])
        }
        hv_board::SecondaryStart::SpinTable => match cpus::index_of(target_mpidr) {
            None => psci_status(psci::error::INVALID_PARAMETERS),
            Some(index) if arch::spin_table::is_started(index) => psci_status(psci::AFFINITY_ON),
            Some(_) => psci_status(psci::AFFINITY_OFF),
        },
    }
}
