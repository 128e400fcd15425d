//! What the host may do to the GIC it shares with guests. Once guests run, the host's stage 2
//! leaves out the distributor and the GICv3 redistributor frames of the guests' CPUs
//! (`System::host_filtered_gic_ranges`), its accesses there trap to this component, and this
//! module decides each one; the kernel then makes the allowed access for it (GIC_ACCESS). The
//! host keeps its direct path to its own CPU interface and its own redistributors, and every
//! distributor register it needs for its own interrupts passes through. What it may not do:
//!
//! - disable the distributor's groups (GICD_CTLR), which would silence every guest CPU's
//!   interrupts: the enables (and, on GICv3, affinity routing) stay set whatever it writes;
//! - touch a guest CPU's redistributor: its reads pass (Linux reads every frame's GICR_TYPER to
//!   find its own), its writes are dropped;
//! - send a GICv2 SGI to a guest CPU: GICD_SGIR's target list loses the guests' CPUs
//!   ("all but me" becomes the list of the other host CPUs). (A GICv3 host sends SGIs through
//!   ICC_SGI1R_EL1, which does not trap for it; a guest CPU takes such an SGI at EL2 and drops
//!   it, so the guest never sees it.)
//!
//! Pure logic, host-tested; `component/emulation.rs` makes the kernel operations.

use hv_component_config::Region;
use hv_vgic::Version;

/// GICD_CTLR.
const GICD_CTLR: u64 = 0x000;
/// GICD_SGIR (GICv2).
const GICD_SGIR: u64 = 0xf00;
/// GICD_CTLR bits the host may not clear: EnableGrp0, EnableGrp1, and on GICv3 ARE.
const V2_KEPT: u64 = 0b11;
const V3_KEPT: u64 = 0b1_0011;

/// What the host's GIC knows of the system.
#[derive(Clone, Copy, Debug)]
pub struct HostGic<'a> {
    /// The machine's GIC version.
    pub version: Version,
    /// The distributor.
    pub distributor: Region,
    /// The ranges kept from the host (distributor first, then guest redistributor frames).
    pub filtered: &'a [Region],
    /// CPUs pinned to guests (bit n: CPU n).
    pub guest_cpus: u8,
    /// Every CPU the system runs (bit n: CPU n).
    pub all_cpus: u8,
}

/// What to do with one host access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a filtered GIC address.
    NotGic,
    /// Read the register for the host.
    Read,
    /// Write this value for the host (possibly changed from what it wrote).
    Write(u64),
    /// Drop the write: the host's access completes and changes nothing.
    Drop,
}

impl HostGic<'_> {
    /// Decides the host's access of `size` bytes at `address` (a write of `value` if `write`)
    /// from its vCPU `vcpu` (the host's vCPU *n* is CPU *n*).
    pub fn decide(&self, address: u64, write: Option<u64>, vcpu: u16) -> Decision {
        if !self.filtered.iter().any(|range| range.contains(address)) {
            return Decision::NotGic;
        }
        let Some(value) = write else {
            return Decision::Read;
        };
        if !self.distributor.contains(address) {
            // A guest CPU's redistributor.
            return Decision::Drop;
        }
        match address - self.distributor.base {
            GICD_CTLR => Decision::Write(
                value
                    | match self.version {
                        Version::V2 => V2_KEPT,
                        Version::V3 => V3_KEPT,
                    },
            ),
            GICD_SGIR if self.version == Version::V2 => self.sgi(value, vcpu),
            _ => Decision::Write(value),
        }
    }

    /// A GICv2 SGIR write, its targets kept to host CPUs.
    fn sgi(&self, value: u64, vcpu: u16) -> Decision {
        let host_cpus = self.all_cpus & !self.guest_cpus;
        let me = 1u8.checked_shl(u32::from(vcpu)).unwrap_or(0);
        let targets = match (value >> 24) & 0b11 {
            // The list given.
            0 => ((value >> 16) & 0xff) as u8 & host_cpus,
            // All but the sender: the other host CPUs, as a list.
            1 => host_cpus & !me,
            // The sender itself.
            2 => return Decision::Write(value),
            _ => return Decision::Drop,
        };
        if targets == 0 {
            return Decision::Drop;
        }
        Decision::Write((value & 0xffff) | u64::from(targets) << 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GICD: u64 = 0x0800_0000;
    const RANGES: [Region; 2] = [
        Region {
            base: GICD,
            size: 0x1_0000,
        },
        Region {
            base: 0x080c_0000,
            size: 0x4_0000,
        },
    ];

    fn gic(version: Version) -> HostGic<'static> {
        HostGic {
            version,
            distributor: RANGES[0],
            filtered: &RANGES,
            // Host on CPUs 0 and 3, guests on 1 and 2.
            guest_cpus: 0b0110,
            all_cpus: 0b1111,
        }
    }

    #[test]
    fn the_host_cannot_turn_the_distributor_off() {
        assert_eq!(
            gic(Version::V3).decide(GICD, Some(0), 0),
            Decision::Write(0b1_0011)
        );
        assert_eq!(
            gic(Version::V2).decide(GICD, Some(0), 0),
            Decision::Write(0b11)
        );
        // Its reads, and its other registers, pass.
        assert_eq!(gic(Version::V3).decide(GICD, None, 0), Decision::Read);
        assert_eq!(
            gic(Version::V3).decide(GICD + 0x6100, Some(0x1), 0),
            Decision::Write(0x1)
        );
    }

    #[test]
    fn guest_redistributors_read_but_never_write() {
        let host = gic(Version::V3);
        assert_eq!(host.decide(0x080c_0008, None, 0), Decision::Read);
        assert_eq!(host.decide(0x080d_0180, Some(1 << 27), 0), Decision::Drop);
        // The host's own redistributor is not filtered at all (it is mapped).
        assert_eq!(host.decide(0x080a_0014, Some(0), 0), Decision::NotGic);
    }

    #[test]
    fn gicv2_sgis_reach_host_cpus_only() {
        let host = gic(Version::V2);
        let sgir = GICD + 0xf00;
        // To CPUs 1 (guest) and 3 (host): CPU 3 only.
        assert_eq!(
            host.decide(sgir, Some(0b1010 << 16 | 5), 0),
            Decision::Write(0b1000 << 16 | 5)
        );
        // Only to a guest CPU: dropped.
        assert_eq!(host.decide(sgir, Some(0b0010 << 16 | 5), 0), Decision::Drop);
        // All but me, from CPU 0: CPU 3 as a list.
        assert_eq!(
            host.decide(sgir, Some(1 << 24 | 0x8000 | 2), 0),
            Decision::Write(0b1000 << 16 | 0x8000 | 2)
        );
        // To myself, and the reserved filter.
        assert_eq!(
            host.decide(sgir, Some(2 << 24 | 1), 3),
            Decision::Write(2 << 24 | 1)
        );
        assert_eq!(host.decide(sgir, Some(3 << 24 | 1), 3), Decision::Drop);
        // On GICv3 offset 0xF00 is not SGIR: it passes.
        assert_eq!(
            gic(Version::V3).decide(sgir, Some(0b10 << 16), 0),
            Decision::Write(0b10 << 16)
        );
    }
}
