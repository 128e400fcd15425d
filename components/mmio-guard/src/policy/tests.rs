//! Tests of the MMIO guard's policy: every call's good and bad arguments, the checks, the modes,
//! and random sequences of calls against a simple model. This file holds the VM table and the
//! helpers; the tests are in the submodules, by topic.

use super::*;

/// VM 0: optional, RAM at 1 GiB..2 GiB (like the host VM).
const OPTIONAL_VM: u16 = 0;
/// VM 1: enforced, RAM at 2 GiB..2 GiB + 128 MiB.
const ENFORCED_VM: u16 = 1;
/// VM 2: off, no RAM known.
const OFF_VM: u16 = 2;
/// VM 3 is not in the table.
const UNLISTED_VM: u16 = 3;

const RAM_START: u64 = 0x4000_0000;
const RAM_END: u64 = 0x8000_0000;
/// A device page below RAM (QEMU virt's PL011).
const UART: u64 = 0x0900_0000;
/// The next granule.
const UART_NEXT: u64 = UART + GRANULE_SIZE;

const TABLE: &[VmConfig] = &[
    VmConfig {
        vm: OPTIONAL_VM,
        ram_start: RAM_START,
        ram_end: RAM_END,
        mode: Mode::Optional,
    },
    VmConfig {
        vm: ENFORCED_VM,
        ram_start: 0x8000_0000,
        ram_end: 0x8800_0000,
        mode: Mode::Enforced,
    },
    VmConfig {
        vm: OFF_VM,
        ram_start: 0,
        ram_end: 0,
        mode: Mode::Off,
    },
];

const ALL_FUNCTIONS: [u32; 5] = [
    HYP_MEMINFO,
    MMIO_GUARD_INFO,
    MMIO_GUARD_ENROLL,
    MMIO_GUARD_MAP,
    MMIO_GUARD_UNMAP,
];

fn guard() -> Guard {
    Guard::new(TABLE)
}

fn call(guard: &mut Guard, vm: u16, function: u32, args: [u64; 3]) -> Answer {
    guard.hypercall(
        vm,
        &[
            function.into(),
            args[0],
            args[1],
            args[2],
            0xdead,
            0xbeef,
            0,
            0,
        ],
    )
}

fn status(code: i64) -> Answer {
    Answer {
        regs: [code as u64, 0, 0, 0],
        change: None,
    }
}

fn success(change: Change) -> Answer {
    Answer {
        regs: [SUCCESS as u64, 0, 0, 0],
        change: Some(change),
    }
}

fn map(guard: &mut Guard, vm: u16, ipa: u64) -> Answer {
    call(guard, vm, MMIO_GUARD_MAP, [ipa, 0, 0])
}

fn unmap(guard: &mut Guard, vm: u16, ipa: u64) -> Answer {
    call(guard, vm, MMIO_GUARD_UNMAP, [ipa, 0, 0])
}

fn enroll(guard: &mut Guard, vm: u16) -> Answer {
    call(guard, vm, MMIO_GUARD_ENROLL, [0; 3])
}

fn allowed(guard: &mut Guard, vm: u16, ipa: u64, len: u64) -> bool {
    guard.check(vm, Ipa(ipa), len).allowed
}

/// Everything observable about one VM, to show that a failed call changed nothing.
fn snapshot(guard: &Guard, vm: u16) -> (bool, Vec<GranuleRange>, u64) {
    (
        guard.is_enrolled(vm),
        guard.mapped(vm).to_vec(),
        guard.refused(vm),
    )
}

mod calls;
mod checks;
mod map;
mod model;
mod modes;
