//! The supervisor's side of a hot-swap transfer ([`hv_ipc::swap`]): what to answer each request
//! from the control UART, where the image's bytes go, and when a received image becomes an
//! order for the kernel's `SWAP` ([`kernel_op::SWAP`]).
//!
//! Pure logic over a staging buffer the supervisor owns, so it is tested on the host. Nothing
//! in the running system changes before a `Commit` finds every byte received in order, and the
//! image's CRC and build id equal to those its header announced; only then does
//! [`Receiver::handle`] give a [`SwapOrder`]. From then until [`Receiver::finished`] the staged
//! image is the kernel's to read: no request and no broken frame touches it.

use hv_ipc::abi::{SwapOutcome, kernel_op};
use hv_ipc::swap::{CHUNK_MAX, FrameError, ImageHeader, Request, Response, build_id, image_crc};

/// SWAP carries the entry offset in x3's top 24 bits.
const ENTRY_OFFSET_LIMIT: u64 = 1 << 24;

const UNDER_WAY: &str = "a swap is under way";
const NO_TRANSFER: &str = "no transfer under way";
const ALREADY_RUNS: &str = "this build already runs";

/// A component a transfer may replace, where the configuration placed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Its name in the manifest.
    pub name: &'a str,
    /// Its region: `[region_start, region_end)`.
    pub region_start: u64,
    /// End of its region.
    pub region_end: u64,
}

/// A committed image, for the kernel's SWAP: the image is [`Receiver::image`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapOrder {
    /// The component to replace.
    pub index: usize,
    /// The image's length in bytes.
    pub image_len: u32,
    /// The entry point, in bytes from the region's start.
    pub entry_offset: u32,
    /// The new image's build id.
    pub build_id: u64,
    /// The build id of the instance running at the commit.
    pub old_build: u64,
}

impl SwapOrder {
    /// SWAP's x3 (x2 is the address of [`Receiver::image`]).
    pub const fn args(&self) -> u64 {
        // Begin accepted only indices below 256 and offsets below 2^24.
        kernel_op::swap_args(self.index as u8, self.image_len, self.entry_offset)
    }
}

/// What to do about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this response.
    Reply(Response<'static>),
    /// Ask the kernel for this swap; the response waits for its outcome ([`final_response`]).
    Swap(SwapOrder),
    /// Nothing to answer: a broken frame while no transfer is under way (line noise, or the
    /// rest of a frame whose sender hung up). Answered, it would reach the next tool as the
    /// answer to its `Begin`.
    Ignore,
}

/// A transfer being received: the header's facts, copied so no frame buffer stays borrowed.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    index: usize,
    entry_offset: u32,
    image_len: u32,
    image_crc: u32,
    build_id: u64,
    /// The bytes the chunks carry (the zlib stream, or the image as it is).
    sent_len: u32,
    /// Where in the staging buffer they go: past the image's room when compressed (inflated
    /// into the front at the Commit), at its start otherwise.
    stream_at: usize,
    compressed: bool,
    /// The bytes sent are received up to here.
    next: u32,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Idle,
    Receiving(Transfer),
    /// Handed to the kernel, which reads the staged image until the swap ends.
    Committed(SwapOrder),
}

/// Receives transfers into a staging buffer, one at a time.
pub struct Receiver<'s> {
    staging: &'s mut [u8],
    /// The supervisor's own index: it carries swaps out and cannot replace itself.
    own_index: usize,
    state: State,
}

const fn refused(reason: &'static str) -> Action {
    Action::Reply(Response::Refused { reason })
}

impl<'s> Receiver<'s> {
    /// A receiver staging images in `staging` (the longest image it takes) for the supervisor
    /// at `own_index`.
    pub fn new(staging: &'s mut [u8], own_index: usize) -> Self {
        Self {
            staging,
            own_index,
            state: State::Idle,
        }
    }

