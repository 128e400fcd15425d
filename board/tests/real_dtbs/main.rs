//! The board constants checked against real device trees: the ones QEMU's virt machine hands a
//! guest (both GIC versions) and the Raspberry Pi 4 tree Debian's generic arm64 kernel ships.
//!
//! These tests run QEMU and (once) `apt-get download`; without QEMU or apt they fail and say
//! what to install, rather than pass without having looked at anything. `fetch` gets the
//! trees, `dt` reads addresses and interrupts out of them.

mod dt;
mod fetch;

use dt::{all_nodes, compatible_nodes, cpu_reg, intids, resolve_alias};
use fetch::QemuMachine;
use hv_board::{Board, GicCpuInterfaces, GicVersion, HostDtbSource, Region, SecondaryStart};
use hv_devicetree::DeviceTree;

fn parse(label: &str, blob: &[u8]) -> DeviceTree {
    DeviceTree::parse(blob).unwrap_or_else(|e| panic!("{label}: unparsable DTB: {e:?}"))
}

/// RAM starts where the board says.
fn check_ram(label: &str, tree: &DeviceTree, board: &Board) {
    let ram = tree.memory_ranges().unwrap();
    assert_eq!(
        ram.first().map(|bank| bank.0),
        Some(board.ram_base),
        "{label}: RAM base (memory nodes: {ram:x?})"
    );
}

/// Every device (UARTs included) is a node with that `compatible` at that CPU address, with
/// that size and first interrupt.
fn check_devices(label: &str, tree: &DeviceTree, board: &Board) {
    for device in board.devices {
        let candidates = compatible_nodes(tree, device.compatible);
        let bases: Vec<(String, u64)> = candidates
            .iter()
            .filter_map(|path| Some((path.clone(), cpu_reg(tree, path).first()?.0)))
            .collect();
        let Some((path, _)) = bases.iter().find(|(_, base)| *base == device.region.base) else {
            panic!(
                "{label}: device {} ({}) at {:#x}: the tree has no such node; nodes with that \
                 compatible are at {bases:x?}",
                device.name, device.compatible, device.region.base
            );
        };
        let (_, size) = cpu_reg(tree, path)[0];
        assert_eq!(
            size, device.region.size,
            "{label}: {} size ({path})",
            device.name
        );
        assert_eq!(
            intids(tree, path).first().copied(),
            device.interrupt,
            "{label}: {} interrupt ({path})",
            device.name
        );
    }
}

/// `/chosen/stdout-path` is the board's console UART.
fn check_console(label: &str, tree: &DeviceTree, board: &Board) {
    let stdout = tree
        .node("/chosen")
        .and_then(|chosen| chosen.string_property("stdout-path"))
        .unwrap_or_else(|| panic!("{label}: no /chosen/stdout-path"));
    let path = resolve_alias(tree, stdout);
    assert_eq!(
        cpu_reg(tree, &path)[0].0,
        board.console_uart,
        "{label}: console ({stdout} = {path})"
    );
}

/// The architected timer's PPIs, in the binding's order.
fn check_timer(label: &str, tree: &DeviceTree, board: &Board) {
    let timer = compatible_nodes(tree, "arm,armv8-timer");
    assert_eq!(timer.len(), 1, "{label}: one arm,armv8-timer node");
    let t = board.timer;
    assert_eq!(
        intids(tree, &timer[0])[..4],
        [t.secure_physical, t.physical, t.virt, t.hypervisor],
        "{label}: timer PPIs (secure phys, phys, virt, hyp)"
    );
}

/// The GIC of `version`: its registers and maintenance interrupt.
fn check_gic(label: &str, tree: &DeviceTree, board: &Board, version: GicVersion) {
    let gic = board
        .gic(version)
        .unwrap_or_else(|| panic!("{label}: the board has no {version:?} GIC"));
    let compatibles: &[&str] = match version {
        GicVersion::V2 => &["arm,gic-400", "arm,cortex-a15-gic"],
        GicVersion::V3 => &["arm,gic-v3"],
    };
    let nodes: Vec<String> = all_nodes(tree)
        .into_iter()
        .filter(|(_, node)| {
            node.property("interrupt-controller").is_some()
                && node
                    .string_list("compatible")
                    .is_some_and(|list| list.iter().any(|c| compatibles.contains(c)))
        })
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        nodes.len(),
        1,
        "{label}: one {compatibles:?} node: {nodes:?}"
    );
    let path = &nodes[0];
    // Compared as text so a mismatch prints hexadecimal addresses.
    let reg: Vec<String> = cpu_reg(tree, path)
        .into_iter()
        .map(|(base, size)| format!("{base:#x}+{size:#x}"))
        .collect();
    let pair = |region: Region| format!("{:#x}+{:#x}", region.base, region.size);
    match gic.cpu_interfaces {
        GicCpuInterfaces::V2 { gicc, gich, gicv } => assert_eq!(
            reg,
            [pair(gic.gicd), pair(gicc), pair(gich), pair(gicv)],
            "{label}: GICD, GICC, GICH, GICV ({path})"
        ),
        GicCpuInterfaces::V3 { gicr, .. } => {
            let regions = tree
                .node(path)
                .unwrap()
                .u32_property("#redistributor-regions")
                .unwrap_or(1);
            assert_eq!(regions, 1, "{label}: one redistributor region");
            assert_eq!(
                reg[..2],
                [pair(gic.gicd), pair(gicr)],
                "{label}: GICD, GICR ({path})"
            );
        }
    }
    assert_eq!(
        intids(tree, path),
        [gic.maintenance_interrupt],
        "{label}: GIC maintenance interrupt ({path})"
    );
}

