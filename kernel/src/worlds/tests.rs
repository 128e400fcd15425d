//! The world stack on a fake machine: calls and replies from a vCPU and between components,
//! faults at each step, restarts now, after a deadline and never, and two CPUs queueing on one
//! component. The test plays each component's part by setting its registers and making its
//! system call, as its code would. This file holds the fake machine and the helpers; the tests
//! are in the submodules, by topic.

use super::*;
use crate::pending::TrapKind;
use hv_abi::{ComponentDescriptor, PhysRange};
use hv_ipc::abi::{interface, kernel_op, syscall};
use hv_ipc::interfaces::guest_trap::{GuestTrapInterface, TrapResolution};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The fake EL1 state: one value standing for every register a component can change.
type El1 = u64;
const HOST_EL1: El1 = 0x4057;
const FRESH_COMPONENT_EL1: El1 = 0xc0;

#[derive(Default)]
struct Fake {
    /// The live EL1 state of this CPU.
    el1: El1,
    running: Option<WorldKind>,
    switches: usize,
    loads: Arc<Mutex<Vec<u64>>>,
    /// Where each load's image came from (the store, or a staged image), in order.
    sources: Vec<u64>,
    /// Images written into image stores: (store start, image start).
    stored: Vec<(u64, u64)>,
    events: Vec<Event>,
    now: u64,
    handover: Vec<u8>,
    /// This CPU's deadline for component runs, as last set.
    deadline: Option<u64>,
}

impl Fake {
    fn new() -> Self {
        Self {
            el1: HOST_EL1,
            ..Self::default()
        }
    }
}

impl Machine for Fake {
    type El1 = El1;
    fn component_el1() -> El1 {
        FRESH_COMPONENT_EL1
    }

    fn switch(&mut self, from: WorldKind, save: &mut El1, load: &El1, next: WorldKind) {
        assert_eq!(
            Some(from),
            self.running.or(Some(WorldKind::Vcpu)),
            "the world switched from runs"
        );
        *save = self.el1;
        self.el1 = *load;
        self.running = Some(next);
        self.switches += 1;
    }

    fn load_image(&mut self, descriptor: &ComponentDescriptor, image: PhysRange) {
        self.loads.lock().unwrap().push(descriptor.region.start);
        self.sources.push(image.start);
    }

    fn store_image(&mut self, descriptor: &ComponentDescriptor, image: PhysRange) {
        self.stored
            .push((descriptor.image_store.start, image.start));
    }

    /// The fake's build id: where the image is and how long.
    fn build_id(&mut self, image: PhysRange) -> u64 {
        image.start ^ image.len()
    }

    /// Ticks are milliseconds.
    fn ticks_per_second(&self) -> u64 {
        1000
    }

    fn handover(&mut self) -> &mut [u8] {
        if self.handover.is_empty() {
            self.handover = vec![0; hv_ipc::lifecycle::STATE_MAX];
        }
        &mut self.handover
    }

    fn message_buffer(&mut self, address: u64) -> &mut MessageBuffer {
        // SAFETY: every address the tests' descriptors give is a leaked, never-freed buffer.
        unsafe { &mut *(address as *mut MessageBuffer) }
    }

