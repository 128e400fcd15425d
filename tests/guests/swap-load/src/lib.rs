//! Test guest `swap-load`: two CPUs call components in a tight loop, every answer checked
//! exactly, while the system test hot-swaps a component underneath; it proves no call was lost,
//! refused or answered wrongly. It runs as the host VM on 2 CPUs
//! (`manifests/tests/hot-swap-vm-manager.toml`, `manifests/tests/hot-swap-mmio-guard.toml`).
//!
//! # Modes
//!
//! - `calls` (binary `hv-guest-swap-load`): the calls cycle HYP_PING_SUPERVISOR with a 32-bit
//!   nonce unique to the CPU and the call (the VM manager asks the supervisor; the answer must be
//!   the nonce, [`nonce`]), PSCI_VERSION, HYP_PING_SUPERVISOR again, SMCCC_VERSION (both answered by the VM
//!   manager itself: exactly 0x10001, version 1.1).
//! - `mmio` (binary `hv-guest-swap-load-mmio`): before anything is printed, MMIO_GUARD_MAP of
//!   a *kept* set (the console UART's granule, then the granules of the RTC, fw-cfg and GPIO
//!   the host's device tree names) and MMIO_GUARD_ENROLL, all must return SUCCESS. The calls
//!   then cycle MMIO_GUARD_MAP of the CPU's own *loop granule* (SUCCESS), MMIO_GUARD_INFO (the
//!   4096-byte granule), MMIO_GUARD_UNMAP of the loop granule (SUCCESS), HYP_MEMINFO (4096),
//!   all answered by the mmio-guard component. The console is emulated and guarded, so every
//!   console access CPU 0 makes between rounds (the stop poll, the progress lines) is checked
//!   against the kept set: a guard that lost it would abort the access.
//!
//! The binary picks the default mode; the command line (`/chosen/bootargs`) may override it and
//! the other options ([`parse_options`]): `swap-load.mode=calls|mmio`,
//! `swap-load.stop-after=<seconds>` (0: only a typed `q` stops the run),
//! `swap-load.budget=<calls per CPU>` and `swap-load.give-up=<seconds>`. Other words (e.g. `console=ttyAMA0`) are ignored.
//!
//! # What it prints (CPU 0 only; CPU 1 leaves its results in shared words)
//!
//! ```text
//! swap-load: mode=calls stop=q budget=5000000 calls or 300 s
//! swap-load: looping on 2 CPUs
//! swap-load: cpu0 calls=20480 cpu1 calls=20311            (about once a second)
//! swap-load: wrong answer cpu1 call=77 function=0xc6000080 got=0x.. expected=0x..   (each, up to 8 per CPU)
//! swap-load: stop requested                               (a `q` was read)
//! swap-load: done cpu0 calls=<n> ok=<n> wrong=<n> cpu1 calls=<n> ok=<n> wrong=<n>
//! swap-load: longest call cpu0=<us>us cpu1=<us>us
//! swap-load: PASS                                         (or swap-load: FAIL <reasons>)
//! 1 passed, 0 failed                                      (or 0 passed, 1 failed)
//! ```
//!
//! Mode `mmio` also prints `swap-load: kept granules …: MAP 0 …, ENROLL 0` and
//! `swap-load: loop granules cpu0=… cpu1=…` before looping, `swap-load: stopping after N s` for a
//! timed stop and `swap-load: checking the kept granules` before the verdict. Its console is
//! emulated: the VM manager prints every line prefixed `[host] ` and cuts lines at 120 bytes, so
//! match the lines as substrings.
//!
//! The last line is the test harness's summary, so a system test that checks a test guest's
//! `N passed, N failed` line reads this guest's verdict too. The run then ends with PSCI
//! `SYSTEM_OFF` (PASS) or `SYSTEM_RESET` (FAIL).
//!
//! # Stopping
//!
//! CPU 0 polls the console's receive FIFO (PL011 `UARTFR.RXFE`, then `UARTDR`) every
//! [`POLL_EVERY`] calls; a `q` stops the run: CPU 0 tells CPU 1 (a shared word), waits for it
//! (at most [`WAIT_SECONDS`]; a CPU 1 stuck in a call that never returns is a FAIL) and
//! reports. With `stop-after` set the run also stops by itself after that many seconds of
//! looping, as a normal end (`swap-load: stopping after N s`). Should neither come, the run
//! ends at the budget ([`DEFAULT_BUDGET`] calls on CPU 0) or after [`DEFAULT_GIVE_UP_SECONDS`],
//! whichever comes first, with `swap-load: FAIL no stop request …`, so a broken test never
//! hangs.
//!
//! An emulated host console (mode `mmio`'s system) receives nothing typed on the real UART
//! (the VM manager hands typed bytes only to guests' emulated consoles), so the `mmio` binary
//! defaults to a timed stop ([`MMIO_STOP_AFTER_SECONDS`]); a `q` is still obeyed should one
//! arrive.
//!
//! Built for the host the binaries are empty programs; this library's pure parts (the options,
//! the calls and their expected answers) are host-tested.

