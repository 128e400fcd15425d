//! The aarch64 layer: every piece of assembly and every system-register access of the runtime.
//!
//! - `_start`, the ELF entry point. The kernel enters it at EL1h with DAIF masked and the MMU
//!   off, with `x0` = component index, `x1` = region base, `x2` = region size, `x3` = start
//!   count. It keeps `x0`-`x3` in callee-saved registers, zeroes `__bss_start..__bss_end`
//!   (16-byte aligned, so with `stp xzr, xzr`) and points `VBAR_EL1` at the runtime's vector
//!   table. It then decodes the embedded configuration (`__component_install_config`, made by
//!   `component_main!`) on the *start-up stack*, the free top of the region above
//!   `__image_end` (the linker script keeps at least `__startup_stack_min` bytes free there):
//!   decoding nests one `Result` per level of the configuration and needs several times its
//!   size in stack, which the component's own stack should not have to budget for once.
//!   Finally it sets `SP` to `__stack_top` and calls the Rust entry (`__component_rt_start` in
//!   `lib.rs`) with the four values.
//! - The EL1 vector table: all 16 entries do the same thing, without touching memory or the
//!   stack (which may be what broke): report `ESR_EL1`, `FAR_EL1` and `ELR_EL1` with the FAULT
//!   system call, which never returns.
//! - [`hvc`], the one instruction through which the runtime reaches the kernel, and [`udf`].
//!
//! On the host (so that components can `cargo check` and unit-test their logic there) only a
//! stand-in for [`hvc`] exists, which panics: components never run on the host.

#[cfg(target_os = "none")]
pub use target::*;

#[cfg(not(target_os = "none"))]
pub use host::*;

#[cfg(target_os = "none")]
mod target {
    use core::arch::{asm, global_asm};
    use hv_ipc::abi::syscall;

    global_asm!(
        r#"
    .section .text._start, "ax"
    .global _start
    .type   _start, %function
_start:
    /* EL1h, DAIF masked, MMU off. x0 = index, x1 = base, x2 = size, x3 = start count. */
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    mov     x22, x3
    adrp    x4, __bss_start
    add     x4, x4, :lo12:__bss_start
    adrp    x5, __bss_end
    add     x5, x5, :lo12:__bss_end
0:  cmp     x4, x5
    b.hs    1f
    stp     xzr, xzr, [x4], #16
    b       0b
1:  adrp    x4, __component_rt_vectors
    add     x4, x4, :lo12:__component_rt_vectors
    msr     vbar_el1, x4
    isb
    /* Start-up stack: the top of the region (x1 + x2), free memory above __image_end. */
    add     x4, x20, x21
    and     x4, x4, #~0xf
    mov     sp, x4
    mov     x29, xzr
    mov     x30, xzr
    bl      __component_install_config
    adrp    x4, __stack_top
    add     x4, x4, :lo12:__stack_top
    mov     sp, x4
    mov     x0, x19
    mov     x1, x20
    mov     x2, x21
    mov     x3, x22
    mov     x29, xzr
    mov     x30, xzr
    bl      __component_rt_start
2:  b       2b
    .size   _start, . - _start

    /*
     * Every exception the component takes at EL1 is fatal: report it and stop. No stack, no
     * memory access, no syndrome registers either (reading ESR_EL1 or FAR_EL1 traps, HCR_EL2.TRVM):
     * the kernel reads them for the report.
     */
    .section .text.__component_rt_vectors, "ax"
    .balign 0x800
    .global __component_rt_vectors
__component_rt_vectors:
    .rept   16
    .balign 0x80
    mov     x0, #{fault}
    hvc     #0
    b       .
    .endr
"#,
        fault = const syscall::FAULT,
    );

    /// `HVC #0` with `x0` = `number` and `x1`..`x5` = `args`; returns `x0`..`x3`.
    ///
    /// The kernel may clobber any caller-saved register, so the call is declared as clobbering
    /// the whole C ABI set.
    ///
    /// # Safety
    ///
    /// The call may make the kernel read or write the component's memory (the IPC buffers, or
    /// the buffer a pointer argument names): the caller must make sure no Rust reference to that
    /// memory conflicts with what the kernel does.
    #[inline(always)]
    pub unsafe fn hvc(number: u64, args: [u64; 5]) -> [u64; 5] {
        let (x0, x1, x2, x3, x4): (u64, u64, u64, u64, u64);
        // SAFETY: HVC #0 enters the kernel, which follows the system-call ABI (hv_ipc::abi) and
        // returns to the next instruction with results in x0-x4. Memory effects are the
        // caller's responsibility (see the function's safety contract); the asm is not `nomem`,
        // so the compiler does not cache memory across it.
        unsafe {
            asm!(
                "hvc #0",
                inlateout("x0") number => x0,
                inlateout("x1") args[0] => x1,
                inlateout("x2") args[1] => x2,
                inlateout("x3") args[2] => x3,
                inlateout("x4") args[3] => x4,
                in("x5") args[4],
                clobber_abi("C"),
                options(nostack),
            );
        }
        [x0, x1, x2, x3, x4]
    }

    /// Executes a permanently undefined instruction (`udf #0`): the component's own vectors
    /// take it and report it as a fault.
    pub fn udf() -> ! {
        // SAFETY: UDF raises an Undefined Instruction exception, which the runtime's vectors
        // turn into a FAULT system call that never returns; nothing else is affected.
        unsafe { asm!("udf #0", options(noreturn, nomem, nostack)) }
    }

    /// Whether the CPU has the GICv3 system-register interface (ID_AA64PFR0_EL1.GIC): the
    /// machine's GIC is a GICv3 (else a GICv2, on the boards this hypervisor runs on).
    pub fn has_gic_system_registers() -> bool {
        let pfr0: u64;
        // SAFETY: reading an ID register at EL1 (not trapped for components) has no effect.
        unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack)) };
        (pfr0 >> 24) & 0xf != 0
    }

    /// Waits forever (after a system call that should not have returned).
    pub fn halt() -> ! {
        loop {
            // SAFETY: WFE only waits for an event; with interrupts masked this sleeps until
            // the kernel deschedules the component.
            unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
        }
    }
}

#[cfg(not(target_os = "none"))]
mod host {
    /// Host stand-in for the `HVC #0` system call: components only run on aarch64.
    ///
    /// # Safety
    ///
    /// None needed; it only panics. Kept `unsafe` to match the target signature.
    pub unsafe fn hvc(number: u64, _args: [u64; 5]) -> [u64; 5] {
        panic!(
            "hv-component-rt: system call {number} made on the host (components run only on aarch64)"
        )
    }

    /// Host stand-in for `udf #0`.
    pub fn udf() -> ! {
        panic!("hv-component-rt: udf executed on the host")
    }

    /// Host stand-in: components only run on aarch64.
    pub fn has_gic_system_registers() -> bool {
        panic!("hv-component-rt: ID register read on the host")
    }

    /// Host stand-in: components only run on aarch64.
    pub fn halt() -> ! {
        panic!("hv-component-rt: halt on the host")
    }
}
