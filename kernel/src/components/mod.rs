//! Component tasks on this machine: the world stack of `hv_kernel::worlds` (calls, replies,
//! faults, restarts; host-tested there) bound to the hardware, and the system calls the kernel
//! serves itself.
//!
//! Every world's registers stay in place: the exception vectors save a trapping world's
//! registers into its own frame and resume the frame of whichever world is on top afterwards
//! ([`resume_frame`]), so a call or reply switches worlds without copying registers.

use crate::arch::{self, GuestFrame, el1::El1Context};
use core::cell::UnsafeCell;
use hv_abi::{BootTable, ComponentDescriptor, PhysRange};
use hv_ipc::abi::MESSAGE_MAX;
use hv_kernel::controls::TrapControls;
use hv_kernel::pending::{Decision, PendingTrap};
use hv_kernel::trap_stats::MAX_CPUS;
use hv_kernel::worlds::{
    self, CallError, Cpu, Event, Machine, MessageBuffer, Registry, Syscall, WorldKind,
};
use spin::Once;

mod syscalls;

/// The first VMID given to components (the host VM is 1).
const FIRST_COMPONENT_VMID: u64 = 2;

static REGISTRY: Once<Registry<El1Context>> = Once::new();

/// The state handed over in a swap ([`Machine::handover`]).
static mut HANDOVER: [u8; hv_ipc::lifecycle::STATE_MAX] = [0; hv_ipc::lifecycle::STATE_MAX];

/// This CPU's hardware under the world stack: how it runs its vCPU (the host's, or the
/// guest vCPU pinned to it) and components.
#[derive(Clone, Copy)]
struct Hardware {
    /// The vCPU's trap controls.
    host: TrapControls,
    /// The components' trap controls on this CPU (`host.component()`, made once).
    component: TrapControls,
    /// The vCPU's VM's stage 2.
    host_vttbr: u64,
    /// Which VM the vCPU belongs to (0: the host) and its index there.
    vm: u16,
    vcpu: u16,
}

impl Hardware {
    /// Before `set_vcpu_world`: loads images, switches nothing.
    const UNSET: Self = Self {
        host: TrapControls { hcr: 0, cptr: 0 },
        component: TrapControls { hcr: 0, cptr: 0 },
        host_vttbr: 0,
        vm: 0,
        vcpu: 0,
    };
}

impl Machine for Hardware {
    type El1 = El1Context;
    fn component_el1() -> El1Context {
        El1Context::component_reset()
    }

    #[inline(always)]
    fn switch(
        &mut self,
        from: WorldKind,
        save: &mut El1Context,
        load: &El1Context,
        next: WorldKind,
    ) {
        // A vCPU's EL1 state is switched whole; a component's only as far as it keeps it
        // (`arch::el1`: its scratch registers are cleared, not preserved).
        match from {
            WorldKind::Vcpu => save.save(),
            WorldKind::Component { .. } => save.save_component(),
        }
        match next {
            WorldKind::Vcpu => load.load(),
            WorldKind::Component { .. } => load.load_component(),
        }
        match next {
            WorldKind::Vcpu => arch::el1::enter_world(self.host_vttbr, self.host),
            WorldKind::Component { vttbr } => arch::el1::enter_world(vttbr, self.component),
        }
    }

    fn load_image(&mut self, descriptor: &ComponentDescriptor, image: PhysRange) {
        let PhysRange { start, end } = descriptor.region;
        let image_len = image.len().min(end - start);
        // SAFETY: validate_components checked that region and store are disjoint parts of the
        // hypervisor's region, mapped at EL2 and in no other world's stage 2 but this
        // component's, which is not running (the world stack loads only a component that is
        // locked by this CPU and on no CPU's stack, or before any CPU runs components). A
        // swapped-in image lies in the requesting component's region (checked by the world
        // stack), which is not this one, and is at most this region's size.
        unsafe {
            core::ptr::copy_nonoverlapping(
                image.start as *const u8,
                start as *mut u8,
                image_len as usize,
            );
            core::ptr::write_bytes(
                (start + image_len) as *mut u8,
                0,
                (end - start - image_len) as usize,
            );
        }
        arch::sync_instructions(start, end - start);
    }

