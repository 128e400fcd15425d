//! `cargo xtask swap`: hot-swapping one component of a running system (DESIGN decision 11).
//!
//! The tool rebuilds the component as the image's composer built it (same region, same
//! configuration; with `--test-hook`, a configuration that makes it misbehave on purpose), and
//! hands the new image to the hypervisor over the board's control UART, which a QEMU `virt` run
//! connects to a Unix socket ([`ControlLine`]). The exchange is `hv_ipc::swap`'s protocol:
//! Begin, the chunks of the zlib-compressed image in order (up to [`WINDOW`] unanswered),
//! Commit; every request is answered, in order.
//!
//! [`swap`] does it all and returns the outcome as data ([`SwapReport`]); [`prepare`] (the
//! build) and [`transfer`] (the exchange) are its halves, for the system tests, which build
//! before they boot and swap when the run reaches a point ([`PlannedSwap`]). The exchange
//! itself ([`exchange`]) runs over any [`Line`], so that its handling of answers, garbage and
//! timeouts is tested without a machine.
//!
//! The new ELF is kept as `<control dir>/swapped/<build id>.elf`: the run's log decoder
//! switches to it when the kernel says that component runs that build.

use crate::{ComponentBuild, System, elf, paths, progress};
use anyhow::{Context, Result, bail};
use hv_abi::PhysRange;
use hv_component_config::SwapTest;
use hv_ipc::swap::{self as wire, CHUNK_MAX, FRAME_MAX, FrameDecoder, ImageHeader, Request, Step};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod watch;
pub use watch::watch;

/// Longest socket path used as it is: `sun_path` holds 108 bytes with its closing NUL.
const SOCKET_PATH_MAX: usize = 100;

/// Where a run's control line and the ELFs swapped into it live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlLine {
    /// The run's folder: `swapped/` in it keeps the swapped-in ELFs.
    pub dir: PathBuf,
    /// The Unix socket QEMU serves the control UART on: `<dir>/control.sock`, or, when that
    /// path is too long for a socket, `/tmp/hv-control-<hash of that path>.sock` (so every
    /// tool finds the same).
    pub socket: PathBuf,
}

impl ControlLine {
    /// The control line of a run whose files are in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        let socket = dir.join("control.sock");
        let socket = if socket.as_os_str().len() <= SOCKET_PATH_MAX {
            socket
        } else {
            // Any stable hash of the intended path will do; this one is at hand. `/tmp`, not
            // `$TMPDIR`: the run and the swap must agree whatever their environments.
            let hash = wire::build_id(socket.as_os_str().as_encoded_bytes());
            Path::new("/tmp").join(format!("hv-control-{hash:016x}.sock"))
        };
        Self {
            dir: dir.to_owned(),
            socket,
        }
    }

    /// The control line of `cargo xtask run` for the system named `system` (its manifest's
    /// stem): `target/xtask/<system>/control.sock`, beside its image.
    pub fn of_run(system: &str) -> Self {
        Self::in_dir(&paths::xtask_out().join(system))
    }

    /// Where the ELFs swapped into this run are kept, by build id.
    pub fn swapped_dir(&self) -> PathBuf {
        self.dir.join("swapped")
    }

    /// QEMU's options for the control UART: the second serial port, so they must come after
    /// the console's.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!(
                "socket,id=control,path={},server=on,wait=off",
                self.socket.display()
            ),
            "-serial".into(),
            "chardev:control".into(),
        ]
    }
}

/// The ELF of build `build` in a run's `swapped/` folder.
pub fn swapped_elf(dir: &Path, build: u64) -> PathBuf {
    dir.join(format!("{build:016x}.elf"))
}

/// `--test-hook`: how a test build misbehaves when swapped in (`SwapTest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Hook {
    /// Nothing: a new build id that behaves as the running one (a swap that succeeds).
    Rebuilt,
    /// It refuses the state the old instance hands over.
    RefuseState,
    /// It faults as it starts.
    FaultAtStart,
    /// It accepts the state too late.
    Slow,
    /// Its interface's schema hash differs, without a migration.
    SchemaChange,
}

impl From<Hook> for SwapTest {
    fn from(hook: Hook) -> Self {
        match hook {
            Hook::Rebuilt => SwapTest::Rebuilt,
            Hook::RefuseState => SwapTest::RefuseState,
            Hook::FaultAtStart => SwapTest::FaultAtStart,
            Hook::Slow => SwapTest::Slow,
            Hook::SchemaChange => SwapTest::SchemaChange,
        }
    }
}

/// A test hook's name as the command line and folder names spell it.
pub fn hook_name(hook: SwapTest) -> &'static str {
    match hook {
        SwapTest::Rebuilt => "rebuilt",
        SwapTest::RefuseState => "refuse-state",
        SwapTest::FaultAtStart => "fault-at-start",
        SwapTest::Slow => "slow",
        SwapTest::SchemaChange => "schema-change",
    }
}

