//! Test guest `vm-irq-host`: the host VM beside the `vm-irq` guest
//! (`manifests/tests/guest-irq.toml`). Its one case, `the_guest_is_not_disturbed`, polls
//! HOST_VM_STATE(1) until the guest has run its cases and powered off (60 s at most), and on
//! every round tries to disturb the guest's interrupts the ways a host could: it clears the
//! distributor's group enables (GICD_CTLR = 0), sends an SGI to the guest's CPUs (GICv2
//! GICD_SGIR; GICv3 ICC_SGI1R_EL1), routes an SPI to a guest CPU, and on GICv3 disables the
//! timer's PPI in a guest CPU's redistributor and puts it to sleep. The guest's timer cases must
//! pass all the same (the run checks its summary); this case checks that GICD_CTLR reads back
//! with its enables and that the guest CPU's redistributor stays awake. (Its timer PPI's enable
//! is the kernel's to change as the guest enables and disables it, so it is not checked here.)
//! Each round until it is taken, it also types `hv!` into the guest's console
//! (HOST_VM_CONSOLE_INPUT), which the guest's UART case must receive by interrupt.
//!
//! With `idle` on its command line it does nothing at all (it waits for an interrupt that never
//! comes), so that under `-icount` the guest's CPU runs alone (`cargo xtask bench`, which ends
//! that run at its timeout).
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test case (bare metal only).

    use core::arch::asm;

    use hv_guest_rt::smccc::host::code::SUCCESS;
    use hv_guest_rt::smccc::host::{HOST_VM_CONSOLE_INPUT, HOST_VM_STATE, vm_state};
    use hv_guest_rt::{Env, TestResult, counter, ensure, fail, smccc::hvc};

    /// The guest VM's id.
    const GUEST: u64 = 1;
    /// How long the guest may take.
    const PATIENCE_S: u64 = 60;
    /// The guest's first CPU (the manifest pins its vCPU 0 there).
    const GUEST_CPU: u64 = 1;
    const GICD_CTLR: u64 = 0x000;
    const GICD_ITARGETSR: u64 = 0x800;
    const GICD_SGIR: u64 = 0xf00;
    const GICD_IROUTER: u64 = 0x6000;
    const GICR_STRIDE: u64 = 0x2_0000;
    const GICR_WAKER: u64 = 0x014;
    const GICR_SGI_BASE: u64 = 0x1_0000;
    const GICR_ICENABLER0: u64 = 0x180;
    /// The EL1 virtual timer's PPI.
    const TIMER: u32 = 27;

    hv_guest_rt::test_guest![the_guest_is_not_disturbed];

    fn read32(address: u64) -> u32 {
        let value: u32;
        // SAFETY: a GIC register the DTB names (filtered by the hypervisor); a plain load, so
        // the trap has a full syndrome.
        unsafe { asm!("ldr {0:w}, [{1}]", out(reg) value, in(reg) address, options(nostack)) };
        value
    }

    fn write32(address: u64, value: u32) {
        // SAFETY: as in `read32`; what the write may do is what this test tries.
        unsafe { asm!("str {0:w}, [{1}]", in(reg) value, in(reg) address, options(nostack)) };
    }

    fn write64(address: u64, value: u64) {
        // SAFETY: as in `write32` (GICD_IROUTER is 64 bits wide).
        unsafe { asm!("str {0}, [{1}]", in(reg) value, in(reg) address, options(nostack)) };
    }

    /// (GICD, GICR) from the DTB: GICR is `None` on a GICv2.
    fn gic(env: &Env) -> Option<(u64, Option<u64>)> {
        let fdt = env.fdt();
        let regs = |compatible: &[&str]| {
            let node = fdt.find_compatible(compatible)?;
            let mut reg = node.reg()?;
            let first = reg.next()?.starting_address as u64;
            let second = reg.next()?.starting_address as u64;
            Some((first, second))
        };
        if let Some((gicd, gicr)) = regs(&["arm,gic-v3"]) {
            return Some((gicd, Some(gicr)));
        }
        regs(&["arm,cortex-a15-gic", "arm,gic-400"]).map(|(gicd, _)| (gicd, None))
    }

    /// One round of attempts to disturb the guest's interrupts.
    fn disturb(gicd: u64, gicr: Option<u64>) {
        write32(gicd + GICD_CTLR, 0);
        match gicr {
            None => {
                // SGI 3 to CPU 1 (the guest's), SPI 33 targeted at it.
                write32(gicd + GICD_SGIR, (1 << (16 + GUEST_CPU)) | 3);
                write32(gicd + GICD_ITARGETSR + 32, 1 << GUEST_CPU);
            }
            Some(gicr) => {
                let frame = gicr + GUEST_CPU * GICR_STRIDE;
                write32(frame + GICR_SGI_BASE + GICR_ICENABLER0, 1 << TIMER);
                write32(frame + GICR_WAKER, 1 << 1);
                write64(gicd + GICD_IROUTER + 8 * 33, GUEST_CPU);
                // SAFETY: ICC_SGI1R_EL1: SGI 3 to Aff0 = 1 (the guest's CPU); the guest's CPU
                // takes it at EL2.
                unsafe {
                    asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) (3u64 << 24) | (1 << GUEST_CPU),
                         options(nostack))
                };
            }
        }
    }

    fn the_guest_is_not_disturbed(env: &Env) -> TestResult {
        let idle = env
            .fdt()
            .chosen()
            .bootargs()
            .is_some_and(|args| args.split(' ').any(|arg| arg == "idle"));
        if idle {
            hv_guest_rt::println!("idle: waiting for nothing");
            loop {
                // SAFETY: WFI only waits; the host gets no interrupt, so it waits for good.
                unsafe { asm!("wfi", options(nomem, nostack)) };
            }
        }
        let Some((gicd, gicr)) = gic(env) else {
            fail!("the DTB has no GIC");
        };
        let deadline = counter::ticks() + PATIENCE_S * counter::frequency();
        let mut rounds = 0u64;
        let mut typed = false;
        let mut awake_checks = 0u64;
        loop {
            let [code, state, ..] = hvc(HOST_VM_STATE, &[GUEST]);
            if code as i64 == SUCCESS && state == vm_state::OFF {
                break;
            }
            disturb(gicd, gicr);
            rounds += 1;
            // Types "hv!" into the guest's console; taken once its receiver is on. Typed until
            // taken once (then the guest has what its case waits for).
            if !typed {
                let [code, taken, ..] = hvc(
                    HOST_VM_CONSOLE_INPUT,
                    &[GUEST, 3, u64::from_le_bytes(*b"hv!\0\0\0\0\0")],
                );
                ensure!(
                    code as i64 == SUCCESS,
                    "HOST_VM_CONSOLE_INPUT answered {}",
                    code as i64
                );
                typed = taken == 3;
            }
            let ctlr = read32(gicd + GICD_CTLR);
            ensure!(
                ctlr & 0b11 == 0b11,
                "GICD_CTLR reads {ctlr:#x} after the host wrote 0: the host turned the distributor off"
            );
            // The guest's CPU wakes its redistributor as the hypervisor brings it up, so the
            // frame sleeps (as after reset) until then: it is looked at once the guest runs,
            // which its console taking the input shows.
            if let (Some(gicr), true) = (gicr, typed) {
                let waker = read32(gicr + GUEST_CPU * GICR_STRIDE + GICR_WAKER);
                ensure!(
                    waker & (1 << 1) == 0,
                    "the guest CPU's redistributor was put to sleep by the host (GICR_WAKER {waker:#x})"
                );
                awake_checks += 1;
            }
            ensure!(
                counter::ticks() < deadline,
                "the guest did not power off within {PATIENCE_S} s"
            );
        }
        hv_guest_rt::println!("host: {rounds} rounds of attempts to disturb the guest's GIC");
        ensure!(
            rounds > 0,
            "the guest was off before the host tried anything"
        );
        ensure!(
            gicr.is_none() || awake_checks > 0,
            "the guest powered off before the host could look at its CPU's redistributor"
        );
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
