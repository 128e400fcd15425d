// memcpy for the kernel, replacing compiler_builtins' generic one (a weak symbol), which copies
// a byte at a time whenever a copy is short or its pointers are not both word-aligned, and which
// the compiler calls for every struct move of 64 bytes or more on this soft-float target (on the
// guest-hypercall path: the SMCCC registers into the trap message, a decided answer into the
// CPU's record, at odd offsets inside enums).
//
// 16 bytes a step with ldp/stp, then 8, 4, 2 and 1 as the length needs. With the EL2 MMU on,
// kernel memory is Normal memory and SCTLR_EL2.A is clear, so unaligned accesses are fine; with
// it off (early boot), memory is Device memory, where an unaligned access faults: then only
// word-aligned copies take the fast way, the others go a byte at a time.
//
// memcpy(dst: x0, src: x1, len: x2) -> dst. Clobbers x3..x5.

.section .text.memcpy, "ax"
.global memcpy
.type memcpy, %function
memcpy:
    mov     x3, x0
    orr     x4, x0, x1
    tst     x4, #7
    b.eq    1f
    mrs     x4, sctlr_el2
    tbz     x4, #0, 6f              // M clear: the MMU is off
1:  cmp     x2, #16
    b.lo    2f
    ldp     x4, x5, [x1], #16
    stp     x4, x5, [x3], #16
    sub     x2, x2, #16
    b       1b
2:  tbz     x2, #3, 3f
    ldr     x4, [x1], #8
    str     x4, [x3], #8
3:  tbz     x2, #2, 4f
    ldr     w4, [x1], #4
    str     w4, [x3], #4
4:  tbz     x2, #1, 5f
    ldrh    w4, [x1], #2
    strh    w4, [x3], #2
5:  tbz     x2, #0, 7f
    ldrb    w4, [x1]
    strb    w4, [x3]
    ret
6:  cbz     x2, 7f
    ldrb    w4, [x1], #1
    strb    w4, [x3], #1
    sub     x2, x2, #1
    b       6b
7:  ret
.size memcpy, . - memcpy
