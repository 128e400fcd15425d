//! Making sure the machine has what a run needs: the aarch64 Rust targets, QEMU, and Debian's
//! arm64 guest kernel and busybox (fetched with `apt-get download`, unpacked with `dpkg-deb`,
//! cached outside git).
//!
//! Whatever can be installed is installed when running as root; otherwise the error names the
//! exact command to run.

use crate::{paths, progress};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The QEMU binary runs use.
pub const QEMU: &str = "qemu-system-aarch64";
/// Debian's meta-package that depends on the current arm64 cloud kernel.
const KERNEL_META_PACKAGE: &str = "linux-image-cloud-arm64:arm64";
/// Debian's meta-package for the generic arm64 kernel, which ships the board DTBs.
const GENERIC_KERNEL_META_PACKAGE: &str = "linux-image-arm64:arm64";
/// Debian's statically linked busybox for arm64.
const BUSYBOX_PACKAGE: &str = "busybox-static:arm64";

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs `command` (described as `what` in errors) and fails unless it succeeds.
pub fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// The targets `rust-toolchain.toml` names (its `targets = [...]` line).
pub fn toolchain_targets(toolchain_toml: &str) -> Result<Vec<String>> {
    let table: toml::Table = toolchain_toml
        .parse()
        .context("rust-toolchain.toml does not parse")?;
    let targets = table
        .get("toolchain")
        .and_then(|toolchain| toolchain.get("targets"))
        .and_then(|targets| targets.as_array())
        .context("rust-toolchain.toml names no [toolchain] targets")?;
    targets
        .iter()
        .map(|target| {
            target
                .as_str()
                .map(str::to_owned)
                .context("rust-toolchain.toml: a target is not a string")
        })
        .collect()
}

/// The targets of `wanted` that `installed` (rustup's `target list --installed`) lacks.
pub fn missing_targets(wanted: &[String], installed: &str) -> Vec<String> {
    wanted
        .iter()
        .filter(|target| !installed.lines().any(|line| line.trim() == target.as_str()))
        .cloned()
        .collect()
}

/// Adds the aarch64 targets `rust-toolchain.toml` names when rustup lacks them. rustup does not
/// install them by itself when its automatic installation is off (`RUSTUP_AUTO_INSTALL=0`), so
/// every build of a bare-metal image checks first. Checked once per run of the tool.
pub fn ensure_targets() -> Result<()> {
    static CHECKED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if CHECKED.get().is_some() {
        return Ok(());
    }
    let toolchain_file = paths::workspace().join("rust-toolchain.toml");
    let wanted = toolchain_targets(&std::fs::read_to_string(&toolchain_file)?)?;
    let installed = Command::new("rustup")
        .current_dir(paths::workspace())
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to install the aarch64 targets (https://rustup.rs)")?;
    if !installed.status.success() {
        bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&installed.stderr).trim()
        );
    }
    let missing = missing_targets(&wanted, &String::from_utf8_lossy(&installed.stdout));
    if missing.is_empty() {
        progress::step(&format!("Rust targets present: {}", wanted.join(", ")));
    } else {
        progress::step(&format!(
            "installing the Rust targets rust-toolchain.toml names (rustup target add {})",
            missing.join(" ")
        ));
        let mut add = Command::new("rustup");
        add.current_dir(paths::workspace())
            .args(["target", "add"])
            .args(&missing);
        run(
            &mut add,
            &format!("rustup target add {}", missing.join(" ")),
        )?;
    }
    let _ = CHECKED.set(());
    Ok(())
}

/// The QEMU machine the Raspberry Pi 4 image boots on (QEMU 9.0 and later).
pub const RASPI4B_MACHINE: &str = "raspi4b";

/// Whether the installed QEMU emulates `machine` (`-M help` lists it).
fn qemu_has_machine(machine: &str) -> bool {
    Command::new(QEMU)
        .args(["-M", "help"])
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.split_whitespace().next() == Some(machine))
        })
}

/// Installs a QEMU that emulates the Raspberry Pi 4 (`raspi4b`) with apt when the machine has
/// none (as root), or says how. Debian 12's own QEMU (7.2) lacks it, so there it comes from
/// bookworm-backports (QEMU 10.0), which this adds to apt's sources; Debian 13's is new enough.
pub fn ensure_qemu() -> Result<()> {
    if have(QEMU) && qemu_has_machine(RASPI4B_MACHINE) {
        return Ok(());
    }
    let install = if debian_codename().as_deref() == Some("bookworm") {
        format!(
            "{ENABLE_BOOKWORM_BACKPORTS} && apt-get install -y -t bookworm-backports qemu-system-arm"
        )
    } else {
        "apt-get update && apt-get install -y qemu-system-arm".to_owned()
    };
    if !is_root() {
        bail!(
            "{QEMU} with the raspi4b machine is missing; install it with: sudo sh -c '{install}'"
        );
    }
    progress::step(&format!("installing QEMU with raspi4b ({install})"));
    run(Command::new("sh").args(["-c", &install]), &install)?;
    if !qemu_has_machine(RASPI4B_MACHINE) {
        bail!(
            "the QEMU apt installed has no {RASPI4B_MACHINE} machine (QEMU 9.0 or later is needed)"
        );
    }
    Ok(())
}

