//! The loop on two CPUs, the stop and the report (bare metal only); see the crate documentation.
//!
//! The MMU is off, so the CPUs share only [`SharedWord`]s, each written by one CPU: CPU 0
//! writes [`STOP`] and the loop granules, CPU *i* its own [`CpuState`].

use hv_guest_rt::smccc::{self, kvm};
use hv_guest_rt::smp::{self, SecondaryStack, SharedWord};
use hv_guest_rt::{Env, TakenException, catch_exception, counter, print, println, psci};

use crate::{
    BadOption, GRANULE, KEPT_DEVICES, MAP_ATTRIBUTES, Mode, Options, POLL_EVERY, WAIT_SECONDS,
};

/// The CPUs that loop.
const CPUS: usize = 2;
/// Wrong answers each CPU keeps the details of (the count goes on beyond).
const RECORDS: usize = 8;
/// Granules mode `mmio` keeps mapped: the console's and up to three devices'.
const MAX_KEPT: usize = 1 + KEPT_DEVICES.len();

/// `UARTDR`: data register (a read pops the receive FIFO).
const UARTDR: usize = 0x00;
/// `UARTFR`: flag register.
const UARTFR: usize = 0x18;
/// `UARTCR`: control register.
const UARTCR: usize = 0x30;
/// `UARTFR.RXFE`: the receive FIFO is empty.
const FR_RXFE: u32 = 1 << 4;
/// `UARTCR` UARTEN | TXE | RXE: the UART, its transmitter and its receiver enabled.
const CR_ENABLE_RX_TX: u32 = (1 << 0) | (1 << 8) | (1 << 9);
/// What a typed stop request is.
const STOP_KEY: u8 = b'q';

/// One wrong answer.
struct Record {
    call: SharedWord,
    function: SharedWord,
    got: SharedWord,
    expected: SharedWord,
}

impl Record {
    const fn new() -> Self {
        Self {
            call: SharedWord::new(0),
            function: SharedWord::new(0),
            got: SharedWord::new(0),
            expected: SharedWord::new(0),
        }
    }
}

/// A CPU's progress, written by that CPU only.
struct CpuState {
    /// Calls answered so far (made and returned).
    calls: SharedWord,
    /// Of those, answered right.
    ok: SharedWord,
    /// Of those, answered wrong; the first [`RECORDS`] are in `records` (each written before
    /// this count covers it).
    wrong: SharedWord,
    /// The longest call so far, in counter ticks.
    longest: SharedWord,
    /// 1 once the CPU left its loop (CPU 1: told to by [`STOP`]).
    done: SharedWord,
    records: [Record; RECORDS],
}

impl CpuState {
    const fn new() -> Self {
        Self {
            calls: SharedWord::new(0),
            ok: SharedWord::new(0),
            wrong: SharedWord::new(0),
            longest: SharedWord::new(0),
            done: SharedWord::new(0),
            records: [const { Record::new() }; RECORDS],
        }
    }
}

static STATE: [CpuState; CPUS] = [const { CpuState::new() }; CPUS];
/// 1 once CPU 1 is to stop (written by CPU 0).
static STOP: SharedWord = SharedWord::new(0);
/// Each CPU's loop granule in mode `mmio` (written by CPU 0 before it starts CPU 1).
static LOOP_GRANULE: [SharedWord; CPUS] = [const { SharedWord::new(0) }; CPUS];
/// CPU 1's stack.
static CPU1_STACK: SecondaryStack<0x4000> = SecondaryStack::new();

/// A CPU's loop: its counts, published to its [`CpuState`] after every call.
struct Looper {
    cpu: usize,
    mode: Mode,
    granule: u64,
    calls: u64,
    ok: u64,
    wrong: u64,
    longest: u64,
}

impl Looper {
    fn new(cpu: usize, mode: Mode) -> Self {
        Self {
            cpu,
            mode,
            granule: LOOP_GRANULE[cpu].load(),
            calls: 0,
            ok: 0,
            wrong: 0,
            longest: 0,
        }
    }

