//! The component proper: the server loop around the policy and the device models.
//!
//! This file holds the component's state ([`VmManager`]), its start (`main`) and the server
//! loop (`impl Server`: calls, notifications, the state handed over in a swap). The rest of
//! the component is split by concern: serving a guest trap ([`serving`]), creating, resetting
//! and stopping the guest VMs ([`guest_vms`]), and the emulated devices' MMIO path
//! ([`emulation`]).

mod emulation;
mod guest_vms;
mod serving;

use defmt::{info, warn};
use hv_component_rt::hv_ipc::abi::{MESSAGE_MAX, NOTIFY_SYSTEM_STARTED};
use hv_component_rt::hv_ipc::interfaces::guest_trap::{GuestTrapInterface, hot};
use hv_component_rt::hv_ipc::interfaces::mmio_guard::NOTIFY_MMIO_GUARD_CHANGED;
use hv_component_rt::hv_ipc::lifecycle::{self, StateTag};
use hv_component_rt::hv_ipc::{self, ServedBy};
use hv_component_rt::{Ipc, Server, StartInfo, SwapState, arch, serve_forever};

use crate::config::{self, EmulatedDevice, MAX_EMULATED};
use crate::console_mux::ConsoleMux;
use crate::crash_hook::{self, CrashHook};
use crate::guard_cache::GuardCache;
use crate::guests;
use crate::handover::{self, TYPED_AHEAD};
use crate::pl011::Pl011;
use crate::policy;
use crate::vgic::{self, Gics};
use hv_component_rt::hv_component_config::{Region, System};
use serving::Serving;

/// The guests' emulated GICs: several KiB each, more than the stack holds.
static mut GUEST_GICS: Gics = Gics::EMPTY;

hv_component_rt::component_main!(main);

fn main(info: StartInfo, mut ipc: Ipc) -> ! {
    info!(
        "vm-manager: component {=usize} up (start {=u64})",
        info.index, info.start_count
    );
    let configuration = hv_component_rt::config();
    let system = &configuration.system;
    let settings = configuration.settings.vm_manager();
    let emulated = config::emulated_devices(system);
    for device in &emulated {
        info!(
            "vm-manager: vm{=u16} {=str}: emulated pl011 at {=u64:#x}..{=u64:#x}",
            device.vm,
            device.name,
            device.base,
            device.end()
        );
    }
    let mmio_guard = config::has_mmio_guard(system);
    if mmio_guard {
        info!("vm-manager: emulated accesses are checked with the mmio-guard component");
    }
    if let Some(hook) = settings.crash {
        info!(
            "vm-manager: crash hook: {=str} on request {=u32} (armed: {=bool})",
            crash_hook::kind_name(hook.kind),
            hook.on_call,
            info.start_count == 0
        );
    }
    if settings.probe_grants {
        crate::probe::run(&mut ipc);
    }
    let gic_layout = vgic::layout(system, arch::has_gic_system_registers());
    match &gic_layout {
        Some(layout) => info!(
            "vm-manager: guests' GIC: {}, distributor at {=u64:#x}",
            defmt::Debug2Format(&layout.version),
            layout.distributor.base
        ),
        None => {
            warn!("vm-manager: the configuration describes no GIC: guests get no interrupts")
        }
    }
    let host_filtered = system.host_filtered_gic_ranges();
    if let Some(first) = host_filtered.first() {
        info!(
            "vm-manager: the host's accesses to the GIC distributor at {=u64:#x} (and guest CPUs' redistributors: {=usize} range(s)) are filtered",
            first.base,
            host_filtered.len() - 1
        );
    }
    let cpu_mask = |host: bool| {
        system
            .vms
            .iter()
            .filter(|vm| vm.host == host)
            .flat_map(|vm| vm.cpus.iter())
            .fold(0u8, |mask, &cpu| {
                mask | 1u8.checked_shl(u32::from(cpu)).unwrap_or(0)
            })
    };
    let (guest_cpus, host_cpus) = (cpu_mask(false), cpu_mask(true));
    let console_mux = system.host_console_mux();
    // The guests whose consoles are emulated, in order: who the keyboard moves to.
    let guest_consoles = emulated
        .iter()
        .filter(|device| device.vm != 0)
        .map(|device| device.vm)
        .collect::<heapless::Vec<u16, MAX_EMULATED>>();
    if let Some(console) = console_mux {
        info!(
            "vm-manager: the console UART at {=u64:#x} is shared: Ctrl-] moves the keyboard between the host and each guest",
            console.base
        );
    }
    let mut server = VmManager {
        system,
        emulated,
        services: policy::Services {
            mmio_guard,
            mem_share: config::shares_guest_memory(system),
        },
        crash: settings.crash,
        start_count: info.start_count,
        served: 0,
        hook_requests: 0,
        uarts: [const { Pl011::new() }; MAX_EMULATED],
        typed_ahead: [const { heapless::Deque::new() }; MAX_EMULATED],
        console_write_failed: false,
        guard_cache: GuardCache::new(),
        // A restart after a fault (not a swap's new instance, whose hand-over replaces this)
        // finds the guests as the last instance left them, without their emulated state.
        guest_work: if info.start_count > 0 && guests::guests(system).next().is_some() {
            guests::GuestWork::Recover
        } else {
            guests::GuestWork::Idle
        },
        lifecycle: guests::Lifecycle::new(),
        host_filtered,
        console_mux: console_mux.map(|region| (ConsoleMux::new(guest_consoles), region)),
        guest_cpus,
        all_cpus: guest_cpus | host_cpus,
        gics: {
            let gics = &raw mut GUEST_GICS;
            // SAFETY: `main` runs once per start and is the only code that names the
            // static; the reference lives for the rest of the component's life.
            let gics = unsafe { &mut *gics };
            gics.set_up(system, gic_layout);
            gics
        },
    };
    serve_forever(&mut ipc, &mut server)
}

