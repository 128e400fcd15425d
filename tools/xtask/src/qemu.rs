//! Running an image on QEMU: the machine configurations, the command line, the guest console,
//! the kernel's defmt log (decoded live from the semihosting chardev), timeouts and the exit
//! status.

use crate::{paths, prereqs::QEMU, progress};
use anyhow::{Context, Result, bail};
use hv_abi::ExitStatus;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The CPU and GIC a run uses (`reference/qemu-el2.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuModel {
    /// Cortex-A72 with GICv2: Armv8.0, no VHE, the Raspberry Pi 4 stand-in.
    A72,
    /// `-cpu max` with GICv3: VHE, SVE, SME, pointer auth, MTE (with tag memory, `mte=on`).
    Max,
}

/// One QEMU machine configuration.
#[derive(Clone, Debug)]
pub struct Machine {
    /// CPU model and GIC.
    pub cpu: CpuModel,
    /// Number of CPUs.
    pub smp: u32,
    /// RAM in bytes.
    pub memory: u64,
}

impl Machine {
    /// The options that select this machine (shared by runs and DTB dumps).
    pub fn args(&self) -> Vec<String> {
        // `max` gets MTE's tag memory: the host may use MTE there (HCR_EL2.ATA), and guests
        // whose manifest says `mte = true` may too, with their tags scrubbed.
        let (machine, cpu) = match self.cpu {
            CpuModel::A72 => ("virt,virtualization=on,gic-version=2", "cortex-a72"),
            CpuModel::Max => (
                "virt,virtualization=on,gic-version=3,mte=on",
                "max,pauth-impdef=on",
            ),
        };
        vec![
            "-M".into(),
            machine.into(),
            "-cpu".into(),
            cpu.into(),
            "-smp".into(),
            self.smp.to_string(),
            "-m".into(),
            format!("{}M", self.memory >> 20),
        ]
    }

    /// A short name for logs and file names.
    pub fn label(&self) -> String {
        format!("{:?}-smp{}-{}M", self.cpu, self.smp, self.memory >> 20).to_lowercase()
    }

    /// The DTB QEMU gives a guest on this machine (`-machine dumpdtb`).
    pub fn dump_dtb(&self) -> Result<Vec<u8>> {
        let path = paths::xtask_out().join(format!("qemu-{}.dtb", self.label()));
        std::fs::create_dir_all(paths::xtask_out())?;
        let output = Command::new(QEMU)
            .args(self.args())
            .arg("-machine")
            .arg(format!("dumpdtb={}", path.display()))
            .args(["-display", "none"])
            .output()
            .with_context(|| format!("running {QEMU} to dump the machine's DTB"))?;
        if !output.status.success() {
            bail!(
                "{QEMU} could not dump the DTB: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }
}

/// How the guest console is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// The user's terminal (QEMU's `-nographic` mux: Ctrl-A X quits).
    Interactive,
    /// Captured: echoed to the terminal only when `echo` is set, kept for checks.
    Captured {
        /// Also print the console as it arrives.
        echo: bool,
    },
}

/// One QEMU run.
pub struct Run<'a> {
    /// The machine.
    pub machine: &'a Machine,
    /// The composed image.
    pub image: &'a Path,
    /// The EL2 kernel's ELF, for decoding its log.
    pub kernel_elf: &'a Path,
    /// Each component's name and ELF (by id), for decoding the logs they send through the
    /// kernel.
    pub components: &'a [(String, PathBuf)],
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Console handling.
    pub console: Console,
    /// Extra QEMU options (after `--` on the command line).
    pub extra_args: &'a [String],
    /// Where to keep the logs (console and decoded hypervisor log).
    pub log_dir: PathBuf,
    /// Print the decoded hypervisor log as it arrives.
    pub show_hv_log: bool,
    /// Lines typed on the console when the run reaches a point (captured runs only).
    pub input: &'a [ConsoleInput],
}

/// A line a captured run types on the machine's console (its first UART: the host's) once the
/// console or the hypervisor's log holds `after` at least `times` times, and `and_after` (when
/// given) at least once.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleInput {
    /// What to wait for.
    pub after: &'static str,
    /// How many times it must have appeared.
    pub times: usize,
    /// Something else that must have appeared too, in either order (e.g. the host waiting for
    /// the line, when a guest may finish before the host reads its console).
    pub and_after: Option<&'static str>,
    /// What to type (a newline is added).
    pub line: &'static str,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// QEMU's exit code (`None` when it was killed at the timeout).
    pub exit_code: Option<i32>,
    /// True if the run was stopped at the timeout.
    pub timed_out: bool,
    /// The guest console (captured runs only).
    pub console: String,
    /// The decoded hypervisor log lines.
    pub hv_log: Vec<String>,
}

impl Outcome {
    /// What the exit code means.
    pub fn status(&self) -> Option<ExitStatus> {
        self.exit_code.and_then(ExitStatus::from_code)
    }

    /// A one-line description of how the run ended.
    pub fn describe(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => "timed out".to_owned(),
            (false, Some(code)) => match ExitStatus::from_code(code) {
                Some(status) => format!("{} (exit {code})", status.describe()),
                None => format!("QEMU exited with {code}"),
            },
            (false, None) => "QEMU was killed by a signal".to_owned(),
        }
    }
}

/// Decodes the kernel's defmt frames from a file QEMU appends to, and the components' frames
/// the kernel forwards inside its own (`component-log <id> [bytes]`).
pub struct LogDecoder {
    table: defmt_decoder::Table,
    components: Vec<(String, Option<defmt_decoder::Table>)>,
}

impl LogDecoder {
    fn new(kernel_elf: &Path, components: &[(String, PathBuf)]) -> Result<Self> {
        let elf = std::fs::read(kernel_elf)?;
        let components = components
            .iter()
            .map(|(name, path)| (name.clone(), std::fs::read(path).ok()))
            .collect();
        Self::from_elfs(&elf, components)
    }

    /// A decoder from the kernel's ELF and each component's (by id; `None` when missing).
    pub fn from_elfs(kernel: &[u8], components: Vec<(String, Option<Vec<u8>>)>) -> Result<Self> {
        let table =
            defmt_decoder::Table::parse(kernel)?.context("the kernel ELF has no defmt table")?;
        let components = components
            .into_iter()
            .map(|(name, elf)| {
                let table = elf.and_then(|elf| defmt_decoder::Table::parse(&elf).ok().flatten());
                (name, table)
            })
            .collect();
        Ok(Self { table, components })
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
        let (name, table) = self.components.get(index)?;
        let Some(table) = table else {
            return Some(format!(
                "[{name}] (no defmt table to decode {} bytes)",
                bytes.len()
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
            Err(_) => format!("[{name}] (undecodable log frame)"),
        };
        Some(line)
    }

    /// A kernel frame as a log line: timestamp, level and message, or the component's line
    /// it carries.
    fn line(&self, frame: &defmt_decoder::Frame<'_>) -> String {
        let timestamp = frame
            .display_timestamp()
            .map(|t| t.to_string())
            .unwrap_or_default();
        let level = frame
            .level()
            .map(|l| l.as_str().to_uppercase())
            .unwrap_or_default();
        let message = frame.display_message().to_string();
        match self.component_line(&message) {
            Some(line) => format!("{timestamp} {line}"),
            None => format!("{timestamp} {level:5} {message}"),
        }
    }

    /// The line of `candidate` (rzcobs bytes and their closing zero) if it is exactly one
    /// kernel frame, for [`crate::serial_log::Demux`].
    pub fn decode_frame(&self, candidate: &[u8]) -> Option<String> {
        let mut decoder = self.table.new_stream_decoder();
        decoder.received(candidate);
        let line = self.line(&decoder.decode().ok()?);
        // Nothing may be left over: a candidate that starts inside text decodes to garbage
        // followed by more.
        matches!(
            decoder.decode(),
            Err(defmt_decoder::DecodeError::UnexpectedEof)
        )
        .then_some(line)
    }

    /// Follows `path` until `done` is set, handing each decoded line to `sink`.
    fn follow(&self, path: &Path, done: &Mutex<bool>, mut sink: impl FnMut(String)) {
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
                        Ok(frame) => sink(self.line(&frame)),
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

/// Boots the image and waits for the run to end.
pub fn run(run: &Run) -> Result<Outcome> {
    std::fs::create_dir_all(&run.log_dir)?;
    let hv_log_raw = run.log_dir.join("hv-log.defmt");
    let _ = std::fs::remove_file(&hv_log_raw);
    std::fs::write(&hv_log_raw, b"")?;
    let mut command = Command::new(QEMU);
    command
        .args(run.machine.args())
        .arg("-kernel")
        .arg(run.image)
        .args([
            "-semihosting-config",
            "enable=on,target=native,chardev=hvlog",
        ])
        .arg("-chardev")
        .arg(format!("file,id=hvlog,path={}", hv_log_raw.display()))
        .arg("-no-reboot");
    match run.console {
        Console::Interactive => {
            command.arg("-nographic");
        }
        Console::Captured { .. } => {
            command.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
            let stdin = if run.input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            };
            command.stdin(stdin).stdout(Stdio::piped());
        }
    }
    command.args(run.extra_args);

    let decoder = LogDecoder::new(run.kernel_elf, run.components)?;
    let hv_lines = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(false));
    let start = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;

    let mut stdin = child.stdin.take();
    let mut typed = vec![false; run.input.len()];
    let console_text = Arc::new(Mutex::new(String::new()));
    let console_thread = child.stdout.take().map(|mut stdout| {
        let console_text = Arc::clone(&console_text);
        let echo = matches!(run.console, Console::Captured { echo: true });
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..read]);
                if echo {
                    print!("{text}");
                    let _ = std::io::stdout().flush();
                }
                console_text.lock().unwrap().push_str(&text);
            }
        })
    });

    let exit = std::thread::scope(|scope| {
        let lines = Arc::clone(&hv_lines);
        let show = run.show_hv_log;
        let interactive = run.console == Console::Interactive;
        let decoder = &decoder;
        let hv_log_raw = &hv_log_raw;
        let done = &done;
        let follower = scope.spawn(move || {
            decoder.follow(hv_log_raw, done, move |line| {
                if show {
                    // In the interactive terminal (raw mode) a bare \n does not return the carriage.
                    let end = if interactive { "\r\n" } else { "\n" };
                    eprint!("\x1b[2m[hv] {line}\x1b[0m{end}");
                }
                lines.lock().unwrap().push(line);
            })
        });
        let exit = loop {
            if let Some(status) = child.try_wait()? {
                break Ok::<_, anyhow::Error>((status.code(), false));
            }
            if start.elapsed() > run.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break Ok((None, true));
            }
            if let Some(stdin) = stdin.as_mut() {
                for (input, typed) in run.input.iter().zip(typed.iter_mut()) {
                    if *typed {
                        continue;
                    }
                    let seen = |needle: &str| {
                        console_text.lock().unwrap().matches(needle).count()
                            + hv_lines
                                .lock()
                                .unwrap()
                                .iter()
                                .filter(|line| line.contains(needle))
                                .count()
                    };
                    if seen(input.after) >= input.times
                        && input.and_after.is_none_or(|needle| seen(needle) > 0)
                    {
                        *typed = true;
                        let _ = writeln!(stdin, "{}", input.line);
                        let _ = stdin.flush();
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        *done.lock().unwrap() = true;
        let _ = follower.join();
        exit
    })?;
    if let Some(thread) = console_thread {
        let _ = thread.join();
    }
    let console = console_text.lock().unwrap().clone();
    let hv_log = hv_lines.lock().unwrap().clone();
    std::fs::write(run.log_dir.join("console.log"), &console)?;
    std::fs::write(run.log_dir.join("hv.log"), hv_log.join("\n") + "\n")?;
    let outcome = Outcome {
        exit_code: exit.0,
        timed_out: exit.1,
        console,
        hv_log,
    };
    progress::step(&format!(
        "run ended after {:.1}s: {}",
        start.elapsed().as_secs_f64(),
        outcome.describe()
    ));
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_machines_have_mte() {
        let machine = |cpu| Machine {
            cpu,
            smp: 2,
            memory: 1 << 30,
        };
        let max = machine(CpuModel::Max);
        assert_eq!(max.args()[1], "virt,virtualization=on,gic-version=3,mte=on");
        assert_eq!(max.label(), "max-smp2-1024m");
        // A Cortex-A72 has no MTE to give.
        let a72 = machine(CpuModel::A72);
        assert_eq!(a72.args()[1], "virt,virtualization=on,gic-version=2");
    }
}
