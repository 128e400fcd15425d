//! Everything in the kernel that touches AArch64 registers or runs assembly.
//!
//! - `entry.S`: the Image header, CPU entry points, EL2 vectors and the guest entry/exit path.
//! - `memcpy.S`: the kernel's `memcpy` (word-at-a-time where compiler_builtins' goes bytewise).
//! - [`gic`]: the physical GIC on guest CPUs: acknowledge, complete, kick, list registers.
//! - [`mmu`]: the EL2 stage-1 and the guests' stage-2 tables (built with `aarch64-paging`).
//! - [`semihosting`]: the host channel QEMU offers (log frames out, exit status).
//! - [`mini_uart`]: the Raspberry Pi 4's log sink.
//! - [`spin_table`]: starting secondaries the Raspberry Pi 4's firmware parks on a spin table.
//! - this module: per-CPU EL2 configuration, trap information, exception injection, cache
//!   maintenance and firmware calls.
//!
//! References: Arm ARM DDI 0487 (register descriptions in chapter D24), SMCCC DEN 0028.

pub mod console;
pub mod control_uart;
pub mod deadline;
pub mod el1;
pub mod gic;
pub mod mini_uart;
pub mod mmu;
pub mod semihosting;
pub mod spin_table;

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTHCTL_EL2, CNTPCT_EL0, CNTVOFF_EL2, ELR_EL1, ESR_EL1, ESR_EL2, FAR_EL1, FAR_EL2,
    HPFAR_EL2, ID_AA64ISAR1_EL1, ID_AA64MMFR0_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, MAIR_EL2,
    MIDR_EL1, MPIDR_EL1, Readable, SCTLR_EL1, SCTLR_EL2, SPSR_EL1, TCR_EL2, TPIDR_EL2, TTBR0_EL2,
    VBAR_EL1, VBAR_EL2, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2, Writeable,
};
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};
use hv_kernel::controls::{self, CpuFeatures, TrapControls};
use hv_kernel::inject::InjectedException;

global_asm!(include_str!("entry.S"));
global_asm!(include_str!("memcpy.S"));

/// Bytes of EL2 stack per CPU (must match `STACK_SIZE` in entry.S).
const STACK_SIZE: usize = 0x1_0000;

pub use hv_kernel::frame::GuestFrame;

/// Per CPU, the frame the vectors save the next trapping world's registers into: the world on
/// top of that CPU's world stack (entry.S indexes it by TPIDR_EL2).
#[unsafe(export_name = "current_frames")]
static mut CURRENT_FRAMES: [*mut GuestFrame; hv_kernel::trap_stats::MAX_CPUS] =
    [core::ptr::null_mut(); hv_kernel::trap_stats::MAX_CPUS];

/// Makes `frame` the one this CPU's vectors save into and resume from.
pub fn set_current_frame(frame: *mut GuestFrame) {
    // SAFETY: each CPU writes only its own slot, which only its own vectors read.
    unsafe { CURRENT_FRAMES[cpu_index()] = frame };
}

unsafe extern "C" {
    /// Loads `frame` into the CPU and erets to its world, with the EL2 stack reset to
    /// `stack_top`.
    fn enter_guest(frame: *const GuestFrame, stack_top: usize) -> !;
    /// Where secondary CPUs started through PSCI begin (x0 = CPU index).
    fn secondary_entry();
    /// Where secondary CPUs released from a spin table begin (index from MPIDR_EL1.Aff0).
    fn spin_table_entry();
    static el2_vectors: u8;
    static cpu_stacks: u8;
}

/// This CPU's index, as `entry.S` stored it in TPIDR_EL2.
pub fn cpu_index() -> usize {
    TPIDR_EL2.get() as usize
}

/// This CPU's MPIDR_EL1 as it reads (what the host's vCPU on it reads too).
pub fn own_mpidr() -> u64 {
    MPIDR_EL1.get()
}

/// This CPU's MPIDR_EL1 affinity fields.
pub fn current_mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// The physical address secondary CPUs started through PSCI enter at (the kernel is
/// identity-mapped, so this is also its virtual address).
pub fn secondary_entry_address() -> u64 {
    secondary_entry as *const () as u64
}

/// The physical address secondary CPUs released from a spin table enter at.
pub fn spin_table_entry_address() -> u64 {
    spin_table_entry as *const () as u64
}

fn stack_top(cpu: usize) -> usize {
    let base = core::ptr::addr_of!(cpu_stacks) as usize;
    base + (cpu + 1) * STACK_SIZE
}

