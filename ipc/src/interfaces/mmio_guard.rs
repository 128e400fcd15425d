//! The MMIO guard's interface for other components: may a VM's access to an emulated device be
//! emulated? The guest-facing side (MMIO_GUARD_INFO, ENROLL, MAP, UNMAP, HYP_MEMINFO) arrives as
//! guest traps routed by function ID; this interface is how the VM manager asks before it
//! emulates an access.

use crate::abi;
use crate::addr::Ipa;

crate::interface! {
    /// Questions to the MMIO guard.
    pub interface MmioGuardInterface {
        id = abi::interface::MMIO_GUARD;
        name = "mmio-guard";
        server = MmioGuardServer;

        /// What the MMIO guard is asked.
        request MmioGuardRequest {
            /// May `vm` access `[ipa, ipa + len)` as emulated MMIO? Yes if the VM is not
            /// enrolled (and not forced to be), or if the granules of both the first and the last
            /// byte are mapped.
            Check {
                /// The VM.
                vm: u16,
                /// First byte.
                ipa: Ipa,
                /// Length in bytes (1..=8).
                len: u64,
            } => check,
        }

        /// What the MMIO guard answers.
        reply MmioGuardReply {
            /// The answer to [`MmioGuardRequest::Check`].
            Verdict {
                /// Emulate the access (true) or refuse it with an external abort.
                allowed: bool,
                /// The VM is enrolled (by its own ENROLL or by the manifest).
                enrolled: bool,
            },
        }
    }
}