/// The `/cpus/cpu@*` nodes: (path, MPIDR affinity).
fn cpus(tree: &DeviceTree) -> Vec<(String, u64)> {
    let cpus = tree.node("/cpus").expect("a /cpus node");
    cpus.children
        .iter()
        .filter(|cpu| cpu.string_property("device_type") == Some("cpu"))
        .map(|cpu| {
            let path = format!("/cpus/{}", cpu.name);
            let mpidr = tree.reg(&path).unwrap()[0].0;
            (path, mpidr)
        })
        .collect()
}

/// QEMU starts CPUs through PSCI over SMC (what `SecondaryStart::PsciSmc` assumes).
fn check_psci_smc(label: &str, tree: &DeviceTree, board: &Board) {
    assert_eq!(board.secondary_start, SecondaryStart::PsciSmc, "{label}");
    let psci = compatible_nodes(tree, "arm,psci-0.2");
    assert_eq!(psci.len(), 1, "{label}: one PSCI 0.2+ node");
    let method = tree.node(&psci[0]).unwrap().string_property("method");
    assert_eq!(method, Some("smc"), "{label}: PSCI conduit");
    let cpus = cpus(tree);
    assert_eq!(cpus.len(), 2, "{label}: -smp 2");
    assert!(cpus.len() <= board.max_cpus);
    for (path, _) in cpus {
        let method = tree.node(&path).unwrap().string_property("enable-method");
        assert_eq!(method, Some("psci"), "{label}: {path} enable-method");
    }
}

fn check_qemu_virt(machine: QemuMachine, version: GicVersion) {
    let board = &hv_board::QEMU_VIRT;
    assert_eq!(board.host_dtb, HostDtbSource::QemuDump);
    let label = format!("qemu-virt ({machine:?})");
    let tree = parse(&label, &fetch::qemu_virt_dtb(machine));
    check_ram(&label, &tree, board);
    let ram = tree.memory_ranges().unwrap();
    assert_eq!(
        ram,
        [(board.ram_base, board.default_ram_size)],
        "{label}: -m 1G"
    );
    check_devices(&label, &tree, board);
    check_console(&label, &tree, board);
    check_timer(&label, &tree, board);
    check_gic(&label, &tree, board, version);
    check_psci_smc(&label, &tree, board);
}

#[test]
fn qemu_virt_matches_qemus_gicv2_cortex_a72_tree() {
    check_qemu_virt(QemuMachine::Gicv2CortexA72, GicVersion::V2);
}

#[test]
fn qemu_virt_matches_qemus_gicv3_max_tree() {
    check_qemu_virt(QemuMachine::Gicv3Max, GicVersion::V3);
}

#[test]
fn rpi4_matches_debians_bcm2711_rpi_4_b_tree() {
    let board = &hv_board::RPI4;
    let HostDtbSource::DebianKernelPackage(relative) = board.host_dtb else {
        panic!("the rpi4 board's host DTB comes from Debian's kernel package");
    };
    let (blob, path) = fetch::debian_dtb(relative);
    let label = format!("rpi4 ({})", path.display());
    let tree = parse(&label, &blob);
    assert!(
        tree.node("/")
            .and_then(|root| root.string_list("compatible"))
            .is_some_and(|list| list.contains(&"raspberrypi,4-model-b")),
        "{label}: not a Pi 4 Model B tree"
    );
    check_ram(&label, &tree, board);
    check_devices(&label, &tree, board);
    check_console(&label, &tree, board);
    check_timer(&label, &tree, board);
    check_gic(&label, &tree, board, GicVersion::V2);

    // No PSCI firmware: every CPU waits on the spin table, at the board's release address.
    assert_eq!(board.secondary_start, SecondaryStart::SpinTable);
    assert!(
        all_nodes(&tree).iter().all(|(_, node)| {
            !node
                .string_list("compatible")
                .is_some_and(|list| list.iter().any(|c| c.starts_with("arm,psci")))
        }),
        "{label}: the stock firmware has no PSCI node"
    );
    let cpus = cpus(&tree);
    assert_eq!(cpus.len(), board.max_cpus, "{label}: CPUs");
    for (path, mpidr) in &cpus {
        let cpu = tree.node(path).unwrap();
        assert_eq!(
            cpu.string_property("enable-method"),
            Some("spin-table"),
            "{label}: {path}"
        );
        let release = dt::cells(cpu.property("cpu-release-addr").expect("cpu-release-addr"));
        let release = release
            .iter()
            .fold(0u64, |acc, &c| (acc << 32) | u64::from(c));
        assert_eq!(
            board.release_address(*mpidr),
            Some(release),
            "{label}: {path} cpu-release-addr"
        );
    }
    // The firmware keeps its armstub page (with the spin table) out of the OS's memory.
    let spin_table = board.release_addresses.iter().copied();
    for address in spin_table {
        assert!(
            tree.reservations
                .iter()
                .any(|r| r.address <= address && address + 8 <= r.address + r.size),
            "{label}: release address {address:#x} outside the /memreserve/ entries {:x?}",
            tree.reservations
        );
    }
}

