//! The aarch64 layer: every piece of assembly and every system-register access of the runtime.
//!
//! - `_start`: the arm64 Linux Image header (booting.rst), then the entry code: remember the DTB
//!   pointer from `x0`, enable FP/SIMD access, set the stack, zero `.bss`, install the vector
//!   table in `VBAR_EL1` and call [`crate::boot`]'s Rust entry.
//! - `__guest_rt_secondary_entry`: where PSCI `CPU_ON` starts a secondary CPU
//!   ([`crate::smp::start_secondary`]). `x0` (the context id) is the address of the
//!   [`SecondaryDescriptor`](crate::smp::SecondaryDescriptor) at the top of the CPU's stack: the
//!   code masks DAIF, enables FP/SIMD access, selects `SP_EL1` and points it at the descriptor
//!   (the stack grows down from there, so the descriptor is never overwritten), installs the
//!   same vector table and calls `__guest_rt_secondary_start_rust` with the descriptor.
//! - The EL1 vector table: each of the 16 entries saves `x0`-`x30`, `ELR_EL1` and `SPSR_EL1` in a
//!   [`TrapFrame`] on the current stack and calls [`crate::exception::handle`]; on return it
//!   restores the frame (including a possibly advanced `ELR_EL1`) and `eret`s.
//! - Small register accessors (`CurrentEL`, `MPIDR_EL1`, `ESR_EL1`, `FAR_EL1`, the generic
//!   timer), a full-system data memory barrier and a minimal HVC used by benchmarks.
//! - [`with_identity_mmu`]: runs a closure with the EL1 MMU on over a tiny static identity map,
//!   for tests that need Normal memory (misaligned accesses) where the runtime otherwise has
//!   only Device memory.
//!
//! Only built for `target_os = "none"` (the runtime is aarch64-only there).

use core::arch::{asm, global_asm};

/// Size of a [`TrapFrame`] on the stack (kept a multiple of 16 for SP alignment).
const TRAP_FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();

/// Registers saved by the vector entry code, in stack order.
#[repr(C)]
pub struct TrapFrame {
    /// `x0`..`x30` at the time of the exception.
    pub x: [u64; 31],
    /// `ELR_EL1`: written back before `eret`, so the handler can skip the faulting instruction.
    pub elr: u64,
    /// `SPSR_EL1`: written back before `eret`.
    pub spsr: u64,
    /// Keeps the frame size a multiple of 16.
    _pad: u64,
}

const _: () = assert!(TRAP_FRAME_SIZE == 34 * 8);

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header, Documentation/arch/arm64/booting.rst */
    b       __guest_rt_primary_entry    /* code0 */
    .long   0                           /* code1 */
    .quad   0                           /* text_offset */
    .quad   __image_size                /* image_size: whole image including bss and stack */
    .quad   0xa                         /* flags: little endian, 4K pages, placed anywhere */
    .quad   0                           /* res2 */
    .quad   0                           /* res3 */
    .quad   0                           /* res4 */
    .ascii  "ARM\x64"                   /* magic */
    .long   0                           /* res5 */

    .section .text.__guest_rt_primary_entry, "ax"
__guest_rt_primary_entry:
    /* EL1h, MMU off, DAIF masked; x0 = DTB (0 when QEMU starts us directly). */
    mov     x19, x0
    msr     daifset, #0xf
    /* CPACR_EL1.FPEN = 0b11: do not trap FP/SIMD, in case the compiler uses those registers. */
    mov     x1, #0x300000
    msr     cpacr_el1, x1
    isb
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
0:  cmp     x1, x2
    b.hs    1f
    stp     xzr, xzr, [x1], #16
    b       0b
1:  adrp    x1, __guest_rt_vectors
    add     x1, x1, :lo12:__guest_rt_vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    mov     x29, xzr
    mov     x30, xzr
    bl      __guest_rt_start_rust
2:  wfi
    b       2b

    .section .text.__guest_rt_secondary_entry, "ax"
    .global __guest_rt_secondary_entry
__guest_rt_secondary_entry:
    /*
     * PSCI CPU_ON entry: EL1, MMU off; x0 = context id = address of the SecondaryDescriptor,
     * 16-byte aligned, at the top of this CPU's stack. CPACR_EL1 and VBAR_EL1 are per CPU, so
     * set them up as the boot CPU did.
     */
    msr     daifset, #0xf
    mov     x1, #0x300000
    msr     cpacr_el1, x1
    msr     spsel, #1
    isb
    mov     sp, x0
    adrp    x1, __guest_rt_vectors
    add     x1, x1, :lo12:__guest_rt_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr
    bl      __guest_rt_secondary_start_rust
