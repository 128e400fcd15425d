//! Guest VMs on this machine: the boot table's descriptors and each VM's run state
//! (`hv_kernel::guest_run`, host-tested there) bound to the hardware: the physical CPUs their
//! vCPUs are pinned to, the copies of their pristine images, and the deferred cache
//! maintenance run before a vCPU's first instruction.
//!
//! Mechanism only: the VM manager decides when a VM starts, which vCPU a PSCI call starts and
//! when a VM is reloaded; the memory-protection component writes each VM's stage 2. The kernel
//! enforces what the manifest fixed: which CPU runs which vCPU, and that a VM's memory is
//! reloaded only while none of its vCPUs runs.

use crate::{arch, components, cpus, interrupts};
use core::sync::atomic::{AtomicU64, Ordering};
use hv_abi::{BootTable, MAX_GUESTS, VmDescriptor};
use hv_ipc::abi::SyscallError;
use hv_ipc::guest_abi::psci;
use hv_kernel::controls::CpuFeatures;
use hv_kernel::guest_image;
use hv_kernel::guest_run::{GuestRun, LoadError, Maintenance, StartError, VcpuState};
use miniz_oxide::inflate::core::DecompressorOxide;

/// One guest VM.
struct Guest {
    descriptor: VmDescriptor,
    run: spin::Mutex<GuestRun>,
    /// Its CNTVOFF_EL2: the physical counter when it was last loaded if its clock starts at
    /// zero, else 0. One for all its vCPUs, so they agree on the time.
    counter_offset: AtomicU64,
}

/// The CNTVOFF_EL2 a VM loaded now runs with.
fn counter_offset_at_load(descriptor: &VmDescriptor) -> u64 {
    if descriptor.counter_from_zero {
        arch::counter().0
    } else {
        0
    }
}

static GUESTS: spin::Once<heapless::Vec<Guest, MAX_GUESTS>> = spin::Once::new();

fn guests() -> &'static [Guest] {
    GUESTS.get().map_or(&[], |guests| guests.as_slice())
}

fn guest(vm: u16) -> Option<&'static Guest> {
    guests().iter().find(|guest| guest.descriptor.vm == vm)
}

/// The guest vCPU pinned to CPU `index` (VM id, vCPU index), if the manifest pins one there.
pub fn owner_of_cpu(index: usize) -> Option<(u16, usize)> {
    guests().iter().find_map(|guest| {
        let vcpu = guest.descriptor.vcpu_on(index)?;
        Some((guest.descriptor.vm, vcpu))
    })
}

/// The physical CPU of the guest vCPU a kernel operation names as `vm | vcpu << 16`.
pub fn cpu_of_vcpu(vm_and_vcpu: u64) -> Result<usize, SyscallError> {
    let (vm, vcpu) =
        hv_ipc::abi::kernel_op_args::vcpu_of(vm_and_vcpu).ok_or(SyscallError::BadArgument)?;
    guest(vm)
        .and_then(|guest| guest.descriptor.cpu_of(usize::from(vcpu)))
        .ok_or(SyscallError::BadArgument)
}

/// Guest VM `vm`'s VTTBR_EL2 value (its stage-2 root and VMID), if it is a guest.
pub fn vttbr(vm: u16) -> Option<u64> {
    guest(vm).map(|guest| guest.descriptor.stage2_root | (guest.descriptor.vmid() << 48))
}

/// Whether guest VM `vm` may use MTE (its manifest says `mte = true`).
pub fn may_use_tags(vm: u16) -> bool {
    guest(vm).is_some_and(|guest| guest.descriptor.mte)
}

/// Guest VM `vm`'s name, for logs.
pub fn name(vm: u16) -> &'static str {
    guest(vm).map_or("?", |guest| guest.descriptor.name())
}

