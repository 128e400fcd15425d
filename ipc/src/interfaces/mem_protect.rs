//! The memory-protection component's interface for other components: guest VM memory.
//!
//! The VM manager owns a guest's memslots (which IPA range each physical range backs; DESIGN
//! decision 3); the memory-protection component owns every page's ownership and writes every
//! stage 2. So the VM manager creates a guest's memory by calling here: each memslot is checked
//! against the ownership table (every page host-owned RAM, outside the hypervisor's region and
//! every other guest's), given to the guest (the host's stage 2 never maps it again, and a host
//! access gets pKVM's injected abort) and mapped in full in the guest's stage 2 with the
//! largest blocks that fit, before the guest first runs: a running guest takes no stage-2
//! fault on its RAM (locked memslots, seed 002). A guest's stage 2 lives in the component's
//! memory at the root the boot table names for that VM; the kernel loads it when it runs one of
//! the VM's vCPUs.

use crate::abi;

crate::interface! {
    /// Guest memory, asked of the memory-protection component.
    pub interface MemProtectInterface {
        id = abi::interface::MEM_PROTECT;
        name = "mem-protect";
        server = MemProtectServer;

        /// What the memory-protection component is asked.
        request MemProtectRequest {
            /// Give guest VM `vm` the memslot IPA `[ipa, ipa + size)` → PA `[pa, pa + size)`
            /// (page aligned, non-empty) and map it in full. Refused, changing nothing, if any
            /// page is not the host's RAM to give or the IPA range overlaps another memslot of
            /// the VM.
            AddMemslot {
                /// The guest (not the host, 0).
                vm: u16,
                /// First IPA.
                ipa: u64,
                /// First physical address.
                pa: u64,
                /// Bytes.
                size: u64,
            } => add_memslot,
            /// Map a device passed through to guest VM `vm`: IPA `[ipa, ipa + size)` → PA
            /// `[pa, pa + size)`, page aligned, outside RAM, Device-nGnRE, never executable.
            MapDevice {
                /// The guest.
                vm: u16,
                /// First IPA.
                ipa: u64,
                /// First physical address.
                pa: u64,
                /// Bytes.
                size: u64,
            } => map_device,
            /// Zero every page of guest VM `vm`'s memslots and clean them to the point of
            /// coherency (a reset); its mappings stay.
            WipeVm {
                /// The guest.
                vm: u16,
            } => wipe_vm,
        }

        /// What the memory-protection component answers.
        reply MemProtectReply {
            /// Done; `leaves` stage-2 entries were written (0 for a wipe).
            Done {
                /// Leaf entries written.
                leaves: u64,
            },
            /// Refused; nothing changed.
            Refused {
                /// Why.
                reason: MemProtectRefusal,
            },
        }

        /// Why a request was refused.
        enum MemProtectRefusal {
            /// `vm` is the host or no guest of the configuration.
            NotAGuest,
            /// A range is empty, unaligned, wraps, or lies outside what it must (RAM for a
            /// memslot, outside RAM for a device, below the IPA limit).
            BadRange,
            /// A page of the memslot is not the host's to give (the hypervisor's, another
            /// guest's, shared or lent).
            NotHostOwned,
            /// The IPA range overlaps one of the VM's memslots or devices.
            Overlaps,
            /// The VM has as many memslots as the component keeps.
            TooManySlots,
            /// The guest's table pool is exhausted.
            OutOfTables,
            /// The kernel refused to zero the pages.
            WipeFailed,
        }
    }
}
