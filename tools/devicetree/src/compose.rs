//! The edits the image composer makes to QEMU's DTB before handing it to the host VM.
//!
//! These follow the Linux bindings the host kernel reads: `/memory` and `/cpus` (DTSpec v0.4
//! §3.4, §3.7), `/reserved-memory` (§3.5.4, and Linux's `reserved-memory.yaml`), `/chosen`
//! (§3.6, with the `linux,initrd-*` properties Linux's arm64 boot reads) and the PSCI binding
//! (`arm,psci.yaml`). Spec: <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use crate::{DeviceTree, Error, Node, Reservation, decode_reg};

const RESERVED_MEMORY: &str = "/reserved-memory";

/// The path of the first node named `name` at or below `node` (at `path`).
fn find_named(node: &Node, path: &str, name: &str) -> Option<String> {
    node.children.iter().find_map(|child| {
        let child_path = format!("{}/{}", path.trim_end_matches('/'), child.name);
        if child.name == name {
            Some(child_path)
        } else {
            find_named(child, &child_path, name)
        }
    })
}

/// The path of the node at or below `node` (at `path`) whose `phandle` is `phandle`.
fn find_phandle(node: &Node, path: &str, phandle: u32) -> Option<String> {
    if node.u32_property("phandle") == Some(phandle) {
        return Some(path.to_owned());
    }
    node.children.iter().find_map(|child| {
        let child_path = format!("{}/{}", path.trim_end_matches('/'), child.name);
        find_phandle(child, &child_path, phandle)
    })
}

/// The largest `phandle` in the tree (0 if none).
fn max_phandle(node: &Node) -> u32 {
    node.children
        .iter()
        .map(max_phandle)
        .chain(node.u32_property("phandle"))
        .max()
        .unwrap_or(0)
}

/// Whether `node` has `device_type = "<device_type>"`.
fn has_device_type(node: &Node, device_type: &str) -> bool {
    node.string_property("device_type") == Some(device_type)
}

/// Whether `name` is `base` or `base@unit-address`.
fn named(name: &str, base: &str) -> bool {
    name.split('@').next() == Some(base)
}

/// DTSpec v0.4 §2.2.1: a node name is 1-31 characters from this set.
fn valid_node_name(name: &str) -> bool {
    (1..=31).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b",._+-".contains(&b))
}

/// Whether a node's `compatible` list names a PSCI implementation (`arm,psci`,
/// `arm,psci-0.2`, `arm,psci-1.0`, ...).
fn is_psci(node: &Node) -> bool {
    node.string_list("compatible").is_some_and(|list| {
        list.iter()
            .any(|c| *c == "arm,psci" || c.starts_with("arm,psci-"))
    })
}

/// Depth-first search for the first node matching `pred`.
fn find_mut<'a>(node: &'a mut Node, pred: &dyn Fn(&Node) -> bool) -> Option<&'a mut Node> {
    if pred(node) {
        return Some(node);
    }
    node.children.iter_mut().find_map(|c| find_mut(c, pred))
}

impl DeviceTree {
    /// The `(base, size)` ranges of every root-level `memory` node (`device_type = "memory"`),
    /// in tree order.
    pub fn memory_ranges(&self) -> Result<Vec<(u64, u64)>, Error> {
        let mut ranges = Vec::new();
        for node in &self.root.children {
            if named(&node.name, "memory") && has_device_type(node, "memory") {
                ranges.extend(decode_reg(&self.root, node, &format!("/{}", node.name))?);
            }
        }
        Ok(ranges)
    }

    /// The MPIDR affinity values of the CPUs: the `reg` of each `/cpus/cpu@*` node with
    /// `device_type = "cpu"`, in tree order (a `reg` listing several threads gives several).
    pub fn cpu_mpidrs(&self) -> Result<Vec<u64>, Error> {
        let Some(cpus) = self.node("/cpus") else {
            return Ok(Vec::new());
        };
        let mut mpidrs = Vec::new();
        for node in &cpus.children {
            if named(&node.name, "cpu") && has_device_type(node, "cpu") {
                let reg = decode_reg(cpus, node, &format!("/cpus/{}", node.name))?;
                mpidrs.extend(reg.into_iter().map(|(address, _)| address));
            }
        }
        Ok(mpidrs)
    }