    fn copy_message(&mut self, from: u64, to: u64, len: usize) {
        let bytes = self.message_buffer(from)[..len].to_vec();
        self.message_buffer(to)[..len].copy_from_slice(&bytes);
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn report(&mut self, event: Event) {
        self.events.push(event);
    }

    fn set_deadline(&mut self, at: Option<u64>) {
        self.deadline = at;
    }
}

const VM_MANAGER: usize = 0;
const SUPERVISOR: usize = 1;
const MEM_PROTECT: usize = 2;
const VTTBR: [u64; 3] = [0x2_0000_0000_0000, 0x3_0000_0000_0000, 0x4_0000_0000_0000];

fn descriptor(index: usize, name: &str) -> ComponentDescriptor {
    let buffers: &'static mut [MessageBuffer; 2] = Box::leak(Box::new([[0; MESSAGE_MAX]; 2]));
    let start = 0x1000_0000 * (index as u64 + 1);
    ComponentDescriptor {
        name: ComponentDescriptor::name_field(name),
        region: PhysRange {
            start,
            end: start + 0x10_0000,
        },
        image_store: PhysRange {
            start: 0x8000_0000 + start,
            end: 0x8001_0000 + start,
        },
        entry: start + 0x800,
        ipc_rx: &raw mut buffers[0] as u64,
        ipc_tx: &raw mut buffers[1] as u64,
        serves: 0,
        may_call: 0,
        kernel_ops: 0,
        may_notify: 0,
        routes: 0,
        smccc_ranges: [(0, 0); hv_abi::MAX_SMCCC_RANGES],
    }
}

/// vm-manager (SMCCC, may call the supervisor), the supervisor (restarts), mem-protect (the
/// host's stage 2).
fn system(with_supervisor: bool) -> Registry<El1> {
    let mut vm_manager = descriptor(VM_MANAGER, "vm-manager");
    vm_manager.serves = interface::GUEST_TRAP;
    vm_manager.routes = hv_abi::ROUTE_SMCCC;
    // mmio-guard is granted but not in this system.
    vm_manager.may_call = (1 << interface::SUPERVISOR) | (1 << interface::MMIO_GUARD);
    vm_manager.may_notify = 1 << MEM_PROTECT;
    let mut supervisor = descriptor(SUPERVISOR, "supervisor");
    if with_supervisor {
        supervisor.serves = interface::SUPERVISOR;
        supervisor.kernel_ops = (1 << kernel_op::RESTART) | (1 << kernel_op::COMPONENT_STATE);
    }
    let mut mem_protect = descriptor(MEM_PROTECT, "mem-protect");
    mem_protect.routes = hv_abi::ROUTE_HOST_STAGE2;
    // Served, but not granted to the VM manager here: a call that the grants alone refuse.
    mem_protect.serves = interface::MEM_PROTECT;
    mem_protect.kernel_ops = 1 << kernel_op::ZERO_PAGES;
    let components = [vm_manager, supervisor, mem_protect].into_iter().zip(VTTBR);
    Registry::new(&mut Fake::new(), components)
}

fn smccc_pending() -> PendingTrap {
    PendingTrap {
        kind: TrapKind::Smccc,
        retry_pc: 0x4008_0000,
    }
}

/// The vCPU on `cpu`, trapped at 0x4008_0004 with `x0`.
fn trapped_vcpu(cpu: &mut Cpu<El1>, x0: u64) {
    let frame = cpu.vcpu_frame();
    frame.x[0] = x0;
    frame.elr = 0x4008_0004;
}

/// A guest-trap request (its bytes do not matter to the world stack).
fn request(buffer: &mut MessageBuffer, _: &GuestFrame) -> Option<usize> {
    buffer[..3].copy_from_slice(b"req");
    Some(3)
}

/// The vCPU on `cpu` makes an SMCCC trap that goes to component `index`.
fn trap(
    registry: &Registry<El1>,
    machine: &mut Fake,
    cpu: &mut Cpu<El1>,
    index: usize,
) -> Result<(), CallError> {
    trap_on(registry, machine, cpu, index, smccc_pending())
}

/// The vCPU on `cpu` makes trap `pending`, which goes to component `index`.
fn trap_on(
    registry: &Registry<El1>,
    machine: &mut Fake,
    cpu: &mut Cpu<El1>,
    index: usize,
    pending: PendingTrap,
) -> Result<(), CallError> {
    registry.call_from_vcpu(machine, cpu, index, interface::GUEST_TRAP, request, pending)
}

/// The component on top of `cpu` makes system call `x` (x0..x3).
fn hvc(registry: &Registry<El1>, machine: &mut Fake, cpu: &mut Cpu<El1>, x: [u64; 4]) -> Syscall {
    registry.frame_mut(cpu).x[..4].copy_from_slice(&x);
    registry.syscall(machine, cpu)
}

/// x0..x3 of the world on top of `cpu`.
fn registers(registry: &Registry<El1>, cpu: &mut Cpu<El1>) -> [u64; 4] {
    registry.frame_mut(cpu).x[..4].try_into().unwrap()
}

fn error(error: SyscallError) -> u64 {
    error as i64 as u64
}

/// The component on top of `cpu` encodes `resolution` into TX and replies with it.
fn reply_resolution(
    registry: &Registry<El1>,
    machine: &mut Fake,
    cpu: &mut Cpu<El1>,
    resolution: TrapResolution,
) {
    let index = cpu.current().unwrap();
    let tx = machine.message_buffer(registry.components()[index].descriptor.ipc_tx);
    let len = hv_ipc::encode_reply::<GuestTrapInterface>(&Ok(resolution), tx).unwrap();
    assert_eq!(
        hvc(registry, machine, cpu, [syscall::REPLY, len as u64, 0, 0]),
        Syscall::Done
    );
}

const NOT_SUPPORTED: TrapResolution = TrapResolution::results([u64::MAX, 0, 0, 0]);

/// A system on one CPU, the test playing the components' parts on it.
struct World {
    registry: Registry<El1>,
    machine: Fake,
    cpu: Cpu<El1>,
}

impl World {
    fn new(with_supervisor: bool) -> Self {
        Self {
            registry: system(with_supervisor),
            machine: Fake::new(),
            cpu: Cpu::new(0),
        }
    }

    /// Whether the vCPU's SMCCC call was answered NOT_SUPPORTED (in its registers, nothing
    /// left pending).
    fn returned_not_supported(&mut self) -> bool {
        self.cpu.pending.is_none()
            && self.cpu.answer.is_none()
            && self.cpu.vcpu_frame().x[..4] == [u64::MAX, 0, 0, 0]
    }

    /// The vCPU makes an SMCCC trap that goes to component `index`.
    fn trap(&mut self, index: usize) -> Result<(), CallError> {
        trap(&self.registry, &mut self.machine, &mut self.cpu, index)
    }

    /// The vCPU makes trap `pending`, which goes to component `index`.
    fn trap_on(&mut self, index: usize, pending: PendingTrap) -> Result<(), CallError> {
        trap_on(
            &self.registry,
            &mut self.machine,
            &mut self.cpu,
            index,
            pending,
        )
    }

    /// The component on top makes system call `x` (x0..x3).
    fn hvc(&mut self, x: [u64; 4]) -> Syscall {
        hvc(&self.registry, &mut self.machine, &mut self.cpu, x)
    }

    /// x0..x3 of the world on top.
    fn registers(&mut self) -> [u64; 4] {
        registers(&self.registry, &mut self.cpu)
    }

    /// The component on top encodes `resolution` into TX and replies with it.
    fn reply(&mut self, resolution: TrapResolution) {
        reply_resolution(&self.registry, &mut self.machine, &mut self.cpu, resolution);
    }

    /// The component on top faults with syndrome `esr`.
    fn fault(&mut self, esr: u64) {
        self.registry.fault(&mut self.machine, &mut self.cpu, esr);
    }
}

mod calls;
mod fast;
mod faults;
mod notify;
mod swap;
