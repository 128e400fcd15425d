//! The Raspberry Pi 4's mini-UART (BCM2711 AUX UART1), transmit side only: the kernel's log
//! sink on that board. No crate drives it (arm-pl011-uart covers the PL011 only), hence ours.
//!
//! BCM2711 ARM Peripherals, section 2.2 (AUX): the mini-UART's registers start at
//! AUX_MU_IO_REG (0x7e21_5040 on the bus, 0xfe21_5040 for the ARM, the board's `uart1` base),
//! 32 bits apart: AUX_MU_IO_REG at +0x00, AUX_MU_LSR_REG at +0x14 (bit 5: the transmitter can
//! accept a byte). The firmware enables and configures the UART (115200 8N1, GPIO 14/15) when
//! config.txt says `enable_uart=1`.

use core::ptr::{read_volatile, write_volatile};

const IO: u64 = 0x00;
const LSR: u64 = 0x14;
const LSR_TX_EMPTY: u32 = 1 << 5;

/// Writes `bytes`, waiting for room before each one. `base` is the mini-UART's register base
/// (AUX_MU_IO_REG).
pub fn write(base: u64, bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: the board's mini-UART is identity-mapped as device memory at EL2 and these
        // are its documented 32-bit registers.
        unsafe {
            while read_volatile((base + LSR) as *const u32) & LSR_TX_EMPTY == 0 {}
            write_volatile((base + IO) as *mut u32, byte as u32);
        }
    }
}
