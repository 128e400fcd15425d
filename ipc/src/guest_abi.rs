//! The numbers of the guest-facing hypercall ABI, defined once for everyone who needs them: the
//! kernel, the components that answer the calls and the test guests that make them.
//!
//! Guests call with SMCCC 1.1 (Arm DEN 0028): function ID in w0, arguments in x1.., results in
//! x0..x3, a negative x0 for an error. What lives here:
//!
//! - [`smccc`]: the convention's return codes and architecture calls;
//! - [`psci`]: PSCI 1.1 (Arm DEN 0022) function IDs and return codes;
//! - [`kvm`]: the KVM vendor-hypervisor service as Linux and Android guests use it (UID,
//!   feature bitmap, HYP_MEMINFO, MEM_SHARE/UNSHARE, the MMIO guard in Android's numbering;
//!   see Linux `include/linux/arm-smccc.h`);
//! - [`host`]: our own calls, in the vendor-hypervisor range past KVM's numbers 0..127.
//!
//! Where the `smccc` crate defines a number, it is taken from there. Return codes (and results
//! that share x0 with them) are `i64`, the signed view of x0 (`code as u64` is the register
//! value). `docs/guest-abi.md` says what
//! each call does.

/// The SMC Calling Convention's return codes (SMCCC 1.1 section 5.2) and architecture calls.
pub mod smccc {
    pub use ::smccc::arch::{
        SMCCC_ARCH_FEATURES, SMCCC_ARCH_SOC_ID, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2,
        SMCCC_ARCH_WORKAROUND_3, SMCCC_VERSION,
    };

    /// The call succeeded.
    pub const SUCCESS: i64 = ::smccc::error::SUCCESS as i64;
    /// Unknown function ID, or a function the callee does not implement.
    pub const NOT_SUPPORTED: i64 = ::smccc::arch::error::NOT_SUPPORTED as i64;
    /// The call is not needed on this system (SMCCC_ARCH_FEATURES of a workaround).
    pub const NOT_REQUIRED: i64 = ::smccc::arch::error::NOT_REQUIRED as i64;
    /// An argument is invalid.
    pub const INVALID_PARAMETER: i64 = ::smccc::arch::error::INVALID_PARAMETER as i64;

    /// SMCCC_VERSION's answer for version 1.1 (major in bits 30:16, minor in 15:0).
    pub const VERSION_1_1: u64 = 0x1_0001;

    /// Bit 31 of a function ID: a fast call (all calls here are).
    pub const FAST_CALL: u32 = 1 << 31;
    /// Bit 30 of a function ID: the SMC64/HVC64 calling convention (64-bit arguments).
    pub const CONVENTION_64: u32 = 1 << 30;
    /// Where the owning entity's number sits in a function ID (bits 29:24).
    pub const OWNER_SHIFT: u32 = 24;
    /// The owning entity of standard secure services (PSCI among them).
    pub const OWNER_STANDARD_SECURE: u32 = 4;
    /// The owning entity of vendor hypervisor services (KVM's, and ours).
    pub const OWNER_VENDOR_HYP: u32 = 6;

    /// The ID of fast call `function` (bits 15:0, so below 0x1_0000) of `owner`, with 64-bit
    /// arguments if `convention_64`.
    pub const fn fast_call(owner: u32, convention_64: bool, function: u32) -> u32 {
        let convention = if convention_64 { CONVENTION_64 } else { 0 };
        FAST_CALL | convention | (owner << OWNER_SHIFT) | function
    }
}

