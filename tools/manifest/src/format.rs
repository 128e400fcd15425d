//! The manifest as written: one struct per TOML table, exactly the fields a manifest may use.
//!
//! Every struct is `kebab-case` and refuses unknown fields, so a typo is an error, never a
//! silently ignored line. Values stay as written here (sizes as strings, names as names);
//! [`crate::parse`] checks them and resolves them into [`crate::Manifest`]. `docs/manifest.md` is the
//! reference for users; keep it in step with this file.

use serde::Deserialize;

/// A whole manifest file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestSpec {
    /// The board the image is for: a name `hv_board` knows ("qemu-virt", "rpi4").
    pub board: String,
    /// The physical machine: its RAM and CPUs. Absent: the board's defaults.
    #[serde(default)]
    pub machine: Option<MachineSpec>,
    /// Options of the EL2 kernel. Absent: the defaults.
    #[serde(default)]
    pub kernel: Option<KernelSpec>,
    /// The host VM in its short form (kept from the first manifests). A manifest has either
    /// this or a `[[vm]]` that is the host, never both.
    #[serde(default)]
    pub host: Option<HostSpec>,
    /// The VMs in their general form, in order.
    #[serde(default, rename = "vm")]
    pub vms: Vec<VmSpec>,
    /// The component tasks, in order: a component's id is its position here.
    #[serde(default, rename = "component")]
    pub components: Vec<ComponentSpec>,
    /// Hot-swap while the system runs (docs/hot-swap.md): the supervisor is granted the
    /// board's control line and the SWAP operation. Needs a board with a control line.
    #[serde(default)]
    pub hot_swap: bool,
}

/// `[machine]`: the physical machine the image runs on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MachineSpec {
    /// Its physical RAM, a size such as "1G". On qemu-virt this is what QEMU's `-m` gets: a
    /// multiple of 2 MiB, at least the hypervisor's region plus 2 MiB, at most 255 GiB. On
    /// rpi4 it is the model's RAM, "1G", "2G", "4G" or "8G", of which an image uses the first
    /// 948 MiB (the bank below the GPU's memory). Default: `[host] memory` rounded up to a
    /// size the board can have if that is given, else "1G".
    #[serde(default)]
    pub ram: Option<String>,
    /// Its CPUs, all started by the hypervisor: 1 to 8 on qemu-virt, 1 to 4 on rpi4. Default:
    /// `[host] cpus` if that is given, else the board's (qemu-virt 2, rpi4 4).
    #[serde(default)]
    pub cpus: Option<u32>,
}

/// `[kernel]`: options of the EL2 kernel, applied when it is built.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelSpec {
    /// The least severe log level the kernel keeps; lower ones are compiled out (it becomes
    /// `DEFMT_LOG` for the kernel's build). Default "info".
    #[serde(default)]
    pub log_level: Option<LogLevel>,
}

/// A log level, from the most to the least severe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also the boot summary, routed calls and trap counts the tools read (the default).
    #[default]
    Info,
    /// Also debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level as `DEFMT_LOG` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `[host]`: the short form of the host VM, as the first manifests wrote it.
///
/// It stands for a VM named "host" that is the host, placed at the board's host kernel
/// address, with the board's device tree and every board device passed through.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostSpec {
    /// "debian" (Debian's arm64 cloud kernel), "debian-arm64" (Debian's generic arm64 kernel,
    /// with real boards' drivers), or a path relative to the manifest's folder. Default
    /// "debian".
    #[serde(default)]
    pub kernel: Option<String>,
    /// "busybox" (the generated busybox initramfs), "none", or a path. Default "busybox".
    #[serde(default)]
    pub initrd: Option<String>,
    /// The kernel command line. Default: the board's console ("console=ttyAMA0" on qemu-virt,
    /// "console=ttyS1,115200" on rpi4).
    #[serde(default)]
    pub cmdline: Option<String>,
    /// How much RAM the system uses, counted from the board's RAM base and including the
    /// hypervisor's region (its meaning since the first manifest): the host VM gets what the
    /// hypervisor and the guest VMs leave of it. A multiple of 2 MiB. Default: all the RAM an
    /// image can use on the machine.
    #[serde(default)]
    pub memory: Option<String>,
    /// The host's vCPUs, one on each of physical CPUs 0 to cpus - 1. Default: the machine's
    /// CPU count.
    #[serde(default)]
    pub cpus: Option<u32>,
}

