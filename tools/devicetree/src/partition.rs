//! The edits that cut a board's tree down to what one VM may see: the host's without the
//! guests' CPUs and memory, and a guest's own tree (its RAM at its IPA, its vCPUs, PSCI over
//! HVC, the timer and interrupt controller, and only the devices it is given).
//!
//! Bindings followed: `/memory` and `/cpus` (DTSpec v0.4 §3.4, §3.7), `ranges` for bus
//! addresses (§2.3.8), `/chosen` (§3.6, with Linux's `linux,initrd-*`), `/aliases` (§3.3) and
//! PSCI (`arm,psci.yaml`). Spec:
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use crate::{DeviceTree, Error, Node, split_parent};

/// What a guest VM is given, as its tree describes it. Addresses are the guest's (IPA); its
/// devices keep their board addresses (IPA = PA for devices).
#[derive(Debug, Clone, Copy)]
pub struct GuestView<'a> {
    /// Its RAM: IPA and size.
    pub ram: (u64, u64),
    /// Its vCPUs, numbered from 0 (vCPU *n* has MPIDR Aff0 = *n*).
    pub vcpus: usize,
    /// The base address of each board device it is given.
    pub devices: &'a [u64],
    /// The base address of the UART its console is on, one of `devices`.
    pub console: Option<u64>,
    /// Its kernel command line.
    pub bootargs: &'a str,
    /// Its initrd, `(start, end)` IPAs.
    pub initrd: Option<(u64, u64)>,
    /// The IPA bit it uses as its shared attribute, if any: told to it in a `/hypervisor` node
    /// (`compatible = "hv,partition"`, `hv,shared-ipa-bit = <bit>`).
    pub shared_ipa_bit: Option<u8>,
}

/// Whether `name` is `base` or `base@unit-address`.
fn named(name: &str, base: &str) -> bool {
    name.split('@').next() == Some(base)
}

fn is_memory(node: &Node) -> bool {
    named(&node.name, "memory") && node.string_property("device_type") == Some("memory")
}

fn is_cpu(node: &Node) -> bool {
    named(&node.name, "cpu") && node.string_property("device_type") == Some("cpu")
}

fn compatible_with(node: &Node, test: impl Fn(&str) -> bool) -> bool {
    node.string_list("compatible")
        .is_some_and(|list| list.into_iter().any(test))
}

/// Nodes every VM keeps whatever devices it has: the architecture's (PSCI, the timer, the
/// PMU) and the GIC (other interrupt controllers, such as GPIO blocks and the Pi's legacy
/// ones, are devices).
fn is_architectural(node: &Node) -> bool {
    compatible_with(node, |c| {
        c.starts_with("arm,gic")
            || (c.starts_with("arm,cortex-a") && c.ends_with("-gic"))
            || c == "arm,psci"
            || c.starts_with("arm,psci-")
            || c == "arm,armv8-timer"
            || c == "arm,armv7-timer"
            || (c.starts_with("arm,") && c.ends_with("-pmu"))
            || c == "arm,armv8-pmuv3"
    })
}

/// A clock provider without registers (a fixed clock), or a container of only those: devices
/// name them in `clocks`, and they give the VM no access to anything.
fn is_clock_source(node: &Node) -> bool {
    node.property("reg").is_none()
        && (node.property("#clock-cells").is_some()
            || (!node.children.is_empty() && node.children.iter().all(is_clock_source)))
}

fn is_simple_bus(node: &Node) -> bool {
    compatible_with(node, |c| c == "simple-bus") && node.property("ranges").is_some()
}

impl DeviceTree {
    /// Replaces every root-level memory node with one, `/memory@<first base>`, listing
    /// `ranges` (`(base, size)`), in the place of the first one it replaces.
    pub fn set_memory(&mut self, ranges: &[(u64, u64)]) -> Result<(), Error> {
        let reg = self.encode_reg("/", ranges)?;
        let at = self
            .root
            .children
            .iter()
            .position(is_memory)
            .unwrap_or(self.root.children.len());
        self.root.children.retain(|node| !is_memory(node));
        let mut memory = Node::new(format!("memory@{:x}", ranges.first().map_or(0, |r| r.0)));
        memory.set_string("device_type", "memory");
        memory.set_property("reg", reg);
        self.root
            .children
            .insert(at.min(self.root.children.len()), memory);
        Ok(())
    }

