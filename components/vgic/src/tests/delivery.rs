//! What a vCPU is shown: ordering, gating by enables, and the list-register cycle.

use super::*;
use crate::LrState;

#[test]
fn deliverable_is_ordered_by_priority_then_intid() {
    for version in [Version::V2, Version::V3] {
        let mut gic = gic(version, 2);
        for (intid, priority) in [(50, 0x80), (40, 0x80), (20, 0x40), (60, 0xA0), (35, 0x07)] {
            enable(&mut gic, 0, intid, true);
            set_priority(&mut gic, 0, intid, priority);
            if version == Version::V2 && intid >= 32 {
                write(&mut gic, Frame::Gicd, 0, 0x800 + u64::from(intid), 1, 1);
            }
            gic.inject_edge(intid, Some(0));
        }
        let pending = deliverable(&gic, 0);
        // 35's priority 0x07 keeps no bits: 0.
        assert_eq!(intids(&pending), [35, 20, 40, 50, 60], "{version:?}");
        assert_eq!(pending[0].priority, 0);
        assert_eq!(pending[2].priority, 0x80);
        assert!(pending.iter().all(|p| p.group1 && p.source.is_none()));
        // A short buffer keeps the most urgent.
        let mut out = [Pending::default(); 2];
        assert_eq!(gic.deliverable(0, &mut out), 2);
        assert_eq!(intids(&out), [35, 20]);
        assert_eq!(gic.deliverable(0, &mut []), 0);
        assert!(deliverable(&gic, 1).is_empty(), "PPI 20 is vCPU 0's");
    }
}

#[test]
fn disabled_or_group_disabled_interrupts_stay_pending_but_are_not_deliverable() {
    for version in [Version::V2, Version::V3] {
        let mut gic = gic(version, 1);
        gic.inject_edge(40, None);
        assert!(irq_bit(&mut gic, 0, 40, ISPENDR));
        write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0b11);
        assert!(deliverable(&gic, 0).is_empty(), "not enabled");
        set_irq_bit(&mut gic, 0, 40, ISENABLER);
        assert_eq!(intids(&deliverable(&gic, 0)), [40], "group 0, enabled");

        assert_eq!(
            write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0b10),
            Changes::vcpu(0)
        );
        assert!(deliverable(&gic, 0).is_empty(), "group 0 disabled");
        assert!(irq_bit(&mut gic, 0, 40, ISPENDR), "still pending");
        write(&mut gic, Frame::Gicd, 0, IGROUPR + 4, 4, 1 << 8);
        assert_eq!(intids(&deliverable(&gic, 0)), [40], "group 1 is enabled");
        write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0b01);
        assert!(deliverable(&gic, 0).is_empty(), "group 1 disabled");

        write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0b11);
        set_irq_bit(&mut gic, 0, 40, ICENABLER);
        assert!(deliverable(&gic, 0).is_empty(), "disabled again");
        assert!(irq_bit(&mut gic, 0, 40, ISPENDR));
    }
}

#[test]
fn an_edge_moves_into_the_list_register_then_active_then_inactive() {
    for version in [Version::V2, Version::V3] {
        let mut gic = gic(version, 1);
        enable(&mut gic, 0, 40, false);
        assert_eq!(gic.inject_edge(40, None), Changes::vcpu(0));
        assert_eq!(intids(&deliverable(&gic, 0)), [40]);

        gic.mark_in_list_register(0, 40, None);
        assert!(deliverable(&gic, 0).is_empty(), "in a list register");
        assert!(
            irq_bit(&mut gic, 0, 40, ISPENDR),
            "pending, in the list register"
        );
        assert_eq!(gic.list_register_state(0, 40, None), LrState::Pending);

        // The guest acknowledges it.
        gic.sync_from_list_register(0, 40, None, LrState::Active);
        assert!(irq_bit(&mut gic, 0, 40, ISACTIVER));
        assert!(!irq_bit(&mut gic, 0, 40, ISPENDR));
        assert!(deliverable(&gic, 0).is_empty());

        // A second edge while the first is handled: pending again, but not shown yet.
        gic.inject_edge(40, None);
        assert!(irq_bit(&mut gic, 0, 40, ISPENDR));
        assert!(
            deliverable(&gic, 0).is_empty(),
            "active and in a list register"
        );
        assert_eq!(gic.list_register_state(0, 40, None), LrState::Active);

        // The guest ends it: the second edge is deliverable.
        gic.sync_from_list_register(0, 40, None, LrState::Invalid);
        assert!(!irq_bit(&mut gic, 0, 40, ISACTIVER));
        assert_eq!(intids(&deliverable(&gic, 0)), [40]);
        gic.mark_in_list_register(0, 40, None);
        gic.sync_from_list_register(0, 40, None, LrState::Invalid);
        assert!(deliverable(&gic, 0).is_empty());
        assert!(!irq_bit(&mut gic, 0, 40, ISPENDR));
        assert_eq!(gic.list_register_state(0, 40, None), LrState::Invalid);
    }
}

