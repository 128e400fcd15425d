//! Host tests of the boot table: encoding, validation, placement, components, guest VMs.
use super::encoding::HEADER_LEN;
use super::*;
use crate::component::{MAX_SMCCC_RANGES, ROUTE_SMCCC};
use crate::vm::{MAX_GUEST_VCPUS, MAX_VM_IMAGES, NO_CPU, VmImage};

const MIB: u64 = 1 << 20;

fn sample() -> BootTable {
    let ram = PhysRange::from_size(0x4000_0000, 1024 * MIB).unwrap();
    let hyp = PhysRange::from_size(0x4000_0000, 32 * MIB).unwrap();
    let mut table = BootTable::new(ram, hyp, 0x4200_0000);
    table
        .push(Payload {
            kind: PayloadKind::HostKernel,
            file_offset: 0x10_0000,
            file_size: 0x100_0000,
            load_address: 0x4200_0000,
        })
        .unwrap();
    table
        .push(Payload {
            kind: PayloadKind::HostDtb,
            file_offset: 0x110_0000,
            file_size: 0x2000,
            load_address: 0x4400_0000,
        })
        .unwrap();
    table
}

#[test]
fn round_trips() {
    let table = sample();
    let decoded = BootTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded, table);
    decoded.validate(0x120_0000).unwrap();
}

#[test]
fn refuses_bad_shapes() {
    let mut bytes = sample().encode();
    assert_eq!(
        BootTable::decode(&bytes[..20]),
        Err(BootTableError::Truncated)
    );
    bytes[8] = 9;
    assert_eq!(
        BootTable::decode(&bytes),
        Err(BootTableError::UnsupportedVersion(9))
    );
    // A table from a composer before components had `may_notify`.
    bytes[8] = 2;
    assert_eq!(
        BootTable::decode(&bytes),
        Err(BootTableError::UnsupportedVersion(2))
    );
    // A table from a composer before guest VMs.
    bytes[8] = 3;
    assert_eq!(
        BootTable::decode(&bytes),
        Err(BootTableError::UnsupportedVersion(3))
    );
    assert_eq!(BootTable::decode(&[0u8; 64]), Err(BootTableError::BadMagic));
    let mut bytes = sample().encode();
    bytes[12] = 200;
    assert_eq!(
        BootTable::decode(&bytes),
        Err(BootTableError::TooManyPayloads(200))
    );
    let mut bytes = sample().encode();
    bytes[HEADER_LEN] = 77;
    assert_eq!(
        BootTable::decode(&bytes),
        Err(BootTableError::UnknownPayloadKind(77))
    );
}

#[test]
fn refuses_bad_layouts() {
    assert_eq!(
        sample().validate(0x100_0000),
        Err(BootTableError::PayloadOutsideImage(0))
    );

    let mut onto_hyp = sample();
    onto_hyp.payloads[1].as_mut().unwrap().load_address = 0x4100_0000;
    assert_eq!(
        onto_hyp.validate(u64::MAX),
        Err(BootTableError::PayloadDestinationInvalid(1))
    );

    let mut overlapping = sample();
    overlapping.payloads[1].as_mut().unwrap().load_address = 0x4200_1000;
    assert_eq!(
        overlapping.validate(u64::MAX),
        Err(BootTableError::PayloadsOverlap(0, 1))
    );

    let mut outside_ram = sample();
    outside_ram.payloads[1].as_mut().unwrap().load_address = 0x8000_0000;
    assert_eq!(
        outside_ram.validate(u64::MAX),
        Err(BootTableError::PayloadDestinationInvalid(1))
    );

    let mut bad_entry = sample();
    bad_entry.host_entry = 0x4000_0000;
    assert_eq!(
        bad_entry.validate(u64::MAX),
        Err(BootTableError::EntryOutsideKernel)
    );

    let mut no_dtb = sample();
    no_dtb.payloads[1] = None;
    assert_eq!(
        no_dtb.validate(u64::MAX),
        Err(BootTableError::MissingPayload(PayloadKind::HostDtb))
    );

    let mut twice = sample();
    twice.payloads[1].as_mut().unwrap().kind = PayloadKind::HostKernel;
    twice.payloads[1].as_mut().unwrap().load_address = 0x4400_0000;
    assert_eq!(
        twice.validate(u64::MAX),
        Err(BootTableError::DuplicatePayload(PayloadKind::HostKernel))
    );

    let mut hyp_outside = sample();
    hyp_outside.hypervisor = PhysRange::from_size(0x3000_0000, MIB).unwrap();
    assert_eq!(
        hyp_outside.validate(u64::MAX),
        Err(BootTableError::HypervisorOutsideRam)
    );
}

