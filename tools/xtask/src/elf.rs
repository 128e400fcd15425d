//! ELF to flat binary, and symbol lookup, with the `object` crate (this machine has no
//! llvm-tools, so no objcopy).

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSegment, ObjectSymbol};

/// A flat image made from an ELF's loadable segments.
pub struct FlatImage {
    /// Address of the first byte.
    pub load_address: u64,
    /// The bytes, gaps between segments zero-filled; bss past the last file byte is not
    /// included.
    pub bytes: Vec<u8>,
    /// The ELF's entry point.
    pub entry: u64,
    /// Bytes of memory the segments span from `load_address`, bss included.
    pub memory_size: u64,
}

/// True if `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Lays out the loadable segments of an AArch64 ELF as one flat image.
pub fn to_flat(elf: &[u8]) -> Result<FlatImage> {
    let file = object::File::parse(elf).context("not a readable ELF file")?;
    if file.architecture() != object::Architecture::Aarch64 {
        bail!("the ELF is for {:?}, not AArch64", file.architecture());
    }
    let memory_end = file
        .segments()
        .map(|segment| segment.address() + segment.size())
        .max();
    let segments: Vec<_> = file
        .segments()
        .filter_map(|segment| {
            let data = segment.data().ok()?;
            (!data.is_empty()).then_some((segment.address(), data))
        })
        .collect();
    let load_address = segments
        .iter()
        .map(|(address, _)| *address)
        .min()
        .context("the ELF has no loadable data")?;
    let end = segments
        .iter()
        .map(|(address, data)| address + data.len() as u64)
        .max()
        .unwrap_or(load_address);
    let mut bytes = vec![0u8; (end - load_address) as usize];
    for (address, data) in segments {
        let at = (address - load_address) as usize;
        bytes[at..at + data.len()].copy_from_slice(data);
    }
    let memory_size = memory_end.unwrap_or(end).max(end) - load_address;
    Ok(FlatImage {
        load_address,
        bytes,
        entry: file.entry(),
        memory_size,
    })
}

/// The address of symbol `name`.
pub fn symbol(elf: &[u8], name: &str) -> Result<u64> {
    let file = object::File::parse(elf).context("not a readable ELF file")?;
    file.symbols()
        .find(|symbol| symbol.name() == Ok(name))
        .map(|symbol| symbol.address())
        .with_context(|| format!("the ELF has no symbol {name}"))
}
