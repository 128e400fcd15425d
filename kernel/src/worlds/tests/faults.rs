//! Faults and restarts: at each step of a call; restarted now, after a deadline or never.

use super::*;

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
