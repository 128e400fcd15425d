//! The Raspberry Pi 4's system tests that are checks of their own: its image as the SD card
//! gets it (and the hot-swap variant's host tree), and the image on QEMU's `raspi4b` with
//! Debian's Linux and with a bare-metal guest as the host.

use super::*;

/// The Raspberry Pi 4 image (`manifests/rpi4.toml`, `kernel8.img` as the SD card gets it) on
/// QEMU's `raspi4b`: entered at EL2 by QEMU's spin-table stub with the firmware's DTB, the
/// host (Debian's generic arm64 kernel) reaches userspace on the PL011 with its 4 CPUs,
/// under the lazily built stage 2, and powers off; the devices QEMU does not emulate, which the
/// firmware's tree disables, are disabled in the host's. The log frames come on the mini-UART:
/// `cargo xtask decode` must reproduce, from its raw capture, the log the run decoded live.
pub(super) fn check_rpi4_on_raspi4b() -> Result<(), String> {
    const NAME: &str = "rpi4-raspi4b";
    let outcome = Boot {
        // The console on the PL011: QEMU's model of the mini-UART (bcm2835-aux) raises an
        // interrupt storm once Linux opens it as its console, hanging CPU 0 in request_irq
        // (the same on bare QEMU, without the hypervisor). The mini-UART carries the log.
        append: "console=ttyAMA0 hv.init=test",
        manifest: Some("manifests/rpi4.toml"),
        ..Boot::new(NAME, CpuModel::A72, 4, None, 300)
    }
    .run()
    .map_err(|error| format!("{error:#}"))?;
    let logs = paths::xtask_out().join("logs").join(NAME);
    let fail = |reason: String| {
        eprintln!("---- logs: {} ----", logs.display());
        Err(reason)
    };
    if let Err(reason) = powered_off_with(
        &outcome,
        &[
            "CPU: All CPU(s) started at EL1",
            "HV-INIT: userspace up",
            "HV-INIT: cpus online=4",
            "HV-INIT: done",
        ],
        &[
            "entering the host at",
            "cpu3 up, entering the host",
            "device(s) the firmware disabled are disabled",
            "run ends: guest powered off",
        ],
    ) {
        return fail(reason);
    }
    let archive = paths::xtask_out().join("rpi4").join("debug.tar");
    let decoder = crate::decode::decoder_from_archive(&archive, None)
        .map_err(|error| format!("{error:#}"))?;
    let raw =
        std::fs::read(logs.join("serial.raw")).map_err(|error| format!("serial.raw: {error}"))?;
    let decoded: Vec<String> = crate::decode::decode_capture(&decoder, &raw)
        .into_iter()
        .filter_map(|line| line.strip_prefix("[hv] ").map(str::to_owned))
        .collect();
    if decoded != outcome.hv_log {
        let first = decoded
            .iter()
            .zip(&outcome.hv_log)
            .position(|(a, b)| a != b)
            .unwrap_or(decoded.len().min(outcome.hv_log.len()));
        return fail(format!(
            "cargo xtask decode of serial.raw gives {} log lines, the live run {}; first difference at line {first}",
            decoded.len(),
            outcome.hv_log.len()
        ));
    }
    Ok(())
}

/// The bare-metal `el1-basics` guest as the host of the Raspberry Pi 4 image on QEMU's
/// `raspi4b` (linked for the Pi's host kernel address; its console is the PL011, QEMU's first
/// serial port): every check passes and it powers off.
pub(super) fn check_el1_basics_on_raspi4b() -> Result<(), String> {
    const NAME: &str = "rpi4-el1-basics-raspi4b";
    let guest =
        crate::artifacts::guest_at("hv-guest-el1-basics", hv_board::RPI4.host_kernel_address)
            .map_err(|error| format!("{error:#}"))?;
    let outcome = Boot {
        manifest: Some("manifests/rpi4.toml"),
        ..Boot::new(NAME, CpuModel::A72, 4, Some(guest), 120)
    }
    .run()
    .map_err(|error| format!("{error:#}"))?;
    let summary = outcome
        .console
        .lines()
        .find(|line| line.contains(" passed, "))
        .map(str::trim)
        .map(str::to_owned);
    match (outcome.status(), summary) {
        (Some(ExitStatus::PoweredOff), Some(line))
            if line.ends_with(" passed, 0 failed") && !line.starts_with("0 passed") =>
        {
            Ok(())
        }
        (status, line) => Err(format!(
            "el1-basics on raspi4b: {status:?}, summary {line:?}; logs in {}",
            paths::xtask_out().join("logs").join(NAME).display()
        )),
    }
}

