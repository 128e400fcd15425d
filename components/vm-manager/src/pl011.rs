//! An emulated ARM PrimeCell UART (PL011, ARM DDI 0183), transmit side only: enough for a
//! guest's console (Linux's `amba-pl011` driver and earlycon, the test runtime). Pure logic,
//! host-tested; the component feeds it the accesses the kernel routes and sends the lines it
//! completes to the real console ([`crate::console`]).
//!
//! What a guest sees:
//!
//! - `UARTDR` (0x000): a write transmits its low byte at once (into the VM's line buffer),
//!   whatever `UARTCR` says — the transmitter never waits, like QEMU's model, so a guest that
//!   uses the UART as firmware left it keeps working. A read returns 0 (nothing is ever
//!   received).
//! - `UARTFR` (0x018): always TXFE | RXFE (0x90): transmit FIFO empty, receive FIFO empty;
//!   never BUSY or TXFF, so a polling writer never waits.
//! - `UARTRSR/UARTECR` (0x004), `UARTRIS` (0x03C), `UARTMIS` (0x040): read 0 (no errors, no
//!   interrupts: none is ever raised); writes are ignored, as is every write to `UARTICR`
//!   (0x044, write-only; reads 0).
//! - `UARTILPR`, `UARTIBRD`, `UARTFBRD`, `UARTLCR_H`, `UARTCR`, `UARTIFLS`, `UARTIMSC`,
//!   `UARTDMACR`: read back what was last written, cut to the register's width, or the reset
//!   value (`UARTCR` 0x0300, `UARTIFLS` 0x12, the rest 0). They change nothing else.
//! - `UARTPeriphID0..3`, `UARTPCellID0..3` (0xFE0..0xFFC): 0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0,
//!   0x05, 0xB1 (part 0x011, designer ARM, revision 1: what QEMU's model reports; Linux then
//!   assumes a 16-byte FIFO); writes are ignored.
//! - Every other offset (reserved, test registers, and beyond 0x1000 in a larger window) reads
//!   as zero and ignores writes.
//!
//! Access sizes: the registers are 32 bits wide, and Linux uses 32-bit accessors, but some
//! earlycon drivers write `UARTDR` with byte or halfword stores. So accesses of 1, 2 or 4 bytes
//! at a register's offset (a multiple of 4) are accepted: a narrow read returns the register's
//! low bytes, a narrow write writes the (zero-extended) value to the whole register, as an APB
//! peripheral without byte strobes sees it. Anything else — 8-byte accesses, or offsets that
//! are not a multiple of 4 — is a [`BadAccess`], which the component refuses with an external
//! abort, the way a bus error would end it.

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

/// `UARTFR.BUSY`.
pub const FR_BUSY: u32 = 1 << 3;
/// `UARTFR.RXFE`: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// `UARTFR.TXFF`: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// `UARTFR.TXFE`: transmit FIFO empty.
pub const FR_TXFE: u32 = 1 << 7;
/// What `UARTFR` always reads.
pub const FR_VALUE: u32 = FR_TXFE | FR_RXFE;
// A polling writer never waits.
const _: () = assert!(FR_VALUE & (FR_BUSY | FR_TXFF) == 0);

/// `UARTCR` reset value: TXE | RXE, UART disabled.
pub const CR_RESET: u32 = 0x0300;
/// `UARTIFLS` reset value: both FIFOs at half.
pub const IFLS_RESET: u32 = 0x12;

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

/// One emulated PL011: its registers and the line being transmitted.
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
    /// A UART in its reset state with nothing transmitted.
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
            line: LineBuffer::new(),
        }
    }

    /// A read of `size` bytes at `offset` into the register block: the value read (its low
    /// `size` bytes).
    pub fn read(&self, offset: u64, size: u8) -> Result<u64, BadAccess> {
        check(offset, size)?;
        let value = match offset {
            UARTFR => FR_VALUE,
            UARTILPR => self.ilpr,
            UARTIBRD => self.ibrd,
            UARTFBRD => self.fbrd,
            UARTLCR_H => self.lcr_h,
            UARTCR => self.cr,
            UARTIFLS => self.ifls,
            UARTIMSC => self.imsc,
            UARTDMACR => self.dmacr,
            UARTPERIPHID0..REGISTER_BLOCK => ID_REGISTERS[((offset - UARTPERIPHID0) / 4) as usize],
            // Nothing received, no errors, no interrupts; ICR is write-only.
            UARTDR | UARTRSR_ECR | UARTRIS | UARTMIS | UARTICR => 0,
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
            UARTDR => self.line.push(value as u8, emit),
            UARTILPR => self.ilpr = value & 0xFF,
            UARTIBRD => self.ibrd = value & 0xFFFF,
            UARTFBRD => self.fbrd = value & 0x3F,
            UARTLCR_H => self.lcr_h = value & 0xFF,
            UARTCR => self.cr = value & 0xFFFF,
            UARTIFLS => self.ifls = value & 0x3F,
            UARTIMSC => self.imsc = value & 0x7FF,
            UARTDMACR => self.dmacr = value & 0x7,
            // ECR and ICR clear errors and interrupts, of which there are none; FR, RIS, MIS
            // and the IDs are read-only.
            UARTRSR_ECR | UARTICR | UARTFR | UARTRIS | UARTMIS => {}
            // The IDs, reserved and test registers.
            _ => {}
        }
        Ok(())
    }

    /// Sends the partial line, if any (see [`LineBuffer::flush`]).
    pub fn flush(&mut self, emit: impl FnMut(&[u8])) {
        self.line.flush(emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(uart: &mut Pl011, offset: u64, size: u8, value: u64) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        uart.write(offset, size, value, |line| lines.push(line.to_vec()))
            .unwrap();
        lines
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
        for _ in 0..1000 {
            write(&mut uart, UARTDR, 4, u64::from(b'a'));
            let fr = uart.read(UARTFR, 4).unwrap() as u32;
            assert_eq!(fr & (FR_BUSY | FR_TXFF), 0);
            assert_eq!(fr, FR_TXFE | FR_RXFE);
        }
        assert_eq!(uart.read(UARTFR, 1), Ok(0x90));
        // Read-only: a write changes nothing.
        write(&mut uart, UARTFR, 4, 0xFFFF_FFFF);
        assert_eq!(uart.read(UARTFR, 4), Ok(0x90));
    }

    #[test]
    fn reset_values() {
        let uart = Pl011::new();
        let expected = [
            (UARTDR, 0),
            (UARTRSR_ECR, 0),
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
        // Clearing interrupts or errors leaves nothing pending.
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
    }
}
