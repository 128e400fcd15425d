//! An emulated ARM PrimeCell UART (PL011 r1p5, ARM DDI 0183) with its FIFOs and
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
//!   and earlycon drivers that write without enabling the UART keep working — and adds an
//!   entry to the transmit FIFO's level (below). A read pops the oldest receive FIFO
//!   entry: the byte in bits 7:0, its error flags FE, PE, BE, OE in bits 8..11 (only OE is
//!   ever set: on the first byte queued after bytes were lost); an empty FIFO reads 0.
//! - `UARTRSR/UARTECR` (0x004): reads the error flags of the entry last read from DR (bits
//!   3:0); OE (bit 3) is also set as soon as a byte is lost, and stays set until cleared. Any
//!   write clears them all.
//! - `UARTFR` (0x018): TXFE (bit 7) while the transmit FIFO is empty, TXFF (bit 5) while it
//!   is full, BUSY (bit 3) while it is not empty; RXFE (bit 4) while the receive FIFO is
//!   empty, RXFF (bit 6) while it is full. CTS, DSR, DCD and RI read 0.
//! - The transmit FIFO holds 16 entries when `UARTLCR_H.FEN` (bit 4) is set, 1 (a holding
//!   register) when it is clear. Bytes never wait in it (they are out already): it only keeps
//!   a level, which paces the guest as a real FIFO would. There is no clock to empty it, so
//!   the guest's accesses stand in for time:
//!   - a DR write adds 1 to the level; a write to a full FIFO is transmitted all the same and
//!     the level stays at full (output is never dropped);
//!   - an FR read that finds the FIFO not full leaves it as it is — unless the guest's
//!     previous access was an FR read too: then the FIFO empties before this read reports;
//!   - an FR read that finds the FIFO full reports TXFF, then the FIFO empties;
//!   - every other access (any other register, read or written, and FR writes) empties it
//!     first, then takes effect. A refused access ([`BadAccess`]) changes nothing.
//!
//!   Why: Linux's `amba-pl011` driver starts transmitting by reading FR before each byte and
//!   writing while TXFF is clear, and unmasks its transmit interrupt (TXIM) only when it finds
//!   the FIFO full; with a FIFO that is always empty it never transmits by interrupt. With
//!   these rules it fills the FIFO and unmasks TXIM (the access empties the FIFO: TXIS); its
//!   interrupt handler writes half a FIFO without reading FR, then reads MIS, which empties
//!   the FIFO and raises TXIS again, so it goes on while it has data and masks TXIM when it
//!   has none. And no polling writer waits for long: one that waits for TXFF to clear before
//!   each byte finds room on its next read; one that waits for BUSY (or TXFE) after writing,
//!   as Linux's earlycon and console do, finds the FIFO empty on its second read in a row
//!   (which is why FR reads in a row empty it: without that it would wait forever).
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
//!   - TXIS (bit 5) by the transmit FIFO falling to its trigger level or below: `UARTIFLS`
//!     bits 2:0 = 0, 1, 2, 3, 4 select 2, 4, 8, 12, 14 entries (the reserved 5..7 act as 4);
//!     with FEN clear, an empty holding register. Set when the FIFO empties with entries in it
//!     (the level falls to 0, at or below any trigger), and when a `UARTCR` write enables the
//!     transmitter (UARTEN and TXE, bit 8; the FIFO is empty then). Cleared by a DR write that
//!     takes the level above the trigger, and by ICR. Only an enabled transmitter raises it:
//!     DR writes with the transmitter disabled (still transmitted) raise nothing. Without a
//!     clock, a guest that waits for TXIS with the level above the trigger, and does not touch
//!     the UART meanwhile, waits until its next access (Linux does not: it writes half a FIFO
//!     per pass at a trigger of half, and reads MIS after each pass).
//!   - OEIS (bit 10) by a byte lost to a full FIFO.
//!   - FEIS, PEIS, BEIS (bits 7..9) and the modem interrupts (bits 0..3) are never raised.
//! - `UARTILPR`, `UARTIBRD`, `UARTFBRD`, `UARTLCR_H`, `UARTCR`, `UARTIFLS`, `UARTIMSC`,
//!   `UARTDMACR`: read back what was last written, cut to the register's width, or the reset
//!   value (`UARTCR` 0x0300, `UARTIFLS` 0x12, the rest 0). Beyond what is described above
//!   (FEN, UARTEN, TXE, RXE, the trigger levels, the mask) they change nothing: no loopback,
//!   flow control, break, baud rate or DMA.
//! - `UARTPeriphID0..3`, `UARTPCellID0..3` (0xFE0..0xFFC): 0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0,
//!   0x05, 0xB1 (part 0x011, designer ARM, revision 1: what QEMU's model reports; Linux then
//!   assumes a 16-byte FIFO); writes are ignored.
//! - Every other offset (reserved, test registers, and beyond 0x1000 in a larger window) reads
//!   as zero and ignores writes.
//!
//! Reset is a new model ([`Pl011::default`]): registers at their reset values, FIFOs empty, no
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
/// Overrun error interrupt. (Framing, parity and break errors, bits 7 to 9, are never raised.)
pub const INT_OE: u32 = 1 << 10;
/// Every bit of the interrupt registers (the modem interrupts, bits 0..3, are never raised).
pub const INT_ALL: u32 = 0x7FF;

