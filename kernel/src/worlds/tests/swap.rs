//! Hot-swap on the fake machine: the supervisor asks, the old instance hands its state over,
//! the new one takes it (or refuses, faults, answers late or nonsense, and the old one comes
//! back with its state), and callers on another CPU wait and are served afterwards.

use super::*;
use hv_ipc::abi::{NOTIFY_CONTROL_INPUT, NOTIFY_SWAP_DONE, SwapOutcome};
use hv_ipc::lifecycle::{self, LifecycleReply, LifecycleRequest, Refusal, StateTag};

/// The deadline the tests' supervisor gives (ticks are milliseconds on the fake machine).
const DEADLINE_MS: u64 = 2_000;

const TAG: StateTag = StateTag {
    schema: 0x5157,
    version: 3,
    interface: 0x1f,
};

/// The staged image in the supervisor's region.
fn staged() -> PhysRange {
    let start = descriptor(SUPERVISOR, "x").region.start + 0x8000;
    PhysRange {
        start,
        end: start + 0x4000,
    }
}

/// The system of `tests`, the supervisor also granted SWAP and SWAP_STATUS.
fn swap_world() -> World {
    let mut world = World::new(true);
    let mut descriptors: Vec<(ComponentDescriptor, u64)> = world
        .registry
        .components()
        .iter()
        .map(|component| (component.descriptor, component.vttbr))
        .collect();
    descriptors[SUPERVISOR].0.kernel_ops |= (1 << kernel_op::SWAP) | (1 << kernel_op::SWAP_STATUS);
    world.registry = Registry::new(&mut Fake::new(), descriptors);
    world
}

impl World {
    /// The supervisor runs (notified by the kernel) and asks for a swap of `target` to the
    /// image `image`; returns SWAP's x0. Then it waits again (RECV), which starts the swap.
    fn request_swap(&mut self, target: usize, image: PhysRange) -> u64 {
        self.registry.notify_from_kernel(
            &mut self.machine,
            &mut self.cpu,
            SUPERVISOR,
            NOTIFY_CONTROL_INPUT,
        );
        assert_eq!(self.cpu.current(), Some(SUPERVISOR));
        if self.cpu.stack.last().unwrap().delivery.is_some() {
            self.hvc([syscall::RECV, 0, 0, 0]);
        }
        let args = kernel_op::swap_args(target as u8, image.len() as u32, 0x800);
        self.registry.frame_mut(&mut self.cpu).x[4] = DEADLINE_MS;
        self.hvc([syscall::KERNEL_OP, kernel_op::SWAP, image.start, args]);
        let result = self.registers()[0];
        self.hvc([syscall::RECV, 0, 0, 0]);
        result
    }

    /// The lifecycle request the component on top was handed, copied out.
    fn lifecycle_request(&mut self) -> (u32, Option<(StateTag, u32, Vec<u8>)>) {
        let index = self.cpu.current().expect("a component runs");
        if self.cpu.stack.last().unwrap().delivery.is_some() {
            // Started afresh: it runs its start-up code, then waits for its first request.
            self.hvc([syscall::RECV, 0, 0, 0]);
        }
        let registers = self.registers();
        assert_eq!(registers[0], abi::RECV_CALL);
        assert_eq!(registers[1], abi::SENDER_KERNEL);
        assert_eq!(registers[2], u64::from(interface::LIFECYCLE));
        let rx = self.registry.components()[index].descriptor.ipc_rx;
        let bytes = self.machine.message_buffer(rx)[..registers[3] as usize].to_vec();
        match lifecycle::decode::<LifecycleRequest>(&bytes).expect("a lifecycle request") {
            LifecycleRequest::Export { offset } => (offset, None),
            LifecycleRequest::Import {
                tag,
                total,
                offset,
                bytes,
            } => (offset, Some((tag, total, bytes.to_vec()))),
        }
    }

