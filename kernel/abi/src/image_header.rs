//! The arm64 `Image` header the hypervisor's image starts with: where the composer finds the
//! magic and writes the image size, and where the kernel reads that size back (the header is
//! described in Linux's Documentation/arch/arm64/booting.rst).

/// Byte offset of the `image_size` field in the arm64 Image header the kernel starts with.
pub const IMAGE_HEADER_SIZE_OFFSET: usize = 16;
/// Byte offset of the "ARM\x64" magic in an arm64 Image header.
pub const IMAGE_HEADER_MAGIC_OFFSET: usize = 0x38;
/// The arm64 Image header magic.
pub const IMAGE_HEADER_MAGIC: [u8; 4] = *b"ARM\x64";
