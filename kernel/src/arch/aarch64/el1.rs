//! Saving and loading a world's EL1 system registers, and the EL2 controls that differ
//! between the host VM and a component.
//!
//! When a CPU switches from a vCPU to a component (or back), everything the EL1 code can write
//! must be put back as it was, or one world could change the other's translation, vectors or
//! stack. Components run with HCR_EL2.TVM and TRVM (the virtual-memory controls: SCTLR, TTBR0/1,
//! TCR, MAIR, AMAIR, CONTEXTIDR, ESR, FAR, AFSR0/1 trap on write, and on read) and
//! CPTR_EL2.TCPAC (CPACR) set (`controls::TrapControls::component`), so those the host set stay
//! live in the CPU while a component runs and are neither switched nor visible to it. The set
//! below is the rest: what a component can write with an instruction or an exception taken to
//! its own EL1 (Arm ARM D24.2), minus the timers and the GIC CPU interface (see docs/ipc.md,
//! "What isolation covers"). SCTLR, ESR, FAR and AFSR0/1 are in it even so: SCTLR differs
//! between the host and a component, and an exception a component takes writes ESR and FAR
//! (and may write the AFSRs).

use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, Readable};
use core::arch::asm;
use hv_kernel::controls::{self, TrapControls};

macro_rules! el1_registers {
    (
        kept { $($kept:ident: $kept_reg:literal),* $(,)? }
        scratch { $($scratch:ident: $scratch_reg:literal),* $(,)? }
    ) => {
        /// One world's EL1 register state (in this order: `save` and `load` store and load
        /// it in pairs).
        #[derive(Clone, Copy, Debug, Default)]
        #[repr(C)]
        #[allow(missing_docs)]
        pub struct El1Context {
            $(pub $kept: u64,)*
            $(pub $scratch: u64,)*
        }

        impl El1Context {
            /// Every register zero.
            pub const ZERO: Self = Self { $($kept: 0,)* $($scratch: 0,)* };

            /// Reads what a component keeps across a switch: the registers in `kept`.
            pub fn save_component(&mut self) {
                $(
                    // SAFETY: reading an EL1 register at EL2 has no side effect.
                    unsafe { asm!(concat!("mrs {}, ", $kept_reg), out(reg) self.$kept, options(nomem, nostack)) };
                )*
            }

            /// Loads a component's state: its `kept` registers, and zero in every `scratch` one,
            /// so that it sees nothing the world below left there.
            pub fn load_component(&self) {
                $(
                    // SAFETY: as in `load`.
                    unsafe { asm!(concat!("msr ", $kept_reg, ", {}"), in(reg) self.$kept, options(nomem, nostack)) };
                )*
                $(
                    // SAFETY: as in `load`; zero is a valid value of every scratch register.
                    unsafe { asm!(concat!("msr ", $scratch_reg, ", xzr"), options(nomem, nostack)) };
                )*
                // SAFETY: synchronises the writes before the component runs.
                unsafe { asm!("isb", options(nomem, nostack)) };
            }
        }
    };
}

// `kept`: what a component's code relies on across its system calls (its vectors and stack;
// SCTLR cannot change under TVM, but differs from the host's). `scratch`: registers a
// component's code never relies on across a system call (thread pointers it does not use, the
// exception registers its own fatal vectors consume at once, the translation result of an AT
// it does not make, the cache-size selector, the EL0 timer controls of an EL0 it does not
// have); they are not preserved for it, only cleared, which saves a third of the switch.
el1_registers! {
    kept {
        sctlr: "sctlr_el1",
        vbar: "vbar_el1",
        sp_el1: "sp_el1",
    }
    scratch {
        tpidr_el1: "tpidr_el1",
        tpidr_el0: "tpidr_el0",
        tpidrro_el0: "tpidrro_el0",
        sp_el0: "sp_el0",
        elr: "elr_el1",
        spsr: "spsr_el1",
        esr: "esr_el1",
        far: "far_el1",
        afsr0: "afsr0_el1",
        afsr1: "afsr1_el1",
        par: "par_el1",
        csselr: "csselr_el1",
        cntkctl: "cntkctl_el1",
    }
}

/// Stores two EL1 registers into the context at `$context`, at byte `$offset`.
macro_rules! save_pair {
    ($first:literal, $second:literal, $offset:literal) => {
        concat!(
            "mrs {a}, ",
            $first,
            "\n",
            "mrs {b}, ",
            $second,
            "\n",
            "stp {a}, {b}, [{context}, #",
            $offset,
            "]\n"
        )
    };
}

/// Loads two EL1 registers from the context at `$context`, at byte `$offset`.
macro_rules! load_pair {
    ($first:literal, $second:literal, $offset:literal) => {
        concat!(
            "ldp {a}, {b}, [{context}, #",
            $offset,
            "]\n",
            "msr ",
            $first,
            ", {a}\n",
            "msr ",
            $second,
            ", {b}\n"
        )
    };
}

