//! Reading the firmware's device tree at boot: the RAM banks and the CPUs, without allocating
//! and without panicking, whatever the bytes hold.
//!
//! The tree comes from firmware (QEMU, the Raspberry Pi's `start4.elf` and its overlays), which
//! the hypervisor does not control: a malformed or unexpected tree must end in an error the
//! kernel can report, never in a panic (the `fdt` crate the kernel used before asserts on
//! structures it does not expect, and did so on the Pi 4's tree). So this reader touches the
//! bytes only through bounds-checked accessors and returns a [`DtbError`] naming what is wrong.
//! Format: DTSpec v0.4 chapter 5, the flattened devicetree
//! (<https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>).
//!
//! What it reads:
//! - RAM: the `reg` of every node directly under the root whose `device_type` is `"memory"`, in
//!   the root's `#address-cells`/`#size-cells` (defaults 2 and 1); empty banks are skipped.
//! - CPUs: the first address of the `reg` of every node directly under `/cpus` whose
//!   `device_type` is `"cpu"` (its MPIDR affinity fields), in `/cpus`'s `#address-cells`.

/// The flattened devicetree magic.
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Tokens of the structure block.
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Bytes of the header the reader needs (through `size_dt_struct`).
pub const HEADER_LEN: usize = 40;
/// The largest tree accepted (QEMU pads its trees to 1 MiB; the Pi's are tens of KiB).
pub const MAX_DTB_LEN: usize = 8 << 20;
/// Deepest node nesting accepted (as Linux's unflattener).
const MAX_DEPTH: usize = 64;
/// Most RAM banks and CPUs recorded; more are counted and ignored.
pub const MAX_BANKS: usize = 16;
/// See [`MAX_BANKS`].
pub const MAX_CPUS: usize = 64;

/// What is wrong with a tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// Fewer bytes than a header.
    NoHeader,
    /// The magic number is not `0xd00dfeed`.
    BadMagic(u32),
    /// `last_comp_version` is newer than the version 17 layout this reader knows.
    UnsupportedVersion(u32),
    /// `totalsize` is smaller than a header or larger than [`MAX_DTB_LEN`].
    BadTotalSize(u32),
    /// A block (`what`) lies outside the tree.
    BlockOutOfBounds(&'static str),
    /// The structure block ends in the middle of a token, a name or a property.
    Truncated {
        /// Offset in the structure block.
        offset: usize,
    },
    /// A token that does not belong where it is (an unknown token, an END_NODE without a node,
    /// a property outside every node, a second root).
    BadToken {
        /// The token.
        token: u32,
        /// Offset in the structure block.
        offset: usize,
    },
    /// A property name offset outside the strings block, or a name without its NUL.
    BadPropertyName {
        /// Offset in the structure block.
        offset: usize,
    },
    /// Nodes nested deeper than 64.
    TooDeep,
    /// The structure block ends before the root node is closed.
    Unterminated,
    /// `#address-cells` or `#size-cells` is not a single cell of at most 2.
    BadCells(&'static str),
    /// A `reg` is not a whole number of (address, size) entries.
    BadReg(&'static str),
    /// No memory node has a non-empty bank.
    NoMemory,
    /// `/cpus` lists no CPU.
    NoCpus,
}

impl DtbError {
    /// A short description for the boot log.
    pub const fn describe(&self) -> &'static str {
        match self {
            Self::NoHeader => "shorter than a header",
            Self::BadMagic(_) => "no devicetree magic (is x0 a DTB?)",
            Self::UnsupportedVersion(_) => "a devicetree version this reader does not know",
            Self::BadTotalSize(_) => "a total size that cannot be right",
            Self::BlockOutOfBounds(_) => "a block outside the tree",
            Self::Truncated { .. } => "the structure block ends mid-token",
            Self::BadToken { .. } => "a token out of place in the structure block",
            Self::BadPropertyName { .. } => "a property name outside the strings block",
            Self::TooDeep => "nodes nested deeper than 64",
            Self::Unterminated => "the root node is never closed",
            Self::BadCells(_) => "a #address-cells or #size-cells that is not 1 or 2",
            Self::BadReg(_) => "a reg that is not whole (address, size) entries",
            Self::NoMemory => "no memory node with a non-empty bank",
            Self::NoCpus => "no CPU under /cpus",
        }
    }
}

/// What the kernel takes from the firmware's tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirmwareFacts {
    /// RAM banks, (base, size), in tree order.
    pub ram: heapless::Vec<(u64, u64), MAX_BANKS>,
    /// Banks beyond [`MAX_BANKS`], ignored.
    pub ignored_banks: usize,
    /// The MPIDR affinity fields of each CPU, in tree order.
    pub cpus: heapless::Vec<u64, MAX_CPUS>,
    /// CPUs beyond [`MAX_CPUS`], ignored.
    pub ignored_cpus: usize,
}

