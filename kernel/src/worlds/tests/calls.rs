//! Calls and replies: from a vCPU and between components, grants, routes, two CPUs queueing.

use super::*;
use crate::pending::Refusal;

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
    // The vendor-hypervisor block is looked up in a table made from the walk: the same answer
    // for every ID in it and around it.
    for registry in [&registry, &with_guard] {
        let ids = (0xc5ff_ff00..0xc600_0200).chain([0, 0x8400_0000, 0x8600_0005, u32::MAX]);
        for function in ids {
            assert_eq!(
                registry.smccc_route(function),
                registry.walk_smccc_routes(function),
                "{function:#x}"
            );
        }
    }
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
