//! The world stack: which world each CPU runs, and how calls, replies, faults, restarts and
//! deadlines move a CPU between its vCPU and the component tasks.
//!
//! # Model (docs/ipc.md has the reasons)
//! - **Thread migration.** A call runs the callee on the caller's CPU. Each CPU keeps a stack
//!   of the worlds it runs on behalf of (`vCPU → component → component …`); a call pushes the
//!   callee, a reply pops it and resumes the world below.
//! - **State in place.** Every world's registers live in its own [`GuestFrame`] (the vCPU's in
//!   its CPU's [`Cpu`], a component's in the [`Registry`]); the exception vectors save into and
//!   load from the frame of the world on top ([`Registry::top_frame`]). A switch copies no
//!   registers: it changes which frame is on top, and asks the [`Machine`] to switch the EL1
//!   state a component can change and the stage 2.
//! - **One CPU per component at a time.** A component is locked (FIFO ticket lock) while it is
//!   on some CPU's stack; a second caller waits its turn. The manifest's call graph is acyclic
//!   (the composer checks it), so waiting cannot deadlock.
//! - **Faults are contained.** A component that faults is stopped, its caller is answered (the
//!   vCPU's trap is re-delivered: it resumes at its retry point; a component's call returns
//!   [`SyscallError::CalleeFaulted`]), and the supervisor runs at once with a notification to
//!   decide the restart: now, after a deadline (the next call after it restarts the
//!   component), or never ([`ComponentState::Retired`]: calls fail with
//!   [`SyscallError::CalleeRetired`], and a vCPU trap routed there stops the VM).
//!
//! Hardware stays behind [`Machine`] (the kernel's `arch` implements it), so that all of this is
//! tested on the host, including two CPUs queueing on one component. The hottest transitions
//! also have a fast path (`worlds::fast`), tested against the general one.
//!
//! The steps of a call and a reply are `#[inline(always)]`: each is small and on the trap path,
//! where a function's prologue and epilogue (saving and restoring callee-saved registers) cost
//! more than its body (docs/ipc.md has the figures).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hv_abi::{ComponentDescriptor, MAX_COMPONENTS, MAX_SMCCC_RANGES, PhysRange};
use hv_ipc::abi::{self, ComponentState, MESSAGE_MAX, SyscallError};
use spin::mutex::TicketMutex;

use crate::frame::GuestFrame;
use crate::pending::{Decision, PendingTrap};

/// Most nested worlds on one CPU: the vCPU plus every component once.
pub const MAX_DEPTH: usize = MAX_COMPONENTS + 1;

/// A message buffer's bytes.
pub type MessageBuffer = [u8; MESSAGE_MAX];

pub use machine::{Event, Machine, WorldKind};

/// Who waits for a component's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The vCPU at the bottom of this CPU's stack, stopped on its pending trap.
    Vcpu,
    /// Another component.
    Component(usize),
    /// Nobody: the kernel delivered a notification.
    Kernel,
    /// The kernel, carrying out a hot-swap ([`swap`]): the answer moves the swap on.
    Swap,
}

