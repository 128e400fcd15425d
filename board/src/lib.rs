//! Board descriptions: the facts about a machine that the kernel and the tools must agree on.
//!
//! A board is data. Each lives in `board/<name>/board.toml`; `build.rs` reads those files and
//! generates one [`Board`] constant per board ([`QEMU_VIRT`], [`RPI4`]), so the TOML is the
//! single source of truth and the kernel still gets plain constants (`no_std`, no parsing at
//! run time). The kernel is built for one board (a cargo feature) and reads [`CURRENT`]; the
//! tools read any board by name ([`by_name`]). Generic code never names a board.
//!
//! Every board is checked twice: [`Board::validate`] runs at compile time on each generated
//! constant (a bad `board.toml` fails the build), and `board/tests/real_dtbs/` compares the
//! constants with real device trees (QEMU's `dumpdtb`, Debian's `bcm2711-rpi-4-b.dtb`).
//!
//! # The `board.toml` format
//!
//! Addresses are physical (for the Pi, ARM-side addresses, not VideoCore bus addresses);
//! interrupts are GIC INTIDs (SPI n is INTID 32 + n, PPI n is INTID 16 + n). Unknown keys are
//! errors.
//!
//! ```toml
//! name = "rpi4"                      # the directory's name, and what manifests say
//! summary = "one line for the docs"
//!
//! [memory]
//! ram-base = 0x0                     # first byte of RAM
//! ram-sizes = [0x4000_0000, 0x8000_0000]  # optional: the RAM sizes the board comes in;
//!                                    # absent: any multiple of the granule (QEMU's -m)
//! default-ram-size = 0x4000_0000     # the machine's RAM unless the manifest says
//! max-ram-size = 0x3b40_0000         # the largest RAM range from ram-base an image may use
//! ram-size-granule = 0x20_0000       # RAM sizes are multiples of this
//!
//! [cpus]
//! max = 4                            # CPUs the board can have
//! default = 4                        # CPUs the host VM gets unless the manifest says
//!
//! [image]
//! loader = "raspberry-pi-firmware"   # who loads the image: "qemu" (-kernel) or the Pi firmware
//! load-address = 0x20_0000           # where the loader puts the image; the kernel links here
//! hypervisor-region-size = 0x200_0000  # RAM the hypervisor keeps, from ram-base
//! host-kernel-address = 0x200_0000   # where the host kernel is copied and entered
//! host-dtb = "debian:broadcom/bcm2711-rpi-4-b.dtb"  # or "qemu-dumpdtb": what the host's
//!                                    # DTB is made from (a path in Debian's generic kernel)
//!
//! [log]
//! sink = "uart"                      # "semihosting", or "uart" with:
//! uart = "uart1"                     #   the UART's name (the kernel drives the mini-UART)
//!
//! [console]
//! uart = "uart1"                     # the UART the host's console uses
//! linux-console = "ttyS1,115200"     # Linux's `console=` for it
//!
//! [control]                          # optional: the hot-swap control line (docs/hot-swap.md)
//! pl011 = 0x0904_0000                # a PL011 the hypervisor keeps (not one of the UARTs), or
//! uart = "uart1"                     #   one of the UARTs, kept from every VM while hot-swap
//!                                    #   is on (the log's mini-UART: the line is shared)
//!
//! [secondaries]
//! start = "spin-table"               # "psci-smc", or "spin-table" with:
//! release-addresses = [0xd8, 0xe0, 0xe8, 0xf0]  # one per CPU, by MPIDR_EL1.Aff0
//!
//! [timer]                            # the architected timer's PPIs (INTIDs)
//! secure-physical = 29
//! physical = 30
//! virtual = 27
//! hypervisor = 26
//!
//! [[gic]]                            # one table per GIC the board can have
//! version = 2                        # 2: gicd, gicc, gich, gicv; 3: gicd, gicr, gicr-stride
//! gicd = { base = 0xff84_1000, size = 0x1000 }
//! gicc = { base = 0xff84_2000, size = 0x2000 }
//! gich = { base = 0xff84_4000, size = 0x2000 }
//! gicv = { base = 0xff84_6000, size = 0x2000 }
//! maintenance-interrupt = 25
//!
//! [[uart]]                           # UARTs; each is also one of the board's devices
//! name = "uart1"
//! kind = "mini-uart"                 # "pl011" or "mini-uart"
//! base = 0xfe21_5040
//! size = 0x40
//! interrupt = 125
//! pins = "uart3_gpio4"               # optional, for a UART the board's tree disables: the pin
//! alias = "serial3"                  #   group and /aliases entry its node gets when the host
//!                                    #   is given it (only when a manifest lists it)
//!
//! [[device]]                         # the other devices a manifest may give a VM
//! name = "emmc2"
//! compatible = "brcm,bcm2711-emmc2"  # the DT compatible the real-data tests look for
//! base = 0xfe34_0000
//! size = 0x100
//! interrupt = 158                    # optional; the first if the device has several
//! ```
//!
//! Sources: QEMU's `hw/arm/virt.c` and `reference/qemu-el2.md`; for the Pi 4 the BCM2711 ARM
//! Peripherals manual, the Linux `bcm2711.dtsi`, and the firmware's armstub (`armstub8.S`).
#![cfg_attr(not(test), no_std)]