/// Records the boot table's guests and copies their images into their memory (their
/// maintenance is then owed, to run when each first runs). Runs on the boot CPU before the
/// host or any component runs.
pub fn set_up(table: &BootTable, features: &CpuFeatures) {
    GUESTS.call_once(|| {
        table
            .vms()
            .filter(|descriptor| {
                // A VM promised MTE on a machine without it would run without what it asked.
                if descriptor.mte && !features.mte {
                    defmt::error!(
                        "guest VM {=str} may use MTE, but this CPU has no MTE: it is not created",
                        descriptor.name()
                    );
                }
                !descriptor.mte || features.mte
            })
            .filter_map(|descriptor| {
                if cfg!(feature = "dirty-guest-tags") && descriptor.mte {
                    // Stands for a previous owner's tags, which the scrub must remove.
                    arch::set_allocation_tags(descriptor.memory.start, descriptor.memory.len(), 0xa);
                    defmt::info!(
                        "test build: guest VM {=str}'s memory tags set to 0xa",
                        descriptor.name()
                    );
                }
                if !copy_images(descriptor) {
                    defmt::error!(
                        "guest VM {=str}: its images do not load: it is not created",
                        descriptor.name()
                    );
                    return None;
                }
                defmt::info!(
                    "guest VM {=u16} {=str}: RAM at IPA {=u64:#x} backed by {=u64:#x}..{=u64:#x}, {=usize} vCPU(s), stage-2 root {=u64:#x}",
                    descriptor.vm,
                    descriptor.name(),
                    descriptor.ram_ipa,
                    descriptor.memory.start,
                    descriptor.memory.end,
                    descriptor.vcpu_count(),
                    descriptor.stage2_root
                );
                Some(Guest {
                    descriptor: *descriptor,
                    run: spin::Mutex::new(GuestRun::new(descriptor.vcpu_count(), descriptor.mte)),
                    counter_offset: AtomicU64::new(counter_offset_at_load(descriptor)),
                })
            })
            .collect()
    });
}

/// The inflater's working memory, shared by every load (one at a time: at boot, and in
/// VM_LOAD). About 11 KiB, too much for an EL2 stack.
/// Made on first use (its constructor is not `const`).
static INFLATER: spin::Once<spin::Mutex<DecompressorOxide>> = spin::Once::new();

/// Puts the VM's pristine images from the kernel's store into its memory (inflating the
/// compressed ones). Returns whether every image loaded; a corrupt one is logged.
fn copy_images(descriptor: &VmDescriptor) -> bool {
    let mut inflater = INFLATER
        .call_once(|| spin::Mutex::new(DecompressorOxide::new()))
        .lock();
    let mut loaded = true;
    for image in descriptor.images() {
        // SAFETY: the boot table's checks keep each store inside the hypervisor's region (a
        // VmImage payload's destination) and each destination (`loaded_len` bytes) inside the
        // VM's memory, off the hypervisor's region; both are mapped at EL2 and do not overlap.
        // No vCPU of the VM runs: at boot none does, and VM_LOAD is refused while one does
        // (`GuestRun::loaded`).
        let (store, destination) = unsafe {
            (
                core::slice::from_raw_parts(
                    image.store.start as *const u8,
                    image.store.len() as usize,
                ),
                core::slice::from_raw_parts_mut(
                    image.load_address as *mut u8,
                    image.loaded_len as usize,
                ),
            )
        };
        if let Err(error) =
            guest_image::load(store, image.is_compressed(), destination, &mut inflater)
        {
            defmt::error!(
                "guest VM {=str}: its image at {=u64:#x} does not load: {}",
                descriptor.name(),
                image.load_address,
                defmt::Debug2Format(&error)
            );
            loaded = false;
        }
    }
    loaded
}

/// VM_START: starts guest `vm`'s vCPU 0 at its boot entry with x0 = its DTB. Returns a PSCI
/// status.
pub fn start_vm(vm: u16) -> Result<u64, SyscallError> {
    let guest = guest(vm).ok_or(SyscallError::BadArgument)?;
    let descriptor = &guest.descriptor;
    Ok(start_vcpu(vm, 0, descriptor.entry, descriptor.dtb))
}

/// Starts guest `vm`'s vCPU `vcpu` at `entry` with x0 = `context` on its pinned CPU (PSCI
/// CPU_ON, or the VM's start). Returns the PSCI status.
pub fn start_vcpu(vm: u16, vcpu: usize, entry: u64, context: u64) -> u64 {
    let Some(guest) = guest(vm) else {
        return cpus::psci_status(psci::error::INVALID_PARAMETERS);
    };
    let Some(cpu) = guest.descriptor.cpu_of(vcpu) else {
        return cpus::psci_status(psci::error::INVALID_PARAMETERS);
    };
    let started = guest.run.lock().start(vcpu, entry, context);
    let refused = match started {
        Ok(()) => None,
        Err(StartError::NoSuchVcpu) => Some(psci::error::INVALID_PARAMETERS),
        Err(StartError::AlreadyOn) => Some(psci::error::ALREADY_ON),
        Err(StartError::OnPending) => Some(psci::error::ON_PENDING),
        Err(StartError::VmStopped) => Some(psci::error::DENIED),
    };
    if let Some(code) = refused {
        return cpus::psci_status(code);
    }
    let status = cpus::power_on(cpu);
    if status != cpus::psci_status(psci::error::SUCCESS) {
        guest.run.lock().start_failed(vcpu);
        defmt::warn!(
            "VM {=str}: vCPU {=usize} on cpu{=usize} could not be powered on: {=i64}",
            guest.descriptor.name(),
            vcpu,
            cpu,
            status as i64
        );
    }
    status
}