/// Reads this CPU's ID registers for the features that change how EL2 is set up.
pub fn cpu_features() -> CpuFeatures {
    let mmfr0 = ID_AA64MMFR0_EL1.get();
    let pfr0 = ID_AA64PFR0_EL1.get();
    let pfr1 = ID_AA64PFR1_EL1.get();
    let isar1 = ID_AA64ISAR1_EL1.get();
    let (mmfr1, isar2): (u64, u64);
    // SAFETY: reading ID registers (ID_AA64MMFR1_EL1, ID_AA64ISAR2_EL1, by their generic
    // encodings: aarch64-cpu names neither) has no side effects; both exist on every ARMv8.0 CPU.
    unsafe {
        asm!("mrs {}, S3_0_C0_C7_1", out(reg) mmfr1, options(nomem, nostack));
        asm!("mrs {}, S3_0_C0_C6_2", out(reg) isar2, options(nomem, nostack));
    }
    let field = |value: u64, shift: u32| (value >> shift) & 0xf;
    let pa_size_field = field(mmfr0, 0).min(0b101);
    let pa_bits = [32, 36, 40, 42, 44, 48][pa_size_field as usize];
    CpuFeatures {
        pa_size_field,
        ipa_bits: pa_bits.max(40),
        sve: field(pfr0, 32) != 0,
        sme: field(pfr1, 24) != 0,
        // APA, API, GPA, GPI.
        pointer_auth: [4, 8, 24, 28].iter().any(|&shift| field(isar1, shift) != 0),
        gic_sysregs: field(pfr0, 24) != 0,
        mte: field(pfr1, 8) >= 2,
        hcx: field(mmfr1, 40) != 0,
        mops: field(isar2, 16) != 0,
    }
}

/// The EL2 translation registers the boot CPU turned its MMU on with, in the order entry.S
/// loads them: MAIR_EL2, TCR_EL2, TTBR0_EL2, SCTLR_EL2, VBAR_EL2. Secondaries load them in
/// `el2_mmu_on` before their first store to memory: with their MMU off, stores bypass the caches,
/// and a stale line of their stack that another CPU had cached would hide those stores once
/// their own caches are on. The boot CPU writes this with its caches still off, so the values
/// are in memory where a secondary (caches off) reads them.
#[repr(C, align(64))]
struct El2MmuConfig([AtomicU64; 5]);

#[unsafe(export_name = "el2_mmu_config")]
static EL2_MMU_CONFIG: El2MmuConfig = El2MmuConfig([const { AtomicU64::new(0) }; 5]);

/// Turns the EL2 MMU and caches on with `root` as TTBR0_EL2 and installs the vectors. The
/// first call (the boot CPU's, before any secondary starts) also records the registers for the
/// secondaries' entry path.
///
/// # Safety
/// `root` must be an EL2 stage-1 table that identity-maps the kernel's code, data, stacks
/// and everything the kernel touches afterwards.
pub unsafe fn enable_el2_mmu(root: u64, features: &CpuFeatures) {
    let mair = controls::mair_el2(features);
    let tcr = controls::tcr_el2(mmu::VA_BITS, features);
    let sctlr = controls::sctlr_el2_mmu_on(features);
    let vbar = core::ptr::addr_of!(el2_vectors) as u64;
    let config = &EL2_MMU_CONFIG.0;
    if config[2].load(Ordering::Relaxed) == 0 {
        for (slot, value) in config.iter().zip([mair, tcr, root, sctlr, vbar]) {
            slot.store(value, Ordering::Relaxed);
        }
    }
    MAIR_EL2.set(mair);
    TCR_EL2.set(tcr);
    TTBR0_EL2.set(root);
    VBAR_EL2.set(vbar);
    // SAFETY: barriers and TLB invalidation have no memory-safety effect; the new table is
    // complete and maps the code executing here (caller's contract).
    unsafe { asm!("dsb ish", "tlbi alle2", "dsb ish", "isb", options(nostack)) };
    SCTLR_EL2.set(sctlr);
    // SAFETY: as above; the ISB makes the MMU change take effect before the next instruction.
    unsafe { asm!("isb", options(nostack)) };
}

