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
    /// The component tasks, in order: a component's id is its position here.
    #[serde(default, rename = "component")]
    pub components: Vec<ComponentSpec>,
}

/// One component task: an EL1 sandbox with its own image, memory and stage 2.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentSpec {
    /// Its name, for logs (at most 16 bytes).
    pub name: String,
    /// The cargo package that builds it (under `components/`).
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Its memory: code, data, stack and message buffers, e.g. "1M".
    #[serde(default = "default_component_memory")]
    pub memory: String,
    /// The interface it serves ("guest-trap", "supervisor"), if any.
    #[serde(default)]
    pub serves: Option<String>,
    /// The interfaces it may call.
    #[serde(default)]
    pub calls: Vec<String>,
    /// The kernel operations it may use ("restart", "component-state", "read-counter").
    #[serde(default)]
    pub kernel_ops: Vec<String>,
    /// The guest traps routed to it ("smccc").
    #[serde(default)]
    pub routes: Vec<String>,
    /// Build-time settings passed to its build as environment variables (test hooks).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

fn default_component_memory() -> String {
    "1M".into()
}

/// Interface names a manifest may use, with their ids (`hv_ipc::abi::interface`).
pub const INTERFACES: &[(&str, u16)] = &[
    ("guest-trap", hv_ipc::abi::interface::GUEST_TRAP),
    ("supervisor", hv_ipc::abi::interface::SUPERVISOR),
];
/// Kernel operation names, with their numbers (`hv_ipc::abi::kernel_op`).
pub const KERNEL_OPS: &[(&str, u64)] = &[
    ("restart", hv_ipc::abi::kernel_op::RESTART),
    ("component-state", hv_ipc::abi::kernel_op::COMPONENT_STATE),
    ("read-counter", hv_ipc::abi::kernel_op::READ_COUNTER),
];
/// Route names, with their bits (`hv_abi::ROUTE_*`).
pub const ROUTES: &[(&str, u32)] = &[("smccc", hv_abi::ROUTE_SMCCC)];

fn lookup<T: Copy>(table: &[(&str, T)], name: &str, what: &str, component: &str) -> Result<T> {
    table
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
        .with_context(|| {
            let known: Vec<_> = table.iter().map(|(known, _)| *known).collect();
            format!(
                "component \"{component}\": unknown {what} \"{name}\" (known: {})",
                known.join(", ")
            )
        })
}

/// A component's grants as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants {
    /// Interface served (0 for none).
    pub serves: u16,
    /// Bit per callable interface id.
    pub may_call: u32,
    /// Bit per kernel operation.
    pub kernel_ops: u32,
    /// Route bits.
    pub routes: u32,
}

impl ComponentSpec {
    /// Resolves names to numbers, refusing unknown ones.
    pub fn grants(&self) -> Result<Grants> {
        let name = &self.name;
        let serves = match &self.serves {
            Some(interface) => lookup(INTERFACES, interface, "interface", name)?,
            None => 0,
        };
        let mut grants = Grants {
            serves,
            may_call: 0,
            kernel_ops: 0,
            routes: 0,
        };
        for interface in &self.calls {
            grants.may_call |= 1 << lookup(INTERFACES, interface, "interface", name)?;
        }
        for op in &self.kernel_ops {
            grants.kernel_ops |= 1 << lookup(KERNEL_OPS, op, "kernel operation", name)?;
        }
        for route in &self.routes {
            grants.routes |= lookup(ROUTES, route, "route", name)?;
        }
        Ok(grants)
    }
}