    fn store_image(&mut self, descriptor: &ComponentDescriptor, image: PhysRange) {
        let store = descriptor.image_store;
        let len = image.len().min(store.len());
        // SAFETY: the store is the component's slot in the hypervisor's region, mapped at EL2
        // and in no component's stage 2; the image lies in another component's region
        // (checked by the world stack) and fits the slot (also checked); the rest of the slot
        // is cleared so that the store holds exactly the new image.
        unsafe {
            core::ptr::copy_nonoverlapping(
                image.start as *const u8,
                store.start as *mut u8,
                len as usize,
            );
            core::ptr::write_bytes(
                (store.start + len) as *mut u8,
                0,
                (store.len() - len) as usize,
            );
        }
    }

    fn build_id(&mut self, image: PhysRange) -> u64 {
        // SAFETY: `image` is an image store or a staged image in a component's region, both
        // inside the hypervisor's region and mapped at EL2; only read.
        let bytes =
            unsafe { core::slice::from_raw_parts(image.start as *const u8, image.len() as usize) };
        hv_ipc::swap::build_id(bytes)
    }

    fn ticks_per_second(&self) -> u64 {
        arch::counter().1
    }

    fn handover(&mut self) -> &mut [u8] {
        let buffer = &raw mut HANDOVER;
        // SAFETY: only the CPU carrying out the one swap under way asks (the world stack's
        // `swapping` flag), and the reference ends before that swap does.
        unsafe { &mut *buffer }
    }

    fn message_buffer(&mut self, address: u64) -> &mut MessageBuffer {
        // SAFETY: `address` is a component's `__ipc_rx` or `__ipc_tx`, which the boot table's
        // checks keep 16-byte aligned inside its region, mapped at EL2; the world stack only
        // asks for the buffers of a component that is locked by this CPU and not running.
        unsafe { &mut *(address as *mut MessageBuffer) }
    }

    fn copy_message(&mut self, from: u64, to: u64, len: usize) {
        let len = len.min(MESSAGE_MAX);
        // Whole words (the buffers are 16-byte aligned and MESSAGE_MAX long, so the last word
        // is inside both; the generic `memcpy` copies short messages a byte at a time). The
        // bytes of the last word past `len` are written as zeros, so no stale byte of the
        // sender's buffer reaches the receiver.
        let (whole, tail) = (len / 8, len % 8);
        // SAFETY: as in `message_buffer`: two different components' buffers (a component never
        // calls itself), both aligned, locked by this CPU and stopped; every word read or
        // written is below `len` rounded up to 8, at most MESSAGE_MAX.
        unsafe {
            let (from_words, to_words) = (from as *const u64, to as *mut u64);
            for word in 0..whole {
                to_words.add(word).write(from_words.add(word).read());
            }
            if tail != 0 {
                // Little-endian: the first `tail` bytes are the low ones.
                let kept = (1u64 << (tail * 8)) - 1;
                to_words
                    .add(whole)
                    .write(from_words.add(whole).read() & kept);
            }
        }
    }

    fn now(&self) -> u64 {
        arch::counter().0
    }

    fn set_deadline(&mut self, at: Option<u64>) {
        match at {
            Some(at) => {
                arch::deadline::arm(at);
                self.component = self.host.component_under_deadline();
            }
            None => {
                arch::deadline::disarm();
                self.component = self.host.component();
            }
        }
    }

    fn report(&mut self, event: Event) {
        let name = |index| REGISTRY.get().map_or("?", |registry| registry.name(index));
        match event {
            Event::Faulted {
                index,
                faults,
                esr,
                pc,
            } => defmt::warn!(
                "component {=str} stopped after fault {=u64} (ESR {=u64:#x}, pc {=u64:#x})",
                name(index),
                faults,
                esr,
                pc
            ),
            Event::Restarted { index, restarts } => defmt::info!(
                "component {=str} restarted (restart {=u64})",
                name(index),
                restarts
            ),
            Event::RestartDeferred { index } => {
                defmt::info!("component {=str}: restart deferred", name(index))
            }
            Event::Retired { index } => defmt::warn!(
                "component {=str} stays stopped for good (restart never)",
                name(index)
            ),
            Event::Overdue { index } => defmt::error!(
                "component {=str} did not answer by the swap's deadline: the kernel took its CPU back and stopped it",
                name(index)
            ),
            Event::ReceivedWhileCalled { index } => defmt::error!(
                "component {=str} waited for a call while its caller waits for its reply",
                name(index)
            ),
            Event::Runs { index, build } => defmt::info!(
                "component {=str} (index {=usize}) runs build {=u64:#x}",
                name(index),
                index,
                build
            ),
            Event::SwapEnded {
                index,
                outcome,
                old_build,
                new_build,
                ticks,
                state_len,
            } => {
                let micros = ticks.saturating_mul(1_000_000) / arch::counter().1.max(1);
                match outcome {
                    hv_ipc::abi::SwapOutcome::Swapped => defmt::info!(
                        "component {=str} swapped: build {=u64:#x} -> {=u64:#x} in {=u64} us, {=u32} bytes of state handed over",
                        name(index),
                        old_build,
                        new_build,
                        micros,
                        state_len
                    ),
                    outcome if outcome.rolled_back() => defmt::warn!(
                        "component {=str}: swap rolled back in {=u64} us: {=str}; build {=u64:#x} serves with its state ({=u32} bytes)",
                        name(index),
                        micros,
                        outcome.describe(),
                        new_build,
                        state_len
                    ),
                    outcome => defmt::warn!(
                        "component {=str}: swap refused: {=str}",
                        name(index),
                        outcome.describe()
                    ),
                }
            }
        }
    }
}

