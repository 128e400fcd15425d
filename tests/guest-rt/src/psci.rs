//! PSCI through the conduit the DTB's `/psci` node names: version, and ending the run.
//!
//! Ending the run: [`system_off`] (PSCI `SYSTEM_OFF`) means success, [`system_reset`]
//! (`SYSTEM_RESET`) means failure; the hypervisor turns them into exit status 0 and non-zero.
//! Run QEMU with `-no-reboot` when starting a guest on it directly, so a reset exits QEMU too.

#[cfg(target_os = "none")]
use crate::{global::Global, smccc::Conduit};

pub use ::smccc::psci::{PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION};

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
