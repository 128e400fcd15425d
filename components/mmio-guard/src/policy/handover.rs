//! The guard's state across a hot-swap (docs/hot-swap.md): per VM, whether it enrolled, the
//! granules it mapped (as ranges) and its refusal count. A new instance takes it only for the
//! VMs it serves itself, and only ranges that make a valid set; anything else is refused and
//! the swap rolls back, so a VM never loses a granule it mapped.

use serde::{Deserialize, Serialize};

use super::ranges::{GranuleRange, GranuleRanges};
use super::{GRANULE_SHIFT, Granule, Guard, IPA_LIMIT, MAX_GRANULE_RANGES, MAX_VMS};

/// The hand-over's shape, whose schema hash tags it.
const SCHEMA_TEXT: &str = "HandOver { vms: [VmHandOver { vm: u16, enrolled: bool, \
                           refused: u64, ranges: [(u64, u64)] }], refused_unknown_vm: u64 }";

/// The hand-over's schema hash.
pub const SCHEMA: u64 = hv_ipc::schema_hash(SCHEMA_TEXT);

/// Its version.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct VmHandOver {
    vm: u16,
    enrolled: bool,
    refused: u64,
    /// Mapped granules `[first, end)`, by granule number.
    ranges: heapless::Vec<(u64, u64), MAX_GRANULE_RANGES>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct HandOver {
    vms: heapless::Vec<VmHandOver, MAX_VMS>,
    refused_unknown_vm: u64,
}

/// Why a hand-over is not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotTaken;

impl Guard {
    /// Writes the state into `out`, returning its length (`None` if it does not fit).
    pub fn export(&self, out: &mut [u8]) -> Option<usize> {
        let mut vms = heapless::Vec::new();
        for state in self.vms.iter().flatten() {
            let ranges = state
                .mapped
                .as_slice()
                .iter()
                .map(|range| (range.first.0, range.end.0))
                .collect();
            let vm = VmHandOver {
                vm: state.config.vm,
                enrolled: state.enrolled,
                refused: state.refused,
                ranges,
            };
            vms.push(vm).ok()?;
        }
        let handover = HandOver {
            vms,
            refused_unknown_vm: self.refused_unknown_vm,
        };
        postcard::to_slice(&handover, out)
            .ok()
            .map(|bytes| bytes.len())
    }

    /// Takes the state `bytes` an instance of the same schema exported. Nothing changes
    /// unless all of it is taken.
    pub fn import(&mut self, bytes: &[u8]) -> Result<(), NotTaken> {
        let handover: HandOver = postcard::from_bytes(bytes).map_err(|_| NotTaken)?;
        let mut taken = self.clone();
        for vm in &handover.vms {
            let state = taken.vm_mut(vm.vm).ok_or(NotTaken)?;
            let mut ranges = heapless::Vec::<GranuleRange, MAX_GRANULE_RANGES>::new();
            let limit = IPA_LIMIT >> GRANULE_SHIFT;
            for &(first, end) in &vm.ranges {
                // Sorted, disjoint, non-adjacent, non-empty and inside the IPA space: a set
                // `GranuleRanges` could have made.
                let follows = ranges.last().is_none_or(|last| last.end.0 < first);
                if !(first < end && end <= limit && follows) {
                    return Err(NotTaken);
                }
                let range = GranuleRange {
                    first: Granule(first),
                    end: Granule(end),
                };
                ranges.push(range).map_err(|_| NotTaken)?;
            }
            // A VM the configuration enforces stays enrolled whatever the state says.
            state.enrolled |= vm.enrolled;
            state.refused = vm.refused;
            state.mapped = GranuleRanges::from_sorted(ranges);
        }
        taken.refused_unknown_vm = handover.refused_unknown_vm;
        *self = taken;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mode, VmConfig};
    use super::*;
    use hv_ipc::guest_abi::kvm::{MMIO_GUARD_ENROLL, MMIO_GUARD_MAP};

    fn guard() -> Guard {
        let config = |vm, mode| VmConfig {
            vm,
            mode,
            ram_start: 0x4000_0000,
            ram_end: 0x8000_0000,
        };
        Guard::new(&[config(0, Mode::Optional), config(1, Mode::Enforced)])
    }

    fn call(guard: &mut Guard, vm: u16, function: u32, x1: u64) {
        let mut regs = [0u64; 8];
        regs[0] = u64::from(function);
        regs[1] = x1;
        guard.hypercall(vm, &regs);
    }

    #[test]
    fn a_new_instance_gets_every_vms_granules_and_enrolment() {
        let mut old = guard();
        call(&mut old, 0, MMIO_GUARD_ENROLL, 0);
        for page in [0x0900_0000u64, 0x0900_1000, 0x0800_0000, 0x0a00_0000] {
            call(&mut old, 0, MMIO_GUARD_MAP, page);
        }
        call(&mut old, 1, MMIO_GUARD_MAP, 0x0900_0000);
        let mut bytes = [0u8; 4096];
        let len = old.export(&mut bytes).unwrap();
        let mut new = guard();
        new.import(&bytes[..len]).unwrap();
        for vm in [0, 1] {
            assert_eq!(new.mapped(vm), old.mapped(vm), "vm{vm}");
            assert_eq!(new.is_enrolled(vm), old.is_enrolled(vm));
        }
        assert!(new.is_enrolled(0));
        assert_eq!(new.mapped(0).len(), 3);
    }

    #[test]
    fn a_state_that_is_not_a_valid_set_is_not_taken_and_changes_nothing() {
        let mut new = guard();
        call(&mut new, 0, MMIO_GUARD_MAP, 0x0900_0000);
        let before = new.mapped(0).to_vec();
        let bad = |ranges: &[(u64, u64)], vm: u16| {
            let handover = HandOver {
                vms: heapless::Vec::from_slice(&[VmHandOver {
                    vm,
                    enrolled: true,
                    refused: 0,
                    ranges: heapless::Vec::from_slice(ranges).unwrap(),
                }])
                .unwrap(),
                refused_unknown_vm: 0,
            };
            postcard::to_allocvec(&handover).unwrap()
        };
        for bytes in [
            bad(&[(5, 5)], 0),
            bad(&[(5, 9), (9, 12)], 0),
            bad(&[(9, 12), (1, 3)], 0),
            bad(&[(1, u64::MAX)], 0),
            bad(&[(1, 2)], 3),
            vec![0xff; 16],
        ] {
            assert_eq!(new.import(&bytes), Err(NotTaken), "{bytes:?}");
            assert_eq!(new.mapped(0), &before[..]);
        }
    }

    #[test]
    fn a_full_set_fits_the_runtimes_buffer() {
        let mut old = guard();
        for vm in [0, 1] {
            for index in 0..MAX_GRANULE_RANGES as u64 {
                call(&mut old, vm, MMIO_GUARD_MAP, 0x1000_0000 + index * 0x2000);
            }
            assert_eq!(old.mapped(vm).len(), MAX_GRANULE_RANGES);
        }
        let mut bytes = vec![0u8; hv_ipc::lifecycle::STATE_MAX];
        let len = old.export(&mut bytes).unwrap();
        let mut new = guard();
        new.import(&bytes[..len]).unwrap();
        assert_eq!(new.mapped(1), old.mapped(1));
    }
}
