//! The server side: from a call's bytes to a method of the component and back.
//!
//! The [`interface!`](crate::interface) macro gives every interface a server trait with one
//! method per request variant (`GuestTrapServer::smccc`, `SupervisorServer::ping`, ...) and
//! implements two traits for the interface, for every type implementing its server trait:
//!
//! - [`ServedBy`]: a decoded request to the method that serves it;
//! - [`Dispatch`]: a call on an interface id, as bytes, to the reply's bytes.
//!
//! A component then serves with [`dispatch`], naming the interfaces it serves (one, or a tuple
//! of them): a call on any other interface is refused with [`RemoteError::UnknownOperation`]
//! and undecodable bytes with [`RemoteError::MalformedRequest`], in both cases without calling
//! a method. So no component matches on interface ids or request variants by hand, and a new
//! request variant cannot be left unserved: it is a new method every server must implement, or
//! one the interface provides a default answer for (`=> method else answer`).
//!
//! A server that makes calls of its own while serving cannot lend the message buffers to
//! [`dispatch`] (its calls overwrite them); it takes the same steps one by one:
//! [`decode_call`](crate::decode_call) out of the receive buffer, [`ServedBy::serve`], then
//! [`encode_answer`](crate::encode_answer) into the transmit buffer.

use crate::{Interface, RemoteError, refuse, serve};

/// Interface `Self`'s requests can be served by an `S`: implemented by the
/// [`interface!`](crate::interface) macro for every `S` implementing the interface's server
/// trait.
pub trait ServedBy<S: ?Sized>: Interface {
    /// Calls the method of `server` that serves `request`, with the request's fields, and
    /// returns its reply.
    fn serve(server: &mut S, request: Self::Request) -> Self::Reply;
}

/// A set of interfaces `S` serves: one interface (implemented by the
/// [`interface!`](crate::interface) macro), a tuple of up to four sets, or `()` for none.
pub trait Dispatch<S: ?Sized> {
    /// Serves a call on `interface` if it is in the set: decodes `request`, calls the method,
    /// writes the reply into `reply` and returns its length. `None` if the set does not hold
    /// `interface`; then nothing was called or written.
    fn dispatch(server: &mut S, interface: u16, request: &[u8], reply: &mut [u8]) -> Option<usize>;
}

/// Serves one call on `interface` with `server`, for the interfaces of `D` (one interface or a
/// tuple of them), and returns the reply's length, for `REPLY`.
///
/// Every call gets an answer: a call on an interface outside `D` is refused with
/// [`RemoteError::UnknownOperation`], and a request that does not decode with
/// [`RemoteError::MalformedRequest`]; neither calls a method. As with [`serve`], a reply that
/// does not fit `reply` becomes [`RemoteError::Internal`], and length 0 if even that does not.
///
/// ```
/// use hv_ipc::interfaces::mmio_guard::{MmioGuardInterface, MmioGuardReply, MmioGuardServer};
/// use hv_ipc::interfaces::supervisor::{SupervisorInterface, SupervisorReply, SupervisorServer};
/// use hv_ipc::{RemoteError, abi::MESSAGE_MAX, decode_reply, dispatch};
///
/// struct Component;
///
/// impl SupervisorServer for Component {
///     fn ping(&mut self, nonce: u32) -> SupervisorReply {
///         SupervisorReply::Pong { nonce }
///     }
///     fn status(&mut self) -> SupervisorReply {
///         SupervisorReply::Status { restarts: 0, components_faulted: 0 }
///     }
/// }
///
/// impl MmioGuardServer for Component {
///     fn check(&mut self, _vm: u16, _ipa: hv_ipc::addr::Ipa, _len: u64) -> MmioGuardReply {
///         MmioGuardReply::Verdict { allowed: false, enrolled: true, cacheable: false }
///     }
/// }
///
/// // A call on an interface the component does not serve is refused.
/// let mut reply = [0; MESSAGE_MAX];
/// let len = dispatch::<(SupervisorInterface, MmioGuardInterface), _>(
///     &mut Component,
///     hv_ipc::abi::interface::GUEST_TRAP,
///     &[0],
///     &mut reply,
/// );
/// assert_eq!(
///     decode_reply::<SupervisorInterface>(&reply[..len]),
///     Ok(Err(RemoteError::UnknownOperation))
/// );
/// ```
pub fn dispatch<D: Dispatch<S>, S: ?Sized>(
    server: &mut S,
    interface: u16,
    request: &[u8],
    reply: &mut [u8],
) -> usize {
    D::dispatch(server, interface, request, reply)
        .unwrap_or_else(|| refuse(RemoteError::UnknownOperation, reply))
}

/// [`Dispatch::dispatch`] for one interface; what the [`interface!`](crate::interface) macro's
/// implementation calls.
#[doc(hidden)]
pub fn dispatch_interface<I: ServedBy<S>, S: ?Sized>(
    server: &mut S,
    interface: u16,
    request: &[u8],
    reply: &mut [u8],
) -> Option<usize> {
    (interface == I::ID).then(|| serve::<I>(request, reply, |request| I::serve(server, request)))
}

impl<S: ?Sized> Dispatch<S> for () {
    fn dispatch(_: &mut S, _: u16, _: &[u8], _: &mut [u8]) -> Option<usize> {
        None
    }
}

/// Sets as tuples: the first member that holds the interface serves the call.
macro_rules! dispatch_tuple {
    ($($member:ident),+) => {
        impl<S: ?Sized, $($member: Dispatch<S>),+> Dispatch<S> for ($($member,)+) {
            fn dispatch(
                server: &mut S,
                interface: u16,
                request: &[u8],
                reply: &mut [u8],
            ) -> Option<usize> {
                None $( .or_else(|| $member::dispatch(server, interface, request, reply)) )+
            }
        }
    };
}

dispatch_tuple!(A);
dispatch_tuple!(A, B);
dispatch_tuple!(A, B, C);
dispatch_tuple!(A, B, C, D);