    /// Carves `[base, base + size)` out of the memory the OS may use, as the child
    /// `<name>@<base>` of `/reserved-memory` with `no-map` so the kernel does not even map it
    /// (stray speculative accesses to hypervisor memory would otherwise fault at stage 2).
    ///
    /// A missing `/reserved-memory` is created with the root's `#address-cells` and
    /// `#size-cells` and an empty `ranges`, which the binding requires: children's `reg` is
    /// then in the root's (physical) address space. An existing node keeps its own cells and
    /// the child's `reg` is encoded with them.
    ///
    /// Entries of the memory reservation block (`/memreserve/`) are trimmed to what lies
    /// outside the carved range: Linux refuses `no-map` for a range that overlaps memory
    /// already reserved (`early_init_dt_reserve_memory` returns -EBUSY), and would then use
    /// the whole range as RAM. The Raspberry Pi firmware reserves its spin-table page at 0,
    /// inside the hypervisor's region.
    pub fn reserve_no_map(&mut self, name: &str, base: u64, size: u64) -> Result<(), Error> {
        if !valid_node_name(name) {
            return Err(Error::InvalidNodeName {
                name: name.to_owned(),
            });
        }
        let end = base.saturating_add(size);
        self.reservations = self
            .reservations
            .iter()
            .flat_map(|entry| {
                let entry_end = entry.address.saturating_add(entry.size);
                let below = (entry.address < base).then(|| Reservation {
                    address: entry.address,
                    size: entry_end.min(base) - entry.address,
                });
                let above = (entry_end > end).then(|| Reservation {
                    address: entry.address.max(end),
                    size: entry_end - entry.address.max(end),
                });
                [below, above].into_iter().flatten()
            })
            .collect();
        if self.node(RESERVED_MEMORY).is_none() {
            let address_cells = self.address_cells("/")?;
            let size_cells = self.size_cells("/")?;
            let node = self.ensure_node(RESERVED_MEMORY);
            node.set_u32("#address-cells", address_cells);
            node.set_u32("#size-cells", size_cells);
            node.set_empty("ranges");
        }
        let reg = self.encode_reg(RESERVED_MEMORY, &[(base, size)])?;
        let child = self.ensure_node(&format!("{RESERVED_MEMORY}/{name}@{base:x}"));
        child.set_property("reg", reg);
        child.set_empty("no-map");
        Ok(())
    }

    /// Gives every device node (one with `compatible`, below the root) that is enabled the
    /// status `okay_value`, e.g. `"okay"` padded with NULs so that a later in-place edit can turn
    /// it into `"disabled"` (the kernel does, for the nodes the firmware disabled). Nodes
    /// already disabled keep their status. Returns how many nodes were given one.
    pub fn pad_enabled_statuses(&mut self, okay_value: &[u8]) -> usize {
        fn visit(node: &mut Node, okay_value: &[u8], count: &mut usize) {
            for child in &mut node.children {
                let enabled = child.property("status").is_none_or(|status| {
                    let first = status.split(|&byte| byte == 0).next().unwrap_or_default();
                    first == b"okay" || first == b"ok"
                });
                if enabled && child.property("compatible").is_some() {
                    child.set_property("status", okay_value.to_vec());
                    *count += 1;
                }
                visit(child, okay_value, count);
            }
        }
        let mut count = 0;
        visit(&mut self.root, okay_value, &mut count);
        count
    }

    /// Disables every node whose `reg` starts at a CPU address in `start..end` (a page the
    /// hypervisor keeps, such as hot-swap's control line), so the host does not probe what it
    /// cannot reach. Returns their paths.
    pub fn disable_nodes_in(&mut self, start: u64, end: u64) -> Vec<String> {
        fn walk(
            tree: &DeviceTree,
            node: &Node,
            path: &str,
            range: (u64, u64),
            out: &mut Vec<String>,
        ) {
            for child in &node.children {
                let child_path = format!("{}/{}", path.trim_end_matches('/'), child.name);
                if child.property("reg").is_some()
                    && tree
                        .cpu_address(&child_path)
                        .is_some_and(|address| (range.0..range.1).contains(&address))
                {
                    out.push(child_path.clone());
                }
                walk(tree, child, &child_path, range, out);
            }
        }
        let mut paths = Vec::new();
        walk(self, &self.root, "/", (start, end), &mut paths);
        for path in &paths {
            if let Some(node) = self.node_mut(path) {
                node.set_string("status", "disabled");
            }
        }
        paths
    }

