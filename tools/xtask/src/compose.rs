//! The image composer: the kernel plus every payload in one file the loader boots.
//!
//! Layout of a composed image (all offsets from its first byte, loaded at the board's
//! `image_load_address`): the kernel's code and data with the boot table filled in, zero
//! padding up to the end of the kernel's bss and stacks, then the payloads in destination
//! order. The kernel copies each payload to its destination at boot (see `hv_abi`). The host's
//! DTB is QEMU's own for the same machine options, with the hypervisor's region reserved,
//! `/chosen` set, and the guests' CPUs and memory left out. Each guest VM's images (`guest`)
//! are kept in the hypervisor's region, after the components' image stores.

mod guest;

pub use guest::Guest;

use crate::elf;
use anyhow::{Context, Result, bail};
use hv_abi::{
    BootTable, ComponentDescriptor, IMAGE_HEADER_MAGIC, IMAGE_HEADER_MAGIC_OFFSET,
    IMAGE_HEADER_SIZE_OFFSET, Payload, PayloadKind, PhysRange,
};
use hv_board::Board;
use hv_devicetree::DeviceTree;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;
const PAGE: u64 = 4096;

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

/// What to put into an image.
pub struct Request<'a> {
    /// The board.
    pub board: &'static Board,
    /// The DTB the host's is made from: QEMU's for the machine options, or the board's real
    /// one.
    pub base_dtb: &'a [u8],
    /// RAM of the machine, in bytes from the board's RAM base.
    pub ram: u64,
    /// The EL2 kernel's ELF.
    pub kernel_elf: &'a Path,
    /// The host's kernel: an arm64 Image, an ELF, or a raw payload.
    pub host_kernel: &'a Path,
    /// The host's initrd, if any.
    pub initrd: Option<&'a Path>,
    /// The host's kernel command line.
    pub cmdline: &'a str,
    /// Where to write the image.
    pub out: &'a Path,
    /// The components, built and linked at their regions.
    pub components: &'a [BuiltComponent],
    /// Device ranges the host VM sees emulated (left out of its stage 2).
    pub host_emulated: &'a [PhysRange],
    /// The guest VMs, by VM id.
    pub guests: &'a [Guest],
    /// Hot-swap's control line's page, when the line is one of the board's UARTs and hot-swap
    /// is on: the hypervisor keeps it, so the host's tree has its devices disabled.
    pub control_page: Option<PhysRange>,
    /// The UARTs the host is given whose nodes the board's tree disables and whose pins must
    /// be set up (`pins` in board.toml): enabled in the host's tree.
    pub host_pinned_uarts: &'a [&'static hv_board::Uart],
}

/// A component built for its place in the layout.
pub struct BuiltComponent {
    /// Its name.
    pub name: String,
    /// What the manifest grants it.
    pub grants: hv_manifest::Grants,
    /// Its region (it is linked at the start).
    pub region: PhysRange,
    /// Its ELF.
    pub elf: PathBuf,
}

/// Where components go: one region each, in manifest order, from the first 2 MiB boundary
/// past the kernel's own memory, each aligned to 1 MiB. Fails if they do not fit the
/// hypervisor's region (their image stores follow them, so room is left for those too).
pub fn layout_components(board: &Board, kernel_end: u64, sizes: &[u64]) -> Result<Vec<PhysRange>> {
    let mut next = align_up(kernel_end, 2 * MIB);
    let mut regions = Vec::new();
    for &size in sizes {
        let region =
            PhysRange::from_size(next, align_up(size, PAGE)).context("component region")?;
        next = align_up(region.end, MIB);
        regions.push(region);
    }
    let stores_need: u64 = sizes.iter().map(|&size| align_up(size, PAGE)).sum();
    if next + stores_need > board.hypervisor_region_end() {
        bail!(
            "the components need {} MiB past the kernel, but the hypervisor's region on {} ends at {:#x}; shrink their memory",
            (next + stores_need - kernel_end) / MIB + 1,
            board.name,
            board.hypervisor_region_end()
        );
    }
    Ok(regions)
}

