//! Bringing the machine up: the boot CPU reads the firmware's DTB and the composer's boot
//! table, copies the payloads into place, builds the EL2 and host stage-2 maps and enters the
//! host; secondaries join when the host starts them.

use crate::{arch, components, cpus, guests};
use core::sync::atomic::{AtomicU64, Ordering};
use hv_abi::{
    BOOT_TABLE_SIZE, BootTable, ExitStatus, IMAGE_HEADER_SIZE_OFFSET, PayloadKind, PhysRange,
};
use hv_ipc::addr::Ipa;
use hv_kernel::{boot_dtb, memory_map};

/// Most RAM banks the kernel reads from the firmware's DTB.
const MAX_RAM_BANKS: usize = 8;

static EL2_ROOT: AtomicU64 = AtomicU64::new(0);
/// The host VM's emulated device ranges (left out of its stage 2).
static HOST_EMULATED: spin::Once<heapless::Vec<PhysRange, { hv_abi::MAX_EMULATED }>> =
    spin::Once::new();

/// The RAM banks and the hypervisor's region, for checking what components ask the kernel
/// to touch.
static RAM_LAYOUT: spin::Once<(heapless::Vec<PhysRange, MAX_RAM_BANKS>, PhysRange)> =
    spin::Once::new();

/// True if `range` lies in one RAM bank and outside the hypervisor's region.
pub fn is_host_ram(range: &PhysRange) -> bool {
    RAM_LAYOUT.get().is_some_and(|(banks, hypervisor)| {
        !range.overlaps(hypervisor) && banks.iter().any(|bank| bank.contains_range(range))
    })
}

/// The host VM's VTTBR_EL2 value.
pub fn host_vttbr() -> u64 {
    HOST_VTTBR.load(Ordering::Relaxed)
}

/// True if `ipa` is in one of the host VM's emulated device ranges.
pub fn is_emulated(ipa: Ipa) -> bool {
    HOST_EMULATED.get().is_some_and(|ranges| {
        ranges
            .iter()
            .any(|range| range.start <= ipa.0 && ipa.0 < range.end)
    })
}
static HOST_VTTBR: AtomicU64 = AtomicU64::new(0);
/// The host VM's VMID (components get their own from 2 on).
const HOST_VMID: u64 = 1;

unsafe extern "C" {
    static __boot_table: u8;
    static __image_start: u8;
    static __image_end: u8;
}

/// Stops the boot with a reason.
fn fail(reason: &str) -> ! {
    defmt::error!("boot failed: {=str}", reason);
    crate::end_run(ExitStatus::BootFailure)
}

struct FirmwareFacts {
    ram: heapless::Vec<PhysRange, MAX_RAM_BANKS>,
    cpus: usize,
    /// Path hashes of the nodes the firmware disabled (`boot_dtb::FirmwareFacts::disabled`).
    disabled: heapless::Vec<u64, { boot_dtb::MAX_DISABLED }>,
    ignored_disabled: usize,
}

/// Reads RAM banks and CPUs from the firmware's DTB, or stops the boot saying what is wrong
/// with it (`hv_kernel::boot_dtb` never panics, whatever the tree holds).
fn read_firmware_dtb(dtb: usize) -> FirmwareFacts {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        defmt::error!("the firmware's DTB pointer (x0) is {=usize:#x}", dtb);
        fail("no 8-byte aligned DTB in x0, as the arm64 boot protocol requires");
    }
    // SAFETY: the boot protocol puts the DTB in RAM at x0 (8-byte aligned, checked above); the
    // header's fixed part is read first, and only as many bytes as it says (capped by
    // `total_size`) after it. A pointer into nothing takes an EL2 abort, reported as such.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, boot_dtb::HEADER_LEN) };
    let read = boot_dtb::total_size(header).and_then(|len| {
        // SAFETY: as above, `len` bytes as the header gives them (at most MAX_DTB_LEN).
        boot_dtb::read(unsafe { core::slice::from_raw_parts(dtb as *const u8, len) })
    });
    let facts = match read {
        Ok(facts) => facts,
        Err(error) => {
            defmt::error!(
                "the firmware's DTB at {=usize:#x}: {=str} ({})",
                dtb,
                error.describe(),
                defmt::Debug2Format(&error)
            );
            fail("the firmware's DTB cannot be used");
        }
    };
    if facts.ignored_banks > 0 || facts.ignored_cpus > 0 {
        defmt::warn!(
            "the firmware's DTB lists {=usize} more RAM bank(s) and {=usize} more CPU(s) than the kernel records; ignored",
            facts.ignored_banks,
            facts.ignored_cpus
        );
    }
    let mut ram = heapless::Vec::new();
    for &(start, size) in &facts.ram {
        let Some(bank) = PhysRange::from_size(start, size) else {
            defmt::warn!(
                "RAM bank {=u64:#x} + {=u64:#x} wraps around; ignored",
                start,
                size
            );
            continue;
        };
        if ram.push(bank).is_err() {
            defmt::warn!(
                "more than {=usize} RAM banks; ignoring the rest",
                MAX_RAM_BANKS
            );
            break;
        }
    }
    let cpus = cpus::record(arch::current_mpidr(), facts.cpus.iter().copied());
    FirmwareFacts {
        ram,
        cpus,
        disabled: facts.disabled,
        ignored_disabled: facts.ignored_disabled,
    }
}