/// Builds `manifests/rpi4.toml` and checks the SD-card files: `kernel8.img` is an arm64 Image
/// (magic, text_offset 0, image_size = its length) whose boot table and kernel are linked for
/// the address `config.txt` loads it at, and `config.txt` asks for a 64-bit boot.
pub(super) fn check_rpi4_image() -> Result<(), String> {
    let args = SystemArgs {
        manifest: Some(paths::workspace().join("manifests/rpi4.toml")),
        machine: CpuModel::A72,
        smp: None,
        mem: None,
        kernel: None,
        initrd: None,
        append: None,
    };
    let system = args.resolve().map_err(|e| format!("{e:#}"))?;
    let built = build_image(&system).map_err(|e| format!("{e:#}"))?;
    let folder = built
        .image
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("sd-card");
    let image =
        std::fs::read(folder.join("kernel8.img")).map_err(|e| format!("kernel8.img: {e}"))?;
    let config = std::fs::read_to_string(folder.join("config.txt"))
        .map_err(|e| format!("config.txt: {e}"))?;
    let field = |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
    if image.len() < 64 || image[0x38..0x3c] != hv_abi::IMAGE_HEADER_MAGIC {
        return Err("kernel8.img has no arm64 Image header".into());
    }
    if field(8) != 0 || field(hv_abi::IMAGE_HEADER_SIZE_OFFSET) != image.len() as u64 {
        return Err("kernel8.img: text_offset must be 0 and image_size its length".into());
    }
    let kernel = std::fs::read(&built.kernel_elf).map_err(|e| e.to_string())?;
    let linked_at = crate::elf::symbol(&kernel, "__image_start").map_err(|e| format!("{e:#}"))?;
    let wanted = format!("kernel_address={linked_at:#x}");
    if linked_at != hv_board::RPI4.image_load_address || !config.lines().any(|l| l == wanted) {
        return Err(format!(
            "config.txt must load the image where the kernel is linked ({wanted})"
        ));
    }
    for line in ["arm_64bit=1", "kernel=kernel8.img", "enable_uart=1"] {
        if !config.lines().any(|l| l == line) {
            return Err(format!("config.txt lacks {line}"));
        }
    }
    let table_at = (crate::elf::symbol(&kernel, "__boot_table").map_err(|e| format!("{e:#}"))?
        - linked_at) as usize;
    let table = hv_abi::BootTable::decode(&image[table_at..table_at + hv_abi::BOOT_TABLE_SIZE])
        .map_err(|e| format!("boot table: {e:?}"))?;
    table
        .validate(image.len() as u64)
        .map_err(|e| format!("boot table: {e:?}"))?;
    if table.hypervisor.start != hv_board::RPI4.ram_base
        || table.host_entry != hv_board::RPI4.host_kernel_address
    {
        return Err("the boot table does not match the rpi4 board's layout".into());
    }
    Ok(())
}

/// Builds `manifests/rpi4-hot-swap.toml` (a physical Pi with hot-swap) and checks what the host
/// is told, on Debian's real Pi 4 tree: the mini-UART's page (the control line) disabled, uart3
/// enabled as the host's console with the upstream tree's pin group and alias `serial3`, and
/// `dtoverlay=uart3` in config.txt so that the firmware's tree agrees at boot.
pub(super) fn check_rpi4_hot_swap_image() -> Result<(), String> {
    let system =
        SystemArgs::without_images(&paths::workspace().join("manifests/rpi4-hot-swap.toml"));
    let system = SystemArgs {
        kernel: None,
        initrd: None,
        ..system
    }
    .resolve()
    .map_err(|e| format!("{e:#}"))?;
    let built = build_image(&system).map_err(|e| format!("{e:#}"))?;
    let out = built.image.parent().unwrap_or(std::path::Path::new("."));
    let blob = std::fs::read(out.join("host.dtb")).map_err(|e| format!("host.dtb: {e}"))?;
    let tree = hv_devicetree::DeviceTree::parse(&blob).map_err(|e| format!("host.dtb: {e:?}"))?;
    let status = |address: u64| {
        let path = tree
            .path_at_address(address)
            .ok_or_else(|| format!("host.dtb has no node at {address:#x}"))?;
        let status = tree
            .node(&path)
            .and_then(|node| node.property("status"))
            .map(|bytes| {
                String::from_utf8_lossy(bytes.split(|&b| b == 0).next().unwrap_or_default())
                    .into_owned()
            });
        Ok::<_, String>((path, status))
    };
    let board = &hv_board::RPI4;
    for name in ["uart1", "aux"] {
        let device = board.device(name).ok_or(format!("no {name}"))?;
        let (path, status) = status(device.region.base)?;
        if status.as_deref() != Some("disabled") {
            return Err(format!(
                "{path} ({name}) is {status:?} in the host's tree, not disabled"
            ));
        }
    }
    let uart3 = board.uart("uart3").ok_or("no uart3")?;
    let (path, status) = status(uart3.region.base)?;
    if status.as_deref() != Some("okay") {
        return Err(format!(
            "{path} (uart3) is {status:?} in the host's tree, not okay"
        ));
    }
    let node = tree.node(&path).ok_or("uart3's node")?;
    let pins = node
        .u32_property("pinctrl-0")
        .ok_or("uart3 has no pinctrl-0")?;
    let group = tree
        .path_at_phandle(pins)
        .ok_or(format!("pinctrl-0 = <{pins:#x}> names no node"))?;
    if !group.ends_with("/uart3_gpio4") {
        return Err(format!("uart3's pins are {group}, not uart3_gpio4"));
    }
    let alias = tree
        .node("/aliases")
        .and_then(|aliases| aliases.string_property("serial3"));
    if alias != Some(path.as_str()) {
        return Err(format!("/aliases/serial3 is {alias:?}, not {path}"));
    }
    let config = std::fs::read_to_string(out.join("sd-card").join("config.txt"))
        .map_err(|e| format!("config.txt: {e}"))?;
    if !config.lines().any(|line| line == "dtoverlay=uart3") {
        return Err("config.txt lacks dtoverlay=uart3".into());
    }
    Ok(())
}