    /// Removes the CPUs at positions `indices` among `/cpus`' CPU nodes (tree order: the
    /// hypervisor's CPU index, the boot CPU first), and the `cpu-map`, whose entries would
    /// name missing CPUs (Linux then takes the topology from MPIDR).
    pub fn remove_cpus(&mut self, indices: &[usize]) -> Result<(), Error> {
        let Some(cpus) = self.node_mut("/cpus") else {
            return match indices.first() {
                None => Ok(()),
                Some(&index) => Err(Error::NoCpu { index, count: 0 }),
            };
        };
        let count = cpus.children.iter().filter(|node| is_cpu(node)).count();
        if let Some(&index) = indices.iter().find(|&&index| index >= count) {
            return Err(Error::NoCpu { index, count });
        }
        if indices.is_empty() {
            return Ok(());
        }
        let mut position = 0;
        cpus.children.retain(|node| {
            if !is_cpu(node) {
                return node.name != "cpu-map";
            }
            position += 1;
            !indices.contains(&(position - 1))
        });
        Ok(())
    }

    /// The CPU physical address of the node at `path`'s first `reg` entry, through every
    /// parent bus's `ranges`; `None` if it has none or is not memory-mapped.
    pub fn cpu_address(&self, path: &str) -> Option<u64> {
        let mut address = self.reg(path).ok()?.first()?.0;
        let mut bus = split_parent(path)?.0;
        while let Some((grandparent, _)) = split_parent(&bus) {
            let node = self.node(&bus)?;
            let ranges = node.property("ranges")?;
            if !ranges.is_empty() {
                address = translate(self, &bus, &grandparent, ranges, address)?;
            }
            bus = grandparent;
        }
        Some(address)
    }

    /// The path of the first node whose `reg` starts at CPU address `address`.
    pub fn path_at_address(&self, address: u64) -> Option<String> {
        fn walk(tree: &DeviceTree, node: &Node, path: &str, address: u64) -> Option<String> {
            node.children.iter().find_map(|child| {
                let child_path = format!("{}/{}", path.trim_end_matches('/'), child.name);
                let here = child.property("reg").is_some()
                    && tree.cpu_address(&child_path) == Some(address);
                if here {
                    Some(child_path)
                } else {
                    walk(tree, child, &child_path, address)
                }
            })
        }
        walk(self, &self.root, "/", address)
    }

    /// The tree a guest VM receives, made from this (the board's) tree: one memory node at
    /// its RAM's IPA; CPUs `cpu@0`.. `cpu@<vcpus - 1>` with `reg` = vCPU index and PSCI as
    /// their enable method; PSCI over HVC (the hypervisor answers); the timer, PMU, interrupt
    /// controllers (without their MSI frames) and clocks kept; of the devices, only those at
    /// `view.devices`; `/chosen` with only its command line, initrd and console (never the
    /// host's seeds); no reserved memory (the board's is physical, not the guest's); aliases
    /// to removed nodes dropped.
    pub fn for_guest(&self, view: &GuestView) -> Result<DeviceTree, Error> {
        let mut tree = self.clone();
        tree.boot_cpuid = 0;
        tree.reservations.clear();
        for generated in [
            "/reserved-memory",
            "/__symbols__",
            "/__fixups__",
            "/__local_fixups__",
        ] {
            tree.remove_node(generated);
        }
        tree.set_memory(&[view.ram])?;
        tree.set_guest_cpus(view.vcpus)?;
        if !tree.set_psci_method("hvc") {
            let psci = tree.ensure_node("/psci");
            psci.set_property("compatible", &b"arm,psci-1.0\0arm,psci-0.2\0"[..]);
            psci.set_string("method", "hvc");
        }

        let mut removed = Vec::new();
        tree.unwanted(&tree.root, "/", view.devices, &mut removed);
        // Deepest first, so a path stays valid until its own removal.
        for path in removed.iter().rev() {
            tree.remove_node(path);
        }
        for &device in view.devices {
            if tree.path_at_address(device).is_none() {
                return Err(Error::NoDeviceAt { address: device });
            }
        }

        let console = view.console.and_then(|base| tree.path_at_address(base));
        let chosen = tree.ensure_node("/chosen");
        *chosen = Node::new("chosen");
        if let Some(console) = console {
            chosen.set_string("stdout-path", &console);
        }
        tree.set_chosen(Some(view.bootargs), view.initrd);
        if let Some(bit) = view.shared_ipa_bit {
            let hypervisor = tree.ensure_node("/hypervisor");
            hypervisor.set_string("compatible", "hv,partition");
            hypervisor.set_u32("hv,shared-ipa-bit", u32::from(bit));
        }

        if let Some(aliases) = tree.node("/aliases") {
            let dangling: Vec<String> = aliases
                .properties
                .iter()
                .filter(|alias| {
                    let target = alias.value.strip_suffix(&[0]).unwrap_or(&alias.value);
                    let target = std::str::from_utf8(target).unwrap_or("");
                    target.starts_with('/') && tree.node(target).is_none()
                })
                .map(|alias| alias.name.clone())
                .collect();
            let aliases = tree.ensure_node("/aliases");
            for name in dangling {
                aliases.remove_property(&name);
            }
        }
        Ok(tree)
    }

