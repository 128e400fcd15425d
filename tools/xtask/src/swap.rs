//! `cargo xtask swap`: hot-swapping one component of a running system (DESIGN decision 11).
//!
//! The tool rebuilds the component as the image's composer built it (same region, same
//! configuration; with `--test-hook`, a configuration that makes it misbehave on purpose), and
//! hands the new image to the hypervisor over the board's control UART, which the run serves on
//! a Unix socket ([`ControlLine`]): QEMU itself for virt's own PL011; `cargo xtask run` (QEMU's
//! raspi4b) or `cargo xtask attach` (a physical Pi) for the Pi's mini-UART, which also carries
//! the log. The exchange is `hv_ipc::swap`'s protocol: Begin, the chunks of the
//! zlib-compressed image in order (up to [`WINDOW`] unanswered; one on the mini-UART), Commit;
//! every request is answered, in order.
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
use hv_ipc::swap::{self as wire, CHUNK_MAX, ImageHeader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod exchange;
mod watch;
pub use exchange::*;
pub use watch::watch;

/// Longest socket path used as it is: `sun_path` holds 108 bytes with its closing NUL.
const SOCKET_PATH_MAX: usize = 100;

/// Where a run's control line and the ELFs swapped into it live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlLine {
    /// The run's folder: `swapped/` in it keeps the swapped-in ELFs.
    pub dir: PathBuf,
    /// The Unix socket the control UART is served on (by QEMU, or by the run's or attach's
    /// relay for a shared line): `<dir>/control.sock`, or, when that
    /// path is too long for a socket, `/tmp/hv-control-<hash of that path>.sock` (so every
    /// tool finds the same).
    pub socket: PathBuf,
}

impl ControlLine {
    /// The control line of a run whose files are in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            socket: socket_in(dir, "control"),
        }
    }

    /// The socket QEMU serves a shared line on (the Pi's mini-UART, log and control line),
    /// which the run relays to [`ControlLine::socket`]: `line.sock` beside it, or in `/tmp`
    /// as that one.
    pub fn line_socket(&self) -> PathBuf {
        socket_in(&self.dir, "line")
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

/// The socket `<dir>/<name>.sock`, or, when that path is too long for a socket,
/// `/tmp/hv-<name>-<hash of that path>.sock` (so every tool finds the same).
fn socket_in(dir: &Path, name: &str) -> PathBuf {
    let socket = dir.join(format!("{name}.sock"));
    if socket.as_os_str().len() <= SOCKET_PATH_MAX {
        return socket;
    }
    // Any stable hash of the intended path will do; this one is at hand. `/tmp`, not
    // `$TMPDIR`: the run and the swap must agree whatever their environments.
    let hash = wire::build_id(socket.as_os_str().as_encoded_bytes());
    Path::new("/tmp").join(format!("hv-{name}-{hash:016x}.sock"))
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
    /// It never answers.
    Hang,
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
            Hook::Hang => SwapTest::Hang,
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
        SwapTest::Hang => "hang",
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
    /// One chunk in flight at a time: for a control UART whose receive FIFO cannot hold a
    /// chunk's bytes while the supervisor writes an answer (the Pi's mini-UART: 8 bytes, no
    /// flow control). See [`Options::for_board`].
    pub stop_and_wait: bool,
}

impl Options {
    /// The options for `board`'s control line.
    pub fn for_board(board: &hv_board::Board) -> Self {
        Self {
            stop_and_wait: board
                .control_uart
                .is_some_and(|control| control.kind == hv_board::UartKind::MiniUart),
            ..Self::default()
        }
    }
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
            show_progress: request.show_progress,
            ..Options::for_board(request.system.board)
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
    /// How to send it (the board's line; `corrupt` from the plan).
    pub options: Options,
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
            "no `{run_command}` is running, nor `cargo xtask attach` for a board (no control \
             socket at {})",
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
mod tests;
