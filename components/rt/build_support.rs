// Build-script support shared by every component: generates the component's linker script.
//
// This file is not part of the hv-component-rt library. Each component's `build.rs` pulls it
// in with `include!("../rt/build_support.rs");` and calls `write_link_script()` from its
// `main`. (Plain `//` comments because an `include!`d file cannot carry inner doc comments.)
//
// For `target_os = "none"` it fills `link.ld.in` (next to this file) with the region from
// `HV_COMPONENT_BASE` / `HV_COMPONENT_SIZE` (hex, `0x` prefix optional; defaults
// 0x40800000 / 0x200000 with a cargo warning), writes it as `component.ld` into OUT_DIR and
// links the crate's binaries with `-Tcomponent.ld -Tdefmt.x`. Host builds link nothing special.

/// Stack size given to every component (bytes).
const COMPONENT_STACK_SIZE: u64 = 16 * 1024;
/// Region base used when `HV_COMPONENT_BASE` is unset.
const DEFAULT_COMPONENT_BASE: u64 = 0x4080_0000;
/// Region size used when `HV_COMPONENT_SIZE` is unset.
const DEFAULT_COMPONENT_SIZE: u64 = 0x20_0000;

/// Parses a hexadecimal build setting (with or without `0x`, `_` separators allowed).
fn parse_hex_setting(name: &str, value: &str) -> u64 {
    let digits = value.trim();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits)
        .replace('_', "");
    u64::from_str_radix(&digits, 16)
        .unwrap_or_else(|e| panic!("{name}={value:?} is not a hexadecimal number: {e}"))
}

/// Reads a hexadecimal region setting, or returns `default` with a warning when it is unset.
fn region_setting(name: &str, default: u64) -> u64 {
    println!("cargo:rerun-if-env-changed={name}");
    match std::env::var(name) {
        Ok(value) => parse_hex_setting(name, &value),
        Err(std::env::VarError::NotPresent) => {
            println!("cargo:warning={name} is unset; linking the component with {name}={default:#x}");
            default
        }
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Writes the component linker script into OUT_DIR and links the binaries with it (and with
/// defmt's `defmt.x`). Does nothing but register the rerun triggers on host builds.
#[allow(dead_code)] // Not every build script that includes this file needs every helper.
fn write_link_script() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HV_COMPONENT_BASE");
    println!("cargo:rerun-if-env-changed=HV_COMPONENT_SIZE");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let base = region_setting("HV_COMPONENT_BASE", DEFAULT_COMPONENT_BASE);
    let size = region_setting("HV_COMPONENT_SIZE", DEFAULT_COMPONENT_SIZE);
    assert!(
        base.is_multiple_of(4096) && size.is_multiple_of(4096) && size != 0,
        "HV_COMPONENT_BASE ({base:#x}) and HV_COMPONENT_SIZE ({size:#x}) must be non-zero multiples of 4 KiB"
    );
    assert!(
        base.checked_add(size).is_some(),
        "HV_COMPONENT_BASE + HV_COMPONENT_SIZE overflows"
    );
    let script = include_str!("link.ld.in")
        .replace("@BASE@", &format!("{base:#x}"))
        .replace("@SIZE@", &format!("{size:#x}"))
        .replace("@STACK_SIZE@", &format!("{COMPONENT_STACK_SIZE:#x}"));
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("component.ld"), script).expect("write component.ld to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tcomponent.ld");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
