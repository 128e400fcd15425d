//! An emulated ARM PrimeCell UART (PL011 r1p5, ARM DDI 0183) with a receive FIFO and
//! interrupts: enough for a guest's console, polled (earlycon, the test runtime) or
//! interrupt-driven (Linux's `amba-pl011` driver: `ttyAMA0` with an IRQ). Pure logic,
//! host-tested; the component feeds it the accesses the kernel routes and the bytes the guest
//! receives ([`Pl011::receive`]), sends the lines it completes to the real console
//! ([`crate::console`]), and forwards the changes of its interrupt line
//! ([`Pl011::take_line_change`]) to a level-sensitive interrupt of the VM.
//!
//! What a guest sees:
//!
//! - `UARTDR` (0x000): a write transmits its low byte at once (into the VM's line buffer),
//!   whatever `UARTCR` says — even with UARTEN or TXE clear, like QEMU's model, so firmware
//!   and earlycon drivers that write without enabling the UART keep working. The transmitter
//!   never waits, so the transmit FIFO is always empty. A read pops the oldest receive FIFO
//!   entry: the byte in bits 7:0, its error flags FE, PE, BE, OE in bits 8..11 (only OE is
//!   ever set: on the first byte queued after bytes were lost); an empty FIFO reads 0.
//! - `UARTRSR/UARTECR` (0x004): reads the error flags of the entry last read from DR (bits
//!   3:0); OE (bit 3) is also set as soon as a byte is lost, and stays set until cleared. Any
//!   write clears them all.
//! - `UARTFR` (0x018): TXFE (bit 7) always; RXFE (bit 4) while the receive FIFO is empty, RXFF
//!   (bit 6) while it is full. Never BUSY or TXFF, so a polling writer never waits; CTS, DSR,
//!   DCD and RI read 0.
//! - The receive FIFO holds 16 entries when `UARTLCR_H.FEN` (bit 4) is set, 1 (a holding
//!   register) when it is clear. Turning FEN off keeps what the FIFO holds: it reads as full
//!   until the guest has read it. A byte is received only while UARTEN (bit 0) and RXE (bit 9)
//!   of `UARTCR` are set; into a full FIFO it is lost (an overrun).
//! - Interrupts: `UARTRIS` (0x03C) is the raw status, `UARTIMSC` (0x038) the mask (read back),
//!   `UARTMIS` (0x040) reads RIS & IMSC, a write to `UARTICR` (0x044, write-only, reads 0)
//!   clears the raw bits written as 1. The interrupt line is high while MIS is not 0; masking
//!   keeps the raw status, so unmasking a pending interrupt raises the line. Raised:
//!   - RXIS (bit 4) by a received byte that leaves the FIFO at or above the trigger level:
//!     `UARTIFLS` bits 5:3 = 0, 1, 2, 3, 4 select 2, 4, 8, 12, 14 entries (1/8 .. 7/8 of 16;
//!     the reserved 5..7 act as 4); 1 entry with FEN clear. A DR read that leaves the FIFO
//!     below the trigger level clears it.
//!   - RTIS (bit 6), the receive timeout, modelled without time: by a received byte or a DR
//!     read that leaves the FIFO not empty but below the trigger level (data that waits and
//!     will not reach the trigger, such as a single typed character, which Linux picks up on
//!     RTIS). The FIFO becoming empty clears it.
//!   - TXIS (bit 5): as the transmit FIFO empties at once, its level falls to the trigger
//!     after every byte. So TXIS is set by each DR write while the transmitter is enabled
//!     (UARTEN and TXE, bit 8) and by a `UARTCR` write that enables it; only ICR clears it.
//!     Why: Linux writes at most half a FIFO per transmit interrupt and waits for the next
//!     one; with TXIS still set its handler goes on until it has nothing left to send, then
//!     masks TXIM, so the line does not stay high. DR writes with the transmitter disabled
//!     (still transmitted) raise nothing.
//!   - OEIS (bit 10) by a byte lost to a full FIFO.
//!   - FEIS, PEIS, BEIS (bits 7..9) and the modem interrupts (bits 0..3) are never raised.
//! - `UARTILPR`, `UARTIBRD`, `UARTFBRD`, `UARTLCR_H`, `UARTCR`, `UARTIFLS`, `UARTIMSC`,
//!   `UARTDMACR`: read back what was last written, cut to the register's width, or the reset
//!   value (`UARTCR` 0x0300, `UARTIFLS` 0x12, the rest 0). Beyond what is described above
//!   (FEN, UARTEN, TXE, RXE, the RX trigger level, the mask) they change nothing: no loopback,
//!   flow control, break, baud rate or DMA.
//! - `UARTPeriphID0..3`, `UARTPCellID0..3` (0xFE0..0xFFC): 0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0,
//!   0x05, 0xB1 (part 0x011, designer ARM, revision 1: what QEMU's model reports; Linux then
//!   assumes a 16-byte FIFO); writes are ignored.
//! - Every other offset (reserved, test registers, and beyond 0x1000 in a larger window) reads
//!   as zero and ignores writes.
//!
//! Reset is a new model ([`Pl011::default`]): registers at their reset values, FIFO empty, no
//! interrupt pending, the line low and last reported low. The component lowers the VM's
//! interrupt line itself when it resets the VM (the new model reports no change).
//!
//! Access sizes: the registers are 32 bits wide, and Linux uses 32-bit accessors, but some
//! earlycon drivers write `UARTDR` with byte or halfword stores. So accesses of 1, 2 or 4 bytes
//! at a register's offset (a multiple of 4) are accepted: a narrow read returns the register's
//! low bytes (a narrow DR read pops an entry all the same), a narrow write writes the
//! (zero-extended) value to the whole register, as an APB peripheral without byte strobes sees
//! it. Anything else — 8-byte accesses, or offsets that are not a multiple of 4 — is a
//! [`BadAccess`], which the component refuses with an external abort, the way a bus error
//! would end it; a refused access changes nothing.

// Receiving and the interrupt line are not wired to the guest yet (the component does that
// later); until then the target build does not use them either.
#![cfg_attr(
    target_os = "none",
    allow(dead_code, reason = "receive side and interrupt line not wired yet")
)]

use crate::console::LineBuffer;

/// Size of the register block.
pub const REGISTER_BLOCK: u64 = 0x1000;