/// `cargo xtask swap` options.
#[derive(clap::Args)]
pub struct SwapArgs {
    /// The component to replace, by its name in the manifest (e.g. vm-manager).
    pub component: String,
    /// The manifest the run was started with (default: manifests/qemu-virt.toml).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Build the new image with a test hook that makes the swap fail on purpose.
    #[arg(long, value_enum)]
    pub test_hook: Option<Hook>,
    /// Flip one bit of one chunk's frame on the wire: the hypervisor must refuse it.
    #[arg(long)]
    pub corrupt_frame: bool,
}

/// A component image ready to send.
#[derive(Clone, Debug)]
pub struct SwapImage {
    /// The component's name in the manifest.
    pub component: String,
    /// Its region (the image is linked at its start).
    pub region: PhysRange,
    /// The entry point.
    pub entry: u64,
    /// The loadable bytes, as the composer puts them in the component's image store.
    pub bytes: Vec<u8>,
    /// What the chunks carry: `bytes` zlib-compressed (about half: every byte costs the
    /// hypervisor two UART reads), or `None` to send them as they are.
    pub compressed: Option<Vec<u8>>,
    /// The ELF they come from (kept for log decoding).
    pub elf: PathBuf,
    /// The test hook it was built with.
    pub hook: Option<SwapTest>,
}

impl SwapImage {
    /// The image of component `component` (region `region`) from its ELF, checked as the
    /// composer checks it: linked at its region, fitting it.
    pub fn from_elf(
        component: &str,
        region: PhysRange,
        elf_path: &Path,
        hook: Option<SwapTest>,
    ) -> Result<Self> {
        let elf_bytes =
            std::fs::read(elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
        let flat = elf::to_flat(&elf_bytes).with_context(|| format!("component {component}"))?;
        if flat.load_address != region.start {
            bail!(
                "component {component} is linked at {:#x}, not at its region {:#x}",
                flat.load_address,
                region.start
            );
        }
        let end = elf::symbol(&elf_bytes, "__image_end")?;
        if end > region.end {
            bail!(
                "component {component} needs {} KiB but has {} KiB; raise its memory in the \
                 manifest (and restart the run: a swap cannot move it)",
                (end - region.start) / 1024,
                region.len() / 1024
            );
        }
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&flat.bytes, 9);
        Ok(Self {
            component: component.to_owned(),
            region,
            entry: flat.entry,
            bytes: flat.bytes,
            compressed: Some(compressed),
            elf: elf_path.to_owned(),
            hook,
        })
    }

    /// The bytes the chunks carry.
    pub fn sent(&self) -> &[u8] {
        self.compressed.as_deref().unwrap_or(&self.bytes)
    }

    /// Its build id, as the hypervisor computes it.
    pub fn build_id(&self) -> u64 {
        wire::build_id(&self.bytes)
    }

    /// The Begin request's header.
    fn header(&self) -> Result<ImageHeader<'_>> {
        Ok(ImageHeader {
            component: &self.component,
            region_start: self.region.start,
            region_end: self.region.end,
            entry: self.entry,
            image_len: u32::try_from(self.bytes.len()).context("the image passes 4 GiB")?,
            image_crc: wire::image_crc(&self.bytes),
            build_id: self.build_id(),
            compressed: self.compressed.is_some(),
            sent_len: u32::try_from(self.sent().len()).context("the image passes 4 GiB")?,
        })
    }
}

/// Builds component `component` of `system` for a swap: as the composer builds it, with
/// `hook` in its configuration when given (that build in folders of its own).
pub fn prepare(system: &System, component: &str, hook: Option<SwapTest>) -> Result<SwapImage> {
    let Some((id, _)) = system.manifest.component(component) else {
        let names: Vec<&str> = system
            .manifest
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        bail!(
            "{} has no component named {component} (it has {})",
            system.manifest_path.display(),
            names.join(", ")
        );
    };
    let regions = crate::component_regions(system)?;
    let region = *regions
        .get(id)
        .context("the layout has fewer regions than components")?;
    let out_dir = paths::xtask_out()
        .join(&system.name)
        .join("swap")
        .join(hook.map_or("plain", hook_name));
    let elf = crate::build_component(
        system,
        id,
        &regions,
        &ComponentBuild::Swap {
            out_dir,
            swap_test: hook,
        },
    )?;
    SwapImage::from_elf(component, region, &elf, hook)
}

/// How long each step may wait for its answer.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Begin → Ready: the hypervisor notices input when it next runs.
    pub ready: Duration,
    /// One chunk → Received.
    pub chunk: Duration,
    /// Commit → the outcome: the swap itself happens in between.
    pub outcome: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            ready: Duration::from_secs(20),
            chunk: Duration::from_secs(10),
            outcome: Duration::from_secs(60),
        }
    }
}

