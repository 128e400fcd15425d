//! The server loop: RECV, dispatch, REPLY, forever.
//!
//! A component that serves implements [`Server`] and hands it to [`serve_forever`]. Calls go to
//! [`Server::handle_call`] with the request (in `__ipc_rx`) and the reply buffer (`__ipc_tx`);
//! notifications go to [`Server::handle_notification`]. One type with two methods (rather than
//! two closures) lets both share the component's state mutably.
//!
//! A component does not decode requests itself: it implements the server trait of each
//! interface it serves (`hv_ipc::interfaces::supervisor::SupervisorServer`, ...) and answers in
//! `handle_call` with `hv_ipc::dispatch`, which decodes the request, calls the trait's method,
//! encodes the reply and refuses calls on interfaces outside the set:
//!
//! ```ignore
//! impl Server for Supervisor {
//!     fn handle_call(&mut self, _sender: u64, interface: u16, request: &[u8], reply: &mut [u8; MESSAGE_MAX]) -> usize {
//!         hv_ipc::dispatch::<SupervisorInterface, _>(self, interface, request, reply)
//!     }
//! }
//! ```
//!
//! While a call is being served [`Server::handle_call`] holds the buffers, so it cannot make
//! calls of its own through the [`Ipc`] token; a server that must call another component while
//! serving overrides [`Server::serve_call`], which gets the token itself. Kernel operations and
//! notifications ([`crate::syscall`]) use no buffer and are fine anywhere.

use hv_ipc::RemoteError;
use hv_ipc::abi::MESSAGE_MAX;

use crate::ipc::{Ipc, Received};
use crate::swap::SwapState;
use hv_ipc::lifecycle::{Refusal, StateTag};

/// A component's request and notification handlers.
pub trait Server {
    /// Serves one call: `request` is the message, `reply` the buffer for the answer. Returns the
    /// reply's length (values beyond [`MESSAGE_MAX`] are clamped).
    ///
    /// Every call gets a reply, even an empty one (length 0), so that the caller never waits
    /// forever; `hv_ipc::dispatch` answers every call, refusing those it cannot serve.
    ///
    /// By default refuses every call with [`RemoteError::UnknownOperation`]: right for a
    /// component that serves no interface, and for one that overrides
    /// [`serve_call`](Self::serve_call) instead.
    fn handle_call(
        &mut self,
        sender: u64,
        interface: u16,
        request: &[u8],
        reply: &mut [u8; MESSAGE_MAX],
    ) -> usize {
        let _ = (sender, interface, request);
        hv_ipc::refuse(RemoteError::UnknownOperation, reply)
    }

    /// Serves the call whose `len`-byte request is in the RX buffer and leaves the reply in the
    /// TX buffer, returning its length. By default lends the buffers to
    /// [`handle_call`](Self::handle_call); override it to make calls while serving: a call of
    /// ours writes its request into TX and its reply over RX, so decode the request out of RX
    /// first and encode the reply into TX last (`hv_ipc::decode_call`, `ServedBy::serve`,
    /// `hv_ipc::encode_answer`).
    fn serve_call(&mut self, ipc: &mut Ipc, sender: u64, interface: u16, len: usize) -> usize {
        let (rx, tx) = ipc.rx_tx();
        self.handle_call(sender, interface, &rx[..len.min(MESSAGE_MAX)], tx)
    }

    /// Handles notification `bits`. Ignores them by default.
    ///
    /// Called for bits handed over with a call too (before [`serve_call`](Self::serve_call),
    /// with the request in RX), so it may not make calls; work that needs to must be kept for
    /// [`handle_notification_alone`](Self::handle_notification_alone) or the next call.
    fn handle_notification(&mut self, bits: u64) {
        let _ = bits;
    }

    /// Handles notification `bits` that arrived on their own, between calls: no buffer is in
    /// use, so it may make calls through `ipc`. By default hands them to
    /// [`handle_notification`](Self::handle_notification).
    fn handle_notification_alone(&mut self, ipc: &mut Ipc, bits: u64) {
        let _ = ipc;
        self.handle_notification(bits);
    }

    /// What the component keeps across a hot-swap (docs/hot-swap.md). By default nothing: a
    /// new instance starts as at boot.
    fn swap_state(&self) -> SwapState {
        SwapState::Stateless
    }

    /// The schema hash of the interface it serves (`Interface::SCHEMA_HASH`; 0: none). A new
    /// instance whose hash differs from the old one's refuses the swap unless
    /// [`migrates_interface_from`](Self::migrates_interface_from) says otherwise.
    fn interface_schema(&self) -> u64 {
        0
    }

    /// Whether this build serves the clients of an older interface (schema hash `old`) too.
    fn migrates_interface_from(&self, old: u64) -> bool {
        let _ = old;
        false
    }

