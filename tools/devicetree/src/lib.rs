//! A small flattened device tree (FDT) reader, editor and writer for composing guest DTBs.
//!
//! The host-side image composer takes the DTB QEMU dumps for a machine configuration
//! (`-machine dumpdtb=...`), or the board's real one, and edits it into the DTB the host VM
//! receives (reserving the hypervisor's memory, setting `/chosen`, switching the PSCI conduit,
//! leaving out the guests' CPUs and memory) and into each guest VM's own (`partition`). The format is DTSpec
//! v0.4 chapter 5 (<https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>).
//!
//! We write our own instead of using a crate or libfdt because the composer needs an *owned*,
//! freely editable tree (read-only parsers such as `fdt` cannot edit), exact control over the
//! bytes written (no padding or free space we did not ask for), and no C bindings or `unsafe`
//! in the build tools. The format is small enough that this is a few hundred lines.
//!
//! Paths are absolute (`/chosen`, `/reserved-memory/hyp@40000000`) and match node names
//! exactly: the unit address is part of the name, so `/memory` does not find
//! `/memory@40000000`. Empty path components are ignored, so `/` and the empty string both name the root.

mod compose;
mod error;
mod node;
mod parse;
mod partition;
mod write;

pub use error::{Block, Error};
pub use node::{Node, Property};
pub use partition::GuestView;

/// Deepest node nesting [`DeviceTree::parse`] accepts. Real trees nest a handful of levels
/// (QEMU's deepest is `/cpus/cpu-map/socket0/cluster0/core0`); the cap keeps recursion over a
/// parsed tree bounded. Linux's unflattener uses the same limit.
pub const MAX_DEPTH: usize = 64;

/// A memory reservation block entry (DTSpec v0.4 §5.3): physical memory the OS must not use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reservation {
    pub address: u64,
    pub size: u64,
}

/// A whole device tree: header fields worth keeping, the reservation list and the node tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceTree {
    /// `boot_cpuid_phys` from the header: the physical ID of the boot CPU.
    pub boot_cpuid: u32,
    pub reservations: Vec<Reservation>,
    pub root: Node,
}

/// The non-empty components of a path.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// Splits a path into its parent's path and its last component; `None` for the root.
fn split_parent(path: &str) -> Option<(String, &str)> {
    let mut parts: Vec<&str> = components(path).collect();
    let last = parts.pop()?;
    Some((format!("/{}", parts.join("/")), last))
}

