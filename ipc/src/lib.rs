//! The message layer between the EL2 kernel and the component tasks.
//!
//! # The model
//!
//! Components talk through the kernel in two ways (see [`abi`] for the system calls):
//!
//! - **Call/reply**, synchronous: a client sends a request on an *interface* and blocks until the
//!   server's reply. The kernel migrates the caller's time slice to the server and copies the
//!   bytes between the two components' message buffers; it never interprets them. The kernel
//!   itself is a client too: it routes guest traps to a component as calls on
//!   [`interfaces::guest_trap`].
//! - **Notifications**: bits set on a component without a payload or a reply (for example
//!   [`abi::NOTIFY_COMPONENT_FAULTED`]). They need no encoding, so this crate only names them.
//!
//! # Messages
//!
//! Every interface is defined exactly once, here, with the [`interface!`] macro: a request enum,
//! a reply enum and the types they use. Both ends link this crate, so a client and a server can
//! never disagree about a message's shape short of running different builds, and that case is
//! meant to be caught by the interface's [schema hash](Interface::SCHEMA_HASH): a hot-swapped
//! instance whose served interface's hash differs from the instance it replaces refuses the
//! swap unless it declares a migration ([`lifecycle`], docs/hot-swap.md).
//!
//! Messages are encoded with [postcard](https://docs.rs/postcard): compact (varints), `no_std`,
//! no allocation, and its `MaxSize` bound lets every interface prove at compile time that its
//! largest message fits [`abi::MESSAGE_MAX`]. The bytes are postcard's, but [`codec`] writes and
//! reads them (code the macro generates per type, checked against the `postcard` crate by the
//! tests), since postcard's serde path is too slow for the guest-trap path. On the wire:
//!
//! - a request is `postcard(Request)`;
//! - a reply is `postcard(Result<Reply, RemoteError>)` ([`WireReply`]), so a server that cannot
//!   make sense of a request still answers, with a [`RemoteError`], and the client is never left
//!   waiting or guessing.
//!
//! Bytes that arrive over IPC come from another, possibly faulty, component: decoding them is
//! fallible everywhere ([`Error`]) and never panics. A server built on [`dispatch`] (or
//! [`serve`]) answers undecodable input with [`RemoteError::MalformedRequest`].
//!
//! # Servers
//!
//! Each interface also gets a server trait from its definition, one method per request variant
//! (`SupervisorServer::ping`, `GuestTrapServer::stage2_fault`, ...). A component implements the
//! traits of the interfaces it serves and answers every call with [`dispatch`], which decodes
//! the request, calls the method and encodes its reply, and refuses calls on other interfaces
//! (see [`Dispatch`]).
//!
//! # Using it
//!
//! The helpers in this crate do not know how bytes move: a server gets a request out of its RX
//! buffer and hands the reply length to `REPLY` itself (through [`dispatch`]), and a client
//! reaches the kernel through a [`Transport`] (the component runtime's implements `CALL`),
//! wrapped in a typed [`Client`]. That keeps everything here testable on the host.
//!
//! ```
//! use hv_ipc::interfaces::supervisor::{
//!     SupervisorInterface, SupervisorReply, SupervisorRequest, SupervisorServer,
//! };
//! use hv_ipc::{abi, dispatch, Client, Transport, TransportError};
//!
//! /// A server: one method per request variant.
//! struct Supervisor;
//!
//! impl SupervisorServer for Supervisor {
//!     fn ping(&mut self, nonce: u32) -> SupervisorReply {
//!         SupervisorReply::Pong { nonce }
//!     }
//!     fn status(&mut self) -> SupervisorReply {
//!         SupervisorReply::Status { restarts: 0, components_faulted: 0 }
//!     }
//! }
//!
//! /// A transport that hands the request straight to a local server, as the kernel would.
//! struct Loopback(Supervisor);
//!
//! impl Transport for Loopback {
//!     fn call(&mut self, interface: u16, request: &[u8], reply: &mut [u8]) -> Result<usize, TransportError> {
//!         Ok(dispatch::<SupervisorInterface, _>(&mut self.0, interface, request, reply))
//!     }
//! }
//!
//! let mut client = Client::<SupervisorInterface, _>::new(Loopback(Supervisor));
//! assert_eq!(client.call(&SupervisorRequest::Ping { nonce: 7 }), Ok(SupervisorReply::Pong { nonce: 7 }));
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// First, so the macros are in textual scope for the modules below that use them.
#[macro_use]
mod macros;

