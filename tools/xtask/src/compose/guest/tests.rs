//! A guest's layout, DTB and descriptor from small fake kernels and QEMU's virt tree.

use super::*;
use hv_abi::{IMAGE_HEADER_MAGIC, IMAGE_HEADER_MAGIC_OFFSET, IMAGE_HEADER_SIZE_OFFSET};
use std::path::Path;

/// QEMU 7.2's virt tree, GICv2, 4 CPUs, 1 GiB (see hv-devicetree's testdata).
const VIRT: &[u8] = include_bytes!("../../../../devicetree/testdata/qemu-virt-gicv2.dtb");
const BOARD: &Board = &hv_board::QEMU_VIRT;
const PL011: u64 = 0x0900_0000;

/// An AArch64 ELF with one loadable segment of `data` at `load` (`memsz` bytes in memory).
pub(crate) fn fake_elf(load: u64, entry: u64, data: &[u8], memsz: u64) -> Vec<u8> {
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes());
    for value in [entry, 64, 0] {
        elf.extend_from_slice(&value.to_le_bytes()); // entry, phoff, shoff
    }
    elf.extend_from_slice(&0u32.to_le_bytes());
    for value in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&value.to_le_bytes()); // ehsize, phentsize, phnum, sh...
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R X
    for value in [120, load, load, data.len() as u64, memsz, 8] {
        elf.extend_from_slice(&value.to_le_bytes());
    }
    elf.extend_from_slice(data);
    elf
}

/// An arm64 Image of `len` bytes with this text_offset and image_size.
fn fake_image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
    let mut image = vec![0u8; len];
    image[8..16].copy_from_slice(&text_offset.to_le_bytes());
    image[IMAGE_HEADER_SIZE_OFFSET..IMAGE_HEADER_SIZE_OFFSET + 8]
        .copy_from_slice(&image_size.to_le_bytes());
    image[IMAGE_HEADER_MAGIC_OFFSET..IMAGE_HEADER_MAGIC_OFFSET + 4]
        .copy_from_slice(&IMAGE_HEADER_MAGIC);
    image
}

/// A file in a scratch folder unique to this test process.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-guest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Guest 1: 64 MiB backed at 0x7c00_0000, seen at the RAM base; vCPU 0 on CPU 1; the PL011.
fn guest(kernel: &Path) -> Guest {
    Guest {
        id: 1,
        name: "guest1".into(),
        kernel: kernel.to_owned(),
        initrd: None,
        dtb: None,
        cmdline: "console=ttyAMA0".into(),
        memory: PhysRange::from_size(0x7c00_0000, 64 * MIB).unwrap(),
        ram_ipa: 0x4000_0000,
        cpus: vec![1],
        devices: vec![PL011],
        console: Some(PL011),
        mte: true,
        counter_from_zero: true,
        shared_ipa_bit: None,
    }
}