/// A big-endian u32 at `offset` of `bytes`, if there are four bytes there.
fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// The tree's length from its header (`totalsize`), checked against [`MAX_DTB_LEN`]: how many
/// bytes the kernel may then read at the tree's address.
pub fn total_size(header: &[u8]) -> Result<usize, DtbError> {
    let magic = be32(header, 0).ok_or(DtbError::NoHeader)?;
    if magic != FDT_MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let total = be32(header, 4).ok_or(DtbError::NoHeader)?;
    let len = total as usize;
    if !(HEADER_LEN..=MAX_DTB_LEN).contains(&len) {
        return Err(DtbError::BadTotalSize(total));
    }
    Ok(len)
}

/// The bytes of the block at header fields `offset_field` and `size_field` (or `len` bytes from
/// `offset_field` to the tree's end when `size_field` is `None`).
fn block<'a>(
    tree: &'a [u8],
    offset_field: usize,
    size_field: usize,
    what: &'static str,
) -> Result<&'a [u8], DtbError> {
    let offset = be32(tree, offset_field).ok_or(DtbError::NoHeader)? as usize;
    let size = be32(tree, size_field).ok_or(DtbError::NoHeader)? as usize;
    offset
        .checked_add(size)
        .and_then(|end| tree.get(offset..end))
        .ok_or(DtbError::BlockOutOfBounds(what))
}

/// A node being read: where it is and what has been seen of it.
#[derive(Clone, Copy, Default)]
struct OpenNode<'a> {
    /// Directly under the root, named `cpus`.
    is_cpus: bool,
    /// Directly under `/cpus`.
    in_cpus: bool,
    /// Directly under the root.
    top_level: bool,
    device_type: Option<&'a [u8]>,
    reg: Option<&'a [u8]>,
    /// `#address-cells` / `#size-cells` this node gives its children.
    address_cells: Option<u32>,
    size_cells: Option<u32>,
}

/// Reads the RAM banks and CPUs of the tree in `dtb` (at least `total_size` bytes).
pub fn read(dtb: &[u8]) -> Result<FirmwareFacts, DtbError> {
    let len = total_size(dtb)?;
    let tree = dtb.get(..len).ok_or(DtbError::BlockOutOfBounds("tree"))?;
    let version = be32(tree, 20).ok_or(DtbError::NoHeader)?;
    if be32(tree, 24).ok_or(DtbError::NoHeader)? > 17 || version < 16 {
        return Err(DtbError::UnsupportedVersion(version));
    }
    let structs = block(tree, 8, 36, "structure block")?;
    let strings = block(tree, 12, 32, "strings block")?;

    let mut facts = FirmwareFacts::default();
    // The root's and /cpus's cells, once their properties are read (a node's properties come
    // before its children).
    let (mut root_cells, mut cpus_address_cells) = ((2, 1), 2);
    let mut stack: heapless::Vec<OpenNode<'_>, MAX_DEPTH> = heapless::Vec::new();
    let mut root_seen = false;
    let mut offset = 0;
    loop {
        let token_at = offset;
        let token = be32(structs, offset).ok_or(DtbError::Truncated { offset })?;
        offset += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name_len = structs
                    .get(offset..)
                    .and_then(|rest| rest.iter().position(|&byte| byte == 0))
                    .ok_or(DtbError::Truncated { offset })?;
                let name = &structs[offset..offset + name_len];
                offset = align4(offset + name_len + 1);
                let depth = stack.len();
                if depth == 0 && root_seen {
                    return Err(DtbError::BadToken {
                        token,
                        offset: token_at,
                    });
                }
                root_seen = true;
                let parent_is_cpus = stack.last().is_some_and(|parent| parent.is_cpus);
                let node = OpenNode {
                    is_cpus: depth == 1 && name == b"cpus",
                    in_cpus: depth == 2 && parent_is_cpus,
                    top_level: depth == 1,
                    ..OpenNode::default()
                };
                stack.push(node).map_err(|_| DtbError::TooDeep)?;
            }
            FDT_END_NODE => {
                let node = stack.pop().ok_or(DtbError::BadToken {
                    token,
                    offset: token_at,
                })?;
                close(&node, root_cells, cpus_address_cells, &mut facts)?;
                if stack.is_empty() {
                    break;
                }
            }
            FDT_PROP => {
                let value_len = be32(structs, offset).ok_or(DtbError::Truncated { offset })?;
                let name_offset =
                    be32(structs, offset + 4).ok_or(DtbError::Truncated { offset })? as usize;
                let value_at = offset + 8;
                let value = value_at
                    .checked_add(value_len as usize)
                    .and_then(|end| structs.get(value_at..end))
                    .ok_or(DtbError::Truncated { offset })?;
                offset = align4(value_at + value.len());
                let name = strings
                    .get(name_offset..)
                    .and_then(|rest| Some(&rest[..rest.iter().position(|&byte| byte == 0)?]))
                    .ok_or(DtbError::BadPropertyName { offset: token_at })?;
                let depth = stack.len();
                let node = stack.last_mut().ok_or(DtbError::BadToken {
                    token,
                    offset: token_at,
                })?;
                // Cells matter only where this reader uses them (the root's for memory,
                // /cpus's for CPUs); other nodes may have any (a PCIe bridge has 3).
                let uses_cells = depth == 1 || node.is_cpus;
                match name {
                    b"device_type" => node.device_type = Some(value),
                    b"reg" => node.reg = Some(value),
                    b"#address-cells" if uses_cells => {
                        node.address_cells = Some(cells(value, name)?)
                    }
                    b"#size-cells" if uses_cells => node.size_cells = Some(cells(value, name)?),
                    _ => {}
                }
                if depth == 1 {
                    root_cells = (
                        node.address_cells.unwrap_or(2),
                        node.size_cells.unwrap_or(1),
                    );
                } else if node.is_cpus {
                    cpus_address_cells = node.address_cells.unwrap_or(2);
                }
            }
            FDT_NOP => {}
            FDT_END if stack.is_empty() && root_seen => break,
            FDT_END => return Err(DtbError::Unterminated),
            _ => {
                return Err(DtbError::BadToken {
                    token,
                    offset: token_at,
                });
            }
        }
    }
    if facts.ram.is_empty() {
        return Err(DtbError::NoMemory);
    }
    if facts.cpus.is_empty() {
        return Err(DtbError::NoCpus);
    }
    Ok(facts)
}

