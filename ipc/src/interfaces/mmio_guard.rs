//! The MMIO guard's interface for other components: may a VM's access to an emulated device be
//! emulated? The guest-facing side (MMIO_GUARD_INFO, ENROLL, MAP, UNMAP, HYP_MEMINFO) arrives as
//! guest traps routed by function ID; this interface is how the VM manager asks before it
//! emulates an access.
//!
//! A verdict may be kept ([`MmioGuardReply::Verdict`]'s `cacheable`): the guard then sets
//! [`NOTIFY_MMIO_GUARD_CHANGED`] on the asker whenever any VM's enrolment or granules change,
//! and when the guard itself starts again; the asker drops what it kept when it sees the bit,
//! which the kernel hands over with the asker's next call at the latest (`hv_ipc::abi`, RECV's
//! x4). A verdict is only cacheable when the manifest lets the guard notify the asker.

/// The MMIO guard's granule (what MMIO_GUARD_INFO answers): a kept verdict holds for every
/// access of the same VM within the granule of the access it was given for.
pub const GRANULE_SIZE: u64 = 4096;

/// Notification bit the MMIO guard sets on the components that keep its verdicts when they may
/// have changed.
pub const NOTIFY_MMIO_GUARD_CHANGED: u64 = 1 << 1;

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
                /// The asker may keep the verdict, for accesses within the same granule, until
                /// the guard sets [`NOTIFY_MMIO_GUARD_CHANGED`] on it.
                cacheable: bool,
            },
        }
    }
}
