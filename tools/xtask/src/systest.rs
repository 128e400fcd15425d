//! `cargo xtask test`: the host tests, then every QEMU system test.
//!
//! A system test composes a fresh image, boots it on one machine configuration and checks what
//! the guest printed and how the run ended. Console and hypervisor logs of every test are kept
//! under `target/xtask/logs/<test>/`; a failure prints where, and the tail of the console.

use crate::qemu::{self, Console, ConsoleInput, CpuModel, Outcome};
use crate::swap::{ControlLine, PlannedSwap, ScheduledSwap};
use crate::{SystemArgs, build_image, paths, progress};
use anyhow::{Context, Result};
use hv_abi::ExitStatus;
use hv_component_config::{CrashHook, CrashKind, Settings, VmManagerSettings};
use std::mem::discriminant;
use std::path::PathBuf;
use std::time::Duration;

pub use boot::Boot;

mod boot;
mod hot_swap;
mod linux;
mod rpi4;
mod table;

/// What a system test boots.
enum Payload {
    /// Debian's Linux with the busybox initramfs in test mode.
    Linux,
    /// Debian's Linux as the host in test mode, held until a line comes on its console
    /// (`hv.wait=console`), beside a guest VM named `guest` running Linux too with this many
    /// vCPUs (the manifest gives its command line).
    LinuxBesideLinux {
        /// The guest's vCPUs.
        guest_vcpus: u32,
        /// The guest sits in its shell (no test mode): only its boot markers are checked.
        guest_in_shell: bool,
        /// The guest is upstream Linux with its pKVM guest driver (`kernel = "linux-pkvm"`),
        /// which `cargo xtask build-pkvm-linux` builds: the test is skipped, saying so, when
        /// it is not built.
        upstream_pkvm_guest: bool,
    },
    /// A bare-metal test guest (a package under `tests/guests/`).
    Guest(&'static str),
    /// A bare-metal test guest built as binary `.1` of package `.0`.
    GuestBin(&'static str, &'static str),
    /// A bare-metal test guest linked for the Raspberry Pi 4's host kernel address (a
    /// `raspi4b` run of an `rpi4` manifest).
    GuestOnPi(&'static str),
}

/// A component fault a test provokes through the VM manager's crash hook.
#[derive(Clone, Copy)]
enum Crash {
    /// An undefined instruction on the given call.
    Undefined(u32),
    /// A read of the kernel's image on the given call.
    ReadKernel(u32),
    /// A read of the supervisor's memory (another component) on the given call.
    ReadPeer(u32),
    /// A stack overflow on the given call.
    StackOverflow(u32),
}

/// One system test.
struct SystemTest {
    name: String,
    cpu: CpuModel,
    smp: u32,
    payload: Payload,
    crash: Option<Crash>,
    /// Build the VM manager with its grant probe and check the kernel refused every probe
    /// (CALL, KERNEL_OP, NOTIFY).
    probe_grants: bool,
    /// The manifest to compose, relative to the workspace (default: the default manifest).
    manifest: Option<&'static str>,
    /// Lines the hypervisor log must contain.
    expect_log: &'static [&'static str],
    /// How the run must end: a power-off with the payload's checks passed, or another
    /// status (then only the log lines are checked: the payload never finishes).
    expect_exit: ExitStatus,
    /// Lines the console must contain besides the payload's own checks (e.g. a guest VM's).
    expect_console: &'static [&'static str],
    /// Cargo features the kernel is built with (test builds).
    kernel_features: &'static [&'static str],
    /// CPUs Linux must bring online, when not the machine's (guests keep the others).
    host_cpus: Option<u32>,
    /// Lines typed on the host's console along the way.
    input: &'static [ConsoleInput],
    /// Components hot-swapped along the way (`cargo xtask swap`'s exchange over the run's
    /// control line), in order, each when its point is reached; each must end as it expects.
    swaps: &'static [PlannedSwap],
}

impl SystemTest {
    /// A test of `payload` on `smp` CPUs of `cpu` with everything else at what most tests
    /// want: no crash and no grant probe, the default manifest, no log or console lines beyond
    /// the payload's own checks, a clean power-off, the kernel without test features, Linux on
    /// every CPU, nothing typed and nothing swapped. A test that wants more says only that, with
    /// struct update syntax: `SystemTest { manifest: Some(..), ..SystemTest::new(..) }`.
    fn new(name: impl Into<String>, cpu: CpuModel, smp: u32, payload: Payload) -> Self {
        SystemTest {
            name: name.into(),
            cpu,
            smp,
            payload,
            crash: None,
            probe_grants: false,
            manifest: None,
            expect_log: &[],
            expect_exit: ExitStatus::PoweredOff,
            expect_console: &[],
            kernel_features: &[],
            host_cpus: None,
            input: &[],
            swaps: &[],
        }
    }
}

