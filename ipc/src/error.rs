//! What can go wrong with a message: locally ([`Error`]), at the server ([`RemoteError`]), in
//! the kernel ([`TransportError`]), and all of these as one call sees them ([`CallError`]).

use core::fmt;

use crate::abi::SyscallError;

/// Why bytes could not be turned into a message, or a message into bytes.
///
/// Decoding errors mean the peer sent something this build does not understand: another
/// interface's message, a truncated copy, or garbage from a faulty component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The output buffer cannot hold the encoded message. A buffer of
    /// [`MESSAGE_MAX`](crate::abi::MESSAGE_MAX) bytes always can.
    BufferTooSmall,
    /// The bytes end before the message does.
    Truncated,
    /// The bytes are not a message of this interface (an unknown variant, an overlong varint, an
    /// invalid value).
    Malformed,
    /// A complete message is followed by more bytes. Refused rather than ignored: the sender
    /// meant something else, or the length it gave is wrong.
    TrailingBytes,
    /// The value refused to be serialized. Messages defined with [`interface!`](crate::interface)
    /// never do; only a hand-written `Serialize` can.
    Unencodable,
}

impl Error {
    /// The `postcard` crate's error in these terms, for the tests that check [`codec`](crate::codec)
    /// against it.
    #[cfg(test)]
    pub(crate) fn from_postcard(error: postcard::Error) -> Self {
        use postcard::Error::*;
        match error {
            SerializeBufferFull => Error::BufferTooSmall,
            DeserializeUnexpectedEnd => Error::Truncated,
            DeserializeBadVarint
            | DeserializeBadBool
            | DeserializeBadChar
            | DeserializeBadUtf8
            | DeserializeBadOption
            | DeserializeBadEnum
            | DeserializeBadEncoding
            | DeserializeBadCrc
            | SerdeDeCustom => Error::Malformed,
            // Everything else is raised while serializing, by the value itself.
            _ => Error::Unencodable,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::BufferTooSmall => "buffer too small for the message",
            Error::Truncated => "message truncated",
            Error::Malformed => "malformed message",
            Error::TrailingBytes => "trailing bytes after the message",
            Error::Unencodable => "value cannot be encoded",
        })
    }
}

impl core::error::Error for Error {}

/// The one definition of [`RemoteError`], handed to `__ipc_type!` twice: once to define the type
/// (in this module) and once in every interface's schema, since a change here changes every
/// reply on the wire.
#[doc(hidden)]
#[macro_export]
macro_rules! __ipc_remote_error {
    (@with [$($callback:tt)*] [$($prefix:tt)*]) => {
        $($callback)*! {
            $($prefix)* enum RemoteError {
                /// The request could not be decoded (see [`Error`](crate::Error)).
                MalformedRequest,
                /// The request decoded, but the server does not implement that operation.
                UnknownOperation,
                /// The server cannot take the request now; the client may retry later.
                Busy,
                /// The server failed while serving the request.
                Internal,
            }
        }
    };
}

crate::__ipc_remote_error!(@with [crate::__ipc_type] [@define [pub] [
    /// Why a server answered with an error instead of a reply. Part of every reply on the wire
    /// ([`WireReply`](crate::WireReply)).
    #[derive(Copy, Eq)]
]]);

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteError::MalformedRequest => "server could not decode the request",
            RemoteError::UnknownOperation => "server does not implement the operation",
            RemoteError::Busy => "server busy",
            RemoteError::Internal => "server failed",
        })
    }
}

impl core::error::Error for RemoteError {}

/// The kernel refused or failed a call before a reply came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportError(pub SyscallError);

impl From<SyscallError> for TransportError {
    fn from(error: SyscallError) -> Self {
        TransportError(error)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call failed in the kernel: {}", self.0)
    }
}

impl core::error::Error for TransportError {}

/// Why [`Client::call`](crate::Client::call) has no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The request never reached the server, or its reply never came back.
    Transport(TransportError),
    /// The server answered with an error.
    Remote(RemoteError),
    /// The reply could not be decoded: the server runs another definition of the interface, or
    /// is faulty.
    Decode(Error),
    /// The request could not be encoded. Unreachable for interfaces defined with
    /// [`interface!`](crate::interface), whose requests provably fit; only a hand-written
    /// [`Interface`](crate::Interface) can get here.
    Encode(Error),
}

impl From<TransportError> for CallError {
    fn from(error: TransportError) -> Self {
        CallError::Transport(error)
    }
}

impl From<RemoteError> for CallError {
    fn from(error: RemoteError) -> Self {
        CallError::Remote(error)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(error) => error.fmt(f),
            CallError::Remote(error) => write!(f, "remote error: {error}"),
            CallError::Decode(error) => write!(f, "bad reply: {error}"),
            CallError::Encode(error) => write!(f, "bad request: {error}"),
        }
    }
}

impl core::error::Error for CallError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CallError::Transport(error) => Some(error),
            CallError::Remote(error) => Some(error),
            CallError::Decode(error) | CallError::Encode(error) => Some(error),
        }
    }
}
