//! The schema fingerprint: FNV-1a 64, computable in `const` context.
//!
//! FNV-1a because it is a few lines of `const fn` (the hash is computed at compile time, inside
//! the [`interface!`](crate::interface) expansion) and good enough to tell definitions apart; it
//! guards against mistakes, not adversaries, since whoever builds the images builds both ends.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub const fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    let mut index = 0;
    while index < bytes.len() {
        hash = step(hash, bytes[index]);
        index += 1;
    }
    hash
}

/// The schema hash of an interface definition's text: FNV-1a 64 of its bytes with ASCII
/// whitespace left out.
///
/// Whitespace is skipped because the text comes from `stringify!`, whose spacing between tokens
/// is not a stable promise of the compiler: a toolchain update must not make every component
/// look incompatible with the others. Dropping it costs nothing in practice: two definitions the
/// macro accepts that differed only in spacing would need two adjacent identifiers that could
/// also be read as one, and its grammar (`enum Name`, `field: Type`) has none.
pub const fn schema_hash(schema: &str) -> u64 {
    let bytes = schema.as_bytes();
    let mut hash = FNV_OFFSET_BASIS;
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_whitespace() {
            hash = step(hash, bytes[index]);
        }
        index += 1;
    }
    hash
}

const fn step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(FNV_PRIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_64_matches_reference_vectors() {
        // From the FNV reference test suite (Landon Curt Noll's fnv test vectors).
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn schema_hash_ignores_whitespace_only() {
        assert_eq!(schema_hash("enum A { B, C }"), fnv1a_64(b"enumA{B,C}"));
        assert_eq!(
            schema_hash("enum A{B,C}"),
            schema_hash("enum  A {\n B , C }")
        );
        assert_ne!(
            schema_hash("enum A { B, C }"),
            schema_hash("enum A { C, B }")
        );
    }
}