    /// The component on top answers `reply`.
    fn answer(&mut self, reply: &LifecycleReply) {
        let index = self.cpu.current().expect("a component runs");
        let tx = self.registry.components()[index].descriptor.ipc_tx;
        let len = lifecycle::encode(reply, self.machine.message_buffer(tx)).unwrap();
        self.hvc([syscall::REPLY, len as u64, 0, 0]);
    }

    /// The old instance (on top) hands `state` over, page by page.
    fn export(&mut self, state: &[u8]) {
        let mut offset = 0;
        loop {
            let (asked, import) = self.lifecycle_request();
            assert_eq!((asked, import), (offset as u32, None));
            let end = (offset + lifecycle::PAGE_MAX).min(state.len());
            self.answer(&LifecycleReply::State {
                tag: TAG,
                total: state.len() as u32,
                bytes: &state[offset..end],
            });
            offset = end;
            if offset == state.len() {
                return;
            }
        }
    }

    /// The instance on top takes the state page by page until the last, which it answers
    /// with `last`; returns the state it was given.
    fn import(&mut self, last: &LifecycleReply) -> Vec<u8> {
        let mut state = Vec::new();
        loop {
            let (offset, import) = self.lifecycle_request();
            let (tag, total, bytes) = import.expect("an import");
            assert_eq!(tag, TAG);
            assert_eq!(offset as usize, state.len());
            state.extend_from_slice(&bytes);
            if state.len() == total as usize {
                self.answer(last);
                return state;
            }
            self.answer(&LifecycleReply::More);
        }
    }

    /// The supervisor, notified that the swap ended, reads its outcome and waits again.
    fn swap_status(&mut self) -> (Option<SwapOutcome>, u64) {
        assert_eq!(
            self.cpu.current(),
            Some(SUPERVISOR),
            "the requester is told"
        );
        let registers = self.registers();
        assert_eq!(registers[0], abi::RECV_NOTIFICATION);
        assert_ne!(registers[2] & NOTIFY_SWAP_DONE, 0);
        self.hvc([syscall::KERNEL_OP, kernel_op::SWAP_STATUS, 0, 0]);
        let [result, outcome, _, state_len] = self.registers();
        assert_eq!(result, 0);
        self.hvc([syscall::RECV, 0, 0, 0]);
        assert_eq!(self.cpu.depth(), 0);
        (SwapOutcome::of(outcome), state_len)
    }

    fn store_of(&self, index: usize) -> PhysRange {
        self.registry.components()[index].descriptor.image_store
    }
}

fn state() -> Vec<u8> {
    (0..500u32).map(|byte| byte as u8 ^ 0x5a).collect()
}

#[test]
fn a_swap_hands_the_state_to_the_new_image_and_keeps_it() {
    let mut world = swap_world();
    let old_build = world.registry.build(VM_MANAGER);
    assert_eq!(world.request_swap(VM_MANAGER, staged()), 0);
    // The old instance is asked for its state at once (this CPU's stack emptied).
    assert_eq!(world.cpu.current(), Some(VM_MANAGER));
    world.export(&state());
    // The new image is in the region and started afresh with the state.
    assert_eq!(world.machine.sources.last(), Some(&staged().start));
    assert_eq!(world.cpu.current(), Some(VM_MANAGER));
    assert_eq!(world.import(&LifecycleReply::Accepted), state());
    assert_eq!(world.swap_status(), (Some(SwapOutcome::Swapped), 500));
    // Restarts load the new image from now on; its build is the one running.
    assert_eq!(
        world.machine.stored,
        vec![(world.store_of(VM_MANAGER).start, staged().start)]
    );
    assert_eq!(
        world.registry.build(VM_MANAGER),
        world.machine.build_id(staged())
    );
    assert_ne!(world.registry.build(VM_MANAGER), old_build);
    let new_build = world.machine.build_id(staged());
    assert!(world.machine.events.contains(&Event::SwapEnded {
        index: VM_MANAGER,
        outcome: SwapOutcome::Swapped,
        old_build,
        new_build,
        ticks: 0,
        state_len: 500,
    }));
    // The new instance serves the next call.
    world.trap(VM_MANAGER).unwrap();
    assert_eq!(world.registers()[2], u64::from(interface::GUEST_TRAP));
    world.reply(NOT_SUPPORTED);
    assert!(world.returned_not_supported());
}

