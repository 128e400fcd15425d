//! A property test: thousands of random accesses, line changes, SGIs and list-register steps on
//! both versions. Nothing panics, a refused access changes nothing, and after every step what
//! `deliverable` lists is exactly the enabled, pending, group-enabled interrupts targeted at
//! the vCPU and not yet in a list register or active, most urgent first, as the registers
//! themselves show it.

use super::*;
use crate::regs::{NR_PRIVATE, NR_SGIS};
use crate::{GICD_V2_FRAME_SIZE, GICD_V3_FRAME_SIZE, GICR_FRAME_SIZE, LrState, NR_IRQS};

/// xorshift64: small, deterministic, good enough to wander the state space.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Offsets where registers live, to hit them more often than uniform offsets would.
const INTERESTING: [u64; 20] = [
    0x000, 0x004, 0x008, 0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0x800, 0xC00,
    0xF00, 0xF10, 0xF20, 0x6100, 0x0014, 0x0008, 0xFFE8,
];

fn random_frame(rng: &mut Rng, gic: &Distributor) -> (Frame, u64) {
    let gicd_size = match gic.version() {
        Version::V2 => GICD_V2_FRAME_SIZE,
        Version::V3 => GICD_V3_FRAME_SIZE,
    };
    if rng.chance(60) {
        (Frame::Gicd, gicd_size)
    } else {
        let vcpu = rng.below(gic.nr_vcpus() as u64 + 1) as usize;
        (Frame::Redistributor(vcpu), GICR_FRAME_SIZE)
    }
}

fn random_offset(rng: &mut Rng, frame: Frame, frame_size: u64) -> u64 {
    let sgi_base = matches!(frame, Frame::Redistributor(_)) && rng.chance(60);
    let base = if sgi_base { GICR_SGI_BASE } else { 0 };
    match rng.below(10) {
        0 => rng.below(frame_size + 64),
        1 => rng.next(),
        2..=4 => base + rng.pick(&INTERESTING) + rng.below(0x40),
        _ => base + rng.pick(&INTERESTING) + rng.below(0x100) / 4 * 4,
    }
}

/// Values that set bits in useful places (all ones, few bits, bytes, random).
fn random_value(rng: &mut Rng) -> u64 {
    match rng.below(5) {
        0 => u64::MAX,
        1 => 1 << rng.below(64),
        2 => rng.below(4),
        3 => rng.next() & rng.next(),
        _ => rng.next(),
    }
}

fn random_intid(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => rng.below(NR_IRQS as u64 + 40) as u32,
        1 => rng.below(32) as u32,
        _ => 32 + rng.below(24) as u32,
    }
}

/// A write a guest's driver would make: one interrupt's bit, priority or target, or an SGI.
fn meaningful_write(rng: &mut Rng, gic: &mut Distributor, vcpu: usize) {
    let intid = random_intid(rng) % NR_IRQS as u32;
    let version = gic.version();
    let nr_vcpus = gic.nr_vcpus() as u64;
    let family = rng.pick(&[
        ISENABLER, ISENABLER, ISENABLER, ICENABLER, IGROUPR, ISPENDR, ICPENDR, ISACTIVER,
        ICACTIVER, ICACTIVER, IPRIORITYR, ICFGR, 0x800, 0xF00,
    ]);
    match family {
        IGROUPR => {
            let (frame, accessor, offset, bit) = locate(version, vcpu, intid, IGROUPR, 1);
            let groups = read(gic, frame, accessor, offset, 4) ^ 1 << bit;
            write(gic, frame, accessor, offset, 4, groups);
        }
        IPRIORITYR => set_priority(gic, vcpu, intid, rng.next() as u8),
        ICFGR => {
            let (frame, accessor, offset, field) = locate(version, vcpu, intid, ICFGR, 2);
            let config = read(gic, frame, accessor, offset, 4) ^ 0b10 << (2 * field);
            write(gic, frame, accessor, offset, 4, config);
        }
        0x800 if version == Version::V2 => {
            let targets = rng.below(1 << nr_vcpus);
            write(gic, Frame::Gicd, vcpu, 0x800 + u64::from(intid), 1, targets);
        }
        0x800 => {
            let aff0 = rng.below(nr_vcpus + 1);
            let aff1 = u64::from(rng.chance(10)) << 8;
            write(
                gic,
                Frame::Gicd,
                vcpu,
                0x6000 + 8 * u64::from(intid),
                8,
                aff1 | aff0,
            );
        }
        0xF00 if version == Version::V2 => {
            let sgir = rng.below(4) << 24 | rng.below(1 << nr_vcpus) << 16 | rng.below(16);
            write(gic, Frame::Gicd, vcpu, 0xF00, 4, sgir);
            let sources = rng.below(1 << nr_vcpus) << (8 * rng.below(4));
            let spend_or_cpend = rng.pick(&[0xF20, 0xF20, 0xF10]) + 4 * rng.below(4);
            write(gic, Frame::Gicd, vcpu, spend_or_cpend, 4, sources);
        }
        0xF00 => {
            let sgi = rng.below(16) << 24;
            gic.send_sgi_v3(
                vcpu,
                sgi | rng.below(1 << nr_vcpus) | u64::from(rng.chance(20)) << 40,
            );
        }
        _ => {
            set_irq_bit(gic, vcpu, intid, family);
        }
    }
}

