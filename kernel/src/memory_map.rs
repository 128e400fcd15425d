//! The identity maps the kernel builds: which physical ranges a translation regime maps, and as
//! what kind of memory.
//!
//! The kernel's own EL2 stage 1 maps all RAM as normal memory and every gap between RAM
//! ranges, up to a limit, as device memory; a component's stage 2 maps its region. (The host's
//! stage 2 is not the kernel's: mem-protect builds it lazily.)

use hv_abi::PhysRange;

/// Most regions a map is made of.
pub const MAX_REGIONS: usize = 32;

/// How a range is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Normal, write-back cacheable memory.
    Normal,
    /// Device-nGnRE memory, never executable.
    Device,
}

/// One mapped range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The physical (= intermediate physical) range.
    pub range: PhysRange,
    /// How it is mapped.
    pub kind: MemoryKind,
}

/// A list of regions, sorted by address, never overlapping.
pub type RegionList = heapless::Vec<Region, MAX_REGIONS>;

/// Why a map could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// More regions than [`MAX_REGIONS`].
    TooManyRegions,
    /// RAM ranges overlap each other.
    OverlappingRam,
}

fn push(list: &mut RegionList, range: PhysRange, kind: MemoryKind) -> Result<(), MapError> {
    if range.is_empty() {
        return Ok(());
    }
    list.push(Region { range, kind })
        .map_err(|_| MapError::TooManyRegions)
}

/// Maps `[0, limit)`: each range of `ram` as normal memory and every gap between RAM ranges
/// as device memory, minus the ranges in `excluded` (left unmapped: the hypervisor's own RAM,
/// devices the VM only sees emulated). RAM beyond `limit` is cut off.
pub fn identity_map(
    ram: &[PhysRange],
    excluded: &[PhysRange],
    limit: u64,
) -> Result<RegionList, MapError> {
    let mut sorted: heapless::Vec<PhysRange, MAX_REGIONS> = ram
        .iter()
        .copied()
        .filter(|range| !range.is_empty())
        .collect();
    sorted.sort_unstable_by_key(|range| range.start);
    if sorted.windows(2).any(|pair| pair[0].end > pair[1].start) {
        return Err(MapError::OverlappingRam);
    }
    let mut list = RegionList::new();
    let mut cursor = 0u64;
    for bank in sorted.iter() {
        let bank = PhysRange {
            start: bank.start.min(limit),
            end: bank.end.min(limit),
        };
        let gap = PhysRange {
            start: cursor,
            end: bank.start,
        };
        push_with_holes(&mut list, gap, excluded, MemoryKind::Device)?;
        push_with_holes(&mut list, bank, excluded, MemoryKind::Normal)?;
        cursor = bank.end.max(cursor);
    }
    let tail = PhysRange {
        start: cursor,
        end: limit,
    };
    push_with_holes(&mut list, tail, excluded, MemoryKind::Device)?;
    Ok(list)
}

/// Pushes `bank` as `kind` with the `excluded` ranges cut out.
fn push_with_holes(
    list: &mut RegionList,
    bank: PhysRange,
    excluded: &[PhysRange],
    kind: MemoryKind,
) -> Result<(), MapError> {
    if bank.is_empty() {
        return Ok(());
    }
    let mut holes: heapless::Vec<PhysRange, MAX_REGIONS> = excluded
        .iter()
        .copied()
        .filter(|hole| hole.overlaps(&bank))
        .collect();
    holes.sort_unstable_by_key(|hole| hole.start);
    let mut cursor = bank.start;
    for hole in holes.iter() {
        push(
            list,
            PhysRange {
                start: cursor,
                end: hole.start.max(cursor),
            },
            kind,
        )?;
        cursor = cursor.max(hole.end);
    }
    push(
        list,
        PhysRange {
            start: cursor.min(bank.end),
            end: bank.end,
        },
        kind,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn range(start: u64, end: u64) -> PhysRange {
        PhysRange { start, end }
    }

    #[test]
    fn qemu_virt_host_map_leaves_out_the_hypervisor() {
        let ram = [range(GIB, 2 * GIB)];
        let hyp = [range(GIB, GIB + 32 * MIB)];
        let map = identity_map(&ram, &hyp, 512 * GIB).unwrap();
        assert_eq!(
            map.as_slice(),
            &[
                Region {
                    range: range(0, GIB),
                    kind: MemoryKind::Device
                },
                Region {
                    range: range(GIB + 32 * MIB, 2 * GIB),
                    kind: MemoryKind::Normal
                },
                Region {
                    range: range(2 * GIB, 512 * GIB),
                    kind: MemoryKind::Device
                },
            ]
        );
        // Nothing in the map touches the hypervisor's region.
        assert!(map.iter().all(|region| !region.range.overlaps(&hyp[0])));
    }

    #[test]
    fn several_banks_and_holes() {
        // Pi 4 style: RAM from 0 with a hole for the hypervisor in the middle, high RAM above 4 GiB.
        let ram = [range(4 * GIB, 8 * GIB), range(0, 0xfc00_0000)];
        let holes = [range(0, 32 * MIB), range(64 * MIB, 66 * MIB)];
        let map = identity_map(&ram, &holes, 16 * GIB).unwrap();
        let normal: heapless::Vec<PhysRange, 8> = map
            .iter()
            .filter(|r| r.kind == MemoryKind::Normal)
            .map(|r| r.range)
            .collect();
        assert_eq!(
            normal.as_slice(),
            &[
                range(32 * MIB, 64 * MIB),
                range(66 * MIB, 0xfc00_0000),
                range(4 * GIB, 8 * GIB)
            ]
        );
        // Sorted, non-overlapping, and covering everything but the holes.
        let covered: u64 = map.iter().map(|r| r.range.len()).sum();
        assert_eq!(covered, 16 * GIB - 34 * MIB);
        assert!(
            map.windows(2)
                .all(|pair| pair[0].range.end <= pair[1].range.start)
        );
    }

    #[test]
    fn emulated_devices_are_left_out_of_device_space() {
        let ram = [range(GIB, 2 * GIB)];
        let holes = [range(GIB, GIB + 32 * MIB), range(0x0900_0000, 0x0900_1000)];
        let map = identity_map(&ram, &holes, 4 * GIB).unwrap();
        assert_eq!(
            map[0],
            Region {
                range: range(0, 0x0900_0000),
                kind: MemoryKind::Device
            }
        );
        assert_eq!(
            map[1],
            Region {
                range: range(0x0900_1000, GIB),
                kind: MemoryKind::Device
            }
        );
        assert!(
            map.iter()
                .all(|r| !r.range.overlaps(&holes[1]) && !r.range.overlaps(&holes[0]))
        );
    }

    #[test]
    fn limit_cuts_ram_and_overlaps_are_refused() {
        let map = identity_map(&[range(GIB, 4 * GIB)], &[], 2 * GIB).unwrap();
        assert_eq!(map.last().unwrap().range, range(GIB, 2 * GIB));
        assert_eq!(
            identity_map(&[range(0, 2 * GIB), range(GIB, 3 * GIB)], &[], 4 * GIB),
            Err(MapError::OverlappingRam)
        );
    }
}
