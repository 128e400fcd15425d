//! Consistency of the generated boards, and the rules `Board::validate` enforces, each shown
//! failing on a deliberately broken copy of a real board.

use super::*;

const MIB: u64 = 1 << 20;

#[test]
fn every_board_validates() {
    for board in ALL {
        assert_eq!(board.validate(), Ok(()), "{}", board.name);
    }
}

#[test]
fn control_lines_and_the_pages_they_keep() {
    // virt: a PL011 of its own, beside the log (semihosting).
    let virt = QEMU_VIRT.control_uart.unwrap();
    assert_eq!(virt.kind, UartKind::Pl011);
    assert!(!QEMU_VIRT.control_shares_log());
    assert_eq!(
        QEMU_VIRT.control_page(),
        Some(Region {
            base: 0x0904_0000,
            size: 0x1000
        })
    );
    // The Pi: the log's mini-UART, whose page holds the AUX block too.
    assert_eq!(RPI4.control_uart.unwrap().kind, UartKind::MiniUart);
    assert!(RPI4.control_shares_log());
    let page = RPI4.control_page().unwrap();
    let aux = RPI4.device("aux").unwrap().region;
    assert!(page.base <= aux.base && aux.end() <= page.end());
    assert!(!page.contains(RPI4.uart("uart0").unwrap().region.base));
}

#[test]
fn boards_are_found_by_name() {
    for board in ALL {
        assert_eq!(by_name(board.name), Some(board));
    }
    assert_eq!(by_name("pdp-11"), None);
    assert_eq!(
        ALL.iter().map(|b| b.name).collect::<Vec<_>>(),
        ["qemu-virt", "rpi4"]
    );
    // Without a board feature the kernel is built for QEMU.
    assert_eq!(CURRENT, &QEMU_VIRT);
}

#[test]
fn layouts_leave_the_host_its_ram() {
    for board in ALL {
        assert_eq!(board.host_kernel_address % (2 * MIB), 0, "{}", board.name);
        assert_eq!(board.image_load_address % (2 * MIB), 0, "{}", board.name);
        assert!(board.hypervisor_region().contains(board.image_load_address));
        assert!(board.host_kernel_address >= board.hypervisor_region_end());
        assert_eq!(board.check_machine_ram_size(board.default_ram_size), Ok(()));
        let usable = board.usable_ram_size(board.default_ram_size);
        assert_eq!(board.check_ram_size(usable), Ok(()));
        assert!(board.host_kernel_address < board.ram_base + usable);
        assert!(board.default_cpus <= board.max_cpus);
    }
}

#[test]
fn the_pi_starts_secondaries_from_a_spin_table_the_host_cannot_reach() {
    let pi = &RPI4;
    assert_eq!(pi.secondary_start, SecondaryStart::SpinTable);
    assert!(!pi.has_firmware_psci());
    assert_eq!(pi.release_addresses, [0xd8, 0xe0, 0xe8, 0xf0]);
    for (aff0, &address) in pi.release_addresses.iter().enumerate() {
        assert_eq!(pi.release_address(aff0 as u64), Some(address));
        // Below the image and inside the hypervisor's region: neither the image nor the
        // host's stage 2 covers it.
        assert!(address + 8 <= pi.image_load_address);
        assert!(pi.hypervisor_region().contains(address));
    }
    assert_eq!(pi.release_address(4), None);
    assert_eq!(pi.release_address(0x100), None, "Aff1 set");
    assert_eq!(QEMU_VIRT.release_address(1), None);
    assert!(QEMU_VIRT.has_firmware_psci());
    assert!(QEMU_VIRT.release_addresses.is_empty());
}

#[test]
fn loaders_and_host_dtbs_follow_the_board() {
    assert_eq!(QEMU_VIRT.loader, Loader::Qemu);
    assert_eq!(QEMU_VIRT.host_dtb, HostDtbSource::QemuDump);
    assert_eq!(RPI4.loader, Loader::RaspberryPiFirmware);
    assert_eq!(
        RPI4.host_dtb,
        HostDtbSource::DebianKernelPackage("broadcom/bcm2711-rpi-4-b.dtb")
    );
}

#[test]
fn log_sinks_and_consoles_are_uarts_of_the_board() {
    assert_eq!(QEMU_VIRT.log_sink, LogSink::Semihosting);
    assert_eq!(QEMU_VIRT.console().name, "uart0");
    assert_eq!(QEMU_VIRT.console_uart, 0x0900_0000);
    let LogSink::MiniUart { base } = RPI4.log_sink else {
        panic!("the Pi logs to its mini-UART");
    };
    assert_eq!(
        RPI4.uart("uart1").map(|u| (u.kind, u.region.base)),
        Some((UartKind::MiniUart, base))
    );
    assert_eq!(RPI4.console().kind, UartKind::MiniUart);
    for board in ALL {
        for uart in board.uarts {
            let device = board.device(uart.name).expect("every UART is a device");
            assert_eq!(device.region, uart.region);
            assert_eq!(device.compatible, uart.kind.compatible());
        }
    }
}

