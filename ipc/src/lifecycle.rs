//! The lifecycle protocol: what the kernel asks a component during a hot-swap
//! (docs/hot-swap.md), on interface [`abi::interface::LIFECYCLE`](crate::abi::interface::LIFECYCLE).
//!
//! The kernel is the only sender (sender id [`abi::SENDER_KERNEL`](crate::abi::SENDER_KERNEL)):
//! a component never grants or calls it. The component runtime answers it; a component only
//! says what state it keeps ([`StateTag`] and the bytes) and whether it takes a state it is
//! handed.
//!
//! 1. The old instance is asked [`LifecycleRequest::Export`] page by page until it has handed
//!    its whole state over (postcard bytes of its own choosing, tagged with their schema
//!    hash and version), or it answers [`LifecycleReply::NotSwappable`].
//! 2. The new instance starts, and its first request is [`LifecycleRequest::Import`], again
//!    page by page; on the last page it answers [`LifecycleReply::Accepted`], or
//!    [`LifecycleReply::Refused`].
//!
//! Pages keep every message within [`MESSAGE_MAX`](crate::abi::MESSAGE_MAX); the whole state
//! is at most [`STATE_MAX`] bytes. Messages are plain postcard (serde): this is not a hot path.

use serde::{Deserialize, Serialize};

/// Most state bytes in one page.
pub const PAGE_MAX: usize = 192;

/// Most bytes of state a component can hand over.
pub const STATE_MAX: usize = 32 * 1024;

/// What a state's bytes are: the new instance compares this with what it can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTag {
    /// A hash of the state's type definition (the component's choice; `hv_ipc::schema_hash`
    /// of its text is the usual one). 0 with no state.
    pub schema: u64,
    /// The state's version (bumped by hand when the meaning changes but the shape does not).
    pub version: u32,
    /// The schema hash of the interface the component serves (0: none): a new instance whose
    /// interface differs refuses the state unless it declares a migration from this one.
    pub interface: u64,
}

/// Why a component refuses a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The state's schema or version is not one it reads.
    State,
    /// Its interface differs from the old instance's and it declares no migration.
    Interface,
}

/// From the kernel to a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleRequest<'a> {
    /// Hand over your state from byte `offset` on (the first page is `offset` 0, and is the
    /// moment to take the snapshot).
    Export {
        /// Where this page starts.
        offset: u32,
    },
    /// The state of the instance you replace, from byte `offset` on.
    Import {
        /// What the bytes are.
        tag: StateTag,
        /// The whole state's length.
        total: u32,
        /// Where this page starts.
        offset: u32,
        /// At most [`PAGE_MAX`] bytes.
        #[serde(borrow)]
        bytes: &'a [u8],
    },
}

/// From a component to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleReply<'a> {
    /// One page of the state.
    State {
        /// What the bytes are.
        tag: StateTag,
        /// The whole state's length.
        total: u32,
        /// This page: at most [`PAGE_MAX`] bytes, starting at the requested offset.
        #[serde(borrow)]
        bytes: &'a [u8],
    },
    /// The component cannot be swapped (its state cannot be handed over): nothing happens.
    NotSwappable,
    /// An import page was taken; send the next.
    More,
    /// The whole state is taken: the new instance serves from now on.
    Accepted,
    /// The state is not taken.
    Refused(Refusal),
}

/// Encodes a lifecycle message into `buf`, returning its length.
pub fn encode<T: Serialize>(message: &T, buf: &mut [u8]) -> Option<usize> {
    postcard::to_slice(message, buf)
        .ok()
        .map(|bytes| bytes.len())
}

/// Decodes a lifecycle message.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    postcard::from_bytes(bytes).ok()
}

/// A state that does not read back: short, overlong, a value out of range, or bytes left over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadState;

/// Writes a state as a sequence of postcard values, one at a time. A component's state is
/// rarely one value it could serialise at once: its large parts are written piece by piece
/// (only what differs from their reset state, say), and nothing needs a copy on its stack.
pub struct StateWriter<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl<'a> StateWriter<'a> {
    /// Writes into `out` (the runtime's hand-over buffer, [`STATE_MAX`] bytes).
    pub fn new(out: &'a mut [u8]) -> Self {
        Self { out, len: 0 }
    }