mod validate;

pub use validate::BoardError;

/// A physical address range: `size` bytes from `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// Whether `address` lies inside.
    pub const fn contains(&self, address: u64) -> bool {
        self.base <= address && address < self.end()
    }
}

/// What loads the composed image into memory, which decides the form the composer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    /// QEMU's `-kernel`: the image is a raw arm64 Image, loaded at RAM + 2 MiB.
    Qemu,
    /// The Raspberry Pi firmware (`start4.elf`): the image is `kernel8.img` in an SD-card
    /// folder, loaded where `config.txt` says (`kernel_address`).
    RaspberryPiFirmware,
}

/// What the host VM's device tree is made from (the composer then reserves the hypervisor's
/// memory, sets `/chosen` and PSCI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostDtbSource {
    /// The DTB QEMU dumps for the same machine options (`-machine dumpdtb`).
    QemuDump,
    /// A DTB from Debian's generic arm64 kernel package, by its path under
    /// `usr/lib/linux-image-*/` (e.g. `broadcom/bcm2711-rpi-4-b.dtb`).
    DebianKernelPackage(&'static str),
}

/// How the kernel gets its log frames out of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSink {
    /// Arm semihosting `SYS_WRITE` to the console handle (QEMU, `-semihosting-config`).
    Semihosting,
    /// The Pi's mini-UART, transmit only (configured by the firmware).
    MiniUart {
        /// The mini-UART's registers: AUX_MU_IO_REG, the UART's base in [`Board::uarts`].
        base: u64,
    },
}

/// The UART that carries hot-swap's control line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlUart {
    /// Its registers' base (a PL011's, or the mini-UART's AUX_MU_IO_REG).
    pub base: u64,
    /// Its register interface.
    pub kind: UartKind,
}

/// How the secondary CPUs are started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondaryStart {
    /// Firmware PSCI reached through SMC (QEMU `virtualization=on`, TF-A).
    PsciSmc,
    /// The Raspberry Pi stock armstub: each secondary waits in WFE until its release address
    /// ([`Board::release_addresses`]) holds an entry point.
    SpinTable,
}

/// Which register interface a UART has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011.
    Pl011,
    /// The BCM2835/BCM2711 AUX mini-UART (16550-like registers, 32 bits apart).
    MiniUart,
}

impl UartKind {
    /// The DT `compatible` string of this kind of UART.
    pub const fn compatible(self) -> &'static str {
        match self {
            UartKind::Pl011 => "arm,pl011",
            UartKind::MiniUart => "brcm,bcm2835-aux-uart",
        }
    }
}

/// A device a manifest may give a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// The name manifests use.
    pub name: &'static str,
    /// Its DT `compatible` string.
    pub compatible: &'static str,
    /// Its registers.
    pub region: Region,
    /// Its interrupt (INTID), the first if it has several.
    pub interrupt: Option<u32>,
}

