//! The physical GIC as the kernel drives it on CPUs that run a guest vCPU: their own CPU
//! interface and banked SGI/PPI state, and the virtual interface's list registers (GICv2:
//! memory-mapped GICC and GICH; GICv3: ICC_* and ICH_*_EL2 system registers).
//!
//! On a guest CPU the kernel takes the physical interrupts (HCR_EL2.IMO/FMO) and uses three:
//! the virtual timer's PPI (forwarded to the vCPU as a hardware-linked virtual interrupt), the
//! maintenance PPI and one SGI other CPUs send to make it look at its waiting virtual
//! interrupts (the "kick"). It runs its CPU interface with EOImode 1: completing an interrupt
//! only drops the running priority, and a forwarded one stays active until the guest
//! deactivates its virtual twin. Host CPUs are not touched: the host drives its own CPU
//! interface directly.
//!
//! The distributor is shared with the host, which configures it. The kernel sets its group
//! enables once at boot, before the host runs, so that a guest CPU's PPIs are delivered even
//! under a host that never uses the GIC.
//!
//! Register offsets and fields: GICv2 ARM IHI 0048B (4.3 distributor, 4.4 CPU interface,
//! 5.3 virtual interface control), GICv3 ARM IHI 0069 (12.9 distributor, 12.10 and 12.11
//! redistributor, 12.4 ICH_*).

use crate::cpus;
use aarch64_cpu::registers::{
    ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2, ICH_LR2_EL2, ICH_LR3_EL2,
    ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2, ICH_LR10_EL2,
    ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_VMCR_EL2,
    ICH_VTR_EL2, MPIDR_EL1, Readable, Writeable,
};
use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU8, Ordering};
use hv_board::{GicCpuInterfaces, GicVersion};
use hv_kernel::controls::CpuFeatures;
use hv_kernel::trap_stats::MAX_CPUS;
use hv_kernel::virq::{Format, ListEntry, ListRegisters, MAX_LIST_REGISTERS};

/// The SGI a CPU sends another to have it fill its list registers (the host uses 0 to 7).
pub const KICK_SGI: u32 = 15;
/// INTIDs from 1020 up are special: nothing to handle.
pub const FIRST_SPECIAL_INTID: u32 = 1020;
/// The priority of the PPIs and the SGI the kernel takes on guest CPUs.
const KERNEL_PRIORITY: u8 = 0x80;

/// The GIC this machine has, found at boot.
enum Gic {
    V2 {
        gicd: u64,
        gicc: u64,
        gich: u64,
    },
    V3 {
        gicd: u64,
        gicr: u64,
        gicr_end: u64,
        stride: u64,
    },
}

static GIC: spin::Once<Gic> = spin::Once::new();

/// GICv2: each CPU's bit in the distributor's target lists, as its GICD_ITARGETSR0 reads.
static V2_TARGET_BITS: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

// GICv2 distributor, and GICv3 distributor and SGI_base frame (the same offsets).
const GICD_CTLR: u64 = 0x000;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_ICPENDR: u64 = 0x280;
const GICD_ICACTIVER: u64 = 0x380;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_SGIR: u64 = 0xf00;
// GICv2 CPU interface.
const GICC_CTLR: u64 = 0x000;
const GICC_PMR: u64 = 0x004;
const GICC_IAR: u64 = 0x00c;
const GICC_EOIR: u64 = 0x010;
const GICC_DIR: u64 = 0x1000;
// GICv2 virtual interface control.
const GICH_HCR: u64 = 0x000;
const GICH_VTR: u64 = 0x004;
const GICH_VMCR: u64 = 0x008;
const GICH_APR: u64 = 0x0f0;
const GICH_LR: u64 = 0x100;
// GICv3 redistributor.
const GICR_WAKER: u64 = 0x014;
const GICR_TYPER: u64 = 0x008;
const GICR_SGI_BASE: u64 = 0x1_0000;

/// GICx_HCR.En and .UIE (the same bits in GICH_HCR and ICH_HCR_EL2).
const HCR_EN: u64 = 1 << 0;
const HCR_UIE: u64 = 1 << 1;

