//! Building the EL1 state for an exception the kernel injects into a guest.
//!
//! When a guest's access must fail (it touched memory its stage 2 does not map), the kernel
//! makes the guest take a synchronous abort as if its own hardware raised it: ESR_EL1, FAR_EL1,
//! ELR_EL1 and SPSR_EL1 are set as the architecture would, and the vCPU resumes at the right
//! offset of its VBAR_EL1 (Arm ARM D1.10.2 "Exception vectors") in EL1h with DAIF masked.
//! Only the arithmetic lives here; `arch` writes the registers.

use crate::controls;
use crate::esr::ec;

/// SPSR.M\[3:0\] for EL0t.
const MODE_EL0T: u64 = 0b0000;
/// SPSR.M\[3:0\] for EL1t.
const MODE_EL1T: u64 = 0b0100;
/// SPSR.M\[3:0\] for EL1h.
const MODE_EL1H: u64 = 0b0101;
/// SPSR.M\[4\]: the interrupted state was AArch32.
const MODE_AARCH32: u64 = 1 << 4;
/// ESR.IL: a 32-bit instruction.
const ESR_IL: u64 = 1 << 25;
/// ESR ISS WnR bit for data aborts.
const ESR_WNR: u64 = 1 << 6;
/// Fault status code: synchronous external abort, not on a table walk.
const FSC_SYNC_EXTERNAL: u64 = 0x10;

/// Which kind of access faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortKind {
    /// A load or store; `write` is the WnR bit.
    Data {
        /// The access was a write.
        write: bool,
    },
    /// An instruction fetch.
    Instruction,
}

/// The register values that deliver an exception to a guest's EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedException {
    /// New ESR_EL1.
    pub esr: u64,
    /// New FAR_EL1.
    pub far: u64,
    /// New ELR_EL1: where the guest was.
    pub elr: u64,
    /// New SPSR_EL1: the guest's PSTATE when it faulted.
    pub spsr: u64,
    /// Where the vCPU resumes (its ELR_EL2).
    pub pc: u64,
    /// The PSTATE it resumes with (its SPSR_EL2).
    pub pstate: u64,
}

/// Why an exception could not be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The guest was running AArch32, which this hypervisor does not support.
    Aarch32Guest,
    /// The guest was in a mode an EL1 guest cannot be in (EL2 or EL3 in SPSR).
    ImpossibleMode(u64),
}

/// Offset into VBAR_EL1 of the synchronous vector for an exception taken from `spsr`'s mode.
pub fn sync_vector_offset(spsr: u64) -> Result<u64, InjectError> {
    if spsr & MODE_AARCH32 != 0 {
        return Err(InjectError::Aarch32Guest);
    }
    match spsr & 0xf {
        MODE_EL0T => Ok(0x400),
        MODE_EL1T => Ok(0x000),
        MODE_EL1H => Ok(0x200),
        mode => Err(InjectError::ImpossibleMode(mode)),
    }
}

/// A synchronous external abort for the access at virtual address `far` made by the
/// instruction at `pc` while the guest had PSTATE `spsr`, delivered to `vbar`.
pub fn external_abort(
    kind: AbortKind,
    far: u64,
    pc: u64,
    spsr: u64,
    vbar: u64,
) -> Result<InjectedException, InjectError> {
    let offset = sync_vector_offset(spsr)?;
    let from_el0 = spsr & 0xf == MODE_EL0T;
    let (class, wnr) = match kind {
        AbortKind::Data { write } => (
            if from_el0 {
                ec::DABT_LOWER
            } else {
                ec::DABT_CURRENT
            },
            write,
        ),
        AbortKind::Instruction => (
            if from_el0 {
                ec::IABT_LOWER
            } else {
                ec::IABT_CURRENT
            },
            false,
        ),
    };
    let esr = ((class as u64) << 26) | ESR_IL | if wnr { ESR_WNR } else { 0 } | FSC_SYNC_EXTERNAL;
    Ok(InjectedException {
        esr,
        far,
        elr: pc,
        spsr,
        pc: vbar + offset,
        pstate: controls::spsr_el1h_masked(),
    })
}

/// ESR ISS bit 7: the fault happened on a stage-1 table walk (S1PTW).
const ESR_S1PTW: u64 = 1 << 7;

