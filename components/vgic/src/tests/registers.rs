//! Rules both versions share: set/clear registers, priorities, configuration, access checks.

use super::*;
use crate::{BadAccess, GICD_V2_FRAME_SIZE, GICD_V3_FRAME_SIZE, GICR_FRAME_SIZE};

const VERSIONS: [Version; 2] = [Version::V2, Version::V3];

#[test]
fn set_and_clear_registers_act_on_one_bits_only() {
    for version in VERSIONS {
        for (set, clear) in [
            (ISENABLER, ICENABLER),
            (ISPENDR, ICPENDR),
            (ISACTIVER, ICACTIVER),
        ] {
            let mut gic = gic(version, 2);
            // SPIs 64..95 (GICD word 2) on both versions.
            write(&mut gic, Frame::Gicd, 0, set + 8, 4, 0b1010);
            write(&mut gic, Frame::Gicd, 0, set + 8, 4, 0b0100);
            assert_eq!(
                read(&mut gic, Frame::Gicd, 0, set + 8, 4),
                0b1110,
                "{version:?} {set:#x}"
            );
            assert_eq!(read(&mut gic, Frame::Gicd, 1, clear + 8, 4), 0b1110);
            write(&mut gic, Frame::Gicd, 1, clear + 8, 4, 0b0010);
            assert_eq!(read(&mut gic, Frame::Gicd, 0, set + 8, 4), 0b1100);
            write(&mut gic, Frame::Gicd, 0, clear + 8, 4, 0);
            assert_eq!(read(&mut gic, Frame::Gicd, 0, clear + 8, 4), 0b1100);

            // PPIs 16..31 of vCPU 1 (GICv2: banked GICD word 0; GICv3: its SGI_base).
            let (frame, accessor, offset, _) = locate(version, 1, 16, set, 1);
            write(&mut gic, frame, accessor, offset, 4, 0x0003_0000);
            let (cframe, caccessor, coffset, _) = locate(version, 1, 16, clear, 1);
            write(&mut gic, cframe, caccessor, coffset, 4, 0x0001_0000);
            assert_eq!(read(&mut gic, frame, accessor, offset, 4), 0x0002_0000);
            // vCPU 0's PPIs are untouched.
            let (frame0, accessor0, offset0, _) = locate(version, 0, 16, set, 1);
            assert_eq!(read(&mut gic, frame0, accessor0, offset0, 4), 0);
        }
    }
}

#[test]
fn igroupr_takes_the_whole_word() {
    for version in VERSIONS {
        let mut gic = gic(version, 1);
        write(&mut gic, Frame::Gicd, 0, IGROUPR + 4, 4, 0xF0F0_0001);
        write(&mut gic, Frame::Gicd, 0, IGROUPR + 4, 4, 0x0F0F_0000);
        assert_eq!(read(&mut gic, Frame::Gicd, 0, IGROUPR + 4, 4), 0x0F0F_0000);
        let (frame, accessor, offset, _) = locate(version, 0, 0, IGROUPR, 1);
        write(&mut gic, frame, accessor, offset, 4, u64::from(u32::MAX));
        assert_eq!(
            read(&mut gic, frame, accessor, offset, 4),
            u64::from(u32::MAX)
        );
    }
}

#[test]
fn priorities_keep_five_bits_and_take_bytes() {
    for version in VERSIONS {
        let mut gic = gic(version, 2);
        // SPIs 32..35.
        write(&mut gic, Frame::Gicd, 0, IPRIORITYR + 32, 4, 0xFFFF_FFFF);
        assert_eq!(
            read(&mut gic, Frame::Gicd, 0, IPRIORITYR + 32, 4),
            0xF8F8_F8F8
        );
        write(&mut gic, Frame::Gicd, 0, IPRIORITYR + 33, 1, 0x47);
        assert_eq!(
            read(&mut gic, Frame::Gicd, 0, IPRIORITYR + 32, 4),
            0xF8F8_40F8
        );
        assert_eq!(read(&mut gic, Frame::Gicd, 0, IPRIORITYR + 33, 1), 0x40);
        assert_eq!(read(&mut gic, Frame::Gicd, 0, IPRIORITYR + 34, 1), 0xF8);
        // A halfword is not an access IPRIORITYR takes.
        assert_eq!(
            gic.read(Frame::Gicd, 0, IPRIORITYR + 32, 2),
            Err(BadAccess::Size)
        );
        // Private priorities are per vCPU.
        set_priority(&mut gic, 1, 20, 0x17);
        assert_eq!(irq_priority(&mut gic, 1, 20), 0x10);
        assert_eq!(irq_priority(&mut gic, 0, 20), 0);
    }
}