fn read32(address: u64) -> u32 {
    // SAFETY: `address` is a GIC register of the board's GIC, mapped as device memory at EL2
    // (every non-RAM range is); reading it has no effect on memory safety.
    unsafe { read_volatile(address as *const u32) }
}

fn write32(address: u64, value: u32) {
    // SAFETY: as in `read32`; the kernel writes only the registers of its own CPU's banked
    // state, the virtual interface and the distributor's group enables.
    unsafe { write_volatile(address as *mut u32, value) }
}

fn write8(address: u64, value: u8) {
    // SAFETY: as in `write32` (priority registers are byte-accessible).
    unsafe { write_volatile(address as *mut u8, value) }
}

/// Finds the board's GIC of the version this CPU has (GICv3 when it has the system-register
/// interface) and enables the distributor's groups. Runs once, on the boot CPU, before the
/// host.
pub fn set_up(features: &CpuFeatures) {
    let version = if features.gic_sysregs {
        GicVersion::V3
    } else {
        GicVersion::V2
    };
    let Some(board_gic) = hv_board::CURRENT.gic(version) else {
        defmt::warn!("the board has no GIC of this CPU's version: guests get no interrupts");
        return;
    };
    let gicd = board_gic.gicd.base;
    let gic = match board_gic.cpu_interfaces {
        GicCpuInterfaces::V2 { gicc, gich, .. } => Gic::V2 {
            gicd,
            gicc: gicc.base,
            gich: gich.base,
        },
        GicCpuInterfaces::V3 { gicr, gicr_stride } => Gic::V3 {
            gicd,
            gicr: gicr.base,
            gicr_end: gicr.end(),
            stride: gicr_stride,
        },
    };
    // EnableGrp0 | EnableGrp1; GICv3 (one security state): ARE first, then the enables with it.
    match gic {
        Gic::V2 { gicd, .. } => write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | 0b11),
        Gic::V3 { gicd, .. } => {
            const ARE: u32 = 1 << 4;
            write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | ARE);
            write32(gicd + GICD_CTLR, read32(gicd + GICD_CTLR) | ARE | 0b11);
        }
    }
    GIC.call_once(|| gic);
}

/// This CPU's GICv3 redistributor (its RD_base), found by its affinity.
fn own_redistributor(gicr: u64, gicr_end: u64, stride: u64) -> Option<u64> {
    let affinity = MPIDR_EL1.get() & 0xff_00ff_ffff;
    let wanted = (affinity & 0xff_ffff) | ((affinity >> 32) << 24);
    let mut frame = gicr;
    while frame + stride <= gicr_end {
        // SAFETY: as in `read32`; GICR_TYPER is a 64-bit register.
        let typer = unsafe { read_volatile((frame + GICR_TYPER) as *const u64) };
        if typer >> 32 == wanted {
            return Some(frame);
        }
        if typer & (1 << 4) != 0 {
            break;
        }
        frame += stride;
    }
    None
}

