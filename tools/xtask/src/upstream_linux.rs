//! Upstream Linux as a pKVM guest: `cargo xtask build-pkvm-linux` builds Linux 6.12 from
//! Debian's `linux-source-6.12` package with `CONFIG_ARM_PKVM_GUEST=y` (Debian's own kernels
//! leave it off), so the MMIO guard and MEM_SHARE / MEM_UNSHARE are tried with the guest driver
//! upstream ships (drivers/virt/coco/pkvm-guest), not only with our own test guests.
//!
//! The configuration is `tinyconfig` plus `tools/xtask/linux/pkvm-guest.config`: a console
//! (PL011), both GICs, PSCI, SMP, an initramfs and the pKVM guest driver, nothing else, so the
//! build takes minutes on two cores. Source, build tree and the finished `Image` live in the
//! cache (`paths::cache()`), never in git; the Image is rebuilt only when the source package or
//! the configuration fragment changes.

use crate::prereqs::{self, run};
use crate::{paths, progress};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The source package (Debian 12: from bookworm-backports; Debian 13: its own).
const SOURCE_PACKAGE: &str = "linux-source-6.12";
/// The source tarball the package installs.
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// What the build needs besides the source.
const BUILD_PACKAGES: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "make",
    "flex",
    "bison",
    "bc",
    "libssl-dev",
    "libelf-dev",
    "xz-utils",
];
/// The configuration fragment merged over `tinyconfig`.
const CONFIG_FRAGMENT: &str = include_str!("../linux/pkvm-guest.config");
/// The cross compiler's prefix.
const CROSS_COMPILE: &str = "aarch64-linux-gnu-";

/// Where the build lives in the cache.
fn build_root() -> PathBuf {
    paths::cache().join("linux-pkvm-guest")
}

/// The finished kernel: `arch/arm64/boot/Image` copied out of the build tree once the build
/// of the current source and fragment succeeded.
fn image_path() -> PathBuf {
    build_root().join("Image")
}

/// What the Image was built from: the tarball's size and modification time and the fragment's
/// hash. A different stamp means the Image is stale.
fn stamp() -> Result<String> {
    let tarball = std::fs::metadata(SOURCE_TARBALL)
        .with_context(|| format!("{SOURCE_TARBALL} is missing"))?;
    let modified = tarball
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs());
    Ok(format!(
        "{SOURCE_PACKAGE} {} {modified}\nfragment {:016x}\n",
        tarball.len(),
        fnv1a(CONFIG_FRAGMENT.as_bytes())
    ))
}

/// FNV-1a, enough to notice an edited fragment (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The upstream pKVM guest kernel if `cargo xtask build-pkvm-linux` built it from the current
/// source and fragment; `None` otherwise (callers say how to build it).
pub fn built_image() -> Option<PathBuf> {
    let image = image_path();
    let built = std::fs::read_to_string(build_root().join("Image.stamp")).ok()?;
    (image.exists() && stamp().ok()? == built).then_some(image)
}

/// The kernel a manifest's `kernel = "linux-pkvm"` names, or an error saying how to build it.
pub fn image_or_error() -> Result<PathBuf> {
    built_image().with_context(|| {
        format!(
            "upstream Linux with CONFIG_ARM_PKVM_GUEST is not built (or is stale); build it \
             with `cargo xtask build-pkvm-linux` (it is cached in {})",
            build_root().display()
        )
    })
}

fn have_tools() -> bool {
    let have = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    let compiler = format!("{CROSS_COMPILE}gcc");
    Path::new(SOURCE_TARBALL).exists()
        && [compiler.as_str(), "flex", "bison", "bc", "make"]
            .into_iter()
            .all(have)
}

/// The options of the fragment that the final `.config` lacks (Kconfig drops an option whose
/// dependencies are unmet, silently).
fn unmet_options(fragment: &str, config: &str) -> Vec<String> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("CONFIG_"))
        .filter(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            if value == "n" {
                config
                    .lines()
                    .any(|have| have.starts_with(&format!("{name}=")))
            } else {
                !config.lines().any(|have| have == *line)
            }
        })
        .map(str::to_owned)
        .collect()
}