3:  wfi
    b       3b

    .macro __guest_rt_ventry kind
    .balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       __guest_rt_trap_common
    .endm

    .section .text.__guest_rt_vectors, "ax"
    .balign 0x800
    .global __guest_rt_vectors
__guest_rt_vectors:
    /* Current EL with SP_EL0: sync, IRQ, FIQ, SError */
    __guest_rt_ventry 0
    __guest_rt_ventry 1
    __guest_rt_ventry 2
    __guest_rt_ventry 3
    /* Current EL with SP_ELx */
    __guest_rt_ventry 4
    __guest_rt_ventry 5
    __guest_rt_ventry 6
    __guest_rt_ventry 7
    /* Lower EL, AArch64 */
    __guest_rt_ventry 8
    __guest_rt_ventry 9
    __guest_rt_ventry 10
    __guest_rt_ventry 11
    /* Lower EL, AArch32 */
    __guest_rt_ventry 12
    __guest_rt_ventry 13
    __guest_rt_ventry 14
    __guest_rt_ventry 15

    .balign 0x80
__guest_rt_trap_common:
    /* x0, x1 already saved; x1 = kind. */
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x30, x2, [sp, #240]
    str     x3, [sp, #256]
    mov     x0, sp
    bl      __guest_rt_trap
    ldr     x3, [sp, #256]
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame_size}
    eret
"#,
    frame_size = const TRAP_FRAME_SIZE,
);

/// Called by the vector code with the saved registers and the vector index (0..=15).
#[unsafe(no_mangle)]
extern "C" fn __guest_rt_trap(frame: &mut TrapFrame, kind: u64) {
    let esr = read_esr_el1();
    let far = read_far_el1();
    crate::exception::handle(kind, &mut frame.elr, frame.x[30], esr, far);
}

unsafe extern "C" {
    /// The secondary CPUs' entry code above (only its address is used).
    fn __guest_rt_secondary_entry();
}

/// The address PSCI `CPU_ON` must start a secondary CPU at (the MMU is off, so this is also
/// its physical address).
pub fn secondary_entry_address() -> u64 {
    __guest_rt_secondary_entry as *const () as usize as u64
}

/// `MPIDR_EL1` of the CPU running this.
pub fn read_mpidr_el1() -> u64 {
    let v: u64;
    // SAFETY: Reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// `DMB SY`: memory accesses before it are observed by every observer (other CPUs included)
/// before those after it. Also a compiler barrier (the asm may touch memory).
#[inline(always)]
pub fn dmb_sy() {
    // SAFETY: A barrier changes no state the compiler knows about.
    unsafe { asm!("dmb sy", options(nostack, preserves_flags)) };
}

/// `ESR_EL1`, the syndrome of the last exception taken to EL1.
pub fn read_esr_el1() -> u64 {
    let v: u64;
    // SAFETY: Reading ESR_EL1 at EL1 has no side effects.
    unsafe { asm!("mrs {}, esr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// `FAR_EL1`, the faulting virtual address of the last abort taken to EL1.
pub fn read_far_el1() -> u64 {
    let v: u64;
    // SAFETY: Reading FAR_EL1 at EL1 has no side effects.
    unsafe { asm!("mrs {}, far_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// The current exception level (`CurrentEL` bits 3:2).
pub fn current_el() -> u8 {
    let v: u64;
    // SAFETY: Reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) v, options(nomem, nostack, preserves_flags)) };
    ((v >> 2) & 0b11) as u8
}

/// `CNTVCT_EL0`, after an `isb` so the read is not hoisted above earlier instructions.
#[inline(always)]
pub fn read_cntvct() -> u64 {
    let v: u64;
    // SAFETY: An ISB and a read of the virtual counter have no side effects on memory.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// `CNTFRQ_EL0`, the generic timer frequency in Hz as programmed by firmware.
pub fn read_cntfrq() -> u64 {
    let v: u64;
    // SAFETY: Reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// `HVC #0` with only the function ID in `w0`; returns `x0`.
///
/// The leanest possible SMCCC call (no argument set-up, no result stores), for benchmarks.
/// `x1`-`x17` are treated as clobbered, as SMCCC allows.
#[inline(always)]
pub fn hvc_id_only(function: u32) -> u64 {
    let ret: u64;
    // SAFETY: An SMCCC call; the callee may clobber x0-x17 (declared below) and preserves
    // x18-x30 and SP. The function ID is expected to have no effect on guest memory.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") u64::from(function) => ret,
            out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _,
            out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
            out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack),
        )
    };
    ret
}

/// Branches with link to `address`, for tests that expect the fetch there to abort: with an
/// exception armed ([`crate::expect_exception`]), an instruction abort at `address` resumes
/// at the return address, as if the call had returned.
///
/// # Safety
///
/// Whatever runs at `address` (if the fetch succeeds) runs as a function with the C ABI.
pub unsafe fn branch_and_link(address: u64) {
    // SAFETY: the caller vouches for what runs at `address`; every register the C ABI lets a
    // callee clobber (x30 included) is declared clobbered.
    unsafe { asm!("blr {0}", in(reg) address, clobber_abi("C")) }
}

/// Waits for interrupts forever (interrupts are masked, so this just parks the CPU).
pub fn halt() -> ! {
    loop {
        // SAFETY: WFI only pauses the CPU.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}

/// Level-1 translation table of [`with_identity_mmu`]: 4 KiB granule and a 39-bit VA space
/// (`T0SZ` = 25), so the walk starts at level 1, whose 512 entries map 1 GiB each.
#[repr(C, align(4096))]
struct Level1Table([u64; 512]);

/// Level-1 block descriptor (bits 1:0 = 0b01).
const DESC_BLOCK: u64 = 0b01;
/// `AttrIndx` = 0: `MAIR_EL1.Attr0`, Normal memory, Non-cacheable.
const DESC_ATTR_NORMAL_NC: u64 = 0 << 2;
/// `AttrIndx` = 1: `MAIR_EL1.Attr1`, Normal memory, Write-Back.
const DESC_ATTR_NORMAL_WB: u64 = 1 << 2;
/// `SH` = Outer Shareable.
const DESC_SH_OUTER: u64 = 0b10 << 8;
/// `SH` = Inner Shareable.
const DESC_SH_INNER: u64 = 0b11 << 8;
/// Access flag (without it the first access takes an Access flag fault).
const DESC_AF: u64 = 1 << 10;
/// Privileged and unprivileged execute-never.
const DESC_XN: u64 = (1 << 53) | (1 << 54);
/// One level-1 block.
const GIB: u64 = 1 << 30;
/// Where the identity map ends: everything [`with_identity_mmu`]'s closure touches is below.
pub const IDENTITY_MAP_END: u64 = 2 * GIB;

/// `MAIR_EL1` while the map is on: Attr0 = 0x44 (Normal, Inner/Outer Non-cacheable),
/// Attr1 = 0xFF (Normal, Inner/Outer Write-Back, read/write-allocate).
const IDENTITY_MAIR: u64 = 0x44 | (0xFF << 8);
/// `TCR_EL1` while the map is on: T0SZ = 25, IRGN0 = ORGN0 = 0 (walks Non-cacheable, so the
/// table needs no cache maintenance), SH0 = 0, TG0 = 0 (4 KiB), EPD1 = 1 (no TTBR1 walks),
/// IPS = 0 (32-bit output addresses: both blocks are below 4 GiB).
const IDENTITY_TCR: u64 = 25 | (1 << 23);

/// `SCTLR_EL1.M`: stage-1 MMU enable.
const SCTLR_M: u64 = 1 << 0;
/// `SCTLR_EL1.A`: alignment checking.
const SCTLR_A: u64 = 1 << 1;
/// `SCTLR_EL1.C`: data cacheability.
const SCTLR_C: u64 = 1 << 2;
/// `SCTLR_EL1.WXN`: writable implies execute-never.
const SCTLR_WXN: u64 = 1 << 19;

/// The map: [0, 1 GiB) Normal Non-cacheable and execute-never (QEMU virt's devices: accesses
/// there may be misaligned), [1 GiB, 2 GiB) Normal Write-Back (the guest's RAM, its code
/// included), nothing else.
static IDENTITY_TABLE: Level1Table = {
    let mut entries = [0; 512];
    entries[0] = DESC_BLOCK | DESC_ATTR_NORMAL_NC | DESC_SH_OUTER | DESC_AF | DESC_XN;
    entries[1] = GIB | DESC_BLOCK | DESC_ATTR_NORMAL_WB | DESC_SH_INNER | DESC_AF;
    Level1Table(entries)
};

unsafe extern "C" {
    /// End of the image (bss and stack included), from `guest.ld`.
    static __image_end: u8;
}

/// Runs `f` with the EL1 stage-1 MMU on over a static identity map, then turns it off again
/// and restores the translation registers; returns `f`'s result.
///
/// The runtime runs with the MMU off, where every data access is Device memory: a misaligned
/// access takes an alignment fault at EL1 before the hypervisor's stage 2 sees it. Inside `f`,
/// `[0, 1 GiB)` (QEMU virt's devices) is Normal Non-cacheable memory, so a misaligned load or
/// store there reaches stage 2 as one access; `[1 GiB, 2 GiB)` (the guest's RAM, where the
/// image, its stack and the vector table are) is Normal Write-Back; anything above
/// [`IDENTITY_MAP_END`] takes a translation fault. Alignment checking (`SCTLR_EL1.A`) is off.
///
/// Caches: the map is used with `SCTLR_EL1.C` clear, so every data access stays
/// Non-cacheable whatever the memory type says, exactly as with the MMU off. Nothing is ever
/// allocated in the data cache, so neither turning the MMU on (no stale lines can hit) nor
/// turning it off (no dirty lines are left behind) needs cleaning or invalidating; the
/// table is walked Non-cacheable too. Only the TLBs are invalidated, before and after
/// (completed with `DSB ISH`, since the hypervisor's HCR_EL2.FB may broadcast the
/// invalidation).
///
/// Expected exceptions ([`crate::expect_exception`]) work inside `f`: the vectors and the
/// runtime's globals are in the mapped RAM.
///
/// # Safety
///
/// While `f` runs, device registers below 1 GiB are Normal memory: the CPU may read them
/// speculatively and may merge, split or repeat accesses. `f` must touch only devices for
/// which that is harmless (e.g. ones the hypervisor emulates or does not map), must not touch
/// anything at or above [`IDENTITY_MAP_END`] except to provoke an expected fault, and must
/// not change the translation registers itself.
///
/// # Panics
///
/// If the MMU is already on (no nesting), if called on a CPU other than the boot CPU, or if
/// the image does not lie below [`IDENTITY_MAP_END`].
pub unsafe fn with_identity_mmu<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the caller's contract.
    unsafe { identity_mmu(IDENTITY_MAIR, 0, 0, f) }
}

/// `MAIR_EL1.Attr1` = 0xF0: Tagged Normal, Inner/Outer Write-Back (FEAT_MTE2).
const IDENTITY_MAIR_TAGGED: u64 = 0x44 | (0xF0 << 8);
/// `SCTLR_EL1.ATA`: EL1 may access allocation tags.
const SCTLR_ATA: u64 = 1 << 43;
/// `TCR_EL1.TBI0`: the top byte of a TTBR0 address is ignored (it carries the tag).
const TCR_TBI0: u64 = 1 << 37;

/// [`with_identity_mmu`], with the RAM block Tagged Normal memory, EL1 access to allocation
/// tags on (`SCTLR_EL1.ATA`) and the top byte of addresses ignored (`TCR_EL1.TBI0`), so `f`
/// can read and write allocation tags ([`crate::mte`]). Tag checks stay off (`TCF0`/`TCF` =
/// 0). Whether tags are really kept is the hypervisor's to allow (HCR_EL2.ATA): without it
/// tag writes are ignored and tags read as zero.
///
/// # Safety
///
/// As for [`with_identity_mmu`]; the CPU must implement FEAT_MTE2.
pub unsafe fn with_tagged_identity_mmu<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the caller's contract.
    unsafe { identity_mmu(IDENTITY_MAIR_TAGGED, TCR_TBI0, SCTLR_ATA, f) }
}

/// Whether the CPU implements FEAT_MTE2 (allocation tags in memory).
pub fn has_mte2() -> bool {
    let pfr1: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        asm!("mrs {}, id_aa64pfr1_el1", out(reg) pfr1, options(nomem, nostack, preserves_flags))
    };
    (pfr1 >> 8) & 0xf >= 2
}

/// The body of [`with_identity_mmu`] with its MAIR and extra TCR and SCTLR bits.
///
/// # Safety
///
/// As for [`with_identity_mmu`].
unsafe fn identity_mmu<R>(
    mair_value: u64,
    tcr_extra: u64,
    sctlr_extra: u64,
    f: impl FnOnce() -> R,
) -> R {
    assert!(
        crate::smp::is_boot_cpu(),
        "with_identity_mmu is for the boot CPU only"
    );
    let image_end = core::ptr::addr_of!(__image_end) as u64;
    assert!(
        image_end <= IDENTITY_MAP_END,
        "with_identity_mmu: the image ends at {image_end:#x}, above the identity map"
    );
    let (mair, tcr, ttbr0, sctlr): (u64, u64, u64, u64);
    // SAFETY: Reading the translation registers has no side effects.
    unsafe {
        asm!(
            "mrs {mair}, mair_el1",
            "mrs {tcr}, tcr_el1",
            "mrs {ttbr0}, ttbr0_el1",
            "mrs {sctlr}, sctlr_el1",
            mair = out(reg) mair,
            tcr = out(reg) tcr,
            ttbr0 = out(reg) ttbr0,
            sctlr = out(reg) sctlr,
            options(nomem, nostack, preserves_flags),
        )
    };
    assert!(
        sctlr & SCTLR_M == 0,
        "with_identity_mmu: the MMU is already on"
    );
    let table = core::ptr::addr_of!(IDENTITY_TABLE) as u64;
    let enabled = (sctlr | SCTLR_M | sctlr_extra) & !(SCTLR_A | SCTLR_C | SCTLR_WXN);
    // SAFETY: The map is the identity on everything the runtime and the caller use (the image,
    // its stack and vectors, below IDENTITY_MAP_END as checked; the caller's contract covers
    // the rest), so execution continues at the same addresses with the same data once the MMU
    // is on. The ISBs make each step take effect before the next, the TLB invalidation drops
    // any entry from an earlier use. Data caching stays off (C = 0), see above. The asm is a
    // compiler barrier (it may touch memory), so no access of `f` moves before it.
    unsafe {
        asm!(
            "dsb sy",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {table}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "msr sctlr_el1, {sctlr}",
            "isb",
            mair = in(reg) mair_value,
            tcr = in(reg) IDENTITY_TCR | tcr_extra,
            table = in(reg) table,
            sctlr = in(reg) enabled,
            options(nostack, preserves_flags),
        )
    };
    let result = f();
    // SAFETY: Turns the MMU off at the same (identity) addresses, then restores the registers
    // read above; with data caching off throughout there is nothing to clean. The asm is a
    // compiler barrier, so no access of `f` moves after it.
    unsafe {
        asm!(
            "dsb sy",
            "msr sctlr_el1, {sctlr}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "msr ttbr0_el1, {ttbr0}",
            "msr tcr_el1, {tcr}",
            "msr mair_el1, {mair}",
            "isb",
            sctlr = in(reg) sctlr,
            ttbr0 = in(reg) ttbr0,
            tcr = in(reg) tcr,
            mair = in(reg) mair,
            options(nostack, preserves_flags),
        )
    };
    result
}

/// `SCTLR_EL1.M`: whether the EL1 stage-1 MMU is on.
pub fn mmu_enabled() -> bool {
    let v: u64;
    // SAFETY: Reading SCTLR_EL1 has no side effects.
    unsafe { asm!("mrs {}, sctlr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & SCTLR_M != 0
}

/// `LDG`: the allocation tag of the granule holding `address` (under
/// [`with_tagged_identity_mmu`]).
pub fn load_tag(address: u64) -> u8 {
    let mut tagged = address;
    // SAFETY: LDG reads a tag into the register's bits 59:56; it never faults on mapped RAM
    // and changes no memory.
    unsafe {
        asm!(".arch_extension memtag", "ldg {0}, [{0}]", inout(reg) tagged, options(nostack, preserves_flags))
    };
    ((tagged >> 56) & 0xf) as u8
}

/// `STG`: sets the allocation tag of the 16-byte granule at `address` (aligned) to `tag`
/// (under [`with_tagged_identity_mmu`]); the data is untouched.
pub fn store_tag(address: u64, tag: u8) {
    let tagged = (address & !(0xf << 56)) | (u64::from(tag & 0xf) << 56);
    // SAFETY: STG writes only the granule's allocation tag (no data), of RAM the caller owns.
    unsafe {
        asm!(".arch_extension memtag", "stg {0}, [{0}]", in(reg) tagged, options(nostack, preserves_flags))
    };
}
