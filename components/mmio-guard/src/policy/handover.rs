//! The guard's state across a hot-swap (docs/hot-swap.md): per VM, whether it enrolled, the
//! granules it mapped (as ranges) and its refusal count. A new instance takes it only for the
//! VMs it serves itself, and only ranges that make a valid set; anything else is refused and
//! the swap rolls back, so a VM never loses a granule it mapped.
//!
//! The bytes are a sequence of postcard values, written and read one at a time rather than as
//! one structure: a whole hand-over decoded at once (and the guard copied to apply it
//! atomically) would need tens of KiB of the component's 64 KiB stack. Reading is done twice
//! instead, once to check everything and once to apply it, so that nothing changes unless all
//! of it is taken.

use hv_ipc::lifecycle::{BadState, StateReader, StateWriter};

use super::ranges::{GranuleRange, GranuleRanges};
use super::{GRANULE_SHIFT, Granule, Guard, IPA_LIMIT, MAX_GRANULE_RANGES, MAX_VMS};

/// The hand-over's shape, whose schema hash tags it.
const SCHEMA_TEXT: &str = "refused_unknown_vm: u64, vms: u32, then per VM: (vm: u16, \
                           enrolled: bool, refused: u64, ranges: u32), then per range: \
                           (first: u64, end: u64) in granules";

/// The hand-over's schema hash.
pub const SCHEMA: u64 = hv_ipc::schema_hash(SCHEMA_TEXT);

/// Its version.
pub const VERSION: u32 = 2;

/// Why a hand-over is not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotTaken;

impl From<BadState> for NotTaken {
    fn from(_: BadState) -> Self {
        NotTaken
    }
}

impl Guard {
    /// Writes the state into `out`, returning its length (`None` if it does not fit).
    pub fn export(&self, out: &mut [u8]) -> Option<usize> {
        let mut writer = StateWriter::new(out);
        writer.put(&self.refused_unknown_vm)?;
        writer.put(&(self.vms.iter().flatten().count() as u32))?;
        for state in self.vms.iter().flatten() {
            let ranges = state.mapped.as_slice();
            writer.put(&(
                state.config.vm,
                state.enrolled,
                state.refused,
                ranges.len() as u32,
            ))?;
            for range in ranges {
                writer.put(&(range.first.0, range.end.0))?;
            }
        }
        Some(writer.len())
    }

    /// Takes the state `bytes` an instance of the same schema exported. Nothing changes
    /// unless all of it is taken.
    pub fn import(&mut self, bytes: &[u8]) -> Result<(), NotTaken> {
        self.walk(bytes, false)?;
        self.walk(bytes, true)
    }

    /// Reads a hand-over, checking it (and applying it, with `apply`).
    fn walk(&mut self, bytes: &[u8], apply: bool) -> Result<(), NotTaken> {
        let mut reader = StateReader::new(bytes);
        let refused_unknown_vm: u64 = reader.take()?;
        let vms: u32 = reader.take()?;
        if vms as usize > MAX_VMS {
            return Err(NotTaken);
        }
        let limit = IPA_LIMIT >> GRANULE_SHIFT;
        for _ in 0..vms {
            let (vm, enrolled, refused, count): (u16, bool, u64, u32) = reader.take()?;
            if self.vm(vm).is_none() || count as usize > MAX_GRANULE_RANGES {
                return Err(NotTaken);
            }
            let mut ranges = heapless::Vec::<GranuleRange, MAX_GRANULE_RANGES>::new();
            for _ in 0..count {
                let (first, end): (u64, u64) = reader.take()?;
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
            if apply {
                let state = self.vm_mut(vm).ok_or(NotTaken)?;
                // A VM the configuration enforces stays enrolled whatever the state says.
                state.enrolled |= enrolled;
                state.refused = refused;
                state.mapped = GranuleRanges::from_sorted(ranges);
            }
        }
        reader.finish()?;
        if apply {
            self.refused_unknown_vm = refused_unknown_vm;
        }
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
            let mut bytes = postcard::to_allocvec(&0u64).unwrap();
            bytes.extend(postcard::to_allocvec(&1u32).unwrap());
            let header = (vm, true, 0u64, ranges.len() as u32);
            bytes.extend(postcard::to_allocvec(&header).unwrap());
            for range in ranges {
                bytes.extend(postcard::to_allocvec(range).unwrap());
            }
            bytes
        };
        for bytes in [
            bad(&[(5, 5)], 0),
            bad(&[(5, 9), (9, 12)], 0),
            bad(&[(9, 12), (1, 3)], 0),
            bad(&[(1, u64::MAX)], 0),
            bad(&[(1, 2)], 3),
            vec![0xff; 16],
            {
                let mut trailing = bad(&[(1, 2)], 0);
                trailing.push(0);
                trailing
            },
            {
                // VM 0's part is good, VM 3's is not: VM 0 is left as it was too.
                let mut two = postcard::to_allocvec(&0u64).unwrap();
                two.extend(postcard::to_allocvec(&2u32).unwrap());
                two.extend(postcard::to_allocvec(&(0u16, true, 0u64, 1u32)).unwrap());
                two.extend(postcard::to_allocvec(&(7u64, 9u64)).unwrap());
                two.extend(postcard::to_allocvec(&(3u16, true, 0u64, 0u32)).unwrap());
                two
            },
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