/// `cargo xtask build-pkvm-linux`: installs what the build needs, unpacks the source into the
/// cache, configures and builds the Image. Returns its path.
pub fn build() -> Result<PathBuf> {
    if let Some(image) = built_image() {
        progress::step(&format!(
            "upstream pKVM guest kernel up to date: {}",
            image.display()
        ));
        return Ok(image);
    }
    if !have_tools() {
        let mut packages = vec![SOURCE_PACKAGE];
        packages.extend_from_slice(BUILD_PACKAGES);
        prereqs::ensure_packages_from_backports(&packages, "the upstream Linux build")?;
    }
    let root = build_root();
    let source = root.join("source");
    let objects = root.join("build");
    let unpacked = source.join("linux-source-6.12");
    let stamp = stamp()?;
    if std::fs::read_to_string(source.join(".stamp"))
        .ok()
        .as_deref()
        != Some(stamp.as_str())
    {
        progress::step(&format!("unpacking {SOURCE_TARBALL}"));
        let _ = std::fs::remove_dir_all(&source);
        let _ = std::fs::remove_dir_all(&objects);
        std::fs::create_dir_all(&source)?;
        run(
            Command::new("tar")
                .arg("xf")
                .arg(SOURCE_TARBALL)
                .arg("-C")
                .arg(&source),
            &format!("tar xf {SOURCE_TARBALL}"),
        )?;
        std::fs::write(source.join(".stamp"), &stamp)?;
    }
    std::fs::create_dir_all(&objects)?;
    let make = |args: &[&str]| {
        let mut command = Command::new("make");
        command
            .arg("-C")
            .arg(&unpacked)
            .arg(format!("O={}", objects.display()))
            .arg("ARCH=arm64")
            .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"))
            .args(args);
        command
    };
    progress::step("configuring: tinyconfig + tools/xtask/linux/pkvm-guest.config");
    run(&mut make(&["tinyconfig"]), "make tinyconfig")?;
    let fragment = objects.join("pkvm-guest.config");
    std::fs::write(&fragment, CONFIG_FRAGMENT)?;
    let config = objects.join(".config");
    run(
        Command::new(unpacked.join("scripts/kconfig/merge_config.sh"))
            .current_dir(&unpacked)
            .arg("-m")
            .arg("-O")
            .arg(&objects)
            .arg(&config)
            .arg(&fragment)
            .env("ARCH", "arm64")
            .env("CROSS_COMPILE", CROSS_COMPILE),
        "merge_config.sh",
    )?;
    run(&mut make(&["olddefconfig"]), "make olddefconfig")?;
    let unmet = unmet_options(CONFIG_FRAGMENT, &std::fs::read_to_string(&config)?);
    if !unmet.is_empty() {
        bail!(
            "the kernel configuration dropped options of pkvm-guest.config (unmet \
             dependencies?): {}",
            unmet.join(", ")
        );
    }
    let jobs = std::thread::available_parallelism().map_or(2, usize::from);
    progress::step(&format!(
        "building Linux 6.12 (make -j{jobs} Image; a few minutes)"
    ));
    run(&mut make(&[&format!("-j{jobs}"), "Image"]), "make Image")?;
    let image = image_path();
    std::fs::copy(objects.join("arch/arm64/boot/Image"), &image)?;
    std::fs::write(root.join("Image.stamp"), &stamp)?;
    progress::step(&format!("upstream pKVM guest kernel: {}", image.display()));
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_kconfig_dropped_are_reported() {
        let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=n\nCONFIG_C=8\n";
        assert!(
            unmet_options(fragment, "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=8\n").is_empty()
        );
        assert_eq!(
            unmet_options(fragment, "CONFIG_B=y\nCONFIG_C=4\n"),
            ["CONFIG_A=y", "CONFIG_B=n", "CONFIG_C=8"]
        );
    }

    #[test]
    fn the_fragment_enables_the_pkvm_guest_driver() {
        assert!(
            CONFIG_FRAGMENT
                .lines()
                .any(|line| line == "CONFIG_ARM_PKVM_GUEST=y")
        );
    }
}