/// Entries of the receive FIFO when FIFOs are enabled.
pub const RX_FIFO_DEPTH: usize = 16;
/// Entries of the transmit FIFO when FIFOs are enabled.
pub const TX_FIFO_DEPTH: usize = 16;

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
    /// Entries in the transmit FIFO (bytes already sent, see the module docs), at most its
    /// depth.
    transmit_level: usize,
    /// The guest's last accepted access was an FR read: a writer waiting for the transmitter.
    flags_read_last: bool,
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

/// Entries a `UARTIFLS` level selection (3 bits) stands for: 1/8, 1/4, 1/2, 3/4, 7/8 of a
/// 16-entry FIFO; the reserved values act as 7/8.
fn trigger_entries(select: u32) -> usize {
    match select & 0x7 {
        0 => 2,
        1 => 4,
        2 => 8,
        3 => 12,
        _ => 14,
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
            transmit_level: 0,
            flags_read_last: false,
            raw_interrupts: 0,
            reported_line: false,
            line: LineBuffer::new(),
        }
    }

    /// A read of `size` bytes at `offset` into the register block: the value read (its low
    /// `size` bytes). A read of `UARTDR` takes the oldest received entry; a read may empty the
    /// transmit FIFO (see the module docs).
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, BadAccess> {
        check(offset, size)?;
        let flags_read = offset == UARTFR;
        if !flags_read {
            self.drain_transmit_fifo();
        }
        let value = match offset {
            UARTDR => self.read_data(),
            UARTRSR_ECR => self.receive_status,
            UARTFR => self.read_flags(),
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
        self.flags_read_last = flags_read;
        Ok(truncate(u64::from(value), size))
    }

    /// A write of `value` (`size` bytes) at `offset`; `emit` gets every console line the write
    /// completes (see [`LineBuffer::push`]). A write other than to `UARTDR` empties the
    /// transmit FIFO first (see the module docs).
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        emit: impl FnMut(&[u8]),
    ) -> Result<(), BadAccess> {
        check(offset, size)?;
        let value = truncate(value, size) as u32;
        if offset != UARTDR {
            self.drain_transmit_fifo();
        }
        self.flags_read_last = false;
        match offset {
            UARTDR => {
                // Transmitted whatever UARTCR says (see the module docs), even into a full
                // FIFO: the level only paces the guest, output is never dropped.
                self.line.push(value as u8, emit);
                self.transmit_level = (self.transmit_level + 1).min(self.transmit_depth());
                if self.transmit_level > self.transmit_trigger() {
                    self.raw_interrupts &= !INT_TX;
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
                // Enabled with the FIFO empty (this write drained it): at or below the trigger.
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

    /// Entries the transmit FIFO holds: 1 (the holding register) with FIFOs disabled.
    fn transmit_depth(&self) -> usize {
        if self.fifos_enabled() {
            TX_FIFO_DEPTH
        } else {
            1
        }
    }

    fn transmit_fifo_full(&self) -> bool {
        self.transmit_level >= self.transmit_depth()
    }

    /// Entries at which RXIS is raised (`UARTIFLS` RXIFLSEL, bits 5:3).
    fn receive_trigger(&self) -> usize {
        if !self.fifos_enabled() {
            return 1;
        }
        trigger_entries(self.ifls >> 3)
    }

    /// Entries at or below which TXIS is raised (`UARTIFLS` TXIFLSEL, bits 2:0); with FIFOs
    /// disabled, an empty holding register.
    fn transmit_trigger(&self) -> usize {
        if !self.fifos_enabled() {
            return 0;
        }
        trigger_entries(self.ifls)
    }

    fn masked_interrupts(&self) -> u32 {
        self.raw_interrupts & self.imsc
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.transmit_level == 0 {
            flags |= FR_TXFE;
        } else {
            flags |= FR_BUSY;
        }
        if self.transmit_fifo_full() {
            flags |= FR_TXFF;
        }
        if self.received.len == 0 {
            flags |= FR_RXFE;
        }
        if self.receive_fifo_full() {
            flags |= FR_RXFF;
        }
        flags
    }

    /// `UARTFR` read, which paces a polling writer (see the module docs).
    fn read_flags(&mut self) -> u32 {
        // A second read in a row: the guest waits for the transmitter to finish.
        if self.flags_read_last {
            self.drain_transmit_fifo();
        }
        let flags = self.flags();
        // The writer has seen TXFF: by its next read the FIFO has room.
        if self.transmit_fifo_full() {
            self.drain_transmit_fifo();
        }
        flags
    }

    /// The transmit FIFO empties: without a clock, at the guest's accesses (see the module
    /// docs). The level falls to 0, at or below any trigger: TXIS.
    fn drain_transmit_fifo(&mut self) {
        if self.transmit_level == 0 {
            return;
        }
        self.transmit_level = 0;
        if self.transmitter_enabled() {
            self.raw_interrupts |= INT_TX;
        }
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

mod handover;

#[cfg(test)]
mod tests;