/// The abort pKVM injects into the host for an access to memory it does not own, so that the
/// host's own exception fixups run: the stage-2 syndrome `esr_el2` repainted as an abort taken
/// at EL1 (the current-EL class unless the access came from EL0, which keeps the lower-EL class),
/// its ISS kept with S1PTW set as the marker that the hypervisor sent it, FAR kept, and entry at
/// the host's VBAR_EL1.
pub fn host_abort(
    esr_el2: u64,
    far: u64,
    pc: u64,
    spsr: u64,
    vbar: u64,
) -> Result<InjectedException, InjectError> {
    let offset = sync_vector_offset(spsr)?;
    let from_el0 = spsr & 0xf == MODE_EL0T;
    let class = ((esr_el2 >> 26) & 0x3f) as u8;
    let repainted = match (class, from_el0) {
        (ec::DABT_LOWER, false) => ec::DABT_CURRENT,
        (ec::IABT_LOWER, false) => ec::IABT_CURRENT,
        (class, _) => class,
    };
    let esr = ((repainted as u64) << 26) | ESR_IL | (esr_el2 & 0x1ff_ffff) | ESR_S1PTW;
    Ok(InjectedException {
        esr,
        far,
        elr: pc,
        spsr,
        pc: vbar + offset,
        pstate: controls::spsr_el1h_masked(),
    })
}

/// An UNDEFINED instruction exception (EC 0) for the instruction at `pc`.
pub fn undefined_instruction(
    pc: u64,
    spsr: u64,
    vbar: u64,
) -> Result<InjectedException, InjectError> {
    let offset = sync_vector_offset(spsr)?;
    Ok(InjectedException {
        esr: ((ec::UNKNOWN as u64) << 26) | ESR_IL,
        far: 0,
        elr: pc,
        spsr,
        pc: vbar + offset,
        pstate: controls::spsr_el1h_masked(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esr::{FaultStatus, Syndrome, Trap};

    #[test]
    fn kernel_mode_write_fault_enters_current_el_vector() {
        // EL1h with interrupts unmasked.
        let spsr_el1h = MODE_EL1H;
        let injected = external_abort(
            AbortKind::Data { write: true },
            0x4000_1000,
            0x4200_0040,
            spsr_el1h,
            0x4210_0000,
        )
        .unwrap();
        assert_eq!(injected.pc, 0x4210_0200);
        assert_eq!(injected.elr, 0x4200_0040);
        assert_eq!(injected.far, 0x4000_1000);
        assert_eq!(injected.pstate, 0x3c5);
        let Trap::DataAbort(abort) = Syndrome(injected.esr).decode() else {
            panic!()
        };
        assert!(abort.write);
        assert_eq!(abort.status, FaultStatus::SyncExternal);
        assert_eq!(Syndrome(injected.esr).class(), ec::DABT_CURRENT);
    }

    #[test]
    fn user_mode_fetch_fault_enters_lower_el_vector() {
        let injected =
            external_abort(AbortKind::Instruction, 0x1000, 0x1000, MODE_EL0T, 0x8000).unwrap();
        assert_eq!(injected.pc, 0x8400);
        assert_eq!(Syndrome(injected.esr).class(), ec::IABT_LOWER);
    }

    #[test]
    fn refuses_modes_a_guest_cannot_be_in() {
        assert_eq!(
            sync_vector_offset(MODE_AARCH32 | 0x3),
            Err(InjectError::Aarch32Guest)
        );
        assert_eq!(
            sync_vector_offset(0b1001),
            Err(InjectError::ImpossibleMode(0b1001))
        );
        assert_eq!(sync_vector_offset(MODE_EL1T), Ok(0));
    }

    #[test]
    fn host_abort_is_repainted_with_the_s1ptw_marker() {
        // A host kernel write (EL1h) that hit a stage-2 translation fault at level 3.
        let esr_el2 = ((ec::DABT_LOWER as u64) << 26) | ESR_IL | (1 << 24) | (1 << 6) | 0b00_0111;
        let injected = host_abort(
            esr_el2,
            0xffff_8000_0010_0000,
            0x4210_0000,
            MODE_EL1H,
            0x4300_0000,
        )
        .unwrap();
        let syndrome = Syndrome(injected.esr);
        assert_eq!(syndrome.class(), ec::DABT_CURRENT);
        let Trap::DataAbort(abort) = syndrome.decode() else {
            panic!()
        };
        assert!(abort.stage1_walk && abort.write);
        assert_eq!(abort.status, FaultStatus::Translation(3));
        assert_eq!(
            (injected.far, injected.elr, injected.pc),
            (0xffff_8000_0010_0000, 0x4210_0000, 0x4300_0200)
        );

        // From EL0 the class stays a lower-EL abort and the vector is the lower-EL one.
        let fetch = ((ec::IABT_LOWER as u64) << 26) | ESR_IL | 0b00_0111;
        let injected = host_abort(fetch, 0x1000, 0x1000, MODE_EL0T, 0x4300_0000).unwrap();
        assert_eq!(Syndrome(injected.esr).class(), ec::IABT_LOWER);
        assert_eq!(injected.pc, 0x4300_0400);
        assert_ne!(injected.esr & ESR_S1PTW, 0);
    }

    #[test]
    fn undefined_instruction_has_class_zero() {
        let injected = undefined_instruction(0x10, MODE_EL1H, 0x2000).unwrap();
        assert_eq!(Syndrome(injected.esr).class(), ec::UNKNOWN);
        assert_eq!(injected.pc, 0x2200);
    }
}