/// What a component receives when it next waits in RECV (or REPLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A call: its request is in the component's RX buffer.
    Call {
        /// Sender id ([`abi::SENDER_KERNEL`] for a guest trap).
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
    /// x0..x3 as RECV returns them.
    pub fn registers(self) -> [u64; 4] {
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

/// One level of a CPU's world stack above the vCPU.
#[derive(Clone, Copy, Debug)]
struct Level {
    index: usize,
    caller: Caller,
    /// For a component started afresh: what to hand it at its first RECV (x0..x3, kept as
    /// registers: a word-aligned copy is a few instructions).
    delivery: Option<[u64; 4]>,
}

/// A world's saved state.
struct Saved<E> {
    frame: GuestFrame,
    el1: E,
}

/// One component and its bookkeeping.
pub struct Component<E> {
    /// What the manifest says about it.
    pub descriptor: ComponentDescriptor,
    vttbr: u64,
    lock: TicketMutex<()>,
    /// Touched only by the CPU holding `lock`.
    saved: UnsafeCell<Saved<E>>,
    /// Started afresh: its first RECV gets the delivery that started it. Under `lock`.
    fresh: UnsafeCell<bool>,
    state: AtomicU64,
    faults: AtomicU64,
    last_esr: AtomicU64,
    starts: AtomicU64,
    restart_at: AtomicU64,
    notifications: AtomicU64,
    calls: AtomicU64,
    /// The build id of the instance in its region.
    build: AtomicU64,
}

// SAFETY: `saved` and `fresh` are only accessed by the CPU that holds `lock` (module
// contract); the rest are atomics or immutable after boot.
unsafe impl<E: Send> Sync for Component<E> {}

impl<E> Component<E> {
    /// Its saved registers and EL1 state.
    ///
    /// # Safety
    /// The caller's CPU holds the component's lock, and makes no other reference to them.
    #[allow(clippy::mut_from_ref)]
    unsafe fn saved(&self) -> &mut Saved<E> {
        // SAFETY: caller's contract.
        unsafe { &mut *self.saved.get() }
    }

    fn set_state(&self, state: ComponentState) {
        self.state.store(state as u64, Ordering::Relaxed);
    }

    fn state(&self) -> u64 {
        self.state.load(Ordering::Relaxed)
    }
}

/// Per-component counts, for the end-of-run report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Calls it received.
    pub calls: u64,
    /// Faults it took.
    pub faults: u64,
    /// Times it started (1 + restarts).
    pub starts: u64,
}

/// A CPU's world stack and its vCPU's state.
pub struct Cpu<E> {
    /// Components above the vCPU, innermost last.
    stack: heapless::Vec<Level, { MAX_DEPTH - 1 }>,
    vcpu: Saved<E>,
    /// The vCPU's trap while a component decides on it, and until its answer is taken.
    pending: Option<PendingTrap>,
    /// What a component's answer to that trap leaves for the kernel to carry out (answers
    /// that only set the vCPU's registers are carried out by the REPLY itself).
    answer: Option<Decision>,
    /// The hot-swap this CPU carries out, once asked for.
    swap: Option<swap::SwapJob>,
}

impl<E: Copy> Cpu<E> {
    /// A CPU running its vCPU, whose EL1 state is `el1` (live in the CPU: the value only
    /// matters once a switch saves over it).
    pub const fn new(el1: E) -> Self {
        Self {
            stack: heapless::Vec::new(),
            vcpu: Saved {
                frame: GuestFrame::ZERO,
                el1,
            },
            pending: None,
            answer: None,
            swap: None,
        }
    }

    /// Puts the vCPU back on top with nothing pending (the CPU enters its VM afresh).
    pub fn reset(&mut self) {
        self.stack.clear();
        self.pending = None;
        self.answer = None;
    }

    /// The vCPU's registers.
    pub fn vcpu_frame(&mut self) -> &mut GuestFrame {
        &mut self.vcpu.frame
    }

    /// The component on top, if one (not the vCPU) runs.
    pub fn current(&self) -> Option<usize> {
        self.stack.last().map(|level| level.index)
    }

    /// How many components are on the stack.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// What the answer to the vCPU's trap leaves for the kernel to do, with the trap, if the
    /// vCPU is on top and has one.
    pub fn take_answer(&mut self) -> Option<(PendingTrap, Decision)> {
        if !self.stack.is_empty() {
            return None;
        }
        let answer = self.answer.take()?;
        Some((self.pending.take()?, answer))
    }
}

/// What a component's system call left for the kernel to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// Done (the registers of whatever world is now on top say the rest).
    Done,
    /// A call the kernel serves itself (LOG, PANIC, FAULT and kernel operations other than
    /// RESTART and COMPONENT_STATE): the number and x1..x3, from component `index`. Granted
    /// operations only: KERNEL_OP has been checked against the manifest.
    Kernel {
        /// The caller.
        index: usize,
        /// x0.
        number: u64,
        /// x1..x3.
        args: [u64; 3],
    },
}

