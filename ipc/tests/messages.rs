//! The wire format of every interface: round trips of every message variant, sizes, schema
//! hashes (pinned), and how `serve` answers input it cannot decode.

use hv_ipc::abi::{self, MESSAGE_MAX};
use hv_ipc::addr::Ipa;
use hv_ipc::interfaces::guest_trap::{
    Conduit, GuestTrap, GuestTrapInterface, SgiRegister, TrapResolution,
};
use hv_ipc::interfaces::mem_protect::{
    MemProtectInterface, MemProtectRefusal, MemProtectReply, MemProtectRequest,
};
use hv_ipc::interfaces::mmio_guard::{MmioGuardInterface, MmioGuardReply, MmioGuardRequest};
use hv_ipc::interfaces::supervisor::{SupervisorInterface, SupervisorReply, SupervisorRequest};
use hv_ipc::interfaces::{ALL, Description};
use hv_ipc::{
    Error, Interface, RemoteError, WireReply, decode_reply, decode_request, encode_reply,
    encode_request, for_each_interface, schema_hash, serve, try_serve,
};

/// One value of every variant, with extreme field values where a field has any, so the
/// largest encodings are exercised. `variant` (an exhaustive match) makes a new variant a
/// compile error here until it gets a sample.
trait Samples: Sized {
    const VARIANTS: usize;
    fn samples() -> Vec<Self>;
    fn variant(&self) -> usize;
}

impl Samples for GuestTrap {
    const VARIANTS: usize = 4;
    fn samples() -> Vec<Self> {
        vec![
            GuestTrap::Smccc {
                vm: 0,
                vcpu: 0,
                conduit: Conduit::Hvc,
                regs: [0x8400_0000, 0, 0, 0, 0, 0, 0, 0],
            },
            GuestTrap::Smccc {
                vm: u16::MAX,
                vcpu: u16::MAX,
                conduit: Conduit::Smc,
                regs: [u64::MAX; 8],
            },
            GuestTrap::Mmio {
                vm: 0,
                vcpu: 1,
                ipa: Ipa(0x0900_0000),
                size: 4,
                write: true,
                value: 0x41,
            },
            GuestTrap::Mmio {
                vm: u16::MAX,
                vcpu: u16::MAX,
                ipa: Ipa(u64::MAX),
                size: u8::MAX,
                write: false,
                value: u64::MAX,
            },
            GuestTrap::Stage2Fault {
                vm: 0,
                vcpu: 1,
                ipa: Ipa(0x4300_0000),
                far: 0xffff_0000_1234_5000,
                write: true,
                instruction: false,
                from_el0: false,
            },
            GuestTrap::SgiWrite {
                vm: 1,
                vcpu: 7,
                register: SgiRegister::Sgi1r,
                value: 5 << 24 | 0b10,
            },
            GuestTrap::SgiWrite {
                vm: u16::MAX,
                vcpu: u16::MAX,
                register: SgiRegister::Sgi0r,
                value: u64::MAX,
            },
        ]
    }
    fn variant(&self) -> usize {
        match self {
            GuestTrap::Smccc { .. } => 0,
            GuestTrap::Mmio { .. } => 1,
            GuestTrap::Stage2Fault { .. } => 2,
            GuestTrap::SgiWrite { .. } => 3,
        }
    }
}

impl Samples for TrapResolution {
    const VARIANTS: usize = 14;
    fn samples() -> Vec<Self> {
        vec![
            TrapResolution::results([0x1_0001, 0, 0, 0]),
            TrapResolution::results([u64::MAX; 4]),
            TrapResolution::StartCpu {
                target_mpidr: 1,
                entry: 0x4008_0000,
                context: 0x4100_0000,
            },
            TrapResolution::StartCpu {
                target_mpidr: u64::MAX,
                entry: u64::MAX,
                context: u64::MAX,
            },
            TrapResolution::StopCpu,
            TrapResolution::AffinityInfo {
                target_mpidr: 0x8000_0001,
                lowest_level: 0,
            },
            TrapResolution::WaitForInterrupt,
            TrapResolution::SystemOff,
            TrapResolution::SystemReset,
            TrapResolution::InjectUndefined,
            TrapResolution::Retry,
            TrapResolution::MmioRead { value: 0 },
            TrapResolution::MmioRead { value: u64::MAX },
            TrapResolution::MmioWritten,
            TrapResolution::ExternalAbort,
            TrapResolution::Resume,
            TrapResolution::InjectHostAbort,
        ]
    }
    fn variant(&self) -> usize {
        match self {
            TrapResolution::Return { .. } => 0,
            TrapResolution::StartCpu { .. } => 1,
            TrapResolution::StopCpu => 2,
            TrapResolution::AffinityInfo { .. } => 3,
            TrapResolution::WaitForInterrupt => 4,
            TrapResolution::SystemOff => 5,
            TrapResolution::SystemReset => 6,
            TrapResolution::InjectUndefined => 7,
            TrapResolution::Retry => 8,
            TrapResolution::MmioRead { .. } => 9,
            TrapResolution::MmioWritten => 10,
            TrapResolution::ExternalAbort => 11,
            TrapResolution::Resume => 12,
            TrapResolution::InjectHostAbort => 13,
        }
    }
}

