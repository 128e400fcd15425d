//! `cargo xtask bench`: figures, never assertions. Trap counts per class during a Linux boot
//! (1 and 2 CPUs), and instructions per hypercall round trip measured by a test guest under
//! `-icount shift=0` (one instruction = one nanosecond of virtual time): a guest call a
//! component answers, and one for which that component calls another.

use crate::qemu::CpuModel;
use crate::systest::Boot;

mod hot_swap;
use anyhow::{Context, Result, bail};
use hv_kernel::trap_stats::TrapClass;
use std::collections::BTreeMap;

/// Sums the kernel's `trap-count` report lines by class.
fn trap_counts(hv_log: &[String]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in hv_log {
        let Some(rest) = line.split("trap-count ").nth(1) else {
            continue;
        };
        let field = |name: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(name));
        if let (Some(class), Some(count)) = (
            field("class="),
            field("count=").and_then(|c| c.parse::<u64>().ok()),
        ) {
            *counts.entry(class.to_owned()).or_insert(0) += count;
        }
    }
    counts
}

/// Sums the kernel's `trap-count` report lines of the CPUs `cpus` by class.
fn trap_counts_on(hv_log: &[String], cpus: &[u64]) -> BTreeMap<String, u64> {
    let lines: Vec<String> = hv_log
        .iter()
        .filter(|line| {
            line.split("trap-count ").nth(1).is_some_and(|rest| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix("cpu="))
                    .and_then(|cpu| cpu.parse::<u64>().ok())
                    .is_some_and(|cpu| cpus.contains(&cpu))
            })
        })
        .cloned()
        .collect();
    trap_counts(&lines)
}

/// The kernel's `trap-profile` lines (profiled kernel): per kind of answer (`direct`,
/// `nested`), the traps and the counter ticks of each phase, summed over CPUs.
fn trap_profile(hv_log: &[String]) -> Option<BTreeMap<String, [u64; 4]>> {
    let mut kinds = BTreeMap::new();
    for line in hv_log {
        let Some(rest) = line.split("trap-profile ").nth(1) else {
            continue;
        };
        let field = |name: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(name));
        let number = |name: &str| field(name).and_then(|value| value.parse::<u64>().ok());
        let kind = field("answer=")?;
        let values = [
            number("traps=")?,
            number("kernel-dispatch=")?,
            number("component=")?,
            number("kernel-return=")?,
        ];
        let entry: &mut [u64; 4] = kinds.entry(kind.to_owned()).or_default();
        for (sum, value) in entry.iter_mut().zip(values) {
            *sum += value;
        }
    }
    (!kinds.is_empty()).then_some(kinds)
}

/// The counter frequency a `BENCH` line reports.
fn counter_hz(bench_line: &str) -> Option<u64> {
    bench_line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("counter-hz="))
        .and_then(|value| value.parse().ok())
}

