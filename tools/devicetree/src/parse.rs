//! Reading a flattened device tree blob (DTSpec v0.4 chapter 5) into an owned [`DeviceTree`].
//!
//! The blob comes from outside (QEMU's `dumpdtb`, a file on disk), so every offset and length
//! is bounds-checked with slice `get` and checked arithmetic, and every failure becomes an
//! [`Error`] rather than a panic. Nesting is tracked with an explicit stack, not recursion, and
//! capped at [`MAX_DEPTH`]. Spec:
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use crate::error::{Block, Error};
use crate::{DeviceTree, MAX_DEPTH, Node, Property, Reservation};

/// `magic` of every FDT header (§5.2).
pub(crate) const FDT_MAGIC: u32 = 0xd00d_feed;
/// Structure block tokens (§5.4.1).
pub(crate) const FDT_BEGIN_NODE: u32 = 0x1;
pub(crate) const FDT_END_NODE: u32 = 0x2;
pub(crate) const FDT_PROP: u32 = 0x3;
pub(crate) const FDT_NOP: u32 = 0x4;
pub(crate) const FDT_END: u32 = 0x9;
/// Header length of version 17, which added `size_dt_struct`; version 16 headers lack it.
pub(crate) const HEADER_LEN_V17: usize = 40;
const HEADER_LEN_V16: usize = 36;

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

fn be64(bytes: &[u8], offset: usize) -> Option<u64> {
    let word = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_be_bytes(word.try_into().ok()?))
}

/// Rounds up to the next token boundary; tokens are 4-byte aligned (§5.4.1).
fn align4(offset: usize) -> usize {
    offset.saturating_add(3) & !3
}

/// The `offset..offset+size` range of a block, if it lies within `total`.
fn block_range(
    block: Block,
    offset: u32,
    size: u32,
    total: usize,
) -> Result<std::ops::Range<usize>, Error> {
    let start = offset as usize;
    match start.checked_add(size as usize) {
        Some(end) if end <= total => Ok(start..end),
        _ => Err(Error::BlockOutOfRange {
            block,
            offset,
            size,
        }),
    }
}

impl DeviceTree {
    /// Parses a flattened device tree blob.
    ///
    /// Accepts versions 16 and 17 (anything whose `last_comp_version` is at most 17). Bytes
    /// after `totalsize` are ignored, as are `FDT_NOP` tokens and anything after `FDT_END`.
    pub fn parse(blob: &[u8]) -> Result<DeviceTree, Error> {
        let magic = be32(blob, 0).ok_or(Error::HeaderTooShort { len: blob.len() })?;
        if magic != FDT_MAGIC {
            return Err(Error::BadMagic { magic });
        }
        let field = |index: usize| be32(blob, index * 4);
        let (Some(version), Some(last_comp_version)) = (field(5), field(6)) else {
            return Err(Error::HeaderTooShort { len: blob.len() });
        };
        if version < 16 || last_comp_version > 17 {
            return Err(Error::UnsupportedVersion {
                version,
                last_comp_version,
            });
        }
        let header_len = if version >= 17 {
            HEADER_LEN_V17
        } else {
            HEADER_LEN_V16
        };
        if blob.len() < header_len {
            return Err(Error::HeaderTooShort { len: blob.len() });
        }
        let word = |index: usize| field(index).unwrap_or(0);
        let total_size = word(1);
        if (total_size as usize) < header_len || total_size as usize > blob.len() {
            return Err(Error::BadTotalSize {
                total_size,
                len: blob.len(),
            });
        }
        let total = total_size as usize;
        let blob = blob.get(..total).unwrap_or(blob);
        let off_dt_struct = word(2);
        let off_dt_strings = word(3);
        let off_mem_rsvmap = word(4);
        let boot_cpuid = word(7);
        let size_dt_strings = word(8);
        // Version 16 does not record the structure block's size; it may run up to totalsize.
        let size_dt_struct = if version >= 17 {
            word(9)
        } else {
            total_size.saturating_sub(off_dt_struct)
        };

        let strings = block_range(Block::Strings, off_dt_strings, size_dt_strings, total)?;
        let structure = block_range(Block::Structure, off_dt_struct, size_dt_struct, total)?;
        let reservations = parse_reservations(blob, off_mem_rsvmap)?;
        let root = parse_structure(
            blob.get(structure.clone()).unwrap_or_default(),
            structure.start,
            blob.get(strings.clone()).unwrap_or_default(),
            strings.start,
        )?;
        Ok(DeviceTree {
            boot_cpuid,
            reservations,
            root,
        })
    }
}