#[test]
fn spi_configuration_is_bit_2n_plus_1_and_sgis_stay_edge() {
    for version in VERSIONS {
        let mut gic = gic(version, 1);
        // ICFGR2 = SPIs 32..47: make 33 and 47 edge-triggered; bit 2n is reserved.
        write(
            &mut gic,
            Frame::Gicd,
            0,
            ICFGR + 8,
            4,
            0b10 << 2 | 0b11 << 30 | 0b01,
        );
        assert_eq!(
            read(&mut gic, Frame::Gicd, 0, ICFGR + 8, 4),
            0b10 << 2 | 0b10 << 30
        );
        let (frame, accessor, offset, _) = locate(version, 0, 0, ICFGR, 2);
        write(&mut gic, frame, accessor, offset, 4, 0);
        assert_eq!(read(&mut gic, frame, accessor, offset, 4), 0xAAAA_AAAA);
    }
}

#[test]
fn ppi_configuration_is_fixed_on_v2_and_programmable_on_v3() {
    let mut v2 = gic(Version::V2, 1);
    write(&mut v2, Frame::Gicd, 0, ICFGR + 4, 4, 0xAAAA_AAAA);
    assert_eq!(read(&mut v2, Frame::Gicd, 0, ICFGR + 4, 4), 0);
    let mut v3 = gic(Version::V3, 1);
    let icfgr1 = GICR_SGI_BASE + ICFGR + 4;
    write(&mut v3, Frame::Redistributor(0), 0, icfgr1, 4, 0x8000_0002);
    assert_eq!(
        read(&mut v3, Frame::Redistributor(0), 0, icfgr1, 4),
        0x8000_0002
    );
}

#[test]
fn writes_that_change_nothing_report_no_vcpu() {
    for version in VERSIONS {
        let mut gic = gic(version, 2);
        assert_eq!(
            write(&mut gic, Frame::Gicd, 0, ICENABLER + 4, 4, !0),
            Changes::NONE
        );
        assert_eq!(write(&mut gic, Frame::Gicd, 0, CTLR, 4, 0), Changes::NONE);
        assert_eq!(
            write(&mut gic, Frame::Gicd, 0, IPRIORITYR + 40, 1, 0x07),
            Changes::NONE
        );
        assert_eq!(
            write(&mut gic, Frame::Gicd, 0, CTLR, 4, 1),
            Changes::first(2)
        );
    }
}

#[test]
fn a_change_to_an_spi_reports_the_vcpu_it_goes_to() {
    let mut v2 = gic(Version::V2, 3);
    write(&mut v2, Frame::Gicd, 0, 0x800 + 40, 1, 0b100);
    assert_eq!(set_irq_bit(&mut v2, 0, 40, ISENABLER), Changes::vcpu(2));
    let mut v3 = gic(Version::V3, 3);
    write(&mut v3, Frame::Gicd, 0, 0x6000 + 8 * 40, 8, 1);
    assert_eq!(set_irq_bit(&mut v3, 0, 40, ISPENDR), Changes::vcpu(1));
}

/// (frame, accessing vCPU, offset, size, refusal) for a distributor with 2 vCPUs.
fn bad_accesses(version: Version) -> Vec<(Frame, usize, u64, u8, BadAccess)> {
    let gicd_size = match version {
        Version::V2 => GICD_V2_FRAME_SIZE,
        Version::V3 => GICD_V3_FRAME_SIZE,
    };
    let mut cases = std::vec![
        (Frame::Gicd, 0, CTLR, 3, BadAccess::Size),
        (Frame::Gicd, 0, CTLR, 0, BadAccess::Size),
        (Frame::Gicd, 0, CTLR, 16, BadAccess::Size),
        (Frame::Gicd, 0, CTLR, 2, BadAccess::Size),
        (Frame::Gicd, 0, CTLR, 1, BadAccess::Size),
        (Frame::Gicd, 0, ISENABLER + 4, 1, BadAccess::Size),
        (Frame::Gicd, 0, ISENABLER + 8, 8, BadAccess::Size),
        (Frame::Gicd, 0, ICFGR + 8, 1, BadAccess::Size),
        (Frame::Gicd, 0, IPRIORITYR + 32, 8, BadAccess::Size),
        (Frame::Gicd, 0, ISENABLER + 6, 4, BadAccess::Alignment),
        (Frame::Gicd, 0, IPRIORITYR + 33, 4, BadAccess::Alignment),
        (Frame::Gicd, 0, IPRIORITYR + 33, 2, BadAccess::Alignment),
        (Frame::Gicd, 0, gicd_size, 4, BadAccess::OutOfRange),
        (Frame::Gicd, 0, gicd_size - 2, 4, BadAccess::OutOfRange),
        (Frame::Gicd, 0, u64::MAX - 1, 4, BadAccess::OutOfRange),
        (Frame::Gicd, 2, CTLR, 4, BadAccess::NoSuchVcpu),
        (Frame::Redistributor(2), 0, 0, 4, BadAccess::NoSuchFrame),
    ];
    match version {
        Version::V2 => cases.extend([
            (Frame::Redistributor(0), 0, 0, 4, BadAccess::NoSuchFrame),
            (Frame::Gicd, 0, 0xF00, 1, BadAccess::Size),
            (Frame::Gicd, 0, 0x6100, 4, BadAccess::OutOfRange),
        ]),
        Version::V3 => cases.extend([
            (Frame::Gicd, 0, 0x6100, 2, BadAccess::Size),
            (Frame::Gicd, 0, 0x6100, 1, BadAccess::Size),
            (Frame::Gicd, 0, 0x6104, 8, BadAccess::Alignment),
            (Frame::Redistributor(1), 0, 0x8, 1, BadAccess::Size),
            (Frame::Redistributor(1), 0, 0xC, 8, BadAccess::Alignment),
            (Frame::Redistributor(1), 0, 0x10, 8, BadAccess::Size),
            (
                Frame::Redistributor(1),
                0,
                GICR_SGI_BASE + ISENABLER,
                2,
                BadAccess::Size,
            ),
            (
                Frame::Redistributor(1),
                0,
                GICR_FRAME_SIZE,
                4,
                BadAccess::OutOfRange,
            ),
        ]),
    }
    cases
}

