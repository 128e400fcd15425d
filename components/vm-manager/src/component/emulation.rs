//! The emulated devices' MMIO path: a VM's trapped access to an emulated device (a PL011, a
//! guest's GIC), or the host's to the GIC and console UART it shares with guests, checked with
//! the MMIO guard and run on the device model. Also what the emulated consoles are typed and
//! the lines they write, their devices' reset, and the kernel operations the guests' emulated
//! GICs make.

use defmt::{debug, info, warn};
use hv_component_rt::Ipc;
use hv_component_rt::hv_component_config::{Region, System};
use hv_component_rt::hv_ipc::Client;
use hv_component_rt::hv_ipc::abi::{kernel_op, kernel_op_args};
use hv_component_rt::hv_ipc::addr::Ipa;
use hv_component_rt::hv_ipc::guest_abi::smccc;
use hv_component_rt::hv_ipc::interfaces::guest_trap::TrapResolution;
use hv_component_rt::hv_ipc::interfaces::mmio_guard::{
    MmioGuardInterface, MmioGuardReply, MmioGuardRequest,
};

use super::{TYPED_AHEAD, VmManager};
use crate::config::{self, EmulatedDevice};
use crate::console;
use crate::console_mux::{ConsoleMux, Route};
use crate::guard_cache::GuardCache;
use crate::host_gic::{self, HostGic};
use crate::mmio::{self, Refusal};
use crate::pl011::Pl011;
use crate::vgic::{self, Gics, Outcome};

impl VmManager {
    /// A trapped access to an emulated device: emulated, or refused (and logged).
    pub(super) fn mmio(
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
                if offset == UARTDR && value & 0xff == u64::from(crate::console_mux::SWITCH_KEY) {
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
        if let (Some(level), Some(intid)) = (uart.take_line_change(), emulated[index].interrupt) {
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

    /// Sends the partial console lines of VM `vm`'s devices (the VM is going away).
    pub(super) fn flush_consoles(&mut self, vm: u16) {
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
    pub(super) fn console_input(&mut self, regs: &[u64; 8]) -> TrapResolution {
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
    pub(super) fn reset_devices(&mut self, vm: u16) {
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
pub(super) struct Access {
    pub(super) vm: u16,
    pub(super) vcpu: u16,
    pub(super) ipa: Ipa,
    pub(super) size: u8,
    pub(super) write: bool,
    pub(super) value: u64,
}

/// The kernel operations the guests' emulated GICs need.
pub(super) struct KernelVirqs;

impl vgic::Kernel for KernelVirqs {
    fn inject(&mut self, vm: u16, vcpu: usize, irq: &hv_vgic::Pending) {
        let packed =
            kernel_op_args::interrupt(irq.intid, irq.priority, irq.group1, irq.source.unwrap_or(0));
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
pub(super) struct Devices<'a> {
    /// The devices, by index.
    pub(super) emulated: &'a [EmulatedDevice<'static>],
    /// Their models, by the same index.
    pub(super) uarts: &'a mut [Pl011],
    /// What was typed for each and does not fit its FIFO yet, by the same index.
    pub(super) typed_ahead: &'a mut [heapless::Deque<u8, TYPED_AHEAD>],
    /// When the MMIO guard must be asked first: what it allowed before.
    pub(super) mmio_guard: Option<&'a mut GuardCache>,
    /// The guests' emulated GICs.
    pub(super) gics: &'a mut Gics,
    /// The host's filtered GIC, when guests run beside it.
    pub(super) host_gic: Option<HostGic<'a>>,
    /// The shared console's keyboard, and the UART's registers.
    pub(super) console_mux: Option<&'a mut (ConsoleMux, Region)>,
}

/// The machine's console, for VMs' lines.
pub(super) struct Console<'a> {
    /// The system, for the VMs' names.
    pub(super) system: &'static System,
    /// CONSOLE_WRITE has been refused before.
    pub(super) failed: &'a mut bool,
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
