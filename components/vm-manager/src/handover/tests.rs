//! A busy system's state reads back into a fresh instance that then behaves exactly as the old
//! one would have; another configuration's state, damaged bytes and a version-1 state with
//! guests are refused.

extern crate std;

use std::vec::Vec;

use super::*;
use crate::console_mux::{Route, SWITCH_KEY};
use crate::pl011::{UARTCR, UARTDR, UARTFR, UARTIBRD, UARTIMSC, UARTLCR_H, UARTMIS, UARTRIS};
use crate::vgic::tests::{GICD, Recorder, gics, system};
use hv_ipc::lifecycle::STATE_MAX;

const UART: u64 = 0x0900_0000;

/// One component instance's state, owned.
struct Instance {
    served: u64,
    console_write_failed: bool,
    guest_work: GuestWork,
    lifecycle: Lifecycle,
    keyboard: Option<ConsoleMux>,
    devices: Vec<EmulatedDevice<'static>>,
    uarts: Vec<Pl011>,
    typed_ahead: Vec<TypedAhead>,
    gics: Gics,
}

impl Instance {
    /// As `main` starts one: guest 1 (two vCPUs, GICv3) with an emulated PL011 at `uart`.
    fn fresh(uart: u64) -> Self {
        Self {
            served: 0,
            console_write_failed: false,
            guest_work: GuestWork::Idle,
            lifecycle: Lifecycle::new(),
            keyboard: Some(ConsoleMux::new([1])),
            devices: std::vec![EmulatedDevice {
                vm: 1,
                name: "uart0",
                base: uart,
                size: 0x1000,
                interrupt: Some(33),
            }],
            uarts: std::vec![Pl011::new()],
            typed_ahead: std::vec![TypedAhead::new()],
            gics: gics(true),
        }
    }

    fn kept(&mut self) -> Kept<'_> {
        Kept {
            served: &mut self.served,
            console_write_failed: &mut self.console_write_failed,
            guest_work: &mut self.guest_work,
            lifecycle: &mut self.lifecycle,
            keyboard: self.keyboard.as_mut(),
            devices: &self.devices,
            uarts: &mut self.uarts,
            typed_ahead: &mut self.typed_ahead,
            gics: &mut self.gics,
        }
    }

    fn export(&mut self) -> Vec<u8> {
        let mut out = std::vec![0u8; STATE_MAX];
        let len = self.kept().export(&mut out).expect("fits");
        out.truncate(len);
        out
    }
}

/// A guest that has run a while: its GIC set up as Linux does it, its UART configured and
/// interrupt-driven with bytes waiting both ways, the keyboard given to it.
fn busy() -> Instance {
    let mut instance = Instance::fresh(UART);
    instance.served = 12_345;
    instance.console_write_failed = true;
    // A restarted instance swapped before its next request: the recovery still waits.
    instance.guest_work = GuestWork::Recover;
    instance.lifecycle.running(1);
    let mut kernel = Recorder::default();
    let gics = &mut instance.gics;
    // GICD_CTLR: both groups; the UART's SPI 33 enabled, group 1, priority 0xa0, routed to
    // vCPU 1; SGI 1 and the timer's PPI 27 enabled on vCPU 0.
    for (offset, size, value) in [
        (0x0, 4, 0b11),
        (0x084, 4, 1 << 1),
        (0x104, 4, 1 << 1),
        (0x421, 1, 0xa0),
        (0x6000 + 8 * 33, 8, 1),
    ] {
        let written = gics.access(1, 0, GICD + offset, size, Some(value), &mut kernel);
        assert!(matches!(written, Some(Ok(_))), "{offset:#x}");
    }
    let sgi_base = crate::vgic::tests::GICR + 0x1_0000;
    for (offset, value) in [(0x80, 1 << 27 | 1 << 1), (0x100, 1 << 27 | 1 << 1)] {
        let written = gics.access(1, 0, sgi_base + offset, 4, Some(value), &mut kernel);
        assert!(matches!(written, Some(Ok(_))), "{offset:#x}");
    }
    let uart = &mut instance.uarts[0];
    for (offset, value) in [
        (UARTIBRD, 13),
        (UARTLCR_H, 0x70),
        (UARTIMSC, 0x50),
        (UARTCR, 0x301),
    ] {
        uart.write(offset, 4, value, |_| {}).unwrap();
    }
    for byte in b"ls -l\r" {
        uart.receive(*byte).unwrap();
    }
    // One entry read: the FIFO's head is not at its start any more.
    assert_eq!(uart.read(UARTDR, 4).unwrap(), u64::from(b'l'));
    for byte in b"half a li" {
        uart.write(UARTDR, 4, u64::from(*byte), |_| panic!("no line yet"))
            .unwrap();
    }
    instance.typed_ahead[0].extend(b"typed ahead".iter().copied());
    let keyboard = instance.keyboard.as_mut().unwrap();
    assert_eq!(keyboard.route(SWITCH_KEY), Route::Switched(Some(1)));
    instance
}