/// PSCI AFFINITY_INFO of guest `vm`'s vCPU `vcpu`.
pub fn affinity(vm: u16, vcpu: usize) -> u64 {
    let state = guest(vm).and_then(|guest| guest.run.lock().affinity(vcpu));
    cpus::psci_status(match state {
        None => psci::error::INVALID_PARAMETERS,
        Some(VcpuState::Off) => psci::AFFINITY_OFF,
        Some(VcpuState::Starting { .. }) => psci::AFFINITY_ON_PENDING,
        Some(VcpuState::On) => psci::AFFINITY_ON,
    })
}

/// PSCI CPU_OFF from guest `vm`'s vCPU `vcpu` (on this CPU): it is off, and so is the CPU.
pub fn vcpu_off(vm: u16, vcpu: usize) -> ! {
    if let Some(guest) = guest(vm) {
        guest.run.lock().stopped(vcpu);
    }
    cpus::power_off_this_cpu()
}

/// Stops guest `vm` from its vCPU `vcpu` on this CPU (it powered off, or nothing can answer
/// its traps): the host and the other VMs go on. Its other vCPUs, if any run, stop at their
/// next exit to the kernel.
pub fn stop(vm: u16, vcpu: usize, why: &str) -> ! {
    if let Some(guest) = guest(vm) {
        let mut run = guest.run.lock();
        run.stopped(vcpu);
        run.request_stop();
    }
    defmt::info!(
        "VM {=str} stopped: {=str}; the host and other VMs go on",
        name(vm),
        why
    );
    cpus::power_off_this_cpu()
}

/// Whether vCPU `vcpu` of guest `vm`, which just exited to the kernel, must stop because its VM
/// is stopping.
pub fn must_stop(vm: u16, vcpu: usize) -> bool {
    guest(vm).is_some_and(|guest| guest.run.lock().must_stop(vcpu))
}

/// vCPU `vcpu` of guest `vm` (on this CPU) stops because its VM is stopping; the VM is stopped
/// once its last vCPU is.
pub fn stop_for_vm(vm: u16, vcpu: usize) -> ! {
    let stopped = guest(vm).is_some_and(|guest| {
        let mut run = guest.run.lock();
        run.stopped(vcpu);
        run.is_stopped()
    });
    defmt::info!(
        "VM {=str}: vCPU {=usize} stopped with its VM{=str}",
        name(vm),
        vcpu,
        if stopped { "; the VM is stopped" } else { "" }
    );
    cpus::power_off_this_cpu()
}

/// VM_STOP: guest `vm` is to stop (the host's request, through the VM manager). Returns whether
/// it is stopped already; otherwise its running vCPUs stop at their next exit.
pub fn request_stop(vm: u16) -> Result<bool, SyscallError> {
    let guest = guest(vm).ok_or(SyscallError::BadArgument)?;
    let stopped = guest.run.lock().request_stop();
    // Its running vCPUs exit at once: the kick is a physical interrupt on their CPUs.
    for vcpu in 0..guest.descriptor.vcpu_count() {
        if let Some(cpu) = guest.descriptor.cpu_of(vcpu) {
            crate::arch::gic::kick(cpu);
        }
    }
    defmt::info!(
        "VM {=str}: stop requested{=str}",
        guest.descriptor.name(),
        if stopped {
            "; it is stopped"
        } else {
            "; its vCPUs stop at their next exit"
        }
    );
    Ok(stopped)
}

/// VM_STATUS: how many of guest `vm`'s vCPUs are on or being started, and whether it is
/// stopped (asked to stop, with none of them on).
pub fn status(vm: u16) -> Result<(u64, bool), SyscallError> {
    let guest = guest(vm).ok_or(SyscallError::BadArgument)?;
    let run = guest.run.lock();
    let on = (0..guest.descriptor.vcpu_count())
        .filter(|&vcpu| run.vcpu(vcpu).is_some_and(|state| state != VcpuState::Off))
        .count();
    Ok((on as u64, run.is_stopped()))
}

/// VM_LOAD: copies guest `vm`'s pristine images back into its memory and owes its maintenance
/// again. `caller` is the VM's vCPU this CPU runs, if any (stopped in the kernel while the VM
/// manager serves its reset); every other vCPU of the VM must be off.
pub fn load(vm: u16, caller: Option<usize>) -> Result<(), SyscallError> {
    let guest = guest(vm).ok_or(SyscallError::BadArgument)?;
    let mut run = guest.run.lock();
    if let Err(LoadError::VcpuRuns(vcpu)) = run.loaded(caller) {
        defmt::warn!(
            "VM {=str}: not reloaded while its vCPU {=usize} runs",
            guest.descriptor.name(),
            vcpu
        );
        return Err(SyscallError::BadArgument);
    }
    if !copy_images(&guest.descriptor) {
        // Its memory is in no state to run: the VM manager stops it.
        return Err(SyscallError::BadArgument);
    }
    guest
        .counter_offset
        .store(counter_offset_at_load(&guest.descriptor), Ordering::Relaxed);
    for vcpu in 0..guest.descriptor.vcpu_count() {
        if let Some(cpu) = guest.descriptor.cpu_of(vcpu) {
            interrupts::forget(cpu);
        }
    }
    let loads = run.counts().loads;
    drop(run);
    defmt::info!(
        "VM {=str}: images reloaded (load {=u64}); maintenance owed",
        guest.descriptor.name(),
        loads
    );
    Ok(())
}

