//! The server side the `interface!` macro generates: each request reaches its method with its
//! fields, the method's reply goes back, and what cannot be served is refused without calling
//! any method.

use hv_ipc::abi::{self, MESSAGE_MAX};
use hv_ipc::addr::Ipa;
use hv_ipc::generate::{Entropy, Generate};
use hv_ipc::interfaces::guest_trap::{
    Conduit, GuestTrap, GuestTrapInterface, GuestTrapServer, SgiRegister, TrapResolution,
};
use hv_ipc::interfaces::mem_protect::{
    MemProtectInterface, MemProtectRefusal, MemProtectReply, MemProtectServer,
};
use hv_ipc::interfaces::mmio_guard::{
    MmioGuardInterface, MmioGuardReply, MmioGuardRequest, MmioGuardServer,
};
use hv_ipc::interfaces::supervisor::{
    SupervisorInterface, SupervisorReply, SupervisorRequest, SupervisorServer,
};
use hv_ipc::{
    Dispatch, Error, Interface, RemoteError, ServedBy, WireReply, decode_reply, dispatch,
    encode_request,
};

/// A method call as the recording server saw it: the method and its arguments.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Smccc(u16, u16, Conduit, [u64; 8]),
    Memslot(u16, u64, u64, u64),
    Device(u16, u64, u64, u64),
    Wipe(u16),
    Mmio(u16, u16, Ipa, u8, bool, u64),
    Stage2Fault(u16, u16, Ipa, u64, bool, bool, bool),
    SgiWrite(u16, u16, SgiRegister, u64),
    Ping(u32),
    Status,
    Check(u16, Ipa, u64),
}

/// The call each request should become: written out per variant (an exhaustive match, so a
/// new variant does not build until it is listed here).
fn expected_guest_trap(request: &GuestTrap) -> Seen {
    match request.clone() {
        GuestTrap::Smccc {
            vm,
            vcpu,
            conduit,
            regs,
        } => Seen::Smccc(vm, vcpu, conduit, regs),
        GuestTrap::Mmio {
            vm,
            vcpu,
            ipa,
            size,
            write,
            value,
        } => Seen::Mmio(vm, vcpu, ipa, size, write, value),
        GuestTrap::Stage2Fault {
            vm,
            vcpu,
            ipa,
            far,
            write,
            instruction,
            from_el0,
        } => Seen::Stage2Fault(vm, vcpu, ipa, far, write, instruction, from_el0),
        GuestTrap::SgiWrite {
            vm,
            vcpu,
            register,
            value,
        } => Seen::SgiWrite(vm, vcpu, register, value),
    }
}

fn expected_supervisor(request: &SupervisorRequest) -> Seen {
    match *request {
        SupervisorRequest::Ping { nonce } => Seen::Ping(nonce),
        SupervisorRequest::Status => Seen::Status,
    }
}

fn expected_mmio_guard(request: &MmioGuardRequest) -> Seen {
    match *request {
        MmioGuardRequest::Check { vm, ipa, len } => Seen::Check(vm, ipa, len),
    }
}

/// Serves all three interfaces, recording every method call and answering with a reply that
/// tells the methods apart.
#[derive(Default)]
struct Recorder {
    seen: Vec<Seen>,
}

impl GuestTrapServer for Recorder {
    fn smccc(&mut self, vm: u16, vcpu: u16, conduit: Conduit, regs: [u64; 8]) -> TrapResolution {
        self.seen.push(Seen::Smccc(vm, vcpu, conduit, regs));
        TrapResolution::results([regs[0], 1, 0, 0])
    }

    fn mmio(
        &mut self,
        vm: u16,
        vcpu: u16,
        ipa: Ipa,
        size: u8,
        write: bool,
        value: u64,
    ) -> TrapResolution {
        self.seen
            .push(Seen::Mmio(vm, vcpu, ipa, size, write, value));
        TrapResolution::MmioRead { value: ipa.0 }
    }