#[test]
fn bad_accesses_are_refused_and_change_nothing() {
    for version in VERSIONS {
        let mut gic = gic(version, 2);
        // Some state for a refused write to disturb.
        enable(&mut gic, 0, 40, true);
        gic.inject_edge(40, None);
        let before = gic.clone();
        for (frame, vcpu, offset, size, refusal) in bad_accesses(version) {
            let case = (version, frame, offset, size);
            assert_eq!(
                gic.read(frame, vcpu, offset, size),
                Err(refusal),
                "{case:?}"
            );
            assert_eq!(
                gic.write(frame, vcpu, offset, size, !0),
                Err(refusal),
                "{case:?}"
            );
            assert_eq!(gic, before, "{case:?}");
        }
    }
}

#[test]
fn reserved_offsets_read_as_zero_and_ignore_writes() {
    for (version, frame, offset) in [
        (Version::V2, Frame::Gicd, 0x00C),
        (Version::V2, Frame::Gicd, 0xD00),
        (Version::V2, Frame::Gicd, 0xE00),
        (Version::V2, Frame::Gicd, 0xFFC),
        (Version::V2, Frame::Gicd, IPRIORITYR + 0x100),
        (Version::V3, Frame::Gicd, 0x010),
        (Version::V3, Frame::Gicd, 0x040),
        (Version::V3, Frame::Gicd, 0xD04),
        (Version::V3, Frame::Gicd, 0xF00),
        (Version::V3, Frame::Gicd, 0x8000),
        (Version::V3, Frame::Redistributor(0), 0x0010),
        (Version::V3, Frame::Redistributor(0), 0x0070),
        (Version::V3, Frame::Redistributor(0), GICR_SGI_BASE + 0xD00),
        (
            Version::V3,
            Frame::Redistributor(0),
            GICR_SGI_BASE + ISENABLER + 4,
        ),
    ] {
        let mut gic = gic(version, 1);
        let before = gic.clone();
        assert_eq!(write(&mut gic, frame, 0, offset, 4, !0), Changes::NONE);
        assert_eq!(
            read(&mut gic, frame, 0, offset, 4),
            0,
            "{version:?} {offset:#x}"
        );
        assert_eq!(gic, before);
    }
}

#[test]
fn reset_restores_every_register() {
    for version in VERSIONS {
        let mut gic = gic(version, 3);
        enable(&mut gic, 1, 20, true);
        enable(&mut gic, 0, 50, false);
        set_priority(&mut gic, 0, 50, 0x80);
        gic.set_level(50, None, true);
        gic.inject_edge(20, Some(1));
        gic.mark_in_list_register(1, 20, None);
        write(&mut gic, Frame::Gicd, 0, 0x800 + 50, 1, 2);
        if version == Version::V3 {
            write(&mut gic, Frame::Gicd, 0, 0x6000 + 8 * 50, 8, 2);
            write(&mut gic, Frame::Redistributor(2), 0, 0x14, 4, 0);
        }
        assert_ne!(gic, self::gic(version, 3));
        gic.reset();
        assert_eq!(gic, self::gic(version, 3));
    }
}