    /// Makes the next call, checks its answer and publishes the counts.
    fn step(&mut self) {
        let call = crate::call(self.mode, self.cpu, self.calls, self.granule);
        let start = counter::ticks();
        let got = smccc::hvc(call.function, &call.args)[0];
        let took = counter::ticks().wrapping_sub(start);
        let state = &STATE[self.cpu];
        if got == call.expected {
            self.ok += 1;
        } else {
            if let Some(record) = state.records.get(self.wrong as usize) {
                record.call.store(self.calls);
                record.function.store(u64::from(call.function));
                record.got.store(got);
                record.expected.store(call.expected);
            }
            self.wrong += 1;
        }
        self.calls += 1;
        self.longest = self.longest.max(took);
        state.longest.store(self.longest);
        state.ok.store(self.ok);
        state.wrong.store(self.wrong);
        state.calls.store(self.calls);
    }
}

/// CPU 1: loops until CPU 0 says stop, then parks.
fn cpu1_main(mode: u64) -> ! {
    let mut looper = Looper::new(1, Mode::from_word(mode));
    while STOP.load() == 0 {
        looper.step();
    }
    STATE[1].done.store(1);
    smp::park()
}

/// A 32-bit register of the console UART.
fn uart_read(base: usize, offset: usize) -> u32 {
    // SAFETY: `base` is the console PL011 the DTB names (its registers identity-mapped with the
    // MMU off, or emulated); the registers read here are aligned words of it, and reading FR
    // or CR has no side effect (a DR read pops a received byte, which is what is wanted).
    unsafe { ((base + offset) as *const u32).read_volatile() }
}

/// Writes a 32-bit register of the console UART.
fn uart_write(base: usize, offset: usize, value: u32) {
    // SAFETY: As in `uart_read`; only UARTCR is written, to enable the receiver.
    unsafe { ((base + offset) as *mut u32).write_volatile(value) }
}

/// Whether a `q` was typed: reads UARTFR and, while data waits, UARTDR (other bytes are
/// dropped). An abort of either access (the MMIO guard refusing the console) is returned.
fn stop_requested(console: usize) -> Result<bool, TakenException> {
    loop {
        let flags = catch_exception(|| uart_read(console, UARTFR))?;
        if flags & FR_RXFE != 0 {
            return Ok(false);
        }
        let data = catch_exception(|| uart_read(console, UARTDR))?;
        if data as u8 == STOP_KEY {
            return Ok(true);
        }
    }
}

/// x0 of a call, signed.
fn call(function: u32, args: &[u64]) -> i64 {
    smccc::hvc(function, args)[0] as i64
}

/// Mode `mmio`'s kept set and how mapping it went.
struct Guarded {
    kept: [u64; MAX_KEPT],
    len: usize,
    /// MMIO_GUARD_MAP's x0 for each kept granule.
    mapped: [i64; MAX_KEPT],
    /// MMIO_GUARD_ENROLL's x0.
    enrolled: i64,
}

impl Guarded {
    fn kept(&self) -> &[u64] {
        &self.kept[..self.len]
    }
}

/// The granule of the first `reg` of every top-level node compatible with one of
/// [`KEPT_DEVICES`] (in that order), after the console's.
fn kept_granules(env: &Env, console: usize) -> ([u64; MAX_KEPT], usize) {
    let mut kept = [0; MAX_KEPT];
    kept[0] = console as u64 & !(GRANULE - 1);
    let mut len = 1;
    let Some(root) = env.find_node("/") else {
        return (kept, len);
    };
    for compatible in KEPT_DEVICES {
        let found = root.children().find(|node| {
            node.compatible()
                .is_some_and(|c| c.all().any(|s| s == compatible))
        });
        let Some(base) = found
            .and_then(|node| node.reg())
            .and_then(|mut reg| reg.next())
            .map(|reg| reg.starting_address as u64 & !(GRANULE - 1))
        else {
            continue;
        };
        if base != 0 && !kept[..len].contains(&base) && len < MAX_KEPT {
            kept[len] = base;
            len += 1;
        }
    }
    (kept, len)
}

