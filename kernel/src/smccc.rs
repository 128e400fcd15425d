//! What the kernel does with an SMCCC call from the host VM (HVC or trapped SMC).
//!
//! This is the one piece of call policy the kernel holds until the VM manager component
//! exists (DESIGN.md decision 3 moves it there); it is pure logic so it can move unchanged.
//! Function numbers follow SMCCC 1.1 (Arm DEN 0028) and PSCI 1.1 (Arm DEN 0022); the constants
//! come from the `smccc` crate.

pub use smccc::{arch, psci};

/// SMCCC return value for an unknown function (SMCCC 1.1 section 5.2).
pub const NOT_SUPPORTED: u64 = -1i64 as u64;
/// PSCI INVALID_PARAMETERS.
pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
/// The SMCCC version we implement: 1.1.
pub const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// The PSCI version we present: 1.1.
pub const PSCI_VERSION_1_1: u64 = 0x1_0001;
/// MIGRATE_INFO_TYPE: no Trusted OS needs migration.
const MIGRATE_INFO_TYPE_NOT_PRESENT: u64 = 2;

/// What to do with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallAction {
    /// Return these values in x0..x3 to the caller.
    Return([u64; 4]),
    /// Start a secondary vCPU at `entry` with x0 = `context` on the CPU `target_mpidr`.
    CpuOn {
        /// MPIDR of the CPU to start.
        target_mpidr: u64,
        /// Guest entry point (an IPA).
        entry: u64,
        /// Value for the new vCPU's x0.
        context: u64,
    },
    /// Power the calling CPU down through the firmware.
    CpuOff,
    /// Ask the firmware about a CPU's state (AFFINITY_INFO) and return its answer.
    AffinityInfo {
        /// MPIDR of the CPU asked about.
        target_mpidr: u64,
        /// Lowest affinity level that counts.
        lowest_level: u64,
    },
    /// Wait for an interrupt on this CPU, then return success (a power-down state is
    /// served as standby, which PSCI allows).
    Suspend,
    /// The VM powered itself off.
    SystemOff,
    /// The VM asked for a reset.
    SystemReset,
}

/// Function IDs the kernel answers, for PSCI_FEATURES and SMCCC_ARCH_FEATURES.
const SUPPORTED_PSCI: &[u32] = &[
    psci::PSCI_VERSION,
    psci::PSCI_CPU_SUSPEND_32,
    psci::PSCI_CPU_SUSPEND_64,
    psci::PSCI_CPU_OFF,
    psci::PSCI_CPU_ON_32,
    psci::PSCI_CPU_ON_64,
    psci::PSCI_AFFINITY_INFO_32,
    psci::PSCI_AFFINITY_INFO_64,
    psci::PSCI_MIGRATE_INFO_TYPE,
    psci::PSCI_SYSTEM_OFF,
    psci::PSCI_SYSTEM_RESET,
    psci::PSCI_SYSTEM_RESET2_32,
    psci::PSCI_SYSTEM_RESET2_64,
    psci::PSCI_FEATURES,
];

fn ret(x0: u64) -> CallAction {
    CallAction::Return([x0, 0, 0, 0])
}