/// A composed image and the facts about it.
pub struct Composed {
    /// The image file.
    pub image: PathBuf,
    /// The memory map, for printing.
    pub map: Vec<(u64, u64, String)>,
}

/// A VM's kernel as loaded: its bytes, where it goes, how much memory it needs from there.
struct LoadedKernel {
    bytes: Vec<u8>,
    load_address: u64,
    footprint: u64,
    entry: u64,
    /// Whether it was an ELF (placed where it is linked) rather than an Image.
    linked: bool,
}

/// Reads the host's kernel in any of the forms `--kernel` accepts.
fn load_host_kernel(path: &Path, board: &Board) -> Result<LoadedKernel> {
    let kernel = load_kernel(path, board.host_kernel_address)?;
    if kernel.linked && kernel.load_address != board.host_kernel_address {
        bail!(
            "{} is linked at {:#x}, but {} starts the host kernel at {:#x}",
            path.display(),
            kernel.load_address,
            board.name,
            board.host_kernel_address
        );
    }
    Ok(kernel)
}

/// Reads a kernel: an ELF goes where it is linked (flattened, entered at its entry point); an
/// arm64 `Image` at `base` + its text_offset, a raw payload at `base`, entered at their first
/// byte. `base` is 2 MiB aligned (booting.rst).
fn load_kernel(path: &Path, base: u64) -> Result<LoadedKernel> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the kernel {}", path.display()))?;
    if elf::is_elf(&bytes) {
        let flat = elf::to_flat(&bytes).with_context(|| format!("{}", path.display()))?;
        let footprint = align_up(flat.memory_size, PAGE);
        return Ok(LoadedKernel {
            load_address: flat.load_address,
            entry: flat.entry,
            footprint,
            bytes: flat.bytes,
            linked: true,
        });
    }
    let has_header = bytes.len() >= 64
        && bytes[IMAGE_HEADER_MAGIC_OFFSET..IMAGE_HEADER_MAGIC_OFFSET + 4] == IMAGE_HEADER_MAGIC;
    let (text_offset, image_size) = if has_header {
        let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        (field(8), field(IMAGE_HEADER_SIZE_OFFSET))
    } else {
        (0, 0)
    };
    // booting.rst: an image_size of 0 means an old kernel; allow its file plus slack.
    let footprint = if image_size == 0 {
        align_up(bytes.len() as u64, PAGE) + 2 * MIB
    } else {
        image_size
    };
    if footprint < bytes.len() as u64 {
        bail!(
            "{}: the Image header's image_size is smaller than the file",
            path.display()
        );
    }
    let load_address = base + text_offset;
    Ok(LoadedKernel {
        bytes,
        load_address,
        footprint,
        entry: load_address,
        linked: false,
    })
}