#![cfg_attr(target_os = "none", no_std)]
#![deny(clippy::undocumented_unsafe_blocks)]

use hv_ipc::guest_abi::{host, kvm, psci, smccc};

#[cfg(target_os = "none")]
mod guest;
#[cfg(target_os = "none")]
pub use guest::run;

/// Which component paths the loop exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// HYP_PING_SUPERVISOR, PSCI_VERSION and SMCCC_VERSION: the VM manager (and through it the
    /// supervisor).
    Calls,
    /// MMIO_GUARD_MAP / UNMAP / INFO and HYP_MEMINFO: the mmio-guard component, with a kept
    /// set that guards the console.
    Mmio,
}

impl Mode {
    /// Its name on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Calls => "calls",
            Mode::Mmio => "mmio",
        }
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "calls" => Some(Mode::Calls),
            "mmio" => Some(Mode::Mmio),
            _ => None,
        }
    }

    /// As a secondary CPU's entry argument.
    pub fn to_word(self) -> u64 {
        match self {
            Mode::Calls => 0,
            Mode::Mmio => 1,
        }
    }

    /// From [`Mode::to_word`].
    pub fn from_word(word: u64) -> Self {
        if word == 1 { Mode::Mmio } else { Mode::Calls }
    }
}

/// The calls each CPU may make before the run gives up waiting for a stop request.
pub const DEFAULT_BUDGET: u64 = 5_000_000;
/// The seconds of looping after which the run gives up waiting for a stop request, whatever
/// the budget: under QEMU TCG a call takes about a millisecond (both CPUs queue on the one
/// component), so the budget alone would take hours.
pub const DEFAULT_GIVE_UP_SECONDS: u64 = 300;
/// The `mmio` binary's timed stop, in seconds of looping (see the crate documentation).
pub const MMIO_STOP_AFTER_SECONDS: u64 = 40;
/// CPU 0 polls the console for a stop request (and checks the time) every this many calls.
pub const POLL_EVERY: u64 = 256;
/// How long CPU 0 waits for CPU 1 to start looping, and to stop once told, in seconds.
pub const WAIT_SECONDS: u64 = 10;
/// The MMIO guard's granule: what MAP and UNMAP cover, what INFO and HYP_MEMINFO answer.
pub const GRANULE: u64 = 4096;
/// MMIO_GUARD_MAP's x2 (a MAIR index in the call's definition; the guard ignores it).
pub const MAP_ATTRIBUTES: u64 = 1;
/// The compatible strings of the devices whose granules mode `mmio` keeps mapped beside the
/// console's (QEMU virt's PL031 RTC, fw-cfg and PL061 GPIO), when the device tree has them.
pub const KEPT_DEVICES: [&str; 3] = ["arm,pl031", "qemu,fw-cfg-mmio", "arm,pl061"];

/// The run's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// What to call.
    pub mode: Mode,
    /// Stop by itself after this many seconds of looping (0: only a typed `q` stops it).
    pub stop_after_seconds: u64,
    /// Calls per CPU before giving up waiting for a stop request.
    pub budget: u64,
    /// Seconds of looping before giving up waiting for a stop request.
    pub give_up_seconds: u64,
}

impl Options {
    /// The `calls` binary's defaults: wait for `q`.
    pub const CALLS: Options = Options {
        mode: Mode::Calls,
        stop_after_seconds: 0,
        budget: DEFAULT_BUDGET,
        give_up_seconds: DEFAULT_GIVE_UP_SECONDS,
    };
    /// The `mmio` binary's defaults: a timed stop (its emulated console gets no input).
    pub const MMIO: Options = Options {
        mode: Mode::Mmio,
        stop_after_seconds: MMIO_STOP_AFTER_SECONDS,
        budget: DEFAULT_BUDGET,
        give_up_seconds: DEFAULT_GIVE_UP_SECONDS,
    };
}

/// A `swap-load.` word of the command line that makes no sense: the word itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadOption<'a>(pub &'a str);

