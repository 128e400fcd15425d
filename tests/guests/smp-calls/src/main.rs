//! Test guest `smp-calls`: two CPUs make SMCCC calls at the same time, and PSCI CPU power calls
//! about a running CPU get the firmware's answers. Needs a machine with (at least) two CPUs
//! (`cargo xtask run --smp 2`); the second is the first `/cpus` entry that is not the boot CPU.
//!
//! Every guest SMCCC call runs the VM manager component on the calling CPU, and a component
//! runs on one CPU at a time, so calls from two CPUs at once must queue, neither deadlock nor
//! get their answers mixed up.
//!
//! Cases (in this order; the later ones use the CPU the first one started):
//!
//! - `two_cpus_call_vm_manager_at_once`: CPU 1 is started ([`smp::start_secondary`]) and, once
//!   CPU 0 has seen it enter its loop, both CPUs run [`ITERATIONS`] calls at once, alternating
//!   `PSCI_VERSION` (must be 1.1, 0x10001) and `HYP_PING_SUPERVISOR` with a nonce unique to the
//!   CPU and the call (must come back in x0), all through `HVC #0`, counting correct answers.
//!   CPU 0 then waits for CPU 1 to finish. Both waits are bounded ([`WAIT_SECONDS`]). Passes if both counted `ITERATIONS` correct answers and CPU 1 made calls while
//!   CPU 0 was making its own (otherwise the calls did not overlap and nothing was tested).
//!   Prints both counts and the overlap before the `ok`.
//! - `cpu_on_of_running_cpu_fails`: PSCI `CPU_ON` of the running CPU 1 returns `ALREADY_ON`
//!   (-4), as PSCI requires. Should the CPU be started anyway, its entry function fails the run.
//! - `affinity_info_reports_cpu1_on`: `AFFINITY_INFO(cpu 1, level 0)` returns 0 (ON); so does
//!   the boot CPU's.
//!
//! CPU 1 parks (`WFI`) once its loop is done; the harness ends the run with `SYSTEM_OFF`.
//!
//! CPUs share results only through [`SharedWord`]s each written by one CPU: the MMU is off, so
//! there are no atomics (see `hv_guest_rt::smp`).
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use hv_guest_rt::{
        Env, TestResult, counter, ensure, fail, fail_run, print,
        psci::{self, PSCI_VERSION},
        smccc,
        smp::{self, SecondaryStack, SharedWord},
    };

    hv_guest_rt::test_guest![
        two_cpus_call_vm_manager_at_once,
        cpu_on_of_running_cpu_fails,
        affinity_info_reports_cpu1_on,
    ];

    /// Calls each CPU makes in `two_cpus_call_vm_manager_at_once`.
    const ITERATIONS: u64 = 3000;
    /// CPU 1's nonces are `CPU1_NONCE_BASE + call number`, CPU 0's `CPU0_NONCE_BASE + ...`: the
    /// two ranges do not overlap, so an answer meant for the other CPU is seen as wrong.
    const CPU1_NONCE_BASE: u64 = 0x1000;
    /// See [`CPU1_NONCE_BASE`].
    const CPU0_NONCE_BASE: u64 = 0x2000;
    const _: () = assert!(CPU1_NONCE_BASE + ITERATIONS <= CPU0_NONCE_BASE);
    /// How long CPU 0 waits for CPU 1 to start, and then to finish after CPU 0's own loop, in
    /// seconds of the virtual counter (each wait at most 2^32 ticks).
    const WAIT_SECONDS: u64 = 10;
    /// `first_bad_call` while every answer was right.
    const NO_BAD_CALL: u64 = u64::MAX;

    /// A CPU's progress through the call loop. Each instance is written by one CPU only.
    struct LoopState {
        /// The CPU's nonces are `nonce_base + call number`.
        nonce_base: u64,
        /// 1 once the CPU entered its loop function.
        started: SharedWord,
        /// Calls made so far.
        calls: SharedWord,
        /// Correct answers so far.
        correct: SharedWord,
        /// Number of the first call answered wrongly, or [`NO_BAD_CALL`].
        first_bad_call: SharedWord,
        /// The wrong answer's x0.
        first_bad_value: SharedWord,
        /// 1 once all [`ITERATIONS`] calls are made.
        done: SharedWord,
    }

    impl LoopState {
        const fn new(nonce_base: u64) -> Self {
            Self {
                nonce_base,
                started: SharedWord::new(0),
                calls: SharedWord::new(0),
                correct: SharedWord::new(0),
                first_bad_call: SharedWord::new(NO_BAD_CALL),
                first_bad_value: SharedWord::new(0),
                done: SharedWord::new(0),
            }
        }

        /// "N/M correct" plus the first wrong answer, if any.
        fn summary(&self) -> Summary {
            Summary {
                correct: self.correct.load(),
                calls: self.calls.load(),
                first_bad_call: self.first_bad_call.load(),
                first_bad_value: self.first_bad_value.load(),
                nonce_base: self.nonce_base,
            }
        }
    }

    /// A snapshot of a [`LoopState`], for messages.
    struct Summary {
        correct: u64,
        calls: u64,
        first_bad_call: u64,
        first_bad_value: u64,
        nonce_base: u64,
    }

    impl core::fmt::Display for Summary {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "{}/{} correct", self.correct, self.calls)?;
            if self.first_bad_call != NO_BAD_CALL {
                write!(
                    f,
                    " (call {}: x0={:#x}, expected {:#x})",
                    self.first_bad_call,
                    self.first_bad_value,
                    expected_answer(self.first_bad_call, self.nonce_base)
                )?;
            }
            Ok(())
        }
    }

    /// Written by CPU 0 only.
    static CPU0: LoopState = LoopState::new(CPU0_NONCE_BASE);
    /// Written by CPU 1 only.
    static CPU1: LoopState = LoopState::new(CPU1_NONCE_BASE);
    /// CPU 1's stack.
    static CPU1_STACK: SecondaryStack<0x4000> = SecondaryStack::new();
    /// The stack offered to the `CPU_ON` that must fail (used only if it wrongly succeeds).
    static SPARE_STACK: SecondaryStack<0x1000> = SecondaryStack::new();
    /// CPU 1's MPIDR once started, written by CPU 0 only (`u64::MAX`: not started).
    static CPU1_MPIDR: SharedWord = SharedWord::new(u64::MAX);

    /// What call number `call` must return: PSCI 1.1 for even calls (PSCI_VERSION), the nonce
    /// `nonce_base + call` for odd ones (HYP_PING_SUPERVISOR).
    fn expected_answer(call: u64, nonce_base: u64) -> u64 {
        if call.is_multiple_of(2) {
            psci::VERSION_1_1
        } else {
            nonce_base + call
        }
    }

    /// Makes [`ITERATIONS`] calls through `HVC #0`, alternating PSCI_VERSION and
    /// HYP_PING_SUPERVISOR (nonce `state.nonce_base + call number`), recording progress in
    /// `state`.
    fn call_loop(state: &LoopState) {
        let nonce_base = state.nonce_base;
        state.started.store(1);
        let mut correct = 0;
        for call in 0..ITERATIONS {
            let answer = if call.is_multiple_of(2) {
                smccc::hvc(PSCI_VERSION, &[])[0]
            } else {
                smccc::hvc(smccc::host::HYP_PING_SUPERVISOR, &[nonce_base + call])[0]
            };
            if answer == expected_answer(call, nonce_base) {
                correct += 1;
            } else if state.first_bad_call.load() == NO_BAD_CALL {
                state.first_bad_value.store(answer);
                state.first_bad_call.store(call);
            }
            state.correct.store(correct);
            state.calls.store(call + 1);
        }
        state.done.store(1);
    }

    /// CPU 1's main function: the call loop, then park.
    fn cpu1_main(_arg: u64) -> ! {
        call_loop(&CPU1);
        smp::park()
    }

    /// Entry for the `CPU_ON` that must fail: reaching it means a running CPU was started again.
    fn started_twice(_arg: u64) -> ! {
        fail_run(format_args!(
            "CPU_ON of a running CPU started it again (cpu {:#x})",
            smp::current_mpidr()
        ))
    }

    /// The first CPU in the DTB that is not the boot CPU.
    fn second_cpu(env: &Env) -> Option<u64> {
        let boot = smp::boot_cpu_mpidr();
        env.cpu_mpidrs().find(|&mpidr| mpidr != boot)
    }

    /// CPU 1's MPIDR if the first case started it.
    fn started_cpu1() -> Result<u64, hv_guest_rt::TestFailure> {
        match CPU1_MPIDR.load() {
            u64::MAX => Err("CPU 1 was not started (see two_cpus_call_vm_manager_at_once)".into()),
            mpidr => Ok(mpidr),
        }
    }

    /// [`WAIT_SECONDS`] in counter ticks, at most 2^32 (and 2^32 if the frequency is unknown).
    fn wait_limit() -> u64 {
        match counter::frequency() {
            0 => 1 << 32,
            hz => hz.saturating_mul(WAIT_SECONDS).min(1 << 32),
        }
    }

    /// Spins until `condition` holds or `limit` counter ticks have passed.
    fn wait_for(limit: u64, condition: impl Fn() -> bool) {
        let start = counter::ticks();
        while !condition() && counter::ticks().wrapping_sub(start) < limit {}
    }

    fn two_cpus_call_vm_manager_at_once(env: &Env) -> TestResult {
        let Some(cpu1) = second_cpu(env) else {
            fail!("the DTB lists only the boot CPU: run with 2 CPUs (--smp 2)");
        };
        let Some(stack) = CPU1_STACK.take() else {
            fail!("CPU 1's stack was already taken");
        };
        if let Err(code) = smp::start_secondary(cpu1, stack, cpu1_main, 0) {
            fail!(
                "CPU_ON of cpu {cpu1:#x} failed: {code} ({})",
                psci::error_name(code)
            );
        }
        CPU1_MPIDR.store(cpu1);

        // Start together: CPU 0's loop should not be over before CPU 1 gets going.
        let limit = wait_limit();
        wait_for(limit, || CPU1.started.load() == 1);
        ensure!(
            CPU1.started.load() == 1,
            "CPU 1 (mpidr {cpu1:#x}) did not reach its entry function within {limit} ticks"
        );
        let cpu1_calls_before = CPU1.calls.load();
        call_loop(&CPU0);
        let cpu1_calls_after = CPU1.calls.load();
        wait_for(limit, || CPU1.done.load() == 1);

        let (cpu0, cpu1_summary) = (CPU0.summary(), CPU1.summary());
        let overlap = cpu1_calls_after - cpu1_calls_before;
        print!(
            "cpu0 {cpu0}, cpu1 {cpu1_summary}; cpu1 made {overlap} calls during cpu0's loop ... "
        );
        ensure!(
            CPU1.done.load() == 1,
            "CPU 1 did not finish within {limit} ticks: cpu1 {cpu1_summary}"
        );
        ensure!(
            cpu0.correct == ITERATIONS && cpu1_summary.correct == ITERATIONS,
            "expected {ITERATIONS} correct answers each: cpu0 {cpu0}; cpu1 {cpu1_summary}"
        );
        ensure!(
            overlap > 0,
            "CPU 1 made no call while CPU 0 made its {ITERATIONS}: the calls did not overlap"
        );
        Ok(())
    }

    fn cpu_on_of_running_cpu_fails(_env: &Env) -> TestResult {
        let cpu1 = started_cpu1()?;
        ensure!(
            CPU1.started.load() == 1,
            "CPU 1 is not running (it never reached its entry function)"
        );
        let Some(stack) = SPARE_STACK.take() else {
            fail!("the spare stack was already taken");
        };
        match smp::start_secondary(cpu1, stack, started_twice, 0) {
            Ok(()) => fail!("CPU_ON of the running cpu {cpu1:#x} returned SUCCESS"),
            Err(psci::error::ALREADY_ON) => Ok(()),
            Err(code) => fail!(
                "CPU_ON of the running cpu {cpu1:#x} returned {code} ({}), expected {} \
                 (ALREADY_ON)",
                psci::error_name(code),
                psci::error::ALREADY_ON
            ),
        }
    }

    fn affinity_info_reports_cpu1_on(_env: &Env) -> TestResult {
        let cpu1 = started_cpu1()?;
        for (what, mpidr) in [("cpu 1", cpu1), ("the boot cpu", smp::boot_cpu_mpidr())] {
            let state = psci::affinity_info(mpidr, 0);
            ensure!(
                state == psci::AFFINITY_ON,
                "AFFINITY_INFO({mpidr:#x}, 0) of {what} returned {state} ({}), expected 0 (ON)",
                match state {
                    psci::AFFINITY_OFF => "OFF",
                    psci::AFFINITY_ON_PENDING => "ON_PENDING",
                    code => psci::error_name(code),
                }
            );
        }
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
