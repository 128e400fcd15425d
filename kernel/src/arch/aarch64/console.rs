//! Writing to the machine's console UART for a component that emulates a VM's console (the
//! CONSOLE_WRITE kernel operation). The kernel does not interpret the bytes.
//!
//! PL011 (ARM DDI 0183): DR at +0x000, FR at +0x018 with TXFF in bit 5. The Pi's mini-UART has
//! its own driver ([`super::mini_uart`]).

use core::ptr::{read_volatile, write_volatile};
use hv_board::UartKind;

const PL011_DR: u64 = 0x000;
const PL011_FR: u64 = 0x018;
const PL011_FR_TXFF: u32 = 1 << 5;

/// Writes `bytes` to the board's console UART, waiting for room before each byte.
pub fn write(bytes: &[u8]) {
    let console = hv_board::CURRENT.console();
    let base = console.region.base;
    match console.kind {
        UartKind::Pl011 => {
            for &byte in bytes {
                // SAFETY: the console UART's registers are identity-mapped as device memory at
                // EL2 (the map covers all device space) and these are its documented 32-bit
                // registers; while a VM sees the console emulated, nothing else drives it.
                unsafe {
                    while read_volatile((base + PL011_FR) as *const u32) & PL011_FR_TXFF != 0 {}
                    write_volatile((base + PL011_DR) as *mut u32, u32::from(byte));
                }
            }
        }
        UartKind::MiniUart => super::mini_uart::write(base, bytes),
    }
}
