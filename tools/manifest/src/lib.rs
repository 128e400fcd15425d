//! The system manifest: one TOML file (`manifests/*.toml`) describing a whole system, the
//! board, the machine, the kernel's options, the VMs and the component tasks, from which
//! `cargo xtask` composes a bootable image.
//!
//! [`load`] or [`parse`] read a manifest, check it and resolve it into a [`Manifest`]: sizes in
//! bytes, grants as numbers, paths resolved against the manifest's folder, defaults filled in
//! and every VM placed in RAM. Every problem is reported with the file, the line and the field
//! (`manifests/x.toml:12: component[1].calls[0]: ...`), and as many problems as can be found at
//! once are reported together.
//!
//! The format is [`format::ManifestSpec`] and its tables; `docs/manifest.md` is the
//! field reference. Facts about boards that `hv-board` does not hold yet (RAM and CPU limits,
//! devices) are in [`board_facts`].

pub mod board_facts;
mod component_config;
mod error;
pub mod format;
mod model;
mod spans;
mod units;
mod validate;

pub use component_config::ConfigError;
pub use error::{Diagnostic, FieldPath, ManifestError, Segment};
pub use format::{DeviceMode, LogLevel, MmioGuard};
pub use hv_board::{Board, Device, Region};
pub use model::{
    Component, DeviceGrant, Dtb, Grants, Initrd, KernelImage, KernelOptions, Machine, Manifest,
    Restart, Vm,
};
pub use units::{format_size, parse_duration, parse_size};

use spans::SpanIndex;
use std::path::Path;
use toml::de::DeTable;

/// Interface names a manifest may use, with their ids: every interface `hv_ipc` defines
/// ([`hv_ipc::interfaces::ALL`]), under its [`NAME`](hv_ipc::Interface::NAME).
pub const INTERFACES: &[(&str, u16)] = &interface_table();

const fn interface_table() -> [(&'static str, u16); hv_ipc::interfaces::ALL.len()] {
    let all = hv_ipc::interfaces::ALL;
    let mut table = [("", 0); hv_ipc::interfaces::ALL.len()];
    let mut index = 0;
    while index < all.len() {
        table[index] = (all[index].name, all[index].id);
        index += 1;
    }
    table
}

/// Kernel operation names, with their numbers (`hv_ipc::abi::kernel_op`).
pub const KERNEL_OPS: &[(&str, u64)] = &[
    ("restart", hv_ipc::abi::kernel_op::RESTART),
    ("component-state", hv_ipc::abi::kernel_op::COMPONENT_STATE),
    ("read-counter", hv_ipc::abi::kernel_op::READ_COUNTER),
    ("console-write", hv_ipc::abi::kernel_op::CONSOLE_WRITE),
    (
        "host-tlb-invalidate",
        hv_ipc::abi::kernel_op::HOST_TLB_INVALIDATE,
    ),
    ("zero-pages", hv_ipc::abi::kernel_op::ZERO_PAGES),
    ("vm-start", hv_ipc::abi::kernel_op::VM_START),
    ("vm-load", hv_ipc::abi::kernel_op::VM_LOAD),
    ("vm-stop", hv_ipc::abi::kernel_op::VM_STOP),
    ("vm-status", hv_ipc::abi::kernel_op::VM_STATUS),
    (
        "guest-tlb-invalidate",
        hv_ipc::abi::kernel_op::GUEST_TLB_INVALIDATE,
    ),
    ("virq-inject", hv_ipc::abi::kernel_op::VIRQ_INJECT),
    ("virq-timer", hv_ipc::abi::kernel_op::VIRQ_TIMER),
    ("gic-access", hv_ipc::abi::kernel_op::GIC_ACCESS),
    ("console-access", hv_ipc::abi::kernel_op::CONSOLE_ACCESS),
    ("control-read", hv_ipc::abi::kernel_op::CONTROL_READ),
    ("control-write", hv_ipc::abi::kernel_op::CONTROL_WRITE),
    ("swap", hv_ipc::abi::kernel_op::SWAP),
    ("swap-status", hv_ipc::abi::kernel_op::SWAP_STATUS),
    ("component-build", hv_ipc::abi::kernel_op::COMPONENT_BUILD),
];

/// The kernel operations `hot-swap = true` grants the supervisor.
pub const HOT_SWAP_KERNEL_OPS: [&str; 5] = [
    "control-read",
    "control-write",
    "swap",
    "swap-status",
    "component-build",
];

/// Guest trap classes a component can take, with their route bits (`hv_abi::ROUTE_*`).
/// Besides these, `"smccc:<first>"` or `"smccc:<first>-<last>"` (hex function IDs) routes just
/// those SMCCC functions, ahead of the general `"smccc"` route.
pub const ROUTES: &[(&str, u32)] = &[
    ("smccc", hv_abi::ROUTE_SMCCC),
    ("mmio", hv_abi::ROUTE_MMIO),
    ("host-stage2", hv_abi::ROUTE_HOST_STAGE2),
];

/// Reads, checks and resolves the manifest at `path`. Paths in it are relative to its folder;
/// messages name the file as `path` spells it.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    parse(&text, &path.display().to_string(), base_dir)
}

/// Checks and resolves the manifest `text`. `file_name` is what messages call the file;
/// paths in the manifest are relative to `base_dir`.
pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
    let invalid = |diagnostics| ManifestError::Invalid {
        file: file_name.to_owned(),
        diagnostics,
    };

    // TOML syntax: every error the parser can recover from, at once.
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut diagnostics: Vec<Diagnostic> = errors
            .iter()
            .map(|error| {
                let offset = error.span().map_or(0, |span| span.start);
                let (line, column) = spans::line_column(text, offset);
                Diagnostic {
                    line,
                    column,
                    field: FieldPath::root(),
                    message: format!("TOML syntax error: {}", one_line(error.message())),
                }
            })
            .collect();
        diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        return Err(invalid(diagnostics));
    }
    let spans = SpanIndex::new(text, &document);

    // Shape: unknown fields, wrong types, missing required fields (serde stops at the first).
    let spec: format::ManifestSpec = serde::Deserialize::deserialize(toml::de::Deserializer::from(
        document,
    ))
    .map_err(|error: toml::de::Error| {
        let offset = error.span().map_or(0, |span| span.start);
        let (line, column) = spans.line_column(offset);
        let mut field = spans.path_at(offset);
        // A missing field is reported at its table; name the field itself.
        if let Some(name) = error
            .message()
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            field = field.key(name);
        }
        invalid(vec![Diagnostic {
            line,
            column,
            field,
            message: shape_message(error.message()),
        }])
    })?;

    // Meaning: everything else, every problem at once.
    validate::check(spec, &spans, file_name, base_dir).map_err(invalid)
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// serde's message, with what to do added.
fn shape_message(message: &str) -> String {
    let message = one_line(message);
    if message.starts_with("unknown field") {
        format!("{message}; fix the spelling or remove it (docs/manifest.md lists every field)")
    } else if message.starts_with("missing field") {
        format!("{message}; add it")
    } else if message.starts_with("unknown variant") {
        format!("{message}; use one of those")
    } else if message.starts_with("invalid type") {
        format!("{message}; see docs/manifest.md for the field's type")
    } else {
        message
    }
}