/// Composes an image.
pub fn compose(request: &Request) -> Result<Composed> {
    let board = request.board;
    let kernel_elf = std::fs::read(request.kernel_elf)
        .with_context(|| format!("reading {}", request.kernel_elf.display()))?;
    let kernel = elf::to_flat(&kernel_elf)?;
    if kernel.load_address != board.image_load_address {
        bail!(
            "the kernel is linked at {:#x}, not {:#x}; was it built for {}?",
            kernel.load_address,
            board.image_load_address,
            board.name
        );
    }
    let table_offset = (elf::symbol(&kernel_elf, "__boot_table")? - kernel.load_address) as usize;
    let kernel_footprint = elf::symbol(&kernel_elf, "__image_end")? - kernel.load_address;

    let ram = PhysRange::from_size(board.ram_base, request.ram).context("RAM size")?;
    let hypervisor = PhysRange {
        start: board.ram_base,
        end: board.hypervisor_region_end(),
    };
    let host = load_host_kernel(request.host_kernel, board)?;
    let initrd = match request.initrd {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the initrd {}", path.display()))?,
        ),
        None => None,
    };

    // Destinations: kernel, then initrd, then DTB, each 2 MiB aligned (booting.rst asks that
    // the DTB not share a 2 MiB block with memory mapped otherwise).
    let initrd_address = align_up(host.load_address + host.footprint, 2 * MIB);
    let initrd_len = initrd.as_ref().map_or(0, |bytes| bytes.len() as u64);
    let dtb_address = align_up(initrd_address + initrd_len, 2 * MIB);

    let mut dtb = DeviceTree::parse(request.base_dtb).context("the board's DTB")?;
    adapt_board_dtb(board, &mut dtb, ram)?;
    dtb.reserve_no_map("hypervisor", hypervisor.start, hypervisor.len())?;
    leave_guests_out(&mut dtb, ram, request.guests)?;
    for uart in request.host_pinned_uarts {
        let (Some(pins), Some(alias)) = (uart.pins, uart.alias) else {
            continue;
        };
        let path = dtb
            .enable_with_pins(uart.region.base, pins, alias)
            .map_err(|reason| anyhow::anyhow!("the host's {}: {reason}", uart.name))?;
        eprintln!("host dtb: {path} enabled with pins {pins}, alias {alias}");
    }
    if let Some(page) = request.control_page {
        for path in dtb.disable_nodes_in(page.start, page.end) {
            eprintln!("host dtb: {path} disabled (hot-swap's control line is the hypervisor's)");
        }
    }
    // Room for the kernel to disable, at boot, what the firmware's own tree disables.
    dtb.pad_enabled_statuses(hv_kernel::boot_dtb::PADDED_OKAY);
    dtb.set_chosen(
        Some(request.cmdline),
        initrd
            .as_ref()
            .map(|_| (initrd_address, initrd_address + initrd_len)),
    );
    let dtb_bytes = dtb.to_bytes();
    // Beside the image, for a look at what the host is told (before the kernel's boot-time
    // edits: the firmware's disabled nodes).
    std::fs::write(request.out.with_file_name("host.dtb"), &dtb_bytes)
        .context("writing host.dtb")?;
    if dtb_address + dtb_bytes.len() as u64 > ram.end {
        bail!(
            "the payloads need {} MiB of RAM but the machine has {} MiB; raise --mem",
            (dtb_address + dtb_bytes.len() as u64 - ram.start) / MIB + 1,
            ram.len() / MIB
        );
    }

    let mut table = BootTable::new(ram, hypervisor, host.entry);
    // The component that builds the host's stage 2 lazily exports its empty root table. The
    // kernel has no map of its own (what the host may see is policy), so one must exist.
    let Some(owner) = request
        .components
        .iter()
        .find(|component| component.grants.routes & hv_abi::ROUTE_HOST_STAGE2 != 0)
    else {
        bail!(
            "no component is routed \"host-stage2\": the host's stage 2 is built by mem-protect; \
             add its [[component]] entry (as in manifests/qemu-virt.toml)"
        );
    };
    let owner_elf = std::fs::read(&owner.elf)?;
    table.host_stage2_root = elf::symbol(&owner_elf, "HOST_STAGE2_POOL")
        .with_context(|| format!("component {} takes host stage-2 faults", owner.name))?;
    if request.host_emulated.len() > hv_abi::MAX_EMULATED {
        bail!("at most {} emulated devices per VM", hv_abi::MAX_EMULATED);
    }
    for (slot, device) in table.host_emulated.iter_mut().zip(request.host_emulated) {
        // Stage 2 works in pages: the whole page of a smaller device is left out.
        *slot = PhysRange {
            start: device.start & !(PAGE - 1),
            end: align_up(device.end, PAGE),
        };
    }
    let mut images = Vec::new();
    let mut store_next = request
        .components
        .last()
        .map_or(0, |c| align_up(c.region.end, PAGE));
    for component in request.components {
        let elf_bytes = std::fs::read(&component.elf)
            .with_context(|| format!("reading {}", component.elf.display()))?;
        let flat =
            elf::to_flat(&elf_bytes).with_context(|| format!("component {}", component.name))?;
        if flat.load_address != component.region.start {
            bail!(
                "component {} is linked at {:#x}, not at its region {:#x}",
                component.name,
                flat.load_address,
                component.region.start
            );
        }
        let end = elf::symbol(&elf_bytes, "__image_end")?;
        if end > component.region.end {
            bail!(
                "component {} needs {} KiB but has {} KiB; raise its memory in the manifest",
                component.name,
                (end - component.region.start) / 1024,
                component.region.len() / 1024
            );
        }
        // The store is the image's slot, with room for a larger build swapped in later
        // (docs/hot-swap.md): twice the image, within the region. The padding is zeros, which a
        // build id leaves out.
        let slot = align_up(2 * flat.bytes.len() as u64, PAGE)
            .min(component.region.len())
            .max(flat.bytes.len() as u64);
        let mut stored_bytes = flat.bytes.clone();
        stored_bytes.resize(slot as usize, 0);
        let store = PhysRange::from_size(store_next, slot).context("store")?;
        store_next = align_up(store.end, PAGE);
        table
            .push_component(ComponentDescriptor {
                name: ComponentDescriptor::name_field(&component.name),
                region: component.region,
                image_store: store,
                entry: flat.entry,
                ipc_rx: elf::symbol(&elf_bytes, "__ipc_rx")?,
                ipc_tx: elf::symbol(&elf_bytes, "__ipc_tx")?,
                serves: component.grants.serves,
                may_call: component.grants.may_call,
                kernel_ops: component.grants.kernel_ops,
                may_notify: component.grants.may_notify,
                routes: component.grants.routes,
                smccc_ranges: component.grants.smccc_ranges,
            })
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        images.push((stored_bytes, store, component));
    }
    if store_next > hypervisor.end {
        bail!("the components' images do not fit the hypervisor's region");
    }
    // Each guest's images, kept after the components' (what `VM_LOAD` copies back on reset).
    let mut guest_images = Vec::new();
    let mut guest_map = Vec::new();
    if !request.guests.is_empty() {
        let guest_roots = guest_stage2_roots(owner, &owner_elf)?;
        for guest in request.guests {
            let plan = guest.plan(board, request.base_dtb)?;
            let root = guest::stage2_root(guest_roots, guest.id);
            let (descriptor, stores, kept) =
                guest.describe(&plan, root, store_next, hypervisor.end)?;
            if let Some(last) = stores.last() {
                store_next = align_up(last.end, PAGE);
            }
            table
                .push_vm(descriptor)
                .map_err(|e| anyhow::anyhow!("VM \"{}\": {e:?}", guest.name))?;
            guest_map.push((
                guest.memory.start,
                guest.memory.end,
                format!(
                    "guest VM {} \"{}\": its RAM at IPA {:#x}, CPUs {:?}, entry {:#x}, DTB {:#x}",
                    guest.id, guest.name, guest.ram_ipa, guest.cpus, plan.entry, plan.dtb
                ),
            ));
            for ((image, store), bytes) in plan.images.into_iter().zip(stores).zip(kept) {
                guest_map.push((
                    guest.pa(image.ipa),
                    guest.pa(image.ipa) + image.footprint,
                    format!("  {} (IPA {:#x})", image.what, image.ipa),
                ));
                let compressed = if bytes.len() == image.bytes.len() {
                    ""
                } else {
                    " (zlib)"
                };
                let what = format!(
                    "  image store of VM {}: {}{compressed}",
                    guest.name, image.what
                );
                guest_images.push((bytes, store, what));
            }
        }
    }
    let mut image = kernel.bytes.clone();
    image.resize(align_up(kernel_footprint, PAGE) as usize, 0);
    let mut map = vec![
        (
            hypervisor.start,
            hypervisor.end,
            "hypervisor (reserved in the host DTB)".to_owned(),
        ),
        (
            kernel.load_address,
            kernel.load_address + kernel_footprint,
            "  EL2 kernel: code, data, stacks, tables".to_owned(),
        ),
    ];
    for component in request.components {
        let elf_name = component
            .elf
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?");
        let what = format!("  component {} ({elf_name})", component.name);
        map.push((component.region.start, component.region.end, what));
    }
    let mut add = |kind: PayloadKind,
                   bytes: &[u8],
                   load_address: u64,
                   footprint: u64,
                   what: String|
     -> Result<()> {
        let file_offset = align_up(image.len() as u64, PAGE);
        image.resize(file_offset as usize, 0);
        image.extend_from_slice(bytes);
        table
            .push(Payload {
                kind,
                file_offset,
                file_size: bytes.len() as u64,
                load_address,
            })
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        map.push((load_address, load_address + footprint, what));
        Ok(())
    };
    for (bytes, store, component) in &images {
        let what = format!("  image store of {}", component.name);
        add(
            PayloadKind::ComponentImage,
            bytes,
            store.start,
            store.len(),
            what,
        )?;
    }
    for (bytes, store, what) in guest_images {
        add(PayloadKind::VmImage, &bytes, store.start, store.len(), what)?;
    }
    add(
        PayloadKind::HostKernel,
        &host.bytes,
        host.load_address,
        host.footprint,
        format!("host kernel {}", request.host_kernel.display()),
    )?;
    if let Some(bytes) = &initrd {
        add(
            PayloadKind::HostInitrd,
            bytes,
            initrd_address,
            initrd_len,
            format!("host initrd {}", request.initrd.unwrap().display()),
        )?;
    }
    add(
        PayloadKind::HostDtb,
        &dtb_bytes,
        dtb_address,
        dtb_bytes.len() as u64,
        "host DTB".to_owned(),
    )?;
    let host_free = PhysRange {
        start: dtb_address + dtb_bytes.len() as u64,
        end: ram.end,
    };
    for free in subtract(host_free, request.guests.iter().map(|g| g.memory)) {
        map.push((free.start, free.end, "host RAM (free)".to_owned()));
    }
    map.extend(guest_map);
    map.sort_by_key(|&(start, _, _)| start);

    table
        .validate(image.len() as u64)
        .map_err(|e| anyhow::anyhow!("boot table: {e:?}"))?;
    table
        .validate_placement(board.image_load_address, kernel_footprint)
        .map_err(|e| anyhow::anyhow!("boot table: {e:?}"))?;
    table
        .validate_components(kernel.load_address + kernel_footprint)
        .map_err(|e| anyhow::anyhow!("boot table: {e:?}"))?;
    table
        .validate_vms()
        .map_err(|e| anyhow::anyhow!("boot table: {e:?}"))?;
    image[table_offset..table_offset + hv_abi::BOOT_TABLE_SIZE].copy_from_slice(&table.encode());
    let file_len = image.len() as u64;
    image[IMAGE_HEADER_SIZE_OFFSET..IMAGE_HEADER_SIZE_OFFSET + 8]
        .copy_from_slice(&file_len.to_le_bytes());

    std::fs::create_dir_all(request.out.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(request.out, &image)
        .with_context(|| format!("writing {}", request.out.display()))?;
    Ok(Composed {
        image: request.out.to_owned(),
        map,
    })
}

