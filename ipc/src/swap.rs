//! The hot-swap wire protocol: how `cargo xtask swap` hands a new component image to the
//! running hypervisor over a serial line (the board's control UART), and what it hears back.
//!
//! Every frame is `postcard(message) ‖ CRC-32(those bytes, little-endian)`, COBS-encoded and
//! ended with a `0x00` byte, so a receiver that starts listening mid-stream, or loses a byte,
//! resynchronises at the next zero and never takes a damaged frame for a good one. The sender
//! also puts a `0x00` *before* each frame, which flushes whatever half frame a receiver holds
//! (an empty frame is ignored). Postcard with COBS is DESIGN.md's choice for the serial line;
//! the CRC is postcard's own flavour over the `crc` crate (CRC-32/ISO-HDLC, the zlib one).
//!
//! Every request is answered, in order, and the tool keeps only a few chunks in flight, so
//! that a receiver polling a 16-byte FIFO is never far behind (a real UART has no flow
//! control):
//!
//! | tool sends | hypervisor answers |
//! |---|---|
//! | [`Request::Begin`] (name, region, entry, length, CRC, build id) | [`Response::Ready`] or [`Response::Refused`] |
//! | [`Request::Chunk`], in order, at most [`CHUNK_MAX`] bytes each | [`Response::Received`] (or `Refused`) |
//! | [`Request::Commit`] | [`Response::Swapped`] or [`Response::RolledBack`] (or `Refused`) |
//!
//! The chunks carry the image zlib-compressed when the header says so (the tool always does:
//! component images shrink by about half, and every byte costs the receiver two UART reads),
//! and the receiver inflates it once it has all of it; chunk offsets count the bytes sent.
//!
//! [`Request::Abort`] drops a transfer at any point. Nothing in the running system changes
//! before the hypervisor has the whole image and has checked it (length, CRC, the component's
//! name and region, its entry point).
//!
//! Decoding is fallible everywhere and never panics on any input ([`FrameDecoder`] and
//! [`decode`] are fuzzed by the tests).

use serde::{Deserialize, Serialize};

/// Most image bytes in one [`Request::Chunk`].
pub const CHUNK_MAX: usize = 192;

/// Most bytes of one frame on the wire, delimiters included: a chunk's bytes and header, the
/// CRC and COBS's overhead fit with room to spare.
pub const FRAME_MAX: usize = 256;

/// The CRC the frames and images use: CRC-32/ISO-HDLC (zlib's).
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The CRC-32 of a whole image, as [`ImageHeader::image_crc`] gives it.
pub fn image_crc(image: &[u8]) -> u32 {
    CRC.checksum(image)
}

/// A build's id: FNV-1a 64 of its image bytes, trailing zero bytes left out. The same bytes
/// give the same id on the host (where the tool computes it from the flat image) and in the
/// hypervisor (which hashes the image store, whose slot is zero-padded past the image), and log
/// lines name a running instance by it.
pub fn build_id(image: &[u8]) -> u64 {
    let len = image
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    crate::schema::fnv1a_64(&image[..len])
}

/// What the tool says about the image it is about to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHeader<'a> {
    /// The component's name in the manifest (`vm-manager`).
    pub component: &'a str,
    /// The region the image was linked for: `[start, end)`.
    pub region_start: u64,
    /// End of that region.
    pub region_end: u64,
    /// The entry point (inside the region).
    pub entry: u64,
    /// The image's length in bytes.
    pub image_len: u32,
    /// [`image_crc`] of the image.
    pub image_crc: u32,
    /// [`build_id`] of the image.
    pub build_id: u64,
    /// Whether the chunks carry the image zlib-compressed (else as it is).
    pub compressed: bool,
    /// The bytes the chunks carry: `image_len` unless compressed.
    pub sent_len: u32,
}