/// Readies this CPU to run a guest vCPU from its first instruction: the kick SGI and the
/// maintenance PPI enabled, the virtual timer's PPI inactive and disabled until the guest
/// enables it, the CPU interface in EOImode 1, and the virtual interface empty and enabled.
/// Returns the number of list registers (0 without a GIC).
pub fn set_up_guest_cpu(index: usize, maintenance: u32, timer: u32) -> usize {
    let Some(gic) = GIC.get() else { return 0 };
    let kernel_bits = 1u32 << KICK_SGI | 1 << maintenance;
    let banked = match *gic {
        Gic::V2 { gicd, .. } => gicd,
        Gic::V3 {
            gicr,
            gicr_end,
            stride,
            ..
        } => {
            let Some(frame) = own_redistributor(gicr, gicr_end, stride) else {
                defmt::error!(
                    "cpu{=usize}: no redistributor has this CPU's affinity",
                    index
                );
                return 0;
            };
            // Awake: ProcessorSleep clear, then wait for ChildrenAsleep to clear.
            write32(frame + GICR_WAKER, read32(frame + GICR_WAKER) & !(1 << 1));
            while read32(frame + GICR_WAKER) & (1 << 2) != 0 {}
            frame + GICR_SGI_BASE
        }
    };
    write32(banked + GICD_ICENABLER, 1 << timer);
    write32(banked + GICD_ICACTIVER, 1 << timer);
    write32(banked + GICD_ICPENDR, 1 << timer);
    for intid in [KICK_SGI, maintenance, timer] {
        write8(banked + GICD_IPRIORITYR + u64::from(intid), KERNEL_PRIORITY);
    }
    let all = kernel_bits | 1 << timer;
    let list_registers;
    match *gic {
        Gic::V2 { gicc, gich, gicd } => {
            // Group 0, which a GICv2 without security extensions signals as IRQ.
            write32(banked + GICD_IGROUPR, read32(banked + GICD_IGROUPR) & !all);
            V2_TARGET_BITS[index].store(read32(gicd + GICD_ITARGETSR) as u8, Ordering::Relaxed);
            write32(gicc + GICC_PMR, 0xff);
            // EnableGrp0 | EnableGrp1 | EOImode.
            write32(gicc + GICC_CTLR, 0b11 | 1 << 9);
            write32(gich + GICH_HCR, 0);
            write32(gich + GICH_VMCR, 0);
            write32(gich + GICH_APR, 0);
            list_registers = ((read32(gich + GICH_VTR) & 0x3f) + 1) as usize;
            for n in 0..list_registers.min(MAX_LIST_REGISTERS) {
                write32(gich + GICH_LR + 4 * n as u64, 0);
            }
            write32(gich + GICH_HCR, HCR_EN as u32);
        }
        Gic::V3 { .. } => {
            write32(banked + GICD_IGROUPR, read32(banked + GICD_IGROUPR) | all);
            // SAFETY: the physical CPU interface's priority mask, binary point, control and
            // group enable (ICC_PMR_EL1, ICC_BPR1_EL1, ICC_CTLR_EL1 with EOImode, ICC_IGRPEN1_EL1;
            // `aarch64-cpu` names none of them writable): they change which interrupts reach
            // this CPU at EL2, not memory.
            unsafe {
                asm!(
                    "msr S3_0_C4_C6_0, {pmr}",
                    "msr S3_0_C12_C12_3, xzr",
                    "msr S3_0_C12_C12_4, {ctlr}",
                    "msr S3_0_C12_C12_7, {one}",
                    "isb",
                    pmr = in(reg) 0xffu64,
                    ctlr = in(reg) 1u64 << 1,
                    one = in(reg) 1u64,
                    options(nostack),
                );
            }
            ICH_HCR_EL2.set(0);
            ICH_VMCR_EL2.set(0);
            ICH_AP0R0_EL2.set(0);
            ICH_AP1R0_EL2.set(0);
            list_registers = ((ICH_VTR_EL2.get() & 0x1f) + 1) as usize;
            let mut lrs = HardwareListRegisters {
                count: list_registers,
            };
            for n in 0..lrs.count() {
                lrs.write(n, ListEntry::EMPTY);
            }
            ICH_HCR_EL2.set(HCR_EN);
        }
    }
    write32(banked + GICD_ISENABLER, kernel_bits);
    list_registers
}

/// Enables or disables the virtual timer's physical PPI on this CPU (the guest enabled or
/// disabled it in its distributor).
pub fn set_ppi_enabled(intid: u32, enabled: bool) {
    let banked = match GIC.get() {
        Some(Gic::V2 { gicd, .. }) => *gicd,
        Some(Gic::V3 {
            gicr,
            gicr_end,
            stride,
            ..
        }) => match own_redistributor(*gicr, *gicr_end, *stride) {
            Some(frame) => frame + GICR_SGI_BASE,
            None => return,
        },
        None => return,
    };
    let register = if enabled {
        GICD_ISENABLER
    } else {
        GICD_ICENABLER
    };
    write32(banked + register, 1 << intid);
}

