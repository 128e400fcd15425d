//! The partition edits on QEMU's own virt trees (`testdata/`: `qemu-system-aarch64` 7.2 with
//! `-M virt,virtualization=on,gic-version=2 -cpu cortex-a72` and `-M
//! virt,virtualization=on,gic-version=3,mte=on -cpu max`, `-smp 4 -m 1G`, dumped with
//! `dumpdtb=` and rewritten compactly by this crate) and on a small tree with a bus.

use super::*;

const GICV2: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv2.dtb");
const GICV3: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv3-mte.dtb");
const MIB: u64 = 1 << 20;
const PL011: u64 = 0x0900_0000;

fn view(devices: &[u64]) -> GuestView<'_> {
    GuestView {
        ram: (0x4000_0000, 64 * MIB),
        vcpus: 2,
        devices,
        console: Some(PL011),
        bootargs: "console=ttyAMA0 earlycon",
        initrd: None,
        shared_ipa_bit: None,
    }
}

fn child_names(node: &Node) -> Vec<&str> {
    node.children.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn a_guest_sees_its_ram_cpus_psci_and_console_only() {
    let board = DeviceTree::parse(GICV2).unwrap();
    assert_eq!(board.cpu_mpidrs(), Ok(vec![0, 1, 2, 3]));
    let guest = board.for_guest(&view(&[PL011])).unwrap();

    assert_eq!(guest.memory_ranges(), Ok(vec![(0x4000_0000, 64 * MIB)]));
    assert_eq!(
        child_names(&guest.root),
        [
            "psci",
            "memory@40000000",
            "pl011@9000000",
            "pmu",
            "intc@8000000",
            "cpus",
            "timer",
            "apb-pclk",
            "chosen"
        ]
    );
    // The GICv2m MSI frame serves PCI, which the guest lacks.
    assert!(guest.node("/intc@8000000").unwrap().children.is_empty());
    assert!(guest.reservations.is_empty() && guest.node("/reserved-memory").is_none());

    assert_eq!(guest.cpu_mpidrs(), Ok(vec![0, 1]));
    assert_eq!(
        child_names(guest.node("/cpus").unwrap()),
        ["cpu@0", "cpu@1"]
    );
    let cpu = guest.node("/cpus/cpu@1").unwrap();
    assert_eq!(cpu.string_property("enable-method"), Some("psci"));
    assert_eq!(cpu.string_property("compatible"), Some("arm,cortex-a72"));
    assert!(cpu.property("phandle").is_none());
    assert_eq!(
        guest.node("/psci").unwrap().string_property("method"),
        Some("hvc")
    );

    let chosen = guest.node("/chosen").unwrap();
    assert_eq!(
        chosen.string_property("bootargs"),
        Some("console=ttyAMA0 earlycon")
    );
    assert_eq!(
        chosen.string_property("stdout-path"),
        Some("/pl011@9000000")
    );
    // The host's seeds stay the host's.
    let names: Vec<&str> = chosen.properties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["stdout-path", "bootargs"]);

    assert_eq!(DeviceTree::parse(&guest.to_bytes()).unwrap(), guest);
    // The board's tree is untouched.
    assert_eq!(board, DeviceTree::parse(GICV2).unwrap());
}

#[test]
fn a_guest_gets_the_devices_it_is_given_and_its_initrd() {
    let board = DeviceTree::parse(GICV3).unwrap();
    let rtc = 0x0901_0000;
    let gpio = 0x0903_0000;
    let devices = [rtc, gpio];
    let mut view = view(&devices);
    view.console = None;
    view.vcpus = 1;
    view.initrd = Some((0x4220_0000, 0x4230_0000));
    let guest = board.for_guest(&view).unwrap();
    assert_eq!(
        child_names(&guest.root),
        [
            "psci",
            "memory@40000000",
            "pl061@9030000",
            "pl031@9010000",
            "pmu",
            "intc@8000000",
            "cpus",
            "timer",
            "apb-pclk",
            "chosen"
        ]
    );
    // The GICv3 ITS serves PCI too.
    assert!(guest.node("/intc@8000000/its@8080000").is_none());
    assert_eq!(guest.cpu_mpidrs(), Ok(vec![0]));
    let chosen = guest.node("/chosen").unwrap();
    assert!(chosen.property("stdout-path").is_none());
    assert_eq!(
        chosen.property("linux,initrd-start"),
        Some(&0x4220_0000u64.to_be_bytes()[..])
    );
    assert_eq!(
        chosen.property("linux,initrd-end"),
        Some(&0x4230_0000u64.to_be_bytes()[..])
    );

    assert_eq!(
        board.for_guest(&GuestView {
            devices: &[0x0905_0000],
            ..view
        }),
        Err(Error::NoDeviceAt {
            address: 0x0905_0000
        })
    );
}

#[test]
fn the_host_loses_the_guests_cpus_and_memory() {
    let mut host = DeviceTree::parse(GICV2).unwrap();
    host.remove_cpus(&[3, 1]).unwrap();
    assert_eq!(host.cpu_mpidrs(), Ok(vec![0, 2]));
    assert!(host.node("/cpus/cpu-map").is_none());
    assert_eq!(
        host.remove_cpus(&[2]),
        Err(Error::NoCpu { index: 2, count: 2 })
    );
    host.remove_cpus(&[]).unwrap();
    assert_eq!(host.cpu_mpidrs(), Ok(vec![0, 2]));

    let ranges = [(0x4000_0000, 0x3c00_0000), (0x7e00_0000, 0x200_0000)];
    host.set_memory(&ranges).unwrap();
    assert_eq!(host.memory_ranges(), Ok(ranges.to_vec()));
    // In the first memory node's place, under its name.
    assert_eq!(host.root.children[1].name, "memory@40000000");
}