/// Decodes big-endian cells into one value; callers pass at most two cells (8 bytes).
fn read_cells(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Encodes a value into `cells` big-endian cells, if it fits.
fn write_cells(value: u64, cells: u32, out: &mut Vec<u8>) -> bool {
    match cells {
        0 => value == 0,
        1 => match u32::try_from(value) {
            Ok(v) => {
                out.extend_from_slice(&v.to_be_bytes());
                true
            }
            Err(_) => false,
        },
        2 => {
            out.extend_from_slice(&value.to_be_bytes());
            true
        }
        _ => false,
    }
}

/// A one-cell property of `node` (found at `path`), or `default` when it is absent.
fn cells_property(node: &Node, path: &str, property: &str, default: u32) -> Result<u32, Error> {
    match node.property(property) {
        None => Ok(default),
        Some(value) => match <[u8; 4]>::try_from(value) {
            Ok(bytes) => Ok(u32::from_be_bytes(bytes)),
            Err(_) => Err(Error::BadPropertyLength {
                path: path.to_owned(),
                property: property.to_owned(),
                len: value.len(),
            }),
        },
    }
}

/// Decodes `node`'s `reg` with `parent`'s cell counts; `path` names `node` in errors. Works on
/// nodes rather than paths so callers iterating over children decode the node they hold even
/// when siblings share its name.
pub(crate) fn decode_reg(parent: &Node, node: &Node, path: &str) -> Result<Vec<(u64, u64)>, Error> {
    let parent_path = split_parent(path).map(|(p, _)| p).unwrap_or_default();
    let address_cells = cells_property(parent, &parent_path, "#address-cells", 2)?;
    let size_cells = cells_property(parent, &parent_path, "#size-cells", 1)?;
    if address_cells > 2 || size_cells > 2 {
        return Err(Error::UnsupportedCells {
            path: path.to_owned(),
            address_cells,
            size_cells,
        });
    }
    let value = node.property("reg").ok_or_else(|| Error::MissingProperty {
        path: path.to_owned(),
        property: "reg".to_owned(),
    })?;
    let address_len = address_cells as usize * 4;
    let entry_len = address_len + size_cells as usize * 4;
    if entry_len == 0 || value.len() % entry_len != 0 {
        // With zero cells only an empty `reg` makes sense, and it holds no entries.
        if value.is_empty() {
            return Ok(Vec::new());
        }
        return Err(Error::BadPropertyLength {
            path: path.to_owned(),
            property: "reg".to_owned(),
            len: value.len(),
        });
    }
    Ok(value
        .chunks_exact(entry_len)
        .map(|entry| {
            let (address, size) = entry.split_at(address_len);
            (read_cells(address), read_cells(size))
        })
        .collect())
}

impl DeviceTree {
    /// The node at `path`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        components(path).try_fold(&self.root, |node, name| node.child(name))
    }

    /// The node at `path`, mutably.
    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        components(path).try_fold(&mut self.root, |node, name| node.child_mut(name))
    }

    /// The node at `path`, creating it and any missing ancestors (appended after existing
    /// children) first.
    pub fn ensure_node(&mut self, path: &str) -> &mut Node {
        let mut node = &mut self.root;
        for name in components(path) {
            let index = match node.children.iter().position(|c| c.name == name) {
                Some(index) => index,
                None => {
                    node.children.push(Node::new(name));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[index];
        }
        node
    }

    /// Removes the node at `path` with everything under it; returns whether it existed. The
    /// root cannot be removed.
    pub fn remove_node(&mut self, path: &str) -> bool {
        let Some((parent, name)) = split_parent(path) else {
            return false;
        };
        let Some(parent) = self.node_mut(&parent) else {
            return false;
        };
        match parent.children.iter().position(|c| c.name == name) {
            Some(index) => {
                parent.children.remove(index);
                true
            }
            None => false,
        }
    }

    /// `#address-cells` of the node at `path`: how many cells its children's addresses take.
    /// DTSpec v0.4 §2.3.5 gives 2 when the property is absent.
    pub fn address_cells(&self, path: &str) -> Result<u32, Error> {
        cells_property(self.existing(path)?, path, "#address-cells", 2)
    }

    /// `#size-cells` of the node at `path`: how many cells its children's sizes take.
    /// DTSpec v0.4 §2.3.5 gives 1 when the property is absent.
    pub fn size_cells(&self, path: &str) -> Result<u32, Error> {
        cells_property(self.existing(path)?, path, "#size-cells", 1)
    }

    /// The `(address, size)` pairs of the node's `reg`, decoded with its parent's
    /// `#address-cells`/`#size-cells` (sizes are 0 when the parent has `#size-cells = 0`,
    /// as under `/cpus`).
    pub fn reg(&self, path: &str) -> Result<Vec<(u64, u64)>, Error> {
        let (parent, name) = split_parent(path).ok_or_else(|| Error::NoParent {
            path: path.to_owned(),
        })?;
        let parent = self.existing(&parent)?;
        let node = parent.child(name).ok_or_else(|| Error::NodeNotFound {
            path: path.to_owned(),
        })?;
        decode_reg(parent, node, path)
    }

    /// The node at `path`, or the error saying it is not there.
    fn existing(&self, path: &str) -> Result<&Node, Error> {
        self.node(path).ok_or_else(|| Error::NodeNotFound {
            path: path.to_owned(),
        })
    }

    /// Encodes `reg` entries for a child of the node at `parent`, using its cell counts.
    pub fn encode_reg(&self, parent: &str, entries: &[(u64, u64)]) -> Result<Vec<u8>, Error> {
        let address_cells = self.address_cells(parent)?;
        let size_cells = self.size_cells(parent)?;
        let mut out = Vec::new();
        for &(address, size) in entries {
            if !write_cells(address, address_cells, &mut out) {
                return Err(Error::ValueDoesNotFit {
                    path: parent.to_owned(),
                    value: address,
                    cells: address_cells,
                });
            }
            if !write_cells(size, size_cells, &mut out) {
                return Err(Error::ValueDoesNotFit {
                    path: parent.to_owned(),
                    value: size,
                    cells: size_cells,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DeviceTree {
        let mut t = DeviceTree::default();
        t.root.set_u32("#address-cells", 2);
        t.root.set_u32("#size-cells", 2);
        t.ensure_node("/memory@40000000")
            .set_u32s("reg", &[0, 0x4000_0000, 1, 0]);
        let cpus = t.ensure_node("/cpus");
        cpus.set_u32("#address-cells", 1);
        cpus.set_u32("#size-cells", 0);
        t.ensure_node("/cpus/cpu@1").set_u32("reg", 1);
        t
    }

    #[test]
    fn lookup_by_path() {
        let mut t = tree();
        assert_eq!(t.node("/").unwrap().name, "");
        assert_eq!(t.node("").unwrap().name, "");
        assert_eq!(t.node("/cpus/cpu@1").unwrap().name, "cpu@1");
        assert_eq!(t.node("//cpus//cpu@1/").unwrap().name, "cpu@1");
        assert!(t.node("/memory").is_none());
        assert!(t.node("/cpus/cpu@2").is_none());
        t.node_mut("/cpus/cpu@1").unwrap().set_empty("x");
        assert!(t.node("/cpus/cpu@1").unwrap().property("x").is_some());
        assert!(t.node_mut("/nope/deeper").is_none());
    }

    #[test]
    fn ensure_node_creates_only_what_is_missing() {
        let mut t = tree();
        t.ensure_node("/a/b/c").set_u32("v", 3);
        t.ensure_node("/a/b/d");
        t.ensure_node("/a/b/c");
        let b = t.node("/a/b").unwrap();
        let names: Vec<&str> = b.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c", "d"]);
        assert_eq!(t.node("/a/b/c").unwrap().u32_property("v"), Some(3));
        assert_eq!(t.root.children.last().unwrap().name, "a");
    }

    #[test]
    fn remove_node_removes_subtree() {
        let mut t = tree();
        assert!(t.remove_node("/cpus"));
        assert!(t.node("/cpus/cpu@1").is_none());
        assert!(!t.remove_node("/cpus"));
        assert!(!t.remove_node("/"));
        assert!(!t.remove_node("/nope/x"));
        assert!(t.node("/memory@40000000").is_some());
    }

    #[test]
    fn cells_default_and_read() {
        let mut t = tree();
        assert_eq!(t.address_cells("/cpus"), Ok(1));
        assert_eq!(t.size_cells("/cpus"), Ok(0));
        assert_eq!(t.address_cells("/memory@40000000"), Ok(2));
        assert_eq!(t.size_cells("/memory@40000000"), Ok(1));
        assert!(matches!(
            t.address_cells("/x"),
            Err(Error::NodeNotFound { .. })
        ));
        t.root.set_u64("#size-cells", 2);
        assert!(matches!(
            t.size_cells("/"),
            Err(Error::BadPropertyLength { len: 8, .. })
        ));
    }

    #[test]
    fn reg_uses_parent_cells() {
        let mut t = tree();
        assert_eq!(
            t.reg("/memory@40000000"),
            Ok(vec![(0x4000_0000, 0x1_0000_0000)])
        );
        assert_eq!(t.reg("/cpus/cpu@1"), Ok(vec![(1, 0)]));
        assert!(matches!(t.reg("/"), Err(Error::NoParent { .. })));
        assert!(matches!(t.reg("/nope"), Err(Error::NodeNotFound { .. })));
        assert!(matches!(t.reg("/cpus"), Err(Error::MissingProperty { .. })));

        t.node_mut("/memory@40000000")
            .unwrap()
            .set_u32s("reg", &[1, 2, 3]);
        assert!(matches!(
            t.reg("/memory@40000000"),
            Err(Error::BadPropertyLength { len: 12, .. })
        ));
        t.root.set_u32("#address-cells", 3);
        assert!(matches!(
            t.reg("/memory@40000000"),
            Err(Error::UnsupportedCells {
                address_cells: 3,
                ..
            })
        ));

        // Zero address and size cells: only an empty reg is meaningful.
        let cpus = t.node_mut("/cpus").unwrap();
        cpus.set_u32("#address-cells", 0);
        assert!(matches!(
            t.reg("/cpus/cpu@1"),
            Err(Error::BadPropertyLength { .. })
        ));
        t.node_mut("/cpus/cpu@1").unwrap().set_empty("reg");
        assert_eq!(t.reg("/cpus/cpu@1"), Ok(vec![]));
    }

    #[test]
    fn encode_reg_checks_fit() {
        let t = tree();
        assert_eq!(t.encode_reg("/cpus", &[(0x101, 0)]), Ok(vec![0, 0, 1, 1]));
        assert!(matches!(
            t.encode_reg("/cpus", &[(1 << 32, 0)]),
            Err(Error::ValueDoesNotFit { cells: 1, .. })
        ));
        assert!(matches!(
            t.encode_reg("/cpus", &[(0, 1)]),
            Err(Error::ValueDoesNotFit { cells: 0, .. })
        ));
        assert_eq!(
            t.encode_reg("/", &[(0x4000_0000, 0x1000)]),
            Ok(vec![0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0])
        );
    }
}
