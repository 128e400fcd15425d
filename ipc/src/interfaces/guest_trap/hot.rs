//! The guest-trap interface's hottest messages, coded by hand for the trap path: the request
//! of a guest's SMCCC call ([`GuestTrap::Smccc`](super::GuestTrap::Smccc)) and the answer that
//! returns results to it (`Ok(`[`TrapResolution::Return`](super::TrapResolution)`)`), and an
//! emulated device access ([`GuestTrap::Mmio`](super::GuestTrap::Mmio)) with its two answers
//! (`MmioRead`, `MmioWritten`). The kernel writes the requests and reads the answers
//! ([`encode_smccc`], [`decode_return`], [`encode_mmio`], [`decode_mmio_answer`]); a component
//! serving guest traps reads and writes them with [`decode_call`] and [`encode_answer`] (or
//! [`serve`], which does both).
//!
//! The bytes are exactly those of the general code (`encode_request`, `decode_request`,
//! `encode_reply`, `decode_reply`; the tests check every pair, on random values and random
//! bytes). *Why by hand:* the general code builds the message as a value first (eight
//! registers copied out of the vCPU's frame), and decodes an answer into an enum that is then
//! moved twice before its registers reach the frame; on a round trip of about a thousand
//! instructions those moves and checks were a fifth of the kernel's share (docs/ipc.md). These
//! functions write from the registers and read into them; anything else (another answer, an
//! overlong but valid variant index) is left to the general decoder.

use super::{Conduit, GuestTrap, GuestTrapInterface, GuestTrapServer, TrapResolution};
use crate::WireReply;
use crate::abi::MESSAGE_MAX;
use crate::codec::{LongVarint, read_long_varint, write_long_varint};
use crate::dispatch::ServedBy;

/// The variant index of [`GuestTrap::Smccc`](super::GuestTrap::Smccc), and that of
/// [`TrapResolution::Return`](super::TrapResolution::Return) (both first of their enums).
const FIRST_VARIANT: u8 = 0;
/// The variant index of [`GuestTrap::Mmio`](super::GuestTrap::Mmio).
const MMIO: u8 = 1;
/// The variant indices of [`TrapResolution::MmioRead`] and [`TrapResolution::MmioWritten`].
const MMIO_READ: u8 = 9;
const MMIO_WRITTEN: u8 = 10;
/// `Result::Ok`'s variant index, which opens a reply that is not an error.
const OK: u8 = 0;

/// The longest SMCCC request: the variant, two `u16` varints, the conduit and eight `u64`
/// varints. Shorter than a message, so no write below can run past the buffer.
const SMCCC_REQUEST_MAX: usize = 1 + 3 + 3 + 1 + 8 * 10;
const _: () = assert!(SMCCC_REQUEST_MAX <= MESSAGE_MAX);

/// Writes `value` as a varint at `at` (below `SMCCC_REQUEST_MAX - 10`, so it fits); returns
/// where the next field starts.
#[inline(always)]
fn put(out: &mut [u8; MESSAGE_MAX], at: usize, value: u64) -> usize {
    if value < 0x80 {
        out[at] = value as u8;
        at + 1
    } else {
        at + write_long_varint(&mut out[at..], value)
    }
}

/// Writes the request of an SMCCC call by vCPU `vcpu` of VM `vm`, made with `conduit`, with
/// x0..x7 = `regs`, at the start of `out`; returns its length. The same bytes as
/// `encode_request::<GuestTrapInterface>(&GuestTrap::Smccc { vm, vcpu, conduit, regs })`.
#[inline(always)]
pub fn encode_smccc(
    out: &mut [u8; MESSAGE_MAX],
    vm: u16,
    vcpu: u16,
    conduit: Conduit,
    regs: &[u64; 8],
) -> usize {
    out[0] = FIRST_VARIANT;
    let mut at = put(out, 1, vm.into());
    at = put(out, at, vcpu.into());
    out[at] = match conduit {
        Conduit::Hvc => 0,
        Conduit::Smc => 1,
    };
    at += 1;
    for &register in regs {
        at = put(out, at, register);
    }
    at
}

