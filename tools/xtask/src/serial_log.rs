//! One serial line carrying two streams: the hypervisor's defmt frames (rzcobs-encoded, each
//! ending in a zero byte) and a VM's plain console text, interleaved (the Raspberry Pi 4's
//! mini-UART). [`Demux`] separates them again, live or from a capture.
//!
//! Text never holds a zero byte, so every zero ends a frame, and the bytes since the previous
//! zero are some text followed by that frame. Where the text ends is not marked: the demux
//! tries the candidate frames from the longest down (a text prefix that is printable, the rest
//! a frame), and takes the first the defmt table decodes in full. A segment no candidate of
//! decodes (a frame whose bytes another CPU's text landed in the middle of) is reported as
//! malformed, with its printable bytes kept as text so that none of the console is lost.
//!
//! With hot-swap on, the same line also carries the supervisor's answers to `cargo xtask swap`
//! (docs/hot-swap.md): COBS frames between two zeros, each ending in a CRC-32 of its message,
//! which is how they are told from log frames ([`Piece::Control`]).

/// Frames are shorter than this (the kernel's longest lines are about 200 bytes encoded): no
/// candidate longer is tried, which bounds the work on long runs of text.
const MAX_FRAME: usize = 1024;

/// What a stretch of the line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Console text.
    Text(String),
    /// A hypervisor frame, decoded.
    Frame(String),
    /// Bytes ending in a zero that no candidate frame decoded from.
    Malformed(usize),
    /// A hot-swap answer: the frame's bytes with its closing zero (a leading zero precedes it
    /// on the line, seen as an empty segment).
    Control(Vec<u8>),
}

/// Splits the byte stream into text and frames as it arrives.
#[derive(Debug, Default)]
pub struct Demux {
    /// Bytes since the last zero: text so far, maybe the start of a frame.
    pending: Vec<u8>,
}

/// Whether `byte` can be console text: printable ASCII, UTF-8 continuation and lead bytes,
/// and the control characters a console prints (tab, line feed, carriage return, escape,
/// backspace, bell).
fn text_like(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\r' | 0x1b | 0x08 | 0x07 | 0x20..=0x7e | 0x80..)
}

impl Demux {
    /// A demux with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `bytes`; returns what they complete. `decode` is given a candidate frame with
    /// its closing zero and answers its decoded line if it is one (a whole frame, nothing
    /// left over). Text is returned as soon as no frame can start in it any more, that is at
    /// each zero, and otherwise held up to [`MAX_FRAME`] bytes back (its tail may be a frame
    /// still arriving).
    pub fn push(&mut self, bytes: &[u8], decode: &dyn Fn(&[u8]) -> Option<String>) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for &byte in bytes {
            self.pending.push(byte);
            if byte == 0 {
                let segment = std::mem::take(&mut self.pending);
                split_segment(&segment, decode, &mut pieces);
            }
        }
        // Text too far back to belong to any frame can go now (a live console stays live).
        let keep = self.pending.len().min(MAX_FRAME);
        let done = self.pending.len() - keep;
        if done > 0 {
            let text: Vec<u8> = self.pending.drain(..done).collect();
            push_text(&text, &mut pieces);
        }
        pieces
    }

    /// The end of the stream: what is pending is text (a frame always ends in a zero).
    pub fn finish(self) -> Vec<Piece> {
        let mut pieces = Vec::new();
        push_text(&self.pending, &mut pieces);
        pieces
    }

    /// The pending bytes that are text for certain (printable, before anything that could
    /// start a frame), for a live console that should not wait for the next zero. They are
    /// taken out of the pending bytes.
    pub fn take_settled_text(&mut self) -> Option<String> {
        // A frame's bytes are rarely all printable; text up to the last line end that is
        // followed only by text-like bytes is settled once the line is complete. The line end
        // must be a terminal's "\r\n" (a tty's output processing writes every line so): a lone
        // 0x0a is as often a frame's first byte, read just before the rest of its frame.
        let end = self.pending.windows(2).rposition(|pair| pair == b"\r\n")? + 2;
        if !self.pending[..end].iter().all(|&byte| text_like(byte)) {
            return None;
        }
        let text: Vec<u8> = self.pending.drain(..end).collect();
        Some(String::from_utf8_lossy(&text).into_owned())
    }
}