/// Decides what a host call does. `regs` are the caller's x0..x3; x0 holds the function ID
/// (only its low 32 bits count, SMCCC 1.1 section 2.5).
pub fn decide(regs: [u64; 4]) -> CallAction {
    let function = regs[0] as u32;
    let is_32bit_call = function & (1 << 30) == 0;
    // SMC32/HVC32 calls take 32-bit arguments: the upper halves are not the caller's.
    let arg = |n: usize| {
        if is_32bit_call {
            regs[n] & 0xffff_ffff
        } else {
            regs[n]
        }
    };
    match function {
        arch::SMCCC_VERSION => ret(SMCCC_VERSION_1_1),
        arch::SMCCC_ARCH_FEATURES => {
            let asked = arg(1) as u32;
            let known = asked == arch::SMCCC_VERSION || asked == arch::SMCCC_ARCH_FEATURES;
            ret(if known { 0 } else { NOT_SUPPORTED })
        }
        psci::PSCI_VERSION => ret(PSCI_VERSION_1_1),
        psci::PSCI_FEATURES => {
            let asked = arg(1) as u32;
            let known = SUPPORTED_PSCI.contains(&asked) || asked == arch::SMCCC_VERSION;
            ret(if known { 0 } else { NOT_SUPPORTED })
        }
        psci::PSCI_CPU_ON_32 | psci::PSCI_CPU_ON_64 => CallAction::CpuOn {
            target_mpidr: arg(1),
            entry: arg(2),
            context: arg(3),
        },
        psci::PSCI_CPU_OFF => CallAction::CpuOff,
        psci::PSCI_CPU_SUSPEND_32 | psci::PSCI_CPU_SUSPEND_64 => CallAction::Suspend,
        psci::PSCI_AFFINITY_INFO_32 | psci::PSCI_AFFINITY_INFO_64 => {
            if arg(2) > 3 {
                ret(INVALID_PARAMETERS)
            } else {
                CallAction::AffinityInfo {
                    target_mpidr: arg(1),
                    lowest_level: arg(2),
                }
            }
        }
        psci::PSCI_MIGRATE_INFO_TYPE => ret(MIGRATE_INFO_TYPE_NOT_PRESENT),
        psci::PSCI_SYSTEM_OFF => CallAction::SystemOff,
        psci::PSCI_SYSTEM_RESET | psci::PSCI_SYSTEM_RESET2_32 | psci::PSCI_SYSTEM_RESET2_64 => {
            CallAction::SystemReset
        }
        _ => ret(NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(function: u32, args: [u64; 3]) -> CallAction {
        decide([function as u64, args[0], args[1], args[2]])
    }

    #[test]
    fn unknown_functions_are_not_supported() {
        for function in [
            0xC600_00FFu32,
            0x8600_00FF,
            0x8400_00FF,
            0xC300_0F00,
            0x8000_FFF0,
            7,
        ] {
            assert_eq!(call(function, [0; 3]), ret(NOT_SUPPORTED), "{function:#x}");
        }
    }

    #[test]
    fn only_low_32_bits_name_the_function() {
        assert_eq!(
            decide([0xdead_0000_8400_0000, 0, 0, 0]),
            ret(PSCI_VERSION_1_1)
        );
    }

    #[test]
    fn discovery() {
        assert_eq!(call(arch::SMCCC_VERSION, [0; 3]), ret(SMCCC_VERSION_1_1));
        assert_eq!(call(psci::PSCI_VERSION, [0; 3]), ret(PSCI_VERSION_1_1));
        assert_eq!(
            call(psci::PSCI_FEATURES, [psci::PSCI_CPU_ON_64 as u64, 0, 0]),
            ret(0)
        );
        assert_eq!(
            call(psci::PSCI_FEATURES, [0x8400_0005, 0, 0]),
            ret(NOT_SUPPORTED)
        );
        assert_eq!(
            call(
                arch::SMCCC_ARCH_FEATURES,
                [arch::SMCCC_ARCH_WORKAROUND_1 as u64, 0, 0]
            ),
            ret(NOT_SUPPORTED)
        );
        assert_eq!(call(psci::PSCI_MIGRATE_INFO_TYPE, [0; 3]), ret(2));
    }

    #[test]
    fn cpu_on_truncates_32bit_arguments() {
        assert_eq!(
            call(
                psci::PSCI_CPU_ON_32,
                [0xffff_0000_0000_0001, 0x1_4000_0000, 5]
            ),
            CallAction::CpuOn {
                target_mpidr: 1,
                entry: 0x4000_0000,
                context: 5
            }
        );
        assert_eq!(
            call(psci::PSCI_CPU_ON_64, [1, 0x1_4000_0000, 5]),
            CallAction::CpuOn {
                target_mpidr: 1,
                entry: 0x1_4000_0000,
                context: 5
            }
        );
    }

    #[test]
    fn power_state_calls() {
        assert_eq!(call(psci::PSCI_SYSTEM_OFF, [0; 3]), CallAction::SystemOff);
        assert_eq!(
            call(psci::PSCI_SYSTEM_RESET, [0; 3]),
            CallAction::SystemReset
        );
        assert_eq!(
            call(psci::PSCI_SYSTEM_RESET2_64, [0; 3]),
            CallAction::SystemReset
        );
        assert_eq!(call(psci::PSCI_CPU_OFF, [0; 3]), CallAction::CpuOff);
        assert_eq!(call(psci::PSCI_CPU_SUSPEND_64, [0; 3]), CallAction::Suspend);
        assert_eq!(
            call(psci::PSCI_AFFINITY_INFO_64, [1, 4, 0]),
            ret(INVALID_PARAMETERS)
        );
        assert_eq!(
            call(psci::PSCI_AFFINITY_INFO_64, [1, 0, 0]),
            CallAction::AffinityInfo {
                target_mpidr: 1,
                lowest_level: 0
            }
        );
    }
}
