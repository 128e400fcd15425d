//! The values the kernel writes into the EL2 control registers and the EL1 start state, composed
//! field by field so each bit says why it is set. Only the composition lives here, so the host
//! tests can pin every value; `arch` writes them.
//!
//! The register fields come from `aarch64-cpu`; where it leaves bits out (CPTR_EL2 beyond TAM,
//! the bits that are RES1 with HCR_EL2.E2H = 0 or in Armv8.0), they are declared below from the
//! manual. A register declared in two parts is composed from both parts' values.
//!
//! References: Arm ARM DDI 0487, D24.2 "AArch64 System register descriptions" (HCR_EL2,
//! CPTR_EL2, VTCR_EL2, TCR_EL2, SCTLR_EL2, SCTLR_EL1, SPSR_EL2, MAIR_EL2, CNTHCTL_EL2,
//! ICC_SRE_EL2).

use aarch64_cpu::registers::{
    CNTHCTL_EL2, HCR_EL2, ICC_SRE_EL2, MAIR_EL2, SCTLR_EL1, SCTLR_EL2, SPSR_EL2, TCR_EL2, VTCR_EL2,
};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// CPTR_EL2 as laid out with HCR_EL2.E2H = 0, the only way this kernel runs.
    pub CPTR_EL2 [
        /// Traps EL1 accesses to CPACR_EL1.
        TCPAC OFFSET(31) NUMBITS(1) [],
        /// RES1.
        RES1_13 OFFSET(13) NUMBITS(1) [],
        /// Traps SME; RES1 where SME is not implemented.
        TSM OFFSET(12) NUMBITS(1) [
            Untrapped = 0,
            Trapped = 1,
        ],
        /// Traps FP/SIMD (and with it SVE and SME).
        TFP OFFSET(10) NUMBITS(1) [
            Untrapped = 0,
            Trapped = 1,
        ],
        /// RES1.
        RES1_9 OFFSET(9) NUMBITS(1) [],
        /// Traps SVE; RES1 where SVE is not implemented.
        TZ OFFSET(8) NUMBITS(1) [
            Untrapped = 0,
            Trapped = 1,
        ],
        /// RES1.
        RES1_7_0 OFFSET(0) NUMBITS(8) [],
    ],

    /// The SCTLR_EL1 bits `aarch64-cpu` leaves out: RES1 in Armv8.0; the extensions that later
    /// named them made 1 keep the Armv8.0 behaviour.
    pub SCTLR_EL1_RES1 [
        /// FEAT_LSMAOC: AArch32 load/store multiple keeps its Armv8.0 atomicity and ordering.
        LSMAOE OFFSET(29) NUMBITS(1) [],
        /// FEAT_LSMAOC: AArch32 load/store multiple to Device memory does not trap.
        NTLSMD OFFSET(28) NUMBITS(1) [],
        /// FEAT_PAN: PSTATE.PAN is left alone on an exception to EL1.
        SPAN OFFSET(23) NUMBITS(1) [],
        /// FEAT_ExS: exception entry is context synchronizing.
        EIS OFFSET(22) NUMBITS(1) [],
        /// FEAT_CSV2: EL0 access to SCXTNUM_EL0 traps.
        TSCXT OFFSET(20) NUMBITS(1) [],
        /// FEAT_ExS: exception return is context synchronizing.
        EOS OFFSET(11) NUMBITS(1) [],
    ],

    /// The SCTLR_EL2 bits that are RES1 with HCR_EL2.E2H = 0 and that `aarch64-cpu` leaves
    /// out (it declares EIS and EOS).
    pub SCTLR_EL2_RES1 [
        /// RES1.
        RES1_29_28 OFFSET(28) NUMBITS(2) [],
        /// RES1.
        RES1_23 OFFSET(23) NUMBITS(1) [],
        /// RES1.
        RES1_18 OFFSET(18) NUMBITS(1) [],
        /// RES1.
        RES1_16 OFFSET(16) NUMBITS(1) [],
        /// RES1.
        RES1_5_4 OFFSET(4) NUMBITS(2) [],
    ],

    /// The TCR_EL2 bits that are RES1 with HCR_EL2.E2H = 0.
    pub TCR_EL2_RES1 [
        /// RES1.
        RES1_31 OFFSET(31) NUMBITS(1) [],
        /// RES1.
        RES1_23 OFFSET(23) NUMBITS(1) [],
    ]
}

