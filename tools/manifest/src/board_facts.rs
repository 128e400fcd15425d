//! Per-board facts the manifest needs that `hv_board::Board` does not carry (yet).
//!
//! `hv-board` has the RAM range an image may assume (`default_ram_size`, `max_ram_size`,
//! `ram_size_granule`, `check_ram_size`), the CPU counts (`default_cpus`, `max_cpus`) and the
//! devices a VM can be given (`devices`); this crate uses those directly. What it lacks is
//! here, keyed by board name: **this is the one place to move into `hv-board` later** (as
//! `board.toml` keys), and nothing else in this crate names a board.

use hv_board::Board;

const GIB: u64 = 1 << 30;

/// The physical RAM sizes a board can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamChoices {
    /// Any size the board accepts (`Board::check_ram_size`): an emulator, where the
    /// manifest's RAM is what the machine gets (QEMU's `-m`).
    Any,
    /// Exactly one of these, the board's models. The image uses the first
    /// `Board::max_ram_size` bytes of it.
    OneOf(&'static [u64]),
}

/// What the manifest needs about a board beyond `hv_board::Board`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardExtras {
    /// The physical RAM sizes it can have.
    pub ram: RamChoices,
    /// Its physical RAM when the manifest does not say.
    pub default_ram: u64,
    /// The kernel command line when the manifest does not say: the host console's device.
    pub default_cmdline: &'static str,
    /// Whether its CPUs can have MTE, so a guest may be given it (qemu-virt: with `-cpu max`,
    /// `cargo xtask --machine max`; rpi4: Cortex-A72, Armv8.0, none).
    pub mte: bool,
}

/// The facts about `board` that `hv_board::Board` does not hold.
///
/// - qemu-virt: RAM is whatever `-m` gets (`default_ram_size`, 1 GiB, up to `max_ram_size`,
///   255 GiB); the console is the PL011, Linux's ttyAMA0.
/// - rpi4: a Pi 4 has 1, 2, 4 or 8 GiB (default 1 GiB); an image uses the first bank below
///   the GPU's memory (`max_ram_size`, 948 MiB) on every model. The console is the mini-UART,
///   Linux's ttyS1 (`serial1` in its device tree).
pub fn board_extras(board: &Board) -> BoardExtras {
    match board.name {
        "rpi4" => BoardExtras {
            ram: RamChoices::OneOf(&[GIB, 2 * GIB, 4 * GIB, 8 * GIB]),
            default_ram: GIB,
            default_cmdline: "console=ttyS1,115200",
            mte: false,
        },
        // qemu-virt, and any board added to hv-board before it is added here.
        _ => BoardExtras {
            ram: RamChoices::Any,
            default_ram: board.default_ram_size,
            default_cmdline: "console=ttyAMA0",
            mte: true,
        },
    }
}

/// The size of a page: component memory and stacks are multiples of it.
pub const PAGE: u64 = 4 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_has_sensible_extras() {
        for board in hv_board::ALL {
            let extras = board_extras(board);
            match extras.ram {
                RamChoices::Any => assert_eq!(board.check_ram_size(extras.default_ram), Ok(())),
                RamChoices::OneOf(choices) => {
                    assert!(choices.contains(&extras.default_ram));
                    assert!(choices.iter().all(|&c| c >= board.max_ram_size));
                }
            }
        }
    }
}