/// From the tool to the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// A new transfer (dropping any earlier one).
    #[serde(borrow)]
    Begin(ImageHeader<'a>),
    /// The image's bytes from `offset`: exactly where the previous chunk ended.
    Chunk {
        /// Where these bytes go in the image.
        offset: u32,
        /// At most [`CHUNK_MAX`] of them.
        bytes: &'a [u8],
    },
    /// The whole image is sent: swap it in.
    Commit,
    /// Forget the transfer.
    Abort,
}

/// From the hypervisor to the tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<'a> {
    /// The header is accepted: send the chunks.
    Ready {
        /// The build id of the instance running now.
        running_build: u64,
    },
    /// The chunk is stored; the image is received up to `next`.
    Received {
        /// The offset the next chunk starts at.
        next: u32,
    },
    /// The new image runs.
    Swapped {
        /// The old instance's build id.
        old_build: u64,
        /// The new instance's build id.
        new_build: u64,
        /// From the Commit to the new instance's acceptance of the state, in microseconds.
        micros: u64,
        /// The bytes of state the old instance handed over.
        state_len: u32,
    },
    /// The old image was restored with its state: it serves again.
    RolledBack {
        /// Why.
        #[serde(borrow)]
        reason: &'a str,
    },
    /// The request was refused; nothing in the system changed.
    Refused {
        /// Why.
        reason: &'a str,
    },
}

/// Why bytes did not make a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// More than [`FRAME_MAX`] bytes without a delimiter (they are dropped up to the next one).
    TooLong,
    /// The COBS encoding is broken.
    BadEncoding,
    /// The CRC does not match.
    BadCrc,
    /// The bytes are not a message of the expected type.
    BadMessage,
    /// The message does not fit the buffer it is encoded into.
    DoesNotFit,
}

impl FrameError {
    /// The error in a few words, for logs and [`Response::Refused`].
    pub const fn describe(self) -> &'static str {
        match self {
            Self::TooLong => "frame too long",
            Self::BadEncoding => "bad COBS encoding",
            Self::BadCrc => "bad frame CRC",
            Self::BadMessage => "not a message of this protocol",
            Self::DoesNotFit => "message does not fit a frame",
        }
    }
}

/// Encodes `message` as one frame into `buf`: a leading `0x00`, the COBS bytes, the closing
/// `0x00`. Returns the frame's bytes.
pub fn encode<'b, T: Serialize>(message: &T, buf: &'b mut [u8]) -> Result<&'b [u8], FrameError> {
    let mut body = [0u8; FRAME_MAX];
    let body = postcard::to_slice_crc32(message, &mut body, CRC.digest())
        .map_err(|_| FrameError::DoesNotFit)?;
    // A leading and a closing delimiter around the COBS bytes.
    if buf.len() < cobs::max_encoding_length(body.len()) + 2 {
        return Err(FrameError::DoesNotFit);
    }
    buf[0] = 0;
    let len = cobs::encode(body, &mut buf[1..]);
    buf[len + 1] = 0;
    Ok(&buf[..len + 2])
}

/// Decodes the bytes of one frame (between two delimiters, without them) in place.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, FrameError> {
    let len = cobs::decode_in_place(frame).map_err(|_| FrameError::BadEncoding)?;
    if len < 4 {
        return Err(FrameError::BadEncoding);
    }
    let (body, crc) = frame[..len].split_at(len - 4);
    if CRC.checksum(body).to_le_bytes() != crc {
        return Err(FrameError::BadCrc);
    }
    postcard::from_bytes(body).map_err(|_| FrameError::BadMessage)
}

/// What [`FrameDecoder::push`] made of a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Inside a frame (or between frames).
    Pending,
    /// A frame of this many bytes is complete: read it with [`FrameDecoder::take`].
    Frame(usize),
    /// The bytes since the last delimiter were dropped.
    Dropped(FrameError),
}

