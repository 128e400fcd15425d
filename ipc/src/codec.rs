//! postcard's wire format, written and read by code made for each message type: what
//! [`encode_request`](crate::encode_request), [`decode_reply`](crate::decode_reply) and the rest
//! run.
//!
//! The bytes are postcard's (the messages still derive serde's traits, and the tests check that
//! every message encodes here exactly as the `postcard` crate encodes it and that any bytes
//! decode here exactly as they decode there, errors included); only the code that produces them
//! differs. *Why not call postcard:* its serde path costs a guest hypercall several hundred
//! instructions at each end (a varint costs a loop with a bounds check per byte even when it is
//! one byte long, and serde's visitors do not fold away), which the hypercall's budget cannot
//! carry. The [`interface!`](crate::interface) macro implements [`Codec`] for every type it
//! defines, as straight-line code per variant: no visitor, a one-byte varint in a compare and a
//! store.
//!
//! The format, as postcard writes it: `u8`/`i8` as one byte; the other integers as LEB128
//! varints (signed ones zigzagged first), at most 3, 5 or 10 bytes for 16, 32 or 64 bits, with
//! the bits beyond the type's width refused in the last byte; `bool` and `Option`'s tag as one
//! byte, 0 or 1; an enum as its variant's index (a `u32` varint) and then the variant's fields;
//! a struct, an array or a tuple as its fields in order, without a length.

use crate::Error;
use crate::addr::{Ipa, PhysAddr};

/// A type that reads and writes itself in postcard's format.
///
/// Implemented by the [`interface!`](crate::interface) macro for every type it defines, and
/// here for the field types messages use (integers, `bool`, arrays, `Option`, `Result`, the
/// addresses of [`addr`](crate::addr)).
pub trait Codec: Sized {
    /// Appends the value's encoding to `out`; [`Error::BufferTooSmall`] if it does not fit.
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error>;

    /// Reads one value from the front of `input`: [`Error::Truncated`] if the bytes end first,
    /// [`Error::Malformed`] if they are not a value of the type. On an error, what is left of
    /// `input` is unspecified.
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error>;
}