#[test]
fn a_component_without_state_swaps_with_an_empty_hand_over() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    world.answer(&LifecycleReply::State {
        tag: TAG,
        total: 0,
        bytes: &[],
    });
    assert_eq!(world.import(&LifecycleReply::Accepted), Vec::<u8>::new());
    assert_eq!(world.swap_status(), (Some(SwapOutcome::Swapped), 0));
}

#[test]
fn a_component_that_is_not_swappable_is_left_as_it_was() {
    let mut world = swap_world();
    world.request_swap(MEM_PROTECT, staged());
    assert_eq!(world.cpu.current(), Some(MEM_PROTECT));
    let loads = world.machine.sources.len();
    world.answer(&LifecycleReply::NotSwappable);
    assert_eq!(world.swap_status(), (Some(SwapOutcome::NotSwappable), 0));
    assert_eq!(world.machine.sources.len(), loads, "nothing was loaded");
    assert!(world.machine.stored.is_empty());
    // Its next call goes to the old instance, which answers as before (not started afresh).
    world.trap(MEM_PROTECT).unwrap();
    assert_eq!(world.registers()[0], abi::RECV_CALL);
}

/// Rolls a swap back with `misbehave` (which the new instance does after receiving the
/// first page) and checks the old instance came back with its state.
fn rolled_back(misbehave: impl FnOnce(&mut World), expected: SwapOutcome) {
    let mut world = swap_world();
    let old_build = world.registry.build(VM_MANAGER);
    world.request_swap(VM_MANAGER, staged());
    world.export(&state());
    misbehave(&mut world);
    // The old image is reloaded from the store and handed its own state back.
    assert_eq!(
        world.machine.sources.last(),
        Some(&world.store_of(VM_MANAGER).start)
    );
    assert_eq!(world.cpu.current(), Some(VM_MANAGER));
    assert_eq!(world.import(&LifecycleReply::Accepted), state());
    assert_eq!(world.swap_status(), (Some(expected), 500));
    assert!(
        world.machine.stored.is_empty(),
        "the store keeps the old image"
    );
    assert_eq!(world.registry.build(VM_MANAGER), old_build);
    assert_eq!(
        world.machine.events.last(),
        Some(&Event::SwapEnded {
            index: VM_MANAGER,
            outcome: expected,
            old_build,
            new_build: old_build,
            ticks: world.machine.now,
            state_len: 500,
        })
    );
    // And serves.
    world.trap(VM_MANAGER).unwrap();
    world.reply(NOT_SUPPORTED);
    assert!(world.returned_not_supported());
}

#[test]
fn a_new_instance_refusing_the_state_is_rolled_back() {
    rolled_back(
        |world| {
            world.lifecycle_request();
            world.answer(&LifecycleReply::Refused(Refusal::State));
        },
        SwapOutcome::StateRefused,
    );
}

#[test]
fn a_new_instance_with_another_interface_is_rolled_back() {
    rolled_back(
        |world| {
            world.lifecycle_request();
            world.answer(&LifecycleReply::Refused(Refusal::Interface));
        },
        SwapOutcome::InterfaceChanged,
    );
}

#[test]
fn a_new_instance_faulting_before_it_is_ready_is_rolled_back() {
    rolled_back(|world| world.fault(0x9600_0000), SwapOutcome::NewFaulted);
}