/// Runs every benchmark and prints its figures.
pub fn run() -> Result<()> {
    let mut rows = Vec::new();
    for smp in [1, 2] {
        let outcome = Boot {
            append: "console=ttyAMA0 hv.init=test",
            ..Boot::new(
                &format!("bench-linux-smp{smp}"),
                CpuModel::A72,
                smp,
                None,
                300,
            )
        }
        .run()?;
        if !outcome.console.contains("HV-INIT: done") {
            bail!(
                "Linux did not finish booting ({}); see target/xtask/logs/bench-linux-smp{smp}",
                outcome.describe()
            );
        }
        rows.push((smp, trap_counts(&outcome.hv_log)));
    }
    println!();
    println!("Traps during a Linux boot to userspace and power-off (cortex-a72, GICv2):");
    print!("  {:<20}", "class");
    for (smp, _) in &rows {
        print!("{:>12}", format!("{smp} CPU(s)"));
    }
    println!();
    for class in TrapClass::ALL {
        print!("  {:<20}", class.name());
        for (_, counts) in &rows {
            print!("{:>12}", counts.get(class.name()).copied().unwrap_or(0));
        }
        println!();
    }
    print!("  {:<20}", "total");
    for (_, counts) in &rows {
        print!("{:>12}", counts.values().sum::<u64>());
    }
    println!();
    println!();
    // Host stage-2 faults and table pages while Linux boots on mem-protect's lazy stage 2, with
    // the largest-block policy and with pages only.
    let mut stage2_rows = Vec::new();
    use hv_component_config::{MappingPolicy, MemProtectSettings, Settings};
    for (policy, mapping) in [
        ("largest-block", MappingPolicy::LargestBlock),
        ("page-only", MappingPolicy::PageOnly),
    ] {
        for smp in [1, 2] {
            let settings = [Settings::MemProtect(MemProtectSettings {
                policy: mapping,
                device_tables: None,
                crash: None,
            })];
            let outcome = Boot {
                append: "console=ttyAMA0 hv.init=test",
                settings: &settings,
                manifest: Some("manifests/tests/mem-protect.toml"),
                ..Boot::new(
                    &format!("bench-stage2-{policy}-smp{smp}"),
                    CpuModel::A72,
                    smp,
                    None,
                    600,
                )
            }
            .run()?;
            if !outcome.console.contains("HV-INIT: done") {
                bail!(
                    "Linux did not finish booting on the {policy} stage 2 ({})",
                    outcome.describe()
                );
            }
            let last = outcome
                .hv_log
                .iter()
                .rev()
                .find_map(|line| line.split("stage2-stats ").nth(1))
                .context("mem-protect logged no stage2-stats line")?;
            // The summary line holds the final tables; the fault total is the kernel's count of
            // stage-2 aborts (the summary is logged only when the tables change).
            let traps = trap_counts(&outcome.hv_log);
            let faults = traps.get("data-abort").copied().unwrap_or(0)
                + traps.get("instruction-abort").copied().unwrap_or(0);
            let tables: Vec<&str> = last
                .split_whitespace()
                .filter(|field| !field.starts_with("faults="))
                .collect();
            stage2_rows.push((policy, smp, format!("faults={faults} {}", tables.join(" "))));
        }
    }

    print_trap_path_figures()?;
    println!();
    println!(
        "Host stage-2 faults and table pages during a Linux boot (mem-protect, cortex-a72; target\n<= 16 faults on 1 CPU):"
    );
    for (policy, smp, stats) in &stage2_rows {
        println!("  {policy:<14} {smp} CPU(s): {stats}");
    }
    println!();
    let GuestFigures {
        guest_traps: guest_counts,
        host_traps: host_counts,
        virq_line,
        virq_instructions,
    } = guest_figures()?;
    println!(
        "Traps while Debian's Linux boots as a guest VM (2 vCPUs on CPUs 1-2, cortex-a72 GICv2)\nbeside the host's Linux (CPU 0), through the guest's workload and power-off:"
    );
    println!("  {:<20}{:>12}{:>12}", "class", "guest CPUs", "host CPU");
    for class in TrapClass::ALL {
        let guest = guest_counts.get(class.name()).copied().unwrap_or(0);
        let host = host_counts.get(class.name()).copied().unwrap_or(0);
        if guest + host != 0 {
            println!("  {:<20}{guest:>12}{host:>12}", class.name());
        }
    }
    println!(
        "  {:<20}{:>12}{:>12}",
        "total",
        guest_counts.values().sum::<u64>(),
        host_counts.values().sum::<u64>()
    );
    println!(
        "  (a guest's WFI does not trap: its vCPU owns its CPU, and interrupts wake it there)"
    );
    println!();
    println!("One forwarded virtual interrupt, instructions under -icount shift=0 (cortex-a72):");
    println!(
        "  physical timer interrupt at EL2 -> list register -> guest handler entry   {virq_instructions:>6}"
    );
    println!("  {virq_line}");
    println!();
    print_pkvm_guest_figures()?;
    println!();
    hot_swap::print_figures()?;
    Ok(())
}

