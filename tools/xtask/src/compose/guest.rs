//! A guest VM's part of the image: its kernel, initrd and DTB laid out in its RAM as the guest
//! sees it (IPA from the board's RAM base), its pristine images kept in the hypervisor's region,
//! and the boot table's `VmDescriptor` for it.
//!
//! A guest's RAM starts at IPA `ram_ipa` (the board's RAM base) and is backed by `memory`
//! (physical): IPA `ram_ipa + n` is PA `memory.start + n`. Its kernel goes where it would on the
//! bare board (an `Image` at the RAM base + text_offset, an ELF where it is linked), then its
//! initrd and its DTB, each from the next 2 MiB boundary, as for the host (arm64 booting.rst).

use super::{LoadedKernel, MIB, PAGE, align_up, load_kernel};
use anyhow::{Context, Result, bail};
use hv_abi::{
    ComponentDescriptor, MAX_GUEST_VCPUS, MAX_VM_IMAGES, NO_CPU, PhysRange, VmDescriptor, VmImage,
};
use hv_board::Board;
use hv_devicetree::{DeviceTree, GuestView};
use std::path::PathBuf;

/// A guest VM as the manifest gives it, its files found.
pub struct Guest {
    /// Its VM id (1, 2, …).
    pub id: u16,
    /// Its name.
    pub name: String,
    /// Its kernel: an arm64 Image, an ELF or a raw payload.
    pub kernel: PathBuf,
    /// Its initrd, if any.
    pub initrd: Option<PathBuf>,
    /// A DTB to use as it is (its `/chosen` set); `None`: made from the board's.
    pub dtb: Option<PathBuf>,
    /// Its kernel command line.
    pub cmdline: String,
    /// The physical memory backing its RAM.
    pub memory: PhysRange,
    /// The IPA its RAM starts at (the board's RAM base).
    pub ram_ipa: u64,
    /// The physical CPU of each vCPU.
    pub cpus: Vec<u8>,
    /// The base address of each board device it is given (IPA = PA).
    pub devices: Vec<u64>,
    /// The base address of its console UART, if it has one.
    pub console: Option<u64>,
    /// Whether it may use MTE.
    pub mte: bool,
    /// Whether its virtual counter starts at zero at each load (`clock = "zero"`).
    pub counter_from_zero: bool,
    /// The IPA bit it uses as its shared attribute, if any (told to it in its DTB).
    pub shared_ipa_bit: Option<u8>,
}

/// One image of a guest and where it goes.
pub struct Image {
    /// What it is, for the memory map ("kernel", "initrd", "DTB").
    pub what: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The IPA it is copied to.
    pub ipa: u64,
    /// The memory it takes from there (an ELF's or Image's bss included).
    pub footprint: u64,
}

/// A guest laid out in its RAM.
pub struct Plan {
    /// Kernel, then initrd if any, then DTB.
    pub images: Vec<Image>,
    /// The IPA vCPU 0 starts at.
    pub entry: u64,
    /// The IPA of its DTB (x0 at entry).
    pub dtb: u64,
}

impl Guest {
    /// The guest's RAM as it sees it.
    fn ram_ipa_range(&self) -> PhysRange {
        PhysRange {
            start: self.ram_ipa,
            end: self.ram_ipa + self.memory.len(),
        }
    }

    /// The physical address of IPA `ipa` in its RAM.
    pub fn pa(&self, ipa: u64) -> u64 {
        self.memory.start + (ipa - self.ram_ipa)
    }

