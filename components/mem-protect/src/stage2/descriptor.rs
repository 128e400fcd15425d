//! Stage-2 descriptors for a 4 KiB granule, as the Arm ARM (DDI 0487) lays them out in
//! "VMSAv8-64 translation table format descriptors" and "Stage 2 memory type and Cacheability
//! attributes when FEAT_S2FWB is disabled", plus the annotated invalid entries this module adds.
//!
//! Only the bits the host's identity map needs are written; [`decode`] calls anything else
//! [`Descriptor::Unknown`], so a table scribbled on by something else is reported, not walked.

use super::memory_map::RegionKind;

/// Bit 0: the descriptor is valid. A walk that reads an invalid descriptor stops with a
/// translation fault and ignores bits 63:1, which software may use (annotations live there).
pub const VALID: u64 = 1 << 0;
/// Bit 1: at levels 0 to 2, 1 = table descriptor and 0 = block descriptor; at level 3,
/// 1 = page descriptor (0 is reserved and treated as invalid).
pub const TABLE_OR_PAGE: u64 = 1 << 1;
/// Output address (or next-level table address), bits 47:12. A block's address is aligned to
/// its size: bits 29:12 of a level-1 block and 20:12 of a level-2 block are RES0.
pub const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// MemAttr[3:0], bits 5:2 (stage 2, FEAT_S2FWB off): 0b11_11 = Normal, outer and inner
/// Write-Back Cacheable. Stage-1 attributes still combine with it, so the host's own choice of
/// a weaker type (non-cacheable, device) wins.
pub const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
/// MemAttr[3:0] = 0b00_01: Device-nGnRE.
pub const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
/// MemAttr field mask, bits 5:2.
pub const MEMATTR_MASK: u64 = 0b1111 << 2;
/// S2AP[1:0], bits 7:6: 0b11 = read and write.
pub const S2AP_READ_WRITE: u64 = 0b11 << 6;
/// S2AP field mask.
pub const S2AP_MASK: u64 = 0b11 << 6;
/// SH[1:0], bits 9:8: 0b11 = Inner Shareable. Ignored for Device memory (always treated as
/// Outer Shareable), so device mappings leave it 0.
pub const SH_INNER: u64 = 0b11 << 8;
/// SH field mask.
pub const SH_MASK: u64 = 0b11 << 8;
/// AF, bit 10: the access flag. Set, so the first access does not take an access-flag fault
/// (the host stage 2 does not track accesses).
pub const AF: u64 = 1 << 10;
/// XN, bit 54 (XN[1] of XN[1:0] with FEAT_XNX): execute-never at EL1 and EL0. With XN[0]
/// (bit 53) clear this reads the same with or without FEAT_XNX.
pub const XN: u64 = 1 << 54;
/// Every attribute bit a leaf written here may carry; splitting a block copies these.
const LEAF_ATTRIBUTES: u64 = MEMATTR_MASK | S2AP_MASK | SH_MASK | AF | XN;

/// Annotation type field, bits 4:1 of an invalid descriptor: 0b0001 = owner annotation.
/// Non-zero, so an annotated entry is never mistaken for an empty (all-zero) one.
const ANNOTATION_TYPE_OWNER: u64 = 0b0001 << 1;
const ANNOTATION_TYPE_MASK: u64 = 0b1111 << 1;
/// Owner id of an annotated entry, bits 63:32.
const ANNOTATION_OWNER_SHIFT: u32 = 32;
/// Bits 31:5 of an annotation are reserved and zero.
const ANNOTATION_RESERVED: u64 = 0xffff_ffe0;

/// Who owns a page the host may not touch, as the ownership tracker names it. Opaque here:
/// it is written into, and read back from, annotated invalid entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(pub u32);

/// The stage-2 attributes of a leaf (block or page), decoded field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// MemAttr, bits 3:0 of the field.
    pub mem_attr: u8,
    /// S2AP: bit 0 = readable, bit 1 = writable.
    pub s2ap: u8,
    /// SH, the shareability field.
    pub sh: u8,
    /// The access flag.
    pub af: bool,
    /// Execute-never.
    pub xn: bool,
}

impl Attributes {
    /// Host RAM: Normal Write-Back, Inner Shareable, read/write/execute.
    pub const MEMORY: Self = Self {
        mem_attr: 0b1111,
        s2ap: 0b11,
        sh: 0b11,
        af: true,
        xn: false,
    };
    /// A guest's shared alias of one of its pages (seed 004): Normal Write-Back, Inner
    /// Shareable, read/write, never executable.
    pub const SHARED: Self = Self {
        mem_attr: 0b1111,
        s2ap: 0b11,
        sh: 0b11,
        af: true,
        xn: true,
    };
    /// Host MMIO: Device-nGnRE, read/write, never executable.
    pub const DEVICE: Self = Self {
        mem_attr: 0b0001,
        s2ap: 0b11,
        sh: 0b00,
        af: true,
        xn: true,
    };