    /// Writes the state to hand to the next instance into `out` (postcard of the component's
    /// own type, as [`swap_state`](Self::swap_state) names it), returning its length; `None`
    /// if it does not fit (the swap is then refused, nothing changed).
    fn export_state(&mut self, out: &mut [u8]) -> Option<usize> {
        let _ = out;
        Some(0)
    }

    /// Takes the state the previous instance handed over (`tag` says what it is). Refusing
    /// rolls the swap back: the previous instance serves on with its state.
    fn import_state(&mut self, tag: StateTag, state: &[u8]) -> Result<(), Refusal> {
        let _ = tag;
        crate::swap::take_no_state(state)
    }
}

/// The runtime's hand-over buffer (`hv_ipc::lifecycle::STATE_MAX` bytes of `.bss`).
#[cfg(target_os = "none")]
static mut HANDOVER: [u8; hv_ipc::lifecycle::STATE_MAX] = [0; hv_ipc::lifecycle::STATE_MAX];

/// Bytes of state taken at the last export (the hand-over buffer keeps them between pages).
#[cfg(target_os = "none")]
static mut HANDOVER_STATE: (usize, StateTag) = (
    0,
    StateTag {
        schema: 0,
        version: 0,
        interface: 0,
    },
);

/// Answers the kernel's lifecycle request (a hot-swap step, `crate::swap`) in RX.
#[cfg(target_os = "none")]
fn serve_lifecycle(ipc: &mut Ipc, server: &mut (impl Server + ?Sized), len: usize) -> usize {
    let test = crate::config().swap_test;
    let (buffer, kept) = (&raw mut HANDOVER, &raw mut HANDOVER_STATE);
    // SAFETY: single-threaded; the buffer and its bookkeeping are only named here, and the
    // borrow ends before this function returns.
    let (buffer, kept) = unsafe { (&mut *buffer, &mut *kept) };
    let mut lifecycle = crate::swap::Lifecycle::resume(buffer, *kept);
    let (rx, tx) = ipc.rx_tx();
    let (reply_len, hook) = lifecycle.serve(server, test, &rx[..len.min(MESSAGE_MAX)], tx);
    *kept = lifecycle.kept();
    match hook {
        crate::swap::Hook::None => {}
        crate::swap::Hook::Fault => {
            defmt::warn!("swap-test: faulting before the state is taken");
            // SAFETY: deliberately reads outside the component's region (a test build): the
            // stage-2 fault that follows is what the test wants.
            unsafe { core::ptr::read_volatile(0x10 as *const u64) };
        }
        crate::swap::Hook::Hang => {
            defmt::warn!("swap-test: never answering");
            loop {
                core::hint::spin_loop();
            }
        }
        crate::swap::Hook::Stall(ms) => {
            defmt::warn!("swap-test: taking {=u64} ms to accept the state", ms);
            if let Ok((start, hz)) = crate::syscall::read_counter() {
                while crate::syscall::read_counter()
                    .is_ok_and(|(now, _)| now < start + hz * ms / 1000)
                {}
            }
        }
    }
    reply_len
}

/// Host builds serve no lifecycle requests (only the pure logic is tested there).
#[cfg(not(target_os = "none"))]
fn serve_lifecycle(_ipc: &mut Ipc, _server: &mut (impl Server + ?Sized), _len: usize) -> usize {
    0
}

/// Serves calls and notifications with `server` forever.
///
/// A REPLY the kernel refuses (say, the caller was stopped meanwhile) is logged and the loop
/// goes on: the server itself is fine.
pub fn serve_forever(ipc: &mut Ipc, server: &mut impl Server) -> ! {
    let mut next = ipc.recv();
    loop {
        next = match next {
            Received::Call {
                sender,
                interface,
                len,
                notifications,
            } => {
                if notifications != 0 {
                    server.handle_notification(notifications);
                }
                let reply_len = if interface == hv_ipc::abi::interface::LIFECYCLE
                    && sender == hv_ipc::abi::SENDER_KERNEL
                {
                    serve_lifecycle(ipc, server, len)
                } else {
                    server.serve_call(ipc, sender, interface, len)
                }
                .min(MESSAGE_MAX);
                match ipc.reply(reply_len) {
                    Ok(received) => received,
                    Err(_error) => {
                        #[cfg(target_os = "none")]
                        defmt::warn!(
                            "REPLY to {=u64} on interface {=u16} refused: {=i64}",
                            sender,
                            interface,
                            _error as i64
                        );
                        ipc.recv()
                    }
                }
            }
            Received::Notification { bits } => {
                server.handle_notification_alone(ipc, bits);
                ipc.recv()
            }
        };
    }
}
