//! Every (trap, resolution) pair, and the loaded-value arithmetic.

use super::*;
use crate::esr::FaultStatus;

const PC: u64 = 0x4008_0000;

fn abort(write: bool) -> DataAbort {
    DataAbort {
        valid_syndrome: true,
        access_size: 4,
        sign_extend: false,
        register: 3,
        sixty_four_bit: false,
        far_not_valid: false,
        external: false,
        cache_maintenance: false,
        stage1_walk: false,
        write,
        status: FaultStatus::Translation(3),
    }
}

fn smccc() -> PendingTrap {
    PendingTrap {
        kind: TrapKind::Smccc,
        retry_pc: PC - 4,
    }
}

fn mmio(write: bool) -> PendingTrap {
    PendingTrap {
        kind: TrapKind::Mmio {
            abort: abort(write),
            far: 0xffff_0000_0900_0000,
        },
        retry_pc: PC,
    }
}

fn stage2() -> PendingTrap {
    PendingTrap {
        kind: TrapKind::Stage2Fault {
            esr: 0x9200_0007,
            far: 0xffff_8000_1234_5678,
        },
        retry_pc: PC,
    }
}

/// One of every resolution.
fn every_resolution() -> [TrapResolution; 14] {
    [
        TrapResolution::results([1, 2, 3, 4]),
        TrapResolution::StartCpu {
            target_mpidr: 1,
            entry: 0x4000_0000,
            context: 7,
        },
        TrapResolution::StopCpu,
        TrapResolution::AffinityInfo {
            target_mpidr: 1,
            lowest_level: 0,
        },
        TrapResolution::WaitForInterrupt,
        TrapResolution::SystemOff,
        TrapResolution::SystemReset,
        TrapResolution::InjectUndefined,
        TrapResolution::Retry,
        TrapResolution::MmioRead { value: 0x1234 },
        TrapResolution::MmioWritten,
        TrapResolution::ExternalAbort,
        TrapResolution::Resume,
        TrapResolution::InjectHostAbort,
    ]
}

/// Which resolutions each kind of trap takes (by name).
fn accepted(pending: &PendingTrap) -> &'static [&'static str] {
    match pending.kind {
        TrapKind::Smccc => &[
            "Return",
            "StartCpu",
            "StopCpu",
            "AffinityInfo",
            "WaitForInterrupt",
            "SystemOff",
            "SystemReset",
            "InjectUndefined",
            "Retry",
        ],
        TrapKind::Mmio { abort, .. } if abort.write => {
            &["MmioWritten", "ExternalAbort", "InjectUndefined", "Retry"]
        }
        TrapKind::Mmio { .. } => &["MmioRead", "ExternalAbort", "InjectUndefined", "Retry"],
        TrapKind::SgiWrite => &["MmioWritten", "InjectUndefined", "Retry"],
        TrapKind::Stage2Fault { .. } => &["Resume", "InjectHostAbort", "Retry"],
    }
}

fn sgi_write() -> PendingTrap {
    PendingTrap {
        kind: TrapKind::SgiWrite,
        retry_pc: PC,
    }
}

#[test]
fn an_sgi_write_is_stepped_over_once_done() {
    assert_eq!(
        decide(&sgi_write(), Ok(TrapResolution::MmioWritten)),
        Decision::CompleteMmio { load: None }
    );
}

#[test]
fn every_pair_is_applied_or_refused_as_a_mismatch() {
    for pending in [smccc(), mmio(false), mmio(true), stage2(), sgi_write()] {
        for resolution in every_resolution() {
            let name = resolution.variant_name();
            let decision = decide(&pending, Ok(resolution));
            let refused = matches!(decision, Decision::Refuse(_));
            assert_eq!(
                refused,
                !accepted(&pending).contains(&name),
                "{} answered {name}: {decision:?}",
                pending.kind.name()
            );
            if refused {
                assert_eq!(
                    decision,
                    Decision::Refuse(Refusal::Mismatch {
                        trap: pending.kind.name(),
                        resolution: name
                    })
                );
            }
        }
    }
}

#[test]
fn retry_goes_back_to_the_trapping_instruction_of_each_kind() {
    // An HVC's ELR points past it; the others' at the instruction itself.
    assert_eq!(
        decide(&smccc(), Ok(TrapResolution::Retry)),
        Decision::Retry { pc: PC - 4 }
    );
    for pending in [mmio(false), mmio(true), stage2()] {
        assert_eq!(
            decide(&pending, Ok(TrapResolution::Retry)),
            Decision::Retry { pc: PC }
        );
    }
}

#[test]
fn a_resume_for_an_hvc_is_refused_not_left_with_the_function_id_in_x0() {
    assert_eq!(
        decide(&smccc(), Ok(TrapResolution::Resume)),
        Decision::Refuse(Refusal::Mismatch {
            trap: "SMCCC call",
            resolution: "Resume"
        })
    );
}

#[test]
fn refusals_and_undecodable_replies_touch_nothing() {
    for pending in [smccc(), mmio(false), stage2()] {
        for refusal in [
            Refusal::Undecodable,
            Refusal::Remote(RemoteError::MalformedRequest),
            Refusal::Remote(RemoteError::UnknownOperation),
        ] {
            assert_eq!(decide(&pending, Err(refusal)), Decision::Refuse(refusal));
        }
    }
}