#[test]
fn gics_are_found_by_version() {
    let v2 = QEMU_VIRT.gic(GicVersion::V2).unwrap();
    let v3 = QEMU_VIRT.gic(GicVersion::V3).unwrap();
    assert_eq!(v2.version(), GicVersion::V2);
    assert_eq!(v3.version(), GicVersion::V3);
    assert!(RPI4.gic(GicVersion::V3).is_none());
    let GicCpuInterfaces::V2 { gich, gicv, .. } = RPI4.gic(GicVersion::V2).unwrap().cpu_interfaces
    else {
        panic!("GIC-400 is a GICv2");
    };
    assert_eq!((gich.base, gicv.base), (0xff84_4000, 0xff84_6000));
}

#[test]
fn ram_sizes_are_checked_against_the_board() {
    let pi = &RPI4;
    assert_eq!(pi.check_ram_size(512 * MIB), Ok(()));
    assert_eq!(
        pi.check_ram_size(MIB),
        Err(RamSizeError::NotMultipleOf { granule: 2 * MIB })
    );
    assert_eq!(
        pi.check_ram_size(32 * MIB),
        Err(RamSizeError::TooSmall { min: 34 * MIB })
    );
    assert_eq!(
        pi.check_ram_size(1024 * MIB),
        Err(RamSizeError::TooLarge { max: 948 * MIB })
    );
    assert_eq!(
        RamSizeError::TooLarge { max: 948 * MIB }.to_string(),
        "must be at most 948 MiB"
    );
}

#[test]
fn machines_come_in_the_boards_ram_sizes() {
    const GIB: u64 = 1 << 30;
    let pi = &RPI4;
    assert_eq!(pi.ram_sizes, [GIB, 2 * GIB, 4 * GIB, 8 * GIB]);
    assert_eq!(pi.default_ram_size, GIB);
    assert_eq!(pi.check_machine_ram_size(4 * GIB), Ok(()));
    let error = pi.check_machine_ram_size(3 * GIB).unwrap_err();
    assert_eq!(
        error.to_string(),
        "must be one the board comes in: 1024 MiB 2048 MiB 4096 MiB 8192 MiB"
    );
    assert_eq!(pi.round_up_ram_size(900 * MIB), Some(GIB));
    assert_eq!(pi.round_up_ram_size(3 * GIB), Some(4 * GIB));
    assert_eq!(pi.round_up_ram_size(9 * GIB), None);
    // Every Pi 4 gives an image its first bank, below the GPU's memory.
    assert_eq!(pi.usable_ram_size(8 * GIB), 948 * MIB);

    let virt = &QEMU_VIRT;
    assert!(virt.ram_sizes.is_empty());
    assert_eq!(virt.check_machine_ram_size(3 * GIB), Ok(()));
    assert_eq!(virt.round_up_ram_size(900 * MIB + 1), Some(902 * MIB));
    assert_eq!(virt.round_up_ram_size(MIB), Some(34 * MIB));
    assert_eq!(virt.round_up_ram_size(256 * GIB), None);
    assert_eq!(virt.usable_ram_size(2 * GIB), 2 * GIB);
}

#[test]
fn linux_consoles_name_the_console_uart() {
    assert_eq!(QEMU_VIRT.linux_console, "ttyAMA0");
    assert_eq!(QEMU_VIRT.console().kind, UartKind::Pl011);
    assert_eq!(RPI4.linux_console, "ttyS1,115200");
    assert_eq!(RPI4.console().name, "uart1");
}

/// `board` with `devices` replacing its devices (leaked: boards hold static slices).
fn with_devices(board: Board, devices: Vec<Device>) -> Board {
    Board {
        devices: Vec::leak(devices),
        ..board
    }
}

fn device(name: &'static str, base: u64, size: u64, interrupt: Option<u32>) -> Device {
    Device {
        name,
        compatible: "test,device",
        region: Region { base, size },
        interrupt,
    }
}

#[test]
fn validate_rejects_broken_layouts() {
    let virt = QEMU_VIRT;
    let cases = [
        (
            Board {
                image_load_address: virt.image_load_address + 0x1000,
                ..virt
            },
            BoardError::ImageAlignment,
        ),
        (
            Board {
                image_load_address: virt.hypervisor_region_end(),
                host_kernel_address: virt.hypervisor_region_end() + 2 * MIB,
                ..virt
            },
            BoardError::ImageOutsideHypervisorRegion,
        ),
        (
            Board {
                host_kernel_address: virt.hypervisor_region_end() - 2 * MIB,
                ..virt
            },
            BoardError::HostKernelPlacement,
        ),
        (
            Board {
                default_ram_size: virt.max_ram_size + 2 * MIB,
                ..virt
            },
            BoardError::RamSizes,
        ),
        (
            Board {
                ram_size_granule: 3 * MIB,
                ..virt
            },
            BoardError::RamGranule,
        ),
        (
            Board {
                ram_sizes: &[1 << 31, 1 << 30],
                ..virt
            },
            BoardError::RamSizes,
        ),
        (
            Board {
                ram_sizes: &[1 << 31],
                ..virt
            },
            BoardError::RamSizes,
        ),
        (
            Board {
                ram_sizes: &[40 * MIB, 1 << 30],
                default_ram_size: 40 * MIB,
                host_kernel_address: 40 * MIB + virt.ram_base,
                ..virt
            },
            BoardError::HostKernelPlacement,
        ),
        (
            Board {
                default_cpus: virt.max_cpus + 1,
                ..virt
            },
            BoardError::CpuCount,
        ),
    ];
    for (board, error) in cases {
        assert_eq!(board.validate(), Err(error));
    }
}

