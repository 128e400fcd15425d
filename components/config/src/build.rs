//! The build-script side (feature `std`): one call, [`configure`], in every component's
//! `build.rs`, and [`write`] for the tool.
//!
//! `cargo xtask` names the file in `HV_COMPONENT_CONFIG` (a path, the only variable a component
//! build reads). Building for the target without it, or with a file that does not parse, is
//! meant for another crate or does not fit together, fails the build with the component's name
//! and the field. Host builds (`cargo test`, host clippy) link nothing and need no file.

use crate::ComponentConfig;
use std::path::{Path, PathBuf};

/// The variable naming the configuration file.
pub const CONFIG_VARIABLE: &str = "HV_COMPONENT_CONFIG";
/// The embedded postcard bytes' file name in `OUT_DIR` (`hv_component_rt::component_main!`
/// includes it).
pub const EMBEDDED_FILE: &str = "component-config.postcard";

/// Serializes `config` as the TOML file a component build reads.
pub fn to_toml(config: &ComponentConfig) -> String {
    toml::to_string(config).expect("every configuration value has a TOML form")
}

/// Writes `config` to `path` (as TOML), creating folders; returns the path.
pub fn write(config: &ComponentConfig, path: &Path) -> std::io::Result<PathBuf> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = to_toml(config);
    // Leave an unchanged file alone so cargo does not rebuild the component.
    if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(path, text)?;
    }
    Ok(path.to_owned())
}

/// Parses and checks a configuration file's text for the crate `crate_name`.
pub fn parse(crate_name: &str, text: &str) -> Result<ComponentConfig, String> {
    let config: ComponentConfig = toml::from_str(text).map_err(|error| {
        let field = error
            .span()
            .map(|span| field_at(text, span.start))
            .unwrap_or_default();
        format!("{field}{}", error.message())
    })?;
    check(crate_name, &config)?;
    Ok(config)
}

/// `key: ` for the TOML key on the line holding byte `offset` (best effort, for messages).
fn field_at(text: &str, offset: usize) -> String {
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) => format!("field `{}`: ", key.trim()),
        None if line.trim_start().starts_with('[') => format!("table {}: ", line.trim()),
        None => String::new(),
    }
}

/// What must hold for a configuration to build: it is this crate's, its region and stack fit.
pub fn check(crate_name: &str, config: &ComponentConfig) -> Result<(), String> {
    if config.crate_name != crate_name {
        return Err(format!(
            "field `crate`: the file is for {}, not {crate_name}",
            config.crate_name
        ));
    }
    let region = config.region;
    if region.size == 0 || !region.base.is_multiple_of(4096) || !region.size.is_multiple_of(4096) {
        return Err(format!(
            "field `region`: {:#x} + {:#x} must be a non-empty, 4 KiB aligned range",
            region.base, region.size
        ));
    }
    if region.base.checked_add(region.size).is_none() {
        return Err("field `region`: the range passes the end of the address space".into());
    }
    if config.stack == 0 || !config.stack.is_multiple_of(4096) || config.stack >= region.size {
        return Err(format!(
            "field `stack`: {:#x} must be a non-zero multiple of 4 KiB below the region's size {:#x}",
            config.stack, region.size
        ));
    }
    if config.id as usize >= config.system.components.len() {
        return Err(format!(
            "field `id`: {} but the system has {} components",
            config.id,
            config.system.components.len()
        ));
    }
    Ok(())
}

/// What a component's `build.rs` calls first. For the target: reads the configuration named by
/// `HV_COMPONENT_CONFIG`, writes the linker script for its region and stack, embeds the
/// configuration, and returns it (the build script may derive sizes from it). For the host:
/// returns `None` and does nothing else.
///
/// # Panics
///
/// With a message naming the component and the field, when the configuration is missing or
/// malformed: that fails the build, which is the point.
pub fn configure() -> Option<ComponentConfig> {
    println!("cargo:rerun-if-env-changed={CONFIG_VARIABLE}");
    let crate_name = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return None;
    }
    let fail = |what: String| -> ! { panic!("\n\ncomponent {crate_name}: {what}\n\n") };
    let Some(path) = std::env::var_os(CONFIG_VARIABLE) else {
        fail(format!(
            "no configuration: {CONFIG_VARIABLE} is unset. Components are built by `cargo xtask \
             build` (or `cargo xtask lint`), which writes each one's configuration from the \
             manifest."
        ))
    };
    let path = PathBuf::from(path);
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| fail(format!("configuration {}: {error}", path.display())));
    let config = parse(&crate_name, &text)
        .unwrap_or_else(|error| fail(format!("configuration {}: {error}", path.display())));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bytes = embedded_bytes(&config);
    std::fs::write(out.join(EMBEDDED_FILE), bytes).expect("write the embedded configuration");
    std::fs::write(out.join("component.ld"), link_script(&config)).expect("write component.ld");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tcomponent.ld");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    Some(config)
}

/// The component's linker script: `link.ld.in` with its region and stack filled in.
pub fn link_script(config: &ComponentConfig) -> String {
    include_str!("../link.ld.in")
        .replace("@BASE@", &format!("{:#x}", config.region.base))
        .replace("@SIZE@", &format!("{:#x}", config.region.size))
        .replace("@STACK_SIZE@", &format!("{:#x}", config.stack))
        .replace("@STARTUP_STACK@", &format!("{:#x}", crate::STARTUP_STACK))
}

/// The postcard bytes a component embeds (what [`ComponentConfig::decode`] reads at run time).
pub fn embedded_bytes(config: &ComponentConfig) -> Vec<u8> {
    postcard::to_stdvec(config).expect("a configuration always encodes")
}