#[test]
fn an_interrupt_the_guest_made_active_waits_until_it_is_inactive() {
    for version in [Version::V2, Version::V3] {
        let mut gic = gic(version, 1);
        enable(&mut gic, 0, 19, true);
        gic.inject_edge(19, Some(0));
        assert_eq!(set_irq_bit(&mut gic, 0, 19, ISACTIVER), Changes::vcpu(0));
        assert!(deliverable(&gic, 0).is_empty(), "{version:?}");
        assert_eq!(set_irq_bit(&mut gic, 0, 19, ICACTIVER), Changes::vcpu(0));
        assert_eq!(intids(&deliverable(&gic, 0)), [19]);
    }
}

#[test]
fn a_level_interrupt_stays_pending_while_its_line_is_high() {
    for version in [Version::V2, Version::V3] {
        let mut gic = gic(version, 1);
        enable(&mut gic, 0, 33, true);
        assert_eq!(gic.set_level(33, None, true), Changes::vcpu(0));
        assert_eq!(gic.set_level(33, None, true), Changes::NONE);
        gic.mark_in_list_register(0, 33, None);
        assert!(deliverable(&gic, 0).is_empty());
        assert!(irq_bit(&mut gic, 0, 33, ISPENDR));

        gic.sync_from_list_register(0, 33, None, LrState::Active);
        assert!(irq_bit(&mut gic, 0, 33, ISACTIVER));
        assert!(irq_bit(&mut gic, 0, 33, ISPENDR), "the line is still high");
        assert_eq!(gic.list_register_state(0, 33, None), LrState::Active);

        // Ended with the line still high: pending again.
        gic.sync_from_list_register(0, 33, None, LrState::Invalid);
        assert_eq!(intids(&deliverable(&gic, 0)), [33]);

        // Ended after the device dropped the line: gone.
        gic.mark_in_list_register(0, 33, None);
        gic.sync_from_list_register(0, 33, None, LrState::Active);
        gic.set_level(33, None, false);
        gic.sync_from_list_register(0, 33, None, LrState::Invalid);
        assert!(deliverable(&gic, 0).is_empty());
        assert!(!irq_bit(&mut gic, 0, 33, ISPENDR));
    }
}

#[test]
fn a_level_interrupt_whose_line_drops_before_acknowledge_leaves_its_list_register() {
    let mut gic = gic(Version::V3, 1);
    enable(&mut gic, 0, 33, true);
    gic.set_level(33, None, true);
    gic.mark_in_list_register(0, 33, None);
    assert_eq!(gic.list_register_state(0, 33, None), LrState::Pending);
    assert_eq!(gic.set_level(33, None, false), Changes::vcpu(0));
    assert_eq!(gic.list_register_state(0, 33, None), LrState::Invalid);
    gic.sync_from_list_register(0, 33, None, LrState::Invalid);
    assert!(deliverable(&gic, 0).is_empty());
}

#[test]
fn a_set_pending_write_on_a_level_interrupt_is_consumed_by_acknowledge() {
    let mut gic = gic(Version::V2, 1);
    enable(&mut gic, 0, 34, false);
    set_irq_bit(&mut gic, 0, 34, ISPENDR);
    gic.mark_in_list_register(0, 34, None);
    gic.sync_from_list_register(0, 34, None, LrState::Active);
    assert!(!irq_bit(&mut gic, 0, 34, ISPENDR));
    gic.sync_from_list_register(0, 34, None, LrState::Invalid);
    assert!(deliverable(&gic, 0).is_empty());
}

#[test]
fn an_edge_configured_line_latches_on_the_rising_edge_only() {
    let mut gic = gic(Version::V3, 1);
    enable(&mut gic, 0, 40, true);
    write(&mut gic, Frame::Gicd, 0, ICFGR + 8, 4, 0b10 << 16);
    gic.set_level(40, None, true);
    gic.mark_in_list_register(0, 40, None);
    gic.sync_from_list_register(0, 40, None, LrState::Invalid);
    assert!(deliverable(&gic, 0).is_empty(), "still high, no new edge");
    gic.set_level(40, None, false);
    gic.set_level(40, None, true);
    assert_eq!(intids(&deliverable(&gic, 0)), [40]);
}

