//! GICv3: reset values, SGI/PPI words of GICD, IROUTER, GICR_TYPER, GICR_WAKER, ICC_SGI1R_EL1.

use super::*;

const TYPER2: u64 = 0x00C;
const IGRPMODR: u64 = 0xD00;
const IROUTER: u64 = 0x6000;
const GICD_PIDR2: u64 = 0xFFE8;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_PIDR2: u64 = 0xFFE8;

fn redist(vcpu: usize) -> Frame {
    Frame::Redistributor(vcpu)
}

/// ICC_SGI1R_EL1 from its fields.
fn sgi1r(target_list: u64, aff1: u64, intid: u64, aff2: u64, irm: bool, rs: u64, aff3: u64) -> u64 {
    target_list
        | aff1 << 16
        | intid << 24
        | aff2 << 32
        | u64::from(irm) << 40
        | rs << 44
        | aff3 << 48
}

/// Makes every SGI group 1 on every vCPU (as Linux does).
fn sgis_group1(gic: &mut Distributor) {
    for vcpu in 0..gic.nr_vcpus() {
        write(gic, redist(vcpu), 0, GICR_SGI_BASE + IGROUPR, 4, 0xFFFF);
    }
}

fn sgi_pending(gic: &mut Distributor, vcpu: usize) -> u64 {
    read(gic, redist(vcpu), 0, GICR_SGI_BASE + ISPENDR, 4) & 0xFFFF
}

#[test]
fn gicd_reset_values() {
    let mut gic = gic(Version::V3, 2);
    let mut reads = |offset: u64| read(&mut gic, Frame::Gicd, 1, offset, 4);
    assert_eq!(reads(CTLR), 1 << 4 | 1 << 6, "ARE and DS read as one");
    assert_eq!(reads(TYPER), 7 | 9 << 19 | 1 << 25);
    assert_eq!(reads(IIDR), 0);
    assert_eq!(reads(TYPER2), 0);
    assert_eq!(reads(GICD_PIDR2), 0x30);
    for word in 0..8 {
        for base in [
            IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER, IGRPMODR,
        ] {
            assert_eq!(reads(base + 4 * word), 0);
        }
    }
    for word in 0..64 {
        assert_eq!(reads(IPRIORITYR + 4 * word), 0);
        assert_eq!(reads(0x800 + 4 * word), 0, "ITARGETSR is reserved");
    }
    for word in 0..16 {
        assert_eq!(reads(ICFGR + 4 * word), 0);
    }
    for intid in 0..256 {
        assert_eq!(reads(IROUTER + 8 * intid), 0);
        assert_eq!(reads(IROUTER + 8 * intid + 4), 0);
    }
}

#[test]
fn gicr_reset_values() {
    let mut gic = gic(Version::V3, 3);
    for vcpu in 0..3 {
        let mut reads = |offset: u64| read(&mut gic, redist(vcpu), 0, offset, 4);
        assert_eq!(reads(0x0000), 0, "GICR_CTLR");
        assert_eq!(reads(0x0004), 0, "GICR_IIDR");
        assert_eq!(reads(GICR_WAKER), 0b110);
        assert_eq!(reads(GICR_PIDR2), 0x30);
        for base in [
            IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER, IGRPMODR,
        ] {
            assert_eq!(reads(GICR_SGI_BASE + base), 0);
        }
        for word in 0..8 {
            assert_eq!(reads(GICR_SGI_BASE + IPRIORITYR + 4 * word), 0);
        }
        assert_eq!(reads(GICR_SGI_BASE + ICFGR), 0xAAAA_AAAA);
        assert_eq!(reads(GICR_SGI_BASE + ICFGR + 4), 0);
    }
}

