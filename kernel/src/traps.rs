//! What the kernel does when a guest traps to EL2: decode, count, act, resume.
//!
//! The kernel decides nothing here: it sends each guest trap to the component the route table
//! names and carries out the
//! [`TrapResolution`](hv_ipc::interfaces::guest_trap::TrapResolution) it answers. SMCCC calls
//! (HVC, trapped SMC) go to the VM manager (or the component a function-ID range names); data
//! aborts on emulated device pages go to the `mmio` route's taker; the host's other stage-2
//! faults go to the component that builds the host's stage 2 (mem-protect), which maps the
//! page and has the vCPU resume, or has an abort injected. The vCPU's trap stays pending until
//! the answer, which `hv_kernel::pending` checks against the trap; an answer that does not
//! fit, or a trap whose component is stopped for good, stops the VM. Anything else a guest
//! cannot do becomes an UNDEFINED instruction exception. Traps from components are their
//! system calls or faults (see [`components`]). A guest's SMCCC HVC to a free component, its
//! REPLY with the results, and calls between components take a fast path first
//! (`hv_kernel::worlds::fast`; docs/ipc.md has the figures).

use crate::arch::{self, GuestFrame};
use crate::components::{self, Here};

use crate::guests;
use crate::interrupts;
use hv_abi::ExitStatus;
use hv_ipc::abi;
use hv_ipc::addr::Ipa;
use hv_ipc::guest_abi::smccc;
use hv_ipc::interfaces::guest_trap::{self, Conduit, GuestTrap, GuestTrapInterface, SgiRegister};
use hv_kernel::esr::{DataAbort, Syndrome, Trap, ec};
use hv_kernel::inject::{self, AbortKind, InjectedException};
use hv_kernel::pending::{self, PendingTrap, TrapKind};
use hv_kernel::profile::Point;
#[cfg(feature = "profile")]
use hv_kernel::profile::Stopwatch;
#[cfg(feature = "profile")]
use hv_kernel::trap_stats::MAX_CPUS;
use hv_kernel::trap_stats::{TrapClass, TrapCounters};
use hv_kernel::worlds::{self, CallError};

mod decisions;
use decisions::apply_decision;
/// The host VM's id in guest-trap messages; guests are 1 and up.
const HOST_VM: u16 = 0;

/// Trap counts of the whole run, reported when it ends.
pub static COUNTERS: TrapCounters = TrapCounters::new();

/// Exception kinds as the vectors in entry.S number them.
const KIND_SYNC: u64 = 0;
const KIND_IRQ: u64 = 1;
const KIND_FIQ: u64 = 2;
const KIND_AARCH32: u64 = 4;

/// Called by entry.S for every exception from a guest or a component (whose registers it saved
/// into that world's frame); returns the frame of the world to resume, which is then on top of
/// this CPU.
#[unsafe(no_mangle)]
extern "C" fn handle_guest_exit(kind: u64) -> *mut GuestFrame {
    let mut here = components::here();
    if !(kind == KIND_SYNC && fast_path(&mut here)) {
        handle(&mut here, kind);
    }
    let frame = here.resume_frame();
    arch::set_current_frame(frame);
    frame
}

