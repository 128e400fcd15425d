//! The world stack on a fake machine: calls and replies from a vCPU and between components,
//! faults at each step, restarts now, after a deadline and never, and two CPUs queueing on one
//! component. The test plays each component's part by setting its registers and making its
//! system call, as its code would.

use super::*;
use crate::pending::Refusal;
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

#[test]
fn a_vcpu_trap_runs_the_component_and_its_answer_waits_for_the_vcpu() {
    let mut w = World::new(true);
    trapped_vcpu(&mut w.cpu, 0xc600_00ff);
    let vcpu_frame = w.registry.top_frame(&mut w.cpu);

    w.trap(VM_MANAGER).unwrap();
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    assert_eq!(
        w.machine.running,
        Some(WorldKind::Component {
            vttbr: VTTBR[VM_MANAGER]
        })
    );
    assert_eq!(w.machine.el1, FRESH_COMPONENT_EL1);
    assert_ne!(
        w.registry.top_frame(&mut w.cpu),
        vcpu_frame,
        "the component's own frame is on top"
    );
    // Started afresh: its entry arguments, then the call at its first RECV.
    let region = w.registry.components()[VM_MANAGER].descriptor.region;
    assert_eq!(
        w.registers(),
        [VM_MANAGER as u64, region.start, 0x10_0000, 0]
    );
    assert_eq!(
        w.cpu.take_answer(),
        None,
        "no answer while the component runs"
    );
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(
        w.registers(),
        [
            abi::RECV_CALL,
            abi::SENDER_KERNEL,
            interface::GUEST_TRAP as u64,
            3
        ]
    );
    let rx = w
        .machine
        .message_buffer(w.registry.components()[VM_MANAGER].descriptor.ipc_rx);
    assert_eq!(&rx[..3], b"req");

    w.machine.el1 = 0xbad; // the component changes its EL1 state
    w.reply(NOT_SUPPORTED);
    assert_eq!(w.cpu.current(), None);
    assert_eq!(w.registry.top_frame(&mut w.cpu), vcpu_frame);
    assert_eq!(w.machine.running, Some(WorldKind::Vcpu));
    assert_eq!(w.machine.el1, HOST_EL1, "the vCPU's EL1 state is back");
    // An SMCCC call's results (the hot answer) are the vCPU's x0..x3 at once.
    assert_eq!(w.cpu.take_answer(), None);
    assert_eq!(w.cpu.pending, None, "the trap is answered");
    assert_eq!(w.cpu.vcpu_frame().x[..4], [u64::MAX, 0, 0, 0]);
    assert_eq!(
        w.cpu.vcpu_frame().elr,
        0x4008_0004,
        "the HVC's return address"
    );
    assert_eq!(w.registry.stats(VM_MANAGER).unwrap().calls, 1);

    // A second call reaches the idle component's REPLY with the delivery in its registers,
    // and the component gets its own EL1 state back.
    w.trap(VM_MANAGER).unwrap();
    assert_eq!(w.machine.el1, 0xbad);
    assert_eq!(
        w.registers(),
        [
            abi::RECV_CALL,
            abi::SENDER_KERNEL,
            interface::GUEST_TRAP as u64,
            3
        ]
    );
}

#[test]
fn an_undecodable_or_refused_answer_is_kept_as_such_and_the_vcpu_is_untouched() {
    let mut w = World::new(true);
    // Started afresh, the component's first RECV gets the call; later calls come back from
    // its REPLY.
    let mut first = true;
    for (bytes, expected) in [
        (&[0xff, 0xff][..], Refusal::Undecodable),
        (&[][..], Refusal::Undecodable),
        (
            &{
                let mut out = [0; 8];
                let len = hv_ipc::refuse(hv_ipc::RemoteError::Busy, &mut out);
                out[..len].to_vec()
            }[..],
            Refusal::Remote(hv_ipc::RemoteError::Busy),
        ),
    ] {
        trapped_vcpu(&mut w.cpu, 0xc600_00ff);
        let before = w.cpu.vcpu_frame().clone();
        w.trap(VM_MANAGER).unwrap();
        if first {
            w.hvc([syscall::RECV, 0, 0, 0]);
        }
        first = false;
        let tx = w
            .machine
            .message_buffer(w.registry.components()[VM_MANAGER].descriptor.ipc_tx);
        tx[..bytes.len()].copy_from_slice(bytes);
        w.hvc([syscall::REPLY, bytes.len() as u64, 0, 0]);
        assert_eq!(
            w.cpu.take_answer(),
            Some((smccc_pending(), Decision::Refuse(expected)))
        );
        assert_eq!(*w.cpu.vcpu_frame(), before);
    }
}