/// Board-specific edits to the host's DTB before the common ones. QEMU's DTB already describes
/// the machine exactly. The Raspberry Pi's real tree leaves RAM for the firmware to fill in and
/// starts secondaries with the spin table; the host instead gets RAM as composed and PSCI over
/// HVC, which the VM manager serves (the firmware disables SMC).
pub fn adapt_board_dtb(board: &Board, dtb: &mut DeviceTree, ram: PhysRange) -> Result<()> {
    if board.has_firmware_psci() {
        return Ok(());
    }
    let memory = dtb.encode_reg("/", &[(ram.start, ram.len())])?;
    dtb.ensure_node("/memory@0").set_property("reg", memory);
    dtb.ensure_node("/memory@0")
        .set_string("device_type", "memory");
    let psci = dtb.ensure_node("/psci");
    psci.set_property("compatible", b"arm,psci-1.0\0arm,psci-0.2\0".to_vec());
    psci.set_string("method", "hvc");
    let cpus: Vec<String> = dtb
        .node("/cpus")
        .map(|cpus| {
            cpus.children
                .iter()
                .filter(|c| c.name.starts_with("cpu@"))
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default();
    for cpu in cpus {
        let node = dtb.ensure_node(&format!("/cpus/{cpu}"));
        node.set_string("enable-method", "psci");
        node.remove_property("cpu-release-addr");
    }
    Ok(())
}

/// `GUEST_STAGE2_ROOTS` in the ELF of `owner`, the component routed "host-stage2": the
/// root tables of the guests' stage 2s, which it writes.
fn guest_stage2_roots(owner: &BuiltComponent, elf_bytes: &[u8]) -> Result<u64> {
    elf::symbol(elf_bytes, "GUEST_STAGE2_ROOTS").map_err(|_| {
        anyhow::anyhow!(
            "component {} (routed \"host-stage2\") has no symbol GUEST_STAGE2_ROOTS: guest VMs \
             need a memory-protection component that writes their stage 2s and exports their \
             root tables (one 4 KiB table per guest); {} predates guest VMs",
            owner.name,
            crate::shown(&owner.elf)
        )
    })
}

/// What of `range` none of `holes` covers, in order.
fn subtract(range: PhysRange, holes: impl Iterator<Item = PhysRange>) -> Vec<PhysRange> {
    let mut holes: Vec<PhysRange> = holes.filter(|hole| hole.overlaps(&range)).collect();
    holes.sort_by_key(|hole| hole.start);
    let mut left = Vec::new();
    let mut start = range.start;
    for hole in holes {
        if hole.start > start {
            left.push(PhysRange {
                start,
                end: hole.start,
            });
        }
        start = start.max(hole.end);
    }
    if start < range.end {
        left.push(PhysRange {
            start,
            end: range.end,
        });
    }
    left
}

/// The host's DTB lists neither the guests' CPUs nor their memory: its memory node becomes
/// the composed RAM less the guests' (the hypervisor's region stays, reserved no-map).
fn leave_guests_out(dtb: &mut DeviceTree, ram: PhysRange, guests: &[Guest]) -> Result<()> {
    if guests.is_empty() {
        return Ok(());
    }
    let cpus: Vec<usize> = guests
        .iter()
        .flat_map(|guest| guest.cpus.iter().map(|&cpu| usize::from(cpu)))
        .collect();
    dtb.remove_cpus(&cpus)
        .context("the guests' CPUs: the machine has fewer CPUs than the manifest pins")?;
    let host: Vec<(u64, u64)> = subtract(ram, guests.iter().map(|guest| guest.memory))
        .into_iter()
        .map(|range| (range.start, range.len()))
        .collect();
    dtb.set_memory(&host)?;
    Ok(())
}

/// Prints a memory map as `cargo xtask build` shows it.
pub fn print_map(composed: &Composed, board: &Board) {
    eprintln!("memory map ({}):", board.name);
    for (start, end, what) in &composed.map {
        eprintln!(
            "  {start:#011x}..{end:#011x}  {:>8} KiB  {what}",
            (end - start) / 1024
        );
    }
    eprintln!("image: {}", composed.image.display());
}

/// Writes `debug.tar` next to the image: the kernel's and every component's ELF and the
/// manifest, everything needed to decode the logs of a run of this image later.
pub fn write_debug_archive(
    out_dir: &Path,
    kernel_elf: &Path,
    components: &[(String, PathBuf)],
    manifest: &Path,
) -> Result<PathBuf> {
    let path = out_dir.join("debug.tar");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut archive = tar::Builder::new(file);
    archive.append_path_with_name(kernel_elf, "hv-kernel.elf")?;
    for (name, elf) in components {
        archive.append_path_with_name(elf, format!("components/{name}.elf"))?;
    }
    // The components' ids are their order here: their frames name them by id.
    let order: String = components
        .iter()
        .map(|(name, _)| format!("{name}\n"))
        .collect();
    let mut header = tar::Header::new_gnu();
    header.set_size(order.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive.append_data(&mut header, "components.txt", order.as_bytes())?;
    archive.append_path_with_name(manifest, "manifest.toml")?;
    archive.finish()?;
    Ok(path)
}

/// The `config.txt` the Raspberry Pi firmware reads: 64-bit, our image at the address the
/// kernel is linked for, the UART on; and an overlay for each UART in `overlays` (the host's
/// UARTs that need their pins set up), so that the firmware's tree, whose disabled nodes the
/// kernel carries into the host's, enables them too.
pub fn rpi4_config_txt(board: &Board, overlays: &[&hv_board::Uart]) -> String {
    let mut config = format!(
        "# Written by `cargo xtask build` for the hv hypervisor (see docs/boards/rpi4.md).\n\
         # Copy with the Raspberry Pi firmware (start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb)\n\
         # onto the SD card's FAT partition.\n\
         arm_64bit=1\n\
         kernel=kernel8.img\n\
         # The kernel is linked here; the firmware's default differs between versions.\n\
         kernel_address={:#x}\n\
         # The mini-UART (GPIO 14/15) carries the console; a fixed core clock keeps its baud rate.\n\
         # (No gpu_mem below 32: the firmware would then want start4cd.elf.)\n\
         enable_uart=1\n\
         core_freq_min=500\n",
        board.image_load_address
    );
    for uart in overlays {
        config.push_str(&format!(
            "# The host's {0} (its pins: {1}).\ndtoverlay={0}\n",
            uart.name,
            uart.pins.unwrap_or_default()
        ));
    }
    config
}

/// Writes the Raspberry Pi's boot files: `kernel8.img` (the composed image) and `config.txt`.
pub fn write_sd_card_folder(
    out_dir: &Path,
    image: &Path,
    board: &Board,
    overlays: &[&hv_board::Uart],
) -> Result<PathBuf> {
    let folder = out_dir.join("sd-card");
    std::fs::create_dir_all(&folder)?;
    std::fs::copy(image, folder.join("kernel8.img")).context("writing kernel8.img")?;
    std::fs::write(folder.join("config.txt"), rpi4_config_txt(board, overlays))?;
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpi4_config_loads_the_image_where_the_kernel_is_linked() {
        let config = rpi4_config_txt(&hv_board::RPI4, &[]);
        assert!(config.lines().any(|line| line == "arm_64bit=1"));
        assert!(!config.contains("dtoverlay"));
        let uart3 = hv_board::RPI4.uart("uart3").unwrap();
        let config = rpi4_config_txt(&hv_board::RPI4, &[uart3]);
        assert!(config.lines().any(|line| line == "dtoverlay=uart3"));
        assert!(config.lines().any(|line| line == "kernel=kernel8.img"));
        assert!(
            config
                .lines()
                .any(|line| line
                    == format!("kernel_address={:#x}", hv_board::RPI4.image_load_address))
        );
    }

    #[test]
    fn the_host_dtb_leaves_the_guests_cpus_and_memory_out() {
        let virt = include_bytes!("../../devicetree/testdata/qemu-virt-gicv2.dtb");
        let mut dtb = DeviceTree::parse(virt).unwrap();
        let ram = PhysRange::from_size(0x4000_0000, 1 << 30).unwrap();
        let kernel = PathBuf::from("guest.elf");
        let guest = |id: u16, start: u64, cpus: Vec<u8>| Guest {
            id,
            name: format!("guest{id}"),
            kernel: kernel.clone(),
            initrd: None,
            dtb: None,
            cmdline: String::new(),
            memory: PhysRange::from_size(start, 64 * MIB).unwrap(),
            ram_ipa: 0x4000_0000,
            cpus,
            devices: Vec::new(),
            console: None,
            mte: false,
            counter_from_zero: false,
            shared_ipa_bit: None,
        };
        let guests = [
            guest(1, 0x7c00_0000, vec![3]),
            guest(2, 0x6000_0000, vec![1]),
        ];
        leave_guests_out(&mut dtb, ram, &guests).unwrap();
        assert_eq!(dtb.cpu_mpidrs(), Ok(vec![0, 2]));
        assert_eq!(
            dtb.memory_ranges(),
            Ok(vec![(0x4000_0000, 0x2000_0000), (0x6400_0000, 0x1800_0000)])
        );

        // Without guests the tree is QEMU's as it was.
        let mut untouched = DeviceTree::parse(virt).unwrap();
        leave_guests_out(&mut untouched, ram, &[]).unwrap();
        assert_eq!(untouched, DeviceTree::parse(virt).unwrap());

        // A guest on a CPU the machine lacks (e.g. `--smp 1`) is refused.
        let error = leave_guests_out(&mut dtb, ram, &[guest(3, 0x5000_0000, vec![7])]).unwrap_err();
        assert!(
            format!("{error:#}").contains("fewer CPUs than the manifest pins"),
            "{error:#}"
        );
    }

    #[test]
    fn subtract_leaves_what_no_hole_covers() {
        let range = |start, end| PhysRange { start, end };
        let left = subtract(
            range(0x100, 0x1000),
            [range(0x800, 0x900), range(0, 0x200), range(0xf00, 0x2000)].into_iter(),
        );
        assert_eq!(left, [range(0x200, 0x800), range(0x900, 0xf00)]);
        assert_eq!(
            subtract(range(0, 0x100), std::iter::empty()),
            [range(0, 0x100)]
        );
    }

    #[test]
    fn a_stage2_builder_without_guest_roots_is_named() {
        let owner = BuiltComponent {
            name: "mem-protect".into(),
            grants: hv_manifest::Grants::default(),
            region: PhysRange::from_size(0x4080_0000, 0x60_0000).unwrap(),
            elf: PathBuf::from("target/mem-protect.elf"),
        };
        let elf = guest::tests::fake_elf(0x4080_0000, 0x4080_0000, &[0; 16], 16);
        let error = guest_stage2_roots(&owner, &elf).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "component mem-protect (routed \"host-stage2\") has no symbol GUEST_STAGE2_ROOTS"
            ),
            "{error}"
        );
        assert!(
            error.contains("target/mem-protect.elf predates guest VMs"),
            "{error}"
        );
    }

    #[test]
    fn components_are_laid_out_past_the_kernel_and_must_fit() {
        let board = &hv_board::QEMU_VIRT;
        let regions = layout_components(board, 0x402d_1000, &[MIB, 3 * MIB / 2]).unwrap();
        assert_eq!(
            regions[0],
            PhysRange {
                start: 0x4040_0000,
                end: 0x4050_0000
            }
        );
        assert_eq!(
            regions[1],
            PhysRange {
                start: 0x4050_0000,
                end: 0x4068_0000
            }
        );
        let error = layout_components(board, 0x402d_1000, &[16 * MIB, 16 * MIB]).unwrap_err();
        assert!(error.to_string().contains("shrink their memory"), "{error}");
    }
}