impl Samples for MmioGuardRequest {
    const VARIANTS: usize = 1;
    fn samples() -> Vec<Self> {
        vec![
            MmioGuardRequest::Check {
                vm: 1,
                ipa: Ipa(0x0900_0000),
                len: 4,
            },
            MmioGuardRequest::Check {
                vm: u16::MAX,
                ipa: Ipa(u64::MAX),
                len: u64::MAX,
            },
        ]
    }
    fn variant(&self) -> usize {
        match self {
            MmioGuardRequest::Check { .. } => 0,
        }
    }
}

impl Samples for MmioGuardReply {
    const VARIANTS: usize = 1;
    fn samples() -> Vec<Self> {
        vec![
            MmioGuardReply::Verdict {
                allowed: true,
                enrolled: false,
                cacheable: true,
            },
            MmioGuardReply::Verdict {
                allowed: false,
                enrolled: true,
                cacheable: false,
            },
        ]
    }
    fn variant(&self) -> usize {
        match self {
            MmioGuardReply::Verdict { .. } => 0,
        }
    }
}

impl Samples for MemProtectRequest {
    const VARIANTS: usize = 3;
    fn samples() -> Vec<Self> {
        vec![
            MemProtectRequest::AddMemslot {
                vm: 1,
                ipa: 0x4000_0000,
                pa: 0x7000_0000,
                size: 0x20_0000,
            },
            MemProtectRequest::AddMemslot {
                vm: u16::MAX,
                ipa: u64::MAX,
                pa: u64::MAX,
                size: u64::MAX,
            },
            MemProtectRequest::MapDevice {
                vm: 2,
                ipa: 0x0900_0000,
                pa: 0x0900_0000,
                size: 0x1000,
            },
            MemProtectRequest::WipeVm { vm: 3 },
        ]
    }
    fn variant(&self) -> usize {
        match self {
            MemProtectRequest::AddMemslot { .. } => 0,
            MemProtectRequest::MapDevice { .. } => 1,
            MemProtectRequest::WipeVm { .. } => 2,
        }
    }
}
impl Samples for MemProtectReply {
    const VARIANTS: usize = 2;
    fn samples() -> Vec<Self> {
        let mut samples = vec![
            MemProtectReply::Done { leaves: 0 },
            MemProtectReply::Done { leaves: u64::MAX },
        ];
        for reason in [
            MemProtectRefusal::NotAGuest,
            MemProtectRefusal::BadRange,
            MemProtectRefusal::NotHostOwned,
            MemProtectRefusal::Overlaps,
            MemProtectRefusal::TooManySlots,
            MemProtectRefusal::OutOfTables,
            MemProtectRefusal::WipeFailed,
        ] {
            samples.push(MemProtectReply::Refused { reason });
        }
        samples
    }
    fn variant(&self) -> usize {
        match self {
            MemProtectReply::Done { .. } => 0,
            MemProtectReply::Refused { .. } => 1,
        }
    }
}
impl Samples for SupervisorRequest {
    const VARIANTS: usize = 2;
    fn samples() -> Vec<Self> {
        vec![
            SupervisorRequest::Ping { nonce: 0 },
            SupervisorRequest::Ping { nonce: u32::MAX },
            SupervisorRequest::Status,
        ]
    }
    fn variant(&self) -> usize {
        match self {
            SupervisorRequest::Ping { .. } => 0,
            SupervisorRequest::Status => 1,
        }
    }
}

impl Samples for SupervisorReply {
    const VARIANTS: usize = 2;
    fn samples() -> Vec<Self> {
        vec![
            SupervisorReply::Pong { nonce: 0x5eed },
            SupervisorReply::Status {
                restarts: 0,
                components_faulted: 0,
            },
            SupervisorReply::Status {
                restarts: u32::MAX,
                components_faulted: u32::MAX,
            },
        ]
    }
    fn variant(&self) -> usize {
        match self {
            SupervisorReply::Pong { .. } => 0,
            SupervisorReply::Status { .. } => 1,
        }
    }
}