/// What a guest and the console would see next from `instance`: its UART's registers, the
/// bytes it then receives, the rest of its line, where typing goes.
fn behaviour(instance: &mut Instance) -> Vec<u64> {
    let mut seen = Vec::new();
    let uart = &mut instance.uarts[0];
    for offset in [
        UARTRIS, UARTMIS, UARTCR, UARTLCR_H, UARTIBRD, UARTIMSC, UARTFR,
    ] {
        seen.push(uart.read(offset, 4).unwrap());
    }
    while uart.read(UARTFR, 4).unwrap() & u64::from(crate::pl011::FR_RXFE) == 0 {
        seen.push(uart.read(UARTDR, 4).unwrap());
    }
    uart.write(UARTDR, 4, u64::from(b'\n'), |line| {
        seen.extend(line.iter().map(|&byte| u64::from(byte)))
    })
    .unwrap();
    seen.extend(instance.typed_ahead[0].iter().map(|&byte| u64::from(byte)));
    let keyboard = instance.keyboard.as_mut().unwrap();
    seen.push(match keyboard.route(b'x') {
        Route::Guest(vm) => u64::from(vm),
        _ => u64::MAX,
    });
    seen
}

#[test]
fn a_busy_guest_is_taken_over_as_it_was() {
    let mut old = busy();
    let bytes = old.export();
    let mut new = Instance::fresh(UART);
    new.kept()
        .import(&bytes)
        .expect("the same configuration's state");
    assert_eq!(
        (new.served, new.console_write_failed, new.guest_work),
        (12_345, true, GuestWork::Recover)
    );
    assert_eq!(new.lifecycle, old.lifecycle);
    assert_eq!(
        new.gics, old.gics,
        "every distributor and what the kernel was told"
    );
    assert_ne!(new.gics, gics(true), "not the reset state");
    assert_eq!(behaviour(&mut new), behaviour(&mut old));
    // And it carries on: what it hands over next is what the old one would have.
    assert_eq!(new.export(), old.export());
}

#[test]
fn another_configuration_or_damaged_bytes_are_refused() {
    let bytes = busy().export();
    // Another device address, another guest's GIC model, no console mux.
    let mut moved = Instance::fresh(UART + 0x1000);
    assert_eq!(moved.kept().import(&bytes), Err(BadState));
    let mut v2_gic = Instance::fresh(UART);
    v2_gic.gics = gics(false);
    assert_eq!(v2_gic.kept().import(&bytes), Err(BadState));
    let mut no_mux = Instance::fresh(UART);
    no_mux.keyboard = None;
    assert_eq!(no_mux.kept().import(&bytes), Err(BadState));
    // Every truncation, a byte too many: refused, no panic, and the counters (taken last)
    // untouched.
    for len in 0..bytes.len() {
        let mut new = Instance::fresh(UART);
        assert_eq!(new.kept().import(&bytes[..len]), Err(BadState), "{len}");
        assert_eq!(new.served, 0);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Instance::fresh(UART).kept().import(&longer), Err(BadState));
    // Every single-bit flip: refused or taken, never a panic.
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << bit;
            let _ = Instance::fresh(UART).kept().import(&flipped);
        }
    }
}

#[test]
fn a_version_1_state_is_taken_only_without_guests() {
    let v1 = [0x80, 0x01, 0x01]; // served 128, console_write_failed
    let mut with_guests = Instance::fresh(UART);
    assert_eq!(with_guests.kept().import_v1(&system(), &v1), Err(BadState));
    let mut host_only_system = system();
    host_only_system.vms.retain(|vm| vm.host);
    let mut host_only = Instance::fresh(UART);
    host_only.kept().import_v1(&host_only_system, &v1).unwrap();
    assert_eq!(
        (host_only.served, host_only.console_write_failed),
        (128, true)
    );
}
