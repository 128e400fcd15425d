//! How the boot table describes a guest VM: its physical CPUs, its stage 2, where its RAM lies
//! and what the kernel copies into it at boot and at each reset.
//!
//! The host VM is not described here (it keeps `BootTable::host_entry` and the host payloads):
//! a guest is a partition the manifest declares (DESIGN decision 12), created by the VM manager
//! at boot through the memory-protection component and started through the kernel.

use crate::component::COMPONENT_NAME_LEN;
use crate::range::PhysRange;

/// Most guest VMs one image carries (VM ids 1..=MAX_GUESTS; the host is VM 0).
pub const MAX_GUESTS: usize = 3;
/// Most vCPUs one guest has.
pub const MAX_GUEST_VCPUS: usize = 8;
/// Most physical CPUs the kernel runs (its per-CPU state holds 8; GICv2 targets at most 8):
/// a CPU index in [`VmDescriptor::cpus`] is below this.
pub const MAX_CPUS: usize = 8;
/// Most images (kernel, DTB, initrd) the kernel copies into one guest's memory.
pub const MAX_VM_IMAGES: usize = 3;
/// The VMID of guest VM `vm` is `GUEST_VMID_BASE + vm` (host 1, components 2..=9).
pub const GUEST_VMID_BASE: u64 = 16;
/// Marks an unused entry of [`VmDescriptor::cpus`].
pub const NO_CPU: u8 = u8::MAX;

/// One pristine image of a guest and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VmImage {
    /// Where the kernel keeps it: a `PayloadKind::VmImage` payload's destination, inside the
    /// hypervisor's region (so no VM can change it and a reset finds it intact).
    pub store: PhysRange,
    /// The physical address in the guest's memory it is copied to (at boot and at VM_LOAD).
    pub load_address: u64,
    /// The bytes it occupies in the guest's memory. Equal to the store's length when it is
    /// kept as is; otherwise the store holds a zlib stream (RFC 1950) that inflates to exactly
    /// this many bytes (a Linux kernel would not fit the hypervisor's region uncompressed).
    pub loaded_len: u64,
}

impl VmImage {
    /// Whether the store is compressed.
    pub fn is_compressed(&self) -> bool {
        self.loaded_len != self.store.len()
    }
}

/// A guest VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmDescriptor {
    /// Its id (its position among the manifest's VMs; the host is 0, so never 0 here).
    pub vm: u16,
    /// Its name (NUL-padded UTF-8), for logs.
    pub name: [u8; COMPONENT_NAME_LEN],
    /// The physical memory backing its RAM.
    pub memory: PhysRange,
    /// The IPA its RAM starts at (the board's RAM base): IPA `ram_ipa + n` is PA
    /// `memory.start + n`.
    pub ram_ipa: u64,
    /// The root (level 0) of its stage-2 tables, in the memory of the component that builds
    /// the host's stage 2 (mem-protect), which writes them.
    pub stage2_root: u64,
    /// The physical CPU index of each vCPU ([`NO_CPU`] past the last).
    pub cpus: [u8; MAX_GUEST_VCPUS],
    /// IPA where vCPU 0 starts (x0 = [`Self::dtb`], the arm64 boot protocol).
    pub entry: u64,
    /// IPA of its device tree.
    pub dtb: u64,
    /// Whether it may use MTE (its tags are scrubbed before it first runs and after resets).
    pub mte: bool,
    /// Whether its virtual counter starts at zero when it is loaded (creation, each reset):
    /// CNTVOFF_EL2 is the physical counter at that moment. Otherwise it reads the machine's.
    pub counter_from_zero: bool,
    /// What the kernel copies into its memory (empty stores are unused slots).
    pub images: [VmImage; MAX_VM_IMAGES],
}

impl VmDescriptor {
    /// The name as text.
    pub fn name(&self) -> &str {
        crate::component::name_text(&self.name)
    }

    /// Its VMID.
    pub fn vmid(&self) -> u64 {
        GUEST_VMID_BASE + u64::from(self.vm)
    }

    /// The physical CPU of vCPU `vcpu`, if it has one.
    pub fn cpu_of(&self, vcpu: usize) -> Option<usize> {
        match self.cpus.get(vcpu) {
            Some(&cpu) if cpu != NO_CPU => Some(usize::from(cpu)),
            _ => None,
        }
    }

    /// How many vCPUs it has.
    pub fn vcpu_count(&self) -> usize {
        self.cpus.iter().take_while(|&&cpu| cpu != NO_CPU).count()
    }

    /// The vCPU pinned to physical CPU `cpu`, if any.
    pub fn vcpu_on(&self, cpu: usize) -> Option<usize> {
        self.cpus[..self.vcpu_count()]
            .iter()
            .position(|&pinned| usize::from(pinned) == cpu)
    }

    /// The images in use.
    pub fn images(&self) -> impl Iterator<Item = &VmImage> {
        self.images.iter().filter(|image| !image.store.is_empty())
    }

    /// The physical address of guest IPA `ipa`, if it lies in its RAM.
    pub fn pa_of(&self, ipa: u64) -> Option<u64> {
        let offset = ipa.checked_sub(self.ram_ipa)?;
        (offset < self.memory.len()).then(|| self.memory.start + offset)
    }
}