/// The lines the VM manager's grant probe logs when the kernel refuses each probe with
/// `NotAllowed` (-1): a call, a kernel operation and a notification its manifest does not grant
/// (`components/vm-manager/src/probe.rs`).
const PROBE_REFUSALS: [&str; 3] = [
    "grant probe: CALL guest-trap -> -1",
    "grant probe: KERNEL_OP restart -> -1",
    "grant probe: NOTIFY supervisor -> -1",
];

/// The VM manager settings that provoke `crash` (and, with `probe_grants`, the grant probe).
fn vm_manager_settings(crash: Option<Crash>, probe_grants: bool, peer: u64) -> Settings {
    let crash = crash.map(|crash| {
        let (on_call, kind) = match crash {
            Crash::Undefined(call) => (call, CrashKind::Undefined),
            Crash::ReadKernel(call) => (
                call,
                CrashKind::Read {
                    address: hv_board::QEMU_VIRT.image_load_address,
                },
            ),
            Crash::ReadPeer(call) => (call, CrashKind::Read { address: peer }),
            Crash::StackOverflow(call) => (call, CrashKind::StackOverflow),
        };
        CrashHook {
            on_call,
            kind,
            on_function: None,
        }
    });
    Settings::VmManager(VmManagerSettings {
        crash,
        probe_grants,
    })
}

/// An address inside the supervisor's region as `system` lays it out (well past its start, so
/// the read cannot land in the kernel's memory even if the layout moves).
fn peer_address(system: &crate::System) -> Result<u64> {
    let regions = crate::component_regions(system)?;
    let (id, _) = system
        .manifest
        .component("supervisor")
        .context("the manifest has no supervisor")?;
    Ok(regions[id].start + 0x100)
}

/// Checks that every planned swap ran and ended as expected.
fn check_swaps(plans: &[PlannedSwap], outcome: &Outcome) -> Result<(), String> {
    for (n, plan) in plans.iter().enumerate() {
        let which = format!("swap {} ({} after {:?})", n + 1, plan.component, plan.after);
        let Some(record) = outcome.swaps.get(n) else {
            return Err(format!("{which} never started: its point was not reached"));
        };
        let report = record.result.as_ref().map_err(|error| {
            format!(
                "{which} of {}, started {:.1}s into the run, failed: {error}",
                record.component,
                record.started.as_secs_f64()
            )
        })?;
        plan.expect
            .check(report)
            .map_err(|error| format!("{which}: {error}"))?;
    }
    Ok(())
}

/// A log frame the host could not split from the line (the Pi's mini-UART carries others'
/// bytes too) is a lost line.
fn check_log_frames(outcome: &Outcome) -> Result<(), String> {
    match outcome
        .hv_log
        .iter()
        .find(|line| line.contains("(malformed frame"))
    {
        Some(line) => Err(format!("the hypervisor log has {line}")),
        None => Ok(()),
    }
}