/// The first 256 vendor-hypervisor SMC64 fast calls (SMCCC owner 6), where the KVM and pKVM
/// services' function IDs lie.
const VENDOR_HYP_BLOCK: u32 = 0xC600_0000;

/// All components, immutable after boot but for their interior state.
pub struct Registry<E> {
    components: heapless::Vec<Component<E>, MAX_COMPONENTS>,
    supervisor: Option<usize>,
    /// Every used SMCCC function-ID range, with its component, for the trap path's lookup.
    smccc_ranges: heapless::Vec<(u32, u32, usize), { MAX_COMPONENTS * MAX_SMCCC_RANGES }>,
    /// The holder of the general SMCCC route.
    smccc_default: Option<usize>,
    /// The route of each vendor-hypervisor SMC64 fast call (`VENDOR_HYP_BLOCK`, by its low
    /// byte), made at boot from the walk: the guest-facing services' calls, looked up instead of
    /// walked on every hypercall.
    vendor_hyp_routes: [Option<u8>; 256],
    /// The server of each interface id a grant can name (`may_call` is a 32-bit set).
    servers: [Option<usize>; 32],
    /// A swap is under way (on one CPU): another is refused, and that CPU alone uses the
    /// machine's hand-over buffer ([`Machine::handover`]).
    swapping: AtomicBool,
    /// How the last swap ended.
    last_swap: spin::Mutex<swap::SwapReport>,
}

impl<E: Copy + Send> Registry<E> {
    /// Sets up `components` (descriptor and VTTBR_EL2 each) and loads their images.
    pub fn new<M: Machine<El1 = E>>(
        machine: &mut M,
        components: impl IntoIterator<Item = (ComponentDescriptor, u64)>,
    ) -> Self {
        let mut registry = Self {
            components: heapless::Vec::new(),
            supervisor: None,
            smccc_ranges: heapless::Vec::new(),
            smccc_default: None,
            vendor_hyp_routes: [None; 256],
            servers: [None; 32],
            swapping: AtomicBool::new(false),
            last_swap: spin::Mutex::new(swap::SwapReport::NONE),
        };
        for (descriptor, vttbr) in components {
            let component = Component {
                descriptor,
                vttbr,
                lock: TicketMutex::new(()),
                saved: UnsafeCell::new(Saved {
                    frame: GuestFrame::ZERO,
                    el1: M::component_el1(),
                }),
                fresh: UnsafeCell::new(true),
                state: AtomicU64::new(ComponentState::Idle as u64),
                faults: AtomicU64::new(0),
                last_esr: AtomicU64::new(0),
                starts: AtomicU64::new(0),
                restart_at: AtomicU64::new(0),
                notifications: AtomicU64::new(0),
                calls: AtomicU64::new(0),
                build: AtomicU64::new(machine.build_id(descriptor.image_store)),
            };
            let index = registry.components.len();
            if registry.components.push(component).is_err() {
                break;
            }
            // SAFETY: no CPU runs components yet; the registry is not shared.
            unsafe { registry.load(machine, index) };
        }
        registry.supervisor = registry.server_of(abi::interface::SUPERVISOR);
        registry.smccc_default = registry.route(hv_abi::ROUTE_SMCCC);
        // Interface 0 is "serves none".
        for (interface, server) in registry.servers.iter_mut().enumerate().skip(1) {
            *server = registry
                .components
                .iter()
                .position(|component| usize::from(component.descriptor.serves) == interface);
        }
        for (index, component) in registry.components.iter().enumerate() {
            for &(first, last) in &component.descriptor.smccc_ranges {
                if (first, last) != (0, 0) {
                    // Sized for every slot of every component: cannot be full.
                    let _ = registry.smccc_ranges.push((first, last, index));
                }
            }
        }
        let mut vendor_hyp_routes = [None; 256];
        for (low, route) in (0u32..).zip(vendor_hyp_routes.iter_mut()) {
            // Component indices fit a byte (MAX_COMPONENTS).
            *route = registry
                .walk_smccc_routes(VENDOR_HYP_BLOCK | low)
                .map(|index| index as u8);
        }
        registry.vendor_hyp_routes = vendor_hyp_routes;
        registry
    }