/// The fast path (`hv_kernel::worlds::fast`): a vCPU's SMCCC call by HVC to a free component
/// and that component's REPLY with the call's results, and CALL and REPLY between components,
/// with nothing else done on the way.
/// `false`, having changed nothing, for every other trap, which [`handle`] takes.
#[inline(always)]
fn fast_path(here: &mut Here) -> bool {
    if Syndrome(arch::syndrome()).class() != ec::HVC64 {
        return false;
    }
    let cpu = arch::cpu_index();
    match here.current() {
        None => {
            let (vm, vcpu) = here.vcpu();
            if vm != HOST_VM && guests::must_stop(vm, usize::from(vcpu)) {
                return false;
            }
            let entered = stamp();
            let retry_pc = here.frame().elr - 4;
            if !here.fast_smccc_call(retry_pc) {
                return false;
            }
            checkpoint_at(cpu, Point::TrapEntered, entered);
            COUNTERS.record(cpu, TrapClass::Hvc);
            if let Some(component) = here.current() {
                checkpoint(cpu, Point::ComponentEntered(component));
            }
        }
        Some(_) => {
            // Read now, recorded only if the fast path takes the call (the general path
            // records its own).
            let exited = stamp();
            if !(here.fast_reply_to_vcpu() || here.fast_call_or_reply()) {
                return false;
            }
            checkpoint_at(cpu, Point::ComponentExited, exited);
            COUNTERS.record(cpu, TrapClass::ComponentSyscall);
            if here.current().is_none() {
                checkpoint(cpu, Point::GuestResumed);
                before_resuming_vcpu(here, cpu);
            }
        }
    }
    true
}

#[inline(always)]
fn handle(here: &mut Here, kind: u64) {
    let cpu = arch::cpu_index();
    if kind != KIND_SYNC && kind != KIND_AARCH32 {
        // A guest vCPU runs with IMO/FMO set: a physical interrupt on its CPU. The host runs
        // with them clear, and components too but while their CPU's deadline is armed (a
        // swap). An SError is only counted.
        COUNTERS.record(cpu, TrapClass::Interrupt);
        if kind == KIND_IRQ && here.current().is_some() {
            here.component_interrupted();
            return;
        }
        if kind == KIND_IRQ || kind == KIND_FIQ {
            interrupts::take_physical(cpu);
            stop_if_its_vm_stops(here);
            interrupts::before_resuming_vcpu(cpu);
        }
        return;
    }
    let component = here.current();
    let from_component = component.is_some();
    checkpoint(
        cpu,
        if from_component {
            Point::ComponentExited
        } else {
            Point::TrapEntered
        },
    );
    let esr = arch::syndrome();
    if Syndrome(esr).class() == ec::HVC64 {
        // The hot path (a component's system call, a guest's hypercall) needs nothing but the
        // syndrome's class.
        match component {
            Some(_) => {
                COUNTERS.record(cpu, TrapClass::ComponentSyscall);
                here.syscall();
            }
            None => {
                COUNTERS.record(cpu, TrapClass::Hvc);
                stop_if_its_vm_stops(here);
                let retry_pc = here.frame().elr - 4;
                route_smccc(here, Conduit::Hvc, retry_pc);
            }
        }
    } else {
        other_trap(here, cpu, kind, component, esr);
    }
    // A component may just have answered this CPU's vCPU (which is back on top now): what
    // only sets the vCPU's registers is done already (`worlds`' REPLY), the rest is here.
    if let Some((pending, decision)) = here.take_vcpu_answer() {
        let vcpu = here.vcpu();
        apply_decision(here.frame(), cpu, vcpu, &pending, decision);
        checkpoint(cpu, Point::GuestResumed);
    } else if cfg!(feature = "profile") {
        match (from_component, here.current()) {
            (false, Some(component)) => checkpoint(cpu, Point::ComponentEntered(component)),
            (_, None) => checkpoint(cpu, Point::GuestResumed),
            (true, Some(_)) => {}
        }
    }
    // Only a pass that resumes the vCPU has more to do (a component's turn comes first).
    if here.current().is_none() {
        before_resuming_vcpu(here, cpu);
    }
}

/// The last steps of a pass that resumes this CPU's vCPU.
#[inline(always)]
fn before_resuming_vcpu(here: &mut Here, cpu: usize) {
    // Hot-swap's control line, at most every few milliseconds and only between calls (a load
    // and a branch when it is off). The supervisor may run now and take the CPU.
    if crate::control::poll_due() && crate::control::input_waiting() {
        here.notify_supervisor(abi::NOTIFY_CONTROL_INPUT);
    }
    // Virtual interrupts made pending meanwhile reach the vCPU's list registers (a load and a
    // branch on CPUs that have none); if the supervisor took the CPU, the pass that resumes
    // the vCPU after it does this.
    interrupts::before_resuming_vcpu(cpu);
}

