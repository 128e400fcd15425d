//! Building the bare-metal pieces with cargo: the EL2 kernel and the test guests.

use crate::{paths, progress};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every bare-metal image is built for.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

fn cargo_build(package: &str, features: &[&str]) -> Result<PathBuf> {
    cargo_build_with(package, features, &[])
}

fn cargo_build_with(package: &str, features: &[&str], env: &[(String, String)]) -> Result<PathBuf> {
    cargo_build_in(package, features, env, None)
}

/// Builds `package` with cargo into `target_dir` (default: the workspace's target directory)
/// and returns its ELF.
fn cargo_build_in(
    package: &str,
    features: &[&str],
    env: &[(String, String)],
    target_dir: Option<&Path>,
) -> Result<PathBuf> {
    crate::prereqs::ensure_targets()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    command.current_dir(paths::workspace()).args([
        "build",
        "--release",
        "--target",
        TARGET,
        "-p",
        package,
    ]);
    if !features.is_empty() {
        command
            .arg("--no-default-features")
            .arg("--features")
            .arg(features.join(","));
    }
    let status = command
        .status()
        .with_context(|| format!("running cargo build -p {package}"))?;
    if !status.success() {
        bail!("building {package} failed");
    }
    let target = target_dir.map_or_else(paths::target, Path::to_owned);
    Ok(target.join(TARGET).join("release").join(package))
}

/// Builds the EL2 kernel for `board`, logging at `log_level` and above, with `extra` cargo
/// features (`profile`: the trap path's phase readings for the benchmark; `dirty-guest-tags`:
/// a test build for the MTE system test), and returns its ELF.
pub fn kernel(board: &hv_board::Board, log_level: &str, extra: &[&str]) -> Result<PathBuf> {
    let _timer = progress::timed(&format!("building the EL2 kernel for {}", board.name));
    let board_feature = format!("board-{}", board.name);
    let mut features = vec![board_feature.as_str()];
    features.extend_from_slice(extra);
    let env = [("DEFMT_LOG".to_owned(), log_level.to_owned())];
    cargo_build_with("hv-kernel", &features, &env)
}

/// Builds a test guest (a package under `tests/guests/`) and returns its ELF.
pub fn guest(package: &str) -> Result<PathBuf> {
    let _timer = progress::timed(&format!("building test guest {package}"));
    cargo_build(package, &[])
}

/// Builds test-guest package `package` to run as `board`'s host kernel: linked where the board
/// starts it (the test guests' default is qemu-virt's address).
pub fn host_guest(package: &str, board: &hv_board::Board) -> Result<PathBuf> {
    if board.host_kernel_address == hv_board::QEMU_VIRT.host_kernel_address {
        guest(package)
    } else {
        guest_at(package, board.host_kernel_address)
    }
}

/// Builds test-guest package `package` linked to run as the host kernel at `load_address` (a
/// board other than qemu-virt; `hv-guest-rt`'s build script takes the address), and returns a
/// copy of its ELF that a later build for another address does not overwrite.
pub fn guest_at(package: &str, load_address: u64) -> Result<PathBuf> {
    let _timer = progress::timed(&format!(
        "building test guest {package} at {load_address:#x}"
    ));
    let env = [(
        "HV_GUEST_LOAD_ADDRESS".to_owned(),
        format!("{load_address:#x}"),
    )];
    let elf = cargo_build_with(package, &[], &env)?;
    let kept = crate::paths::xtask_out().join(format!("{package}-at-{load_address:#x}.elf"));
    std::fs::create_dir_all(crate::paths::xtask_out())?;
    std::fs::copy(&elf, &kept).with_context(|| format!("copying {}", elf.display()))?;
    Ok(kept)
}

/// Builds a component with the configuration in `config_file` (which links it at `region`)
/// and keeps a copy of its ELF in `out_dir` for log decoding. `target_dir` is cargo's target
/// directory (default: the workspace's): a hot-swap test build, whose configuration differs,
/// gets one of its own so that the image's build stays cached.
pub fn component(
    spec: &hv_manifest::Component,
    region: hv_abi::PhysRange,
    out_dir: &Path,
    config_file: &Path,
    target_dir: Option<&Path>,
) -> Result<PathBuf> {
    let _timer = progress::timed(&format!(
        "building component {} at {:#x}",
        spec.name, region.start
    ));
    let env = [(
        hv_component_config::build::CONFIG_VARIABLE.to_owned(),
        config_file.display().to_string(),
    )];
    let elf = cargo_build_in(&spec.crate_name, &[], &env, target_dir)?;
    std::fs::create_dir_all(out_dir)?;
    let kept = out_dir.join(format!("{}.elf", spec.name));
    std::fs::copy(&elf, &kept).with_context(|| format!("copying {}", elf.display()))?;
    Ok(kept)
}

/// Builds test-guest package `package` and returns the ELF of its binary `bin`.
pub fn guest_bin(package: &str, bin: &str) -> Result<PathBuf> {
    let _timer = progress::timed(&format!("building test guest {bin}"));
    let elf = cargo_build(package, &[])?;
    Ok(elf.with_file_name(bin))
}
