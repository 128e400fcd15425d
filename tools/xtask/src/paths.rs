//! Where things live: the workspace, build outputs, and the download cache kept outside git.

use std::path::PathBuf;

/// The workspace root (this crate is `tools/xtask`).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Cargo's target directory.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// Where xtask writes images, logs and generated guests.
pub fn xtask_out() -> PathBuf {
    target().join("xtask")
}

/// The cache for downloaded guests (Debian packages): `$HV_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/hv-hypervisor`, else `~/.cache/hv-hypervisor`. Outside the repository so
/// nothing downloaded is ever committed.
pub fn cache() -> PathBuf {
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
