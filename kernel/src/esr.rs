//! Decoding of the Exception Syndrome Register (ESR_EL2) into typed trap values.
//!
//! Arm ARM (DDI 0487) D24.2.40 "ESR_EL2": EC in bits \[31:26\], IL in bit 25, ISS in \[24:0\].
//! Only the classes a hypervisor acts on get their own variant; the rest keep their raw class
//! so they can be counted and reported.

/// Exception class values (ESR_ELx.EC) this kernel distinguishes.
pub mod ec {
    /// Unknown reason (also: an UNDEFINED instruction).
    pub const UNKNOWN: u8 = 0x00;
    /// WFI or WFE trapped (HCR_EL2.TWI/TWE).
    pub const WFX: u8 = 0x01;
    /// FP/SIMD access trapped (CPTR_EL2).
    pub const FP_SIMD: u8 = 0x07;
    /// HVC from AArch32.
    pub const HVC32: u8 = 0x12;
    /// SMC from AArch32.
    pub const SMC32: u8 = 0x13;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64 (trapped by HCR_EL2.TSC).
    pub const SMC64: u8 = 0x17;
    /// MSR, MRS or system instruction trapped.
    pub const SYS_REG: u8 = 0x18;
    /// SVE access trapped.
    pub const SVE: u8 = 0x19;
    /// Instruction abort from a lower exception level.
    pub const IABT_LOWER: u8 = 0x20;
    /// Instruction abort taken without a change of exception level.
    pub const IABT_CURRENT: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u8 = 0x22;
    /// Data abort from a lower exception level.
    pub const DABT_LOWER: u8 = 0x24;
    /// Data abort taken without a change of exception level.
    pub const DABT_CURRENT: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u8 = 0x26;
    /// SError interrupt.
    pub const SERROR: u8 = 0x2f;
    /// BRK instruction.
    pub const BRK: u8 = 0x3c;
}

/// A decoded ESR_EL2 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syndrome(pub u64);

/// What a trap from a lower exception level was, with the fields the handler needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// `HVC #imm` from AArch64.
    Hvc {
        /// The immediate.
        imm: u16,
    },
    /// `SMC #imm` from AArch64, trapped by HCR_EL2.TSC.
    Smc {
        /// The immediate.
        imm: u16,
    },
    /// A data abort taken to EL2 (a stage-2 fault for a guest).
    DataAbort(DataAbort),
    /// An instruction abort taken to EL2.
    InstructionAbort(InstructionAbort),
    /// A trapped system register access.
    SysReg(SysRegAccess),
    /// A trapped WFI (`wfe == false`) or WFE.
    Wfx {
        /// True for WFE.
        wfe: bool,
    },
    /// Any other class, kept raw.
    Other {
        /// The exception class.
        class: u8,
    },
}

/// Fields of a data abort syndrome (ISS encoding for EC 0x24/0x25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// The syndrome describes the access (ISV): size, register and sign are valid.
    pub valid_syndrome: bool,
    /// Access size in bytes (1, 2, 4, 8); meaningful only when `valid_syndrome`.
    pub access_size: u8,
    /// Loaded value is sign-extended.
    pub sign_extend: bool,
    /// The register transferred (31 = xzr).
    pub register: u8,
    /// The register is 64 bits wide.
    pub sixty_four_bit: bool,
    /// FAR is not valid (FnV).
    pub far_not_valid: bool,
    /// External abort.
    pub external: bool,
    /// Cache maintenance or address translation instruction.
    pub cache_maintenance: bool,
    /// The fault happened on a stage-1 table walk (S1PTW).
    pub stage1_walk: bool,
    /// The access was a write (WnR).
    pub write: bool,
    /// Data fault status code.
    pub status: FaultStatus,
}

/// Fields of an instruction abort syndrome (EC 0x20/0x21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstructionAbort {
    /// FAR is not valid.
    pub far_not_valid: bool,
    /// External abort.
    pub external: bool,
    /// The fault happened on a stage-1 table walk.
    pub stage1_walk: bool,
    /// Instruction fault status code.
    pub status: FaultStatus,
}

/// A DFSC/IFSC value, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    /// Translation fault at a level (0..=3).
    Translation(u8),
    /// Access flag fault at a level.
    AccessFlag(u8),
    /// Permission fault at a level.
    Permission(u8),
    /// Address size fault at a level.
    AddressSize(u8),
    /// Synchronous external abort, not on a table walk.
    SyncExternal,
    /// Alignment fault.
    Alignment,
    /// Anything else, raw.
    Other(u8),
}

impl FaultStatus {
    /// Classifies a raw 6-bit status code.
    pub fn from_code(code: u8) -> Self {
        let level = code & 0b11;
        match code & 0b11_1100 {
            0b00_0000 => Self::AddressSize(level),
            0b00_0100 => Self::Translation(level),
            0b00_1000 => Self::AccessFlag(level),
            0b00_1100 => Self::Permission(level),
            _ => match code {
                0b01_0000 => Self::SyncExternal,
                0b10_0001 => Self::Alignment,
                _ => Self::Other(code),
            },
        }
    }
}

/// A trapped MRS/MSR (ISS encoding for EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// op0, op1, CRn, CRm, op2 of the register.
    pub encoding: (u8, u8, u8, u8, u8),
    /// The general-purpose register transferred.
    pub register: u8,
    /// True for MRS (read), false for MSR (write).
    pub read: bool,
}

