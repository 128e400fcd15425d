//! What a guest's SMCCC call means: pure decision logic, host-tested.
//!
//! Ported from the kernel's former in-EL2 policy (`kernel/src/smccc.rs`): SMCCC 1.1 (Arm DEN
//! 0028) discovery, PSCI 1.1 (Arm DEN 0022), and the vendor-hypervisor discovery calls the way
//! KVM (and so pKVM) answers them, so that a Linux guest recognises a KVM-compatible hypervisor
//! (`drivers/firmware/smccc/kvm_guest.c`):
//!
//! - `ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID` (0x8600FF01) returns the KVM UID
//!   `28b46fb6-2ec5-11e9-a9ca-4b564d003a74` in w0..w3, each register holding four bytes of the
//!   UUID (in its usual big-endian byte order) read as a little-endian u32;
//! - `ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID` (0x86000000) returns in r0..r3 the bitmap of
//!   KVM vendor functions 0..127 that are implemented. Upstream KVM sets bits 0 (FEATURES) and
//!   1 (PTP); pKVM for protected guests FEATURES, HYP_MEMINFO and MEM_SHARE, and MMIO_GUARD_*
//!   for guests that may use the MMIO guard. The bitmap claims exactly what the system serves
//!   ([`kvm_features_bitmap`]): the FEATURES call itself (bit 0, answered here), and, when the
//!   system has an mmio-guard component ([`Services::mmio_guard`]), HYP_MEMINFO (bit 2) and
//!   MMIO_GUARD_INFO / ENROLL / MAP / UNMAP (bits 5..=8), and, to a guest when the
//!   memory-protection component serves the system ([`Services::mem_share`]), MEM_SHARE and
//!   MEM_UNSHARE (bits 3, 4). Those the kernel routes by function ID to their components, never
//!   here, so this policy answers them NOT_SUPPORTED.
//!
//! Only the low 32 bits of x0 name the function (SMCCC 1.1 section 2.5), and SMC32/HVC32 calls
//! (bit 30 clear) take 32-bit arguments: the upper halves of x1.. are not the caller's.
//! Anything not listed is answered NOT_SUPPORTED (-1).

use hv_ipc::guest_abi::{kvm, psci, smccc};
use hv_ipc::interfaces::guest_trap::TrapResolution;

/// The KVM vendor functions the mmio-guard component serves, when there is one.
pub const MMIO_GUARD_FUNCTIONS: [u32; 5] = [
    kvm::FUNC_HYP_MEMINFO,
    kvm::FUNC_MMIO_GUARD_INFO,
    kvm::FUNC_MMIO_GUARD_ENROLL,
    kvm::FUNC_MMIO_GUARD_MAP,
    kvm::FUNC_MMIO_GUARD_UNMAP,
];
/// What the system serves besides this component's own calls, as far as discovery goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Services {
    /// There is an mmio-guard component (the kernel routes kvm::HYP_MEMINFO and MMIO_GUARD_* to it).
    pub mmio_guard: bool,
    /// The caller is a guest and the memory-protection component serves its MEM_SHARE and
    /// MEM_UNSHARE (the host shares nothing: it owns its memory).
    pub mem_share: bool,
}

/// The KVM vendor functions the system implements, as the FEATURES call reports them (r0 =
/// functions 0..31, r1 = 32..63, r2 = 64..95, r3 = 96..127).
pub const fn kvm_features_bitmap(services: Services) -> [u64; 4] {
    let mut r0 = 1 << kvm::FUNC_FEATURES;
    if services.mem_share {
        r0 |= (1 << kvm::FUNC_MEM_SHARE) | (1 << kvm::FUNC_MEM_UNSHARE);
    }
    if services.mmio_guard {
        let mut i = 0;
        while i < MMIO_GUARD_FUNCTIONS.len() {
            r0 |= 1 << MMIO_GUARD_FUNCTIONS[i];
            i += 1;
        }
    }
    [r0, 0, 0, 0]
}

/// PSCI functions we answer, for PSCI_FEATURES.
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

fn ret(x0: u64) -> TrapResolution {
    TrapResolution::results([x0, 0, 0, 0])
}

