//! What the VM manager hands over in a hot-swap (docs/hot-swap.md), guests included: the new
//! instance takes over every guest VM as the old one left it.
//!
//! The guests themselves (their vCPUs, memory and list registers) are the kernel's and
//! mem-protect's and stay where they are; what lives here is what this component emulates and
//! remembers about them:
//!
//! - its counters, and the guest work waiting for its next request (creating the guests at
//!   the system's start, or recovering them after a restart: `guests::GuestWork`);
//! - each guest's life (`guests::Lifecycle`: running, off or failed, and its starts);
//! - who has the shared console's keyboard;
//! - each emulated PL011 (registers, receive FIFO, the line being written) and what was typed
//!   for it ahead of its FIFO;
//! - each guest's GIC: its distributor (`hv_vgic`'s hand-over) and what the kernel was told
//!   of its timers.
//!
//! The MMIO guard's cached verdicts are not handed over: the new instance asks again.
//!
//! The bytes are a sequence of postcard values ([`StateWriter`]), written and read piece by
//! piece: a guest's GIC model is several KiB, and the whole state as one value would need a
//! copy of it on the component's stack. A state the new instance does not take (another
//! configuration's devices or guests, a value no register could hold) is refused: the swap
//! rolls back and the old instance serves on, so a half-taken state is never used.

use hv_component_config::System;
use hv_ipc::lifecycle::{BadState, StateReader, StateWriter};

use crate::config::EmulatedDevice;
use crate::console_mux::ConsoleMux;
use crate::guests::{GuestWork, Lifecycle};
use crate::pl011::Pl011;
use crate::vgic::Gics;

/// Bytes typed ahead for one emulated console (a pasted line or two).
pub const TYPED_AHEAD: usize = 256;

/// Typed bytes an emulated console's FIFO had no room for yet.
pub type TypedAhead = heapless::Deque<u8, TYPED_AHEAD>;

/// The state's shape, hashed with the GIC model's for the schema.
const SCHEMA_TEXT: &str = "served: u64, console_write_failed: bool, guest_work: u8, \
     lifecycle: ([u64; 4], [u64; 4]), keyboard: u8, devices: u8, then per device: (vm: u16, \
     base: u64), its Pl011 (registers: [u32; 10], (overrun_pending: bool, transmit_level: u8, \
     flags_read_last: bool, reported_line: bool), fifo: u8 then u16 each, line: bytes), \
     typed_ahead: u16 then u8 each; guests: u8, then per guest: (vm: u16, timer_told: \
     [Option<(u8, bool)>; 8]) and its distributor";

/// The schema hash: this state's shape and the GIC model's hand-over.
pub const SCHEMA: u64 = hv_ipc::schema_hash(SCHEMA_TEXT)
    ^ hv_ipc::schema_hash(hv_vgic::HANDOVER_SCHEMA_TEXT).rotate_left(1);

/// Its version.
pub const VERSION: u32 = 2;

/// Version 1's shape (counters only; exported only with no guests), still taken so that a
/// build from before guests were handed over can be swapped for this one.
pub const SCHEMA_V1: u64 =
    hv_ipc::schema_hash("HandOver { served: u64, console_write_failed: bool }");

/// The VM manager's state a swap carries, borrowed from the component.
pub struct Kept<'a> {
    /// Guest-trap requests served.
    pub served: &'a mut u64,
    /// CONSOLE_WRITE was refused once.
    pub console_write_failed: &'a mut bool,
    /// Guest work waiting for the next request.
    pub guest_work: &'a mut GuestWork,
    /// What became of each guest.
    pub lifecycle: &'a mut Lifecycle,
    /// Who has the shared console's keyboard, with guests' consoles.
    pub keyboard: Option<&'a mut ConsoleMux>,
    /// The emulated devices, from the configuration (checked, not handed over).
    pub devices: &'a [EmulatedDevice<'static>],
    /// Each device's UART, by the same index.
    pub uarts: &'a mut [Pl011],
    /// Each device's typed-ahead bytes, by the same index.
    pub typed_ahead: &'a mut [TypedAhead],
    /// The guests' GICs.
    pub gics: &'a mut Gics,
}

impl Kept<'_> {
    /// Writes the state into `out`, returning its length (`None` if it does not fit).
    pub fn export(&self, out: &mut [u8]) -> Option<usize> {
        let mut out = StateWriter::new(out);
        out.put(&(
            *self.served,
            *self.console_write_failed,
            *self.guest_work as u8,
        ))?;
        self.lifecycle.export(&mut out)?;
        let focus = self.keyboard.as_ref().map_or(0, |mux| mux.focus_index());
        out.put(&(focus as u8))?;
        out.put(&(self.devices.len() as u8))?;
        for ((device, uart), typed) in self
            .devices
            .iter()
            .zip(&*self.uarts)
            .zip(&*self.typed_ahead)
        {
            out.put(&(device.vm, device.base))?;
            uart.export(&mut out)?;
            out.put(&(typed.len() as u16))?;
            for byte in typed {
                out.put(byte)?;
            }
        }
        self.gics.export(&mut out)?;
        Some(out.len())
    }

    /// Takes a state [`Kept::export`] wrote for the same configuration.
    pub fn import(&mut self, bytes: &[u8]) -> Result<(), BadState> {
        let mut input = StateReader::new(bytes);
        let (served, console_write_failed, guest_work) = input.take()?;
        let guest_work = GuestWork::from_code(guest_work).ok_or(BadState)?;
        self.lifecycle.import(&mut input)?;
        let focus: u8 = input.take()?;
        let focus_taken = match self.keyboard.as_mut() {
            Some(mux) => mux.set_focus_index(usize::from(focus)),
            None => focus == 0,
        };
        if !focus_taken {
            return Err(BadState);
        }
        input.take_if(|&count: &u8| usize::from(count) == self.devices.len())?;
        let devices = self
            .devices
            .iter()
            .zip(self.uarts.iter_mut())
            .zip(self.typed_ahead.iter_mut());
        for ((device, uart), typed) in devices {
            input.take_if(|&(vm, base): &(u16, u64)| (vm, base) == (device.vm, device.base))?;
            uart.import(&mut input)?;
            let count: u16 = input.take_if(|&count| usize::from(count) <= TYPED_AHEAD)?;
            typed.clear();
            for _ in 0..count {
                typed.push_back(input.take()?).map_err(|_| BadState)?;
            }
        }
        self.gics.import(&mut input)?;
        input.finish()?;
        *self.served = served;
        *self.console_write_failed = console_write_failed;
        *self.guest_work = guest_work;
        Ok(())
    }

    /// Takes a version 1 state: the counters of a system without guests.
    pub fn import_v1(&mut self, system: &System, bytes: &[u8]) -> Result<(), BadState> {
        if system.vms.iter().any(|vm| !vm.host) {
            return Err(BadState);
        }
        let mut input = StateReader::new(bytes);
        let (served, console_write_failed) = input.take()?;
        input.finish()?;
        *self.served = served;
        *self.console_write_failed = console_write_failed;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
