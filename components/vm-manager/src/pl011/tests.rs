//! Host tests of the emulated PL011: registers, FIFOs, interrupts and the console line.

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
    // The framing, parity and break error bits (7 to 9) and the modem bits (0 to 3).
    let absent = (0x7 << 7) | 0xF | 0xFFFF_F800;
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
fn tx_interrupt_at_each_trigger_level() {
    let levels = [(0, 2), (1, 4), (2, 8), (3, 12), (4, 14), (5, 14), (7, 14)];
    for (tx_level, trigger) in levels {
        let mut uart = Pl011::new();
        write(&mut uart, UARTLCR_H, 4, 0x70);
        write(&mut uart, UARTIFLS, 4, (2 << 3) | tx_level);
        write(&mut uart, UARTIMSC, 4, u64::from(INT_TX));
        // Enabling: the empty FIFO is below the trigger.
        write(&mut uart, UARTCR, 4, ENABLED);
        assert_eq!(uart.raw_interrupts, INT_TX);
        // Writes clear it once they take the level above the trigger.
        for n in 1..=TX_FIFO_DEPTH + 2 {
            write(&mut uart, UARTDR, 4, u64::from(b'.'));
            let tx = uart.raw_interrupts & INT_TX != 0;
            assert_eq!(tx, n <= trigger, "IFLS {tx_level}, {n} written");
            assert!(uart.interrupt_line() == tx);
        }
        // Emptying takes the level back below it: the read sees TXIS.
        assert_eq!(reg(&mut uart, UARTMIS), INT_TX);
        // ICR clears it; accesses to a FIFO already empty do not raise it again.
        write(&mut uart, UARTICR, 4, u64::from(INT_TX));
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        assert_eq!(reg(&mut uart, UARTRIS), 0);
        // Bytes that stay at or below the trigger leave it clear until they have gone.
        write(&mut uart, UARTDR, 4, u64::from(b'.'));
        write(&mut uart, UARTDR, 4, u64::from(b'.'));
        assert_eq!(uart.raw_interrupts, 0);
        assert_eq!(reg(&mut uart, UARTFR) & FR_TXFE, 0);
        assert_eq!(reg(&mut uart, UARTRIS), INT_TX);
    }
    // FIFOs off: each write fills the holding register and clears it; emptying raises it.
    let mut uart = enabled(false, 2);
    write(&mut uart, UARTIFLS, 4, 0);
    assert_eq!(reg(&mut uart, UARTRIS), 0);
    for byte in *b"xy" {
        write(&mut uart, UARTDR, 4, u64::from(byte));
        assert_eq!(uart.raw_interrupts, 0);
        assert_eq!(reg(&mut uart, UARTFR), FR_TXFF | FR_BUSY | FR_RXFE);
        assert_eq!(uart.raw_interrupts, INT_TX);
    }
}