/// What [`let_only_through`] changed on this CPU, for [`restore_after_only`].
#[derive(Clone, Copy, Debug)]
pub struct OnlyThrough {
    intid: u32,
    /// The PPI's banked enable, group and priority before.
    enabled: bool,
    group: bool,
    priority: u8,
    /// The CPU interface's priority mask and group enable (GICv2: GICC_CTLR) before.
    mask: u32,
    enable: u32,
}

/// The priority [`let_only_through`] gives its PPI, and the mask that lets nothing less urgent
/// through (the host's interrupts, Linux's pseudo-NMIs at 0x20 included).
const ONLY_PRIORITY: u8 = 0x00;
const ONLY_MASK: u32 = 0x10;

/// This CPU's banked SGI/PPI registers (GICv2: the distributor's; GICv3: its redistributor's
/// SGI_base frame).
fn banked() -> Option<u64> {
    match *GIC.get()? {
        Gic::V2 { gicd, .. } => Some(gicd),
        Gic::V3 {
            gicr,
            gicr_end,
            stride,
            ..
        } => own_redistributor(gicr, gicr_end, stride).map(|frame| frame + GICR_SGI_BASE),
    }
}

/// Makes PPI `intid` the only interrupt this CPU's interface signals: enabled, at the highest
/// priority, in the group the interface signals as IRQ (GICv2 without security extensions:
/// group 0; GICv3: group 1) with that group enabled, and the priority mask raised above every
/// other interrupt. The host owns the interface and the banked registers on its CPUs; this
/// borrows them for as long as the kernel must be able to take the CPU back from a component
/// (a swap's deadline) and [`restore_after_only`] gives every bit back. `None` without a GIC.
pub fn let_only_through(intid: u32) -> Option<OnlyThrough> {
    let gic = GIC.get()?;
    let banked = banked()?;
    let bit = 1u32 << intid;
    let v2 = matches!(gic, Gic::V2 { .. });
    let priority_at = banked + GICD_IPRIORITYR + u64::from(intid);
    // SAFETY: as in `read32` (priority registers are byte-accessible).
    let priority = unsafe { read_volatile(priority_at as *const u8) };
    let saved_group = read32(banked + GICD_IGROUPR) & bit != 0;
    let enabled = read32(banked + GICD_ISENABLER) & bit != 0;
    let (mask, enable) = match *gic {
        Gic::V2 { gicc, .. } => (read32(gicc + GICC_PMR), read32(gicc + GICC_CTLR)),
        Gic::V3 { .. } => {
            let (pmr, igrpen1): (u64, u64);
            // SAFETY: reading ICC_PMR_EL1 and ICC_IGRPEN1_EL1 has no effect.
            unsafe {
                asm!(
                    "mrs {pmr}, S3_0_C4_C6_0",
                    "mrs {en}, S3_0_C12_C12_7",
                    pmr = out(reg) pmr,
                    en = out(reg) igrpen1,
                    options(nostack, nomem),
                )
            };
            (pmr as u32, igrpen1 as u32)
        }
    };
    write8(priority_at, ONLY_PRIORITY);
    let groups = read32(banked + GICD_IGROUPR);
    write32(
        banked + GICD_IGROUPR,
        if v2 { groups & !bit } else { groups | bit },
    );
    write32(banked + GICD_ISENABLER, bit);
    match *gic {
        Gic::V2 { gicc, .. } => {
            write32(gicc + GICC_PMR, ONLY_MASK);
            // EnableGrp0 (the host's other bits as they were).
            write32(gicc + GICC_CTLR, enable | 1);
        }
        // SAFETY: the priority mask and group 1 enable of this CPU's interface: they change
        // which interrupts reach it, not memory.
        Gic::V3 { .. } => unsafe {
            asm!(
                "msr S3_0_C4_C6_0, {pmr}",
                "msr S3_0_C12_C12_7, {one}",
                "isb",
                pmr = in(reg) u64::from(ONLY_MASK),
                one = in(reg) 1u64,
                options(nostack, nomem),
            )
        },
    }
    Some(OnlyThrough {
        intid,
        enabled,
        group: saved_group,
        priority,
        mask,
        enable,
    })
}

