//! A world's saved general-purpose registers, PC and PSTATE.

/// A world's general-purpose registers, PC and PSTATE, where the exception vectors save them
/// and load them from (layout shared with `arch/aarch64/entry.S`: x0..x30 at 0, ELR at 248,
/// SPSR at 256).
///
/// Every world has one, kept in place ([`crate::worlds`]): the vectors save a trapping world's
/// registers straight into its frame and resume whichever world's frame is current, so a
/// switch between worlds copies no registers.
#[repr(C)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// Where the world resumes (ELR_EL2).
    pub elr: u64,
    /// Its PSTATE (SPSR_EL2).
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<GuestFrame>() == 272);

impl GuestFrame {
    /// Every register zero.
    pub const ZERO: Self = Self {
        x: [0; 31],
        elr: 0,
        spsr: 0,
        _pad: 0,
    };

    /// A world entering EL1h (DAIF masked) at `entry` with x0..x3 = `args`.
    pub fn entering(entry: u64, args: [u64; 4]) -> Self {
        let mut frame = Self {
            elr: entry,
            spsr: crate::controls::spsr_el1h_masked(),
            ..Self::ZERO
        };
        frame.x[..4].copy_from_slice(&args);
        frame
    }
}