#[test]
fn gicd_sgi_and_ppi_words_read_as_zero_and_ignore_writes() {
    let mut gic = gic(Version::V3, 2);
    let before = gic.clone();
    for offset in [
        IGROUPR,
        ISENABLER,
        ISPENDR,
        ISACTIVER,
        ICENABLER,
        ICPENDR,
        ICACTIVER,
        ICFGR,
        ICFGR + 4,
    ] {
        assert_eq!(
            write(&mut gic, Frame::Gicd, 0, offset, 4, !0),
            Changes::NONE
        );
        assert_eq!(read(&mut gic, Frame::Gicd, 0, offset, 4), 0, "{offset:#x}");
    }
    for offset in (IPRIORITYR..IPRIORITYR + 32).step_by(4) {
        write(&mut gic, Frame::Gicd, 0, offset, 4, !0);
        assert_eq!(read(&mut gic, Frame::Gicd, 0, offset, 4), 0);
    }
    assert_eq!(gic, before);
    // The redistributors hold them.
    write(&mut gic, redist(1), 0, GICR_SGI_BASE + ISENABLER, 4, 0x8001);
    assert_eq!(
        read(&mut gic, redist(1), 0, GICR_SGI_BASE + ICENABLER, 4),
        0x8001
    );
    assert_eq!(
        read(&mut gic, redist(0), 0, GICR_SGI_BASE + ICENABLER, 4),
        0
    );
    assert_eq!(read(&mut gic, Frame::Gicd, 1, ISENABLER, 4), 0);
}

#[test]
fn irouter_routes_by_affinity() {
    let mut gic = gic(Version::V3, 4);
    enable(&mut gic, 0, 40, true);
    gic.inject_edge(40, None);
    assert_eq!(
        intids(&deliverable(&gic, 0)),
        [40],
        "IROUTER resets to 0.0.0.0"
    );
    let changes = write(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 8, 2);
    assert_eq!(changes, Changes::vcpu(0) | Changes::vcpu(2));
    assert_eq!(read(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 8), 2);
    assert!(deliverable(&gic, 0).is_empty());
    assert_eq!(intids(&deliverable(&gic, 2)), [40]);
    // 32-bit halves: the low one holds Aff2.Aff1.Aff0 (and IRM, RES0 here); the high one Aff3,
    // RES0 without A3V.
    write(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 4, 1 << 31 | 3);
    write(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40 + 4, 4, 0xFF);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 8), 3);
    assert_eq!(intids(&deliverable(&gic, 3)), [40]);
    // Aff1 names no vCPU: nobody gets it.
    let changes = write(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 4, 1 << 8 | 3);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40 + 4, 4), 0);
    assert_eq!(
        read(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 4),
        1 << 8 | 3
    );
    assert_eq!(changes, Changes::vcpu(3));
    assert!((0..4).all(|vcpu| deliverable(&gic, vcpu).is_empty()));
    // Aff0 past the last vCPU: nobody either.
    write(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 40, 8, 4);
    assert!((0..4).all(|vcpu| deliverable(&gic, vcpu).is_empty()));
    // IROUTER0-31 are reserved.
    write(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 20, 8, 1);
    assert_eq!(read(&mut gic, Frame::Gicd, 0, IROUTER + 8 * 20, 8), 0);
}

#[test]
fn redistributor_typer_gives_affinity_number_and_last() {
    let mut gic = gic(Version::V3, 3);
    for vcpu in 0..3u64 {
        let last = if vcpu == 2 { 1 << 4 } else { 0 };
        let expected = vcpu << 32 | vcpu << 8 | last;
        let frame = redist(vcpu as usize);
        assert_eq!(read(&mut gic, frame, 0, GICR_TYPER, 8), expected);
        assert_eq!(
            read(&mut gic, frame, 0, GICR_TYPER, 4),
            expected & 0xFFFF_FFFF
        );
        assert_eq!(read(&mut gic, frame, 0, GICR_TYPER + 4, 4), vcpu);
        write(&mut gic, frame, 0, GICR_TYPER, 8, 0);
        assert_eq!(read(&mut gic, frame, 0, GICR_TYPER, 8), expected);
    }
    let mut single = self::gic(Version::V3, 1);
    assert_eq!(read(&mut single, redist(0), 0, GICR_TYPER, 8), 1 << 4);
}