fn remote_errors() -> [RemoteError; 4] {
    // Exhaustive on purpose, like `Samples::variant`.
    let all = [
        RemoteError::MalformedRequest,
        RemoteError::UnknownOperation,
        RemoteError::Busy,
        RemoteError::Internal,
    ];
    for error in all {
        match error {
            RemoteError::MalformedRequest
            | RemoteError::UnknownOperation
            | RemoteError::Busy
            | RemoteError::Internal => {}
        }
    }
    all
}

fn assert_covers_every_variant<T: Samples>(samples: &[T]) {
    let mut seen = vec![false; T::VARIANTS];
    for sample in samples {
        seen[sample.variant()] = true;
    }
    assert!(seen.iter().all(|&seen| seen), "a variant has no sample");
}

/// Every request and reply (and every error in place of a reply) of `I` survives encoding and
/// decoding, within the bounds `I` claims.
fn round_trip_all<I>()
where
    I: Interface,
    I::Request: Samples + core::fmt::Debug + PartialEq,
    I::Reply: Samples + core::fmt::Debug + PartialEq,
{
    let requests = I::Request::samples();
    assert_covers_every_variant(&requests);
    for request in requests {
        let mut buffer = [0; MESSAGE_MAX];
        let len = encode_request::<I>(&request, &mut buffer).unwrap();
        assert!(len <= I::MAX_REQUEST, "{request:?} takes {len} bytes");
        assert_eq!(decode_request::<I>(&buffer[..len]), Ok(request));
    }

    let replies = I::Reply::samples();
    assert_covers_every_variant(&replies);
    let wire_replies = replies
        .into_iter()
        .map(Ok)
        .chain(remote_errors().into_iter().map(Err));
    for reply in wire_replies {
        let mut buffer = [0; MESSAGE_MAX];
        let len = encode_reply::<I>(&reply, &mut buffer).unwrap();
        assert!(len <= I::MAX_REPLY, "{reply:?} takes {len} bytes");
        assert_eq!(decode_reply::<I>(&buffer[..len]), Ok(reply));
    }
}

/// Every interface's messages, from the one list: an interface without [`Samples`] for its
/// messages does not build here.
#[test]
fn every_interfaces_messages_round_trip() {
    macro_rules! round_trip_every_interface {
        ($($interface:path),* $(,)?) => { $( round_trip_all::<$interface>(); )* };
    }
    for_each_interface!(round_trip_every_interface);
}

#[test]
fn ids_and_names_are_the_abi_and_manifest_ones() {
    assert_eq!(GuestTrapInterface::ID, abi::interface::GUEST_TRAP);
    assert_eq!(SupervisorInterface::ID, abi::interface::SUPERVISOR);
    assert_eq!(MmioGuardInterface::ID, abi::interface::MMIO_GUARD);
    assert_eq!(MemProtectInterface::ID, abi::interface::MEM_PROTECT);
    assert_eq!(GuestTrapInterface::NAME, "guest-trap");
    assert_eq!(SupervisorInterface::NAME, "supervisor");
    assert_eq!(MmioGuardInterface::NAME, "mmio-guard");
    assert_eq!(MemProtectInterface::NAME, "mem-protect");
    assert_eq!(
        ALL.iter()
            .map(|interface| interface.name)
            .collect::<Vec<_>>(),
        ["guest-trap", "supervisor", "mmio-guard", "mem-protect"]
    );
    assert_eq!(ALL[0], Description::of::<GuestTrapInterface>());
}

#[test]
fn sizes_fit_a_message_buffer() {
    macro_rules! sizes {
        ($($interface:path),* $(,)?) => {
            [$( (<$interface>::MAX_REQUEST, <$interface>::MAX_REPLY) ),*]
        };
    }
    for (max_request, max_reply) in for_each_interface!(sizes) {
        assert!(max_request <= MESSAGE_MAX);
        assert!(max_reply <= MESSAGE_MAX);
        // The reply bound covers the error a server may send instead: Err's tag and the error.
        assert!(max_reply >= 2);
    }
}