    fn stage2_fault(
        &mut self,
        vm: u16,
        vcpu: u16,
        ipa: Ipa,
        far: u64,
        write: bool,
        instruction: bool,
        from_el0: bool,
    ) -> TrapResolution {
        self.seen.push(Seen::Stage2Fault(
            vm,
            vcpu,
            ipa,
            far,
            write,
            instruction,
            from_el0,
        ));
        TrapResolution::Resume
    }

    fn sgi_write(
        &mut self,
        vm: u16,
        vcpu: u16,
        register: SgiRegister,
        value: u64,
    ) -> TrapResolution {
        self.seen.push(Seen::SgiWrite(vm, vcpu, register, value));
        TrapResolution::MmioWritten
    }
}

impl SupervisorServer for Recorder {
    fn ping(&mut self, nonce: u32) -> SupervisorReply {
        self.seen.push(Seen::Ping(nonce));
        SupervisorReply::Pong { nonce }
    }

    fn status(&mut self) -> SupervisorReply {
        self.seen.push(Seen::Status);
        SupervisorReply::Status {
            restarts: 3,
            components_faulted: 4,
        }
    }
}

impl MemProtectServer for Recorder {
    fn add_memslot(&mut self, vm: u16, ipa: u64, pa: u64, size: u64) -> MemProtectReply {
        self.seen.push(Seen::Memslot(vm, ipa, pa, size));
        MemProtectReply::Done { leaves: size >> 21 }
    }

    fn map_device(&mut self, vm: u16, ipa: u64, pa: u64, size: u64) -> MemProtectReply {
        self.seen.push(Seen::Device(vm, ipa, pa, size));
        MemProtectReply::Done { leaves: 1 }
    }

    fn wipe_vm(&mut self, vm: u16) -> MemProtectReply {
        self.seen.push(Seen::Wipe(vm));
        MemProtectReply::Refused {
            reason: MemProtectRefusal::WipeFailed,
        }
    }
}

impl MmioGuardServer for Recorder {
    fn check(&mut self, vm: u16, ipa: Ipa, len: u64) -> MmioGuardReply {
        self.seen.push(Seen::Check(vm, ipa, len));
        MmioGuardReply::Verdict {
            allowed: len <= 8,
            enrolled: vm == 1,
            cacheable: false,
        }
    }
}

/// Everything the recorder serves.
type Everything = (
    GuestTrapInterface,
    SupervisorInterface,
    MmioGuardInterface,
    MemProtectInterface,
);

/// Sends `request` on `I` through `dispatch` over the set `D`; returns the decoded answer.
fn call<I: Interface, D: Dispatch<Recorder>>(
    server: &mut Recorder,
    request: &I::Request,
) -> WireReply<I::Reply> {
    let mut request_bytes = [0; MESSAGE_MAX];
    let len = encode_request::<I>(request, &mut request_bytes).unwrap();
    let mut reply = [0; MESSAGE_MAX];
    let reply_len = dispatch::<D, _>(server, I::ID, &request_bytes[..len], &mut reply);
    decode_reply::<I>(&reply[..reply_len]).expect("dispatch's reply must decode")
}

/// Every variant of `I`'s requests (with fields from `entropy`) reaches the method `expected`
/// names, with its fields, and the method's reply (what `ServedBy` returns) comes back.
fn every_request_reaches_its_method<I>(expected: fn(&I::Request) -> Seen, entropy: &[u64])
where
    I: Interface + ServedBy<Recorder>,
    I::Request: Generate + Clone,
    I::Reply: PartialEq + core::fmt::Debug,
{
    let mut entropy = Entropy::new(entropy);
    for variant in 0..I::Request::VARIANTS {
        let request = I::Request::generate(variant, &mut entropy);
        let mut server = Recorder::default();
        let answer = call::<I, Everything>(&mut server, &request);
        assert_eq!(server.seen, [expected(&request)], "variant {variant}");

        let mut direct = Recorder::default();
        let reply = I::serve(&mut direct, request.clone());
        assert_eq!(answer, Ok(reply));
        assert_eq!(direct.seen, server.seen);
    }
}

