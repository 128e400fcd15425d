//! Generates the board constants from `board/<name>/board.toml`, so the TOML files are the
//! single source of truth (the format is documented in `src/lib.rs`).
//!
//! This script checks what the generated code depends on (names that exist, the right kind of
//! UART, the GIC keys of each version) and says which file and key to fix; the layout checks
//! (alignment, overlaps, the spin table's place) are `Board::validate`, which the generated
//! code runs at compile time.

use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BoardFile {
    name: String,
    summary: String,
    memory: Memory,
    cpus: Cpus,
    image: Image,
    log: Log,
    console: Console,
    #[serde(default)]
    control: Option<Control>,
    secondaries: Secondaries,
    timer: Timer,
    gic: Vec<Gic>,
    #[serde(default)]
    uart: Vec<Uart>,
    #[serde(default)]
    device: Vec<Device>,
}

/// The hot-swap control line: a PL011 only the hypervisor uses (`pl011`), or one of the
/// board's UARTs (`uart`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Control {
    #[serde(default)]
    pl011: Option<u64>,
    #[serde(default)]
    uart: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Memory {
    ram_base: u64,
    #[serde(default)]
    ram_sizes: Vec<u64>,
    default_ram_size: u64,
    max_ram_size: u64,
    ram_size_granule: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Cpus {
    max: usize,
    default: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Image {
    loader: String,
    load_address: u64,
    hypervisor_region_size: u64,
    host_kernel_address: u64,
    host_dtb: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Log {
    sink: String,
    uart: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Console {
    uart: String,
    linux_console: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Secondaries {
    start: String,
    #[serde(default)]
    release_addresses: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Timer {
    secure_physical: u32,
    physical: u32,
    #[serde(rename = "virtual")]
    virt: u32,
    hypervisor: u32,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Region {
    base: u64,
    size: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Gic {
    version: u32,
    gicd: Region,
    gicc: Option<Region>,
    gich: Option<Region>,
    gicv: Option<Region>,
    gicr: Option<Region>,
    gicr_stride: Option<u64>,
    maintenance_interrupt: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Uart {
    name: String,
    kind: String,
    base: u64,
    size: u64,
    interrupt: u32,
    #[serde(default)]
    pins: Option<String>,
    #[serde(default)]
    alias: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Device {
    name: String,
    compatible: String,
    base: u64,
    size: u64,
    interrupt: Option<u32>,
}

/// Stops the build with a message naming the file.
fn fail(path: &Path, message: &str) -> ! {
    eprintln!("error: {}: {message}", path.display());
    std::process::exit(1);
}

fn region(region: Region) -> String {
    format!(
        "Region {{ base: {:#x}, size: {:#x} }}",
        region.base, region.size
    )
}

fn uart_kind(path: &Path, uart: &Uart) -> &'static str {
    match uart.kind.as_str() {
        "pl011" => "UartKind::Pl011",
        "mini-uart" => "UartKind::MiniUart",
        other => fail(
            path,
            &format!(
                "uart \"{}\": kind \"{other}\" is not \"pl011\" or \"mini-uart\"",
                uart.name
            ),
        ),
    }
}

fn gic(path: &Path, gic: &Gic) -> String {
    let need = |region: Option<Region>, key: &str| -> Region {
        region.unwrap_or_else(|| {
            fail(
                path,
                &format!("a version {} [[gic]] needs `{key}`", gic.version),
            )
        })
    };
    let refuse = |present: bool, key: &str| {
        if present {
            fail(
                path,
                &format!("a version {} [[gic]] has no `{key}`", gic.version),
            );
        }
    };
    let cpu_interfaces = match gic.version {
        2 => {
            refuse(gic.gicr.is_some(), "gicr");
            refuse(gic.gicr_stride.is_some(), "gicr-stride");
            format!(
                "GicCpuInterfaces::V2 {{ gicc: {}, gich: {}, gicv: {} }}",
                region(need(gic.gicc, "gicc")),
                region(need(gic.gich, "gich")),
                region(need(gic.gicv, "gicv"))
            )
        }
        3 => {
            for (present, key) in [
                (gic.gicc.is_some(), "gicc"),
                (gic.gich.is_some(), "gich"),
                (gic.gicv.is_some(), "gicv"),
            ] {
                refuse(present, key);
            }
            let gicr = need(gic.gicr, "gicr");
            let stride = gic
                .gicr_stride
                .unwrap_or_else(|| fail(path, "a version 3 [[gic]] needs `gicr-stride`"));
            if stride == 0 || !gicr.size.is_multiple_of(stride) {
                fail(path, "gic gicr-stride must divide gicr's size");
            }
            format!(
                "GicCpuInterfaces::V3 {{ gicr: {}, gicr_stride: {stride:#x} }}",
                region(gicr)
            )
        }
        other => fail(path, &format!("gic version {other} is not 2 or 3")),
    };
    format!(
        "Gic {{ gicd: {}, cpu_interfaces: {cpu_interfaces}, maintenance_interrupt: {} }}",
        region(gic.gicd),
        gic.maintenance_interrupt
    )
}

/// The Rust constant for one board.
fn generate(path: &Path, board: &BoardFile) -> String {
    let find_uart = |name: &str, key: &str| -> &Uart {
        board
            .uart
            .iter()
            .find(|uart| uart.name == name)
            .unwrap_or_else(|| fail(path, &format!("{key} = \"{name}\" names no [[uart]]")))
    };
    let log_sink = match (board.log.sink.as_str(), &board.log.uart) {
        ("semihosting", None) => "LogSink::Semihosting".to_owned(),
        ("uart", Some(name)) => {
            let uart = find_uart(name, "log.uart");
            if uart.kind != "mini-uart" {
                fail(
                    path,
                    "log.uart: the kernel drives only the mini-UART as a log sink",
                );
            }
            format!("LogSink::MiniUart {{ base: {:#x} }}", uart.base)
        }
        ("semihosting", Some(_)) => fail(path, "log: sink = \"semihosting\" takes no `uart`"),
        ("uart", None) => fail(path, "log: sink = \"uart\" needs `uart = \"<name>\"`"),
        (other, _) => fail(
            path,
            &format!("log.sink \"{other}\" is not \"semihosting\" or \"uart\""),
        ),
    };
    let secondary_start = match board.secondaries.start.as_str() {
        "psci-smc" => "SecondaryStart::PsciSmc",
        "spin-table" => "SecondaryStart::SpinTable",
        other => fail(
            path,
            &format!("secondaries.start \"{other}\" is not \"psci-smc\" or \"spin-table\""),
        ),
    };
    let console = find_uart(&board.console.uart, "console.uart");
    let loader = match board.image.loader.as_str() {
        "qemu" => "Loader::Qemu",
        "raspberry-pi-firmware" => "Loader::RaspberryPiFirmware",
        other => fail(
            path,
            &format!("image.loader \"{other}\" is not \"qemu\" or \"raspberry-pi-firmware\""),
        ),
    };
    let host_dtb = match board.image.host_dtb.split_once(':') {
        None if board.image.host_dtb == "qemu-dumpdtb" => "HostDtbSource::QemuDump".to_owned(),
        Some(("debian", dtb)) if dtb.ends_with(".dtb") => {
            format!("HostDtbSource::DebianKernelPackage({dtb:?})")
        }
        _ => fail(
            path,
            "image.host-dtb must be \"qemu-dumpdtb\" or \"debian:<path under usr/lib/linux-image-*/>.dtb\"",
        ),
    };

    let mut uarts = String::new();
    let mut devices = String::new();
    for uart in &board.uart {
        let kind = uart_kind(path, uart);
        let registers = region(Region {
            base: uart.base,
            size: uart.size,
        });
        if uart.pins.is_some() != uart.alias.is_some() {
            fail(
                path,
                &format!("uart {}: `pins` and `alias` go together", uart.name),
            );
        }
        writeln!(
            uarts,
            "        Uart {{ name: {:?}, kind: {kind}, region: {registers}, interrupt: {}, pins: {:?}, alias: {:?} }},",
            uart.name, uart.interrupt, uart.pins, uart.alias
        )
        .unwrap();
        writeln!(
            devices,
            "        Device {{ name: {:?}, compatible: {kind}.compatible(), region: {registers}, \
             interrupt: Some({}) }},",
            uart.name, uart.interrupt
        )
        .unwrap();
    }
    for device in &board.device {
        writeln!(
            devices,
            "        Device {{ name: {:?}, compatible: {:?}, region: {}, interrupt: {:?} }},",
            device.name,
            device.compatible,
            region(Region {
                base: device.base,
                size: device.size
            }),
            device.interrupt
        )
        .unwrap();
    }
    let gics: Vec<String> = board.gic.iter().map(|g| gic(path, g)).collect();
    let release: Vec<String> = board
        .secondaries
        .release_addresses
        .iter()
        .map(|address| format!("{address:#x}"))
        .collect();
    let memory = &board.memory;
    let image = &board.image;
    let timer = &board.timer;
    let constant = constant_name(&board.name);
    format!(
        r#"/// {summary} (`board/{name}/board.toml`).
pub const {constant}: Board = Board {{
    name: {name:?},
    summary: {summary:?},
    ram_base: {ram_base:#x},
    ram_sizes: &[{ram_sizes}],
    default_ram_size: {default_ram_size:#x},
    max_ram_size: {max_ram_size:#x},
    ram_size_granule: {ram_size_granule:#x},
    max_cpus: {max_cpus},
    default_cpus: {default_cpus},
    loader: {loader},
    image_load_address: {load_address:#x},
    hypervisor_region_size: {hypervisor_region_size:#x},
    host_kernel_address: {host_kernel_address:#x},
    host_dtb: {host_dtb},
    log_sink: {log_sink},
    secondary_start: {secondary_start},
    release_addresses: &[{release}],
    console_uart: {console_uart:#x},
    linux_console: {linux_console:?},
    control_uart: {control_uart},
    uarts: &[
{uarts}    ],
    gics: &[
        {gics},
    ],
    timer: TimerInterrupts {{
        secure_physical: {secure_physical},
        physical: {physical},
        virt: {virt},
        hypervisor: {hypervisor},
    }},
    devices: &[
{devices}    ],
}};
// A board.toml that fails Board::validate stops the build here; the message names the key.
#[allow(dead_code)]
const {constant}_BOARD_TOML_IS_VALID: () = if let Err(error) = {constant}.validate() {{ panic!("{{}}", error.message()) }};

"#,
        summary = board.summary,
        name = board.name,
        ram_base = memory.ram_base,
        ram_sizes = memory
            .ram_sizes
            .iter()
            .map(|size| format!("{size:#x}"))
            .collect::<Vec<_>>()
            .join(", "),
        linux_console = board.console.linux_console,
        default_ram_size = memory.default_ram_size,
        max_ram_size = memory.max_ram_size,
        ram_size_granule = memory.ram_size_granule,
        max_cpus = board.cpus.max,
        default_cpus = board.cpus.default,
        load_address = image.load_address,
        hypervisor_region_size = image.hypervisor_region_size,
        host_kernel_address = image.host_kernel_address,
        release = release.join(", "),
        console_uart = console.base,
        control_uart = match board.control.as_ref().map(|c| (c.pl011, c.uart.as_deref())) {
            None => "None".to_owned(),
            Some((Some(base), None)) => {
                format!("Some(ControlUart {{ base: {base:#x}, kind: UartKind::Pl011 }})")
            }
            Some((None, Some(name))) => {
                let uart = find_uart(name, "control.uart");
                let kind = match uart.kind.as_str() {
                    "pl011" => "UartKind::Pl011",
                    // The kernel writes a mini-UART control line through the logger (answers
                    // go out between log frames), so it must be the log's.
                    "mini-uart" if board.log.uart.as_deref() == Some(name) => "UartKind::MiniUart",
                    "mini-uart" => fail(
                        path,
                        "control.uart: a mini-UART carries the control line only as the log's \
                         UART (log.uart)",
                    ),
                    other => fail(path, &format!("control.uart: a {other} cannot be driven")),
                };
                format!(
                    "Some(ControlUart {{ base: {:#x}, kind: {kind} }})",
                    uart.base
                )
            }
            Some(_) => fail(
                path,
                "[control] takes one of `pl011 = <base>` or `uart = \"<name>\"`"
            ),
        },
        gics = gics.join(",\n        "),
        secure_physical = timer.secure_physical,
        physical = timer.physical,
        virt = timer.virt,
        hypervisor = timer.hypervisor,
    )
}

/// `qemu-virt` → `QEMU_VIRT`.
fn constant_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    // A new board needs a cargo feature too, so Cargo.toml changes with it and reruns this.
    println!("cargo:rerun-if-changed=build.rs");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("reading the board crate's directory")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.join("board.toml").is_file())
        .collect();
    dirs.sort();
    let mut out = String::from("// Generated by board/build.rs from board/*/board.toml.\n\n");
    let mut names = Vec::new();
    for dir in &dirs {
        let path = dir.join("board.toml");
        println!("cargo:rerun-if-changed={}", dir.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&path, &e.to_string()));
        let board: BoardFile =
            toml::from_str(&text).unwrap_or_else(|e| fail(&path, &e.to_string()));
        let dir_name = dir.file_name().unwrap().to_string_lossy();
        if board.name != dir_name {
            fail(
                &path,
                &format!(
                    "name = \"{}\" must match its directory \"{dir_name}\"",
                    board.name
                ),
            );
        }
        out.push_str(&generate(&path, &board));
        names.push(constant_name(&board.name));
    }
    if names.is_empty() {
        panic!("no board/<name>/board.toml found under {}", root.display());
    }
    writeln!(
        out,
        "/// Every board the tools know, in directory order.\npub const ALL: &[Board] = &[{}];",
        names.join(", ")
    )
    .unwrap();
    let generated = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("boards.rs");
    std::fs::write(&generated, out).expect("writing the generated boards");
}