#[test]
fn encoding_into_a_short_buffer_is_an_error() {
    let request = GuestTrap::Smccc {
        vm: 1,
        vcpu: 2,
        conduit: Conduit::Hvc,
        regs: [u64::MAX; 8],
    };
    let mut buffer = [0; 8];
    assert_eq!(
        encode_request::<GuestTrapInterface>(&request, &mut buffer),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        encode_reply::<GuestTrapInterface>(&Ok(TrapResolution::Retry), &mut []),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn decoding_is_strict() {
    let mut buffer = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Ping { nonce: 300 }, &mut buffer)
            .unwrap();

    assert_eq!(
        decode_request::<SupervisorInterface>(&[]),
        Err(Error::Truncated)
    );
    assert_eq!(
        decode_request::<SupervisorInterface>(&buffer[..len - 1]),
        Err(Error::Truncated)
    );
    assert_eq!(
        decode_request::<SupervisorInterface>(&buffer[..len + 1]),
        Err(Error::TrailingBytes)
    );
    // Variant 2 does not exist.
    assert_eq!(
        decode_request::<SupervisorInterface>(&[2]),
        Err(Error::Malformed)
    );
    // A varint that never ends.
    assert_eq!(
        decode_request::<SupervisorInterface>(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Err(Error::Malformed)
    );
    // A reply is neither Ok (0) nor Err (1).
    assert_eq!(
        decode_reply::<SupervisorInterface>(&[2, 0]),
        Err(Error::Malformed)
    );
}

fn ping_handler(request: SupervisorRequest) -> SupervisorReply {
    match request {
        SupervisorRequest::Ping { nonce } => SupervisorReply::Pong { nonce },
        SupervisorRequest::Status => SupervisorReply::Status {
            restarts: 1,
            components_faulted: 2,
        },
    }
}

#[test]
fn serve_answers_a_request() {
    let mut request = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Status, &mut request).unwrap();
    let mut reply = [0; MESSAGE_MAX];
    let reply_len = serve::<SupervisorInterface>(&request[..len], &mut reply, ping_handler);
    assert_eq!(
        decode_reply::<SupervisorInterface>(&reply[..reply_len]),
        Ok(Ok(SupervisorReply::Status {
            restarts: 1,
            components_faulted: 2
        }))
    );
}

#[test]
fn serve_answers_malformed_bytes_with_malformed_request() {
    let inputs: [&[u8]; 5] = [&[], &[0xff], &[0, 0x80], &[1, 0], &[0xff; MESSAGE_MAX + 1]];
    for input in inputs {
        let mut reply = [0; MESSAGE_MAX];
        let reply_len = serve::<SupervisorInterface>(input, &mut reply, |_| {
            panic!("the handler must not see undecodable input {input:?}")
        });
        assert_eq!(
            decode_reply::<SupervisorInterface>(&reply[..reply_len]),
            Ok(Err(RemoteError::MalformedRequest)),
            "input {input:?}"
        );

        let reply_len = serve::<GuestTrapInterface>(input, &mut reply, |_| {
            panic!("the handler must not see undecodable input {input:?}")
        });
        assert_eq!(
            decode_reply::<GuestTrapInterface>(&reply[..reply_len]),
            Ok(Err(RemoteError::MalformedRequest)),
            "input {input:?}"
        );
    }
}

#[test]
fn try_serve_passes_the_handlers_error_on() {
    let mut request = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Status, &mut request).unwrap();
    let mut reply = [0; MESSAGE_MAX];
    let reply_len =
        try_serve::<SupervisorInterface>(&request[..len], &mut reply, |_| Err(RemoteError::Busy));
    assert_eq!(
        decode_reply::<SupervisorInterface>(&reply[..reply_len]),
        Ok(Err(RemoteError::Busy))
    );
}

#[test]
fn serve_into_a_short_buffer_degrades_without_panicking() {
    let mut request = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Status, &mut request).unwrap();

    // Room for an error but not for the reply: the client learns the server failed.
    let mut reply = [0; 2];
    let reply_len =
        serve::<SupervisorInterface>(&request[..len], &mut reply, |_| SupervisorReply::Status {
            restarts: u32::MAX,
            components_faulted: u32::MAX,
        });
    assert_eq!(
        decode_reply::<SupervisorInterface>(&reply[..reply_len]),
        Ok(Err(RemoteError::Internal))
    );

    // No room at all: an empty reply, which the client reads as truncated.
    let reply_len = serve::<SupervisorInterface>(&request[..len], &mut [], ping_handler);
    assert_eq!(reply_len, 0);
    assert_eq!(
        decode_reply::<SupervisorInterface>(&[]),
        Err(Error::Truncated)
    );
}

#[test]
fn schema_hashes_differ_between_interfaces() {
    for (index, first) in ALL.iter().enumerate() {
        for second in &ALL[index + 1..] {
            assert_ne!(
                first.schema_hash, second.schema_hash,
                "{first:?} {second:?}"
            );
        }
    }
    assert_ne!(GuestTrapInterface::SCHEMA, SupervisorInterface::SCHEMA);
}

