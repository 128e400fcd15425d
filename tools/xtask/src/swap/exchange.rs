//! The exchange with the hypervisor over a control line ([`Line`]): Begin, the chunks with a
//! few in flight, Commit, and what each answer means. Runs over any [`Line`], so its handling
//! of answers, garbage and timeouts is tested without a machine (`super::tests`).

use super::{Options, SwapImage, SwapOutcome, SwapReport, SwapStep};
use anyhow::{Context, Result, bail};
use hv_ipc::swap::{self as wire, CHUNK_MAX, FRAME_MAX, FrameDecoder, Request, Step};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What a line did when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// This many bytes arrived.
    Bytes(usize),
    /// Nothing within the wait.
    Nothing,
    /// The other end is gone.
    Closed,
}

/// A byte line to the hypervisor.
pub trait Line {
    /// Sends all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Reads what arrives into `buffer`, waiting at most `wait`.
    fn receive(&mut self, buffer: &mut [u8], wait: Duration) -> std::io::Result<Heard>;
}

impl Line for UnixStream {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)?;
        self.flush()
    }

    fn receive(&mut self, buffer: &mut [u8], wait: Duration) -> std::io::Result<Heard> {
        // A zero timeout would mean "block forever".
        self.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match self.read(buffer) {
            Ok(0) => Ok(Heard::Closed),
            Ok(read) => Ok(Heard::Bytes(read)),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(Heard::Nothing)
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => Ok(Heard::Nothing),
            Err(error) => Err(error),
        }
    }
}

/// An answer, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    Ready {
        running_build: u64,
    },
    Received {
        next: u32,
    },
    Swapped {
        old_build: u64,
        new_build: u64,
        micros: u64,
        state_len: u32,
    },
    RolledBack {
        reason: String,
    },
    Refused {
        reason: String,
    },
}

impl From<wire::Response<'_>> for Answer {
    fn from(response: wire::Response<'_>) -> Self {
        match response {
            wire::Response::Ready { running_build } => Self::Ready { running_build },
            wire::Response::Received { next } => Self::Received { next },
            wire::Response::Swapped {
                old_build,
                new_build,
                micros,
                state_len,
            } => Self::Swapped {
                old_build,
                new_build,
                micros,
                state_len,
            },
            wire::Response::RolledBack { reason } => Self::RolledBack {
                reason: reason.to_owned(),
            },
            wire::Response::Refused { reason } => Self::Refused {
                reason: reason.to_owned(),
            },
        }
    }
}

/// How long one read waits before the deadline is looked at again.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// The tool's end of an exchange: requests out, answers in (anything that does not decode as
/// an answer is skipped: a UART's noise, a half frame from before).
pub(super) struct Session<'l, L: Line> {
    line: &'l mut L,
    decoder: FrameDecoder,
    /// Bytes read but not yet given to the decoder.
    pending: VecDeque<u8>,
}

impl<'l, L: Line> Session<'l, L> {
    fn new(line: &'l mut L) -> Self {
        Self {
            line,
            decoder: FrameDecoder::new(),
            pending: VecDeque::new(),
        }
    }

    /// Drops whatever is on the line already (an answer to an earlier, abandoned exchange),
    /// reading until it has been quiet for a moment (a second at most).
    fn drain(&mut self) -> Result<()> {
        let start = Instant::now();
        let mut buffer = [0u8; 512];
        while start.elapsed() < Duration::from_secs(1) {
            match self
                .line
                .receive(&mut buffer, Duration::from_millis(50))
                .context("reading the control line")?
            {
                Heard::Bytes(_) => {}
                Heard::Nothing => break,
                Heard::Closed => bail!("the control line closed (has QEMU exited?)"),
            }
        }
        self.pending.clear();
        self.decoder = FrameDecoder::new();
        Ok(())
    }

    /// Sends `frame` (the request of `step`) and waits for its answer.
    fn ask(&mut self, frame: &[u8], step: SwapStep, timeout: Duration) -> Result<Answer> {
        self.send(frame, step)?;
        self.hear(step, timeout)
    }

    /// Sends `frame` (the request of `step`).
    fn send(&mut self, frame: &[u8], step: SwapStep) -> Result<()> {
        self.line
            .send(frame)
            .with_context(|| format!("sending {step} on the control line"))
    }