/// Gives back what [`let_only_through`] changed.
pub fn restore_after_only(saved: OnlyThrough) {
    let (Some(gic), Some(banked)) = (GIC.get(), banked()) else {
        return;
    };
    let bit = 1u32 << saved.intid;
    if !saved.enabled {
        write32(banked + GICD_ICENABLER, bit);
    }
    let groups = read32(banked + GICD_IGROUPR) & !bit;
    write32(
        banked + GICD_IGROUPR,
        groups | if saved.group { bit } else { 0 },
    );
    write8(
        banked + GICD_IPRIORITYR + u64::from(saved.intid),
        saved.priority,
    );
    match *gic {
        Gic::V2 { gicc, .. } => {
            write32(gicc + GICC_CTLR, saved.enable);
            write32(gicc + GICC_PMR, saved.mask);
        }
        // SAFETY: as in `let_only_through`.
        Gic::V3 { .. } => unsafe {
            asm!(
                "msr S3_0_C12_C12_7, {en}",
                "msr S3_0_C4_C6_0, {pmr}",
                "isb",
                en = in(reg) u64::from(saved.enable),
                pmr = in(reg) u64::from(saved.mask),
                options(nostack, nomem),
            )
        },
    }
}

/// One access, for the host, to the distributor or a redistributor (GIC_ACCESS: the component
/// that filters the host's GIC accesses decided it may): `size` bytes at physical `address`,
/// a write of `value` if `write`. `None` outside those registers or for a bad size or
/// alignment.
pub fn host_access(address: u64, size: u64, write: bool, value: u64) -> Option<u64> {
    let gic = GIC.get()?;
    let inside = |start: u64, end: u64| {
        address >= start && address.checked_add(size).is_some_and(|last| last <= end)
    };
    let allowed = match *gic {
        // The whole 64 KiB frame: a GICv2's 4 KiB of registers and what QEMU decodes after them.
        Gic::V2 { gicd, .. } => inside(gicd, gicd + 0x1_0000),
        Gic::V3 {
            gicd,
            gicr,
            gicr_end,
            ..
        } => inside(gicd, gicd + 0x1_0000) || inside(gicr, gicr_end),
    };
    if !allowed || !matches!(size, 1 | 2 | 4 | 8) || !address.is_multiple_of(size) {
        return None;
    }
    // SAFETY: a register of the GIC (checked above, size and alignment too), mapped as device
    // memory at EL2; what the access does is the host's, as the filtering component decided.
    Some(unsafe { super::device_access(address, size, write, value) })
}

/// Acknowledges the highest-priority pending interrupt of this CPU; returns the raw IAR value
/// (INTID in bits 0..10; GICv2 SGIs add their source CPU), for [`drop_priority`] and
/// [`deactivate`].
pub fn acknowledge() -> u32 {
    match GIC.get() {
        Some(Gic::V2 { gicc, .. }) => read32(gicc + GICC_IAR),
        Some(Gic::V3 { .. }) => {
            let iar: u64;
            // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; no memory effect.
            unsafe { asm!("mrs {}, S3_0_C12_C12_0", out(reg) iar, options(nostack)) };
            iar as u32
        }
        None => 1023,
    }
}

/// Ends the acknowledged interrupt `iar`'s priority (EOImode 1: it stays active).
pub fn drop_priority(iar: u32) {
    match GIC.get() {
        Some(Gic::V2 { gicc, .. }) => write32(gicc + GICC_EOIR, iar),
        Some(Gic::V3 { .. }) => {
            // SAFETY: ICC_EOIR1_EL1 drops the running priority; no memory effect.
            unsafe { asm!("msr S3_0_C12_C12_1, {}", in(reg) u64::from(iar), options(nostack)) }
        }
        None => {}
    }
}

