//! The glue between guests' accesses, the distributor model and the kernel operations, with a
//! recording kernel.

use super::*;
use hv_component_config::{Gic, MmioGuardMode, Name, Vm};

/// An injection as the kernel got it: VM, vCPU, INTID, priority, GICv2 source.
type Injected = (u16, usize, u32, u8, Option<u8>);
/// A timer configuration as the kernel got it: VM, vCPU, (priority, group 1) if enabled.
type TimerTold = (u16, usize, Option<(u8, bool)>);

#[derive(Default)]
pub(crate) struct Recorder {
    injected: std::vec::Vec<Injected>,
    timers: std::vec::Vec<TimerTold>,
}

impl Kernel for Recorder {
    fn inject(&mut self, vm: u16, vcpu: usize, irq: &Pending) {
        self.injected
            .push((vm, vcpu, irq.intid, irq.priority, irq.source));
    }
    fn timer(&mut self, vm: u16, vcpu: usize, delivery: Option<(u8, bool)>) {
        self.timers.push((vm, vcpu, delivery));
    }
}

pub(crate) const GICD: u64 = 0x0800_0000;
const GICC: u64 = 0x0801_0000;
pub(crate) const GICR: u64 = 0x080a_0000;

pub(crate) fn system() -> System {
    let vm = |id: u16, host: bool, cpus: &[u8]| Vm {
        id,
        name: Name::try_from(if host { "host" } else { "guest" }).unwrap(),
        host,
        memory: Region::default(),
        ram_ipa: 0x4000_0000,
        mte: false,
        shared_ipa_bit: None,
        cpus: cpus.iter().copied().collect(),
        mmio_guard: MmioGuardMode::Off,
        devices: Default::default(),
    };
    System {
        ram: Region::default(),
        hypervisor: Region::default(),
        vms: [vm(0, true, &[0]), vm(1, false, &[1, 2])]
            .into_iter()
            .collect(),
        components: Default::default(),
        gics: [
            Gic {
                version: 2,
                distributor: Region {
                    base: GICD,
                    size: 0x1_0000,
                },
                redistributors: Region::default(),
                redistributor_stride: 0,
                cpu_interface: Region {
                    base: GICC,
                    size: 0x1_0000,
                },
                virtual_cpu_interface: Region {
                    base: 0x0804_0000,
                    size: 0x1_0000,
                },
                virtual_timer: 27,
            },
            Gic {
                version: 3,
                distributor: Region {
                    base: GICD,
                    size: 0x1_0000,
                },
                redistributors: Region {
                    base: GICR,
                    size: 0xf6_0000,
                },
                redistributor_stride: 0x2_0000,
                cpu_interface: Region::default(),
                virtual_cpu_interface: Region::default(),
                virtual_timer: 27,
            },
        ]
        .into_iter()
        .collect(),
        console: Region::default(),
        control_line: None,
    }
}

pub(crate) fn gics(v3: bool) -> Gics {
    let system = system();
    let mut gics = Gics::EMPTY;
    gics.set_up(&system, layout(&system, v3));
    gics
}

#[test]
fn a_guest_gic_is_small_enough_to_build_on_a_component_stack() {
    // `set_up` builds one distributor at a time on the 16 KiB stack a component has.
    let size = core::mem::size_of::<Distributor>();
    assert!(size < 8 * 1024, "a distributor takes {size} bytes");
}

fn write(gics: &mut Gics, kernel: &mut Recorder, vcpu: usize, ipa: u64, size: u8, value: u64) {
    assert_eq!(
        gics.access(1, vcpu, ipa, size, Some(value), kernel),
        Some(Ok(Outcome::Written)),
        "write of {value:#x} at {ipa:#x}"
    );
}

#[test]
fn the_layout_follows_the_cpus_gic() {
    let system = system();
    assert_eq!(layout(&system, true).unwrap().version, Version::V3);
    let v2 = layout(&system, false).unwrap();
    assert_eq!(v2.version, Version::V2);
    assert_eq!(v2.cpu_interface.base, GICC);
    let none = System {
        gics: Default::default(),
        ..system
    };
    assert_eq!(layout(&none, true), None);
}

#[test]
fn only_guests_gic_addresses_are_taken() {
    let mut gics = gics(true);
    let mut kernel = Recorder::default();
    // The host has no emulated GIC; a UART address is not the GIC's.
    assert_eq!(gics.access(0, 0, GICD, 4, None, &mut kernel), None);
    assert_eq!(gics.access(1, 0, 0x0900_0000, 4, None, &mut kernel), None);
    // GICD_PIDR2 says GICv3.
    assert_eq!(
        gics.access(1, 0, GICD + 0xffe8, 4, None, &mut kernel),
        Some(Ok(Outcome::Read(0x3 << 4)))
    );
    // A frame past the guest's two redistributors reads as zero, takes writes.
    assert_eq!(
        gics.access(1, 0, GICR + 2 * 0x2_0000 + 8, 4, None, &mut kernel),
        Some(Ok(Outcome::Read(0)))
    );
    // A bad size is refused, not a panic.
    assert_eq!(
        gics.access(1, 0, GICD + 4, 3, None, &mut kernel),
        Some(Err(BadAccess::Size))
    );
}

