//! `cargo xtask lint`: formatting and clippy over every crate, on the host and, for the
//! bare-metal crates, for the target; CI runs it before the tests.
//!
//! The list of crates is derived from the workspace, never kept by hand: every member that is
//! not a default member (the host-tested set) is a bare-metal crate and is linted for the
//! target; the kernel is linted once per board; a component binary (a member whose build
//! script reads `hv-component-config`) is linted with the configuration the first manifest that
//! uses it gives it, and a component no manifest uses is an error.

use crate::{SystemArgs, artifacts::TARGET, paths, progress};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A workspace member as its Cargo.toml says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its package name.
    pub name: String,
    /// Whether `cargo test` on the host covers it (a default member).
    pub host: bool,
    /// Whether its build script reads a component configuration.
    pub component: bool,
}

/// The workspace's members, from the root Cargo.toml and each member's.
pub fn members(workspace: &Path) -> Result<Vec<Member>> {
    let root: toml::Table = std::fs::read_to_string(workspace.join("Cargo.toml"))?.parse()?;
    let list = |key: &str| -> Vec<String> {
        root.get("workspace")
            .and_then(|w| w.get(key))
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let defaults = list("default-members");
    list("members")
        .into_iter()
        .map(|path| {
            let manifest_path = workspace.join(&path).join("Cargo.toml");
            let manifest: toml::Table = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?
                .parse()
                .with_context(|| format!("parsing {}", manifest_path.display()))?;
            let name = manifest
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .with_context(|| format!("{}: no package name", manifest_path.display()))?
                .to_owned();
            let component = manifest
                .get("build-dependencies")
                .and_then(|deps| deps.as_table())
                .is_some_and(|deps| deps.contains_key("hv-component-config"));
            Ok(Member {
                name,
                host: defaults.contains(&path),
                component,
            })
        })
        .collect()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(paths::workspace());
    command
}

fn run(mut command: Command, what: &str) -> Result<()> {
    progress::step(what);
    if !command.status().with_context(|| what.to_owned())?.success() {
        bail!("{what}: failed");
    }
    Ok(())
}

/// Every manifest under `manifests/`, the default first.
fn manifests() -> Result<Vec<PathBuf>> {
    let mut found = vec![crate::default_manifest()];
    let mut folders = vec![paths::workspace().join("manifests")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") && !found.contains(&path) {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// Writes the configuration of component crate `crate_name` from the first manifest that uses
/// it; returns the file.
fn component_config(crate_name: &str) -> Result<PathBuf> {
    for manifest in manifests()? {
        let system = SystemArgs::without_images(&manifest).resolve()?;
        let Some(id) = system
            .manifest
            .components
            .iter()
            .position(|c| c.crate_name == crate_name)
        else {
            continue;
        };
        let regions: Vec<hv_board::Region> = crate::component_regions(&system)?
            .iter()
            .map(|region| hv_board::Region {
                base: region.start,
                size: region.len(),
            })
            .collect();
        let config = system
            .manifest
            .component_config(id, &regions)
            .map_err(|e| anyhow::anyhow!("{crate_name}: {e}"))?;
        let file = paths::xtask_out()
            .join("lint")
            .join(format!("{crate_name}.toml"));
        return Ok(hv_component_config::build::write(&config, &file)?);
    }
    bail!(
        "component crate {crate_name} is in no manifest under manifests/; add it to one (e.g. a \
         test manifest) so it is built, linted and tested"
    )
}

/// Runs every check; fails on the first finding.
pub fn run_all() -> Result<()> {
    crate::prereqs::ensure_targets()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt, "cargo fmt --check")?;
    let mut host = cargo();
    host.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "-q",
        "--",
        "-D",
        "warnings",
    ]);
    run(host, "clippy for the host (every crate, tests included)")?;
    for board in hv_board::ALL {
        let mut kernel = cargo();
        kernel.args(["clippy", "-q", "-p", "hv-kernel", "--target", TARGET]);
        kernel.args([
            "--no-default-features",
            "--features",
            &format!("board-{}", board.name),
        ]);
        kernel.args(["--", "-D", "warnings"]);
        run(
            kernel,
            &format!("clippy for the target: hv-kernel, board {}", board.name),
        )?;
    }
    let members = members(&paths::workspace())?;
    let plain: Vec<&Member> = members.iter().filter(|m| !m.host && !m.component).collect();
    let mut target = cargo();
    target.args(["clippy", "-q", "--target", TARGET]);
    for member in &plain {
        target.args(["-p", &member.name]);
    }
    target.args(["--", "-D", "warnings"]);
    let names: Vec<&str> = plain.iter().map(|m| m.name.as_str()).collect();
    run(
        target,
        &format!("clippy for the target: {}", names.join(", ")),
    )?;
    for member in members.iter().filter(|m| m.component) {
        let config = component_config(&member.name)?;
        let mut component = cargo();
        component.env(hv_component_config::build::CONFIG_VARIABLE, &config);
        component.args(["clippy", "-q", "-p", &member.name, "--target", TARGET]);
        component.args(["--", "-D", "warnings"]);
        run(
            component,
            &format!("clippy for the target: component {}", member.name),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_list_is_derived_from_the_workspace() {
        let members = members(&paths::workspace()).unwrap();
        let find = |name: &str| members.iter().find(|m| m.name == name).unwrap();
        assert!(find("hv-kernel").host);
        assert!(find("hv-mem-protect").component && !find("hv-mem-protect").host);
        assert!(!find("hv-guest-host-memory").component);
        assert!(!find("hv-guest-host-memory").host);
        assert!(!find("hv-component-rt").component);
        // Every component binary under components/ is found.
        for name in [
            "hv-supervisor",
            "hv-vm-manager",
            "hv-mmio-guard",
            "hv-mem-protect",
        ] {
            assert!(find(name).component, "{name}");
        }
    }
}