/// A board whose devices sit on a bus with its own addresses, as the Raspberry Pi 4's do.
fn bus_board() -> DeviceTree {
    let mut t = DeviceTree::default();
    t.root.set_u32("#address-cells", 2);
    t.root.set_u32("#size-cells", 1);
    t.reservations.push(crate::Reservation {
        address: 0,
        size: 0x1000,
    });
    t.ensure_node("/memory@0")
        .set_string("device_type", "memory");
    t.node_mut("/memory@0")
        .unwrap()
        .set_u32s("reg", &[0, 0, 0x3b40_0000]);
    t.ensure_node("/reserved-memory/linux,cma");
    let cpus = t.ensure_node("/cpus");
    cpus.set_u32("#address-cells", 1);
    cpus.set_u32("#size-cells", 0);
    let cpu = t.ensure_node("/cpus/cpu@0");
    cpu.set_string("device_type", "cpu");
    cpu.set_u32("reg", 0);
    cpu.set_string("enable-method", "spin-table");
    t.ensure_node("/clocks/clk-osc").set_u32("#clock-cells", 0);
    t.ensure_node("/leds/act").set_string("label", "ACT");
    let soc = t.ensure_node("/soc");
    soc.set_property("compatible", &b"simple-bus\0"[..]);
    soc.set_u32("#address-cells", 1);
    soc.set_u32("#size-cells", 1);
    soc.set_u32s("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x0180_0000]);
    for (name, address) in [
        ("serial@7e201000", 0x7e20_1000),
        ("mmc@7e340000", 0x7e34_0000),
    ] {
        t.ensure_node(&format!("/soc/{name}"))
            .set_u32s("reg", &[address, 0x200]);
    }
    let gic = t.ensure_node("/soc/interrupt-controller@40041000");
    gic.set_empty("interrupt-controller");
    gic.set_property("compatible", &b"arm,gic-400\0"[..]);
    gic.set_u32s("reg", &[0x4004_1000, 0x1000]);
    // A GPIO block is an interrupt controller too, but a device.
    let gpio = t.ensure_node("/soc/gpio@7e200000");
    gpio.set_empty("interrupt-controller");
    gpio.set_u32s("reg", &[0x7e20_0000, 0x100]);
    let empty = t.ensure_node("/emmc2bus");
    empty.set_property("compatible", &b"simple-bus\0"[..]);
    empty.set_empty("ranges");
    t.ensure_node("/emmc2bus/mmc@7e340000")
        .set_u32s("reg", &[0, 0xfe34_0000, 0x100]);
    let aliases = t.ensure_node("/aliases");
    aliases.set_string("serial0", "/soc/serial@7e201000");
    aliases.set_string("mmc0", "/soc/mmc@7e340000");
    t.ensure_node("/__symbols__");
    t
}

#[test]
fn devices_on_a_bus_are_found_by_their_cpu_address() {
    let board = bus_board();
    assert_eq!(board.cpu_address("/soc/serial@7e201000"), Some(0xfe20_1000));
    assert_eq!(
        board.cpu_address("/emmc2bus/mmc@7e340000"),
        Some(0xfe34_0000)
    );
    assert_eq!(board.cpu_address("/soc"), None);
    assert_eq!(
        board.path_at_address(0xfe20_1000).as_deref(),
        Some("/soc/serial@7e201000")
    );

    let guest = board
        .for_guest(&GuestView {
            ram: (0, 64 * MIB),
            vcpus: 1,
            devices: &[0xfe20_1000],
            console: Some(0xfe20_1000),
            bootargs: "",
            initrd: None,
            shared_ipa_bit: None,
        })
        .unwrap();
    assert_eq!(
        child_names(&guest.root),
        [
            "memory@0", "cpus", "clocks", "soc", "aliases", "psci", "chosen"
        ]
    );
    assert_eq!(
        child_names(guest.node("/soc").unwrap()),
        ["serial@7e201000", "interrupt-controller@40041000"]
    );
    assert!(guest.reservations.is_empty());
    let aliases = guest.node("/aliases").unwrap();
    assert_eq!(
        aliases.string_property("serial0"),
        Some("/soc/serial@7e201000")
    );
    assert!(aliases.property("mmc0").is_none());
    assert_eq!(
        guest
            .node("/chosen")
            .unwrap()
            .string_property("stdout-path"),
        Some("/soc/serial@7e201000")
    );
    let psci = guest.node("/psci").unwrap();
    assert_eq!(psci.string_property("method"), Some("hvc"));
    assert_eq!(
        guest
            .node("/cpus/cpu@0")
            .unwrap()
            .string_property("enable-method"),
        Some("psci")
    );
}

#[test]
fn a_guest_with_a_shared_bit_is_told_it() {
    let board = DeviceTree::parse(GICV2).unwrap();
    let plain = board.for_guest(&view(&[PL011])).unwrap();
    assert!(plain.node("/hypervisor").is_none());
    let guest = board
        .for_guest(&GuestView {
            shared_ipa_bit: Some(39),
            ..view(&[PL011])
        })
        .unwrap();
    let hypervisor = guest.node("/hypervisor").unwrap();
    assert_eq!(
        hypervisor.string_property("compatible"),
        Some("hv,partition")
    );
    assert_eq!(hypervisor.u32_property("hv,shared-ipa-bit"), Some(39));
}