/// Checks an outcome (`peer`: the address a `Crash::ReadPeer` reads); returns why it failed.
fn check(test: &SystemTest, outcome: &Outcome, peer: u64) -> Result<(), String> {
    check_swaps(test.swaps, outcome)?;
    check_log_frames(outcome)?;
    if test.expect_exit != ExitStatus::PoweredOff {
        for needle in test.expect_log {
            if !outcome.hv_log.iter().any(|line| line.contains(needle)) {
                return Err(format!("the hypervisor log lacks \"{needle}\""));
            }
        }
        if outcome.timed_out || outcome.status() != Some(test.expect_exit) {
            return Err(format!(
                "run ended with: {}, not: {}",
                outcome.describe(),
                test.expect_exit.describe()
            ));
        }
        return Ok(());
    }
    let console = &outcome.console;
    let expect = |needle: &str| -> Result<(), String> {
        if console.contains(needle) {
            Ok(())
        } else {
            Err(format!("console lacks \"{needle}\""))
        }
    };
    match test.payload {
        Payload::Linux => {
            expect("HV-INIT: userspace up")?;
            expect(&format!(
                "HV-INIT: cpus online={}",
                test.host_cpus.unwrap_or(test.smp)
            ))?;
            expect("CPU: All CPU(s) started at EL1")?;
            expect("HV-INIT: done")?;
            let routed = outcome
                .hv_log
                .iter()
                .any(|line| line.contains("entering the host"));
            if !routed {
                return Err("the hypervisor log lacks \"entering the host\"".into());
            }
        }
        Payload::LinuxBesideLinux {
            guest_vcpus,
            guest_in_shell,
            upstream_pkvm_guest,
        } => {
            linux::check_linux_beside_linux(
                outcome,
                test.host_cpus.unwrap_or(1),
                guest_vcpus,
                guest_in_shell,
            )?;
            if upstream_pkvm_guest {
                linux::check_pkvm_guest(outcome)?;
            }
        }
        Payload::Guest(_) | Payload::GuestBin(..) | Payload::GuestOnPi(_) => {
            // Every VM's summary (a guest VM's too, and each of its runs) must be clean.
            let summaries: Vec<(u32, u32)> = console
                .lines()
                .filter_map(|line| {
                    // An emulated console prefixes each line with the VM's name.
                    let line = line.trim();
                    let line = match line.strip_prefix('[') {
                        Some(rest) => rest.split_once("] ").map_or(line, |(_, text)| text),
                        None => line,
                    };
                    let (passed, failed) = line.split_once(" passed, ")?;
                    Some((
                        passed.parse::<u32>().ok()?,
                        failed.strip_suffix(" failed")?.parse::<u32>().ok()?,
                    ))
                })
                .collect();
            if summaries.is_empty() {
                return Err("the guest printed no \"N passed, N failed\" line".into());
            }
            if let Some((passed, failed)) = summaries
                .iter()
                .find(|&&(passed, failed)| failed != 0 || passed == 0)
            {
                return Err(format!("guest reported {passed} passed, {failed} failed"));
            }
        }
    }
    for needle in test.expect_console {
        expect(needle)?;
    }
    let log_has = |needle: &str| outcome.hv_log.iter().any(|line| line.contains(needle));
    // SMCCC and PSCI are answered by the VM manager component, through the kernel's routing.
    let routed = outcome
        .hv_log
        .iter()
        .any(|line| line.contains("component-stats name=vm-manager") && !line.contains("calls=0 "));
    if !routed {
        return Err("the hypervisor log shows no call routed to vm-manager".into());
    }
    if let Some(crash) = test.crash {
        let evidence = match crash {
            Crash::Undefined(_) => "component vm-manager took an exception at EL1".to_owned(),
            Crash::ReadKernel(_) => {
                format!("touched IPA {:#x}", hv_board::QEMU_VIRT.image_load_address)
            }
            Crash::ReadPeer(_) => format!("touched IPA {peer:#x}"),
            // Just below its region (the default system's vm-manager starts at 0x4050_0000):
            // the stack ran off its bottom rather than into its data.
            Crash::StackOverflow(_) => "component vm-manager touched IPA 0x404ff".to_owned(),
        };
        for needle in [
            evidence.as_str(),
            "component vm-manager stopped after fault 1",
            "component vm-manager restarted (restart 1)",
        ] {
            if !log_has(needle) {
                return Err(format!("the hypervisor log lacks \"{needle}\""));
            }
        }
    }
    for needle in test.expect_log {
        if !log_has(needle) {
            return Err(format!("the hypervisor log lacks \"{needle}\""));
        }
    }
    if test.probe_grants {
        // The manifest grants the VM manager none of these; the kernel must say NotAllowed (-1).
        for needle in PROBE_REFUSALS {
            if !log_has(needle) {
                return Err(format!("the hypervisor log lacks \"{needle}\""));
            }
        }
    }
    if outcome.timed_out || outcome.status() != Some(ExitStatus::PoweredOff) {
        return Err(format!("run ended with: {}", outcome.describe()));
    }
    Ok(())
}

