//! The defmt log decoder: the kernel's frames decoded with its ELF, and the components' frames
//! (which the kernel forwards inside its own) with each component's ELF, switching a component's
//! table when the kernel says a new build of it runs (after a swap or a rollback).

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Decodes the kernel's defmt frames from a file QEMU appends to, and the components' frames
/// the kernel forwards inside its own (`component-log <index> [bytes]`), each with the ELF of
/// the build that component runs: the kernel names it (`component <name> (index <i>) runs
/// build <id>`) at boot and after every swap or rollback, and the decoder switches to that
/// build's ELF (the image's, by the build ids of their images, or one `cargo xtask swap` kept
/// in the run's `swapped/` folder).
pub struct LogDecoder {
    table: defmt_decoder::Table,
    components: Mutex<Components>,
}

/// The components' builds as the log has named them so far.
struct Components {
    /// By index.
    running: Vec<Running>,
    /// The defmt table of each build whose ELF is known, by build id.
    builds: HashMap<u64, Arc<defmt_decoder::Table>>,
    /// Where swapped-in builds' ELFs appear (`<build id as 016x>.elf`), if anywhere.
    swapped_dir: Option<PathBuf>,
}

/// One component's build in the log.
struct Running {
    name: String,
    /// The build it runs, if known.
    build: Option<u64>,
    /// That build's table (none: its frames are shown as bytes).
    table: Option<Arc<defmt_decoder::Table>>,
}

/// A kernel line: `component <name> (index <i>) runs build <id>`, as (index, build id).
fn runs_build(message: &str) -> Option<(usize, u64)> {
    let rest = message.strip_prefix("component ")?;
    let (_, rest) = rest.rsplit_once(" (index ")?;
    let (index, build) = rest.split_once(") runs build ")?;
    let build = build.trim();
    let build = build.strip_prefix("0x").unwrap_or(build);
    Some((index.parse().ok()?, u64::from_str_radix(build, 16).ok()?))
}

/// The build id of a component's ELF: that of the image the composer makes of it.
fn elf_build_id(elf: &[u8]) -> Option<u64> {
    crate::elf::to_flat(elf)
        .ok()
        .map(|flat| hv_ipc::swap::build_id(&flat.bytes))
}

/// Bytes as hex, for frames nothing can decode.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A kernel frame's parts, rendered (nothing decoded from them yet).
struct KernelLine {
    timestamp: String,
    level: String,
    message: String,
}

impl KernelLine {
    fn of(frame: &defmt_decoder::Frame<'_>) -> Self {
        Self {
            timestamp: frame
                .display_timestamp()
                .map(|t| t.to_string())
                .unwrap_or_default(),
            level: frame
                .level()
                .map(|l| l.as_str().to_uppercase())
                .unwrap_or_default(),
            message: frame.display_message().to_string(),
        }
    }
}

impl Components {
    /// The table of build `build`: known already, or from the swapped-in ELFs (looked for
    /// again each time, since `cargo xtask swap` adds them during the run).
    fn table_of(&mut self, build: u64) -> Option<Arc<defmt_decoder::Table>> {
        if let Some(table) = self.builds.get(&build) {
            return Some(Arc::clone(table));
        }
        let path = crate::swap::swapped_elf(self.swapped_dir.as_deref()?, build);
        let elf = std::fs::read(path).ok()?;
        let table = Arc::new(defmt_decoder::Table::parse(&elf).ok().flatten()?);
        self.builds.insert(build, Arc::clone(&table));
        Some(table)
    }

    /// Component `index` runs build `build` from now on; returns a note for the log line
    /// when its frames cannot be decoded.
    fn switch(&mut self, index: usize, build: u64) -> Option<String> {
        let table = self.table_of(build);
        let missing = table.is_none();
        let swapped_dir = self.swapped_dir.clone();
        let running = self.running.get_mut(index)?;
        running.build = Some(build);
        running.table = table;
        missing.then(|| {
            let place =
                swapped_dir.map_or_else(String::new, |dir| format!(" (nor in {})", dir.display()));
            format!(
                " [no ELF of this build among the image's{place}: {}'s frames are shown as \
                 bytes]",
                running.name
            )
        })
    }
}

impl LogDecoder {
    pub(super) fn new(
        kernel_elf: &Path,
        components: &[(String, PathBuf)],
        swapped_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let elf = std::fs::read(kernel_elf)?;
        let components = components
            .iter()
            .map(|(name, path)| (name.clone(), std::fs::read(path).ok()))
            .collect();
        Self::from_elfs(&elf, components, swapped_dir)
    }