/// Every trap but an HVC: decoded in full.
fn other_trap(here: &mut Here, cpu: usize, kind: u64, component: Option<usize>, esr: u64) {
    let (far, hpfar) = arch::fault_addresses();
    // Meaningful for stage-2 aborts only; decoded once here for every use below.
    let ipa = Ipa::of_fault(hpfar, far);
    let trap = Syndrome(esr).decode();
    COUNTERS.record(cpu, class_of(&trap));
    if let Some(component) = component {
        component_trap(here, component, trap, esr, ipa);
    } else if kind == KIND_AARCH32 {
        defmt::error!(
            "cpu{=usize}: AArch32 guest state, which is not supported",
            cpu
        );
        crate::end_run(ExitStatus::HypervisorFault);
    } else {
        vcpu_trap(here, cpu, trap, esr, far, ipa);
    }
}

/// Each CPU's trap-path stopwatch (the `profile` feature, for `cargo xtask bench`).
#[cfg(feature = "profile")]
static STOPWATCHES: [spin::Mutex<Stopwatch>; MAX_CPUS] =
    [const { spin::Mutex::new(Stopwatch::new()) }; MAX_CPUS];

/// Reads the counter at `point` (with the `profile` feature; otherwise nothing).
#[inline(always)]
fn checkpoint(cpu: usize, point: Point) {
    checkpoint_at(cpu, point, stamp());
}

/// The counter now, for [`checkpoint_at`] (with the `profile` feature; otherwise 0).
#[inline(always)]
fn stamp() -> u64 {
    if cfg!(feature = "profile") {
        arch::counter().0
    } else {
        0
    }
}

/// Records `point` as reached when the counter read `at` (with the `profile` feature;
/// otherwise nothing).
#[inline(always)]
fn checkpoint_at(cpu: usize, point: Point, at: u64) {
    #[cfg(feature = "profile")]
    STOPWATCHES[cpu].lock().record(point, at);
    #[cfg(not(feature = "profile"))]
    let _ = (cpu, point, at);
}

/// Reports where the instructions of component-answered traps went (the `profile` feature):
/// counter ticks per phase, summed, for traps answered directly and after nested calls.
fn report_profile() {
    #[cfg(feature = "profile")]
    for (cpu, watch) in STOPWATCHES.iter().enumerate() {
        let watch = *watch.lock();
        for (kind, name) in [
            (hv_kernel::profile::DIRECT, "direct"),
            (hv_kernel::profile::NESTED, "nested"),
            (hv_kernel::profile::OTHER, "other"),
        ] {
            if watch.traps[kind] == 0 {
                continue;
            }
            let [dispatch, component, ret] = watch.totals[kind];
            defmt::info!(
                "trap-profile cpu={=usize} answer={=str} traps={=u64} kernel-dispatch={=u64} component={=u64} kernel-return={=u64}",
                cpu,
                name,
                watch.traps[kind],
                dispatch,
                component,
                ret
            );
        }
        for (id, &(traps, ticks)) in watch.by_component.iter().enumerate() {
            if traps != 0 {
                defmt::info!(
                    "trap-profile-by cpu={=usize} component={=str} traps={=u64} ticks={=u64}",
                    cpu,
                    components::name(id),
                    traps,
                    ticks
                );
            }
        }
    }
}