#[test]
fn waker_children_asleep_follows_processor_sleep() {
    let mut gic = gic(Version::V3, 2);
    assert_eq!(
        write(&mut gic, redist(1), 0, GICR_WAKER, 4, 0),
        Changes::NONE
    );
    assert_eq!(read(&mut gic, redist(1), 0, GICR_WAKER, 4), 0);
    assert_eq!(read(&mut gic, redist(0), 0, GICR_WAKER, 4), 0b110);
    write(&mut gic, redist(1), 0, GICR_WAKER, 4, 0b100);
    assert_eq!(
        read(&mut gic, redist(1), 0, GICR_WAKER, 4),
        0,
        "ChildrenAsleep is read-only"
    );
    write(&mut gic, redist(1), 0, GICR_WAKER, 4, 0b010);
    assert_eq!(read(&mut gic, redist(1), 0, GICR_WAKER, 4), 0b110);
}

#[test]
fn sgi1r_target_list_and_affinity() {
    let mut gic = gic(Version::V3, 4);
    sgis_group1(&mut gic);
    let changes = gic.send_sgi_v3(1, sgi1r(0b0101, 0, 7, 0, false, 0, 0));
    assert_eq!(changes, Changes::vcpu(0) | Changes::vcpu(2));
    let pending: Vec<_> = (0..4).map(|vcpu| sgi_pending(&mut gic, vcpu)).collect();
    assert_eq!(pending, [1 << 7, 0, 1 << 7, 0]);
    // Aff1, Aff2, Aff3 or RS other than zero name no vCPU of ours.
    for value in [
        sgi1r(0b1111, 1, 8, 0, false, 0, 0),
        sgi1r(0b1111, 0, 8, 1, false, 0, 0),
        sgi1r(0b1111, 0, 8, 0, false, 0, 1),
        sgi1r(0b1111, 0, 8, 0, false, 1, 0),
        // TargetList bits past the last vCPU.
        sgi1r(0xFFF0, 0, 8, 0, false, 0, 0),
    ] {
        let before = gic.clone();
        assert_eq!(gic.send_sgi_v3(0, value), Changes::NONE, "{value:#x}");
        assert_eq!(gic, before);
    }
}

#[test]
fn sgi1r_irm_means_everyone_but_the_sender() {
    let mut gic = gic(Version::V3, 4);
    sgis_group1(&mut gic);
    // IRM ignores the target list and the affinity fields.
    let changes = gic.send_sgi_v3(2, sgi1r(0b0100, 5, 1, 0, true, 0, 0));
    assert_eq!(
        changes,
        Changes::vcpu(0) | Changes::vcpu(1) | Changes::vcpu(3)
    );
    let pending: Vec<_> = (0..4).map(|vcpu| sgi_pending(&mut gic, vcpu)).collect();
    assert_eq!(pending, [0b10, 0b10, 0, 0b10]);
}

#[test]
fn sgi1r_skips_targets_with_the_sgi_in_group_0() {
    let mut gic = gic(Version::V3, 2);
    write(&mut gic, redist(1), 0, GICR_SGI_BASE + IGROUPR, 4, 0xFFFF);
    let changes = gic.send_sgi_v3(0, sgi1r(0b11, 0, 4, 0, false, 0, 0));
    assert_eq!(changes, Changes::vcpu(1));
    assert_eq!(sgi_pending(&mut gic, 0), 0);
    assert_eq!(sgi_pending(&mut gic, 1), 1 << 4);
    // From a vCPU the VM does not have: nothing.
    assert_eq!(
        gic.send_sgi_v3(2, sgi1r(0b11, 0, 5, 0, false, 0, 0)),
        Changes::NONE
    );
}

#[test]
fn sgis_have_no_source_on_v3() {
    let mut gic = gic(Version::V3, 2);
    sgis_group1(&mut gic);
    enable(&mut gic, 1, 4, true);
    gic.send_sgi_v3(0, sgi1r(0b10, 0, 4, 0, false, 0, 0));
    gic.send_sgi_v3(1, sgi1r(0b10, 0, 4, 0, false, 0, 0));
    let pending = deliverable(&gic, 1);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].source, None);
    assert!(pending[0].group1);
}
