//! The boot-time reader against QEMU's tree, trees edited the ways firmware edits them, and
//! damaged trees (every truncation, every bit flip of the header and structure), which must
//! give an answer or an error, never a panic. The Raspberry Pi 4's real tree is read in
//! `board/tests/real_dtbs` (it is fetched from Debian there).

use super::*;
use hv_devicetree::DeviceTree;

/// QEMU virt's tree as the host receives it (1 CPU, 1 GiB at 0x4000_0000).
const QEMU_VIRT: &[u8] = include_bytes!("../../../tests/guest-rt/testdata/qemu-virt-hv.dtb");

fn qemu_virt() -> DeviceTree {
    DeviceTree::parse(QEMU_VIRT).unwrap()
}

/// What the host-side reader (used by the composer, tested on its own) finds in `blob`.
fn reference(blob: &[u8]) -> (Vec<(u64, u64)>, Vec<u64>) {
    let tree = DeviceTree::parse(blob).unwrap();
    let ram = tree
        .memory_ranges()
        .unwrap()
        .into_iter()
        .filter(|&(_, size)| size != 0)
        .collect();
    (ram, tree.cpu_mpidrs().unwrap())
}

fn read_ok(blob: &[u8]) -> FirmwareFacts {
    read(blob).unwrap_or_else(|error| panic!("{error:?}: {}", error.describe()))
}

#[test]
fn reads_qemus_tree_as_the_host_side_reader_does() {
    let facts = read_ok(QEMU_VIRT);
    let (ram, cpus) = reference(QEMU_VIRT);
    assert_eq!(facts.ram.to_vec(), ram);
    assert_eq!(facts.cpus.to_vec(), cpus);
    assert_eq!(facts.ram.first().map(|bank| bank.0), Some(0x4000_0000));
    assert_eq!(total_size(QEMU_VIRT), Ok(QEMU_VIRT.len()));
}

/// `tree` with `count` CPUs under /cpus, their `reg` in `address_cells` cells.
fn with_cpus(mut tree: DeviceTree, count: u64, address_cells: u32) -> Vec<u8> {
    tree.remove_node("/cpus");
    let cpus = tree.ensure_node("/cpus");
    cpus.set_u32("#address-cells", address_cells);
    cpus.set_u32("#size-cells", 0);
    // A non-CPU child, as QEMU's and the Pi's trees have: skipped.
    tree.ensure_node("/cpus/cpu-map/socket0");
    for index in 0..count {
        let mpidr = (index % 4) | ((index / 4) << 8);
        let cpu = tree.ensure_node(&format!("/cpus/cpu@{mpidr:x}"));
        cpu.set_string("device_type", "cpu");
        match address_cells {
            1 => cpu.set_u32("reg", mpidr as u32),
            _ => cpu.set_u64("reg", mpidr),
        }
    }
    tree.to_bytes()
}

#[test]
fn reads_every_cpu_in_one_or_two_cells() {
    for address_cells in [1, 2] {
        let blob = with_cpus(qemu_virt(), 6, address_cells);
        let facts = read_ok(&blob);
        assert_eq!(facts.cpus.to_vec(), [0, 1, 2, 3, 0x100, 0x101]);
        assert_eq!(facts.cpus.to_vec(), reference(&blob).1);
    }
}

#[test]
fn reads_several_banks_in_the_roots_cells_and_skips_empty_ones() {
    for (address_cells, size_cells) in [(2, 2), (2, 1), (1, 1)] {
        let mut tree = qemu_virt();
        let root = tree.ensure_node("/");
        root.set_u32("#address-cells", address_cells);
        root.set_u32("#size-cells", size_cells);
        let banks = [
            (0x4000_0000u64, 0x2000_0000u64),
            (0x8000_0000, 0),
            (0xc000_0000, 0x100_0000),
        ];
        let mut reg = Vec::new();
        for (base, size) in banks {
            for (value, cells) in [(base, address_cells), (size, size_cells)] {
                match cells {
                    1 => reg.extend_from_slice(&(value as u32).to_be_bytes()),
                    _ => reg.extend_from_slice(&value.to_be_bytes()),
                }
            }
        }
        let memory = tree.node_mut("/memory@40000000").unwrap();
        memory.set_property("reg", reg);
        let facts = read_ok(&tree.to_bytes());
        assert_eq!(
            facts.ram.to_vec(),
            [(0x4000_0000, 0x2000_0000), (0xc000_0000, 0x100_0000)],
            "cells {address_cells}/{size_cells}"
        );
    }
}