/// The results of the answer `bytes` if it is `Ok(TrapResolution::Return { regs })` with its
/// two variant indices in one byte each (as every encoder writes them); `None` for any other
/// bytes, which the general decoder then reads (it also takes overlong variant indices, as
/// postcard does).
#[inline(always)]
pub fn decode_return(bytes: &[u8]) -> Option<[u64; 4]> {
    let [OK, FIRST_VARIANT, ..] = bytes else {
        return None;
    };
    // By position rather than through a `Reader`: a one-byte register is a load, a compare
    // and a store.
    let mut at = 2;
    let mut regs = [0; 4];
    for register in &mut regs {
        let zigzagged;
        (zigzagged, at) = take_u64(bytes, at)?;
        // Bit for bit into the register (`TrapResolution::registers`).
        *register = unzigzag(zigzagged) as u64;
    }
    (at == bytes.len()).then_some(regs)
}

/// The longest MMIO request: the variant, two `u16` varints, the IPA, the size and direction
/// bytes and the value.
const MMIO_REQUEST_MAX: usize = 1 + 3 + 3 + 10 + 1 + 1 + 10;
const _: () = assert!(MMIO_REQUEST_MAX <= MESSAGE_MAX);

/// Writes the request of an emulated access by vCPU `vcpu` of VM `vm` at the start of `out`;
/// returns its length. The same bytes as
/// `encode_request::<GuestTrapInterface>(&GuestTrap::Mmio { vm, vcpu, ipa, size, write, value })`.
#[inline(always)]
pub fn encode_mmio(
    out: &mut [u8; MESSAGE_MAX],
    (vm, vcpu): (u16, u16),
    ipa: crate::addr::Ipa,
    size: u8,
    write: bool,
    value: u64,
) -> usize {
    out[0] = MMIO;
    let mut at = put(out, 1, vm.into());
    at = put(out, at, vcpu.into());
    at = put(out, at, ipa.0);
    out[at] = size;
    out[at + 1] = write.into();
    put(out, at + 2, value)
}

/// The answer `bytes` if it is `Ok(TrapResolution::MmioRead { .. })` or
/// `Ok(TrapResolution::MmioWritten)` with its variant indices in one byte each; `None` for any
/// other bytes (left to the general decoder).
#[inline(always)]
pub fn decode_mmio_answer(bytes: &[u8]) -> Option<TrapResolution> {
    match bytes {
        [OK, MMIO_WRITTEN] => Some(TrapResolution::MmioWritten),
        [OK, MMIO_READ, ..] => {
            let (value, end) = take_u64(bytes, 2)?;
            (end == bytes.len()).then_some(TrapResolution::MmioRead { value })
        }
        _ => None,
    }
}

/// Reads a varint of a `u16` (three bytes at most) at `at`: its value and where the next field
/// starts.
#[inline(always)]
fn take_u16(bytes: &[u8], at: usize) -> Option<(u16, usize)> {
    let &first = bytes.get(at)?;
    if first < 0x80 {
        return Some((first.into(), at + 1));
    }
    match read_long_varint::<3, 0b11>(bytes.get(at..)?) {
        LongVarint::Value(value, len) => Some((value as u16, at + len)),
        _ => None,
    }
}

/// Reads a varint of a `u64` at `at`, as [`take_u16`].
#[inline(always)]
fn take_u64(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let &first = bytes.get(at)?;
    if first < 0x80 {
        return Some((first.into(), at + 1));
    }
    match read_long_varint::<10, 0b1>(bytes.get(at..)?) {
        LongVarint::Value(value, len) => Some((value, at + len)),
        _ => None,
    }
}