/// One random step. `in_lr` tracks what the test's "kernel" put into list registers.
pub(super) fn step(rng: &mut Rng, gic: &mut Distributor, in_lr: &mut Vec<(usize, Pending)>) {
    let nr_vcpus = gic.nr_vcpus();
    let vcpu = rng.below(nr_vcpus as u64) as usize;
    match rng.below(100) {
        0..=29 => {
            let (frame, frame_size) = random_frame(rng, gic);
            let offset = random_offset(rng, frame, frame_size);
            let size = rng.pick(&[4, 4, 4, 1, 8, 2, 3, 0, 16]);
            let accessor = if rng.chance(3) { nr_vcpus } else { vcpu };
            let before = gic.clone();
            let outcome = if rng.chance(40) {
                gic.read(frame, accessor, offset, size)
                    .map(|_| Changes::NONE)
            } else {
                gic.write(frame, accessor, offset, size, random_value(rng))
            };
            if outcome.is_err() {
                assert_eq!(*gic, before, "a refused access changed state");
            }
        }
        30..=54 => meaningful_write(rng, gic, vcpu),
        55..=59 => {
            let enables = if rng.chance(70) { 0b11 } else { rng.below(4) };
            gic.write(Frame::Gicd, 0, CTLR, 4, enables).unwrap();
        }
        60..=69 => {
            let ppi_vcpu = rng.chance(90).then_some(vcpu);
            gic.set_level(random_intid(rng), ppi_vcpu, rng.chance(50));
        }
        70..=77 => {
            let ppi_vcpu = rng.chance(90).then_some(vcpu);
            gic.inject_edge(random_intid(rng), ppi_vcpu);
        }
        78..=81 => {
            let value = if rng.chance(50) {
                rng.next()
            } else {
                // Plausible ones: a target list, an INTID, sometimes IRM.
                rng.below(1 << 8) | rng.below(16) << 24 | u64::from(rng.chance(20)) << 40
            };
            gic.send_sgi_v3(rng.below(nr_vcpus as u64 + 1) as usize, value);
        }
        82..=91 => {
            // The kernel fills a few list registers.
            let mut out = [Pending::default(); 4];
            let count = gic.deliverable(vcpu, &mut out);
            for pending in &out[..count] {
                if rng.chance(70) {
                    gic.mark_in_list_register(vcpu, pending.intid, pending.source);
                    in_lr.push((vcpu, *pending));
                }
            }
        }
        92..=98 if !in_lr.is_empty() => {
            // The guest did something with one; the kernel folds it back.
            let index = rng.below(in_lr.len() as u64) as usize;
            let (vcpu, pending) = in_lr[index];
            let state = rng.pick(&[
                LrState::Invalid,
                LrState::Pending,
                LrState::Active,
                LrState::PendingActive,
            ]);
            gic.sync_from_list_register(vcpu, pending.intid, pending.source, state);
            if state == LrState::Invalid {
                in_lr.swap_remove(index);
            }
        }
        _ => {
            if rng.chance(10) {
                gic.reset();
                in_lr.clear();
            }
        }
    }
}

