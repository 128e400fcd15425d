//! `Client::call` over a mock transport: success, and each way a call can fail.

use hv_ipc::abi::{MESSAGE_MAX, SyscallError};
use hv_ipc::interfaces::supervisor::{SupervisorInterface, SupervisorReply, SupervisorRequest};
use hv_ipc::{
    CallError, Client, Error, Interface, RemoteError, Transport, TransportError, encode_reply,
    try_serve,
};

/// What the mock does with a call.
enum Behaviour {
    /// Serve it with the supervisor handler below.
    Serve,
    /// Serve it with a handler that refuses.
    Refuse(RemoteError),
    /// Fail in the "kernel".
    Fail(SyscallError),
    /// Reply with these bytes regardless.
    Reply(Vec<u8>),
    /// Claim a reply longer than the buffer.
    Overlong,
}

struct MockTransport {
    behaviour: Behaviour,
    calls: Vec<(u16, Vec<u8>)>,
}

impl MockTransport {
    fn new(behaviour: Behaviour) -> Self {
        MockTransport {
            behaviour,
            calls: Vec::new(),
        }
    }
}

impl Transport for MockTransport {
    fn call(
        &mut self,
        interface: u16,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError> {
        self.calls.push((interface, request.to_vec()));
        assert!(request.len() <= MESSAGE_MAX);
        match &self.behaviour {
            Behaviour::Serve => Ok(try_serve::<SupervisorInterface>(
                request,
                reply,
                |request| {
                    Ok(match request {
                        SupervisorRequest::Ping { nonce } => SupervisorReply::Pong { nonce },
                        SupervisorRequest::Status => SupervisorReply::Status {
                            restarts: 3,
                            components_faulted: 4,
                        },
                    })
                },
            )),
            Behaviour::Refuse(error) => {
                Ok(try_serve::<SupervisorInterface>(request, reply, |_| {
                    Err(*error)
                }))
            }
            Behaviour::Fail(error) => Err(TransportError(*error)),
            Behaviour::Reply(bytes) => {
                reply[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            }
            Behaviour::Overlong => Ok(reply.len() + 1),
        }
    }
}

#[test]
fn a_call_reaches_the_server_and_returns_its_reply() {
    let mut client = Client::<SupervisorInterface, _>::new(MockTransport::new(Behaviour::Serve));
    assert_eq!(
        client.call(&SupervisorRequest::Ping { nonce: 42 }),
        Ok(SupervisorReply::Pong { nonce: 42 })
    );
    assert_eq!(
        client.call(&SupervisorRequest::Status),
        Ok(SupervisorReply::Status {
            restarts: 3,
            components_faulted: 4
        })
    );
    let transport = client.into_transport();
    assert_eq!(transport.calls.len(), 2);
    assert!(
        transport
            .calls
            .iter()
            .all(|(interface, _)| *interface == SupervisorInterface::ID)
    );
    assert_eq!(transport.calls[0].1, [0, 42]);
}

#[test]
fn a_transport_error_is_reported_as_such() {
    let mut client = Client::<SupervisorInterface, _>::new(MockTransport::new(Behaviour::Fail(
        SyscallError::CalleeFaulted,
    )));
    assert_eq!(
        client.call(&SupervisorRequest::Status),
        Err(CallError::Transport(TransportError(
            SyscallError::CalleeFaulted
        )))
    );
}

#[test]
fn a_remote_error_is_reported_as_such() {
    let mut client = Client::<SupervisorInterface, _>::new(MockTransport::new(Behaviour::Refuse(
        RemoteError::UnknownOperation,
    )));
    assert_eq!(
        client.call(&SupervisorRequest::Status),
        Err(CallError::Remote(RemoteError::UnknownOperation))
    );
}

#[test]
fn an_undecodable_reply_is_a_decode_error() {
    for (bytes, error) in [
        (vec![], Error::Truncated),
        (vec![0, 7], Error::Malformed),
        (vec![1, 9], Error::Malformed),
        (vec![1, 0, 0], Error::TrailingBytes),
    ] {
        let mut client =
            Client::<SupervisorInterface, _>::new(MockTransport::new(Behaviour::Reply(bytes)));
        assert_eq!(
            client.call(&SupervisorRequest::Status),
            Err(CallError::Decode(error))
        );
    }
}

#[test]
fn a_reply_for_the_right_interface_decodes_whoever_encoded_it() {
    let mut bytes = [0; MESSAGE_MAX];
    let len = encode_reply::<SupervisorInterface>(&Err(RemoteError::Busy), &mut bytes).unwrap();
    let mut client = Client::<SupervisorInterface, _>::new(MockTransport::new(Behaviour::Reply(
        bytes[..len].to_vec(),
    )));
    assert_eq!(
        client.call(&SupervisorRequest::Status),
        Err(CallError::Remote(RemoteError::Busy))
    );
}

#[test]
fn a_transport_claiming_too_long_a_reply_is_refused() {
    let mut client = Client::<SupervisorInterface, _>::new(MockTransport::new(Behaviour::Overlong));
    assert_eq!(
        client.call(&SupervisorRequest::Status),
        Err(CallError::Transport(TransportError(
            SyscallError::MessageTooLong
        )))
    );
}

#[test]
fn a_client_works_over_a_borrowed_transport() {
    let mut transport = MockTransport::new(Behaviour::Serve);
    Client::<SupervisorInterface, _>::new(&mut transport)
        .call(&SupervisorRequest::Status)
        .unwrap();
    assert_eq!(transport.calls.len(), 1);
}

#[test]
fn call_errors_display_their_cause() {
    let error = CallError::Transport(TransportError(SyscallError::NotAllowed));
    assert_eq!(
        error.to_string(),
        "call failed in the kernel: not allowed by the manifest"
    );
    assert_eq!(
        CallError::Remote(RemoteError::MalformedRequest).to_string(),
        "remote error: server could not decode the request"
    );
}
