//! `cargo xtask`: the project's one command line. It builds the EL2 kernel, composes a
//! bootable image from a manifest, boots it on QEMU, runs every test and prints benchmarks.
//!
//! Subcommands: `build`, `run`, `swap`, `test`, `bench`, `lint`, `trace-profile`, `decode`,
//! `build-pkvm-linux`. `cargo xtask help` lists their options.

mod artifacts;
mod attach;
mod bench;
mod compose;
mod decode;
mod elf;
mod lint;
mod paths;
mod prereqs;
mod progress;
mod qemu;
mod serial_log;
mod swap;
mod systest;
mod trace_profile;
mod upstream_linux;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hv_abi::PhysRange;
use hv_manifest::{Initrd, KernelImage};
use qemu::{Console, CpuModel, Machine};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot and test the hypervisor.")]
struct Cli {
    #[command(subcommand)]
    command: Subcommand_,
}

#[derive(Subcommand)]
enum Subcommand_ {
    /// Build the kernel and compose the image a manifest describes; print its memory map.
    Build(SystemArgs),
    /// Build, compose and boot on QEMU with the guest console on this terminal.
    Run(RunArgs),
    /// Hot-swap one component of a running `cargo xtask run`: rebuild it and send the new
    /// image over the control UART.
    Swap(swap::SwapArgs),
    /// Run the host tests and every QEMU system test.
    Test(TestArgs),
    /// Print benchmark figures: trap counts of a Linux boot, null-hypercall instructions,
    /// the trap path's cost, the pKVM guest's calls, a hot-swap's time.
    Bench(BenchArgs),
    /// Check formatting and run clippy on every crate, for the host and for the target.
    Lint,
    /// Instructions per function in a window of a loop, from a QEMU `-d in_asm,exec,nochain`
    /// log (docs/testing.md).
    TraceProfile(trace_profile::TraceProfileArgs),
    /// Follow a board's serial line (a physical Raspberry Pi): its console, its decoded log
    /// and, with hot-swap, the control socket `cargo xtask swap` talks to.
    Attach(attach::AttachArgs),
    /// Decode a serial capture (a Raspberry Pi's mini-UART): the hypervisor's and components'
    /// log frames with the ELFs of the image's debug.tar, the console text as it was.
    Decode(decode::DecodeArgs),
    /// Build upstream Linux 6.12 with CONFIG_ARM_PKVM_GUEST (from Debian's linux-source-6.12,
    /// cached outside git), the kernel of manifests' `kernel = "linux-pkvm"`.
    BuildPkvmLinux,
}

/// What system to build: the manifest, overridden piecewise from the command line.
#[derive(Args, Clone)]
struct SystemArgs {
    /// The manifest (default: manifests/qemu-virt.toml).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The QEMU CPU and GIC: a72 (GICv2, the Pi 4 stand-in) or max (GICv3).
    #[arg(long, value_enum, default_value = "a72")]
    machine: CpuModel,
    /// Number of CPUs (default: the manifest's).
    #[arg(long)]
    smp: Option<u32>,
    /// RAM, e.g. 1G or 512M (default: the manifest's).
    #[arg(long)]
    mem: Option<String>,
    /// The host kernel: an arm64 Image, an ELF or a raw payload (default: the manifest's).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// The host initrd (default: the manifest's; "none" for none).
    #[arg(long)]
    initrd: Option<String>,
    /// The host kernel command line (default: the manifest's).
    #[arg(long)]
    append: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    system: SystemArgs,
    /// Stop QEMU after this many seconds (default: no limit).
    #[arg(long)]
    timeout: Option<u64>,
    /// Swap a component into the running system whenever its sources change (hot-swap: the
    /// manifest needs `hot-swap = true`).
    #[arg(long)]
    watch: bool,
    /// Options passed to QEMU unchanged.
    #[arg(last = true)]
    qemu_args: Vec<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// Print only this section's figures.
    #[arg(long)]
    only: Option<BenchSection>,
}

/// A section `cargo xtask bench --only` can print alone.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BenchSection {
    /// The hot-swap figures.
    HotSwap,
    /// Instructions per hypercall round trip and the MMIO guard's figures (issue 10's).
    TrapPath,
}