/// The features of a CPU that change how EL2 must be set up (`arch` reads them from the ID
/// registers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// ID_AA64MMFR0_EL1.PARange, as a TCR/VTCR PS value (capped at 48 bits).
    pub pa_size_field: u64,
    /// Bits of IPA the guests' stage 2 translates: the physical address size, at least 40
    /// (the smallest a level-0 root allows) and at most 48.
    pub ipa_bits: u64,
    /// SVE implemented.
    pub sve: bool,
    /// SME implemented.
    pub sme: bool,
    /// Pointer authentication implemented.
    pub pointer_auth: bool,
    /// GICv3 system register interface implemented.
    pub gic_sysregs: bool,
    /// MTE with allocation tags in memory (FEAT_MTE2: ID_AA64PFR1_EL1.MTE ≥ 2).
    pub mte: bool,
    /// HCRX_EL2 exists (FEAT_HCX: ID_AA64MMFR1_EL1.HCX ≠ 0).
    pub hcx: bool,
    /// The memory copy and set instructions (FEAT_MOPS: ID_AA64ISAR2_EL1.MOPS ≠ 0).
    pub mops: bool,
}

/// The HCR_EL2 and CPTR_EL2 values one world runs with: what traps to EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapControls {
    /// HCR_EL2.
    pub hcr: u64,
    /// CPTR_EL2.
    pub cptr: u64,
}

impl TrapControls {
    /// The host VM's: stage 2 on, SMC trapped (PSCI goes through the kernel), EL1 in AArch64;
    /// pointer authentication, FP/SIMD, SVE and SME left to the guest where they exist.
    pub fn host(features: &CpuFeatures) -> Self {
        let mut hcr = HCR_EL2::VM::Enable
            + HCR_EL2::SWIO::SET
            + HCR_EL2::FB::SET
            + HCR_EL2::BSU::InnerShareable
            + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
            + HCR_EL2::RW::EL1IsAarch64;
        if features.pointer_auth {
            hcr += HCR_EL2::API::DisableTrapPointerAuthInstToEl2
                + HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2;
        }
        let hcr = hcr.value | if features.mte { HCR_ATA } else { 0 };
        let cptr = CPTR_EL2::RES1_13::SET
            + CPTR_EL2::RES1_9::SET
            + CPTR_EL2::RES1_7_0::SET
            + CPTR_EL2::TFP::Untrapped
            + if features.sve {
                CPTR_EL2::TZ::Untrapped
            } else {
                CPTR_EL2::TZ::Trapped
            }
            + if features.sme {
                CPTR_EL2::TSM::Untrapped
            } else {
                CPTR_EL2::TSM::Trapped
            };
        Self {
            hcr,
            cptr: cptr.value,
        }
    }

    /// The host's with hot-swap's control line on: WFI traps too, so that an idle host CPU
    /// gives the kernel a moment to look at the line before it waits for the host's next
    /// interrupt itself (`control`, docs/hot-swap.md).
    pub fn trapping_wfi(self) -> Self {
        Self {
            hcr: self.hcr | HCR_EL2::TWI::SET.value,
            ..self
        }
    }

    /// A guest vCPU's, from the host's: physical interrupts (IRQ and FIQ) go to EL2, which
    /// forwards them as virtual interrupts (and with IMO set the guest's GIC CPU interface is
    /// the virtual one); allocation tags only for a VM that may use MTE (with HCR_EL2.ATA clear
    /// its tag accesses are prevented and the MTE registers trap). On a CPU with MTE, a VM that
    /// may not use it also has its ID register reads trapped (HCR_EL2.TID3) so that it does not
    /// see MTE ([`guest_id_register`]): a kernel that saw it would use the trapped registers.
    /// The host keeps IMO/FMO clear: it drives its own CPU interface, as under pKVM.
    pub fn guest(self, may_use_tags: bool) -> Self {
        let hcr = self.hcr | HCR_INTERRUPTS_TO_EL2;
        let cpu_has_tags = self.hcr & HCR_ATA != 0;
        Self {
            hcr: match (may_use_tags, cpu_has_tags) {
                (true, _) => hcr,
                (false, true) => (hcr & !HCR_ATA) | HCR_TID3,
                (false, false) => hcr & !HCR_ATA,
            },
            ..self
        }
    }

