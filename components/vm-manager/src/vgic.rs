//! The guests' emulated interrupt controllers: one [`hv_vgic::Distributor`] per guest VM,
//! reached by its accesses to the GIC distributor (and GICv3 redistributor) addresses the
//! board's DTB gives it, and what the kernel must be told after each change: which virtual
//! interrupts to make pending on which vCPU (VIRQ_INJECT) and how the guest set up its virtual
//! timer's PPI (VIRQ_TIMER; the kernel forwards the timer itself). Pure logic, host-tested; the
//! component passes a [`Kernel`] that makes the kernel operations.
//!
//! Why here, not in a `vgic` component of its own: the VM manager owns the VMs, their vCPUs
//! and their other emulated devices (the PL011 raises its SPI here), and a guest touches its
//! distributor while it configures interrupts, rarely afterwards. A separate component would
//! add an IPC hop to every such access and a protocol between the two for device lines.
//!
//! The guest's CPU interface is the hardware's virtual interface: acknowledging and completing
//! interrupts never reach this module. So the model hands an interrupt to the kernel once and
//! forgets it (the kernel's list registers keep its pending and active state): a guest reading
//! GICD_ISPENDR or GICD_ISACTIVER sees an interrupt as pending only until it is delivered.

use hv_component_config::{MAX_VMS, Region, System};
use hv_ipc::lifecycle::{BadState, StateReader, StateWriter};
use hv_vgic::{BadAccess, Changes, Distributor, Frame, LrState, Pending, Version};

/// Most guest VMs.
pub const MAX_GUESTS: usize = MAX_VMS - 1;

/// What the VM manager asks of the kernel for the guests' interrupts.
pub trait Kernel {
    /// VIRQ_INJECT: makes the interrupt pending on vCPU `vcpu` of guest `vm`.
    fn inject(&mut self, vm: u16, vcpu: usize, irq: &Pending);
    /// VIRQ_TIMER: vCPU `vcpu`'s timer PPI is enabled with this priority and group, or
    /// disabled (`None`).
    fn timer(&mut self, vm: u16, vcpu: usize, delivery: Option<(u8, bool)>);
}

/// Where the guests see their GIC (the board's layout, of the version the CPU has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// GICv2 or GICv3.
    pub version: Version,
    /// GICD.
    pub distributor: Region,
    /// GICv3: the redistributors (one frame per vCPU from the start).
    pub redistributors: Region,
    /// GICv3: bytes per redistributor frame.
    pub stride: u64,
    /// GICv2: the CPU interface a guest sees (GICV mapped there).
    pub cpu_interface: Region,
    /// GICv2: the virtual CPU interface's physical address.
    pub virtual_cpu_interface: Region,
    /// The virtual timer's PPI.
    pub timer: u32,
}

/// The layout guests see: the board's GICv3 if the CPU has the GIC system registers, else its
/// GICv2. `None` if the configuration describes no such GIC.
pub fn layout(system: &System, gic_system_registers: bool) -> Option<Layout> {
    let wanted = if gic_system_registers { 3 } else { 2 };
    let gic = system.gics.iter().find(|gic| gic.version == wanted)?;
    Some(Layout {
        version: if wanted == 3 {
            Version::V3
        } else {
            Version::V2
        },
        distributor: gic.distributor,
        redistributors: gic.redistributors,
        stride: gic.redistributor_stride,
        cpu_interface: gic.cpu_interface,
        virtual_cpu_interface: gic.virtual_cpu_interface,
        timer: gic.virtual_timer,
    })
}

/// One guest's distributor and what the kernel was last told about it.
#[derive(Debug, PartialEq, Eq)]
struct GuestGic {
    vm: u16,
    model: Distributor,
    /// The timer delivery last told to the kernel, by vCPU (`None`: disabled, as the kernel
    /// and the model start).
    timer_told: [Option<(u8, bool)>; hv_vgic::MAX_VCPUS],
}