#[test]
fn an_elf_guest_runs_where_it_is_linked_with_its_dtb_above() {
    // Linked like the test guests, at the host kernel address, which lies in the guest's RAM.
    let kernel = scratch(
        "linked.elf",
        &fake_elf(0x4200_0000, 0x4200_0040, &[7; 0x3000], 0x2_0000),
    );
    let guest = guest(&kernel);
    let plan = guest.plan(BOARD, VIRT).unwrap();
    assert_eq!((plan.entry, plan.dtb), (0x4200_0040, 0x4220_0000));
    let placed: Vec<(&str, u64, u64)> = plan
        .images
        .iter()
        .map(|image| (image.what, image.ipa, image.footprint))
        .collect();
    assert_eq!(placed[0], ("kernel", 0x4200_0000, 0x2_0000));
    assert_eq!(placed[1].0, "DTB");
    assert_eq!(plan.images[0].bytes, [7; 0x3000]);

    let dtb = DeviceTree::parse(&plan.images[1].bytes).unwrap();
    assert_eq!(dtb.memory_ranges(), Ok(vec![(0x4000_0000, 64 * MIB)]));
    assert_eq!(dtb.cpu_mpidrs(), Ok(vec![0]));
    assert_eq!(
        dtb.node("/psci").unwrap().string_property("method"),
        Some("hvc")
    );
    let chosen = dtb.node("/chosen").unwrap();
    assert_eq!(
        chosen.string_property("stdout-path"),
        Some("/pl011@9000000")
    );
    assert_eq!(chosen.string_property("bootargs"), Some("console=ttyAMA0"));
    assert!(dtb.node("/fw-cfg@9020000").is_none() && dtb.node("/pcie@10000000").is_none());
    assert!(dtb.node("/reserved-memory").is_none());

    let (descriptor, stores, _) = guest
        .describe(&plan, 0x4080_2000, 0x4150_0123, 0x4200_0000)
        .unwrap();
    assert_eq!(
        stores[0],
        PhysRange::from_size(0x4150_1000, 0x3000).unwrap()
    );
    assert_eq!(stores[1].start, 0x4150_4000);
    assert_eq!(descriptor.vm, 1);
    assert_eq!(descriptor.name(), "guest1");
    assert_eq!(
        (descriptor.ram_ipa, descriptor.memory),
        (0x4000_0000, guest.memory)
    );
    assert_eq!(
        (descriptor.entry, descriptor.dtb),
        (0x4200_0040, 0x4220_0000)
    );
    assert_eq!(descriptor.stage2_root, 0x4080_2000);
    assert_eq!(
        descriptor.cpus,
        [1, NO_CPU, NO_CPU, NO_CPU, NO_CPU, NO_CPU, NO_CPU, NO_CPU]
    );
    assert!(descriptor.mte);
    // IPA 0x4200_0000 is 32 MiB into its RAM: PA 0x7e00_0000.
    let loads: Vec<(u64, u64)> = descriptor
        .images()
        .map(|image| (image.store.start, image.load_address))
        .collect();
    assert_eq!(
        loads,
        [(0x4150_1000, 0x7e00_0000), (0x4150_4000, 0x7e20_0000)]
    );
    assert_eq!(descriptor.pa_of(descriptor.dtb), Some(0x7e20_0000));
}

#[test]
fn an_image_guest_starts_at_its_ram_base_plus_text_offset_with_its_initrd() {
    let kernel = scratch("Image", &fake_image(0x8_0000, 0x10_0000, 0x4000));
    let initrd = scratch("initrd.cpio", &[1; 0x1000]);
    let mut guest = guest(&kernel);
    guest.initrd = Some(initrd);
    guest.cpus = vec![2, 3];
    let plan = guest.plan(BOARD, VIRT).unwrap();
    assert_eq!((plan.entry, plan.dtb), (0x4008_0000, 0x4040_0000));
    let placed: Vec<(&str, u64)> = plan.images.iter().map(|i| (i.what, i.ipa)).collect();
    assert_eq!(
        placed,
        [
            ("kernel", 0x4008_0000),
            ("initrd", 0x4020_0000),
            ("DTB", 0x4040_0000)
        ]
    );
    let dtb = DeviceTree::parse(&plan.images[2].bytes).unwrap();
    assert_eq!(dtb.cpu_mpidrs(), Ok(vec![0, 1]));
    let chosen = dtb.node("/chosen").unwrap();
    assert_eq!(
        chosen.property("linux,initrd-start"),
        Some(&0x4020_0000u64.to_be_bytes()[..])
    );
    assert_eq!(
        chosen.property("linux,initrd-end"),
        Some(&0x4020_1000u64.to_be_bytes()[..])
    );
    let (descriptor, _, _) = guest
        .describe(&plan, 0x4080_2000, 0x4150_0000, 0x4200_0000)
        .unwrap();
    assert_eq!(descriptor.vcpu_count(), 2);
    assert_eq!(descriptor.images().count(), 3);
}