    /// Whether a leaf with these attributes lets `access` through.
    pub const fn permits(&self, access: super::Access) -> bool {
        match access {
            super::Access::Read => self.s2ap & 0b01 != 0,
            super::Access::Write => self.s2ap & 0b10 != 0,
            super::Access::Fetch => !self.xn && self.s2ap & 0b01 != 0,
        }
    }

    /// The attributes of leaf descriptor `desc`.
    pub const fn of(desc: u64) -> Self {
        Self {
            mem_attr: ((desc & MEMATTR_MASK) >> 2) as u8,
            s2ap: ((desc & S2AP_MASK) >> 6) as u8,
            sh: ((desc & SH_MASK) >> 8) as u8,
            af: desc & AF != 0,
            xn: desc & XN != 0,
        }
    }
}

/// What one descriptor is, at the level it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    /// All zero: nothing mapped, nothing recorded.
    Empty,
    /// Invalid, recording that the page belongs to someone other than the host.
    Annotated(OwnerId),
    /// A table descriptor (levels 0 to 2), with the next-level table's physical address.
    Table(u64),
    /// A valid block (levels 1 and 2) or page (level 3) descriptor.
    Leaf(u64),
    /// Anything this module never writes (a level-0 block, a reserved level-3 encoding, an
    /// invalid entry that is not an annotation).
    Unknown,
}

/// Bits of the input address translated below `level`: 39 at level 0 (512 GiB entries),
/// 30 at level 1 (1 GiB), 21 at level 2 (2 MiB), 12 at level 3 (4 KiB).
pub const fn shift(level: u8) -> u32 {
    12 + 9 * (3 - level as u32)
}

/// Bytes of input address space one entry at `level` covers.
pub const fn entry_size(level: u8) -> u64 {
    1 << shift(level)
}

/// The index of the entry for `ipa` in a table at `level`.
pub const fn index(ipa: u64, level: u8) -> usize {
    ((ipa >> shift(level)) & 0x1ff) as usize
}

/// `ipa` rounded down to the start of the entry at `level` that covers it.
pub const fn align_down(ipa: u64, level: u8) -> u64 {
    ipa & !(entry_size(level) - 1)
}

/// Decodes descriptor `desc` read from a table at `level` (0 to 3).
pub const fn decode(desc: u64, level: u8) -> Descriptor {
    if desc == 0 {
        return Descriptor::Empty;
    }
    if desc & VALID == 0 {
        return if desc & ANNOTATION_TYPE_MASK == ANNOTATION_TYPE_OWNER
            && desc & ANNOTATION_RESERVED == 0
        {
            Descriptor::Annotated(OwnerId((desc >> ANNOTATION_OWNER_SHIFT) as u32))
        } else {
            Descriptor::Unknown
        };
    }
    match (level, desc & TABLE_OR_PAGE != 0) {
        (0..=2, true) => Descriptor::Table(desc & ADDRESS_MASK),
        (1 | 2, false) | (3, true) => Descriptor::Leaf(desc),
        _ => Descriptor::Unknown,
    }
}

/// A table descriptor pointing at the table at physical address `pa` (4 KiB aligned). The
/// stage-1-only hierarchical attributes (bits 63:59) stay zero.
pub const fn table(pa: u64) -> u64 {
    (pa & ADDRESS_MASK) | TABLE_OR_PAGE | VALID
}

/// A leaf at `level` mapping output address `oa` with the host's attributes for `kind`.
pub const fn leaf(oa: u64, level: u8, kind: RegionKind) -> u64 {
    let attributes = match kind {
        RegionKind::Memory => MEMATTR_NORMAL_WB | S2AP_READ_WRITE | SH_INNER | AF,
        RegionKind::Device => MEMATTR_DEVICE_NGNRE | S2AP_READ_WRITE | AF | XN,
    };
    leaf_with(attributes, oa, level)
}

/// A page (level 3) mapping `oa` as a guest's shared alias ([`Attributes::SHARED`]): what the
/// host may write, so never executable through the alias.
pub const fn shared_page(oa: u64) -> u64 {
    leaf_with(
        MEMATTR_NORMAL_WB | S2AP_READ_WRITE | SH_INNER | AF | XN,
        oa,
        3,
    )
}

/// A leaf at `level` mapping `oa` with the attributes of leaf `template` (splitting a block).
pub const fn leaf_like(template: u64, oa: u64, level: u8) -> u64 {
    leaf_with(template & LEAF_ATTRIBUTES, oa, level)
}

const fn leaf_with(attributes: u64, oa: u64, level: u8) -> u64 {
    let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
    (oa & ADDRESS_MASK & !(entry_size(level) - 1)) | attributes | kind | VALID
}

/// The output address of leaf `desc` at `level`, that is, of the first byte it maps.
pub const fn leaf_address(desc: u64, level: u8) -> u64 {
    desc & ADDRESS_MASK & !(entry_size(level) - 1)
}

/// An invalid entry recording that `owner` owns the page.
pub const fn annotation(owner: OwnerId) -> u64 {
    ((owner.0 as u64) << ANNOTATION_OWNER_SHIFT) | ANNOTATION_TYPE_OWNER
}