/// Reads 16-byte `{address, size}` entries up to the all-zero terminator (§5.3.2).
fn parse_reservations(blob: &[u8], offset: u32) -> Result<Vec<Reservation>, Error> {
    let start = offset as usize;
    if start.checked_add(16).is_none_or(|end| end > blob.len()) {
        return Err(Error::BlockOutOfRange {
            block: Block::MemoryReservation,
            offset,
            size: 16,
        });
    }
    let mut reservations = Vec::new();
    let mut at = start;
    loop {
        let (Some(address), Some(size)) = (be64(blob, at), be64(blob, at.saturating_add(8))) else {
            return Err(Error::UnterminatedReservations);
        };
        if address == 0 && size == 0 {
            return Ok(reservations);
        }
        reservations.push(Reservation { address, size });
        at = at.saturating_add(16);
    }
}

/// Walks the structure block's tokens (§5.4), building the node tree.
///
/// `base` and `strings_base` are the blocks' offsets in the blob, used only for error offsets.
fn parse_structure(
    block: &[u8],
    base: usize,
    strings: &[u8],
    strings_base: usize,
) -> Result<Node, Error> {
    // Open nodes, innermost last; a node moves into its parent when its FDT_END_NODE arrives.
    let mut open: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut pos = 0usize;
    loop {
        let token_at = base + pos;
        let Some(token) = be32(block, pos) else {
            return Err(if pos >= block.len() {
                Error::MissingEnd
            } else {
                Error::TruncatedStructure { offset: token_at }
            });
        };
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                if root.is_some() {
                    return Err(Error::Unbalanced { offset: token_at });
                }
                if open.len() >= MAX_DEPTH {
                    return Err(Error::TooDeep { offset: token_at });
                }
                let name_at = base + pos;
                let rest = block.get(pos..).unwrap_or_default();
                let len = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(Error::UnterminatedName { offset: name_at })?;
                let name = std::str::from_utf8(rest.get(..len).unwrap_or_default())
                    .map_err(|_| Error::NonUtf8Name { offset: name_at })?;
                open.push(Node::new(name));
                pos = align4(pos + len + 1);
            }
            FDT_END_NODE => {
                let node = open.pop().ok_or(Error::Unbalanced { offset: token_at })?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            FDT_PROP => {
                let truncated = Error::TruncatedStructure { offset: token_at };
                let (Some(len), Some(name_offset)) = (be32(block, pos), be32(block, pos + 4))
                else {
                    return Err(truncated);
                };
                pos += 8;
                let end = pos.checked_add(len as usize).ok_or(truncated.clone())?;
                let value = block.get(pos..end).ok_or(truncated)?;
                let node = open
                    .last_mut()
                    .ok_or(Error::Unbalanced { offset: token_at })?;
                let name = string_at(strings, strings_base, name_offset)?;
                node.properties.push(Property {
                    name: name.to_owned(),
                    value: value.to_vec(),
                });
                pos = align4(end);
            }
            FDT_NOP => {}
            FDT_END => {
                if !open.is_empty() {
                    return Err(Error::Unbalanced { offset: token_at });
                }
                return root.ok_or(Error::NoRoot);
            }
            token => {
                return Err(Error::UnknownToken {
                    offset: token_at,
                    token,
                });
            }
        }
    }
}

