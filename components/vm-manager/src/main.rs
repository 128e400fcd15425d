//! The VM manager component: decides what guests' SMCCC calls mean, and emulates the devices
//! the manifest makes emulated.
//!
//! The kernel routes a guest's SMCCC call (HVC, or SMC trapped by HCR_EL2.TSC) to this
//! component as a `guest-trap` request, on the stopped vCPU's behalf; the component answers with
//! a `TrapResolution` the kernel carries out. The decisions live in [`policy`] (host-tested);
//! each PSCI call is logged with its name and result.
//!
//! A VM's accesses to an emulated device (its stage 2 leaves the device unmapped) arrive as
//! `GuestTrap::Mmio` (route `mmio`). The component finds the device ([`mmio`]), asks the
//! mmio-guard component whether the VM may make the access (when the system has one: then a
//! VM that enrolled must have MAPped the granule), and runs the device model ([`pl011`]), whose
//! console lines go to the machine's console with a `[<vm name>]` prefix ([`console`]) through
//! the CONSOLE_WRITE kernel operation. Anything else is refused with an external abort, and
//! logged. The VMs and devices come from the component's configuration ([`config`]).
//!
//! At boot, before the host's first instruction, the kernel notifies the component
//! (`NOTIFY_SYSTEM_STARTED`): it creates every guest VM of the configuration ([`guests`]):
//! the memory-protection component gives each its memslot and maps it in full, then the kernel
//! starts its vCPU 0 on its pinned CPU (VM_START). A guest's PSCI SYSTEM_RESET wipes its memory
//! (memory-protection component) and reloads its images (VM_LOAD) before the kernel restarts
//! it; its SYSTEM_OFF stops it alone.
//!
//! Test systems may arm a crash hook ([`crash_hook`]) and a grant probe ([`probe`]) through the
//! component's settings.
//!
//! Everything but the pure modules and the hook's settings exists only for
//! `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod config;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod console;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod console_mux;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod crash_hook;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod guard_cache;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod guests;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod host_gic;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod mmio;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod pl011;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod policy;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod probe;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod vgic;

#[cfg(target_os = "none")]
mod component {
    //! The component proper: the server loop around the policy and the device models.

    use defmt::{debug, info, warn};
    use hv_component_rt::hv_ipc::abi::{
        MESSAGE_MAX, NOTIFY_SYSTEM_STARTED, kernel_op, kernel_op_args,
    };
    use hv_component_rt::hv_ipc::addr::Ipa;
    use hv_component_rt::hv_ipc::guest_abi::{host, smccc};
    use hv_component_rt::hv_ipc::interfaces::guest_trap::{
        Conduit, GuestTrapInterface, GuestTrapServer, SgiRegister, TrapResolution, hot,
    };
    use hv_component_rt::hv_ipc::interfaces::mem_protect::{
        MemProtectInterface, MemProtectReply, MemProtectRequest,
    };
    use hv_component_rt::hv_ipc::interfaces::mmio_guard::{
        MmioGuardInterface, MmioGuardReply, MmioGuardRequest, NOTIFY_MMIO_GUARD_CHANGED,
    };
    use hv_component_rt::hv_ipc::interfaces::supervisor::{
        SupervisorInterface, SupervisorReply, SupervisorRequest,
    };
    use hv_component_rt::hv_ipc::lifecycle::{self, StateTag};
    use hv_component_rt::hv_ipc::{self, Client, ServedBy};
    use hv_component_rt::{Ipc, Server, StartInfo, SwapState, arch, serve_forever};

    use crate::config::{self, EmulatedDevice, MAX_EMULATED};
    use crate::console_mux::{ConsoleMux, Route};
    use crate::crash_hook::{self, CrashHook, CrashKind};
    use crate::guard_cache::GuardCache;
    use crate::guests::{self, Step};
    use crate::host_gic::{self, HostGic};
    use crate::mmio::{self, Refusal};
    use crate::pl011::Pl011;
    use crate::vgic::{self, Gics, Outcome};
    use crate::{console, policy};
    use hv_component_rt::hv_component_config::{Region, System};

