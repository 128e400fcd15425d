//! Component tasks: loading them, switching a CPU between worlds, carrying calls and replies,
//! and containing faults.
//!
//! # Model (docs/ipc.md has the reasons)
//! - **Thread migration.** A call runs the callee on the caller's CPU: the caller's context is
//!   saved, the callee's loaded, and the CPU erets into the callee. Each CPU keeps a stack of the
//!   worlds it is running on behalf of (`vCPU → component → component …`); a reply pops it.
//! - **One CPU per component at a time.** A component is locked (FIFO ticket lock) while it is
//!   on some CPU's stack; a second caller waits its turn, so calls to a busy component queue.
//!   The manifest's call graph is acyclic (checked by the composer), so waiting cannot deadlock.
//! - **Faults are contained.** A component that faults (stage-2 abort, a trapped instruction,
//!   its own exception vectors, a panic) is stopped, its caller is answered (a guest's call is
//!   re-delivered: the vCPU re-executes it; a component's call returns `CalleeFaulted`), and the
//!   supervisor is run at once with a notification to decide the restart.

use crate::arch::{
    self, GuestFrame,
    el1::{El1Context, World},
};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};
use hv_abi::{BootTable, ComponentDescriptor, MAX_COMPONENTS, PhysRange};
use hv_ipc::abi::{self, ComponentState, SyscallError};
use hv_ipc::interfaces::guest_trap::TrapResolution;
use hv_kernel::controls::{self, TrapControls};
use hv_kernel::pending::{PendingTrap, Refusal};
use hv_kernel::trap_stats::MAX_CPUS;
use spin::{Once, mutex::TicketMutex};

mod syscalls;
pub use syscalls::syscall;

/// The first VMID given to components (the host VM is 1).
const FIRST_COMPONENT_VMID: u64 = 2;
/// Most nested worlds on one CPU: the vCPU plus every component once.
const MAX_DEPTH: usize = MAX_COMPONENTS + 1;

/// Who is waiting for a component's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The vCPU below it on this CPU, stopped on its pending trap (`PerCpu::vcpu_pending`)
    /// until the answer.
    Vcpu,
    /// Another component.
    Component(usize),
    /// Nobody: the kernel delivered a notification.
    Kernel,
}

/// What a component receives when it next waits in RECV (or REPLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A call: its request is in the component's RX buffer.
    Call {
        /// Sender id (`abi::SENDER_KERNEL` for a guest trap).
        sender: u64,
        /// Interface id.
        interface: u16,
        /// Request length.
        len: usize,
    },
    /// Notification bits.
    Notification(u64),
}

impl Delivery {
    fn registers(self) -> [u64; 4] {
        match self {
            Self::Call {
                sender,
                interface,
                len,
            } => [abi::RECV_CALL, sender, interface as u64, len as u64],
            Self::Notification(bits) => [abi::RECV_NOTIFICATION, 0, bits, 0],
        }
    }
}

/// One level of a CPU's world stack.
#[derive(Clone, Copy, Debug)]
enum Level {
    Vcpu,
    Component {
        index: usize,
        caller: Caller,
        /// For a component started afresh: what to hand it at its first RECV.
        pending: Option<Delivery>,
    },
}

/// A component's saved state, touched only by the CPU holding its lock.
struct Saved {
    frame: GuestFrame,
    el1: El1Context,
    fresh: bool,
}

/// One component and its bookkeeping.
pub struct Component {
    /// What the manifest says about it.
    pub descriptor: ComponentDescriptor,
    vttbr: u64,
    lock: TicketMutex<()>,
    saved: UnsafeCell<Saved>,
    state: AtomicU64,
    faults: AtomicU64,
    last_esr: AtomicU64,
    starts: AtomicU64,
    restart_at: AtomicU64,
    notifications: AtomicU64,
    calls: AtomicU64,
}

// SAFETY: `saved` is only accessed by the CPU that holds `lock` (module contract); the rest
// are atomics or immutable after boot.
unsafe impl Sync for Component {}

/// All components, immutable after boot but for their interior state.
pub struct Registry {
    components: heapless::Vec<Component, MAX_COMPONENTS>,
}