/// Every guest's emulated GIC.
#[derive(Debug, PartialEq, Eq)]
pub struct Gics {
    layout: Option<Layout>,
    guests: heapless::Vec<GuestGic, MAX_GUESTS>,
}

/// What an access was, for the component's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read, with its value.
    Read(u64),
    /// A write, taken.
    Written,
}

impl Gics {
    /// No guest GIC yet. The component keeps its `Gics` in a static (several KiB per guest,
    /// more than its stack holds) and sets it up with [`Gics::set_up`].
    pub const EMPTY: Self = Self {
        layout: None,
        guests: heapless::Vec::new(),
    };

    /// One emulated GIC per guest of `system` (each with as many vCPUs as the guest has).
    /// Built in place, one guest at a time.
    pub fn set_up(&mut self, system: &System, layout: Option<Layout>) {
        self.layout = layout;
        self.guests.clear();
        let Some(layout) = layout else { return };
        for vm in system.vms.iter().filter(|vm| !vm.host) {
            let Ok(model) = Distributor::new(layout.version, vm.cpus.len()) else {
                continue;
            };
            let _ = self.guests.push(GuestGic {
                vm: vm.id,
                model,
                timer_told: [None; hv_vgic::MAX_VCPUS],
            });
        }
    }

    /// The layout guests see, if they have a GIC.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// Which frame of guest `vm`'s GIC holds `ipa`, and the offset in it; `None` if `ipa` is
    /// not a GIC address or `vm` has no emulated GIC. GICv3 redistributor frames past the
    /// guest's vCPUs are `Redistributor(n)` too (the model answers them as absent).
    fn locate(&self, vm: u16, ipa: u64) -> Option<(usize, Frame, u64)> {
        let layout = self.layout.as_ref()?;
        let index = self.guests.iter().position(|guest| guest.vm == vm)?;
        if layout.distributor.contains(ipa) {
            return Some((index, Frame::Gicd, ipa - layout.distributor.base));
        }
        if layout.version == Version::V3
            && layout.stride != 0
            && layout.redistributors.contains(ipa)
        {
            let offset = ipa - layout.redistributors.base;
            let vcpu = (offset / layout.stride) as usize;
            return Some((index, Frame::Redistributor(vcpu), offset % layout.stride));
        }
        None
    }

    /// A trapped access of guest `vm`'s vCPU `vcpu` at `ipa`: `None` if it is not for the GIC;
    /// otherwise its outcome, or why it is refused (the guest gets an external abort). After a
    /// write, the kernel is told what changed.
    pub fn access(
        &mut self,
        vm: u16,
        vcpu: usize,
        ipa: u64,
        size: u8,
        write: Option<u64>,
        kernel: &mut impl Kernel,
    ) -> Option<Result<Outcome, BadAccess>> {
        let (index, frame, offset) = self.locate(vm, ipa)?;
        let timer = self.layout.as_ref()?.timer;
        let guest = &mut self.guests[index];
        if let Frame::Redistributor(owner) = frame
            && owner >= guest.model.nr_vcpus()
        {
            // Past the last redistributor (whose GICR_TYPER.Last says so): reads as zero.
            return Some(Ok(match write {
                Some(_) => Outcome::Written,
                None => Outcome::Read(0),
            }));
        }
        Some(match write {
            None => guest
                .model
                .read(frame, vcpu, offset, size)
                .map(Outcome::Read),
            Some(value) => guest
                .model
                .write(frame, vcpu, offset, size, value)
                .map(|changes| {
                    guest.tell(changes, timer, kernel);
                    Outcome::Written
                }),
        })
    }

    /// Guest `vm`'s device line `intid` (an SPI) is now `level`.
    pub fn set_line(&mut self, vm: u16, intid: u32, level: bool, kernel: &mut impl Kernel) {
        let Some(timer) = self.layout.as_ref().map(|layout| layout.timer) else {
            return;
        };
        if let Some(guest) = self.guests.iter_mut().find(|guest| guest.vm == vm) {
            let changes = guest.model.set_level(intid, None, level);
            guest.tell(changes, timer, kernel);
        }
    }

