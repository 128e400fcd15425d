//! Running an image on QEMU: the machine configurations (`virt`, and `raspi4b` for the
//! Raspberry Pi 4 image), the command line, the guest console, the kernel's defmt log (decoded
//! live from the semihosting chardev on virt, split from the console on the Pi's mini-UART),
//! timeouts and the exit status.

mod log_decoder;
pub(crate) mod shared_line;

pub use log_decoder::LogDecoder;

use crate::swap::{ControlLine, ScheduledSwap, SwapRecord};
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

/// The QEMU machine model a board boots on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Model {
    /// `virt` with EL2 (`qemu-virt` board): the log on semihosting, the console on the PL011.
    Virt,
    /// `raspi4b` (`rpi4` board): four Cortex-A72s entering at EL2 through the spin table, 2 GiB,
    /// the GIC-400; the image is `kernel8.img` with the firmware's DTB (this file), the
    /// hypervisor's log on the mini-UART (QEMU's second serial port) beside whatever the host
    /// writes there.
    Raspi4b {
        /// The DTB QEMU passes in x0, standing for the one the Pi firmware would.
        firmware_dtb: PathBuf,
    },
}

/// One QEMU machine configuration.
#[derive(Clone, Debug)]
pub struct Machine {
    /// CPU model and GIC (`virt` only; raspi4b's are fixed).
    pub cpu: CpuModel,
    /// Number of CPUs.
    pub smp: u32,
    /// RAM in bytes.
    pub memory: u64,
    /// The machine model.
    pub model: Model,
}

/// Nodes of the Raspberry Pi 4's tree that QEMU's `raspi4b` does not emulate: accesses to
/// them take an external abort (the HDMI block's interrupt controller and I2C, which Debian's
/// kernel probes before its console is up), or they hang their drivers (PCIe, Ethernet, the
/// AVS monitor). The firmware DTB of an emulated run disables them, as the Pi firmware disables
/// what a board lacks, and the hypervisor carries that into the host's tree.
pub const RASPI4B_ABSENT: &[&str] = &[
    "/soc/avs-monitor@7d5d2000",
    "/soc/clock@7ef00000",
    "/soc/interrupt-controller@7ef00100",
    "/soc/hdmi@7ef00700",
    "/soc/i2c@7ef04500",
    "/soc/hdmi@7ef05700",
    "/soc/i2c@7ef09500",
    "/scb/pcie@7d500000",
    "/scb/ethernet@7d580000",
];

/// The firmware DTB of an emulated Raspberry Pi 4: Debian's `bcm2711-rpi-4-b.dtb` (the real
/// board's) with [`RASPI4B_ABSENT`] disabled; written once per run of the tool.
///
/// QEMU removes some nodes itself, by compatible, before it passes the tree on (PCIe and
/// Ethernet among them). A removed node says nothing to the hypervisor, which only carries
/// *disabled* nodes into the host's tree (a node a real firmware's tree lacks may just be named
/// differently there), so those nodes' compatibles get a suffix QEMU does not look for: they
/// then reach the hypervisor disabled.
pub fn raspi4b_firmware_dtb() -> Result<PathBuf> {
    let source = crate::prereqs::debian_dtb("broadcom/bcm2711-rpi-4-b.dtb")?;
    let mut tree = hv_devicetree::DeviceTree::parse(&std::fs::read(&source)?)
        .map_err(|error| anyhow::anyhow!("{}: {error:?}", source.display()))?;
    for path in RASPI4B_ABSENT {
        let node = tree
            .node_mut(path)
            .with_context(|| format!("the Pi 4's tree has no {path}"))?;
        node.set_string("status", "disabled");
        if let Some(compatible) = node.property("compatible").map(<[u8]>::to_vec) {
            let renamed: Vec<u8> = compatible
                .split(|&byte| byte == 0)
                .filter(|name| !name.is_empty())
                .flat_map(|name| [name, b"-absent-in-qemu\0"].concat())
                .collect();
            node.set_property("compatible", renamed);
        }
    }
    let out = paths::xtask_out().join("raspi4b-firmware.dtb");
    std::fs::create_dir_all(paths::xtask_out())?;
    std::fs::write(&out, tree.to_bytes())?;
    Ok(out)
}