fn with_components() -> BootTable {
    let mut table = sample();
    for (index, name) in ["supervisor", "vm-manager"].iter().enumerate() {
        let base = 0x4080_0000 + index as u64 * 0x10_0000;
        let store = PhysRange::from_size(0x4180_0000 + index as u64 * 0x4_0000, 0x8000).unwrap();
        table
            .push(Payload {
                kind: PayloadKind::ComponentImage,
                file_offset: 0x100,
                file_size: store.len(),
                load_address: store.start,
            })
            .unwrap();
        table
            .push_component(ComponentDescriptor {
                name: ComponentDescriptor::name_field(name),
                region: PhysRange::from_size(base, 0x10_0000).unwrap(),
                image_store: store,
                entry: base,
                ipc_rx: base + 0x8000,
                ipc_tx: base + 0x8100,
                serves: index as u16 + 1,
                may_call: 0b10,
                kernel_ops: 0b1110,
                may_notify: if index == 1 { 0b01 } else { 0 },
                routes: if index == 1 { ROUTE_SMCCC } else { 0 },
                smccc_ranges: if index == 0 {
                    [(0xC600_0005, 0xC600_0008), (0, 0), (0, 0), (0, 0)]
                } else {
                    [(0, 0); MAX_SMCCC_RANGES]
                },
            })
            .unwrap();
    }
    table
}

#[test]
fn components_round_trip_and_validate() {
    let table = with_components();
    let decoded = BootTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded, table);
    decoded.validate(0x120_0000).unwrap();
    decoded.validate_components(0x4040_0000).unwrap();
    let names: heapless_names::Names = decoded.components().map(|c| c.name()).collect();
    assert_eq!(names.as_slice(), ["supervisor", "vm-manager"]);
    let grants: std::vec::Vec<(u32, u32, u32)> = decoded
        .components()
        .map(|c| (c.may_call, c.kernel_ops, c.may_notify))
        .collect();
    assert_eq!(grants, [(0b10, 0b1110, 0), (0b10, 0b1110, 0b01)]);
}

#[test]
fn notify_grants_must_name_other_components() {
    let mut itself = with_components();
    itself.components[0].as_mut().unwrap().may_notify = 0b01;
    assert_eq!(
        itself.validate_components(0x4040_0000),
        Err(BootTableError::ComponentGrantInvalid(0))
    );

    let mut missing = with_components();
    missing.components[1].as_mut().unwrap().may_notify = 0b101;
    assert_eq!(
        missing.validate_components(0x4040_0000),
        Err(BootTableError::ComponentGrantInvalid(1))
    );

    let mut high = with_components();
    high.components[1].as_mut().unwrap().may_notify = 1 << 31;
    let decoded = BootTable::decode(&high.encode()).unwrap();
    assert_eq!(
        decoded.validate_components(0x4040_0000),
        Err(BootTableError::ComponentGrantInvalid(1))
    );
}

#[test]
fn smccc_ranges_and_emulated_devices_round_trip_and_validate() {
    let mut table = with_components();
    table.host_emulated[0] = PhysRange {
        start: 0x0900_0000,
        end: 0x0900_1000,
    };
    let decoded = BootTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded, table);
    decoded.validate(0x120_0000).unwrap();
    let supervisor = decoded.components().next().unwrap();
    assert!(supervisor.takes_function(0xC600_0007));
    assert!(!supervisor.takes_function(0xC600_0009));
    assert_eq!(decoded.emulated().count(), 1);

    let mut in_ram = table.clone();
    in_ram.host_emulated[0] = PhysRange {
        start: 0x4800_0000,
        end: 0x4800_1000,
    };
    assert_eq!(in_ram.validate(0x120_0000), Err(BootTableError::BadRange));

    let mut overlapping = with_components();
    overlapping.components[1].as_mut().unwrap().smccc_ranges[0] = (0xC600_0008, 0xC600_0010);
    assert_eq!(
        overlapping.validate_components(0x4040_0000),
        Err(BootTableError::ComponentConflict(0, 1))
    );
}

