//! The manifest as checked and resolved: sizes in bytes, names as numbers, paths absolute,
//! defaults filled in, every VM placed.

use crate::format::{DeviceMode, LogLevel, MmioGuard};
use core::time::Duration;
use hv_board::{Board, Device, Region};
use std::path::PathBuf;

/// A checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file's name as given to [`crate::load`] or [`crate::parse`].
    pub file: String,
    /// The folder paths in the manifest are relative to.
    pub base_dir: PathBuf,
    /// The board.
    pub board: &'static Board,
    /// The physical machine.
    pub machine: Machine,
    /// Kernel options.
    pub kernel: KernelOptions,
    /// Every VM by id: the host first (VM 0), then the guests in manifest order.
    pub vms: Vec<Vm>,
    /// The components; a component's id is its index here.
    pub components: Vec<Component>,
    /// Components can be hot-swapped (the supervisor holds the control line).
    pub hot_swap: bool,
}

impl Manifest {
    /// The host VM (there is exactly one).
    pub fn host_vm(&self) -> &Vm {
        self.vms
            .iter()
            .find(|vm| vm.host)
            .expect("a checked manifest has a host VM")
    }

    /// The VMs other than the host, in VM id order (ids 1, 2, …).
    pub fn guest_vms(&self) -> impl Iterator<Item = &Vm> {
        self.vms.iter().filter(|vm| !vm.host)
    }

    /// The component named `name` and its id.
    pub fn component(&self, name: &str) -> Option<(usize, &Component)> {
        self.components
            .iter()
            .enumerate()
            .find(|(_, component)| component.name == name)
    }

    /// Each component's grants, by component id.
    pub fn grants(&self) -> Vec<Grants> {
        self.components.iter().map(|c| c.grants).collect()
    }
}

/// The physical machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Physical RAM in bytes (QEMU's `-m`; the Pi 4 model's RAM).
    pub ram: u64,
    /// CPUs the hypervisor starts (QEMU's `-smp`).
    pub cpus: u32,
    /// The RAM the image is composed for: one range from the board's `ram_base`, at most the
    /// board's `max_ram_size` and `[host] memory`. The hypervisor and every VM lie in it.
    pub usable: Region,
    /// The hypervisor's own region (image, stacks, tables, components), at the start of
    /// `usable`.
    pub hypervisor: Region,
}

/// Kernel options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelOptions {
    /// The least severe log level kept (`DEFMT_LOG` for the kernel's build).
    pub log_level: LogLevel,
}

/// One VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    /// Its name ("host" for `[host]`).
    pub name: String,
    /// Whether it is the host VM.
    pub host: bool,
    /// What it boots.
    pub kernel: KernelImage,
    /// Its initial RAM disk.
    pub initrd: Initrd,
    /// Its device tree.
    pub dtb: Dtb,
    /// The physical memory backing its RAM, 2 MiB aligned (a guest sees it at the board's RAM
    /// base; the host at this address).
    pub memory: Region,
    /// How many vCPUs it has.
    pub vcpus: u32,
    /// The physical CPU each vCPU runs on, by vCPU index.
    pub cpus: Vec<u32>,
    /// Whether `cpus` was written in the manifest (pinned) rather than the default 0, 1, …
    pub pinned: bool,
    /// The devices it gets.
    pub devices: Vec<DeviceGrant>,
    /// The kernel command line.
    pub cmdline: String,
    /// Its MMIO guard mode.
    pub mmio_guard: MmioGuard,
    /// Whether it may use MTE (guests only).
    pub mte: bool,
    /// Whether its virtual counter starts at zero at its creation and each reset (guests
    /// only; otherwise it is the machine's).
    pub counter_from_zero: bool,
    /// Its shared IPA bit, if any (guests only).
    pub shared_ipa_bit: Option<u8>,
}

/// A VM's kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelImage {
    /// Debian's arm64 cloud kernel, fetched and cached by the tool ("debian").
    Debian,
    /// Debian's generic arm64 kernel, with real boards' drivers ("debian-arm64").
    DebianArm64,
    /// Upstream Linux 6.12 with CONFIG_ARM_PKVM_GUEST, built by `cargo xtask build-pkvm-linux`
    /// ("linux-pkvm").
    UpstreamPkvmGuest,
    /// A bare-metal test guest of the workspace, by package ("crate:<package>"): the tool
    /// builds it and boots its ELF.
    Crate(String),
    /// A file (absolute, or relative to the current folder if the manifest's was).
    Path(PathBuf),
}

/// A VM's initial RAM disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initrd {
    /// The busybox initramfs the tool builds ("busybox").
    Busybox,
    /// None ("none").
    None,
    /// A file.
    Path(PathBuf),
}

/// A VM's device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dtb {
    /// The board's, adapted by the tool to the VM's memory, CPUs and devices ("board").
    Board,
    /// A file.
    Path(PathBuf),
}

/// A device given to a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The board's device.
    pub device: &'static Device,
    /// How the VM sees it.
    pub mode: DeviceMode,
}

/// One component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// The cargo package that builds it.
    pub crate_name: String,
    /// Its memory in bytes.
    pub memory: u64,
    /// Its stack in bytes.
    pub stack: u64,
    /// The interface it serves, by name.
    pub serves: Option<String>,
    /// The interfaces it calls, by name.
    pub calls: Vec<String>,
    /// The kernel operations it may use, by name.
    pub kernel_ops: Vec<String>,
    /// The components it may notify, by name.
    pub notifies: Vec<String>,
    /// The guest traps routed to it, by name.
    pub routes: Vec<String>,
    /// Its grants as the kernel's boot table holds them.
    pub grants: Grants,
    /// What happens when it faults.
    pub restart: Restart,
    /// Its own settings (`[component.settings]`), typed for its crate.
    pub settings: hv_component_config::Settings,
}

/// A component's grants as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants {
    /// Interface served (0 for none).
    pub serves: u16,
    /// Bit per callable interface id.
    pub may_call: u32,
    /// Bit per kernel operation.
    pub kernel_ops: u32,
    /// Bit per component it may notify, by component id (its position in the manifest).
    pub may_notify: u32,
    /// Route bits (`hv_abi::ROUTE_*`).
    pub routes: u32,
    /// SMCCC function-ID ranges routed to it (inclusive; `(0, 0)` unused).
    pub smccc_ranges: [(u32, u32); hv_abi::MAX_SMCCC_RANGES],
}

/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Restart at once; in a crash loop (faulting again soon after coming back) wait
    /// `min_delay`, doubled on each further quick fault up to `max_delay`.
    Backoff {
        /// The first wait.
        min_delay: Duration,
        /// The longest wait.
        max_delay: Duration,
    },
    /// Leave it stopped.
    Never,
}