#[test]
fn a_new_instance_waiting_instead_of_answering_is_rolled_back() {
    // RECV while the kernel waits for its answer: stopped as a broken protocol.
    rolled_back(
        |world| {
            world.lifecycle_request();
            world.hvc([syscall::RECV, 0, 0, 0]);
        },
        SwapOutcome::NewFaulted,
    );
}

#[test]
fn a_new_instance_answering_late_is_rolled_back() {
    rolled_back(
        |world| {
            world.lifecycle_request();
            world.machine.now += DEADLINE_MS + 1;
            world.answer(&LifecycleReply::More);
        },
        SwapOutcome::TooSlow,
    );
}

#[test]
fn a_new_instance_answering_nonsense_is_rolled_back() {
    rolled_back(
        |world| {
            world.lifecycle_request();
            let tx = world.registry.components()[VM_MANAGER].descriptor.ipc_tx;
            world.machine.message_buffer(tx)[..2].copy_from_slice(&[0xff, 0xff]);
            world.hvc([syscall::REPLY, 2, 0, 0]);
        },
        SwapOutcome::Misbehaved,
    );
}

#[test]
fn an_old_instance_faulting_while_handing_over_is_stopped_and_nothing_loaded() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    let loads = world.machine.sources.len();
    world.fault(0x9600_0000);
    assert_eq!(world.machine.sources.len(), loads);
    let (outcome, _) = world.swap_status();
    assert_eq!(outcome, Some(SwapOutcome::OldFaulted));
    let state = world.registry.components()[VM_MANAGER].state();
    assert_eq!(state, ComponentState::Faulted as u64);
    // The supervisor was told as after any fault (it restarts it).
    assert_eq!(world.registry.stats(VM_MANAGER).unwrap().faults, 1);
}

#[test]
fn an_old_image_refusing_its_own_state_back_is_stopped_for_a_restart() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    world.export(&state());
    world.lifecycle_request();
    world.answer(&LifecycleReply::Refused(Refusal::State));
    // The old image, reloaded, refuses too.
    world.import(&LifecycleReply::Refused(Refusal::State));
    let (outcome, _) = world.swap_status();
    assert_eq!(outcome, Some(SwapOutcome::StateRefused));
    let state = world.registry.components()[VM_MANAGER].state();
    assert_eq!(state, ComponentState::Faulted as u64);
}

#[test]
fn a_state_larger_than_the_kernel_carries_is_refused_before_anything_changes() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    world.answer(&LifecycleReply::State {
        tag: TAG,
        total: lifecycle::STATE_MAX as u32 + 1,
        bytes: &[1; 8],
    });
    assert_eq!(world.swap_status(), (Some(SwapOutcome::StateTooLarge), 0));
    assert!(world.machine.stored.is_empty());
}

#[test]
fn swap_requests_are_checked() {
    let mut world = swap_world();
    let bad = error(SyscallError::BadArgument);
    let supervisor_region = world.registry.components()[SUPERVISOR].descriptor.region;
    let outside = PhysRange {
        start: supervisor_region.end - 0x100,
        end: supervisor_region.end + 0x100,
    };
    let too_large = PhysRange {
        start: supervisor_region.start,
        end: supervisor_region.start + world.store_of(VM_MANAGER).len() + 1,
    };
    for (target, image) in [
        (VM_MANAGER, outside),
        (VM_MANAGER, too_large),
        (SUPERVISOR, staged()),
    ] {
        assert_eq!(world.request_swap(target, image), bad, "{target} {image:?}");
        assert_eq!(world.cpu.depth(), 0, "nothing started");
    }
    assert_eq!(
        world.request_swap(7, staged()),
        error(SyscallError::NoSuchTarget)
    );
    // Without a deadline (the supervisor's policy, x4), nothing starts either.
    world.registry.notify_from_kernel(
        &mut world.machine,
        &mut world.cpu,
        SUPERVISOR,
        NOTIFY_CONTROL_INPUT,
    );
    world.registry.frame_mut(&mut world.cpu).x[4] = 0;
    let args = kernel_op::swap_args(VM_MANAGER as u8, staged().len() as u32, 0x800);
    world.hvc([syscall::KERNEL_OP, kernel_op::SWAP, staged().start, args]);
    assert_eq!(world.registers()[0], bad);
    world.hvc([syscall::RECV, 0, 0, 0]);
    assert_eq!(world.cpu.depth(), 0, "nothing started");
    // A component without the grant may not ask.
    world.trap(VM_MANAGER).unwrap();
    world.hvc([syscall::RECV, 0, 0, 0]);
    let args = kernel_op::swap_args(MEM_PROTECT as u8, 0x100, 0);
    world.hvc([syscall::KERNEL_OP, kernel_op::SWAP, 0x1000_1000, args]);
    assert_eq!(world.registers()[0], error(SyscallError::NotAllowed));
}