/// A trap from a component: its system calls, or a fault that stops it.
fn component_trap(here: &mut Here, component: usize, trap: Trap, esr: u64, ipa: Ipa) {
    match trap {
        Trap::Hvc { .. } => here.syscall(),
        Trap::DataAbort(_) | Trap::InstructionAbort(_) => {
            defmt::error!(
                "component {=str} touched IPA {=u64:#x} outside its memory (pc {=u64:#x})",
                components::name(component),
                ipa.0,
                here.frame().elr
            );
            here.fault(esr);
        }
        _ => {
            defmt::error!(
                "component {=str}: forbidden instruction (ESR {=u64:#x}) at pc {=u64:#x}",
                components::name(component),
                esr,
                here.frame().elr
            );
            here.fault(esr);
        }
    }
}

/// A trap from this CPU's vCPU (the host's or a guest's).
fn vcpu_trap(here: &mut Here, cpu: usize, trap: Trap, esr: u64, far: u64, ipa: Ipa) {
    stop_if_its_vm_stops(here);
    let vm = here.vcpu().0;
    match trap {
        // HVC returns after the call; the retry point is the HVC itself.
        Trap::Hvc { .. } => {
            let retry_pc = here.frame().elr - 4;
            route_smccc(here, Conduit::Hvc, retry_pc);
        }
        Trap::Smc { .. } => {
            // A trapped SMC returns to the SMC itself; the call is done once answered.
            let frame = here.frame();
            let retry_pc = frame.elr;
            frame.elr += 4;
            route_smccc(here, Conduit::Smc, retry_pc);
        }
        Trap::DataAbort(abort) if vm == HOST_VM && crate::boot::is_emulated(ipa) => {
            route_mmio(here, cpu, &abort, ipa, far);
        }
        Trap::DataAbort(_) | Trap::InstructionAbort(_) if vm == HOST_VM => {
            route_stage2_fault(here, cpu, &trap, esr, far, ipa);
        }
        // A guest's memory is mapped in full before it runs, so its stage-2 faults are all
        // outside its RAM: accesses to devices (emulated, or nothing) go to the component
        // that emulates devices, which answers with the data or an external abort.
        Trap::DataAbort(abort) => route_mmio(here, cpu, &abort, ipa, far),
        Trap::InstructionAbort(_) => {
            let frame = here.frame();
            let injected = inject::external_abort(
                AbortKind::Instruction,
                far,
                frame.elr,
                frame.spsr,
                arch::guest_vbar(),
            );
            inject_into(frame, injected);
        }
        Trap::SysReg(access)
            if vm != HOST_VM && access.read && matches!(access.encoding, (3, 0, 0, 1..=7, _)) =>
        {
            // An ID register read (HCR_EL2.TID3, set to hide MTE): the hardware's value with
            // what the VM may not use taken out.
            let (_, _, _, crm, op2) = access.encoding;
            let raw = arch::read_id_register(crm, op2);
            let value =
                hv_kernel::controls::guest_id_register(crm, op2, raw, guests::may_use_tags(vm));
            let frame = here.frame();
            if let Some(register) = frame.x.get_mut(usize::from(access.register)) {
                *register = value;
            }
            frame.elr += 4;
        }
        Trap::SysReg(access) if vm != HOST_VM && !access.read => {
            match sgi_register(access.encoding) {
                Some(register) => route_sgi_write(here, cpu, register, access.register),
                None => undefined_trap(here, cpu, esr),
            }
        }
        Trap::Wfx { wfe: false } if vm == HOST_VM && crate::control::on() => host_idle(here),
        Trap::SysReg(_) | Trap::Wfx { .. } | Trap::Other { .. } => undefined_trap(here, cpu, esr),
    }
}

/// An idle host CPU's WFI (trapped while hot-swap's control line is on): the supervisor is
/// told if bytes wait on the line; otherwise the CPU waits here for the host's next interrupt,
/// as the WFI would have. Either way the WFI is done (a WFI may always return early).
fn host_idle(here: &mut Here) {
    here.frame().elr += 4;
    if crate::control::input_waiting() {
        here.notify_supervisor(abi::NOTIFY_CONTROL_INPUT);
    } else {
        arch::wait_for_interrupt();
    }
}