#[derive(Args)]
struct TestArgs {
    /// Only run the host tests.
    #[arg(long)]
    host_only: bool,
    /// Only run system tests whose name contains this.
    #[arg(long)]
    filter: Option<String>,
}

/// A system fully resolved from manifest and options, ready to compose.
pub struct System {
    board: &'static hv_board::Board,
    machine: Machine,
    host_kernel: PathBuf,
    initrd: Option<PathBuf>,
    cmdline: String,
    name: String,
    /// RAM the image is composed for, from the board's RAM base (the firmware must have it).
    usable_ram: u64,
    /// The kernel's defmt level.
    log_level: &'static str,
    /// Cargo features the kernel is built with beyond its board's (`artifacts::kernel`): the
    /// benchmark's trap-path readings, test builds.
    pub(crate) kernel_features: &'static [&'static str],
    /// Devices the host VM sees emulated: (name, board device).
    host_emulated: Vec<&'static hv_board::Device>,
    /// The checked manifest: the components and what each is told about the system.
    manifest: hv_manifest::Manifest,
    manifest_path: PathBuf,
}

/// A composed image and what decoding its logs needs.
pub struct BuiltImage {
    /// The image file.
    pub image: PathBuf,
    /// The EL2 kernel's ELF.
    pub kernel_elf: PathBuf,
    /// Each component's name and ELF, by component id.
    pub components: Vec<(String, PathBuf)>,
}

pub(crate) fn default_manifest() -> PathBuf {
    paths::workspace().join("manifests/qemu-virt.toml")
}

/// The name of the system a manifest describes: its file's stem (`qemu-virt`), which names
/// its output folder `target/xtask/<name>/`.
pub(crate) fn system_name(manifest: &Path) -> String {
    manifest
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("system")
        .to_owned()
}

impl SystemArgs {
    /// The system `manifest` describes with no guest images (nothing is fetched): enough to lay
    /// out and configure its components.
    fn without_images(manifest: &Path) -> Self {
        SystemArgs {
            manifest: Some(manifest.to_owned()),
            machine: CpuModel::A72,
            smp: None,
            mem: None,
            kernel: Some(PathBuf::from("none")),
            initrd: Some("none".to_owned()),
            append: None,
        }
    }

    fn resolve(&self) -> Result<System> {
        let manifest_path = self.manifest.clone().unwrap_or_else(default_manifest);
        let manifest =
            hv_manifest::load(&manifest_path).map_err(|error| anyhow::anyhow!("{error}"))?;
        let board = manifest.board;
        let memory = match &self.mem {
            Some(size) => {
                hv_manifest::parse_size(size).map_err(|e| anyhow::anyhow!("--mem: {e}"))?
            }
            None => manifest.machine.ram,
        };
        let smp = self.smp.unwrap_or(manifest.machine.cpus);
        if smp == 0 || smp > 8 {
            bail!("--smp must be 1 to 8");
        }
        let host = manifest.host_vm();
        let host_kernel = match (&self.kernel, &host.kernel) {
            (Some(path), _) => path.clone(),
            (None, KernelImage::Debian) => prereqs::debian_kernel()?,
            (None, KernelImage::DebianArm64) => prereqs::debian_generic_kernel()?,
            (None, KernelImage::UpstreamPkvmGuest) => upstream_linux::image_or_error()?,
            (None, KernelImage::Path(path)) => path.clone(),
            (None, KernelImage::Crate(package)) => artifacts::host_guest(package, manifest.board)?,
        };
        let initrd = match (&self.initrd, &host.initrd) {
            (Some(choice), _) if choice == "none" => None,
            (Some(choice), _) if choice == "busybox" => Some(prereqs::busybox_initramfs()?),
            (Some(path), _) => Some(PathBuf::from(path)),
            // A user's own kernel gets no initrd unless one is named.
            (None, _) if self.kernel.is_some() => None,
            (None, Initrd::None) => None,
            (None, Initrd::Busybox) => Some(prereqs::busybox_initramfs()?),
            (None, Initrd::Path(path)) => Some(path.clone()),
        };
        let name = system_name(&manifest_path);
        Ok(System {
            board,
            machine: Machine {
                cpu: self.machine,
                smp,
                memory,
                model: match board.loader {
                    hv_board::Loader::Qemu => qemu::Model::Virt,
                    // Built for the Pi's firmware, emulated by QEMU's raspi4b.
                    hv_board::Loader::RaspberryPiFirmware => qemu::Model::Raspi4b {
                        firmware_dtb: qemu::raspi4b_firmware_dtb()?,
                    },
                },
            },
            usable_ram: if self.mem.is_some() {
                memory
            } else {
                manifest.machine.usable.size
            },
            host_kernel,
            initrd,
            cmdline: self.append.clone().unwrap_or_else(|| host.cmdline.clone()),
            name,
            log_level: manifest.kernel.log_level.as_str(),
            kernel_features: &[],
            host_emulated: host
                .devices
                .iter()
                .filter(|grant| grant.mode == hv_manifest::format::DeviceMode::Emulated)
                .map(|grant| grant.device)
                .collect(),
            manifest,
            manifest_path,
        })
    }
}