    /// A decoder from the kernel's ELF and each component's (by index; `None` when missing),
    /// which looks for swapped-in builds in `swapped_dir`.
    pub fn from_elfs(
        kernel: &[u8],
        components: Vec<(String, Option<Vec<u8>>)>,
        swapped_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let table =
            defmt_decoder::Table::parse(kernel)?.context("the kernel ELF has no defmt table")?;
        let mut builds = HashMap::new();
        let running = components
            .into_iter()
            .map(|(name, elf)| {
                let table = elf
                    .as_deref()
                    .and_then(|elf| defmt_decoder::Table::parse(elf).ok().flatten())
                    .map(Arc::new);
                let build = elf.as_deref().and_then(elf_build_id);
                if let (Some(build), Some(table)) = (build, &table) {
                    builds.insert(build, Arc::clone(table));
                }
                Running { name, build, table }
            })
            .collect();
        Ok(Self {
            table,
            components: Mutex::new(Components {
                running,
                builds,
                swapped_dir,
            }),
        })
    }

    /// Turns a kernel line carrying a component's frame into that component's decoded line.
    fn component_line(&self, message: &str) -> Option<String> {
        let rest = message.strip_prefix("component-log ")?;
        let (index, bytes) = rest.split_once(' ')?;
        let index: usize = index.parse().ok()?;
        let bytes: Vec<u8> = bytes
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .filter_map(|byte| byte.trim().parse().ok())
            .collect();
        let (name, build, table) = {
            let components = self.components.lock().unwrap();
            let running = components.running.get(index)?;
            (running.name.clone(), running.build, running.table.clone())
        };
        let Some(table) = table else {
            let build = build.map_or_else(String::new, |build| format!(" of build {build:#x}"));
            return Some(format!(
                "[{name}] (no defmt table{build} to decode {} bytes: {})",
                bytes.len(),
                hex(&bytes)
            ));
        };
        let mut decoder = table.new_stream_decoder();
        decoder.received(&bytes);
        let line = match decoder.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map(|l| l.as_str().to_uppercase())
                    .unwrap_or_default();
                format!("{level:5} [{name}] {}", frame.display_message())
            }
            Err(_) => format!("[{name}] (undecodable log frame: {})", hex(&bytes)),
        };
        Some(line)
    }

    /// A kernel line as a log line: timestamp, level and message, or the component's line
    /// it carries. A line naming a component's build switches that component's table.
    fn line(&self, line: KernelLine) -> String {
        let KernelLine {
            timestamp,
            level,
            message,
        } = line;
        if let Some(decoded) = self.component_line(&message) {
            return format!("{timestamp} {decoded}");
        }
        let note = runs_build(&message)
            .and_then(|(index, build)| self.components.lock().unwrap().switch(index, build))
            .unwrap_or_default();
        format!("{timestamp} {level:5} {message}{note}")
    }

    /// The line of `candidate` (rzcobs bytes and their closing zero) if it is exactly one
    /// kernel frame, for [`crate::serial_log::Demux`].
    pub fn decode_frame(&self, candidate: &[u8]) -> Option<String> {
        let mut decoder = self.table.new_stream_decoder();
        decoder.received(candidate);
        let line = KernelLine::of(&decoder.decode().ok()?);
        // Nothing may be left over: a candidate that starts inside text decodes to garbage
        // followed by more. Only a frame taken may switch a component's build.
        matches!(
            decoder.decode(),
            Err(defmt_decoder::DecodeError::UnexpectedEof)
        )
        .then(|| self.line(line))
    }

    /// Follows `path` until `done` is set, handing each decoded line to `sink`.
    pub(super) fn follow(&self, path: &Path, done: &Mutex<bool>, mut sink: impl FnMut(String)) {
        let mut decoder = self.table.new_stream_decoder();
        let Ok(mut file) = std::fs::File::open(path) else {
            sink(format!("(cannot open the log {})", path.display()));
            return;
        };
        let mut fresh = Vec::new();
        loop {
            let finished = *done.lock().unwrap();
            fresh.clear();
            // The file position advances past what was read; QEMU appends behind it.
            if file.read_to_end(&mut fresh).is_ok() && !fresh.is_empty() {
                decoder.received(&fresh);
                loop {
                    match decoder.decode() {
                        Ok(frame) => sink(self.line(KernelLine::of(&frame))),
                        Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
                        Err(defmt_decoder::DecodeError::Malformed) => {
                            sink("(malformed log frame skipped)".to_owned());
                        }
                    }
                }
            }
            if finished {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod log_tests;