// The offsets `save` and `load` use: the fields in declaration order, eight bytes each.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(El1Context, vbar) == 8 && offset_of!(El1Context, sp_el1) == 16);
    assert!(offset_of!(El1Context, tpidr_el1) == 24 && offset_of!(El1Context, tpidr_el0) == 32);
    assert!(offset_of!(El1Context, tpidrro_el0) == 40 && offset_of!(El1Context, sp_el0) == 48);
    assert!(offset_of!(El1Context, elr) == 56 && offset_of!(El1Context, spsr) == 64);
    assert!(offset_of!(El1Context, esr) == 72 && offset_of!(El1Context, far) == 80);
    assert!(offset_of!(El1Context, afsr0) == 88 && offset_of!(El1Context, afsr1) == 96);
    assert!(offset_of!(El1Context, par) == 104 && offset_of!(El1Context, csselr) == 112);
    assert!(offset_of!(El1Context, cntkctl) == 120 && size_of::<El1Context>() == 128);
};

impl El1Context {
    /// Reads this CPU's EL1 registers (a vCPU's whole state). In pairs, as `stp`s: a switch
    /// to a component and back makes it on every guest hypercall.
    #[inline(always)]
    pub fn save(&mut self) {
        // SAFETY: reading EL1 registers at EL2 has no side effect; the stores go to `self`,
        // 128 bytes (checked above), which the `&mut` makes this code's alone.
        unsafe {
            asm!(
                save_pair!("sctlr_el1", "vbar_el1", 0),
                save_pair!("sp_el1", "tpidr_el1", 16),
                save_pair!("tpidr_el0", "tpidrro_el0", 32),
                save_pair!("sp_el0", "elr_el1", 48),
                save_pair!("spsr_el1", "esr_el1", 64),
                save_pair!("far_el1", "afsr0_el1", 80),
                save_pair!("afsr1_el1", "par_el1", 96),
                save_pair!("csselr_el1", "cntkctl_el1", 112),
                context = in(reg) self as *mut Self,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags),
            )
        };
    }

    /// Writes these values into this CPU's EL1 registers (a vCPU's whole state), in pairs.
    #[inline(always)]
    pub fn load(&self) {
        // SAFETY: the EL1 registers only affect code running at EL1, which is the world these
        // values belong to; EL2 does not depend on them. The loads read `self` (128 bytes);
        // the ISB synchronises the writes before the world runs.
        unsafe {
            asm!(
                load_pair!("sctlr_el1", "vbar_el1", 0),
                load_pair!("sp_el1", "tpidr_el1", 16),
                load_pair!("tpidr_el0", "tpidrro_el0", 32),
                load_pair!("sp_el0", "elr_el1", 48),
                load_pair!("spsr_el1", "esr_el1", 64),
                load_pair!("far_el1", "afsr0_el1", 80),
                load_pair!("afsr1_el1", "par_el1", 96),
                load_pair!("csselr_el1", "cntkctl_el1", 112),
                "isb",
                context = in(reg) self as *const Self,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags, readonly),
            )
        };
    }

    /// The state a component starts in: EL1 MMU off with the instruction cache on, no FP.
    pub fn component_reset() -> Self {
        Self {
            sctlr: controls::sctlr_el1_component(),
            ..Self::default()
        }
    }

    /// The state a guest vCPU starts in: SCTLR_EL1 at its reset value (MMU and caches off),
    /// everything else zero.
    pub fn vcpu_reset() -> Self {
        Self {
            sctlr: controls::sctlr_el1_reset(),
            ..Self::default()
        }
    }
}

/// The component's own exception syndrome, address and return address (ESR_EL1, FAR_EL1,
/// ELR_EL1), read while it is on top: what its FAULT system call reports.
pub fn exception_registers() -> (u64, u64, u64) {
    (ESR_EL1.get(), FAR_EL1.get(), ELR_EL1.get())
}

/// Sets VTTBR_EL2, HCR_EL2 and CPTR_EL2 for the world about to run: its stage 2 `vttbr` and
/// its trap `controls` (a vCPU's, or `TrapControls::component` of them for a component: WFI/WFE,
/// FP/SIMD and the EL1 virtual-memory controls trap for a component, which has no use for them;
/// one that tries is treated as faulty).
#[inline(always)]
pub fn enter_world(vttbr: u64, controls: TrapControls) {
    let TrapControls { hcr, cptr } = controls;
    // SAFETY: these controls only change how EL1 runs; each world's stage 2 is complete, and
    // VMIDs keep their TLB entries apart so no invalidation is needed on the switch.
    unsafe {
        asm!(
            "msr vttbr_el2, {vttbr}",
            "msr hcr_el2, {hcr}",
            "msr cptr_el2, {cptr}",
            "isb",
            vttbr = in(reg) vttbr, hcr = in(reg) hcr, cptr = in(reg) cptr,
            options(nomem, nostack),
        )
    };
}

/// Clears HCR_EL2.IMO in the controls in force: a component entered while this CPU's deadline
/// was armed runs on under them after it was disarmed, and the interrupts it would now bring
/// to EL2 are the vCPU's, which it takes when it runs.
pub fn stop_taking_interrupts() {
    use aarch64_cpu::registers::{HCR_EL2, ReadWriteable};
    HCR_EL2.modify(HCR_EL2::IMO::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
