//! The receive FIFO, its errors, and the interrupts: trigger levels, timeout, mask, clear and
//! the line the VM sees.

use super::*;

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
