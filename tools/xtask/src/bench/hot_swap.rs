//! The hot-swap figures of `cargo xtask bench`: how long swapping the VM manager takes on QEMU
//! while a guest calls it on 2 CPUs (`tests/guests/swap-load`), and how long a caller waited.
//! Wall time, so noisy under TCG: figures, never assertions.

use anyhow::{Context, Result, bail};

use crate::qemu::CpuModel;
use crate::swap::{PlannedSwap, SwapExpect, SwapOutcome};
use hv_component_config::SwapTest;

/// Swaps the VM manager once under load and prints what it took: on virt (its own control
/// PL011) and on the Raspberry Pi 4's raspi4b (the log's mini-UART, one chunk at a time).
pub fn print_figures() -> Result<()> {
    println!(
        "Hot-swap of vm-manager while a guest calls it on 2 CPUs (a72, wall time under TCG; the\nimage is built before the run):"
    );
    println!("  qemu-virt (a PL011 of its own):");
    swap_once(
        "bench-hot-swap",
        2,
        crate::artifacts::guest("hv-guest-swap-load")?,
        "manifests/tests/hot-swap-vm-manager.toml",
    )?;
    println!("  rpi4 on raspi4b (the log's mini-UART, shared):");
    swap_once(
        "bench-hot-swap-rpi4",
        4,
        crate::artifacts::guest_at("hv-guest-swap-load", hv_board::RPI4.host_kernel_address)?,
        "manifests/tests/hot-swap-rpi4.toml",
    )
}

/// One run of `manifest` with `guest` as its host on `smp` CPUs, the VM manager swapped once
/// the guest loops; prints the figures.
fn swap_once(name: &str, smp: u32, guest: std::path::PathBuf, manifest: &str) -> Result<()> {
    let swaps = [PlannedSwap {
        after: "swap-load: looping on 2 CPUs",
        times: 1,
        component: "vm-manager",
        hook: Some(SwapTest::Rebuilt),
        corrupt: false,
        then_type: Some("q"),
        expect: SwapExpect::Swapped,
    }];
    let outcome = crate::systest::Boot {
        manifest: Some(manifest),
        swaps: &swaps,
        ..crate::systest::Boot::new(name, CpuModel::A72, smp, Some(guest), 300)
    }
    .run()?;
    let record = outcome
        .swaps
        .first()
        .context("the run ended before the swap")?;
    let report = record
        .result
        .as_ref()
        .map_err(|error| anyhow::anyhow!("the swap did not finish: {error}"))?;
    let SwapOutcome::Swapped {
        micros, state_len, ..
    } = report.outcome
    else {
        bail!("the swap did not succeed: {}", report.describe());
    };
    println!(
        "    image {} KiB in {} chunks: transfer {} ms ({} KiB/s), Commit to its answer {} ms",
        report.image_len / 1024,
        report.chunks,
        report.transfer.as_millis(),
        (report.image_len as u128 * 1000 / report.transfer.as_millis().max(1)) / 1024,
        report.commit.map_or(0, |commit| commit.as_millis()),
    );
    println!(
        "    from Begin to the new instance serving: {} ms; the swap itself (callers held) {:.1} ms, {} bytes of state",
        report.total.as_millis(),
        micros as f64 / 1000.0,
        state_len
    );
    match longest_calls(&outcome.console) {
        Some((cpu0, cpu1)) => println!(
            "    longest call the guest saw: cpu0 {} ms, cpu1 {} ms (a CPU's vCPU also waits while\n    the supervisor reads a transfer on it)",
            cpu0 / 1000,
            cpu1 / 1000
        ),
        None => println!("    the guest printed no longest-call line"),
    }
    if !outcome.console.contains("swap-load: PASS") {
        bail!("the guest did not pass; see target/xtask/logs/{name}");
    }
    Ok(())
}

/// The guest's `swap-load: longest call cpu0=<us>us cpu1=<us>us` figures, in microseconds.
fn longest_calls(console: &str) -> Option<(u64, u64)> {
    let line = console
        .lines()
        .find(|line| line.contains("swap-load: longest call"))?;
    let value = |key: &str| -> Option<u64> {
        let start = line.find(key)? + key.len();
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((value("cpu0=")?, value("cpu1=")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guests_longest_calls_are_read() {
        let console = "x\nswap-load: longest call cpu0=2100000us cpu1=9000us; looped 5000 ms\n";
        assert_eq!(longest_calls(console), Some((2_100_000, 9_000)));
        assert_eq!(longest_calls("nothing"), None);
    }
}