/// An encoding being written into a byte buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer that fills `out` from its start.
    pub fn new(out: &'a mut [u8]) -> Self {
        Writer { out, len: 0 }
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one byte.
    #[inline]
    pub fn byte(&mut self, byte: u8) -> Result<(), Error> {
        let slot = self.out.get_mut(self.len).ok_or(Error::BufferTooSmall)?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    /// Appends `value` as a varint (LEB128: seven bits a byte, low bits first, the top bit set
    /// on every byte but the last).
    #[inline]
    pub fn varint(&mut self, value: u64) -> Result<(), Error> {
        if value < 0x80 {
            return self.byte(value as u8);
        }
        let rest = self.out.get_mut(self.len..).unwrap_or_default();
        match write_long_varint(rest, value) {
            0 => Err(Error::BufferTooSmall),
            written => {
                self.len += written;
                Ok(())
            }
        }
    }
}

/// Writes `value` (at least 0x80) as a varint at the start of `out`; returns its length, 0 if
/// `out` is too short. Out of line, so the common one-byte case stays small where
/// [`Writer::varint`] is inlined, and with the buffer passed by value, so a writer can stay in
/// registers.
#[inline(never)]
pub(crate) fn write_long_varint(out: &mut [u8], value: u64) -> usize {
    if let Some(chunk) = out.first_chunk_mut::<10>() {
        // Room for the longest varint: unrolled by hand, as in `read_long_varint`, five
        // instructions a byte and no bounds check.
        let mut rest = value;
        macro_rules! byte {
            ($($index:literal)*) => {$(
                if rest < 0x80 {
                    chunk[$index] = rest as u8;
                    return $index + 1;
                }
                // Truncation on purpose: the low seven bits, with the continuation bit.
                chunk[$index] = rest as u8 | 0x80;
                rest >>= 7;
            )*};
        }
        byte!(0 1 2 3 4 5 6 7 8);
        // A u64 has at most one bit left for the tenth byte.
        chunk[9] = rest as u8;
        return 10;
    }
    let significant_bits = u64::BITS - value.leading_zeros();
    let len = significant_bits.div_ceil(7) as usize;
    let Some(bytes) = out.get_mut(..len) else {
        return 0;
    };
    let mut rest = value;
    for slot in bytes.iter_mut() {
        // Truncation on purpose: the low seven bits, with the continuation bit.
        *slot = rest as u8 | 0x80;
        rest >>= 7;
    }
    if let Some(last) = bytes.last_mut() {
        *last &= 0x7f;
    }
    len
}

/// What [`read_long_varint`] found.
pub(crate) enum LongVarint {
    /// The value and the varint's length in bytes.
    Value(u64, usize),
    /// The bytes end inside the varint.
    Truncated,
    /// More bytes than the width allows, or bits beyond it in the last one.
    Malformed,
}

/// Reads the varint at the start of `bytes` of an integer whose varints take at most
/// `MAX_BYTES` bytes, the last of them at most `LAST_MAX` (not a one-byte varint, which
/// [`Reader::varint`] takes itself). Out of line and with the bytes passed by value, as
/// [`write_long_varint`]; the width is a constant so that the loop over a message with
/// `MAX_BYTES` bytes left unrolls without a bounds check per byte.
#[inline(never)]
pub(crate) fn read_long_varint<const MAX_BYTES: usize, const LAST_MAX: u8>(
    bytes: &[u8],
) -> LongVarint {
    if let Some(chunk) = bytes.first_chunk::<MAX_BYTES>() {
        // Unrolled by hand (the images are built for size, so the compiler does not): four
        // instructions a byte instead of ten, with no bounds check, the indices being constant.
        let mut value = 0;
        macro_rules! byte {
            ($($index:literal)*) => {$(
                if $index < MAX_BYTES {
                    let byte = chunk[$index];
                    value |= u64::from(byte & 0x7f) << (7 * $index);
                    if byte < 0x80 {
                        if $index == MAX_BYTES - 1 && byte > LAST_MAX {
                            return LongVarint::Malformed;
                        }
                        return LongVarint::Value(value, $index + 1);
                    }
                }
            )*};
        }
        byte!(0 1 2 3 4 5 6 7 8 9);
        return LongVarint::Malformed;
    }
    // Fewer bytes left than the longest varint: each one checked against the end.
    let candidates = bytes;
    let mut value = 0;
    for (index, &byte) in candidates.iter().enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            if index == MAX_BYTES - 1 && byte > LAST_MAX {
                return LongVarint::Malformed;
            }
            return LongVarint::Value(value, index + 1);
        }
    }
    // Every candidate had the continuation bit: the bytes ended, or the varint is too long.
    if candidates.len() < MAX_BYTES {
        LongVarint::Truncated
    } else {
        LongVarint::Malformed
    }
}

/// Bytes being decoded, from the front.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Takes one byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8, Error> {
        let (&first, rest) = self.bytes.split_first().ok_or(Error::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    /// Takes a varint of a `bits`-wide integer (16, 32, or else 64): at most `bits / 7 + 1` bytes,
    /// the last holding no bit beyond `bits`, as postcard checks. Overlong encodings of small
    /// values (`0x80 0x00` for 0) are accepted, as postcard accepts them.
    #[inline]
    pub fn varint(&mut self, bits: u32) -> Result<u64, Error> {
        if let Some((&first, rest)) = self.bytes.split_first()
            && first < 0x80
        {
            self.bytes = rest;
            return Ok(first.into());
        }
        // postcard's bounds: 3, 5 or 10 bytes, with 2, 4 or 1 bits in the last.
        let long = match bits {
            16 => read_long_varint::<3, 0b11>(self.bytes),
            32 => read_long_varint::<5, 0b1111>(self.bytes),
            _ => read_long_varint::<10, 0b1>(self.bytes),
        };
        match long {
            LongVarint::Value(value, len) => {
                self.bytes = self.bytes.get(len..).unwrap_or_default();
                Ok(value)
            }
            LongVarint::Truncated => Err(Error::Truncated),
            LongVarint::Malformed => Err(Error::Malformed),
        }
    }

    /// Takes an enum's variant index (a `u32` varint).
    #[inline]
    pub fn variant(&mut self) -> Result<u32, Error> {
        // In range: a 32-bit varint holds at most 32 bits.
        self.varint(32).map(|index| index as u32)
    }
}