/// `defaults` with what the command line `bootargs` sets: `swap-load.mode=calls|mmio`,
/// `swap-load.stop-after=<seconds>`, `swap-load.budget=<calls>`,
/// `swap-load.give-up=<seconds>` (decimal; a budget and a give-up time of at least 1). Words without the `swap-load.` prefix are someone else's and ignored; the last of
/// repeated options wins.
pub fn parse_options(bootargs: &str, defaults: Options) -> Result<Options, BadOption<'_>> {
    let mut options = defaults;
    for word in bootargs.split_ascii_whitespace() {
        let Some(option) = word.strip_prefix("swap-load.") else {
            continue;
        };
        let bad = BadOption(word);
        let (key, value) = option.split_once('=').ok_or(bad)?;
        match key {
            "mode" => options.mode = Mode::from_name(value).ok_or(bad)?,
            "stop-after" => options.stop_after_seconds = value.parse().map_err(|_| bad)?,
            "budget" => {
                options.budget = value.parse().ok().filter(|&b| b > 0).ok_or(bad)?;
            }
            "give-up" => {
                options.give_up_seconds = value.parse().ok().filter(|&s| s > 0).ok_or(bad)?;
            }
            _ => return Err(bad),
        }
    }
    Ok(options)
}

/// One call of the loop and the `x0` it must return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The function ID (`w0`).
    pub function: u32,
    /// `x1`, `x2`.
    pub args: [u64; 2],
    /// The one right answer.
    pub expected: u64,
}

/// HYP_PING_SUPERVISOR's nonce for call `n` of CPU `cpu`. The supervisor's Ping carries a
/// 32-bit nonce (`SupervisorRequest::Ping`; the VM manager passes the low 32 bits of x1 and
/// answers with the Pong's, zero-extended), so the nonce is 32 bits: the CPU (plus one) in the
/// top 4, the call number scrambled over the other 28, so every call of every CPU has its own
/// (for `n < 2^28`, far beyond a run) and an answer meant for another call or CPU is seen as
/// wrong.
pub fn nonce(cpu: usize, n: u64) -> u64 {
    const SCRAMBLE: u64 = 0x0a5c_3c3c;
    const LOW_28: u64 = (1 << 28) - 1;
    ((cpu as u64 + 1) << 28) | ((n ^ SCRAMBLE) & LOW_28)
}

/// Call number `n` of CPU `cpu` in `mode`; `loop_granule` is the CPU's own granule (mode
/// `mmio`).
pub fn call(mode: Mode, cpu: usize, n: u64, loop_granule: u64) -> Call {
    let ping = Call {
        function: host::HYP_PING_SUPERVISOR,
        args: [nonce(cpu, n), 0],
        expected: nonce(cpu, n),
    };
    match (mode, n % 4) {
        (Mode::Calls, 1) => Call {
            function: psci::PSCI_VERSION,
            args: [0, 0],
            expected: psci::VERSION_1_1,
        },
        (Mode::Calls, 3) => Call {
            function: smccc::SMCCC_VERSION,
            args: [0, 0],
            expected: smccc::VERSION_1_1,
        },
        (Mode::Calls, _) => ping,
        (Mode::Mmio, 0) => Call {
            function: kvm::MMIO_GUARD_MAP,
            args: [loop_granule, MAP_ATTRIBUTES],
            expected: smccc::SUCCESS as u64,
        },
        (Mode::Mmio, 1) => Call {
            function: kvm::MMIO_GUARD_INFO,
            args: [0, 0],
            expected: GRANULE,
        },
        (Mode::Mmio, 2) => Call {
            function: kvm::MMIO_GUARD_UNMAP,
            args: [loop_granule, 0],
            expected: smccc::SUCCESS as u64,
        },
        (Mode::Mmio, _) => Call {
            function: kvm::HYP_MEMINFO,
            args: [0, 0],
            expected: GRANULE,
        },
    }
}