    /// Guest `vm`'s vCPU `vcpu` wrote `icc_sgi1r` to ICC_SGI1R_EL1 (GICv3): the SGI is sent
    /// to the vCPUs it names. `false` if `vm` has no emulated GICv3.
    pub fn send_sgi(
        &mut self,
        vm: u16,
        vcpu: usize,
        icc_sgi1r: u64,
        kernel: &mut impl Kernel,
    ) -> bool {
        let Some(layout) = self.layout.as_ref() else {
            return false;
        };
        let timer = layout.timer;
        let v3 = layout.version == Version::V3;
        match self.guests.iter_mut().find(|guest| guest.vm == vm) {
            Some(guest) if v3 => {
                let changes = guest.model.send_sgi_v3(vcpu, icc_sgi1r);
                guest.tell(changes, timer, kernel);
                true
            }
            _ => false,
        }
    }

    /// Writes every guest's GIC for a hot-swap's hand-over: its VM id, what the kernel was
    /// told of its timers, and its distributor (`hv_vgic`'s hand-over).
    pub fn export(&self, out: &mut StateWriter) -> Option<()> {
        out.put(&(self.guests.len() as u8))?;
        for guest in &self.guests {
            out.put(&(guest.vm, guest.timer_told))?;
            guest.model.export(out)?;
        }
        Some(())
    }

    /// Takes what [`Gics::export`] wrote: the same guests in the same order (both instances
    /// read one configuration), each distributor of the same shape.
    pub fn import(&mut self, input: &mut StateReader) -> Result<(), BadState> {
        input.take_if(|&count: &u8| usize::from(count) == self.guests.len())?;
        for guest in self.guests.iter_mut() {
            let vcpus = guest.model.nr_vcpus();
            type Told = [Option<(u8, bool)>; hv_vgic::MAX_VCPUS];
            let (_, timer_told) = input.take_if(|(vm, told): &(u16, Told)| {
                *vm == guest.vm && told[vcpus..].iter().all(Option::is_none)
            })?;
            guest.model.import(input)?;
            guest.timer_told = timer_told;
        }
        Ok(())
    }

    /// Guest `vm` starts afresh: its distributor is back in its reset state (the kernel forgets
    /// what waited for its vCPUs and disables their timers itself).
    pub fn reset(&mut self, vm: u16) {
        if let Some(guest) = self.guests.iter_mut().find(|guest| guest.vm == vm) {
            guest.model.reset();
            guest.timer_told = [None; hv_vgic::MAX_VCPUS];
        }
    }
}

impl GuestGic {
    /// Tells the kernel what `changes` made deliverable on each vCPU, and any change of its
    /// timer PPI's delivery.
    fn tell(&mut self, changes: Changes, timer: u32, kernel: &mut impl Kernel) {
        let vcpus = self.model.nr_vcpus();
        for vcpu in changes.iter().filter(|&vcpu| vcpu < vcpus) {
            let delivery = self.model.private_delivery(vcpu, timer);
            if self.timer_told[vcpu] != delivery {
                kernel.timer(self.vm, vcpu, delivery);
                self.timer_told[vcpu] = delivery;
            }
            let mut pending = [Pending::default(); 16];
            let count = self.model.deliverable(vcpu, &mut pending);
            for irq in pending[..count]
                .iter()
                .filter(|irq| irq.intid != timer)
                .copied()
            {
                kernel.inject(self.vm, vcpu, &irq);
                // Handed over: the kernel's list register keeps it from now on.
                self.model
                    .mark_in_list_register(vcpu, irq.intid, irq.source);
                self.model
                    .sync_from_list_register(vcpu, irq.intid, irq.source, LrState::Invalid);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