fn run_one(test: &SystemTest) -> Result<(), String> {
    let mut settings = Vec::new();
    let mut peer = 0;
    if test.crash.is_some() || test.probe_grants {
        let system = SystemArgs {
            manifest: test.manifest.map(|path| paths::workspace().join(path)),
            machine: test.cpu,
            smp: Some(test.smp),
            mem: None,
            kernel: None,
            initrd: Some("none".into()),
            append: None,
        }
        .resolve()
        .map_err(|e| format!("{e:#}"))?;
        peer = peer_address(&system).map_err(|e| format!("{e:#}"))?;
        settings.push(vm_manager_settings(test.crash, test.probe_grants, peer));
    }
    let (kernel, append, timeout) = match test.payload {
        Payload::Linux => (None, "console=ttyAMA0 hv.init=test", 300),
        Payload::LinuxBesideLinux { .. } => {
            (None, "console=ttyAMA0 hv.init=test hv.wait=console", 420)
        }
        Payload::Guest(package) => (
            Some(crate::artifacts::guest(package).map_err(|e| format!("{e:#}"))?),
            "",
            120,
        ),
        Payload::GuestBin(package, bin) => {
            let elf = crate::artifacts::guest_bin(package, bin).map_err(|e| format!("{e:#}"))?;
            (Some(elf), "", 120)
        }
        Payload::GuestOnPi(package) => {
            let elf = crate::artifacts::guest_at(package, hv_board::RPI4.host_kernel_address)
                .map_err(|e| format!("{e:#}"))?;
            (Some(elf), "", 180)
        }
    };
    let (name, cpu, smp) = (&test.name, test.cpu, test.smp);
    let outcome = Boot {
        append,
        settings: &settings,
        manifest: test.manifest,
        kernel_features: test.kernel_features,
        input: test.input,
        swaps: test.swaps,
        ..Boot::new(name, cpu, smp, kernel, timeout)
    }
    .run()
    .map_err(|error| format!("{error:#}"))?;
    check(test, &outcome, peer).inspect_err(|_| {
        let tail: Vec<_> = outcome.console.lines().rev().take(25).collect();
        eprintln!("---- last console lines of {} ----", test.name);
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        eprintln!(
            "---- logs: {} ----",
            paths::xtask_out().join("logs").join(&test.name).display()
        );
    })
}

/// Why `test` cannot run on this machine, if it cannot: only a kernel the tool builds on
/// request (`cargo xtask build-pkvm-linux`, minutes of compiling) is ever missing; CI builds it.
fn skip_reason(test: &SystemTest) -> Option<String> {
    let Payload::LinuxBesideLinux {
        upstream_pkvm_guest: true,
        ..
    } = test.payload
    else {
        return None;
    };
    crate::upstream_linux::built_image().is_none().then(|| {
        "upstream Linux with CONFIG_ARM_PKVM_GUEST is not built (cargo xtask build-pkvm-linux)"
            .to_owned()
    })
}

/// A system test that is a function of its own rather than a [`SystemTest`].
type Check = fn() -> Result<(), String>;