/// Checks the components together: unique names, one server per interface, one component per
/// route, every called interface served, and no call cycles (a cycle could deadlock two CPUs
/// calling each other's servers).
pub fn check_components(components: &[ComponentSpec]) -> Result<Vec<Grants>> {
    let grants = components
        .iter()
        .map(ComponentSpec::grants)
        .collect::<Result<Vec<_>>>()?;
    for (index, component) in components.iter().enumerate() {
        if component.name.is_empty() || component.name.len() > hv_abi::COMPONENT_NAME_LEN {
            bail!("component \"{}\": a name has 1 to 16 bytes", component.name);
        }
        parse_size(&component.memory)
            .with_context(|| format!("component \"{}\": memory", component.name))?;
        for (other_index, other) in components.iter().enumerate().take(index) {
            if other.name == component.name {
                bail!("component \"{}\" is named twice", component.name);
            }
            if grants[index].serves != 0 && grants[index].serves == grants[other_index].serves {
                bail!(
                    "components \"{}\" and \"{}\" both serve {:?}",
                    other.name,
                    component.name,
                    component.serves.as_deref().unwrap_or("")
                );
            }
            if grants[index].routes & grants[other_index].routes != 0 {
                bail!(
                    "components \"{}\" and \"{}\" take the same route",
                    other.name,
                    component.name
                );
            }
        }
        for interface in &component.calls {
            let id = lookup(INTERFACES, interface, "interface", &component.name)?;
            if !grants.iter().any(|g| g.serves == id) {
                bail!(
                    "component \"{}\" calls \"{interface}\", which no component serves",
                    component.name
                );
            }
        }
    }
    // Call graph: edge a -> b when a calls what b serves. Depth-first search for a cycle.
    let callees = |a: usize| {
        (0..components.len())
            .filter(|&b| grants[b].serves != 0 && grants[a].may_call & (1 << grants[b].serves) != 0)
            .collect::<Vec<_>>()
    };
    fn visit(node: usize, marks: &mut [u8], edges: &dyn Fn(usize) -> Vec<usize>) -> Option<usize> {
        match marks[node] {
            1 => return Some(node),
            2 => return None,
            _ => {}
        }
        marks[node] = 1;
        for next in edges(node) {
            if let Some(found) = visit(next, marks, edges) {
                return Some(found);
            }
        }
        marks[node] = 2;
        None
    }
    let edges = |node: usize| callees(node);
    let mut marks = vec![0u8; components.len()];
    for start in 0..components.len() {
        if let Some(node) = visit(start, &mut marks, &edges) {
            bail!(
                "the components' calls form a cycle through \"{}\"; calls must only go one way",
                components[node].name
            );
        }
    }
    Ok(grants)
}

/// The host VM: the first VM, which owns the machine's devices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostVm {
    /// `"debian"` for Debian's arm64 cloud kernel (for QEMU), `"debian-arm64"` for its generic
    /// arm64 kernel (with real boards' drivers), or a path (relative to the manifest) to
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

    fn component(name: &str, serves: Option<&str>, calls: &[&str]) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            crate_name: format!("hv-{name}"),
            memory: "1M".into(),
            serves: serves.map(Into::into),
            calls: calls.iter().map(|c| (*c).into()).collect(),
            kernel_ops: vec![],
            routes: vec![],
            env: Default::default(),
        }
    }

    #[test]
    fn component_checks() {
        let good = [
            component("supervisor", Some("supervisor"), &[]),
            component("vm-manager", Some("guest-trap"), &["supervisor"]),
        ];
        let grants = check_components(&good).unwrap();
        assert_eq!(grants[1].may_call, 1 << hv_ipc::abi::interface::SUPERVISOR);

        let cycle = [
            component("supervisor", Some("supervisor"), &["guest-trap"]),
            component("vm-manager", Some("guest-trap"), &["supervisor"]),
        ];
        assert!(
            check_components(&cycle)
                .unwrap_err()
                .to_string()
                .contains("cycle")
        );

        let unserved = [component("vm-manager", Some("guest-trap"), &["supervisor"])];
        assert!(
            check_components(&unserved)
                .unwrap_err()
                .to_string()
                .contains("no component serves")
        );

        let twice = [
            component("a", Some("supervisor"), &[]),
            component("b", Some("supervisor"), &[]),
        ];
        assert!(
            check_components(&twice)
                .unwrap_err()
                .to_string()
                .contains("both serve")
        );

        let unknown = [component("a", Some("printer"), &[])];
        assert!(
            check_components(&unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown interface")
        );

        let same_name = [component("a", None, &[]), component("a", None, &[])];
        assert!(
            check_components(&same_name)
                .unwrap_err()
                .to_string()
                .contains("named twice")
        );
    }

    #[test]
    fn the_default_manifest_loads() {
        let path = crate::paths::workspace().join("manifests/qemu-virt.toml");
        let manifest = Manifest::load(&path).unwrap();
        assert_eq!(manifest.board, "qemu-virt");
        assert!(
            manifest
                .components
                .iter()
                .any(|c| c.routes.contains(&"smccc".to_owned()))
        );
    }
}
