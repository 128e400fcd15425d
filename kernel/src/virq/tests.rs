//! List-register encodings against the architecture's field layouts, and the fill algorithm
//! against a model of four list registers.

use super::*;

fn irq(intid: u32, priority: u8) -> VirtualIrq {
    VirtualIrq {
        intid,
        priority,
        group1: true,
        hardware: None,
        source: 0,
    }
}

struct Fake {
    format: Format,
    raw: [u64; 4],
}

impl Fake {
    fn new(format: Format) -> Self {
        Self {
            format,
            raw: [0; 4],
        }
    }
}

impl ListRegisters for Fake {
    fn count(&self) -> usize {
        self.raw.len()
    }
    fn read(&self, n: usize) -> ListEntry {
        ListEntry::decode(self.raw[n], self.format)
    }
    fn write(&mut self, n: usize, entry: ListEntry) {
        self.raw[n] = entry.encode(self.format);
    }
}

#[test]
fn gicv3_fields_sit_where_ich_lr_puts_them() {
    let timer = ListEntry {
        irq: VirtualIrq {
            intid: 27,
            priority: 0xa0,
            group1: true,
            hardware: Some(27),
            source: 0,
        },
        state: LrState::Pending,
    };
    // State 01 (bits 63:62), HW (61), Group (60), priority 0xa0 (55:48), pINTID 27 (44:32).
    assert_eq!(
        timer.encode(Format::V3),
        (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (27 << 32) | 27
    );
    assert_eq!(
        ListEntry::decode(timer.encode(Format::V3), Format::V3),
        timer
    );
}

#[test]
fn gicv2_fields_sit_where_gich_lr_puts_them() {
    let sgi = ListEntry {
        irq: VirtualIrq {
            intid: 3,
            priority: 0x80,
            group1: false,
            hardware: None,
            source: 5,
        },
        state: LrState::Active,
    };
    // State 10 (29:28), priority 0x80 >> 3 = 0x10 (27:23), CPUID 5 (12:10), VirtualID 3.
    assert_eq!(
        sgi.encode(Format::V2),
        (2 << 28) | (0x10 << 23) | (5 << 10) | 3
    );
    assert_eq!(ListEntry::decode(sgi.encode(Format::V2), Format::V2), sgi);
    let timer = ListEntry {
        irq: VirtualIrq {
            hardware: Some(27),
            source: 0,
            group1: true,
            ..sgi.irq
        },
        state: LrState::PendingActive,
    };
    assert_eq!(
        timer.encode(Format::V2),
        (1 << 31) | (1 << 30) | (3 << 28) | (0x10 << 23) | (27 << 10) | 3
    );
    assert_eq!(
        ListEntry::decode(timer.encode(Format::V2), Format::V2),
        timer
    );
}

#[test]
fn priorities_keep_five_bits() {
    let entry = ListEntry {
        irq: irq(40, 0xa7),
        state: LrState::Pending,
    };
    for format in [Format::V2, Format::V3] {
        assert_eq!(
            ListEntry::decode(entry.encode(format), format).irq.priority,
            0xa0
        );
    }
}

#[test]
fn packing_round_trips_and_refuses_what_it_cannot_hold() {
    let sgi = VirtualIrq {
        intid: 1,
        priority: 0x40,
        group1: false,
        hardware: None,
        source: 7,
    };
    assert_eq!(VirtualIrq::unpack(sgi.pack()), Some(sgi));
    assert_eq!(VirtualIrq::unpack(irq(1019, 0).pack()), Some(irq(1019, 0)));
    assert_eq!(VirtualIrq::unpack(1020), None, "special INTIDs");
    assert_eq!(VirtualIrq::unpack(1 << 40), None, "unknown bits");
    assert_eq!(VirtualIrq::unpack(8 << 32), None, "source past 7");
}

#[test]
fn fill_writes_by_priority_and_keeps_what_does_not_fit() {
    let mut waiting = Waiting::new();
    for (intid, priority) in [(40, 0x80), (41, 0x10), (42, 0x80), (43, 0xf0), (44, 0x00)] {
        waiting.add(irq(intid, priority)).unwrap();
    }
    let mut lrs = Fake::new(Format::V3);
    let filled = fill(&mut waiting, &mut lrs);
    assert_eq!(
        filled,
        Filled {
            written: 4,
            merged: 0,
            still_waiting: 1
        }
    );
    let intids: std::vec::Vec<u32> = (0..4).map(|n| lrs.read(n).irq.intid).collect();
    assert_eq!(intids, [44, 41, 40, 42]);
    assert_eq!(waiting.len(), 1);
    // The guest completes one: the one left waiting takes its register.
    lrs.raw[2] = 0;
    assert_eq!(fill(&mut waiting, &mut lrs).written, 1);
    assert_eq!(lrs.read(2).irq.intid, 43);
    assert!(waiting.is_empty());
}

#[test]
fn an_interrupt_in_a_register_is_merged_not_duplicated() {
    let mut lrs = Fake::new(Format::V3);
    let mut waiting = Waiting::new();
    waiting.add(irq(33, 0x80)).unwrap();
    fill(&mut waiting, &mut lrs);
    // Pending already: merged, one register used.
    waiting.add(irq(33, 0x80)).unwrap();
    assert_eq!(fill(&mut waiting, &mut lrs).merged, 1);
    assert_eq!(lrs.raw[1..], [0, 0, 0]);
    // The guest acknowledged it: a new edge makes it pending and active.
    lrs.write(
        0,
        ListEntry {
            irq: irq(33, 0x80),
            state: LrState::Active,
        },
    );
    waiting.add(irq(33, 0x80)).unwrap();
    fill(&mut waiting, &mut lrs);
    assert_eq!(lrs.read(0).state, LrState::PendingActive);
    assert_eq!(lrs.raw[1..], [0, 0, 0]);
}

#[test]
fn a_hardware_entry_is_never_made_pending_behind_itself() {
    let mut lrs = Fake::new(Format::V2);
    let timer = VirtualIrq {
        hardware: Some(27),
        ..irq(27, 0xa0)
    };
    lrs.write(
        0,
        ListEntry {
            irq: timer,
            state: LrState::Active,
        },
    );
    let mut waiting = Waiting::new();
    waiting.add(timer).unwrap();
    assert_eq!(fill(&mut waiting, &mut lrs).merged, 1);
    assert_eq!(lrs.read(0).state, LrState::Active);
}

#[test]
fn gicv2_sgis_from_different_sources_are_different_interrupts() {
    let mut waiting = Waiting::new();
    let from = |source| VirtualIrq {
        source,
        group1: false,
        ..irq(2, 0x80)
    };
    waiting.add(from(0)).unwrap();
    waiting.add(from(1)).unwrap();
    waiting.add(from(1)).unwrap();
    assert_eq!(waiting.len(), 2);
    let mut lrs = Fake::new(Format::V2);
    assert_eq!(fill(&mut waiting, &mut lrs).written, 2);
    assert_eq!(lrs.read(0).irq.source, 0);
    assert_eq!(lrs.read(1).irq.source, 1);
}

#[test]
fn the_waiting_set_refuses_past_its_depth() {
    let mut waiting = Waiting::new();
    for intid in 0..WAITING_DEPTH as u32 {
        waiting.add(irq(32 + intid, 0)).unwrap();
    }
    assert_eq!(waiting.add(irq(500, 0)), Err(Full));
    // An interrupt already waiting is still accepted (merged).
    assert_eq!(waiting.add(irq(32, 0x10)), Ok(()));
    waiting.clear();
    assert!(waiting.is_empty());
}
