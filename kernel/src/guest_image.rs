//! Putting a guest's pristine image into its memory: copied as is, or inflated from the zlib
//! stream the composer stored (`hv_abi::VmImage::loaded_len`). A Debian kernel is 27 MiB as an
//! arm64 Image and about a third of that compressed, and every pristine image lives in the
//! hypervisor's 32 MiB region, so large images are kept compressed.
//!
//! The inflater is `miniz_oxide`'s allocation-free core, writing straight into the guest's
//! memory (the whole output is the window, so no ring buffer is needed). The stream comes from
//! the image the hypervisor booted from (the composer wrote it), not from a guest; it is still
//! checked in full: its zlib header, its Adler-32 and its exact length, so a corrupt image ends
//! in an error, never in a partly loaded guest that runs.

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Why an image could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The compressed stream is malformed or its checksum does not match.
    Corrupt,
    /// It inflates to fewer bytes than the image's length.
    Short {
        /// Bytes it inflated to.
        inflated: usize,
    },
    /// It inflates to more bytes than the image's length.
    Long,
    /// Stored as is, but the store and the destination differ in length.
    LengthMismatch,
}

/// Puts `store` into `destination`: a copy if `compressed` is false, else inflates the zlib
/// stream, which must fill `destination` exactly. `state` is the inflater's working memory
/// (about 11 KiB; the caller keeps one rather than putting it on an EL2 stack).
pub fn load(
    store: &[u8],
    compressed: bool,
    destination: &mut [u8],
    state: &mut DecompressorOxide,
) -> Result<(), LoadError> {
    if !compressed {
        if store.len() != destination.len() {
            return Err(LoadError::LengthMismatch);
        }
        destination.copy_from_slice(store);
        return Ok(());
    }
    state.init();
    let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
        | inflate_flags::TINFL_FLAG_COMPUTE_ADLER32
        | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, consumed, written) = decompress(state, store, destination, 0, flags);
    match status {
        TINFLStatus::Done if written == destination.len() && consumed == store.len() => Ok(()),
        TINFLStatus::Done if written < destination.len() => {
            Err(LoadError::Short { inflated: written })
        }
        // Output full but the stream goes on.
        TINFLStatus::HasMoreOutput => Err(LoadError::Long),
        _ => Err(LoadError::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::compress_to_vec_zlib;

    fn image(len: usize) -> Vec<u8> {
        // Compressible but not trivially: a kernel-like mix of runs and noise.
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 7 < 3 { 0 } else { state as u8 }
            })
            .collect()
    }

    fn state() -> Box<DecompressorOxide> {
        Box::default()
    }

    #[test]
    fn a_compressed_image_inflates_to_its_bytes() {
        let original = image(3 << 20);
        let stored = compress_to_vec_zlib(&original, 6);
        assert!(stored.len() < original.len());
        let mut memory = vec![0xaa; original.len()];
        assert_eq!(load(&stored, true, &mut memory, &mut state()), Ok(()));
        assert!(memory == original);
        // The same state serves the next image (a reset reloads every image).
        let second = image(5000);
        let stored = compress_to_vec_zlib(&second, 1);
        let mut memory = vec![0; second.len()];
        let mut shared = state();
        assert_eq!(load(&stored, true, &mut memory, &mut shared), Ok(()));
        assert_eq!(load(&stored, true, &mut memory, &mut shared), Ok(()));
        assert!(memory == second);
    }

    #[test]
    fn an_image_stored_as_is_is_copied() {
        let original = image(4096);
        let mut memory = vec![0; 4096];
        assert_eq!(load(&original, false, &mut memory, &mut state()), Ok(()));
        assert_eq!(memory, original);
        let mut wrong = vec![0; 4095];
        assert_eq!(
            load(&original, false, &mut wrong, &mut state()),
            Err(LoadError::LengthMismatch)
        );
    }

    #[test]
    fn a_stream_of_the_wrong_length_is_refused() {
        let original = image(10_000);
        let stored = compress_to_vec_zlib(&original, 6);
        let mut longer = vec![0; 10_001];
        assert_eq!(
            load(&stored, true, &mut longer, &mut state()),
            Err(LoadError::Short { inflated: 10_000 })
        );
        let mut shorter = vec![0; 9_999];
        assert_eq!(
            load(&stored, true, &mut shorter, &mut state()),
            Err(LoadError::Long)
        );
    }

    #[test]
    fn a_corrupt_stream_is_refused_never_half_accepted() {
        let original = image(20_000);
        let stored = compress_to_vec_zlib(&original, 6);
        let mut memory = vec![0; original.len()];
        // A flipped bit in the body, a broken header, a wrong checksum, a truncation.
        let mut flipped = stored.clone();
        flipped[stored.len() / 2] ^= 0x10;
        let mut header = stored.clone();
        header[0] = 0x00;
        let mut checksum = stored.clone();
        *checksum.last_mut().unwrap() ^= 1;
        let truncated = &stored[..stored.len() - 10];
        for (what, bytes) in [
            ("flipped", &flipped[..]),
            ("header", &header[..]),
            ("checksum", &checksum[..]),
            ("truncated", truncated),
        ] {
            assert_ne!(
                load(bytes, true, &mut memory, &mut state()),
                Ok(()),
                "{what}"
            );
        }
    }
}