/// How to run an exchange.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Flip a bit in the middle of one chunk's frame (the middle chunk's) after encoding.
    pub corrupt: bool,
    /// The timeouts.
    pub timeouts: Timeouts,
    /// Print progress on stderr.
    pub show_progress: bool,
}

/// Which request an answer or a timeout belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapStep {
    /// The header.
    Begin,
    /// A chunk: its position among the chunks and its offset in the image.
    Chunk {
        /// 0 for the first.
        index: usize,
        /// Its first byte's offset.
        offset: u32,
    },
    /// The Commit.
    Commit,
}

impl std::fmt::Display for SwapStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Begin => write!(f, "Begin"),
            Self::Chunk { index, offset } => write!(f, "chunk {index} (offset {offset})"),
            Self::Commit => write!(f, "Commit"),
        }
    }
}

/// How a swap ended, as the hypervisor said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The new image runs.
    Swapped {
        /// The replaced instance's build id.
        old_build: u64,
        /// The new instance's.
        new_build: u64,
        /// The hypervisor's figure from the Commit to the new instance's acceptance of the
        /// state.
        micros: u64,
        /// Bytes of state handed over.
        state_len: u32,
    },
    /// The old image serves again.
    RolledBack {
        /// Why.
        reason: String,
    },
    /// A request was refused; nothing changed.
    Refused {
        /// The request refused.
        at: SwapStep,
        /// Why.
        reason: String,
    },
}

/// What a swap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapReport {
    /// The component.
    pub component: String,
    /// The build id of the image sent.
    pub build: u64,
    /// The running build the hypervisor named in its Ready (none when Begin was refused).
    pub running_build: Option<u64>,
    /// The image's bytes.
    pub image_len: usize,
    /// The chunks acknowledged.
    pub chunks: usize,
    /// The outcome.
    pub outcome: SwapOutcome,
    /// Wall time from sending Begin to the last chunk's acknowledgement.
    pub transfer: Duration,
    /// Wall time from sending Commit to its answer (none when it was not reached).
    pub commit: Option<Duration>,
    /// Wall time from sending Begin to the last answer.
    pub total: Duration,
}

impl SwapReport {
    /// Whether the new image runs.
    pub fn swapped(&self) -> bool {
        matches!(self.outcome, SwapOutcome::Swapped { .. })
    }