#[test]
fn host_stage2_root_must_lie_in_the_routed_component() {
    let mut table = with_components();
    table.host_stage2_root = 0x4080_1000;
    // Component 0 holds the page but does not take host stage-2 faults.
    assert_eq!(
        table.validate_components(0x4040_0000),
        Err(BootTableError::HostStage2RootMisplaced)
    );
    table.components[0].as_mut().unwrap().routes = ROUTE_HOST_STAGE2;
    let decoded = BootTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded.host_stage2_root, 0x4080_1000);
    decoded.validate_components(0x4040_0000).unwrap();
    table.host_stage2_root = 0x4080_1008;
    assert_eq!(
        table.validate_components(0x4040_0000),
        Err(BootTableError::HostStage2RootMisplaced)
    );
}

#[test]
fn misplaced_or_conflicting_components_are_refused() {
    let table = with_components();
    assert_eq!(
        table.validate_components(0x4090_0000),
        Err(BootTableError::ComponentMisplaced(0))
    );

    let mut overlapping = with_components();
    overlapping.components[1].as_mut().unwrap().region.start = 0x4088_0000;
    assert_eq!(
        overlapping.validate_components(0x4040_0000),
        Err(BootTableError::ComponentMisplaced(1))
    );

    let mut outside = with_components();
    outside.components[0].as_mut().unwrap().ipc_tx = 0x4090_0000 - 8;
    assert_eq!(
        outside.validate_components(0x4040_0000),
        Err(BootTableError::ComponentMisplaced(0))
    );

    let mut no_image = with_components();
    no_image.components[0].as_mut().unwrap().image_store.start += 0x1000;
    assert_eq!(
        no_image.validate_components(0x4040_0000),
        Err(BootTableError::ComponentImageMissing(0))
    );

    let mut two_servers = with_components();
    two_servers.components[1].as_mut().unwrap().serves = 1;
    assert_eq!(
        two_servers.validate_components(0x4040_0000),
        Err(BootTableError::ComponentConflict(0, 1))
    );

    let mut two_routes = with_components();
    two_routes.components[0].as_mut().unwrap().routes = ROUTE_SMCCC;
    assert_eq!(
        two_routes.validate_components(0x4040_0000),
        Err(BootTableError::ComponentConflict(0, 1))
    );

    let mut outside_hyp = with_components();
    outside_hyp.components[1].as_mut().unwrap().region =
        PhysRange::from_size(0x5000_0000, 0x10_0000).unwrap();
    assert_eq!(
        outside_hyp.validate_components(0x4040_0000),
        Err(BootTableError::ComponentMisplaced(1))
    );
}

mod heapless_names {
    pub type Names<'a> = std::vec::Vec<&'a str>;
}

#[test]
fn placement_must_move_payloads_up_and_clear_the_kernel() {
    let table = sample();
    table.validate_placement(0x4020_0000, 0x10_0000).unwrap();
    assert_eq!(
        table.validate_placement(0x4020_0000, 0x20_0000),
        Err(BootTableError::PayloadOverlapsKernel(0))
    );
    // Loaded high enough that the kernel payload would have to move down.
    assert_eq!(
        table.validate_placement(0x4200_0000, 0x10_0000),
        Err(BootTableError::PayloadMovesBackwards(0))
    );
    let mut swapped = sample();
    swapped.payloads[1].as_mut().unwrap().load_address = 0x4180_0000;
    assert_eq!(
        swapped.validate_placement(0x4000_0000, 0x10_0000),
        Err(BootTableError::PayloadMovesBackwards(1))
    );
}