#[test]
fn the_answers_carry_what_each_kind_recorded() {
    assert_eq!(
        decide(&stage2(), Ok(TrapResolution::InjectHostAbort)),
        Decision::InjectHostAbort {
            esr: 0x9200_0007,
            far: 0xffff_8000_1234_5678
        }
    );
    assert_eq!(
        decide(&mmio(true), Ok(TrapResolution::ExternalAbort)),
        Decision::InjectExternalAbort {
            write: true,
            far: 0xffff_0000_0900_0000
        }
    );
    assert_eq!(
        decide(
            &mmio(false),
            Ok(TrapResolution::MmioRead {
                value: 0x1_2345_6789
            })
        ),
        Decision::CompleteMmio {
            load: Some((3, 0x2345_6789))
        }
    );
    assert_eq!(
        decide(&mmio(true), Ok(TrapResolution::MmioWritten)),
        Decision::CompleteMmio { load: None }
    );
    let mut to_xzr = mmio(false);
    if let TrapKind::Mmio { abort, .. } = &mut to_xzr.kind {
        abort.register = 31;
    }
    assert_eq!(
        decide(&to_xzr, Ok(TrapResolution::MmioRead { value: 5 })),
        Decision::CompleteMmio { load: None }
    );
}

#[test]
fn loads_are_truncated_extended_and_cut_to_the_register_width() {
    let with = |size: u8, sign_extend: bool, sixty_four_bit: bool| DataAbort {
        access_size: size,
        sign_extend,
        sixty_four_bit,
        ..abort(false)
    };
    assert_eq!(loaded_value(&with(1, false, true), 0x1ff), 0xff);
    assert_eq!(
        loaded_value(&with(1, true, true), 0x80),
        0xffff_ffff_ffff_ff80
    );
    assert_eq!(loaded_value(&with(1, true, false), 0x80), 0xffff_ff80);
    assert_eq!(loaded_value(&with(2, true, true), 0x7fff), 0x7fff);
    assert_eq!(loaded_value(&with(4, false, false), u64::MAX), 0xffff_ffff);
    assert_eq!(loaded_value(&with(8, false, true), u64::MAX), u64::MAX);
    assert_eq!(
        loaded_value(&with(8, true, true), 0x8000_0000_0000_0000),
        0x8000_0000_0000_0000
    );
}

#[test]
fn stores_write_the_low_bytes_of_their_register() {
    let with = |size: u8, register: u8| DataAbort {
        access_size: size,
        register,
        ..abort(true)
    };
    assert_eq!(stored_value(&with(1, 3), 0x1234), 0x34);
    assert_eq!(stored_value(&with(2, 3), 0xdead_beef), 0xbeef);
    assert_eq!(stored_value(&with(4, 3), u64::MAX), 0xffff_ffff);
    assert_eq!(stored_value(&with(8, 3), u64::MAX), u64::MAX);
    assert_eq!(stored_value(&with(4, 31), u64::MAX), 0, "xzr stores zero");
}

#[test]
fn only_register_decisions_are_carried_out_on_the_registers() {
    let frame = || {
        let mut frame = GuestFrame::ZERO;
        frame.x[..4].copy_from_slice(&[9, 9, 9, 9]);
        frame.elr = PC;
        frame
    };
    let applied = |decision| {
        let mut registers = frame();
        apply_to_registers(&mut registers, decision).map(|()| registers)
    };
    let mut returned = frame();
    returned.x[..4].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(applied(Decision::Return([1, 2, 3, 4])), Ok(returned));
    let mut loaded = frame();
    loaded.x[3] = 0xab;
    loaded.elr = PC + 4;
    assert_eq!(
        applied(Decision::CompleteMmio {
            load: Some((3, 0xab))
        }),
        Ok(loaded)
    );
    let mut written = frame();
    written.elr = PC + 4;
    assert_eq!(
        applied(Decision::CompleteMmio { load: None }),
        Ok(written.clone())
    );
    // A load into a register the frame does not hold (xzr is 31) only steps over.
    assert_eq!(
        applied(Decision::CompleteMmio {
            load: Some((31, 0xab))
        }),
        Ok(written)
    );
    let mut retried = frame();
    retried.elr = PC - 4;
    assert_eq!(applied(Decision::Retry { pc: PC - 4 }), Ok(retried));
    assert_eq!(applied(Decision::Resume), Ok(frame()));
    // Everything else is the kernel's, and the registers are untouched.
    for decision in [
        Decision::StartCpu {
            target_mpidr: 1,
            entry: 2,
            context: 3,
        },
        Decision::StopCpu,
        Decision::AffinityInfo {
            target_mpidr: 1,
            lowest_level: 0,
        },
        Decision::WaitForInterrupt,
        Decision::SystemOff,
        Decision::SystemReset,
        Decision::InjectUndefined,
        Decision::InjectExternalAbort {
            write: true,
            far: 0x1000,
        },
        Decision::InjectHostAbort {
            esr: 0x9200_0007,
            far: 0x1000,
        },
        Decision::Refuse(Refusal::Undecodable),
    ] {
        assert_eq!(applied(decision), Err(decision));
    }
}
