//! Tests of the granule ranges: coalescing, merging and splitting, the full set, and random
//! MAP/UNMAP sequences against a `BTreeSet` of granules.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::MAX_GRANULE_RANGES;
use super::*;

type Ranges = GranuleRanges<MAX_GRANULE_RANGES>;

fn range(first: u64, end: u64) -> GranuleRange {
    GranuleRange {
        first: Granule(first),
        end: Granule(end),
    }
}

/// The ranges as `(first, end)` pairs of granule numbers.
fn pairs<const N: usize>(set: &GranuleRanges<N>) -> Vec<(u64, u64)> {
    set.as_slice()
        .iter()
        .map(|range| (range.first.0, range.end.0))
        .collect()
}

fn with<const N: usize>(granules: impl IntoIterator<Item = u64>) -> GranuleRanges<N> {
    let mut set = GranuleRanges::default();
    for granule in granules {
        assert_eq!(set.insert(Granule(granule)), Ok(true), "{granule}");
    }
    set
}

/// Sorted, disjoint, non-adjacent and non-empty.
fn is_canonical(ranges: &[GranuleRange]) -> bool {
    ranges.iter().all(|range| range.first < range.end)
        && ranges.windows(2).all(|pair| pair[0].end < pair[1].first)
}

#[test]
fn a_linux_boot_coalesces_into_a_few_ranges() {
    // (first granule, granules): a GICv3 redistributor region, a two-page console and a PCIe
    // ECAM, each mapped page by page in ascending order, as Linux does.
    const ECAM: (u64, u64) = (0x40_1000_0000 >> 12, 65_536);
    const REDISTRIBUTORS: (u64, u64) = (0x080A_0000 >> 12, 4096);
    const CONSOLE: (u64, u64) = (0x0A00_0000 >> 12, 2);
    let regions = [REDISTRIBUTORS, CONSOLE, ECAM];
    let mut set = Ranges::default();
    for (first, count) in regions {
        for granule in first..first + count {
            assert_eq!(set.insert(Granule(granule)), Ok(true), "{granule:#x}");
            // Mapping it again changes nothing.
            assert_eq!(set.insert(Granule(granule)), Ok(false), "{granule:#x}");
        }
    }
    let expected: Vec<(u64, u64)> = regions
        .iter()
        .map(|&(first, count)| (first, first + count))
        .collect();
    assert_eq!(pairs(&set), expected);
    for (first, count) in regions {
        assert!((first..first + count).all(|granule| set.contains(Granule(granule))));
        assert!(!set.contains(Granule(first - 1)));
        assert!(!set.contains(Granule(first + count)));
    }
    assert!(!set.contains(Granule(0)));
    assert!(!set.contains(Granule(u64::MAX >> 12)));
}

#[test]
fn filling_the_hole_merges_two_ranges() {
    let mut set: Ranges = with([1, 2, 4, 5, 9]);
    assert_eq!(pairs(&set), [(1, 3), (4, 6), (9, 10)]);
    assert!(!set.contains(Granule(3)));
    assert_eq!(set.insert(Granule(3)), Ok(true));
    assert_eq!(pairs(&set), [(1, 6), (9, 10)]);
    assert!(set.contains(Granule(3)));
}

#[test]
fn extending_either_end_keeps_one_range() {
    let mut set: Ranges = with([5]);
    assert_eq!(set.insert(Granule(6)), Ok(true));
    assert_eq!(set.insert(Granule(4)), Ok(true));
    assert_eq!(pairs(&set), [(4, 7)]);
}

#[test]
fn descending_insertion_coalesces_too() {
    let set: Ranges = with((0..=100).rev());
    assert_eq!(pairs(&set), [(0, 101)]);
}

#[test]
fn inserting_between_ranges_keeps_them_sorted() {
    let set: Ranges = with([50, 10, 30, 70, 20]);
    assert_eq!(
        pairs(&set),
        [(10, 11), (20, 21), (30, 31), (50, 51), (70, 71)]
    );
}

#[test]
fn unmap_in_the_middle_splits_a_range() {
    let mut set: Ranges = with(0..10);
    assert_eq!(set.remove(Granule(5)), Ok(true));
    assert_eq!(pairs(&set), [(0, 5), (6, 10)]);
    assert!(!set.contains(Granule(5)));
    assert!(set.contains(Granule(4)) && set.contains(Granule(6)));
}

#[test]
fn unmap_at_either_end_shrinks_a_range() {
    let mut set: Ranges = with(0..10);
    assert_eq!(set.remove(Granule(0)), Ok(true));
    assert_eq!(pairs(&set), [(1, 10)]);
    assert_eq!(set.remove(Granule(9)), Ok(true));
    assert_eq!(pairs(&set), [(1, 9)]);
}

#[test]
fn unmap_of_the_only_granule_removes_its_range() {
    let mut set: Ranges = with([3, 6, 9]);
    assert_eq!(set.remove(Granule(6)), Ok(true));
    assert_eq!(pairs(&set), [(3, 4), (9, 10)]);
    assert_eq!(set.remove(Granule(3)), Ok(true));
    assert_eq!(set.remove(Granule(9)), Ok(true));
    assert_eq!(pairs(&set), []);
}