/// Instructions per hypercall round trip under `-icount shift=0`, with the profiled kernel's
/// phases, and the MMIO guard's figures: the trap path's section (`--only trap-path`).
fn print_trap_path_figures() -> Result<()> {
    let guest = crate::artifacts::guest("hv-guest-null-hypercall")?;
    let icount = ["-icount".to_owned(), "shift=0".to_owned()];
    let outcome = Boot {
        extra: &icount,
        ..Boot::new(
            "bench-null-hypercall",
            CpuModel::A72,
            1,
            Some(guest.clone()),
            300,
        )
    }
    .run()?;
    // The same run on a kernel that reads the counter at four points of the trap path (the
    // readings cost instructions themselves, so the figures above come from the plain kernel).
    let profiled = Boot {
        extra: &icount,
        kernel_features: &["profile"],
        ..Boot::new(
            "bench-null-hypercall-profile",
            CpuModel::A72,
            1,
            Some(guest),
            300,
        )
    }
    .run()?;
    let phases =
        trap_profile(&profiled.hv_log).context("the profiled run logged no trap-profile line")?;
    let figure_in = |outcome: &crate::qemu::Outcome, name: &str| -> Result<(String, u64)> {
        let line = outcome
            .console
            .lines()
            .find(|line| line.starts_with(&format!("BENCH {name} ")))
            .with_context(|| format!("the benchmark guest printed no BENCH {name} line"))?;
        let instructions = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("insns-per-call="))
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("no insns-per-call in: {line}"))?;
        Ok((line.to_owned(), instructions))
    };
    let figure = |name: &str| figure_in(&outcome, name);
    let (null_line, null_instructions) = figure("null-hypercall")?;
    let (ping_line, ping_instructions) = figure("ping-supervisor")?;
    let (_, profiled_null) = figure_in(&profiled, "null-hypercall")?;
    let (_, profiled_ping) = figure_in(&profiled, "ping-supervisor")?;

    let mmio_guest = crate::artifacts::guest("hv-guest-mmio-bench")?;
    let mmio = Boot {
        extra: &icount,
        manifest: Some("manifests/tests/mmio-guard.toml"),
        ..Boot::new("bench-mmio-guard", CpuModel::A72, 1, Some(mmio_guest), 300)
    }
    .run()?;
    let mmio_figure = |name: &str| -> Result<u64> {
        mmio.console
            .lines()
            .find_map(|line| line.split(&format!("BENCH {name} ")).nth(1))
            .and_then(|rest| {
                rest.split_whitespace()
                    .find_map(|f| f.strip_prefix("insns-per-call="))
            })
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("the mmio benchmark guest printed no BENCH {name} line"))
    };
    let map_instructions = mmio_figure("mmio-guard-map")?;
    let write_instructions = mmio_figure("guarded-console-write")?;

    println!("Hypercall round trips, instructions per call under -icount shift=0 (issue 10's");
    println!("targets in brackets):");
    println!(
        "  guest -> kernel -> vm-manager -> kernel -> guest        {null_instructions:>6}  [<= 800]"
    );
    println!("  ... plus vm-manager -> supervisor call and reply        {ping_instructions:>6}");
    println!(
        "  component-to-component call and reply (difference)      {:>6}  [<= 500]",
        ping_instructions.saturating_sub(null_instructions)
    );
    println!("  {null_line}");
    println!("  {ping_line}");
    // Counter ticks to instructions: under -icount shift=0 one instruction is one nanosecond.
    let hz = counter_hz(&null_line).context("no counter-hz in the BENCH line")?;
    let per_call = |ticks: u64, traps: u64| ticks * (1_000_000_000 / hz) / traps.max(1);
    for (kind, what, total, plain) in [
        (
            "direct",
            "a guest hypercall vm-manager answers",
            profiled_null,
            null_instructions,
        ),
        (
            "nested",
            "one for which vm-manager calls the supervisor",
            profiled_ping,
            ping_instructions,
        ),
    ] {
        let Some(&[traps, dispatch, component, ret]) = phases.get(kind) else {
            continue;
        };
        let [dispatch, component, ret] = [dispatch, component, ret].map(|t| per_call(t, traps));
        println!(
            "  where {what} goes ({traps} traps; profiled kernel: {total} per call, \
             {} more than the plain kernel for its own readings):",
            total.saturating_sub(plain)
        );
        println!(
            "    kernel: decode, route, encode, copy, switch to the component   {dispatch:>6}"
        );
        println!(
            "    component: entry, RECV, dispatch, policy, reply, REPLY entry    {component:>6}"
        );
        println!("    kernel: read and decode the answer, switch back, apply it       {ret:>6}");
        println!(
            "    the rest: vCPU exception entry and exit, registers, guest loop   {:>6}",
            total.saturating_sub(dispatch + component + ret)
        );
    }
    println!();
    println!("MMIO guard, instructions under -icount shift=0:");
    println!(
        "  MMIO_GUARD_MAP (guest -> kernel -> mmio-guard -> guest)  {map_instructions:>6}  [<= 900]"
    );
    println!(
        "  emulated console write through the guard                 {write_instructions:>6}  [<= 1500]"
    );
    Ok(())
}

