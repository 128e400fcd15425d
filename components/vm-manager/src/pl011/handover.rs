//! A UART's state across a hot-swap of the VM manager (`crate::handover`): its registers,
//! its flags, the receive FIFO's entries and the line being transmitted.

use hv_ipc::lifecycle::{BadState, StateReader, StateWriter};

use super::{INT_ALL, Pl011, RX_FIFO_DEPTH, ReceiveFifo, TX_FIFO_DEPTH};

/// The registers a hand-over carries, in this order: one list for writing and for reading
/// them (`[..] = registers` assigns it).
macro_rules! handed_over_registers {
    ($uart:expr) => {
        [
            $uart.ilpr,
            $uart.ibrd,
            $uart.fbrd,
            $uart.lcr_h,
            $uart.cr,
            $uart.ifls,
            $uart.imsc,
            $uart.dmacr,
            $uart.receive_status,
            $uart.raw_interrupts,
        ]
    };
}

/// The bits a write can set in each of `handed_over_registers!`, in its order.
const HANDED_OVER_MASKS: [u32; 10] = [
    0xFF,    // ILPR
    0xFFFF,  // IBRD
    0x3F,    // FBRD
    0xFF,    // LCR_H
    0xFFFF,  // CR
    0x3F,    // IFLS
    INT_ALL, // IMSC
    0x7,     // DMACR
    0xF,     // RSR
    INT_ALL, // RIS
];

impl Pl011 {
    /// Writes the UART's whole state for a hot-swap's hand-over: its registers, its flags,
    /// the receive FIFO's entries (oldest first) and the line being transmitted.
    pub fn export(&self, out: &mut StateWriter) -> Option<()> {
        let registers = handed_over_registers!(self);
        let flags = (
            self.overrun_pending,
            self.transmit_level as u8,
            self.flags_read_last,
            self.reported_line,
        );
        out.put(&(registers, flags))?;
        out.put(&(self.received.len as u8))?;
        for at in 0..self.received.len {
            out.put(&self.received.entries[(self.received.head + at) % RX_FIFO_DEPTH])?;
        }
        out.put(self.line.pending())
    }

    /// Takes what [`Pl011::export`] wrote. Every value must be one the UART could hold (the
    /// bits a write can set, FIFO levels within their depth, data and error bits only in an
    /// entry); on a refusal the UART may be half taken, which the caller discards.
    pub fn import(&mut self, input: &mut StateReader) -> Result<(), BadState> {
        let (registers, (overrun_pending, transmit_level, flags_read_last, reported_line)) = input
            .take_if(|(registers, flags): &([u32; 10], (bool, u8, bool, bool))| {
                let within = registers
                    .iter()
                    .zip(HANDED_OVER_MASKS)
                    .all(|(value, mask)| value & !mask == 0);
                within && usize::from(flags.1) <= TX_FIFO_DEPTH
            })?;
        handed_over_registers!(self) = registers;
        self.overrun_pending = overrun_pending;
        self.transmit_level = usize::from(transmit_level);
        self.flags_read_last = flags_read_last;
        self.reported_line = reported_line;
        let level: u8 = input.take_if(|&level| usize::from(level) <= RX_FIFO_DEPTH)?;
        self.received = ReceiveFifo::new();
        for _ in 0..level {
            // A byte and its four error bits (FE, PE, BE, OE).
            let entry: u16 = input.take_if(|&entry| entry < 1 << 12)?;
            self.received.push(entry);
        }
        if !self.line.restore(input.take_bytes()?) {
            return Err(BadState);
        }
        Ok(())
    }
}
