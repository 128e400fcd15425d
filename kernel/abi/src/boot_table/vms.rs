//! The checks that refuse guest VM descriptors the kernel could not run safely: a guest's
//! memory, CPUs, stage-2 root, entry, DTB and images, against RAM, the hypervisor's region,
//! the host's payloads, the components and the other guests.

use super::{BootTable, BootTableError, PayloadKind};
use crate::component::ROUTE_HOST_STAGE2;
use crate::range::PhysRange;
use crate::vm::{MAX_CPUS, MAX_GUESTS, NO_CPU, VmDescriptor};

/// Guest RAM is mapped in 2 MiB blocks.
const BLOCK: u64 = 2 << 20;
const PAGE: u64 = 4096;

impl BootTable {
    /// Checks the guest VMs: ids 1..=[`MAX_GUESTS`], distinct; memory 2 MiB aligned, inside
    /// RAM, off the hypervisor's region, the host's payloads and every other guest; RAM IPA
    /// 2 MiB aligned; at least one vCPU, each on a distinct CPU below [`MAX_CPUS`] that no
    /// other guest has; the stage-2 root a page of the component routed the host's stage-2
    /// faults, its own; entry and DTB inside its RAM's IPA range; each image kept in a
    /// VM-image payload's destination and copied inside its memory, off its other images.
    ///
    /// The kernel calls it after [`BootTable::validate`] and
    /// [`BootTable::validate_components`]; it does not repeat their checks.
    pub fn validate_vms(&self) -> Result<(), BootTableError> {
        for (index, vm) in self.vms().enumerate() {
            self.validate_vm(index, vm)?;
            for (other_index, other) in self.vms().enumerate().take(index) {
                if other.vm == vm.vm {
                    return Err(BootTableError::VmIdDuplicate(other_index, index));
                }
                if other.memory.overlaps(&vm.memory) {
                    return Err(BootTableError::VmMemoryOverlap(other_index, index));
                }
                let shares_cpu = (0..vm.vcpu_count())
                    .filter_map(|vcpu| vm.cpu_of(vcpu))
                    .any(|cpu| other.vcpu_on(cpu).is_some());
                if shares_cpu {
                    return Err(BootTableError::VmCpuShared(other_index, index));
                }
                if other.stage2_root == vm.stage2_root {
                    return Err(BootTableError::VmStage2RootMisplaced(index));
                }
            }
        }
        Ok(())
    }

    /// The checks of one guest on its own and against everything but the other guests.
    fn validate_vm(&self, index: usize, vm: &VmDescriptor) -> Result<(), BootTableError> {
        if vm.vm == 0 || usize::from(vm.vm) > MAX_GUESTS {
            return Err(BootTableError::VmIdInvalid(index));
        }

        let memory = vm.memory;
        if memory.is_empty()
            || !memory.start.is_multiple_of(BLOCK)
            || !memory.end.is_multiple_of(BLOCK)
        {
            return Err(BootTableError::VmMemoryMisaligned(index));
        }
        if !self.ram.contains_range(&memory) || memory.overlaps(&self.hypervisor) {
            return Err(BootTableError::VmMemoryMisplaced(index));
        }
        let on_host_payload = self.payloads().any(|payload| {
            matches!(
                payload.kind,
                PayloadKind::HostKernel | PayloadKind::HostDtb | PayloadKind::HostInitrd
            ) && payload.destination().overlaps(&memory)
        });
        if on_host_payload {
            return Err(BootTableError::VmMemoryOnHostPayload(index));
        }
        let ipa_range = PhysRange::from_size(vm.ram_ipa, memory.len());
        let Some(ipa_range) = ipa_range.filter(|_| vm.ram_ipa.is_multiple_of(BLOCK)) else {
            return Err(BootTableError::VmRamIpaMisaligned(index));
        };

        let count = vm.vcpu_count();
        let pinned = &vm.cpus[..count];
        let cpus_ok = count > 0
            && pinned.iter().all(|&cpu| usize::from(cpu) < MAX_CPUS)
            && pinned
                .iter()
                .enumerate()
                .all(|(at, cpu)| !pinned[..at].contains(cpu))
            && vm.cpus[count..].iter().all(|&cpu| cpu == NO_CPU);
        if !cpus_ok {
            return Err(BootTableError::VmCpusInvalid(index));
        }

        let root = vm.stage2_root;
        let in_owner = self.components().any(|component| {
            component.routes & ROUTE_HOST_STAGE2 != 0
                && root >= component.region.start
                && root.saturating_add(PAGE) <= component.region.end
        });
        if !root.is_multiple_of(PAGE) || !in_owner || root == self.host_stage2_root {
            return Err(BootTableError::VmStage2RootMisplaced(index));
        }

        let in_ram = |ipa: u64| ipa >= ipa_range.start && ipa < ipa_range.end;
        if !in_ram(vm.entry) || !vm.entry.is_multiple_of(4) {
            return Err(BootTableError::VmEntryOutsideRam(index));
        }
        if !in_ram(vm.dtb) || !vm.dtb.is_multiple_of(8) {
            return Err(BootTableError::VmDtbOutsideRam(index));
        }

        for (at, image) in vm.images().enumerate() {
            let store = image.store;
            let kept = self.hypervisor.contains_range(&store)
                && self.payloads().any(|payload| {
                    payload.kind == PayloadKind::VmImage && payload.destination() == store
                })
                && !self
                    .components()
                    .any(|component| component.region.overlaps(&store));
            if !kept {
                return Err(BootTableError::VmImageMissing(index));
            }
            let target = PhysRange::from_size(image.load_address, image.loaded_len)
                .ok_or(BootTableError::VmImageMisplaced(index))?;
            let collides = vm.images().take(at).any(|other| {
                PhysRange::from_size(other.load_address, other.loaded_len)
                    .is_none_or(|other| other.overlaps(&target))
            });
            if !memory.contains_range(&target) || collides {
                return Err(BootTableError::VmImageMisplaced(index));
            }
        }
        Ok(())
    }
}