    /// Waits for the next answer, the one to `step`.
    fn hear(&mut self, step: SwapStep, timeout: Duration) -> Result<Answer> {
        let deadline = Instant::now() + timeout;
        let mut buffer = [0u8; 512];
        loop {
            while let Some(byte) = self.pending.pop_front() {
                if let Step::Frame(len) = self.decoder.push(byte)
                    && let Ok(response) = self.decoder.take::<wire::Response>(len)
                {
                    return Ok(response.into());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "timed out: no answer to {step} within {} s",
                    timeout.as_secs_f64()
                );
            }
            match self
                .line
                .receive(&mut buffer, left.min(POLL))
                .with_context(|| format!("reading the answer to {step}"))?
            {
                Heard::Bytes(read) => self.pending.extend(&buffer[..read]),
                Heard::Nothing => {}
                Heard::Closed => bail!(
                    "the control line closed while waiting for the answer to {step} (has QEMU \
                     exited?)"
                ),
            }
        }
    }

    /// Tells the hypervisor to forget the transfer (best effort: nothing answers an Abort).
    fn abort(&mut self) {
        if let Ok(frame) = encode(&Request::Abort) {
            let _ = self.line.send(&frame);
        }
    }
}

/// Whether a refusal's `reason` says the frame itself was damaged (as opposed to its request
/// being refused).
fn is_frame_error(reason: &str) -> bool {
    [
        wire::FrameError::TooLong,
        wire::FrameError::BadEncoding,
        wire::FrameError::BadCrc,
    ]
    .iter()
    .any(|error| reason == error.describe())
}

/// One request as a frame.
pub(super) fn encode(request: &Request<'_>) -> Result<Vec<u8>> {
    let mut buffer = [0u8; FRAME_MAX + 2];
    wire::encode(request, &mut buffer)
        .map(<[u8]>::to_vec)
        .map_err(|error| anyhow::anyhow!("encoding a request: {}", error.describe()))
}

/// The image cut into chunk requests: each chunk's offset and bytes, in order.
pub fn chunks(image: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    image
        .chunks(CHUNK_MAX)
        .enumerate()
        .map(|(index, bytes)| ((index * CHUNK_MAX) as u32, bytes))
}

/// Flips one bit of a data byte near the middle of `frame` (a leading zero, COBS bytes, a
/// closing zero), never of a COBS code byte and never making a byte zero: the frame still
/// decodes as COBS, and only its CRC tells it is damaged (CRC-32 catches every single-bit
/// error).
pub fn corrupt(frame: &mut [u8]) {
    let Some(body) = frame.len().checked_sub(1) else {
        return;
    };
    // COBS: each code byte `c` is followed by `c - 1` data bytes.
    let mut data = Vec::new();
    let mut at = 1;
    while at < body {
        let code = usize::from(frame[at]);
        data.extend((at + 1..at + code).filter(|&position| position < body));
        at += code.max(1);
    }
    let middle = frame.len() / 2;
    let Some(position) = data
        .into_iter()
        .min_by_key(|&position| position.abs_diff(middle))
        .or((middle < frame.len()).then_some(middle))
    else {
        return;
    };
    let byte = &mut frame[position];
    *byte ^= if *byte == 1 { 2 } else { 1 };
}

/// Chunks sent before the first is acknowledged. The supervisor reads the line continuously
/// during a transfer and answers frame by frame, so a few frames in flight keep the line busy
/// without overrunning a UART's FIFO between its reads (QEMU's chardev also holds back what
/// the FIFO cannot take).
pub(super) const WINDOW: usize = 4;

