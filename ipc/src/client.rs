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
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn call(
        &mut self,
        interface: u16,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError> {
        (**self).call(interface, request, reply)
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
    /// Uses two [`MESSAGE_MAX`]-byte buffers on the stack.
    pub fn call(&mut self, request: &I::Request) -> Result<I::Reply, CallError> {
        let mut request_bytes = [0; MESSAGE_MAX];
        let request_len =
            encode_request::<I>(request, &mut request_bytes).map_err(CallError::Encode)?;
        let request_bytes = request_bytes
            .get(..request_len)
            .ok_or(CallError::Encode(Error::BufferTooSmall))?;

        let mut reply_bytes = [0; MESSAGE_MAX];
        let reply_len = self
            .transport
            .call(I::ID, request_bytes, &mut reply_bytes)?;
        // A transport claiming more than the buffer holds is broken; the kernel's word for a
        // length beyond a message buffer is MessageTooLong.
        let reply_bytes = reply_bytes
            .get(..reply_len)
            .ok_or(TransportError(SyscallError::MessageTooLong))?;

        decode_reply::<I>(reply_bytes)
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