#[test]
fn tx_interrupt_on_enabling_and_only_when_enabled() {
    let mut uart = Pl011::new();
    write(&mut uart, UARTIMSC, 4, u64::from(INT_TX));
    // Disabled: transmitted and paced all the same, but no interrupt.
    write(&mut uart, UARTDR, 4, u64::from(b'a'));
    assert_eq!(reg(&mut uart, UARTFR) & FR_TXFF, FR_TXFF);
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
    // Every byte written fills the holding register, which the next access empties.
    for byte in *b"bc" {
        write(&mut uart, UARTDR, 4, u64::from(byte));
        assert_eq!(uart.raw_interrupts, 0);
        assert_eq!(reg(&mut uart, UARTMIS), INT_TX);
        write(&mut uart, UARTICR, 4, u64::from(INT_TX));
    }
    // Disabling and enabling again is an edge.
    write(&mut uart, UARTCR, 4, u64::from(CR_UARTEN | CR_RXE));
    write(&mut uart, UARTDR, 4, u64::from(b'd'));
    assert_eq!(reg(&mut uart, UARTRIS), 0);
    write(&mut uart, UARTCR, 4, ENABLED);
    assert_eq!(reg(&mut uart, UARTRIS), INT_TX);
    // The FIFO empties before an access takes effect: a CR write that disables the
    // transmitter finds it still enabled.
    write(&mut uart, UARTICR, 4, u64::from(INT_TX));
    write(&mut uart, UARTDR, 4, u64::from(b'e'));
    write(&mut uart, UARTCR, 4, u64::from(CR_UARTEN | CR_RXE));
    assert_eq!(reg(&mut uart, UARTRIS), INT_TX);
    let mut lines = Vec::new();
    uart.flush(|line| lines.push(line.to_vec()));
    assert_eq!(lines, [b"abcde".to_vec()]);
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

/// Linux's `amba-pl011` driver (6.1, without DMA), as far as the UART sees it: the accesses
/// of its start-up, of `pl011_start_tx`/`pl011_tx_chars` (transmitting), of its interrupt
/// handler `pl011_int` and of its console (`pl011_console_write`), in their order.
struct LinuxDriver {
    /// Its copy of IMSC (`uap->im`).
    im: u32,
    /// The tty's transmit buffer.
    to_send: VecDeque<u8>,
    /// What it has received.
    typed: Vec<u8>,
    /// The console lines the UART completed.
    lines: Vec<Vec<u8>>,
    /// Bytes written in the interrupt handler.
    sent_by_interrupt: usize,
}

impl LinuxDriver {
    /// The FIFO size it assumes for a PL011 of revision 1.
    const FIFO_SIZE: usize = 16;
    /// `AMBA_ISR_PASS_LIMIT`: passes of the handler's loop per interrupt.
    const PASS_LIMIT: usize = 256;

    /// `pl011_startup` (with `pl011_hwinit` and `pl011_enable_interrupts`), then termios.
    fn start_up(uart: &mut Pl011) -> Self {
        let errors_and_rx = INT_OE | (0x7 << 7) | INT_RT | INT_RX;
        write(uart, UARTICR, 4, u64::from(errors_and_rx));
        let saved_mask = reg(uart, UARTIMSC);
        assert_eq!(saved_mask, 0);
        write(uart, UARTIMSC, 4, u64::from(INT_RT | INT_RX));
        write(uart, UARTIFLS, 4, 0x12);
        write(uart, UARTCR, 4, ENABLED);
        // The modem lines' first state.
        reg(uart, UARTFR);
        write(uart, UARTICR, 4, u64::from(INT_RT | INT_RX));
        for _ in 0..2 * Self::FIFO_SIZE {
            if reg(uart, UARTFR) & FR_RXFE != 0 {
                break;
            }
            reg(uart, UARTDR);
        }
        let mut linux = LinuxDriver {
            im: 0,
            to_send: VecDeque::new(),
            typed: Vec::new(),
            lines: Vec::new(),
            sent_by_interrupt: 0,
        };
        linux.set_mask(uart, INT_RT | INT_RX);
        write(uart, UARTIBRD, 4, 1);
        write(uart, UARTFBRD, 4, 40);
        write(uart, UARTLCR_H, 4, 0x70);
        linux
    }

    fn set_mask(&mut self, uart: &mut Pl011, im: u32) {
        self.im = im;
        write(uart, UARTIMSC, 4, u64::from(im));
    }

    fn write_data(&mut self, uart: &mut Pl011, byte: u8) {
        self.lines.extend(write(uart, UARTDR, 4, u64::from(byte)));
    }

    /// `pl011_start_tx`: sends while FR shows room, and unmasks TXIM only if it found the
    /// FIFO full with data left.
    fn start_tx(&mut self, uart: &mut Pl011) {
        if self.tx_chars(uart, false) {
            self.set_mask(uart, self.im | INT_TX);
        }
    }

    fn stop_tx(&mut self, uart: &mut Pl011) {
        self.set_mask(uart, self.im & !INT_TX);
    }

    /// `pl011_tx_chars`: outside the handler it reads FR before each byte and stops at
    /// TXFF; in the handler it writes at most half a FIFO without reading FR. With nothing
    /// left it masks TXIM. Whether data is left.
    fn tx_chars(&mut self, uart: &mut Pl011, from_irq: bool) -> bool {
        if self.to_send.is_empty() {
            self.stop_tx(uart);
            return false;
        }
        let mut count = Self::FIFO_SIZE / 2;
        while let Some(&byte) = self.to_send.front() {
            if from_irq {
                if count == 0 {
                    break;
                }
                count -= 1;
            } else if reg(uart, UARTFR) & FR_TXFF != 0 {
                break;
            }
            self.write_data(uart, byte);
            self.to_send.pop_front();
            if from_irq {
                self.sent_by_interrupt += 1;
            }
        }
        if self.to_send.is_empty() {
            self.stop_tx(uart);
            return false;
        }
        true
    }

    /// `pl011_int`: while an unmasked interrupt is pending, clear the error interrupts,
    /// empty the receive FIFO on RXIS/RTIS, send on TXIS.
    fn interrupt(&mut self, uart: &mut Pl011) {
        let mut status = reg(uart, UARTMIS);
        let mut passes_left = Self::PASS_LIMIT;
        while status != 0 {
            let clear = status & !(INT_TX | INT_RT | INT_RX);
            write(uart, UARTICR, 4, u64::from(clear));
            if status & (INT_RT | INT_RX) != 0 {
                for _ in 0..256 {
                    if reg(uart, UARTFR) & FR_RXFE != 0 {
                        break;
                    }
                    self.typed.push(reg(uart, UARTDR) as u8);
                }
            }
            if status & INT_TX != 0 {
                self.tx_chars(uart, true);
            }
            if passes_left == 0 {
                break;
            }
            passes_left -= 1;
            status = reg(uart, UARTMIS);
        }
    }

    /// `pl011_console_write` (printk): enables the transmitter, writes each byte (`\n` as
    /// `\r\n`) when FR shows room, waits for BUSY to clear, restores CR.
    fn console_write(&mut self, uart: &mut Pl011, text: &[u8]) {
        let old_cr = reg(uart, UARTCR);
        write(uart, UARTCR, 4, u64::from(old_cr | CR_UARTEN | CR_TXE));
        for &byte in text {
            if byte == b'\n' {
                wait_while(uart, FR_TXFF, 3);
                self.write_data(uart, b'\r');
            }
            wait_while(uart, FR_TXFF, 3);
            self.write_data(uart, byte);
        }
        wait_while(uart, FR_BUSY, 3);
        write(uart, UARTCR, 4, u64::from(old_cr));
    }

    /// Takes interrupts while the line is high (at most `cap`); how many it took.
    fn serve(&mut self, uart: &mut Pl011, cap: usize) -> usize {
        let mut interrupts = 0;
        while uart.interrupt_line() {
            interrupts += 1;
            assert!(interrupts <= cap, "interrupt storm");
            self.interrupt(uart);
        }
        interrupts
    }

    /// The console lines so far, with the partial one.
    fn output(&mut self, uart: &mut Pl011) -> Vec<Vec<u8>> {
        uart.flush(|line| self.lines.push(line.to_vec()));
        core::mem::take(&mut self.lines)
    }
}

/// `lines` lines of text, each ending in `\n`: the bytes, and the console lines they make.
fn text_lines(lines: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let lines: Vec<Vec<u8>> = (0..lines)
        .map(|n| format!("line {n}: the quick brown fox jumps over the lazy dog").into_bytes())
        .collect();
    let mut text = Vec::new();
    for line in &lines {
        text.extend(line);
        text.push(b'\n');
    }
    (text, lines)
}

#[test]
fn linux_driver_transmits_by_interrupt() {
    // Linux's trigger level (half) and the others; text for one interrupt, and for
    // several (the handler stops at its pass limit with the level at 8: TXIS stays set
    // at a trigger of 8 or more, as Linux programs; below, it would wait for the guest's
    // next access).
    let cases = (0..5u32)
        .map(|tx_level| (tx_level, 5))
        .chain([(2, 60), (4, 60)]);
    for (tx_level, line_count) in cases {
        let what = format!("TX trigger {tx_level}, {line_count} lines");
        let mut uart = Pl011::new();
        let mut linux = LinuxDriver::start_up(&mut uart);
        write(&mut uart, UARTIFLS, 4, u64::from((2 << 3) | tx_level));
        assert_eq!(uart.take_line_change(), None);
        let (text, expected) = text_lines(line_count);
        linux.to_send.extend(&text);
        // 16 bytes fill the FIFO; the 17th FR read shows TXFF (and empties it), so it
        // unmasks TXIM, and TXIS is pending: the line goes high.
        linux.start_tx(&mut uart);
        assert_eq!(linux.to_send.len(), text.len() - TX_FIFO_DEPTH, "{what}");
        assert_eq!(linux.im, INT_RT | INT_RX | INT_TX, "{what}");
        assert_eq!(reg(&mut uart, UARTMIS), INT_TX, "{what}");
        assert_eq!(uart.take_line_change(), Some(true), "{what}");
        // The handler sends half a FIFO per pass, and its MIS read empties the FIFO:
        // TXIS again, until nothing is left and it masks TXIM.
        let interrupts = linux.serve(&mut uart, 10);
        let passes = (text.len() - TX_FIFO_DEPTH).div_ceil(TX_FIFO_DEPTH / 2);
        let expected_interrupts = passes.div_ceil(LinuxDriver::PASS_LIMIT + 1);
        assert_eq!(interrupts, expected_interrupts, "{what}");
        assert!(linux.to_send.is_empty(), "{what}");
        let by_interrupt = text.len() - TX_FIFO_DEPTH;
        assert_eq!(linux.sent_by_interrupt, by_interrupt, "{what}");
        assert_eq!(reg(&mut uart, UARTIMSC), INT_RT | INT_RX, "{what}");
        assert_eq!(uart.take_line_change(), Some(false), "{what}");
        assert!(!uart.interrupt_line(), "{what}");
        // Every byte, in order.
        assert_eq!(linux.output(&mut uart), expected, "{what}");
    }
}

#[test]
fn linux_driver_start_up_and_interrupts() {
    let mut uart = Pl011::new();
    let mut linux = LinuxDriver::start_up(&mut uart);
    // TXIS is pending from the enable but masked: the line stays low.
    assert_eq!(reg(&mut uart, UARTRIS), INT_TX);
    assert_eq!(uart.take_line_change(), None);

    // One key: RTIS.
    uart.receive(b'l').unwrap();
    assert_eq!(uart.take_line_change(), Some(true));
    linux.interrupt(&mut uart);
    assert_eq!(uart.take_line_change(), Some(false));
    assert_eq!(linux.typed, b"l");

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
        linux.interrupt(&mut uart);
        assert_eq!(uart.take_line_change(), Some(false));
    }
    assert_eq!(&linux.typed[1..], paste);
    assert_eq!(reg(&mut uart, UARTRSR_ECR), 0);
    assert!(linux.output(&mut uart).is_empty());

    // A prompt shorter than the FIFO: written at once, TXIM stays masked.
    linux.to_send.extend(b"# ");
    linux.start_tx(&mut uart);
    assert!(linux.to_send.is_empty());
    assert_eq!(linux.im, INT_RT | INT_RX);
    assert_eq!(uart.take_line_change(), None);

    // Longer output: by interrupt, and a key typed meanwhile is taken in the same
    // handler.
    linux
        .to_send
        .extend(b"\nconsole output of more than sixteen bytes\r\n");
    linux.start_tx(&mut uart);
    assert_eq!(linux.im, INT_RT | INT_RX | INT_TX);
    assert_eq!(uart.take_line_change(), Some(true));
    uart.receive(b'q').unwrap();
    assert_eq!(linux.serve(&mut uart, 1), 1);
    assert!(linux.to_send.is_empty());
    assert_eq!(linux.typed.last(), Some(&b'q'));
    assert_eq!(uart.take_line_change(), Some(false));

    // A kernel message in between (polled, with the FIFO pacing it), then the tty again.
    linux.console_write(&mut uart, b"[   42.000000] a kernel message\n");
    assert_eq!(uart.take_line_change(), None);
    assert_eq!(reg(&mut uart, UARTCR), ENABLED as u32);
    linux.to_send.extend(b"# exit\r\n");
    linux.start_tx(&mut uart);
    assert_eq!(uart.take_line_change(), None);
    assert_eq!(
        linux.output(&mut uart),
        [
            b"# ".to_vec(),
            b"console output of more than sixteen bytes".to_vec(),
            b"[   42.000000] a kernel message".to_vec(),
            b"# exit".to_vec(),
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
        // Times the writer found the holding register, and the FIFO, full.
        let mut filled = [0; 2];
        for step in 0..50_000 {
            let choice = next();
            let offset = match next() % 8 {
                0 => next() % 0x1008,
                _ => OFFSETS[(next() % 16) as usize],
            };
            let size = SIZES[(next() % 7) as usize];
            let level_before = uart.transmit_level;
            let depth_before = uart.transmit_depth();
            let flags_read_last = uart.flags_read_last;
            // The transmit FIFO's level after an accepted read or write at `offset`.
            let level_after = |offset: u64, write: bool| match offset {
                UARTDR if write => (level_before + 1).min(depth_before),
                UARTFR if !write && !flags_read_last && level_before < depth_before => level_before,
                _ => 0,
            };
            match choice % 8 {
                0 | 1 => {
                    let read = uart.read(offset, size);
                    if offset == UARTDR
                        && let Ok(value) = read
                    {
                        let expected = queued.pop_front().map_or(0, u64::from);
                        assert_eq!(value & 0xFF, expected, "step {step}");
                    }
                    let level = match read {
                        Ok(_) => level_after(offset, false),
                        Err(_) => level_before,
                    };
                    assert_eq!(uart.transmit_level, level, "step {step}");
                }
                2 => {
                    // Mostly values that enable things.
                    let value = match next() % 3 {
                        0 => next(),
                        1 => next() | ENABLED | u64::from(LCR_H_FEN),
                        _ => next() & 0x7FF,
                    };
                    let written = uart.write(offset, size, value, |_| {});
                    let level = match written {
                        Ok(()) => level_after(offset, true),
                        Err(_) => level_before,
                    };
                    assert_eq!(uart.transmit_level, level, "step {step}");
                }
                3 | 4 => {
                    let byte = next() as u8;
                    let could = uart.can_receive();
                    let received = uart.receive(byte);
                    assert_eq!(received.is_ok(), could, "step {step}");
                    if received.is_ok() {
                        queued.push_back(byte);
                    }
                    assert_eq!(uart.transmit_level, level_before, "step {step}");
                }
                5 => {
                    let line = uart.interrupt_line();
                    let change = uart.take_line_change();
                    assert_eq!(change, (line != reported).then_some(line), "step {step}");
                    reported = line;
                }
                _ => {
                    // Linux's start-tx: FR before each byte, a byte while it shows room.
                    for _ in 0..next() % 24 {
                        let depth = uart.transmit_depth();
                        let full = !uart.flags_read_last && uart.transmit_level == depth;
                        let fr = reg(&mut uart, UARTFR);
                        assert_eq!(fr & FR_TXFF != 0, full, "step {step}");
                        if full {
                            filled[usize::from(depth == TX_FIFO_DEPTH)] += 1;
                            break;
                        }
                        let level = uart.transmit_level;
                        write(&mut uart, UARTDR, [4, 1, 2][(next() % 3) as usize], next());
                        assert_eq!(uart.transmit_level, level + 1, "step {step}");
                    }
                }
            }
            // The FIFO's level and the flags it shows (a read in a row would empty it).
            let level = uart.transmit_level;
            let depth = uart.transmit_depth();
            assert!(level <= depth, "step {step}");
            let flags = uart.flags();
            assert_eq!(flags & FR_TXFF != 0, level == depth, "step {step}");
            assert_eq!(flags & FR_TXFE != 0, level == 0, "step {step}");
            assert_eq!(flags & FR_BUSY != 0, level != 0, "step {step}");
            assert_eq!(flags & FR_RXFE != 0, queued.is_empty(), "step {step}");
            let seen = if uart.flags_read_last { 0 } else { level };
            let fr = reg(&mut uart.clone(), UARTFR);
            assert_eq!(fr & FR_TXFF != 0, seen == depth, "step {step}");
            assert_eq!(fr & FR_TXFE != 0, seen == 0, "step {step}");
            // TXIS only at or below the trigger.
            let ris = uart.raw_interrupts;
            if level > uart.transmit_trigger() {
                assert_eq!(ris & INT_TX, 0, "step {step}");
            }
            assert_eq!(ris & !(INT_RX | INT_TX | INT_RT | INT_OE), 0, "step {step}");
            assert_eq!(uart.interrupt_line(), ris & uart.imsc != 0, "step {step}");
            // The registers, read on a copy (a read empties the FIFO, raising TXIS).
            let mut copy = uart.clone();
            let mis = reg(&mut copy, UARTMIS);
            let ris = reg(&mut copy, UARTRIS);
            let imsc = reg(&mut copy, UARTIMSC);
            assert_eq!(mis, ris & imsc, "step {step}");
            assert_eq!(copy.interrupt_line(), mis != 0, "step {step}");
            assert!(queued.len() <= RX_FIFO_DEPTH, "step {step}");
            if queued.is_empty() {
                assert_eq!(ris & (INT_RX | INT_RT), 0, "step {step}");
            }
        }
        // The writer did fill both, often.
        assert!(filled.iter().all(|&times| times > 50), "{filled:?}");
    }
}
