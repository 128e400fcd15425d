//! The contract between the image composer (`tools/xtask`) and the EL2 kernel.
//!
//! The composer writes a [`BootTable`] into the kernel image at the symbol `__boot_table`; the
//! kernel reads it on the boot CPU before anything else runs at EL1. The table says which part of
//! RAM the hypervisor keeps for itself, where each payload sits in the image file and where the
//! kernel must copy it, and how the host VM is entered.
//!
//! Why copy at boot instead of placing payloads at their final address in the file: the loader
//! (QEMU's `-kernel`, the Pi's firmware) puts the whole file at one address right behind the
//! hypervisor, but the host kernel must start at a fixed, 2 MiB-aligned address past the
//! hypervisor's reserved region. Padding the file up to that address would add tens of MiB of
//! zeros to every image.
//!
//! The layout is fixed little-endian bytes, encoded and decoded by hand (no `repr(C)` casts), so
//! both sides can test it on the host and a malformed table is refused with a reason.
#![cfg_attr(not(test), no_std)]

/// First bytes of a boot table.
pub const BOOT_TABLE_MAGIC: [u8; 8] = *b"HVBOOT\0\0";
/// Layout version of the boot table; bumped on any incompatible change.
pub const BOOT_TABLE_VERSION: u32 = 2;
/// Size in bytes of the space the kernel image reserves for the table.
pub const BOOT_TABLE_SIZE: usize = 4096;
/// Most payloads one image carries.
pub const MAX_PAYLOADS: usize = 16;
/// Most components one image carries.
pub const MAX_COMPONENTS: usize = 8;
/// Length of a component's name in the table (NUL-padded UTF-8).
pub const COMPONENT_NAME_LEN: usize = 16;
/// Bytes of a message buffer (`__ipc_rx`, `__ipc_tx`); equals `hv_ipc::abi::MESSAGE_MAX`.
pub const MESSAGE_BUFFER_LEN: u64 = 256;
/// Route bit: SMCCC calls (HVC, trapped SMC) from VMs go to the component with this bit,
/// unless another component's SMCCC ranges name the function ID.
pub const ROUTE_SMCCC: u32 = 1 << 0;
/// Route bit: a VM's accesses to the devices the manifest makes emulated go to the component
/// with this bit.
pub const ROUTE_MMIO: u32 = 1 << 1;
/// Route bit: the host VM's stage-2 faults go to the component with this bit, which builds
/// the host's stage 2 (its root is `BootTable::host_stage2_root`).
pub const ROUTE_HOST_STAGE2: u32 = 1 << 2;
/// Most SMCCC function-ID ranges one component takes.
pub const MAX_SMCCC_RANGES: usize = 4;
/// Most emulated device ranges of the host VM.
pub const MAX_EMULATED: usize = 4;
/// Byte offset of the `image_size` field in the arm64 Image header the kernel starts with.
pub const IMAGE_HEADER_SIZE_OFFSET: usize = 16;
/// Byte offset of the "ARM\x64" magic in an arm64 Image header.
pub const IMAGE_HEADER_MAGIC_OFFSET: usize = 0x38;
/// The arm64 Image header magic.
pub const IMAGE_HEADER_MAGIC: [u8; 4] = *b"ARM\x64";

const HEADER_LEN: usize = 8 + 4 + 4 + 8 * 6 + 8 + 16 * MAX_EMULATED;
const PAYLOAD_LEN: usize = 4 + 4 + 8 * 3;
const COMPONENT_LEN: usize =
    COMPONENT_NAME_LEN + 8 * 4 + 8 * 3 + 2 + 2 + 4 * 3 + 8 * MAX_SMCCC_RANGES;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// First byte past the end.
    pub end: u64,
}

impl PhysRange {
    /// The range `[start, start + size)`; `None` if it wraps.
    pub const fn from_size(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(Self { start, end }),
            None => None,
        }
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True if `other` lies wholly inside `self`.
    pub const fn contains_range(&self, other: &PhysRange) -> bool {
        other.start >= self.start && other.end <= self.end
    }

    /// True if the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

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
}

impl PayloadKind {
    fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::HostKernel),
            2 => Some(Self::HostDtb),
            3 => Some(Self::HostInitrd),
            4 => Some(Self::ComponentImage),
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