#[test]
fn answers_that_only_set_registers_are_done_by_the_reply_and_the_rest_wait() {
    let mut w = World::new(true);
    let stage2_fault = PendingTrap {
        kind: TrapKind::Stage2Fault {
            esr: 0x9200_0046,
            far: 0x1000,
        },
        retry_pc: 0x4008_0000,
    };
    let results = TrapResolution::results([7, 8, 9, 10]);
    let mismatch = Decision::Refuse(Refusal::Mismatch {
        trap: "stage-2 fault",
        resolution: "Return",
    });
    // What waits for the kernel, checked against its trap by `pending::decide`: the vCPU's
    // registers are untouched.
    let mut first = true;
    for (pending, answer, decision) in [
        (
            smccc_pending(),
            TrapResolution::InjectUndefined,
            Decision::InjectUndefined,
        ),
        (stage2_fault, results.clone(), mismatch),
        (
            stage2_fault,
            TrapResolution::InjectHostAbort,
            Decision::InjectHostAbort {
                esr: 0x9200_0046,
                far: 0x1000,
            },
        ),
    ] {
        trapped_vcpu(&mut w.cpu, 0xc600_00ff);
        let before = w.cpu.vcpu_frame().clone();
        w.trap_on(VM_MANAGER, pending).unwrap();
        if core::mem::take(&mut first) {
            // Started afresh: the call comes at its first RECV (later ones with its REPLY).
            w.hvc([syscall::RECV, 0, 0, 0]);
        }
        w.reply(answer.clone());
        assert_eq!(*w.cpu.vcpu_frame(), before, "{answer:?} for {pending:?}");
        assert_eq!(w.cpu.take_answer(), Some((pending, decision)));
    }
    // What only sets registers is done as the REPLY returns to the vCPU.
    for (pending, answer, x0, elr) in [
        (smccc_pending(), results, 7, 0x4008_0004),
        (
            smccc_pending(),
            TrapResolution::Retry,
            0xc600_00ff,
            0x4008_0000,
        ),
        (
            stage2_fault,
            TrapResolution::Resume,
            0xc600_00ff,
            0x4008_0004,
        ),
    ] {
        trapped_vcpu(&mut w.cpu, 0xc600_00ff);
        w.trap_on(VM_MANAGER, pending).unwrap();
        w.reply(answer.clone());
        assert_eq!(w.cpu.take_answer(), None, "{answer:?}");
        assert_eq!(w.cpu.pending, None);
        assert_eq!(
            (w.cpu.vcpu_frame().x[0], w.cpu.vcpu_frame().elr),
            (x0, elr),
            "{answer:?}"
        );
    }
}

#[test]
fn a_reply_that_cannot_be_given_is_refused_and_the_server_stays() {
    let mut w = World::new(true);
    trapped_vcpu(&mut w.cpu, 0xc600_00ff);
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.hvc([syscall::REPLY, MESSAGE_MAX as u64 + 1, 0, 0]);
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    assert_eq!(w.registers()[0], error(SyscallError::MessageTooLong));
    assert_eq!(w.cpu.take_answer(), None);
}

#[test]
fn nested_calls_carry_requests_and_replies_between_components() {
    let mut w = World::new(true);
    trapped_vcpu(&mut w.cpu, 0xc600_0001);
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    let vm_manager = w.registry.components()[VM_MANAGER].descriptor;
    let supervisor = w.registry.components()[SUPERVISOR].descriptor;
    w.machine.el1 = 0x111; // vm-manager's own EL1 state

    w.machine.message_buffer(vm_manager.ipc_tx)[..4].copy_from_slice(b"ping");
    w.hvc([syscall::CALL, interface::SUPERVISOR as u64, 4, 0]);
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
    assert_eq!(w.cpu.depth(), 2);
    assert_eq!(w.machine.el1, FRESH_COMPONENT_EL1);
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(
        w.registers(),
        [
            abi::RECV_CALL,
            VM_MANAGER as u64,
            interface::SUPERVISOR as u64,
            4
        ]
    );
    assert_eq!(&w.machine.message_buffer(supervisor.ipc_rx)[..4], b"ping");

    w.machine.message_buffer(supervisor.ipc_tx)[..5].copy_from_slice(b"pong!");
    w.hvc([syscall::REPLY, 5, 0, 0]);
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    assert_eq!(w.machine.el1, 0x111, "the caller's EL1 state is back");
    assert_eq!(w.registers()[..2], [0, 5]);
    assert_eq!(&w.machine.message_buffer(vm_manager.ipc_rx)[..5], b"pong!");

    w.reply(NOT_SUPPORTED);
    assert_eq!(w.cpu.depth(), 0);
    assert_eq!(w.machine.el1, HOST_EL1);
    assert!(w.returned_not_supported());
}

