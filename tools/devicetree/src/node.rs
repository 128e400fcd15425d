//! Nodes and properties of an owned device tree, with helpers to read and set property values.
//!
//! Values are kept as the raw big-endian bytes of DTSpec v0.4 §2.2.4 (cells are big-endian
//! `u32`s, strings are NUL-terminated), so whatever the parser read is written back unchanged;
//! the typed setters only encode. Reference:
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

/// A property: a name and its raw value bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: Vec<u8>,
}

/// A node: its name (including any `@unit-address`), its properties in blob order, and its
/// children in blob order. The root node's name is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub properties: Vec<Property>,
    pub children: Vec<Node>,
}

impl Node {
    /// A node with this name and nothing in it.
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            properties: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The first child with exactly this name (unit address included).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child with exactly this name, mutably.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// The raw value of a property.
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_slice())
    }

    /// Sets a property's value, replacing it in place if present (so property order stays as
    /// the source had it) and appending it otherwise.
    pub fn set_property(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.properties.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.properties.push(Property {
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// Sets a one-cell property.
    pub fn set_u32(&mut self, name: &str, value: u32) {
        self.set_property(name, value.to_be_bytes());
    }

    /// Sets a property to a list of cells.
    pub fn set_u32s(&mut self, name: &str, values: &[u32]) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        self.set_property(name, bytes);
    }

    /// Sets a two-cell property (high cell first), the encoding of 64-bit values such as
    /// `linux,initrd-start`.
    pub fn set_u64(&mut self, name: &str, value: u64) {
        self.set_property(name, value.to_be_bytes());
    }

    /// Sets a string property; the stored value gets the NUL terminator DTSpec requires.
    pub fn set_string(&mut self, name: &str, value: &str) {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.set_property(name, bytes);
    }

    /// Sets an empty (boolean) property such as `no-map` or `ranges`.
    pub fn set_empty(&mut self, name: &str) {
        self.set_property(name, Vec::new());
    }

    /// Removes a property; returns whether it was there.
    pub fn remove_property(&mut self, name: &str) -> bool {
        let before = self.properties.len();
        self.properties.retain(|p| p.name != name);
        self.properties.len() != before
    }

    /// A property holding exactly one cell.
    pub fn u32_property(&self, name: &str) -> Option<u32> {
        let bytes: [u8; 4] = self.property(name)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// A property holding exactly one NUL-terminated UTF-8 string, without the NUL.
    pub fn string_property(&self, name: &str) -> Option<&str> {
        let text = self.property(name)?.strip_suffix(&[0])?;
        if text.contains(&0) {
            return None;
        }
        std::str::from_utf8(text).ok()
    }

    /// A `<stringlist>` property such as `compatible`, split at its NULs.
    pub fn string_list(&self, name: &str) -> Option<Vec<&str>> {
        let text = self.property(name)?.strip_suffix(&[0])?;
        text.split(|&b| b == 0)
            .map(|s| std::str::from_utf8(s).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_encode_big_endian_and_replace_in_place() {
        let mut n = Node::new("test@0");
        n.set_u32("a", 0x1234_5678);
        n.set_u64("b", 0x1122_3344_5566_7788);
        n.set_u32s("c", &[1, 2]);
        n.set_string("d", "hi");
        n.set_empty("e");
        assert_eq!(n.property("a"), Some(&[0x12, 0x34, 0x56, 0x78][..]));
        assert_eq!(
            n.property("b"),
            Some(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88][..])
        );
        assert_eq!(n.property("c"), Some(&[0, 0, 0, 1, 0, 0, 0, 2][..]));
        assert_eq!(n.property("d"), Some(&b"hi\0"[..]));
        assert_eq!(n.property("e"), Some(&[][..]));

        n.set_u32("a", 7);
        let names: Vec<&str> = n.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        assert_eq!(n.u32_property("a"), Some(7));
    }

    #[test]
    fn typed_getters_reject_wrong_shapes() {
        let mut n = Node::new("n");
        n.set_u64("wide", 1);
        n.set_string("s", "memory");
        n.set_property("list", &b"arm,psci-1.0\0arm,psci\0"[..]);
        n.set_property("unterminated", &b"abc"[..]);
        n.set_property("bad-utf8", &[0xff, 0][..]);
        assert_eq!(n.u32_property("wide"), None);
        assert_eq!(n.u32_property("missing"), None);
        assert_eq!(n.string_property("s"), Some("memory"));
        assert_eq!(n.string_property("list"), None);
        assert_eq!(n.string_property("unterminated"), None);
        assert_eq!(n.string_property("bad-utf8"), None);
        assert_eq!(
            n.string_list("list"),
            Some(vec!["arm,psci-1.0", "arm,psci"])
        );
        assert_eq!(n.string_list("unterminated"), None);
    }

    #[test]
    fn remove_property_reports_presence() {
        let mut n = Node::new("n");
        n.set_empty("x");
        assert!(n.remove_property("x"));
        assert!(!n.remove_property("x"));
        assert!(n.properties.is_empty());
    }

    #[test]
    fn child_lookup_is_exact() {
        let mut n = Node::new("");
        n.children.push(Node::new("memory@40000000"));
        assert!(n.child("memory").is_none());
        assert!(n.child("memory@40000000").is_some());
        n.child_mut("memory@40000000").unwrap().set_empty("x");
        assert!(n.children[0].property("x").is_some());
    }
}
