//! A VM's mapped granules, kept as ranges.
//!
//! Linux (a pKVM guest) maps every page it ioremaps with one MMIO_GUARD_MAP, in ascending order:
//! tens of thousands of granules in a boot, but a handful of runs of consecutive ones. So the
//! set is a sorted list of disjoint, non-adjacent half-open ranges, and its capacity counts
//! ranges, not granules. A lookup is a binary search. A MAP or UNMAP that only moves an end of
//! a range (as Linux's ascending MAPs do), or changes nothing, is that search and a constant
//! amount of work; one that adds or removes a range also shifts the ranges after it.

use super::{Granule, SetFull};

/// Granules `[first, end)`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GranuleRange {
    /// The first granule.
    pub first: Granule,
    /// The granule just past the last.
    pub end: Granule,
}

impl GranuleRange {
    /// The range of `granule` alone.
    pub const fn single(granule: Granule) -> Self {
        Self {
            first: granule,
            end: granule.next(),
        }
    }
}

/// A set of granules as at most `N` ranges, sorted, disjoint and non-adjacent (two ranges
/// always have an unmapped granule between them, so the ranges are as few as can be).
#[derive(Clone, Debug, Default)]
pub struct GranuleRanges<const N: usize> {
    ranges: heapless::Vec<GranuleRange, N>,
}

impl<const N: usize> GranuleRanges<N> {
    /// The set of `ranges`, which the caller has checked are sorted, disjoint, non-adjacent
    /// and non-empty (a hot-swap's hand-over).
    pub fn from_sorted(ranges: heapless::Vec<GranuleRange, N>) -> Self {
        Self { ranges }
    }

    /// The ranges, in ascending order.
    pub fn as_slice(&self) -> &[GranuleRange] {
        &self.ranges
    }

    /// The index of the first range ending after `granule`: the one holding it, if any.
    fn search(&self, granule: Granule) -> usize {
        self.ranges.partition_point(|range| range.end <= granule)
    }

    /// Whether `granule` is in the set.
    pub fn contains(&self, granule: Granule) -> bool {
        self.ranges
            .get(self.search(granule))
            .is_some_and(|range| range.first <= granule)
    }

    /// Adds `granule`: `Ok(true)` if it was not there, `Ok(false)` if it was, `Err` (and no
    /// change) if it needs a range of its own and the set has `N` already.
    pub fn insert(&mut self, granule: Granule) -> Result<bool, SetFull> {
        let at = self.search(granule);
        let following = self.ranges.get(at).copied();
        if following.is_some_and(|range| range.first <= granule) {
            return Ok(false);
        }
        let joins_previous = at > 0 && self.ranges[at - 1].end == granule;
        let joins_next = following.is_some_and(|range| range.first == granule.next());
        match (joins_previous, joins_next) {
            (true, true) => {
                // It fills the hole between two ranges.
                self.ranges[at - 1].end = self.ranges.remove(at).end;
            }
            (true, false) => self.ranges[at - 1].end = granule.next(),
            (false, true) => self.ranges[at].first = granule,
            (false, false) => self
                .ranges
                .insert(at, GranuleRange::single(granule))
                .map_err(|_| SetFull)?,
        }
        Ok(true)
    }

    /// Removes `granule`: `Ok(true)` if it was there, `Ok(false)` if not, `Err` (and no change)
    /// if it lies inside a range, which would split in two, and the set has `N` already.
    pub fn remove(&mut self, granule: Granule) -> Result<bool, SetFull> {
        let at = self.search(granule);
        let Some(range) = self.ranges.get(at).copied() else {
            return Ok(false);
        };
        if range.first > granule {
            return Ok(false);
        }
        let at_first = range.first == granule;
        let at_last = range.end == granule.next();
        match (at_first, at_last) {
            (true, true) => {
                self.ranges.remove(at);
            }
            (true, false) => self.ranges[at].first = granule.next(),
            (false, true) => self.ranges[at].end = granule,
            (false, false) => {
                let after = GranuleRange {
                    first: granule.next(),
                    end: range.end,
                };
                self.ranges.insert(at + 1, after).map_err(|_| SetFull)?;
                self.ranges[at].end = granule;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