    /// Appends `value`; `None` if it does not fit.
    pub fn put<T: Serialize + ?Sized>(&mut self, value: &T) -> Option<()> {
        let rest = self.out.get_mut(self.len..)?;
        self.len += postcard::to_slice(value, rest).ok()?.len();
        Some(())
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Reads a state [`StateWriter`] wrote, value by value.
pub struct StateReader<'a>(&'a [u8]);

impl<'a> StateReader<'a> {
    /// Reads `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// Takes the next value.
    pub fn take<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, BadState> {
        let (value, rest) = postcard::take_from_bytes(self.0).map_err(|_| BadState)?;
        self.0 = rest;
        Ok(value)
    }

    /// Takes the next value, and refuses it unless `valid` holds for it.
    pub fn take_if<T: serde::de::DeserializeOwned>(
        &mut self,
        valid: impl FnOnce(&T) -> bool,
    ) -> Result<T, BadState> {
        let value = self.take()?;
        if valid(&value) {
            Ok(value)
        } else {
            Err(BadState)
        }
    }

    /// Takes the next value as bytes (a slice [`StateWriter::put`] wrote), borrowed.
    pub fn take_bytes(&mut self) -> Result<&'a [u8], BadState> {
        let (bytes, rest) = postcard::take_from_bytes::<&[u8]>(self.0).map_err(|_| BadState)?;
        self.0 = rest;
        Ok(bytes)
    }

    /// The end: every byte must have been read.
    pub fn finish(self) -> Result<(), BadState> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(BadState)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::MESSAGE_MAX;

    const TAG: StateTag = StateTag {
        schema: u64::MAX,
        version: u32::MAX,
        interface: u64::MAX,
    };

    #[test]
    fn the_largest_pages_fit_a_message() {
        let bytes = [0xff; PAGE_MAX];
        let mut buf = [0; MESSAGE_MAX];
        let request = LifecycleRequest::Import {
            tag: TAG,
            total: STATE_MAX as u32,
            offset: STATE_MAX as u32,
            bytes: &bytes,
        };
        let len = encode(&request, &mut buf).expect("fits");
        assert_eq!(decode::<LifecycleRequest>(&buf[..len]), Some(request));
        let reply = LifecycleReply::State {
            tag: TAG,
            total: STATE_MAX as u32,
            bytes: &bytes,
        };
        let len = encode(&reply, &mut buf).expect("fits");
        assert_eq!(decode::<LifecycleReply>(&buf[..len]), Some(reply));
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert_eq!(decode::<LifecycleReply>(&[0xff, 0xff]), None);
        assert_eq!(decode::<LifecycleRequest>(&[]), None);
    }

    #[test]
    fn a_state_reads_back_value_by_value_and_nothing_else_does() {
        let mut buf = [0u8; 32];
        let mut writer = StateWriter::new(&mut buf);
        writer.put(&(7u16, true)).unwrap();
        writer.put(&u64::MAX).unwrap();
        writer.put(&[1u8, 2, 3]).unwrap();
        let len = writer.len();
        let mut reader = StateReader::new(&buf[..len]);
        assert_eq!(reader.take::<(u16, bool)>(), Ok((7, true)));
        assert_eq!(reader.take_if::<u64>(|&v| v == 0), Err(BadState));
        let mut reader = StateReader::new(&buf[..len]);
        let _: (u16, bool) = reader.take().unwrap();
        let _: u64 = reader.take().unwrap();
        assert_eq!(reader.take::<[u8; 3]>(), Ok([1, 2, 3]));
        assert_eq!(reader.finish(), Ok(()));
        // A slice reads back as bytes.
        let mut line = [0u8; 8];
        let mut writer = StateWriter::new(&mut line);
        writer.put(&b"line"[..]).unwrap();
        let line_len = writer.len();
        let mut reader = StateReader::new(&line[..line_len]);
        assert_eq!(reader.take_bytes(), Ok(&b"line"[..]));
        assert_eq!(reader.finish(), Ok(()));
        // Left-over bytes and a short state are refused.
        let mut reader = StateReader::new(&buf[..len]);
        let _: (u16, bool) = reader.take().unwrap();
        assert_eq!(reader.finish(), Err(BadState));
        let mut reader = StateReader::new(&buf[..2]);
        let _: (u16, bool) = reader.take().unwrap();
        assert_eq!(reader.take::<u64>(), Err(BadState));
        // A full buffer refuses the next value.
        let mut small = [0u8; 4];
        let mut writer = StateWriter::new(&mut small);
        assert_eq!(writer.put(&u64::MAX), None);
    }
}