/// A CPU's world stack and hardware.
struct PerCpu {
    worlds: Cpu<El1Context>,
    /// Set by `set_host_world` before the CPU first enters its vCPU.
    hardware: Hardware,
}

struct PerCpuCell(UnsafeCell<PerCpu>);

// SAFETY: each CPU only touches its own entry (indexed by its own CPU index).
unsafe impl Sync for PerCpuCell {}

static PER_CPU: [PerCpuCell; MAX_CPUS] = [const {
    PerCpuCell(UnsafeCell::new(PerCpu {
        worlds: Cpu::new(El1Context::ZERO),
        hardware: Hardware::UNSET,
    }))
}; MAX_CPUS];

/// This CPU's registry, world stack and hardware.
#[inline(always)]
fn this_cpu() -> (
    &'static Registry<El1Context>,
    &'static mut Cpu<El1Context>,
    &'static mut Hardware,
) {
    // SAFETY: the entry of the running CPU is only ever used by that CPU, and each function of
    // this module takes it once and drops it before returning.
    let cpu = unsafe { &mut *PER_CPU[arch::cpu_index()].0.get() };
    // SAFETY: `set_up` completes the registry on the boot CPU before any CPU enters a world,
    // and every caller of `this_cpu` runs on a trap from a world or enters one afterwards. On
    // every trap, so not looked up again.
    let registry = unsafe { REGISTRY.get_unchecked() };
    (registry, &mut cpu.worlds, &mut cpu.hardware)
}

fn registry() -> &'static Registry<El1Context> {
    REGISTRY.get().expect("components are set up at boot")
}

/// Records how this CPU runs its vCPU: vCPU `vcpu` of VM `vm` (0: the host), with `controls`
/// and stage 2 `vttbr` (called before the CPU enters the vCPU), and puts them in force: the
/// vCPU's first instruction already runs under them (a guest's interrupts go to EL2, its ID
/// registers are filtered), not only after its first trap.
pub fn set_vcpu_world(controls: TrapControls, vttbr: u64, vm: u16, vcpu: u16) {
    // SAFETY: as in `this_cpu`.
    let cpu = unsafe { &mut *PER_CPU[arch::cpu_index()].0.get() };
    cpu.hardware = Hardware {
        host: controls,
        component: controls.component(),
        host_vttbr: vttbr,
        vm,
        vcpu,
    };
    arch::el1::enter_world(vttbr, controls);
}

/// Records how this CPU runs the host's vCPU (its vCPU *i* is CPU *i*).
pub fn set_host_world(host: TrapControls, host_vttbr: u64) {
    set_vcpu_world(host, host_vttbr, 0, arch::cpu_index() as u16);
}

/// Enters this CPU's vCPU afresh at EL1h `entry` with x0 = `x0`.
pub fn enter_host(entry: u64, x0: u64) -> ! {
    let (registry, cpu, _) = this_cpu();
    cpu.reset();
    *cpu.vcpu_frame() = GuestFrame::entering(entry, [x0, 0, 0, 0]);
    arch::run_world(registry.top_frame(cpu))
}