    /// Reads its files and lays them out in its RAM (`base_dtb`: the board's tree).
    pub fn plan(&self, board: &Board, base_dtb: &[u8]) -> Result<Plan> {
        let kernel = load_kernel(&self.kernel, self.ram_ipa)
            .with_context(|| format!("VM \"{}\"", self.name))?;
        let initrd = match &self.initrd {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("VM \"{}\": reading {}", self.name, path.display()))?,
            ),
            None => None,
        };
        let dtb = match &self.dtb {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("VM \"{}\": reading {}", self.name, path.display()))?,
            ),
            None => None,
        };
        self.lay_out(board, kernel, initrd, dtb.as_deref(), base_dtb)
    }

    /// Lays out a loaded kernel, an initrd and a DTB (`own_dtb` used as it is, else one made
    /// from `base_dtb`) in the guest's RAM.
    fn lay_out(
        &self,
        board: &Board,
        kernel: LoadedKernel,
        initrd: Option<Vec<u8>>,
        own_dtb: Option<&[u8]>,
        base_dtb: &[u8],
    ) -> Result<Plan> {
        let name = &self.name;
        let ram = self.ram_ipa_range();
        let kernel_end = kernel.load_address + kernel.footprint;
        if kernel.load_address < ram.start || kernel_end > ram.end {
            bail!(
                "VM \"{name}\": its kernel would lie at IPA {:#x}..{kernel_end:#x}, outside its RAM \
                 (IPA {:#x}..{:#x}: a guest's RAM starts at the board's RAM base); an ELF must be \
                 linked inside it",
                kernel.load_address,
                ram.start,
                ram.end
            );
        }
        if kernel.entry < kernel.load_address || kernel.entry >= kernel_end {
            bail!(
                "VM \"{name}\": its kernel's entry point {:#x} lies outside the kernel",
                kernel.entry
            );
        }
        let initrd_ipa = align_up(kernel_end, 2 * MIB);
        let initrd_len = initrd.as_ref().map_or(0, |bytes| bytes.len() as u64);
        let dtb_ipa = align_up(initrd_ipa + initrd_len, 2 * MIB);
        let initrd_range = initrd
            .as_ref()
            .map(|_| (initrd_ipa, initrd_ipa + initrd_len));

        let mut tree = match own_dtb {
            Some(bytes) => {
                DeviceTree::parse(bytes).with_context(|| format!("VM \"{name}\": its dtb file"))?
            }
            None => {
                let mut board_tree = DeviceTree::parse(base_dtb).context("the board's DTB")?;
                super::adapt_board_dtb(board, &mut board_tree, ram)?;
                board_tree
                    .for_guest(&GuestView {
                        ram: (ram.start, ram.len()),
                        vcpus: self.cpus.len(),
                        devices: &self.devices,
                        console: self.console,
                        bootargs: &self.cmdline,
                        initrd: initrd_range,
                        shared_ipa_bit: self.shared_ipa_bit,
                    })
                    .with_context(|| format!("VM \"{name}\": making its DTB"))?
            }
        };
        tree.set_chosen(Some(&self.cmdline), initrd_range);
        let dtb = tree.to_bytes();
        let dtb_end = dtb_ipa + dtb.len() as u64;
        if dtb_end > ram.end {
            bail!(
                "VM \"{name}\": its kernel, initrd and DTB need {} MiB of its RAM but it has {} MiB; \
                 raise its memory in the manifest",
                (dtb_end - ram.start).div_ceil(MIB),
                ram.len() / MIB
            );
        }

        let mut images = vec![Image {
            what: "kernel",
            ipa: kernel.load_address,
            footprint: kernel.footprint,
            bytes: kernel.bytes,
        }];
        if let Some(bytes) = initrd {
            images.push(Image {
                what: "initrd",
                ipa: initrd_ipa,
                footprint: initrd_len,
                bytes,
            });
        }
        images.push(Image {
            what: "DTB",
            ipa: dtb_ipa,
            footprint: dtb.len() as u64,
            bytes: dtb,
        });
        Ok(Plan {
            images,
            entry: kernel.entry,
            dtb: dtb_ipa,
        })
    }

    /// The guest's descriptor, its images kept from `store_start` on (page aligned, in order);
    /// also returns each image's store and the bytes kept there (an image of 1 MiB or more is
    /// kept zlib-compressed when that saves an eighth: the kernel inflates it into the guest's
    /// memory). Fails if they pass `store_limit` (the end of the hypervisor's region), saying by
    /// how much.
    pub fn describe(
        &self,
        plan: &Plan,
        stage2_root: u64,
        store_start: u64,
        store_limit: u64,
    ) -> Result<(VmDescriptor, Vec<PhysRange>, Vec<Vec<u8>>)> {
        if self.cpus.is_empty() || self.cpus.len() > MAX_GUEST_VCPUS {
            bail!(
                "VM \"{}\" has {} vCPUs; a guest has 1 to {MAX_GUEST_VCPUS}",
                self.name,
                self.cpus.len()
            );
        }
        if plan.images.len() > MAX_VM_IMAGES {
            bail!("VM \"{}\" has more than {MAX_VM_IMAGES} images", self.name);
        }
        let kept: Vec<Vec<u8>> = plan
            .images
            .iter()
            .map(|image| kept_bytes(&image.bytes))
            .collect();
        let mut stores = Vec::new();
        let mut next = align_up(store_start, PAGE);
        for bytes in &kept {
            let store = PhysRange::from_size(next, bytes.len() as u64).context("image store")?;
            next = align_up(store.end, PAGE);
            stores.push(store);
        }
        if next > store_limit {
            let sizes: Vec<String> = plan
                .images
                .iter()
                .zip(&kept)
                .map(|(image, bytes)| format!("{} {} KiB", image.what, bytes.len().div_ceil(1024)))
                .collect();
            bail!(
                "VM \"{}\": the hypervisor keeps a pristine copy of each guest image (to reload \
                 it on reset) in its region, and this VM's ({}) need {} KiB from {store_start:#x}, \
                 but the region ends at {store_limit:#x} ({} KiB short); use a smaller kernel or \
                 initrd, or fewer or smaller components",
                self.name,
                sizes.join(", "),
                (next - store_start) / 1024,
                (next - store_limit).div_ceil(1024)
            );
        }
        let mut cpus = [NO_CPU; MAX_GUEST_VCPUS];
        cpus[..self.cpus.len()].copy_from_slice(&self.cpus);
        let mut images = [VmImage::default(); MAX_VM_IMAGES];
        for ((slot, image), store) in images.iter_mut().zip(&plan.images).zip(&stores) {
            *slot = VmImage {
                store: *store,
                load_address: self.pa(image.ipa),
                loaded_len: image.bytes.len() as u64,
            };
        }
        let descriptor = VmDescriptor {
            vm: self.id,
            name: ComponentDescriptor::name_field(&self.name),
            memory: self.memory,
            ram_ipa: self.ram_ipa,
            stage2_root,
            cpus,
            entry: plan.entry,
            dtb: plan.dtb,
            mte: self.mte,
            counter_from_zero: self.counter_from_zero,
            images,
        };
        Ok((descriptor, stores, kept))
    }
}

/// What the hypervisor keeps of an image: zlib-compressed if it is 1 MiB or more and that saves
/// at least an eighth (`hv_abi::VmImage::loaded_len` then tells the kernel to inflate it), else
/// the bytes as they are.
fn kept_bytes(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() >= MIB as usize {
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6);
        if compressed.len() <= bytes.len() - bytes.len() / 8 {
            return compressed;
        }
    }
    bytes.to_vec()
}

/// Guest VM `vm`'s stage-2 root: page `vm - 1` of `GUEST_STAGE2_ROOTS`, the array of root
/// tables the component that builds stage 2s (mem-protect) exports.
pub fn stage2_root(guest_roots: u64, vm: u16) -> u64 {
    guest_roots + (u64::from(vm) - 1) * PAGE
}

#[cfg(test)]
pub(super) mod tests;