/// Configures how this CPU runs EL1 guests: HCR_EL2 traps, the stage-2 regime in `vttbr`,
/// timers, ID registers seen by the guest, and access to SVE/SME/pointer auth/GIC sysregs.
/// `vmpidr` is what the vCPU reads as MPIDR_EL1: the CPU's own for the host (its vCPU *i* is
/// CPU *i*), the vCPU index for a guest (its CPUs are numbered from 0). Returns the vCPU's
/// trap controls (components derive theirs).
pub fn configure_guest_controls(vttbr: u64, features: &CpuFeatures, vmpidr: u64) -> TrapControls {
    let host = TrapControls::host(features);
    // `controls::vtcr` starts the walk at level 0.
    const _: () = assert!(mmu::STAGE2_ROOT_LEVEL == 0);
    VTCR_EL2.set(controls::vtcr(features));
    VTTBR_EL2.set(vttbr);
    // SAFETY: writing EL2 trap and feature controls changes only what the guest may do; the
    // generic encodings name ZCR_EL2, SMCR_EL2, HSTR_EL2, MDCR_EL2, ICC_SRE_EL2 and HCRX_EL2,
    // written only when the feature that defines them exists.
    unsafe {
        asm!("msr hcr_el2, {:x}", "msr cptr_el2, {:x}", "msr hstr_el2, xzr", "isb",
             in(reg) host.hcr, in(reg) host.cptr, options(nostack));
        if features.sve {
            asm!("msr S3_4_C1_C2_0, {}", in(reg) 0xfu64, options(nostack));
        }
        if features.sme {
            asm!("msr S3_4_C1_C2_6, {}", in(reg) 0xfu64, options(nostack));
        }
        // MDCR_EL2.HPMN = PMCR_EL0.N so the guest sees every event counter; no debug traps.
        let pmcr: u64;
        asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nostack));
        asm!("msr mdcr_el2, {}", in(reg) (pmcr >> 11) & 0x1f, options(nostack));
        if features.gic_sysregs {
            asm!("msr S3_4_C12_C9_5, {}", "isb", in(reg) controls::icc_sre_el2(), options(nostack));
        }
        if let Some(hcrx) = controls::hcrx_el2(features) {
            // HCRX_EL2.
            asm!("msr S3_4_C1_C2_2, {}", in(reg) hcrx, options(nostack));
        }
    }
    // No virtual offset: the guest's virtual counter is the physical one.
    CNTHCTL_EL2.set(controls::cnthctl());
    CNTVOFF_EL2.set(0);
    VMPIDR_EL2.set(vmpidr);
    // SAFETY: VPIDR_EL2 only changes what a guest reads as MIDR_EL1.
    unsafe { asm!("msr vpidr_el2, {}", in(reg) MIDR_EL1.get(), options(nostack)) };
    SCTLR_EL1.set(controls::sctlr_el1_reset());
    host
}

/// Reads the ID register `S3_0_C0_C<crm>_<op2>` (`crm` 1 to 7: the ID group 3 registers a
/// guest's trapped read names), for [`controls::guest_id_register`]. An MRS names its register
/// in the instruction, so each one has its own; reserved encodings read as zero, as the
/// architecture defines for that space.
pub fn read_id_register(crm: u8, op2: u8) -> u64 {
    macro_rules! id_registers {
        ($(($c:literal, $o:literal)),* $(,)?) => {
            match (crm, op2) {
                $(($c, $o) => {
                    let value: u64;
                    // SAFETY: reading an ID register has no side effect.
                    unsafe {
                        asm!(concat!("mrs {}, S3_0_C0_C", $c, "_", $o), out(reg) value,
                             options(nomem, nostack, preserves_flags))
                    };
                    value
                })*
                _ => 0,
            }
        };
    }
    id_registers!(
        (1, 0),
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (1, 6),
        (1, 7),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
        (2, 4),
        (2, 5),
        (2, 6),
        (2, 7),
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 3),
        (3, 4),
        (3, 5),
        (3, 6),
        (3, 7),
        (4, 0),
        (4, 1),
        (4, 2),
        (4, 3),
        (4, 4),
        (4, 5),
        (4, 6),
        (4, 7),
        (5, 0),
        (5, 1),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 5),
        (5, 6),
        (5, 7),
        (6, 0),
        (6, 1),
        (6, 2),
        (6, 3),
        (6, 4),
        (6, 5),
        (6, 6),
        (6, 7),
        (7, 0),
        (7, 1),
        (7, 2),
        (7, 3),
        (7, 4),
        (7, 5),
        (7, 6),
        (7, 7),
    )
}

