//! The hot-swap system tests (docs/hot-swap.md): components swapped under a test guest that
//! calls them in a tight loop on 2 CPUs (`tests/guests/swap-load`), which counts every call
//! and checks every answer, so a call lost, refused or answered wrongly fails the test.
//!
//! - `hot-swap-vm-manager-a72`: the VM manager is swapped for a new build (its counters handed
//!   over), then each rollback cause is tried in turn (a corrupt frame, a changed interface
//!   schema, a build that faults before it is ready, one that refuses the state, one that
//!   never answers (the kernel takes its CPU back at the deadline), one that is too slow); the
//!   old instance serves on after each.
//! - `hot-swap-mmio-guard-a72`: the MMIO guard is swapped while the guest maps and unmaps
//!   granules beside a kept set that guards its console; the set survives (the guest checks
//!   it, and its console writes go through the guard), then a build that refuses the state
//!   is rolled back with the set intact.
//! - `hot-swap-vm-manager-hang-max`: the same on a GICv3, with a build that never answers:
//!   the kernel takes the CPU back at the swap's deadline and rolls back.
//! - `linux-guest-hot-swap-a72`: the VM manager is swapped under Debian's Linux as a guest
//!   VM (beside the host's) whose shell has the keyboard: the guest runs a line typed after the
//!   swap only if the new instance took over its emulated console, its GIC and who has the
//!   keyboard. Then a build that refuses the state rolls back, and the old instance carries the
//!   guest on to its power-off.
//! - `hot-swap-rpi4-raspi4b`: the Raspberry Pi 4 image on QEMU's `raspi4b`, whose control line
//!   is the log's mini-UART: the VM manager is swapped, then a build that never answers is
//!   rolled back at the deadline (the Pi's GIC-400), then a corrupt frame is refused, while the
//!   log frames keep coming on the same line.

use super::{Payload, SystemTest};
use crate::qemu::ConsoleInput;
use crate::qemu::CpuModel;
use crate::swap::{PlannedSwap, SwapExpect};
use hv_component_config::SwapTest;

/// Where the guest is looping on both CPUs.
const LOOPING: &str = "swap-load: looping on 2 CPUs";

/// A swap of `component` once the guest loops.
const fn swap(component: &'static str, hook: Option<SwapTest>, expect: SwapExpect) -> PlannedSwap {
    PlannedSwap {
        after: LOOPING,
        times: 1,
        component,
        hook,
        corrupt: false,
        then_type: None,
        expect,
    }
}

const VM_MANAGER_SWAPS: &[PlannedSwap] = &[
    swap("vm-manager", Some(SwapTest::Rebuilt), SwapExpect::Swapped),
    PlannedSwap {
        corrupt: true,
        ..swap("vm-manager", None, SwapExpect::Refused("bad frame CRC"))
    },
    swap(
        "vm-manager",
        Some(SwapTest::SchemaChange),
        SwapExpect::RolledBack("interface schema differs"),
    ),
    swap(
        "vm-manager",
        Some(SwapTest::FaultAtStart),
        SwapExpect::RolledBack("faulted before it was ready"),
    ),
    swap(
        "vm-manager",
        Some(SwapTest::RefuseState),
        SwapExpect::RolledBack("refused the state"),
    ),
    swap(
        "vm-manager",
        Some(SwapTest::Hang),
        SwapExpect::RolledBack("within the deadline"),
    ),
    PlannedSwap {
        then_type: Some("q"),
        ..swap(
            "vm-manager",
            Some(SwapTest::Slow),
            SwapExpect::RolledBack("within the deadline"),
        )
    },
];

/// On a GICv3 (`max`): a build that never answers, caught by the deadline.
const HANG_SWAPS: &[PlannedSwap] = &[PlannedSwap {
    then_type: Some("q"),
    ..swap(
        "vm-manager",
        Some(SwapTest::Hang),
        SwapExpect::RolledBack("within the deadline"),
    )
}];

const RPI4_SWAPS: &[PlannedSwap] = &[
    swap("vm-manager", Some(SwapTest::Rebuilt), SwapExpect::Swapped),
    swap(
        "vm-manager",
        Some(SwapTest::Hang),
        SwapExpect::RolledBack("within the deadline"),
    ),
    PlannedSwap {
        corrupt: true,
        then_type: Some("q"),
        ..swap("vm-manager", None, SwapExpect::Refused("bad frame CRC"))
    },
];

/// Where the guest's shell has the keyboard (the test typed Ctrl-]).
const GUEST_HAS_KEYBOARD: &str = "console: b\"(the keyboard is here now";