/// A UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    /// The name manifests use.
    pub name: &'static str,
    /// Its register interface.
    pub kind: UartKind,
    /// Its registers.
    pub region: Region,
    /// Its interrupt (INTID).
    pub interrupt: u32,
    /// For a UART the board's tree leaves disabled (the Pi's uart2..5): the pin group (a node
    /// under the GPIO controller) that routes it to the header. Such a UART is given to the
    /// host only when the manifest lists it, and its node is then enabled in the host's tree
    /// with these pins.
    pub pins: Option<&'static str>,
    /// With `pins`: the `/aliases` entry its node gets (`serial3`: Linux's `ttyAMA3`).
    pub alias: Option<&'static str>,
}

/// A GIC's architecture version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (with the virtualization extensions: GICH and GICV).
    V2,
    /// GICv3 (CPU interface and virtualization through ICC/ICH system registers).
    V3,
}

/// The per-CPU side of a GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicCpuInterfaces {
    /// GICv2 memory-mapped interfaces.
    V2 {
        /// GICC: the physical CPU interface.
        gicc: Region,
        /// GICH: the virtual interface control (list registers), used at EL2.
        gich: Region,
        /// GICV: the virtual CPU interface a VM sees in place of GICC.
        gicv: Region,
    },
    /// GICv3 redistributors.
    V3 {
        /// GICR: the redistributor region.
        gicr: Region,
        /// Bytes per CPU within [`GicCpuInterfaces::V3::gicr`] (RD_base + SGI_base frames).
        gicr_stride: u64,
    },
}

/// One GIC configuration of a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    /// GICD: the distributor.
    pub gicd: Region,
    /// The per-CPU interfaces, which also say the version.
    pub cpu_interfaces: GicCpuInterfaces,
    /// The virtual interface maintenance interrupt (INTID of a PPI).
    pub maintenance_interrupt: u32,
}

impl Gic {
    /// The architecture version.
    pub const fn version(&self) -> GicVersion {
        match self.cpu_interfaces {
            GicCpuInterfaces::V2 { .. } => GicVersion::V2,
            GicCpuInterfaces::V3 { .. } => GicVersion::V3,
        }
    }
}

/// The architected timer's interrupts (INTIDs of PPIs), in the DT binding's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerInterrupts {
    /// The secure EL1 physical timer (CNTPS).
    pub secure_physical: u32,
    /// The non-secure EL1 physical timer (CNTP).
    pub physical: u32,
    /// The EL1 virtual timer (CNTV).
    pub virt: u32,
    /// The EL2 physical timer (CNTHP).
    pub hypervisor: u32,
}

/// One board's constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The name manifests use (the `board/<name>/` directory).
    pub name: &'static str,
    /// One line about the board.
    pub summary: &'static str,
    /// First byte of RAM.
    pub ram_base: u64,
    /// The physical RAM sizes the board comes in (its models), ascending. Empty when the
    /// machine may have any multiple of `ram_size_granule` from [`Board::min_ram_size`] to
    /// `max_ram_size` (an emulator's `-m`).
    pub ram_sizes: &'static [u64],
    /// The machine's physical RAM when the manifest does not say.
    pub default_ram_size: u64,
    /// The largest RAM range from `ram_base` an image may use: an image uses
    /// `min(machine RAM, max_ram_size)` ([`Board::usable_ram_size`]).
    pub max_ram_size: u64,
    /// RAM sizes are multiples of this (a power of two).
    pub ram_size_granule: u64,
    /// Most CPUs the board can have.
    pub max_cpus: usize,
    /// CPUs the host VM gets unless the manifest says otherwise.
    pub default_cpus: usize,
    /// What loads the image.
    pub loader: Loader,
    /// Where the loader places the first byte of the image (the kernel is linked here).
    pub image_load_address: u64,
    /// RAM the hypervisor keeps for itself, from `ram_base`: its image, stacks, tables,
    /// components. Absent from the host's stage 2.
    pub hypervisor_region_size: u64,
    /// Where the host kernel (or test guest) is copied and entered. 2 MiB aligned, as the arm64
    /// boot protocol asks.
    pub host_kernel_address: u64,
    /// What the host's device tree is made from.
    pub host_dtb: HostDtbSource,
    /// Where the kernel's log frames go.
    pub log_sink: LogSink,
    /// How secondary CPUs start.
    pub secondary_start: SecondaryStart,
    /// With [`SecondaryStart::SpinTable`]: the release address of each CPU, by MPIDR_EL1.Aff0.
    /// Empty otherwise.
    pub release_addresses: &'static [u64],
    /// Base of the UART the host's console uses (one of [`Board::uarts`]).
    pub console_uart: u64,
    /// Linux's `console=` argument for that UART (`ttyAMA0`, `ttyS1,115200`).
    pub linux_console: &'static str,
    /// The UART that carries the hot-swap control line (docs/hot-swap.md), if the board has
    /// one: no VM is given it while hot-swap is on.
    pub control_uart: Option<ControlUart>,
    /// The UARTs (also listed in [`Board::devices`]).
    pub uarts: &'static [Uart],
    /// Every GIC configuration the board can have (QEMU's virt has two; the Pi one).
    pub gics: &'static [Gic],
    /// The architected timer's interrupts.
    pub timer: TimerInterrupts,
    /// The devices a manifest may give a VM: the UARTs first, then the others.
    pub devices: &'static [Device],
}