    /// Bytes typed ahead for one emulated console (a pasted line or two).
    const TYPED_AHEAD: usize = 256;

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
            uarts: [const { Pl011::new() }; MAX_EMULATED],
            typed_ahead: [const { heapless::Deque::new() }; MAX_EMULATED],
            console_write_failed: false,
            guard_cache: GuardCache::new(),
            creating_guests: false,
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
        /// The state of each device of `emulated`, by index (all PL011s).
        uarts: [Pl011; MAX_EMULATED],
        /// Bytes typed for each emulated console that its receive FIFO had no room for yet,
        /// by the same index: given to it as the guest reads.
        typed_ahead: [heapless::Deque<u8, TYPED_AHEAD>; MAX_EMULATED],
        /// CONSOLE_WRITE was refused once (logged once; lines then go to the log).
        console_write_failed: bool,
        /// The MMIO guard's verdicts kept until it says they changed.
        guard_cache: GuardCache,
        /// The kernel said the system started: the guests are to be created (as soon as the
        /// component may make calls).
        creating_guests: bool,
        /// What became of each guest, for the host's HOST_VM_STATE.
        lifecycle: guests::Lifecycle,
        /// The guests' emulated interrupt controllers.
        gics: &'static mut Gics,
        /// The GIC ranges kept from the host (`System::host_filtered_gic_ranges`).
        host_filtered: heapless::Vec<
            Region,
            { hv_component_rt::hv_component_config::MAX_FILTERED_GIC_RANGES },
        >,
        /// Who has the keyboard of the shared console UART, and its registers (with guests whose
        /// consoles are emulated).
        console_mux: Option<(ConsoleMux, Region)>,
        /// CPUs pinned to guests, and every CPU of the system (bit n: CPU n).
        guest_cpus: u8,
        all_cpus: u8,
    }

    impl VmManager {
        /// Crashes here if the test hook says so for this request; for `misanswer`, returns
        /// the wrong answer to give instead. Inlined, so a system without a hook pays a
        /// test for it and no call.
        #[inline(always)]
        fn crash_hook(&self) -> Option<TrapResolution> {
            let hook = self.crash?;
            self.armed_crash_hook(hook)
        }

        #[inline(never)]
        fn armed_crash_hook(&self, hook: CrashHook) -> Option<TrapResolution> {
            if !crash_hook::fires(&hook, self.served, self.start_count) {
                return None;
            }
            warn!(
                "vm-manager: crash hook fires on request {=u64}: {=str}",
                self.served,
                crash_hook::kind_name(hook.kind)
            );
            match hook.kind {
                CrashKind::Undefined => arch::udf(),
                CrashKind::Read { address } => {
                    // SAFETY: Deliberately reads outside the component's region: the stage-2
                    // translation faults and the kernel stops the component, so the read never
                    // completes and nothing observes a value.
                    unsafe { core::ptr::read_volatile(address as *const u64) };
                    panic!("crash hook: read of {address:#x} did not fault");
                }
                CrashKind::Panic => panic!("crash hook: request {}", self.served),
                CrashKind::StackOverflow => {
                    let depth = crash_hook::overflow_stack(0);
                    panic!("crash hook: {depth} frames did not overflow the stack");
                }
                CrashKind::Misanswer => Some(TrapResolution::Resume),
            }
        }

        /// HYP_PING_SUPERVISOR: a call to the supervisor while serving the guest's call.
        fn ping_supervisor(ipc: &mut Ipc, nonce: u32) -> TrapResolution {
            let answer = Client::<SupervisorInterface, _>::new(&mut *ipc)
                .call(&SupervisorRequest::Ping { nonce });
            let x0 = match answer {
                Ok(SupervisorReply::Pong { nonce }) => u64::from(nonce),
                other => {
                    warn!(
                        "vm-manager: ping to the supervisor failed: {}",
                        defmt::Debug2Format(&other)
                    );
                    smccc::NOT_SUPPORTED as u64
                }
            };
            TrapResolution::results([x0, 0, 0, 0])
        }

        /// A trapped access to an emulated device: emulated, or refused (and logged).
        fn mmio(
            ipc: &mut Ipc,
            devices: Devices,
            access: Access,
            console: &mut Console,
        ) -> TrapResolution {
            match Self::emulate(ipc, devices, access, console) {
                Ok(resolution) => resolution,
                Err(refusal) => {
                    warn!(
                        "vm{=u16} vcpu{=u16}: MMIO {=str} of {=u8} bytes at {=u64:#x} refused: {=str}",
                        access.vm,
                        access.vcpu,
                        if access.write { "write" } else { "read" },
                        access.size,
                        access.ipa.0,
                        refusal.name()
                    );
                    TrapResolution::ExternalAbort
                }
            }
        }

        fn emulate(
            ipc: &mut Ipc,
            mut devices: Devices,
            access: Access,
            console: &mut Console,
        ) -> Result<TrapResolution, Refusal> {
            if access.vm == 0
                && let Some(answer) = Self::shared_console(&mut devices, access, console)
            {
                return answer;
            }
            if access.vm == 0
                && let Some(host_gic) = devices.host_gic
            {
                let decision = host_gic.decide(
                    access.ipa.0,
                    access.write.then_some(access.value),
                    access.vcpu,
                );
                let request = match decision {
                    host_gic::Decision::NotGic => None,
                    host_gic::Decision::Drop => {
                        debug!(
                            "host: GIC write of {=u64:#x} at {=u64:#x} dropped",
                            access.value, access.ipa.0
                        );
                        return Ok(TrapResolution::MmioWritten);
                    }
                    host_gic::Decision::Read => Some((false, 0)),
                    host_gic::Decision::Write(value) => Some((true, value)),
                };
                if let Some((write, value)) = request {
                    let address = kernel_op_args::access(access.ipa.0, access.size, write);
                    let [read, ..] =
                        hv_component_rt::kernel_op(kernel_op::GIC_ACCESS, [address, value, 0, 0])
                            .map_err(|_| Refusal::HostAccessRefused)?;
                    return Ok(if write {
                        TrapResolution::MmioWritten
                    } else {
                        TrapResolution::MmioRead { value: read }
                    });
                }
            }
            let located = mmio::locate(devices.emulated, access.vm, access.ipa, access.size);
            let gic_access = matches!(located, Err(Refusal::NoDevice))
                && devices.gics.layout().is_some()
                && access.vm != 0;
            if let Some(cache) = devices.mmio_guard.as_deref_mut()
                && gic_access
            {
                let len = u64::from(access.size);
                if !cache.allows(access.vm, access.ipa, len) && Self::ask_guard(ipc, access)? {
                    cache.remember(access.vm, access.ipa, len);
                }
            }
            if gic_access {
                let value = access.write.then_some(access.value);
                let outcome = devices.gics.access(
                    access.vm,
                    usize::from(access.vcpu),
                    access.ipa.0,
                    access.size,
                    value,
                    &mut KernelVirqs,
                );
                return match outcome {
                    None => Err(Refusal::NoDevice),
                    Some(Err(bad)) => Err(Refusal::Gic(bad)),
                    Some(Ok(Outcome::Read(value))) => Ok(TrapResolution::MmioRead { value }),
                    Some(Ok(Outcome::Written)) => Ok(TrapResolution::MmioWritten),
                };
            }
            let (index, offset) = located?;
            if let Some(cache) = devices.mmio_guard.as_deref_mut() {
                let len = u64::from(access.size);
                if !cache.allows(access.vm, access.ipa, len) && Self::ask_guard(ipc, access)? {
                    cache.remember(access.vm, access.ipa, len);
                }
            }
            let uart = devices.uarts.get_mut(index).ok_or(Refusal::NoDevice)?;
            let resolution = if access.write {
                uart.write(offset, access.size, access.value, |line| {
                    console.write_line(access.vm, line)
                })
                .map_err(Refusal::Device)?;
                TrapResolution::MmioWritten
            } else {
                let value = uart.read(offset, access.size).map_err(Refusal::Device)?;
                TrapResolution::MmioRead { value }
            };
            // What was typed ahead fills the room the guest's read made; the UART's interrupt line
            // drives the SPI the guest's DTB names.
            Self::give_typed(
                devices.uarts,
                devices.typed_ahead,
                devices.emulated,
                devices.gics,
                index,
            );
            Ok(resolution)
        }

        /// The host's access to the console UART it shares with guests (`None`: not that UART):
        /// passed through, but what was typed goes to the VM that has the keyboard.
        fn shared_console(
            devices: &mut Devices,
            access: Access,
            console: &mut Console,
        ) -> Option<Result<TrapResolution, Refusal>> {
            use crate::pl011::{FR_RXFE, UARTDR, UARTFR, UARTMIS, UARTRIS};
            /// UARTDR's framing-error flag: what the host reads for the switch key it typed.
            const DR_FE: u64 = 1 << 8;
            let (mux, region) = devices.console_mux.as_deref_mut()?;
            if !region.contains(access.ipa.0) {
                return None;
            }
            let offset = access.ipa.0 - region.base;
            // The host's own access keeps its size; the reads made for a guest are words.
            let uart = |offset: u64, size: u8, write: Option<u64>| {
                let address = kernel_op_args::access(region.base + offset, size, write.is_some());
                hv_component_rt::kernel_op(
                    kernel_op::CONSOLE_ACCESS,
                    [address, write.unwrap_or(0), 0, 0],
                )
                .map(|[value, ..]| value)
                .map_err(|_| Refusal::HostAccessRefused)
            };
            let reads_receive_state =
                !access.write && matches!(offset, UARTDR | UARTFR | UARTRIS | UARTMIS);
            // A guest has the keyboard: what waits in the UART is the guest's, taken before the
            // host looks (its receive interrupt then finds nothing).
            if reads_receive_state && mux.focus().is_some() {
                loop {
                    match uart(UARTFR, 4, None) {
                        Ok(flags) if flags & u64::from(FR_RXFE) == 0 => {}
                        Ok(_) => break,
                        Err(refusal) => return Some(Err(refusal)),
                    }
                    let byte = match uart(UARTDR, 4, None) {
                        Ok(data) => data as u8,
                        Err(refusal) => return Some(Err(refusal)),
                    };
                    match mux.route(byte) {
                        Route::Guest(vm) => {
                            if let Some(index) = devices.emulated.iter().position(|d| d.vm == vm) {
                                // Typed faster than a guest reads: kept (a full buffer drops the
                                // newest), given as its FIFO has room.
                                let _ = devices.typed_ahead[index].push_back(byte);
                                Self::give_typed(
                                    devices.uarts,
                                    devices.typed_ahead,
                                    devices.emulated,
                                    devices.gics,
                                    index,
                                );
                            }
                        }
                        Route::Switched(to) => {
                            console.keyboard_moved(to);
                            // Back to the host: the rest is the host's to read.
                            if to.is_none() {
                                break;
                            }
                        }
                        Route::Host => break,
                    }
                }
            }
            let resolution = if access.write {
                let value = access.value & ((1 << (u32::from(access.size) * 8)) - 1);
                uart(offset, access.size, Some(value)).map(|_| TrapResolution::MmioWritten)
            } else {
                uart(offset, access.size, None).map(|value| {
                    if offset == UARTDR && value & 0xff == u64::from(crate::console_mux::SWITCH_KEY)
                    {
                        // The host had the keyboard and typed the switch key: not its byte.
                        let to = match mux.route(value as u8) {
                            Route::Switched(to) => to,
                            _ => None,
                        };
                        console.keyboard_moved(to);
                        TrapResolution::MmioRead { value: DR_FE }
                    } else {
                        TrapResolution::MmioRead { value }
                    }
                })
            };
            Some(resolution)
        }

        /// Moves what was typed for emulated console `index` into its receive FIFO while it has
        /// room, and drives its interrupt line.
        fn give_typed(
            uarts: &mut [Pl011],
            typed_ahead: &mut [heapless::Deque<u8, TYPED_AHEAD>],
            emulated: &[EmulatedDevice<'static>],
            gics: &mut Gics,
            index: usize,
        ) {
            let uart = &mut uarts[index];
            while uart.can_receive() {
                let Some(byte) = typed_ahead[index].pop_front() else {
                    break;
                };
                let _ = uart.receive(byte);
            }
            if let (Some(level), Some(intid)) = (uart.take_line_change(), emulated[index].interrupt)
            {
                gics.set_line(emulated[index].vm, intid, level, &mut KernelVirqs);
            }
        }

        /// Asks the MMIO guard whether the access may be emulated; `Ok(true)` if the "yes" may
        /// be kept. Fails closed: no clear yes is a no.
        fn ask_guard(ipc: &mut Ipc, access: Access) -> Result<bool, Refusal> {
            let answer =
                Client::<MmioGuardInterface, _>::new(&mut *ipc).call(&MmioGuardRequest::Check {
                    vm: access.vm,
                    ipa: access.ipa,
                    len: u64::from(access.size),
                });
            match answer {
                Ok(MmioGuardReply::Verdict {
                    allowed: true,
                    cacheable,
                    ..
                }) => Ok(cacheable),
                Ok(MmioGuardReply::Verdict {
                    allowed: false,
                    enrolled,
                    ..
                }) => {
                    debug!(
                        "vm{=u16}: MMIO guard refuses {=u64:#x} (enrolled: {=bool})",
                        access.vm, access.ipa.0, enrolled
                    );
                    Err(Refusal::GuardRefused)
                }
                Err(error) => {
                    warn!(
                        "vm-manager: MMIO guard check failed: {}",
                        defmt::Debug2Format(&error)
                    );
                    Err(Refusal::GuardUnavailable)
                }
            }
        }

        /// An SMCCC call other than HYP_PING_SUPERVISOR: decided by the policy, and logged.
        fn smccc(&mut self, vm: u16, vcpu: u16, regs: [u64; 8]) -> TrapResolution {
            // Only guests share memory; the host owns its own.
            let services = policy::Services {
                mem_share: self.services.mem_share && vm != 0,
                ..self.services
            };
            let resolution = policy::decide(&regs, services);
            let function = regs[0] as u32;
            // Calls that change a CPU's or the VM's state are logged; queries (VERSION,
            // FEATURES, AFFINITY_INFO, unknown IDs) only at debug level, so a guest polling
            // them does not flood the log. (Names and summaries are made only for a line that
            // is logged: a query is on the hypercall's hot path.)
            let changes_state = !matches!(resolution, TrapResolution::Return { .. });
            if changes_state && let Some(name) = policy::psci_function_name(function) {
                let (kind, value) = policy::summarize(&resolution);
                info!(
                    "vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) -> {=str} {=u64:#x}",
                    vm, vcpu, name, function, kind, value
                );
            } else {
                let (_kind, _value) = policy::summarize(&resolution);
                debug!(
                    "vm{=u16} vcpu{=u16}: {=str} ({=u32:#x}) -> {=str} {=u64:#x}",
                    vm,
                    vcpu,
                    policy::psci_function_name(function).unwrap_or(policy::function_name(function)),
                    function,
                    _kind,
                    _value
                );
            }
            // The VM is going away: its console's last, unfinished line goes out now.
            if matches!(
                resolution,
                TrapResolution::SystemOff | TrapResolution::SystemReset
            ) {
                self.flush_consoles(vm);
            }
            resolution
        }

        /// Creates and starts every guest VM, once, if the kernel asked for it.
        #[cold]
        fn create_guests(&mut self, ipc: &mut Ipc) {
            if !core::mem::take(&mut self.creating_guests) {
                return;
            }
            // A GICv2 guest's CPU interface is GICV, mapped where the board has GICC.
            let virtual_cpu_interface = self
                .gics
                .layout()
                .filter(|layout| layout.version == hv_vgic::Version::V2)
                .map(|layout| (layout.cpu_interface.base, layout.virtual_cpu_interface));
            for vm in guests::guests(self.system) {
                if let Err(why) = Self::create_guest(ipc, vm, virtual_cpu_interface) {
                    self.lifecycle.failed(vm.id);
                    warn!(
                        "vm-manager: guest VM {=u16} {=str} not created: {=str}",
                        vm.id,
                        vm.name.as_str(),
                        why
                    );
                    continue;
                }
                match hv_component_rt::kernel_op(kernel_op::VM_START, [u64::from(vm.id), 0, 0, 0]) {
                    Ok([0, ..]) => {
                        self.lifecycle.running(vm.id);
                        info!(
                            "vm-manager: guest VM {=u16} {=str} started",
                            vm.id,
                            vm.name.as_str()
                        );
                    }
                    Ok([status, ..]) => warn!(
                        "vm-manager: guest VM {=u16} {=str}: its CPU did not start ({=i64})",
                        vm.id,
                        vm.name.as_str(),
                        status as i64
                    ),
                    Err(error) => warn!(
                        "vm-manager: guest VM {=u16} {=str}: VM_START refused ({=i64})",
                        vm.id,
                        vm.name.as_str(),
                        error.code()
                    ),
                }
            }
        }

        /// Gives guest `vm` its memory and devices through the memory-protection component.
        fn create_guest(
            ipc: &mut Ipc,
            vm: &hv_component_rt::hv_component_config::Vm,
            virtual_cpu_interface: Option<(u64, Region)>,
        ) -> Result<(), &'static str> {
            for step in guests::plan(vm, virtual_cpu_interface) {
                let request = match step {
                    Step::Memslot { ipa, pa, size } => MemProtectRequest::AddMemslot {
                        vm: vm.id,
                        ipa,
                        pa,
                        size,
                    },
                    Step::Device { ipa, pa, size } => MemProtectRequest::MapDevice {
                        vm: vm.id,
                        ipa,
                        pa,
                        size,
                    },
                };
                let answer = Client::<MemProtectInterface, _>::new(&mut *ipc).call(&request);
                match answer {
                    Ok(MemProtectReply::Done { leaves }) => info!(
                        "vm-manager: vm{=u16}: {} mapped ({=u64} leaves)",
                        vm.id,
                        defmt::Debug2Format(&step),
                        leaves
                    ),
                    Ok(MemProtectReply::Refused { reason }) => {
                        warn!(
                            "vm-manager: vm{=u16}: {} refused: {}",
                            vm.id,
                            defmt::Debug2Format(&step),
                            defmt::Debug2Format(&reason)
                        );
                        return Err("the memory-protection component refused its memory");
                    }
                    Err(error) => {
                        warn!(
                            "vm-manager: vm{=u16}: mem-protect call failed: {}",
                            vm.id,
                            defmt::Debug2Format(&error)
                        );
                        return Err("the memory-protection component could not be called");
                    }
                }
            }
            Ok(())
        }

        /// Takes in what the kernel knows of guest `vm` (if it is one): a guest the kernel
        /// reports stopped (after HOST_VM_STOP, or a trap nothing could answer) is off.
        fn refresh_guest_state(&mut self, vm: u64) {
            let Some(vm) = guests::guest_id(self.system, vm) else {
                return;
            };
            if let Ok([_, 1, _]) =
                hv_component_rt::kernel_op(kernel_op::VM_STATUS, [u64::from(vm), 0, 0, 0])
            {
                self.lifecycle.off(vm);
            }
        }

        /// HOST_VM_STOP: guest `vm` stops (at once, or as its vCPUs next exit). Returns the
        /// code for the host's x0.
        fn stop_guest(&mut self, vm: u64) -> i64 {
            let Some(vm) = guests::guest_id(self.system, vm) else {
                return smccc::INVALID_PARAMETER;
            };
            match hv_component_rt::kernel_op(kernel_op::VM_STOP, [u64::from(vm), 0, 0, 0]) {
                Ok([stopped, ..]) => {
                    info!(
                        "vm-manager: vm{=u16} stopped for the host{=str}",
                        vm,
                        if stopped == 1 {
                            ""
                        } else {
                            " (as its vCPUs next exit)"
                        }
                    );
                    if stopped == 1 {
                        self.lifecycle.off(vm);
                    }
                    smccc::SUCCESS
                }
                Err(error) => {
                    warn!(
                        "vm-manager: vm{=u16}: VM_STOP refused ({=i64})",
                        vm,
                        error.code()
                    );
                    smccc::NOT_SUPPORTED
                }
            }
        }

        /// HOST_VM_RESTART: guest `vm`, off, is wiped, reloaded and started afresh. Returns the
        /// code for the host's x0.
        fn restart_guest(&mut self, ipc: &mut Ipc, vm: u64) -> i64 {
            let Some(vm) = guests::guest_id(self.system, vm) else {
                return smccc::INVALID_PARAMETER;
            };
            if !self.lifecycle.is_off(vm) {
                return host::code::VM_RUNNING;
            }
            self.reset_devices(vm);
            if Self::reset_guest(ipc, vm) != TrapResolution::SystemReset {
                return smccc::NOT_SUPPORTED;
            }
            match hv_component_rt::kernel_op(kernel_op::VM_START, [u64::from(vm), 0, 0, 0]) {
                Ok([0, ..]) => {
                    self.lifecycle.running(vm);
                    info!("vm-manager: vm{=u16} restarted for the host", vm);
                    smccc::SUCCESS
                }
                other => {
                    warn!(
                        "vm-manager: vm{=u16} could not be started again: {}",
                        vm,
                        defmt::Debug2Format(&other)
                    );
                    self.lifecycle.failed(vm);
                    smccc::NOT_SUPPORTED
                }
            }
        }

        /// Wipes guest `vm`'s memory and reloads its images for its SYSTEM_RESET; on failure
        /// the VM cannot start afresh and is stopped instead.
        fn reset_guest(ipc: &mut Ipc, vm: u16) -> TrapResolution {
            let wiped = Client::<MemProtectInterface, _>::new(&mut *ipc)
                .call(&MemProtectRequest::WipeVm { vm });
            if !matches!(wiped, Ok(MemProtectReply::Done { .. })) {
                warn!(
                    "vm-manager: vm{=u16}: wipe failed ({}); the VM is stopped",
                    vm,
                    defmt::Debug2Format(&wiped)
                );
                return TrapResolution::SystemOff;
            }
            if let Err(error) =
                hv_component_rt::kernel_op(kernel_op::VM_LOAD, [u64::from(vm), 0, 0, 0])
            {
                warn!(
                    "vm-manager: vm{=u16}: VM_LOAD refused ({=i64}); the VM is stopped",
                    vm,
                    error.code()
                );
                return TrapResolution::SystemOff;
            }
            info!("vm-manager: vm{=u16}: memory wiped and images reloaded", vm);
            TrapResolution::SystemReset
        }

        /// Sends the partial console lines of VM `vm`'s devices (the VM is going away).
        fn flush_consoles(&mut self, vm: u16) {
            let mut console = Console {
                system: self.system,
                failed: &mut self.console_write_failed,
            };
            for (device, uart) in self.emulated.iter().zip(self.uarts.iter_mut()) {
                if device.vm == vm {
                    uart.flush(|line| console.write_line(vm, line));
                }
            }
        }

        /// HOST_VM_CONSOLE_INPUT: the host types x2 bytes (x3, then x4) into guest x1's
        /// console; its UART takes what its receive FIFO holds and raises its interrupt line.
        fn console_input(&mut self, regs: &[u64; 8]) -> TrapResolution {
            let refused = TrapResolution::results([smccc::INVALID_PARAMETER as u64, 0, 0, 0]);
            let (Ok(vm), Ok(count)) = (u16::try_from(regs[1]), usize::try_from(regs[2])) else {
                return refused;
            };
            let console = self
                .emulated
                .iter()
                .position(|device| device.vm == vm && vm != 0);
            let (Some(index), true) = (console, count <= 16) else {
                return refused;
            };
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&regs[3].to_le_bytes());
            bytes[8..].copy_from_slice(&regs[4].to_le_bytes());
            let uart = &mut self.uarts[index];
            let taken = bytes[..count]
                .iter()
                .take_while(|&&byte| uart.receive(byte).is_ok())
                .count();
            if let (Some(level), Some(intid)) =
                (uart.take_line_change(), self.emulated[index].interrupt)
            {
                self.gics.set_line(vm, intid, level, &mut KernelVirqs);
            }
            TrapResolution::results([smccc::SUCCESS as u64, taken as u64, 0, 0])
        }

        /// Guest `vm` starts afresh: what its devices hold from its last run (a partial line
        /// included) goes out, and they are back in their reset state.
        fn reset_devices(&mut self, vm: u16) {
            self.flush_consoles(vm);
            self.gics.reset(vm);
            for ((device, uart), typed) in self
                .emulated
                .iter()
                .zip(self.uarts.iter_mut())
                .zip(self.typed_ahead.iter_mut())
            {
                if device.vm == vm {
                    *uart = Pl011::new();
                    typed.clear();
                }
            }
        }
    }

    /// A trapped MMIO access, as [`GuestTrap::Mmio`] describes it.
    #[derive(Clone, Copy)]
    struct Access {
        vm: u16,
        vcpu: u16,
        ipa: Ipa,
        size: u8,
        write: bool,
        value: u64,
    }

    /// The kernel operations the guests' emulated GICs need.
    struct KernelVirqs;

    impl vgic::Kernel for KernelVirqs {
        fn inject(&mut self, vm: u16, vcpu: usize, irq: &hv_vgic::Pending) {
            let packed = kernel_op_args::interrupt(
                irq.intid,
                irq.priority,
                irq.group1,
                irq.source.unwrap_or(0),
            );
            let target = kernel_op_args::vcpu(vm, vcpu as u16);
            if let Err(error) =
                hv_component_rt::kernel_op(kernel_op::VIRQ_INJECT, [target, packed, 0, 0])
            {
                warn!(
                    "vm-manager: vm{=u16} vcpu{=usize}: VIRQ_INJECT of INTID {=u32} refused ({=i64})",
                    vm,
                    vcpu,
                    irq.intid,
                    error.code()
                );
            }
        }

        fn timer(&mut self, vm: u16, vcpu: usize, delivery: Option<(u8, bool)>) {
            let configuration = delivery.map_or(0, |(priority, group1)| {
                kernel_op_args::TIMER_ENABLED | kernel_op_args::interrupt(0, priority, group1, 0)
            });
            let target = kernel_op_args::vcpu(vm, vcpu as u16);
            if let Err(error) =
                hv_component_rt::kernel_op(kernel_op::VIRQ_TIMER, [target, configuration, 0, 0])
            {
                warn!(
                    "vm-manager: vm{=u16} vcpu{=usize}: VIRQ_TIMER refused ({=i64})",
                    vm,
                    vcpu,
                    error.code()
                );
            }
        }
    }

    /// The emulated devices and their models, for one access.
    struct Devices<'a> {
        /// The devices, by index.
        emulated: &'a [EmulatedDevice<'static>],
        /// Their models, by the same index.
        uarts: &'a mut [Pl011],
        /// What was typed for each and does not fit its FIFO yet, by the same index.
        typed_ahead: &'a mut [heapless::Deque<u8, TYPED_AHEAD>],
        /// When the MMIO guard must be asked first: what it allowed before.
        mmio_guard: Option<&'a mut GuardCache>,
        /// The guests' emulated GICs.
        gics: &'a mut Gics,
        /// The host's filtered GIC, when guests run beside it.
        host_gic: Option<HostGic<'a>>,
        /// The shared console's keyboard, and the UART's registers.
        console_mux: Option<&'a mut (ConsoleMux, Region)>,
    }

    /// The machine's console, for VMs' lines.
    struct Console<'a> {
        /// The system, for the VMs' names.
        system: &'static System,
        /// CONSOLE_WRITE has been refused before.
        failed: &'a mut bool,
    }

    impl Console<'_> {
        /// Says on the console who has the keyboard now (`None`: the host).
        fn keyboard_moved(&mut self, to: Option<u16>) {
            self.write_line(
                to.unwrap_or(0),
                b"(the keyboard is here now; Ctrl-] moves it on)",
            );
        }

        /// Writes VM `vm`'s `line` to the machine's console as `[<name>] <line>\r\n`; if the
        /// kernel refuses (the manifest does not grant console-write), to the log instead.
        fn write_line(&mut self, vm: u16, line: &[u8]) {
            let mut out = [0u8; console::OUTPUT_MAX];
            let len = console::format_line(vm, config::vm_name(self.system, vm), line, &mut out);
            let bytes = &out[..len];
            // The buffer is on this component's stack, inside its region, as the kernel
            // requires; with the EL1 MMU off every store has reached memory before the HVC.
            let written = hv_component_rt::kernel_op(
                kernel_op::CONSOLE_WRITE,
                [bytes.as_ptr() as u64, len as u64, 0, 0],
            );
            if let Err(error) = written {
                if !*self.failed {
                    *self.failed = true;
                    warn!(
                        "vm-manager: CONSOLE_WRITE refused ({=i64}); VM console lines go to the log",
                        error.code()
                    );
                }
                info!("vm{=u16} console: {=[u8]:a}", vm, line);
            }
        }
    }

    /// The VM manager while it serves one call, with the IPC token: serving a guest trap may
    /// call the supervisor or the MMIO guard.
    struct Serving<'a> {
        manager: &'a mut VmManager,
        ipc: &'a mut Ipc,
    }

    impl Serving<'_> {
        /// Our own vendor-hypervisor calls: the supervisor ping, and the host's calls on guest
        /// VMs (from the host only). `None`: not one of ours, for the policy to answer.
        #[inline(always)]
        fn vendor_call(&mut self, vm: u16, regs: &[u64; 8]) -> Option<TrapResolution> {
            let code = match regs[0] as u32 {
                host::HYP_PING_SUPERVISOR => {
                    return Some(VmManager::ping_supervisor(self.ipc, regs[1] as u32));
                }
                host::HOST_VM_STATE if vm == 0 => {
                    self.manager.refresh_guest_state(regs[1]);
                    let state = self.manager.lifecycle.state(self.manager.system, regs[1]);
                    let regs = match state {
                        Some((state, starts)) => [smccc::SUCCESS as u64, state, starts, 0],
                        None => [smccc::INVALID_PARAMETER as u64, 0, 0, 0],
                    };
                    return Some(TrapResolution::results(regs));
                }
                host::HOST_VM_RESTART if vm == 0 => {
                    self.manager.refresh_guest_state(regs[1]);
                    self.manager.restart_guest(self.ipc, regs[1])
                }
                host::HOST_VM_STOP if vm == 0 => self.manager.stop_guest(regs[1]),
                host::HOST_VM_CONSOLE_INPUT if vm == 0 => {
                    return Some(self.manager.console_input(regs));
                }
                _ => return None,
            };
            Some(TrapResolution::results([code as u64, 0, 0, 0]))
        }
    }

    impl GuestTrapServer for Serving<'_> {
        fn smccc(
            &mut self,
            vm: u16,
            vcpu: u16,
            _conduit: Conduit,
            regs: [u64; 8],
        ) -> TrapResolution {
            self.manager.served += 1;
            if let Some(answer) = self.vendor_call(vm, &regs) {
                return answer;
            }
            if let Some(wrong) = self.manager.crash_hook() {
                return wrong;
            }
            let resolution = self.manager.smccc(vm, vcpu, regs);
            if vm == 0 {
                return resolution;
            }
            // A guest resets alone: its memory is wiped and reloaded before the kernel
            // restarts it. (The host's reset ends the run.)
            if resolution == TrapResolution::SystemReset {
                self.manager.reset_devices(vm);
                let resolution = VmManager::reset_guest(self.ipc, vm);
                if resolution == TrapResolution::SystemOff {
                    self.manager.lifecycle.off(vm);
                } else {
                    self.manager.lifecycle.running(vm);
                }
                return resolution;
            }
            if resolution == TrapResolution::SystemOff {
                self.manager.lifecycle.off(vm);
            }
            resolution
        }

        fn sgi_write(
            &mut self,
            vm: u16,
            vcpu: u16,
            register: SgiRegister,
            value: u64,
        ) -> TrapResolution {
            let manager = &mut *self.manager;
            manager.served += 1;
            // One security state: ICC_SGI1R_EL1 is how a guest sends; group 0 and the other
            // security state's SGIs reach no vCPU (as on a GIC whose guest SGIs are group 1).
            let sent = register == SgiRegister::Sgi1r
                && manager
                    .gics
                    .send_sgi(vm, usize::from(vcpu), value, &mut KernelVirqs);
            if !sent {
                debug!(
                    "vm{=u16} vcpu{=u16}: SGI register write {=u64:#x} reaches no vCPU",
                    vm, vcpu, value
                );
            }
            TrapResolution::MmioWritten
        }

        fn mmio(
            &mut self,
            vm: u16,
            vcpu: u16,
            ipa: Ipa,
            size: u8,
            write: bool,
            value: u64,
        ) -> TrapResolution {
            let manager = &mut *self.manager;
            manager.served += 1;
            if let Some(wrong) = manager.crash_hook() {
                return wrong;
            }
            let access = Access {
                vm,
                vcpu,
                ipa,
                size,
                write,
                value,
            };
            let mut console = Console {
                system: manager.system,
                failed: &mut manager.console_write_failed,
            };
            let devices = Devices {
                emulated: &manager.emulated,
                uarts: &mut manager.uarts,
                typed_ahead: &mut manager.typed_ahead,
                mmio_guard: manager
                    .services
                    .mmio_guard
                    .then_some(&mut manager.guard_cache),
                host_gic: match (manager.gics.layout(), manager.host_filtered.first()) {
                    (Some(layout), Some(&distributor)) => Some(HostGic {
                        version: layout.version,
                        distributor,
                        filtered: &manager.host_filtered,
                        guest_cpus: manager.guest_cpus,
                        all_cpus: manager.all_cpus,
                    }),
                    _ => None,
                },
                gics: &mut *manager.gics,
                console_mux: manager.console_mux.as_mut(),
            };
            VmManager::mmio(self.ipc, devices, access, &mut console)
        }
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
            // Guests not yet created (the start notification came with this call): now, with
            // the request safely out of RX.
            if self.creating_guests {
                self.create_guests(ipc);
            }
            let answer = call.map(|request| {
                GuestTrapInterface::serve(&mut Serving { manager: self, ipc }, request)
            });
            hot::encode_answer(&answer, ipc.tx())
        }

        fn handle_notification(&mut self, bits: u64) {
            if bits & NOTIFY_MMIO_GUARD_CHANGED != 0 {
                self.guard_cache.clear();
            }
            if bits & NOTIFY_SYSTEM_STARTED != 0 {
                self.creating_guests = true;
            }
        }

        fn handle_notification_alone(&mut self, ipc: &mut Ipc, bits: u64) {
            self.handle_notification(bits);
            self.create_guests(ipc);
        }

        /// With only the host, the state is this instance's counters (the host's vCPUs and
        /// their power state are the kernel's). Guest VMs' emulated devices (vGIC, UARTs,
        /// lifecycle) are not handed over yet: with guests, a swap is refused before anything
        /// changes (docs/hot-swap.md).
        fn swap_state(&self) -> SwapState {
            if self.system.vms.iter().any(|vm| !vm.host) {
                SwapState::NotSwappable
            } else {
                SwapState::Keeps {
                    schema: STATE_SCHEMA,
                    version: 1,
                }
            }
        }

        fn interface_schema(&self) -> u64 {
            <GuestTrapInterface as hv_ipc::Interface>::SCHEMA_HASH
        }

        fn export_state(&mut self, out: &mut [u8]) -> Option<usize> {
            let state = HandOver {
                served: self.served,
                console_write_failed: self.console_write_failed,
            };
            postcard::to_slice(&state, out)
                .ok()
                .map(|bytes| bytes.len())
        }

        fn import_state(&mut self, tag: StateTag, state: &[u8]) -> Result<(), lifecycle::Refusal> {
            if tag.schema == 0 && state.is_empty() {
                // The old build kept nothing: start as at boot.
                return Ok(());
            }
            if (tag.schema, tag.version) != (STATE_SCHEMA, 1) {
                return Err(lifecycle::Refusal::State);
            }
            let state: HandOver =
                postcard::from_bytes(state).map_err(|_| lifecycle::Refusal::State)?;
            info!(
                "vm-manager: taken over after {=u64} guest-trap requests",
                state.served
            );
            self.served = state.served;
            self.console_write_failed = state.console_write_failed;
            Ok(())
        }
    }

    /// What the VM manager hands over in a swap (host-only systems).
    #[derive(serde::Serialize, serde::Deserialize)]
    struct HandOver {
        served: u64,
        console_write_failed: bool,
    }

    /// [`HandOver`]'s schema hash.
    const STATE_SCHEMA: u64 =
        hv_ipc::schema_hash("HandOver { served: u64, console_write_failed: bool }");
}

#[cfg(not(target_os = "none"))]
fn main() {}