/// The fields of an SMCCC call's request, if `bytes` are exactly one with its variant indices
/// in one byte each; `None` for any other bytes (left to the general decoder).
#[inline(always)]
fn decode_smccc(bytes: &[u8]) -> Option<(u16, u16, Conduit, [u64; 8])> {
    let [FIRST_VARIANT, ..] = bytes else {
        return None;
    };
    let (vm, at) = take_u16(bytes, 1)?;
    let (vcpu, at) = take_u16(bytes, at)?;
    let conduit = match bytes.get(at)? {
        0 => Conduit::Hvc,
        1 => Conduit::Smc,
        _ => return None,
    };
    let mut at = at + 1;
    let mut regs = [0; 8];
    for register in &mut regs {
        (*register, at) = take_u64(bytes, at)?;
    }
    (at == bytes.len()).then_some((vm, vcpu, conduit, regs))
}

/// A signed value's varint: zigzagged, as postcard writes `i64`s (small magnitudes of either
/// sign are short).
#[inline(always)]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The signed value a zigzagged varint holds.
#[inline(always)]
fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// An emulated access's request, if `bytes` are exactly one with its variant index in one
/// byte; `None` for any other bytes (left to the general decoder).
#[inline(always)]
fn decode_mmio(bytes: &[u8]) -> Option<GuestTrap> {
    let [MMIO, ..] = bytes else {
        return None;
    };
    let (vm, at) = take_u16(bytes, 1)?;
    let (vcpu, at) = take_u16(bytes, at)?;
    let (ipa, at) = take_u64(bytes, at)?;
    let (&size, &write) = (bytes.get(at)?, bytes.get(at + 1)?);
    let write = match write {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (value, end) = take_u64(bytes, at + 2)?;
    (end == bytes.len()).then_some(GuestTrap::Mmio {
        vm,
        vcpu,
        ipa: crate::addr::Ipa(ipa),
        size,
        write,
        value,
    })
}

/// Writes the answer `Ok(TrapResolution::Return { regs })` at the start of `out`; returns its
/// length.
#[inline(always)]
fn encode_return(out: &mut [u8; MESSAGE_MAX], regs: &[i64; 4]) -> usize {
    out[0] = OK;
    out[1] = FIRST_VARIANT;
    let mut at = 2;
    for &register in regs {
        at = put(out, at, zigzag(register));
    }
    at
}

/// The request of a call on `interface`, or the error to answer it with: what
/// [`decode_call`](crate::decode_call) gives for the guest-trap interface, with an SMCCC call
/// read by hand.
#[inline(always)]
pub fn decode_call(interface: u16, request: &[u8]) -> WireReply<GuestTrap> {
    if interface == crate::abi::interface::GUEST_TRAP {
        if let Some((vm, vcpu, conduit, regs)) = decode_smccc(request) {
            return Ok(GuestTrap::Smccc {
                vm,
                vcpu,
                conduit,
                regs,
            });
        }
        if let Some(mmio) = decode_mmio(request) {
            return Ok(mmio);
        }
    }
    crate::decode_call::<GuestTrapInterface>(interface, request)
}

/// Writes `answer` into `out` and returns its length, for REPLY: what
/// [`encode_answer`](crate::encode_answer) writes for the guest-trap interface, with an SMCCC
/// call's results written by hand.
#[inline(always)]
pub fn encode_answer(answer: &WireReply<TrapResolution>, out: &mut [u8; MESSAGE_MAX]) -> usize {
    match answer {
        Ok(TrapResolution::Return { regs }) => encode_return(out, regs),
        Ok(TrapResolution::MmioWritten) => {
            out[..2].copy_from_slice(&[OK, MMIO_WRITTEN]);
            2
        }
        Ok(TrapResolution::MmioRead { value }) => {
            out[..2].copy_from_slice(&[OK, MMIO_READ]);
            put(out, 2, *value)
        }
        answer => crate::encode_answer::<GuestTrapInterface>(answer, out),
    }
}

/// Serves a call on the guest-trap interface with `server` and writes the answer into `reply`;
/// returns its length, for REPLY: what [`dispatch`](crate::dispatch) does for this interface,
/// with [`decode_call`] and [`encode_answer`].
#[inline(always)]
pub fn serve<S: GuestTrapServer>(
    server: &mut S,
    request: &[u8],
    reply: &mut [u8; MESSAGE_MAX],
) -> usize {
    let answer = decode_call(crate::abi::interface::GUEST_TRAP, request)
        .map(|request| GuestTrapInterface::serve(server, request));
    encode_answer(&answer, reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interfaces::guest_trap::{GuestTrap, GuestTrapInterface, TrapResolution};
    use crate::{RemoteError, decode_reply, encode_reply, encode_request};
    use proptest::prelude::*;

    /// Values around every varint length boundary, and random ones.
    fn register() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(0x7f),
            Just(0x80),
            Just(0x3fff),
            Just(0x4000),
            Just(0xc600_00ff),
            Just(u64::MAX),
            Just(u64::MAX >> 1),
            any::<u64>(),
            (0u64..0x200),
        ]
    }

    fn conduit() -> impl Strategy<Value = Conduit> {
        prop_oneof![Just(Conduit::Hvc), Just(Conduit::Smc)]
    }

    proptest! {
        #[test]
        fn smccc_requests_are_the_general_encoders_bytes(
            vm in any::<u16>(),
            vcpu in any::<u16>(),
            conduit in conduit(),
            regs in proptest::array::uniform8(register()),
        ) {
            let mut general = [0u8; MESSAGE_MAX];
            let len = encode_request::<GuestTrapInterface>(
                &GuestTrap::Smccc { vm, vcpu, conduit: conduit.clone(), regs },
                &mut general,
            )
            .unwrap();
            let mut hot = [0xa5u8; MESSAGE_MAX];
            prop_assert_eq!(encode_smccc(&mut hot, vm, vcpu, conduit, &regs), len);
            prop_assert_eq!(&hot[..len], &general[..len]);
        }

        #[test]
        fn return_answers_decode_as_the_general_decoder_reads_them(
            regs in proptest::array::uniform4(register()),
        ) {
            let mut bytes = [0u8; MESSAGE_MAX];
            let len = encode_reply::<GuestTrapInterface>(
                &Ok(TrapResolution::results(regs)),
                &mut bytes,
            )
            .unwrap();
            prop_assert_eq!(decode_return(&bytes[..len]), Some(regs));
            // Cut short or with a byte more, it is not an answer at all.
            prop_assert_eq!(decode_return(&bytes[..len - 1]), None);
            prop_assert_eq!(decode_return(&bytes[..len + 1]), None);
        }

        #[test]
        fn any_bytes_it_takes_are_a_return_to_the_general_decoder(
            bytes in proptest::collection::vec(any::<u8>(), 0..48),
            start in proptest::array::uniform2(0u8..3),
        ) {
            // Mostly answers that open like a Return, so that the registers get read.
            let mut bytes = bytes;
            for (slot, value) in bytes.iter_mut().zip(start) {
                *slot = value;
            }
            let general = decode_reply::<GuestTrapInterface>(&bytes);
            match decode_return(&bytes) {
                Some(regs) => prop_assert_eq!(general, Ok(Ok(TrapResolution::results(regs)))),
                // Only answers whose variant indices are overlong are left to it.
                None => if let Ok(Ok(TrapResolution::Return { .. })) = general {
                    prop_assert!(bytes[..2] != [OK, FIRST_VARIANT]);
                },
            }
        }
    }

    /// A server answering every call with what it was asked, as the test sets it.
    struct Echo {
        answer: TrapResolution,
        asked: Option<GuestTrap>,
    }

    impl GuestTrapServer for Echo {
        fn smccc(
            &mut self,
            vm: u16,
            vcpu: u16,
            conduit: Conduit,
            regs: [u64; 8],
        ) -> TrapResolution {
            self.asked = Some(GuestTrap::Smccc {
                vm,
                vcpu,
                conduit,
                regs,
            });
            self.answer.clone()
        }

        fn mmio(
            &mut self,
            vm: u16,
            vcpu: u16,
            ipa: crate::addr::Ipa,
            size: u8,
            write: bool,
            value: u64,
        ) -> TrapResolution {
            self.asked = Some(GuestTrap::Mmio {
                vm,
                vcpu,
                ipa,
                size,
                write,
                value,
            });
            self.answer.clone()
        }
    }

    fn resolution() -> impl Strategy<Value = TrapResolution> {
        prop_oneof![
            proptest::array::uniform4(register()).prop_map(TrapResolution::results),
            any::<u64>().prop_map(|value| TrapResolution::MmioRead { value }),
            Just(TrapResolution::Retry),
            Just(TrapResolution::SystemOff),
        ]
    }

    proptest! {
        #[test]
        fn served_calls_are_answered_as_dispatch_answers_them(
            bytes in proptest::collection::vec(any::<u8>(), 0..48),
            first in 0u8..3,
            answer in resolution(),
        ) {
            // Mostly requests that open like an SMCCC call.
            let mut bytes = bytes;
            if let Some(slot) = bytes.first_mut() {
                *slot = first;
            }
            let mut general = Echo { answer: answer.clone(), asked: None };
            let mut general_reply = [0u8; MESSAGE_MAX];
            let general_len = crate::dispatch::<GuestTrapInterface, _>(
                &mut general,
                crate::abi::interface::GUEST_TRAP,
                &bytes,
                &mut general_reply,
            );
            let mut hot = Echo { answer, asked: None };
            let mut hot_reply = [0u8; MESSAGE_MAX];
            let hot_len = serve(&mut hot, &bytes, &mut hot_reply);
            prop_assert_eq!(hot.asked, general.asked);
            prop_assert_eq!(&hot_reply[..hot_len], &general_reply[..general_len]);
        }

        #[test]
        fn smccc_requests_are_served_by_hand(
            vm in any::<u16>(),
            vcpu in any::<u16>(),
            conduit in conduit(),
            regs in proptest::array::uniform8(register()),
            answer in proptest::array::uniform4(register()),
        ) {
            let mut request = [0u8; MESSAGE_MAX];
            let len = encode_smccc(&mut request, vm, vcpu, conduit.clone(), &regs);
            prop_assert_eq!(
                decode_smccc(&request[..len]),
                Some((vm, vcpu, conduit.clone(), regs))
            );
            let mut server = Echo { answer: TrapResolution::results(answer), asked: None };
            let mut reply = [0u8; MESSAGE_MAX];
            let reply_len = serve(&mut server, &request[..len], &mut reply);
            prop_assert_eq!(server.asked, Some(GuestTrap::Smccc { vm, vcpu, conduit, regs }));
            prop_assert_eq!(decode_return(&reply[..reply_len]), Some(answer));
        }
    }

    proptest! {
        #[test]
        fn mmio_requests_are_the_general_encoders_bytes_and_read_back(
            vm in any::<u16>(),
            vcpu in any::<u16>(),
            ipa in register(),
            size in prop_oneof![Just(1u8), Just(2), Just(4), Just(8), any::<u8>()],
            write in any::<bool>(),
            value in register(),
        ) {
            let request = GuestTrap::Mmio { vm, vcpu, ipa: crate::addr::Ipa(ipa), size, write, value };
            let mut general = [0u8; MESSAGE_MAX];
            let len = encode_request::<GuestTrapInterface>(&request, &mut general).unwrap();
            let mut hot = [0xa5u8; MESSAGE_MAX];
            prop_assert_eq!(
                encode_mmio(&mut hot, (vm, vcpu), crate::addr::Ipa(ipa), size, write, value),
                len
            );
            prop_assert_eq!(&hot[..len], &general[..len]);
            prop_assert_eq!(decode_mmio(&hot[..len]), Some(request));
        }

        #[test]
        fn mmio_answers_are_the_general_codecs_bytes(value in register()) {
            for answer in [TrapResolution::MmioWritten, TrapResolution::MmioRead { value }] {
                let mut general = [0u8; MESSAGE_MAX];
                let len = encode_reply::<GuestTrapInterface>(&Ok(answer.clone()), &mut general)
                    .unwrap();
                let mut hot = [0xa5u8; MESSAGE_MAX];
                prop_assert_eq!(encode_answer(&Ok(answer.clone()), &mut hot), len);
                prop_assert_eq!(&hot[..len], &general[..len]);
                prop_assert_eq!(decode_mmio_answer(&general[..len]), Some(answer));
                prop_assert_eq!(decode_mmio_answer(&general[..len + 1]), None);
            }
        }

        #[test]
        fn any_bytes_the_mmio_decoders_take_the_general_decoder_reads_alike(
            bytes in proptest::collection::vec(any::<u8>(), 0..32),
            start in proptest::array::uniform2(prop_oneof![Just(0u8), Just(1), Just(9), Just(10)]),
        ) {
            let mut bytes = bytes;
            for (slot, value) in bytes.iter_mut().zip(start) {
                *slot = value;
            }
            if let Some(answer) = decode_mmio_answer(&bytes) {
                prop_assert_eq!(decode_reply::<GuestTrapInterface>(&bytes), Ok(Ok(answer)));
            }
            if let Some(request) = decode_mmio(&bytes) {
                prop_assert_eq!(crate::decode_request::<GuestTrapInterface>(&bytes), Ok(request));
            }
        }
    }

    #[test]
    fn a_call_on_another_interface_is_refused_as_decode_call_refuses_it() {
        let mut request = [0u8; MESSAGE_MAX];
        let len = encode_smccc(
            &mut request,
            0,
            0,
            Conduit::Hvc,
            &[0xc600_00ff, 0, 0, 0, 0, 0, 0, 0],
        );
        for interface in [0, crate::abi::interface::SUPERVISOR] {
            assert_eq!(
                decode_call(interface, &request[..len]),
                Err(RemoteError::UnknownOperation)
            );
        }
    }

    #[test]
    fn other_answers_are_left_to_the_general_decoder() {
        let mut bytes = [0u8; MESSAGE_MAX];
        for answer in [
            Ok(TrapResolution::Resume),
            Ok(TrapResolution::MmioRead { value: 1 }),
            Ok(TrapResolution::StartCpu {
                target_mpidr: 1,
                entry: 2,
                context: 3,
            }),
            Err(RemoteError::Internal),
        ] {
            let len = encode_reply::<GuestTrapInterface>(&answer, &mut bytes).unwrap();
            assert_eq!(decode_return(&bytes[..len]), None, "{answer:?}");
        }
        // Overlong varints (0 as two bytes) are read as postcard reads them in the registers;
        // in the variant indices they are left to the general decoder. (The registers are
        // zigzagged: 0, 1, 2, 3 are 0, 2, 4, 6 on the wire.)
        let return_0123 = Ok(Ok(TrapResolution::results([0, 1, 2, 3])));
        let overlong_register = [OK, FIRST_VARIANT, 0x80, 0x00, 2, 4, 6];
        assert_eq!(decode_return(&overlong_register), Some([0, 1, 2, 3]));
        assert_eq!(
            decode_reply::<GuestTrapInterface>(&overlong_register),
            return_0123
        );
        let overlong_variant = [0x80, 0x00, FIRST_VARIANT, 0, 2, 4, 6];
        assert_eq!(decode_return(&overlong_variant), None);
        assert_eq!(
            decode_reply::<GuestTrapInterface>(&overlong_variant),
            return_0123
        );
    }
}
