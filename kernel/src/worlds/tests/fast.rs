//! The fast path against the general path: the same steps on two identical systems leave the
//! same state, and every case the fast path does not take leaves everything as it was.

use super::*;
use hv_ipc::interfaces::guest_trap::{Conduit, hot};

/// What a step may change, to compare two worlds (or one before and after).
#[derive(Debug, PartialEq)]
struct Snapshot {
    el1: El1,
    running: Option<WorldKind>,
    switches: usize,
    events: usize,
    depth: usize,
    current: Option<usize>,
    pending: Option<PendingTrap>,
    answer: Option<Decision>,
    vcpu: GuestFrame,
    top: GuestFrame,
    rx: Vec<u8>,
    calls: u64,
    state: u64,
}

impl World {
    fn snapshot(&mut self) -> Snapshot {
        let vm_manager = &self.registry.components()[VM_MANAGER];
        let (rx, state) = (vm_manager.descriptor.ipc_rx, vm_manager.state());
        Snapshot {
            el1: self.machine.el1,
            running: self.machine.running,
            switches: self.machine.switches,
            events: self.machine.events.len(),
            depth: self.cpu.depth(),
            current: self.cpu.current(),
            pending: self.cpu.pending,
            answer: self.cpu.answer,
            vcpu: self.cpu.vcpu_frame().clone(),
            top: self.registry.frame_mut(&mut self.cpu).clone(),
            rx: self.machine.message_buffer(rx).to_vec(),
            calls: self.registry.stats(VM_MANAGER).unwrap().calls,
            state,
        }
    }

    /// The vCPU is stopped on an SMCCC HVC with x0..x7 = `regs`.
    fn hvc_from_vcpu(&mut self, regs: [u64; 8]) {
        let frame = self.cpu.vcpu_frame();
        frame.x[..8].copy_from_slice(&regs);
        frame.elr = 0x4008_0004;
    }

    /// The general path's delivery of that HVC (what `traps::route_smccc` asks for).
    fn general_smccc_call(&mut self) {
        let encode = |rx: &mut MessageBuffer, vcpu: &GuestFrame| {
            Some(hot::encode_smccc(
                rx,
                0,
                1,
                Conduit::Hvc,
                vcpu.x.first_chunk().unwrap(),
            ))
        };
        self.registry
            .call_from_vcpu(
                &mut self.machine,
                &mut self.cpu,
                VM_MANAGER,
                interface::GUEST_TRAP,
                encode,
                smccc_pending(),
            )
            .unwrap();
    }

    fn fast_smccc_call(&mut self) -> bool {
        self.registry.fast_smccc_call(
            &mut self.machine,
            &mut self.cpu,
            (0, 1),
            smccc_pending().retry_pc,
        )
    }

    /// The component on top puts `answer` in TX and sets up REPLY with `len` (the system call
    /// is then made by either path).
    fn prepare_reply(&mut self, answer: &WireAnswer, len: Option<u64>) {
        let index = self.cpu.current().unwrap();
        let tx = self
            .machine
            .message_buffer(self.registry.components()[index].descriptor.ipc_tx);
        let encoded = hv_ipc::encode_reply::<GuestTrapInterface>(answer, tx).unwrap();
        let frame = self.registry.frame_mut(&mut self.cpu);
        frame.x[0] = syscall::REPLY;
        frame.x[1] = len.unwrap_or(encoded as u64);
    }

    fn fast_reply(&mut self) -> bool {
        self.registry
            .fast_reply_to_vcpu(&mut self.machine, &mut self.cpu)
    }
}

type WireAnswer = hv_ipc::WireReply<TrapResolution>;

#[test]
fn the_fast_path_leaves_the_worlds_as_the_general_path_does() {
    let mut general = World::new(true);
    let mut fast = World::new(true);
    for (round, regs) in [
        [0xc600_00ff, 1, 2, 3, 4, 5, 6, 7],
        [0x8400_0000, 0xffff_ffff_ffff_fff0, 0, 0, 0, 0, 0, 0x80],
        [0xc600_0001, 0x4000_0000, 0x200, 0, 0, 0, 0, 0],
    ]
    .into_iter()
    .enumerate()
    {
        general.hvc_from_vcpu(regs);
        fast.hvc_from_vcpu(regs);
        general.general_smccc_call();
        assert!(fast.fast_smccc_call(), "round {round}: taken");
        assert_eq!(
            fast.snapshot(),
            general.snapshot(),
            "round {round}: the call"
        );
        if round == 0 {
            // Started afresh: the call comes at its first RECV, on both.
            general.hvc([syscall::RECV, 0, 0, 0]);
            fast.hvc([syscall::RECV, 0, 0, 0]);
            assert_eq!(fast.snapshot(), general.snapshot());
        }
        let answer = Ok(TrapResolution::results([
            round as u64,
            u64::MAX,
            0x7f,
            1 << 63,
        ]));
        general.prepare_reply(&answer, None);
        fast.prepare_reply(&answer, None);
        general
            .registry
            .syscall(&mut general.machine, &mut general.cpu);
        assert!(fast.fast_reply(), "round {round}: taken");
        let after = fast.snapshot();
        assert_eq!(after, general.snapshot(), "round {round}: the reply");
        assert_eq!(after.vcpu.x[..4], [round as u64, u64::MAX, 0x7f, 1 << 63]);
        assert_eq!((after.depth, after.pending), (0, None));
    }
}