macro_rules! unsigned_varints {
    ($($integer:ty),*) => {
        $(
            impl Codec for $integer {
                #[inline]
                fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
                    out.varint(*self as u64)
                }

                #[inline]
                fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
                    // In range: the varint was checked against the type's width.
                    input.varint(<$integer>::BITS).map(|value| value as $integer)
                }
            }
        )*
    };
}

// `usize` as 64 bits: postcard's width on the 64-bit machines this runs on.
unsigned_varints!(u16, u32, u64, usize);

macro_rules! signed_varints {
    ($($integer:ty => $unsigned:ty),*) => {
        $(
            impl Codec for $integer {
                #[inline]
                fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
                    // Zigzag: the sign into bit 0, so small magnitudes stay short.
                    let zigzag = ((*self << 1) ^ (*self >> (<$integer>::BITS - 1))) as $unsigned;
                    out.varint(zigzag as u64)
                }

                #[inline]
                fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
                    let zigzag = input.varint(<$integer>::BITS)? as $unsigned;
                    Ok(((zigzag >> 1) as $integer) ^ -((zigzag & 1) as $integer))
                }
            }
        )*
    };
}

signed_varints!(i16 => u16, i32 => u32, i64 => u64, isize => usize);

impl Codec for u8 {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        out.byte(*self)
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        input.byte()
    }
}

impl Codec for i8 {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        out.byte(*self as u8)
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        input.byte().map(|byte| byte as i8)
    }
}

impl Codec for bool {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        out.byte(u8::from(*self))
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        match input.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Malformed),
        }
    }
}

impl Codec for () {
    #[inline]
    fn encode(&self, _: &mut Writer<'_>) -> Result<(), Error> {
        Ok(())
    }

    #[inline]
    fn decode(_: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(())
    }
}

impl Codec for Ipa {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        self.0.encode(out)
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        u64::decode(input).map(Ipa)
    }
}

impl Codec for PhysAddr {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        self.0.encode(out)
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        u64::decode(input).map(PhysAddr)
    }
}

/// `Default` only to have something in the array before each element is decoded over it
/// (without `unsafe`); every element type messages use has one.
impl<T: Codec + Default, const N: usize> Codec for [T; N] {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        self.iter().try_for_each(|element| element.encode(out))
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        let mut array: [T; N] = core::array::from_fn(|_| T::default());
        for element in &mut array {
            *element = T::decode(input)?;
        }
        Ok(array)
    }
}

impl<T: Codec> Codec for Option<T> {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        match self {
            None => out.byte(0),
            Some(value) => {
                out.byte(1)?;
                value.encode(out)
            }
        }
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        match input.byte()? {
            0 => Ok(None),
            1 => T::decode(input).map(Some),
            _ => Err(Error::Malformed),
        }
    }
}

/// As serde's enum `Result`: variant 0 `Ok`, 1 `Err`.
impl<T: Codec, E: Codec> Codec for Result<T, E> {
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) -> Result<(), Error> {
        match self {
            Ok(value) => {
                out.byte(0)?;
                value.encode(out)
            }
            Err(error) => {
                out.byte(1)?;
                error.encode(out)
            }
        }
    }

    #[inline]
    fn decode(input: &mut Reader<'_>) -> Result<Self, Error> {
        match input.variant()? {
            0 => T::decode(input).map(Ok),
            1 => E::decode(input).map(Err),
            _ => Err(Error::Malformed),
        }
    }
}

/// Encodes `value` into `out`; returns its length.
pub fn encode<T: Codec>(value: &T, out: &mut [u8]) -> Result<usize, Error> {
    let mut writer = Writer::new(out);
    value.encode(&mut writer)?;
    Ok(writer.len())
}

