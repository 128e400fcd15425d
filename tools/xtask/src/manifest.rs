//! The system description a run starts from (`manifests/*.toml`).
//!
//! This is the first form of the manifest: a board and the host VM. Components, routes and
//! more VMs join it with the manifest issue. Unknown fields are refused so a typo never goes
//! unnoticed.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A whole manifest file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The board the image is for (a name `hv_board` knows, e.g. "qemu-virt").
    pub board: String,
    /// The host VM.
    pub host: HostVm,
}

/// The host VM: the first VM, which owns the machine's devices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostVm {
    /// `"debian"` for Debian's arm64 cloud kernel, or a path (relative to the manifest) to
    /// an arm64 `Image`, an ELF, or a raw payload that boots like an Image.
    #[serde(default = "default_kernel")]
    pub kernel: String,
    /// `"busybox"` for the generated busybox initramfs, `"none"`, or a path.
    #[serde(default = "default_initrd")]
    pub initrd: String,
    /// The kernel command line.
    #[serde(default = "default_cmdline")]
    pub cmdline: String,
    /// RAM of the machine, e.g. "1G" or "512M".
    #[serde(default = "default_memory")]
    pub memory: String,
    /// Physical CPUs (and host vCPUs).
    #[serde(default = "default_cpus")]
    pub cpus: u32,
}

fn default_kernel() -> String {
    "debian".into()
}
fn default_initrd() -> String {
    "busybox".into()
}
fn default_cmdline() -> String {
    "console=ttyAMA0".into()
}
fn default_memory() -> String {
    "1G".into()
}
fn default_cpus() -> u32 {
    2
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        if hv_board::by_name(&manifest.board).is_none() {
            let known: Vec<_> = hv_board::ALL.iter().map(|board| board.name).collect();
            bail!(
                "{}: board \"{}\" does not exist (known: {})",
                path.display(),
                manifest.board,
                known.join(", ")
            );
        }
        parse_size(&manifest.host.memory)
            .with_context(|| format!("{}: host.memory", path.display()))?;
        if manifest.host.cpus == 0 || manifest.host.cpus > 8 {
            bail!(
                "{}: host.cpus must be 1 to 8, not {}",
                path.display(),
                manifest.host.cpus
            );
        }
        Ok(manifest)
    }
}

/// Resolves a path written in a manifest relative to the manifest's folder.
pub fn relative_to(manifest: &Path, path: &str) -> PathBuf {
    manifest.parent().unwrap_or(Path::new(".")).join(path)
}

/// Parses a size such as `1G`, `512M`, `4096K` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((at, 'G' | 'g')) => (&text[..at], 30),
        Some((at, 'M' | 'm')) => (&text[..at], 20),
        Some((at, 'K' | 'k')) => (&text[..at], 10),
        _ => (text, 0),
    };
    let value: u64 = digits
        .parse()
        .with_context(|| format!("\"{text}\" is not a size (e.g. 1G, 512M)"))?;
    value
        .checked_shl(shift)
        .filter(|bytes| *bytes > 0 && bytes >> shift == value)
        .with_context(|| format!("\"{text}\" is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let manifest: Manifest = toml::from_str("board = \"qemu-virt\"\n[host]\n").unwrap();
        assert_eq!(manifest.host.kernel, "debian");
        assert_eq!(manifest.host.cpus, 2);
        let error = toml::from_str::<Manifest>("board = \"qemu-virt\"\n[host]\nkernal = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `kernal`"), "{error}");
    }

    #[test]
    fn the_default_manifest_loads() {
        let path = crate::paths::workspace().join("manifests/qemu-virt.toml");
        let manifest = Manifest::load(&path).unwrap();
        assert_eq!(manifest.board, "qemu-virt");
    }
}
