//! GICv2: reset values, ITARGETSR, GICD_SGIR and the per-source SGI state.

use super::*;

const ITARGETSR: u64 = 0x800;
const SGIR: u64 = 0xF00;
const CPENDSGIR: u64 = 0xF10;
const SPENDSGIR: u64 = 0xF20;
const PIDR2: u64 = 0xFE8;

/// SGIR value: TargetListFilter, CPUTargetList, SGIINTID.
fn sgir(filter: u64, targets: u64, sgi: u64) -> u64 {
    filter << 24 | targets << 16 | sgi
}

#[test]
fn reset_values() {
    let nr_vcpus = 4;
    let mut gic = gic(Version::V2, nr_vcpus);
    let gicd = Frame::Gicd;
    for vcpu in 0..nr_vcpus {
        let mut reads = |offset: u64| read(&mut gic, gicd, vcpu, offset, 4);
        assert_eq!(reads(CTLR), 0);
        assert_eq!(reads(TYPER), 7 | 3 << 5);
        assert_eq!(reads(IIDR), 0);
        assert_eq!(reads(PIDR2), 0x20);
        assert_eq!(reads(SGIR), 0);
        for word in 0..8 {
            for base in [
                IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER,
            ] {
                assert_eq!(reads(base + 4 * word), 0, "{base:#x} word {word}");
            }
        }
        for word in 0..64 {
            assert_eq!(reads(IPRIORITYR + 4 * word), 0);
        }
        let own = 0x0101_0101 << vcpu;
        for word in 0..64 {
            let expected = if word < 8 { own } else { 0 };
            assert_eq!(reads(ITARGETSR + 4 * word), expected, "ITARGETSR{word}");
        }
        assert_eq!(reads(ICFGR), 0xAAAA_AAAA);
        for word in 1..16 {
            assert_eq!(reads(ICFGR + 4 * word), 0);
        }
        for word in 0..4 {
            assert_eq!(reads(CPENDSGIR + 4 * word), 0);
            assert_eq!(reads(SPENDSGIR + 4 * word), 0);
        }
    }
}

#[test]
fn itargetsr0_to_7_show_the_accessing_vcpu_and_ignore_writes() {
    let mut gic = gic(Version::V2, 4);
    for vcpu in 0..4 {
        assert_eq!(
            write(&mut gic, Frame::Gicd, vcpu, ITARGETSR + 4, 4, 0),
            Changes::NONE
        );
        assert_eq!(
            read(&mut gic, Frame::Gicd, vcpu, ITARGETSR + 5, 1),
            1 << vcpu
        );
        assert_eq!(
            read(&mut gic, Frame::Gicd, vcpu, ITARGETSR + 28, 4),
            0x0101_0101 << vcpu
        );
    }
}

#[test]
fn spi_targets_keep_existing_vcpus_and_deliver_to_the_lowest() {
    let mut gic = gic(Version::V2, 4);
    enable(&mut gic, 0, 45, false);
    gic.inject_edge(45, None);
    assert!(deliverable(&gic, 0).is_empty(), "no target yet");
    let changes = write(&mut gic, Frame::Gicd, 0, ITARGETSR + 45, 1, 0xFC);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, ITARGETSR + 44, 4), 0x0C00);
    assert_eq!(changes, Changes::vcpu(2));
    assert_eq!(intids(&deliverable(&gic, 2)), [45]);
    assert!(deliverable(&gic, 3).is_empty());
    // Moving it tells both the old and the new vCPU.
    let changes = write(&mut gic, Frame::Gicd, 0, ITARGETSR + 44, 4, 0x0800);
    assert_eq!(changes, Changes::vcpu(2) | Changes::vcpu(3));
    assert_eq!(intids(&deliverable(&gic, 3)), [45]);
}

#[test]
fn a_uniprocessor_has_no_targets_and_delivers_to_its_vcpu() {
    let mut gic = gic(Version::V2, 1);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, ITARGETSR, 4), 0);
    write(&mut gic, Frame::Gicd, 0, ITARGETSR + 40, 1, 1);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, ITARGETSR + 40, 4), 0);
    enable(&mut gic, 0, 40, false);
    gic.inject_edge(40, None);
    assert_eq!(intids(&deliverable(&gic, 0)), [40]);
}