/// Why a RAM size does not suit a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamSizeError {
    /// Not a multiple of the board's granule.
    NotMultipleOf {
        /// The board's [`Board::ram_size_granule`].
        granule: u64,
    },
    /// Leaves no RAM for the host past the hypervisor's region.
    TooSmall {
        /// The smallest size the board accepts.
        min: u64,
    },
    /// More than the board can have.
    TooLarge {
        /// The board's [`Board::max_ram_size`].
        max: u64,
    },
}

impl core::fmt::Display for RamSizeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RamSizeError::NotMultipleOf { granule } => {
                write!(f, "must be a multiple of {} KiB", granule / 1024)
            }
            RamSizeError::TooSmall { min } => write!(f, "must be at least {} MiB", min >> 20),
            RamSizeError::TooLarge { max } => write!(f, "must be at most {} MiB", max >> 20),
        }
    }
}

/// Why a machine cannot have a RAM size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineRamSizeError {
    /// The board does not come with this much RAM.
    NotAModel {
        /// The board's [`Board::ram_sizes`].
        sizes: &'static [u64],
    },
    /// An image could not use this much RAM (boards without a list of sizes).
    Ram(RamSizeError),
}

impl core::fmt::Display for MachineRamSizeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MachineRamSizeError::NotAModel { sizes } => {
                f.write_str("must be one the board comes in:")?;
                for size in *sizes {
                    write!(f, " {} MiB", size >> 20)?;
                }
                Ok(())
            }
            MachineRamSizeError::Ram(error) => error.fmt(f),
        }
    }
}

impl Board {
    /// End of the hypervisor's region.
    pub const fn hypervisor_region_end(&self) -> u64 {
        self.ram_base + self.hypervisor_region_size
    }

    /// The hypervisor's region.
    pub const fn hypervisor_region(&self) -> Region {
        Region {
            base: self.ram_base,
            size: self.hypervisor_region_size,
        }
    }

    /// Whether firmware answers PSCI calls (CPU_OFF, AFFINITY_INFO, ...) through SMC. Where it
    /// does not (the Pi's armstub sets SCR_EL3.SMD), an SMC from EL2 is UNDEFINED.
    pub const fn has_firmware_psci(&self) -> bool {
        matches!(self.secondary_start, SecondaryStart::PsciSmc)
    }

    /// The spin-table release address of the CPU with this MPIDR (affinity fields), if the
    /// board starts CPUs that way and knows the CPU.
    pub fn release_address(&self, mpidr: u64) -> Option<u64> {
        if self.secondary_start != SecondaryStart::SpinTable || mpidr & 0xff_00ff_ff00 != 0 {
            return None;
        }
        self.release_addresses.get((mpidr & 0xff) as usize).copied()
    }