/// The loop granule of CPU `cpu` (0 or 1): the granule after the `cpu`-th kept granule (after
/// the console's for CPU 0), so MAP extends that granule's run of the guard's set and UNMAP
/// shrinks it again, right beside what must stay mapped; a granule neither kept nor another
/// CPU's. `kept[0]` is the console's.
pub fn loop_granule(kept: &[u64], cpu: usize) -> u64 {
    let taken = |granule: u64, cpu: usize| {
        kept.contains(&granule) || (cpu == 1 && granule == loop_granule(kept, 0))
    };
    let mut granule = kept.get(cpu).or(kept.first()).copied().unwrap_or(0) + GRANULE;
    while taken(granule, cpu) {
        granule += GRANULE;
    }
    granule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_and_override() {
        assert_eq!(parse_options("", Options::CALLS), Ok(Options::CALLS));
        assert_eq!(
            parse_options("console=ttyAMA0 quiet", Options::MMIO),
            Ok(Options::MMIO)
        );
        let options = parse_options(
            "console=ttyAMA0 swap-load.mode=mmio swap-load.stop-after=12 swap-load.budget=99 \
             swap-load.give-up=7",
            Options::CALLS,
        );
        assert_eq!(
            options,
            Ok(Options {
                mode: Mode::Mmio,
                stop_after_seconds: 12,
                budget: 99,
                give_up_seconds: 7,
            })
        );
        assert_eq!(
            parse_options("swap-load.stop-after=0", Options::MMIO).map(|o| o.stop_after_seconds),
            Ok(0)
        );
    }

    #[test]
    fn bad_options_are_named() {
        for word in [
            "swap-load.mode=fast",
            "swap-load.mode",
            "swap-load.budget=0",
            "swap-load.budget=-1",
            "swap-load.stop-after=1s",
            "swap-load.give-up=0",
            "swap-load.speed=1",
        ] {
            assert_eq!(
                parse_options(&format!("console=ttyAMA0 {word}"), Options::CALLS),
                Err(BadOption(word))
            );
        }
    }

    #[test]
    fn modes_round_trip() {
        for mode in [Mode::Calls, Mode::Mmio] {
            assert_eq!(Mode::from_name(mode.name()), Some(mode));
            assert_eq!(Mode::from_word(mode.to_word()), mode);
        }
    }

    #[test]
    fn nonces_are_unique_per_cpu_and_call() {
        let mut seen = std::collections::HashSet::new();
        for cpu in 0..2 {
            for n in (0..10_000).chain([1 << 20, (1 << 28) - 1]) {
                let nonce = nonce(cpu, n);
                assert!(seen.insert(nonce), "cpu {cpu} call {n}");
                // What the Ping carries.
                assert_eq!(nonce >> 32, 0);
            }
        }
        // Every byte of the 32 the answer has matters.
        assert!(nonce(0, 1).to_le_bytes()[..4].iter().all(|&b| b != 0));
        assert_ne!(nonce(1, 1) >> 28, nonce(0, 1) >> 28);
    }

    #[test]
    fn calls_cycle_with_exact_answers() {
        let functions: Vec<u32> = (0..4)
            .map(|n| call(Mode::Calls, 0, n, 0).function)
            .collect();
        assert_eq!(
            functions,
            [
                host::HYP_PING_SUPERVISOR,
                psci::PSCI_VERSION,
                host::HYP_PING_SUPERVISOR,
                smccc::SMCCC_VERSION
            ]
        );
        let ping = call(Mode::Calls, 1, 6, 0);
        assert_eq!(ping.args[0], nonce(1, 6));
        assert_eq!(ping.expected, nonce(1, 6));
        assert_eq!(call(Mode::Calls, 0, 1, 0).expected, 0x1_0001);
        assert_eq!(call(Mode::Calls, 0, 3, 0).expected, 0x1_0001);

        let g = 0x0900_1000;
        let mmio: Vec<Call> = (4..8).map(|n| call(Mode::Mmio, 1, n, g)).collect();
        assert_eq!(
            mmio,
            [
                Call {
                    function: 0xC600_0007,
                    args: [g, MAP_ATTRIBUTES],
                    expected: 0
                },
                Call {
                    function: 0xC600_0005,
                    args: [0, 0],
                    expected: 4096
                },
                Call {
                    function: 0xC600_0008,
                    args: [g, 0],
                    expected: 0
                },
                Call {
                    function: 0xC600_0002,
                    args: [0, 0],
                    expected: 4096
                },
            ]
        );
    }

    #[test]
    fn loop_granules_sit_beside_kept_ones_and_differ() {
        let kept = [0x0900_0000, 0x0901_0000, 0x0902_0000, 0x0903_0000];
        assert_eq!(loop_granule(&kept, 0), 0x0900_1000);
        assert_eq!(loop_granule(&kept, 1), 0x0901_1000);
        // Only the console kept: CPU 1 takes the next free granule.
        assert_eq!(loop_granule(&kept[..1], 0), 0x0900_1000);
        assert_eq!(loop_granule(&kept[..1], 1), 0x0900_2000);
        // A kept granule right after: skipped.
        let crowded = [0x0900_0000, 0x0900_1000];
        assert_eq!(loop_granule(&crowded, 0), 0x0900_2000);
        assert_eq!(loop_granule(&crowded, 1), 0x0900_3000);
    }
}