/// One component: where it lives, how it starts, and what the manifest grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentDescriptor {
    /// Its name (NUL-padded UTF-8), for logs.
    pub name: [u8; COMPONENT_NAME_LEN],
    /// Its memory: the only RAM its stage 2 maps. The image is linked at `region.start`.
    pub region: PhysRange,
    /// Where the kernel keeps its pristine image (inside the hypervisor's region, outside
    /// every component's).
    pub image_store: PhysRange,
    /// Entry point.
    pub entry: u64,
    /// Its receive buffer (`__ipc_rx`).
    pub ipc_rx: u64,
    /// Its send buffer (`__ipc_tx`).
    pub ipc_tx: u64,
    /// The interface it serves (0: none).
    pub serves: u16,
    /// Interfaces it may call: bit `n` for interface id `n`.
    pub may_call: u32,
    /// Kernel operations it may use: bit `n` for operation `n`.
    pub kernel_ops: u32,
    /// Guest traps routed to it (`ROUTE_*` bits).
    pub routes: u32,
    /// SMCCC function IDs routed to it, as inclusive `(first, last)` ranges; `(0, 0)` is an
    /// unused slot. A function ID in a range goes here rather than to the `ROUTE_SMCCC` holder.
    pub smccc_ranges: [(u32, u32); MAX_SMCCC_RANGES],
}

impl ComponentDescriptor {
    /// True if this component takes SMCCC function `function` by range.
    pub fn takes_function(&self, function: u32) -> bool {
        self.smccc_ranges
            .iter()
            .any(|&(first, last)| (first, last) != (0, 0) && (first..=last).contains(&function))
    }
}

impl ComponentDescriptor {
    /// The name as text.
    pub fn name(&self) -> &str {
        let len = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(COMPONENT_NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// A name field from text (truncated to fit).
    pub fn name_field(name: &str) -> [u8; COMPONENT_NAME_LEN] {
        let mut field = [0u8; COMPONENT_NAME_LEN];
        let len = name.len().min(COMPONENT_NAME_LEN);
        field[..len].copy_from_slice(&name.as_bytes()[..len]);
        field
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
    /// The host's stage-2 root is not a page inside the memory of the component the host's
    /// stage-2 faults go to.
    HostStage2RootMisplaced,
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
        }
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
    /// component per route.
    pub fn validate_components(&self, kernel_end: u64) -> Result<(), BootTableError> {
        let components = || self.components().enumerate();
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
    /// file, every destination inside RAM, off the hypervisor's region and off each other; the
    /// emulated device ranges page aligned and outside RAM.
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
            let placed = if payload.kind == PayloadKind::ComponentImage {
                self.hypervisor.contains_range(&destination)
            } else {
                self.ram.contains_range(&destination) && !destination.overlaps(&self.hypervisor)
            };
            if !placed {
                return Err(BootTableError::PayloadDestinationInvalid(index));
            }
            for (other_index, other) in self.payloads().enumerate().take(index) {
                if other.kind == payload.kind && payload.kind != PayloadKind::ComponentImage {
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

    /// Encodes the table into the bytes the kernel image reserves for it.
    pub fn encode(&self) -> [u8; BOOT_TABLE_SIZE] {
        let mut out = [0u8; BOOT_TABLE_SIZE];
        let mut writer = Writer {
            out: &mut out,
            at: 0,
        };
        writer.bytes(&BOOT_TABLE_MAGIC);
        writer.u32(BOOT_TABLE_VERSION);
        writer.u32(self.payloads().count() as u32);
        writer.u64(self.components().count() as u64);
        for value in [
            self.ram.start,
            self.ram.end,
            self.hypervisor.start,
            self.hypervisor.end,
            self.host_entry,
            self.host_stage2_root,
        ] {
            writer.u64(value);
        }
        for range in &self.host_emulated {
            writer.u64(range.start);
            writer.u64(range.end);
        }
        for payload in self.payloads() {
            writer.u32(payload.kind as u32);
            writer.u32(0);
            writer.u64(payload.file_offset);
            writer.u64(payload.file_size);
            writer.u64(payload.load_address);
        }
        writer.at = HEADER_LEN + MAX_PAYLOADS * PAYLOAD_LEN;
        for component in self.components() {
            writer.bytes(&component.name);
            for value in [
                component.region.start,
                component.region.end,
                component.image_store.start,
                component.image_store.end,
                component.entry,
                component.ipc_rx,
                component.ipc_tx,
            ] {
                writer.u64(value);
            }
            writer.bytes(&component.serves.to_le_bytes());
            writer.bytes(&[0, 0]);
            writer.u32(component.may_call);
            writer.u32(component.kernel_ops);
            writer.u32(component.routes);
            for (first, last) in component.smccc_ranges {
                writer.u32(first);
                writer.u32(last);
            }
        }
        out
    }

    /// Decodes a table; checks its shape but not its ranges (see [`BootTable::validate`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, BootTableError> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(8)? != BOOT_TABLE_MAGIC {
            return Err(BootTableError::BadMagic);
        }
        let version = reader.u32()?;
        if version != BOOT_TABLE_VERSION {
            return Err(BootTableError::UnsupportedVersion(version));
        }
        let count = reader.u32()?;
        if count as usize > MAX_PAYLOADS {
            return Err(BootTableError::TooManyPayloads(count));
        }
        let component_count = reader.u64()?;
        if component_count > MAX_COMPONENTS as u64 {
            return Err(BootTableError::TooManyComponents(component_count as u32));
        }
        let ram = reader.range()?;
        let hypervisor = reader.range()?;
        let host_entry = reader.u64()?;
        let host_stage2_root = reader.u64()?;
        let mut table = Self::new(ram, hypervisor, host_entry);
        table.host_stage2_root = host_stage2_root;
        for slot in table.host_emulated.iter_mut() {
            *slot = reader.range()?;
        }
        for slot in table.payloads.iter_mut().take(count as usize) {
            let raw_kind = reader.u32()?;
            let kind = PayloadKind::from_u32(raw_kind)
                .ok_or(BootTableError::UnknownPayloadKind(raw_kind))?;
            let _flags = reader.u32()?;
            *slot = Some(Payload {
                kind,
                file_offset: reader.u64()?,
                file_size: reader.u64()?,
                load_address: reader.u64()?,
            });
        }
        reader.at = HEADER_LEN + MAX_PAYLOADS * PAYLOAD_LEN;
        for slot in table.components.iter_mut().take(component_count as usize) {
            let mut name = [0u8; COMPONENT_NAME_LEN];
            name.copy_from_slice(reader.take(COMPONENT_NAME_LEN)?);
            let region = reader.range()?;
            let image_store = reader.range()?;
            let entry = reader.u64()?;
            let ipc_rx = reader.u64()?;
            let ipc_tx = reader.u64()?;
            let serves = u16::from_le_bytes([reader.take(1)?[0], reader.take(1)?[0]]);
            reader.take(2)?;
            *slot = Some(ComponentDescriptor {
                name,
                region,
                image_store,
                entry,
                ipc_rx,
                ipc_tx,
                serves,
                may_call: reader.u32()?,
                kernel_ops: reader.u32()?,
                routes: reader.u32()?,
                smccc_ranges: {
                    let mut ranges = [(0, 0); MAX_SMCCC_RANGES];
                    for range in ranges.iter_mut() {
                        *range = (reader.u32()?, reader.u32()?);
                        if range.0 > range.1 {
                            return Err(BootTableError::BadRange);
                        }
                    }
                    ranges
                },
            });
        }
        Ok(table)
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], BootTableError> {
        let end = self.at.checked_add(len).ok_or(BootTableError::Truncated)?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(BootTableError::Truncated)?;
        self.at = end;
        Ok(slice)
    }
    fn u32(&mut self) -> Result<u32, BootTableError> {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(raw))
    }
    fn u64(&mut self) -> Result<u64, BootTableError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(raw))
    }
    fn range(&mut self) -> Result<PhysRange, BootTableError> {
        let start = self.u64()?;
        let end = self.u64()?;
        if end < start {
            return Err(BootTableError::BadRange);
        }
        Ok(PhysRange { start, end })
    }
}