#[test]
fn every_request_of_every_interface_reaches_its_method() {
    for entropy in [&[0][..], &[u64::MAX], &[1, 2, 3, 0x8000_0000_0000_0001]] {
        every_request_reaches_its_method::<GuestTrapInterface>(expected_guest_trap, entropy);
        every_request_reaches_its_method::<SupervisorInterface>(expected_supervisor, entropy);
        every_request_reaches_its_method::<MmioGuardInterface>(expected_mmio_guard, entropy);
    }
}

#[test]
fn replies_are_the_methods() {
    let mut server = Recorder::default();
    assert_eq!(
        call::<SupervisorInterface, Everything>(&mut server, &SupervisorRequest::Status),
        Ok(SupervisorReply::Status {
            restarts: 3,
            components_faulted: 4
        })
    );
    assert_eq!(
        call::<MmioGuardInterface, Everything>(
            &mut server,
            &MmioGuardRequest::Check {
                vm: 1,
                ipa: Ipa(0x900_0000),
                len: 4
            }
        ),
        Ok(MmioGuardReply::Verdict {
            allowed: true,
            enrolled: true,
            cacheable: false
        })
    );
    assert_eq!(
        server.seen,
        [Seen::Status, Seen::Check(1, Ipa(0x900_0000), 4)]
    );
}

#[test]
fn a_set_serves_each_of_its_interfaces_whatever_the_order() {
    let ping = SupervisorRequest::Ping { nonce: 9 };
    let mut server = Recorder::default();
    let pong = Ok(SupervisorReply::Pong { nonce: 9 });
    assert_eq!(
        call::<SupervisorInterface, SupervisorInterface>(&mut server, &ping),
        pong
    );
    assert_eq!(
        call::<SupervisorInterface, (SupervisorInterface,)>(&mut server, &ping),
        pong
    );
    assert_eq!(
        call::<SupervisorInterface, (MmioGuardInterface, SupervisorInterface)>(&mut server, &ping),
        pong
    );
    assert_eq!(
        call::<
            SupervisorInterface,
            (
                GuestTrapInterface,
                MmioGuardInterface,
                (SupervisorInterface,)
            ),
        >(&mut server, &ping),
        pong
    );
    assert_eq!(server.seen, vec![Seen::Ping(9); 4]);
}

/// Answers `bytes` on `interface` with the set `D`; returns what the client decodes (as any
/// interface would: a refusal reads the same on all) and what the server saw.
fn refusal<D: Dispatch<Recorder>>(interface: u16, bytes: &[u8]) -> (WireReply<()>, Vec<Seen>) {
    let mut server = Recorder::default();
    let mut reply = [0; MESSAGE_MAX];
    let len = dispatch::<D, _>(&mut server, interface, bytes, &mut reply);
    let answer = decode_reply::<SupervisorInterface>(&reply[..len])
        .expect("a refusal must decode")
        .map(|_| ());
    (answer, server.seen)
}

#[test]
fn calls_on_other_interfaces_are_refused_without_calling_a_method() {
    let mut status = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Status, &mut status).unwrap();
    let status = &status[..len];
    let refused = (Err(RemoteError::UnknownOperation), vec![]);

    // A valid request, but on an interface the set does not hold.
    assert_eq!(
        refusal::<(GuestTrapInterface, MmioGuardInterface)>(abi::interface::SUPERVISOR, status),
        refused
    );
    assert_eq!(
        refusal::<GuestTrapInterface>(abi::interface::SUPERVISOR, status),
        refused
    );
    // An id no interface has.
    assert_eq!(refusal::<Everything>(0x7777, status), refused);
    assert_eq!(refusal::<Everything>(0, status), refused);
    // The empty set serves nothing.
    assert_eq!(refusal::<()>(abi::interface::SUPERVISOR, status), refused);
}