/// Data register.
pub const UARTDR: u64 = 0x000;
/// Receive status / error clear register.
pub const UARTRSR_ECR: u64 = 0x004;
/// Flag register.
pub const UARTFR: u64 = 0x018;
/// IrDA low-power counter register.
pub const UARTILPR: u64 = 0x020;
/// Integer baud rate register.
pub const UARTIBRD: u64 = 0x024;
/// Fractional baud rate register.
pub const UARTFBRD: u64 = 0x028;
/// Line control register.
pub const UARTLCR_H: u64 = 0x02C;
/// Control register.
pub const UARTCR: u64 = 0x030;
/// Interrupt FIFO level select register.
pub const UARTIFLS: u64 = 0x034;
/// Interrupt mask set/clear register.
pub const UARTIMSC: u64 = 0x038;
/// Raw interrupt status register.
pub const UARTRIS: u64 = 0x03C;
/// Masked interrupt status register.
pub const UARTMIS: u64 = 0x040;
/// Interrupt clear register (write-only).
pub const UARTICR: u64 = 0x044;
/// DMA control register.
pub const UARTDMACR: u64 = 0x048;
/// First identification register (`UARTPeriphID0`); `UARTPCellID3` is at 0xFFC.
pub const UARTPERIPHID0: u64 = 0xFE0;

/// `UARTDR.OE`: bytes were lost before this one (`UARTDR` bits 8..11 are FE, PE, BE, OE).
pub const DR_OE: u32 = 1 << 11;
/// `UARTRSR.OE`: a byte was lost to a full receive FIFO.
pub const RSR_OE: u32 = 1 << 3;

/// `UARTFR.BUSY`.
pub const FR_BUSY: u32 = 1 << 3;
/// `UARTFR.RXFE`: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// `UARTFR.TXFF`: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// `UARTFR.RXFF`: receive FIFO full.
pub const FR_RXFF: u32 = 1 << 6;
/// `UARTFR.TXFE`: transmit FIFO empty.
pub const FR_TXFE: u32 = 1 << 7;

/// `UARTLCR_H.FEN`: FIFOs enabled.
pub const LCR_H_FEN: u32 = 1 << 4;

/// `UARTCR.UARTEN`: UART enabled.
pub const CR_UARTEN: u32 = 1 << 0;
/// `UARTCR.TXE`: transmitter enabled.
pub const CR_TXE: u32 = 1 << 8;
/// `UARTCR.RXE`: receiver enabled.
pub const CR_RXE: u32 = 1 << 9;
/// `UARTCR` reset value: TXE | RXE, UART disabled.
pub const CR_RESET: u32 = 0x0300;
/// `UARTIFLS` reset value: both FIFOs at half.
pub const IFLS_RESET: u32 = 0x12;

/// Receive interrupt (RXIS in RIS and MIS, RXIM in IMSC, RXIC in ICR).
pub const INT_RX: u32 = 1 << 4;
/// Transmit interrupt.
pub const INT_TX: u32 = 1 << 5;
/// Receive timeout interrupt.
pub const INT_RT: u32 = 1 << 6;
/// Framing error interrupt (never raised).
pub const INT_FE: u32 = 1 << 7;
/// Parity error interrupt (never raised).
pub const INT_PE: u32 = 1 << 8;
/// Break error interrupt (never raised).
pub const INT_BE: u32 = 1 << 9;
/// Overrun error interrupt.
pub const INT_OE: u32 = 1 << 10;
/// Every bit of the interrupt registers (the modem interrupts, bits 0..3, are never raised).
pub const INT_ALL: u32 = 0x7FF;

/// Entries of the receive FIFO when FIFOs are enabled.
pub const RX_FIFO_DEPTH: usize = 16;

/// `UARTPeriphID0..3`, `UARTPCellID0..3`.
pub const ID_REGISTERS: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

/// An access the UART cannot take (refused with an external abort).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadAccess {
    /// Not 1, 2 or 4 bytes.
    Size,
    /// Not at a register's offset (a multiple of 4).
    Misaligned,
}

impl BadAccess {
    /// For logs.
    pub const fn name(self) -> &'static str {
        match self {
            BadAccess::Size => "access size not 1, 2 or 4 bytes",
            BadAccess::Misaligned => "offset not a multiple of 4",
        }
    }
}

/// Why [`Pl011::receive`] lost a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The receiver is off (`UARTCR` UARTEN or RXE clear).
    Disabled,
    /// The receive FIFO is full: an overrun, which the guest sees.
    Overrun,
}

impl Dropped {
    /// For logs.
    pub const fn name(self) -> &'static str {
        match self {
            Dropped::Disabled => "receiver disabled",
            Dropped::Overrun => "receive FIFO overrun",
        }
    }
}

/// The receive FIFO: entries of 8 data bits and 4 error bits, as `UARTDR` reads them.
#[derive(Clone, Debug)]
struct ReceiveFifo {
    entries: [u16; RX_FIFO_DEPTH],
    /// Index of the oldest entry.
    head: usize,
    len: usize,
}

impl ReceiveFifo {
    const fn new() -> Self {
        ReceiveFifo {
            entries: [0; RX_FIFO_DEPTH],
            head: 0,
            len: 0,
        }
    }

    /// Adds `entry` at the back; the caller has checked there is room.
    fn push(&mut self, entry: u16) {
        if self.len < RX_FIFO_DEPTH {
            self.entries[(self.head + self.len) % RX_FIFO_DEPTH] = entry;
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        let entry = self.entries[self.head];
        self.head = (self.head + 1) % RX_FIFO_DEPTH;
        self.len -= 1;
        Some(entry)
    }
}

/// One emulated PL011: its registers, its receive FIFO, and the line being transmitted.
#[derive(Clone, Debug)]
pub struct Pl011 {
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    dmacr: u32,
    received: ReceiveFifo,
    /// `UARTRSR`.
    receive_status: u32,
    /// A byte was lost: the next one queued carries `UARTDR.OE`.
    overrun_pending: bool,
    /// `UARTRIS`.
    raw_interrupts: u32,
    /// The interrupt line's level as [`Pl011::take_line_change`] last reported it.
    reported_line: bool,
    line: LineBuffer,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

/// The low `size` bytes of `value`.
fn truncate(value: u64, size: u8) -> u64 {
    match size {
        8 => value,
        _ => value & ((1u64 << (8 * u32::from(size))) - 1),
    }
}

fn check(offset: u64, size: u8) -> Result<(), BadAccess> {
    if !matches!(size, 1 | 2 | 4) {
        return Err(BadAccess::Size);
    }
    if !offset.is_multiple_of(4) {
        return Err(BadAccess::Misaligned);
    }
    Ok(())
}

impl Pl011 {
    /// A UART in its reset state with nothing transmitted or received.
    pub const fn new() -> Self {
        Pl011 {
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            dmacr: 0,
            received: ReceiveFifo::new(),
            receive_status: 0,
            overrun_pending: false,
            raw_interrupts: 0,
            reported_line: false,
            line: LineBuffer::new(),
        }
    }

