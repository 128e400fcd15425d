//! The client side: a [`Transport`] moves bytes to a server and back, a [`Client`] puts typed
//! messages on it.
//!
//! The split keeps the encoding testable on the host: in a component the transport is the
//! runtime's `CALL` system call; in tests it is a function.

use core::marker::PhantomData;

use crate::abi::{MESSAGE_MAX, SyscallError};
use crate::{CallError, Error, Interface, TransportError, decode_reply, encode_request};

/// Moves one call's bytes: sends `request` on `interface` and waits for the reply.
pub trait Transport {
    /// Sends `request` to whoever serves `interface`, writes the reply into `reply` and returns
    /// its length.
    fn call(
        &mut self,
        interface: u16,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError>;

    /// Makes a call whose request `encode` writes (returning its length) and whose reply
    /// `decode` reads, in buffers the transport chooses: what [`Client`] uses.
    ///
    /// By default the buffers are two [`MESSAGE_MAX`]-byte arrays on the stack around
    /// [`call`](Self::call); a transport with message buffers of its own (the component
    /// runtime's `Ipc`, whose kernel copies from and into them) lends those instead, so the
    /// request is encoded where the kernel takes it and the reply decoded where it lands,
    /// with no copy in between.
    fn call_in_place<R>(
        &mut self,
        interface: u16,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
        decode: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, CallError>
    where
        Self: Sized,
    {
        let mut request = [0; MESSAGE_MAX];
        let request_len = encode(&mut request).map_err(CallError::Encode)?;
        let request = request
            .get(..request_len)
            .ok_or(CallError::Encode(Error::BufferTooSmall))?;
        let mut reply = [0; MESSAGE_MAX];
        let reply_len = self.call(interface, request, &mut reply)?;
        // A transport claiming more than the buffer holds is broken; the kernel's word for a
        // length beyond a message buffer is MessageTooLong.
        let reply = reply
            .get(..reply_len)
            .ok_or(TransportError(SyscallError::MessageTooLong))?;
        Ok(decode(reply))
    }
}

/// A transport borrowed (`Client::new(&mut ipc)`). Only for sized transports, so that it can
/// pass [`call_in_place`](Transport::call_in_place) on.
impl<T: Transport> Transport for &mut T {
    fn call(
        &mut self,
        interface: u16,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError> {
        (**self).call(interface, request, reply)
    }

    fn call_in_place<R>(
        &mut self,
        interface: u16,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
        decode: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, CallError> {
        (**self).call_in_place(interface, encode, decode)
    }
}

/// A typed client of interface `I` over transport `T`.
pub struct Client<I: Interface, T: Transport> {
    transport: T,
    // `fn() -> I`: the client neither owns an `I` nor should inherit its auto traits.
    interface: PhantomData<fn() -> I>,
}

impl<I: Interface, T: Transport> Client<I, T> {
    /// A client that calls through `transport`.
    pub const fn new(transport: T) -> Self {
        Client {
            transport,
            interface: PhantomData,
        }
    }

    /// Calls the server with `request` and returns its reply.
    ///
    /// The request is encoded and the reply decoded in the buffers the transport lends
    /// ([`Transport::call_in_place`]).
    pub fn call(&mut self, request: &I::Request) -> Result<I::Reply, CallError> {
        self.transport
            .call_in_place(
                I::ID,
                |buffer| encode_request::<I>(request, buffer),
                |reply| decode_reply::<I>(reply),
            )?
            .map_err(CallError::Decode)?
            .map_err(CallError::Remote)
    }

    /// The transport, e.g. to make an untyped call on it.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }
}