#[test]
fn enabling_the_timer_ppi_tells_the_kernel_once_per_change_gicv3() {
    let mut gics = gics(true);
    let mut kernel = Recorder::default();
    // ARE | EnableGrp1, then vCPU 1's redistributor: group 1, priority 0xa0, enable.
    write(&mut gics, &mut kernel, 0, GICD, 4, 0x12);
    let sgi_base = GICR + 0x2_0000 + 0x1_0000;
    write(&mut gics, &mut kernel, 1, sgi_base + 0x80, 4, 1 << 27);
    write(&mut gics, &mut kernel, 1, sgi_base + 0x400 + 27, 1, 0xa0);
    assert!(kernel.timers.is_empty(), "not enabled yet: nothing to tell");
    write(&mut gics, &mut kernel, 1, sgi_base + 0x100, 4, 1 << 27);
    assert_eq!(kernel.timers, [(1, 1, Some((0xa0, true)))]);
    // Enabling again changes nothing; a new priority is told; disabling too.
    write(&mut gics, &mut kernel, 1, sgi_base + 0x100, 4, 1 << 27);
    write(&mut gics, &mut kernel, 1, sgi_base + 0x400 + 27, 1, 0xc0);
    write(&mut gics, &mut kernel, 1, sgi_base + 0x180, 4, 1 << 27);
    assert_eq!(
        kernel.timers,
        [
            (1, 1, Some((0xa0, true))),
            (1, 1, Some((0xc0, true))),
            (1, 1, None)
        ]
    );
    // The timer itself is never injected: the kernel forwards it.
    write(&mut gics, &mut kernel, 1, sgi_base + 0x100, 4, 1 << 27);
    write(&mut gics, &mut kernel, 1, sgi_base + 0x200, 4, 1 << 27);
    assert!(kernel.injected.is_empty());
}

#[test]
fn a_disabled_distributor_group_disables_the_timer_gicv2() {
    let mut gics = gics(false);
    let mut kernel = Recorder::default();
    write(&mut gics, &mut kernel, 0, GICD + 0x100, 4, 1 << 27);
    assert!(kernel.timers.is_empty(), "the distributor is off");
    write(&mut gics, &mut kernel, 0, GICD, 4, 1);
    assert_eq!(kernel.timers, [(1, 0, Some((0, false)))]);
    write(&mut gics, &mut kernel, 0, GICD, 4, 0);
    assert_eq!(kernel.timers.last(), Some(&(1, 0, None)));
}

#[test]
fn a_gicv2_sgi_is_injected_into_its_target_with_its_source() {
    let mut gics = gics(false);
    let mut kernel = Recorder::default();
    write(&mut gics, &mut kernel, 0, GICD, 4, 1);
    // SGI 3 enabled (SGIs may be always enabled) with priority 0x80 on vCPU 1.
    write(&mut gics, &mut kernel, 1, GICD + 0x100, 4, 1 << 3);
    write(&mut gics, &mut kernel, 1, GICD + 0x400 + 3, 1, 0x80);
    // vCPU 0 sends SGI 3 to vCPU 1 (target list 0b10).
    write(&mut gics, &mut kernel, 0, GICD + 0xf00, 4, (0b10 << 16) | 3);
    assert_eq!(kernel.injected, [(1, 1, 3, 0x80, Some(0))]);
    // Handed over: another SGI is injected again, not held back as "in a list register".
    write(&mut gics, &mut kernel, 0, GICD + 0xf00, 4, (0b10 << 16) | 3);
    assert_eq!(kernel.injected.len(), 2);
}

#[test]
fn a_device_line_is_injected_when_it_rises() {
    let mut gics = gics(true);
    let mut kernel = Recorder::default();
    write(&mut gics, &mut kernel, 0, GICD, 4, 0x12);
    // SPI 33 (INTID 33): group 1, enabled, routed to vCPU 0.
    write(&mut gics, &mut kernel, 0, GICD + 0x84, 4, 1 << 1);
    write(&mut gics, &mut kernel, 0, GICD + 0x104, 4, 1 << 1);
    gics.set_line(1, 33, true, &mut kernel);
    assert_eq!(kernel.injected, [(1, 0, 33, 0, None)]);
    gics.set_line(1, 33, false, &mut kernel);
    assert_eq!(kernel.injected.len(), 1);
    // After a reset the guest's GIC is off: a line does nothing.
    gics.reset(1);
    gics.set_line(1, 33, true, &mut kernel);
    assert_eq!(kernel.injected.len(), 1);
}

#[test]
fn a_gicv3_sgi_goes_to_the_vcpus_its_target_list_names() {
    let mut gics = gics(true);
    let mut kernel = Recorder::default();
    write(&mut gics, &mut kernel, 0, GICD, 4, 0x12);
    // vCPU 1's SGI 5: group 1, priority 0x80, enabled in its redistributor.
    let sgi_base = GICR + 0x2_0000 + 0x1_0000;
    write(&mut gics, &mut kernel, 1, sgi_base + 0x80, 4, 1 << 5);
    write(&mut gics, &mut kernel, 1, sgi_base + 0x400 + 5, 1, 0x80);
    write(&mut gics, &mut kernel, 1, sgi_base + 0x100, 4, 1 << 5);
    // From vCPU 0: INTID 5 (bits 27:24), target list 0b10 (vCPU Aff0 = 1).
    assert!(gics.send_sgi(1, 0, (5 << 24) | 0b10, &mut kernel));
    assert_eq!(kernel.injected, [(1, 1, 5, 0x80, None)]);
    // To vCPU 0, whose SGI 5 is not enabled: nothing.
    assert!(gics.send_sgi(1, 1, (5 << 24) | 0b01, &mut kernel));
    assert_eq!(kernel.injected.len(), 1);
    // The host has no emulated GIC, a GICv2 guest sends SGIs through GICD_SGIR.
    assert!(!gics.send_sgi(0, 0, (5 << 24) | 0b10, &mut kernel));
    assert!(!self::gics(false).send_sgi(1, 0, (5 << 24) | 0b10, &mut kernel));
}