#[test]
fn decoding_random_bytes_never_panics() {
    // Up to the end of the two VM records, so every field (grants included) is hit.
    let encoded_len = super::encoding::VMS_AT + 2 * super::encoding::VM_LEN;
    let mut state = 0x1234_5678_9abc_def0u64;
    for table in [sample(), with_components(), with_vms()] {
        for _ in 0..2000 {
            let mut bytes = table.encode();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % encoded_len;
                bytes[at] = (state >> 32) as u8;
            }
            if let Ok(table) = BootTable::decode(&bytes) {
                let _ = table.validate(state);
                let _ = table.validate_components(0x4040_0000);
                let _ = table.validate_vms();
            }
        }
    }
}

/// Where guest 1's kernel and DTB are kept, and guest 2's kernel.
const STORES: [(u64, u64); 3] = [
    (0x4190_0000, 0x2_0000),
    (0x41a0_0000, 0x2000),
    (0x41b0_0000, 0x1000),
];

fn cpus(list: &[u8]) -> [u8; MAX_GUEST_VCPUS] {
    let mut cpus = [NO_CPU; MAX_GUEST_VCPUS];
    cpus[..list.len()].copy_from_slice(list);
    cpus
}

fn images(list: &[(usize, u64)]) -> [VmImage; MAX_VM_IMAGES] {
    let mut images = [VmImage::default(); MAX_VM_IMAGES];
    for (slot, &(store, load_address)) in images.iter_mut().zip(list) {
        let (start, len) = STORES[store];
        *slot = VmImage {
            store: PhysRange::from_size(start, len).unwrap(),
            load_address,
            loaded_len: len,
        };
    }
    images
}

/// Two guests beside the host: guest 1 (64 MiB at the top of RAM, CPU 1, MTE, kernel and DTB)
/// and guest 2 (32 MiB below it, CPUs 2 and 3, a kernel). Component 0 builds every stage 2.
fn with_vms() -> BootTable {
    let mut table = with_components();
    table.components[0].as_mut().unwrap().routes = ROUTE_HOST_STAGE2;
    table.host_stage2_root = 0x4080_1000;
    for (start, len) in STORES {
        table
            .push(Payload {
                kind: PayloadKind::VmImage,
                file_offset: 0x200,
                file_size: len,
                load_address: start,
            })
            .unwrap();
    }
    table
        .push_vm(VmDescriptor {
            vm: 1,
            name: ComponentDescriptor::name_field("guest1"),
            memory: PhysRange::from_size(0x7c00_0000, 64 * MIB).unwrap(),
            ram_ipa: 0x4000_0000,
            stage2_root: 0x4080_2000,
            cpus: cpus(&[1]),
            entry: 0x4200_0000,
            dtb: 0x4220_0000,
            mte: true,
            counter_from_zero: true,
            images: images(&[(0, 0x7e00_0000), (1, 0x7e20_0000)]),
        })
        .unwrap();
    table
        .push_vm(VmDescriptor {
            vm: 2,
            name: ComponentDescriptor::name_field("guest2"),
            memory: PhysRange::from_size(0x7800_0000, 32 * MIB).unwrap(),
            ram_ipa: 0x4000_0000,
            stage2_root: 0x4080_3000,
            cpus: cpus(&[2, 3]),
            entry: 0x4008_0000,
            dtb: 0x4000_0000,
            mte: false,
            counter_from_zero: false,
            images: images(&[(2, 0x7808_0000)]),
        })
        .unwrap();
    table
}

#[test]
fn vms_round_trip_and_validate() {
    let table = with_vms();
    let decoded = BootTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded, table);
    decoded.validate(0x120_0000).unwrap();
    decoded.validate_components(0x4040_0000).unwrap();
    decoded.validate_vms().unwrap();
    let guest = decoded.vms().next().unwrap();
    assert_eq!(
        (guest.name(), guest.vmid(), guest.mte),
        ("guest1", 17, true)
    );
    assert_eq!(guest.pa_of(0x4220_0000), Some(0x7e20_0000));
    let second = decoded.vms().nth(1).unwrap();
    assert_eq!((second.vcpu_count(), second.vcpu_on(3)), (2, Some(1)));
    assert_eq!(second.images().count(), 1);
    // A table without guests still round-trips to none.
    assert_eq!(
        BootTable::decode(&sample().encode()).unwrap().vms().count(),
        0
    );
}

