//! The boot table: which part of RAM the hypervisor keeps, where each payload sits in the image
//! file and where the kernel copies it, the components, and how the host VM is entered; and the
//! checks that refuse a table the kernel could not boot. The byte layout is in `encoding`, the
//! guest VMs' checks in `vms`.

use crate::component::{ComponentDescriptor, MESSAGE_BUFFER_LEN, ROUTE_HOST_STAGE2};
use crate::range::PhysRange;
use crate::vm::{MAX_GUESTS, VmDescriptor};

mod encoding;
mod vms;

/// First bytes of a boot table.
pub const BOOT_TABLE_MAGIC: [u8; 8] = *b"HVBOOT\0\0";
/// Layout version of the boot table; bumped on any incompatible change.
pub const BOOT_TABLE_VERSION: u32 = 5;
/// Size in bytes of the space the kernel image reserves for the table.
pub const BOOT_TABLE_SIZE: usize = 4096;
/// Most payloads one image carries.
pub const MAX_PAYLOADS: usize = 16;
/// Most components one image carries.
pub const MAX_COMPONENTS: usize = 8;
// A grant names components by bit in a `u32` (`ComponentDescriptor::may_notify`).
const _: () = assert!(MAX_COMPONENTS < 32);
/// Most emulated device ranges of the host VM.
pub const MAX_EMULATED: usize = 16;

/// What a payload is, so the kernel knows what to do with it beyond copying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PayloadKind {
    /// The host VM's kernel (an arm64 `Image` or anything that boots like one).
    HostKernel = 1,
    /// The flattened device tree the host VM receives in x0.
    HostDtb = 2,
    /// The host's initial ramdisk (already named in the host DTB's `/chosen`).
    HostInitrd = 3,
    /// A component's pristine image, kept in the hypervisor's region so the component can be
    /// (re)started from it.
    ComponentImage = 4,
    /// A guest VM's pristine image (kernel, DTB or initrd), kept in the hypervisor's region;
    /// a `VmDescriptor` names where the kernel copies it at boot and at each reset.
    VmImage = 5,
}

impl PayloadKind {
    fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::HostKernel),
            2 => Some(Self::HostDtb),
            3 => Some(Self::HostInitrd),
            4 => Some(Self::ComponentImage),
            5 => Some(Self::VmImage),
            _ => None,
        }
    }
}

/// One blob carried in the image file and copied to its place at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// What the blob is.
    pub kind: PayloadKind,
    /// Offset of the blob from the start of the image file.
    pub file_offset: u64,
    /// Bytes in the file.
    pub file_size: u64,
    /// Physical address the kernel copies the blob to.
    pub load_address: u64,
}

impl Payload {
    /// Where the payload lands in physical memory.
    pub fn destination(&self) -> PhysRange {
        PhysRange {
            start: self.load_address,
            end: self.load_address + self.file_size,
        }
    }
}

/// Everything the kernel needs to know about the composed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootTable {
    /// RAM the image was composed for; the kernel checks the machine has it.
    pub ram: PhysRange,
    /// RAM the hypervisor keeps: absent from the host's stage 2, reserved in the host DTB.
    pub hypervisor: PhysRange,
    /// Address the host VM's first vCPU starts at.
    pub host_entry: u64,
    /// The host's stage-2 root table, inside the memory of the component the host's stage-2
    /// faults are routed to (0: the kernel builds a static identity map instead).
    pub host_stage2_root: u64,
    /// The blobs to copy, at most [`MAX_PAYLOADS`].
    payloads: [Option<Payload>; MAX_PAYLOADS],
    /// The components, at most [`MAX_COMPONENTS`]; the index is the component's id.
    components: [Option<ComponentDescriptor>; MAX_COMPONENTS],
    /// Device ranges the host VM's stage 2 leaves unmapped because the manifest makes them
    /// emulated; empty slots are empty ranges.
    pub host_emulated: [PhysRange; MAX_EMULATED],
    /// The guest VMs, at most [`MAX_GUESTS`], in VM id order.
    vms: [Option<VmDescriptor>; MAX_GUESTS],
}