struct VmManager {
    /// The system, from the configuration.
    system: &'static System,
    /// The devices this component emulates.
    emulated: heapless::Vec<EmulatedDevice<'static>, MAX_EMULATED>,
    /// What the rest of the system serves, for the discovery calls.
    services: policy::Services,
    /// The test crash hook, if the settings arm one.
    crash: Option<CrashHook>,
    /// The instance's start count (x3 at entry), for the crash hook.
    start_count: u64,
    /// guest-trap requests this instance has taken.
    served: u64,
    /// Requests the crash hook counted (with `on-function`: calls of that function).
    hook_requests: u64,
    /// The state of each device of `emulated`, by index (all PL011s).
    uarts: [Pl011; MAX_EMULATED],
    /// Bytes typed for each emulated console that its receive FIFO had no room for yet,
    /// by the same index: given to it as the guest reads.
    typed_ahead: [heapless::Deque<u8, TYPED_AHEAD>; MAX_EMULATED],
    /// CONSOLE_WRITE was refused once (logged once; lines then go to the log).
    console_write_failed: bool,
    /// The MMIO guard's verdicts kept until it says they changed.
    guard_cache: GuardCache,
    /// Guest work waiting for the next request (creating them at the system's start,
    /// recovering them after a restart), as soon as the component may make calls.
    guest_work: guests::GuestWork,
    /// What became of each guest, for the host's HOST_VM_STATE.
    lifecycle: guests::Lifecycle,
    /// The guests' emulated interrupt controllers.
    gics: &'static mut Gics,
    /// The GIC ranges kept from the host (`System::host_filtered_gic_ranges`).
    host_filtered:
        heapless::Vec<Region, { hv_component_rt::hv_component_config::MAX_FILTERED_GIC_RANGES }>,
    /// Who has the keyboard of the shared console UART, and its registers (with guests whose
    /// consoles are emulated).
    console_mux: Option<(ConsoleMux, Region)>,
    /// CPUs pinned to guests, and every CPU of the system (bit n: CPU n).
    guest_cpus: u8,
    all_cpus: u8,
}