/// Deactivates the acknowledged interrupt `iar`.
pub fn deactivate(iar: u32) {
    match GIC.get() {
        Some(Gic::V2 { gicc, .. }) => write32(gicc + GICC_DIR, iar),
        Some(Gic::V3 { .. }) => {
            // SAFETY: ICC_DIR_EL1 deactivates an interrupt; no memory effect.
            unsafe { asm!("msr S3_0_C12_C11_1, {}", in(reg) u64::from(iar), options(nostack)) }
        }
        None => {}
    }
}

/// Sends the kick SGI to CPU `index`.
pub fn kick(index: usize) {
    match GIC.get() {
        Some(Gic::V2 { gicd, .. }) => {
            let target = V2_TARGET_BITS[index].load(Ordering::Relaxed);
            if target != 0 {
                write32(gicd + GICD_SGIR, u32::from(target) << 16 | KICK_SGI);
            }
        }
        Some(Gic::V3 { .. }) => {
            let Some(mpidr) = cpus::mpidr_of(index) else {
                return;
            };
            let aff0 = mpidr & 0xff;
            let sgi1r = (mpidr >> 32 & 0xff) << 48
                | (mpidr >> 16 & 0xff) << 32
                | (aff0 >> 4) << 44
                | u64::from(KICK_SGI) << 24
                | (mpidr >> 8 & 0xff) << 16
                | 1 << (aff0 & 0xf);
            // SAFETY: ICC_SGI1R_EL1 sends an SGI; no memory effect.
            unsafe { asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) sgi1r, options(nostack)) }
        }
        None => {}
    }
}

/// Asks for (or stops asking for) the maintenance interrupt that comes when at most one list
/// register holds an interrupt (underflow).
pub fn set_underflow_interrupt(on: bool) {
    match GIC.get() {
        Some(Gic::V2 { gich, .. }) => {
            let hcr = u64::from(read32(gich + GICH_HCR));
            let hcr = if on { hcr | HCR_UIE } else { hcr & !HCR_UIE };
            write32(gich + GICH_HCR, hcr as u32);
        }
        Some(Gic::V3 { .. }) => {
            let hcr = ICH_HCR_EL2.get();
            ICH_HCR_EL2.set(if on { hcr | HCR_UIE } else { hcr & !HCR_UIE });
        }
        None => {}
    }
}

/// This CPU's list registers.
pub struct HardwareListRegisters {
    /// How many the implementation has (from [`set_up_guest_cpu`]).
    pub count: usize,
}

impl ListRegisters for HardwareListRegisters {
    fn count(&self) -> usize {
        self.count
    }

    fn read(&self, n: usize) -> ListEntry {
        match GIC.get() {
            Some(Gic::V2 { gich, .. }) => {
                ListEntry::decode(u64::from(read32(gich + GICH_LR + 4 * n as u64)), Format::V2)
            }
            _ => ListEntry::decode(read_ich_lr(n), Format::V3),
        }
    }

    fn write(&mut self, n: usize, entry: ListEntry) {
        match GIC.get() {
            Some(Gic::V2 { gich, .. }) => write32(
                gich + GICH_LR + 4 * n as u64,
                entry.encode(Format::V2) as u32,
            ),
            _ => write_ich_lr(n, entry.encode(Format::V3)),
        }
    }
}

fn read_ich_lr(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        15 => ICH_LR15_EL2.get(),
        _ => 0,
    }
}

fn write_ich_lr(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        3 => ICH_LR3_EL2.set(value),
        4 => ICH_LR4_EL2.set(value),
        5 => ICH_LR5_EL2.set(value),
        6 => ICH_LR6_EL2.set(value),
        7 => ICH_LR7_EL2.set(value),
        8 => ICH_LR8_EL2.set(value),
        9 => ICH_LR9_EL2.set(value),
        10 => ICH_LR10_EL2.set(value),
        11 => ICH_LR11_EL2.set(value),
        12 => ICH_LR12_EL2.set(value),
        13 => ICH_LR13_EL2.set(value),
        14 => ICH_LR14_EL2.set(value),
        15 => ICH_LR15_EL2.set(value),
        _ => {}
    }
}