    /// The components, in boot-table order (their ids).
    pub fn components(&self) -> &[Component<E>] {
        &self.components
    }

    /// Component `index`'s name, for logs ("?" if there is none).
    pub fn name(&self, index: usize) -> &str {
        self.components
            .get(index)
            .map_or("?", |component| component.descriptor.name())
    }

    /// Component `index`'s counts.
    pub fn stats(&self, index: usize) -> Option<Stats> {
        self.components.get(index).map(|component| Stats {
            calls: component.calls.load(Ordering::Relaxed),
            faults: component.faults.load(Ordering::Relaxed),
            starts: component.starts.load(Ordering::Relaxed),
        })
    }

    /// The component serving `interface`.
    pub fn server_of(&self, interface: u16) -> Option<usize> {
        self.components
            .iter()
            .position(|component| component.descriptor.serves == interface)
    }

    /// The first component whose route bits include `route` (`hv_abi::ROUTE_*`).
    pub fn route(&self, route: u32) -> Option<usize> {
        self.components
            .iter()
            .position(|component| component.descriptor.routes & route != 0)
    }

    /// The component SMCCC function `function` from a guest goes to: the one whose ranges name
    /// it, else the one with the general SMCCC route.
    #[inline(always)]
    pub fn smccc_route(&self, function: u32) -> Option<usize> {
        if function & !0xff == VENDOR_HYP_BLOCK {
            return self.vendor_hyp_routes[(function & 0xff) as usize].map(usize::from);
        }
        self.walk_smccc_routes(function)
    }

    /// [`Self::smccc_route`] by walking the ranges.
    fn walk_smccc_routes(&self, function: u32) -> Option<usize> {
        self.smccc_ranges
            .iter()
            .find(|&&(first, last, _)| (first..=last).contains(&function))
            .map(|&(_, _, index)| index)
            .or(self.smccc_default)
    }

    /// The frame the exception vectors resume and next save into on this CPU: its top world's.
    #[inline(always)]
    pub fn top_frame(&self, cpu: &mut Cpu<E>) -> *mut GuestFrame {
        match cpu.stack.last() {
            // SAFETY: on this CPU's stack, so locked by this CPU; only a pointer is made.
            Some(level) => unsafe { &raw mut (*self.components[level.index].saved.get()).frame },
            None => &raw mut cpu.vcpu.frame,
        }
    }

    /// The registers of the world on top of `cpu`: the one that trapped, or the one about to
    /// resume.
    #[inline(always)]
    pub fn frame_mut<'a>(&'a self, cpu: &'a mut Cpu<E>) -> &'a mut GuestFrame {
        // SAFETY: `top_frame` points at the top world's frame, locked by (or belonging to)
        // this CPU; the borrow of `cpu` keeps every other path to it closed meanwhile.
        unsafe { &mut *self.top_frame(cpu) }
    }

    /// The registers of the component on top of `cpu`'s stack (the frame is the component's,
    /// reached through `self` under the lock this CPU holds, not `cpu`'s).
    #[allow(clippy::mut_from_ref)]
    fn top_component_frame(&self, cpu: &Cpu<E>) -> Option<(usize, &mut GuestFrame)> {
        let index = cpu.stack.last()?.index;
        // SAFETY: on this CPU's stack, so this CPU holds its lock; the reference ends before
        // the next switch (callers use it at once).
        let saved = unsafe { self.components[index].saved() };
        Some((index, &mut saved.frame))
    }

    /// The world on top of `cpu`, and its EL1 state slot.
    #[inline(always)]
    fn top_el1(&self, cpu: &mut Cpu<E>) -> (WorldKind, *mut E) {
        match cpu.stack.last() {
            Some(level) => {
                let component = &self.components[level.index];
                let kind = WorldKind::Component {
                    vttbr: component.vttbr,
                };
                // SAFETY: as in `top_frame`.
                (kind, unsafe { &raw mut (*component.saved.get()).el1 })
            }
            None => (WorldKind::Vcpu, &raw mut cpu.vcpu.el1),
        }
    }