impl Syndrome {
    /// The exception class.
    pub fn class(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// True if the trapped instruction was 32 bits long (IL).
    pub fn is_32bit_instruction(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// The instruction-specific syndrome.
    pub fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// Decodes the syndrome of a trap from a lower exception level.
    pub fn decode(self) -> Trap {
        let iss = self.iss();
        let bit = |n: u32| iss & (1 << n) != 0;
        match self.class() {
            ec::HVC64 => Trap::Hvc { imm: iss as u16 },
            ec::SMC64 => Trap::Smc { imm: iss as u16 },
            ec::DABT_LOWER | ec::DABT_CURRENT => Trap::DataAbort(DataAbort {
                valid_syndrome: bit(24),
                access_size: 1 << ((iss >> 22) & 0b11),
                sign_extend: bit(21),
                register: ((iss >> 16) & 0x1f) as u8,
                sixty_four_bit: bit(15),
                far_not_valid: bit(10),
                external: bit(9),
                cache_maintenance: bit(8),
                stage1_walk: bit(7),
                write: bit(6),
                status: FaultStatus::from_code((iss & 0x3f) as u8),
            }),
            ec::IABT_LOWER | ec::IABT_CURRENT => Trap::InstructionAbort(InstructionAbort {
                far_not_valid: bit(10),
                external: bit(9),
                stage1_walk: bit(7),
                status: FaultStatus::from_code((iss & 0x3f) as u8),
            }),
            ec::SYS_REG => Trap::SysReg(SysRegAccess {
                encoding: (
                    ((iss >> 20) & 0b11) as u8,
                    ((iss >> 14) & 0b111) as u8,
                    ((iss >> 10) & 0xf) as u8,
                    ((iss >> 1) & 0xf) as u8,
                    ((iss >> 17) & 0b111) as u8,
                ),
                register: ((iss >> 5) & 0x1f) as u8,
                read: bit(0),
            }),
            ec::WFX => Trap::Wfx {
                wfe: iss & 0b11 == 0b01,
            },
            class => Trap::Other { class },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(class: u8, iss: u32) -> Syndrome {
        Syndrome(((class as u64) << 26) | (1 << 25) | iss as u64)
    }

    #[test]
    fn decodes_calls() {
        assert_eq!(esr(ec::HVC64, 0x1234).decode(), Trap::Hvc { imm: 0x1234 });
        assert_eq!(esr(ec::SMC64, 0).decode(), Trap::Smc { imm: 0 });
        assert!(esr(ec::SMC64, 0).is_32bit_instruction());
    }

    #[test]
    fn decodes_a_stage2_write_fault() {
        // ISV, 4-byte access, x3, write, translation fault level 2: as a guest `str w3, [x0]`.
        let iss = (1 << 24) | (0b10 << 22) | (3 << 16) | (1 << 6) | 0b00_0110;
        let Trap::DataAbort(abort) = esr(ec::DABT_LOWER, iss).decode() else {
            panic!("not a data abort")
        };
        assert!(abort.valid_syndrome && abort.write && !abort.sixty_four_bit);
        assert_eq!(abort.access_size, 4);
        assert_eq!(abort.register, 3);
        assert_eq!(abort.status, FaultStatus::Translation(2));
    }

    #[test]
    fn decodes_an_instruction_abort_on_a_walk() {
        let Trap::InstructionAbort(abort) = esr(ec::IABT_LOWER, (1 << 7) | 0b00_1111).decode()
        else {
            panic!("not an instruction abort")
        };
        assert!(abort.stage1_walk);
        assert_eq!(abort.status, FaultStatus::Permission(3));
    }

    #[test]
    fn decodes_sysreg_and_wfx() {
        // MRS x5, CNTPCT_EL0 = op0 3, op1 3, CRn 14, CRm 0, op2 1.
        let iss = (3 << 20) | (1 << 17) | (3 << 14) | (14 << 10) | (5 << 5) | 1;
        assert_eq!(
            esr(ec::SYS_REG, iss).decode(),
            Trap::SysReg(SysRegAccess {
                encoding: (3, 3, 14, 0, 1),
                register: 5,
                read: true
            })
        );
        assert_eq!(esr(ec::WFX, 1).decode(), Trap::Wfx { wfe: true });
        assert_eq!(esr(ec::WFX, 0).decode(), Trap::Wfx { wfe: false });
    }

    #[test]
    fn classifies_fault_status_codes() {
        assert_eq!(FaultStatus::from_code(0x10), FaultStatus::SyncExternal);
        assert_eq!(FaultStatus::from_code(0x21), FaultStatus::Alignment);
        assert_eq!(FaultStatus::from_code(0x09), FaultStatus::AccessFlag(1));
        assert_eq!(FaultStatus::from_code(0x03), FaultStatus::AddressSize(3));
        assert_eq!(FaultStatus::from_code(0x30), FaultStatus::Other(0x30));
    }

    #[test]
    fn every_syndrome_decodes_without_panicking() {
        for class in 0..64u8 {
            for iss in [0u32, 0x1ff_ffff, 0x155_5555, 0xaa_aaaa] {
                let _ = esr(class, iss).decode();
            }
        }
        assert_eq!(esr(0x3f, 0).decode(), Trap::Other { class: 0x3f });
    }
}