    /// Enables the node whose `reg` starts at CPU address `address` (a UART the board's tree
    /// leaves disabled), selects the pin group node named `pins` as its default pin state
    /// (giving that node a phandle if it has none) and names it `alias` in `/aliases`: what
    /// the Raspberry Pi's `dtoverlay=uart3` does. Returns the node's path, or why not.
    pub fn enable_with_pins(
        &mut self,
        address: u64,
        pins: &str,
        alias: &str,
    ) -> Result<String, String> {
        let path = self
            .path_at_address(address)
            .ok_or_else(|| format!("no node at {address:#x}"))?;
        let group = find_named(&self.root, "/", pins)
            .ok_or_else(|| format!("no pin group node named {pins}"))?;
        let phandle = match self
            .node(&group)
            .and_then(|node| node.u32_property("phandle"))
        {
            Some(phandle) => phandle,
            None => {
                let next = max_phandle(&self.root) + 1;
                if let Some(node) = self.node_mut(&group) {
                    node.set_u32("phandle", next);
                }
                next
            }
        };
        if let Some(node) = self.node_mut(&path) {
            node.set_string("status", "okay");
            node.set_string("pinctrl-names", "default");
            node.set_u32("pinctrl-0", phandle);
        }
        self.ensure_node("/aliases").set_string(alias, &path);
        Ok(path)
    }

    /// The path of the node whose `phandle` is `phandle`.
    pub fn path_at_phandle(&self, phandle: u32) -> Option<String> {
        find_phandle(&self.root, "/", phandle)
    }

    /// Sets the kernel command line and initrd location in `/chosen` (created if missing).
    ///
    /// `None` removes the corresponding properties, so the result never carries a stale
    /// command line or initrd from the source tree. The initrd is `(start, end)` with `end`
    /// exclusive, written as 64-bit values (Linux accepts one or two cells).
    pub fn set_chosen(&mut self, bootargs: Option<&str>, initrd: Option<(u64, u64)>) {
        let chosen = self.ensure_node("/chosen");
        match bootargs {
            Some(args) => chosen.set_string("bootargs", args),
            None => {
                chosen.remove_property("bootargs");
            }
        }
        match initrd {
            Some((start, end)) => {
                chosen.set_u64("linux,initrd-start", start);
                chosen.set_u64("linux,initrd-end", end);
            }
            None => {
                chosen.remove_property("linux,initrd-start");
                chosen.remove_property("linux,initrd-end");
            }
        }
    }