/// Where `system`'s components are placed (the kernel is built to learn where it ends).
pub fn component_regions(system: &System) -> Result<Vec<PhysRange>> {
    let kernel_elf = artifacts::kernel(system.board, system.log_level, system.kernel_features)?;
    let kernel_end = elf::symbol(&std::fs::read(&kernel_elf)?, "__image_end")?;
    let sizes: Vec<u64> = system
        .manifest
        .components
        .iter()
        .map(|c| c.memory)
        .collect();
    compose::layout_components(system.board, kernel_end, &sizes)
}

/// The guest VMs of `system`, their kernels fetched or built and their initrds found.
fn guests(system: &System) -> Result<Vec<compose::Guest>> {
    let board = system.board;
    let mut guests = Vec::new();
    for (id, vm) in (1u16..).zip(system.manifest.guest_vms()) {
        if vm.mte && system.machine.cpu == CpuModel::A72 {
            bail!(
                "{}: VM \"{}\" may use MTE, but --machine a72 (Cortex-A72) has none; use \
                 --machine max",
                system.manifest.file,
                vm.name
            );
        }
        let kernel = match &vm.kernel {
            KernelImage::Debian => prereqs::debian_kernel()?,
            KernelImage::DebianArm64 => prereqs::debian_generic_kernel()?,
            KernelImage::UpstreamPkvmGuest => upstream_linux::image_or_error()?,
            KernelImage::Path(path) => path.clone(),
            KernelImage::Crate(package) => artifacts::guest(package)?,
        };
        let initrd = match &vm.initrd {
            Initrd::None => None,
            Initrd::Busybox => Some(prereqs::busybox_initramfs()?),
            Initrd::Path(path) => Some(path.clone()),
        };
        let uarts: Vec<&str> = vm
            .devices
            .iter()
            .map(|grant| grant.device.name)
            .filter(|name| board.uart(name).is_some())
            .collect();
        // The board's console UART if the VM has it, else its first UART.
        let console = uarts
            .iter()
            .find(|&&name| name == board.console().name)
            .or(uarts.first())
            .and_then(|name| board.uart(name))
            .map(|uart| uart.region.base);
        guests.push(compose::Guest {
            id,
            name: vm.name.clone(),
            kernel,
            initrd,
            dtb: match &vm.dtb {
                hv_manifest::Dtb::Board => None,
                hv_manifest::Dtb::Path(path) => Some(path.clone()),
            },
            cmdline: vm.cmdline.clone(),
            memory: PhysRange {
                start: vm.memory.base,
                end: vm.memory.end(),
            },
            ram_ipa: board.ram_base,
            cpus: vm
                .cpus
                .iter()
                .map(|&cpu| u8::try_from(cpu).context("CPU index"))
                .collect::<Result<_>>()?,
            devices: vm
                .devices
                .iter()
                .map(|grant| grant.device.region.base)
                .collect(),
            console,
            mte: vm.mte,
            counter_from_zero: vm.counter_from_zero,
            shared_ipa_bit: vm.shared_ipa_bit,
        });
    }
    Ok(guests)
}

/// Which build of a component [`build_component`] makes.
pub enum ComponentBuild {
    /// The image's: configuration and ELF in `target/xtask/<system>/components/`.
    Image,
    /// A build for `cargo xtask swap`, its ELF kept in `out_dir`: with `swap_test` set, its
    /// configuration (written there too) gains that test hook and it is built in a cargo target
    /// directory of its own, so that the image's build stays cached; without, it is the image's
    /// build exactly (same configuration file, same target directory), of the sources as they
    /// are now.
    Swap {
        /// Where its ELF (and, for a test build, its configuration) go.
        out_dir: PathBuf,
        /// The misbehaviour it is built with, if any.
        swap_test: Option<hv_component_config::SwapTest>,
    },
}