/// Anything a guest cannot do: an UNDEFINED instruction exception, logged.
fn undefined_trap(here: &mut Here, cpu: usize, esr: u64) {
    let frame = here.frame();
    defmt::warn!(
        "cpu{=usize}: unexpected trap (ESR {=u64:#x}) at pc {=u64:#x}: undefined instruction injected",
        cpu,
        esr,
        frame.elr
    );
    inject_undefined(frame);
}

/// The GICv3 SGI register with this encoding (op0, op1, CRn, CRm, op2), if it is one: a
/// guest's write of one traps while its interrupts are virtual.
fn sgi_register(encoding: (u8, u8, u8, u8, u8)) -> Option<SgiRegister> {
    match encoding {
        (3, 0, 12, 11, 5) => Some(SgiRegister::Sgi1r),
        (3, 1, 12, 11, 6) => Some(SgiRegister::Asgi1r),
        (3, 2, 12, 11, 7) => Some(SgiRegister::Sgi0r),
        _ => None,
    }
}

/// Sends a guest's SGI register write to the component that emulates its GIC (the `mmio`
/// route); without one, the write is UNDEFINED, as for any register nothing emulates.
fn route_sgi_write(here: &mut Here, cpu: usize, register: SgiRegister, source: u8) {
    let (vm, vcpu) = here.vcpu();
    let Some(server) = components::mmio_route() else {
        undefined_trap(here, cpu, arch::syndrome());
        return;
    };
    let frame = here.frame();
    let value = frame.x.get(usize::from(source)).copied().unwrap_or(0);
    let trap = GuestTrap::SgiWrite {
        vm,
        vcpu,
        register,
        value,
    };
    let pending = PendingTrap {
        kind: TrapKind::SgiWrite,
        retry_pc: frame.elr,
    };
    if send_guest_trap(here, server, &trap, pending) == Sent::Unencodable {
        inject_undefined(here.frame());
    }
}

/// A guest vCPU whose VM is stopping (powered off from another of its vCPUs, or stopped by the
/// host) stops at this exit, its trap unanswered. The host's vCPUs pay one compare.
#[inline(always)]
fn stop_if_its_vm_stops(here: &Here) {
    let (vm, vcpu) = here.vcpu();
    if vm != HOST_VM && guests::must_stop(vm, usize::from(vcpu)) {
        guests::stop_for_vm(vm, usize::from(vcpu));
    }
}

/// What became of a guest trap sent to a component.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The component now runs on this CPU; its reply comes back through `apply_resolution`.
    Delivered,
    /// The component is stopped and not yet restarted: the vCPU was put back on its retry
    /// point, so it traps again later (re-delivery).
    Stopped,
    /// The trap does not encode (cannot happen for the fixed-size messages; handled anyway).
    Unencodable,
}

/// Sends `trap` to component `server` on behalf of this CPU's vCPU, trapped on `pending`; the
/// request is encoded straight into the component's RX buffer. A server that is stopped for
/// good (never to be restarted) can never answer: the VM stops.
#[inline(always)]
fn send_guest_trap(here: &mut Here, server: usize, trap: &GuestTrap, pending: PendingTrap) -> Sent {
    let encode = |buffer: &mut worlds::MessageBuffer, _: &GuestFrame| {
        hv_ipc::encode_request::<GuestTrapInterface>(trap, buffer).ok()
    };
    send_encoded(here, server, encode, pending)
}