/// Collects frames from a byte stream, one byte at a time.
pub struct FrameDecoder {
    buf: [u8; FRAME_MAX],
    len: usize,
    /// Too many bytes without a delimiter: drop up to the next one.
    overflowed: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// Waiting for a frame.
    pub const fn new() -> Self {
        Self {
            buf: [0; FRAME_MAX],
            len: 0,
            overflowed: false,
        }
    }

    /// Takes one byte from the line.
    pub fn push(&mut self, byte: u8) -> Step {
        if byte == 0 {
            let (len, overflowed) = (self.len, self.overflowed);
            self.len = 0;
            self.overflowed = false;
            return match (overflowed, len) {
                (true, _) => Step::Dropped(FrameError::TooLong),
                (false, 0) => Step::Pending,
                (false, len) => Step::Frame(len),
            };
        }
        if self.overflowed {
            return Step::Pending;
        }
        if self.len == self.buf.len() {
            self.overflowed = true;
            return Step::Pending;
        }
        self.buf[self.len] = byte;
        self.len += 1;
        Step::Pending
    }

    /// Decodes the frame [`Step::Frame`] reported (`len` bytes).
    pub fn take<'a, T: Deserialize<'a>>(&'a mut self, len: usize) -> Result<T, FrameError> {
        let frame = self.buf.get_mut(..len).ok_or(FrameError::TooLong)?;
        decode(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> ImageHeader<'static> {
        ImageHeader {
            component: "vm-manager",
            region_start: 0x4010_0000,
            region_end: 0x4020_0000,
            entry: 0x4010_0000,
            image_len: 100_000,
            image_crc: 0xdead_beef,
            build_id: 0x0123_4567_89ab_cdef,
            compressed: true,
            sent_len: 41_000,
        }
    }

    /// Feeds `bytes` to a decoder and returns every frame it completes, decoded.
    fn frames<T: for<'a> Deserialize<'a> + Clone>(bytes: &[u8]) -> Vec<Result<T, FrameError>> {
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        for &byte in bytes {
            match decoder.push(byte) {
                Step::Pending => {}
                Step::Frame(len) => out.push(decoder.take::<T>(len)),
                Step::Dropped(error) => out.push(Err(error)),
            }
        }
        out
    }

    #[test]
    fn a_full_chunk_fits_a_frame() {
        let bytes = [0xffu8; CHUNK_MAX];
        let request = Request::Chunk {
            offset: u32::MAX,
            bytes: &bytes,
        };
        let mut buf = [0; FRAME_MAX];
        let frame = encode(&request, &mut buf).unwrap();
        assert!(frame.len() <= FRAME_MAX);
        assert_eq!(frame[0], 0);
        assert_eq!(*frame.last().unwrap(), 0);
        assert!(frame[1..frame.len() - 1].iter().all(|&byte| byte != 0));
        let mut decoder = FrameDecoder::new();
        let mut decoded = None;
        for &byte in frame {
            if let Step::Frame(len) = decoder.push(byte) {
                decoded = Some(decoder.take::<Request>(len).unwrap() == request);
            }
        }
        assert_eq!(decoded, Some(true));
    }

    #[test]
    fn every_message_round_trips() {
        let header = header();
        let requests = [
            Request::Begin(header),
            Request::Chunk {
                offset: 192,
                bytes: &[0, 1, 2, 0, 0],
            },
            Request::Commit,
            Request::Abort,
        ];
        for request in requests {
            let mut buf = [0; FRAME_MAX];
            let frame = encode(&request, &mut buf).unwrap().to_vec();
            let mut inner = frame[1..frame.len() - 1].to_vec();
            assert_eq!(decode::<Request>(&mut inner).unwrap(), request);
        }
        let responses = [
            Response::Ready { running_build: 7 },
            Response::Received { next: 384 },
            Response::Swapped {
                old_build: 1,
                new_build: 2,
                micros: 3,
                state_len: 4,
            },
            Response::RolledBack {
                reason: "the new instance refused the state",
            },
            Response::Refused {
                reason: "no component named vm-mangler",
            },
        ];
        for response in responses {
            let mut buf = [0; FRAME_MAX];
            let frame = encode(&response, &mut buf).unwrap().to_vec();
            let mut inner = frame[1..frame.len() - 1].to_vec();
            assert_eq!(decode::<Response>(&mut inner).unwrap(), response);
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_crc() {
        let mut buf = [0; FRAME_MAX];
        let frame = encode(&Request::Begin(header()), &mut buf)
            .unwrap()
            .to_vec();
        let body = frame.len() - 2;
        for position in 1..=body {
            for bit in 0..8 {
                let mut damaged = frame.clone();
                damaged[position] ^= 1 << bit;
                let decoded = frames::<OwnedRequest>(&damaged);
                // A damaged byte that became 0 splits the frame; every piece fails.
                assert!(
                    decoded.iter().all(Result::is_err),
                    "byte {position} bit {bit}: {decoded:?}"
                );
            }
        }
    }

    #[test]
    fn a_half_frame_is_flushed_by_the_next_frames_leading_zero() {
        let mut buf = [0; FRAME_MAX];
        let frame = encode(&Request::Commit, &mut buf).unwrap().to_vec();
        let mut stream = frame[..frame.len() / 2].to_vec();
        stream.extend_from_slice(&frame);
        let decoded = frames::<OwnedRequest>(&stream);
        assert_eq!(decoded.len(), 2);
        assert!(decoded[0].is_err());
        assert_eq!(decoded[1], Ok(OwnedRequest::Commit));
    }

    #[test]
    fn a_long_run_without_delimiter_is_dropped_and_the_next_frame_decodes() {
        let mut stream = vec![0x55u8; FRAME_MAX * 3];
        let mut buf = [0; FRAME_MAX];
        stream.extend_from_slice(encode(&Request::Abort, &mut buf).unwrap());
        let decoded = frames::<OwnedRequest>(&stream);
        assert_eq!(
            decoded,
            vec![Err(FrameError::TooLong), Ok(OwnedRequest::Abort)]
        );
    }

    #[test]
    fn image_checksums_are_the_usual_ones() {
        // CRC-32/ISO-HDLC's check value.
        assert_eq!(image_crc(b"123456789"), 0xcbf4_3926);
        assert_ne!(build_id(b"a"), build_id(b"b"));
        assert_eq!(
            build_id(b"ab\0\0\0"),
            build_id(b"ab"),
            "padding is not part of a build"
        );
        assert_ne!(build_id(b"a\0b"), build_id(b"ab"));
    }

    /// An owned mirror of [`Request`] for collecting decoded frames in tests.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
    enum OwnedRequest {
        Begin(OwnedHeader),
        Chunk { offset: u32, bytes: Vec<u8> },
        Commit,
        Abort,
    }

    #[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
    struct OwnedHeader {
        component: String,
        region_start: u64,
        region_end: u64,
        entry: u64,
        image_len: u32,
        image_crc: u32,
        build_id: u64,
        compressed: bool,
        sent_len: u32,
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = frames::<OwnedRequest>(&bytes);
            let mut copy = bytes.clone();
            let _ = decode::<Request>(&mut copy);
            let mut copy = bytes;
            let _ = decode::<Response>(&mut copy);
        }

        #[test]
        fn frames_survive_any_garbage_before_them(
            garbage in proptest::collection::vec(any::<u8>(), 0..600),
            offset in any::<u32>(),
            chunk in proptest::collection::vec(any::<u8>(), 0..CHUNK_MAX),
        ) {
            let request = Request::Chunk { offset, bytes: &chunk };
            let mut buf = [0; FRAME_MAX];
            let mut stream = garbage;
            stream.extend_from_slice(encode(&request, &mut buf).unwrap());
            let decoded = frames::<OwnedRequest>(&stream);
            prop_assert_eq!(
                decoded.last().cloned(),
                Some(Ok(OwnedRequest::Chunk { offset, bytes: chunk.clone() }))
            );
        }
    }
}