/// Only the trap path's figures (`cargo xtask bench --only trap-path`).
pub fn trap_path_only() -> Result<()> {
    print_trap_path_figures()
}

/// Only the hot-swap figures (`cargo xtask bench --only hot-swap`).
pub fn hot_swap_only() -> Result<()> {
    hot_swap::print_figures()
}

/// The pKVM services as upstream Linux calls them while it boots: upstream Linux 6.12 with its
/// pKVM guest driver as an MMIO-guard-enforced guest (GICv3, `max`), on the profiled kernel
/// under `-icount shift=0`. Skipped, saying so, when `cargo xtask build-pkvm-linux` has not
/// built that kernel.
fn print_pkvm_guest_figures() -> Result<()> {
    println!(
        "Upstream Linux 6.12 with CONFIG_ARM_PKVM_GUEST booting as an enforced guest (2 vCPUs, max,\nGICv3), calls its guest CPUs made to each component and their instructions under\n-icount shift=0 (trap to resume, kernel and component):"
    );
    if crate::upstream_linux::built_image().is_none() {
        println!("  skipped: the kernel is not built (cargo xtask build-pkvm-linux)");
        return Ok(());
    }
    let go = [crate::qemu::ConsoleInput {
        after: "VM guest stopped: it powered off",
        times: 1,
        and_after: Some("HV-INIT: waiting for a line on the console"),
        line: "go",
    }];
    let icount = ["-icount".to_owned(), "shift=0".to_owned()];
    let outcome = Boot {
        append: "console=ttyAMA0 hv.init=test hv.wait=console",
        extra: &icount,
        manifest: Some("manifests/tests/linux-pkvm-guest.toml"),
        kernel_features: &["profile"],
        input: &go,
        ..Boot::new("bench-linux-pkvm-guest", CpuModel::Max, 3, None, 600)
    }
    .run()?;
    if !outcome
        .hv_log
        .iter()
        .any(|line| line.contains(" console: b\"HV-INIT: done"))
    {
        bail!(
            "the pKVM guest did not finish ({}); see target/xtask/logs/bench-linux-pkvm-guest",
            outcome.describe()
        );
    }
    let counter_hz = guest_timer_hz(&outcome.hv_log)
        .context("the guest's console shows no \"arch_timer: ... running at\" line")?;
    let by_component = profile_by_component(&outcome.hv_log, &[1, 2]);
    for (component, what) in [
        ("mmio-guard", "MMIO_GUARD_* and HYP_MEMINFO"),
        ("mem-protect", "MEM_SHARE and MEM_UNSHARE"),
    ] {
        let (calls, ticks) = by_component.get(component).copied().unwrap_or((0, 0));
        let instructions = ticks_to_instructions(ticks, counter_hz);
        println!(
            "  {what:<30} ({component:<11}) {calls:>7} calls  {instructions:>11} instructions  {:>6} per call",
            instructions.checked_div(calls).unwrap_or(0)
        );
    }
    Ok(())
}