/// PSCI SYSTEM_RESET of guest `vm`, asked by its vCPU `vcpu` on this CPU, once the VM manager
/// has wiped and reloaded it (VM_LOAD, which turned the caller's vCPU off): the VM starts
/// afresh from vCPU 0 at its boot entry. If the VM was not reloaded, it is stopped instead.
pub fn reset(vm: u16, vcpu: usize, features: &CpuFeatures) -> ! {
    let Some(guest) = guest(vm) else {
        cpus::power_off_this_cpu()
    };
    let caller_on = guest.run.lock().vcpu(vcpu) != Some(VcpuState::Off);
    if caller_on {
        defmt::error!(
            "VM {=str}: reset answered without reloading its memory",
            guest.descriptor.name()
        );
        stop(vm, vcpu, "its reset could not be carried out");
    }
    let descriptor = &guest.descriptor;
    if vcpu == 0 {
        let started = guest.run.lock().start(0, descriptor.entry, descriptor.dtb);
        if started.is_ok() {
            enter_on_this_cpu(arch::cpu_index(), features);
        }
        stop(vm, vcpu, "its vCPU 0 could not be restarted");
    }
    start_vm(vm).ok();
    cpus::power_off_this_cpu()
}

/// Runs, on this CPU, the guest vCPU pinned to it that was just started: its VM's owed
/// maintenance first, then its first instruction with fresh registers. Powers the CPU off if
/// it has no vCPU to run (its start was cancelled by a stop), so that it can be started again.
pub fn enter_on_this_cpu(index: usize, features: &CpuFeatures) -> ! {
    let Some((vm, vcpu)) = owner_of_cpu(index) else {
        arch::park()
    };
    let Some(guest) = guest(vm) else { arch::park() };
    let descriptor = &guest.descriptor;
    let Some((entry, context, owed)) = guest.run.lock().entering(vcpu) else {
        defmt::info!(
            "cpu{=usize}: VM {=str}'s vCPU {=usize} was stopped before it ran",
            index,
            descriptor.name(),
            vcpu
        );
        cpus::power_off_this_cpu()
    };
    if owed.any() {
        run_maintenance(descriptor, owed);
        let counts = guest.run.lock().counts();
        defmt::info!(
            "vm-maintenance vm={=str} loads={=u64} dcache-cleans={=u64} icache-invalidations={=u64} tag-scrubs={=u64}",
            descriptor.name(),
            counts.loads,
            counts.data_cache_cleans,
            counts.instruction_cache_invalidations,
            counts.tag_scrubs
        );
    }
    let vttbr = descriptor.stage2_root | (descriptor.vmid() << 48);
    debug_assert_eq!(Some(vttbr), self::vttbr(vm));
    let vmpidr = (1 << 31) | vcpu as u64;
    let controls = arch::configure_guest_controls(vttbr, features, vmpidr).guest(descriptor.mte);
    arch::set_virtual_counter_offset(guest.counter_offset.load(Ordering::Relaxed));
    components::set_vcpu_world(controls, vttbr, vm, vcpu as u16);
    interrupts::start_vcpu(index);
    interrupts::before_resuming_vcpu(index);
    defmt::info!(
        "cpu{=usize}: VM {=str} vCPU {=usize} enters at {=u64:#x} (x0 {=u64:#x})",
        index,
        descriptor.name(),
        vcpu,
        entry,
        context
    );
    components::enter_vcpu_fresh(entry, context)
}

/// The maintenance a VM's memory is owed, over all of it, on this CPU (seed 002).
fn run_maintenance(descriptor: &VmDescriptor, owed: Maintenance) {
    let memory = descriptor.memory;
    // `set_up` creates a VM that owes a tag scrub only on a CPU with MTE.
    if owed.scrub_tags {
        arch::set_allocation_tags(memory.start, memory.len(), 0);
    }
    if owed.clean_data_cache {
        arch::clean_dcache_to_poc(memory.start, memory.len());
    }
    if owed.invalidate_instruction_cache {
        arch::invalidate_instruction_caches();
    }
}
