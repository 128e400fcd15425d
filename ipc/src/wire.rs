//! Encoding and decoding an interface's messages, and answering a request: the wire format,
//! independent of how the bytes move.
//!
//! A request is `postcard(I::Request)`; a reply is `postcard(Result<I::Reply, RemoteError>)`.
//! Decoding is strict: the bytes must be exactly one message, no more, no less. The bytes are
//! postcard's; [`codec`](crate::codec) writes and reads them.

use crate::codec::{self, Codec};
use crate::{Error, Interface, RemoteError, WireReply};

/// Encodes a request into `out`; returns its length.
pub fn encode_request<I: Interface>(request: &I::Request, out: &mut [u8]) -> Result<usize, Error> {
    let () = I::FITS_MESSAGE;
    encode(request, out)
}

/// Decodes a request received on interface `I`.
pub fn decode_request<I: Interface>(bytes: &[u8]) -> Result<I::Request, Error> {
    let () = I::FITS_MESSAGE;
    decode(bytes)
}

/// Encodes a reply (or the error standing in for it) into `out`; returns its length.
pub fn encode_reply<I: Interface>(
    reply: &WireReply<I::Reply>,
    out: &mut [u8],
) -> Result<usize, Error> {
    let () = I::FITS_MESSAGE;
    encode(reply, out)
}

/// Writes the reply that refuses a call with `error`, for any interface (a [`WireReply`] error
/// encodes the same whatever the reply type), e.g. a call on an interface the server does not
/// serve. Returns the reply's length, 0 if even that does not fit `out`.
pub fn refuse(error: RemoteError, out: &mut [u8]) -> usize {
    encode(&WireReply::<()>::Err(error), out).unwrap_or(0)
}

/// Decodes a reply on interface `I`: the outer `Result` says whether the bytes made sense, the
/// inner one whether the server served the request.
pub fn decode_reply<I: Interface>(bytes: &[u8]) -> Result<WireReply<I::Reply>, Error> {
    let () = I::FITS_MESSAGE;
    decode(bytes)
}

/// Serves one request: decodes it, runs `handler`, and encodes the reply into `out`; returns the
/// reply's length, for `REPLY`.
///
/// Undecodable input is answered with [`RemoteError::MalformedRequest`] without calling
/// `handler`, so the client learns what went wrong and the server goes on. See [`try_serve`] for
/// a handler that can refuse a request.
///
/// `out` should hold [`I::MAX_REPLY`](Interface::MAX_REPLY) bytes (a message buffer always
/// does). If it cannot hold the reply, the answer is [`RemoteError::Internal`]; if it cannot
/// hold even that, the length is 0, which the client reads as a truncated reply.
pub fn serve<I: Interface>(
    request: &[u8],
    out: &mut [u8],
    handler: impl FnOnce(I::Request) -> I::Reply,
) -> usize {
    try_serve::<I>(request, out, |request| Ok(handler(request)))
}

/// [`serve`] with a handler that may answer with a [`RemoteError`] instead of a reply, e.g.
/// [`RemoteError::Busy`] or [`RemoteError::UnknownOperation`].
pub fn try_serve<I: Interface>(
    request: &[u8],
    out: &mut [u8],
    handler: impl FnOnce(I::Request) -> WireReply<I::Reply>,
) -> usize {
    let reply = match decode_request::<I>(request) {
        Ok(request) => handler(request),
        Err(_) => Err(RemoteError::MalformedRequest),
    };
    encode_answer::<I>(&reply, out)
}

/// The request of a call on `interface` to a server of `I`, or the error to answer it with:
/// [`RemoteError::UnknownOperation`] if `interface` is not `I`'s, and
/// [`RemoteError::MalformedRequest`] if the bytes do not decode.
///
/// With [`encode_answer`], the two halves of [`dispatch`](crate::dispatch) for a server that
/// must reuse the message buffers while it serves (a call of its own overwrites them): the
/// decoded request owns its data, so the receive buffer is free once this returns.
pub fn decode_call<I: Interface>(interface: u16, request: &[u8]) -> WireReply<I::Request> {
    if interface != I::ID {
        return Err(RemoteError::UnknownOperation);
    }
    decode_request::<I>(request).map_err(|_| RemoteError::MalformedRequest)
}

/// Encodes the answer to a call (a reply, or the error standing in for it) into `out` and
/// returns its length, for `REPLY`: never fails. If `out` cannot hold the reply the answer is
/// [`RemoteError::Internal`]; if it cannot hold even that, the length is 0, which the client
/// reads as a truncated reply.
pub fn encode_answer<I: Interface>(answer: &WireReply<I::Reply>, out: &mut [u8]) -> usize {
    encode_reply::<I>(answer, out)
        .or_else(|_| encode_reply::<I>(&Err(RemoteError::Internal), out))
        .unwrap_or(0)
}

fn encode<T: Codec>(value: &T, out: &mut [u8]) -> Result<usize, Error> {
    codec::encode(value, out)
}

fn decode<T: Codec>(bytes: &[u8]) -> Result<T, Error> {
    codec::decode(bytes)
}
