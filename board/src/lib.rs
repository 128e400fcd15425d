//! Board descriptions: the facts about a machine that the kernel and the tools must agree on.
//!
//! A board is data: where RAM starts, where the loader puts the image, how much RAM the
//! hypervisor keeps, where the host kernel goes, which console and log sink exist and how
//! secondary CPUs start. The kernel is built for one board (a cargo feature) and reads
//! [`CURRENT`]; the tools read any board by name. Generic code never names a board.
//!
//! Sources: QEMU's `hw/arm/virt.c` memory map and `reference/qemu-el2.md`; for the Pi 4 the
//! BCM2711 ARM Peripherals manual and the firmware's boot behaviour (`config.txt`
//! `kernel_address`, spin table at 0xd8).
#![cfg_attr(not(test), no_std)]

/// How the kernel gets its log frames out of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSink {
    /// Arm semihosting `SYS_WRITE` to the console handle (QEMU, `-semihosting-config`).
    Semihosting,
    /// The Pi's mini-UART at this physical address.
    MiniUart {
        /// Base of the AUX mini-UART registers.
        base: u64,
    },
}

/// How the secondary CPUs are started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondaryStart {
    /// Firmware PSCI reached through SMC (QEMU `virtualization=on`, TF-A).
    PsciSmc,
    /// The Raspberry Pi stock armstub: each secondary spins on its release address.
    SpinTable,
}

/// One board's constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The name manifests use.
    pub name: &'static str,
    /// First byte of RAM.
    pub ram_base: u64,
    /// Where the loader places the first byte of the image (the kernel is linked here).
    pub image_load_address: u64,
    /// RAM the hypervisor keeps for itself, from `ram_base`: its image, stacks, tables,
    /// components. Absent from the host's stage 2.
    pub hypervisor_region_size: u64,
    /// Where the host kernel (or test guest) is copied and entered. 2 MiB aligned, as the arm64
    /// boot protocol asks.
    pub host_kernel_address: u64,
    /// Where the kernel's log frames go.
    pub log_sink: LogSink,
    /// How secondary CPUs start.
    pub secondary_start: SecondaryStart,
    /// The console UART the host uses (informational for the tools).
    pub console_uart: u64,
}

impl Board {
    /// End of the hypervisor's region.
    pub const fn hypervisor_region_end(&self) -> u64 {
        self.ram_base + self.hypervisor_region_size
    }
}

const MIB: u64 = 1 << 20;

/// QEMU's `virt` machine with `virtualization=on` (either GIC version).
pub const QEMU_VIRT: Board = Board {
    name: "qemu-virt",
    ram_base: 0x4000_0000,
    // QEMU loads an Image whose text_offset is below its boot stub's size 2 MiB further up.
    image_load_address: 0x4020_0000,
    hypervisor_region_size: 32 * MIB,
    host_kernel_address: 0x4000_0000 + 32 * MIB,
    log_sink: LogSink::Semihosting,
    secondary_start: SecondaryStart::PsciSmc,
    console_uart: 0x0900_0000,
};

/// Raspberry Pi 4 Model B with the stock firmware and armstub.
pub const RPI4: Board = Board {
    name: "rpi4",
    ram_base: 0,
    // `kernel_address=0x200000` in config.txt; the armstub and spin table live below it.
    image_load_address: 0x20_0000,
    hypervisor_region_size: 32 * MIB,
    host_kernel_address: 32 * MIB,
    log_sink: LogSink::MiniUart { base: 0xFE21_5000 },
    secondary_start: SecondaryStart::SpinTable,
    console_uart: 0xFE21_5040,
};

/// Every board the tools know.
pub const ALL: &[Board] = &[QEMU_VIRT, RPI4];

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
mod tests {
    use super::*;

    #[test]
    fn layouts_are_consistent() {
        for board in ALL {
            assert_eq!(board.host_kernel_address % (2 * MIB), 0, "{}", board.name);
            assert_eq!(board.image_load_address % (2 * MIB), 0, "{}", board.name);
            assert!(board.image_load_address >= board.ram_base);
            assert!(board.image_load_address < board.hypervisor_region_end());
            assert!(board.host_kernel_address >= board.hypervisor_region_end());
            assert_eq!(by_name(board.name), Some(board));
        }
        assert_eq!(by_name("pdp-11"), None);
    }
}
