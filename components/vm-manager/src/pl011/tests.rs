//! Host tests of the emulated PL011: registers, FIFOs, interrupts and the console line.

use super::*;
use std::collections::VecDeque;

mod linux_driver;
mod random;
mod receive_and_interrupts;

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
fn flags_follow_the_transmit_fifo_level() {
    // At reset (FEN clear) the FIFO is a holding register, and paces a writer even with the
    // UART disabled.
    let mut uart = Pl011::new();
    assert_eq!(uart.read(UARTFR, 4), Ok(0x90));
    write(&mut uart, UARTDR, 4, u64::from(b'a'));
    assert_eq!(reg(&mut uart, UARTFR), FR_TXFF | FR_BUSY | FR_RXFE);
    assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
    for (fifos, depth) in [(true, TX_FIFO_DEPTH), (false, 1)] {
        let mut uart = enabled(fifos, 2);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
        // A writer that reads FR before each byte fills the FIFO.
        for n in 1..=depth {
            write(&mut uart, UARTDR, 4, u64::from(b'b'));
            let full = if n == depth { FR_TXFF } else { 0 };
            assert_eq!(reg(&mut uart, UARTFR), full | FR_BUSY | FR_RXFE, "{n}");
        }
        // It has seen TXFF: its next read finds the FIFO empty.
        assert_eq!(uart.transmit_level, 0);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
        // Writes into a full FIFO are transmitted; the level stays at full.
        let mut lines = Vec::new();
        for byte in *b"0123456789abcdefghij\n" {
            lines.extend(write(&mut uart, UARTDR, 4, u64::from(byte)));
            assert!(uart.transmit_level <= depth);
        }
        let full_line = [&[b'b'; TX_FIFO_DEPTH][..depth], b"0123456789abcdefghij"].concat();
        assert_eq!(lines, [full_line]);
        assert_eq!(uart.transmit_level, depth);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFF | FR_BUSY | FR_RXFE);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
        // Read-only: a write changes nothing but, as any access, empties the FIFO.
        write(&mut uart, UARTDR, 4, u64::from(b'c'));
        write(&mut uart, UARTFR, 4, 0xFFFF_FFFF);
        assert_eq!(uart.transmit_level, 0);
        assert_eq!(uart.read(UARTFR, 1), Ok(0x90));
    }
}

/// Reads FR while it shows `flag`, at most `cap` times in all (the test fails beyond):
/// how many reads it took.
fn wait_while(uart: &mut Pl011, flag: u32, cap: usize) -> usize {
    let mut reads = 1;
    while reg(uart, UARTFR) & flag != 0 {
        reads += 1;
        assert!(reads <= cap, "still waiting after {cap} FR reads");
    }
    reads
}

/// 100 bytes of text in lines: what a polling writer sends.
fn hundred_bytes() -> (Vec<u8>, Vec<Vec<u8>>) {
    let text: Vec<u8> = (0..100u8)
        .map(|n| if n % 20 == 19 { b'\n' } else { b'a' + n % 26 })
        .collect();
    let lines = text
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    (text, lines)
}

/// The test runtime's writer (and Linux's console): waits while FR shows TXFF, then writes.
#[test]
fn polling_writer_never_waits_long() {
    let (text, expected) = hundred_bytes();
    for fifos in [true, false] {
        for cr in [CR_RESET, CR_UARTEN | CR_TXE | CR_RXE] {
            let mut uart = Pl011::new();
            let lcr_h = if fifos { 0x70 } else { 0x60 };
            write(&mut uart, UARTLCR_H, 4, lcr_h);
            write(&mut uart, UARTCR, 4, u64::from(cr));
            let mut lines = Vec::new();
            let mut waited = 0;
            for &byte in &text {
                waited += wait_while(&mut uart, FR_TXFF, 3) - 1;
                lines.extend(write(&mut uart, UARTDR, 4, u64::from(byte)));
            }
            uart.flush(|line| lines.push(line.to_vec()));
            assert_eq!(lines, expected, "FEN {fifos}, CR {cr:#x}");
            // It did wait: the FIFO filled (every 16th byte with FIFOs, every byte without).
            let depth = if fifos { TX_FIFO_DEPTH } else { 1 };
            assert_eq!(waited, (text.len() - 1) / depth, "FEN {fifos}, CR {cr:#x}");
        }
    }
}

/// Linux's earlycon waits for TXFF to clear before each byte and for BUSY to clear after
/// it; its console (printk) waits for BUSY to clear after the last byte.
#[test]
fn writer_waiting_for_the_transmitter_sees_it_idle_on_the_second_read() {
    let (text, expected) = hundred_bytes();
    for fifos in [true, false] {
        let mut uart = enabled(fifos, 2);
        let mut lines = Vec::new();
        for &byte in &text {
            assert_eq!(wait_while(&mut uart, FR_TXFF, 3), 1);
            lines.extend(write(&mut uart, UARTDR, 1, u64::from(byte)));
            assert_eq!(wait_while(&mut uart, FR_BUSY, 3), 2);
        }
        for &byte in &text {
            wait_while(&mut uart, FR_TXFF, 3);
            lines.extend(write(&mut uart, UARTDR, 4, u64::from(byte)));
        }
        assert!(uart.transmit_level > 0);
        assert_eq!(wait_while(&mut uart, FR_BUSY, 3), 2);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
        let twice: Vec<Vec<u8>> = expected.iter().chain(&expected).cloned().collect();
        assert_eq!(lines, twice, "FEN {fifos}");
    }
}