#[test]
fn calls_are_checked_against_grants_and_targets() {
    let mut w = World::new(true);
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    for (call, expected) in [
        // Not in its `calls`.
        ([syscall::CALL, 5, 1, 0], SyscallError::NotAllowed),
        ([syscall::CALL, 40, 1, 0], SyscallError::NotAllowed),
        // Granted, but nobody serves it.
        (
            [syscall::CALL, interface::MMIO_GUARD as u64, 1, 0],
            SyscallError::NoSuchTarget,
        ),
        (
            [syscall::CALL, interface::SUPERVISOR as u64, 257, 0],
            SyscallError::MessageTooLong,
        ),
        // Not in its `notifies`.
        (
            [syscall::NOTIFY, SUPERVISOR as u64, 1, 0],
            SyscallError::NotAllowed,
        ),
        (
            [
                syscall::KERNEL_OP,
                kernel_op::RESTART,
                MEM_PROTECT as u64,
                0,
            ],
            SyscallError::NotAllowed,
        ),
        ([0x77, 0, 0, 0], SyscallError::UnknownSyscall),
    ] {
        assert_eq!(w.hvc(call), Syscall::Done);
        assert_eq!(w.registers()[0], error(expected), "{call:x?}");
        assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    }
    // A granted notification sets the bit, which the target sees at its next RECV.
    assert_eq!(
        w.hvc([syscall::NOTIFY, MEM_PROTECT as u64, 0b100, 0]),
        Syscall::Done
    );
    assert_eq!(w.registers()[0], 0);
    // The kernel serves the other granted operations (and LOG) itself.
    assert_eq!(
        w.hvc([syscall::LOG, 1, 2, 0]),
        Syscall::Kernel {
            index: VM_MANAGER,
            number: syscall::LOG,
            args: [1, 2, 0]
        }
    );
}

#[test]
fn a_component_faulting_while_serving_the_vcpu_has_the_trap_delivered_again() {
    let mut w = World::new(true);
    trapped_vcpu(&mut w.cpu, 0xc600_00ff);
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.registry.frame_mut(&mut w.cpu).elr = 0x1000_0abc;
    w.fault(0x9600_0000);

    assert_eq!(
        w.machine.events,
        [Event::Faulted {
            index: VM_MANAGER,
            faults: 1,
            esr: 0x9600_0000,
            pc: 0x1000_0abc
        }]
    );
    assert_eq!(
        w.cpu.vcpu_frame().elr,
        smccc_pending().retry_pc,
        "the vCPU will trap again"
    );
    assert_eq!(w.cpu.vcpu_frame().x[0], 0xc600_00ff);
    // The supervisor runs at once with the notification, on behalf of nobody.
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(
        w.registers(),
        [abi::RECV_NOTIFICATION, 0, abi::NOTIFY_COMPONENT_FAULTED, 0]
    );
    w.hvc([
        syscall::KERNEL_OP,
        kernel_op::COMPONENT_STATE,
        VM_MANAGER as u64,
        0,
    ]);
    assert_eq!(
        w.registers(),
        [0, ComponentState::Faulted as u64, 1, 0x9600_0000]
    );
    // Until it is restarted, the trap finds the component stopped.
    assert_eq!(
        w.registry.call_from_vcpu(
            &mut w.machine,
            &mut Cpu::new(0),
            VM_MANAGER,
            interface::GUEST_TRAP,
            request,
            smccc_pending()
        ),
        Err(CallError::Stopped)
    );
    w.hvc([syscall::KERNEL_OP, kernel_op::RESTART, VM_MANAGER as u64, 0]);
    assert_eq!(w.registers()[0], 0);
    assert_eq!(
        w.machine.events.last(),
        Some(&Event::Restarted {
            index: VM_MANAGER,
            restarts: 1
        })
    );
    // Nothing more to do: the supervisor waits, and the CPU goes back to the vCPU.
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(w.cpu.current(), None);
    assert_eq!(w.machine.el1, HOST_EL1);

    // The restarted component starts afresh and serves the trap made again.
    w.trap(VM_MANAGER).unwrap();
    assert_eq!(w.registers()[3], 1, "entry x3: its start count");
    assert_eq!(w.machine.el1, FRESH_COMPONENT_EL1);
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.reply(NOT_SUPPORTED);
    assert!(w.returned_not_supported());
    assert_eq!(w.registry.stats(VM_MANAGER).unwrap().starts, 2);
}