#[test]
fn vm_counts_and_flags_are_checked_when_decoding() {
    let mut bytes = with_vms().encode();
    // The VM count follows the payload and component counts.
    bytes[20] = 4;
    assert_eq!(
        BootTable::decode(&bytes),
        Err(BootTableError::TooManyVms(4))
    );
    let mut bytes = with_vms().encode();
    bytes[super::encoding::VMS_AT + 2] = 2;
    assert_eq!(BootTable::decode(&bytes), Err(BootTableError::BadFlag));
    let mut full = with_vms();
    let extra = *full.vms().next().unwrap();
    full.push_vm(extra).unwrap();
    assert_eq!(full.push_vm(extra), Err(BootTableError::TooManyVms(4)));
}

/// `with_vms()` with guest `index` changed by `edit`, and what `validate_vms` says.
fn refusal(index: usize, edit: impl FnOnce(&mut VmDescriptor)) -> Result<(), BootTableError> {
    let mut table = with_vms();
    edit(table.vms[index].as_mut().unwrap());
    // The encoding carries every field the checks read.
    let decoded = BootTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded, table);
    decoded.validate_vms()
}

#[test]
fn vm_ids_must_be_guests_and_distinct() {
    assert_eq!(
        refusal(0, |vm| vm.vm = 0),
        Err(BootTableError::VmIdInvalid(0))
    );
    assert_eq!(
        refusal(1, |vm| vm.vm = 4),
        Err(BootTableError::VmIdInvalid(1))
    );
    assert_eq!(
        refusal(1, |vm| vm.vm = 1),
        Err(BootTableError::VmIdDuplicate(0, 1))
    );
}