fn push_text(text: &[u8], pieces: &mut Vec<Piece>) {
    if text.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(text).into_owned();
    match pieces.last_mut() {
        Some(Piece::Text(previous)) => previous.push_str(&text),
        _ => pieces.push(Piece::Text(text)),
    }
}

/// Splits one segment (bytes up to and including a zero) into its text and its frame.
fn split_segment(
    segment: &[u8],
    decode: &dyn Fn(&[u8]) -> Option<String>,
    pieces: &mut Vec<Piece>,
) {
    let body = segment.len() - 1;
    if body > 0 && is_control_frame(&segment[..body]) {
        pieces.push(Piece::Control(segment.to_vec()));
        return;
    }
    // The text prefix can only be text-like bytes: candidates start no later than the first
    // byte that is not, and no earlier than MAX_FRAME bytes before the zero.
    let first_binary = segment[..body]
        .iter()
        .position(|&byte| !text_like(byte))
        .unwrap_or(body);
    let earliest = body.saturating_sub(MAX_FRAME);
    for start in earliest..=first_binary.min(body.saturating_sub(1)) {
        if let Some(line) = decode(&segment[start..]) {
            push_text(&segment[..start], pieces);
            pieces.push(Piece::Frame(line));
            return;
        }
    }
    // A lone zero decodes as nothing: no frame and nothing lost.
    if body == 0 {
        return;
    }
    // Frame bytes are as often above 0x7f as not: only plain ASCII is kept as text here.
    let printable: Vec<u8> = segment[..body]
        .iter()
        .copied()
        .filter(|&byte| matches!(byte, b'\t' | b'\n' | b'\r' | 0x20..=0x7e))
        .collect();
    push_text(&printable, pieces);
    pieces.push(Piece::Malformed(segment.len()));
}

