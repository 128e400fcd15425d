//! PSCI through the conduit the DTB's `/psci` node names: version, CPU power (`CPU_ON`,
//! `AFFINITY_INFO`; see [`crate::smp`] for starting a CPU running Rust code), and ending the run.
//!
//! Ending the run: [`system_off`] (PSCI `SYSTEM_OFF`) means success, [`system_reset`]
//! (`SYSTEM_RESET`) means failure; the hypervisor turns them into exit status 0 and non-zero.
//! Run QEMU with `-no-reboot` when starting a guest on it directly, so a reset exits QEMU too.

#[cfg(target_os = "none")]
use crate::{global::Global, smccc::Conduit};

/// PSCI return codes (Arm DEN 0022, "Return error codes"), as the signed `x0` of a 64-bit call.
pub use hv_ipc::guest_abi::psci::error;
pub use hv_ipc::guest_abi::psci::{
    AFFINITY_OFF, AFFINITY_ON, AFFINITY_ON_PENDING, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF,
    PSCI_CPU_ON_64, PSCI_FEATURES, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION, VERSION_1_1,
};

/// The name of PSCI return code `code` (`"SUCCESS"`, `"ALREADY_ON"`, ...), or `"?"`.
pub fn error_name(code: i64) -> &'static str {
    match code {
        error::SUCCESS => "SUCCESS",
        error::NOT_SUPPORTED => "NOT_SUPPORTED",
        error::INVALID_PARAMETERS => "INVALID_PARAMETERS",
        error::DENIED => "DENIED",
        error::ALREADY_ON => "ALREADY_ON",
        error::ON_PENDING => "ON_PENDING",
        error::INTERNAL_FAILURE => "INTERNAL_FAILURE",
        error::NOT_PRESENT => "NOT_PRESENT",
        error::DISABLED => "DISABLED",
        error::INVALID_ADDRESS => "INVALID_ADDRESS",
        _ => "?",
    }
}

/// The PSCI conduit; `HVC` until the DTB has been read (see [`crate::Env::psci_conduit`]).
#[cfg(target_os = "none")]
static CONDUIT: Global<Conduit> = Global::new(Conduit::Hvc);

/// Uses `conduit` for PSCI from now on.
#[cfg(target_os = "none")]
pub(crate) fn set_conduit(conduit: Conduit) {
    CONDUIT.set(conduit);
}

/// The conduit PSCI calls use.
#[cfg(target_os = "none")]
pub fn conduit() -> Conduit {
    CONDUIT.get()
}

/// A PSCI version (`PSCI_VERSION`'s result: major in bits 31:16, minor in 15:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PsciVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl PsciVersion {
    /// Decodes `PSCI_VERSION`'s `w0`, or `None` if it is negative (an error code).
    pub fn from_raw(raw: u32) -> Option<Self> {
        if raw & 0x8000_0000 != 0 {
            return None;
        }
        Some(Self {
            major: (raw >> 16) as u16,
            minor: raw as u16,
        })
    }
}

impl core::fmt::Display for PsciVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Calls `PSCI_VERSION` and returns the raw `w0`.
#[cfg(target_os = "none")]
pub fn version_raw() -> u32 {
    conduit().call(PSCI_VERSION, &[])[0] as u32
}

/// `CPU_ON` (64-bit): starts the CPU `target_mpidr` at `entry` with `x0 = context`; returns
/// the raw (signed) `x0`: [`error::SUCCESS`] or an error code.
///
/// This is the bare call: the new CPU starts with no stack and the runtime's vectors not
/// installed. To run Rust code on it, use [`crate::smp::start_secondary`].
#[cfg(target_os = "none")]
pub fn cpu_on(target_mpidr: u64, entry: u64, context: u64) -> i64 {
    conduit().call(PSCI_CPU_ON_64, &[target_mpidr, entry, context])[0] as i64
}

/// `CPU_OFF`: powers the calling CPU off. Returns only if the call failed, with its (signed)
/// `x0` (e.g. [`error::DENIED`]).
#[cfg(target_os = "none")]
pub fn cpu_off() -> i64 {
    conduit().call(PSCI_CPU_OFF, &[])[0] as i64
}

/// `AFFINITY_INFO` (64-bit) of `target_affinity` at `lowest_affinity_level` (0 = the CPU
/// itself); returns the raw (signed) `x0`: [`AFFINITY_ON`], [`AFFINITY_OFF`],
/// [`AFFINITY_ON_PENDING`] or an error code.
#[cfg(target_os = "none")]
pub fn affinity_info(target_affinity: u64, lowest_affinity_level: u64) -> i64 {
    conduit().call(
        PSCI_AFFINITY_INFO_64,
        &[target_affinity, lowest_affinity_level],
    )[0] as i64
}

/// Powers the (virtual) machine off: the run ends successfully. Parks the CPU if the call
/// returns.
#[cfg(target_os = "none")]
pub fn system_off() -> ! {
    conduit().call(PSCI_SYSTEM_OFF, &[]);
    crate::arch::halt()
}

/// Resets the (virtual) machine: the run ends as a failure. Parks the CPU if the call returns.
#[cfg(target_os = "none")]
pub fn system_reset() -> ! {
    conduit().call(PSCI_SYSTEM_RESET, &[]);
    crate::arch::halt()
}

/// Ends the run: [`system_off`] if `success`, else [`system_reset`].
#[cfg(target_os = "none")]
pub fn exit(success: bool) -> ! {
    if success {
        system_off()
    } else {
        system_reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names() {
        assert_eq!(error_name(0), "SUCCESS");
        assert_eq!(error_name(-4), "ALREADY_ON");
        assert_eq!(error_name(-9), "INVALID_ADDRESS");
        assert_eq!(error_name(-10), "?");
        assert_eq!(error_name(1), "?");
    }

    #[test]
    fn versions_decode() {
        assert_eq!(
            PsciVersion::from_raw(0x1_0001),
            Some(PsciVersion { major: 1, minor: 1 })
        );
        assert_eq!(PsciVersion::from_raw(0xffff_ffff), None);
    }
}