    /// A read of `size` bytes at `offset` into the register block: the value read (its low
    /// `size` bytes). A read of `UARTDR` takes the oldest received entry.
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, BadAccess> {
        check(offset, size)?;
        let value = match offset {
            UARTDR => self.read_data(),
            UARTRSR_ECR => self.receive_status,
            UARTFR => self.flags(),
            UARTILPR => self.ilpr,
            UARTIBRD => self.ibrd,
            UARTFBRD => self.fbrd,
            UARTLCR_H => self.lcr_h,
            UARTCR => self.cr,
            UARTIFLS => self.ifls,
            UARTIMSC => self.imsc,
            UARTRIS => self.raw_interrupts,
            UARTMIS => self.masked_interrupts(),
            UARTDMACR => self.dmacr,
            UARTPERIPHID0..REGISTER_BLOCK => ID_REGISTERS[((offset - UARTPERIPHID0) / 4) as usize],
            // Write-only.
            UARTICR => 0,
            // Reserved and test registers.
            _ => 0,
        };
        Ok(truncate(u64::from(value), size))
    }

    /// A write of `value` (`size` bytes) at `offset`; `emit` gets every console line the write
    /// completes (see [`LineBuffer::push`]).
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        emit: impl FnMut(&[u8]),
    ) -> Result<(), BadAccess> {
        check(offset, size)?;
        let value = truncate(value, size) as u32;
        match offset {
            UARTDR => {
                // Transmitted whatever UARTCR says (see the module docs); only an enabled
                // transmitter interrupts.
                self.line.push(value as u8, emit);
                if self.transmitter_enabled() {
                    self.raw_interrupts |= INT_TX;
                }
            }
            UARTRSR_ECR => self.receive_status = 0,
            UARTILPR => self.ilpr = value & 0xFF,
            UARTIBRD => self.ibrd = value & 0xFFFF,
            UARTFBRD => self.fbrd = value & 0x3F,
            UARTLCR_H => self.lcr_h = value & 0xFF,
            UARTCR => {
                let was_enabled = self.transmitter_enabled();
                self.cr = value & 0xFFFF;
                if !was_enabled && self.transmitter_enabled() {
                    self.raw_interrupts |= INT_TX;
                }
            }
            UARTIFLS => self.ifls = value & 0x3F,
            UARTIMSC => self.imsc = value & INT_ALL,
            UARTICR => self.raw_interrupts &= !(value & INT_ALL),
            UARTDMACR => self.dmacr = value & 0x7,
            // Read-only.
            UARTFR | UARTRIS | UARTMIS => {}
            // The IDs, reserved and test registers.
            _ => {}
        }
        Ok(())
    }

    /// Sends the partial line, if any (see [`LineBuffer::flush`]).
    pub fn flush(&mut self, emit: impl FnMut(&[u8])) {
        self.line.flush(emit);
    }

    /// The guest receives `byte`: queued in the receive FIFO if the receiver is enabled and the
    /// FIFO has room. Into a full FIFO it is lost, and the guest sees the overrun (`UARTRSR.OE`,
    /// OEIS, `UARTDR.OE` on the next byte queued).
    pub fn receive(&mut self, byte: u8) -> Result<(), Dropped> {
        if !self.receiver_enabled() {
            return Err(Dropped::Disabled);
        }
        let received = if self.receive_fifo_full() {
            self.receive_status |= RSR_OE;
            self.overrun_pending = true;
            self.raw_interrupts |= INT_OE;
            Err(Dropped::Overrun)
        } else {
            let errors = if core::mem::take(&mut self.overrun_pending) {
                DR_OE
            } else {
                0
            };
            self.received.push((u32::from(byte) | errors) as u16);
            Ok(())
        };
        self.update_receive_interrupts(true);
        received
    }

    /// Whether [`Pl011::receive`] would queue a byte now; when it would not, the caller can
    /// hold its bytes back instead of losing them.
    pub fn can_receive(&self) -> bool {
        self.receiver_enabled() && !self.receive_fifo_full()
    }

    /// The interrupt line's level: high while an unmasked interrupt is pending.
    pub fn interrupt_line(&self) -> bool {
        self.masked_interrupts() != 0
    }

    /// The interrupt line's new level if it differs from what the last call reported (low at
    /// first): the caller forwards only real changes to the interrupt controller.
    pub fn take_line_change(&mut self) -> Option<bool> {
        let level = self.interrupt_line();
        if level == self.reported_line {
            return None;
        }
        self.reported_line = level;
        Some(level)
    }

    fn transmitter_enabled(&self) -> bool {
        self.cr & (CR_UARTEN | CR_TXE) == CR_UARTEN | CR_TXE
    }

    fn receiver_enabled(&self) -> bool {
        self.cr & (CR_UARTEN | CR_RXE) == CR_UARTEN | CR_RXE
    }

    fn fifos_enabled(&self) -> bool {
        self.lcr_h & LCR_H_FEN != 0
    }

    fn receive_fifo_full(&self) -> bool {
        let capacity = if self.fifos_enabled() {
            RX_FIFO_DEPTH
        } else {
            1
        };
        self.received.len >= capacity
    }

    /// Entries at which RXIS is raised (`UARTIFLS` RXIFLSEL, bits 5:3).
    fn receive_trigger(&self) -> usize {
        if !self.fifos_enabled() {
            return 1;
        }
        match (self.ifls >> 3) & 0x7 {
            0 => 2,
            1 => 4,
            2 => 8,
            3 => 12,
            // 7/8; the reserved values act as it.
            _ => 14,
        }
    }

    fn masked_interrupts(&self) -> u32 {
        self.raw_interrupts & self.imsc
    }

    fn flags(&self) -> u32 {
        let mut flags = FR_TXFE;
        if self.received.len == 0 {
            flags |= FR_RXFE;
        }
        if self.receive_fifo_full() {
            flags |= FR_RXFF;
        }
        flags
    }

    /// `UARTDR` read: the oldest entry, whose errors `UARTRSR` then shows (OE stays until
    /// cleared); 0 when there is none.
    fn read_data(&mut self) -> u32 {
        let Some(entry) = self.received.pop() else {
            return 0;
        };
        let entry = u32::from(entry);
        self.receive_status = (self.receive_status & RSR_OE) | (entry >> 8);
        self.update_receive_interrupts(false);
        entry
    }