/// Why a boot table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootTableError {
    /// The bytes are shorter than the table they claim to hold.
    Truncated,
    /// No boot table magic: the image was not composed, or composed for another layout.
    BadMagic,
    /// The table was written by a composer with another layout version.
    UnsupportedVersion(u32),
    /// More payloads than [`MAX_PAYLOADS`].
    TooManyPayloads(u32),
    /// A payload kind the kernel does not know.
    UnknownPayloadKind(u32),
    /// A range whose end lies before its start, or that wraps.
    BadRange,
    /// A flag holds something other than 0 or 1.
    BadFlag,
    /// The hypervisor's region is not inside RAM.
    HypervisorOutsideRam,
    /// Payload `index` does not fit in the image file.
    PayloadOutsideImage(usize),
    /// Payload `index` would land outside RAM or on the hypervisor's region.
    PayloadDestinationInvalid(usize),
    /// Payloads `a` and `b` would land on each other.
    PayloadsOverlap(usize, usize),
    /// Two payloads of one kind.
    DuplicatePayload(PayloadKind),
    /// The host kernel or DTB payload is missing.
    MissingPayload(PayloadKind),
    /// The host entry point lies outside the host kernel payload.
    EntryOutsideKernel,
    /// Payload `index` starts inside the kernel's own memory (its bss or stacks), which the
    /// kernel clears before it copies payloads.
    PayloadOverlapsKernel(usize),
    /// Payload `index` would move to a lower address, or out of file order; copying it could
    /// overwrite a payload not yet moved.
    PayloadMovesBackwards(usize),
    /// More guest VMs than [`MAX_GUESTS`].
    TooManyVms(u32),
    /// More components than [`MAX_COMPONENTS`].
    TooManyComponents(u32),
    /// Component `index`'s region, entry or buffers are misplaced (outside the hypervisor's
    /// region, on the kernel, on another component, or its entry/buffers outside its region).
    ComponentMisplaced(usize),
    /// Component `index`'s image store is not a component-image payload's destination, or is
    /// larger than its region.
    ComponentImageMissing(usize),
    /// Two components serve one interface, or take one route.
    ComponentConflict(usize, usize),
    /// Component `index` may notify a component the table does not have, or itself.
    ComponentGrantInvalid(usize),
    /// The host's stage-2 root is not a page inside the memory of the component the host's
    /// stage-2 faults go to.
    HostStage2RootMisplaced,
    /// Guest VM `index` (its position in the table) has id 0 (the host's) or one above
    /// [`MAX_GUESTS`].
    VmIdInvalid(usize),
    /// Guest VMs `a` and `b` have one id.
    VmIdDuplicate(usize, usize),
    /// Guest VM `index`'s memory is empty or its start or end is not 2 MiB aligned (stage 2
    /// maps guest RAM in 2 MiB blocks).
    VmMemoryMisaligned(usize),
    /// Guest VM `index`'s memory is outside RAM or on the hypervisor's region.
    VmMemoryMisplaced(usize),
    /// Guest VM `index`'s memory is on a host payload's destination.
    VmMemoryOnHostPayload(usize),
    /// Guest VMs `a` and `b` have overlapping memory.
    VmMemoryOverlap(usize, usize),
    /// Guest VM `index`'s RAM IPA is not 2 MiB aligned, or its RAM's IPA range wraps.
    VmRamIpaMisaligned(usize),
    /// Guest VM `index` has no vCPU, a CPU index of [`crate::MAX_CPUS`] or above, a CPU listed
    /// twice, or a CPU after the first [`crate::NO_CPU`].
    VmCpusInvalid(usize),
    /// Guest VMs `a` and `b` are pinned to one physical CPU.
    VmCpuShared(usize, usize),
    /// Guest VM `index`'s stage-2 root is not a page inside the memory of the component routed
    /// the host's stage-2 faults (which writes guests' tables too), or is another VM's or the
    /// host's root.
    VmStage2RootMisplaced(usize),
    /// Guest VM `index`'s entry point is outside its RAM (IPA).
    VmEntryOutsideRam(usize),
    /// Guest VM `index`'s DTB address is outside its RAM (IPA) or not 8-byte aligned.
    VmDtbOutsideRam(usize),
    /// An image of guest VM `index` is not kept in a VM-image payload's destination (inside
    /// the hypervisor's region, off every component's region).
    VmImageMissing(usize),
    /// An image of guest VM `index` would be copied outside its memory, or onto another of
    /// its images.
    VmImageMisplaced(usize),
}

