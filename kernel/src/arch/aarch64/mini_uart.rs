//! The Raspberry Pi 4's mini-UART (BCM2711 AUX UART1), transmit side only: the kernel's log
//! sink on that board. No crate drives it (arm-pl011-uart covers the PL011 only), hence ours.
//!
//! BCM2711 ARM Peripherals, section 2.2: AUX_MU_IO_REG at +0x40, AUX_MU_LSR_REG at +0x54
//! (bit 5: transmitter can accept a byte). The firmware has already configured the UART when
//! `enable_uart=1` is set in config.txt.

use core::ptr::{read_volatile, write_volatile};

const IO: u64 = 0x40;
const LSR: u64 = 0x54;
const LSR_TX_EMPTY: u32 = 1 << 5;

/// Writes `bytes`, waiting for room before each one. `aux_base` is the AUX block's base.
pub fn write(aux_base: u64, bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: the board's AUX block is identity-mapped as device memory at EL2 and these
        // are its documented 32-bit registers.
        unsafe {
            while read_volatile((aux_base + LSR) as *const u32) & LSR_TX_EMPTY == 0 {}
            write_volatile((aux_base + IO) as *mut u32, byte as u32);
        }
    }
}