#[test]
fn undecodable_requests_are_refused_without_calling_a_method() {
    let inputs: [&[u8]; 6] = [
        &[],
        &[0xff],
        &[0, 0x80],
        &[1, 0],
        &[2],
        &[0xff; MESSAGE_MAX + 1],
    ];
    let refused = (Err(RemoteError::MalformedRequest), vec![]);
    for input in inputs {
        for interface in hv_ipc::interfaces::ALL {
            assert_eq!(
                refusal::<Everything>(interface.id, input),
                refused,
                "{input:?} on {}",
                interface.name
            );
        }
    }
    // A request of one interface sent on another: the bytes are checked against the interface
    // the call names.
    let mut check = [0; MESSAGE_MAX];
    let len = encode_request::<MmioGuardInterface>(
        &MmioGuardRequest::Check {
            vm: 1,
            ipa: Ipa(u64::MAX),
            len: 8,
        },
        &mut check,
    )
    .unwrap();
    assert_eq!(
        refusal::<Everything>(abi::interface::SUPERVISOR, &check[..len]),
        refused
    );
}

#[test]
fn a_reply_that_does_not_fit_degrades_without_panicking() {
    let mut request = [0; MESSAGE_MAX];
    let len = encode_request::<GuestTrapInterface>(
        &GuestTrap::Smccc {
            vm: 0,
            vcpu: 0,
            conduit: Conduit::Hvc,
            regs: [u64::MAX; 8],
        },
        &mut request,
    )
    .unwrap();

    // Room for an error but not for the reply: the client learns the server failed.
    let mut server = Recorder::default();
    let mut reply = [0; 2];
    let reply_len = dispatch::<Everything, _>(
        &mut server,
        abi::interface::GUEST_TRAP,
        &request[..len],
        &mut reply,
    );
    assert_eq!(
        decode_reply::<GuestTrapInterface>(&reply[..reply_len]),
        Ok(Err(RemoteError::Internal))
    );
    assert_eq!(server.seen.len(), 1);

    // No room at all: an empty reply, which the client reads as truncated.
    let reply_len = dispatch::<Everything, _>(
        &mut server,
        abi::interface::GUEST_TRAP,
        &request[..len],
        &mut [],
    );
    assert_eq!(reply_len, 0);
    assert_eq!(
        decode_reply::<GuestTrapInterface>(&[]),
        Err(Error::Truncated)
    );
    // And refusing an unknown interface into no room at all.
    assert_eq!(
        dispatch::<Everything, _>(&mut server, 0x7777, &request[..len], &mut []),
        0
    );
}

/// A server can be a borrowed wrapper (e.g. around the component's state and its IPC token):
/// the traits are implemented for unsized and borrowed servers alike.
#[test]
fn servers_can_be_trait_objects() {
    let mut recorder = Recorder::default();
    let server: &mut dyn SupervisorServer = &mut recorder;
    let mut request = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Ping { nonce: 5 }, &mut request)
            .unwrap();
    let mut reply = [0; MESSAGE_MAX];
    let reply_len = dispatch::<SupervisorInterface, dyn SupervisorServer>(
        server,
        abi::interface::SUPERVISOR,
        &request[..len],
        &mut reply,
    );
    assert_eq!(
        decode_reply::<SupervisorInterface>(&reply[..reply_len]),
        Ok(Ok(SupervisorReply::Pong { nonce: 5 }))
    );
    assert_eq!(recorder.seen, [Seen::Ping(5)]);
}