/// [`send_guest_trap`] with the request written by `encode` (from the vCPU's registers).
#[inline(always)]
fn send_encoded(
    here: &mut Here,
    server: usize,
    encode: impl FnOnce(&mut worlds::MessageBuffer, &GuestFrame) -> Option<usize>,
    pending: PendingTrap,
) -> Sent {
    match here.call_from_vcpu(server, abi::interface::GUEST_TRAP, encode, pending) {
        Ok(()) => Sent::Delivered,
        Err(CallError::Retired) => {
            let vcpu = here.vcpu();
            defmt::error!(
                "{=str} VM stopped: its {=str} goes to component {=str}, which faulted and is never restarted",
                vm_name(vcpu.0),
                pending.kind.name(),
                components::name(server)
            );
            stop_vm(vcpu);
        }
        Err(CallError::Stopped) => {
            here.frame().elr = pending.retry_pc;
            Sent::Stopped
        }
        Err(CallError::Unencodable) => Sent::Unencodable,
    }
}

/// Sends an SMCCC call to the component the route table names; without one, every function is
/// NOT_SUPPORTED.
#[inline(always)]
fn route_smccc(here: &mut Here, conduit: Conduit, retry_pc: u64) {
    let frame = here.frame();
    let Some(server) = components::smccc_route(frame.x[0] as u32) else {
        frame.x[0] = smccc::NOT_SUPPORTED as u64;
        return;
    };
    let (vm, vcpu) = here.vcpu();
    // GuestTrap::Smccc, written from the vCPU's x0..x7 where they lie.
    let encode = |buffer: &mut worlds::MessageBuffer, vcpu_frame: &GuestFrame| {
        let regs = vcpu_frame.x.first_chunk::<8>()?;
        Some(guest_trap::hot::encode_smccc(
            buffer, vm, vcpu, conduit, regs,
        ))
    };
    let pending = PendingTrap {
        kind: TrapKind::Smccc,
        retry_pc,
    };
    if send_encoded(here, server, encode, pending) == Sent::Unencodable {
        here.frame().x[0] = smccc::NOT_SUPPORTED as u64;
    }
}

/// Sends a VM's access to an emulated device to the component the route table names. Accesses
/// the syndrome does not describe (ISV = 0: the register or size is unknown) are never
/// emulated by guessing at the instruction: the guest gets an external abort.
fn route_mmio(here: &mut Here, cpu: usize, abort: &DataAbort, ipa: Ipa, far: u64) {
    let (vm, vcpu) = here.vcpu();
    let frame = here.frame();
    let server = components::mmio_route();
    let (Some(server), true) = (server, abort.valid_syndrome) else {
        defmt::warn!(
            "cpu{=usize}: access to emulated IPA {=u64:#x} without a full syndrome (pc {=u64:#x}): external abort injected",
            cpu,
            ipa.0,
            frame.elr
        );
        inject_abort(frame, abort.write, far);
        return;
    };
    let value = match frame.x.get(usize::from(abort.register)) {
        Some(&register) if abort.write => pending::stored_value(abort, register),
        _ => 0,
    };
    // GuestTrap::Mmio, written by hand.
    let (size, write) = (abort.access_size, abort.write);
    let encode = |rx: &mut worlds::MessageBuffer, _: &GuestFrame| {
        Some(guest_trap::hot::encode_mmio(
            rx,
            (vm, vcpu),
            ipa,
            size,
            write,
            value,
        ))
    };
    // The faulting instruction is the retry point: it has not executed.
    let pending = PendingTrap {
        kind: TrapKind::Mmio { abort: *abort, far },
        retry_pc: frame.elr,
    };
    if send_encoded(here, server, encode, pending) == Sent::Unencodable {
        inject_abort(here.frame(), abort.write, far);
    }
}

