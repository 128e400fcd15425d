//! Notifications: from the kernel, handed over with the next call; a notified one going idle.

use super::*;

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