#[test]
fn a_tree_without_memory_or_cpus_is_refused_with_the_reason() {
    let mut tree = qemu_virt();
    tree.remove_node("/memory@40000000");
    assert_eq!(read(&tree.to_bytes()), Err(DtbError::NoMemory));

    let mut tree = qemu_virt();
    tree.remove_node("/cpus");
    assert_eq!(read(&tree.to_bytes()), Err(DtbError::NoCpus));

    // The Pi 4's tree before the firmware fills in the memory size: a bank of size 0.
    let mut tree = qemu_virt();
    tree.node_mut("/memory@40000000")
        .unwrap()
        .set_property("reg", [0u8; 12].to_vec());
    tree.ensure_node("/").set_u32("#size-cells", 1);
    assert_eq!(read(&tree.to_bytes()), Err(DtbError::NoMemory));
}

#[test]
fn malformed_properties_are_refused() {
    let mut tree = qemu_virt();
    tree.ensure_node("/").set_u32("#address-cells", 3);
    assert_eq!(
        read(&tree.to_bytes()),
        Err(DtbError::BadCells("#address-cells"))
    );

    let mut tree = qemu_virt();
    tree.node_mut("/memory@40000000")
        .unwrap()
        .set_property("reg", vec![0u8; 13]);
    assert_eq!(read(&tree.to_bytes()), Err(DtbError::BadReg("memory")));

    let mut tree = qemu_virt();
    tree.node_mut("/cpus/cpu@0").unwrap().remove_property("reg");
    assert_eq!(read(&tree.to_bytes()), Err(DtbError::BadReg("cpu")));
}