/// What must be listed for `vcpu`, computed from the raw state independently of `deliverable`.
fn expected(gic: &Distributor, vcpu: usize) -> Vec<(u32, Option<u8>)> {
    let mut listed = Vec::new();
    for intid in 0..NR_IRQS {
        let irq = if intid < NR_PRIVATE {
            gic.private[vcpu][intid]
        } else {
            if gic.spi_target(intid) != Some(vcpu) {
                continue;
            }
            gic.spis[intid - NR_PRIVATE]
        };
        if !irq.enabled || !gic.group_enabled(irq.group1) {
            continue;
        }
        let line = irq.level_sensitive && irq.line_high;
        for source in 0..8u8 {
            let slot = 1 << source;
            let pending = irq.latched & slot != 0 || (source == 0 && line);
            if pending && (irq.in_lr | irq.active) & slot == 0 {
                let v2_sgi = gic.version() == Version::V2 && intid < NR_SGIS;
                listed.push((intid as u32, v2_sgi.then_some(source)));
            }
        }
    }
    listed
}

/// Checks `deliverable` for every vCPU against the registers and the raw state.
pub(super) fn check(gic: &mut Distributor) {
    let ctlr = read(gic, Frame::Gicd, 0, CTLR, 4);
    for vcpu in 0..gic.nr_vcpus() {
        let listed = deliverable(gic, vcpu);
        for pair in listed.windows(2) {
            let key = |p: &Pending| (p.priority, p.intid, p.source);
            assert!(key(&pair[0]) < key(&pair[1]), "unsorted: {pair:?}");
        }
        for pending in &listed {
            let intid = pending.intid;
            assert!(irq_bit(gic, vcpu, intid, ISENABLER), "{pending:?} disabled");
            assert!(
                irq_bit(gic, vcpu, intid, ISPENDR),
                "{pending:?} not pending"
            );
            assert_eq!(irq_bit(gic, vcpu, intid, IGROUPR), pending.group1);
            assert_ne!(ctlr & (1 << u64::from(pending.group1)), 0, "group disabled");
            assert_eq!(irq_priority(gic, vcpu, intid), pending.priority);
            let v2_sgi = gic.version() == Version::V2 && intid < 16;
            if !v2_sgi {
                assert!(!irq_bit(gic, vcpu, intid, ISACTIVER), "{pending:?} active");
            }
            match (gic.version(), intid, pending.source) {
                (Version::V2, 0..16, Some(source)) => {
                    let sources = read(gic, Frame::Gicd, vcpu, 0xF20 + u64::from(intid), 1);
                    assert_ne!(sources & (1 << source), 0, "{pending:?}");
                }
                (_, 0..32, None) => {}
                (Version::V2, _, None) => {
                    let targets = read(gic, Frame::Gicd, vcpu, 0x800 + u64::from(intid), 1);
                    let lowest = if gic.nr_vcpus() == 1 {
                        0
                    } else {
                        targets.trailing_zeros()
                    };
                    assert_eq!(lowest as usize, vcpu, "{pending:?} targets {targets:#x}");
                }
                (Version::V3, _, None) => {
                    let route = read(gic, Frame::Gicd, vcpu, 0x6000 + 8 * u64::from(intid), 8);
                    assert_eq!(route, vcpu as u64, "{pending:?}");
                }
                _ => panic!("unexpected source: {pending:?}"),
            }
        }
        let got: Vec<_> = listed.iter().map(|p| (p.intid, p.source)).collect();
        let mut want = expected(gic, vcpu);
        want.sort_by_key(|&(intid, source)| {
            (gic.irq(vcpu, intid as usize).priority, intid, source)
        });
        assert_eq!(got, want, "vCPU {vcpu}");
    }
}

#[test]
fn random_operations_keep_the_invariants() {
    let mut steps = 0;
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let version = if seed % 2 == 0 {
            Version::V2
        } else {
            Version::V3
        };
        let nr_vcpus = 1 + rng.below(crate::MAX_VCPUS as u64) as usize;
        let mut gic = gic(version, nr_vcpus);
        let mut in_lr = Vec::new();
        for _ in 0..3000 {
            step(&mut rng, &mut gic, &mut in_lr);
            if rng.chance(20) {
                check(&mut gic);
            }
            steps += 1;
        }
        check(&mut gic);
    }
    assert_eq!(steps, 24 * 3000);
}