#[test]
fn a_dtb_file_is_used_as_it_is_but_for_chosen() {
    let kernel = scratch("raw.bin", &[0xaa; 0x100]);
    let own = DeviceTree::parse(VIRT).unwrap();
    let mut guest = guest(&kernel);
    guest.dtb = Some(scratch("own.dtb", &own.to_bytes()));
    let plan = guest.plan(BOARD, VIRT).unwrap();
    // A raw payload: at the RAM base, entered at its first byte.
    assert_eq!(plan.entry, 0x4000_0000);
    let dtb = DeviceTree::parse(&plan.images[1].bytes).unwrap();
    assert_eq!(dtb.cpu_mpidrs(), Ok(vec![0, 1, 2, 3]));
    assert_eq!(
        dtb.node("/chosen").unwrap().string_property("bootargs"),
        Some("console=ttyAMA0")
    );
}

#[test]
fn misplaced_or_oversized_guests_are_refused_with_their_name() {
    let low = scratch(
        "low.elf",
        &fake_elf(0x3000_0000, 0x3000_0000, &[1; 16], 0x1000),
    );
    let error = guest(&low).plan(BOARD, VIRT).err().expect("refused");
    assert!(
        format!("{error:#}").contains(
            "VM \"guest1\": its kernel would lie at IPA 0x30000000..0x30001000, outside its RAM"
        ),
        "{error:#}"
    );

    let big = scratch("big-Image", &fake_image(0, 0x3f_0000, 0x1000));
    let mut small = guest(&big);
    small.memory = PhysRange::from_size(0x7c00_0000, 4 * MIB).unwrap();
    let error = small.plan(BOARD, VIRT).err().expect("refused");
    assert!(
        format!("{error:#}").contains("need 5 MiB of its RAM but it has 4 MiB"),
        "{error:#}"
    );

    let kernel = scratch(
        "fits.elf",
        &fake_elf(0x4200_0000, 0x4200_0000, &[1; 0x8000], 0x8000),
    );
    let guest = guest(&kernel);
    let plan = guest.plan(BOARD, VIRT).unwrap();
    let error = guest
        .describe(&plan, 0x4080_2000, 0x41ff_c000, 0x4200_0000)
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.starts_with("VM \"guest1\": the hypervisor keeps a pristine copy"),
        "{message}"
    );
    assert!(message.contains("(kernel 32 KiB, DTB"), "{message}");
    assert!(message.contains("KiB short"), "{message}");

    let error = Guest {
        cpus: vec![],
        ..guest
    }
    .describe(&plan, 0x4080_2000, 0x4150_0000, 0x4200_0000)
    .unwrap_err();
    assert!(error.to_string().contains("has 0 vCPUs"), "{error}");
}

#[test]
fn a_large_image_is_kept_compressed_and_loaded_at_its_full_length() {
    // A 3 MiB raw kernel of a kernel-like mix: kept compressed, loaded as 3 MiB.
    let mut bytes = fake_image(0, 3 * MIB, 3 * MIB as usize);
    for (i, byte) in bytes.iter_mut().enumerate().skip(64) {
        *byte = if i % 5 == 0 { (i >> 3) as u8 } else { 0 };
    }
    let kernel = scratch("large-Image", &bytes);
    let guest = guest(&kernel);
    let plan = guest.plan(BOARD, VIRT).unwrap();
    let (descriptor, stores, kept) = guest
        .describe(&plan, 0x4080_2000, 0x4150_0000, 0x4200_0000)
        .unwrap();
    let image = descriptor.images().next().unwrap();
    assert_eq!(image.loaded_len, plan.images[0].bytes.len() as u64);
    assert!(image.is_compressed());
    assert_eq!(stores[0].len(), kept[0].len() as u64);
    assert!(kept[0].len() < plan.images[0].bytes.len() / 2);
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&kept[0]).unwrap();
    assert!(inflated == plan.images[0].bytes);
    // The small DTB is kept as it is.
    let dtb = descriptor.images().last().unwrap();
    assert!(!dtb.is_compressed());
    assert_eq!(kept.last().unwrap(), &plan.images.last().unwrap().bytes);
}

#[test]
fn each_guest_has_its_own_stage2_root_page() {
    assert_eq!(stage2_root(0x4080_2000, 1), 0x4080_2000);
    assert_eq!(stage2_root(0x4080_2000, 3), 0x4080_4000);
}