/// One access of `size` bytes (1, 2, 4 or 8) to device register `address`, a write of `value`
/// if `write`; returns the value read (0 for a write).
///
/// # Safety
///
/// `address` must be a device register mapped at EL2, aligned to `size`, whose access has no
/// effect on memory the kernel relies on.
pub unsafe fn device_access(address: u64, size: u64, write: bool, value: u64) -> u64 {
    use core::ptr::{read_volatile, write_volatile};
    // SAFETY: the caller's contract.
    unsafe {
        match (size, write) {
            (1, false) => u64::from(read_volatile(address as *const u8)),
            (2, false) => u64::from(read_volatile(address as *const u16)),
            (4, false) => u64::from(read_volatile(address as *const u32)),
            (_, false) => read_volatile(address as *const u64),
            (1, true) => {
                write_volatile(address as *mut u8, value as u8);
                0
            }
            (2, true) => {
                write_volatile(address as *mut u16, value as u16);
                0
            }
            (4, true) => {
                write_volatile(address as *mut u32, value as u32);
                0
            }
            (_, true) => {
                write_volatile(address as *mut u64, value);
                0
            }
        }
    }
}

/// One access, for the host, to the board's console UART (CONSOLE_ACCESS: the component that
/// shares its keyboard with guests decided it may). `None` outside its registers or for a bad
/// size or alignment.
pub fn console_access(address: u64, size: u64, write: bool, value: u64) -> Option<u64> {
    let region = hv_board::CURRENT.console().region;
    let inside = address >= region.base
        && address
            .checked_add(size)
            .is_some_and(|end| end <= region.end());
    if !inside || !matches!(size, 1 | 2 | 4) || !address.is_multiple_of(size) {
        return None;
    }
    // SAFETY: a register of the console UART (checked above, with its size and alignment),
    // mapped as device memory at EL2; the host owns the UART, and the component decided the
    // access for it.
    Some(unsafe { device_access(address, size, write, value) })
}

/// Sets CNTVOFF_EL2: the guest's virtual counter reads the physical one minus `offset`.
pub fn set_virtual_counter_offset(offset: u64) {
    CNTVOFF_EL2.set(offset);
}

