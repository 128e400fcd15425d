//! What a vCPU waits for while a component decides on its trap, and what the answer may do.
//!
//! A trapped vCPU stays stopped until the component the route table names replies. The kernel
//! records the trap as a [`PendingTrap`] (its kind, with what that kind needs to finish, and
//! the retry point) when it sends the call, and [`decide`] turns the reply into a [`Decision`]
//! for the trap handler to carry out. Every (trap, resolution) pair is checked here: an answer
//! meant for another kind of trap (a `Resume` for an HVC, an `MmioRead` for a stage-2 fault),
//! a refusal or bytes that do not decode become [`Decision::Refuse`], which touches nothing in
//! the guest; the VM is then stopped, since nothing will answer its trap.
//!
//! Kept free of hardware so every pair is tested on the host.

use crate::esr::DataAbort;
use crate::frame::GuestFrame;
use hv_ipc::RemoteError;
use hv_ipc::interfaces::guest_trap::TrapResolution;

/// The kind of trap a vCPU waits on, with what finishing it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// An SMCCC call (HVC or trapped SMC); the answer goes to x0..x3 and the vCPU continues
    /// after the call.
    Smccc,
    /// An access to an emulated device, as its syndrome describes it.
    Mmio {
        /// The data abort's syndrome (register, size, sign extension, direction).
        abort: DataAbort,
        /// The faulting virtual address, for an injected abort.
        far: u64,
    },
    /// A write of a GICv3 SGI register; the vCPU continues after it.
    SgiWrite,
    /// A host stage-2 fault.
    Stage2Fault {
        /// ESR_EL2 of the fault, repainted for an injected abort.
        esr: u64,
        /// FAR_EL2 of the fault.
        far: u64,
    },
}

impl TrapKind {
    /// A short name for logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Smccc => "SMCCC call",
            Self::Mmio { .. } => "emulated MMIO access",
            Self::SgiWrite => "SGI register write",
            Self::Stage2Fault { .. } => "stage-2 fault",
        }
    }
}

/// A vCPU's trap in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingTrap {
    /// What it is.
    pub kind: TrapKind,
    /// The trapping instruction: the vCPU resumes here to make the same trap again (HVC: the
    /// HVC itself, although ELR already points past it; SMC, MMIO, stage-2 faults: ELR).
    pub retry_pc: u64,
}

/// Why an answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The reply did not decode as a guest-trap reply.
    Undecodable,
    /// The component refused the call.
    Remote(RemoteError),
    /// The resolution is not one this kind of trap can take.
    Mismatch {
        /// The trap.
        trap: &'static str,
        /// The resolution.
        resolution: &'static str,
    },
}

/// What the trap handler does with the vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// x0..x3 = these; continue after the call.
    Return([u64; 4]),
    /// Start a CPU through the firmware; its result goes to x0.
    StartCpu {
        /// The CPU.
        target_mpidr: u64,
        /// The guest's entry point for it.
        entry: u64,
        /// The guest's context (x0 at entry).
        context: u64,
    },
    /// Power this CPU down through the firmware (x0 = its error, if it returns).
    StopCpu,
    /// Ask the firmware about a CPU; the answer goes to x0.
    AffinityInfo {
        /// The CPU.
        target_mpidr: u64,
        /// The affinity level.
        lowest_level: u64,
    },
    /// Wait for an interrupt, then x0 = 0.
    WaitForInterrupt,
    /// End the run: the VM powered off.
    SystemOff,
    /// End the run: the VM asked for a reset.
    SystemReset,
    /// Inject an UNDEFINED exception at the trapping instruction.
    InjectUndefined,
    /// Resume at `pc` to make the trap again.
    Retry {
        /// The trapping instruction.
        pc: u64,
    },
    /// Finish an emulated access and step over it; a load writes `value` (already truncated
    /// and extended as the instruction says) to x`register`.
    CompleteMmio {
        /// The loaded register and its value; `None` for a store or a load into xzr.
        load: Option<(u8, u64)>,
    },
    /// Inject a synchronous external data abort (an emulated access nothing may serve).
    InjectExternalAbort {
        /// The access was a write.
        write: bool,
        /// Its virtual address.
        far: u64,
    },
    /// Inject the abort pKVM injects for memory the host may not touch.
    InjectHostAbort {
        /// The fault's ESR_EL2.
        esr: u64,
        /// Its FAR_EL2.
        far: u64,
    },
    /// The stage 2 now maps the access: resume at the faulting instruction.
    Resume,
    /// The answer cannot be applied: leave the guest as it is, and stop the VM.
    Refuse(Refusal),
}