    /// Sets the PSCI conduit (`"smc"` or `"hvc"`) on the first node whose `compatible`
    /// names PSCI (QEMU calls it `/psci`). Returns whether such a node exists; without one the
    /// tree is left unchanged.
    pub fn set_psci_method(&mut self, method: &str) -> bool {
        match find_mut(&mut self.root, &is_psci) {
            Some(psci) => {
                psci.set_string("method", method);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of QEMU's virt tree the helpers look at.
    fn virt() -> DeviceTree {
        let mut t = DeviceTree::default();
        t.root.set_u32("#size-cells", 2);
        t.root.set_u32("#address-cells", 2);
        let psci = t.ensure_node("/psci");
        psci.set_string("method", "smc");
        psci.set_property("compatible", &b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0"[..]);
        let memory = t.ensure_node("/memory@40000000");
        memory.set_u32s("reg", &[0, 0x4000_0000, 0, 0x4000_0000]);
        memory.set_string("device_type", "memory");
        let cpus = t.ensure_node("/cpus");
        cpus.set_u32("#size-cells", 0);
        cpus.set_u32("#address-cells", 1);
        t.ensure_node("/cpus/cpu-map/socket0");
        for i in 0..2u32 {
            let cpu = t.ensure_node(&format!("/cpus/cpu@{i}"));
            cpu.set_u32("reg", i);
            cpu.set_string("device_type", "cpu");
        }
        t.ensure_node("/chosen")
            .set_string("stdout-path", "/pl011@9000000");
        t
    }

    #[test]
    fn a_uart_is_enabled_with_its_pins_and_alias() {
        let mut t = virt();
        let uart = t.ensure_node("/pl011@9040000");
        uart.set_u32s("reg", &[0, 0x904_0000, 0, 0x1000]);
        uart.set_string("status", "disabled");
        t.ensure_node("/gpio/other").set_u32("phandle", 5);
        t.ensure_node("/gpio/uart_pins");
        let path = t
            .enable_with_pins(0x904_0000, "uart_pins", "serial3")
            .unwrap();
        assert_eq!(path, "/pl011@9040000");
        let node = t.node(&path).unwrap();
        assert_eq!(node.string_property("status"), Some("okay"));
        assert_eq!(node.string_property("pinctrl-names"), Some("default"));
        // A fresh phandle past the tree's largest.
        assert_eq!(node.u32_property("pinctrl-0"), Some(6));
        assert_eq!(
            t.node("/gpio/uart_pins").unwrap().u32_property("phandle"),
            Some(6)
        );
        assert_eq!(
            t.node("/aliases").unwrap().string_property("serial3"),
            Some("/pl011@9040000")
        );
        assert!(
            t.enable_with_pins(0x904_0000, "missing", "serial3")
                .is_err()
        );
        assert!(
            t.enable_with_pins(0x123_0000, "uart_pins", "serial3")
                .is_err()
        );
    }

    #[test]
    fn nodes_in_a_kept_page_are_disabled() {
        let mut t = virt();
        for (name, address) in [
            ("pl011@9000000", 0x900_0000u32),
            ("pl011@9040000", 0x904_0000),
        ] {
            let node = t.ensure_node(&format!("/{name}"));
            node.set_u32s("reg", &[0, address, 0, 0x1000]);
            node.set_string("compatible", "arm,pl011");
        }
        let disabled = t.disable_nodes_in(0x904_0000, 0x904_1000);
        assert_eq!(disabled, ["/pl011@9040000"]);
        let status = |path: &str| t.node(path).and_then(|node| node.string_property("status"));
        assert_eq!(status("/pl011@9040000"), Some("disabled"));
        assert_eq!(status("/pl011@9000000"), None);
    }

    #[test]
    fn memory_ranges_collects_memory_nodes() {
        let mut t = virt();
        assert_eq!(t.memory_ranges(), Ok(vec![(0x4000_0000, 0x4000_0000)]));
        let second = t.ensure_node("/memory@100000000");
        second.set_u32s("reg", &[1, 0, 0, 0x1000, 2, 0, 0, 0x2000]);
        second.set_string("device_type", "memory");
        // Named like memory but not memory: ignored.
        t.ensure_node("/memory-controller@0")
            .set_string("device_type", "memory");
        t.ensure_node("/memory@0").set_u32s("reg", &[0, 0, 0, 1]);
        assert_eq!(
            t.memory_ranges(),
            Ok(vec![
                (0x4000_0000, 0x4000_0000),
                (0x1_0000_0000, 0x1000),
                (0x2_0000_0000, 0x2000)
            ])
        );
        // Siblings sharing a name are each decoded, not the first one twice.
        let mut twin = Node::new("memory@100000000");
        twin.set_u32s("reg", &[3, 0, 0, 0x3000]);
        twin.set_string("device_type", "memory");
        t.root.children.push(twin);
        assert_eq!(
            t.memory_ranges().unwrap().last(),
            Some(&(0x3_0000_0000, 0x3000))
        );

        t.node_mut("/memory@100000000").unwrap().set_u32("reg", 1);
        assert!(matches!(
            t.memory_ranges(),
            Err(Error::BadPropertyLength { .. })
        ));
    }

    #[test]
    fn cpu_mpidrs_in_order() {
        let mut t = virt();
        assert_eq!(t.cpu_mpidrs(), Ok(vec![0, 1]));
        let cpus = t.node_mut("/cpus").unwrap();
        cpus.set_u32("#address-cells", 2);
        cpus.children.swap(1, 2);
        t.node_mut("/cpus/cpu@0").unwrap().set_u64("reg", 0x100);
        t.node_mut("/cpus/cpu@1")
            .unwrap()
            .set_u64("reg", 0x1_0000_0001);
        assert_eq!(t.cpu_mpidrs(), Ok(vec![0x1_0000_0001, 0x100]));
        assert!(t.remove_node("/cpus"));
        assert_eq!(t.cpu_mpidrs(), Ok(vec![]));
    }

    #[test]
    fn reserve_no_map_creates_parent_from_root_cells() {
        let mut t = virt();
        t.reserve_no_map("hypervisor", 0x4000_0000, 0x200_0000)
            .unwrap();
        let rm = t.node("/reserved-memory").unwrap();
        assert_eq!(rm.u32_property("#address-cells"), Some(2));
        assert_eq!(rm.u32_property("#size-cells"), Some(2));
        assert_eq!(rm.property("ranges"), Some(&[][..]));
        let hyp = t.node("/reserved-memory/hypervisor@40000000").unwrap();
        assert_eq!(hyp.property("no-map"), Some(&[][..]));
        assert_eq!(
            t.reg("/reserved-memory/hypervisor@40000000"),
            Ok(vec![(0x4000_0000, 0x200_0000)])
        );

        // A second region goes into the same node; re-reserving updates in place.
        t.reserve_no_map("shm", 0xABC0_0000, 0x1000).unwrap();
        t.reserve_no_map("shm", 0xABC0_0000, 0x2000).unwrap();
        let rm = t.node("/reserved-memory").unwrap();
        assert_eq!(rm.children.len(), 2);
        assert_eq!(
            t.reg("/reserved-memory/shm@abc00000"),
            Ok(vec![(0xABC0_0000, 0x2000)])
        );
    }

    #[test]
    fn reserve_no_map_respects_existing_node_and_defaults() {
        // No cells on the root: the DTSpec defaults (2, 1) are written explicitly.
        let mut t = DeviceTree::default();
        t.reserve_no_map("a", 0x1000, 0x1000).unwrap();
        let rm = t.node("/reserved-memory").unwrap();
        assert_eq!(rm.u32_property("#address-cells"), Some(2));
        assert_eq!(rm.u32_property("#size-cells"), Some(1));
        assert_eq!(
            t.node("/reserved-memory/a@1000").unwrap().property("reg"),
            Some(&[0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0][..])
        );

        // An existing node with one-cell addresses cannot hold a 64-bit base.
        let mut t = virt();
        let rm = t.ensure_node("/reserved-memory");
        rm.set_u32("#address-cells", 1);
        rm.set_u32("#size-cells", 1);
        assert!(matches!(
            t.reserve_no_map("hi", 0x1_0000_0000, 0x1000),
            Err(Error::ValueDoesNotFit { cells: 1, .. })
        ));
        t.reserve_no_map("lo", 0x8000_0000, 0x1000).unwrap();
        assert_eq!(
            t.node("/reserved-memory/lo@80000000")
                .unwrap()
                .property("reg"),
            Some(&[0x80, 0, 0, 0, 0, 0, 0x10, 0][..])
        );
    }

    #[test]
    fn reserve_no_map_trims_memreserve_entries_it_covers() {
        let mut t = virt();
        t.reservations = vec![
            Reservation {
                address: 0,
                size: 0x1000,
            },
            Reservation {
                address: 0x1f0_0000,
                size: 0x20_0000,
            },
            Reservation {
                address: 0x400_0000,
                size: 0x1000,
            },
        ];
        t.reserve_no_map("hypervisor", 0, 0x200_0000).unwrap();
        assert_eq!(
            t.reservations,
            [
                Reservation {
                    address: 0x200_0000,
                    size: 0x10_0000
                },
                Reservation {
                    address: 0x400_0000,
                    size: 0x1000
                },
            ]
        );
        // One entry around the whole range keeps both ends.
        t.reservations = vec![Reservation {
            address: 0x1000,
            size: 0x5000,
        }];
        t.reserve_no_map("mid", 0x2000, 0x1000).unwrap();
        assert_eq!(
            t.reservations,
            [
                Reservation {
                    address: 0x1000,
                    size: 0x1000
                },
                Reservation {
                    address: 0x3000,
                    size: 0x3000
                },
            ]
        );
    }

    #[test]
    fn enabled_device_nodes_get_the_padded_status() {
        let mut t = DeviceTree::default();
        t.ensure_node("/uart@1")
            .set_string("compatible", "arm,pl011");
        t.ensure_node("/uart@2")
            .set_string("compatible", "arm,pl011");
        t.ensure_node("/uart@2").set_string("status", "disabled");
        t.ensure_node("/soc/i2c@3")
            .set_string("compatible", "brcm,i2c");
        t.ensure_node("/soc/i2c@3").set_string("status", "okay");
        t.ensure_node("/chosen");
        assert_eq!(t.pad_enabled_statuses(b"okay\0\0"), 2);
        let status = |path: &str| t.node(path).unwrap().property("status").map(<[u8]>::to_vec);
        assert_eq!(status("/uart@1"), Some(b"okay\0\0".to_vec()));
        assert_eq!(status("/uart@2"), Some(b"disabled\0".to_vec()));
        assert_eq!(status("/soc/i2c@3"), Some(b"okay\0\0".to_vec()));
        assert_eq!(status("/chosen"), None);
    }

    #[test]
    fn reserve_no_map_rejects_bad_names() {
        let mut t = virt();
        for name in ["", "a/b", "a@1", "x y", "abcdefghijklmnopqrstuvwxyz012345"] {
            assert!(
                matches!(
                    t.reserve_no_map(name, 0, 1),
                    Err(Error::InvalidNodeName { .. })
                ),
                "{name:?}"
            );
        }
        assert!(t.node("/reserved-memory").is_none());
    }

    #[test]
    fn set_chosen_sets_and_clears() {
        let mut t = virt();
        t.set_chosen(Some("console=ttyAMA0"), Some((0x4400_0000, 0x4410_0000)));
        let chosen = t.node("/chosen").unwrap();
        assert_eq!(chosen.string_property("bootargs"), Some("console=ttyAMA0"));
        assert_eq!(
            chosen.property("linux,initrd-start"),
            Some(&0x4400_0000u64.to_be_bytes()[..])
        );
        assert_eq!(
            chosen.property("linux,initrd-end"),
            Some(&0x4410_0000u64.to_be_bytes()[..])
        );
        assert_eq!(
            chosen.string_property("stdout-path"),
            Some("/pl011@9000000")
        );

        t.set_chosen(None, None);
        let chosen = t.node("/chosen").unwrap();
        assert_eq!(chosen.properties.len(), 1);
        assert!(chosen.property("linux,initrd-start").is_none());

        let mut t = DeviceTree::default();
        t.set_chosen(Some(""), None);
        assert_eq!(
            t.node("/chosen").unwrap().property("bootargs"),
            Some(&[0][..])
        );
    }

    #[test]
    fn set_psci_method_finds_node_by_compatible() {
        let mut t = virt();
        assert!(t.set_psci_method("hvc"));
        assert_eq!(
            t.node("/psci").unwrap().string_property("method"),
            Some("hvc")
        );

        // Found by compatible, whatever the node is called.
        let mut t = virt();
        t.node_mut("/psci").unwrap().name = "firmware-psci".into();
        assert!(t.set_psci_method("hvc"));
        assert_eq!(
            t.node("/firmware-psci").unwrap().string_property("method"),
            Some("hvc")
        );

        // A node named psci that is not PSCI, and no real PSCI node: nothing changes.
        let mut t = virt();
        t.node_mut("/psci")
            .unwrap()
            .set_string("compatible", "vendor,other");
        let before = t.clone();
        assert!(!t.set_psci_method("hvc"));
        assert_eq!(t, before);
    }
}
