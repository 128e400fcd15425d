//! Panics: the message is formatted into a fixed buffer and sent with the PANIC system call,
//! which stops the component (the kernel reports it to the supervisor like any fault).
//!
//! The message is `PanicInfo`'s display form (`panicked at file:line:col:\nmessage`), cut at a
//! character boundary if it exceeds [`PANIC_MESSAGE_MAX`] bytes. Formatting uses no heap and no
//! atomics, so it works with the MMU off. The buffer lives on the stack, not in `__ipc_tx`,
//! so a panic while building a message does not matter.

use core::fmt;

/// Longest panic message sent to the kernel, in bytes.
pub const PANIC_MESSAGE_MAX: usize = 256;

/// A `fmt::Write` into a fixed buffer that keeps what fits and drops the rest, never splitting
/// a UTF-8 character.
pub struct FixedWriter<const N: usize> {
    buffer: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FixedWriter<N> {
    /// An empty writer.
    pub const fn new() -> Self {
        FixedWriter {
            buffer: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// What was written (valid UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    /// Whether some output did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<const N: usize> Default for FixedWriter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedWriter<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buffer[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        // Never report an error: a truncated message is better than none.
        Ok(())
    }
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    let mut message = FixedWriter::<PANIC_MESSAGE_MAX>::new();
    let _ = write!(message, "{info}");
    crate::syscall::panic(message.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn keeps_what_fits() {
        let mut w = FixedWriter::<8>::new();
        write!(w, "ab{}", 12).unwrap();
        assert_eq!(w.as_bytes(), b"ab12");
        assert!(!w.truncated());
        write!(w, "cdefgh").unwrap();
        assert_eq!(w.as_bytes(), b"ab12cdef");
        assert!(w.truncated());
    }

    #[test]
    fn never_splits_a_character() {
        let mut w = FixedWriter::<5>::new();
        write!(w, "abcdé").unwrap(); // é is two bytes: only "abcd" fits.
        assert_eq!(w.as_bytes(), b"abcd");
        assert!(core::str::from_utf8(w.as_bytes()).is_ok());
    }
}