static REGISTRY: Once<Registry> = Once::new();

/// A CPU's world stack and the vCPU state saved while components run on it.
struct PerCpu {
    stack: heapless::Vec<Level, MAX_DEPTH>,
    vcpu_frame: GuestFrame,
    vcpu_el1: El1Context,
    host: Option<TrapControls>,
    host_vttbr: u64,
    /// The vCPU level's pending trap: what it waits for while a component decides (kept
    /// beside its saved registers rather than in every stack level, which each switch copies).
    vcpu_pending: Option<PendingTrap>,
    /// A component's answer to the vCPU's trap (decoded at REPLY, so no message buffer is
    /// kept), with the trap, for the trap handler to carry out once the component is off the
    /// CPU (and unlocked: carrying it out may power the CPU down).
    vcpu_reply: Option<(PendingTrap, VcpuAnswer)>,
}

struct PerCpuCell(UnsafeCell<PerCpu>);

// SAFETY: each CPU only touches its own entry (indexed by its own CPU index).
unsafe impl Sync for PerCpuCell {}

static PER_CPU: [PerCpuCell; MAX_CPUS] = [const {
    PerCpuCell(UnsafeCell::new(PerCpu {
        stack: heapless::Vec::new(),
        vcpu_frame: GuestFrame::ZERO,
        vcpu_el1: El1Context::ZERO,
        host: None,
        host_vttbr: 0,
        vcpu_pending: None,
        vcpu_reply: None,
    }))
}; MAX_CPUS];

fn this_cpu() -> &'static mut PerCpu {
    // SAFETY: the entry of the running CPU is only ever used by that CPU, and the kernel never
    // holds two of these references at once (each entry point takes it once).
    unsafe { &mut *PER_CPU[arch::cpu_index()].0.get() }
}

fn registry() -> &'static Registry {
    REGISTRY.get().expect("components are set up at boot")
}

/// Records how this CPU runs the host (called once per CPU before it enters the host).
pub fn set_host_world(controls: TrapControls, host_vttbr: u64) {
    let cpu = this_cpu();
    cpu.host = Some(controls);
    cpu.host_vttbr = host_vttbr;
    cpu.stack.clear();
    let _ = cpu.stack.push(Level::Vcpu);
}

/// Loads every component from the boot table: copies its image from the store into its
/// region and builds its stage 2. Runs on the boot CPU before the host starts.
pub fn set_up(table: &BootTable) {
    REGISTRY.call_once(|| {
        let mut components = heapless::Vec::new();
        for (index, descriptor) in table.components().enumerate() {
            let root = arch::mmu::build_component_map(descriptor.region);
            let vmid = FIRST_COMPONENT_VMID + index as u64;
            let component = Component {
                descriptor: *descriptor,
                vttbr: root | (vmid << 48),
                lock: TicketMutex::new(()),
                saved: UnsafeCell::new(Saved {
                    frame: GuestFrame::ZERO,
                    el1: El1Context::ZERO,
                    fresh: true,
                }),
                state: AtomicU64::new(ComponentState::Idle as u64),
                faults: AtomicU64::new(0),
                last_esr: AtomicU64::new(0),
                starts: AtomicU64::new(0),
                restart_at: AtomicU64::new(0),
                notifications: AtomicU64::new(0),
                calls: AtomicU64::new(0),
            };
            load_image(index, &component);
            defmt::info!(
                "component {=usize} {=str}: {=u64:#x}..{=u64:#x}, serves interface {=u16}",
                index,
                descriptor.name(),
                descriptor.region.start,
                descriptor.region.end,
                descriptor.serves
            );
            if components.push(component).is_err() {
                break;
            }
        }
        Registry { components }
    });
}