    /// Answers `request`. `targets[i]` is component `i`; `running_build(i)` is the build id of
    /// the instance of component `i` running now.
    pub fn handle(
        &mut self,
        request: Request<'_>,
        targets: &[Target<'_>],
        running_build: impl Fn(usize) -> u64,
    ) -> Action {
        if matches!(self.state, State::Committed(_)) {
            return refused(UNDER_WAY);
        }
        match request {
            Request::Begin(header) => {
                // A Begin ends any earlier transfer, accepted or not.
                self.state = State::Idle;
                match self.check(&header, targets) {
                    // Known before a byte is sent (`cargo xtask run --watch` after a save that
                    // changed nothing); the Commit checks again, as the build may change.
                    Ok(transfer) if running_build(transfer.index) == transfer.build_id => {
                        refused(ALREADY_RUNS)
                    }
                    Ok(transfer) => {
                        self.state = State::Receiving(transfer);
                        Action::Reply(Response::Ready {
                            running_build: running_build(transfer.index),
                        })
                    }
                    Err(reason) => refused(reason),
                }
            }
            Request::Chunk { offset, bytes } => self.chunk(offset, bytes),
            Request::Commit => self.commit(running_build),
            Request::Abort => {
                self.state = State::Idle;
                refused("transfer aborted")
            }
        }
    }

    /// Answers a frame that did not decode: the transfer is dropped, as the tool's next chunk
    /// cannot be the one expected (a committed swap goes on). Without a transfer, nothing is
    /// answered ([`Action::Ignore`]).
    pub fn refuse_frame(&mut self, error: FrameError) -> Action {
        match self.state {
            State::Idle => return Action::Ignore,
            State::Receiving(_) => self.state = State::Idle,
            State::Committed(_) => {}
        }
        refused(error.describe())
    }

    /// The committed image (empty without one).
    pub fn image(&self) -> &[u8] {
        match self.state {
            State::Committed(order) => self.staging.get(..order.image_len as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The kernel's swap ended: the staging buffer is free again. Returns the order it carried
    /// out (`None` without a committed swap).
    pub fn finished(&mut self) -> Option<SwapOrder> {
        let State::Committed(order) = self.state else {
            return None;
        };
        self.state = State::Idle;
        Some(order)
    }

    /// A transfer for `header`, or why not.
    fn check(
        &self,
        header: &ImageHeader<'_>,
        targets: &[Target<'_>],
    ) -> Result<Transfer, &'static str> {
        let index = targets
            .iter()
            .position(|target| target.name == header.component)
            .ok_or("no component has that name")?;
        if index == self.own_index {
            return Err("the supervisor carries out swaps and cannot replace itself");
        }
        if index > usize::from(u8::MAX) {
            return Err("component index too large for SWAP");
        }
        let target = &targets[index];
        if (header.region_start, header.region_end) != (target.region_start, target.region_end) {
            return Err("the image was linked for another region");
        }
        if !(target.region_start..target.region_end).contains(&header.entry) {
            return Err("the entry point is outside the region");
        }
        let image_len = u64::from(header.image_len);
        let sent_len = u64::from(header.sent_len);
        if image_len == 0 || sent_len == 0 {
            return Err("the image is empty");
        }
        if !header.compressed && sent_len != image_len {
            return Err("an uncompressed image is sent as it is");
        }
        // A compressed image's stream waits behind the room its inflated bytes take.
        let room = if header.compressed {
            image_len + sent_len
        } else {
            image_len
        };
        if room > self.staging.len() as u64 {
            return Err("the image is larger than the staging buffer");
        }
        if image_len > target.region_end.saturating_sub(target.region_start) {
            return Err("the image is larger than the region");
        }
        let entry_offset = header.entry - target.region_start;
        // Past the image the region holds no code (the loaded image is all there is).
        if entry_offset >= image_len {
            return Err("the entry point is outside the image");
        }
        if entry_offset >= ENTRY_OFFSET_LIMIT {
            return Err("the entry point is too far into the region for SWAP");
        }
        Ok(Transfer {
            index,
            // Below image_len, a u32.
            entry_offset: entry_offset as u32,
            image_len: header.image_len,
            image_crc: header.image_crc,
            build_id: header.build_id,
            sent_len: header.sent_len,
            stream_at: if header.compressed {
                self.staging.len() - header.sent_len as usize
            } else {
                0
            },
            compressed: header.compressed,
            next: 0,
        })
    }

    fn chunk(&mut self, offset: u32, bytes: &[u8]) -> Action {
        let State::Receiving(transfer) = &mut self.state else {
            return refused(NO_TRANSFER);
        };
        let end = u64::from(offset) + bytes.len() as u64;
        let problem = if offset != transfer.next {
            Some("chunk out of order")
        } else if bytes.len() > CHUNK_MAX {
            Some("chunk too long")
        } else if end > u64::from(transfer.sent_len) {
            Some("chunk past the image's end")
        } else {
            None
        };
        // `end` fits: it is at most sent_len, which Begin held to the staging buffer.
        let at = transfer.stream_at;
        let slot = self
            .staging
            .get_mut(at + offset as usize..at + end as usize);
        match (problem, slot) {
            (None, Some(slot)) => {
                slot.copy_from_slice(bytes);
                transfer.next = end as u32;
                Action::Reply(Response::Received {
                    next: transfer.next,
                })
            }
            (problem, _) => {
                // After a bad chunk the tool's stream is out of step (the chunks behind it in
                // flight are refused too): it begins again.
                self.state = State::Idle;
                refused(problem.unwrap_or("chunk past the staging buffer"))
            }
        }
    }

    fn commit(&mut self, running_build: impl Fn(usize) -> u64) -> Action {
        let State::Receiving(transfer) = self.state else {
            return refused(NO_TRANSFER);
        };
        // Refused or not, this commit ends the transfer.
        self.state = State::Idle;
        if transfer.next != transfer.sent_len {
            return refused("the image is incomplete");
        }
        if transfer.compressed && !self.inflate(&transfer) {
            return refused("the image does not inflate to its header's length");
        }
        let Some(image) = self.staging.get(..transfer.image_len as usize) else {
            return refused("the image is larger than the staging buffer");
        };
        if image_crc(image) != transfer.image_crc {
            return refused("the image's CRC differs from its header's");
        }
        if build_id(image) != transfer.build_id {
            return refused("the image's build id differs from its header's");
        }
        let old_build = running_build(transfer.index);
        if old_build == transfer.build_id {
            // Swapping a build for itself would only lose time and risk the state.
            return refused(ALREADY_RUNS);
        }
        let order = SwapOrder {
            index: transfer.index,
            image_len: transfer.image_len,
            entry_offset: transfer.entry_offset,
            build_id: transfer.build_id,
            old_build,
        };
        self.state = State::Committed(order);
        Action::Swap(order)
    }
}

impl Receiver<'_> {
    /// Inflates the received zlib stream (at the back of the staging buffer) into the image's
    /// place at the front; whether it made exactly `image_len` bytes from exactly the stream.
    fn inflate(&mut self, transfer: &Transfer) -> bool {
        use miniz_oxide::inflate::TINFLStatus;
        use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
        let (front, back) = self.staging.split_at_mut(transfer.stream_at);
        let Some(stream) = back.get(..transfer.sent_len as usize) else {
            return false;
        };
        let Some(image) = front.get_mut(..transfer.image_len as usize) else {
            return false;
        };
        let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_COMPUTE_ADLER32
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        // About 11 KiB: once per swap, on a stack with room for it.
        let mut state = DecompressorOxide::new();
        let (status, consumed, written) = decompress(&mut state, stream, image, 0, flags);
        status == TINFLStatus::Done && consumed == stream.len() && written == image.len()
    }
}

/// The response to a Commit once the kernel's swap for `order` ended: `outcome`, `micros` and
/// `state_len` are what SWAP_STATUS returned.
pub fn final_response(
    order: &SwapOrder,
    outcome: SwapOutcome,
    micros: u64,
    state_len: u64,
) -> Response<'static> {
    let reason = outcome.describe();
    match outcome {
        SwapOutcome::Swapped => Response::Swapped {
            old_build: order.old_build,
            new_build: order.build_id,
            micros,
            state_len: u32::try_from(state_len).unwrap_or(u32::MAX),
        },
        _ if outcome.rolled_back() => Response::RolledBack { reason },
        // Refused before the new image ran (`None` should not follow NOTIFY_SWAP_DONE; the
        // old instance still serves in any case).
        _ => Response::Refused { reason },
    }
}

#[cfg(test)]
mod tests;
