//! The emulated GIC distributor of one guest VM, as a pure state machine.
//!
//! A guest's GIC has two halves. The CPU interface (acknowledge, end of interrupt, priority
//! mask) is the hardware's virtual CPU interface, fed through list registers that the EL2
//! kernel manages. The distributor (GICv2: GICD; GICv3: GICD plus one redistributor per vCPU)
//! is what this crate emulates: the VM manager forwards every guest access to those frames here
//! ([`Distributor::read`], [`Distributor::write`]), tells it about device lines and SGIs
//! ([`Distributor::set_level`], [`Distributor::inject_edge`], [`Distributor::send_sgi_v3`]),
//! and asks it what each vCPU should see in its list registers ([`Distributor::deliverable`],
//! [`Distributor::mark_in_list_register`], [`Distributor::sync_from_list_register`]).
//!
//! Every call that can change what a vCPU should be shown returns [`Changes`]: the vCPUs whose
//! list registers the caller should re-evaluate (and kick, if they are running).
//!
//! `docs/vgic.md` describes what the model implements and leaves out. The modules:
//! - `distributor`: the [`Distributor`] itself, the access dispatch and the interrupt-side API;
//! - `state`: one interrupt's state and its transitions (pending, active, the list-register cycle);
//! - `access`: size, alignment and range checks, and byte lanes of wider registers;
//! - `regs`: the decoded register and the register families every frame shares (enable,
//!   pending, active, group, priority, configuration);
//! - `v2`, `v3`: each version's register map and the registers only it has.
//!
//! `no_std`, no allocation, no `unsafe`; the host tests every rule.
#![no_std]

mod access;
mod distributor;
mod handover;
mod regs;
mod state;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

use core::ops::{BitOr, BitOrAssign};

pub use distributor::Distributor;
pub use handover::SCHEMA_TEXT as HANDOVER_SCHEMA_TEXT;

/// Most vCPUs one VM has (and the most CPU interfaces GICv2 can name in a target list).
pub const MAX_VCPUS: usize = 8;
/// Interrupt IDs 0..NR_IRQS exist: SGIs 0-15 and PPIs 16-31 (one copy per vCPU), SPIs 32 up.
pub const NR_IRQS: usize = 256;
/// The priority bits implemented (5): other bits read as zero, so the value fits a list register.
pub const PRIORITY_MASK: u8 = 0xF8;

/// Size of the GICv2 distributor frame.
pub const GICD_V2_FRAME_SIZE: u64 = 0x1000;
/// Size of the GICv3 distributor frame.
pub const GICD_V3_FRAME_SIZE: u64 = 0x1_0000;
/// Size of one GICv3 redistributor (RD_base then SGI_base); redistributor i is at i times this.
pub const GICR_FRAME_SIZE: u64 = 0x2_0000;
/// Offset of the SGI_base frame inside a redistributor.
pub const GICR_SGI_BASE: u64 = 0x1_0000;

/// Which GIC architecture the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// GICv2 (ARM IHI 0048B): GICD only, CPU interface memory-mapped (GICV).
    V2,
    /// GICv3 (ARM IHI 0069) with affinity routing always on: GICD plus one GICR per vCPU.
    V3,
}

/// The register frame an access is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The distributor (GICD).
    Gicd,
    /// GICv3 only: the redistributor of this vCPU ([`GICR_FRAME_SIZE`] bytes: RD_base, then
    /// SGI_base at [`GICR_SGI_BASE`]).
    Redistributor(usize),
}

/// Why an access was refused. The caller injects an external abort (the access changed
/// nothing). Reserved offsets inside a frame are not an error: they read as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadAccess {
    /// A size the register does not accept (or not 1, 2, 4 or 8 bytes at all).
    Size,
    /// The offset is not a multiple of the size.
    Alignment,
    /// The access reaches past the end of the frame.
    OutOfRange,
    /// A redistributor on GICv2, or of a vCPU the VM does not have.
    NoSuchFrame,
    /// The accessing vCPU is not one of the VM's.
    NoSuchVcpu,
}

/// Why [`Distributor::new`] refused a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A VM has at least one vCPU.
    NoVcpus,
    /// More than [`MAX_VCPUS`].
    TooManyVcpus,
}

/// The vCPUs whose deliverable interrupts may have changed: the caller re-evaluates their list
/// registers and kicks the ones that are running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    vcpus: u8,
}

impl Changes {
    /// Nothing changed.
    pub const NONE: Self = Self { vcpus: 0 };

    /// Just this vCPU (nothing, for an index that cannot be a vCPU).
    pub const fn vcpu(vcpu: usize) -> Self {
        if vcpu < MAX_VCPUS {
            Self { vcpus: 1 << vcpu }
        } else {
            Self::NONE
        }
    }

    /// vCPUs 0..nr_vcpus.
    pub const fn first(nr_vcpus: usize) -> Self {
        if nr_vcpus >= MAX_VCPUS {
            Self { vcpus: u8::MAX }
        } else {
            Self {
                vcpus: (1 << nr_vcpus) - 1,
            }
        }
    }

    /// Bit i set: vCPU i changed.
    pub const fn mask(self) -> u8 {
        self.vcpus
    }

    /// Whether this vCPU changed.
    pub const fn includes(self, vcpu: usize) -> bool {
        vcpu < MAX_VCPUS && self.vcpus & (1 << vcpu) != 0
    }

    /// Whether no vCPU changed.
    pub const fn is_empty(self) -> bool {
        self.vcpus == 0
    }

    /// The vCPUs that changed, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_VCPUS).filter(move |&vcpu| self.includes(vcpu))
    }
}

impl BitOr for Changes {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self {
            vcpus: self.vcpus | other.vcpus,
        }
    }
}

impl BitOrAssign for Changes {
    fn bitor_assign(&mut self, other: Self) {
        self.vcpus |= other.vcpus;
    }
}

/// One interrupt a vCPU should be shown: what goes into a list register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// The interrupt ID (the list register's virtual ID).
    pub intid: u32,
    /// Its priority (lower is more urgent), 5 bits as [`PRIORITY_MASK`] keeps them.
    pub priority: u8,
    /// Group 1 (else group 0): the list register's group bit.
    pub group1: bool,
    /// GICv2 SGIs: the vCPU that sent it (the list register's CPUID field). `None` otherwise.
    pub source: Option<u8>,
}

/// The state field of a list register, as the kernel reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    /// Empty: the guest acknowledged and ended the interrupt (or the register was never used).
    Invalid,
    /// Not yet acknowledged.
    Pending,
    /// Acknowledged, not yet ended.
    Active,
    /// Acknowledged and pending again.
    PendingActive,
}

impl LrState {
    pub(crate) const fn from_bits(pending: bool, active: bool) -> Self {
        match (pending, active) {
            (false, false) => Self::Invalid,
            (true, false) => Self::Pending,
            (false, true) => Self::Active,
            (true, true) => Self::PendingActive,
        }
    }

    pub(crate) const fn pending(self) -> bool {
        matches!(self, Self::Pending | Self::PendingActive)
    }

    pub(crate) const fn active(self) -> bool {
        matches!(self, Self::Active | Self::PendingActive)
    }
}