/// A firmware DTB the kernel cannot use stops the boot cleanly: QEMU's own tree for the machine
/// with `/cpus` removed, passed with `-dtb` (QEMU then hands it to the kernel in x0, adding only
/// its memory node and `/chosen`), must end the run with `BootFailure` and the reason on the
/// console, not a panic or a hang.
fn check_unusable_firmware_dtb() -> Result<(), String> {
    const NAME: &str = "unusable-firmware-dtb-a72";
    let guest = crate::artifacts::guest("hv-guest-el1-basics").map_err(|e| format!("{e:#}"))?;
    let system = SystemArgs {
        manifest: None,
        machine: CpuModel::A72,
        smp: Some(1),
        mem: None,
        kernel: Some(guest.clone()),
        initrd: Some("none".into()),
        append: None,
    }
    .resolve()
    .map_err(|e| format!("{e:#}"))?;
    let qemu_tree = system.machine.dump_dtb().map_err(|e| format!("{e:#}"))?;
    let mut tree =
        hv_devicetree::DeviceTree::parse(&qemu_tree).map_err(|e| format!("QEMU's DTB: {e:?}"))?;
    if !tree.remove_node("/cpus") {
        return Err("QEMU's DTB has no /cpus to remove".into());
    }
    let path = paths::xtask_out().join("firmware-without-cpus.dtb");
    std::fs::write(&path, tree.to_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    let extra = ["-dtb".to_owned(), path.display().to_string()];
    let outcome = Boot {
        extra: &extra,
        ..Boot::new(NAME, CpuModel::A72, 1, Some(guest), 60)
    }
    .run()
    .map_err(|e| format!("{e:#}"))?;
    for needle in [
        "the firmware's DTB at",
        "no CPU under /cpus",
        "boot failed: the firmware's DTB cannot be used",
    ] {
        if !outcome.hv_log.iter().any(|line| line.contains(needle)) {
            return Err(format!("the hypervisor log lacks \"{needle}\""));
        }
    }
    if outcome.timed_out || outcome.status() != Some(ExitStatus::BootFailure) {
        return Err(format!(
            "run ended with: {}, not: {}",
            outcome.describe(),
            ExitStatus::BootFailure.describe()
        ));
    }
    Ok(())
}

/// Runs the host tests and the system tests; returns the process exit code.
pub fn run_all(host_only: bool, filter: Option<&str>) -> Result<i32> {
    crate::prereqs::ensure_targets()?;
    crate::prereqs::ensure_cpio()?;
    // The board crate's host tests read QEMU's own trees and Debian's Pi 4 tree (apt with
    // arm64 packages): both must be there on a fresh machine before `cargo test` runs.
    crate::prereqs::ensure_qemu()?;
    crate::prereqs::ensure_arm64_packages()?;
    progress::step("host tests (cargo test --workspace)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host_ok = std::process::Command::new(cargo)
        .current_dir(paths::workspace())
        .args([
            "test",
            "--workspace",
            "--exclude",
            "hv-guest-el1-basics",
            "--exclude",
            "hv-guest-null-hypercall",
        ])
        .status()
        .context("running cargo test")?
        .success();
    if host_only {
        return Ok(if host_ok { 0 } else { 1 });
    }
    let tests: Vec<_> = table::all_tests()
        .into_iter()
        .filter(|test| filter.is_none_or(|filter| test.name.contains(filter)))
        .collect();
    let mut failures = Vec::new();
    let mut skipped = 0;
    for test in &tests {
        if let Some(reason) = skip_reason(test) {
            eprintln!("system test {} ... skipped: {reason}", test.name);
            skipped += 1;
            continue;
        }
        let result = run_one(test);
        match &result {
            Ok(()) => eprintln!("system test {} ... ok", test.name),
            Err(reason) => eprintln!("system test {} ... FAILED: {reason}", test.name),
        }
        if let Err(reason) = result {
            failures.push((test.name.clone(), reason));
        }
    }
    let mut checks = tests.len() - skipped;
    let checks_by_function: [(&str, Check); 6] = [
        ("rpi4-image", rpi4::check_rpi4_image),
        ("rpi4-hot-swap-image", rpi4::check_rpi4_hot_swap_image),
        (
            "rpi4-linux-hot-swap-raspi4b",
            rpi4::check_linux_hot_swap_on_raspi4b,
        ),
        ("rpi4-raspi4b", rpi4::check_rpi4_on_raspi4b),
        ("rpi4-el1-basics-raspi4b", rpi4::check_el1_basics_on_raspi4b),
        ("unusable-firmware-dtb-a72", check_unusable_firmware_dtb),
    ];
    for (name, run) in checks_by_function {
        if filter.is_some_and(|filter| !name.contains(filter)) {
            continue;
        }
        checks += 1;
        match run() {
            Ok(()) => eprintln!("system test {name} ... ok"),
            Err(reason) => {
                eprintln!("system test {name} ... FAILED: {reason}");
                failures.push((name.into(), reason));
            }
        }
    }
    if !host_ok {
        failures.push(("host tests".into(), "cargo test failed".into()));
    }
    // The host tests count as one check.
    let total = checks + 1;
    println!(
        "{} passed, {} failed{}",
        total - failures.len(),
        failures.len(),
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        }
    );
    Ok(if failures.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(console: &str, exit_code: Option<i32>, timed_out: bool) -> Outcome {
        Outcome {
            exit_code,
            timed_out,
            console: console.to_owned(),
            swaps: Vec::new(),
            hv_log: vec![
                "0.1 INFO  entering the host at 0x42000000 (dtb 0x43e00000)".into(),
                "0.9 INFO  component-stats name=vm-manager calls=7 faults=0 starts=1".into(),
            ],
        }
    }

    fn linux(smp: u32) -> SystemTest {
        SystemTest::new("t", CpuModel::A72, smp, Payload::Linux)
    }

    const LINUX_OK: &str = "CPU: All CPU(s) started at EL1\nHV-INIT: userspace up\n\
                            HV-INIT: cpus online=2\nHV-INIT: done\n";

    #[test]
    fn a_linux_boot_passes_only_with_every_marker_and_a_clean_power_off() {
        assert_eq!(
            check(&linux(2), &outcome(LINUX_OK, Some(0), false), 0),
            Ok(())
        );
        let wrong_cpus = check(&linux(1), &outcome(LINUX_OK, Some(0), false), 0).unwrap_err();
        assert!(wrong_cpus.contains("cpus online=1"), "{wrong_cpus}");
        let no_el1 = LINUX_OK.replace("EL1", "EL2");
        assert!(check(&linux(2), &outcome(&no_el1, Some(0), false), 0).is_err());
        let timed_out = check(&linux(2), &outcome(LINUX_OK, None, true), 0).unwrap_err();
        assert!(timed_out.contains("timed out"), "{timed_out}");
        let reset = check(&linux(2), &outcome(LINUX_OK, Some(3), false), 0).unwrap_err();
        assert!(reset.contains("reset"), "{reset}");
    }

    #[test]
    fn a_guest_passes_only_when_it_reports_no_failure() {
        let guest = SystemTest::new("g", CpuModel::Max, 1, Payload::Guest("x"));
        assert_eq!(
            check(
                &guest,
                &outcome("test a ... ok\n1 passed, 0 failed\n", Some(0), false),
                0
            ),
            Ok(())
        );
        assert!(check(&guest, &outcome("2 passed, 1 failed\n", Some(3), false), 0).is_err());
        assert!(check(&guest, &outcome("0 passed, 0 failed\n", Some(0), false), 0).is_err());
        assert!(
            check(
                &guest,
                &outcome("guest-rt: FATAL: boom\n", Some(3), false),
                0
            )
            .is_err()
        );
        let crashed = SystemTest {
            crash: Some(Crash::Undefined(1)),
            ..guest
        };
        let error = check(
            &crashed,
            &outcome("1 passed, 0 failed\n", Some(0), false),
            0,
        )
        .unwrap_err();
        assert!(error.contains("took an exception"), "{error}");
    }

    #[test]
    fn planned_swaps_must_run_and_end_as_expected() {
        use crate::swap::{SwapExpect, SwapOutcome, SwapRecord, SwapReport};
        const SWAPS: &[PlannedSwap] = &[PlannedSwap {
            after: "HV-INIT: waiting",
            times: 1,
            component: "vm-manager",
            hook: None,
            corrupt: false,
            then_type: Some("go"),
            expect: SwapExpect::RolledBack("refused the state"),
        }];
        let test = SystemTest {
            swaps: SWAPS,
            ..linux(2)
        };
        let mut run = outcome(LINUX_OK, Some(0), false);
        let never = check(&test, &run, 0).unwrap_err();
        assert!(never.contains("never started"), "{never}");
        let report = |outcome| SwapReport {
            component: "vm-manager".into(),
            build: 2,
            running_build: Some(1),
            image_len: 1000,
            chunks: 6,
            outcome,
            transfer: Duration::from_millis(40),
            commit: Some(Duration::from_millis(3)),
            total: Duration::from_millis(43),
        };
        let record = |result| SwapRecord {
            component: "vm-manager".into(),
            started: Duration::from_secs(2),
            result,
        };
        run.swaps = vec![record(Err(
            "timed out: no answer to Begin within 20 s".into()
        ))];
        let failed = check(&test, &run, 0).unwrap_err();
        assert!(failed.contains("failed: timed out"), "{failed}");
        run.swaps = vec![record(Ok(report(SwapOutcome::Swapped {
            old_build: 1,
            new_build: 2,
            micros: 3000,
            state_len: 2,
        })))];
        let unexpected = check(&test, &run, 0).unwrap_err();
        assert!(unexpected.contains("not RolledBack"), "{unexpected}");
        run.swaps = vec![record(Ok(report(SwapOutcome::RolledBack {
            reason: "the new instance refused the state".into(),
        })))];
        assert_eq!(check(&test, &run, 0), Ok(()));
    }

    #[test]
    fn a_run_without_routed_calls_fails() {
        let mut quiet = outcome(LINUX_OK, Some(0), false);
        quiet.hv_log[1] =
            "0.9 INFO  component-stats name=vm-manager calls=0 faults=0 starts=0".into();
        assert!(check(&linux(2), &quiet, 0).unwrap_err().contains("routed"));
    }
}
