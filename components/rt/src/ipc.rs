//! The IPC buffers and the system calls that move messages through them.
//!
//! Every component has two message buffers the kernel finds by symbol: `__ipc_rx` (the kernel
//! writes requests and replies into it) and `__ipc_tx` (the component writes requests and
//! replies there for the kernel to copy out), each [`MESSAGE_MAX`] bytes, 16-byte aligned, in
//! `.bss`. They are defined here.
//!
//! Access goes through [`Ipc`], a token the runtime creates once and hands to the component's
//! main function. The calls that make the kernel touch the buffers (RECV, REPLY, CALL) take
//! `&mut Ipc`, and the buffer accessors borrow the token, so the borrow checker guarantees that
//! no reference into a buffer is alive while the kernel may write it. Together with the
//! component being single-threaded (one vCPU, interrupts masked) that makes the accessors safe.

use core::cell::UnsafeCell;

use hv_ipc::abi::{self, MESSAGE_MAX, SyscallError, syscall};
use hv_ipc::{CallError, Transport, TransportError};

use crate::arch;
use crate::syscall::status;

/// One message buffer: 16-byte aligned, zero-initialised (so it lands in `.bss`).
#[repr(C, align(16))]
pub(crate) struct MessageBuffer(UnsafeCell<[u8; MESSAGE_MAX]>);

// SAFETY: A component is single-threaded; all accesses go through `Ipc`, which exists once and
// whose borrows serialise them (see the module documentation).
unsafe impl Sync for MessageBuffer {}

impl MessageBuffer {
    const fn new() -> Self {
        MessageBuffer(UnsafeCell::new([0; MESSAGE_MAX]))
    }
}

/// The receive buffer (`__ipc_rx`): requests and replies the kernel delivers.
#[unsafe(export_name = "__ipc_rx")]
#[unsafe(link_section = ".ipc.rx")]
static IPC_RX: MessageBuffer = MessageBuffer::new();

/// The transmit buffer (`__ipc_tx`): requests and replies for the kernel to copy out.
#[unsafe(export_name = "__ipc_tx")]
#[unsafe(link_section = ".ipc.tx")]
static IPC_TX: MessageBuffer = MessageBuffer::new();

/// What [`Ipc::recv`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A call to serve: the request is the first `len` bytes of [`Ipc::rx`]. Answer it with
    /// [`Ipc::reply`].
    Call {
        /// The calling component's index, or [`abi::SENDER_KERNEL`] for a routed guest trap.
        sender: u64,
        /// The interface called (one of [`abi::interface`]).
        interface: u16,
        /// Request length in bytes (at most [`MESSAGE_MAX`]).
        len: usize,
        /// Notification bits set on this component since it last saw them (now cleared in the
        /// kernel), handed over with the call so that it acts on them first: a notification
        /// sent before the call was made is never seen after the call is served.
        notifications: u64,
    },
    /// Notification bits were set on this component (now cleared in the kernel).
    Notification {
        /// The bits.
        bits: u64,
    },
}

/// The component's access to its message buffers and to the message-passing system calls.
///
/// There is exactly one, created by the runtime before the component's main function and passed
/// to it. It is not `Clone`; hand out `&mut Ipc` where calls are made.
pub struct Ipc {
    _private: (),
}

impl Ipc {
    /// Creates the token.
    ///
    /// # Safety
    ///
    /// At most one `Ipc` may exist, since its methods hand out references to the buffers.
    #[cfg_attr(not(target_os = "none"), allow(dead_code))] // Made by the target entry only.
    pub(crate) unsafe fn new() -> Self {
        Ipc { _private: () }
    }

    /// The receive buffer: the request being served after [`recv`](Self::recv), or the reply
    /// after [`call`](Self::call).
    pub fn rx(&self) -> &[u8; MESSAGE_MAX] {
        // SAFETY: Single-threaded, and the kernel writes __ipc_rx only while the component is
        // blocked in RECV or CALL, which take `&mut self`: while this shared borrow of `self`
        // lives, no such call can be made, so the buffer does not change under the reference.
        // The runtime itself never writes RX.
        unsafe { &*IPC_RX.0.get() }
    }

    /// The transmit buffer, where a request (before [`call`](Self::call)) or a reply (before
    /// [`reply`](Self::reply)) is written.
    pub fn tx(&mut self) -> &mut [u8; MESSAGE_MAX] {
        // SAFETY: Single-threaded; the only references to __ipc_tx are made here and in
        // `rx_tx`, both borrowing `self` mutably, and there is one `Ipc`, so this reference is
        // unique. The kernel only reads TX, during REPLY/CALL, which also need `&mut self`.
        unsafe { &mut *IPC_TX.0.get() }
    }