#[test]
fn callers_on_another_cpu_wait_for_the_swap_and_are_served_by_the_new_instance() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    world.export(&state());
    let registry: &'static Registry<El1> = Box::leak(Box::new(core::mem::replace(
        &mut world.registry,
        system(true),
    )));
    // The swap is under way (the new instance has its first page). CPU 1 traps to it.
    let delivered = Arc::new(AtomicBool::new(false));
    let second = {
        let delivered = delivered.clone();
        std::thread::spawn(move || {
            let mut machine = Fake::new();
            let mut cpu1 = Cpu::new(0);
            trap(registry, &mut machine, &mut cpu1, VM_MANAGER).unwrap();
            delivered.store(true, Ordering::SeqCst);
            let registers = registers(registry, &mut cpu1);
            reply_resolution(registry, &mut machine, &mut cpu1, NOT_SUPPORTED);
            let answered = cpu1.take_answer().is_none()
                && cpu1.pending.is_none()
                && cpu1.vcpu_frame().x[..4] == [u64::MAX, 0, 0, 0];
            (registers, answered)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !delivered.load(Ordering::SeqCst),
        "held while the swap runs"
    );
    let mut cpu0 = World {
        registry: system(true),
        machine: core::mem::take(&mut world.machine),
        cpu: core::mem::replace(&mut world.cpu, Cpu::new(0)),
    };
    // Play the rest of the swap on CPU 0 against the shared registry.
    let mut machine = core::mem::take(&mut cpu0.machine);
    let mut cpu = core::mem::replace(&mut cpu0.cpu, Cpu::new(0));
    let index = cpu.current().unwrap();
    assert_eq!(index, VM_MANAGER);
    let mut given = 0usize;
    loop {
        if cpu.stack.last().unwrap().delivery.is_some() {
            hvc(registry, &mut machine, &mut cpu, [syscall::RECV, 0, 0, 0]);
        }
        let [_, _, _, len] = registers(registry, &mut cpu);
        let rx = registry.components()[index].descriptor.ipc_rx;
        let bytes = machine.message_buffer(rx)[..len as usize].to_vec();
        let Some(LifecycleRequest::Import { total, bytes, .. }) = lifecycle::decode(&bytes) else {
            panic!("an import");
        };
        given += bytes.len();
        let reply = if given == total as usize {
            LifecycleReply::Accepted
        } else {
            LifecycleReply::More
        };
        let tx = registry.components()[index].descriptor.ipc_tx;
        let len = lifecycle::encode(&reply, machine.message_buffer(tx)).unwrap();
        hvc(
            registry,
            &mut machine,
            &mut cpu,
            [syscall::REPLY, len as u64, 0, 0],
        );
        if reply == LifecycleReply::Accepted {
            break;
        }
    }
    let (registers, answer) = second.join().unwrap();
    // Served by the new instance: started afresh by the swap, this is its first call after
    // the hand-over.
    assert_eq!(registers[2], u64::from(interface::GUEST_TRAP));
    assert!(answer, "CPU 1's vCPU has its NOT_SUPPORTED");
    assert_eq!(registry.last_swap().outcome, SwapOutcome::Swapped);
}

#[test]
fn the_deadline_is_armed_for_the_swap_and_disarmed_when_it_ends() {
    let mut world = swap_world();
    world.machine.now = 100;
    world.request_swap(VM_MANAGER, staged());
    assert_eq!(world.machine.deadline, Some(100 + DEADLINE_MS));
    world.export(&state());
    assert_eq!(
        world.machine.deadline,
        Some(100 + DEADLINE_MS),
        "the same for the import"
    );
    world.import(&LifecycleReply::Accepted);
    assert_eq!(world.machine.deadline, None, "disarmed once the swap ends");
    world.swap_status();
    // A swap refused before it starts leaves nothing armed either.
    world.request_swap(MEM_PROTECT, staged());
    world.answer(&LifecycleReply::NotSwappable);
    assert_eq!(world.machine.deadline, None);
}

#[test]
fn a_new_instance_that_never_answers_is_stopped_at_the_deadline_and_rolled_back() {
    rolled_back(
        |world| {
            world.lifecycle_request();
            // It loops; the deadline's interrupt takes the CPU back.
            world.machine.now += DEADLINE_MS + 1;
            let faults = world.registry.stats(VM_MANAGER).unwrap().faults;
            world
                .registry
                .deadline_passed(&mut world.machine, &mut world.cpu);
            assert!(
                world
                    .machine
                    .events
                    .contains(&Event::Overdue { index: VM_MANAGER })
            );
            assert_eq!(world.registry.stats(VM_MANAGER).unwrap().faults, faults + 1);
            // The old image gets a deadline of its own to take its state back.
            assert_eq!(
                world.machine.deadline,
                Some(world.machine.now + DEADLINE_MS)
            );
        },
        SwapOutcome::TooSlow,
    );
}

#[test]
fn an_old_instance_that_never_hands_over_is_stopped_at_the_deadline() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    world.lifecycle_request();
    world.machine.now += DEADLINE_MS + 1;
    let loads = world.machine.sources.len();
    world
        .registry
        .deadline_passed(&mut world.machine, &mut world.cpu);
    assert_eq!(world.machine.sources.len(), loads, "nothing was loaded");
    assert_eq!(world.machine.deadline, None);
    // Stopped as after a fault: the supervisor is told of both.
    let (outcome, _) = world.swap_status();
    assert_eq!(outcome, Some(SwapOutcome::OldFaulted));
    assert_eq!(
        world.registry.components()[VM_MANAGER].state(),
        ComponentState::Faulted as u64
    );
}