/// The guest's counter frequency, from Linux's `arch_timer: cp15 timer(s) running at
/// 62.50MHz (virt).` line in the hypervisor's log.
fn guest_timer_hz(hv_log: &[String]) -> Option<u64> {
    hv_log.iter().find_map(|line| {
        let rest = line.split("timer(s) running at ").nth(1)?;
        let mhz: f64 = rest.split("MHz").next()?.parse().ok()?;
        Some((mhz * 1_000_000.0).round() as u64)
    })
}

/// Counter ticks as instructions: under `-icount shift=0` each instruction is one nanosecond.
fn ticks_to_instructions(ticks: u64, counter_hz: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(counter_hz.max(1))) as u64
}

/// The profiled kernel's `trap-profile-by` lines of `cpus`: per component, the vCPU traps it
/// took and their counter ticks, summed.
fn profile_by_component(hv_log: &[String], cpus: &[u64]) -> BTreeMap<String, (u64, u64)> {
    let mut sums = BTreeMap::new();
    for line in hv_log {
        let Some(rest) = line.split("trap-profile-by ").nth(1) else {
            continue;
        };
        let field = |name: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(name));
        let number = |name: &str| field(name).and_then(|value| value.parse::<u64>().ok());
        let (Some(cpu), Some(component), Some(traps), Some(ticks)) = (
            number("cpu="),
            field("component="),
            number("traps="),
            number("ticks="),
        ) else {
            continue;
        };
        if cpus.contains(&cpu) {
            let entry: &mut (u64, u64) = sums.entry(component.to_owned()).or_default();
            entry.0 += traps;
            entry.1 += ticks;
        }
    }
    sums
}

/// What [`guest_figures`] measures.
struct GuestFigures {
    /// Traps per class on the Linux guest's CPUs.
    guest_traps: BTreeMap<String, u64>,
    /// Traps per class on the host's CPU meanwhile.
    host_traps: BTreeMap<String, u64>,
    /// The vm-irq guest's `BENCH virq-latency` line.
    virq_line: String,
    /// Instructions of one forwarded virtual interrupt.
    virq_instructions: u64,
}