#[test]
fn validate_rejects_a_wrong_choice_of_cpu_start() {
    let pi = RPI4;
    let cases = [
        (
            Board {
                release_addresses: &[0xd8, 0xe0],
                ..pi
            },
            BoardError::ReleaseAddressCount,
        ),
        (
            Board {
                secondary_start: SecondaryStart::PsciSmc,
                ..pi
            },
            BoardError::ReleaseAddressCount,
        ),
        (
            Board {
                release_addresses: &[0xd8, 0xe0, 0xe8, 0xf4],
                ..pi
            },
            BoardError::ReleaseAddressPlacement,
        ),
        (
            Board {
                release_addresses: &[0xd8, 0xe0, 0xe8, 0x20_0000],
                ..pi
            },
            BoardError::ReleaseAddressPlacement,
        ),
        (
            Board {
                release_addresses: &[0xd8, 0xe0, 0xe8, 0xd8],
                ..pi
            },
            BoardError::ReleaseAddressPlacement,
        ),
    ];
    for (board, error) in cases {
        assert_eq!(board.validate(), Err(error));
    }
}

#[test]
fn validate_rejects_devices_that_collide() {
    let virt = QEMU_VIRT;
    let mut overlapping = virt.devices.to_vec();
    overlapping.push(device("uart0-alias", 0x0900_0800, 0x1000, None));
    let mut in_ram = virt.devices.to_vec();
    in_ram.push(device("ram-device", 0x4000_0000, 0x1000, None));
    let mut on_the_gic = virt.devices.to_vec();
    on_the_gic.push(device("gic-device", 0x0804_0000, 0x1000, None));
    let mut renamed = virt.devices.to_vec();
    renamed.push(device("rtc", 0x0a00_0000, 0x200, None));
    let mut ppi_device = virt.devices.to_vec();
    ppi_device.push(device("ppi-device", 0x0a00_0000, 0x200, Some(27)));
    let cases = [
        (with_devices(virt, overlapping), BoardError::DeviceOverlap),
        (with_devices(virt, in_ram), BoardError::DeviceOverlap),
        (with_devices(virt, on_the_gic), BoardError::DeviceOverlap),
        (with_devices(virt, renamed), BoardError::Device),
        (with_devices(virt, ppi_device), BoardError::Spi),
        (
            with_devices(virt, virt.devices[1..].to_vec()),
            BoardError::Device,
        ),
    ];
    for (board, error) in cases {
        assert_eq!(board.validate(), Err(error));
    }
}

#[test]
fn validate_rejects_bad_interrupts_and_sinks() {
    let pi = RPI4;
    let cases = [
        (
            Board {
                timer: TimerInterrupts {
                    virt: 33,
                    ..pi.timer
                },
                ..pi
            },
            BoardError::Ppi,
        ),
        (
            Board {
                timer: TimerInterrupts {
                    virt: 25,
                    ..pi.timer
                },
                ..pi
            },
            BoardError::Ppi,
        ),
        (
            Board {
                log_sink: LogSink::MiniUart { base: 0xfe20_1000 },
                ..pi
            },
            BoardError::LogSink,
        ),
        (
            Board {
                console_uart: 0xfe21_5000,
                ..pi
            },
            BoardError::ConsoleUart,
        ),
        (Board { gics: &[], ..pi }, BoardError::Gic),
        (
            Board {
                gics: Vec::leak(vec![pi.gics[0], pi.gics[0]]),
                ..pi
            },
            BoardError::Gic,
        ),
    ];
    for (board, error) in cases {
        assert_eq!(board.validate(), Err(error), "{:?}", error);
    }
}

#[test]
fn every_error_names_what_to_change() {
    let errors = [
        BoardError::RamGranule,
        BoardError::RamSizes,
        BoardError::ImageAlignment,
        BoardError::ImageOutsideHypervisorRegion,
        BoardError::HostKernelPlacement,
        BoardError::CpuCount,
        BoardError::ReleaseAddressCount,
        BoardError::ReleaseAddressPlacement,
        BoardError::LogSink,
        BoardError::ConsoleUart,
        BoardError::Gic,
        BoardError::GicOverlap,
        BoardError::Ppi,
        BoardError::Spi,
        BoardError::Device,
        BoardError::DeviceOverlap,
    ];
    for error in errors {
        let message = error.to_string();
        assert!(
            message.contains('.') || message.contains('['),
            "{error:?}: {message}"
        );
    }
}
