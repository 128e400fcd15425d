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
    crate::exception::handle(kind, &mut frame.elr, esr, far);
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

/// Waits for interrupts forever (interrupts are masked, so this just parks the CPU).
pub fn halt() -> ! {
    loop {
        // SAFETY: WFI only pauses the CPU.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}