/// Sends a host stage-2 fault to the component that builds the host's stage 2. The faulting
/// instruction is the retry point: with `Resume` (now mapped) or a stopped server, it runs again.
fn route_stage2_fault(here: &mut Here, cpu: usize, trap: &Trap, esr: u64, far: u64, ipa: Ipa) {
    let Some(server) = components::host_stage2_route() else {
        // Boot refuses a system without one; were it missing, nothing could answer.
        defmt::error!(
            "host VM stopped: no component builds its stage 2 (stage-2 fault at {=u64:#x})",
            ipa.0
        );
        crate::end_run(ExitStatus::VmStopped);
    };
    let (write, instruction) = match trap {
        Trap::DataAbort(abort) => (abort.write, false),
        _ => (false, true),
    };
    let frame = here.frame();
    let fault = GuestTrap::Stage2Fault {
        vm: HOST_VM,
        vcpu: cpu as u16,
        ipa,
        far,
        write,
        instruction,
        from_el0: frame.spsr & 0xf == 0,
    };
    let pending = PendingTrap {
        kind: TrapKind::Stage2Fault { esr, far },
        retry_pc: frame.elr,
    };
    if send_guest_trap(here, server, &fault, pending) == Sent::Unencodable {
        let frame = here.frame();
        let injected = inject::host_abort(esr, far, frame.elr, frame.spsr, arch::guest_vbar());
        inject_into(frame, injected);
    }
}

fn inject_abort(frame: &mut GuestFrame, write: bool, far: u64) {
    let injected = inject::external_abort(
        AbortKind::Data { write },
        far,
        frame.elr,
        frame.spsr,
        arch::guest_vbar(),
    );
    inject_into(frame, injected);
}

/// VM `vm`'s name for logs: "host", or the guest's.
fn vm_name(vm: u16) -> &'static str {
    if vm == HOST_VM {
        "host"
    } else {
        guests::name(vm)
    }
}

/// Stops VM `vm` after its vCPU `vcpu` on this CPU made a trap nothing will answer: a guest
/// stops alone; the host's end ends the run.
fn stop_vm((vm, vcpu): (u16, u16)) -> ! {
    if vm == HOST_VM {
        crate::end_run(ExitStatus::VmStopped);
    }
    guests::stop(vm, usize::from(vcpu), "a trap of its could not be answered")
}

fn inject_undefined(frame: &mut GuestFrame) {
    inject_into(
        frame,
        inject::undefined_instruction(frame.elr, frame.spsr, arch::guest_vbar()),
    );
}

fn class_of(trap: &Trap) -> TrapClass {
    match trap {
        Trap::Hvc { .. } => TrapClass::Hvc,
        Trap::Smc { .. } => TrapClass::Smc,
        Trap::DataAbort(_) => TrapClass::DataAbort,
        Trap::InstructionAbort(_) => TrapClass::InstructionAbort,
        Trap::SysReg(_) => TrapClass::SysReg,
        Trap::Wfx { .. } => TrapClass::Wfx,
        Trap::Other { .. } => TrapClass::Other,
    }
}

fn inject_into(frame: &mut GuestFrame, injected: Result<InjectedException, inject::InjectError>) {
    match injected {
        Ok(injected) => {
            arch::write_guest_exception(&injected);
            frame.elr = injected.pc;
            frame.spsr = injected.pstate;
        }
        Err(error) => {
            defmt::error!(
                "cannot inject into the guest: {}",
                defmt::Debug2Format(&error)
            );
            crate::end_run(ExitStatus::HypervisorFault);
        }
    }
}

/// Reports the non-zero trap counters (the benchmark parses these lines), and the trap-path
/// profile when the kernel has one.
pub fn report_counters() {
    report_profile();
    for cpu in 0..hv_kernel::trap_stats::MAX_CPUS {
        let total: u64 = TrapClass::ALL
            .iter()
            .map(|&class| COUNTERS.get(cpu, class))
            .sum();
        if total == 0 {
            continue;
        }
        for class in TrapClass::ALL
            .into_iter()
            .filter(|&class| COUNTERS.get(cpu, class) != 0)
        {
            defmt::info!(
                "trap-count cpu={=usize} class={=str} count={=u64}",
                cpu,
                class.name(),
                COUNTERS.get(cpu, class)
            );
        }
    }
    let delivered = interrupts::delivered();
    if delivered != 0 {
        defmt::info!("virq-count delivered={=u64}", delivered);
    }
}