#[test]
fn the_fast_path_declines_every_other_case_and_changes_nothing() {
    let declined_call = |w: &mut World, why: &str| {
        let before = w.snapshot();
        assert!(!w.fast_smccc_call(), "{why}");
        assert_eq!(w.snapshot(), before, "{why}: nothing changed");
    };
    let declined_reply = |w: &mut World, why: &str| {
        let before = w.snapshot();
        assert!(!w.fast_reply(), "{why}");
        assert_eq!(w.snapshot(), before, "{why}: nothing changed");
    };
    let mut w = World::new(true);
    w.hvc_from_vcpu([0xc600_00ff, 0, 0, 0, 0, 0, 0, 0]);

    // Another CPU holds the component (or waits for it): the general path queues.
    let lock = &w.registry.components()[VM_MANAGER].lock;
    core::mem::forget(lock.lock());
    declined_call(&mut w, "held by another CPU");
    release(&w.registry.components()[VM_MANAGER]);

    // A component on the stack already (the vCPU is not on top).
    assert!(w.fast_smccc_call());
    declined_call(&mut w, "a component runs");
    w.hvc([syscall::RECV, 0, 0, 0]);

    // Replies the fast path does not take.
    let not_return = Ok(TrapResolution::InjectUndefined);
    let results = Ok(TrapResolution::results([1, 2, 3, 4]));
    w.prepare_reply(&not_return, None);
    declined_reply(&mut w, "another answer");
    w.prepare_reply(&Err(hv_ipc::RemoteError::Busy), None);
    declined_reply(&mut w, "a refusal");
    w.prepare_reply(&results, Some(MESSAGE_MAX as u64 + 1));
    declined_reply(&mut w, "too long");
    w.prepare_reply(&results, Some(3));
    declined_reply(&mut w, "cut short");
    w.prepare_reply(&results, None);
    w.registry.frame_mut(&mut w.cpu).x[0] = syscall::NOTIFY;
    declined_reply(&mut w, "another system call");

    // A nested call: the reply of the callee goes to its caller, not the vCPU.
    let supervisor = w.registry.components()[SUPERVISOR].descriptor;
    w.hvc([syscall::CALL, interface::SUPERVISOR as u64, 0, 0]);
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
    w.hvc([syscall::RECV, 0, 0, 0]);
    let tx = w.machine.message_buffer(supervisor.ipc_tx);
    tx[..2].copy_from_slice(&[0, 0]);
    w.registry.frame_mut(&mut w.cpu).x[..2].copy_from_slice(&[syscall::REPLY, 2]);
    declined_reply(&mut w, "a callee's reply");
    w.registry.syscall(&mut w.machine, &mut w.cpu);
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));

    // The answer to a trap that is not an SMCCC call.
    w.cpu.pending = Some(PendingTrap {
        kind: TrapKind::Stage2Fault {
            esr: 0x9200_0046,
            far: 0x1000,
        },
        retry_pc: 0x4008_0000,
    });
    w.prepare_reply(&results, None);
    declined_reply(&mut w, "a stage-2 fault's answer");
    w.cpu.pending = Some(smccc_pending());
    assert!(w.fast_reply());
    assert_eq!(w.cpu.vcpu_frame().x[..4], [1, 2, 3, 4]);

    // A component stopped after a fault: restarts and retirement are the general path's.
    assert!(w.fast_smccc_call());
    w.fault(0x9600_0000);
    assert_eq!(
        w.registry.components()[VM_MANAGER].state(),
        ComponentState::Faulted as u64
    );
    while w.cpu.current().is_some() {
        // The supervisor runs with the fault's notification; it waits again.
        w.hvc([syscall::RECV, 0, 0, 0]);
    }
    w.hvc_from_vcpu([0xc600_00ff, 0, 0, 0, 0, 0, 0, 0]);
    declined_call(&mut w, "faulted");
}