/// The step-by-step form, for a server that reuses the message buffers while it serves: the
/// same answers as `dispatch`.
#[test]
fn decode_call_and_encode_answer_are_dispatch_in_two_halves() {
    let mut bytes = [0; MESSAGE_MAX];
    let len =
        encode_request::<SupervisorInterface>(&SupervisorRequest::Ping { nonce: 11 }, &mut bytes)
            .unwrap();
    let request = &bytes[..len];

    let call = hv_ipc::decode_call::<SupervisorInterface>(abi::interface::SUPERVISOR, request);
    assert_eq!(call, Ok(SupervisorRequest::Ping { nonce: 11 }));
    let mut server = Recorder::default();
    let answer = call.map(|request| SupervisorInterface::serve(&mut server, request));
    let mut reply = [0; MESSAGE_MAX];
    let reply_len = hv_ipc::encode_answer::<SupervisorInterface>(&answer, &mut reply);
    let mut dispatched = [0; MESSAGE_MAX];
    let dispatched_len = dispatch::<SupervisorInterface, _>(
        &mut Recorder::default(),
        abi::interface::SUPERVISOR,
        request,
        &mut dispatched,
    );
    assert_eq!(reply[..reply_len], dispatched[..dispatched_len]);
    assert_eq!(server.seen, [Seen::Ping(11)]);

    assert_eq!(
        hv_ipc::decode_call::<SupervisorInterface>(abi::interface::GUEST_TRAP, request),
        Err(RemoteError::UnknownOperation)
    );
    assert_eq!(
        hv_ipc::decode_call::<SupervisorInterface>(abi::interface::SUPERVISOR, &[7]),
        Err(RemoteError::MalformedRequest)
    );
    // An answer that does not fit: Internal, then nothing.
    let status = Ok(SupervisorReply::Status {
        restarts: u32::MAX,
        components_faulted: u32::MAX,
    });
    let len = hv_ipc::encode_answer::<SupervisorInterface>(&status, &mut reply[..2]);
    assert_eq!(
        decode_reply::<SupervisorInterface>(&reply[..len]),
        Ok(Err(RemoteError::Internal))
    );
    assert_eq!(
        hv_ipc::encode_answer::<SupervisorInterface>(&status, &mut []),
        0
    );
}

/// A server for SMCCC calls only: `mmio` and `stage2_fault` keep the answers the interface
/// provides (what the hardware does for an access nothing serves).
struct SmcccOnly;

impl GuestTrapServer for SmcccOnly {
    fn smccc(&mut self, _vm: u16, _vcpu: u16, _conduit: Conduit, regs: [u64; 8]) -> TrapResolution {
        TrapResolution::results([regs[1], 0, 0, 0])
    }
}

#[test]
fn requests_a_server_does_not_take_get_the_interfaces_default_answers() {
    let serve = |request: &GuestTrap| {
        let mut bytes = [0; MESSAGE_MAX];
        let len = encode_request::<GuestTrapInterface>(request, &mut bytes).unwrap();
        let mut reply = [0; MESSAGE_MAX];
        let reply_len = dispatch::<GuestTrapInterface, _>(
            &mut SmcccOnly,
            abi::interface::GUEST_TRAP,
            &bytes[..len],
            &mut reply,
        );
        decode_reply::<GuestTrapInterface>(&reply[..reply_len]).unwrap()
    };
    let smccc = GuestTrap::Smccc {
        vm: 0,
        vcpu: 0,
        conduit: Conduit::Hvc,
        regs: [0, 7, 0, 0, 0, 0, 0, 0],
    };
    assert_eq!(serve(&smccc), Ok(TrapResolution::results([7, 0, 0, 0])));
    let mmio = GuestTrap::Mmio {
        vm: 0,
        vcpu: 0,
        ipa: Ipa(0x900_0000),
        size: 4,
        write: false,
        value: 0,
    };
    assert_eq!(serve(&mmio), Ok(TrapResolution::ExternalAbort));
    let fault = GuestTrap::Stage2Fault {
        vm: 0,
        vcpu: 0,
        ipa: Ipa(0x4000_0000),
        far: 0,
        write: false,
        instruction: true,
        from_el0: false,
    };
    assert_eq!(serve(&fault), Ok(TrapResolution::InjectHostAbort));
    let sgi = GuestTrap::SgiWrite {
        vm: 1,
        vcpu: 0,
        register: SgiRegister::Sgi1r,
        value: 5 << 24 | 0b10,
    };
    assert_eq!(serve(&sgi), Ok(TrapResolution::InjectUndefined));
}