    /// A component's, from the host's: WFI, WFE and FP/SIMD trap as well (a component has no
    /// use for either; one that tries is treated as faulty), and so do writes and reads of the
    /// EL1 virtual-memory controls (TVM, TRVM) and of CPACR_EL1 (TCPAC). A component runs with
    /// its stage 1 off and needs none of them; trapping them keeps the host's values live and
    /// unseen while a component runs, so a world switch need not save and load them
    /// (`arch::el1`).
    ///
    /// HCR_EL2.DC is set: with stage 1 off, a component's data accesses would otherwise be
    /// Device-nGnRnE, uncached, while the kernel reads and writes the same memory (its message
    /// buffers, its image, the host's stage-2 tables mem-protect builds for the table walker)
    /// through cacheable mappings. Mismatched attributes lose coherency on hardware (QEMU has
    /// no caches to show it): a reply read from a stale cache line, a table entry the walker
    /// does not see. With DC they are Normal write-back, inner shareable once combined with
    /// the component's stage 2, as the kernel's are.
    pub fn component(self) -> Self {
        Self {
            hcr: (self.hcr & !(HCR_ATA | HCR_INTERRUPTS_TO_EL2 | HCR_TID3))
                | (HCR_EL2::TWI::SET
                    + HCR_EL2::TWE::SET
                    + HCR_EL2::TVM::SET
                    + HCR_EL2::TRVM::SET
                    + HCR_EL2::DC::SET)
                    .value,
            cptr: self.cptr | (CPTR_EL2::TFP::Trapped + CPTR_EL2::TCPAC::SET).value,
        }
    }

    /// A component's controls while its CPU's deadline is armed (a swap): as
    /// [`Self::component`], but physical IRQs are taken to EL2 (IMO), so that the deadline's
    /// interrupt takes the CPU back from a component that does not yield. The CPU interface
    /// lets only that interrupt through meanwhile (`arch::deadline`).
    pub fn component_under_deadline(self) -> Self {
        let component = self.component();
        Self {
            hcr: component.hcr | HCR_EL2::IMO::SET.value,
            ..component
        }
    }
}

/// HCR_EL2.TID3: EL1 reads of the ID group 3 registers (ID_AA64*_EL1 and the AArch32 ones)
/// trap to EL2.
const HCR_TID3: u64 = 1 << 18;

/// What a guest reads from the ID register `S3_0_C0_C<crm>_<op2>` when its reads trap
/// (HCR_EL2.TID3), given the hardware's value `raw`: the same, but for a VM that may not use
/// MTE, ID_AA64PFR1_EL1 says it has none (MTE and MTE_frac zero).
pub fn guest_id_register(crm: u8, op2: u8, raw: u64, may_use_tags: bool) -> u64 {
    const ID_AA64PFR1: (u8, u8) = (4, 1);
    const MTE_FIELDS: u64 = (0xf << 8) | (0xf << 40);
    if (crm, op2) == ID_AA64PFR1 && !may_use_tags {
        raw & !MTE_FIELDS
    } else {
        raw
    }
}

/// HCR_EL2.IMO | FMO: physical IRQs and FIQs are taken to EL2.
const HCR_INTERRUPTS_TO_EL2: u64 = (1 << 4) | (1 << 3);

/// HCR_EL2.ATA (bit 56, FEAT_MTE2): EL1 and EL0 may access allocation tags. `aarch64-cpu`
/// does not name it.
const HCR_ATA: u64 = 1 << 56;