/// PSCI 1.1 (Arm DEN 0022): function IDs (from the `smccc` crate) and return codes.
pub mod psci {
    pub use ::smccc::psci::{
        PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_DEFAULT_SUSPEND_32,
        PSCI_CPU_DEFAULT_SUSPEND_64, PSCI_CPU_FREEZE, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
        PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MEM_PROTECT,
        PSCI_MEM_PROTECT_CHECK_RANGE_32, PSCI_MEM_PROTECT_CHECK_RANGE_64, PSCI_MIGRATE_32,
        PSCI_MIGRATE_64, PSCI_MIGRATE_INFO_TYPE, PSCI_MIGRATE_INFO_UP_CPU_32,
        PSCI_MIGRATE_INFO_UP_CPU_64, PSCI_NODE_HW_STATE_32, PSCI_NODE_HW_STATE_64,
        PSCI_SET_SUSPEND_MODE, PSCI_STAT_COUNT_32, PSCI_STAT_COUNT_64, PSCI_STAT_RESIDENCY_32,
        PSCI_STAT_RESIDENCY_64, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_SYSTEM_RESET2_32,
        PSCI_SYSTEM_RESET2_64, PSCI_SYSTEM_SUSPEND_32, PSCI_SYSTEM_SUSPEND_64, PSCI_VERSION,
    };

    /// PSCI_VERSION's answer for version 1.1 (major in bits 31:16, minor in 15:0).
    pub const VERSION_1_1: u64 = 0x1_0001;

    /// AFFINITY_INFO: at least one CPU of the affinity instance is on. (Signed, like the
    /// error codes the same call may return.)
    pub const AFFINITY_ON: i64 = 0;
    /// AFFINITY_INFO: every CPU of the affinity instance is off.
    pub const AFFINITY_OFF: i64 = 1;
    /// AFFINITY_INFO: the affinity instance is being turned on.
    pub const AFFINITY_ON_PENDING: i64 = 2;

    /// MIGRATE_INFO_TYPE: no Trusted OS is present, or none needs migration.
    pub const MIGRATE_INFO_TYPE_NOT_PRESENT: i64 = 2;

    /// PSCI return codes ("Return error codes" in Arm DEN 0022), as the signed x0.
    pub mod error {
        use ::smccc::psci::error as crate_codes;

        /// The call succeeded.
        pub const SUCCESS: i64 = ::smccc::error::SUCCESS as i64;
        /// Unknown or unimplemented function.
        pub const NOT_SUPPORTED: i64 = crate_codes::NOT_SUPPORTED as i64;
        /// An argument is invalid (an unknown CPU, say).
        pub const INVALID_PARAMETERS: i64 = crate_codes::INVALID_PARAMETERS as i64;
        /// The caller may not do this.
        pub const DENIED: i64 = crate_codes::DENIED as i64;
        /// CPU_ON of a CPU that is on already.
        pub const ALREADY_ON: i64 = crate_codes::ALREADY_ON as i64;
        /// CPU_ON of a CPU that is being turned on.
        pub const ON_PENDING: i64 = crate_codes::ON_PENDING as i64;
        /// The implementation failed.
        pub const INTERNAL_FAILURE: i64 = crate_codes::INTERNAL_FAILURE as i64;
        /// The target is not present.
        pub const NOT_PRESENT: i64 = crate_codes::NOT_PRESENT as i64;
        /// The target is disabled.
        pub const DISABLED: i64 = crate_codes::DISABLED as i64;
        /// An address argument is invalid.
        pub const INVALID_ADDRESS: i64 = crate_codes::INVALID_ADDRESS as i64;
    }
}

/// The KVM vendor-hypervisor service (Linux `include/linux/arm-smccc.h`,
/// `Documentation/virt/kvm/arm/hypercalls.rst`), which pKVM guests use. Function numbers 0..127
/// are KVM's; the MMIO guard calls use Android's numbering (upstream's MMIO_GUARD is the same
/// 7 as Android's MAP).
pub mod kvm {
    use super::smccc::{OWNER_VENDOR_HYP, fast_call};

    /// `ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID` (SMC32): the vendor hypervisor's UID in w0..w3.
    pub const VENDOR_HYP_CALL_UID: u32 = fast_call(OWNER_VENDOR_HYP, false, 0xFF01);
    /// KVM's vendor-hypervisor UID.
    pub const UID: &str = "28b46fb6-2ec5-11e9-a9ca-4b564d003a74";
    /// [`UID`] as [`VENDOR_HYP_CALL_UID`] returns it in w0..w3, each register four bytes of
    /// the UUID read as a little-endian u32 (`ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0..3`).
    pub const UID_REGS: [u64; 4] = [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d];

