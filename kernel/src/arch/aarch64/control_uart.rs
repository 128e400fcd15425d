//! The board's control UART: the hot-swap line the supervisor reads and answers through the
//! CONTROL_READ and CONTROL_WRITE kernel operations (docs/hot-swap.md). Polled: its interrupt
//! is not used, since the host owns the GIC. Either a PL011 no VM is given (QEMU's virt), or
//! the Pi's mini-UART that also carries the log ([`super::mini_uart`]), whose writes then go
//! through the logger so that frames never interleave.
//!
//! PL011 (ARM DDI 0183): DR at +0x000, FR at +0x018 (RXFE bit 4, TXFF bit 5), LCR_H at
//! +0x02c, CR at +0x030, IMSC at +0x038. The baud rate is left as the firmware set it (QEMU
//! ignores it).

use core::ptr::{read_volatile, write_volatile};
use hv_board::{ControlUart, UartKind};

const DR: u64 = 0x000;
const FR: u64 = 0x018;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IMSC: u64 = 0x038;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
/// 8 data bits, FIFOs on.
const LCR_H_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
/// UARTEN, TXE, RXE.
const CR_ENABLE: u32 = 1 | (1 << 8) | (1 << 9);

/// Reads register `offset` of the control UART at `base`.
fn read(base: u64, offset: u64) -> u32 {
    // SAFETY: `base` is the board's control UART, identity-mapped as device memory at EL2 (the
    // map covers all device space); these are its documented 32-bit registers, and no VM is
    // given it.
    unsafe { read_volatile((base + offset) as *const u32) }
}

/// Writes register `offset` of the control UART at `base`.
fn write_register(base: u64, offset: u64, value: u32) {
    // SAFETY: as in `read`.
    unsafe { write_volatile((base + offset) as *mut u32, value) }
}

/// The board's control UART, if it has one.
fn control() -> Option<ControlUart> {
    hv_board::CURRENT.control_uart
}

/// Turns the UART on (a PL011: 8N1 with FIFOs, interrupts masked; the mini-UART: its receiver
/// too). Whether the board has one.
pub fn init() -> bool {
    match control() {
        Some(ControlUart {
            base,
            kind: UartKind::Pl011,
        }) => {
            write_register(base, CR, 0);
            write_register(base, IMSC, 0);
            write_register(base, LCR_H, LCR_H_8N1_FIFO);
            write_register(base, CR, CR_ENABLE);
            true
        }
        Some(ControlUart {
            base,
            kind: UartKind::MiniUart,
        }) => {
            super::mini_uart::enable_receiver(base);
            true
        }
        None => false,
    }
}

/// Whether a byte waits in the receive FIFO.
pub fn input_waiting() -> bool {
    match control() {
        Some(ControlUart {
            base,
            kind: UartKind::Pl011,
        }) => read(base, FR) & FR_RXFE == 0,
        Some(ControlUart {
            base,
            kind: UartKind::MiniUart,
        }) => super::mini_uart::input_waiting(base),
        None => false,
    }
}

/// The next received byte, if one waits.
pub fn read_byte() -> Option<u8> {
    match control()? {
        ControlUart {
            base,
            kind: UartKind::Pl011,
        } => (read(base, FR) & FR_RXFE == 0).then(|| read(base, DR) as u8),
        ControlUart {
            base,
            kind: UartKind::MiniUart,
        } => super::mini_uart::read_byte(base),
    }
}

/// Sends `bytes`, waiting for room in the transmit FIFO. On the mini-UART (the log's, as the
/// board data checks) they go out as one piece between the log's frames.
pub fn write(bytes: &[u8]) {
    match control() {
        Some(ControlUart {
            base,
            kind: UartKind::Pl011,
        }) => {
            for &byte in bytes {
                while read(base, FR) & FR_TXFF != 0 {}
                write_register(base, DR, u32::from(byte));
            }
        }
        Some(ControlUart {
            kind: UartKind::MiniUart,
            ..
        }) => crate::log::write_between_frames(bytes),
        None => {}
    }
}