/// Makes instructions the kernel just wrote to `[start, start + len)` visible to instruction
/// fetches (a component image copied into place).
pub fn sync_instructions(start: u64, len: u64) {
    clean_dcache_to_poc(start, len);
    // SAFETY: invalidating instruction caches only discards cached copies.
    unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Sets the allocation tags of `[start, start + len)` (RAM, mapped Tagged at EL2; the kernel
/// maps RAM so when the CPU has MTE) to `tag`, a DCZID_EL0 block at a time (`DC GVA`, which
/// takes the tag from the address's bits 59:56 and leaves the data alone). Tag 0 scrubs a
/// guest's memory before it runs.
pub fn set_allocation_tags(start: u64, len: u64, tag: u8) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effect.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let block = 4u64 << (dczid & 0xf);
    let tagged = u64::from(tag & 0xf) << 56;
    let mut address = start & !(block - 1);
    while address < start + len {
        // SAFETY: only allocation tags change (never data); TCR_EL2.TBI is set with MTE, so
        // the tagged address translates to `address`, which is RAM the kernel maps.
        unsafe {
            asm!(
                ".arch_extension memtag",
                "dc gva, {}",
                in(reg) address | tagged,
                options(nostack)
            )
        };
        address += block;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Invalidates every instruction cache of the inner-shareable domain to the point of
/// unification (a guest's memory was reloaded).
pub fn invalidate_instruction_caches() {
    // SAFETY: invalidating instruction caches only discards cached copies.
    unsafe { asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Runs the world whose registers are `frame` on this CPU (its EL1 state, stage 2 and
/// controls already loaded); its traps save into `frame`.
pub fn run_world(frame: *mut GuestFrame) -> ! {
    set_current_frame(frame);
    // SAFETY: `frame` is a world's frame, valid for as long as the world exists; the stack
    // reset abandons only frames of this CPU that will never be returned to.
    unsafe { enter_guest(frame, stack_top(cpu_index())) }
}

/// The syndrome (ESR_EL2), faulting virtual address (FAR_EL2) and faulting IPA page
/// (HPFAR_EL2, raw: `hv_ipc::addr::Ipa::of_fault` decodes it) of the exception being handled.
pub fn trap_registers() -> (u64, u64, u64) {
    let (far, hpfar) = fault_addresses();
    (syndrome(), far, hpfar)
}

/// The syndrome (ESR_EL2) of the exception being handled.
pub fn syndrome() -> u64 {
    ESR_EL2.get()
}

/// The faulting virtual address (FAR_EL2) and IPA page (HPFAR_EL2, raw) of the exception
/// being handled.
pub fn fault_addresses() -> (u64, u64) {
    (FAR_EL2.get(), HPFAR_EL2.get())
}

/// The guest's VBAR_EL1.
pub fn guest_vbar() -> u64 {
    VBAR_EL1.get()
}

/// Writes the EL1 side of an injected exception; the caller sets the frame's PC and PSTATE.
pub fn write_guest_exception(injected: &InjectedException) {
    ESR_EL1.set(injected.esr);
    FAR_EL1.set(injected.far);
    ELR_EL1.set(injected.elr);
    SPSR_EL1.set(injected.spsr);
}

/// Cleans `[start, start + len)` from the data caches to the point of coherency, so that a
/// guest starting with its MMU off (non-cacheable accesses) sees what the kernel wrote.
pub fn clean_dcache_to_poc(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effect.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut address = start & !(line - 1);
    while address < start + len {
        // SAFETY: cleaning a line writes back data; it does not change memory contents.
        unsafe { asm!("dc cvac, {}", in(reg) address, options(nostack)) };
        address += line;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Invalidates the stage-2 TLB entries of the VM whose VTTBR_EL2 is `vttbr` (the host's or a
/// guest's) for `range` = (first IPA, length), or all of them, from any world: TLBI by IPA
/// acts on the VMID in VTTBR_EL2, so the VM's is loaded for the operation and the caller's
/// restored.
pub fn invalidate_stage2(vttbr: u64, range: Option<(u64, u64)>) {
    /// Beyond this many pages one invalidation of the whole VMID is cheaper.
    const MAX_PAGES_BY_IPA: u64 = 512;
    let previous = VTTBR_EL2.get();
    VTTBR_EL2.set(vttbr);
    // SAFETY: TLB maintenance and barriers only drop cached translations of that VMID;
    // VTTBR_EL2 is restored before returning and EL2's own translation does not use it.
    unsafe {
        asm!("isb", options(nostack));
        match range {
            Some((start, len)) if len.div_ceil(4096) <= MAX_PAGES_BY_IPA => {
                // The table writes that made the change reach the walker first.
                asm!("dsb ishst", options(nostack));
                let mut ipa = start & !0xfff;
                while ipa < start.saturating_add(len) {
                    asm!("tlbi ipas2e1is, {}", in(reg) ipa >> 12, options(nostack));
                    ipa += 4096;
                }
                // Stage-1 entries combined with the old stage 2 go too (Arm ARM D8.13).
                asm!(
                    "dsb ish",
                    "tlbi vmalle1is",
                    "dsb ish",
                    "isb",
                    options(nostack)
                );
            }
            _ => asm!(
                "dsb ishst",
                "tlbi vmalls12e1is",
                "dsb ish",
                "isb",
                options(nostack)
            ),
        }
    }
    VTTBR_EL2.set(previous);
    // SAFETY: barrier only.
    unsafe { asm!("isb", options(nostack)) };
}

/// Waits for an interrupt (PSCI standby for a guest CPU_SUSPEND).
pub fn wait_for_interrupt() {
    // SAFETY: WFI only pauses the CPU; interrupts stay masked at EL2 and wake it.
    unsafe { asm!("dsb sy", "wfi", options(nostack)) };
}

/// Parks this CPU forever.
pub fn park() -> ! {
    loop {
        // SAFETY: WFE only pauses the CPU.
        unsafe { asm!("wfe", options(nostack)) };
    }
}

/// Calls the firmware's PSCI with x0..x3 through SMC and returns its x0. On a board without
/// PSCI firmware (the Pi's armstub disables SMC, which would then be UNDEFINED at EL2) the answer
/// is NOT_SUPPORTED without a call.
pub fn firmware_psci(regs: [u64; 4]) -> u64 {
    if !hv_board::CURRENT.has_firmware_psci() {
        return hv_ipc::guest_abi::psci::error::NOT_SUPPORTED as u64;
    }
    let mut args = [0u64; 17];
    args[..3].copy_from_slice(&regs[1..]);
    smccc::smc64(regs[0] as u32, args)[0]
}

/// The physical counter (CNTPCT_EL0) and its frequency.
pub fn counter() -> (u64, u64) {
    (CNTPCT_EL0.get(), CNTFRQ_EL0.get())
}
