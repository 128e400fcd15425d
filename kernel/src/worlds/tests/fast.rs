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
    rx: Vec<Vec<u8>>,
    calls: Vec<u64>,
    state: Vec<u64>,
    frames: Vec<[u64; 5]>,
}

impl World {
    fn snapshot(&mut self) -> Snapshot {
        let components = self.registry.components();
        let rx = components
            .iter()
            .map(|c| self.machine.message_buffer(c.descriptor.ipc_rx).to_vec())
            .collect();
        let calls = (0..components.len())
            .map(|index| self.registry.stats(index).unwrap().calls)
            .collect();
        let state = components.iter().map(|c| c.state()).collect();
        // SAFETY: a test on one thread; the frames are read between steps.
        let frames = components
            .iter()
            .map(|c| unsafe { c.saved().frame.x[..5].try_into().unwrap() })
            .collect();
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
            rx,
            calls,
            state,
            frames,
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
        self.fast_syscall()
    }

    /// The fast path of a component's system call, as the kernel tries it.
    fn fast_syscall(&mut self) -> bool {
        self.registry
            .fast_reply_to_vcpu(&mut self.machine, &mut self.cpu)
            || self
                .registry
                .fast_call_or_reply(&mut self.machine, &mut self.cpu)
    }

    /// The component on top puts `bytes` in TX and sets up system call `x` (made then by
    /// either path).
    fn prepare_syscall(&mut self, bytes: &[u8], x: [u64; 3]) {
        let index = self.cpu.current().unwrap();
        let tx = self
            .machine
            .message_buffer(self.registry.components()[index].descriptor.ipc_tx);
        tx[..bytes.len()].copy_from_slice(bytes);
        self.registry.frame_mut(&mut self.cpu).x[..3].copy_from_slice(&x);
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
    w.registry.frame_mut(&mut w.cpu).x[0] = syscall::RECV;
    declined_reply(&mut w, "RECV");

    // Calls the fast path leaves to the general path, with its errors.
    let mem_protect = interface::MEM_PROTECT as u64;
    for (x, why) in [
        ([syscall::CALL, mem_protect, 4], "not granted"),
        (
            [syscall::CALL, interface::MMIO_GUARD as u64, 4],
            "no server",
        ),
        (
            [
                syscall::CALL,
                interface::SUPERVISOR as u64,
                MESSAGE_MAX as u64 + 1,
            ],
            "too long",
        ),
    ] {
        w.prepare_syscall(b"ping", x);
        declined_reply(&mut w, why);
    }
    let lock = &w.registry.components()[SUPERVISOR].lock;
    core::mem::forget(lock.lock());
    w.prepare_syscall(b"ping", [syscall::CALL, interface::SUPERVISOR as u64, 4]);
    declined_reply(&mut w, "the server is held by another CPU");
    release(&w.registry.components()[SUPERVISOR]);

    // A nested call whose callee replies with what is not an SMCCC call's results: its
    // caller gets the bytes, the vCPU keeps waiting.
    w.hvc([syscall::CALL, interface::SUPERVISOR as u64, 0, 0]);
    assert_eq!(w.cpu.current(), Some(SUPERVISOR));
    w.hvc([syscall::RECV, 0, 0, 0]);
    w.prepare_syscall(&[0, 0], [syscall::REPLY, 2, 0]);
    assert!(w.fast_syscall(), "a callee's reply to its caller");
    assert_eq!(w.cpu.current(), Some(VM_MANAGER));
    assert_eq!(w.registers()[..2], [0, 2]);

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

#[test]
fn calls_between_components_take_the_fast_path_as_the_general_path_would() {
    let mut general = World::new(true);
    let mut fast = World::new(true);
    for world in [&mut general, &mut fast] {
        world.hvc_from_vcpu([0xc600_0001, 0, 0, 0, 0, 0, 0, 0]);
        world.general_smccc_call();
        world.hvc([syscall::RECV, 0, 0, 0]);
    }
    for round in 0..3u8 {
        // The VM manager calls the supervisor with a request of `round + 3` bytes...
        let request: Vec<u8> = (0..round + 3).map(|byte| byte + round).collect();
        let call = [
            syscall::CALL,
            interface::SUPERVISOR as u64,
            request.len() as u64,
        ];
        general.prepare_syscall(&request, call);
        fast.prepare_syscall(&request, call);
        general
            .registry
            .syscall(&mut general.machine, &mut general.cpu);
        assert!(fast.fast_syscall(), "round {round}: the call is taken");
        assert_eq!(
            fast.snapshot(),
            general.snapshot(),
            "round {round}: the call"
        );
        assert_eq!(fast.cpu.current(), Some(SUPERVISOR));
        if round == 0 {
            // Started afresh: the call comes at its first RECV.
            general.hvc([syscall::RECV, 0, 0, 0]);
            fast.hvc([syscall::RECV, 0, 0, 0]);
        }
        // ...which answers with 9 bytes.
        let answer = [round; 9];
        let reply = [syscall::REPLY, answer.len() as u64, 0];
        general.prepare_syscall(&answer, reply);
        fast.prepare_syscall(&answer, reply);
        general
            .registry
            .syscall(&mut general.machine, &mut general.cpu);
        assert!(fast.fast_syscall(), "round {round}: the reply is taken");
        let after = fast.snapshot();
        assert_eq!(after, general.snapshot(), "round {round}: the reply");
        assert_eq!(after.current, Some(VM_MANAGER));
        assert_eq!(after.top.x[..2], [0, 9]);
        assert_eq!(after.rx[VM_MANAGER][..9], answer);
    }
}