    /// Rebuilds `/cpus` with `count` CPUs like the board's first: `cpu@n`, `reg` = n.
    fn set_guest_cpus(&mut self, count: usize) -> Result<(), Error> {
        let compatible = self
            .node("/cpus")
            .and_then(|cpus| cpus.children.iter().find(|node| is_cpu(node)))
            .and_then(|cpu| cpu.property("compatible"))
            .map(<[u8]>::to_vec);
        let mut cpus_node = Node::new("cpu");
        if self.node("/cpus").is_none() {
            let cpus = self.ensure_node("/cpus");
            cpus.set_u32("#address-cells", 1);
            cpus.set_u32("#size-cells", 0);
        }
        let mut nodes = Vec::new();
        for index in 0..count {
            let reg = self.encode_reg("/cpus", &[(index as u64, 0)])?;
            cpus_node.name = format!("cpu@{index:x}");
            cpus_node.properties.clear();
            cpus_node.set_string("device_type", "cpu");
            if let Some(compatible) = &compatible {
                cpus_node.set_property("compatible", compatible.clone());
            }
            cpus_node.set_property("reg", reg);
            cpus_node.set_string("enable-method", "psci");
            nodes.push(cpus_node.clone());
        }
        let cpus = self.ensure_node("/cpus");
        cpus.children
            .retain(|node| !is_cpu(node) && node.name != "cpu-map");
        cpus.children.extend(nodes);
        Ok(())
    }

    /// Collects, under `node` (at `path`), the paths of nodes a guest given `devices` must
    /// not see; returns whether anything under `node` stays.
    fn unwanted(&self, node: &Node, path: &str, devices: &[u64], out: &mut Vec<String>) -> bool {
        let mut kept_any = false;
        for child in &node.children {
            let child_path = format!("{}/{}", path.trim_end_matches('/'), child.name);
            let top = path == "/";
            let keep = if top
                && (["chosen", "aliases", "cpus", "psci"].contains(&child.name.as_str())
                    || is_memory(child))
            {
                true
            } else if is_architectural(child) {
                // An interrupt controller's MSI frames serve PCI devices a guest lacks.
                for frame in &child.children {
                    if frame.property("msi-controller").is_some() {
                        out.push(format!("{child_path}/{}", frame.name));
                    }
                }
                true
            } else if is_simple_bus(child) {
                self.unwanted(child, &child_path, devices, out)
            } else if child.property("reg").is_some() {
                self.cpu_address(&child_path)
                    .is_some_and(|address| devices.contains(&address))
            } else {
                is_clock_source(child)
            };
            if keep {
                kept_any = true;
            } else {
                out.push(child_path);
            }
        }
        kept_any
    }
}

/// Translates `address` from `bus`'s address space into its parent's through `ranges`.
fn translate(
    tree: &DeviceTree,
    bus: &str,
    parent: &str,
    ranges: &[u8],
    address: u64,
) -> Option<u64> {
    let child_cells = tree.address_cells(bus).ok()? as usize;
    let parent_cells = tree.address_cells(parent).ok()? as usize;
    let size_cells = tree.size_cells(bus).ok()? as usize;
    if child_cells > 2 || parent_cells > 2 || size_cells > 2 {
        return None;
    }
    let entry_len = 4 * (child_cells + parent_cells + size_cells);
    if entry_len == 0 || !ranges.len().is_multiple_of(entry_len) {
        return None;
    }
    let value = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    ranges.chunks_exact(entry_len).find_map(|entry| {
        let (child, rest) = entry.split_at(4 * child_cells);
        let (parent, size) = rest.split_at(4 * parent_cells);
        let (child, parent, size) = (value(child), value(parent), value(size));
        let offset = address.checked_sub(child)?;
        (offset < size).then(|| parent.wrapping_add(offset))
    })
}

#[cfg(test)]
mod tests;
