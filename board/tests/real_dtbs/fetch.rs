//! Getting the real device trees: QEMU dumps its own (`-machine dumpdtb`), and Debian's
//! generic arm64 kernel package ships the Raspberry Pi 4's.
//!
//! The Debian package is cached exactly as `cargo xtask` caches it (`tools/xtask/src/prereqs.rs`):
//! `<cache>/downloads/<pkg>_*.deb`, unpacked into `<cache>/debian/<pkg>/` with a `.complete`
//! marker, where `<cache>` is `$HV_CACHE_DIR`, else `$XDG_CACHE_HOME/hv-hypervisor`, else
//! `~/.cache/hv-hypervisor`. Either tool reuses what the other fetched.
//!
//! Nothing here installs anything or needs root: a missing tool fails the test with the command
//! that installs it, so the checks never pass without having looked at real data.

use std::path::PathBuf;
use std::process::Command;

/// Which QEMU virt configuration to dump (`reference/qemu-el2.md`).
#[derive(Clone, Copy, Debug)]
pub enum QemuMachine {
    /// `-cpu cortex-a72`, GICv2: the Raspberry Pi 4 stand-in.
    Gicv2CortexA72,
    /// `-cpu max`, GICv3.
    Gicv3Max,
}

const QEMU: &str = "qemu-system-aarch64";
/// Debian's meta-package for the generic (not cloud) arm64 kernel, which ships board DTBs.
const GENERIC_KERNEL_META_PACKAGE: &str = "linux-image-arm64:arm64";

fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("HV_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache")
        });
    base.join("hv-hypervisor")
}

/// Runs a command and returns its stdout, or fails the test saying what to install.
fn run(command: &mut Command, what: &str, install: &str) -> Vec<u8> {
    let output = match command.output() {
        Ok(output) => output,
        Err(error) => panic!("cannot run `{what}` ({error}); {install}"),
    };
    assert!(
        output.status.success(),
        "`{what}` failed ({}): {}\n{install}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The DTB QEMU's virt machine gives a guest in this configuration (1 GiB, 2 CPUs).
pub fn qemu_virt_dtb(machine: QemuMachine) -> Vec<u8> {
    let (gic, cpu) = match machine {
        QemuMachine::Gicv2CortexA72 => ("2", "cortex-a72"),
        QemuMachine::Gicv3Max => ("3", "max"),
    };
    let path = std::env::temp_dir().join(format!(
        "hv-board-virt-gicv{gic}-{}.dtb",
        std::process::id()
    ));
    run(
        Command::new(QEMU)
            .arg("-M")
            .arg(format!("virt,virtualization=on,gic-version={gic}"))
            .args(["-cpu", cpu, "-m", "1G", "-smp", "2", "-display", "none"])
            .arg("-machine")
            .arg(format!("dumpdtb={}", path.display())),
        &format!("{QEMU} -M virt,... -machine dumpdtb"),
        "install QEMU with: sudo apt-get install qemu-system-arm",
    );
    let dtb = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    dtb
}

/// The tree QEMU's `raspi4b` hands the kernel when given the Pi 4's real `dtb` (`-dtb`): QEMU
/// writes the memory and removes the devices it does not emulate (`-machine dumpdtb`).
pub fn raspi4b_dtb(dtb: &std::path::Path) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("hv-board-raspi4b-{}.dtb", std::process::id()));
    run(
        Command::new(QEMU)
            .args(["-M", "raspi4b", "-display", "none", "-dtb"])
            .arg(dtb)
            .arg("-machine")
            .arg(format!("dumpdtb={}", path.display())),
        &format!("{QEMU} -M raspi4b -machine dumpdtb"),
        "install a QEMU with raspi4b (QEMU 9.0 or later; `cargo xtask test` installs it)",
    );
    let blob = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    blob
}

const APT_HELP: &str = "this check needs Debian's apt with arm64 packages enabled: \
     sudo sh -c 'dpkg --add-architecture arm64 && apt-get update'";

/// The concrete generic kernel package: a cached one if any, else what the meta-package names.
fn kernel_package() -> String {
    let cached = std::fs::read_dir(cache().join("debian"))
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| {
                    name.starts_with("linux-image-")
                        && name.ends_with("-arm64")
                        && !name.ends_with("-cloud-arm64")
                })
                .filter(|name| cache().join("debian").join(name).join(".complete").exists())
                .max()
        });
    if let Some(name) = cached {
        return name;
    }
    let depends = run(
        Command::new("apt-cache").args(["depends", GENERIC_KERNEL_META_PACKAGE]),
        &format!("apt-cache depends {GENERIC_KERNEL_META_PACKAGE}"),
        APT_HELP,
    );
    String::from_utf8_lossy(&depends)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends:"))
        .map(|dep| dep.trim().trim_end_matches(":arm64"))
        .find(|dep| dep.starts_with("linux-image-"))
        .unwrap_or_else(|| panic!("apt knows no {GENERIC_KERNEL_META_PACKAGE}; {APT_HELP}"))
        .to_owned()
}

/// Downloads (unless a .deb is already there) and unpacks `package` into the cache, once.
fn unpacked(package: &str) -> PathBuf {
    let unpacked = cache().join("debian").join(package);
    if unpacked.join(".complete").exists() {
        return unpacked;
    }
    let downloads = cache().join("downloads");
    std::fs::create_dir_all(&downloads).expect("creating the download cache");
    let find_deb = || {
        std::fs::read_dir(&downloads)
            .ok()?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
            .max()
    };
    let deb = match find_deb() {
        Some(deb) => deb,
        None => {
            eprintln!("fetching {package}:arm64 with apt-get download (about 60 MB, once)");
            run(
                Command::new("apt-get")
                    .current_dir(&downloads)
                    .args(["download", &format!("{package}:arm64")]),
                &format!("apt-get download {package}:arm64"),
                APT_HELP,
            );
            find_deb().unwrap_or_else(|| panic!("apt-get download left no .deb for {package}"))
        }
    };
    // Unpack beside the final place and rename, so a concurrent `cargo xtask` never sees a
    // half-written tree marked complete.
    let staging = cache()
        .join("debian")
        .join(format!(".{package}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).expect("creating the unpack directory");
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&staging),
        &format!("dpkg-deb -x {}", deb.display()),
        "dpkg-deb comes with dpkg: run this on Debian or Ubuntu",
    );
    std::fs::write(staging.join(".complete"), b"").expect("marking the unpack complete");
    if std::fs::rename(&staging, &unpacked).is_err() {
        // Someone else finished first; theirs is as good as ours.
        let _ = std::fs::remove_dir_all(&staging);
        assert!(
            unpacked.join(".complete").exists(),
            "{} exists but is incomplete; delete it and rerun",
            unpacked.display()
        );
    }
    unpacked
}

/// A DTB Debian's generic arm64 kernel package ships (`relative` to
/// `usr/lib/linux-image-*/`, e.g. `broadcom/bcm2711-rpi-4-b.dtb`), and where it was found.
pub fn debian_dtb(relative: &str) -> (Vec<u8>, PathBuf) {
    let package = kernel_package();
    let root = unpacked(&package).join("usr/lib");
    let dtb = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{package} has no usr/lib ({e})"))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("linux-image-"))
        })
        .map(|dir| dir.join(relative))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{package} ships no usr/lib/linux-image-*/{relative}"));
    let bytes = std::fs::read(&dtb).unwrap_or_else(|e| panic!("reading {}: {e}", dtb.display()));
    (bytes, dtb)
}