    /// RXIS and RTIS after a byte arrived (`arrived`, even if lost) or an entry was read.
    fn update_receive_interrupts(&mut self, arrived: bool) {
        let level = self.received.len;
        if level >= self.receive_trigger() {
            // Only an arrival reaches the trigger; a read leaves RXIS as it was (maybe
            // cleared by ICR).
            if arrived {
                self.raw_interrupts |= INT_RX;
            }
        } else {
            self.raw_interrupts &= !INT_RX;
            // Waiting data that will not reach the trigger: the receive timeout, at once.
            if level > 0 {
                self.raw_interrupts |= INT_RT;
            }
        }
        if level == 0 {
            self.raw_interrupts &= !INT_RT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn write(uart: &mut Pl011, offset: u64, size: u8, value: u64) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        uart.write(offset, size, value, |line| lines.push(line.to_vec()))
            .unwrap();
        lines
    }

    /// A 32-bit register read.
    fn reg(uart: &mut Pl011, offset: u64) -> u32 {
        uart.read(offset, 4).unwrap() as u32
    }

    const ENABLED: u64 = (CR_UARTEN | CR_TXE | CR_RXE) as u64;

    /// An enabled UART with nothing pending, FIFOs on or off, with RX trigger selection
    /// `rx_level` (IFLS bits 5:3).
    fn enabled(fifos: bool, rx_level: u64) -> Pl011 {
        let mut uart = Pl011::new();
        let lcr_h = 0x60 | if fifos { u64::from(LCR_H_FEN) } else { 0 };
        write(&mut uart, UARTLCR_H, 4, lcr_h);
        write(&mut uart, UARTIFLS, 4, (rx_level << 3) | 0x2);
        write(&mut uart, UARTCR, 4, ENABLED);
        // Nothing pending (enabling the transmitter raised TXIS).
        write(&mut uart, UARTICR, 4, u64::from(INT_ALL));
        uart
    }

    #[test]
    fn transmits_lines() {
        let mut uart = Pl011::new();
        for byte in b"hi\r" {
            assert!(write(&mut uart, UARTDR, 4, u64::from(*byte)).is_empty());
        }
        // Only the low byte of the data register counts.
        assert_eq!(write(&mut uart, UARTDR, 4, 0xF0A), [b"hi".to_vec()]);
        // Byte and halfword writes to DR (earlycon drivers) work as well.
        write(&mut uart, UARTDR, 1, u64::from(b'x'));
        write(&mut uart, UARTDR, 2, u64::from(b'y'));
        let mut lines = Vec::new();
        uart.flush(|line| lines.push(line.to_vec()));
        assert_eq!(lines, [b"xy".to_vec()]);
    }

    #[test]
    fn flags_never_make_a_writer_wait() {
        let mut uart = Pl011::new();
        assert_eq!(uart.read(UARTFR, 4), Ok(0x90));
        for enable in [false, true] {
            if enable {
                write(&mut uart, UARTCR, 4, ENABLED);
            }
            for _ in 0..1000 {
                write(&mut uart, UARTDR, 4, u64::from(b'a'));
                let fr = reg(&mut uart, UARTFR);
                assert_eq!(fr & (FR_BUSY | FR_TXFF), 0);
                assert_eq!(fr, FR_TXFE | FR_RXFE);
            }
        }
        assert_eq!(uart.read(UARTFR, 1), Ok(0x90));
        // Read-only: a write changes nothing.
        write(&mut uart, UARTFR, 4, 0xFFFF_FFFF);
        assert_eq!(uart.read(UARTFR, 4), Ok(0x90));
    }

    #[test]
    fn reset_values() {
        let mut uart = Pl011::default();
        let expected = [
            (UARTDR, 0),
            (UARTRSR_ECR, 0),
            (UARTFR, 0x90),
            (UARTILPR, 0),
            (UARTIBRD, 0),
            (UARTFBRD, 0),
            (UARTLCR_H, 0),
            (UARTCR, 0x300),
            (UARTIFLS, 0x12),
            (UARTIMSC, 0),
            (UARTRIS, 0),
            (UARTMIS, 0),
            (UARTICR, 0),
            (UARTDMACR, 0),
        ];
        for (offset, value) in expected {
            assert_eq!(uart.read(offset, 4), Ok(value), "{offset:#x}");
        }
        assert!(!uart.interrupt_line());
        assert_eq!(uart.take_line_change(), None);
        // Disabled at reset.
        assert!(!uart.can_receive());
    }

    #[test]
    fn control_registers_read_back_within_their_width() {
        let mut uart = Pl011::new();
        let registers = [
            (UARTILPR, 0xFF),
            (UARTIBRD, 0xFFFF),
            (UARTFBRD, 0x3F),
            (UARTLCR_H, 0xFF),
            (UARTCR, 0xFFFF),
            (UARTIFLS, 0x3F),
            (UARTIMSC, 0x7FF),
            (UARTDMACR, 0x7),
        ];
        for (offset, mask) in registers {
            write(&mut uart, offset, 4, 0xDEAD_BEEF);
            assert_eq!(uart.read(offset, 4), Ok(0xDEAD_BEEF & mask), "{offset:#x}");
            write(&mut uart, offset, 4, 0x5);
            assert_eq!(uart.read(offset, 4), Ok(0x5), "{offset:#x}");
        }
        // Linux's start-up sequence: LCR_H, IBRD/FBRD, CR with UARTEN | TXE | RXE.
        write(&mut uart, UARTIBRD, 4, 13);
        write(&mut uart, UARTFBRD, 4, 1);
        write(&mut uart, UARTLCR_H, 4, 0x70);
        write(&mut uart, UARTCR, 4, 0x301);
        assert_eq!(uart.read(UARTCR, 4), Ok(0x301));
        assert_eq!(uart.read(UARTLCR_H, 4), Ok(0x70));
        // Clearing interrupts and errors leaves nothing pending.
        write(&mut uart, UARTICR, 4, 0x7FF);
        write(&mut uart, UARTRSR_ECR, 4, 0xF);
        assert_eq!(uart.read(UARTRIS, 4), Ok(0));
        assert_eq!(uart.read(UARTMIS, 4), Ok(0));
        assert_eq!(uart.read(UARTRSR_ECR, 4), Ok(0));
    }

    #[test]
    fn identification_registers() {
        let mut uart = Pl011::new();
        let ids: Vec<u64> = (0..8)
            .map(|n| uart.read(UARTPERIPHID0 + 4 * n, 4).unwrap())
            .collect();
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]);
        write(&mut uart, 0xFE0, 4, 0);
        assert_eq!(uart.read(0xFE0, 4), Ok(0x11));
        assert_eq!(uart.read(0xFFC, 1), Ok(0xB1));
    }