#[test]
fn accesses_that_empty_the_transmit_fifo() {
    // With the transmitter enabled, TXIS cleared and 3 bytes in the FIFO.
    let filled = || {
        let mut uart = enabled(true, 2);
        for byte in *b"abc" {
            write(&mut uart, UARTDR, 4, u64::from(byte));
        }
        assert_eq!(uart.transmit_level, 3);
        assert_eq!(uart.raw_interrupts, 0);
        uart
    };
    // An FR read that finds room leaves it; a second one in a row empties it first.
    let mut uart = filled();
    assert_eq!(reg(&mut uart, UARTFR), FR_BUSY | FR_RXFE);
    assert_eq!(uart.transmit_level, 3);
    assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
    assert_eq!(uart.raw_interrupts, INT_TX);
    // A DR write in between: not in a row.
    let mut uart = filled();
    reg(&mut uart, UARTFR);
    write(&mut uart, UARTDR, 4, u64::from(b'd'));
    assert_eq!(reg(&mut uart, UARTFR), FR_BUSY | FR_RXFE);
    assert_eq!(uart.transmit_level, 4);
    // Every other read empties it before it reads: RIS and MIS show TXIS at once.
    let reads = [
        UARTDR,
        UARTRSR_ECR,
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
        UARTPERIPHID0,
        0x008,
        0x1000,
    ];
    for offset in reads {
        let mut uart = filled();
        write(&mut uart, UARTIMSC, 4, u64::from(INT_TX));
        assert_eq!(uart.transmit_level, 0, "{offset:#x}");
        write(&mut uart, UARTICR, 4, u64::from(INT_TX));
        write(&mut uart, UARTDR, 4, u64::from(b'd'));
        let value = uart.read(offset, 1).unwrap() as u32;
        assert_eq!(uart.transmit_level, 0, "{offset:#x}");
        assert_eq!(uart.raw_interrupts, INT_TX, "{offset:#x}");
        if matches!(offset, UARTRIS | UARTMIS) {
            assert_eq!(value, INT_TX);
        }
    }
    // So does every write but to DR, before it takes effect (ICR clears the TXIS it
    // raised).
    let writes = [
        (UARTRSR_ECR, 0, INT_TX),
        (UARTILPR, 0, INT_TX),
        (UARTIBRD, 0, INT_TX),
        (UARTFBRD, 0, INT_TX),
        (UARTLCR_H, 0x70, INT_TX),
        (UARTCR, ENABLED, INT_TX),
        (UARTIFLS, 0x12, INT_TX),
        (UARTIMSC, 0, INT_TX),
        (UARTICR, 0, INT_TX),
        (UARTICR, u64::from(INT_TX), 0),
        (UARTDMACR, 0, INT_TX),
        (UARTFR, 0, INT_TX),
        (UARTRIS, 0, INT_TX),
        (UARTMIS, 0, INT_TX),
        (UARTPERIPHID0, 0, INT_TX),
        (0x008, 0, INT_TX),
    ];
    for (offset, value, raw) in writes {
        let mut uart = filled();
        write(&mut uart, offset, 2, value);
        assert_eq!(uart.transmit_level, 0, "{offset:#x}");
        assert_eq!(uart.raw_interrupts, raw, "{offset:#x}");
    }
    // A refused access changes nothing, not even which access came last.
    let mut uart = filled();
    assert_eq!(uart.read(UARTCR, 8), Err(BadAccess::Size));
    assert_eq!(uart.read(UARTCR + 2, 2), Err(BadAccess::Misaligned));
    assert_eq!(uart.write(UARTCR, 8, 0, |_| {}), Err(BadAccess::Size));
    assert_eq!(uart.transmit_level, 3);
    reg(&mut uart, UARTFR);
    assert_eq!(uart.read(UARTFR, 8), Err(BadAccess::Size));
    assert_eq!(
        uart.write(UARTICR + 1, 1, 0, |_| {}),
        Err(BadAccess::Misaligned)
    );
    assert_eq!(uart.transmit_level, 3);
    assert_eq!(reg(&mut uart, UARTFR), FR_TXFE | FR_RXFE);
    // The receiving side is not an access.
    let mut uart = filled();
    uart.receive(b'r').unwrap();
    assert!(uart.can_receive());
    uart.take_line_change();
    assert_eq!(uart.transmit_level, 3);
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