#[test]
fn an_old_image_that_never_takes_its_state_back_is_stopped_at_its_own_deadline() {
    let mut world = swap_world();
    world.request_swap(VM_MANAGER, staged());
    world.export(&state());
    world.lifecycle_request();
    world.answer(&LifecycleReply::Refused(Refusal::State));
    // The rollback: the old image loops instead of taking its state.
    world.lifecycle_request();
    world.machine.now += DEADLINE_MS + 1;
    world
        .registry
        .deadline_passed(&mut world.machine, &mut world.cpu);
    assert_eq!(world.machine.deadline, None);
    let (outcome, _) = world.swap_status();
    assert_eq!(outcome, Some(SwapOutcome::StateRefused));
    assert_eq!(
        world.registry.components()[VM_MANAGER].state(),
        ComponentState::Faulted as u64
    );
}

#[test]
fn a_deadline_without_a_swap_only_disarms() {
    let mut world = swap_world();
    world.machine.deadline = Some(5);
    world.trap(VM_MANAGER).unwrap();
    world
        .registry
        .deadline_passed(&mut world.machine, &mut world.cpu);
    assert_eq!(world.machine.deadline, None);
    assert_eq!(
        world.cpu.current(),
        Some(VM_MANAGER),
        "nothing else changed"
    );
}
