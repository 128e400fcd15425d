//! The hand-over across a hot-swap: what a distributor exports reads back into an equal one,
//! whatever random guest activity left in it, and damaged or foreign bytes are refused
//! without a panic and without taking half of them.

use super::random::{Rng, check, step};
use super::*;
use crate::regs::NR_PRIVATE;
use crate::{MAX_VCPUS, NR_IRQS};
use hv_ipc::lifecycle::{BadState, STATE_MAX, StateReader, StateWriter};
use std::vec;

fn export(gic: &Distributor) -> Vec<u8> {
    let mut buf = vec![0u8; STATE_MAX];
    let mut writer = StateWriter::new(&mut buf);
    gic.export(&mut writer).expect("fits the hand-over");
    let len = writer.len();
    buf.truncate(len);
    buf
}

fn import(into: &mut Distributor, bytes: &[u8]) -> Result<(), BadState> {
    let mut reader = StateReader::new(bytes);
    into.import(&mut reader)?;
    reader.finish()
}

#[test]
fn random_states_read_back_equal() {
    for seed in 1..=16u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let version = if seed % 2 == 0 {
            Version::V2
        } else {
            Version::V3
        };
        let nr_vcpus = 1 + rng.below(MAX_VCPUS as u64) as usize;
        let mut gic = gic(version, nr_vcpus);
        let mut in_lr = Vec::new();
        for round in 0..2000 {
            step(&mut rng, &mut gic, &mut in_lr);
            if round % 97 == 0 {
                let bytes = export(&gic);
                let mut taken = super::gic(version, nr_vcpus);
                import(&mut taken, &bytes).expect("its own state");
                assert_eq!(taken, gic, "seed {seed} round {round}");
                // The new instance carries on from there as the old one would have.
                gic = taken;
            }
        }
    }
}

#[test]
fn the_reset_state_is_a_few_bytes_and_a_busy_guest_fits_several_times() {
    let quiet = gic(Version::V3, 4);
    assert_eq!(export(&quiet).len(), 6, "header and two empty counts");
    // Every interrupt enabled, prioritised and routed, as a Linux guest leaves them, on the
    // most vCPUs a guest can have.
    let mut busy = gic(Version::V3, MAX_VCPUS);
    for vcpu in 0..MAX_VCPUS {
        for intid in 0..NR_PRIVATE as u32 {
            set_irq_bit(&mut busy, vcpu, intid, ISENABLER);
            set_priority(&mut busy, vcpu, intid, 0xa0);
        }
    }
    for intid in NR_PRIVATE as u32..NR_IRQS as u32 {
        set_irq_bit(&mut busy, 0, intid, ISENABLER);
        set_priority(&mut busy, 0, intid, 0xa0);
        let router = 0x6000 + 8 * u64::from(intid);
        write(&mut busy, Frame::Gicd, 0, router, 8, u64::from(intid) % 8);
    }
    let bytes = export(&busy);
    assert!(bytes.len() < 8 * 1024, "{} bytes", bytes.len());
    assert!(
        3 * bytes.len() < STATE_MAX,
        "three busy guests fit the hand-over"
    );
    let mut taken = gic(Version::V3, MAX_VCPUS);
    import(&mut taken, &bytes).unwrap();
    assert_eq!(taken, busy);
}

#[test]
fn another_shape_is_refused() {
    let mut source = gic(Version::V2, 2);
    set_irq_bit(&mut source, 0, 40, ISENABLER);
    let bytes = export(&source);
    for (version, nr_vcpus) in [(Version::V3, 2), (Version::V2, 1), (Version::V2, 3)] {
        let mut other = gic(version, nr_vcpus);
        assert_eq!(import(&mut other, &bytes), Err(BadState));
        assert_eq!(other, gic(version, nr_vcpus), "left in its reset state");
    }
}

#[test]
fn damaged_states_are_refused_or_coherent_and_never_half_taken() {
    let mut rng = Rng(0x5EED);
    for seed in 0..64u64 {
        let version = if seed % 2 == 0 {
            Version::V2
        } else {
            Version::V3
        };
        let nr_vcpus = 1 + (seed as usize % MAX_VCPUS);
        let mut gic = gic(version, nr_vcpus);
        let mut in_lr = Vec::new();
        for _ in 0..300 {
            step(&mut rng, &mut gic, &mut in_lr);
        }
        let mut bytes = export(&gic);
        match rng.below(3) {
            0 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
            1 => bytes.push(rng.next() as u8),
            _ => {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        let mut taken = super::gic(version, nr_vcpus);
        match import(&mut taken, &bytes) {
            // A flipped bit can still spell a valid state: then it is one the model keeps its
            // rules on.
            Ok(()) => check(&mut taken),
            Err(BadState) => {
                let mut reader = StateReader::new(&bytes);
                let mut fresh = super::gic(version, nr_vcpus);
                if fresh.import(&mut reader).is_err() {
                    assert_eq!(fresh, super::gic(version, nr_vcpus), "half taken");
                }
            }
        }
    }
}