impl BootTable {
    /// A table with no payloads yet.
    pub fn new(ram: PhysRange, hypervisor: PhysRange, host_entry: u64) -> Self {
        Self {
            ram,
            hypervisor,
            host_entry,
            host_stage2_root: 0,
            payloads: [None; MAX_PAYLOADS],
            components: [None; MAX_COMPONENTS],
            host_emulated: [PhysRange { start: 0, end: 0 }; MAX_EMULATED],
            vms: [None; MAX_GUESTS],
        }
    }

    /// Adds a guest VM; fails if the table is full.
    pub fn push_vm(&mut self, vm: VmDescriptor) -> Result<(), BootTableError> {
        let slot = self
            .vms
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(BootTableError::TooManyVms(MAX_GUESTS as u32 + 1))?;
        *slot = Some(vm);
        Ok(())
    }

    /// The guest VMs.
    pub fn vms(&self) -> impl Iterator<Item = &VmDescriptor> {
        self.vms.iter().flatten()
    }

    /// The host VM's emulated device ranges.
    pub fn emulated(&self) -> impl Iterator<Item = &PhysRange> {
        self.host_emulated.iter().filter(|range| !range.is_empty())
    }

    /// Adds a component; fails if the table is full.
    pub fn push_component(&mut self, component: ComponentDescriptor) -> Result<(), BootTableError> {
        let slot = self
            .components
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(BootTableError::TooManyComponents(MAX_COMPONENTS as u32 + 1))?;
        *slot = Some(component);
        Ok(())
    }

    /// The components; a component's id is its position here.
    pub fn components(&self) -> impl Iterator<Item = &ComponentDescriptor> {
        self.components.iter().flatten()
    }

    /// Checks the components against the layout: each region inside the hypervisor's region
    /// and past the kernel's own memory (`kernel_end`), off every other region and image store;
    /// entry and message buffers inside its region; its image store a component-image
    /// payload's destination no larger than the region; one server per interface and one
    /// component per route; notifications granted only to other components of the table.
    pub fn validate_components(&self, kernel_end: u64) -> Result<(), BootTableError> {
        let components = || self.components().enumerate();
        let count = self.components().count();
        if self.host_stage2_root != 0 {
            let root = self.host_stage2_root;
            let in_owner = self.components().any(|component| {
                component.routes & ROUTE_HOST_STAGE2 != 0
                    && root >= component.region.start
                    && root.saturating_add(4096) <= component.region.end
            });
            if !root.is_multiple_of(4096) || !in_owner {
                return Err(BootTableError::HostStage2RootMisplaced);
            }
        }
        for (index, component) in components() {
            let region = component.region;
            let inside = |address: u64, len: u64| {
                address >= region.start && address.saturating_add(len) <= region.end
            };
            let placed = !region.is_empty()
                && self.hypervisor.contains_range(&region)
                && region.start >= kernel_end
                && !region.overlaps(&component.image_store)
                && inside(component.entry, 4)
                && inside(component.ipc_rx, MESSAGE_BUFFER_LEN)
                && inside(component.ipc_tx, MESSAGE_BUFFER_LEN);
            if !placed {
                return Err(BootTableError::ComponentMisplaced(index));
            }
            let stored = self.payloads().any(|payload| {
                payload.kind == PayloadKind::ComponentImage
                    && payload.destination() == component.image_store
            });
            if !stored || component.image_store.len() > region.len() {
                return Err(BootTableError::ComponentImageMissing(index));
            }
            // Bits from `count` up name no component.
            let others = ((1u32 << count) - 1) & !(1u32 << index);
            if component.may_notify & !others != 0 {
                return Err(BootTableError::ComponentGrantInvalid(index));
            }
            for (other_index, other) in components().take(index) {
                let collides = region.overlaps(&other.region)
                    || region.overlaps(&other.image_store)
                    || component.image_store.overlaps(&other.region);
                if collides {
                    return Err(BootTableError::ComponentMisplaced(index));
                }
                let same_interface = component.serves != 0 && component.serves == other.serves;
                let ranges_overlap = component.smccc_ranges.iter().any(|&(first, last)| {
                    (first, last) != (0, 0)
                        && other.smccc_ranges.iter().any(|&(other_first, other_last)| {
                            (other_first, other_last) != (0, 0)
                                && first <= other_last
                                && other_first <= last
                        })
                });
                if same_interface || ranges_overlap || component.routes & other.routes != 0 {
                    return Err(BootTableError::ComponentConflict(other_index, index));
                }
            }
        }
        Ok(())
    }