fn boot_table() -> BootTable {
    // SAFETY: the linker reserves BOOT_TABLE_SIZE bytes at __boot_table in the image.
    let bytes =
        unsafe { core::slice::from_raw_parts(core::ptr::addr_of!(__boot_table), BOOT_TABLE_SIZE) };
    match BootTable::decode(bytes) {
        Ok(table) => table,
        Err(error) => {
            defmt::error!("boot table: {}", defmt::Debug2Format(&error));
            fail("the image carries no valid boot table; compose it with `cargo xtask build`")
        }
    }
}

/// Copies each payload from the loaded image to its destination. `validate_placement` made
/// sure every payload moves up and in file order, so `copy` (memmove) in descending
/// destination order never overwrites a payload before it is moved.
fn place_payloads(table: &BootTable, image_start: u64) {
    let mut order: heapless::Vec<_, { hv_abi::MAX_PAYLOADS }> = table.payloads().collect();
    order.sort_unstable_by_key(|payload| core::cmp::Reverse(payload.load_address));
    for payload in order {
        let source = image_start + payload.file_offset;
        // SAFETY: validate() checked both ranges lie in RAM, the destination off the
        // hypervisor's region; the EL2 map covers all RAM; `copy` allows overlap.
        unsafe {
            core::ptr::copy(
                source as *const u8,
                payload.load_address as *mut u8,
                payload.file_size as usize,
            );
        }
        arch::clean_dcache_to_poc(payload.load_address, payload.file_size);
        defmt::info!(
            "payload {=str}: {=u64:#x}..{=u64:#x}",
            kind_name(payload.kind),
            payload.load_address,
            payload.load_address + payload.file_size
        );
    }
}

fn kind_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::HostKernel => "host kernel",
        PayloadKind::HostDtb => "host dtb",
        PayloadKind::HostInitrd => "host initrd",
        PayloadKind::ComponentImage => "component image",
        PayloadKind::VmImage => "guest VM image",
    }
}

/// Disables in the host's DTB (placed, not yet handed over) the nodes the firmware's tree
/// disabled (`boot_dtb::disable_nodes`): the host then leaves alone what this machine lacks or
/// the firmware turned off. A host DTB that cannot be walked is left as it is (the host reads
/// it as composed), with a warning.
fn keep_firmware_disabled_nodes(table: &BootTable, firmware: &FirmwareFacts) {
    if firmware.ignored_disabled > 0 {
        defmt::warn!(
            "the firmware's DTB disables {=usize} more node(s) than the kernel records; the host may see them",
            firmware.ignored_disabled
        );
    }
    let Some(payload) = table.payload(PayloadKind::HostDtb) else {
        return;
    };
    if firmware.disabled.is_empty() {
        return;
    }
    // SAFETY: the host DTB payload was just copied to `load_address`, inside the host's RAM
    // that nothing else uses yet, `file_size` bytes long (the boot table was validated).
    let dtb = unsafe {
        core::slice::from_raw_parts_mut(
            payload.load_address as usize as *mut u8,
            payload.file_size as usize,
        )
    };
    match boot_dtb::disable_nodes(dtb, &firmware.disabled) {
        Ok(count) => defmt::info!(
            "host dtb: {=usize} device(s) the firmware disabled are disabled",
            count
        ),
        Err(error) => defmt::warn!(
            "host dtb: cannot apply the firmware's disabled nodes: {=str}",
            error.describe()
        ),
    }
}