/// Trap counts on the guest's and the host's CPUs while a Linux guest boots, runs its test
/// workload and powers off beside a Linux host; and the forwarded-interrupt latency line and
/// figure the vm-irq guest prints under `-icount shift=0`.
fn guest_figures() -> Result<GuestFigures> {
    let go = [crate::qemu::ConsoleInput {
        after: "VM guest stopped: it powered off",
        times: 1,
        and_after: None,
        line: "go",
    }];
    let linux = Boot {
        append: "console=ttyAMA0 hv.init=test hv.wait=console",
        manifest: Some("manifests/tests/linux-guest.toml"),
        input: &go,
        ..Boot::new("bench-linux-guest", CpuModel::A72, 3, None, 420)
    }
    .run()?;
    // The guest's console lines are in the hypervisor's log (its manifest grants no
    // console-write, so that they do not interleave with the host's on the UART).
    if !linux
        .hv_log
        .iter()
        .any(|line| line.contains(" console: b\"HV-INIT: done"))
    {
        bail!(
            "the Linux guest did not finish ({}); see target/xtask/logs/bench-linux-guest",
            linux.describe()
        );
    }
    let guest = trap_counts_on(&linux.hv_log, &[1, 2]);
    let host = trap_counts_on(&linux.hv_log, &[0]);
    // The vm-irq guest alone on its CPU: its host idles, and the run ends at the timeout.
    let host_bin = crate::artifacts::guest_bin("hv-guest-vm-irq", "hv-guest-vm-irq-host")?;
    let icount = ["-icount".to_owned(), "shift=0".to_owned()];
    let irq = Boot {
        append: "idle",
        extra: &icount,
        manifest: Some("manifests/tests/guest-irq-bench.toml"),
        ..Boot::new("bench-virq-latency", CpuModel::A72, 2, Some(host_bin), 60)
    }
    .run()?;
    let line = irq
        .console
        .lines()
        .find_map(|line| line.split_once("BENCH virq-latency ").map(|(_, rest)| rest))
        .context("the vm-irq guest printed no BENCH virq-latency line")?
        .trim()
        .to_owned();
    let instructions = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("mean-insns="))
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("no mean-insns in: {line}"))?;
    Ok(GuestFigures {
        guest_traps: guest,
        host_traps: host,
        virq_line: format!("BENCH virq-latency {line}"),
        virq_instructions: instructions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_lines_are_summed_per_component_over_some_cpus() {
        let log: Vec<String> = [
            "0.1 INFO  trap-profile-by cpu=0 component=vm-manager traps=9 ticks=900",
            "0.1 INFO  trap-profile-by cpu=1 component=mmio-guard traps=3 ticks=30",
            "0.1 INFO  trap-profile-by cpu=2 component=mmio-guard traps=1 ticks=12",
            "0.1 INFO  trap-profile-by cpu=2 component=mem-protect traps=32 ticks=320",
            "0.1 INFO  trap-profile-by cpu=2 component=broken",
        ]
        .iter()
        .map(|line| line.to_string())
        .collect();
        let sums = profile_by_component(&log, &[1, 2]);
        assert_eq!(sums.get("mmio-guard"), Some(&(4, 42)));
        assert_eq!(sums.get("mem-protect"), Some(&(32, 320)));
        assert_eq!(sums.get("vm-manager"), None);
    }

    #[test]
    fn the_guest_timer_line_gives_the_counter_frequency() {
        let log = [
            "1.4 INFO  [vm-manager] vm1 console: b\"[    0.000000] arch_timer: cp15 timer(s) running at 62.50MHz (virt).\"".to_owned(),
        ];
        assert_eq!(guest_timer_hz(&log), Some(62_500_000));
        assert_eq!(ticks_to_instructions(10, 62_500_000), 160);
        assert_eq!(ticks_to_instructions(10, 1_000_000_000), 10);
        assert_eq!(guest_timer_hz(&[]), None);
    }

    #[test]
    fn trap_counts_of_some_cpus_only() {
        let log: Vec<String> = [
            "0.1 INFO  trap-count cpu=0 class=hvc count=5",
            "0.1 INFO  trap-count cpu=1 class=hvc count=7",
            "0.1 INFO  trap-count cpu=2 class=interrupt count=3",
            "0.1 INFO  trap-count cpu=12 class=hvc count=100",
        ]
        .iter()
        .map(|line| line.to_string())
        .collect();
        let guest = trap_counts_on(&log, &[1, 2]);
        assert_eq!(guest.get("hvc"), Some(&7));
        assert_eq!(guest.get("interrupt"), Some(&3));
        assert_eq!(trap_counts_on(&log, &[0]).get("hvc"), Some(&5));
        assert!(trap_counts_on(&log, &[3]).is_empty());
    }

    #[test]
    fn trap_profile_lines_are_summed_by_kind_over_cpus() {
        let log: Vec<String> = [
            "0.1 INFO  trap-profile cpu=0 answer=direct traps=10 kernel-dispatch=100 component=200 kernel-return=50",
            "0.1 INFO  trap-profile cpu=1 answer=direct traps=2 kernel-dispatch=20 component=40 kernel-return=10",
            "0.1 INFO  trap-profile cpu=0 answer=nested traps=5 kernel-dispatch=50 component=900 kernel-return=25",
            "0.1 INFO  trap-count cpu=0 class=hvc count=17",
        ]
        .map(str::to_owned)
        .to_vec();
        let kinds = trap_profile(&log).unwrap();
        assert_eq!(kinds["direct"], [12, 120, 240, 60]);
        assert_eq!(kinds["nested"], [5, 50, 900, 25]);
        assert_eq!(trap_profile(&log[3..]), None);
        assert_eq!(
            counter_hz(
                "BENCH null-hypercall iterations=1 ticks=2 counter-hz=62500000 insns-per-call=3"
            ),
            Some(62_500_000)
        );
    }
}