/// A return with status `code` (negative for an error) in x0.
fn status(code: i64) -> TrapResolution {
    ret(code as u64)
}

/// Decides what a guest's SMCCC call does. `regs` are the caller's x0..x7 (function ID in x0);
/// `services` is what the rest of the system serves, for discovery.
pub fn decide(regs: &[u64; 8], services: Services) -> TrapResolution {
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
        smccc::SMCCC_VERSION => ret(smccc::VERSION_1_1),
        smccc::SMCCC_ARCH_FEATURES => {
            let asked = arg(1) as u32;
            let known = asked == smccc::SMCCC_VERSION || asked == smccc::SMCCC_ARCH_FEATURES;
            status(if known {
                smccc::SUCCESS
            } else {
                smccc::NOT_SUPPORTED
            })
        }
        kvm::VENDOR_HYP_CALL_UID => TrapResolution::results(kvm::UID_REGS),
        kvm::FEATURES => TrapResolution::results(kvm_features_bitmap(services)),
        psci::PSCI_VERSION => ret(psci::VERSION_1_1),
        psci::PSCI_FEATURES => {
            let asked = arg(1) as u32;
            let known = SUPPORTED_PSCI.contains(&asked) || asked == smccc::SMCCC_VERSION;
            status(if known {
                smccc::SUCCESS
            } else {
                smccc::NOT_SUPPORTED
            })
        }
        psci::PSCI_CPU_ON_32 | psci::PSCI_CPU_ON_64 => TrapResolution::StartCpu {
            target_mpidr: arg(1),
            entry: arg(2),
            context: arg(3),
        },
        psci::PSCI_CPU_OFF => TrapResolution::StopCpu,
        psci::PSCI_CPU_SUSPEND_32 | psci::PSCI_CPU_SUSPEND_64 => TrapResolution::WaitForInterrupt,
        psci::PSCI_AFFINITY_INFO_32 | psci::PSCI_AFFINITY_INFO_64 => {
            if arg(2) > 3 {
                status(psci::error::INVALID_PARAMETERS)
            } else {
                TrapResolution::AffinityInfo {
                    target_mpidr: arg(1),
                    lowest_level: arg(2),
                }
            }
        }
        psci::PSCI_MIGRATE_INFO_TYPE => status(psci::MIGRATE_INFO_TYPE_NOT_PRESENT),
        psci::PSCI_SYSTEM_OFF => TrapResolution::SystemOff,
        psci::PSCI_SYSTEM_RESET | psci::PSCI_SYSTEM_RESET2_32 | psci::PSCI_SYSTEM_RESET2_64 => {
            TrapResolution::SystemReset
        }
        _ => status(smccc::NOT_SUPPORTED),
    }
}

/// The name of a PSCI function (owner "standard secure service", functions 0x00..0x1F), for
/// logs; `None` for anything else.
pub fn psci_function_name(function: u32) -> Option<&'static str> {
    Some(match function {
        psci::PSCI_VERSION => "PSCI_VERSION",
        psci::PSCI_CPU_SUSPEND_32 => "CPU_SUSPEND32",
        psci::PSCI_CPU_SUSPEND_64 => "CPU_SUSPEND64",
        psci::PSCI_CPU_OFF => "CPU_OFF",
        psci::PSCI_CPU_ON_32 => "CPU_ON32",
        psci::PSCI_CPU_ON_64 => "CPU_ON64",
        psci::PSCI_AFFINITY_INFO_32 => "AFFINITY_INFO32",
        psci::PSCI_AFFINITY_INFO_64 => "AFFINITY_INFO64",
        psci::PSCI_MIGRATE_32 => "MIGRATE32",
        psci::PSCI_MIGRATE_64 => "MIGRATE64",
        psci::PSCI_MIGRATE_INFO_TYPE => "MIGRATE_INFO_TYPE",
        psci::PSCI_MIGRATE_INFO_UP_CPU_32 => "MIGRATE_INFO_UP_CPU32",
        psci::PSCI_MIGRATE_INFO_UP_CPU_64 => "MIGRATE_INFO_UP_CPU64",
        psci::PSCI_SYSTEM_OFF => "SYSTEM_OFF",
        psci::PSCI_SYSTEM_RESET => "SYSTEM_RESET",
        psci::PSCI_SYSTEM_RESET2_32 => "SYSTEM_RESET2_32",
        psci::PSCI_SYSTEM_RESET2_64 => "SYSTEM_RESET2_64",
        psci::PSCI_FEATURES => "PSCI_FEATURES",
        _ if function & 0xBFFF_FFE0 == 0x8400_0000 => "PSCI_UNKNOWN",
        _ => return None,
    })
}

