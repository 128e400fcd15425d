//! A VM's console output on the machine's console: bytes an emulated UART transmits are
//! gathered into lines ([`LineBuffer`]) and each line goes out as `[<vm name>] <line>\r\n`
//! ([`format_line`]), so that the output of several VMs and the hypervisor's own log stay
//! readable when they share one UART. Pure logic, host-tested.
//!
//! A line ends at `\n`, or when [`LINE_MAX`] bytes have gathered and another one arrives (the
//! full line goes out as if it had ended there). `\r` is dropped: every line goes out ending in
//! `\r\n`, which is what a guest writing `\r\n` (Linux, the test runtime) meant, and a lone `\r`
//! (overwriting a line in place) cannot work on a console shared by prefixed lines anyway. All
//! other bytes go out as they are.

/// Bytes a line holds before it is broken.
pub const LINE_MAX: usize = 120;
/// Longest VM name in a prefix (longer names are cut; `build.rs` allows no longer ones).
pub const NAME_MAX: usize = 32;
/// Longest formatted line: `[`, the name, `] `, the line, `\r\n`.
pub const OUTPUT_MAX: usize = 1 + NAME_MAX + 2 + LINE_MAX + 2;

const _: () = assert!(OUTPUT_MAX <= hv_ipc::abi::MESSAGE_MAX);

/// The bytes of a line not yet complete.
#[derive(Clone, Debug)]
pub struct LineBuffer {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        LineBuffer {
            bytes: [0; LINE_MAX],
            len: 0,
        }
    }

    /// The bytes gathered so far.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Adds a transmitted byte; calls `emit` with each line this completes (without its line
    /// end).
    pub fn push(&mut self, byte: u8, mut emit: impl FnMut(&[u8])) {
        match byte {
            b'\r' => {}
            b'\n' => {
                emit(self.pending());
                self.len = 0;
            }
            _ => {
                if self.len == LINE_MAX {
                    emit(self.pending());
                    self.len = 0;
                }
                self.bytes[self.len] = byte;
                self.len += 1;
            }
        }
    }

    /// Starts over with `bytes` gathered (a hot-swap's hand-over); `false`, and nothing
    /// changes, if they could not have gathered: longer than a line, or holding a line end.
    pub fn restore(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > LINE_MAX || bytes.iter().any(|byte| matches!(byte, b'\r' | b'\n')) {
            return false;
        }
        self.bytes[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
        true
    }

    /// Sends what has gathered, if anything, as a line of its own (say, before the VM goes
    /// away).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if self.len > 0 {
            emit(self.pending());
            self.len = 0;
        }
    }
}

/// Writes `[<name>] <line>\r\n` into `out` and returns its length. `name` is the VM's name, or
/// `None` for a VM without one (then `vm<id>`). An empty line is just `[<name>]\r\n`.
pub fn format_line(vm: u16, name: Option<&str>, line: &[u8], out: &mut [u8; OUTPUT_MAX]) -> usize {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let take = bytes.len().min(OUTPUT_MAX - len);
        out[len..len + take].copy_from_slice(&bytes[..take]);
        len += take;
    };
    put(b"[");
    match name {
        Some(name) => put(&name.as_bytes()[..name.len().min(NAME_MAX)]),
        None => {
            put(b"vm");
            let mut digits = [0u8; 5];
            let mut n = vm;
            let mut start = digits.len();
            loop {
                start -= 1;
                digits[start] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            put(&digits[start..]);
        }
    }
    put(b"]");
    if !line.is_empty() {
        put(b" ");
        put(&line[..line.len().min(LINE_MAX)]);
    }
    put(b"\r\n");
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(buffer: &mut LineBuffer, text: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for &byte in text {
            buffer.push(byte, |line| lines.push(line.to_vec()));
        }
        lines
    }

    fn formatted(vm: u16, name: Option<&str>, line: &[u8]) -> Vec<u8> {
        let mut out = [0; OUTPUT_MAX];
        let len = format_line(vm, name, line, &mut out);
        out[..len].to_vec()
    }

    #[test]
    fn lines_end_at_newline_and_carriage_returns_are_dropped() {
        let mut buffer = LineBuffer::new();
        let lines = feed(&mut buffer, b"running 3 tests\r\ntest a ... ");
        assert_eq!(lines, [b"running 3 tests".to_vec()]);
        assert_eq!(buffer.pending(), b"test a ... ");
        let lines = feed(&mut buffer, b"ok\r\n\nx\ry");
        assert_eq!(lines, [b"test a ... ok".to_vec(), Vec::new()]);
        assert_eq!(buffer.pending(), b"xy");
    }

    #[test]
    fn full_lines_are_broken() {
        let mut buffer = LineBuffer::new();
        let long = vec![b'a'; LINE_MAX];
        // Exactly LINE_MAX bytes and a line end: one line, no break.
        let mut text = long.clone();
        text.extend_from_slice(b"\r\n");
        assert_eq!(feed(&mut buffer, &text), std::slice::from_ref(&long));
        // One more byte breaks the line before it.
        let mut text = long.clone();
        text.extend_from_slice(b"bc\n");
        assert_eq!(feed(&mut buffer, &text), [long, b"bc".to_vec()]);
        assert!(buffer.pending().is_empty());
    }

    #[test]
    fn flush_sends_a_partial_line_once() {
        let mut buffer = LineBuffer::new();
        feed(&mut buffer, b"bye");
        let mut lines = Vec::new();
        buffer.flush(|line| lines.push(line.to_vec()));
        buffer.flush(|line| lines.push(line.to_vec()));
        assert_eq!(lines, [b"bye".to_vec()]);
    }

    #[test]
    fn prefixes() {
        assert_eq!(formatted(0, Some("host"), b"hello"), b"[host] hello\r\n");
        assert_eq!(formatted(0, Some("host"), b""), b"[host]\r\n");
        assert_eq!(formatted(7, None, b"x"), b"[vm7] x\r\n");
        assert_eq!(formatted(65535, None, b"x"), b"[vm65535] x\r\n");
        assert_eq!(formatted(0, None, b""), b"[vm0]\r\n");
        // The longest name and line fit.
        let name = "n".repeat(NAME_MAX);
        let line = vec![b'l'; LINE_MAX];
        let out = formatted(1, Some(&name), &line);
        assert_eq!(out.len(), OUTPUT_MAX);
        assert!(out.ends_with(b"l\r\n"));
        // Longer names are cut.
        let long = "n".repeat(NAME_MAX + 5);
        assert_eq!(
            formatted(1, Some(&long), b"x").len(),
            1 + NAME_MAX + 2 + 1 + 2
        );
    }
}
