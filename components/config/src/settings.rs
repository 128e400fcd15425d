//! Each component's own settings: the manifest's `[component.settings]` table, typed.
//!
//! One variant per component crate that takes settings. The tool picks the variant from the
//! component's crate ([`Settings::for_crate`]) and parses the table into it with unknown fields
//! refused, so a misspelt setting fails the build with the component's name and the field. A
//! new component with settings adds a variant here (see `docs/adding-a-component.md`).

use serde::{Deserialize, Serialize};

/// A component's settings.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Settings {
    /// The component takes none.
    #[default]
    None,
    /// `hv-mem-protect`'s.
    MemProtect(MemProtectSettings),
    /// `hv-vm-manager`'s.
    VmManager(VmManagerSettings),
    /// `hv-template`'s (the component template, `components/template`).
    Template(TemplateSettings),
}

/// `hv-template`'s settings: what a component's own settings look like.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TemplateSettings {
    /// The counter's value at start (and after a restart).
    #[serde(default)]
    pub start: u64,
}

/// mem-protect's settings.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MemProtectSettings {
    /// How large the mappings a host stage-2 fault creates may be.
    #[serde(default)]
    pub policy: MappingPolicy,
    /// The device pool's size in tables (default: enough for 1 GiB of MMIO page by page).
    #[serde(default)]
    pub device_tables: Option<u32>,
    /// Crash on purpose while serving the N-th host stage-2 fault (test systems only: shows
    /// that a never-restarted mem-protect stops the host VM instead of hanging it).
    #[serde(default)]
    pub crash: Option<CrashHook>,
}

/// How large the host's lazily made mappings may be.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MappingPolicy {
    /// The largest block that fits (pKVM's behaviour).
    #[default]
    LargestBlock,
    /// 4 KiB pages only (for comparison).
    PageOnly,
}

/// vm-manager's settings: test hooks only; a normal system sets none.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VmManagerSettings {
    /// Crash on purpose, to exercise fault containment and restart.
    #[serde(default)]
    pub crash: Option<CrashHook>,
    /// At start-up, try a call and a kernel operation the manifest does not grant and log the
    /// kernel's answers (both must be refused).
    #[serde(default)]
    pub probe_grants: bool,
}

/// A deliberate crash of the first instance of a component.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CrashHook {
    /// Crash while serving this request (1 = the first).
    pub on_call: u32,
    /// How.
    pub kind: CrashKind,
    /// Count only SMCCC calls of this function ID, so that a test guest decides when the
    /// crash comes whatever else the VMs do (vm-manager only).
    #[serde(default)]
    pub on_function: Option<u32>,
}

/// How to crash.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum CrashKind {
    /// Execute an undefined instruction.
    Undefined,
    /// Read this address (outside the component's region): a stage-2 abort.
    Read {
        /// The address read (8-byte aligned).
        address: u64,
    },
    /// `panic!`.
    Panic,
    /// Recurse until the stack overflows: the stack lies just above the region's start, so
    /// the overflow faults there (a stage-2 abort) instead of corrupting the component's data.
    StackOverflow,
    /// Answer the call with a resolution that does not fit it (`Resume` for an SMCCC call):
    /// the kernel must refuse it without touching the guest and stop the VM.
    Misanswer,
}

impl Settings {
    /// The settings `crate_name` takes, as their defaults; `None` when it takes none.
    pub fn for_crate(crate_name: &str) -> Option<Settings> {
        match crate_name {
            "hv-mem-protect" => Some(Settings::MemProtect(MemProtectSettings::default())),
            "hv-vm-manager" => Some(Settings::VmManager(VmManagerSettings::default())),
            "hv-template" => Some(Settings::Template(TemplateSettings::default())),
            _ => None,
        }
    }

    /// mem-protect's settings (the defaults if these are another component's).
    pub fn mem_protect(&self) -> MemProtectSettings {
        match self {
            Settings::MemProtect(settings) => *settings,
            _ => MemProtectSettings::default(),
        }
    }

    /// The template's settings (the defaults if these are another component's).
    pub fn template(&self) -> TemplateSettings {
        match self {
            Settings::Template(settings) => *settings,
            _ => TemplateSettings::default(),
        }
    }

    /// vm-manager's settings (the defaults if these are another component's).
    pub fn vm_manager(&self) -> VmManagerSettings {
        match self {
            Settings::VmManager(settings) => *settings,
            _ => VmManagerSettings::default(),
        }
    }
}

#[cfg(feature = "std")]
impl Settings {
    /// Parses a manifest's settings table for a component built from `crate_name`. The error
    /// names the field.
    pub fn parse(crate_name: &str, table: &toml::Table) -> Result<Settings, std::string::String> {
        let value = toml::Value::Table(table.clone());
        let text = toml::to_string(&value).map_err(|e| e.to_string())?;
        let parsed = match Settings::for_crate(crate_name) {
            None if table.is_empty() => return Ok(Settings::None),
            None => {
                return Err(format!(
                    "{crate_name} takes no settings (found `{}`)",
                    table
                        .keys()
                        .cloned()
                        .collect::<std::vec::Vec<_>>()
                        .join("`, `")
                ));
            }
            Some(Settings::MemProtect(_)) => toml::from_str(&text).map(Settings::MemProtect),
            Some(Settings::VmManager(_)) => toml::from_str(&text).map(Settings::VmManager),
            Some(Settings::Template(_)) => toml::from_str(&text).map(Settings::Template),
            Some(Settings::None) => unreachable!("for_crate never answers Some(None)"),
        };
        parsed.map_err(|error| error.message().to_owned())
    }
}
