//! A model of Linux's amba-pl011 driver against the emulated UART: start-up, interrupt-driven
//! transmission and reception.

use super::*;

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