/// Whether `frame` (between its delimiters) is one of the supervisor's hot-swap answers: valid
/// COBS, its CRC-32 right and a [`hv_ipc::swap::Response`] inside. A log frame passes with a
/// chance of about 2^-32.
fn is_control_frame(frame: &[u8]) -> bool {
    let mut bytes = frame.to_vec();
    hv_ipc::swap::decode::<hv_ipc::swap::Response>(&mut bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the defmt table: a frame is 0xF5, its length plus one (never zero, as
    /// in rzcobs), that many bytes and the zero; it decodes to `frame:<bytes as hex>`.
    fn fake_decode(candidate: &[u8]) -> Option<String> {
        match candidate {
            [0xf5, len, rest @ ..] if *len > 0 && rest.len() == usize::from(*len) => {
                let (payload, zero) = rest.split_at(usize::from(*len) - 1);
                (zero == [0]).then(|| {
                    let hex: Vec<String> = payload.iter().map(|b| format!("{b:02x}")).collect();
                    format!("frame:{}", hex.join(""))
                })
            }
            _ => None,
        }
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xf5, payload.len() as u8 + 1];
        bytes.extend_from_slice(payload);
        bytes.push(0);
        bytes
    }

    fn run(chunks: &[&[u8]]) -> Vec<Piece> {
        let mut demux = Demux::new();
        let mut pieces = Vec::new();
        for chunk in chunks {
            pieces.extend(demux.push(chunk, &fake_decode));
        }
        pieces.extend(demux.finish());
        // Merge adjacent text, as a reader would see it.
        let mut merged: Vec<Piece> = Vec::new();
        for piece in pieces {
            match (merged.last_mut(), piece) {
                (Some(Piece::Text(previous)), Piece::Text(text)) => previous.push_str(&text),
                (_, piece) => merged.push(piece),
            }
        }
        merged
    }

    #[test]
    fn text_before_and_after_a_frame_is_kept() {
        let mut stream = b"Booting Linux\r\n[    0.1] pl011".to_vec();
        stream.extend(frame(&[1, 2, 3]));
        stream.extend_from_slice(b" ttyAMA0\r\n");
        assert_eq!(
            run(&[&stream]),
            [
                Piece::Text("Booting Linux\r\n[    0.1] pl011".into()),
                Piece::Frame("frame:010203".into()),
                Piece::Text(" ttyAMA0\r\n".into()),
            ]
        );
    }

    #[test]
    fn hot_swap_answers_are_told_from_log_frames() {
        let mut buffer = [0u8; 64];
        let answer =
            hv_ipc::swap::encode(&hv_ipc::swap::Response::Received { next: 7 }, &mut buffer)
                .unwrap()
                .to_vec();
        let mut stream = frame(&[1]);
        stream.extend_from_slice(&answer);
        stream.extend(frame(&[2]));
        // The answer with its closing zero; the leading zero is an empty segment.
        assert_eq!(
            run(&[&stream]),
            [
                Piece::Frame("frame:01".into()),
                Piece::Control(answer[1..].to_vec()),
                Piece::Frame("frame:02".into()),
            ]
        );
        // One bit off and it is not an answer: the log's decoder gets it (and finds nothing).
        let mut damaged = answer.clone();
        damaged[2] ^= 1;
        assert!(
            !run(&[&damaged])
                .iter()
                .any(|piece| matches!(piece, Piece::Control(_)))
        );
    }

    #[test]
    fn any_split_of_the_stream_gives_the_same_pieces() {
        let mut stream = frame(&[9]);
        stream.extend_from_slice(b"login: ");
        stream.extend(frame(&[0x41, 0x42]));
        stream.extend(frame(&[]));
        stream.extend_from_slice(b"# ");
        let whole = run(&[&stream]);
        for at in 0..stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(run(&[a, b]), whole, "split at {at}");
        }
        assert_eq!(
            whole,
            [
                Piece::Frame("frame:09".into()),
                Piece::Text("login: ".into()),
                Piece::Frame("frame:4142".into()),
                Piece::Frame("frame:".into()),
                Piece::Text("# ".into()),
            ]
        );
    }

    #[test]
    fn a_frame_broken_by_text_is_malformed_and_its_text_survives() {
        let mut broken = frame(&[0x10, 0x11, 0x12]);
        broken.splice(2..2, b"hi".iter().copied());
        let mut stream = b"ok ".to_vec();
        stream.extend(&broken);
        stream.extend(frame(&[7]));
        let pieces = run(&[&stream]);
        assert_eq!(pieces[0], Piece::Text("ok hi".into()));
        assert!(matches!(pieces[1], Piece::Malformed(_)));
        assert_eq!(pieces[2], Piece::Frame("frame:07".into()));
    }

    #[test]
    fn long_text_without_zeros_is_released_before_the_end() {
        let text = vec![b'x'; 5000];
        let mut demux = Demux::new();
        let pieces = demux.push(&text, &fake_decode);
        let released: usize = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(released, 5000 - MAX_FRAME);
        assert_eq!(demux.take_settled_text(), None, "no line end yet");
        let mut demux = Demux::new();
        demux.push(b"line one\r\nline tw", &fake_decode);
        assert_eq!(demux.take_settled_text().as_deref(), Some("line one\r\n"));
        assert_eq!(demux.finish(), [Piece::Text("line tw".into())]);
    }

    #[test]
    fn a_frame_starting_with_a_line_feed_is_not_taken_for_text() {
        // Read in two pieces, the first ending right after the frame's first byte (0x0a).
        let mut stream = b"$ ".to_vec();
        let mut body = vec![0x0a, 0x1f, 0xfa];
        body.push(0);
        stream.extend(&body);
        let decode = |candidate: &[u8]| (candidate == body.as_slice()).then(|| "frame".to_owned());
        let mut demux = Demux::new();
        let mut pieces = demux.push(&stream[..3], &decode);
        pieces.extend(demux.take_settled_text().map(Piece::Text));
        pieces.extend(demux.push(&stream[3..], &decode));
        assert_eq!(
            pieces,
            [Piece::Text("$ ".into()), Piece::Frame("frame".into())]
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x1234_5678_u32;
        let mut demux = Demux::new();
        for _ in 0..200 {
            let chunk: Vec<u8> = (0..64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state >> 24) as u8
                })
                .collect();
            demux.push(&chunk, &fake_decode);
            let _ = demux.take_settled_text();
        }
        let _ = demux.finish();
    }
}