    /// Adds a payload; fails if the table is full.
    pub fn push(&mut self, payload: Payload) -> Result<(), BootTableError> {
        let slot = self
            .payloads
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(BootTableError::TooManyPayloads(MAX_PAYLOADS as u32 + 1))?;
        *slot = Some(payload);
        Ok(())
    }

    /// The payloads in the order they were added.
    pub fn payloads(&self) -> impl Iterator<Item = &Payload> {
        self.payloads.iter().flatten()
    }

    /// The payload of one kind, if present.
    pub fn payload(&self, kind: PayloadKind) -> Option<&Payload> {
        self.payloads().find(|payload| payload.kind == kind)
    }

    /// Checks the table against an image file of `image_len` bytes: every payload inside the
    /// file, every destination off each other and inside RAM, off the hypervisor's region
    /// (component and VM images: inside it); the emulated device ranges page aligned and
    /// outside RAM.
    pub fn validate(&self, image_len: u64) -> Result<(), BootTableError> {
        if self.ram.is_empty() || self.hypervisor.is_empty() {
            return Err(BootTableError::BadRange);
        }
        let page_aligned = |value: u64| value.is_multiple_of(4096);
        for range in self.emulated() {
            if !page_aligned(range.start) || !page_aligned(range.end) || range.overlaps(&self.ram) {
                return Err(BootTableError::BadRange);
            }
        }
        if !self.ram.contains_range(&self.hypervisor) {
            return Err(BootTableError::HypervisorOutsideRam);
        }
        for (index, payload) in self.payloads().enumerate() {
            let in_file = payload
                .file_offset
                .checked_add(payload.file_size)
                .is_some_and(|end| end <= image_len);
            if !in_file {
                return Err(BootTableError::PayloadOutsideImage(index));
            }
            let destination = PhysRange::from_size(payload.load_address, payload.file_size)
                .ok_or(BootTableError::PayloadDestinationInvalid(index))?;
            let kept_by_hypervisor = matches!(
                payload.kind,
                PayloadKind::ComponentImage | PayloadKind::VmImage
            );
            let placed = if kept_by_hypervisor {
                self.hypervisor.contains_range(&destination)
            } else {
                self.ram.contains_range(&destination) && !destination.overlaps(&self.hypervisor)
            };
            if !placed {
                return Err(BootTableError::PayloadDestinationInvalid(index));
            }
            for (other_index, other) in self.payloads().enumerate().take(index) {
                if other.kind == payload.kind && !kept_by_hypervisor {
                    return Err(BootTableError::DuplicatePayload(payload.kind));
                }
                if other.destination().overlaps(&destination) {
                    return Err(BootTableError::PayloadsOverlap(other_index, index));
                }
            }
        }
        let kernel = self
            .payload(PayloadKind::HostKernel)
            .ok_or(BootTableError::MissingPayload(PayloadKind::HostKernel))?;
        self.payload(PayloadKind::HostDtb)
            .ok_or(BootTableError::MissingPayload(PayloadKind::HostDtb))?;
        let entry_ok = self.host_entry >= kernel.load_address
            && self.host_entry < kernel.load_address + kernel.file_size;
        if !entry_ok {
            return Err(BootTableError::EntryOutsideKernel);
        }
        Ok(())
    }

    /// Checks that the kernel can copy the payloads into place from an image loaded at
    /// `image_address` whose own memory (code, data, bss, stacks) spans `kernel_footprint`
    /// bytes: no payload starts inside that footprint, and every payload moves up, in file
    /// order, so copying from the highest destination down never overwrites a payload that
    /// has not moved yet.
    pub fn validate_placement(
        &self,
        image_address: u64,
        kernel_footprint: u64,
    ) -> Result<(), BootTableError> {
        let mut previous_destination = 0;
        for (index, payload) in self.payloads().enumerate() {
            if payload.file_offset < kernel_footprint {
                return Err(BootTableError::PayloadOverlapsKernel(index));
            }
            let source = image_address.saturating_add(payload.file_offset);
            if payload.load_address < source || payload.load_address < previous_destination {
                return Err(BootTableError::PayloadMovesBackwards(index));
            }
            previous_destination = payload.load_address;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