    /// The outcome in one line.
    pub fn describe(&self) -> String {
        match &self.outcome {
            SwapOutcome::Swapped {
                old_build,
                new_build,
                micros,
                state_len,
            } => format!(
                "swapped {}: build {old_build:#018x} -> {new_build:#018x} in {:.1} ms (state: \
                 {state_len} bytes), transfer took {} ms",
                self.component,
                *micros as f64 / 1000.0,
                self.transfer.as_millis()
            ),
            SwapOutcome::RolledBack { reason } => format!("rolled back: {reason}"),
            SwapOutcome::Refused { at, reason } => {
                let at = match at {
                    SwapStep::Chunk { index, offset } => {
                        format!("chunk {index}, offset {offset}")
                    }
                    other => other.to_string(),
                };
                format!("refused: {reason} (at {at})")
            }
        }
    }
}

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
enum Answer {
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
const POLL: Duration = Duration::from_millis(100);

/// The tool's end of an exchange: requests out, answers in (anything that does not decode as
/// an answer is skipped: a UART's noise, a half frame from before).
struct Session<'l, L: Line> {
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

/// One request as a frame.
fn encode(request: &Request<'_>) -> Result<Vec<u8>> {
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
const WINDOW: usize = 4;

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
    let ready = session
        .ask(
            &encode(&Request::Begin(header))?,
            SwapStep::Begin,
            timeouts.ready,
        )
        .context(
            "the hypervisor did not take the transfer (the supervisor serves the control line)",
        )?;
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
        if in_flight.len() < WINDOW
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

/// Sends `image` to the run behind `control`, keeping its ELF in the run's `swapped/` folder
/// first (the run's log decoder looks there when the kernel names a build it does not know).
pub fn transfer(control: &ControlLine, image: &SwapImage, options: &Options) -> Result<SwapReport> {
    if options.show_progress {
        let hook = image.hook.map_or_else(String::new, |hook| {
            format!(" (test hook {})", hook_name(hook))
        });
        progress::step(&format!(
            "swapping {} to build {:#018x}{hook}: {} bytes ({} sent) in {} chunks over {}",
            image.component,
            image.build_id(),
            image.bytes.len(),
            image.sent().len(),
            image.sent().len().div_ceil(CHUNK_MAX),
            crate::shown(&control.socket)
        ));
    }
    let kept = swapped_elf(&control.swapped_dir(), image.build_id());
    std::fs::create_dir_all(control.swapped_dir())
        .with_context(|| format!("creating {}", control.swapped_dir().display()))?;
    std::fs::copy(&image.elf, &kept)
        .with_context(|| format!("copying {} to {}", image.elf.display(), kept.display()))?;
    let mut stream = UnixStream::connect(&control.socket).with_context(|| {
        format!(
            "connecting to the control socket {} (is the run still going?)",
            control.socket.display()
        )
    })?;
    exchange(&mut stream, image, options)
}

/// A swap: which component, how built, sent where.
pub struct SwapRequest<'a> {
    /// The running system (as resolved for its run: the component is built for it).
    pub system: &'a System,
    /// The run's control line.
    pub control: &'a ControlLine,
    /// The component's name.
    pub component: &'a str,
    /// A test hook to build it with.
    pub hook: Option<SwapTest>,
    /// Corrupt one chunk's frame on the wire.
    pub corrupt: bool,
    /// Print progress on stderr.
    pub show_progress: bool,
}

/// Builds the component and swaps it into the running system.
pub fn swap(request: &SwapRequest) -> Result<SwapReport> {
    let image = prepare(request.system, request.component, request.hook)?;
    transfer(
        request.control,
        &image,
        &Options {
            corrupt: request.corrupt,
            timeouts: Timeouts::default(),
            show_progress: request.show_progress,
        },
    )
}

/// A swap a captured run performs when it reaches a point (system tests).
#[derive(Clone, Copy, Debug)]
pub struct PlannedSwap {
    /// What the console or the hypervisor's log must hold first.
    pub after: &'static str,
    /// How many times it must have appeared.
    pub times: usize,
    /// The component.
    pub component: &'static str,
    /// The test hook its new image is built with.
    pub hook: Option<SwapTest>,
    /// Corrupt one chunk's frame on the wire.
    pub corrupt: bool,
    /// A line to type on the console once the swap has ended, whatever its outcome (e.g. a
    /// test guest's "stop").
    pub then_type: Option<&'static str>,
    /// What the swap must end with for the test to pass.
    pub expect: SwapExpect,
}

/// What a [`PlannedSwap`] must end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// The hot-swap system tests name them (none of the other tests swaps).
#[cfg_attr(not(test), allow(dead_code))]
pub enum SwapExpect {
    /// The new image runs.
    Swapped,
    /// Rolled back, the reason containing this.
    RolledBack(&'static str),
    /// Refused, the reason containing this.
    Refused(&'static str),
}

impl SwapExpect {
    /// Whether `report` is what was expected; if not, why.
    pub fn check(&self, report: &SwapReport) -> Result<(), String> {
        let matches = match (self, &report.outcome) {
            (Self::Swapped, SwapOutcome::Swapped { .. }) => true,
            (Self::RolledBack(want), SwapOutcome::RolledBack { reason })
            | (Self::Refused(want), SwapOutcome::Refused { reason, .. }) => reason.contains(want),
            _ => false,
        };
        if matches {
            Ok(())
        } else {
            Err(format!(
                "the swap of {} ended \"{}\", not {self:?}",
                report.component,
                report.describe()
            ))
        }
    }
}

/// A planned swap with its image built, for [`crate::qemu::Run`].
#[derive(Clone, Debug)]
pub struct ScheduledSwap {
    /// The plan.
    pub plan: PlannedSwap,
    /// The image to send.
    pub image: SwapImage,
}

/// What became of a scheduled swap in a run.
#[derive(Clone, Debug)]
pub struct SwapRecord {
    /// The component.
    pub component: String,
    /// When it started, from the run's start.
    pub started: Duration,
    /// Its report, or why the tool could not finish it (a timeout, the line closing).
    pub result: Result<SwapReport, String>,
}

/// `cargo xtask swap`: returns the exit code (0 only when the new image runs).
pub fn run(args: &SwapArgs) -> Result<i32> {
    let manifest = args
        .manifest
        .clone()
        .unwrap_or_else(crate::default_manifest);
    let control = ControlLine::of_run(&crate::system_name(&manifest));
    let run_command = match &args.manifest {
        Some(path) => format!("cargo xtask run --manifest {}", path.display()),
        None => "cargo xtask run".to_owned(),
    };
    // Before any build: there must be a run to swap into.
    if !control.socket.exists() {
        bail!(
            "no `{run_command}` is running (no control socket at {})",
            control.socket.display()
        );
    }
    let system = crate::SystemArgs::without_images(&manifest).resolve()?;
    if !system.manifest.hot_swap {
        bail!(
            "{} does not turn hot-swap on: add `hot-swap = true` and start the run again",
            crate::shown(&manifest)
        );
    }
    let report = swap(&SwapRequest {
        system: &system,
        control: &control,
        component: &args.component,
        hook: args.test_hook.map(SwapTest::from),
        corrupt: args.corrupt_frame,
        show_progress: true,
    })
    .map_err(|error| {
        if std::fs::metadata(&control.socket).is_err() {
            error.context(format!("`{run_command}` has ended"))
        } else {
            error
        }
    })?;
    println!("{}", report.describe());
    Ok(if report.swapped() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hv_ipc::swap::Response;

    /// What the fake hypervisor does when it is sent a frame.
    enum Reply {
        /// Answers these bytes (garbage, frames, or both).
        Bytes(Vec<u8>),
        /// Answers nothing.
        Silence,
        /// Hangs up.
        HangUp,
    }

    /// A scripted line: each request decoded and kept; the next reply queued for reading.
    struct FakeLine {
        replies: VecDeque<Reply>,
        sent: Vec<Vec<u8>>,
        incoming: VecDeque<u8>,
        closed: bool,
        /// Bytes already waiting before the first request.
        stale: Vec<u8>,
    }

    impl FakeLine {
        fn new(replies: Vec<Reply>) -> Self {
            Self {
                replies: replies.into(),
                sent: Vec::new(),
                incoming: VecDeque::new(),
                closed: false,
                stale: Vec::new(),
            }
        }

        /// The requests sent, decoded (`None` for a frame that does not decode).
        fn requests(&self) -> Vec<Option<String>> {
            self.sent
                .iter()
                .filter(|frame| frame.len() > 2)
                .map(|frame| {
                    let mut inner = frame[1..frame.len() - 1].to_vec();
                    wire::decode::<Request>(&mut inner)
                        .ok()
                        .map(|request| match request {
                            Request::Begin(header) => format!("begin {}", header.image_len),
                            Request::Chunk { offset, bytes } => {
                                format!("chunk {offset}+{}", bytes.len())
                            }
                            Request::Commit => "commit".into(),
                            Request::Abort => "abort".into(),
                        })
                })
                .collect()
        }
    }

    impl Line for FakeLine {
        fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.sent.push(bytes.to_vec());
            let is_abort = bytes.len() > 2 && {
                let mut inner = bytes[1..bytes.len() - 1].to_vec();
                matches!(wire::decode::<Request>(&mut inner), Ok(Request::Abort))
            };
            if is_abort {
                return Ok(());
            }
            match self.replies.pop_front() {
                Some(Reply::Bytes(bytes)) => self.incoming.extend(bytes),
                Some(Reply::Silence) | None => {}
                Some(Reply::HangUp) => self.closed = true,
            }
            Ok(())
        }

        fn receive(&mut self, buffer: &mut [u8], wait: Duration) -> std::io::Result<Heard> {
            if !self.stale.is_empty() {
                let stale = std::mem::take(&mut self.stale);
                buffer[..stale.len()].copy_from_slice(&stale);
                return Ok(Heard::Bytes(stale.len()));
            }
            if self.incoming.is_empty() {
                if self.closed {
                    return Ok(Heard::Closed);
                }
                std::thread::sleep(wait.min(Duration::from_millis(5)));
                return Ok(Heard::Nothing);
            }
            // A few bytes at a time, as a UART delivers them.
            let mut read = 0;
            while read < buffer.len().min(7) {
                let Some(byte) = self.incoming.pop_front() else {
                    break;
                };
                buffer[read] = byte;
                read += 1;
            }
            Ok(Heard::Bytes(read))
        }
    }

    fn frame(response: Response) -> Vec<u8> {
        let mut buffer = [0u8; FRAME_MAX + 2];
        wire::encode(&response, &mut buffer).unwrap().to_vec()
    }

    fn image(len: usize) -> SwapImage {
        SwapImage {
            component: "vm-manager".into(),
            region: PhysRange::from_size(0x4040_0000, 0x10_0000).unwrap(),
            entry: 0x4040_0000,
            bytes: (0..len).map(|i| (i % 251) as u8).collect(),
            compressed: None,
            elf: PathBuf::from("vm-manager.elf"),
            hook: None,
        }
    }

    /// The replies of a hypervisor that accepts everything.
    fn accepting(len: usize, outcome: Response) -> Vec<Reply> {
        let mut replies = vec![Reply::Bytes(frame(Response::Ready { running_build: 7 }))];
        for (offset, bytes) in chunks(&vec![0; len]) {
            let next = offset + bytes.len() as u32;
            replies.push(Reply::Bytes(frame(Response::Received { next })));
        }
        replies.push(Reply::Bytes(frame(outcome)));
        replies
    }

    fn quick() -> Options {
        Options {
            corrupt: false,
            timeouts: Timeouts {
                ready: Duration::from_millis(200),
                chunk: Duration::from_millis(200),
                outcome: Duration::from_millis(200),
            },
            show_progress: false,
        }
    }

    const SWAPPED: Response<'static> = Response::Swapped {
        old_build: 7,
        new_build: 8,
        micros: 1500,
        state_len: 96,
    };

    #[test]
    fn an_image_is_cut_into_full_chunks_and_a_rest() {
        let image = vec![1u8; 2 * CHUNK_MAX + 5];
        let cut: Vec<(u32, usize)> = chunks(&image)
            .map(|(offset, bytes)| (offset, bytes.len()))
            .collect();
        let max = CHUNK_MAX as u32;
        assert_eq!(
            cut,
            [(0, CHUNK_MAX), (max, CHUNK_MAX), (2 * max, 5)],
            "offsets follow on"
        );
        assert_eq!(chunks(&[]).count(), 0);
        assert_eq!(chunks(&[0; CHUNK_MAX]).count(), 1);
    }

    #[test]
    fn a_whole_exchange_reports_the_swap() {
        let len = 3 * CHUNK_MAX + 17;
        let mut line = FakeLine::new(accepting(len, SWAPPED));
        let report = exchange(&mut line, &image(len), &quick()).unwrap();
        assert!(report.swapped(), "{report:?}");
        assert_eq!(report.running_build, Some(7));
        assert_eq!(report.chunks, 4);
        assert!(report.commit.is_some());
        assert!(report.total >= report.transfer);
        assert_eq!(
            line.requests(),
            [
                Some(format!("begin {len}")),
                Some("chunk 0+192".into()),
                Some("chunk 192+192".into()),
                Some("chunk 384+192".into()),
                Some("chunk 576+17".into()),
                Some("commit".into()),
            ]
        );
        let shown = report.describe();
        assert!(
            shown.starts_with(
                "swapped vm-manager: build 0x0000000000000007 -> 0x0000000000000008 in 1.5 ms \
                 (state: 96 bytes), transfer took "
            ),
            "{shown}"
        );
    }

    #[test]
    fn the_header_describes_the_image() {
        let image = image(1000);
        let header = image.header().unwrap();
        assert_eq!(header.component, "vm-manager");
        assert_eq!(
            (header.region_start, header.region_end),
            (0x4040_0000, 0x4050_0000)
        );
        assert_eq!(header.image_len, 1000);
        assert_eq!(header.image_crc, wire::image_crc(&image.bytes));
        assert_eq!(header.build_id, wire::build_id(&image.bytes));
        assert_eq!((header.compressed, header.sent_len), (false, 1000));
        // Compressed, the chunks carry the zlib stream; the CRC and build id stay the image's.
        let stream = miniz_oxide::deflate::compress_to_vec_zlib(&image.bytes, 9);
        let compressed = SwapImage {
            compressed: Some(stream.clone()),
            ..image
        };
        let header = compressed.header().unwrap();
        assert_eq!(
            (header.compressed, header.sent_len),
            (true, stream.len() as u32)
        );
        assert_eq!(header.image_len, 1000);
        assert_eq!(compressed.sent(), &stream[..]);
        assert_eq!(
            miniz_oxide::inflate::decompress_to_vec_zlib(compressed.sent()).unwrap(),
            compressed.bytes
        );
    }

    #[test]
    fn garbage_before_answers_and_stale_bytes_are_skipped() {
        let len = 2 * CHUNK_MAX;
        let mut replies = accepting(len, SWAPPED);
        // Noise, a broken frame and a frame of another protocol before each answer.
        for reply in &mut replies {
            if let Reply::Bytes(bytes) = reply {
                let mut noisy = vec![0x55, 0xaa, 0x00, 0x13, 0x37];
                let mut damaged = frame(Response::Received { next: 5 });
                damaged[3] ^= 0x40;
                noisy.extend(damaged);
                noisy.extend([0, b'h', b'i', 0]);
                noisy.extend(bytes.iter());
                *bytes = noisy;
            }
        }
        let mut line = FakeLine::new(replies);
        // An answer left from an abandoned exchange must not be taken for this one's.
        line.stale = frame(Response::Refused { reason: "old" });
        let report = exchange(&mut line, &image(len), &quick()).unwrap();
        assert!(report.swapped(), "{report:?}");
    }

    #[test]
    fn a_refused_chunk_ends_the_transfer_with_the_reason() {
        let len = 4 * CHUNK_MAX;
        let mut replies = accepting(len, SWAPPED);
        replies.truncate(2);
        replies.push(Reply::Bytes(frame(Response::Refused {
            reason: "bad frame CRC",
        })));
        let mut line = FakeLine::new(replies);
        let report = exchange(&mut line, &image(len), &quick()).unwrap();
        assert_eq!(
            report.outcome,
            SwapOutcome::Refused {
                at: SwapStep::Chunk {
                    index: 1,
                    offset: CHUNK_MAX as u32
                },
                reason: "bad frame CRC".into()
            }
        );
        assert_eq!(report.chunks, 1);
        assert_eq!(report.commit, None);
        assert_eq!(
            report.describe(),
            "refused: bad frame CRC (at chunk 1, offset 192)"
        );
        assert!(SwapExpect::Refused("CRC").check(&report).is_ok());
        // Nothing is sent once the refusal is heard: Begin and the chunks already in flight
        // (the window; here all four).
        assert_eq!(line.requests().len(), 1 + WINDOW.min(4));
    }

    #[test]
    fn a_refused_begin_and_a_rollback_are_outcomes() {
        let mut line = FakeLine::new(vec![Reply::Bytes(frame(Response::Refused {
            reason: "no component named vm-manager",
        }))]);
        let report = exchange(&mut line, &image(10), &quick()).unwrap();
        assert_eq!(report.running_build, None);
        assert!(matches!(
            report.outcome,
            SwapOutcome::Refused {
                at: SwapStep::Begin,
                ..
            }
        ));
        let mut line = FakeLine::new(accepting(
            10,
            Response::RolledBack {
                reason: "the new instance refused the state",
            },
        ));
        let report = exchange(&mut line, &image(10), &quick()).unwrap();
        assert_eq!(
            report.describe(),
            "rolled back: the new instance refused the state"
        );
        assert!(
            SwapExpect::RolledBack("refused the state")
                .check(&report)
                .is_ok()
        );
        assert!(SwapExpect::Swapped.check(&report).is_err());
    }

    #[test]
    fn timeouts_name_their_step() {
        let error = |replies: Vec<Reply>| {
            let mut line = FakeLine::new(replies);
            format!(
                "{:#}",
                exchange(&mut line, &image(2 * CHUNK_MAX), &quick()).unwrap_err()
            )
        };
        let begin = error(vec![Reply::Silence]);
        assert!(begin.contains("no answer to Begin within 0.2 s"), "{begin}");
        let mut replies = accepting(2 * CHUNK_MAX, SWAPPED);
        replies.truncate(2);
        replies.push(Reply::Silence);
        let chunk = error(replies);
        assert!(
            chunk.contains("no answer to chunk 1 (offset 192)"),
            "{chunk}"
        );
        let mut replies = accepting(2 * CHUNK_MAX, SWAPPED);
        replies.pop();
        replies.push(Reply::Silence);
        let commit = error(replies);
        assert!(commit.contains("no answer to Commit"), "{commit}");
        let closed = error(vec![Reply::HangUp]);
        assert!(closed.contains("control line closed"), "{closed}");
    }

    #[test]
    fn a_chunk_timeout_aborts_the_transfer() {
        let mut replies = accepting(2 * CHUNK_MAX, SWAPPED);
        replies.truncate(1);
        replies.push(Reply::Silence);
        let mut line = FakeLine::new(replies);
        assert!(exchange(&mut line, &image(2 * CHUNK_MAX), &quick()).is_err());
        assert_eq!(line.requests().last(), Some(&Some("abort".to_owned())));
    }

    #[test]
    fn an_out_of_step_acknowledgement_is_an_error() {
        let mut line = FakeLine::new(vec![
            Reply::Bytes(frame(Response::Ready { running_build: 1 })),
            Reply::Bytes(frame(Response::Received { next: 5 })),
        ]);
        let error = format!(
            "{:#}",
            exchange(&mut line, &image(300), &quick()).unwrap_err()
        );
        assert!(error.contains("out of step"), "{error}");
    }

    #[test]
    fn a_corrupted_frame_is_one_chunk_with_one_bit_flipped() {
        let len = 5 * CHUNK_MAX;
        let mut replies = accepting(len, SWAPPED);
        replies.truncate(3);
        replies.push(Reply::Bytes(frame(Response::Refused {
            reason: "bad frame CRC",
        })));
        let mut line = FakeLine::new(replies);
        let options = Options {
            corrupt: true,
            ..quick()
        };
        let report = exchange(&mut line, &image(len), &options).unwrap();
        assert!(matches!(
            report.outcome,
            SwapOutcome::Refused {
                at: SwapStep::Chunk { index: 2, .. },
                ..
            }
        ));
        // The third chunk (of five) went out damaged: it no longer decodes, and differs from
        // its good encoding in exactly one bit.
        let requests = line.requests();
        assert_eq!(requests[3], None, "{requests:?}");
        let image = image(len);
        let good = encode(&Request::Chunk {
            offset: 2 * CHUNK_MAX as u32,
            bytes: &image.bytes[2 * CHUNK_MAX..3 * CHUNK_MAX],
        })
        .unwrap();
        let sent = &line.sent[3];
        assert_eq!(sent.len(), good.len());
        let flipped: u32 = sent
            .iter()
            .zip(&good)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(flipped, 1);
        assert!(sent[1..sent.len() - 1].iter().all(|&byte| byte != 0));
    }

    #[test]
    fn corrupting_flips_a_data_bit_so_that_the_crc_catches_it() {
        // Code bytes (3, 2) are left alone; the data byte nearest the middle is flipped, and a
        // byte of 1 becomes 3, never 0.
        let mut frame = [0, 3, 1, 9, 2, 4, 0];
        corrupt(&mut frame);
        assert_eq!(frame, [0, 3, 1, 8, 2, 4, 0]);
        let mut frame = [0, 2, 1, 2, 1, 0];
        corrupt(&mut frame);
        assert_eq!(frame, [0, 2, 3, 2, 1, 0]);
        // Nothing but code bytes: the middle one, still never zero.
        let mut frame = [0, 1, 1, 1, 0];
        corrupt(&mut frame);
        assert_eq!(frame, [0, 1, 3, 1, 0]);
        corrupt(&mut []);
        corrupt(&mut [0]);
        // Every frame the tool sends, damaged so, fails on its CRC alone.
        let bytes: Vec<u8> = (0..=255).cycle().take(CHUNK_MAX).collect();
        for (offset, bytes) in chunks(&bytes).chain(chunks(&[0; 100])) {
            let mut frame = encode(&Request::Chunk { offset, bytes }).unwrap();
            corrupt(&mut frame);
            let mut inner = frame[1..frame.len() - 1].to_vec();
            assert!(inner.iter().all(|&byte| byte != 0));
            assert_eq!(
                wire::decode::<Request>(&mut inner).unwrap_err(),
                wire::FrameError::BadCrc
            );
        }
    }

    #[test]
    fn hook_names_are_the_configurations() {
        for hook in [
            SwapTest::RefuseState,
            SwapTest::FaultAtStart,
            SwapTest::Slow,
            SwapTest::SchemaChange,
        ] {
            let value = toml::Value::try_from(hook).unwrap();
            assert_eq!(value.as_str(), Some(hook_name(hook)));
        }
    }

    #[test]
    fn socket_paths_stay_short_enough() {
        let short = ControlLine::in_dir(Path::new("/work/target/xtask/qemu-virt"));
        assert_eq!(
            short.socket,
            Path::new("/work/target/xtask/qemu-virt/control.sock")
        );
        let deep = Path::new("/a").join("very-long-folder-name".repeat(8));
        let long = ControlLine::in_dir(&deep);
        assert!(long.socket.as_os_str().len() <= SOCKET_PATH_MAX);
        assert_eq!(long, ControlLine::in_dir(&deep), "the same path every time");
        assert_eq!(long.swapped_dir(), deep.join("swapped"));
        let args = short.qemu_args();
        assert_eq!(
            args,
            [
                "-chardev",
                "socket,id=control,path=/work/target/xtask/qemu-virt/control.sock,server=on,wait=off",
                "-serial",
                "chardev:control"
            ]
        );
    }

    #[test]
    fn an_exchange_over_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("hv-swap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let control = ControlLine::in_dir(&dir);
        let _ = std::fs::remove_file(&control.socket);
        let listener = std::os::unix::net::UnixListener::bind(&control.socket).unwrap();
        let elf = dir.join("component.elf");
        std::fs::write(&elf, b"an ELF").unwrap();
        let mut image = image(CHUNK_MAX + 1);
        image.elf = elf;
        // The hypervisor's side: answers each request as it decodes it.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut decoder = FrameDecoder::new();
            let mut buffer = [0u8; 64];
            loop {
                let read = stream.read(&mut buffer).unwrap();
                if read == 0 {
                    return;
                }
                for &byte in &buffer[..read] {
                    let Step::Frame(len) = decoder.push(byte) else {
                        continue;
                    };
                    let answer = match decoder.take::<Request>(len).unwrap() {
                        Request::Begin(_) => Response::Ready { running_build: 3 },
                        Request::Chunk { offset, bytes } => Response::Received {
                            next: offset + bytes.len() as u32,
                        },
                        Request::Commit => SWAPPED,
                        Request::Abort => continue,
                    };
                    stream.write_all(&frame(answer)).unwrap();
                }
            }
        });
        let report = transfer(&control, &image, &quick()).unwrap();
        assert!(report.swapped());
        assert_eq!(
            std::fs::read(swapped_elf(&control.swapped_dir(), image.build_id())).unwrap(),
            b"an ELF"
        );
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
