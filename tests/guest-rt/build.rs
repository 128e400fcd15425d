//! Build script: publishes the guest linker script.
//!
//! `guest.ld` is copied into `OUT_DIR` and that directory is added to the linker search path.
//! Cargo passes `rustc-link-search` paths of dependencies on to the final link, so a guest
//! binary only has to add `-Tguest.ld` (from its own build script, for `target_os = "none"`).

use std::{env, fs, path::PathBuf};

/// The variable that moves the guest's load address from qemu-virt's host kernel address
/// (the default in `guest.ld`) to another board's, e.g. `0x2000000` for the Raspberry Pi 4.
const LOAD_ADDRESS_VARIABLE: &str = "HV_GUEST_LOAD_ADDRESS";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut script = fs::read_to_string("guest.ld").expect("read guest.ld");
    if let Ok(address) = env::var(LOAD_ADDRESS_VARIABLE) {
        let valid = address
            .strip_prefix("0x")
            .is_some_and(|hex| u64::from_str_radix(hex, 16).is_ok());
        assert!(
            valid,
            "{LOAD_ADDRESS_VARIABLE}={address:?} is not a 0x-prefixed hex address"
        );
        let default = "GUEST_LOAD_ADDRESS = 0x42000000;";
        assert!(
            script.contains(default),
            "guest.ld no longer says {default:?}"
        );
        script = script.replace(default, &format!("GUEST_LOAD_ADDRESS = {address};"));
    }
    fs::write(out.join("guest.ld"), script).expect("write guest.ld to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=guest.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={LOAD_ADDRESS_VARIABLE}");
}