/// What `reply` (the component's decoded answer, or why there is none) does to the vCPU
/// waiting on `pending`.
pub fn decide(pending: &PendingTrap, reply: Result<TrapResolution, Refusal>) -> Decision {
    let resolution = match reply {
        Ok(resolution) => resolution,
        Err(refusal) => return Decision::Refuse(refusal),
    };
    let name = resolution.variant_name();
    if let TrapResolution::Retry = resolution {
        return Decision::Retry {
            pc: pending.retry_pc,
        };
    }
    let decision = match (pending.kind, resolution) {
        (TrapKind::Smccc, resolution) => match resolution {
            TrapResolution::Return { regs } => Some(Decision::Return(regs.map(|r| r as u64))),
            TrapResolution::StartCpu {
                target_mpidr,
                entry,
                context,
            } => Some(Decision::StartCpu {
                target_mpidr,
                entry,
                context,
            }),
            TrapResolution::StopCpu => Some(Decision::StopCpu),
            TrapResolution::AffinityInfo {
                target_mpidr,
                lowest_level,
            } => Some(Decision::AffinityInfo {
                target_mpidr,
                lowest_level,
            }),
            TrapResolution::WaitForInterrupt => Some(Decision::WaitForInterrupt),
            TrapResolution::SystemOff => Some(Decision::SystemOff),
            TrapResolution::SystemReset => Some(Decision::SystemReset),
            TrapResolution::InjectUndefined => Some(Decision::InjectUndefined),
            _ => None,
        },
        (TrapKind::Mmio { abort, far }, resolution) => match resolution {
            TrapResolution::MmioRead { value } if !abort.write => Some(Decision::CompleteMmio {
                load: (abort.register < 31).then(|| (abort.register, loaded_value(&abort, value))),
            }),
            TrapResolution::MmioWritten if abort.write => {
                Some(Decision::CompleteMmio { load: None })
            }
            TrapResolution::ExternalAbort => Some(Decision::InjectExternalAbort {
                write: abort.write,
                far,
            }),
            TrapResolution::InjectUndefined => Some(Decision::InjectUndefined),
            _ => None,
        },
        (TrapKind::SgiWrite, resolution) => match resolution {
            TrapResolution::MmioWritten => Some(Decision::CompleteMmio { load: None }),
            TrapResolution::InjectUndefined => Some(Decision::InjectUndefined),
            _ => None,
        },
        (TrapKind::Stage2Fault { esr, far }, resolution) => match resolution {
            TrapResolution::Resume => Some(Decision::Resume),
            TrapResolution::InjectHostAbort => Some(Decision::InjectHostAbort { esr, far }),
            _ => None,
        },
    };
    decision.unwrap_or(Decision::Refuse(Refusal::Mismatch {
        trap: pending.kind.name(),
        resolution: name,
    }))
}

/// The value an emulated store of the source register (whose content is `register`) writes:
/// its low `access_size` bytes; a store from xzr (register 31) writes zero.
pub fn stored_value(abort: &DataAbort, register: u64) -> u64 {
    if abort.register >= 31 {
        return 0;
    }
    match abort.access_size {
        size @ 1..=7 => register & ((1u64 << (u32::from(size) * 8)) - 1),
        _ => register,
    }
}

/// The register value an emulated load of `value` leaves: truncated to the access size,
/// sign-extended if the instruction says so, and cut to 32 bits for a W register.
pub fn loaded_value(abort: &DataAbort, value: u64) -> u64 {
    let bits = u32::from(abort.access_size) * 8;
    let mut value = if bits >= 64 {
        value
    } else {
        value & ((1u64 << bits) - 1)
    };
    if abort.sign_extend && bits < 64 {
        let shift = 64 - bits;
        value = (((value << shift) as i64) >> shift) as u64;
    }
    if !abort.sixty_four_bit {
        value &= 0xffff_ffff;
    }
    value
}

/// Carries out `decision` on the vCPU's registers `frame` if that is all it does (results to
/// return, an emulated access to complete, a trap to retry or resume); otherwise gives it back,
/// for the kernel to carry out with what it owns (CPUs, the firmware, injected exceptions,
/// stopping the VM). The world stack applies these as the answer arrives, so the common
/// answers never travel further.
pub fn apply_to_registers(frame: &mut GuestFrame, decision: Decision) -> Result<(), Decision> {
    match decision {
        Decision::Return(regs) => frame.x[..4].copy_from_slice(&regs),
        Decision::CompleteMmio { load } => {
            if let Some((register, value)) = load
                && let Some(slot) = frame.x.get_mut(usize::from(register))
            {
                *slot = value;
            }
            // Past the emulated access.
            frame.elr += 4;
        }
        Decision::Retry { pc } => frame.elr = pc,
        // The access re-executes at the same PC.
        Decision::Resume => {}
        other => return Err(other),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