    /// Both buffers at once: the request being served, and where to write the reply.
    pub fn rx_tx(&mut self) -> (&[u8; MESSAGE_MAX], &mut [u8; MESSAGE_MAX]) {
        // SAFETY: As for `rx` and `tx`: RX and TX are distinct statics, the `&mut self` borrow
        // excludes every system call that touches them and any other reference made through
        // this (unique) token.
        unsafe { (&*IPC_RX.0.get(), &mut *IPC_TX.0.get()) }
    }

    /// Waits for the next call or notification (RECV).
    ///
    /// # Panics
    ///
    /// If the kernel answers RECV with an error or an unknown kind, which its ABI rules out:
    /// the component cannot go on without a working RECV, and the panic reports it.
    pub fn recv(&mut self) -> Received {
        // SAFETY: RECV writes __ipc_rx; `&mut self` guarantees no reference to it is alive.
        let [x0, x1, x2, x3, x4] = unsafe { arch::hvc(syscall::RECV, [0; 5]) };
        match received(x0, x1, x2, x3, x4) {
            Ok(received) => received,
            Err(error) => panic!("RECV failed: {error:?}"),
        }
    }

    /// Answers the call being served with the first `len` bytes of [`tx`](Self::tx) and waits
    /// for the next call or notification (REPLY: the kernel resumes a server only with its
    /// next delivery).
    pub fn reply(&mut self, len: usize) -> Result<Received, SyscallError> {
        if len > MESSAGE_MAX {
            return Err(SyscallError::MessageTooLong);
        }
        // SAFETY: REPLY reads __ipc_tx and, when the next call arrives, the kernel writes
        // __ipc_rx; `&mut self` guarantees no reference to either is alive.
        let [x0, x1, x2, x3, x4] = unsafe { arch::hvc(syscall::REPLY, [len as u64, 0, 0, 0, 0]) };
        received(x0, x1, x2, x3, x4)
    }

    /// Calls `interface` with the first `len` bytes of [`tx`](Self::tx) as the request and
    /// blocks until the reply, which is then the first `Ok(n)` bytes of [`rx`](Self::rx) (CALL).
    pub fn call(&mut self, interface: u16, len: usize) -> Result<usize, SyscallError> {
        if len > MESSAGE_MAX {
            return Err(SyscallError::MessageTooLong);
        }
        // SAFETY: CALL reads __ipc_tx and writes __ipc_rx; `&mut self` guarantees no reference
        // to either is alive.
        let [x0, x1, ..] =
            unsafe { arch::hvc(syscall::CALL, [interface as u64, len as u64, 0, 0, 0]) };
        status(x0).map(|_| (x1 as usize).min(MESSAGE_MAX))
    }
}

/// CALL as an [`hv_ipc::Transport`]. A typed [`hv_ipc::Client`] encodes its request straight
/// into TX and decodes the reply straight out of RX ([`Transport::call_in_place`]); an untyped
/// [`Transport::call`] copies the request into TX and the reply out of RX. (`hv_ipc` implements
/// `Transport` for `&mut T` too, so `Client::new(&mut ipc)` works.)
impl Transport for Ipc {
    fn call_in_place<R>(
        &mut self,
        interface: u16,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, hv_ipc::Error>,
        decode: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, CallError> {
        let len = encode(self.tx()).map_err(CallError::Encode)?;
        let reply_len = Ipc::call(self, interface, len)
            .map_err(|error| CallError::from(TransportError(error)))?;
        // `Ipc::call` keeps the length within the buffer.
        Ok(decode(&self.rx()[..reply_len]))
    }

    fn call(
        &mut self,
        interface: u16,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError> {
        let len = request.len();
        if len > MESSAGE_MAX {
            return Err(TransportError(SyscallError::MessageTooLong));
        }
        self.tx()[..len].copy_from_slice(request);
        let reply_len = Ipc::call(self, interface, len)?;
        if reply_len > reply.len() {
            return Err(TransportError(SyscallError::MessageTooLong));
        }
        reply[..reply_len].copy_from_slice(&self.rx()[..reply_len]);
        Ok(reply_len)
    }
}

/// Decodes what RECV (or REPLY) returned. Inlined: on the server loop's path after every REPLY.
#[inline(always)]
fn received(x0: u64, x1: u64, x2: u64, x3: u64, x4: u64) -> Result<Received, SyscallError> {
    match status(x0)? {
        abi::RECV_CALL => Ok(Received::Call {
            sender: x1,
            interface: x2 as u16,
            len: (x3 as usize).min(MESSAGE_MAX),
            notifications: x4,
        }),
        abi::RECV_NOTIFICATION => Ok(Received::Notification { bits: x2 }),
        kind => panic!("RECV returned unknown kind {kind}"),
    }
}