#[test]
fn sgir_target_filters_record_the_sender() {
    let mut gic = gic(Version::V2, 4);
    // Filter 0: the list (bit 7 names no vCPU).
    let changes = write(&mut gic, Frame::Gicd, 0, SGIR, 4, sgir(0, 0b1000_0110, 3));
    assert_eq!(changes, Changes::vcpu(1) | Changes::vcpu(2));
    for vcpu in 0..4 {
        let expected = if vcpu == 1 || vcpu == 2 { 0b0001 } else { 0 };
        assert_eq!(
            read(&mut gic, Frame::Gicd, vcpu, SPENDSGIR + 3, 1),
            expected
        );
    }
    // Filter 1: everyone but the sender.
    write(&mut gic, Frame::Gicd, 2, SGIR, 4, sgir(1, 0, 5));
    for vcpu in 0..4 {
        let expected = if vcpu == 2 { 0 } else { 0b0100 };
        assert_eq!(
            read(&mut gic, Frame::Gicd, vcpu, SPENDSGIR + 5, 1),
            expected
        );
    }
    // Filter 2: the sender only, whatever the list says.
    write(&mut gic, Frame::Gicd, 3, SGIR, 4, sgir(2, 0b1111, 9));
    for vcpu in 0..4 {
        let expected = if vcpu == 3 { 0b1000 } else { 0 };
        assert_eq!(
            read(&mut gic, Frame::Gicd, vcpu, SPENDSGIR + 9, 1),
            expected
        );
    }
    // Filter 3 is reserved: nothing.
    let before = gic.clone();
    assert_eq!(
        write(&mut gic, Frame::Gicd, 0, SGIR, 4, sgir(3, 0b1111, 1)),
        Changes::NONE
    );
    assert_eq!(gic, before);
    // A second sender of SGI 3 to vCPU 1: pending twice, listed per source.
    write(&mut gic, Frame::Gicd, 3, SGIR, 4, sgir(0, 0b0010, 3));
    assert_eq!(read(&mut gic, Frame::Gicd, 1, SPENDSGIR, 4), 0b1001 << 24);
    enable(&mut gic, 1, 3, false);
    let pending = deliverable(&gic, 1);
    let sgi3: Vec<_> = pending
        .iter()
        .filter(|p| p.intid == 3)
        .map(|p| p.source)
        .collect();
    assert_eq!(sgi3, [Some(0), Some(3)]);
    assert!(irq_bit(&mut gic, 1, 3, ISPENDR));
}

#[test]
fn spendsgir_and_cpendsgir_set_and_clear_sources() {
    let mut gic = gic(Version::V2, 2);
    // vCPU 1 sets SGI 6 pending from vCPUs 0 and 1 (bits of absent vCPUs are ignored).
    let changes = write(&mut gic, Frame::Gicd, 1, SPENDSGIR + 4, 4, 0xFF << 16);
    assert_eq!(changes, Changes::vcpu(1));
    assert_eq!(read(&mut gic, Frame::Gicd, 1, SPENDSGIR + 6, 1), 0b11);
    assert_eq!(read(&mut gic, Frame::Gicd, 1, CPENDSGIR + 6, 1), 0b11);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, SPENDSGIR + 6, 1), 0);
    write(&mut gic, Frame::Gicd, 1, CPENDSGIR + 6, 1, 0b01);
    assert_eq!(read(&mut gic, Frame::Gicd, 1, SPENDSGIR + 4, 4), 0b10 << 16);
    assert!(irq_bit(&mut gic, 1, 6, ISPENDR));
    write(&mut gic, Frame::Gicd, 1, CPENDSGIR + 6, 1, 0b10);
    assert!(!irq_bit(&mut gic, 1, 6, ISPENDR));
}

#[test]
fn ispendr_and_icpendr_cannot_touch_sgis() {
    let mut gic = gic(Version::V2, 2);
    assert_eq!(
        write(&mut gic, Frame::Gicd, 0, ISPENDR, 4, 0xFFFF),
        Changes::NONE
    );
    assert_eq!(read(&mut gic, Frame::Gicd, 0, ISPENDR, 4), 0);
    write(&mut gic, Frame::Gicd, 1, SGIR, 4, sgir(0, 0b01, 2));
    assert_eq!(
        write(&mut gic, Frame::Gicd, 0, ICPENDR, 4, 0xFFFF),
        Changes::NONE
    );
    assert_eq!(read(&mut gic, Frame::Gicd, 0, ISPENDR, 4), 0b100);
    // PPIs in the same word do take writes.
    write(&mut gic, Frame::Gicd, 0, ISPENDR, 4, 1 << 27);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, ISPENDR, 4), 1 << 27 | 0b100);
}

#[test]
fn ctlr_has_two_group_enables() {
    let mut gic = gic(Version::V2, 1);
    write(&mut gic, Frame::Gicd, 0, CTLR, 4, !0);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, CTLR, 4), 0b11);
}

#[test]
fn send_sgi_v3_is_ignored_on_v2() {
    let mut gic = gic(Version::V2, 2);
    let before = gic.clone();
    assert_eq!(gic.send_sgi_v3(0, 1 << 40 | 1 << 24), Changes::NONE);
    assert_eq!(gic.inject_edge(1, Some(0)), Changes::NONE);
    assert_eq!(gic, before);
}