/// Adds Debian's bookworm-backports to apt's sources (when missing) and refreshes the lists.
const ENABLE_BOOKWORM_BACKPORTS: &str = "{ grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ || printf 'Types: deb\\nURIs: http://deb.debian.org/debian\\nSuites: bookworm-backports\\nComponents: main\\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\\n' > /etc/apt/sources.list.d/bookworm-backports.sources; } && apt-get update";

/// The Debian release's code name (`VERSION_CODENAME` in /etc/os-release), if any.
fn debian_codename() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    release
        .lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|name| name.trim_matches('"').to_owned())
}

/// Installs Debian packages from the release's newest suite that has them: bookworm-backports
/// on Debian 12 (added to apt's sources when missing), the release itself elsewhere. `what`
/// says what they are for, in messages.
pub fn ensure_packages_from_backports(packages: &[&str], what: &str) -> Result<()> {
    let list = packages.join(" ");
    let install = if debian_codename().as_deref() == Some("bookworm") {
        format!("{ENABLE_BOOKWORM_BACKPORTS} && apt-get install -y -t bookworm-backports {list}")
    } else {
        format!("apt-get update && apt-get install -y {list}")
    };
    if !is_root() {
        bail!("{what} needs Debian packages; install them with: sudo sh -c '{install}'");
    }
    progress::step(&format!("installing {what} ({install})"));
    run(Command::new("sh").args(["-c", &install]), &install)
}

/// Installs `cpio` when missing: the initramfs tests extract our archives with the real tool.
pub fn ensure_cpio() -> Result<()> {
    ensure_program("cpio", "cpio")
}

/// Installs Debian package `package` with apt when `program` is missing (as root), or says how.
fn ensure_program(program: &str, package: &str) -> Result<()> {
    if have(program) {
        return Ok(());
    }
    let install = format!("apt-get update && apt-get install -y {package}");
    if !is_root() {
        bail!("{program} is missing; install it with: sudo sh -c '{install}'");
    }
    progress::step(&format!("installing {program} (apt-get install {package})"));
    run(Command::new("sh").args(["-c", &install]), &install)
}

/// Makes apt see arm64 packages (needed to download the guest's kernel and busybox).
pub fn ensure_arm64_packages() -> Result<()> {
    let foreign = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .context("dpkg is needed to fetch the Debian guest (is this a Debian machine?)")?;
    if String::from_utf8_lossy(&foreign.stdout)
        .lines()
        .any(|arch| arch.trim() == "arm64")
    {
        return Ok(());
    }
    let enable = "dpkg --add-architecture arm64 && apt-get update";
    if !is_root() {
        bail!("apt cannot see arm64 packages; enable them with: sudo sh -c '{enable}'");
    }
    progress::step("enabling arm64 packages in apt (dpkg --add-architecture arm64)");
    run(Command::new("sh").args(["-c", enable]), enable)
}

/// Downloads and unpacks a Debian package into the cache, once. Returns the unpacked folder.
fn fetch_package(package: &str) -> Result<PathBuf> {
    let name = package.trim_end_matches(":arm64");
    let unpacked = paths::cache().join("debian").join(name);
    if unpacked.join(".complete").exists() {
        return Ok(unpacked);
    }
    ensure_arm64_packages()?;
    let downloads = paths::cache().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    progress::step(&format!("fetching {package} (apt-get download)"));
    let mut download = Command::new("apt-get");
    download.current_dir(&downloads).args(["download", package]);
    if run(&mut download, &format!("apt-get download {package}")).is_err() {
        // A stale package list is the usual cause; refresh once when we may.
        if is_root() {
            run(Command::new("apt-get").arg("update"), "apt-get update")?;
            run(&mut download, &format!("apt-get download {package}"))?;
        } else {
            bail!("could not download {package}; try: sudo apt-get update");
        }
    }
    let deb = std::fs::read_dir(&downloads)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
        })
        .max()
        .with_context(|| format!("apt-get download left no .deb for {package}"))?;
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked)?;
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked),
        &format!("dpkg-deb -x {}", deb.display()),
    )?;
    std::fs::write(unpacked.join(".complete"), b"")?;
    Ok(unpacked)
}