/// Mode `mmio`, before anything is printed: MAP the kept set, then ENROLL (a VM enrolled by the
/// manifest is already: ENROLL still answers SUCCESS). If the console cannot be mapped nothing
/// can ever be printed: the run ends at once, silently, as a failure.
fn guard_console(env: &Env, console: usize) -> Guarded {
    let (kept, len) = kept_granules(env, console);
    let mut guarded = Guarded {
        kept,
        len,
        mapped: [0; MAX_KEPT],
        enrolled: 0,
    };
    for (granule, mapped) in kept[..len].iter().zip(&mut guarded.mapped) {
        *mapped = call(kvm::MMIO_GUARD_MAP, &[*granule, MAP_ATTRIBUTES]);
    }
    guarded.enrolled = call(kvm::MMIO_GUARD_ENROLL, &[]);
    if guarded.mapped[0] != 0 || catch_exception(|| uart_read(console, UARTFR)).is_err() {
        psci::system_reset();
    }
    guarded
}

/// A list of failure reasons, for the verdict line.
struct Reasons {
    buf: [u8; 512],
    len: usize,
}

impl Reasons {
    fn new() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }

    fn add(&mut self, reason: core::fmt::Arguments<'_>) {
        use core::fmt::Write;
        if self.len != 0 {
            let _ = self.write_str("; ");
        }
        let _ = self.write_fmt(reason);
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Reasons {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // Whole strings only, so the buffer stays UTF-8; what does not fit is dropped.
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Ends the run: the verdict line, the harness's summary line, then `SYSTEM_OFF` (pass) or
/// `SYSTEM_RESET`.
fn finish(reasons: &Reasons) -> ! {
    let pass = reasons.is_empty();
    if pass {
        println!("swap-load: PASS");
        println!("1 passed, 0 failed");
    } else {
        println!("swap-load: FAIL {}", reasons.as_str());
        println!("0 passed, 1 failed");
    }
    psci::exit(pass)
}

/// Prints the wrong answers of each CPU recorded since `printed` (per CPU) and advances it.
fn print_wrong_answers(printed: &mut [u64; CPUS]) {
    for (cpu, state) in STATE.iter().enumerate() {
        let wrong = state.wrong.load();
        while printed[cpu] < wrong {
            let at = printed[cpu] as usize;
            printed[cpu] += 1;
            let Some(record) = state.records.get(at) else {
                println!(
                    "swap-load: wrong answer cpu{cpu}: {} more (details of the first {RECORDS} only)",
                    wrong - printed[cpu] + 1
                );
                printed[cpu] = wrong;
                break;
            };
            println!(
                "swap-load: wrong answer cpu{cpu} call={} function={:#x} got={:#x} expected={:#x}",
                record.call.load(),
                record.function.load(),
                record.got.load(),
                record.expected.load()
            );
        }
    }
}

/// Microseconds in `ticks` of a counter at `hz`.
fn micros(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64
}

/// Spins until `condition` holds or `limit` counter ticks have passed; whether it holds.
fn wait_for(limit: u64, condition: impl Fn() -> bool) -> bool {
    let start = counter::ticks();
    while !condition() {
        if counter::ticks().wrapping_sub(start) >= limit {
            return condition();
        }
    }
    true
}

/// Why CPU 0 left its loop.
enum Stopped {
    /// A `q` was typed.
    Requested,
    /// `stop-after` seconds passed.
    Timed,
    /// The budget or the give-up time ran out first.
    NoStopRequest,
    /// A console access aborted: the MMIO guard no longer allows the console.
    ConsoleAborted(TakenException),
}

/// The guest: mode and options from the command line over `defaults`, then the loop on both
/// CPUs and the report.
pub fn run(env: &'static Env, defaults: Options) -> ! {
    let bootargs = env
        .find_node("/chosen")
        .and_then(|chosen| chosen.property("bootargs"))
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let parsed = crate::parse_options(bootargs, defaults);
    let options = parsed.unwrap_or(defaults);
    let Some(console) = env.console_pl011() else {
        // Nothing to report on, and no way to be told to stop.
        psci::system_reset()
    };
    let guarded = (options.mode == Mode::Mmio).then(|| guard_console(env, console));
    // The emulated PL011 receives only with UARTEN and RXE set (QEMU's does regardless).
    uart_write(
        console,
        UARTCR,
        uart_read(console, UARTCR) | CR_ENABLE_RX_TX,
    );

    println!();
    let mut reasons = Reasons::new();
    if let Err(BadOption(word)) = parsed {
        reasons.add(format_args!("bad option {word:?} on the command line"));
        finish(&reasons);
    }
    let hz = counter::frequency();
    match options.stop_after_seconds {
        0 => print!("swap-load: mode={} stop=q", options.mode.name()),
        seconds => print!(
            "swap-load: mode={} stop=q or after {seconds} s",
            options.mode.name()
        ),
    }
    println!(
        " budget={} calls or {} s",
        options.budget, options.give_up_seconds
    );
    if hz == 0 {
        reasons.add(format_args!("CNTFRQ_EL0 is 0"));
        finish(&reasons);
    }
    if let Some(guarded) = &guarded {
        let kept = guarded.kept();
        for (cpu, word) in LOOP_GRANULE.iter().enumerate() {
            word.store(crate::loop_granule(kept, cpu));
        }
        // Lines of the emulated console are cut at 120 bytes: two short ones.
        print!("swap-load: kept granules");
        for granule in kept {
            print!(" {granule:#x}");
        }
        print!(": MAP");
        for mapped in &guarded.mapped[..guarded.len] {
            print!(" {mapped}");
        }
        println!(", ENROLL {}", guarded.enrolled);
        println!(
            "swap-load: loop granules cpu0={:#x} cpu1={:#x}",
            LOOP_GRANULE[0].load(),
            LOOP_GRANULE[1].load()
        );
        for (granule, &mapped) in kept.iter().zip(&guarded.mapped) {
            if mapped != 0 {
                reasons.add(format_args!(
                    "MMIO_GUARD_MAP({granule:#x}) returned {mapped}"
                ));
            }
        }
        if guarded.enrolled != 0 {
            reasons.add(format_args!(
                "MMIO_GUARD_ENROLL returned {}",
                guarded.enrolled
            ));
        }
        if !reasons.is_empty() {
            finish(&reasons);
        }
    }

    // CPU 1: the first CPU of the DTB that is not this one.
    let boot = smp::boot_cpu_mpidr();
    let Some(cpu1) = env.cpu_mpidrs().find(|&mpidr| mpidr != boot) else {
        reasons.add(format_args!(
            "the DTB lists only the boot CPU: run with 2 CPUs"
        ));
        finish(&reasons);
    };
    let Some(stack) = CPU1_STACK.take() else {
        reasons.add(format_args!("CPU 1's stack was already taken"));
        finish(&reasons);
    };
    if let Err(code) = smp::start_secondary(cpu1, stack, cpu1_main, options.mode.to_word()) {
        reasons.add(format_args!(
            "CPU_ON of cpu {cpu1:#x} failed: {code} ({})",
            psci::error_name(code)
        ));
        finish(&reasons);
    }
    let wait = hz.saturating_mul(WAIT_SECONDS);
    let mut looper = Looper::new(0, options.mode);
    looper.step();
    if !wait_for(wait, || STATE[1].calls.load() > 0) {
        reasons.add(format_args!(
            "CPU 1 (mpidr {cpu1:#x}) made no call within {WAIT_SECONDS} s"
        ));
        finish(&reasons);
    }
    println!("swap-load: looping on 2 CPUs");

    let start = counter::ticks();
    let mut next_progress = start.wrapping_add(hz);
    let stop_after = hz.saturating_mul(options.stop_after_seconds);
    let give_up = hz.saturating_mul(options.give_up_seconds);
    let mut printed = [0; CPUS];
    let stopped = loop {
        looper.step();
        if looper.calls >= options.budget {
            break Stopped::NoStopRequest;
        }
        if !looper.calls.is_multiple_of(POLL_EVERY) {
            continue;
        }
        match stop_requested(console) {
            Ok(true) => break Stopped::Requested,
            Ok(false) => {}
            Err(taken) => break Stopped::ConsoleAborted(taken),
        }
        let now = counter::ticks();
        if options.stop_after_seconds != 0 && now.wrapping_sub(start) >= stop_after {
            break Stopped::Timed;
        }
        if now.wrapping_sub(start) >= give_up {
            break Stopped::NoStopRequest;
        }
        if now.wrapping_sub(next_progress) < (1 << 63) {
            next_progress = now.wrapping_add(hz);
            print_wrong_answers(&mut printed);
            println!(
                "swap-load: cpu0 calls={} cpu1 calls={}",
                looper.calls,
                STATE[1].calls.load()
            );
        }
    };
    STOP.store(1);
    STATE[0].done.store(1);
    let cpu1_stopped = wait_for(wait, || STATE[1].done.load() == 1);

    if let Stopped::ConsoleAborted(taken) = &stopped {
        // Only a console mapped again can say what happened.
        if call(kvm::MMIO_GUARD_MAP, &[console as u64, MAP_ATTRIBUTES]) != 0
            || catch_exception(|| uart_read(console, UARTFR)).is_err()
        {
            psci::system_reset();
        }
        reasons.add(format_args!(
            "console access aborted in the loop (ESR {:#x} FAR {:#x}): the guard lost the console",
            taken.esr, taken.far
        ));
    }
    let elapsed = counter::ticks().wrapping_sub(start);
    match stopped {
        Stopped::Requested => println!("swap-load: stop requested"),
        Stopped::Timed => println!("swap-load: stopping after {} s", options.stop_after_seconds),
        Stopped::NoStopRequest | Stopped::ConsoleAborted(_) => {}
    }
    print_wrong_answers(&mut printed);
    let counts = |cpu: usize| {
        let state = &STATE[cpu];
        (
            state.calls.load(),
            state.ok.load(),
            state.wrong.load(),
            state.longest.load(),
        )
    };
    let (calls0, ok0, wrong0, longest0) = counts(0);
    let (calls1, ok1, wrong1, longest1) = counts(1);
    println!(
        "swap-load: done cpu0 calls={calls0} ok={ok0} wrong={wrong0} cpu1 calls={calls1} \
         ok={ok1} wrong={wrong1}"
    );
    println!(
        "swap-load: longest call cpu0={}us cpu1={}us; looped {} ms",
        micros(longest0, hz),
        micros(longest1, hz),
        micros(elapsed, hz) / 1000
    );
    if let Stopped::NoStopRequest = stopped {
        reasons.add(format_args!(
            "no stop request: no q typed within {} calls on cpu0 or {} s",
            options.budget, options.give_up_seconds
        ));
    }
    if !cpu1_stopped {
        reasons.add(format_args!(
            "cpu1 did not stop within {WAIT_SECONDS} s (a call that never returned?)"
        ));
    }
    for (cpu, calls, ok, wrong) in [(0, calls0, ok0, wrong0), (1, calls1, ok1, wrong1)] {
        if wrong != 0 || calls != ok {
            reasons.add(format_args!(
                "cpu{cpu}: {wrong} wrong answers, {ok} of {calls} right"
            ));
        }
    }
    if let Some(guarded) = &guarded {
        // The kept set must still hold: the console answers (this line is printed through
        // it), and MAP of each kept granule again succeeds.
        println!("swap-load: checking the kept granules");
        if let Err(taken) = catch_exception(|| uart_read(console, UARTFR)) {
            if call(kvm::MMIO_GUARD_MAP, &[console as u64, MAP_ATTRIBUTES]) != 0 {
                psci::system_reset();
            }
            reasons.add(format_args!("the console aborted after the loop ({taken})"));
        }
        for &granule in guarded.kept() {
            let mapped = call(kvm::MMIO_GUARD_MAP, &[granule, MAP_ATTRIBUTES]);
            if mapped != 0 {
                reasons.add(format_args!(
                    "MMIO_GUARD_MAP({granule:#x}) again returned {mapped}"
                ));
            }
        }
    }
    finish(&reasons)
}