    /// KVM function number of FEATURES (`ARM_SMCCC_KVM_FUNC_FEATURES`).
    pub const FUNC_FEATURES: u32 = 0;
    /// KVM function number of HYP_MEMINFO: the hypervisor's memory-protection granule.
    pub const FUNC_HYP_MEMINFO: u32 = 2;
    /// KVM function number of MEM_SHARE: a protected guest shares a page with the host.
    pub const FUNC_MEM_SHARE: u32 = 3;
    /// KVM function number of MEM_UNSHARE.
    pub const FUNC_MEM_UNSHARE: u32 = 4;
    /// KVM function number of MMIO_GUARD_INFO: the MMIO guard's granule.
    pub const FUNC_MMIO_GUARD_INFO: u32 = 5;
    /// KVM function number of MMIO_GUARD_ENROLL: only MAPped granules are emulated from now on.
    pub const FUNC_MMIO_GUARD_ENROLL: u32 = 6;
    /// KVM function number of MMIO_GUARD_MAP: x1 = a granule the guest uses as MMIO.
    pub const FUNC_MMIO_GUARD_MAP: u32 = 7;
    /// KVM function number of MMIO_GUARD_UNMAP: x1 = a granule no longer used as MMIO.
    pub const FUNC_MMIO_GUARD_UNMAP: u32 = 8;

    /// The SMC64 fast-call ID of KVM vendor function `function`: `0xC600_0000 | function`.
    pub const fn function_id(function: u32) -> u32 {
        fast_call(OWNER_VENDOR_HYP, true, function)
    }

    /// `ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID` (SMC32): the bitmap of implemented KVM
    /// functions 0..127 in x0..x3.
    pub const FEATURES: u32 = fast_call(OWNER_VENDOR_HYP, false, FUNC_FEATURES);
    /// HYP_MEMINFO's ID.
    pub const HYP_MEMINFO: u32 = function_id(FUNC_HYP_MEMINFO);
    /// MEM_SHARE's ID: x1 = the IPA of one 4 KiB page of the guest's RAM (with or without its
    /// shared IPA bit), x2 = x3 = 0. The host may then access the page, and a VM with a shared
    /// bit also reaches it at its IPA with the bit set. x0 = a [`code`].
    pub const MEM_SHARE: u32 = function_id(FUNC_MEM_SHARE);
    /// MEM_UNSHARE's ID: x1 = the IPA of one page it shares, x2 = x3 = 0. When it returns the
    /// host can no longer reach the page, nor the guest through its alias. x0 = a [`code`].
    pub const MEM_UNSHARE: u32 = function_id(FUNC_MEM_UNSHARE);

    /// What MEM_SHARE and MEM_UNSHARE return in x0: the host page-ownership calls' codes.
    pub mod code {
        pub use crate::guest_abi::host::code::{
            ALREADY_SHARED, INVALID_PARAMETER, NOT_OWNED, NOT_SHARED, NOT_SUPPORTED, SUCCESS,
        };
    }
    /// MMIO_GUARD_INFO's ID.
    pub const MMIO_GUARD_INFO: u32 = function_id(FUNC_MMIO_GUARD_INFO);
    /// MMIO_GUARD_ENROLL's ID.
    pub const MMIO_GUARD_ENROLL: u32 = function_id(FUNC_MMIO_GUARD_ENROLL);
    /// MMIO_GUARD_MAP's ID.
    pub const MMIO_GUARD_MAP: u32 = function_id(FUNC_MMIO_GUARD_MAP);
    /// MMIO_GUARD_UNMAP's ID.
    pub const MMIO_GUARD_UNMAP: u32 = function_id(FUNC_MMIO_GUARD_UNMAP);
}

/// Our own vendor-hypervisor calls (SMC64 fast calls, numbers 128 and up so they never meet
/// KVM's): the host's page-ownership calls, served by mem-protect (`docs/mem-protect.md`), and a
/// health check of the component path.
pub mod host {
    use super::kvm::function_id;