/// `[[vm]]`: one VM in the general form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VmSpec {
    /// Its name, for logs and messages: 1 to 16 of `a-z A-Z 0-9 - _`, unique among VMs and
    /// components.
    pub name: String,
    /// Whether this VM is the host, the one that owns the machine's devices. At most one VM
    /// says `host = true`; if none does (and there is no `[host]`), the first VM is the host.
    #[serde(default)]
    pub host: Option<bool>,
    /// "debian", "debian-arm64", "linux-pkvm" (upstream Linux with its pKVM guest driver, built
    /// by `cargo xtask build-pkvm-linux`), "crate:<package>" (a bare-metal test guest of the
    /// workspace, which the tool builds) or a path relative to the manifest's folder. Default
    /// "debian".
    #[serde(default)]
    pub kernel: Option<String>,
    /// "busybox", "none" or a path. Default "busybox".
    #[serde(default)]
    pub initrd: Option<String>,
    /// "board" (the board's device tree, adapted to the VM by the tool) or a path to a DTB.
    /// Default "board".
    #[serde(default)]
    pub dtb: Option<String>,
    /// Its RAM, a size such as "256M", a multiple of 2 MiB (stage 2 maps VM RAM in 2 MiB
    /// blocks). Required for a guest; the host's default is the free RAM from its address up
    /// to the next VM or the end of RAM.
    #[serde(default)]
    pub memory: Option<String>,
    /// Where its physical memory lies, 2 MiB aligned, e.g. 0x6000_0000. The host sees it at
    /// that address; a guest sees its RAM at the board's RAM base whatever backs it. Default:
    /// the host at the board's host kernel address; guests top-down from the end of RAM, in
    /// order.
    #[serde(default)]
    pub address: Option<u64>,
    /// Whether the guest may use MTE (the Memory Tagging Extension): refused on a board whose
    /// CPUs lack it, and on the host. Default false.
    #[serde(default)]
    pub mte: Option<bool>,
    /// Guests only: where its virtual counter (the clock its timer runs on) starts:
    /// `"host"`, the machine's counter as the host sees it, or `"zero"`, zero when the VM is
    /// created and again at each of its resets (CNTVOFF_EL2). Default "host".
    #[serde(default)]
    pub clock: Option<String>,
    /// The IPA bit the guest uses as its "shared" attribute (seed 004): a page it shares with
    /// MEM_SHARE is also reachable at its IPA with this bit set. 32 to 39, above its RAM and
    /// devices. Default: none.
    #[serde(default)]
    pub shared_ipa_bit: Option<u8>,
    /// How many vCPUs it has. Default: the length of `cpus` if given, else all the machine's
    /// CPUs for the host and 1 for a guest.
    #[serde(default)]
    pub vcpus: Option<u32>,
    /// The physical CPUs its vCPUs are pinned to, vCPU i on `cpus[i]`: distinct indices below
    /// the machine's CPU count. Default: vCPU i on CPU i.
    #[serde(default)]
    pub cpus: Option<Vec<u32>>,
    /// The board devices it gets. Default: none for a guest; for the host, every board device
    /// no guest has passed through, passed through.
    #[serde(default)]
    pub devices: Option<Vec<DeviceSpec>>,
    /// The kernel command line. Default: the board's console, as for `[host]`.
    #[serde(default)]
    pub cmdline: Option<String>,
    /// How its memory is protected from the host.
    #[serde(default)]
    pub protection: ProtectionSpec,
}