/// The concrete kernel package a meta-package points at (e.g.
/// `linux-image-6.1.0-56-cloud-arm64:arm64` for `linux-image-cloud-arm64:arm64`), or a cached
/// one whose name ends in `suffix` when one was fetched before (so repeated runs need no apt).
fn resolve_kernel_package(meta_package: &str, suffix: &str) -> Result<String> {
    let flavour_matches = |name: &str| {
        // "-arm64" must not match the cloud flavour, whose names also end in "-arm64".
        name.ends_with(suffix) && (suffix.contains("cloud") || !name.ends_with("-cloud-arm64"))
    };
    let cached = || -> Option<String> {
        let entries = std::fs::read_dir(paths::cache().join("debian")).ok()?;
        entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("linux-image-") && flavour_matches(name))
            .max()
            .map(|name| format!("{name}:arm64"))
    };
    if let Some(package) = cached() {
        return Ok(package);
    }
    ensure_arm64_packages()?;
    let output = Command::new("apt-cache")
        .args(["depends", meta_package])
        .output()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|dep| dep.starts_with("linux-image-"))
        .map(str::to_owned)
        .with_context(|| format!("apt does not know {meta_package}; run apt-get update"))
}

fn find_file(dir: &Path, prefix: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .with_context(|| format!("no {prefix}* in {}", dir.display()))
}

/// Debian's arm64 cloud kernel `Image` (its `vmlinuz` is an uncompressed Image).
pub fn debian_kernel() -> Result<PathBuf> {
    let package = resolve_kernel_package(KERNEL_META_PACKAGE, "-cloud-arm64")?;
    let unpacked = fetch_package(&package)?;
    find_file(&unpacked.join("boot"), "vmlinuz-")
}

/// Debian's generic arm64 kernel `Image` (with the drivers real boards such as the Raspberry
/// Pi 4 need, which the cloud flavour lacks).
pub fn debian_generic_kernel() -> Result<PathBuf> {
    let package = resolve_kernel_package(GENERIC_KERNEL_META_PACKAGE, "-arm64")?;
    find_file(&fetch_package(&package)?.join("boot"), "vmlinuz-")
}

/// A device tree Debian's generic arm64 kernel package ships, e.g.
/// `broadcom/bcm2711-rpi-4-b.dtb` (the real Raspberry Pi 4 tree the rpi4 board starts from).
pub fn debian_dtb(relative: &str) -> Result<PathBuf> {
    let package = resolve_kernel_package(GENERIC_KERNEL_META_PACKAGE, "-arm64")?;
    let unpacked = fetch_package(&package)?;
    let lib = unpacked.join("usr/lib");
    let dir = find_file(&lib, "linux-image-")?;
    let dtb = dir.join(relative);
    if !dtb.exists() {
        bail!("{} has no {relative}", package);
    }
    Ok(dtb)
}

/// Debian's static arm64 busybox binary.
pub fn debian_busybox() -> Result<PathBuf> {
    Ok(fetch_package(BUSYBOX_PACKAGE)?.join("bin/busybox"))
}

/// The busybox initramfs (built by `hv-initramfs`), regenerated when missing.
pub fn busybox_initramfs() -> Result<PathBuf> {
    let busybox = debian_busybox()?;
    let out = paths::xtask_out().join("busybox-initramfs.cpio");
    let elf = std::fs::read(&busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let archive = hv_initramfs::busybox_initramfs(&elf, &hv_initramfs::InitOptions::default())
        .context("building the busybox initramfs")?;
    std::fs::create_dir_all(paths::xtask_out())?;
    if std::fs::read(&out).ok().as_deref() != Some(archive.as_slice()) {
        std::fs::write(&out, &archive)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_come_from_rust_toolchain_toml() {
        let text = std::fs::read_to_string(paths::workspace().join("rust-toolchain.toml")).unwrap();
        let targets = toolchain_targets(&text).unwrap();
        assert!(targets.contains(&"aarch64-unknown-none-softfloat".to_owned()));
        assert!(toolchain_targets("[toolchain]\nchannel = \"stable\"\n").is_err());
        assert!(toolchain_targets("[toolchain]\ntargets = [1]\n").is_err());
    }

    #[test]
    fn missing_targets_are_those_rustup_does_not_list() {
        let wanted = vec!["a-none".to_owned(), "b-none".to_owned()];
        assert_eq!(
            missing_targets(&wanted, "x86_64-unknown-linux-gnu\n"),
            wanted
        );
        assert_eq!(
            missing_targets(&wanted, "a-none\nx86_64-unknown-linux-gnu\n"),
            ["b-none"]
        );
        assert!(missing_targets(&wanted, "b-none\na-none\n").is_empty());
    }
}