/// Sends `image` over `line` and returns what the hypervisor made of it. Errors are the
/// tool's or the line's (a timeout names its step); a refusal or rollback is an outcome.
pub fn exchange(line: &mut impl Line, image: &SwapImage, options: &Options) -> Result<SwapReport> {
    let header = image.header()?;
    let total_chunks = image.sent().len().div_ceil(CHUNK_MAX);
    let corrupt_at = options.corrupt.then_some(total_chunks / 2);
    let mut session = Session::new(line);
    session.drain()?;
    let start = Instant::now();
    let mut report = SwapReport {
        component: image.component.clone(),
        build: header.build_id,
        running_build: None,
        image_len: image.bytes.len(),
        chunks: 0,
        outcome: SwapOutcome::Refused {
            at: SwapStep::Begin,
            reason: String::new(),
        },
        transfer: Duration::ZERO,
        commit: None,
        total: Duration::ZERO,
    };
    let finish = |mut report: SwapReport, outcome: SwapOutcome| -> Result<SwapReport> {
        report.outcome = outcome;
        report.total = start.elapsed();
        Ok(report)
    };
    let timeouts = options.timeouts;
    let begin = encode(&Request::Begin(header))?;
    let ask_begin = |session: &mut Session<'_, _>| {
        session
            .ask(&begin, SwapStep::Begin, timeouts.ready)
            .context(
                "the hypervisor did not take the transfer (the supervisor serves the control line)",
            )
    };
    let mut ready = ask_begin(&mut session)?;
    // A UART without flow control may lose the first frame's tail before the supervisor
    // drains the line (the kernel looks at it every few milliseconds): once it reads, a
    // second Begin arrives whole.
    if matches!(&ready, Answer::Refused { reason } if is_frame_error(reason)) {
        ready = ask_begin(&mut session)?;
    }
    match ready {
        Answer::Ready { running_build } => {
            report.running_build = Some(running_build);
            if options.show_progress && running_build == header.build_id {
                eprintln!(
                    "    this build runs already (the hypervisor refuses a build for itself; \
                     change the component, or build it with --test-hook)"
                );
            }
        }
        Answer::Refused { reason } => {
            let at = SwapStep::Begin;
            return finish(report, SwapOutcome::Refused { at, reason });
        }
        other => bail!("the hypervisor answered Begin with {other:?}"),
    }
    let mut last_shown = 0;
    // Chunks sent and not yet acknowledged, oldest first: up to WINDOW are on their way, so the
    // line stays busy while the hypervisor answers (answers come in order).
    let mut in_flight: VecDeque<(SwapStep, u32)> = VecDeque::new();
    let mut chunks = chunks(image.sent()).enumerate().peekable();
    while chunks.peek().is_some() || !in_flight.is_empty() {
        let window = if options.stop_and_wait { 1 } else { WINDOW };
        if in_flight.len() < window
            && let Some((index, (offset, bytes))) = chunks.next()
        {
            let step = SwapStep::Chunk { index, offset };
            let mut frame = encode(&Request::Chunk { offset, bytes })?;
            if corrupt_at == Some(index) {
                corrupt(&mut frame);
            }
            session.send(&frame, step)?;
            in_flight.push_back((step, offset + bytes.len() as u32));
            continue;
        }
        let Some((step, expected)) = in_flight.pop_front() else {
            break;
        };
        let answer = session.hear(step, timeouts.chunk).inspect_err(|_| {
            session.abort();
        })?;
        match answer {
            Answer::Received { next } if next == expected => report.chunks += 1,
            Answer::Received { next } => {
                session.abort();
                bail!(
                    "the hypervisor stored {step} up to offset {next}, not {expected}: the \
                     transfer is out of step"
                );
            }
            Answer::Refused { reason } => {
                report.transfer = start.elapsed();
                return finish(report, SwapOutcome::Refused { at: step, reason });
            }
            other => {
                session.abort();
                bail!("the hypervisor answered {step} with {other:?}");
            }
        }
        if options.show_progress {
            let percent = report.chunks * 100 / total_chunks;
            if percent >= last_shown + 10 || report.chunks == total_chunks {
                last_shown = percent;
                eprintln!(
                    "    sent {} of {} bytes ({percent}%) in {:.1}s",
                    expected,
                    image.sent().len(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    report.transfer = start.elapsed();
    if options.show_progress {
        eprintln!("    committing: the hypervisor swaps the component now");
    }
    let committed = Instant::now();
    let answer = session.ask(
        &encode(&Request::Commit)?,
        SwapStep::Commit,
        timeouts.outcome,
    )?;
    report.commit = Some(committed.elapsed());
    let outcome = match answer {
        Answer::Swapped {
            old_build,
            new_build,
            micros,
            state_len,
        } => SwapOutcome::Swapped {
            old_build,
            new_build,
            micros,
            state_len,
        },
        Answer::RolledBack { reason } => SwapOutcome::RolledBack { reason },
        Answer::Refused { reason } => SwapOutcome::Refused {
            at: SwapStep::Commit,
            reason,
        },
        other => bail!("the hypervisor answered Commit with {other:?}"),
    };
    finish(report, outcome)
}
