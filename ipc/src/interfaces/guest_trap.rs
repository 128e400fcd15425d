//! Guest traps the kernel routes to a component, and how the component resolves them.
//!
//! The kernel keeps the mechanism (saving registers, starting CPUs through the firmware,
//! injecting exceptions) and asks a component for the decision: which trap means what for this
//! VM. The component answers with a [`TrapResolution`], a small set of actions the kernel knows
//! how to carry out, so the component never touches the vCPU's state itself. Calls on this
//! interface always come from the kernel ([`SENDER_KERNEL`](crate::abi::SENDER_KERNEL)), on the
//! trapping vCPU's behalf, which stays stopped until the reply.
//!
//! Three kinds of trap are routed: SMCCC calls (PSCI and friends, and function-ID ranges such
//! as the MMIO guard's), data aborts on emulated device pages ([`GuestTrap::Mmio`]) and the
//! host's stage-2 faults ([`GuestTrap::Stage2Fault`]); the manifest's route table decides which
//! component gets each (`docs/ipc.md`).

use crate::abi;
use crate::addr::Ipa;

crate::interface! {
    /// Guest traps routed to a component.
    pub interface GuestTrapInterface {
        id = abi::interface::GUEST_TRAP;
        name = "guest-trap";
        server = GuestTrapServer;

        /// A trap taken from a guest, with what the component needs to decide on it.
        request GuestTrap {
            /// An SMCCC call (Arm DEN 0028): a guest's HVC, or an SMC trapped by HCR_EL2.TSC.
            Smccc {
                /// The VM the call came from.
                vm: u16,
                /// The calling vCPU, within that VM.
                vcpu: u16,
                /// The instruction that made the call.
                conduit: Conduit,
                /// The caller's x0..x7: the function id in x0 and its arguments.
                regs: [u64; 8],
            } => smccc,
            /// A data access to an IPA the VM's stage 2 leaves unmapped because the manifest
            /// makes the device there emulated. Only accesses the syndrome fully describes
            /// (ESR ISV = 1) arrive here; the kernel never guesses at the others.
            Mmio {
                /// The VM.
                vm: u16,
                /// The vCPU.
                vcpu: u16,
                /// The intermediate physical address of the first byte.
                ipa: Ipa,
                /// Bytes accessed: 1, 2, 4 or 8.
                size: u8,
                /// A write (true) or a read.
                write: bool,
                /// For a write, the value written (the source register, truncated to `size`).
                value: u64,
            // A component the manifest routes no MMIO to never sees one: the default is what
            // the hardware does for an access nothing serves.
            } => mmio else TrapResolution::ExternalAbort,
            /// A guest's write of a GICv3 SGI register (ICC_SGI1R_EL1, ICC_ASGI1R_EL1 or
            /// ICC_SGI0R_EL1), which traps to EL2 while its interrupts are virtual
            /// (HCR_EL2.IMO/FMO): it sends software-generated interrupts to vCPUs of its VM.
            /// Routed with `"mmio"`: the component that emulates the guest's devices emulates
            /// its distributor. Answered with [`TrapResolution::MmioWritten`].
            SgiWrite {
                /// The VM.
                vm: u16,
                /// The sending vCPU.
                vcpu: u16,
                /// The register written: [`SgiRegister`].
                register: SgiRegister,
                /// The value written (the SGI's INTID, target list and affinity).
                value: u64,
            } => sgi_write else TrapResolution::InjectUndefined,
            /// A host VM access its stage 2 does not translate (the memory-protection component
            /// builds that stage 2 lazily). Routed by `"host-stage2"`.
            Stage2Fault {
                /// The VM (the host, 0).
                vm: u16,
                /// The vCPU.
                vcpu: u16,
                /// The intermediate physical address of the faulting byte.
                ipa: Ipa,
                /// The faulting virtual address (FAR), for the record.
                far: u64,
                /// A write (data aborts only).
                write: bool,
                /// An instruction fetch rather than a data access.
                instruction: bool,
                /// The access came from EL0.
                from_el0: bool,
            // Likewise for a component that does not build the host's stage 2.
            } => stage2_fault else TrapResolution::InjectHostAbort,
        }

        /// What the kernel does with the trapped vCPU.
        reply TrapResolution {
            /// Set the caller's x0..x3 to `regs` and continue after the calling instruction.
            /// Made with [`TrapResolution::results`] and read with
            /// [`TrapResolution::registers`].
            Return {
                /// The results, x0 first, as signed values: a zigzag varint carries SMCCC's
                /// small negative results (its error codes, NOT_SUPPORTED most of all) in one
                /// byte instead of ten.
                regs: [i64; 4],
            },
            /// Start the physical CPU `target_mpidr` (PSCI CPU_ON through the firmware) and enter
            /// the calling VM there at `entry` with x0 = `context`. The caller gets the
            /// firmware's PSCI status in x0.
            StartCpu {
                /// MPIDR of the CPU to start.
                target_mpidr: u64,
                /// The new vCPU's entry point (an IPA).
                entry: u64,
                /// The new vCPU's x0.
                context: u64,
            },
            /// Power the calling CPU down (PSCI CPU_OFF through the firmware). The vCPU does not
            /// continue; it can be started again with [`TrapResolution::StartCpu`].
            StopCpu,
            /// Ask the firmware about a CPU's state (PSCI AFFINITY_INFO) and return its answer
            /// in the caller's x0.
            AffinityInfo {
                /// MPIDR of the CPU asked about.
                target_mpidr: u64,
                /// Lowest affinity level that counts (0..=3).
                lowest_level: u64,
            },
            /// Wait on this CPU until an interrupt is pending, then continue after the call with
            /// x0 = 0 (PSCI SUCCESS). How CPU_SUSPEND is served: standby is a state PSCI allows
            /// for any requested power state.
            WaitForInterrupt,
            /// The VM powered itself off (PSCI SYSTEM_OFF).
            SystemOff,
            /// The VM asked to be reset (PSCI SYSTEM_RESET, SYSTEM_RESET2).
            SystemReset,
            /// Raise an UNDEFINED instruction exception in the guest at the calling instruction,
            /// as hardware without the call would.
            InjectUndefined,
            /// Resume the vCPU at the trapping instruction, so it executes again (and traps
            /// again). For a component that cannot decide yet, e.g. while the VM's
            /// configuration is changing under it.
            Retry,
            /// An emulated read ([`GuestTrap::Mmio`]) returns `value`: the kernel puts it in the
            /// access's register (zero- or sign-extended as the load says) and steps over it.
            MmioRead {
                /// The value read (the low `size` bytes count).
                value: u64,
            },
            /// An emulated write ([`GuestTrap::Mmio`], [`GuestTrap::SgiWrite`]) is done: the
            /// kernel steps over it.
            MmioWritten,
            /// Refuse the access ([`GuestTrap::Mmio`]): the kernel injects a synchronous external
            /// abort into the guest at the access, with FAR set, as the hardware would for a bus
            /// error.
            ExternalAbort,
            /// The stage 2 now translates the access ([`GuestTrap::Stage2Fault`]): resume the
            /// vCPU at the faulting instruction, which executes again.
            Resume,
            /// The host may not access this memory ([`GuestTrap::Stage2Fault`]): the kernel injects
            /// the abort pKVM injects, so the host's exception fixups run: the syndrome repainted
            /// as an abort taken at EL1 (unless it came from EL0), ISS.S1PTW set as the marker,
            /// FAR kept, entry at VBAR_EL1.
            InjectHostAbort,
        }

        /// Which GICv3 SGI register a [`GuestTrap::SgiWrite`] wrote.
        enum SgiRegister {
            /// ICC_SGI1R_EL1: a group 1 SGI for the current security state.
            Sgi1r,
            /// ICC_ASGI1R_EL1: a group 1 SGI for the other security state.
            Asgi1r,
            /// ICC_SGI0R_EL1: a group 0 SGI.
            Sgi0r,
        }

        /// The instruction that made an SMCCC call. It matters for where the guest resumes: a
        /// trapped HVC returns past the instruction, a trapped SMC at it, so the kernel steps
        /// over it for [`TrapResolution::Return`]; and a guest may treat the two differently.
        enum Conduit {
            /// `HVC #0`.
            Hvc,
            /// `SMC #0`, trapped by HCR_EL2.TSC.
            Smc,
        }
    }
}

impl TrapResolution {
    /// [`TrapResolution::Return`] of the register values `regs` (x0 first).
    pub const fn results(regs: [u64; 4]) -> Self {
        // Bit for bit: a register holds no sign, the wire's encoding only favours small
        // magnitudes either way.
        Self::Return {
            regs: [
                regs[0] as i64,
                regs[1] as i64,
                regs[2] as i64,
                regs[3] as i64,
            ],
        }
    }

    /// The register values of a [`TrapResolution::Return`] (x0 first), `None` for any other
    /// answer.
    pub const fn registers(&self) -> Option<[u64; 4]> {
        match self {
            Self::Return { regs } => Some([
                regs[0] as u64,
                regs[1] as u64,
                regs[2] as u64,
                regs[3] as u64,
            ]),
            _ => None,
        }
    }
}

pub mod hot;