/// Builds component `id` of `system` with the configuration the manifest gives it (written
/// beside it as `<name>.toml`), the components laid out at `regions`; returns its ELF.
pub fn build_component(
    system: &System,
    id: usize,
    regions: &[PhysRange],
    build: &ComponentBuild,
) -> Result<PathBuf> {
    let spec = system
        .manifest
        .components
        .get(id)
        .with_context(|| format!("the manifest has no component {id}"))?;
    let region = *regions
        .get(id)
        .with_context(|| format!("no region laid out for component {}", spec.name))?;
    let placed: Vec<hv_board::Region> = regions
        .iter()
        .map(|region| hv_board::Region {
            base: region.start,
            size: region.len(),
        })
        .collect();
    let mut config = system
        .manifest
        .component_config(id, &placed)
        .map_err(|error| anyhow::anyhow!("component {}: {error}", spec.name))?;
    let image_dir = paths::xtask_out().join(&system.name).join("components");
    let image_config = image_dir.join(format!("{}.toml", spec.name));
    let (out_dir, config_file, target_dir) = match build {
        ComponentBuild::Image => (image_dir.clone(), image_config, None),
        ComponentBuild::Swap {
            out_dir,
            swap_test: None,
        } => (out_dir.clone(), image_config, None),
        ComponentBuild::Swap {
            out_dir,
            swap_test: Some(hook),
        } => {
            config.swap_test = Some(*hook);
            let config_file = out_dir.join(format!("{}.toml", spec.name));
            (
                out_dir.clone(),
                config_file,
                Some(paths::xtask_out().join("swap-target")),
            )
        }
    };
    hv_component_config::build::write(&config, &config_file)
        .with_context(|| format!("writing {}", config_file.display()))?;
    artifacts::component(spec, region, &out_dir, &config_file, target_dir.as_deref())
}