/// The kernel's boot-time reader (`hv_kernel::boot_dtb`, which must never panic on firmware
/// input) on the Pi 4's real tree: as Debian ships it, the memory node is a placeholder of size
/// 0 that the firmware fills in, so the reader refuses it with that reason; with the memory the
/// firmware writes (1 GiB at 0 on the smallest board, as QEMU's raspi4b also writes it), it
/// finds the RAM and the four CPUs.
#[test]
fn the_kernels_boot_reader_reads_the_pi4_tree_or_says_why_not() {
    use hv_kernel::boot_dtb::{self, DtbError};
    let HostDtbSource::DebianKernelPackage(relative) = hv_board::RPI4.host_dtb else {
        panic!("the rpi4 board's host DTB comes from Debian's kernel package");
    };
    let (blob, path) = fetch::debian_dtb(relative);
    let label = format!("rpi4 ({})", path.display());
    assert_eq!(boot_dtb::read(&blob), Err(DtbError::NoMemory), "{label}");

    let mut tree = parse(&label, &blob);
    let memory = tree
        .node("/")
        .unwrap()
        .children
        .iter()
        .find(|node| node.name.starts_with("memory"))
        .map(|node| format!("/{}", node.name))
        .expect("the Pi 4 tree has a memory node");
    let reg = tree.encode_reg("/", &[(0, 0x4000_0000)]).unwrap();
    tree.node_mut(&memory).unwrap().set_property("reg", reg);
    let facts = boot_dtb::read(&tree.to_bytes())
        .unwrap_or_else(|error| panic!("{label}: {error:?}: {}", error.describe()));
    assert_eq!(facts.ram.to_vec(), [(0, 0x4000_0000)], "{label}");
    assert_eq!(facts.cpus.to_vec(), [0, 1, 2, 3], "{label}");

    // And damaged: every truncation of the real tree is an error, not a panic.
    for len in (0..blob.len()).step_by(7) {
        assert!(
            boot_dtb::read(&blob[..len]).is_err(),
            "{label} cut to {len}"
        );
    }
}

/// The same reader on the tree as QEMU's `raspi4b` edits the Pi 4's (memory written, emulated
/// devices removed with NOP tokens), and on bit-flipped copies of the real tree: answers or
/// errors, never a panic.
#[test]
fn the_kernels_boot_reader_reads_raspi4bs_tree_and_survives_bit_flips() {
    use hv_kernel::boot_dtb;
    let HostDtbSource::DebianKernelPackage(relative) = hv_board::RPI4.host_dtb else {
        panic!("the rpi4 board's host DTB comes from Debian's kernel package");
    };
    let (blob, path) = fetch::debian_dtb(relative);
    let edited = fetch::raspi4b_dtb(&path);
    let facts = boot_dtb::read(&edited)
        .unwrap_or_else(|error| panic!("raspi4b's tree: {error:?}: {}", error.describe()));
    assert_eq!(facts.cpus.to_vec(), [0, 1, 2, 3]);
    assert_eq!(facts.ram.first().map(|bank| bank.0), Some(0));
    // Its nodes disabled by Debian's tree stay recorded (QEMU removes others outright).
    assert!(!facts.disabled.is_empty());

    let structure_end = {
        let be32 = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap()) as usize;
        be32(8) + be32(36)
    };
    for byte in (0..structure_end.min(blob.len())).step_by(97) {
        for bit in 0..8 {
            let mut flipped = blob.clone();
            flipped[byte] ^= 1 << bit;
            let _ = boot_dtb::read(&flipped);
        }
    }
}
