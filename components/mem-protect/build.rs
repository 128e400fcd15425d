//! Build script: links the memory-protection component with the shared component linker script
//! (see `components/rt/build_support.rs`: `HV_COMPONENT_BASE` / `HV_COMPONENT_SIZE`), and turns
//! the manifest's memory settings into constants.
//!
//! The settings (`HV_MEM_PROTECT_RAM`, `_RESERVED`, `_POLICY`, `_DEVICE_TABLES`,
//! `_DEVICE_HOLES`; formats in `src/build_config.rs`) are written to
//! `$OUT_DIR/mem_protect_config.rs`, which `src/main.rs` includes. A malformed setting fails
//! the build with what is wrong with it. With `HV_MEM_PROTECT_RAM` unset, a small default
//! (128 MiB at 0x40000000, nothing reserved) is used, with a warning when building for the
//! target: enough for host builds and clippy, never what a composed system should run with.

include!("../rt/build_support.rs");
include!("src/build_config.rs");

/// RAM used when `HV_MEM_PROTECT_RAM` is unset.
const DEFAULT_RAM: &str = "0x40000000:0x48000000";

fn setting(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => Some(text),
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(error) => panic!("{name}: {error}"),
    }
}

fn main() {
    write_link_script();
    println!("cargo:rerun-if-changed=src/build_config.rs");
    let ram = setting("HV_MEM_PROTECT_RAM").unwrap_or_else(|| {
        if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
            println!(
                "cargo:warning=HV_MEM_PROTECT_RAM is unset; mem-protect is built for RAM \
                 {DEFAULT_RAM} with nothing reserved (a default for host builds only)"
            );
        }
        DEFAULT_RAM.to_string()
    });
    let reserved = setting("HV_MEM_PROTECT_RESERVED");
    let policy = setting("HV_MEM_PROTECT_POLICY");
    let device_tables = setting("HV_MEM_PROTECT_DEVICE_TABLES");
    let device_holes = setting("HV_MEM_PROTECT_DEVICE_HOLES");
    let config = parse_config(
        &ram,
        reserved.as_deref(),
        policy.as_deref(),
        device_tables.as_deref(),
        device_holes.as_deref(),
    )
    .unwrap_or_else(|error| panic!("HV_MEM_PROTECT_{error}"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("mem_protect_config.rs"), render_config(&config))
        .expect("write the configuration");
}