#[test]
fn a_callee_faulting_answers_its_caller_with_callee_faulted() {
    let mut w = World::new(true);
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.hvc([syscall::CALL, interface::SUPERVISOR as u64, 1, 0]);
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
    // The supervisor itself faults: nobody else can restart it, so the kernel does at once.
    w.fault(0x0200_0000);
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    assert_eq!(w.registers()[0], error(SyscallError::CalleeFaulted));
    assert!(w.machine.events.contains(&Event::Restarted {
        index: SUPERVISOR,
        restarts: 1
    }));
    // It serves the next call.
    w.hvc([syscall::CALL, interface::SUPERVISOR as u64, 1, 0]);
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
}

#[test]
fn faults_at_each_step_of_a_call_leave_the_stack_consistent() {
    // Fault the vm-manager (a) fresh before its first RECV, (b) after RECV, (c) after a call
    // of its own was answered, (d) by waiting for a call while its caller waits for its reply.
    for step in 0..4 {
        let mut w = World::new(true);
        trapped_vcpu(&mut w.cpu, 0xc600_00ff);
        w.trap(VM_MANAGER).unwrap();
        if step >= 1 {
            w.hvc([syscall::RECV, 0, 0, 0]);
        }
        match step {
            0 | 1 => w.fault(1),
            2 => {
                w.hvc([syscall::CALL, interface::SUPERVISOR as u64, 1, 0]);
                w.hvc([syscall::RECV, 0, 0, 0]);
                w.hvc([syscall::REPLY, 0, 0, 0]);
                assert_eq!(w.cpu.current(), Some(VM_MANAGER));
                w.fault(1);
            }
            _ => {
                w.hvc([syscall::RECV, 0, 0, 0]);
                assert_eq!(
                    w.machine.events[0],
                    Event::ReceivedWhileCalled { index: VM_MANAGER }
                );
            }
        }
        assert_eq!(
            w.cpu.vcpu_frame().elr,
            smccc_pending().retry_pc,
            "step {step}"
        );
        assert_eq!(
            w.cpu.current(),
            Some(SUPERVISOR),
            "step {step}: the supervisor runs"
        );
        assert_eq!(w.cpu.depth(), 1);
        w.hvc([syscall::RECV, 0, 0, 0]);
        w.hvc([syscall::RECV, 0, 0, 0]);
        assert_eq!(w.cpu.current(), None, "step {step}");
        assert_eq!(w.machine.el1, HOST_EL1, "step {step}");
        assert_eq!(
            w.cpu.take_answer(),
            None,
            "step {step}: no answer, the trap comes again"
        );
    }
}

#[test]
fn a_component_never_restarted_is_retired_and_nothing_waits_on_it() {
    let mut w = World::new(true);
    let pending = PendingTrap {
        kind: TrapKind::Stage2Fault {
            esr: 0x9200_0007,
            far: 0x1234,
        },
        retry_pc: 0x4000_0000,
    };
    w.trap_on(MEM_PROTECT, pending).unwrap();
    w.fault(0x9600_0000);
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.hvc([
        syscall::KERNEL_OP,
        kernel_op::RESTART,
        MEM_PROTECT as u64,
        kernel_op::RESTART_NEVER,
    ]);
    assert_eq!(w.registers()[0], 0);
    assert!(
        w.machine
            .events
            .contains(&Event::Retired { index: MEM_PROTECT })
    );
    // Restarting a retired component is refused.
    w.hvc([
        syscall::KERNEL_OP,
        kernel_op::RESTART,
        MEM_PROTECT as u64,
        0,
    ]);
    assert_eq!(w.registers()[0], error(SyscallError::BadArgument));
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(w.cpu.current(), None);

    assert_eq!(w.trap_on(MEM_PROTECT, pending), Err(CallError::Retired));
    assert_eq!(w.cpu.current(), None);
    assert_eq!(
        w.registry.stats(MEM_PROTECT).unwrap().starts,
        1,
        "never loaded again"
    );
}