/// VTCR_EL2 for every guest's stage 2: `ipa_bits` of IPA from a level-0 root, 4 KiB granule,
/// write-back inner-shareable table walks.
pub fn vtcr(features: &CpuFeatures) -> u64 {
    (VTCR_EL2::T0SZ.val(64 - features.ipa_bits)
        + VTCR_EL2::SL0::Granule4KBLevel0
        + VTCR_EL2::IRGN0::NormalWBRAWA
        + VTCR_EL2::ORGN0::NormalWBRAWA
        + VTCR_EL2::SH0::Inner
        + VTCR_EL2::TG0::Granule4KB
        + VTCR_EL2::PS.val(features.pa_size_field)
        + VTCR_EL2::RES1::SET)
        .value
}

/// MAIR_EL2: index 0 Device-nGnRE, index 1 Normal write-back read/write-allocate (the indices
/// the EL2 stage-1 descriptors name).
/// With MTE, index 1 is Tagged Normal write-back (0xF0), so the kernel can scrub a guest's
/// allocation tags through its own map.
pub fn mair_el2(features: &CpuFeatures) -> u64 {
    let mair = (MAIR_EL2::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
        + MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
        + MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc)
        .value;
    if features.mte {
        (mair & !(0xff << 8)) | (0xf0 << 8)
    } else {
        mair
    }
}

/// TCR_EL2 for the kernel's own map: `va_bits` of VA, 4 KiB granule, write-back
/// inner-shareable table walks.
pub fn tcr_el2(va_bits: u64, features: &CpuFeatures) -> u64 {
    (TCR_EL2::T0SZ.val(64 - va_bits)
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::SH0::Inner
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::PS.val(features.pa_size_field)
        + if features.mte {
            // Top byte ignored: a tagged address (the tag in bits 59:56) translates.
            TCR_EL2::TBI::Ignored
        } else {
            TCR_EL2::TBI::Used
        })
    .value
        | (TCR_EL2_RES1::RES1_31::SET + TCR_EL2_RES1::RES1_23::SET).value
}

/// SCTLR_EL2 with the MMU, the caches and stack alignment checks on.
/// With MTE, SCTLR_EL2.ATA (bit 43) lets the kernel write allocation tags (tag checks stay
/// off: TCF = 0).
pub fn sctlr_el2_mmu_on(features: &CpuFeatures) -> u64 {
    let ata = if features.mte { 1 << 43 } else { 0 };
    ata | (SCTLR_EL2::EIS::IsSynch
        + SCTLR_EL2::EOS::IsSynch
        + SCTLR_EL2::M::Enable
        + SCTLR_EL2::C::Cacheable
        + SCTLR_EL2::SA::Enable
        + SCTLR_EL2::I::Cacheable)
        .value
        | (SCTLR_EL2_RES1::RES1_29_28::SET
            + SCTLR_EL2_RES1::RES1_23::SET
            + SCTLR_EL2_RES1::RES1_18::SET
            + SCTLR_EL2_RES1::RES1_16::SET
            + SCTLR_EL2_RES1::RES1_5_4::SET)
            .value
}

/// SCTLR_EL1 a guest's EL1 starts with: MMU and caches off, every other bit as Armv8.0 had it.
pub fn sctlr_el1_reset() -> u64 {
    (SCTLR_EL1_RES1::LSMAOE::SET
        + SCTLR_EL1_RES1::NTLSMD::SET
        + SCTLR_EL1_RES1::SPAN::SET
        + SCTLR_EL1_RES1::EIS::SET
        + SCTLR_EL1_RES1::TSCXT::SET
        + SCTLR_EL1_RES1::EOS::SET)
        .value
}

/// SCTLR_EL1 a component starts with: as a guest's, with the instruction cache on (its code
/// runs with the MMU off; its data side is cacheable through HCR_EL2.DC, see
/// [`TrapControls::component`]).
pub fn sctlr_el1_component() -> u64 {
    sctlr_el1_reset() | SCTLR_EL1::I::Cacheable.value
}

/// The PSTATE a world enters EL1 with: EL1h, with debug, SError, IRQ and FIQ masked.
pub fn spsr_el1h_masked() -> u64 {
    (SPSR_EL2::M::EL1h
        + SPSR_EL2::D::Masked
        + SPSR_EL2::A::Masked
        + SPSR_EL2::I::Masked
        + SPSR_EL2::F::Masked)
        .value
}

