//! The boot table's bytes: fixed little-endian fields, encoded and decoded by hand (no `repr(C)`
//! casts) so both sides can test the layout on the host and a malformed table is refused with a
//! reason.

use super::{
    BOOT_TABLE_MAGIC, BOOT_TABLE_SIZE, BOOT_TABLE_VERSION, BootTable, BootTableError,
    MAX_COMPONENTS, MAX_EMULATED, MAX_PAYLOADS, Payload, PayloadKind,
};
use crate::component::{COMPONENT_NAME_LEN, ComponentDescriptor, MAX_SMCCC_RANGES};
use crate::range::PhysRange;
use crate::vm::{MAX_GUEST_VCPUS, MAX_GUESTS, MAX_VM_IMAGES, VmDescriptor, VmImage};

/// Bytes before the payload records: magic, version, counts (payloads, components, VMs),
/// ranges, entry, stage-2 root, emulated ranges.
pub(super) const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 4 + 8 * 6 + 16 * MAX_EMULATED;
/// Bytes of one payload record; the component records start after `MAX_PAYLOADS` of them.
const PAYLOAD_LEN: usize = 4 + 4 + 8 * 3;
/// Where the component records start.
pub(super) const COMPONENTS_AT: usize = HEADER_LEN + MAX_PAYLOADS * PAYLOAD_LEN;
/// Bytes of one component record.
pub(super) const COMPONENT_LEN: usize =
    COMPONENT_NAME_LEN + 8 * 4 + 8 * 3 + 2 + 2 + 4 * 4 + 8 * MAX_SMCCC_RANGES;
/// Where the VM records start.
pub(super) const VMS_AT: usize = COMPONENTS_AT + MAX_COMPONENTS * COMPONENT_LEN;
/// Bytes of one VM record: id, MTE and counter flags, padding, name, memory, RAM IPA, stage-2 root, CPUs,
/// entry, DTB, then each image's store, load address and loaded length.
pub(super) const VM_LEN: usize =
    2 + 1 + 5 + COMPONENT_NAME_LEN + 16 + 8 * 2 + MAX_GUEST_VCPUS + 8 * 2 + 32 * MAX_VM_IMAGES;

impl BootTable {
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
        writer.u32(self.components().count() as u32);
        writer.u32(self.vms().count() as u32);
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
        writer.at = COMPONENTS_AT;
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
            writer.u32(component.may_notify);
            writer.u32(component.routes);
            for (first, last) in component.smccc_ranges {
                writer.u32(first);
                writer.u32(last);
            }
        }
        writer.at = VMS_AT;
        for vm in self.vms() {
            writer.bytes(&vm.vm.to_le_bytes());
            writer.bytes(&[u8::from(vm.mte), u8::from(vm.counter_from_zero), 0, 0, 0, 0]);
            writer.bytes(&vm.name);
            for value in [vm.memory.start, vm.memory.end, vm.ram_ipa, vm.stage2_root] {
                writer.u64(value);
            }
            writer.bytes(&vm.cpus);
            writer.u64(vm.entry);
            writer.u64(vm.dtb);
            for image in &vm.images {
                writer.u64(image.store.start);
                writer.u64(image.store.end);
                writer.u64(image.load_address);
                writer.u64(image.loaded_len);
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
        let component_count = reader.u32()?;
        if component_count as usize > MAX_COMPONENTS {
            return Err(BootTableError::TooManyComponents(component_count));
        }
        let vm_count = reader.u32()?;
        if vm_count as usize > MAX_GUESTS {
            return Err(BootTableError::TooManyVms(vm_count));
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
        reader.at = COMPONENTS_AT;
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
                may_notify: reader.u32()?,
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
        reader.at = VMS_AT;
        for slot in table.vms.iter_mut().take(vm_count as usize) {
            let vm = u16::from_le_bytes([reader.take(1)?[0], reader.take(1)?[0]]);
            let mut flag = || match reader.take(1)?[0] {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(BootTableError::BadFlag),
            };
            let mte = flag()?;
            let counter_from_zero = flag()?;
            reader.take(4)?;
            let mut name = [0u8; COMPONENT_NAME_LEN];
            name.copy_from_slice(reader.take(COMPONENT_NAME_LEN)?);
            let memory = reader.range()?;
            let ram_ipa = reader.u64()?;
            let stage2_root = reader.u64()?;
            let mut cpus = [0u8; MAX_GUEST_VCPUS];
            cpus.copy_from_slice(reader.take(MAX_GUEST_VCPUS)?);
            let entry = reader.u64()?;
            let dtb = reader.u64()?;
            let mut images = [VmImage::default(); MAX_VM_IMAGES];
            for image in images.iter_mut() {
                *image = VmImage {
                    store: reader.range()?,
                    load_address: reader.u64()?,
                    loaded_len: reader.u64()?,
                };
            }
            *slot = Some(VmDescriptor {
                vm,
                name,
                memory,
                ram_ipa,
                stage2_root,
                cpus,
                entry,
                dtb,
                mte,
                counter_from_zero,
                images,
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

const _: () = assert!(VMS_AT + MAX_GUESTS * VM_LEN <= BOOT_TABLE_SIZE);