/// Copies a component's pristine image into its region, zeroes the rest and resets its saved
/// state to a fresh start. The caller holds the component's lock (or runs before SMP).
fn load_image(index: usize, component: &Component) {
    let descriptor = &component.descriptor;
    let PhysRange { start, end } = descriptor.region;
    let image_len = descriptor.image_store.len();
    // SAFETY: validate_components checked that region and store are disjoint parts of the
    // hypervisor's region, mapped at EL2 and in no other world's stage 2 but this one's, which
    // is not running (caller's contract).
    unsafe {
        core::ptr::copy_nonoverlapping(
            descriptor.image_store.start as *const u8,
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
    let starts = component.starts.fetch_add(1, Ordering::Relaxed);
    let mut frame = GuestFrame::ZERO;
    frame.elr = descriptor.entry;
    frame.spsr = controls::spsr_el1h_masked();
    frame.x[..4].copy_from_slice(&[index as u64, start, end - start, starts]);
    // SAFETY: caller's contract: the lock is held or no other CPU runs yet.
    let saved = unsafe { &mut *component.saved.get() };
    *saved = Saved {
        frame,
        el1: El1Context::component_reset(),
        fresh: true,
    };
}

/// The component SMCCC function `function` from a guest goes to: the one whose ranges name
/// it, else the one with the general SMCCC route, if the manifest has one.
pub fn smccc_route(function: u32) -> Option<usize> {
    let components = &registry().components;
    components
        .iter()
        .position(|component| component.descriptor.takes_function(function))
        .or_else(|| {
            components
                .iter()
                .position(|component| component.descriptor.routes & hv_abi::ROUTE_SMCCC != 0)
        })
}

/// The component that builds the host's stage 2 and takes its faults, if any.
pub fn host_stage2_route() -> Option<usize> {
    registry()
        .components
        .iter()
        .position(|component| component.descriptor.routes & hv_abi::ROUTE_HOST_STAGE2 != 0)
}

/// The component that emulates the devices the manifest makes emulated, if any.
pub fn mmio_route() -> Option<usize> {
    registry()
        .components
        .iter()
        .position(|component| component.descriptor.routes & hv_abi::ROUTE_MMIO != 0)
}

fn server_of(interface: u16) -> Option<usize> {
    registry()
        .components
        .iter()
        .position(|component| component.descriptor.serves == interface)
}

fn supervisor() -> Option<usize> {
    server_of(abi::interface::SUPERVISOR)
}

/// The component running on this CPU, if a component (not a vCPU) trapped.
pub fn current() -> Option<usize> {
    match this_cpu().stack.last() {
        Some(Level::Component { index, .. }) => Some(*index),
        _ => None,
    }
}

/// Component `index`'s name, for logs ("?" if there is none).
pub fn name(index: usize) -> &'static str {
    registry()
        .components
        .get(index)
        .map_or("?", |component| component.descriptor.name())
}

/// Takes a component's lock (waiting in FIFO order behind other CPUs) and makes sure it can
/// run: a stopped component whose restart deadline has passed is restarted here.
fn acquire(index: usize) -> Result<&'static Component, SyscallError> {
    let component = registry()
        .components
        .get(index)
        .ok_or(SyscallError::NoSuchTarget)?;
    core::mem::forget(component.lock.lock());
    if component.state.load(Ordering::Relaxed) == ComponentState::Retired as u64 {
        release(component);
        return Err(SyscallError::CalleeRetired);
    }
    if component.state.load(Ordering::Relaxed) == ComponentState::Faulted as u64 {
        let deadline = component.restart_at.load(Ordering::Relaxed);
        if deadline == 0 || arch::counter().0 < deadline {
            release(component);
            return Err(SyscallError::CalleeStopped);
        }
        restart_locked(index, component);
    }
    Ok(component)
}

fn release(component: &Component) {
    // SAFETY: the lock was taken (and its guard forgotten) by this CPU in `acquire`.
    unsafe { component.lock.force_unlock() };
}

/// Writes `bytes` into component `index`'s RX buffer. The caller holds its lock.
fn write_rx(component: &Component, bytes: &[u8]) {
    // SAFETY: the RX buffer lies inside the component's region (validated at boot), which is
    // mapped at EL2; the component is not running (we hold its lock and it is not on a CPU).
    unsafe {
        core::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            component.descriptor.ipc_rx as *mut u8,
            bytes.len().min(abi::MESSAGE_MAX),
        );
    }
}

