//! Every decoder fed arbitrary bytes: an error or a message, never a panic. And encoding any
//! message round-trips within the interface's bounds.

use hv_ipc::abi::MESSAGE_MAX;
use hv_ipc::interfaces::guest_trap::{Conduit, GuestTrap, GuestTrapInterface, TrapResolution};
use hv_ipc::interfaces::supervisor::{SupervisorInterface, SupervisorReply, SupervisorRequest};
use hv_ipc::{
    Interface, RemoteError, decode_reply, decode_request, encode_reply, encode_request, serve,
};
use proptest::prelude::*;

/// Runs every decoder of `I` on `bytes`, and `serve` (answering with `answer` if the bytes
/// decode), whose reply must always decode.
fn decode_everything<I: Interface>(bytes: &[u8], answer: I::Reply) {
    let request = decode_request::<I>(bytes);
    let _ = decode_reply::<I>(bytes);

    let mut reply = [0; MESSAGE_MAX];
    let mut handled = false;
    let len = serve::<I>(bytes, &mut reply, |_| {
        handled = true;
        answer
    });
    assert_eq!(handled, request.is_ok());
    let served = decode_reply::<I>(&reply[..len]).expect("serve's reply must decode");
    assert_eq!(served.is_err(), request.is_err());
    if request.is_err() {
        assert_eq!(served.err(), Some(RemoteError::MalformedRequest));
    }
}

fn decode_with_every_interface(bytes: &[u8]) {
    decode_everything::<GuestTrapInterface>(bytes, TrapResolution::Retry);
    decode_everything::<SupervisorInterface>(bytes, SupervisorReply::Pong { nonce: 1 });
}

fn conduit() -> impl Strategy<Value = Conduit> {
    prop_oneof![Just(Conduit::Hvc), Just(Conduit::Smc)]
}

fn guest_trap() -> impl Strategy<Value = GuestTrap> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), conduit(), any::<[u64; 8]>()).prop_map(
            |(vm, vcpu, conduit, regs)| GuestTrap::Smccc {
                vm,
                vcpu,
                conduit,
                regs,
            },
        ),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u64>(),
            any::<u8>(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(|(vm, vcpu, ipa, size, write, value)| GuestTrap::Mmio {
                vm,
                vcpu,
                ipa,
                size,
                write,
                value,
            }),
    ]
}

fn trap_resolution() -> impl Strategy<Value = TrapResolution> {
    prop_oneof![
        any::<[u64; 4]>().prop_map(|regs| TrapResolution::Return { regs }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(target_mpidr, entry, context)| {
            TrapResolution::StartCpu {
                target_mpidr,
                entry,
                context,
            }
        }),
        Just(TrapResolution::StopCpu),
        (any::<u64>(), any::<u64>()).prop_map(|(target_mpidr, lowest_level)| {
            TrapResolution::AffinityInfo {
                target_mpidr,
                lowest_level,
            }
        }),
        Just(TrapResolution::WaitForInterrupt),
        Just(TrapResolution::SystemOff),
        Just(TrapResolution::SystemReset),
        Just(TrapResolution::InjectUndefined),
        Just(TrapResolution::Retry),
        any::<u64>().prop_map(|value| TrapResolution::MmioRead { value }),
        Just(TrapResolution::MmioWritten),
        Just(TrapResolution::ExternalAbort),
        Just(TrapResolution::Resume),
        Just(TrapResolution::InjectHostAbort),
    ]
}

fn supervisor_request() -> impl Strategy<Value = SupervisorRequest> {
    prop_oneof![
        any::<u32>().prop_map(|nonce| SupervisorRequest::Ping { nonce }),
        Just(SupervisorRequest::Status),
    ]
}

fn supervisor_reply() -> impl Strategy<Value = SupervisorReply> {
    prop_oneof![
        any::<u32>().prop_map(|nonce| SupervisorReply::Pong { nonce }),
        (any::<u32>(), any::<u32>()).prop_map(|(restarts, components_faulted)| {
            SupervisorReply::Status {
                restarts,
                components_faulted,
            }
        }),
    ]
}

fn remote_error() -> impl Strategy<Value = RemoteError> {
    prop_oneof![
        Just(RemoteError::MalformedRequest),
        Just(RemoteError::UnknownOperation),
        Just(RemoteError::Busy),
        Just(RemoteError::Internal),
    ]
}

fn round_trip<I: Interface>(request: I::Request, reply: Result<I::Reply, RemoteError>)
where
    I::Request: PartialEq + core::fmt::Debug,
    I::Reply: PartialEq + core::fmt::Debug,
{
    let mut buffer = [0; MESSAGE_MAX];
    let len = encode_request::<I>(&request, &mut buffer).unwrap();
    assert!(len <= I::MAX_REQUEST);
    assert_eq!(decode_request::<I>(&buffer[..len]).unwrap(), request);
    let len = encode_reply::<I>(&reply, &mut buffer).unwrap();
    assert!(len <= I::MAX_REPLY);
    assert_eq!(decode_reply::<I>(&buffer[..len]).unwrap(), reply);
}

proptest! {
    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_with_every_interface(&bytes);
    }

    /// Random bytes rarely get past the first byte; a valid message with bytes flipped or cut
    /// reaches deeper into the decoders.
    #[test]
    fn damaged_messages_never_panic_a_decoder(
        trap in guest_trap(),
        resolution in trap_resolution(),
        cut in 0..MESSAGE_MAX,
        flips in proptest::collection::vec((0..MESSAGE_MAX, any::<u8>()), 0..4),
    ) {
        let mut buffer = [0; MESSAGE_MAX];
        for len in [
            encode_request::<GuestTrapInterface>(&trap, &mut buffer).unwrap(),
            encode_reply::<GuestTrapInterface>(&Ok(resolution.clone()), &mut buffer).unwrap(),
        ] {
            let mut bytes = buffer[..len].to_vec();
            for (at, value) in &flips {
                if let Some(byte) = bytes.get_mut(at % len) {
                    *byte ^= value;
                }
            }
            bytes.truncate(cut.min(bytes.len()));
            decode_with_every_interface(&bytes);
        }
    }

    #[test]
    fn guest_trap_messages_round_trip(
        request in guest_trap(),
        reply in prop_oneof![trap_resolution().prop_map(Ok), remote_error().prop_map(Err)],
    ) {
        round_trip::<GuestTrapInterface>(request, reply);
    }

    #[test]
    fn supervisor_messages_round_trip(
        request in supervisor_request(),
        reply in prop_oneof![supervisor_reply().prop_map(Ok), remote_error().prop_map(Err)],
    ) {
        round_trip::<SupervisorInterface>(request, reply);
    }
}
