//! The Raspberry Pi 4's mini-UART (BCM2711 AUX UART1): the kernel's log sink on that board,
//! and with hot-swap on, the control line's receive side too. No crate drives it
//! (arm-pl011-uart covers the PL011 only), hence ours.
//!
//! BCM2711 ARM Peripherals, section 2.2 (AUX): the mini-UART's registers start at
//! AUX_MU_IO_REG (0x7e21_5040 on the bus, 0xfe21_5040 for the ARM, the board's `uart1` base),
//! 32 bits apart: AUX_MU_IO_REG at +0x00, AUX_MU_LSR_REG at +0x14 (bit 0: a received byte
//! waits; bit 5: the transmitter can accept a byte), AUX_MU_CNTL_REG at +0x20 (bit 0: receiver
//! enable, bit 1: transmitter enable). The firmware enables and configures the UART (115200
//! 8N1, GPIO 14/15) when config.txt says `enable_uart=1`.

use core::ptr::{read_volatile, write_volatile};

const IO: u64 = 0x00;
const LSR: u64 = 0x14;
const CNTL: u64 = 0x20;
const LSR_DATA_READY: u32 = 1;
const LSR_TX_EMPTY: u32 = 1 << 5;
/// Receiver and transmitter on, no flow control.
const CNTL_RX_TX: u32 = 0b11;

/// Reads register `offset` of the mini-UART at `base`.
fn read(base: u64, offset: u64) -> u32 {
    // SAFETY: the board's mini-UART is identity-mapped as device memory at EL2 and this is
    // one of its documented 32-bit registers.
    unsafe { read_volatile((base + offset) as *const u32) }
}

/// Turns the receiver on beside the transmitter (the firmware's `enable_uart=1` does too).
pub fn enable_receiver(base: u64) {
    // SAFETY: as in `read`; no VM is given the mini-UART while it is the control line.
    unsafe { write_volatile((base + CNTL) as *mut u32, CNTL_RX_TX) }
}

/// Whether a received byte waits.
pub fn input_waiting(base: u64) -> bool {
    read(base, LSR) & LSR_DATA_READY != 0
}

/// The next received byte, if one waits.
pub fn read_byte(base: u64) -> Option<u8> {
    input_waiting(base).then(|| read(base, IO) as u8)
}

/// Writes `bytes`, waiting for room before each one. `base` is the mini-UART's register base
/// (AUX_MU_IO_REG).
pub fn write(base: u64, bytes: &[u8]) {
    for &byte in bytes {
        while read(base, LSR) & LSR_TX_EMPTY == 0 {}
        // SAFETY: as in `read`.
        unsafe { write_volatile((base + IO) as *mut u32, byte as u32) }
    }
}