const _: () = assert!(
    HEADER_LEN + MAX_PAYLOADS * PAYLOAD_LEN + MAX_COMPONENTS * COMPONENT_LEN <= BOOT_TABLE_SIZE
);

/// How a run of the hypervisor ended, as the exit status QEMU reports through semihosting.
///
/// The values are what `cargo xtask run` returns to the shell, so scripts can tell a clean
/// power-off from a reset or a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitStatus {
    /// The host VM called PSCI SYSTEM_OFF.
    PoweredOff = 0,
    /// The host VM called PSCI SYSTEM_RESET (or SYSTEM_RESET2).
    Reset = 3,
    /// The hypervisor panicked.
    HypervisorPanic = 4,
    /// The hypervisor took an exception at EL2 it cannot recover from.
    HypervisorFault = 5,
    /// The image could not be booted (bad boot table, machine too small, ...).
    BootFailure = 6,
}

impl ExitStatus {
    /// The status for a raw exit code, if it is one of ours.
    pub fn from_code(code: i32) -> Option<Self> {
        [
            Self::PoweredOff,
            Self::Reset,
            Self::HypervisorPanic,
            Self::HypervisorFault,
            Self::BootFailure,
        ]
        .into_iter()
        .find(|status| *status as i32 == code)
    }

    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PoweredOff => "guest powered off",
            Self::Reset => "guest requested a reset",
            Self::HypervisorPanic => "hypervisor panicked",
            Self::HypervisorFault => "hypervisor took an unrecoverable exception",
            Self::BootFailure => "hypervisor could not boot the image",
        }
    }
}

#[cfg(test)]
mod tests;
