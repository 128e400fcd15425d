//! Whether an access is well formed (size, alignment, inside the frame) and which sizes a
//! register takes, plus the byte lanes and 32-bit halves of registers wider than a byte.

use crate::BadAccess;

/// The sizes a register accepts: bit `n` set means an access of `n` bytes (1, 4 or 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Widths(u8);

impl Widths {
    /// Most registers: 32-bit only.
    pub const WORD: Self = Self(4);
    /// IPRIORITYR, ITARGETSR, SPENDSGIR/CPENDSGIR: each byte is one interrupt's field.
    pub const BYTE_OR_WORD: Self = Self(1 | 4);
    /// GICD_IROUTER and GICR_TYPER: 64-bit, or either 32-bit half.
    pub const WORD_OR_DOUBLEWORD: Self = Self(4 | 8);

    pub fn allows(self, size: u8) -> bool {
        self.0 & size != 0
    }
}

/// Checks what holds for every register: a size the bus has, the access inside the frame,
/// naturally aligned.
pub(crate) fn check(offset: u64, size: u8, frame_size: u64) -> Result<(), BadAccess> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(BadAccess::Size);
    }
    match offset.checked_add(u64::from(size)) {
        Some(end) if end <= frame_size => {}
        _ => return Err(BadAccess::OutOfRange),
    }
    if !offset.is_multiple_of(u64::from(size)) {
        return Err(BadAccess::Alignment);
    }
    Ok(())
}

/// Reads `size` byte lanes, lane `n` from `byte(n)`, least significant first.
pub(crate) fn read_lanes(size: u8, mut byte: impl FnMut(usize) -> u8) -> u64 {
    (0..usize::from(size)).fold(0, |value, lane| value | u64::from(byte(lane)) << (8 * lane))
}

/// Writes `size` byte lanes of `value`, lane `n` through `write(n, byte)`.
pub(crate) fn write_lanes(size: u8, value: u64, mut write: impl FnMut(usize, u8)) {
    let bytes = value.to_le_bytes();
    for (lane, &byte) in bytes.iter().enumerate().take(usize::from(size)) {
        write(lane, byte);
    }
}

/// The part of a 64-bit register an access of `size` at `offset` reads.
pub(crate) fn read_half(register: u64, offset: u64, size: u8) -> u64 {
    match (size, offset & 4) {
        (8, _) => register,
        (_, 0) => register & 0xFFFF_FFFF,
        _ => register >> 32,
    }
}

/// A 64-bit register after an access of `size` at `offset` wrote `value` (the other half kept).
pub(crate) fn write_half(register: u64, offset: u64, size: u8, value: u64) -> u64 {
    let low = value & 0xFFFF_FFFF;
    match (size, offset & 4) {
        (8, _) => value,
        (_, 0) => (register & !0xFFFF_FFFF) | low,
        _ => (register & 0xFFFF_FFFF) | low << 32,
    }
}