    /// The VM manager calls the supervisor's Ping with x1 as the nonce and returns the answer
    /// in x0: a health check of the component path, and what `cargo xtask bench` times for a
    /// component-to-component call.
    pub const HYP_PING_SUPERVISOR: u32 = function_id(0x80);
    /// Share one page (x1 = its PA) with the hypervisor.
    pub const HOST_SHARE_HYP: u32 = function_id(0x90);
    /// Stop sharing one page (x1 = its PA) with the hypervisor.
    pub const HOST_UNSHARE_HYP: u32 = function_id(0x91);
    /// Donate x2 pages from PA x1 to guest x3.
    pub const HOST_DONATE_GUEST: u32 = function_id(0x92);
    /// Take x2 pages from PA x1 back from guest x3.
    pub const HOST_RECLAIM: u32 = function_id(0x93);
    /// The pages guest VM x1 shares with the host (MEM_SHARE), in ascending physical order:
    /// x2 = n gives x0 = SUCCESS, x1 = the PA of the n-th, x2 = how many there are; x0 =
    /// INVALID_PARAMETER for no such guest or n past the last.
    pub const HOST_GUEST_SHARED: u32 = function_id(0x94);
    /// The component template's counter (`components/template`): add x1, return the total in
    /// x1 (x0 = INVALID_PARAMETER, nothing added, if it would overflow).
    pub const TEMPLATE_ADD: u32 = function_id(0xA0);
    /// The component template's counter: return the total in x1.
    pub const TEMPLATE_READ: u32 = function_id(0xA1);
    /// The state of guest VM x1, answered by the VM manager to the host only: x0 = SUCCESS,
    /// x1 = a [`vm_state`] code and x2 = how many times it has started (creation, resets and
    /// restarts), or x0 = INVALID_PARAMETER for no such guest (or the host).
    pub const HOST_VM_STATE: u32 = function_id(0xB0);
    /// Restart guest VM x1, which must be off (powered off, or failed to reset): its memory is
    /// wiped, its images reloaded from the pristine copy and it starts afresh. x0 = SUCCESS,
    /// INVALID_PARAMETER for no such guest, [`code::VM_RUNNING`] if it is not off, NOT_SUPPORTED
    /// if it could not be reloaded.
    pub const HOST_VM_RESTART: u32 = function_id(0xB1);
    /// Stop guest VM x1: vCPUs not yet running are cancelled, running ones stop at their next
    /// exit to the hypervisor; HOST_VM_STATE says OFF once none runs. x0 = SUCCESS (also for a
    /// guest already off), INVALID_PARAMETER for no such guest, NOT_SUPPORTED if it could not
    /// be stopped.
    pub const HOST_VM_STOP: u32 = function_id(0xB2);
    /// Type into guest VM x1's console: x2 = how many bytes (0 to 16), x3 then x4 = the bytes,
    /// first in the lowest byte of x3. They arrive in its emulated UART's receive FIFO (and
    /// raise its receive interrupt as the guest set it up). x0 = SUCCESS with x1 = bytes taken
    /// (fewer when its FIFO filled or its receiver is off: the rest are the caller's to resend),
    /// INVALID_PARAMETER for no such guest, more than 16 bytes, or a guest without an emulated
    /// console.
    pub const HOST_VM_CONSOLE_INPUT: u32 = function_id(0xB3);

    /// HOST_VM_STATE's answers.
    pub mod vm_state {
        /// Created and started; it has not powered off.
        pub const RUNNING: u64 = 0;
        /// It powered off (PSCI SYSTEM_OFF), or could not be reset.
        pub const OFF: u64 = 1;
        /// It could not be created or started.
        pub const FAILED: u64 = 2;
    }

    /// What the page-ownership calls return in x0 (signed): SMCCC's codes and three of ours.
    pub mod code {
        pub use crate::guest_abi::smccc::{INVALID_PARAMETER, NOT_SUPPORTED, SUCCESS};