/// Builds the kernel and the components and composes `system`'s image.
pub fn build_image(system: &System) -> Result<BuiltImage> {
    prereqs::ensure_qemu()?;
    let guests = guests(system)?;
    let kernel_elf = artifacts::kernel(system.board, system.log_level, system.kernel_features)?;
    let kernel_bytes = std::fs::read(&kernel_elf)?;
    let kernel_end = elf::symbol(&kernel_bytes, "__image_end")?;
    let components = &system.manifest.components;
    let sizes: Vec<u64> = components
        .iter()
        .map(|component| component.memory)
        .collect();
    let regions = compose::layout_components(system.board, kernel_end, &sizes)?;
    let mut built = Vec::new();
    for (id, (spec, region)) in components.iter().zip(&regions).enumerate() {
        let elf = build_component(system, id, &regions, &ComponentBuild::Image)?;
        built.push(compose::BuiltComponent {
            name: spec.name.clone(),
            grants: spec.grants,
            region: *region,
            elf,
        });
    }
    let _timer = progress::timed("composing the image");
    let image_name = match system.board.loader {
        // QEMU images depend on the machine options the DTB was dumped with.
        hv_board::Loader::Qemu => format!("{}-{}.img", system.board.name, system.machine.label()),
        hv_board::Loader::RaspberryPiFirmware => format!("{}.img", system.board.name),
    };
    let out = paths::xtask_out().join(&system.name).join(image_name);
    let base_dtb = match system.board.host_dtb {
        hv_board::HostDtbSource::QemuDump => system.machine.dump_dtb()?,
        hv_board::HostDtbSource::DebianKernelPackage(relative) => {
            let path = prereqs::debian_dtb(relative)?;
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
        }
    };
    // The host's UARTs whose pins must be set up (board.toml `pins`).
    let host_pinned_uarts: Vec<&'static hv_board::Uart> = system
        .manifest
        .vms
        .iter()
        .filter(|vm| vm.host)
        .flat_map(|vm| &vm.devices)
        .filter_map(|grant| system.board.uart(grant.device.name))
        .filter(|uart| uart.pins.is_some())
        .collect();
    let composed = compose::compose(&compose::Request {
        board: system.board,
        base_dtb: &base_dtb,
        ram: system.usable_ram,
        kernel_elf: &kernel_elf,
        host_kernel: &system.host_kernel,
        initrd: system.initrd.as_deref(),
        cmdline: &system.cmdline,
        out: &out,
        components: &built,
        host_emulated: &system
            .host_emulated
            .iter()
            .map(|device| PhysRange {
                start: device.region.base,
                end: device.region.end(),
            })
            // With guests, the GIC's shared parts are the VM manager's to filter (docs/vgic.md).
            .chain(
                system
                    .manifest
                    .component_system()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    .host_filtered_gic_ranges()
                    .iter()
                    .chain(
                        system
                            .manifest
                            .component_system()
                            .ok()
                            .and_then(|s| s.host_console_mux())
                            .as_ref(),
                    )
                    .map(|range| PhysRange {
                        start: range.base,
                        end: range.end(),
                    }),
            )
            .collect::<Vec<_>>(),
        guests: &guests,
        host_pinned_uarts: &host_pinned_uarts,
        control_page: system
            .board
            .control_page()
            .filter(|_| system.manifest.hot_swap)
            .map(|page| PhysRange {
                start: page.base,
                end: page.end(),
            }),
    })?;
    compose::print_map(&composed, system.board);
    let out_dir = out.parent().unwrap_or(Path::new(".")).to_owned();
    let components: Vec<_> = built
        .iter()
        .map(|c| (c.name.clone(), c.elf.clone()))
        .collect();
    let archive =
        compose::write_debug_archive(&out_dir, &kernel_elf, &components, &system.manifest_path)?;
    eprintln!(
        "debug archive (every ELF, for decoding logs): {}",
        shown(&archive)
    );
    if system.board.loader == hv_board::Loader::RaspberryPiFirmware {
        let folder = compose::write_sd_card_folder(
            &out_dir,
            &composed.image,
            system.board,
            &host_pinned_uarts,
        )?;
        eprintln!(
            "SD card files (copy next to the Raspberry Pi firmware): {}",
            shown(&folder)
        );
    }
    Ok(BuiltImage {
        image: composed.image,
        kernel_elf,
        components: built.into_iter().map(|c| (c.name, c.elf)).collect(),
    })
}

