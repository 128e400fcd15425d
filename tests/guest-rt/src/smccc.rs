//! SMC Calling Convention helpers: the conduit (`HVC #0` or `SMC #0`) and SMC64 calls.
//!
//! The calls themselves are the `smccc` crate's [`hvc64`](::smccc::hvc64) and
//! [`smc64`](::smccc::smc64): the function ID goes in `w0`, up to 17 arguments in `x1`-`x17`,
//! and all of `x0`-`x17` come back. [`hvc_id_only`] is a leaner HVC for benchmarks.

/// `NOT_SUPPORTED`, the SMCCC return value for an unknown function ID (as a signed `x0`).
pub const NOT_SUPPORTED: i64 = -1;
/// `INVALID_PARAMETER`, the SMCCC return value for bad arguments (as a signed `x0`).
pub const INVALID_PARAMETER: i64 = -3;

/// The vendor-hypervisor calls of a KVM-compatible hypervisor (Linux
/// `include/linux/arm-smccc.h`; the MMIO guard calls in Android's numbering), all fast calls.
pub mod kvm {
    /// `ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID` (SMC32): the vendor hypervisor's UID in w0..w3.
    pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_FF01;
    /// KVM's UID `28b46fb6-2ec5-11e9-a9ca-4b564d003a74` as [`VENDOR_HYP_CALL_UID`] returns it
    /// (`ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0..3`).
    pub const KVM_UID_REGS: [u64; 4] = [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d];
    /// `ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID` (SMC32): the bitmap of KVM functions 0..127
    /// in x0..x3.
    pub const FEATURES: u32 = 0x8600_0000;
    /// KVM function number of FEATURES.
    pub const FUNC_FEATURES: u32 = 0;
    /// KVM function number of HYP_MEMINFO.
    pub const FUNC_HYP_MEMINFO: u32 = 2;
    /// KVM function number of MMIO_GUARD_INFO.
    pub const FUNC_MMIO_GUARD_INFO: u32 = 5;
    /// KVM function number of MMIO_GUARD_ENROLL.
    pub const FUNC_MMIO_GUARD_ENROLL: u32 = 6;
    /// KVM function number of MMIO_GUARD_MAP.
    pub const FUNC_MMIO_GUARD_MAP: u32 = 7;
    /// KVM function number of MMIO_GUARD_UNMAP.
    pub const FUNC_MMIO_GUARD_UNMAP: u32 = 8;
    /// HYP_MEMINFO (SMC64): the hypervisor's memory-protection granule in x0.
    pub const HYP_MEMINFO: u32 = 0xC600_0000 | FUNC_HYP_MEMINFO;
    /// MMIO_GUARD_INFO (SMC64): the MMIO guard's granule in x0.
    pub const MMIO_GUARD_INFO: u32 = 0xC600_0000 | FUNC_MMIO_GUARD_INFO;
    /// MMIO_GUARD_ENROLL (SMC64): from now on only accesses to MAPped granules are emulated.
    pub const MMIO_GUARD_ENROLL: u32 = 0xC600_0000 | FUNC_MMIO_GUARD_ENROLL;
    /// MMIO_GUARD_MAP (SMC64): x1 = IPA of a granule the guest uses as MMIO (x2 = a MAIR
    /// index, which hypervisors ignore).
    pub const MMIO_GUARD_MAP: u32 = 0xC600_0000 | FUNC_MMIO_GUARD_MAP;
    /// MMIO_GUARD_UNMAP (SMC64): x1 = IPA of a granule no longer used as MMIO.
    pub const MMIO_GUARD_UNMAP: u32 = 0xC600_0000 | FUNC_MMIO_GUARD_UNMAP;
}

/// The instruction used to reach firmware services (PSCI and other SMCCC calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `HVC #0`.
    Hvc,
    /// `SMC #0`.
    Smc,
}

impl Conduit {
    /// Parses a DTB `method` property (`"hvc"` or `"smc"`).
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "hvc" => Some(Self::Hvc),
            "smc" => Some(Self::Smc),
            _ => None,
        }
    }

    /// `"hvc"` or `"smc"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
        }
    }

    /// Makes an SMC64/HVC64 call with all 17 argument registers; returns `x0`..`x17`.
    #[cfg(target_os = "none")]
    #[inline(always)]
    pub fn call64(self, function: u32, args: [u64; 17]) -> [u64; 18] {
        match self {
            Self::Hvc => ::smccc::hvc64(function, args),
            Self::Smc => ::smccc::smc64(function, args),
        }
    }

    /// Makes a call with up to 17 arguments (the remaining argument registers are zero);
    /// returns `x0`..`x17`.
    ///
    /// # Panics
    ///
    /// If `args` has more than 17 elements.
    #[cfg(target_os = "none")]
    pub fn call(self, function: u32, args: &[u64]) -> [u64; 18] {
        let mut regs = [0; 17];
        regs[..args.len()].copy_from_slice(args);
        self.call64(function, regs)
    }
}

/// `HVC #0` with `function` and up to 17 arguments; returns `x0`..`x17`.
///
/// # Panics
///
/// If `args` has more than 17 elements.
#[cfg(target_os = "none")]
pub fn hvc(function: u32, args: &[u64]) -> [u64; 18] {
    Conduit::Hvc.call(function, args)
}

/// `SMC #0` with `function` and up to 17 arguments; returns `x0`..`x17`.
///
/// # Panics
///
/// If `args` has more than 17 elements.
#[cfg(target_os = "none")]
pub fn smc(function: u32, args: &[u64]) -> [u64; 18] {
    Conduit::Smc.call(function, args)
}

/// `HVC #0` with just the function ID in `w0` (no argument set-up, `x1`-`x17` treated as
/// clobbered); returns `x0`. Meant for timing loops, where every guest instruction counts.
#[cfg(target_os = "none")]
#[inline(always)]
pub fn hvc_id_only(function: u32) -> u64 {
    crate::arch::hvc_id_only(function)
}
