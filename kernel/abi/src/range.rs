//! Physical address ranges, the unit every placement in the boot table is checked in.

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// First byte past the end.
    pub end: u64,
}

impl PhysRange {
    /// The range `[start, start + size)`; `None` if it wraps.
    pub const fn from_size(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(Self { start, end }),
            None => None,
        }
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True if `other` lies wholly inside `self`.
    pub const fn contains_range(&self, other: &PhysRange) -> bool {
        other.start >= self.start && other.end <= self.end
    }

    /// True if the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}
