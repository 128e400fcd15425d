//! Serialising a [`DeviceTree`] into a flattened device tree blob (DTSpec v0.4 chapter 5).
//!
//! The output is laid out the way dtc lays it out: header, memory reservation block (8-byte
//! aligned, as §5.3.1 requires), structure block, strings block, with no free space, so the
//! blob is as small as it can be and its bytes depend only on the tree. Spec:
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use std::collections::HashMap;

use crate::parse::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_PROP, HEADER_LEN_V17};
use crate::{DeviceTree, Node};

/// Version written; readers that understand version 16 can read it (`last_comp_version`).
const VERSION: u32 = 17;
const LAST_COMP_VERSION: u32 = 16;

/// The strings block: each distinct property name stored once.
#[derive(Default)]
struct Strings<'a> {
    bytes: Vec<u8>,
    offsets: HashMap<&'a [u8], u32>,
}

impl<'a> Strings<'a> {
    fn offset_of(&mut self, name: &'a [u8]) -> u32 {
        *self.offsets.entry(name).or_insert_with(|| {
            let offset = self.bytes.len() as u32;
            self.bytes.extend_from_slice(name);
            self.bytes.push(0);
            offset
        })
    }
}

/// A name as written: the blob stores names NUL-terminated, so a name containing NUL can only
/// be written up to its first NUL. Cutting it there keeps the output well formed.
fn c_name(name: &str) -> &[u8] {
    let bytes = name.as_bytes();
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.get(..len).unwrap_or_default()
}

fn push32(out: &mut Vec<u8>, word: u32) {
    out.extend_from_slice(&word.to_be_bytes());
}

/// Zero-pads to the next token boundary (§5.4.1).
fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

fn write_node<'a>(node: &'a Node, out: &mut Vec<u8>, strings: &mut Strings<'a>) {
    push32(out, FDT_BEGIN_NODE);
    out.extend_from_slice(c_name(&node.name));
    out.push(0);
    pad4(out);
    // Properties precede child nodes (§5.4.2).
    for property in &node.properties {
        push32(out, FDT_PROP);
        push32(out, property.value.len() as u32);
        push32(out, strings.offset_of(c_name(&property.name)));
        out.extend_from_slice(&property.value);
        pad4(out);
    }
    for child in &node.children {
        write_node(child, out, strings);
    }
    push32(out, FDT_END_NODE);
}

impl DeviceTree {
    /// Serialises the tree as a version 17 blob that [`DeviceTree::parse`] reads back to an
    /// equal tree.
    ///
    /// Sizes are 32-bit in the format, so a tree whose blob would exceed 4 GiB cannot be
    /// represented; names containing NUL are written up to the NUL.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings = Strings::default();
        let mut structure = Vec::new();
        write_node(&self.root, &mut structure, &mut strings);
        push32(&mut structure, FDT_END);

        // The 40-byte header keeps the reservation block that follows it 8-byte aligned.
        let off_mem_rsvmap = HEADER_LEN_V17;
        let off_dt_struct = off_mem_rsvmap + (self.reservations.len() + 1) * 16;
        let off_dt_strings = off_dt_struct + structure.len();
        let total_size = off_dt_strings + strings.bytes.len();

        let mut out = Vec::with_capacity(total_size);
        for word in [
            FDT_MAGIC,
            total_size as u32,
            off_dt_struct as u32,
            off_dt_strings as u32,
            off_mem_rsvmap as u32,
            VERSION,
            LAST_COMP_VERSION,
            self.boot_cpuid,
            strings.bytes.len() as u32,
            structure.len() as u32,
        ] {
            push32(&mut out, word);
        }
        for reservation in &self.reservations {
            out.extend_from_slice(&reservation.address.to_be_bytes());
            out.extend_from_slice(&reservation.size.to_be_bytes());
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structure);
        out.extend_from_slice(&strings.bytes);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{DeviceTree, Node, Reservation};

    fn sample() -> DeviceTree {
        let mut tree = DeviceTree {
            boot_cpuid: 1,
            reservations: vec![Reservation {
                address: 0x4800_0000,
                size: 0x1_0000,
            }],
            ..DeviceTree::default()
        };
        tree.root.set_u32("#address-cells", 2);
        tree.root.set_u32("#size-cells", 2);
        tree.root.set_string("compatible", "linux,dummy-virt");
        let memory = tree.ensure_node("/memory@40000000");
        memory.set_string("device_type", "memory");
        memory.set_u32s("reg", &[0, 0x4000_0000, 0, 0x4000_0000]);
        let uart = tree.ensure_node("/pl011@9000000");
        uart.set_property("odd", vec![1, 2, 3]);
        uart.set_empty("empty");
        tree.ensure_node("/chosen").set_string("bootargs", "x");
        tree
    }

    #[test]
    fn round_trip_hand_built_tree() {
        let tree = sample();
        let bytes = tree.to_bytes();
        assert_eq!(DeviceTree::parse(&bytes).unwrap(), tree);
        // Writing is deterministic, so a second trip gives identical bytes.
        assert_eq!(DeviceTree::parse(&bytes).unwrap().to_bytes(), bytes);
    }

    #[test]
    fn layout_and_header() {
        let bytes = sample().to_bytes();
        let word = |i: usize| u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(word(0), 0xd00d_feed);
        assert_eq!(word(1) as usize, bytes.len());
        assert_eq!(word(4), 40);
        assert_eq!(word(4) % 8, 0);
        assert_eq!((word(5), word(6), word(7)), (17, 16, 1));
        // One reservation plus the zero terminator, then the structure block.
        assert_eq!(word(2), 40 + 32);
        assert_eq!(&bytes[56..72], &[0; 16]);
        assert_eq!(word(2) % 4, 0);
        assert_eq!(word(3), word(2) + word(9));
        assert_eq!(word(1), word(3) + word(8));
    }

    #[test]
    fn strings_are_deduplicated() {
        let mut tree = DeviceTree::default();
        for i in 0..4 {
            tree.ensure_node(&format!("/n{i}")).set_u32("reg", i);
        }
        let bytes = tree.to_bytes();
        let strings = &bytes[bytes.len() - 4..];
        assert_eq!(strings, b"reg\0");
    }

    #[test]
    fn names_with_nul_stay_well_formed() {
        let mut tree = DeviceTree::default();
        tree.root.children.push(Node::new("a\0b"));
        tree.root.set_empty("p\0q");
        let parsed = DeviceTree::parse(&tree.to_bytes()).unwrap();
        assert_eq!(parsed.root.children[0].name, "a");
        assert!(parsed.root.property("p").is_some());
    }
}