    /// Switches the CPU from `from` (the world that was on top, and its EL1 slot) to the one
    /// now on top.
    #[inline(always)]
    fn switch_to_top<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        (from, save): (WorldKind, *mut E),
    ) {
        let (load, next) = match cpu.stack.last() {
            Some(level) => {
                let component = &self.components[level.index];
                (
                    component.saved.get() as *const Saved<E>,
                    WorldKind::Component {
                        vttbr: component.vttbr,
                    },
                )
            }
            None => (&raw const cpu.vcpu, WorldKind::Vcpu),
        };
        // SAFETY: `from` and `load` are the EL1 slots of two different worlds on (or just off)
        // this CPU's stack: a component's is under the lock this CPU holds, the vCPU's is this
        // CPU's own; no other reference to either is alive.
        unsafe { machine.switch(from, &mut *save, &(*load).el1, next) };
    }

    /// Takes component `index`'s lock (waiting in FIFO order behind other CPUs) and makes sure
    /// it can run: a stopped component whose restart deadline has passed restarts here.
    #[inline(always)]
    fn acquire<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        index: usize,
    ) -> Result<&Component<E>, SyscallError> {
        let component = self
            .components
            .get(index)
            .ok_or(SyscallError::NoSuchTarget)?;
        core::mem::forget(component.lock.lock());
        let state = component.state();
        if state == ComponentState::Retired as u64 {
            release(component);
            return Err(SyscallError::CalleeRetired);
        }
        if state == ComponentState::Faulted as u64 {
            let deadline = component.restart_at.load(Ordering::Relaxed);
            if deadline == 0 || machine.now() < deadline {
                release(component);
                return Err(SyscallError::CalleeStopped);
            }
            // SAFETY: locked just above.
            unsafe { self.restart_locked(machine, index) };
        }
        Ok(component)
    }

    /// Loads component `index`'s image and resets its registers to a fresh start.
    ///
    /// # Safety
    /// This CPU holds the component's lock (or no CPU runs components yet), and it is on no
    /// CPU's stack.
    unsafe fn load<M: Machine<El1 = E>>(&self, machine: &mut M, index: usize) {
        let component = &self.components[index];
        let descriptor = &component.descriptor;
        machine.load_image(descriptor, descriptor.image_store);
        let starts = component.starts.fetch_add(1, Ordering::Relaxed);
        let region = descriptor.region;
        let args = [
            index as u64,
            region.start,
            region.end - region.start,
            starts,
        ];
        // SAFETY: caller's contract.
        unsafe {
            *component.saved() = Saved {
                frame: GuestFrame::entering(descriptor.entry, args),
                el1: M::component_el1(),
            };
            *component.fresh.get() = true;
        }
    }

    /// # Safety
    /// As for [`Self::load`].
    unsafe fn restart_locked<M: Machine<El1 = E>>(&self, machine: &mut M, index: usize) {
        // SAFETY: caller's contract.
        unsafe { self.load(machine, index) };
        let component = &self.components[index];
        component.restart_at.store(0, Ordering::Relaxed);
        component.set_state(ComponentState::Idle);
        let restarts = component.starts.load(Ordering::Relaxed) - 1;
        machine.report(Event::Restarted { index, restarts });
    }

    /// Pushes component `index` (locked by this CPU) onto `cpu`'s stack for `caller` with
    /// `delivery`, and switches to it.
    #[inline(always)]
    fn enter<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        caller: Caller,
        delivery: Delivery,
    ) {
        let component = &self.components[index];
        // SAFETY: locked by this CPU (caller's contract); not yet on a stack, so no other
        // reference exists.
        let (saved, fresh) = unsafe { (component.saved(), &mut *component.fresh.get()) };
        if matches!(delivery, Delivery::Call { .. }) {
            // Under the component's lock: one writer, a load and a store.
            let calls = component.calls.load(Ordering::Relaxed);
            component.calls.store(calls + 1, Ordering::Relaxed);
        }
        let first_delivery = if core::mem::take(fresh) {
            Some(delivery.registers())
        } else {
            saved.frame.x[..4].copy_from_slice(&delivery.registers());
            saved.frame.x[4] = pending_notifications(component, &delivery.registers());
            None
        };
        component.set_state(ComponentState::Running);
        let from = self.top_el1(cpu);
        let pushed = cpu.stack.push(Level {
            index,
            caller,
            delivery: first_delivery,
        });
        debug_assert!(pushed.is_ok(), "an acyclic call graph bounds the depth");
        self.switch_to_top(machine, cpu, from);
    }

    /// Pops the component on top as idle, unlocks it and resumes the world below.
    #[inline(always)]
    fn leave<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>) {
        let from = self.top_el1(cpu);
        let Some(level) = cpu.stack.pop() else { return };
        self.switch_to_top(machine, cpu, from);
        let component = &self.components[level.index];
        component.set_state(ComponentState::Idle);
        release(component);
        if cpu.swap.is_some() && cpu.stack.is_empty() {
            self.start_swap(machine, cpu);
        }
    }

    /// Sends the vCPU's trap `pending` to component `index` as a call on `interface`, whose
    /// request `encode` writes into the component's RX buffer from the vCPU's registers
    /// (returning its length, or `None` if it does not fit). On success the component is on top
    /// of `cpu`. Its REPLY carries out an answer that only sets the vCPU's registers; anything
    /// else comes back through [`Cpu::take_answer`].
    ///
    /// # Errors
    /// [`CallError::Stopped`] for a component stopped and not yet restarted (the caller puts
    /// the vCPU on its retry point, so the trap comes again), [`CallError::Retired`] for one
    /// stopped for good, [`CallError::Unencodable`].
    #[inline(always)]
    pub fn call_from_vcpu<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        interface: u16,
        encode: impl FnOnce(&mut MessageBuffer, &GuestFrame) -> Option<usize>,
        pending: PendingTrap,
    ) -> Result<(), CallError> {
        debug_assert!(
            cpu.stack.is_empty(),
            "only the vCPU traps to the kernel this way"
        );
        let component = self.acquire(machine, index).map_err(|error| match error {
            SyscallError::CalleeRetired => CallError::Retired,
            _ => CallError::Stopped,
        })?;
        let rx = machine.message_buffer(component.descriptor.ipc_rx);
        let Some(len) = encode(rx, &cpu.vcpu.frame) else {
            release(component);
            return Err(CallError::Unencodable);
        };
        cpu.pending = Some(pending);
        let delivery = Delivery::Call {
            sender: abi::SENDER_KERNEL,
            interface,
            len: len.min(MESSAGE_MAX),
        };
        self.enter(machine, cpu, index, Caller::Vcpu, delivery);
        Ok(())
    }

    /// Stops the component on top of `cpu` after a fault with syndrome `esr` (0 for a panic
    /// or a broken protocol), answers its caller, and runs the supervisor with a notification
    /// (or, without another supervisor, restarts the component at once).
    pub fn fault<M: Machine<El1 = E>>(&self, machine: &mut M, cpu: &mut Cpu<E>, esr: u64) {
        if swap::is_swap_level(cpu.stack.last()) {
            return self.swap_fault(machine, cpu, esr);
        }
        let from = self.top_el1(cpu);
        let Some(Level { index, caller, .. }) = cpu.stack.pop() else {
            return;
        };
        self.switch_to_top(machine, cpu, from);
        let component = &self.components[index];
        self.record_fault(machine, index, esr);
        let supervisor = self.supervisor;
        if supervisor.is_none_or(|supervisor| supervisor == index) {
            // Nobody else can restart the supervisor (or anything, without one): the kernel
            // does, at once.
            // SAFETY: locked by this CPU and off its stack.
            unsafe { self.restart_locked(machine, index) };
        }
        release(component);

        match caller {
            // The trap is delivered again: the vCPU makes it anew once the component is back.
            Caller::Vcpu => {
                if let Some(pending) = cpu.pending.take() {
                    cpu.vcpu.frame.elr = pending.retry_pc;
                }
            }
            Caller::Component(caller_index) => {
                // SAFETY: the caller is on this CPU's stack (now on top), so locked by it.
                let frame = unsafe { &mut self.components[caller_index].saved().frame };
                frame.x[0] = SyscallError::CalleeFaulted as i64 as u64;
            }
            Caller::Kernel | Caller::Swap => {}
        }

        if let Some(supervisor) = supervisor.filter(|&supervisor| supervisor != index) {
            self.notify_from_kernel(machine, cpu, supervisor, abi::NOTIFY_COMPONENT_FAULTED);
        }
    }

    /// Stops component `index` (locked by this CPU, just off its stack) after a fault with
    /// syndrome `esr`: counts it, keeps its syndrome and reports it with where it happened.
    fn record_fault<M: Machine<El1 = E>>(&self, machine: &mut M, index: usize, esr: u64) {
        let component = &self.components[index];
        let faults = component.faults.fetch_add(1, Ordering::Relaxed) + 1;
        component.last_esr.store(esr, Ordering::Relaxed);
        component.set_state(ComponentState::Faulted);
        // SAFETY: locked by this CPU (caller's contract); its frame is not in use.
        let pc = unsafe { component.saved().frame.elr };
        machine.report(Event::Faulted {
            index,
            faults,
            esr,
            pc,
        });
    }

    /// Sets notification `bits` on component `index` for the kernel and runs it now on `cpu`
    /// if it is free and idle; if it is busy (on another CPU, or below on this CPU's stack),
    /// it sees the bits at its next RECV. A stopped component sees them when it runs again.
    pub fn notify_from_kernel<M: Machine<El1 = E>>(
        &self,
        machine: &mut M,
        cpu: &mut Cpu<E>,
        index: usize,
        bits: u64,
    ) {
        let Some(target) = self.components.get(index) else {
            return;
        };
        target.notifications.fetch_or(bits, Ordering::AcqRel);
        let Some(guard) = target.lock.try_lock() else {
            return;
        };
        core::mem::forget(guard);
        if target.state() != ComponentState::Idle as u64 {
            release(target);
            return;
        }
        let bits = target.notifications.swap(0, Ordering::AcqRel);
        self.enter(
            machine,
            cpu,
            index,
            Caller::Kernel,
            Delivery::Notification(bits),
        );
    }
}