const GUEST_VM_SWAPS: &[PlannedSwap] = &[
    PlannedSwap {
        after: GUEST_HAS_KEYBOARD,
        then_type: Some("echo typed-after-the-swap"),
        ..swap("vm-manager", Some(SwapTest::Rebuilt), SwapExpect::Swapped)
    },
    PlannedSwap {
        after: " console: b\"typed-after-the-swap\"",
        then_type: Some("echo typed-after-the-rollback; poweroff -f"),
        ..swap(
            "vm-manager",
            Some(SwapTest::RefuseState),
            SwapExpect::RolledBack("refused the state"),
        )
    },
];

const MMIO_GUARD_SWAPS: &[PlannedSwap] = &[
    swap("mmio-guard", Some(SwapTest::Rebuilt), SwapExpect::Swapped),
    swap(
        "mmio-guard",
        Some(SwapTest::RefuseState),
        SwapExpect::RolledBack("refused the state"),
    ),
];

/// The hot-swap tests.
pub(super) fn tests(tests: &mut Vec<SystemTest>) {
    tests.push(SystemTest {
        manifest: Some("manifests/tests/hot-swap-vm-manager.toml"),
        expect_log: &[
            "component vm-manager swapped: build",
            "runs build",
            "vm-manager: taken over after",
            "component vm-manager: swap rolled back",
            "component vm-manager did not answer by the swap's deadline",
        ],
        expect_console: &["swap-load: PASS"],
        swaps: VM_MANAGER_SWAPS,
        ..SystemTest::new(
            "hot-swap-vm-manager-a72",
            CpuModel::A72,
            2,
            Payload::Guest("hv-guest-swap-load"),
        )
    });
    tests.push(SystemTest {
        manifest: Some("manifests/tests/hot-swap-rpi4.toml"),
        expect_log: &[
            "hot-swap: the control line is on",
            "component vm-manager swapped: build",
            "runs build",
            // The new instance's frames, decoded with its own ELF.
            "vm-manager: taken over after",
        ],
        expect_console: &["swap-load: PASS"],
        swaps: RPI4_SWAPS,
        ..SystemTest::new(
            "hot-swap-rpi4-raspi4b",
            CpuModel::A72,
            4,
            Payload::GuestOnPi("hv-guest-swap-load"),
        )
    });
    // The deadline borrows the GIC's CPU interface: GICv2's above, GICv3's here.
    tests.push(SystemTest {
        manifest: Some("manifests/tests/hot-swap-vm-manager.toml"),
        expect_log: &["component vm-manager did not answer by the swap's deadline"],
        expect_console: &["swap-load: PASS"],
        swaps: HANG_SWAPS,
        ..SystemTest::new(
            "hot-swap-vm-manager-hang-max",
            CpuModel::Max,
            2,
            Payload::Guest("hv-guest-swap-load"),
        )
    });
    tests.push(SystemTest {
        manifest: Some("manifests/tests/linux-guest-hot-swap.toml"),
        expect_log: &[
            "component vm-manager swapped: build",
            "with 1 guest VM(s) and 1 emulated device(s)",
            " console: b\"typed-after-the-swap\"",
            "component vm-manager: swap rolled back",
            " console: b\"typed-after-the-rollback\"",
            "VM guest stopped: it powered off (PSCI SYSTEM_OFF)",
        ],
        host_cpus: Some(1),
        input: &[
            ConsoleInput {
                after: " console: b\"HV-INIT: interactive shell",
                times: 1,
                and_after: None,
                line: "\u{1d}",
            },
            ConsoleInput {
                after: "VM guest stopped: it powered off",
                times: 1,
                and_after: None,
                line: "\u{1d}go",
            },
        ],
        swaps: GUEST_VM_SWAPS,
        ..SystemTest::new(
            "linux-guest-hot-swap-a72",
            CpuModel::A72,
            2,
            Payload::LinuxBesideLinux {
                guest_vcpus: 1,
                guest_in_shell: true,
                upstream_pkvm_guest: false,
            },
        )
    });
    tests.push(SystemTest {
        manifest: Some("manifests/tests/hot-swap-mmio-guard.toml"),
        expect_log: &[
            "component mmio-guard swapped: build",
            "mmio-guard: vm0 taken over",
            "component mmio-guard: swap rolled back",
        ],
        expect_console: &["swap-load: PASS"],
        swaps: MMIO_GUARD_SWAPS,
        ..SystemTest::new(
            "hot-swap-mmio-guard-a72",
            CpuModel::A72,
            2,
            Payload::GuestBin("hv-guest-swap-load", "hv-guest-swap-load-mmio"),
        )
    });
}