/// The NUL-terminated property name at `offset` in the strings block (§5.5).
fn string_at(strings: &[u8], strings_base: usize, offset: u32) -> Result<&str, Error> {
    let start = offset as usize;
    let rest = match strings.get(start..) {
        Some(rest) if !rest.is_empty() => rest,
        _ => return Err(Error::BadStringOffset { offset }),
    };
    let at = strings_base + start;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(Error::UnterminatedName { offset: at })?;
    std::str::from_utf8(rest.get(..len).unwrap_or_default())
        .map_err(|_| Error::NonUtf8Name { offset: at })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Assembles a v17 blob from raw blocks, laid out header, reservations, structure, strings.
    fn blob(rsv: &[u8], structure: &[u32], strings: &[u8]) -> Vec<u8> {
        let structure: Vec<u8> = structure.iter().flat_map(|w| w.to_be_bytes()).collect();
        let off_rsv = HEADER_LEN_V17;
        let off_struct = off_rsv + rsv.len();
        let off_strings = off_struct + structure.len();
        let total = off_strings + strings.len();
        let header = [
            FDT_MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17,
            16,
            0,
            strings.len() as u32,
            structure.len() as u32,
        ];
        let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.extend_from_slice(rsv);
        out.extend_from_slice(&structure);
        out.extend_from_slice(strings);
        out
    }

    const NO_RSV: [u8; 16] = [0; 16];

    #[test]
    fn minimal_tree_parses() {
        let b = blob(&NO_RSV, &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        let tree = DeviceTree::parse(&b).unwrap();
        assert_eq!(tree.root, Node::new(""));
        assert!(tree.reservations.is_empty());
    }

    #[test]
    fn nops_and_properties_and_reservations() {
        let mut rsv = Vec::new();
        rsv.extend_from_slice(&0x4000_0000u64.to_be_bytes());
        rsv.extend_from_slice(&0x1000u64.to_be_bytes());
        rsv.extend_from_slice(&NO_RSV);
        // "a" is a child named "a"; property "x" = <5> at strings offset 0.
        let words = [
            FDT_NOP,
            FDT_BEGIN_NODE,
            0,
            FDT_PROP,
            4,
            0,
            5,
            FDT_BEGIN_NODE,
            u32::from_be_bytes(*b"a\0\0\0"),
            FDT_NOP,
            FDT_END_NODE,
            FDT_END_NODE,
            FDT_END,
        ];
        let tree = DeviceTree::parse(&blob(&rsv, &words, b"x\0")).unwrap();
        assert_eq!(
            tree.reservations,
            [Reservation {
                address: 0x4000_0000,
                size: 0x1000
            }]
        );
        assert_eq!(tree.root.u32_property("x"), Some(5));
        assert_eq!(tree.root.children, [Node::new("a")]);
    }

    fn parse_err(b: &[u8]) -> Error {
        DeviceTree::parse(b).unwrap_err()
    }

    fn set_word(b: &mut [u8], index: usize, value: u32) {
        b[index * 4..index * 4 + 4].copy_from_slice(&value.to_be_bytes());
    }

    #[test]
    fn header_errors() {
        let good = blob(&NO_RSV, &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        assert_eq!(parse_err(&good[..2]), Error::HeaderTooShort { len: 2 });
        assert_eq!(parse_err(&good[..39]), Error::HeaderTooShort { len: 39 });

        let mut b = good.clone();
        set_word(&mut b, 0, 0xfeed_d00d);
        assert_eq!(parse_err(&b), Error::BadMagic { magic: 0xfeed_d00d });

        let mut b = good.clone();
        set_word(&mut b, 5, 15);
        assert!(matches!(
            parse_err(&b),
            Error::UnsupportedVersion { version: 15, .. }
        ));
        let mut b = good.clone();
        set_word(&mut b, 6, 18);
        assert!(matches!(
            parse_err(&b),
            Error::UnsupportedVersion {
                last_comp_version: 18,
                ..
            }
        ));

        let mut b = good.clone();
        set_word(&mut b, 1, good.len() as u32 + 1);
        assert!(matches!(parse_err(&b), Error::BadTotalSize { .. }));
        let mut b = good.clone();
        set_word(&mut b, 1, 8);
        assert!(matches!(parse_err(&b), Error::BadTotalSize { .. }));
    }

    #[test]
    fn block_errors() {
        let good = blob(&NO_RSV, &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"x\0");
        let mut b = good.clone();
        set_word(&mut b, 2, u32::MAX);
        assert!(matches!(
            parse_err(&b),
            Error::BlockOutOfRange {
                block: Block::Structure,
                ..
            }
        ));
        let mut b = good.clone();
        set_word(&mut b, 8, 100);
        assert!(matches!(
            parse_err(&b),
            Error::BlockOutOfRange {
                block: Block::Strings,
                ..
            }
        ));
        let mut b = good.clone();
        set_word(&mut b, 4, good.len() as u32 - 8);
        assert!(matches!(
            parse_err(&b),
            Error::BlockOutOfRange {
                block: Block::MemoryReservation,
                ..
            }
        ));
        // A reservation list that never terminates before totalsize.
        let b = blob(&[1; 16], &[], b"");
        assert_eq!(parse_err(&b), Error::UnterminatedReservations);
    }

    #[test]
    fn structure_errors() {
        let cases: &[(&[u32], &[u8], Error)] = &[
            (&[FDT_BEGIN_NODE, 0, FDT_END_NODE], b"", Error::MissingEnd),
            (&[FDT_END], b"", Error::NoRoot),
            (
                &[FDT_END_NODE, FDT_END],
                b"",
                Error::Unbalanced { offset: 56 },
            ),
            (
                &[FDT_PROP, 0, 0, FDT_END],
                b"x\0",
                Error::Unbalanced { offset: 56 },
            ),
            (
                &[FDT_BEGIN_NODE, 0, FDT_END],
                b"",
                Error::Unbalanced { offset: 64 },
            ),
            (
                &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_BEGIN_NODE, 0],
                b"",
                Error::Unbalanced { offset: 68 },
            ),
            (
                &[FDT_BEGIN_NODE, 0, 7, FDT_END],
                b"",
                Error::UnknownToken {
                    offset: 64,
                    token: 7,
                },
            ),
            (
                &[FDT_BEGIN_NODE, 0x6161_6161],
                b"",
                Error::UnterminatedName { offset: 60 },
            ),
            (
                &[FDT_BEGIN_NODE, 0xff00_0000, FDT_END_NODE, FDT_END],
                b"",
                Error::NonUtf8Name { offset: 60 },
            ),
            (
                &[FDT_BEGIN_NODE, 0, FDT_PROP, 8, 0, 0],
                b"x\0",
                Error::TruncatedStructure { offset: 64 },
            ),
            (
                &[FDT_BEGIN_NODE, 0, FDT_PROP, 0, 2, FDT_END_NODE, FDT_END],
                b"x\0",
                Error::BadStringOffset { offset: 2 },
            ),
            (
                &[FDT_BEGIN_NODE, 0, FDT_PROP, 0, 0, FDT_END_NODE, FDT_END],
                b"xy",
                Error::UnterminatedName { offset: 84 },
            ),
        ];
        for (words, strings, want) in cases {
            let b = blob(&NO_RSV, words, strings);
            assert_eq!(&parse_err(&b), want, "structure {words:x?}");
        }
        // A token word cut in half by the end of the structure block.
        let mut b = blob(&NO_RSV, &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        set_word(&mut b, 9, 14);
        assert_eq!(parse_err(&b), Error::TruncatedStructure { offset: 68 });
    }

    #[test]
    fn nesting_is_capped() {
        let deep = MAX_DEPTH + 1;
        let mut words = Vec::new();
        for _ in 0..deep {
            words.extend([FDT_BEGIN_NODE, 0]);
        }
        words.extend(std::iter::repeat_n(FDT_END_NODE, deep));
        words.push(FDT_END);
        assert!(matches!(
            parse_err(&blob(&NO_RSV, &words, b"")),
            Error::TooDeep { .. }
        ));
        // Exactly MAX_DEPTH levels is fine.
        let words: Vec<u32> = words[2..words.len() - 2]
            .iter()
            .copied()
            .chain([FDT_END])
            .collect();
        assert!(DeviceTree::parse(&blob(&NO_RSV, &words, b"")).is_ok());
    }

    #[test]
    fn version_16_without_struct_size() {
        let mut b = blob(&NO_RSV, &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        set_word(&mut b, 5, 16);
        set_word(&mut b, 9, 0);
        assert!(DeviceTree::parse(&b).is_ok());
    }

    #[test]
    fn trailing_bytes_after_totalsize_are_ignored() {
        let mut b = blob(&NO_RSV, &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        b.extend_from_slice(&[0xff; 64]);
        assert!(DeviceTree::parse(&b).is_ok());
    }
}