/// Reads `len` bytes of component `index`'s TX buffer into `out`.
fn read_tx<'a>(component: &Component, len: usize, out: &'a mut [u8; abi::MESSAGE_MAX]) -> &'a [u8] {
    let len = len.min(abi::MESSAGE_MAX);
    // SAFETY: the TX buffer lies inside the component's region, mapped at EL2; the component is
    // stopped in the kernel while we read it.
    unsafe {
        core::ptr::copy_nonoverlapping(
            component.descriptor.ipc_tx as *const u8,
            out.as_mut_ptr(),
            len,
        );
    }
    &out[..len]
}

/// Saves the running world (top of this CPU's stack) from `frame` and the EL1 registers.
fn save_top(cpu: &mut PerCpu, frame: &GuestFrame) {
    match cpu.stack.last() {
        Some(Level::Component { index, .. }) => {
            let component = &registry().components[*index];
            // SAFETY: the component is on this CPU's stack, so this CPU holds its lock.
            let saved = unsafe { &mut *component.saved.get() };
            saved.frame = frame.clone();
            saved.el1 = El1Context::save();
        }
        _ => {
            cpu.vcpu_frame = frame.clone();
            cpu.vcpu_el1 = El1Context::save();
        }
    }
}

/// Loads the world on top of this CPU's stack into `frame` and the CPU.
fn load_top(cpu: &mut PerCpu, frame: &mut GuestFrame) {
    let host = cpu.host.expect("host controls set before any world runs");
    match cpu.stack.last().copied() {
        Some(Level::Component { index, .. }) => {
            let component = &registry().components[index];
            // SAFETY: on this CPU's stack, so locked by this CPU.
            let saved = unsafe { &mut *component.saved.get() };
            *frame = saved.frame.clone();
            saved.el1.load();
            arch::el1::enter_world(World::Component, component.vttbr, host);
        }
        _ => {
            *frame = cpu.vcpu_frame.clone();
            cpu.vcpu_el1.load();
            arch::el1::enter_world(World::Host, cpu.host_vttbr, host);
        }
    }
}

/// Switches this CPU from the running world (its live registers in `frame`, already saved if
/// `save` is false) into component `index`, locked by the caller, handing it `delivery`.
fn switch_to(frame: &mut GuestFrame, index: usize, caller: Caller, delivery: Delivery, save: bool) {
    let cpu = this_cpu();
    if save {
        save_top(cpu, frame);
    }
    let component = &registry().components[index];
    // SAFETY: locked by this CPU (caller's contract).
    let saved = unsafe { &mut *component.saved.get() };
    let pending = if saved.fresh {
        saved.fresh = false;
        Some(delivery)
    } else {
        saved.frame.x[..4].copy_from_slice(&delivery.registers());
        None
    };
    component
        .state
        .store(ComponentState::Running as u64, Ordering::Relaxed);
    if matches!(delivery, Delivery::Call { .. }) {
        component.calls.fetch_add(1, Ordering::Relaxed);
    }
    let pushed = cpu.stack.push(Level::Component {
        index,
        caller,
        pending,
    });
    debug_assert!(
        pushed.is_ok(),
        "the call graph is acyclic, so the depth is bounded"
    );
    load_top(cpu, frame);
}

/// Calls the component `index` on behalf of the vCPU trapped in `frame` on `pending` with
/// `request` (the encoded trap). Returns `Err` if the component is stopped.
pub fn call_from_vcpu(
    frame: &mut GuestFrame,
    index: usize,
    interface: u16,
    request: &[u8],
    pending: PendingTrap,
) -> Result<(), SyscallError> {
    let component = acquire(index)?;
    write_rx(component, request);
    let delivery = Delivery::Call {
        sender: abi::SENDER_KERNEL,
        interface,
        len: request.len(),
    };
    this_cpu().vcpu_pending = Some(pending);
    switch_to(frame, index, Caller::Vcpu, delivery, true);
    Ok(())
}

/// A component's answer to a vCPU trap: the resolution, or why there is none.
pub type VcpuAnswer = Result<TrapResolution, Refusal>;