/// Enters the host on the boot CPU at `entry` with x0 = `x0`, after the server of the
/// guest-trap interface (the VM manager) has run for `NOTIFY_SYSTEM_STARTED`: it creates and
/// starts the guest VMs before the host's first instruction.
pub fn enter_host_after_start(entry: u64, x0: u64) -> ! {
    let (registry, cpu, hardware) = this_cpu();
    cpu.reset();
    *cpu.vcpu_frame() = GuestFrame::entering(entry, [x0, 0, 0, 0]);
    if let Some(server) = registry.server_of(hv_ipc::abi::interface::GUEST_TRAP) {
        registry.notify_from_kernel(hardware, cpu, server, hv_ipc::abi::NOTIFY_SYSTEM_STARTED);
    }
    arch::run_world(registry.top_frame(cpu))
}

/// Enters this CPU's guest vCPU afresh at EL1h `entry` with x0 = `x0`, its EL1 registers in
/// their reset state (nothing of a previous run or another world survives).
pub fn enter_vcpu_fresh(entry: u64, x0: u64) -> ! {
    El1Context::vcpu_reset().load();
    enter_host(entry, x0)
}

/// Loads every component from the boot table: copies its image from the store into its
/// region and builds its stage 2. Runs on the boot CPU before the host starts.
pub fn set_up(table: &BootTable) {
    REGISTRY.call_once(|| {
        let components = table.components().enumerate().map(|(index, descriptor)| {
            let root = arch::mmu::build_component_map(descriptor.region);
            let vmid = FIRST_COMPONENT_VMID + index as u64;
            defmt::info!(
                "component {=usize} {=str}: {=u64:#x}..{=u64:#x}, serves interface {=u16}",
                index,
                descriptor.name(),
                descriptor.region.start,
                descriptor.region.end,
                descriptor.serves
            );
            (*descriptor, root | (vmid << 48))
        });
        // No host controls are needed to load images; switches come later.
        let mut loader = Hardware::UNSET;
        Registry::new(&mut loader, components)
    });
    // Which build each component runs: the log's decoder picks its ELF by this line.
    let mut hardware = Hardware::UNSET;
    for index in 0..registry().components().len() {
        let build = registry().build(index);
        hardware.report(Event::Runs { index, build });
    }
}

/// Whether the supervisor may read hot-swap's control line (the manifest's `hot-swap`).
pub fn control_granted() -> bool {
    let registry = registry();
    registry
        .server_of(hv_ipc::abi::interface::SUPERVISOR)
        .is_some_and(|supervisor| {
            let ops = registry.components()[supervisor].descriptor.kernel_ops;
            ops & (1 << hv_ipc::abi::kernel_op::CONTROL_READ) != 0
        })
}

/// The component SMCCC function `function` from a guest goes to.
pub fn smccc_route(function: u32) -> Option<usize> {
    registry().smccc_route(function)
}

/// The component that builds the host's stage 2 and takes its faults, if any.
pub fn host_stage2_route() -> Option<usize> {
    registry().route(hv_abi::ROUTE_HOST_STAGE2)
}

/// The component that emulates the devices the manifest makes emulated, if any.
pub fn mmio_route() -> Option<usize> {
    registry().route(hv_abi::ROUTE_MMIO)
}

/// Component `index`'s name, for logs ("?" if there is none).
pub fn name(index: usize) -> &'static str {
    registry().name(index)
}

/// This CPU's world stack, taken once per trap (the trap handler passes it down).
pub struct Here {
    registry: &'static Registry<El1Context>,
    cpu: &'static mut Cpu<El1Context>,
    hardware: &'static mut Hardware,
}

/// This CPU's world stack. Take it once per trap: it is this CPU's only handle on it.
pub fn here() -> Here {
    let (registry, cpu, hardware) = this_cpu();
    Here {
        registry,
        cpu,
        hardware,
    }
}

impl Here {
    /// The component on top, if a component (not the vCPU) runs.
    pub fn current(&self) -> Option<usize> {
        self.cpu.current()
    }

    /// A physical interrupt came while a component ran: only while this CPU's deadline is
    /// armed do components run with interrupts taken to EL2, and only the deadline's interrupt
    /// is let through then. Its deadline passed: the swap takes the CPU back. Otherwise a
    /// component still runs under the controls of a deadline since disarmed, and the interrupt
    /// is the vCPU's: it waits for it.
    pub fn component_interrupted(&mut self) {
        if arch::deadline::passed() {
            self.registry.deadline_passed(self.hardware, self.cpu);
        } else if !arch::deadline::armed() {
            arch::el1::stop_taking_interrupts();
        }
    }