#[test]
fn schema_hashes_are_the_hashes_of_the_schemas() {
    macro_rules! check {
        ($($interface:path),* $(,)?) => {
            $( assert_eq!(<$interface>::SCHEMA_HASH, schema_hash(<$interface>::SCHEMA)); )*
        };
    }
    for_each_interface!(check);
}

/// Every interface's schema hash as released. Pinned on purpose: the hash is what hot-swap is
/// to check a new image against, so a change to an interface's messages must be a decision,
/// never a side effect of an edit.
const GOLDEN_SCHEMA_HASHES: &[(&str, u64)] = &[
    ("guest-trap", 0x836d_b69d_9cc8_bff0),
    ("supervisor", 0x4522_b636_5d95_5ba2),
    ("mmio-guard", 0x56bf_446b_ba2c_67cf),
    ("mem-protect", 0x4ac1_6a1a_f1dd_fd11),
];

#[test]
fn schema_hashes_are_pinned() {
    for interface in ALL {
        let Some(&(_, golden)) = GOLDEN_SCHEMA_HASHES
            .iter()
            .find(|(name, _)| *name == interface.name)
        else {
            panic!(
                "interface `{}` has no pinned schema hash: add (\"{}\", {:#018x}) to \
                 GOLDEN_SCHEMA_HASHES",
                interface.name, interface.name, interface.schema_hash
            );
        };
        assert_eq!(
            interface.schema_hash, golden,
            "the messages of interface `{}` changed shape (schema hash {:#018x}, pinned \
             {:#018x}). Components built before and after the change cannot talk to each other, \
             and hot-swap relies on the hash to refuse swapping one for the other. If the change \
             is deliberate, update its value in GOLDEN_SCHEMA_HASHES (ipc/tests/messages.rs) in \
             the same commit.",
            interface.name, interface.schema_hash, golden
        );
    }
    for (name, _) in GOLDEN_SCHEMA_HASHES {
        assert!(
            ALL.iter().any(|interface| interface.name == *name),
            "GOLDEN_SCHEMA_HASHES pins `{name}`, which is no interface (renamed or removed?)"
        );
    }
}

#[test]
fn schemas_describe_structure_not_documentation() {
    let schema = GuestTrapInterface::SCHEMA;
    for part in [
        "guest-trap",
        "GuestTrap",
        "TrapResolution",
        "Conduit",
        "regs",
        "[u64; 8]",
        "RemoteError",
    ] {
        assert!(schema.contains(part), "{part} missing from {schema}");
    }
    assert!(!schema.contains("caller's"), "documentation in {schema}");
    assert!(!schema.contains("doc"), "documentation in {schema}");
}

/// A reply encodes as postcard's `Result`: 0 then the reply, or 1 then the error. Pinned because
/// the component runtime and the kernel both depend on it.
#[test]
fn wire_reply_layout() {
    let mut buffer = [0; MESSAGE_MAX];
    let ok: WireReply<SupervisorReply> = Ok(SupervisorReply::Pong { nonce: 5 });
    let len = encode_reply::<SupervisorInterface>(&ok, &mut buffer).unwrap();
    assert_eq!(&buffer[..len], &[0, 0, 5]);
    let err: WireReply<SupervisorReply> = Err(RemoteError::Busy);
    let len = encode_reply::<SupervisorInterface>(&err, &mut buffer).unwrap();
    assert_eq!(&buffer[..len], &[1, 2]);
}

#[test]
fn errors_display() {
    assert_eq!(Error::Malformed.to_string(), "malformed message");
    assert_eq!(RemoteError::Busy.to_string(), "server busy");
}

#[test]
fn refusing_decodes_as_the_error_on_every_interface() {
    use hv_ipc::refuse;
    let mut out = [0u8; 8];
    let len = refuse(RemoteError::UnknownOperation, &mut out);
    assert!(len > 0);
    assert_eq!(
        decode_reply::<GuestTrapInterface>(&out[..len]).unwrap(),
        Err(RemoteError::UnknownOperation)
    );
    assert_eq!(
        decode_reply::<SupervisorInterface>(&out[..len]).unwrap(),
        Err(RemoteError::UnknownOperation)
    );
    assert_eq!(
        decode_reply::<MmioGuardInterface>(&out[..len]).unwrap(),
        Err(RemoteError::UnknownOperation)
    );
    assert_eq!(refuse(RemoteError::Busy, &mut []), 0);
}