/// CNTHCTL_EL2: EL1 may read the physical counter and use the physical timer.
pub fn cnthctl() -> u64 {
    (CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET).value
}

/// HCRX_EL2.MSCEn (bit 11): the memory copy and set instructions may run at EL1 and EL0.
const HCRX_MSCEN: u64 = 1 << 11;

/// HCRX_EL2, on a CPU that has it (FEAT_HCX); `None` otherwise. With EL2 enabled, FEAT_MOPS's
/// CPY*/SET* are UNDEFINED at EL1 and EL0 unless HCRX_EL2.MSCEn is set, yet ID_AA64ISAR2_EL1
/// advertises them: a kernel that believes it (Linux 6.3 and later enables them for its
/// userspace) then has its processes die of SIGILL, so they are enabled. MCE2 stays clear: their
/// exceptions go to EL1, whose kernel handles them. Nothing else in HCRX_EL2 is enabled: its
/// other controls give EL1 registers (TCR2_EL1, SCTLR2_EL1...) that the world switch does not
/// carry, so a kernel must not be told it may use them.
pub fn hcrx_el2(features: &CpuFeatures) -> Option<u64> {
    features
        .hcx
        .then_some(if features.mops { HCRX_MSCEN } else { 0 })
}

/// ICC_SRE_EL2: EL2 uses the GICv3 system registers and EL1 may too.
pub fn icc_sre_el2() -> u64 {
    (ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET).value
}

#[cfg(test)]
mod tests {
    //! Each value against the literal the kernel wrote before it was composed by name.
    use super::*;

    const PLAIN: CpuFeatures = CpuFeatures {
        pa_size_field: 0b010,
        ipa_bits: 40,
        sve: false,
        sme: false,
        pointer_auth: false,
        gic_sysregs: false,
        mte: false,
        hcx: false,
        mops: false,
    };
    const RICH: CpuFeatures = CpuFeatures {
        pa_size_field: 0b101,
        ipa_bits: 48,
        sve: true,
        sme: true,
        pointer_auth: true,
        gic_sysregs: true,
        mte: true,
        hcx: true,
        mops: true,
    };

    /// The HCR_EL2 bits as a literal: VM, SWIO, FB, BSU = inner shareable, TSC, RW.
    const HCR_HOST: u64 = 1 | (1 << 1) | (1 << 9) | (0b01 << 10) | (1 << 19) | (1 << 31);

    #[test]
    fn host_hcr_is_the_literal() {
        assert_eq!(TrapControls::host(&PLAIN).hcr, HCR_HOST);
        assert_eq!(
            TrapControls::host(&RICH).hcr,
            HCR_HOST | (1 << 40) | (1 << 41) | (1 << 56)
        );
    }

    #[test]
    fn tags_are_for_the_host_and_guests_that_may_use_them_only() {
        let host = TrapControls::host(&RICH);
        let interrupts = (1 << 4) | (1 << 3);
        assert_eq!(host.guest(true).hcr, host.hcr | interrupts);
        // No tags, and ID reads trapped so that MTE can be hidden (TID3, bit 18).
        assert_eq!(
            host.guest(false).hcr,
            ((host.hcr | interrupts) & !(1 << 56)) | (1 << 18)
        );
        assert_eq!(host.guest(false).component().hcr & (1 << 18), 0);
        assert_eq!(host.component().hcr & (1 << 56), 0);
        let plain = TrapControls::host(&PLAIN);
        assert_eq!(
            plain.guest(true).hcr,
            plain.hcr | interrupts,
            "no MTE, no tags to give"
        );
    }

    #[test]
    fn mte_is_hidden_from_guests_that_may_not_use_it() {
        // ID_AA64PFR1_EL1 with MTE = 3, MTE_frac = 0xf, BT = 1, SSBS = 2.
        let raw = (3 << 8) | (0xf << 40) | 1 | (2 << 4);
        assert_eq!(guest_id_register(4, 1, raw, false), 1 | (2 << 4));
        assert_eq!(guest_id_register(4, 1, raw, true), raw);
        // Other ID registers pass through.
        assert_eq!(guest_id_register(4, 0, raw, false), raw);
        assert_eq!(guest_id_register(7, 1, raw, false), raw);
    }

