//! Errors for reading a flattened device tree and for querying or editing the parsed tree.
//!
//! Every variant names one specific way the input or the request is wrong, so a caller (and a
//! person reading a build log) can tell a corrupt blob from a tree that merely lacks a node.
//! Offsets in the parse errors are byte offsets from the start of the blob, ready for `xxd -s`.
//! Format reference: DTSpec v0.4 chapter 5,
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use std::fmt;

/// One of the three blocks a flattened device tree is split into (DTSpec v0.4 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// The memory reservation block (§5.3).
    MemoryReservation,
    /// The structure block (§5.4).
    Structure,
    /// The strings block (§5.5).
    Strings,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Block::MemoryReservation => "memory reservation block",
            Block::Structure => "structure block",
            Block::Strings => "strings block",
        })
    }
}

/// Why a blob could not be parsed, or why a query or edit on the tree could not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The blob is shorter than the header its version requires (36 bytes for v16, 40 for v17).
    HeaderTooShort { len: usize },
    /// The first word is not `0xd00dfeed`: not a flattened device tree.
    BadMagic { magic: u32 },
    /// The blob needs a reader older than version 16 or newer than version 17.
    UnsupportedVersion {
        version: u32,
        last_comp_version: u32,
    },
    /// `totalsize` is smaller than the header or larger than the blob handed to the parser.
    BadTotalSize { total_size: u32, len: usize },
    /// A block's offset and size do not fit inside `totalsize`.
    BlockOutOfRange {
        block: Block,
        offset: u32,
        size: u32,
    },
    /// The memory reservation list runs to `totalsize` without its all-zero terminating entry.
    UnterminatedReservations,
    /// The structure block ends without an `FDT_END` token.
    MissingEnd,
    /// A token's payload (node name, property header or value) runs past the structure block.
    TruncatedStructure { offset: usize },
    /// A structure block word that is not one of the five tokens of DTSpec §5.4.1.
    UnknownToken { offset: usize, token: u32 },
    /// Nesting is broken: `FDT_END_NODE` or `FDT_PROP` outside any node, a second root node, or
    /// `FDT_END` while nodes are still open.
    Unbalanced { offset: usize },
    /// The structure block holds no node at all.
    NoRoot,
    /// Nodes nest deeper than [`crate::MAX_DEPTH`]; refused so that recursive code over the tree
    /// (writing, comparing, dropping) cannot exhaust the stack on hostile input.
    TooDeep { offset: usize },
    /// A node name or a strings block entry has no terminating NUL inside its block.
    UnterminatedName { offset: usize },
    /// A property's name offset lies outside the strings block.
    BadStringOffset { offset: u32 },
    /// A node or property name is not UTF-8 (DTSpec names are a subset of ASCII).
    NonUtf8Name { offset: usize },
    /// No node exists at this path.
    NodeNotFound { path: String },
    /// The operation needs the node's parent, and the path names the root.
    NoParent { path: String },
    /// The node exists but lacks a property the operation needs.
    MissingProperty { path: String, property: String },
    /// A property's value has a length that its meaning does not allow.
    BadPropertyLength {
        path: String,
        property: String,
        len: usize,
    },
    /// `#address-cells`/`#size-cells` that do not fit a `u64` (more than two cells each).
    UnsupportedCells {
        path: String,
        address_cells: u32,
        size_cells: u32,
    },
    /// A value too large for the number of cells the tree gives it.
    ValueDoesNotFit {
        path: String,
        value: u64,
        cells: u32,
    },
    /// A node name outside DTSpec §2.2.1 (1-31 of `0-9a-zA-Z,._+-`) where a bare name is needed.
    InvalidNodeName { name: String },
    /// No node's `reg` starts at this CPU address, where a device was expected.
    NoDeviceAt { address: u64 },
    /// `/cpus` has no CPU at this position (it has `count`).
    NoCpu { index: usize, count: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::HeaderTooShort { len } => {
                write!(f, "blob of {len} bytes is shorter than an FDT header")
            }
            Error::BadMagic { magic } => {
                write!(f, "bad magic {magic:#010x}, expected 0xd00dfeed")
            }
            Error::UnsupportedVersion {
                version,
                last_comp_version,
            } => write!(
                f,
                "unsupported FDT version {version} (last compatible {last_comp_version}); \
                 need version >= 16 and last compatible <= 17"
            ),
            Error::BadTotalSize { total_size, len } => write!(
                f,
                "header totalsize {total_size} does not fit a blob of {len} bytes"
            ),
            Error::BlockOutOfRange {
                block,
                offset,
                size,
            } => write!(
                f,
                "{block} at offset {offset:#x} size {size:#x} lies outside the blob"
            ),
            Error::UnterminatedReservations => {
                f.write_str("memory reservation block has no terminating zero entry")
            }
            Error::MissingEnd => f.write_str("structure block ends without FDT_END"),
            Error::TruncatedStructure { offset } => {
                write!(f, "token at {offset:#x} runs past the structure block")
            }
            Error::UnknownToken { offset, token } => {
                write!(f, "unknown token {token:#x} at {offset:#x}")
            }
            Error::Unbalanced { offset } => {
                write!(f, "unbalanced node nesting at token {offset:#x}")
            }
            Error::NoRoot => f.write_str("structure block has no root node"),
            Error::TooDeep { offset } => write!(
                f,
                "node at {offset:#x} nests deeper than {} levels",
                crate::MAX_DEPTH
            ),
            Error::UnterminatedName { offset } => {
                write!(f, "name at {offset:#x} has no terminating NUL")
            }
            Error::BadStringOffset { offset } => {
                write!(
                    f,
                    "property name offset {offset:#x} is outside the strings block"
                )
            }
            Error::NonUtf8Name { offset } => write!(f, "name at {offset:#x} is not UTF-8"),
            Error::NodeNotFound { path } => write!(f, "no node at {path}"),
            Error::NoParent { path } => write!(f, "{path} has no parent node"),
            Error::MissingProperty { path, property } => {
                write!(f, "{path} has no property {property}")
            }
            Error::BadPropertyLength {
                path,
                property,
                len,
            } => write!(f, "{path}:{property} has invalid length {len}"),
            Error::UnsupportedCells {
                path,
                address_cells,
                size_cells,
            } => write!(
                f,
                "{path}: #address-cells {address_cells} / #size-cells {size_cells} do not fit 64 bits"
            ),
            Error::ValueDoesNotFit { path, value, cells } => {
                write!(f, "{path}: {value:#x} does not fit in {cells} cell(s)")
            }
            Error::InvalidNodeName { name } => write!(f, "invalid node name {name:?}"),
            Error::NoDeviceAt { address } => {
                write!(f, "no node describes a device at {address:#x}")
            }
            Error::NoCpu { index, count } => {
                write!(f, "/cpus has no CPU {index}: it lists {count}")
            }
        }
    }
}

impl std::error::Error for Error {}