#[test]
fn vm_memory_must_be_aligned_ram_of_its_own() {
    use BootTableError::*;
    let moved = |start: u64, len: u64| {
        move |vm: &mut VmDescriptor| vm.memory = PhysRange::from_size(start, len).unwrap()
    };
    assert_eq!(
        refusal(0, moved(0x7c10_0000, 62 * MIB)),
        Err(VmMemoryMisaligned(0))
    );
    assert_eq!(
        refusal(0, moved(0x7c00_0000, 63 * MIB)),
        Err(VmMemoryMisaligned(0))
    );
    assert_eq!(
        refusal(0, moved(0x7c00_0000, 0)),
        Err(VmMemoryMisaligned(0))
    );
    assert_eq!(
        refusal(0, moved(0x7e00_0000, 64 * MIB)),
        Err(VmMemoryMisplaced(0))
    );
    assert_eq!(
        refusal(0, moved(0x4000_0000, 64 * MIB)),
        Err(VmMemoryMisplaced(0))
    );
    // On the host kernel (0x4200_0000..0x4300_0000) and on the host DTB (0x4400_0000).
    assert_eq!(
        refusal(0, moved(0x4200_0000, 64 * MIB)),
        Err(VmMemoryOnHostPayload(0))
    );
    assert_eq!(
        refusal(0, moved(0x4400_0000, 2 * MIB)),
        Err(VmMemoryOnHostPayload(0))
    );
    assert_eq!(
        refusal(1, moved(0x7800_0000, 96 * MIB)),
        Err(VmMemoryOverlap(0, 1))
    );
    assert_eq!(
        refusal(0, |vm| vm.ram_ipa = 0x4010_0000),
        Err(VmRamIpaMisaligned(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.ram_ipa = !(2 * MIB - 1)),
        Err(VmRamIpaMisaligned(0))
    );
}

#[test]
fn vm_cpus_must_exist_and_be_its_own() {
    use BootTableError::*;
    assert_eq!(refusal(0, |vm| vm.cpus = cpus(&[])), Err(VmCpusInvalid(0)));
    assert_eq!(refusal(0, |vm| vm.cpus = cpus(&[8])), Err(VmCpusInvalid(0)));
    assert_eq!(
        refusal(1, |vm| vm.cpus = cpus(&[2, 2])),
        Err(VmCpusInvalid(1))
    );
    // A CPU after the list's end would be a vCPU nobody counts.
    assert_eq!(
        refusal(1, |vm| vm.cpus =
            [2, NO_CPU, 3, NO_CPU, NO_CPU, NO_CPU, NO_CPU, NO_CPU]),
        Err(VmCpusInvalid(1))
    );
    assert_eq!(
        refusal(1, |vm| vm.cpus = cpus(&[2, 1])),
        Err(VmCpuShared(0, 1))
    );
    assert_eq!(
        refusal(1, |vm| vm.cpus = cpus(&[2, 3, 4, 5, 6, 7, 0])),
        Ok(())
    );
}

#[test]
fn vm_stage2_roots_are_pages_of_the_stage2_builder() {
    use BootTableError::*;
    // Component 1's memory, which does not take host stage-2 faults.
    assert_eq!(
        refusal(0, |vm| vm.stage2_root = 0x4090_0000),
        Err(VmStage2RootMisplaced(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.stage2_root = 0x4080_2008),
        Err(VmStage2RootMisplaced(0))
    );
    // The last page of the region fits, one past it does not.
    assert_eq!(refusal(0, |vm| vm.stage2_root = 0x408f_f000), Ok(()));
    assert_eq!(
        refusal(0, |vm| vm.stage2_root = 0x4090_0000 - 0x800),
        Err(VmStage2RootMisplaced(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.stage2_root = 0x4080_1000),
        Err(VmStage2RootMisplaced(0))
    );
    assert_eq!(
        refusal(1, |vm| vm.stage2_root = 0x4080_2000),
        Err(VmStage2RootMisplaced(1))
    );
}

#[test]
fn vm_entry_and_dtb_lie_in_its_ram() {
    use BootTableError::*;
    // Guest 1's RAM is IPA 0x4000_0000..0x4400_0000.
    assert_eq!(
        refusal(0, |vm| vm.entry = 0x4400_0000),
        Err(VmEntryOutsideRam(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.entry = 0x3fff_fffc),
        Err(VmEntryOutsideRam(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.entry = 0x4200_0002),
        Err(VmEntryOutsideRam(0))
    );
    assert_eq!(refusal(0, |vm| vm.entry = 0x43ff_fffc), Ok(()));
    assert_eq!(
        refusal(0, |vm| vm.dtb = 0x7e20_0000),
        Err(VmDtbOutsideRam(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.dtb = 0x4220_0004),
        Err(VmDtbOutsideRam(0))
    );
}

#[test]
fn vm_images_are_kept_by_the_hypervisor_and_copied_into_its_memory() {
    use BootTableError::*;
    let store = |start: u64, len: u64| {
        move |vm: &mut VmDescriptor| vm.images[1].store = PhysRange::from_size(start, len).unwrap()
    };
    // Not a payload's destination: shifted, shortened, or a component image's store.
    assert_eq!(
        refusal(0, store(0x41a0_1000, 0x1000)),
        Err(VmImageMissing(0))
    );
    assert_eq!(
        refusal(0, store(0x41a0_0000, 0x1000)),
        Err(VmImageMissing(0))
    );
    assert_eq!(
        refusal(0, store(0x4180_0000, 0x8000)),
        Err(VmImageMissing(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.images[1].load_address = 0x7bff_f000),
        Err(VmImageMisplaced(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.images[1].load_address = 0x7fff_f000),
        Err(VmImageMisplaced(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.images[1].load_address = 0x7e01_f000),
        Err(VmImageMisplaced(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.images[1].load_address = u64::MAX),
        Err(VmImageMisplaced(0))
    );
    assert_eq!(
        refusal(0, |vm| vm.images[1].load_address = 0x7e02_0000),
        Ok(())
    );

    // A VM-image payload must lie in the hypervisor's region, like a component's.
    let mut outside = with_vms();
    outside.payloads[4].as_mut().unwrap().load_address = 0x7000_0000;
    assert_eq!(
        outside.validate(0x120_0000),
        Err(BootTableError::PayloadDestinationInvalid(4))
    );
    // A VM image's store on a component's region is refused even if it is a payload.
    let mut on_component = with_vms();
    on_component.payloads[4].as_mut().unwrap().load_address = 0x4088_0000;
    let vm = on_component.vms[0].as_mut().unwrap();
    vm.images[0].store = PhysRange::from_size(0x4088_0000, 0x2_0000).unwrap();
    assert_eq!(on_component.validate_vms(), Err(VmImageMissing(0)));
}
