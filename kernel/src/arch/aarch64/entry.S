// The kernel's first instructions, its EL2 exception vectors and the guest entry/exit path.
//
// Image header: Linux Documentation/arch/arm64/booting.rst, so QEMU's -kernel and the Pi
// firmware load us like a Linux Image. Vector layout: Arm ARM D1.10.2. The trap frame layout
// must match `GuestFrame` in arch/aarch64/mod.rs.

.equ STACK_SIZE, 0x10000
.equ MAX_CPUS, 8
.equ FRAME_SIZE, 272            // 31 GPRs + ELR + SPSR, rounded up to 16
.equ FRAME_ELR, 248
.equ FRAME_SPSR, 256
.equ CURRENT_EL_EL2, (2 << 2)

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .word   0                       // code1
    .quad   0                       // text_offset
    .quad   0                       // image_size: written by the composer
    .quad   0x2                     // flags: little-endian, 4 KiB pages
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .word   0                       // res5

// Boot CPU: x0 = the firmware's DTB.
primary_entry:
    mov     x19, x0
    mrs     x1, CurrentEL
    cmp     x1, #CURRENT_EL_EL2
    b.ne    park
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  mov     x0, #0
    bl      use_cpu_stack
    mov     x0, x19
    bl      boot_cpu_main           // never returns
    b       park

// Secondary CPUs, started by our PSCI CPU_ON: x0 = our CPU index (the context id we passed).
// They arrive with the MMU and caches off and turn them on before touching memory.
.global secondary_entry
secondary_entry:
    mov     x19, x0
    mrs     x1, CurrentEL
    cmp     x1, #CURRENT_EL_EL2
    b.ne    park
    cmp     x19, #MAX_CPUS
    b.hs    park
    bl      el2_mmu_on
    mov     x0, x19
    bl      use_cpu_stack
    mov     x0, x19
    bl      secondary_cpu_main      // never returns
    b       park

// Secondary CPUs released from the firmware's spin table (the Raspberry Pi 4's armstub): they
// arrive at EL2 with x0 = 0, so the CPU index is MPIDR_EL1.Aff0. The kernel releases only CPUs
// whose Aff1..Aff3 are 0 and whose index is their Aff0 (arch::spin_table::claim).
.global spin_table_entry
spin_table_entry:
    mrs     x1, mpidr_el1
    ubfx    x0, x1, #8, #16         // Aff1, Aff2
    cbnz    x0, park
    ubfx    x0, x1, #32, #8         // Aff3
    cbnz    x0, park
    and     x0, x1, #0xff           // Aff0
    b       secondary_entry

// Turns the EL2 MMU and caches on with the registers the boot CPU used (el2_mmu_config, see
// arch::enable_el2_mmu), before this CPU's first store: stores made with the MMU off bypass the
// caches, and a stale line another CPU had cached would hide them once ours are on. Parks if
// the boot CPU has not recorded them. Uses no stack; clobbers x0..x5.
el2_mmu_on:
    adrp    x0, el2_mmu_config
    add     x0, x0, :lo12:el2_mmu_config
    ldp     x1, x2, [x0]            // MAIR_EL2, TCR_EL2
    ldp     x3, x4, [x0, #16]       // TTBR0_EL2, SCTLR_EL2
    ldr     x5, [x0, #32]           // VBAR_EL2
    cbz     x3, park
    msr     mair_el2, x1
    msr     tcr_el2, x2
    msr     ttbr0_el2, x3
    msr     vbar_el2, x5
    dsb     ish
    tlbi    alle2
    dsb     ish
    isb
    msr     sctlr_el2, x4
    isb
    ret

// sp = top of CPU x0's stack; TPIDR_EL2 = x0. Clobbers x1, x2.
use_cpu_stack:
    msr     tpidr_el2, x0
    adrp    x1, cpu_stacks
    add     x1, x1, :lo12:cpu_stacks
    add     x2, x0, #1
    mov     x0, #STACK_SIZE
    madd    x1, x2, x0, x1
    mov     sp, x1
    ret

park:
    wfe
    b       park

// enter_guest(frame: *const GuestFrame, stack_top: usize) -> !
// Loads a world's registers from its frame and erets; the EL2 stack restarts empty.
.global enter_guest
enter_guest:
    mov     sp, x1
resume_world:                       // x0 = the frame; the EL2 stack is empty
    ldr     x2, [x0, #FRAME_ELR]
    ldr     x3, [x0, #FRAME_SPSR]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret

// Exception vectors. Each slot pushes x0/x1, names its kind in x1 and jumps to its path.
.macro VECTOR handler, kind
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\kind
    b       \handler
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VECTOR  el2_fault, 0            // current EL, SP_EL0: sync
    VECTOR  el2_fault, 1            //   irq
    VECTOR  el2_fault, 2            //   fiq
    VECTOR  el2_fault, 3            //   serror
    VECTOR  el2_fault, 0            // current EL, SP_ELx: sync
    VECTOR  el2_fault, 1
    VECTOR  el2_fault, 2
    VECTOR  el2_fault, 3
    VECTOR  guest_exit, 0           // lower EL, AArch64: sync
    VECTOR  guest_exit, 1           //   irq
    VECTOR  guest_exit, 2           //   fiq
    VECTOR  guest_exit, 3           //   serror
    VECTOR  guest_exit, 4           // lower EL, AArch32: not supported, reported as such
    VECTOR  guest_exit, 4
    VECTOR  guest_exit, 4
    VECTOR  guest_exit, 4

// Saves x4..x30, ELR and SPSR into the frame at x0 (x0..x3 are saved by the caller).
// Clobbers x2.
.macro SAVE_X4_TO_SPSR
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [x0, #240]
    mrs     x2, spsr_el2
    str     x2, [x0, #FRAME_SPSR]
.endm

// A trap from a lower EL: the registers go straight into the trapping world's own frame
// (current_frames[cpu], kept by the kernel), so switching worlds copies no registers. The
// handler returns the frame of the world to resume, which is then on top.
guest_exit:
    stp     x2, x3, [sp, #-16]!
    mrs     x2, tpidr_el2
    adrp    x3, current_frames
    add     x3, x3, :lo12:current_frames
    ldr     x0, [x3, x2, lsl #3]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #16]
    SAVE_X4_TO_SPSR
    ldp     x2, x3, [sp], #16       // the world's x0, x1
    stp     x2, x3, [x0, #0]
    mov     x0, x1                  // kind
    bl      handle_guest_exit       // x0 = the frame to resume
    b       resume_world

// An exception at EL2 (a kernel bug): the frame goes on the stack, for the report.
el2_fault:
    sub     sp, sp, #(FRAME_SIZE - 16)  // x0, x1 were pushed at the frame's SPSR slot
    stp     x2, x3, [sp, #16]
    ldp     x2, x3, [sp, #(FRAME_SIZE - 16)]
    stp     x2, x3, [sp, #0]
    mov     x0, sp
    SAVE_X4_TO_SPSR
    bl      handle_el2_fault        // never returns
    b       park

.section .stacks, "aw", %nobits
.balign 4096
cpu_stacks:
    .space  STACK_SIZE * MAX_CPUS