/// The answer a component gave to this CPU's vCPU trap, with that trap, once the vCPU is back
/// on top.
pub fn take_vcpu_reply() -> Option<(PendingTrap, VcpuAnswer)> {
    let cpu = this_cpu();
    if matches!(cpu.stack.last(), Some(Level::Vcpu)) {
        cpu.vcpu_reply.take()
    } else {
        None
    }
}

/// Saves the component `index` (top of stack) as idle in RECV, pops it and resumes the world
/// below.
fn go_idle(frame: &mut GuestFrame, index: usize) {
    let cpu = this_cpu();
    save_top(cpu, frame);
    cpu.stack.pop();
    let component = &registry().components[index];
    component
        .state
        .store(ComponentState::Idle as u64, Ordering::Relaxed);
    release(component);
    load_top(cpu, frame);
}

fn restart_locked(index: usize, component: &Component) {
    load_image(index, component);
    component.restart_at.store(0, Ordering::Relaxed);
    component
        .state
        .store(ComponentState::Idle as u64, Ordering::Relaxed);
    defmt::info!(
        "component {=str} restarted (restart {=u64})",
        component.descriptor.name(),
        component.starts.load(Ordering::Relaxed) - 1
    );
}

/// Stops the component `index` (top of this CPU's stack) after a fault, answers its caller,
/// and runs the supervisor with a notification.
pub fn fault(frame: &mut GuestFrame, index: usize, esr: u64) {
    let cpu = this_cpu();
    let component = &registry().components[index];
    let Some(Level::Component { caller, .. }) = cpu.stack.pop() else {
        return;
    };
    component.faults.fetch_add(1, Ordering::Relaxed);
    component.last_esr.store(esr, Ordering::Relaxed);
    component
        .state
        .store(ComponentState::Faulted as u64, Ordering::Relaxed);
    defmt::warn!(
        "component {=str} stopped after fault {=u64} (ESR {=u64:#x}, pc {=u64:#x})",
        component.descriptor.name(),
        component.faults.load(Ordering::Relaxed),
        esr,
        frame.elr
    );
    let supervisor_index = supervisor();
    if supervisor_index.is_none_or(|supervisor| supervisor == index) {
        // Nobody else can restart the supervisor (or anything, without one): the kernel
        // does, at once.
        restart_locked(index, component);
    }
    release(component);

    match caller {
        // The trap is delivered again: the vCPU makes it anew once the component is back.
        Caller::Vcpu => {
            if let Some(pending) = cpu.vcpu_pending.take() {
                cpu.vcpu_frame.elr = pending.retry_pc;
            }
        }
        Caller::Component(caller_index) => {
            // SAFETY: the caller is on this CPU's stack, so this CPU holds its lock.
            let saved = unsafe { &mut *registry().components[caller_index].saved.get() };
            saved.frame.x[0] = SyscallError::CalleeFaulted as i64 as u64;
        }
        Caller::Kernel => {}
    }

    if let Some(supervisor) = supervisor_index.filter(|&s| s != index) {
        let target = &registry().components[supervisor];
        target
            .notifications
            .fetch_or(abi::NOTIFY_COMPONENT_FAULTED, Ordering::AcqRel);
        // Run it now if it is free; if it is busy on another CPU it sees the bit at its next
        // RECV. A supervisor below us on this CPU's stack cannot be re-entered either.
        if let Some(guard) = target.lock.try_lock() {
            core::mem::forget(guard);
            let bits = target.notifications.swap(0, Ordering::AcqRel);
            switch_to(
                frame,
                supervisor,
                Caller::Kernel,
                Delivery::Notification(bits),
                false,
            );
            return;
        }
    }
    load_top(cpu, frame);
}

/// Reports per component how many calls it served, faults it took and times it started (the
/// system tests and the benchmark read these lines).
pub fn report() {
    let Some(registry) = REGISTRY.get() else {
        return;
    };
    for component in &registry.components {
        defmt::info!(
            "component-stats name={=str} calls={=u64} faults={=u64} starts={=u64}",
            component.descriptor.name(),
            component.calls.load(Ordering::Relaxed),
            component.faults.load(Ordering::Relaxed),
            component.starts.load(Ordering::Relaxed)
        );
    }
}