#[test]
fn a_guest_clearing_pending_in_a_list_register_empties_it() {
    let mut gic = gic(Version::V3, 2);
    enable(&mut gic, 1, 18, true);
    gic.inject_edge(18, Some(1));
    gic.mark_in_list_register(1, 18, None);
    assert_eq!(set_irq_bit(&mut gic, 1, 18, ICPENDR), Changes::vcpu(1));
    assert_eq!(gic.list_register_state(1, 18, None), LrState::Invalid);
}

#[test]
fn v2_sgis_go_through_list_registers_per_source() {
    let mut gic = gic(Version::V2, 3);
    enable(&mut gic, 2, 1, false);
    write(&mut gic, Frame::Gicd, 0, 0xF00, 4, 0b100 << 16 | 1);
    write(&mut gic, Frame::Gicd, 1, 0xF00, 4, 0b100 << 16 | 1);
    let sources =
        |gic: &Distributor| -> Vec<_> { deliverable(gic, 2).iter().map(|p| p.source).collect() };
    assert_eq!(sources(&gic), [Some(0), Some(1)]);
    gic.mark_in_list_register(2, 1, Some(0));
    assert_eq!(sources(&gic), [Some(1)]);
    gic.sync_from_list_register(2, 1, Some(0), LrState::Active);
    assert_eq!(
        read(&mut gic, Frame::Gicd, 2, 0xF20, 4),
        0b10 << 8,
        "source 0 taken"
    );
    gic.sync_from_list_register(2, 1, Some(0), LrState::Invalid);
    assert_eq!(sources(&gic), [Some(1)]);
    // A v2 SGI needs its source; a source the VM does not have names nothing.
    let before = gic.clone();
    gic.mark_in_list_register(2, 1, None);
    gic.mark_in_list_register(2, 1, Some(7));
    assert_eq!(gic, before);
}

#[test]
fn out_of_range_interrupt_calls_are_ignored() {
    let mut gic = gic(Version::V3, 2);
    let before = gic.clone();
    assert_eq!(gic.set_level(256, None, true), Changes::NONE);
    assert_eq!(gic.set_level(u32::MAX, None, true), Changes::NONE);
    assert_eq!(
        gic.set_level(20, None, true),
        Changes::NONE,
        "a PPI needs its vCPU"
    );
    assert_eq!(gic.set_level(20, Some(2), true), Changes::NONE);
    assert_eq!(
        gic.set_level(3, Some(0), true),
        Changes::NONE,
        "SGIs have no line"
    );
    assert_eq!(gic.inject_edge(300, None), Changes::NONE);
    gic.mark_in_list_register(2, 40, None);
    gic.mark_in_list_register(0, 256, None);
    gic.sync_from_list_register(5, 40, None, LrState::Active);
    assert_eq!(gic, before);
    assert_eq!(gic.deliverable(9, &mut [Pending::default(); 4]), 0);
    assert_eq!(gic.list_register_state(0, 999, None), LrState::Invalid);
}

#[test]
fn a_forwarded_ppi_is_delivered_only_while_enabled_and_its_group_is() {
    for version in [Version::V2, Version::V3] {
        let mut gic = gic(version, 2);
        assert_eq!(gic.private_delivery(1, 27), None, "{version:?}: reset");
        enable(&mut gic, 1, 27, true);
        set_priority(&mut gic, 1, 27, 0xa0);
        // Every group off in GICD_CTLR.
        write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0);
        assert_eq!(gic.private_delivery(1, 27), None, "{version:?}: group off");
        write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0b11);
        let delivery = gic.private_delivery(1, 27).expect("enabled");
        assert_eq!(delivery.0, 0xa0, "{version:?}");
        assert_eq!(gic.private_delivery(0, 27), None, "{version:?}: banked");
        set_irq_bit(&mut gic, 1, 27, ICENABLER);
        assert_eq!(gic.private_delivery(1, 27), None, "{version:?}: disabled");
        // Not a PPI, or not a vCPU.
        enable(&mut gic, 1, 3, true);
        assert_eq!(gic.private_delivery(1, 3), None);
        assert_eq!(gic.private_delivery(2, 27), None);
        assert_eq!(gic.private_delivery(1, 40), None);
    }
}