pub mod abi;
pub mod addr;
mod client;
pub mod codec;
mod dispatch;
mod error;
pub mod generate;
pub mod guest_abi;
pub mod interfaces;
pub mod lifecycle;
mod schema;
pub mod swap;
mod wire;

pub use client::{Client, Transport};
#[doc(hidden)]
pub use dispatch::dispatch_interface;
pub use dispatch::{Dispatch, ServedBy, dispatch};
pub use error::{CallError, Error, RemoteError, TransportError};
pub use schema::{fnv1a_64, schema_hash};
pub use wire::{
    decode_call, decode_reply, decode_request, encode_answer, encode_reply, encode_request, refuse,
    serve, try_serve,
};

use postcard::experimental::max_size::MaxSize;
use serde::{Serialize, de::DeserializeOwned};

/// What travels back from a server: its reply, or why it has none.
pub type WireReply<R> = Result<R, RemoteError>;

/// One IPC interface: its id, its messages and the fingerprint of their definition.
///
/// Implemented by the unit struct the [`interface!`] macro defines; prefer the macro, which also
/// derives everything the messages need and computes [`SCHEMA`](Self::SCHEMA) from the
/// definition itself.
pub trait Interface {
    /// The interface id the kernel routes calls by (one of [`abi::interface`]).
    const ID: u16;
    /// How manifests and logs call the interface, kebab-case (`guest-trap`); the
    /// [`interface!`] macro refuses anything else.
    const NAME: &'static str;
    /// The interface's definition as text (documentation left out): what [`SCHEMA_HASH`]
    /// fingerprints, kept so a mismatch can be explained by printing both sides.
    ///
    /// [`SCHEMA_HASH`]: Self::SCHEMA_HASH
    const SCHEMA: &'static str;
    /// [`schema_hash`] of [`SCHEMA`](Self::SCHEMA).
    ///
    /// Meant for hot-swap (not built yet): a swap is to be refused when the new image's hash
    /// differs from its clients', since a different message definition would make the two
    /// ends decode each other's bytes as something else (postcard has no field names or type
    /// tags on the wire).
    const SCHEMA_HASH: u64;

    /// What a client sends.
    type Request: Serialize + DeserializeOwned + MaxSize + codec::Codec;
    /// What a server answers when it can serve the request.
    type Reply: Serialize + DeserializeOwned + MaxSize + codec::Codec;

    /// Upper bound of an encoded request, in bytes.
    const MAX_REQUEST: usize = <Self::Request as MaxSize>::POSTCARD_MAX_SIZE;
    /// Upper bound of an encoded reply as it travels ([`WireReply`]), in bytes.
    const MAX_REPLY: usize = <WireReply<Self::Reply> as MaxSize>::POSTCARD_MAX_SIZE;

    /// Evaluates to `()` if both messages fit a message buffer, and fails the build otherwise.
    ///
    /// The [`interface!`] macro checks it where the interface is defined; the encoding helpers
    /// check it again so a hand-written implementation cannot slip past.
    const FITS_MESSAGE: () = {
        assert!(
            Self::MAX_REQUEST <= abi::MESSAGE_MAX,
            "an interface's request can exceed abi::MESSAGE_MAX"
        );
        assert!(
            Self::MAX_REPLY <= abi::MESSAGE_MAX,
            "an interface's reply can exceed abi::MESSAGE_MAX"
        );
    };
}

/// What the [`interface!`] macro's expansion needs from outside the caller's crate.
#[doc(hidden)]
pub mod __private {
    pub use crate::macros::is_kebab_case;
    pub use postcard::experimental::max_size::MaxSize;
    pub use serde::{Deserialize, Serialize};
}