    #[test]
    fn narrow_accesses() {
        let mut uart = Pl011::new();
        write(&mut uart, UARTIBRD, 4, 0x1234);
        assert_eq!(uart.read(UARTIBRD, 1), Ok(0x34));
        assert_eq!(uart.read(UARTIBRD, 2), Ok(0x1234));
        // A narrow write writes the whole register.
        write(&mut uart, UARTIBRD, 1, 0x56);
        assert_eq!(uart.read(UARTIBRD, 4), Ok(0x56));
        write(&mut uart, UARTCR, 2, 0x0301);
        assert_eq!(uart.read(UARTCR, 4), Ok(0x301));
        // A narrow DR read takes an entry as a full one does.
        write(&mut uart, UARTLCR_H, 4, 0x70);
        uart.receive(b'a').unwrap();
        uart.receive(b'b').unwrap();
        assert_eq!(uart.read(UARTDR, 1), Ok(u64::from(b'a')));
        assert_eq!(uart.read(UARTDR, 2), Ok(u64::from(b'b')));
        assert_eq!(uart.read(UARTDR, 1), Ok(0));
    }

    #[test]
    fn reserved_offsets_are_read_as_zero_write_ignored() {
        let mut uart = Pl011::new();
        for offset in [0x008, 0x014, 0x01C, 0x04C, 0x080, 0xFDC, 0x1000, 0x1FFC] {
            write(&mut uart, offset, 4, 0xFFFF_FFFF);
            assert_eq!(uart.read(offset, 4), Ok(0), "{offset:#x}");
        }
        assert_eq!(uart.read(UARTCR, 4), Ok(u64::from(CR_RESET)));
    }