#[test]
fn a_deferred_restart_happens_at_the_first_call_after_its_deadline() {
    let mut w = World::new(true);
    w.trap(VM_MANAGER).unwrap();
    w.fault(1);
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.machine.now = 1_000;
    w.hvc([
        syscall::KERNEL_OP,
        kernel_op::RESTART,
        VM_MANAGER as u64,
        1_500,
    ]);
    assert_eq!(w.registers()[0], 0);
    assert_eq!(
        w.machine.events.last(),
        Some(&Event::RestartDeferred { index: VM_MANAGER })
    );
    w.hvc([syscall::RECV, 0, 0, 0]);

    w.machine.now = 1_499;
    assert_eq!(w.trap(VM_MANAGER), Err(CallError::Stopped));
    w.machine.now = 1_500;
    w.trap(VM_MANAGER).unwrap();
    assert_eq!(
        w.machine.events.last(),
        Some(&Event::Restarted {
            index: VM_MANAGER,
            restarts: 1
        })
    );
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
}

#[test]
fn without_a_supervisor_the_kernel_restarts_a_faulted_component_at_once() {
    let mut w = World::new(false);
    w.trap(VM_MANAGER).unwrap();
    w.fault(1);
    assert_eq!(w.cpu.current(), None);
    assert_eq!(w.machine.el1, HOST_EL1);
    w.trap(VM_MANAGER).unwrap();
}

#[test]
fn a_notified_component_goes_idle_when_it_has_nothing_left() {
    let mut w = World::new(true);
    w.trap(MEM_PROTECT).unwrap();
    w.fault(1);
    // The supervisor, run by the kernel, cannot REPLY to anyone.
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.hvc([syscall::REPLY, 0, 0, 0]);
    assert_eq!(w.registers()[0], error(SyscallError::NotServing));
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(w.cpu.current(), None);
    assert_eq!(
        w.registry.stats(SUPERVISOR).unwrap().calls,
        0,
        "a notification is no call"
    );
}

#[test]
fn routes_name_the_components_the_manifest_gives_them() {
    let registry = system(true);
    assert_eq!(registry.smccc_route(0x8400_0000), Some(VM_MANAGER));
    // A range names its taker before the general route.
    let mut guard = descriptor(3, "mmio-guard");
    guard.smccc_ranges[1] = (0xc600_0005, 0xc600_0007);
    let with_guard = Registry::new(
        &mut Fake::new(),
        registry
            .components()
            .iter()
            .map(|component| component.descriptor)
            .chain([guard])
            .zip(VTTBR.into_iter().chain([0x5_0000_0000_0000])),
    );
    assert_eq!(with_guard.smccc_route(0xc600_0004), Some(VM_MANAGER));
    assert_eq!(with_guard.smccc_route(0xc600_0005), Some(3));
    assert_eq!(with_guard.smccc_route(0xc600_0007), Some(3));
    assert_eq!(with_guard.smccc_route(0xc600_0008), Some(VM_MANAGER));
    assert_eq!(registry.route(hv_abi::ROUTE_HOST_STAGE2), Some(MEM_PROTECT));
    assert_eq!(registry.route(hv_abi::ROUTE_MMIO), None);
    assert_eq!(registry.server_of(interface::SUPERVISOR), Some(SUPERVISOR));
    assert_eq!(registry.name(MEM_PROTECT), "mem-protect");
    assert_eq!(registry.name(7), "?");
}