/// Debian's Linux as the host of the physical Pi's hot-swap image
/// (`manifests/rpi4-hot-swap.toml`) on QEMU's `raspi4b`, its console moved to the PL011 (QEMU
/// has no uart3): it reaches userspace on 4 CPUs with the mini-UART's page kept from it (its
/// nodes disabled, its stage 2 without it), and, held at the end of its test run
/// (`hv.hold`: the PL011's input goes to the Pi's Bluetooth node, so nothing can be typed),
/// keeps running while the VM manager is swapped under it over the shared line; the new
/// instance then serves its power-off.
pub(super) fn check_linux_hot_swap_on_raspi4b() -> Result<(), String> {
    const NAME: &str = "rpi4-linux-hot-swap-raspi4b";
    const HELD: &str = "HV-INIT: holding for";
    let swaps = [crate::swap::PlannedSwap {
        after: HELD,
        times: 1,
        component: "vm-manager",
        hook: Some(hv_component_config::SwapTest::Rebuilt),
        corrupt: false,
        then_type: None,
        expect: crate::swap::SwapExpect::Swapped,
    }];
    let outcome = Boot {
        append: "console=ttyAMA0 hv.init=test hv.hold=15",
        manifest: Some("manifests/rpi4-hot-swap.toml"),
        swaps: &swaps,
        ..Boot::new(NAME, CpuModel::A72, 4, None, 300)
    }
    .run()
    .map_err(|error| format!("{error:#}"))?;
    let logs = paths::xtask_out().join("logs").join(NAME);
    let fail = |reason: String| {
        eprintln!("---- logs: {} ----", logs.display());
        Err(reason)
    };
    let checked = check_swaps(&swaps, &outcome).and_then(|()| {
        powered_off_with(
            &outcome,
            &[
                "CPU: All CPU(s) started at EL1",
                "HV-INIT: userspace up",
                "HV-INIT: cpus online=4",
                HELD,
                "HV-INIT: done",
            ],
            &[
                "hot-swap: the control line is on",
                "component vm-manager swapped: build",
                "vm-manager: taken over after",
                "run ends: guest powered off",
            ],
        )
    });
    if let Err(reason) = checked {
        return fail(reason);
    }
    // The host ran on after the swap: its power-off came to the new instance.
    let at = |needle: &str| outcome.hv_log.iter().position(|line| line.contains(needle));
    if at("component vm-manager swapped") > at("SYSTEM_OFF") {
        return fail("the host powered off before the swap ended".into());
    }
    Ok(())
}

/// Whether the run powered off with every one of `console` on its console and every one of
/// `log` in the hypervisor's log, and no log frame lost; if not, why.
fn powered_off_with(outcome: &Outcome, console: &[&str], log: &[&str]) -> Result<(), String> {
    if outcome.status() != Some(ExitStatus::PoweredOff) {
        return Err(format!("the run ended with {}", outcome.describe()));
    }
    if let Some(wanted) = console
        .iter()
        .find(|wanted| !outcome.console.contains(*wanted))
    {
        return Err(format!("the console lacks {wanted:?}"));
    }
    if let Some(wanted) = log
        .iter()
        .find(|wanted| !outcome.hv_log.iter().any(|line| line.contains(*wanted)))
    {
        return Err(format!("the hypervisor's log lacks {wanted:?}"));
    }
    check_log_frames(outcome)
}
