//! Addresses by kind: a guest's intermediate physical address ([`Ipa`]) and a physical address
//! ([`PhysAddr`]), so that one is never passed where the other is meant.
//!
//! Both are plain `u64`s on the wire (`#[serde(transparent)]`), so messages that carry them
//! encode exactly as before. The fault decoding that every stage-2 abort needs,
//! [`Ipa::of_fault`], lives here once instead of at each use.

use core::fmt;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Bytes in a page: the translation granule of every stage 2 the hypervisor builds.
pub const PAGE_SIZE: u64 = 4096;

/// An intermediate physical address: what a VM (or a component) sees as physical, before its
/// stage 2 translates it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ipa(pub u64);

/// A physical address: what the hardware's bus sees after every stage of translation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PhysAddr(pub u64);

impl MaxSize for Ipa {
    const POSTCARD_MAX_SIZE: usize = u64::POSTCARD_MAX_SIZE;
}

impl MaxSize for PhysAddr {
    const POSTCARD_MAX_SIZE: usize = u64::POSTCARD_MAX_SIZE;
}

/// HPFAR_EL2.FIPA, bits 43:4 (IPA bits 51:12; FEAT_LPA's high bits included).
const HPFAR_FIPA_MASK: u64 = 0xfff_ffff_fff0;
/// HPFAR_EL2.FIPA is the IPA shifted right by 8 (bit 4 holds IPA bit 12).
const HPFAR_FIPA_SHIFT: u32 = 8;

impl Ipa {
    /// The faulting byte of a stage-2 abort: the page HPFAR_EL2 reports (FIPA) with the offset
    /// within it from FAR_EL2 (the two registers' only common ground is that offset, since FAR
    /// holds the virtual address).
    pub const fn of_fault(hpfar: u64, far: u64) -> Self {
        Self(((hpfar & HPFAR_FIPA_MASK) << HPFAR_FIPA_SHIFT) | (far & (PAGE_SIZE - 1)))
    }

    /// The start of its page.
    pub const fn page(self) -> Self {
        Self(self.0 & !(PAGE_SIZE - 1))
    }

    /// The same number as a physical address: right where the stage 2 is an identity map (the
    /// host's, a component's), and only there.
    pub const fn identity(self) -> PhysAddr {
        PhysAddr(self.0)
    }
}

impl PhysAddr {
    /// Whether it starts a page.
    pub const fn is_page_aligned(self) -> bool {
        self.0 & (PAGE_SIZE - 1) == 0
    }
}

impl fmt::Display for Ipa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPA {:#x}", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_ipa_is_hpfars_page_and_fars_offset() {
        // IPA 0x8_1234_5678 faulting at VA 0xffff_0000_dead_b678.
        let hpfar = 0x8_1234_5000 >> 8;
        assert_eq!(
            Ipa::of_fault(hpfar, 0xffff_0000_dead_b678),
            Ipa(0x8_1234_5678)
        );
        // HPFAR's bits outside FIPA (NS, RES0) are not address bits.
        assert_eq!(
            Ipa::of_fault(hpfar | 0xf | (1 << 63), 0x678),
            Ipa(0x8_1234_5678)
        );
        // The widest IPA HPFAR can report (52 bits).
        assert_eq!(Ipa::of_fault(u64::MAX, 0xfff), Ipa(0x000f_ffff_ffff_ffff));
    }

    #[test]
    fn pages_and_offsets() {
        let ipa = Ipa(0x4000_1234);
        assert_eq!(ipa.page(), Ipa(0x4000_1000));
        assert_eq!(ipa.identity(), PhysAddr(0x4000_1234));
        assert!(
            PhysAddr(0x4000_1000).is_page_aligned() && !PhysAddr(0x4000_1008).is_page_aligned()
        );
        assert_eq!(ipa.to_string(), "IPA 0x40001234");
    }

    #[test]
    fn they_encode_as_plain_u64s() {
        let mut ipa = [0u8; 16];
        let mut raw = [0u8; 16];
        let encoded = postcard::to_slice(&Ipa(0x4000_1234), &mut ipa).unwrap();
        let plain = postcard::to_slice(&0x4000_1234u64, &mut raw).unwrap();
        assert_eq!(encoded, plain);
        assert_eq!(Ipa::POSTCARD_MAX_SIZE, u64::POSTCARD_MAX_SIZE);
    }
}