        /// A page is not owned by the party the call needs.
        pub const NOT_OWNED: i64 = -5;
        /// A page is shared already.
        pub const ALREADY_SHARED: i64 = -6;
        /// A page is not shared.
        pub const NOT_SHARED: i64 = -7;
        /// The guest VM runs (HOST_VM_RESTART needs it off).
        pub const VM_RUNNING: i64 = -8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers guests and docs know, spelled out once more so a slip in the derivations
    /// shows.
    #[test]
    fn function_ids_are_the_published_ones() {
        assert_eq!(kvm::VENDOR_HYP_CALL_UID, 0x8600_FF01);
        assert_eq!(kvm::FEATURES, 0x8600_0000);
        assert_eq!(kvm::HYP_MEMINFO, 0xC600_0002);
        assert_eq!(kvm::MEM_SHARE, 0xC600_0003);
        assert_eq!(kvm::MEM_UNSHARE, 0xC600_0004);
        assert_eq!(kvm::MMIO_GUARD_INFO, 0xC600_0005);
        assert_eq!(kvm::MMIO_GUARD_ENROLL, 0xC600_0006);
        assert_eq!(kvm::MMIO_GUARD_MAP, 0xC600_0007);
        assert_eq!(kvm::MMIO_GUARD_UNMAP, 0xC600_0008);
        assert_eq!(host::HYP_PING_SUPERVISOR, 0xC600_0080);
        assert_eq!(
            [
                host::HOST_SHARE_HYP,
                host::HOST_UNSHARE_HYP,
                host::HOST_DONATE_GUEST,
                host::HOST_RECLAIM
            ],
            [0xC600_0090, 0xC600_0091, 0xC600_0092, 0xC600_0093]
        );
        assert_eq!(host::HOST_GUEST_SHARED, 0xC600_0094);
        assert_eq!(
            [host::TEMPLATE_ADD, host::TEMPLATE_READ],
            [0xC600_00A0, 0xC600_00A1]
        );
        assert_eq!(
            [
                host::HOST_VM_STATE,
                host::HOST_VM_RESTART,
                host::HOST_VM_STOP,
                host::HOST_VM_CONSOLE_INPUT
            ],
            [0xC600_00B0, 0xC600_00B1, 0xC600_00B2, 0xC600_00B3]
        );
        assert_eq!(psci::PSCI_CPU_ON_64, smccc::fast_call(4, true, 3));
    }

    #[test]
    fn return_codes_are_the_published_ones() {
        assert_eq!(
            [
                smccc::SUCCESS,
                smccc::NOT_SUPPORTED,
                smccc::NOT_REQUIRED,
                smccc::INVALID_PARAMETER
            ],
            [0, -1, -2, -3]
        );
        assert_eq!(
            [
                psci::error::NOT_SUPPORTED,
                psci::error::INVALID_PARAMETERS,
                psci::error::ALREADY_ON,
                psci::error::INVALID_ADDRESS
            ],
            [-1, -2, -4, -9]
        );
        assert_eq!(smccc::NOT_SUPPORTED as u64, u64::MAX);
        assert_eq!(
            [
                kvm::code::SUCCESS,
                kvm::code::NOT_SUPPORTED,
                kvm::code::INVALID_PARAMETER,
                kvm::code::NOT_OWNED,
                kvm::code::ALREADY_SHARED,
                kvm::code::NOT_SHARED
            ],
            [0, -1, -3, -5, -6, -7]
        );
    }

    #[test]
    fn the_uid_registers_spell_the_uid() {
        let hex: String = kvm::UID.chars().filter(|c| *c != '-').collect();
        for (index, register) in kvm::UID_REGS.iter().enumerate() {
            let bytes = (*register as u32).to_le_bytes();
            let expected = u32::from_str_radix(&hex[index * 8..index * 8 + 8], 16).unwrap();
            assert_eq!(u32::from_be_bytes(bytes), expected, "register {index}");
        }
    }
}
