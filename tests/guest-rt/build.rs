//! Build script: publishes the guest linker script.
//!
//! `guest.ld` is copied into `OUT_DIR` and that directory is added to the linker search path.
//! Cargo passes `rustc-link-search` paths of dependencies on to the final link, so a guest
//! binary only has to add `-Tguest.ld` (from its own build script, for `target_os = "none"`).

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("guest.ld", out.join("guest.ld")).expect("copy guest.ld to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=guest.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