/// Why [`Registry::call_from_vcpu`] did not deliver the trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The component is stopped and not yet restarted.
    Stopped,
    /// The component is stopped for good: nothing will answer.
    Retired,
    /// The request does not fit a message.
    Unencodable,
}

/// x4 of a delivery: with a call, the component's pending notification bits (taken), so that
/// it sees a notification sent before the call no later than the call itself; with a
/// notification, 0 (the bits are its x2).
fn pending_notifications<E>(component: &Component<E>, registers: &[u64; 4]) -> u64 {
    if registers[0] == abi::RECV_CALL {
        component.notifications.swap(0, Ordering::AcqRel)
    } else {
        0
    }
}

fn release<E>(component: &Component<E>) {
    // SAFETY: the lock was taken (and its guard forgotten) by this CPU.
    unsafe { component.lock.force_unlock() };
}

/// Writes a system call's result: x0 = 0 and x1..x3 = the values, or x0 = the error.
pub fn set_result(frame: &mut GuestFrame, result: Result<[u64; 3], SyscallError>) {
    match result {
        Ok(values) => {
            frame.x[0] = 0;
            frame.x[1..4].copy_from_slice(&values);
        }
        Err(error) => frame.x[0] = error as i64 as u64,
    }
}

mod fast;
mod machine;
mod swap;
mod syscalls;

pub use swap::SwapReport;

#[cfg(test)]
mod tests;
