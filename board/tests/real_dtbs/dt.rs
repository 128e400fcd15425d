//! Reading what the board constants describe out of a device tree: CPU-side addresses (through
//! every bus's `ranges`) and GIC INTIDs (through `interrupt-parent`).
//!
//! DTSpec v0.4 §2.3.8 (`ranges`: child address, parent address, length; an empty `ranges`
//! is an identity map; a missing one means the bus is not memory-mapped) and §2.4
//! (interrupt-parent, inherited from the nearest ancestor); GIC binding: three cells, type
//! 0 = SPI (INTID 32 + n), 1 = PPI (INTID 16 + n).

use hv_devicetree::{DeviceTree, Node};

/// A node's path and the node, for every node (depth first, tree order).
pub fn all_nodes(tree: &DeviceTree) -> Vec<(String, &Node)> {
    fn walk<'a>(node: &'a Node, path: String, out: &mut Vec<(String, &'a Node)>) {
        for child in &node.children {
            let child_path = format!("{}/{}", path.trim_end_matches('/'), child.name);
            out.push((child_path.clone(), child));
            walk(child, child_path, out);
        }
    }
    let mut out = vec![("/".to_owned(), &tree.root)];
    walk(&tree.root, "/".to_owned(), &mut out);
    out
}

/// The paths of the nodes whose `compatible` list holds `compatible`.
pub fn compatible_nodes(tree: &DeviceTree, compatible: &str) -> Vec<String> {
    all_nodes(tree)
        .into_iter()
        .filter(|(_, node)| {
            node.string_list("compatible")
                .is_some_and(|list| list.contains(&compatible))
        })
        .map(|(path, _)| path)
        .collect()
}

/// The parent's path (`/` for a root child).
pub fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((parent, _)) => parent.to_owned(),
    }
}

/// Big-endian cells.
pub fn cells(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

/// One address or size made of `count` cells (at most two).
fn value(cells: &[u32]) -> u64 {
    assert!(
        cells.len() <= 2,
        "a {}-cell address is not memory-mapped here",
        cells.len()
    );
    cells.iter().fold(0, |acc, &c| (acc << 32) | u64::from(c))
}

/// Translates `address`, in the address space of the node at `path`'s parent bus, into a CPU
/// physical address, bus by bus up to the root.
pub fn translate(tree: &DeviceTree, path: &str, mut address: u64) -> u64 {
    let mut bus = parent(path);
    while bus != "/" {
        let node = tree.node(&bus).unwrap();
        let ranges = node
            .property("ranges")
            .unwrap_or_else(|| panic!("{bus} has no `ranges`: {path} is not memory-mapped"));
        let grandparent = parent(&bus);
        if !ranges.is_empty() {
            let child_cells = tree.address_cells(&bus).unwrap() as usize;
            let parent_cells = tree.address_cells(&grandparent).unwrap() as usize;
            let size_cells = tree.size_cells(&bus).unwrap() as usize;
            let entries = cells(ranges);
            let entry_len = child_cells + parent_cells + size_cells;
            assert_eq!(entries.len() % entry_len, 0, "{bus}: malformed `ranges`");
            address = entries
                .chunks_exact(entry_len)
                .find_map(|entry| {
                    let child = value(&entry[..child_cells]);
                    let parent = value(&entry[child_cells..child_cells + parent_cells]);
                    let size = value(&entry[child_cells + parent_cells..]);
                    (child <= address && address - child < size).then(|| parent + (address - child))
                })
                .unwrap_or_else(|| panic!("{bus}'s `ranges` do not cover {address:#x} ({path})"));
        }
        bus = grandparent;
    }
    address
}

/// The node's `reg` entries as CPU physical `(base, size)` pairs.
pub fn cpu_reg(tree: &DeviceTree, path: &str) -> Vec<(u64, u64)> {
    tree.reg(path)
        .unwrap_or_else(|e| panic!("{path}: {e:?}"))
        .into_iter()
        .map(|(base, size)| (translate(tree, path, base), size))
        .collect()
}

/// The path of the node with this phandle.
fn by_phandle(tree: &DeviceTree, phandle: u32) -> String {
    all_nodes(tree)
        .into_iter()
        .find(|(_, node)| node.u32_property("phandle") == Some(phandle))
        .map(|(path, _)| path)
        .unwrap_or_else(|| panic!("no node has phandle {phandle:#x}"))
}

/// The node's interrupts as GIC INTIDs (empty if it has none). Fails unless its interrupt
/// parent is a GIC.
pub fn intids(tree: &DeviceTree, path: &str) -> Vec<u32> {
    let node = tree.node(path).unwrap();
    let Some(raw) = node.property("interrupts") else {
        return Vec::new();
    };
    let mut at = path.to_owned();
    let phandle = loop {
        if let Some(phandle) = tree.node(&at).unwrap().u32_property("interrupt-parent") {
            break phandle;
        }
        assert_ne!(at, "/", "{path} has interrupts but no interrupt-parent");
        at = parent(&at);
    };
    let controller_path = by_phandle(tree, phandle);
    let controller = tree.node(&controller_path).unwrap();
    let compatible = controller.string_list("compatible").unwrap_or_default();
    assert!(
        compatible
            .iter()
            .any(|c| ["arm,gic-400", "arm,cortex-a15-gic", "arm,gic-v3"].contains(c)),
        "{path}'s interrupt parent {controller_path} is not a GIC ({compatible:?})"
    );
    assert_eq!(controller.u32_property("#interrupt-cells"), Some(3));
    cells(raw)
        .chunks_exact(3)
        .map(|spec| match spec[0] {
            0 => 32 + spec[1],
            1 => 16 + spec[1],
            other => panic!("{path}: interrupt type {other} is neither SPI nor PPI"),
        })
        .collect()
}

/// The path a `/chosen/stdout-path` (or any path-or-alias) names, options stripped.
pub fn resolve_alias(tree: &DeviceTree, path_or_alias: &str) -> String {
    let name = path_or_alias.split(':').next().unwrap();
    if name.starts_with('/') {
        return name.to_owned();
    }
    tree.node("/aliases")
        .and_then(|aliases| aliases.string_property(name))
        .unwrap_or_else(|| panic!("no alias {name}"))
        .to_owned()
}