#[test]
fn two_cpus_calling_one_component_queue_and_each_gets_its_own_answer() {
    let registry: &'static Registry<El1> = Box::leak(Box::new(system(true)));
    let rx = registry.components()[VM_MANAGER].descriptor.ipc_rx;
    let mut machine = Fake::new();
    let mut cpu0 = Cpu::new(0);
    let encode_from = |cpu: u8| {
        move |buffer: &mut MessageBuffer, _: &GuestFrame| {
            buffer[0] = cpu;
            Some(1)
        }
    };
    registry
        .call_from_vcpu(
            &mut machine,
            &mut cpu0,
            VM_MANAGER,
            interface::GUEST_TRAP,
            encode_from(0),
            smccc_pending(),
        )
        .unwrap();
    hvc(registry, &mut machine, &mut cpu0, [syscall::RECV, 0, 0, 0]);

    // CPU 1 traps to the same component, which is busy on CPU 0: it waits.
    let delivered = Arc::new(AtomicBool::new(false));
    let second = {
        let delivered = delivered.clone();
        std::thread::spawn(move || {
            let mut machine = Fake::new();
            let mut cpu1 = Cpu::new(0);
            registry
                .call_from_vcpu(
                    &mut machine,
                    &mut cpu1,
                    VM_MANAGER,
                    interface::GUEST_TRAP,
                    encode_from(1),
                    smccc_pending(),
                )
                .unwrap();
            delivered.store(true, Ordering::SeqCst);
            // Served on this CPU now: its request is the one in RX.
            assert_eq!(machine.message_buffer(rx)[0], 1);
            // Its REPLY on CPU 0 returned with this call (no RECV in between).
            assert_eq!(registers(registry, &mut cpu1)[0], abi::RECV_CALL);
            let answer = TrapResolution::results([1, 0, 0, 0]);
            reply_resolution(registry, &mut machine, &mut cpu1, answer);
            assert_eq!(cpu1.take_answer(), None);
            cpu1.vcpu_frame().x[0]
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !delivered.load(Ordering::SeqCst),
        "CPU 1 waits while CPU 0's call is served"
    );
    assert_eq!(
        machine.message_buffer(rx)[0],
        0,
        "CPU 0's request is untouched"
    );
    let answer = TrapResolution::results([0, 0, 0, 0]);
    reply_resolution(registry, &mut machine, &mut cpu0, answer);
    assert_eq!(cpu0.vcpu_frame().x[0], 0, "CPU 0's vCPU got its own answer");

    let second_x0 = second.join().unwrap();
    assert!(delivered.load(Ordering::SeqCst));
    assert_eq!(second_x0, 1, "CPU 1's vCPU got its own answer");
    assert_eq!(registry.stats(VM_MANAGER).unwrap().calls, 2);
}

#[test]
fn a_call_hands_over_the_notifications_sent_before_it() {
    let mut w = World::new(true);
    // vm-manager notifies mem-protect, then the vCPU's trap reaches mem-protect: its first
    // RECV returns the call with the bits in x4 (and clears them).
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.hvc([syscall::NOTIFY, MEM_PROTECT as u64, 0b100, 0]);
    w.reply(NOT_SUPPORTED);
    w.trap(MEM_PROTECT).unwrap();
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(w.registers()[0], abi::RECV_CALL);
    assert_eq!(w.registry.frame_mut(&mut w.cpu).x[4], 0b100);
    w.reply(NOT_SUPPORTED);
    // Again, for a component that waits in REPLY rather than a fresh one; and with nothing
    // pending, x4 is 0.
    w.trap(VM_MANAGER).unwrap();
    w.hvc([syscall::NOTIFY, MEM_PROTECT as u64, 0b1000, 0]);
    w.reply(NOT_SUPPORTED);
    w.trap(MEM_PROTECT).unwrap();
    assert_eq!(w.registry.frame_mut(&mut w.cpu).x[4], 0b1000);
    w.reply(NOT_SUPPORTED);
    w.trap(MEM_PROTECT).unwrap();
    assert_eq!(w.registry.frame_mut(&mut w.cpu).x[4], 0);
}

#[test]
fn the_kernel_notifies_an_idle_component_at_once_and_a_busy_one_later() {
    let mut w = World::new(true);
    // Boot: the VM manager, fresh, runs before the vCPU's first instruction.
    w.registry.notify_from_kernel(
        &mut w.machine,
        &mut w.cpu,
        VM_MANAGER,
        abi::NOTIFY_SYSTEM_STARTED,
    );
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    // A fresh component starts at its entry and gets the notification at its first RECV.
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(
        w.registers(),
        [abi::RECV_NOTIFICATION, 0, abi::NOTIFY_SYSTEM_STARTED, 0]
    );
    w.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(w.cpu.current(), None, "done, the vCPU runs");

    w.trap(VM_MANAGER).unwrap();
    // VM manager busy (on the stack): the bit waits for its next RECV.
    w.registry
        .notify_from_kernel(&mut w.machine, &mut w.cpu, VM_MANAGER, 1 << 5);
    assert_eq!(w.cpu.current(), Some(VM_MANAGER), "not re-entered");
    w.reply(NOT_SUPPORTED);
    assert_eq!(w.cpu.current(), None);
    // The next call hands the bit over in x4.
    w.trap(VM_MANAGER).unwrap();
    assert_eq!(w.registry.frame_mut(&mut w.cpu).x[4], 1 << 5);
}

mod fast;
mod swap;
