//! SMC Calling Convention helpers: the conduit (`HVC #0` or `SMC #0`) and SMC64 calls.
//!
//! The calls themselves are the `smccc` crate's [`hvc64`](::smccc::hvc64) and
//! [`smc64`](::smccc::smc64): the function ID goes in `w0`, up to 17 arguments in `x1`-`x17`,
//! and all of `x0`-`x17` come back. [`hvc_id_only`] is a leaner HVC for benchmarks.
//!
//! The numbers (return codes, function IDs) are the hypervisor's own definitions in
//! `hv_ipc::guest_abi`, re-exported here.

/// The hypervisor's own vendor-hypervisor calls (HYP_PING_SUPERVISOR, the host's
/// page-ownership calls and their return codes).
pub use hv_ipc::guest_abi::host;
/// The vendor-hypervisor calls of a KVM-compatible hypervisor (Linux
/// `include/linux/arm-smccc.h`; the MMIO guard calls in Android's numbering), all fast calls.
pub use hv_ipc::guest_abi::kvm;
/// `NOT_SUPPORTED` (an unknown function ID) and `INVALID_PARAMETER` (bad arguments), the SMCCC
/// return values, as a signed `x0`.
pub use hv_ipc::guest_abi::smccc::{INVALID_PARAMETER, NOT_SUPPORTED};

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