    #[test]
    fn bad_accesses_are_refused() {
        let mut uart = Pl011::new();
        assert_eq!(uart.read(UARTFR, 8), Err(BadAccess::Size));
        assert_eq!(uart.read(UARTFR, 3), Err(BadAccess::Size));
        assert_eq!(uart.read(UARTFR + 1, 1), Err(BadAccess::Misaligned));
        assert_eq!(uart.read(UARTFR + 2, 2), Err(BadAccess::Misaligned));
        assert_eq!(
            uart.write(UARTDR, 8, u64::from(b'a'), |_| panic!("transmitted")),
            Err(BadAccess::Size)
        );
        assert_eq!(
            uart.write(UARTDR + 1, 1, u64::from(b'\n'), |_| panic!("transmitted")),
            Err(BadAccess::Misaligned)
        );
        // Nothing was transmitted by the refused writes.
        let mut lines = Vec::new();
        uart.flush(|line| lines.push(line.to_vec()));
        assert!(lines.is_empty());

        // A refused access changes nothing: no entry taken, no interrupt cleared or raised.
        let mut uart = enabled(true, 2);
        write(&mut uart, UARTIMSC, 4, u64::from(INT_ALL));
        uart.receive(b'z').unwrap();
        let ris = reg(&mut uart, UARTRIS);
        assert_eq!(uart.read(UARTDR, 8), Err(BadAccess::Size));
        assert_eq!(uart.read(UARTDR + 2, 2), Err(BadAccess::Misaligned));
        let clear = u64::from(INT_ALL);
        assert_eq!(uart.write(UARTICR, 8, clear, |_| {}), Err(BadAccess::Size));
        assert_eq!(
            uart.write(UARTICR + 1, 1, clear, |_| {}),
            Err(BadAccess::Misaligned)
        );
        assert_eq!(uart.write(UARTDR, 3, 0, |_| {}), Err(BadAccess::Size));
        assert_eq!(reg(&mut uart, UARTRIS), ris);
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'z'));
    }

    #[test]
    fn receive_fifo_keeps_order_and_holds_sixteen() {
        let mut uart = enabled(true, 2);
        for n in 0..16u8 {
            assert!(uart.can_receive());
            assert_eq!(uart.receive(b'a' + n), Ok(()));
            let fr = reg(&mut uart, UARTFR);
            assert_eq!(fr & FR_RXFE, 0);
            assert_eq!(fr & FR_RXFF != 0, n == 15, "{n}");
        }
        assert!(!uart.can_receive());
        for n in 0..16u8 {
            assert_eq!(reg(&mut uart, UARTFR) & FR_RXFE, 0);
            assert_eq!(reg(&mut uart, UARTDR), u32::from(b'a' + n));
            assert_eq!(reg(&mut uart, UARTFR) & FR_RXFF, 0);
        }
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
        // Empty: reads 0, and RSR shows no errors.
        assert_eq!(reg(&mut uart, UARTDR), 0);
        assert_eq!(reg(&mut uart, UARTRSR_ECR), 0);
        // The ring wraps around.
        for n in 0..40u8 {
            uart.receive(n).unwrap();
            uart.receive(n.wrapping_mul(3)).unwrap();
            assert_eq!(reg(&mut uart, UARTDR), u32::from(n));
            assert_eq!(reg(&mut uart, UARTDR), u32::from(n.wrapping_mul(3)));
        }
    }

    #[test]
    fn with_fifos_disabled_one_entry_is_held() {
        let mut uart = enabled(false, 2);
        assert!(uart.can_receive());
        uart.receive(b'1').unwrap();
        assert!(!uart.can_receive());
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFF);
        assert_eq!(uart.receive(b'2'), Err(Dropped::Overrun));
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'1'));
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
        assert!(uart.can_receive());
        // The next byte tells of the lost one.
        uart.receive(b'3').unwrap();
        assert_eq!(reg(&mut uart, UARTDR), DR_OE | u32::from(b'3'));

        // Turning FEN off keeps the entries: full until read.
        let mut uart = enabled(true, 2);
        for byte in *b"xyz" {
            uart.receive(byte).unwrap();
        }
        write(&mut uart, UARTLCR_H, 4, 0x60);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFF);
        assert_eq!(uart.receive(b'!'), Err(Dropped::Overrun));
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'x'));
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'y'));
        assert!(!uart.can_receive());
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'z'));
        assert!(uart.can_receive());
    }

    #[test]
    fn overrun_loses_the_byte_and_flags_it() {
        let mut uart = enabled(true, 2);
        for n in 0..16 {
            uart.receive(n).unwrap();
        }
        assert_eq!(reg(&mut uart, UARTRIS) & INT_OE, 0);
        assert_eq!(uart.receive(0xEE), Err(Dropped::Overrun));
        assert_eq!(uart.receive(0xEF), Err(Dropped::Overrun));
        // RSR.OE and OEIS at once; the entries already queued are intact.
        assert_eq!(reg(&mut uart, UARTRSR_ECR), RSR_OE);
        assert_ne!(reg(&mut uart, UARTRIS) & INT_OE, 0);
        for n in 0..16 {
            assert_eq!(reg(&mut uart, UARTDR), n);
        }
        // OE stays in RSR until cleared through ECR.
        assert_eq!(reg(&mut uart, UARTRSR_ECR), RSR_OE);
        write(&mut uart, UARTRSR_ECR, 4, 0);
        assert_eq!(reg(&mut uart, UARTRSR_ECR), 0);
        // The next byte queued carries DR.OE (and RSR shows it once read); the lost ones
        // never appear.
        uart.receive(b'n').unwrap();
        uart.receive(b'm').unwrap();
        assert_eq!(reg(&mut uart, UARTDR), DR_OE | u32::from(b'n'));
        assert_eq!(reg(&mut uart, UARTRSR_ECR), RSR_OE);
        write(&mut uart, UARTRSR_ECR, 1, 0xFF);
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'm'));
        assert_eq!(reg(&mut uart, UARTRSR_ECR), 0);
        assert_eq!(reg(&mut uart, UARTDR), 0);
        // OEIS until ICR clears it.
        assert_ne!(reg(&mut uart, UARTRIS) & INT_OE, 0);
        write(&mut uart, UARTICR, 4, u64::from(INT_OE));
        assert_eq!(reg(&mut uart, UARTRIS) & INT_OE, 0);
    }

    #[test]
    fn disabled_receiver_drops_bytes() {
        for cr in [CR_RESET, CR_UARTEN | CR_TXE, CR_RXE | CR_TXE, 0] {
            let mut uart = Pl011::new();
            write(&mut uart, UARTLCR_H, 4, 0x70);
            write(&mut uart, UARTIMSC, 4, u64::from(INT_ALL));
            write(&mut uart, UARTCR, 4, u64::from(cr));
            write(&mut uart, UARTICR, 4, u64::from(INT_ALL));
            assert!(!uart.can_receive(), "{cr:#x}");
            assert_eq!(uart.receive(b'a'), Err(Dropped::Disabled), "{cr:#x}");
            assert_eq!(reg(&mut uart, UARTFR) & FR_RXFE, FR_RXFE);
            assert_eq!(reg(&mut uart, UARTRIS), 0);
            assert_eq!(reg(&mut uart, UARTRSR_ECR), 0);
            assert_eq!(reg(&mut uart, UARTDR), 0);
        }
        // Disabling keeps what was received.
        let mut uart = enabled(true, 2);
        uart.receive(b'k').unwrap();
        write(&mut uart, UARTCR, 4, u64::from(CR_UARTEN | CR_TXE));
        assert_eq!(uart.receive(b'l'), Err(Dropped::Disabled));
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'k'));
        assert_eq!(reg(&mut uart, UARTDR), 0);
    }

    #[test]
    fn rx_interrupt_at_each_trigger_level() {
        let levels = [(0, 2), (1, 4), (2, 8), (3, 12), (4, 14), (5, 14), (7, 14)];
        for (rx_level, trigger) in levels {
            let mut uart = enabled(true, rx_level);
            for n in 1..=16 {
                uart.receive(b'.').unwrap();
                let rx = reg(&mut uart, UARTRIS) & INT_RX != 0;
                assert_eq!(rx, n >= trigger, "IFLS {rx_level}, {n} entries");
            }
            // Reading clears it once the level drops below the trigger.
            for n in (0..16).rev() {
                reg(&mut uart, UARTDR);
                let rx = reg(&mut uart, UARTRIS) & INT_RX != 0;
                assert_eq!(rx, n >= trigger, "IFLS {rx_level}, {n} left");
            }
        }
        // FIFOs off: every byte.
        let mut uart = enabled(false, 4);
        uart.receive(b'.').unwrap();
        assert_eq!(reg(&mut uart, UARTRIS), INT_RX);
        reg(&mut uart, UARTDR);
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // ICR clears it; a read does not raise it again, the next byte at or above the
        // trigger does.
        let mut uart = enabled(true, 0);
        for _ in 0..3 {
            uart.receive(b'.').unwrap();
        }
        write(&mut uart, UARTICR, 4, u64::from(INT_RX));
        assert_eq!(reg(&mut uart, UARTRIS) & INT_RX, 0);
        reg(&mut uart, UARTDR);
        assert_eq!(reg(&mut uart, UARTRIS) & INT_RX, 0);
        uart.receive(b'.').unwrap();
        assert_ne!(reg(&mut uart, UARTRIS) & INT_RX, 0);
    }

    #[test]
    fn receive_timeout_for_data_below_the_trigger() {
        // Trigger at 2 entries.
        let mut uart = enabled(true, 0);
        // A single typed character: RTIS, not RXIS.
        uart.receive(b'q').unwrap();
        assert_eq!(reg(&mut uart, UARTRIS), INT_RT);
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'q'));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // Above the trigger RTIS stays as it was; a read leaving data below it raises it;
        // emptying the FIFO clears it.
        for byte in *b"abc" {
            uart.receive(byte).unwrap();
        }
        write(&mut uart, UARTICR, 4, u64::from(INT_RT));
        assert_eq!(reg(&mut uart, UARTRIS), INT_RX);
        reg(&mut uart, UARTDR);
        assert_eq!(reg(&mut uart, UARTRIS), INT_RX);
        reg(&mut uart, UARTDR);
        assert_eq!(reg(&mut uart, UARTRIS), INT_RT);
        reg(&mut uart, UARTDR);
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // ICR clears it with data left.
        uart.receive(b'r').unwrap();
        write(&mut uart, UARTICR, 4, u64::from(INT_RT));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        assert_eq!(reg(&mut uart, UARTFR) & FR_RXFE, 0);
    }

    #[test]
    fn masked_status_is_raw_status_under_the_mask() {
        let mut uart = enabled(true, 0);
        write(&mut uart, UARTDR, 4, u64::from(b'x'));
        for n in 0..17 {
            let _ = uart.receive(n);
        }
        // RTIS from the first byte, below the trigger.
        let raw = INT_RX | INT_TX | INT_RT | INT_OE;
        assert_eq!(reg(&mut uart, UARTRIS), raw);
        for mask in [
            0,
            INT_RX,
            INT_TX,
            INT_RT,
            INT_OE,
            INT_RX | INT_OE,
            0xF,
            INT_ALL,
        ] {
            write(&mut uart, UARTIMSC, 4, u64::from(mask));
            assert_eq!(reg(&mut uart, UARTMIS), raw & mask, "{mask:#x}");
            assert_eq!(uart.interrupt_line(), raw & mask != 0, "{mask:#x}");
            // Masking keeps the raw status.
            assert_eq!(reg(&mut uart, UARTRIS), raw);
        }
        // Read-only.
        write(&mut uart, UARTMIS, 4, 0);
        write(&mut uart, UARTRIS, 4, 0);
        assert_eq!(reg(&mut uart, UARTMIS), raw);
        assert_eq!(reg(&mut uart, UARTRIS), raw);
    }

    #[test]
    fn interrupt_clear_clears_only_the_bits_written() {
        let mut uart = enabled(true, 0);
        write(&mut uart, UARTIMSC, 4, u64::from(INT_ALL));
        write(&mut uart, UARTDR, 4, u64::from(b'x'));
        for n in 0..17 {
            let _ = uart.receive(b'A' + n);
        }
        let raw = INT_RX | INT_TX | INT_RT | INT_OE;
        assert_eq!(reg(&mut uart, UARTRIS), raw);
        write(&mut uart, UARTICR, 4, u64::from(INT_TX));
        assert_eq!(reg(&mut uart, UARTRIS), raw & !INT_TX);
        // Bits that are not pending, and bits beyond the register, change nothing.
        let absent = u64::from(INT_FE | INT_PE | INT_BE | 0xF) | 0xFFFF_F800;
        write(&mut uart, UARTICR, 4, absent);
        assert_eq!(reg(&mut uart, UARTRIS), raw & !INT_TX);
        write(&mut uart, UARTICR, 2, u64::from(INT_RX | INT_RT | INT_OE));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        assert_eq!(reg(&mut uart, UARTMIS), 0);
        assert!(!uart.interrupt_line());
        // Write-only.
        assert_eq!(reg(&mut uart, UARTICR), 0);
        // Clearing does not lose the data.
        assert_eq!(reg(&mut uart, UARTDR), u32::from(b'A'));
    }

    #[test]
    fn tx_interrupt_on_write_and_on_enabling() {
        let mut uart = Pl011::new();
        write(&mut uart, UARTIMSC, 4, u64::from(INT_TX));
        // Disabled: transmitted all the same, but no interrupt.
        write(&mut uart, UARTDR, 4, u64::from(b'a'));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // Enabling the transmitter: the (empty) FIFO is at the trigger.
        write(&mut uart, UARTCR, 4, u64::from(CR_UARTEN));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        write(&mut uart, UARTCR, 4, u64::from(CR_UARTEN | CR_TXE));
        assert_eq!(reg(&mut uart, UARTMIS), INT_TX);
        write(&mut uart, UARTICR, 4, u64::from(INT_TX));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // Writing CR again while enabled is no new edge.
        write(&mut uart, UARTCR, 4, ENABLED);
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // Every byte written: the FIFO drained past the trigger again.
        for byte in *b"bc" {
            write(&mut uart, UARTDR, 4, u64::from(byte));
            assert_eq!(reg(&mut uart, UARTMIS), INT_TX);
            write(&mut uart, UARTICR, 4, u64::from(INT_TX));
        }
        // Disabling and enabling again is an edge.
        write(&mut uart, UARTCR, 4, u64::from(CR_UARTEN | CR_RXE));
        write(&mut uart, UARTDR, 4, u64::from(b'd'));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        write(&mut uart, UARTCR, 4, ENABLED);
        assert_eq!(reg(&mut uart, UARTRIS), INT_TX);
        let mut lines = Vec::new();
        uart.flush(|line| lines.push(line.to_vec()));
        assert_eq!(lines, [b"abcd".to_vec()]);
    }

    #[test]
    fn line_changes_are_reported_once() {
        let mut uart = enabled(true, 2);
        write(&mut uart, UARTIMSC, 4, u64::from(INT_RX | INT_RT));
        assert_eq!(uart.take_line_change(), None);
        uart.receive(b'a').unwrap();
        assert!(uart.interrupt_line());
        assert_eq!(uart.take_line_change(), Some(true));
        assert_eq!(uart.take_line_change(), None);
        // Still high (RTIS, then RXIS): no change.
        uart.receive(b'b').unwrap();
        uart.receive(b'c').unwrap();
        assert_eq!(uart.take_line_change(), None);
        for _ in 0..3 {
            reg(&mut uart, UARTDR);
        }
        assert!(!uart.interrupt_line());
        assert_eq!(uart.take_line_change(), Some(false));
        assert_eq!(uart.take_line_change(), None);
        // Up and down again between two calls: nothing to forward.
        uart.receive(b'd').unwrap();
        reg(&mut uart, UARTDR);
        assert_eq!(uart.take_line_change(), None);
        // Masking and unmasking move the line too.
        uart.receive(b'e').unwrap();
        assert_eq!(uart.take_line_change(), Some(true));
        write(&mut uart, UARTIMSC, 4, 0);
        assert_eq!(uart.take_line_change(), Some(false));
        write(&mut uart, UARTIMSC, 4, u64::from(INT_RT));
        assert_eq!(uart.take_line_change(), Some(true));
        write(&mut uart, UARTICR, 4, u64::from(INT_RT));
        assert_eq!(uart.take_line_change(), Some(false));
        assert_eq!(uart.take_line_change(), None);
    }

    /// What Linux's `amba-pl011` interrupt handler does: while MIS is not 0, clear the error
    /// interrupts, drain the receive FIFO on RXIS/RTIS, send at most half a FIFO on TXIS (and
    /// mask TXIM when nothing is left to send). Returns the console lines it completed.
    fn linux_interrupt(
        uart: &mut Pl011,
        typed: &mut Vec<u8>,
        to_send: &mut VecDeque<u8>,
    ) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut status = reg(uart, UARTMIS);
        let mut passes = 0;
        while status != 0 {
            passes += 1;
            assert!(passes < 256, "interrupt storm");
            let clear = status & !(INT_TX | INT_RT | INT_RX);
            write(uart, UARTICR, 4, u64::from(clear));
            if status & (INT_RT | INT_RX) != 0 {
                while reg(uart, UARTFR) & FR_RXFE == 0 {
                    typed.push(reg(uart, UARTDR) as u8);
                }
            }
            if status & INT_TX != 0 {
                for _ in 0..RX_FIFO_DEPTH / 2 {
                    if reg(uart, UARTFR) & FR_TXFF != 0 {
                        break;
                    }
                    let Some(byte) = to_send.pop_front() else {
                        break;
                    };
                    lines.extend(write(uart, UARTDR, 4, u64::from(byte)));
                }
                if to_send.is_empty() {
                    let imsc = reg(uart, UARTIMSC) & !INT_TX;
                    write(uart, UARTIMSC, 4, u64::from(imsc));
                }
            }
            status = reg(uart, UARTMIS);
        }
        lines
    }

    #[test]
    fn linux_driver_start_up_and_interrupts() {
        let mut uart = Pl011::new();
        // Start-up: clear and mask, FIFO levels, enable, drain, unmask RX; then termios.
        let errors_and_rx = INT_OE | INT_BE | INT_PE | INT_FE | INT_RT | INT_RX;
        write(&mut uart, UARTICR, 4, u64::from(errors_and_rx));
        let saved_mask = reg(&mut uart, UARTIMSC);
        assert_eq!(saved_mask, 0);
        write(&mut uart, UARTIMSC, 4, u64::from(INT_RT | INT_RX));
        write(&mut uart, UARTIFLS, 4, 0x12);
        write(&mut uart, UARTCR, 4, ENABLED);
        write(&mut uart, UARTICR, 4, u64::from(INT_RT | INT_RX));
        for _ in 0..32 {
            if reg(&mut uart, UARTFR) & FR_RXFE != 0 {
                break;
            }
            reg(&mut uart, UARTDR);
        }
        write(&mut uart, UARTIMSC, 4, u64::from(INT_RT | INT_RX));
        write(&mut uart, UARTLCR_H, 4, 0x70);
        write(&mut uart, UARTIBRD, 4, 1);
        write(&mut uart, UARTFBRD, 4, 40);
        // TXIS is pending from the enable but masked: the line stays low.
        assert_eq!(reg(&mut uart, UARTRIS), INT_TX);
        assert_eq!(uart.take_line_change(), None);

        let mut typed = Vec::new();
        let mut to_send = VecDeque::new();
        // One key: RTIS.
        uart.receive(b'l').unwrap();
        assert_eq!(uart.take_line_change(), Some(true));
        assert!(linux_interrupt(&mut uart, &mut typed, &mut to_send).is_empty());
        assert_eq!(uart.take_line_change(), Some(false));
        assert_eq!(typed, b"l");

        // A paste larger than the FIFO: the owner holds back what does not fit.
        let paste = b"ls -l /sys/class/tty\n";
        let mut pending: VecDeque<u8> = paste.iter().copied().collect();
        while !pending.is_empty() {
            while uart.can_receive() {
                let Some(byte) = pending.pop_front() else {
                    break;
                };
                uart.receive(byte).unwrap();
            }
            assert_eq!(uart.take_line_change(), Some(true));
            assert!(linux_interrupt(&mut uart, &mut typed, &mut to_send).is_empty());
            assert_eq!(uart.take_line_change(), Some(false));
        }
        assert_eq!(&typed[1..], paste);
        assert_eq!(reg(&mut uart, UARTRSR_ECR), 0);

        // Writing: start_tx fills the FIFO until TXFF, which never comes.
        for byte in *b"# " {
            write(&mut uart, UARTDR, 4, u64::from(byte));
        }
        assert_eq!(reg(&mut uart, UARTFR) & FR_TXFF, 0);
        assert_eq!(uart.take_line_change(), None);
        // Interrupt-driven writing (unmasking TXIM with more queued) goes on until done.
        to_send.extend(b"console output of forty-two bytes or so\r\n");
        write(&mut uart, UARTIMSC, 4, u64::from(INT_RT | INT_RX | INT_TX));
        assert_eq!(uart.take_line_change(), Some(true));
        let mut lines = Vec::new();
        uart.flush(|line| lines.push(line.to_vec()));
        lines.extend(linux_interrupt(&mut uart, &mut typed, &mut to_send));
        assert!(to_send.is_empty());
        assert_eq!(reg(&mut uart, UARTIMSC), INT_RT | INT_RX);
        assert_eq!(uart.take_line_change(), Some(false));
        uart.flush(|line| lines.push(line.to_vec()));
        assert_eq!(
            lines,
            [
                b"# ".to_vec(),
                b"console output of forty-two bytes or so".to_vec()
            ]
        );
    }

    /// Random accesses, receives and line queries: no panic, and the invariants hold.
    #[test]
    fn random_accesses_keep_the_invariants() {
        const OFFSETS: [u64; 16] = [
            UARTDR,
            UARTRSR_ECR,
            UARTFR,
            UARTILPR,
            UARTIBRD,
            UARTFBRD,
            UARTLCR_H,
            UARTCR,
            UARTIFLS,
            UARTIMSC,
            UARTRIS,
            UARTMIS,
            UARTICR,
            UARTDMACR,
            0xFE0,
            0xFFC,
        ];
        const SIZES: [u8; 7] = [4, 4, 4, 1, 2, 8, 3];
        for seed in [1u64, 0x9E37_79B9_7F4A_7C15, 0xDEAD_BEEF] {
            let mut state = seed;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let mut uart = Pl011::new();
            let mut queued = VecDeque::new();
            let mut reported = false;
            for step in 0..50_000 {
                let choice = next();
                let offset = match next() % 8 {
                    0 => next() % 0x1008,
                    _ => OFFSETS[(next() % 16) as usize],
                };
                let size = SIZES[(next() % 7) as usize];
                match choice % 6 {
                    0 | 1 => {
                        let read = uart.read(offset, size);
                        if offset == UARTDR
                            && let Ok(value) = read
                        {
                            let expected = queued.pop_front().map_or(0, u64::from);
                            assert_eq!(value & 0xFF, expected, "step {step}");
                        }
                    }
                    2 => {
                        // Mostly values that enable things.
                        let value = match next() % 3 {
                            0 => next(),
                            1 => next() | ENABLED | u64::from(LCR_H_FEN),
                            _ => next() & 0x7FF,
                        };
                        let _ = uart.write(offset, size, value, |_| {});
                    }
                    3 | 4 => {
                        let byte = next() as u8;
                        let could = uart.can_receive();
                        let received = uart.receive(byte);
                        assert_eq!(received.is_ok(), could, "step {step}");
                        if received.is_ok() {
                            queued.push_back(byte);
                        }
                    }
                    _ => {
                        let line = uart.interrupt_line();
                        let change = uart.take_line_change();
                        assert_eq!(change, (line != reported).then_some(line), "step {step}");
                        reported = line;
                    }
                }
                let ris = reg(&mut uart, UARTRIS);
                let imsc = reg(&mut uart, UARTIMSC);
                let mis = reg(&mut uart, UARTMIS);
                assert_eq!(mis, ris & imsc, "step {step}");
                assert_eq!(uart.interrupt_line(), mis != 0, "step {step}");
                assert_eq!(ris & !(INT_RX | INT_TX | INT_RT | INT_OE), 0, "step {step}");
                let fr = reg(&mut uart, UARTFR);
                assert_eq!(fr & (FR_TXFE | FR_TXFF | FR_BUSY), FR_TXFE, "step {step}");
                assert_eq!(fr & FR_RXFE != 0, queued.is_empty(), "step {step}");
                assert!(queued.len() <= RX_FIFO_DEPTH, "step {step}");
                if queued.is_empty() {
                    assert_eq!(ris & (INT_RX | INT_RT), 0, "step {step}");
                }
            }
        }
    }
}