#[test]
fn unmap_of_an_unmapped_granule_changes_nothing() {
    let mut set: Ranges = with([3, 4, 8]);
    for granule in [0, 2, 5, 7, 9, 1000] {
        assert_eq!(set.remove(Granule(granule)), Ok(false), "{granule}");
    }
    assert_eq!(pairs(&set), [(3, 5), (8, 9)]);
    assert_eq!(Ranges::default().remove(Granule(0)), Ok(false));
}

#[test]
fn a_full_set_refuses_only_what_needs_a_new_range() {
    // Every other granule: 0, 2, 4, ..., each a range of its own.
    let last = 2 * (MAX_GRANULE_RANGES as u64 - 1);
    let mut set: Ranges = with((0..=last).step_by(2));
    assert_eq!(set.as_slice().len(), MAX_GRANULE_RANGES);
    let full = pairs(&set);
    for granule in [last + 2, last + 1000] {
        assert_eq!(set.insert(Granule(granule)), Err(SetFull), "{granule}");
        assert_eq!(pairs(&set), full);
    }
    // Already there.
    assert_eq!(set.insert(Granule(last)), Ok(false));
    // Adjacent to a range: extends it.
    assert_eq!(set.insert(Granule(last + 1)), Ok(true));
    assert_eq!(set.as_slice().last(), Some(&range(last, last + 2)));
    // Between two ranges: merges them, which frees a range.
    assert_eq!(set.insert(Granule(1)), Ok(true));
    assert_eq!(set.as_slice()[0], range(0, 3));
    assert_eq!(set.as_slice().len(), MAX_GRANULE_RANGES - 1);
    assert_eq!(set.insert(Granule(last + 1000)), Ok(true));
    // Full again: an UNMAP that would split a range is refused; at an end it is not.
    let full = pairs(&set);
    assert_eq!(set.remove(Granule(1)), Err(SetFull));
    assert_eq!(pairs(&set), full);
    assert!(set.contains(Granule(1)));
    assert_eq!(set.remove(Granule(0)), Ok(true));
    assert_eq!(set.as_slice()[0], range(1, 3));
    // Room again: the split is allowed.
    assert_eq!(set.remove(Granule(last + 1000)), Ok(true));
    assert_eq!(set.insert(Granule(5)), Ok(true));
    assert_eq!(set.remove(Granule(5)), Ok(true));
    assert!(is_canonical(set.as_slice()));
}

#[test]
fn a_set_of_one_range() {
    let mut set: GranuleRanges<1> = with([7, 8, 9]);
    assert_eq!(set.insert(Granule(11)), Err(SetFull));
    assert_eq!(set.remove(Granule(8)), Err(SetFull));
    assert_eq!(set.insert(Granule(10)), Ok(true));
    assert_eq!(set.insert(Granule(11)), Ok(true));
    assert_eq!(pairs(&set), [(7, 12)]);
}

// --- Random MAP/UNMAP sequences against a model ---------------------------------------------

/// Granules the random operations touch: a small window, so merges and splits are frequent.
const WINDOW: u64 = 24;

/// What the set should answer to a MAP (`map`) or UNMAP of `granule`, worked out from the
/// granules it should hold, which it updates the same way.
fn model_step(
    model: &mut BTreeSet<u64>,
    capacity: usize,
    map: bool,
    granule: u64,
) -> Result<bool, SetFull> {
    let mapped = |granule: Option<u64>| granule.is_some_and(|granule| model.contains(&granule));
    let before = mapped(granule.checked_sub(1));
    let after = mapped(Some(granule + 1));
    let runs = model
        .iter()
        .filter(|&&granule| !mapped(granule.checked_sub(1)))
        .count();
    let full = runs == capacity;
    if map {
        if model.contains(&granule) {
            Ok(false)
        } else if full && !before && !after {
            Err(SetFull)
        } else {
            Ok(model.insert(granule))
        }
    } else if !model.contains(&granule) {
        Ok(false)
    } else if full && before && after {
        Err(SetFull)
    } else {
        Ok(model.remove(&granule))
    }
}

fn matches_the_model<const N: usize>(ops: &[(bool, u64)]) -> Result<(), TestCaseError> {
    let mut set = GranuleRanges::<N>::default();
    let mut model = BTreeSet::new();
    for &(map, granule) in ops {
        let answer = if map {
            set.insert(Granule(granule))
        } else {
            set.remove(Granule(granule))
        };
        let expected = model_step(&mut model, N, map, granule);
        prop_assert_eq!(answer, expected, "map {} {}", map, granule);
        prop_assert!(is_canonical(set.as_slice()), "{:?}", set);
        prop_assert!(set.as_slice().len() <= N);
        for granule in 0..WINDOW + 2 {
            prop_assert_eq!(
                set.contains(Granule(granule)),
                model.contains(&granule),
                "{}",
                granule
            );
        }
    }
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<(bool, u64)>> {
    // More MAPs than UNMAPs, so the window fills up.
    let op = (prop::bool::weighted(0.6), 0..WINDOW);
    proptest::collection::vec(op, 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_maps_and_unmaps_match_the_model_when_the_set_fills(ops in ops()) {
        // A window of 24 granules holds up to 12 ranges: 4 fills often, 1 always.
        matches_the_model::<1>(&ops)?;
        matches_the_model::<4>(&ops)?;
    }

    #[test]
    fn random_maps_and_unmaps_match_the_model(ops in ops()) {
        matches_the_model::<MAX_GRANULE_RANGES>(&ops)?;
    }
}