const fn align4(offset: usize) -> usize {
    (offset + 3) & !3
}

/// A `#address-cells` or `#size-cells` value: one cell, at most 2 (64-bit addresses).
fn cells(value: &[u8], name: &[u8]) -> Result<u32, DtbError> {
    let what = if name == b"#size-cells" {
        "#size-cells"
    } else {
        "#address-cells"
    };
    match (value.len(), be32(value, 0)) {
        (4, Some(cells)) if cells <= 2 => Ok(cells),
        _ => Err(DtbError::BadCells(what)),
    }
}

/// A number of `cells` big-endian cells at the front of `bytes`.
fn read_cells(bytes: &[u8], cells: u32) -> Option<u64> {
    (0..cells as usize).try_fold(0u64, |value, cell| {
        Some((value << 32) | u64::from(be32(bytes, cell * 4)?))
    })
}

/// Records what a closed node contributes: RAM banks or a CPU.
fn close(
    node: &OpenNode<'_>,
    (address_cells, size_cells): (u32, u32),
    cpus_address_cells: u32,
    facts: &mut FirmwareFacts,
) -> Result<(), DtbError> {
    let device_type = node
        .device_type
        .map(|value| value.strip_suffix(b"\0").unwrap_or(value));
    if node.top_level && device_type == Some(b"memory") {
        let entry = ((address_cells + size_cells) * 4) as usize;
        let reg = node.reg.unwrap_or_default();
        if entry == 0 || !reg.len().is_multiple_of(entry) {
            return Err(DtbError::BadReg("memory"));
        }
        for bank in reg.chunks_exact(entry) {
            let base = read_cells(bank, address_cells).ok_or(DtbError::BadReg("memory"))?;
            let size = bank
                .get(address_cells as usize * 4..)
                .and_then(|rest| read_cells(rest, size_cells))
                .ok_or(DtbError::BadReg("memory"))?;
            if size == 0 {
                continue;
            }
            if facts.ram.push((base, size)).is_err() {
                facts.ignored_banks += 1;
            }
        }
    } else if node.in_cpus && device_type == Some(b"cpu") {
        let reg = node.reg.unwrap_or_default();
        if cpus_address_cells == 0 || reg.len() < cpus_address_cells as usize * 4 {
            return Err(DtbError::BadReg("cpu"));
        }
        let mpidr = read_cells(reg, cpus_address_cells).ok_or(DtbError::BadReg("cpu"))?;
        if facts.cpus.push(mpidr).is_err() {
            facts.ignored_cpus += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