    /// The board's GIC of this version.
    pub fn gic(&self, version: GicVersion) -> Option<&'static Gic> {
        self.gics.iter().find(|gic| gic.version() == version)
    }

    /// The UART named `name`.
    pub fn uart(&self, name: &str) -> Option<&'static Uart> {
        self.uarts.iter().find(|uart| uart.name == name)
    }

    /// The UART the host's console uses.
    pub fn console(&self) -> &'static Uart {
        self.uarts
            .iter()
            .find(|uart| uart.region.base == self.console_uart)
            .expect("validated: the console is one of the board's UARTs")
    }

    /// Whether hot-swap's control line is the log's UART: frames both ways on one line, told
    /// apart by their checksums (docs/hot-swap.md).
    pub fn control_shares_log(&self) -> bool {
        matches!(
            (self.control_uart, self.log_sink),
            (Some(control), LogSink::MiniUart { base }) if control.base == base
        )
    }

    /// The 4 KiB page the control UART lies in, which stage 2 cannot split: every device in
    /// it is kept from the VMs while hot-swap is on.
    pub fn control_page(&self) -> Option<Region> {
        self.control_uart.map(|control| Region {
            base: control.base & !0xfff,
            size: 0x1000,
        })
    }

    /// The device named `name` (UARTs included).
    pub fn device(&self, name: &str) -> Option<&'static Device> {
        self.devices.iter().find(|device| device.name == name)
    }

    /// The smallest RAM size the board accepts: the hypervisor's region, and one granule for
    /// the host past it.
    pub const fn min_ram_size(&self) -> u64 {
        self.host_kernel_address - self.ram_base + self.ram_size_granule
    }

    /// Checks that the machine may have `size` bytes of physical RAM: one of
    /// [`Board::ram_sizes`], or where the board lists none, a size [`Board::check_ram_size`]
    /// accepts.
    pub fn check_machine_ram_size(&self, size: u64) -> Result<(), MachineRamSizeError> {
        if self.ram_sizes.is_empty() {
            return self.check_ram_size(size).map_err(MachineRamSizeError::Ram);
        }
        if self.ram_sizes.contains(&size) {
            Ok(())
        } else {
            Err(MachineRamSizeError::NotAModel {
                sizes: self.ram_sizes,
            })
        }
    }

    /// The smallest physical RAM size the board can have that holds `size` bytes: the first
    /// of [`Board::ram_sizes`] at least that big, or `size` rounded up to the granule (at least
    /// [`Board::min_ram_size`]) where the board lists none. `None` if the board cannot have
    /// that much.
    pub fn round_up_ram_size(&self, size: u64) -> Option<u64> {
        if self.ram_sizes.is_empty() {
            let rounded = size
                .max(self.min_ram_size())
                .checked_next_multiple_of(self.ram_size_granule)?;
            return (rounded <= self.max_ram_size).then_some(rounded);
        }
        self.ram_sizes.iter().copied().find(|&model| model >= size)
    }

    /// The RAM an image uses on a machine with `machine_ram` bytes: all of it, up to
    /// [`Board::max_ram_size`].
    pub const fn usable_ram_size(&self, machine_ram: u64) -> u64 {
        if machine_ram < self.max_ram_size {
            machine_ram
        } else {
            self.max_ram_size
        }
    }

    /// Checks that an image may use `size` bytes of RAM from [`Board::ram_base`].
    pub const fn check_ram_size(&self, size: u64) -> Result<(), RamSizeError> {
        if !size.is_multiple_of(self.ram_size_granule) {
            return Err(RamSizeError::NotMultipleOf {
                granule: self.ram_size_granule,
            });
        }
        if size < self.min_ram_size() {
            return Err(RamSizeError::TooSmall {
                min: self.min_ram_size(),
            });
        }
        if size > self.max_ram_size {
            return Err(RamSizeError::TooLarge {
                max: self.max_ram_size,
            });
        }
        Ok(())
    }
}

// The boards, generated from board/<name>/board.toml by build.rs: one constant per board
// (`QEMU_VIRT`, `RPI4`), each validated at compile time, and `ALL`.
include!(concat!(env!("OUT_DIR"), "/boards.rs"));

/// The board named `name`.
pub fn by_name(name: &str) -> Option<&'static Board> {
    ALL.iter().find(|board| board.name == name)
}

/// The board the kernel is built for.
#[cfg(feature = "rpi4")]
pub const CURRENT: &Board = &RPI4;
/// The board the kernel is built for.
#[cfg(not(feature = "rpi4"))]
pub const CURRENT: &Board = &QEMU_VIRT;

#[cfg(test)]
mod tests;