/// Decodes `bytes` as exactly one `T`: [`Error::TrailingBytes`] if bytes are left after it.
pub fn decode<T: Codec>(bytes: &[u8]) -> Result<T, Error> {
    let mut reader = Reader::new(bytes);
    let value = T::decode(&mut reader)?;
    if reader.is_empty() {
        Ok(value)
    } else {
        Err(Error::TrailingBytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `postcard` crate makes of `bytes`, in this crate's error terms.
    fn postcard_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let (value, rest) = postcard::take_from_bytes(bytes).map_err(Error::from_postcard)?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(Error::TrailingBytes)
        }
    }

    fn same_as_postcard<T>(value: T)
    where
        T: Codec + serde::Serialize + serde::de::DeserializeOwned + PartialEq + core::fmt::Debug,
    {
        let mut ours = [0; 32];
        let mut theirs = [0; 32];
        let len = encode(&value, &mut ours).unwrap();
        let expected = postcard::to_slice(&value, &mut theirs).unwrap();
        assert_eq!(&ours[..len], expected, "{value:?}");
        assert_eq!(decode::<T>(&ours[..len]), Ok(value));
    }

    #[test]
    fn integers_encode_as_postcard_does() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift] {
                same_as_postcard(value);
                same_as_postcard(value as u32);
                same_as_postcard(value as u16);
                same_as_postcard(value as u8);
                same_as_postcard(value as usize);
                same_as_postcard(value as i64);
                same_as_postcard((value as i64).wrapping_neg());
                same_as_postcard(value as i32);
                same_as_postcard(value as i16);
                same_as_postcard(value as i8);
                same_as_postcard(value as isize);
            }
        }
        same_as_postcard([Some(true), None, Some(false)]);
        same_as_postcard(Ok::<_, u8>(Ipa(0x4000_1234)));
        same_as_postcard(Err::<u8, _>(PhysAddr(7)));
    }

    #[test]
    fn any_short_bytes_decode_as_postcard_decodes_them() {
        // Every 1- and 2-byte input, and the 3-byte ones around the 16-bit limit, for each
        // width: the varints' bounds and the tags' refusals.
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        for first in 0..=255u8 {
            inputs.push(vec![first]);
            for second in 0..=255u8 {
                inputs.push(vec![first, second]);
                inputs.push(vec![first, second, 3]);
                inputs.push(vec![first, second, 4]);
            }
        }
        inputs.push([0xff; 5].into());
        inputs.push([0xff, 0xff, 0xff, 0xff, 0x0f].into());
        inputs.push([0xff, 0xff, 0xff, 0xff, 0x10].into());
        inputs.push([0xff; 10].into());
        inputs.push([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01].into());
        inputs.push([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02].into());
        for bytes in &inputs {
            assert_eq!(
                decode::<u16>(bytes),
                postcard_decode::<u16>(bytes),
                "{bytes:?}"
            );
            assert_eq!(
                decode::<u32>(bytes),
                postcard_decode::<u32>(bytes),
                "{bytes:?}"
            );
            assert_eq!(
                decode::<u64>(bytes),
                postcard_decode::<u64>(bytes),
                "{bytes:?}"
            );
            assert_eq!(
                decode::<i16>(bytes),
                postcard_decode::<i16>(bytes),
                "{bytes:?}"
            );
            assert_eq!(
                decode::<i64>(bytes),
                postcard_decode::<i64>(bytes),
                "{bytes:?}"
            );
            assert_eq!(
                decode::<bool>(bytes),
                postcard_decode::<bool>(bytes),
                "{bytes:?}"
            );
            assert_eq!(decode::<[u8; 2]>(bytes), postcard_decode::<[u8; 2]>(bytes));
            assert_eq!(
                decode::<Option<u8>>(bytes),
                postcard_decode::<Option<u8>>(bytes),
                "{bytes:?}"
            );
            assert_eq!(
                decode::<Result<u8, bool>>(bytes),
                postcard_decode::<Result<u8, bool>>(bytes),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn a_full_buffer_is_refused() {
        assert_eq!(encode(&u64::MAX, &mut [0; 9]), Err(Error::BufferTooSmall));
        assert_eq!(encode(&u64::MAX, &mut [0; 10]), Ok(10));
        assert_eq!(encode(&(), &mut []), Ok(0));
    }
}
