//! Random accesses keep the UART's invariants.

use super::*;

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