#[test]
fn the_header_is_checked_before_anything_is_read() {
    assert_eq!(read(&[]), Err(DtbError::NoHeader));
    assert_eq!(read(&QEMU_VIRT[..3]), Err(DtbError::NoHeader));
    let mut blob = QEMU_VIRT.to_vec();
    blob[0] ^= 0xff;
    assert!(matches!(read(&blob), Err(DtbError::BadMagic(_))));
    let mut blob = QEMU_VIRT.to_vec();
    blob[4..8].copy_from_slice(&(MAX_DTB_LEN as u32 + 1).to_be_bytes());
    assert!(matches!(total_size(&blob), Err(DtbError::BadTotalSize(_))));
    let mut blob = QEMU_VIRT.to_vec();
    blob[24..28].copy_from_slice(&18u32.to_be_bytes());
    assert_eq!(read(&blob), Err(DtbError::UnsupportedVersion(17)));
    // A block past the end of the tree.
    let mut blob = QEMU_VIRT.to_vec();
    blob[8..12].copy_from_slice(&(QEMU_VIRT.len() as u32).to_be_bytes());
    assert_eq!(
        read(&blob),
        Err(DtbError::BlockOutOfBounds("structure block"))
    );
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for len in 0..QEMU_VIRT.len() {
        let mut blob = QEMU_VIRT[..len].to_vec();
        // Also with the header's size shrunk to match, so the blocks are what runs short.
        assert!(read(&blob).is_err(), "truncated to {len}");
        if len >= HEADER_LEN {
            blob[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            let _ = read(&blob);
        }
    }
}

#[test]
fn every_bit_flip_gives_an_answer_or_an_error_never_a_panic() {
    let structure_end = {
        let offset = be32(QEMU_VIRT, 8).unwrap() as usize;
        offset + be32(QEMU_VIRT, 36).unwrap() as usize
    };
    for byte in 0..structure_end.min(QEMU_VIRT.len()) {
        for bit in 0..8 {
            let mut blob = QEMU_VIRT.to_vec();
            blob[byte] ^= 1 << bit;
            let _ = read(&blob);
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let mut tree = qemu_virt();
    let mut path = String::new();
    for depth in 0..70 {
        path += &format!("/n{depth}");
        tree.ensure_node(&path);
    }
    assert_eq!(read(&tree.to_bytes()), Err(DtbError::TooDeep));
}

/// QEMU's tree with `/pl011@9000000` disabled by the "firmware" and `/pl031@9010000` okay.
fn firmware_with_a_disabled_uart() -> Vec<u8> {
    let mut tree = qemu_virt();
    tree.ensure_node("/pl011@9000000")
        .set_property("status", b"disabled\0".to_vec());
    tree.ensure_node("/pl031@9010000")
        .set_property("status", b"okay\0".to_vec());
    tree.to_bytes()
}

#[test]
fn the_firmwares_disabled_nodes_are_recorded_by_path() {
    let facts = read_ok(&firmware_with_a_disabled_uart());
    let uart = child_path_hash(ROOT_PATH_HASH, b"pl011@9000000");
    assert_eq!(facts.disabled.as_slice(), [uart]);
    assert_ne!(uart, child_path_hash(ROOT_PATH_HASH, b"pl031@9010000"));
    // The same name under another parent is another path.
    let nested = child_path_hash(child_path_hash(ROOT_PATH_HASH, b"soc"), b"pl011@9000000");
    assert_ne!(uart, nested);
}

#[test]
fn disabled_nodes_are_disabled_in_the_hosts_tree_in_place() {
    let facts = read_ok(&firmware_with_a_disabled_uart());
    let mut host = qemu_virt();
    for path in ["/pl011@9000000", "/pl031@9010000"] {
        host.ensure_node(path)
            .set_property("status", PADDED_OKAY.to_vec());
    }
    // A node the composer left with a plain status has no room: left alone.
    host.ensure_node("/fw-cfg@9020000")
        .set_property("status", b"okay\0".to_vec());
    let mut blob = host.to_bytes();
    let len = blob.len();
    let fw_cfg = child_path_hash(ROOT_PATH_HASH, b"fw-cfg@9020000");
    let mut disabled = facts.disabled.to_vec();
    disabled.push(fw_cfg);
    assert_eq!(disable_nodes(&mut blob, &disabled), Ok(1));
    assert_eq!(blob.len(), len);
    let after = DeviceTree::parse(&blob).unwrap();
    let status = |path: &str| {
        after
            .node(path)
            .unwrap()
            .property("status")
            .unwrap()
            .to_vec()
    };
    assert_eq!(status("/pl011@9000000"), b"disabled\0");
    assert_eq!(status("/pl031@9010000"), PADDED_OKAY);
    assert_eq!(status("/fw-cfg@9020000"), b"okay\0");
    // Nothing to disable: nothing changes.
    let before = blob.clone();
    assert_eq!(disable_nodes(&mut blob, &[]), Ok(0));
    assert_eq!(blob, before);
}

#[test]
fn disabling_in_a_malformed_tree_is_an_error_and_changes_nothing() {
    let facts = read_ok(&firmware_with_a_disabled_uart());
    let mut host = qemu_virt();
    host.ensure_node("/pl011@9000000")
        .set_property("status", PADDED_OKAY.to_vec());
    let blob = host.to_bytes();
    for cut in (0..blob.len()).step_by(7) {
        let mut short = blob[..cut].to_vec();
        let _ = disable_nodes(&mut short, &facts.disabled);
    }
    let mut bad = blob.clone();
    let structs = be32(&bad, 8).unwrap() as usize;
    bad[structs..structs + 4].copy_from_slice(&7u32.to_be_bytes());
    let copy = bad.clone();
    assert!(disable_nodes(&mut bad, &facts.disabled).is_err());
    assert_eq!(bad, copy);
}