fn run(args: &RunArgs) -> Result<i32> {
    let system = args.system.resolve()?;
    let built = build_image(&system)?;
    progress::step(&format!(
        "booting on QEMU ({}); quit with Ctrl-A X, or power off from the guest",
        system.machine.label()
    ));
    let control = swap::ControlLine::of_run(&system.name);
    if !system.manifest.hot_swap {
        eprintln!(
            "hot-swap: off (`hot-swap = true` in {} turns it on)",
            shown(&system.manifest_path)
        );
    } else {
        let manifest = match &args.system.manifest {
            Some(path) => format!(" --manifest {}", path.display()),
            None => String::new(),
        };
        eprintln!(
            "hot-swap: `cargo xtask swap <component>{manifest}` in another terminal (control \
             line {})",
            shown(&control.socket)
        );
    }
    let watching = args.watch && system.manifest.hot_swap;
    if args.watch && !watching {
        eprintln!("hot-swap watch: off (no hot-swap on this system)");
    } else if watching {
        eprintln!("hot-swap watch: a component whose sources change is swapped in");
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        if watching {
            let (system, control, stop) = (&system, control.clone(), &stop);
            scope.spawn(move || swap::watch(system, &control, stop));
        }
        let outcome = qemu::run(&qemu::Run {
            machine: &system.machine,
            image: &built.image,
            kernel_elf: &built.kernel_elf,
            components: &built.components,
            timeout: Duration::from_secs(args.timeout.unwrap_or(u64::MAX / 4)),
            console: Console::Interactive,
            extra_args: &args.qemu_args,
            log_dir: paths::xtask_out().join("logs").join("run"),
            show_hv_log: true,
            input: &[],
            control: control.clone(),
            hot_swap: system.manifest.hot_swap,
            swaps: &[],
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        outcome
    })?;
    Ok(match (outcome.timed_out, outcome.status()) {
        (false, Some(hv_abi::ExitStatus::PoweredOff)) => 0,
        (true, _) => 124,
        (false, Some(status)) => status as i32,
        (false, None) => outcome.exit_code.filter(|code| *code != 0).unwrap_or(1),
    })
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Subcommand_::Build(args) => args
            .resolve()
            .and_then(|system| build_image(&system))
            .map(|_| 0),
        Subcommand_::Run(args) => run(&args),
        Subcommand_::Swap(args) => swap::run(&args),
        Subcommand_::Test(args) => systest::run_all(args.host_only, args.filter.as_deref()),
        Subcommand_::Bench(args) => match args.only {
            Some(BenchSection::HotSwap) => bench::hot_swap_only().map(|()| 0),
            Some(BenchSection::TrapPath) => bench::trap_path_only().map(|()| 0),
            None => bench::run().map(|()| 0),
        },
        Subcommand_::Lint => lint::run_all().map(|()| 0),
        Subcommand_::TraceProfile(args) => trace_profile::run(&args).map(|()| 0),
        Subcommand_::Decode(args) => decode::run(&args).map(|()| 0),
        Subcommand_::Attach(args) => attach::run(&args),
        Subcommand_::BuildPkvmLinux => upstream_linux::build().map(|_| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    }
}

/// The path of a file relative to the workspace, for messages.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(paths::workspace())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(args.iter().copied()))
    }

    #[test]
    fn run_options_and_qemu_passthrough() {
        let cli = parse(&[
            "run",
            "--machine",
            "max",
            "--smp",
            "2",
            "--mem",
            "512M",
            "--kernel",
            "Image",
            "--initrd",
            "none",
            "--append",
            "console=ttyAMA0 quiet",
            "--timeout",
            "30",
            "--",
            "-d",
            "guest_errors",
        ])
        .unwrap();
        let Subcommand_::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.system.machine, CpuModel::Max);
        assert_eq!(run.system.smp, Some(2));
        assert_eq!(run.system.mem.as_deref(), Some("512M"));
        assert_eq!(run.system.kernel, Some(PathBuf::from("Image")));
        assert_eq!(run.system.initrd.as_deref(), Some("none"));
        assert_eq!(run.system.append.as_deref(), Some("console=ttyAMA0 quiet"));
        assert_eq!(run.timeout, Some(30));
        assert_eq!(run.qemu_args, ["-d", "guest_errors"]);
    }

    #[test]
    fn defaults() {
        let Subcommand_::Run(run) = parse(&["run"]).unwrap().command else {
            panic!()
        };
        assert_eq!(run.system.machine, CpuModel::A72);
        assert!(run.system.manifest.is_none() && run.system.smp.is_none());
        assert!(run.qemu_args.is_empty());
    }

    #[test]
    fn swap_options() {
        let Subcommand_::Swap(swap) = parse(&[
            "swap",
            "vm-manager",
            "--manifest",
            "manifests/tests/swap.toml",
            "--test-hook",
            "refuse-state",
            "--corrupt-frame",
        ])
        .unwrap()
        .command
        else {
            panic!("not swap")
        };
        assert_eq!(swap.component, "vm-manager");
        assert_eq!(
            swap.manifest,
            Some(PathBuf::from("manifests/tests/swap.toml"))
        );
        assert_eq!(swap.test_hook, Some(swap::Hook::RefuseState));
        assert!(swap.corrupt_frame);
        let Subcommand_::Swap(plain) = parse(&["swap", "mem-protect"]).unwrap().command else {
            panic!("not swap")
        };
        assert!(plain.manifest.is_none() && plain.test_hook.is_none() && !plain.corrupt_frame);
        assert!(parse(&["swap"]).is_err(), "the component is required");
        assert!(parse(&["swap", "x", "--test-hook", "explode"]).is_err());
        // Every hook the command line names is one of the configuration's, by the same name.
        for hook in [
            swap::Hook::RefuseState,
            swap::Hook::FaultAtStart,
            swap::Hook::Slow,
            swap::Hook::SchemaChange,
        ] {
            let name = clap::ValueEnum::to_possible_value(&hook).unwrap();
            assert_eq!(name.get_name(), swap::hook_name(hook.into()));
        }
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(&["run", "--machine", "pentium"]).is_err());
        assert!(parse(&["run", "--smp", "two"]).is_err());
        assert!(parse(&["launch"]).is_err());
        assert!(parse(&["test", "--filter"]).is_err());
    }
}
