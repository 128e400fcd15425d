//! The contract between the image composer (`tools/xtask`) and the EL2 kernel.
//!
//! The composer writes a [`BootTable`] into the kernel image at the symbol `__boot_table`; the
//! kernel reads it on the boot CPU before anything else runs at EL1. The table says which part of
//! RAM the hypervisor keeps for itself, where each payload sits in the image file and where the
//! kernel must copy it, and how the host VM is entered.
//!
//! Why copy at boot instead of placing payloads at their final address in the file: the loader
//! (QEMU's `-kernel`, the Pi's firmware) puts the whole file at one address right behind the
//! hypervisor, but the host kernel must start at a fixed, 2 MiB-aligned address past the
//! hypervisor's reserved region. Padding the file up to that address would add tens of MiB of
//! zeros to every image.
//!
//! The layout is fixed little-endian bytes, encoded and decoded by hand (no `repr(C)` casts), so
//! both sides can test it on the host and a malformed table is refused with a reason.
//!
//! Its parts: [`BootTable`] with its payloads ([`Payload`]) and checks; [`ComponentDescriptor`],
//! what the table says of each component; [`PhysRange`], the ranges all of it is placed in; the
//! arm64 `Image` header offsets both sides use; and [`ExitStatus`], how a run ends.
#![cfg_attr(not(test), no_std)]

mod boot_table;
mod component;
mod exit_status;
mod image_header;
mod range;
mod vm;

pub use boot_table::{
    BOOT_TABLE_MAGIC, BOOT_TABLE_SIZE, BOOT_TABLE_VERSION, BootTable, BootTableError,
    MAX_COMPONENTS, MAX_EMULATED, MAX_PAYLOADS, Payload, PayloadKind,
};
pub use component::{
    COMPONENT_NAME_LEN, ComponentDescriptor, MAX_SMCCC_RANGES, MESSAGE_BUFFER_LEN,
    ROUTE_HOST_STAGE2, ROUTE_MMIO, ROUTE_SMCCC,
};
pub use exit_status::ExitStatus;
pub use image_header::{IMAGE_HEADER_MAGIC, IMAGE_HEADER_MAGIC_OFFSET, IMAGE_HEADER_SIZE_OFFSET};
pub use range::PhysRange;
pub use vm::{
    GUEST_VMID_BASE, MAX_CPUS, MAX_GUEST_VCPUS, MAX_GUESTS, MAX_VM_IMAGES, NO_CPU, VmDescriptor,
    VmImage,
};