impl Server for VmManager {
    // Inlined into the runtime's loop: its prologue and epilogue were a tenth of the
    // component's share of a hypercall.
    #[inline(always)]
    fn serve_call(&mut self, ipc: &mut Ipc, _sender: u64, interface: u16, len: usize) -> usize {
        // Serving may call another component, which writes TX and overwrites RX: the request
        // is decoded (copied) out of RX first, and the reply encoded into TX last.
        // SMCCC calls and their results by hand (`guest_trap::hot`), the rest as usual.
        let call = hot::decode_call(interface, &ipc.rx()[..len.min(MESSAGE_MAX)]);
        // Guests not yet created (the start notification came with this call) or to recover
        // after a restart: now, with the request safely out of RX.
        if self.guest_work != guests::GuestWork::Idle {
            self.guest_work(ipc);
        }
        let answer = call
            .map(|request| GuestTrapInterface::serve(&mut Serving { manager: self, ipc }, request));
        hot::encode_answer(&answer, ipc.tx())
    }

    fn handle_notification(&mut self, bits: u64) {
        if bits & NOTIFY_MMIO_GUARD_CHANGED != 0 {
            self.guard_cache.clear();
        }
        if bits & NOTIFY_SYSTEM_STARTED != 0 {
            self.guest_work = guests::GuestWork::Create;
        }
    }

    fn handle_notification_alone(&mut self, ipc: &mut Ipc, bits: u64) {
        self.handle_notification(bits);
        self.guest_work(ipc);
    }

    /// Everything this component emulates and remembers, guests included (`handover`); the
    /// host's vCPUs, the guests' vCPUs and memory are the kernel's and mem-protect's.
    fn swap_state(&self) -> SwapState {
        SwapState::Keeps {
            schema: handover::SCHEMA,
            version: handover::VERSION,
        }
    }

    fn interface_schema(&self) -> u64 {
        <GuestTrapInterface as hv_ipc::Interface>::SCHEMA_HASH
    }

    fn export_state(&mut self, out: &mut [u8]) -> Option<usize> {
        self.kept().export(out)
    }

    fn import_state(&mut self, tag: StateTag, state: &[u8]) -> Result<(), lifecycle::Refusal> {
        if tag.schema == 0 && state.is_empty() {
            // The old build kept nothing: start as at boot.
            return Ok(());
        }
        let system = self.system;
        let taken = match (tag.schema, tag.version) {
            (handover::SCHEMA, handover::VERSION) => self.kept().import(state),
            (handover::SCHEMA_V1, 1) => self.kept().import_v1(system, state),
            _ => {
                warn!(
                    "vm-manager: a swap hands over state {=u64:#x} v{=u32}, not ours",
                    tag.schema, tag.version
                );
                return Err(lifecycle::Refusal::State);
            }
        };
        if taken.is_err() {
            warn!("vm-manager: the state handed over is not one this configuration could have");
            return Err(lifecycle::Refusal::State);
        }
        info!(
            "vm-manager: taken over after {=u64} guest-trap requests, with {=usize} guest VM(s) and {=usize} emulated device(s)",
            self.served,
            guests::guests(system).count(),
            self.emulated.len()
        );
        Ok(())
    }
}

impl VmManager {
    /// The state a swap hands over, borrowed.
    fn kept(&mut self) -> handover::Kept<'_> {
        let emulated = self.emulated.len();
        handover::Kept {
            served: &mut self.served,
            console_write_failed: &mut self.console_write_failed,
            guest_work: &mut self.guest_work,
            lifecycle: &mut self.lifecycle,
            keyboard: self.console_mux.as_mut().map(|(mux, _)| mux),
            devices: &self.emulated,
            uarts: &mut self.uarts[..emulated],
            typed_ahead: &mut self.typed_ahead[..emulated],
            gics: self.gics,
        }
    }
}