/// The boot CPU's path from `entry.S` (MMU off, stack set, bss zeroed).
pub fn boot_cpu(firmware_dtb: usize) -> ! {
    let features = arch::cpu_features();
    let firmware = read_firmware_dtb(firmware_dtb);
    // The kernel's own map: all RAM as normal memory, everything else below 4 GiB (or the end
    // of RAM) as device memory, so the log sink and firmware DTB are reachable.
    let ram_end = firmware.ram.iter().map(|bank| bank.end).max().unwrap_or(0);
    let el2_limit = ram_end.clamp(1 << 32, 1 << arch::mmu::VA_BITS);
    let Ok(el2_regions) = memory_map::identity_map(&firmware.ram, &[], el2_limit) else {
        fail("the firmware's memory map does not fit the kernel's tables")
    };
    let el2_root = arch::mmu::build_el2_map(&el2_regions);
    EL2_ROOT.store(el2_root, Ordering::Relaxed);
    // SAFETY: the map covers all RAM (this image, its stacks) and the devices.
    unsafe { arch::enable_el2_mmu(el2_root, &features) };

    let board = hv_board::CURRENT;
    defmt::info!(
        "hv-kernel on {=str}: {=usize} CPU(s), boot MPIDR {=u64:#x}",
        board.name,
        firmware.cpus,
        arch::current_mpidr()
    );
    for bank in &firmware.ram {
        defmt::info!("RAM {=u64:#x}..{=u64:#x}", bank.start, bank.end);
    }

    let table = boot_table();
    let image_start = core::ptr::addr_of!(__image_start) as u64;
    let kernel_footprint = core::ptr::addr_of!(__image_end) as u64 - image_start;
    // SAFETY: the Image header at the start of the image holds the file's size (the composer
    // writes it; the loader reads it too), at a fixed, aligned offset.
    let file_len = unsafe {
        core::ptr::read_volatile((image_start as usize + IMAGE_HEADER_SIZE_OFFSET) as *const u64)
    };
    let checked = table
        .validate(file_len)
        .and_then(|()| table.validate_placement(image_start, kernel_footprint));
    if let Err(error) = checked {
        defmt::error!("boot table: {}", defmt::Debug2Format(&error));
        fail("the boot table does not describe a bootable layout");
    }
    let composed_for_ram = firmware
        .ram
        .iter()
        .any(|bank| bank.contains_range(&table.ram));
    if !composed_for_ram {
        defmt::error!(
            "image composed for RAM {=u64:#x}..{=u64:#x}, which this machine lacks",
            table.ram.start,
            table.ram.end
        );
        fail("the machine has less RAM than the image was composed for; match --mem");
    }
    defmt::info!(
        "hypervisor region {=u64:#x}..{=u64:#x}",
        table.hypervisor.start,
        table.hypervisor.end
    );
    place_payloads(&table, image_start);
    keep_firmware_disabled_nodes(&table, &firmware);

    let emulated = HOST_EMULATED.call_once(|| table.emulated().copied().collect());
    for device in emulated {
        defmt::info!(
            "host device {=u64:#x}..{=u64:#x} is emulated",
            device.start,
            device.end
        );
    }
    RAM_LAYOUT.call_once(|| (firmware.ram.clone(), table.hypervisor));
    // What the host may see is policy: the component routed "host-stage2" (mem-protect)
    // builds the host's stage 2 lazily from this empty root. The kernel has no map of its own.
    if table.host_stage2_root == 0 {
        fail(
            "no component builds the host's stage 2: the manifest needs one routed \"host-stage2\" (mem-protect)",
        );
    }
    defmt::info!(
        "host stage 2: built lazily from root {=u64:#x}",
        table.host_stage2_root
    );
    HOST_VTTBR.store(
        table.host_stage2_root | (HOST_VMID << 48),
        Ordering::Relaxed,
    );

    if let Err(error) = table.validate_components(image_start + kernel_footprint) {
        defmt::error!("boot table: {}", defmt::Debug2Format(&error));
        fail("the boot table's components are misplaced, conflict or name bad notify targets");
    }
    if let Err(error) = table.validate_vms() {
        defmt::error!("boot table: {}", defmt::Debug2Format(&error));
        fail("the boot table's guest VMs are misplaced or conflict");
    }
    components::set_up(&table);
    if crate::control::set_up(components::control_granted()) {
        defmt::info!("hot-swap: the control line is on");
    }
    guests::set_up(&table, &features);
    arch::gic::set_up(&features);
    defmt::info!(
        "kernel tables: {=usize} pages in use (EL2 map, component stage 2s)",
        arch::mmu::pool_pages_used()
    );
    let vttbr = HOST_VTTBR.load(Ordering::Relaxed);
    let controls = host_controls(arch::configure_guest_controls(
        vttbr,
        &features,
        arch::own_mpidr(),
    ));
    components::set_host_world(controls, vttbr);
    let dtb = table
        .payload(PayloadKind::HostDtb)
        .map_or(0, |payload| payload.load_address);
    defmt::info!(
        "entering the host at {=u64:#x} (dtb {=u64:#x})",
        table.host_entry,
        dtb
    );
    components::enter_host_after_start(table.host_entry, dtb)
}

/// A secondary CPU's path from `entry.S`, after the host's CPU_ON started it.
pub fn secondary_cpu(index: usize) -> ! {
    let features = arch::cpu_features();
    // SAFETY: the boot CPU built this map before any secondary could start.
    unsafe { arch::enable_el2_mmu(EL2_ROOT.load(Ordering::Relaxed), &features) };
    if guests::owner_of_cpu(index).is_some() {
        guests::enter_on_this_cpu(index, &features);
    }
    let vttbr = HOST_VTTBR.load(Ordering::Relaxed);
    let controls = host_controls(arch::configure_guest_controls(
        vttbr,
        &features,
        arch::own_mpidr(),
    ));
    components::set_host_world(controls, vttbr);
    let (entry, context) = cpus::host_entry(index);
    defmt::info!(
        "cpu{=usize} up, entering the host at {=u64:#x}",
        index,
        entry
    );
    components::enter_host(entry, context)
}

/// A host CPU's trap controls: with hot-swap's control line on, its WFI traps as well
/// (`crate::control`).
fn host_controls(controls: hv_kernel::controls::TrapControls) -> hv_kernel::controls::TrapControls {
    if crate::control::on() {
        controls.trapping_wfi()
    } else {
        controls
    }
}