    /// This CPU's vCPU: its VM (0: the host) and its index there.
    pub fn vcpu(&self) -> (u16, u16) {
        (self.hardware.vm, self.hardware.vcpu)
    }

    /// The registers of the world on top: the one that trapped, until a call, reply or fault
    /// switches worlds.
    pub fn frame(&mut self) -> &mut GuestFrame {
        self.registry.frame_mut(self.cpu)
    }

    /// The frame the vectors resume (and save into at this CPU's next trap): the top world's.
    pub fn resume_frame(&mut self) -> *mut GuestFrame {
        self.registry.top_frame(self.cpu)
    }

    /// Sends the vCPU's trap `pending` to component `index` on `interface`, the request
    /// written by `encode` from the vCPU's registers straight into the component's RX buffer.
    #[inline(always)]
    pub fn call_from_vcpu(
        &mut self,
        index: usize,
        interface: u16,
        encode: impl FnOnce(&mut MessageBuffer, &GuestFrame) -> Option<usize>,
        pending: PendingTrap,
    ) -> Result<(), CallError> {
        self.registry
            .call_from_vcpu(self.hardware, self.cpu, index, interface, encode, pending)
    }

    /// The fast path of the vCPU's SMCCC HVC, whose retry point is `retry_pc`
    /// ([`Registry::fast_smccc_call`]): whether it was taken.
    #[inline(always)]
    pub fn fast_smccc_call(&mut self, retry_pc: u64) -> bool {
        let vcpu = self.vcpu();
        self.registry
            .fast_smccc_call(self.hardware, self.cpu, vcpu, retry_pc)
    }

    /// The fast path of the REPLY that answers the vCPU's SMCCC call
    /// ([`Registry::fast_reply_to_vcpu`]): whether it was taken.
    #[inline(always)]
    pub fn fast_reply_to_vcpu(&mut self) -> bool {
        self.registry.fast_reply_to_vcpu(self.hardware, self.cpu)
    }

    /// The fast path of a CALL or REPLY between components
    /// ([`Registry::fast_call_or_reply`]): whether it was taken. Out of line, so that the
    /// hypercall's own fast path keeps its registers.
    #[inline(never)]
    pub fn fast_call_or_reply(&mut self) -> bool {
        self.registry.fast_call_or_reply(self.hardware, self.cpu)
    }

    /// What a component's answer to the vCPU's trap leaves for the kernel to carry out, with
    /// that trap, once the vCPU is back on top.
    pub fn take_vcpu_answer(&mut self) -> Option<(PendingTrap, Decision)> {
        self.cpu.take_answer()
    }

    /// Handles an HVC (a system call) from the component on top.
    #[inline(always)]
    pub fn syscall(&mut self) {
        if let Syscall::Kernel {
            index,
            number,
            args,
        } = self.registry.syscall(self.hardware, self.cpu)
        {
            syscalls::serve(self, index, number, args);
        }
    }

    /// Stops the component on top after a fault with syndrome `esr`, answers its caller and
    /// runs the supervisor.
    pub fn fault(&mut self, esr: u64) {
        self.registry.fault(self.hardware, self.cpu, esr);
    }

    /// Sets notification `bits` on the supervisor and runs it now if it is free (this CPU's
    /// stack holds only its vCPU).
    pub fn notify_supervisor(&mut self, bits: u64) {
        if let Some(supervisor) = self.registry.server_of(hv_ipc::abi::interface::SUPERVISOR) {
            self.registry
                .notify_from_kernel(self.hardware, self.cpu, supervisor, bits);
        }
    }

    /// The result of a system call the kernel served, into the caller's registers.
    fn set_result(&mut self, result: Result<[u64; 3], hv_ipc::abi::SyscallError>) {
        worlds::set_result(self.frame(), result);
    }
}

/// Reports per component how many calls it served, faults it took and times it started (the
/// system tests and the benchmark read these lines).
pub fn report() {
    let Some(registry) = REGISTRY.get() else {
        return;
    };
    for (index, component) in registry.components().iter().enumerate() {
        let Some(stats) = registry.stats(index) else {
            continue;
        };
        defmt::info!(
            "component-stats name={=str} calls={=u64} faults={=u64} starts={=u64}",
            component.descriptor.name(),
            stats.calls,
            stats.faults,
            stats.starts
        );
    }
}