impl Machine {
    /// The options that select this machine (shared by runs and DTB dumps).
    pub fn args(&self) -> Vec<String> {
        if let Model::Raspi4b { firmware_dtb } = &self.model {
            // The CPUs and RAM are the model's: 4 x Cortex-A72, 2 GiB.
            return vec![
                "-M".into(),
                crate::prereqs::RASPI4B_MACHINE.into(),
                "-dtb".into(),
                firmware_dtb.display().to_string(),
            ];
        }
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
        if let Model::Raspi4b { .. } = self.model {
            return "raspi4b".to_owned();
        }
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
    /// The control line (on virt QEMU's second serial port, the hypervisor's control UART; on
    /// raspi4b with hot-swap the mini-UART, relayed), served on a Unix socket for `cargo xtask
    /// swap`, and the folder where swapped-in ELFs appear for decoding the log.
    pub control: ControlLine,
    /// Whether the manifest turns hot-swap on (on raspi4b, the mini-UART is then the
    /// hypervisor's and the terminal is the host's PL011).
    pub hot_swap: bool,
    /// Swaps to perform, in order, when the run reaches their points (captured runs only).
    pub swaps: &'a [ScheduledSwap],
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
    /// The scheduled swaps that were started, in order.
    pub swaps: Vec<SwapRecord>,
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

/// Prints a decoded log line, dimmed. In the interactive terminal (raw mode) a bare \n does not
/// return the carriage.
pub(crate) fn print_hv_line(line: &str, interactive: bool) {
    let end = if interactive { "\r\n" } else { "\n" };
    eprint!("\x1b[2m[hv] {line}\x1b[0m{end}");
}

/// A captured run's stdio: the console's output read back, its input piped only when the run
/// types something.
fn captured_stdio(command: &mut Command, typing: bool) {
    let stdin = if typing {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    command.stdin(stdin).stdout(Stdio::piped());
}

/// What became of `scheduled`, started `started` into the run, from its thread's result;
/// printed as it comes.
fn swap_record(
    scheduled: &ScheduledSwap,
    started: Duration,
    joined: std::thread::Result<Result<crate::swap::SwapReport>>,
) -> SwapRecord {
    let result = match joined {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(error)) => Err(format!("{error:#}")),
        Err(_) => Err("the swap's thread panicked".to_owned()),
    };
    eprintln!(
        "    swap of {} at {:.1}s: {}",
        scheduled.image.component,
        started.as_secs_f64(),
        match &result {
            Ok(report) => report.describe(),
            Err(error) => format!("failed: {error}"),
        }
    );
    SwapRecord {
        component: scheduled.image.component.clone(),
        started,
        result,
    }
}

/// Boots the image and waits for the run to end.
pub fn run(run: &Run) -> Result<Outcome> {
    let raspi4b = matches!(run.machine.model, Model::Raspi4b { .. });
    if raspi4b && !run.swaps.is_empty() && !run.hot_swap {
        bail!("this system does not turn hot-swap on: it cannot swap components");
    }
    std::fs::create_dir_all(&run.log_dir)?;
    // A capture from an earlier run must not be read as this one's.
    let _ = std::fs::remove_file(run.log_dir.join("serial.raw"));
    let hv_log_raw = run.log_dir.join("hv-log.defmt");
    let _ = std::fs::remove_file(&hv_log_raw);
    std::fs::write(&hv_log_raw, b"")?;
    let mut command = Command::new(QEMU);
    command
        .args(run.machine.args())
        .arg("-kernel")
        .arg(run.image);
    // On raspi4b the log is on the mini-UART, beside the host's console or (with hot-swap) the
    // control line; a thread below splits the line.
    let shared_serial = raspi4b;
    // With hot-swap on raspi4b the mini-UART is the hypervisor's (log and control line): QEMU
    // serves it on a socket that this run relays for `cargo xtask swap`, and the terminal is
    // the PL011, the host's console.
    let relayed = raspi4b && run.hot_swap;
    let line_socket = run.control.line_socket();
    let relayed_args = |command: &mut Command| {
        let _ = std::fs::remove_file(&line_socket);
        command
            .arg("-chardev")
            .arg(format!(
                "socket,id=miniuart,path={},server=on,wait=on",
                line_socket.display()
            ))
            .args(["-serial", "chardev:miniuart"]);
    };
    // The control UART: QEMU serves its socket (no waiting for a client); a socket left by an
    // earlier run would refuse `cargo xtask swap`'s connection.
    let control_args = if shared_serial {
        Vec::new()
    } else {
        let _ = std::fs::remove_file(&run.control.socket);
        for dir in [Some(run.control.dir.as_path()), run.control.socket.parent()]
            .into_iter()
            .flatten()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        run.control.qemu_args()
    };
    // Lines to type need the console's input.
    let typing = !run.input.is_empty() || run.swaps.iter().any(|s| s.plan.then_type.is_some());
    if !shared_serial {
        command
            .args([
                "-semihosting-config",
                "enable=on,target=native,chardev=hvlog",
            ])
            .arg("-chardev")
            .arg(format!("file,id=hvlog,path={}", hv_log_raw.display()));
    }
    command.arg("-no-reboot");
    match run.console {
        Console::Interactive if relayed => {
            command.args(["-display", "none", "-serial", "mon:stdio"]);
            relayed_args(&mut command);
        }
        Console::Captured { .. } if relayed => {
            command.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
            relayed_args(&mut command);
            captured_stdio(&mut command, typing);
        }
        Console::Interactive if shared_serial => {
            // The PL011 (serial 0) goes nowhere; the mini-UART is the terminal, Ctrl-A X quits.
            command.args([
                "-display",
                "none",
                "-serial",
                "null",
                "-serial",
                "mon:stdio",
            ]);
            command.stdout(Stdio::piped());
        }
        Console::Interactive => {
            // `-nographic` alone would give the first serial port to the control line once
            // another -serial is named: the console (muxed with the monitor) comes first.
            command.args(["-nographic", "-serial", "mon:stdio"]);
            command.args(&control_args);
        }
        Console::Captured { .. } if shared_serial => {
            // The PL011 (serial 0) is the captured console; the mini-UART's bytes go to a file
            // that a thread follows (its log frames, and any console text beside them).
            command.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
            command
                .arg("-chardev")
                .arg(format!(
                    "file,id=miniuart,path={}",
                    run.log_dir.join("serial.raw").display()
                ))
                .args(["-serial", "chardev:miniuart"]);
            captured_stdio(&mut command, typing);
        }
        Console::Captured { .. } => {
            command.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
            command.args(&control_args);
            captured_stdio(&mut command, typing);
        }
    }
    command.args(run.extra_args);

    let decoder = Arc::new(LogDecoder::new(
        run.kernel_elf,
        run.components,
        Some(run.control.swapped_dir()),
    )?);
    let hv_lines = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(false));
    let start = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;

    let mut stdin = child.stdin.take();
    let mut typed = vec![false; run.input.len()];
    let console_text = Arc::new(Mutex::new(String::new()));
    let echo = matches!(
        run.console,
        Console::Captured { echo: true } | Console::Interactive
    );
    // Interactive raspi4b runs have the mini-UART on stdout (unless relayed); captured ones in
    // serial.raw.
    let demuxed_stdout = shared_serial && !relayed && run.console == Console::Interactive;
    let plain_stdout = if demuxed_stdout {
        None
    } else {
        child.stdout.take()
    };
    let serial_done = Arc::new(Mutex::new(false));
    let console_thread = plain_stdout.map(|mut stdout| {
        let console_text = Arc::clone(&console_text);
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
    // The mini-UART's bytes, kept raw (`serial.raw`, what `cargo xtask decode` reads) and split
    // into the console and the log.
    // The line's sending side, for the relay (QEMU's socket).
    let mut line_writer: Option<Box<dyn Write + Send>> = None;
    let serial_source: Option<Box<dyn Read + Send>> = if relayed {
        let line = shared_line::connect(&line_socket)?;
        line_writer = Some(Box::new(line.try_clone()?));
        Some(Box::new(line))
    } else if demuxed_stdout {
        child
            .stdout
            .take()
            .map(|stdout| Box::new(stdout) as Box<dyn Read + Send>)
    } else if shared_serial {
        let path = run.log_dir.join("serial.raw");
        // QEMU creates the file as it starts.
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Box::new(shared_line::Tail {
            file: std::fs::File::open(&path)?,
            done: Arc::clone(&serial_done),
        }))
    } else {
        None
    };
    let shared_thread = serial_source.map(|source| {
        let sinks = shared_line::SerialSinks::new(
            Arc::clone(&console_text),
            Arc::clone(&hv_lines),
            echo,
            run.show_hv_log,
            run.console == Console::Interactive,
        );
        // A captured run's file is the capture itself; stdout and the socket are copied to one.
        let raw_path = (demuxed_stdout || relayed).then(|| run.log_dir.join("serial.raw"));
        let decoder = Arc::clone(&decoder);
        let writer = line_writer.unwrap_or_else(|| Box::new(std::io::sink()));
        let control = relayed.then(|| run.control.socket.clone());
        std::thread::spawn(move || {
            shared_line::serve_line(
                source,
                writer,
                raw_path,
                &decoder,
                sinks,
                control.as_deref(),
            )
        })
    });

    let mut swap_records = Vec::new();
    let exit = std::thread::scope(|scope| {
        let mut swapping = None;
        let lines = Arc::clone(&hv_lines);
        let show = run.show_hv_log;
        let interactive = run.console == Console::Interactive;
        let decoder = &*decoder;
        let hv_log_raw = &hv_log_raw;
        let done = &done;
        let follower = scope.spawn(move || {
            decoder.follow(hv_log_raw, done, move |line| {
                if show {
                    print_hv_line(&line, interactive);
                }
                lines.lock().unwrap().push(line);
            })
        });
        let exit = loop {
            if let Some(status) = child.try_wait()? {
                break Ok::<_, anyhow::Error>((status.code(), false));
            }
            // Without semihosting the run's end is the kernel's last line; its CPUs then park.
            if shared_serial {
                let ended = hv_lines.lock().unwrap().iter().find_map(|line| {
                    let reason = line.split("run ends: ").nth(1)?;
                    (0..=7)
                        .filter_map(ExitStatus::from_code)
                        .find(|status| status.describe() == reason.trim())
                });
                if let Some(status) = ended {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Ok((Some(status as i32), false));
                }
            }
            if start.elapsed() > run.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break Ok((None, true));
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
            if let Some(stdin) = stdin.as_mut() {
                for (input, typed) in run.input.iter().zip(typed.iter_mut()) {
                    if *typed {
                        continue;
                    }
                    if seen(input.after) >= input.times
                        && input.and_after.is_none_or(|needle| seen(needle) > 0)
                    {
                        *typed = true;
                        let _ = writeln!(stdin, "{}", input.line);
                        let _ = stdin.flush();
                    }
                }
            }
            // One swap at a time (QEMU's socket takes one client), each once its point is
            // reached, in order.
            if swapping.as_ref().is_some_and(
                |(thread, _): &(std::thread::ScopedJoinHandle<_>, _)| thread.is_finished(),
            ) && let Some((thread, started)) = swapping.take()
                && let Some(scheduled) = run.swaps.get(swap_records.len())
            {
                swap_records.push(swap_record(scheduled, started, thread.join()));
                if let (Some(line), Some(stdin)) = (scheduled.plan.then_type, stdin.as_mut()) {
                    let _ = writeln!(stdin, "{line}");
                    let _ = stdin.flush();
                }
            }
            if swapping.is_none()
                && let Some(scheduled) = run.swaps.get(swap_records.len())
                && seen(scheduled.plan.after) >= scheduled.plan.times
            {
                let control = &run.control;
                let options = scheduled.options;
                let image = &scheduled.image;
                let thread = scope.spawn(move || crate::swap::transfer(control, image, &options));
                swapping = Some((thread, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // A swap still going when QEMU stopped ends as its line closes.
        if let Some((thread, started)) = swapping.take()
            && let Some(scheduled) = run.swaps.get(swap_records.len())
        {
            swap_records.push(swap_record(scheduled, started, thread.join()));
        }
        *done.lock().unwrap() = true;
        let _ = follower.join();
        exit
    })?;
    if let Some(thread) = console_thread {
        let _ = thread.join();
    }
    *serial_done.lock().unwrap() = true;
    if let Some(thread) = shared_thread {
        match thread.join() {
            Ok(Err(error)) => eprintln!("the serial line could not be read: {error:#}"),
            Err(_) => eprintln!("the serial line's reader panicked"),
            Ok(Ok(())) => {}
        }
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
        swaps: swap_records,
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
            model: Model::Virt,
        };
        let max = machine(CpuModel::Max);
        assert_eq!(max.args()[1], "virt,virtualization=on,gic-version=3,mte=on");
        assert_eq!(max.label(), "max-smp2-1024m");
        // A Cortex-A72 has no MTE to give.
        let a72 = machine(CpuModel::A72);
        assert_eq!(a72.args()[1], "virt,virtualization=on,gic-version=2");
    }
}