/// One entry of a VM's `devices`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceSpec {
    /// A device the board has (`hv_board::Board::devices`, from `board/<name>/board.toml`),
    /// e.g. "uart0".
    pub name: String,
    /// How the VM sees it. Default "passthrough".
    #[serde(default)]
    pub mode: DeviceMode,
}

/// How a VM sees a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceMode {
    /// The real device's registers are mapped into the VM; it belongs to this VM alone.
    #[default]
    Passthrough,
    /// The hypervisor emulates the device for this VM; several VMs may have it.
    Emulated,
}

/// A VM's `protection` table.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProtectionSpec {
    /// pKVM's MMIO guard, for a VM that does not trust the host: the VM declares the MMIO
    /// regions it means to use (the `MMIO_GUARD_*` hypercalls), and an access anywhere else is
    /// answered with an abort instead of being forwarded for emulation. Default "optional".
    #[serde(default)]
    pub mmio_guard: MmioGuard,
}

/// MMIO guard modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MmioGuard {
    /// Not offered: the hypercalls answer NOT_SUPPORTED and every MMIO access is forwarded.
    Off,
    /// Offered: once the VM enrols, only the MMIO it declared is forwarded (the default).
    #[default]
    Optional,
    /// The VM counts as enrolled from its first instruction: only declared MMIO is forwarded.
    Enforced,
}

/// `[[component]]`: one component task, an EL1 sandbox with its own image, memory and stage 2.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentSpec {
    /// Its name, for logs: 1 to 16 (`hv_abi::COMPONENT_NAME_LEN`) of `a-z A-Z 0-9 - _`,
    /// unique among components and VMs.
    pub name: String,
    /// The cargo package that builds it (under `components/`), e.g. "hv-supervisor".
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Its memory: code, data, stack and message buffers; a multiple of 4 KiB. Default "1M".
    #[serde(default)]
    pub memory: Option<String>,
    /// Its stack, a multiple of 4 KiB below `memory`. Default "64K" (the VM manager builds one
    /// emulated GIC distributor of several KiB per guest on it).
    #[serde(default)]
    pub stack: Option<String>,
    /// The interface it serves ("guest-trap", "supervisor"), if any; one server per interface.
    #[serde(default)]
    pub serves: Option<String>,
    /// The interfaces it may call; some component must serve each, and calls never form a
    /// cycle.
    #[serde(default)]
    pub calls: Vec<String>,
    /// The kernel operations it may use ("restart", "component-state", "read-counter").
    #[serde(default)]
    pub kernel_ops: Vec<String>,
    /// The components it may NOTIFY, by name: each listed once, never itself.
    #[serde(default)]
    pub notifies: Vec<String>,
    /// The guest traps routed to it ("smccc"); at most one component per trap, and it must
    /// serve "guest-trap".
    #[serde(default)]
    pub routes: Vec<String>,
    /// What happens when it faults.
    #[serde(default)]
    pub restart: RestartSpec,
    /// Its own settings, a table checked against its crate's settings type
    /// (`hv_component_config::Settings`); most components take none.
    #[serde(default)]
    pub settings: toml::Table,
}

/// A component's `restart` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RestartSpec {
    /// "backoff" (restart at once, then, while it keeps faulting soon after coming back, after
    /// a delay doubling from `min-delay` to `max-delay`) or "never" (leave it stopped).
    /// Default "backoff".
    #[serde(default)]
    pub policy: RestartPolicyKind,
    /// The first wait, a duration such as "10ms" ("backoff" only). Default "10ms".
    #[serde(default)]
    pub min_delay: Option<String>,
    /// The longest wait ("backoff" only), at least `min-delay`. Default "5s".
    #[serde(default)]
    pub max_delay: Option<String>,
}

/// Restart policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicyKind {
    /// Restart with a growing delay (the default).
    #[default]
    Backoff,
    /// Never restart.
    Never,
}