/// The name of any function this policy knows, for logs (`"UNKNOWN"` otherwise).
pub fn function_name(function: u32) -> &'static str {
    match function {
        smccc::SMCCC_VERSION => "SMCCC_VERSION",
        smccc::SMCCC_ARCH_FEATURES => "SMCCC_ARCH_FEATURES",
        kvm::VENDOR_HYP_CALL_UID => "kvm::VENDOR_HYP_CALL_UID",
        kvm::FEATURES => "KVM_FEATURES",
        kvm::HYP_MEMINFO => "kvm::HYP_MEMINFO",
        kvm::MMIO_GUARD_INFO => "kvm::MMIO_GUARD_INFO",
        kvm::MMIO_GUARD_ENROLL => "kvm::MMIO_GUARD_ENROLL",
        kvm::MMIO_GUARD_MAP => "kvm::MMIO_GUARD_MAP",
        kvm::MMIO_GUARD_UNMAP => "kvm::MMIO_GUARD_UNMAP",
        _ => psci_function_name(function).unwrap_or("UNKNOWN"),
    }
}

/// A resolution in two words, for logs: its kind and its most telling value (x0 for a
/// return, the target MPIDR for CPU operations, else 0).
pub fn summarize(resolution: &TrapResolution) -> (&'static str, u64) {
    match *resolution {
        TrapResolution::Return { regs } => ("return", regs[0] as u64),
        TrapResolution::StartCpu { target_mpidr, .. } => ("start-cpu", target_mpidr),
        TrapResolution::StopCpu => ("stop-cpu", 0),
        TrapResolution::AffinityInfo { target_mpidr, .. } => ("affinity-info", target_mpidr),
        TrapResolution::WaitForInterrupt => ("wait-for-interrupt", 0),
        TrapResolution::SystemOff => ("system-off", 0),
        TrapResolution::SystemReset => ("system-reset", 0),
        TrapResolution::InjectUndefined => ("inject-undefined", 0),
        TrapResolution::Retry => ("retry", 0),
        TrapResolution::MmioRead { value } => ("mmio-read", value),
        TrapResolution::MmioWritten => ("mmio-written", 0),
        TrapResolution::ExternalAbort => ("external-abort", 0),
        TrapResolution::Resume => ("resume", 0),
        TrapResolution::InjectHostAbort => ("inject-host-abort", 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_GUARD: Services = Services {
        mmio_guard: true,
        mem_share: false,
    };

    fn call_with(services: Services, function: u32, args: [u64; 3]) -> TrapResolution {
        decide(
            &[function as u64, args[0], args[1], args[2], 0, 0, 0, 0],
            services,
        )
    }

    fn call(function: u32, args: [u64; 3]) -> TrapResolution {
        call_with(Services::default(), function, args)
    }

    #[test]
    fn unknown_functions_are_not_supported() {
        for function in [
            // Arm architecture calls beyond the two we serve (SOC_ID, the workarounds).
            smccc::SMCCC_ARCH_SOC_ID,
            smccc::SMCCC_ARCH_WORKAROUND_1,
            0x8000_FFF0,
            // CPU, SiP and OEM service ranges.
            0x8100_0000,
            0xC200_0001,
            0xC300_0F00,
            // PSCI functions we do not implement, and past the end of PSCI.
            psci::PSCI_MIGRATE_32,
            psci::PSCI_CPU_FREEZE,
            psci::PSCI_SYSTEM_SUSPEND_64,
            psci::PSCI_MEM_PROTECT,
            0x8400_00FF,
            // Vendor hypervisor: other KVM functions, the 64-bit FEATURES id, call count and
            // revision.
            0x8600_0001,
            0xC600_0000,
            0xC600_0002,
            0xC600_00FF,
            0x8600_00FF,
            0x8600_FF00,
            0x8600_FF03,
            // TRNG_VERSION (pKVM forwards TRNG to EL3; we do not serve it), the standard
            // hypervisor service, a Trusted OS call, a yielding call.
            0x8400_0050,
            0x8500_0050,
            0xB200_0000,
            0x0400_0000,
            7,
        ] {
            assert_eq!(
                call(function, [0; 3]),
                status(smccc::NOT_SUPPORTED),
                "{function:#x}"
            );
        }
    }

    #[test]
    fn only_low_32_bits_name_the_function() {
        assert_eq!(
            decide(
                &[0xdead_0000_8400_0000, 0, 0, 0, 0, 0, 0, 0],
                Services::default()
            ),
            ret(psci::VERSION_1_1)
        );
        assert_eq!(
            decide(
                &[0xffff_ffff_8600_ff01, 0, 0, 0, 0, 0, 0, 0],
                Services::default()
            ),
            TrapResolution::results(kvm::UID_REGS)
        );
    }

    #[test]
    fn smccc_and_psci_discovery() {
        assert_eq!(call(smccc::SMCCC_VERSION, [0; 3]), ret(smccc::VERSION_1_1));
        assert_eq!(
            call(
                smccc::SMCCC_ARCH_FEATURES,
                [smccc::SMCCC_VERSION as u64, 0, 0]
            ),
            ret(0)
        );
        assert_eq!(
            call(
                smccc::SMCCC_ARCH_FEATURES,
                [smccc::SMCCC_ARCH_WORKAROUND_1 as u64, 0, 0]
            ),
            status(smccc::NOT_SUPPORTED)
        );
        assert_eq!(
            call(
                smccc::SMCCC_ARCH_FEATURES,
                [kvm::VENDOR_HYP_CALL_UID as u64, 0, 0]
            ),
            status(smccc::NOT_SUPPORTED)
        );
        assert_eq!(call(psci::PSCI_VERSION, [0; 3]), ret(psci::VERSION_1_1));
        for function in SUPPORTED_PSCI {
            assert_eq!(
                call(psci::PSCI_FEATURES, [*function as u64, 0, 0]),
                ret(0),
                "{function:#x}"
            );
        }
        assert_eq!(
            call(psci::PSCI_FEATURES, [smccc::SMCCC_VERSION as u64, 0, 0]),
            ret(0)
        );
        assert_eq!(
            call(psci::PSCI_FEATURES, [psci::PSCI_MIGRATE_32 as u64, 0, 0]),
            status(smccc::NOT_SUPPORTED)
        );
        // PSCI_FEATURES is SMC32: the asked function is the low half of x1 only.
        assert_eq!(
            call(
                psci::PSCI_FEATURES,
                [0x1234_5678_0000_0000 | psci::PSCI_CPU_ON_64 as u64, 0, 0]
            ),
            ret(0)
        );
        assert_eq!(call(psci::PSCI_MIGRATE_INFO_TYPE, [0; 3]), ret(2));
    }

    /// The UID registers follow from the UUID text the way Linux encodes it: UUID bytes in
    /// their big-endian order, each group of four read as a little-endian u32.
    #[test]
    fn kvm_uid_encoding() {
        let hex: Vec<u8> = kvm::UID.bytes().filter(|b| *b != b'-').collect();
        assert_eq!(hex.len(), 32);
        let bytes: Vec<u8> = hex
            .chunks(2)
            .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect();
        let regs: Vec<u64> = bytes
            .chunks(4)
            .map(|word| u32::from_le_bytes(word.try_into().unwrap()) as u64)
            .collect();
        assert_eq!(regs, kvm::UID_REGS);
        assert_eq!(
            call(kvm::VENDOR_HYP_CALL_UID, [0; 3]),
            TrapResolution::results([0xb66fb428, 0xe911c52e, 0x564bcaa9, 0x743a004d])
        );
    }

    /// The function numbers whose bit is set in a FEATURES bitmap.
    fn claimed(bitmap: [u64; 4]) -> Vec<u32> {
        (0..128u32)
            .filter(|n| bitmap[(n / 32) as usize] & (1 << (n % 32)) != 0)
            .collect()
    }

    /// Whether this policy answers KVM function `n` (in its SMC32 or SMC64 form) with anything
    /// but NOT_SUPPORTED.
    fn served_here(services: Services, n: u32) -> bool {
        [0x8600_0000 + n, 0xC600_0000 + n]
            .into_iter()
            .any(|id| call_with(services, id, [0; 3]) != status(smccc::NOT_SUPPORTED))
    }

    #[test]
    fn kvm_features_without_the_guard_reports_only_itself() {
        assert_eq!(
            call(kvm::FEATURES, [0; 3]),
            TrapResolution::results([1, 0, 0, 0])
        );
        // Every function the bitmap claims is answered here with something other than
        // NOT_SUPPORTED, and every other function number is not.
        let services = Services::default();
        let claimed = claimed(kvm_features_bitmap(services));
        assert_eq!(claimed, [kvm::FUNC_FEATURES]);
        for n in 0..128u32 {
            assert_eq!(
                claimed.contains(&n),
                served_here(services, n),
                "KVM function {n}"
            );
        }
    }

    #[test]
    fn a_guest_whose_memory_can_be_shared_is_told_so() {
        let sharing = Services {
            mmio_guard: true,
            mem_share: true,
        };
        let claimed = claimed_by(sharing);
        for n in [kvm::FUNC_MEM_SHARE, kvm::FUNC_MEM_UNSHARE] {
            assert!(claimed.contains(&n), "KVM function {n}");
            // Routed to the memory-protection component by ID, never answered here.
            assert!(!served_here(sharing, n), "KVM function {n}");
        }
        // The host (or a system without sharing) is not.
        assert!(!claimed_by(WITH_GUARD).contains(&kvm::FUNC_MEM_SHARE));
    }

    fn claimed_by(services: Services) -> Vec<u32> {
        claimed(kvm_features_bitmap(services))
    }

    #[test]
    fn kvm_features_with_the_guard_adds_its_functions() {
        let expected = (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
        assert_eq!(
            call_with(WITH_GUARD, kvm::FEATURES, [0; 3]),
            TrapResolution::results([expected, 0, 0, 0])
        );
        // Claimed: what is answered here, plus what the kernel routes to the guard by ID;
        // nothing else. The guard's functions are never answered here (they do not arrive
        // here; if one did, NOT_SUPPORTED is the safe answer).
        let claimed = claimed(kvm_features_bitmap(WITH_GUARD));
        for n in 0..128u32 {
            let guards = MMIO_GUARD_FUNCTIONS.contains(&n);
            let here = served_here(WITH_GUARD, n);
            assert!(!(guards && here), "KVM function {n} served twice");
            assert_eq!(claimed.contains(&n), guards || here, "KVM function {n}");
        }
        for id in [
            kvm::HYP_MEMINFO,
            kvm::MMIO_GUARD_INFO,
            kvm::MMIO_GUARD_ENROLL,
            kvm::MMIO_GUARD_MAP,
            kvm::MMIO_GUARD_UNMAP,
        ] {
            assert_eq!(id & 0xFF, id - 0xC600_0000);
            assert_ne!(function_name(id), "UNKNOWN");
        }
        assert_eq!(kvm::HYP_MEMINFO, 0xC600_0002);
        assert_eq!(kvm::MMIO_GUARD_UNMAP, 0xC600_0008);
    }

    #[test]
    fn everything_else_ignores_the_guard() {
        for function in [
            smccc::SMCCC_VERSION,
            kvm::VENDOR_HYP_CALL_UID,
            psci::PSCI_VERSION,
            psci::PSCI_CPU_ON_64,
            psci::PSCI_SYSTEM_OFF,
            0x8600_0001,
        ] {
            assert_eq!(
                call(function, [1, 2, 3]),
                call_with(WITH_GUARD, function, [1, 2, 3]),
                "{function:#x}"
            );
        }
    }

    #[test]
    fn cpu_on_truncates_32bit_arguments() {
        assert_eq!(
            call(
                psci::PSCI_CPU_ON_32,
                [0xffff_0000_0000_0001, 0x1_4000_0000, 0xaaaa_bbbb_0000_0005]
            ),
            TrapResolution::StartCpu {
                target_mpidr: 1,
                entry: 0x4000_0000,
                context: 5
            }
        );
        assert_eq!(
            call(
                psci::PSCI_CPU_ON_64,
                [1, 0x1_4000_0000, 0xaaaa_bbbb_0000_0005]
            ),
            TrapResolution::StartCpu {
                target_mpidr: 1,
                entry: 0x1_4000_0000,
                context: 0xaaaa_bbbb_0000_0005
            }
        );
    }

    #[test]
    fn affinity_info_levels_and_truncation() {
        assert_eq!(
            call(psci::PSCI_AFFINITY_INFO_64, [1, 4, 0]),
            status(psci::error::INVALID_PARAMETERS)
        );
        assert_eq!(
            call(psci::PSCI_AFFINITY_INFO_64, [0x100, 3, 0]),
            TrapResolution::AffinityInfo {
                target_mpidr: 0x100,
                lowest_level: 3
            }
        );
        // 32-bit: a level of 0x1_0000_0000 is level 0 once truncated; a 64-bit call keeps it.
        assert_eq!(
            call(
                psci::PSCI_AFFINITY_INFO_32,
                [0xffff_ffff_0000_0002, 0x1_0000_0000, 0]
            ),
            TrapResolution::AffinityInfo {
                target_mpidr: 2,
                lowest_level: 0
            }
        );
        assert_eq!(
            call(psci::PSCI_AFFINITY_INFO_64, [2, 0x1_0000_0000, 0]),
            status(psci::error::INVALID_PARAMETERS)
        );
    }

    #[test]
    fn power_state_calls() {
        assert_eq!(
            call(psci::PSCI_SYSTEM_OFF, [0; 3]),
            TrapResolution::SystemOff
        );
        assert_eq!(
            call(psci::PSCI_SYSTEM_RESET, [0; 3]),
            TrapResolution::SystemReset
        );
        assert_eq!(
            call(psci::PSCI_SYSTEM_RESET2_32, [0; 3]),
            TrapResolution::SystemReset
        );
        assert_eq!(
            call(psci::PSCI_SYSTEM_RESET2_64, [0; 3]),
            TrapResolution::SystemReset
        );
        assert_eq!(call(psci::PSCI_CPU_OFF, [0; 3]), TrapResolution::StopCpu);
        assert_eq!(
            call(psci::PSCI_CPU_SUSPEND_32, [0; 3]),
            TrapResolution::WaitForInterrupt
        );
        assert_eq!(
            call(psci::PSCI_CPU_SUSPEND_64, [0x1_0000, 0x4000_0000, 0]),
            TrapResolution::WaitForInterrupt
        );
    }

    #[test]
    fn names() {
        assert_eq!(psci_function_name(psci::PSCI_CPU_ON_64), Some("CPU_ON64"));
        assert_eq!(psci_function_name(0x8400_001F), Some("PSCI_UNKNOWN"));
        assert_eq!(psci_function_name(0xC400_0015), Some("PSCI_UNKNOWN"));
        assert_eq!(psci_function_name(0x8400_0020), None);
        assert_eq!(psci_function_name(kvm::VENDOR_HYP_CALL_UID), None);
        assert_eq!(
            function_name(kvm::VENDOR_HYP_CALL_UID),
            "kvm::VENDOR_HYP_CALL_UID"
        );
        assert_eq!(function_name(0x8600_0001), "UNKNOWN");
        assert_eq!(
            summarize(&call(psci::PSCI_VERSION, [0; 3])),
            ("return", psci::VERSION_1_1)
        );
        assert_eq!(
            summarize(&call(psci::PSCI_CPU_ON_64, [3, 0, 0])),
            ("start-cpu", 3)
        );
    }
}
