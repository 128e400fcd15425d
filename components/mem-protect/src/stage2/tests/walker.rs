//! A stage-2 walker over the raw descriptors, written from the Arm ARM and the annotation
//! layout in the module docs, sharing no code with the mapper, so the tests check what the
//! hardware would see rather than what the mapper believes it wrote.

use super::super::{GuestStage2, HostStage2, PoolKind, Table};

const VALID: u64 = 1;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ADDRESS: u64 = 0x0000_ffff_ffff_f000;

/// Normal WB (MemAttr 0b1111), S2AP RW, SH inner shareable, AF; XN clear.
pub const MEMORY_ATTRIBUTES: u64 = (0b1111 << 2) | (0b11 << 6) | (0b11 << 8) | (1 << 10);
/// A guest's shared alias: as memory, but XN (bit 54).
pub const SHARED_ATTRIBUTES: u64 = MEMORY_ATTRIBUTES | (1 << 54);
/// Device-nGnRE (MemAttr 0b0001), S2AP RW, AF, XN (bit 54).
pub const DEVICE_ATTRIBUTES: u64 = (0b0001 << 2) | (0b11 << 6) | (1 << 10) | (1 << 54);

/// A valid leaf the walk found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leaf {
    /// First IPA it maps.
    pub ipa: u64,
    /// 1, 2 or 3.
    pub level: u8,
    /// The raw descriptor.
    pub desc: u64,
}

impl Leaf {
    pub fn size(&self) -> u64 {
        1 << (12 + 9 * (3 - u32::from(self.level)))
    }

    pub fn end(&self) -> u64 {
        self.ipa + self.size()
    }

    /// The output address of its first byte.
    pub fn oa(&self) -> u64 {
        self.desc & ADDRESS & !(self.size() - 1)
    }

    /// The descriptor without its output address and type bits.
    pub fn attributes(&self) -> u64 {
        self.desc & !(ADDRESS | TABLE_OR_PAGE | VALID)
    }
}

/// The tables as the hardware sees them: a root address and memory holding tables.
pub struct RawView<'a> {
    root: u64,
    memory: [(&'a [Table], u64); 2],
}

impl<'a> RawView<'a> {
    pub fn of(stage2: &'a HostStage2<'_>) -> Self {
        let pools = stage2.pools();
        Self {
            root: stage2.root_pa(),
            memory: [pools.raw(PoolKind::Memory), pools.raw(PoolKind::Device)],
        }
    }

    /// A guest's tables: its root and its pool.
    pub fn of_guest(stage2: &'a GuestStage2<'_>) -> Self {
        Self {
            root: stage2.root_pa(),
            memory: stage2.raw(),
        }
    }

    fn table(&self, pa: u64) -> &'a Table {
        for (tables, base) in self.memory {
            if pa >= base && pa < base + tables.len() as u64 * 4096 {
                assert_eq!(pa % 4096, 0, "table address {pa:#x} misaligned");
                return &tables[((pa - base) / 4096) as usize];
            }
        }
        panic!("table descriptor points at {pa:#x}, outside the pools");
    }

    /// The leaf translating `ipa`, as a level-0-rooted 4 KiB-granule walk finds it.
    pub fn translate(&self, ipa: u64) -> Option<Leaf> {
        let mut table = self.table(self.root);
        for level in 0..=3u8 {
            let shift = 12 + 9 * (3 - u32::from(level));
            let desc = table[((ipa >> shift) & 0x1ff) as usize];
            if desc & VALID == 0 {
                return None;
            }
            let is_table = level < 3 && desc & TABLE_OR_PAGE != 0;
            if is_table {
                table = self.table(desc & ADDRESS);
                continue;
            }
            assert!(level != 0, "level-0 block {desc:#x}");
            assert!(
                level != 3 || desc & TABLE_OR_PAGE != 0,
                "reserved level-3 descriptor"
            );
            return Some(Leaf {
                ipa: ipa & !((1u64 << shift) - 1),
                level,
                desc,
            });
        }
        unreachable!()
    }

    /// Every valid leaf and every non-zero invalid entry (as `(ipa, level, raw)`).
    pub fn contents(&self) -> (Vec<Leaf>, Vec<(u64, u8, u64)>) {
        let mut leaves = Vec::new();
        let mut invalid = Vec::new();
        self.visit(self.table(self.root), 0, 0, &mut leaves, &mut invalid);
        (leaves, invalid)
    }

    fn visit(
        &self,
        table: &Table,
        level: u8,
        base: u64,
        leaves: &mut Vec<Leaf>,
        invalid: &mut Vec<(u64, u8, u64)>,
    ) {
        let size = 1u64 << (12 + 9 * (3 - u32::from(level)));
        for (i, &desc) in table.iter().enumerate() {
            let ipa = base + i as u64 * size;
            if desc == 0 {
                continue;
            }
            if desc & VALID == 0 {
                invalid.push((ipa, level, desc));
            } else if level < 3 && desc & TABLE_OR_PAGE != 0 {
                self.visit(self.table(desc & ADDRESS), level + 1, ipa, leaves, invalid);
            } else {
                assert!(level != 0, "level-0 block {desc:#x}");
                assert!(
                    level != 3 || desc & TABLE_OR_PAGE != 0,
                    "reserved level-3 descriptor"
                );
                leaves.push(Leaf { ipa, level, desc });
            }
        }
    }

    /// Owner annotations: level-3 invalid entries of type 0b0001 (bits 4:1), reserved bits
    /// 31:5 zero, owner in bits 63:32. Anything else invalid and non-zero fails the test.
    pub fn annotations(&self) -> Vec<(u64, u32)> {
        self.contents()
            .1
            .into_iter()
            .map(|(ipa, level, desc)| {
                assert_eq!(level, 3, "annotation {desc:#x} above level 3 at {ipa:#x}");
                assert_eq!(
                    desc & 0xffff_ffff,
                    0b0001 << 1,
                    "not an owner annotation: {desc:#x}"
                );
                (ipa, (desc >> 32) as u32)
            })
            .collect()
    }
}