    #[test]
    fn host_cptr_is_the_literal() {
        assert_eq!(TrapControls::host(&PLAIN).cptr, 0x33ff);
        assert_eq!(
            TrapControls::host(&RICH).cptr,
            0x33ff & !(1 << 8) & !(1 << 12)
        );
        let sve_only = CpuFeatures { sve: true, ..PLAIN };
        assert_eq!(TrapControls::host(&sve_only).cptr, 0x33ff & !(1 << 8));
        let sme_only = CpuFeatures { sme: true, ..PLAIN };
        assert_eq!(TrapControls::host(&sme_only).cptr, 0x33ff & !(1 << 12));
    }

    #[test]
    fn component_adds_wfi_wfe_fp_and_el1_control_traps() {
        for features in [PLAIN, RICH] {
            let host = TrapControls::host(&features);
            let component = host.component();
            // DC (12), TWI (13), TWE (14), TVM (26), TRVM (30).
            let expected =
                (host.hcr & !(1 << 56)) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 26) | (1 << 30);
            assert_eq!(component.hcr, expected);
            // Under a guest vCPU too: a component never takes the guest's interrupts.
            assert_eq!(host.guest(true).component().hcr, expected);
            assert_eq!(component.cptr, host.cptr | (1 << 10) | (1 << 31));
        }
    }

    #[test]
    fn vtcr_is_the_literal() {
        for features in [PLAIN, RICH] {
            let literal = (64 - features.ipa_bits)
                | (0b10 << 6)
                | (0b01 << 8)
                | (0b01 << 10)
                | (0b11 << 12)
                | (features.pa_size_field << 16)
                | (1 << 31);
            assert_eq!(vtcr(&features), literal);
        }
        assert_eq!(vtcr(&PLAIN), 0x8002_3598);
    }

    #[test]
    fn el2_stage1_registers_are_the_literals() {
        assert_eq!(mair_el2(&PLAIN), 0xff << 8 | 0x04);
        assert_eq!(mair_el2(&RICH), 0xf0 << 8 | 0x04);
        for features in [PLAIN, RICH] {
            let literal = 25
                | (0b01 << 8)
                | (0b01 << 10)
                | (0b11 << 12)
                | (features.pa_size_field << 16)
                | (u64::from(features.mte) << 20)
                | (1 << 23)
                | (1 << 31);
            assert_eq!(tcr_el2(39, &features), literal);
        }
        let sctlr = 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12);
        assert_eq!(sctlr_el2_mmu_on(&PLAIN), sctlr);
        assert_eq!(sctlr_el2_mmu_on(&RICH), sctlr | (1 << 43));
    }

    #[test]
    fn el1_start_state_is_the_literals() {
        assert_eq!(sctlr_el1_reset(), 0x30d0_0800);
        assert_eq!(sctlr_el1_component(), 0x30d0_0800 | (1 << 12));
        assert_eq!(spsr_el1h_masked(), 0x3c5);
    }

    #[test]
    fn timer_and_gic_controls_are_the_literals() {
        assert_eq!(cnthctl(), 0b11);
        assert_eq!(icc_sre_el2(), 0b1001);
    }

    #[test]
    fn mops_is_enabled_where_hcrx_exists() {
        assert_eq!(hcrx_el2(&PLAIN), None);
        assert_eq!(hcrx_el2(&RICH), Some(1 << 11));
        let hcx_only = CpuFeatures { hcx: true, ..PLAIN };
        assert_eq!(hcrx_el2(&hcx_only), Some(0));
    }

    #[test]
    fn a_component_under_a_deadline_gives_its_interrupts_to_el2_and_nothing_else_changes() {
        let host = TrapControls::host(&CpuFeatures::default());
        let (plain, watched) = (host.component(), host.component_under_deadline());
        assert_eq!(watched.hcr, plain.hcr | 1 << 4, "IMO");
        assert_eq!(watched.cptr, plain.cptr);
        assert_eq!(
            plain.hcr & (1 << 4),
            0,
            "a component is not interrupted otherwise"
        );
    }
}
