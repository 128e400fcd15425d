//! The MMIO guard's decisions, as pure functions of its state, so they are tested on the host.
//!
//! # What the guard is for
//!
//! A VM's data access to an IPA its stage 2 leaves unmapped is forwarded for emulation. A guest
//! that does not trust whoever emulates wants that to happen only where it expects a device, not
//! on any address a bug or an attacker makes it touch. With the MMIO guard (the PV services of
//! Marc Zyngier's 2021 RFC, as Android's pKVM ships them) the guest *enrols*, then *maps* every
//! granule it uses as MMIO; once it is enrolled, an access that does not lie in mapped granules
//! is refused (the kernel injects an external abort) instead of being emulated.
//!
//! # The calls (vendor hypervisor service, Android ACK numbering, SMC64/HVC64 fast calls)
//!
//! | x0 | call | arguments | x0 (x1) on success |
//! |---|---|---|---|
//! | 0xC6000002 | HYP_MEMINFO | x1..x3 = 0 | 4096, the protection granule (x1 = 0: no ranged calls) |
//! | 0xC6000005 | MMIO_GUARD_INFO | x1..x3 = 0 | 4096 (x1 = 0: no ranged calls) |
//! | 0xC6000006 | MMIO_GUARD_ENROLL | none | SUCCESS |
//! | 0xC6000007 | MMIO_GUARD_MAP | x1 = IPA of one granule | SUCCESS |
//! | 0xC6000008 | MMIO_GUARD_UNMAP | x1 = IPA of one granule | SUCCESS |
//!
//! Errors: INVALID_PARAMETER (-3) for bad arguments, NOT_SUPPORTED (-1) for a VM whose mode is
//! [`Mode::Off`], a VM the guard does not serve, and any other function. Only the low 32 bits of
//! x0 name the function (SMCCC 1.1 section 2.5). A call that fails changes nothing.
//!
//! # Decisions where the references leave room
//!
//! - **Which arguments must be zero.** HYP_MEMINFO and MMIO_GUARD_INFO document x1..x3 as
//!   "reserved, must be zero", and Linux passes zeros: nonzero is INVALID_PARAMETER. ENROLL
//!   documents no arguments at all, and Android's Linux makes the call without setting x1..x3
//!   (its SMCCC 1.1 macros leave them as whatever the compiler had there), so they are ignored:
//!   refusing them would make such a guest's enrolment fail at random. MAP's x2 (a MAIR_EL1
//!   index) is documented but ignored by pKVM ("arg2|arg3 might be garbage"), and UNMAP's
//!   callers leave x2/x3 unset the same way: both are ignored.
//! - **MAP and UNMAP before ENROLL** are accepted. pKVM refuses them with INVALID_PARAMETER,
//!   but no guest written for pKVM depends on that (it enrols first), and accepting lets a guest
//!   declare its devices before it enrols, so no access to, say, its console falls in a window
//!   where it is enrolled and the console not yet mapped. Granules mapped before enrolment have
//!   no effect until then.
//! - **A full set.** A VM's mapped granules are kept as runs of consecutive granules
//!   ([`GranuleRanges`]), at most [`MAX_GRANULE_RANGES`] of them, each of any length. When a VM
//!   has that many, a MAP that needs a run of its own (no granule next to it is mapped) is
//!   refused with INVALID_PARAMETER: the reference defines no better code (pKVM would fail its
//!   memory allocation), and the guest sees the MAP fail rather than an access abort later. A
//!   MAP that extends or joins runs, or of a granule already mapped, still succeeds. An UNMAP
//!   inside a run would split it in two, so it too is refused with INVALID_PARAMETER when the
//!   VM has that many runs, and changes nothing: unmapping nothing and answering SUCCESS would
//!   leave allowed an access the guest believes refused.
//! - **UNMAP really unmaps** (accesses to the granule are refused again once enrolled). Current
//!   pKVM made it a no-op returning SUCCESS; we keep the meaning the call has in the
//!   documentation. UNMAP of a granule that is not mapped is SUCCESS.
//! - **RAM.** A granule inside the VM's RAM is never MMIO: MAP and UNMAP of one are
//!   INVALID_PARAMETER (pKVM's MAP needs an unmapped IPA, and its UNMAP of RAM fails too).
//! - **Enforced mode** makes the VM enrolled from its first instruction; nothing un-enrols a VM
//!   (pKVM clears the flag only when the VM is torn down).
//! - **A VM the guard does not serve** (not in [`VMS`]) is treated as [`Mode::Off`]: its calls
//!   are NOT_SUPPORTED and its accesses are allowed. The guard was never offered to it, so it
//!   cannot have declared anything, and refusing its accesses would break its devices with no
//!   way for it to repair that. The composer lists every VM, so this is a configuration mismatch.
//! - **Malformed questions** (length 0 or above 8, or an access wrapping past the end of the
//!   address space) are refused in every mode: the kernel never asks them.
//!
//! # Known limit
//!
//! The state lives in the component's memory only. A restarted MMIO guard starts again from the
//! manifest: enrolments (but not enforced mode) and maps are forgotten.

use hv_ipc::addr::Ipa;
use hv_ipc::guest_abi::kvm::{
    HYP_MEMINFO, MMIO_GUARD_ENROLL, MMIO_GUARD_INFO, MMIO_GUARD_MAP, MMIO_GUARD_UNMAP,
};
use hv_ipc::guest_abi::smccc::{INVALID_PARAMETER, NOT_SUPPORTED, SUCCESS};

mod handover;
mod ranges;

// Used by the component proper (target builds).
#[cfg_attr(not(target_os = "none"), allow(unused_imports))]
pub use handover::{NotTaken, SCHEMA as STATE_SCHEMA, VERSION as STATE_VERSION};

pub use ranges::{GranuleRange, GranuleRanges};

/// The protection granule: what MAP and UNMAP cover and what INFO and HYP_MEMINFO report.
pub const GRANULE_SIZE: u64 = 4096;
/// log2 of [`GRANULE_SIZE`].
pub const GRANULE_SHIFT: u32 = 12;
/// IPAs are below this (a 48-bit IPA space).
pub const IPA_LIMIT: u64 = 1 << 48;
/// VM ids the guard serves are below this.
pub const MAX_VMS: usize = 4;
/// Runs of consecutive granules one VM can map, each of any length. Linux maps each device
/// region page by page, so the tens of thousands of MAPs of a boot (GIC redistributors, a PCIe
/// ECAM) make one run per region: a few dozen at most. A run costs 16 bytes per VM: the
/// [`Guard`] is 8,392 bytes, kept on the component's stack (64 KiB unless its manifest says
/// more), and `Guard::new` needs about as much again while it builds it (19 KiB in all, as
/// measured in a host release build). Raise this with that stack in mind.
pub const MAX_GRANULE_RANGES: usize = 128;
/// The longest access a check is asked about (a 64-bit load or store).
pub const MAX_ACCESS_LEN: u64 = 8;

/// How the guard treats a VM (the manifest's `mmio-guard` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not offered: every call is NOT_SUPPORTED and every access allowed.
    Off,
    /// Offered: once the VM enrols, only accesses to mapped granules are allowed.
    Optional,
    /// The VM is enrolled from the start and cannot leave.
    Enforced,
}

impl Mode {
    /// The manifest's name of the mode, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Optional => "optional",
            Mode::Enforced => "enforced",
        }
    }
}

/// One VM as the manifest configures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// The VM's id (below [`MAX_VMS`]).
    pub vm: u16,
    /// First byte of its RAM (an IPA).
    pub ram_start: u64,
    /// First byte past its RAM; equal to `ram_start` when no RAM is known.
    pub ram_end: u64,
    /// How the guard treats it.
    pub mode: Mode,
}

/// The VMs the guard serves, from the component's configuration: each VM's mode and RAM as
/// the VM sees it (the host's is all the RAM the system has, hypervisor included: none of it
/// is MMIO; a guest's starts at its `ram_ipa`, whatever physical memory backs it). VMs past
/// [`MAX_VMS`] are left out (the tool refuses such systems).
pub fn vm_configs(system: &hv_component_config::System) -> heapless::Vec<VmConfig, MAX_VMS> {
    use hv_component_config::MmioGuardMode;
    system
        .vms
        .iter()
        .filter(|vm| usize::from(vm.id) < MAX_VMS)
        .map(|vm| {
            let (ram_start, ram_size) = if vm.host {
                (system.ram.base, system.ram.size)
            } else {
                (vm.ram_ipa, vm.memory.size)
            };
            VmConfig {
                vm: vm.id,
                ram_start,
                ram_end: ram_start + ram_size,
                mode: match vm.mmio_guard {
                    MmioGuardMode::Off => Mode::Off,
                    MmioGuardMode::Optional => Mode::Optional,
                    MmioGuardMode::Enforced => Mode::Enforced,
                },
            }
        })
        .take(MAX_VMS)
        .collect()
}

/// A granule of the IPA space, by number (its base IPA shifted right by [`GRANULE_SHIFT`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Granule(u64);

impl Granule {
    /// The granule holding `ipa`.
    pub const fn containing(ipa: u64) -> Self {
        Self(ipa >> GRANULE_SHIFT)
    }

    /// Its first byte.
    pub const fn base(self) -> u64 {
        self.0 << GRANULE_SHIFT
    }

    /// The granule after it. A granule's number is an IPA shifted right by
    /// [`GRANULE_SHIFT`], so this cannot overflow.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// The set would need one range more than it holds: it was left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetFull;

/// A state change a call made, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The VM enrolled.
    Enrolled,
    /// The granule was mapped (it was not before).
    Mapped(Granule),
    /// The granule was unmapped (it was mapped before).
    Unmapped(Granule),
}

/// The answer to a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The caller's x0..x3.
    pub regs: [u64; 4],
    /// What the call changed, if anything (a repeated ENROLL or MAP changes nothing).
    pub change: Option<Change>,
}

impl Answer {
    /// x0 = `code` (an SMCCC return code), nothing changed.
    const fn status(code: i64) -> Self {
        Self {
            regs: [code as u64, 0, 0, 0],
            change: None,
        }
    }

    /// SUCCESS, with `change`.
    const fn success(change: Option<Change>) -> Self {
        Self {
            regs: [SUCCESS as u64, 0, 0, 0],
            change,
        }
    }
}

/// The answer to a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Emulate the access (true) or refuse it.
    pub allowed: bool,
    /// The VM is enrolled.
    pub enrolled: bool,
}

/// One VM's state.
#[derive(Clone, Debug)]
struct VmState {
    config: VmConfig,
    /// Always true in [`Mode::Enforced`], never in [`Mode::Off`]; once true, never false again.
    enrolled: bool,
    mapped: GranuleRanges<MAX_GRANULE_RANGES>,
    /// Checks refused since boot.
    refused: u64,
}

impl VmState {
    fn new(config: VmConfig) -> Self {
        Self {
            config,
            enrolled: config.mode == Mode::Enforced,
            mapped: GranuleRanges::default(),
            refused: 0,
        }
    }

    /// The granule MAP or UNMAP names with `ipa`, if it may be MMIO: aligned, inside the IPA
    /// space and not overlapping the VM's RAM.
    fn mmio_granule(&self, ipa: u64) -> Option<Granule> {
        if !ipa.is_multiple_of(GRANULE_SIZE) || ipa >= IPA_LIMIT {
            return None;
        }
        // Below IPA_LIMIT, so the end cannot overflow.
        let in_ram = ipa < self.config.ram_end && ipa + GRANULE_SIZE > self.config.ram_start;
        (!in_ram).then(|| Granule::containing(ipa))
    }

    /// Serves a call of a VM whose mode is not [`Mode::Off`].
    fn hypercall(&mut self, function: u32, x1: u64, x2: u64, x3: u64) -> Answer {
        match function {
            HYP_MEMINFO | MMIO_GUARD_INFO => {
                if x1 | x2 | x3 != 0 {
                    Answer::status(INVALID_PARAMETER)
                } else {
                    // x1 = 0: KVM_FUNC_HAS_RANGE clear, we serve no ranged variants.
                    Answer {
                        regs: [GRANULE_SIZE, 0, 0, 0],
                        change: None,
                    }
                }
            }
            MMIO_GUARD_ENROLL => {
                let change = (!self.enrolled).then_some(Change::Enrolled);
                self.enrolled = true;
                Answer::success(change)
            }
            MMIO_GUARD_MAP => match self.mmio_granule(x1).map(|g| (g, self.mapped.insert(g))) {
                Some((granule, Ok(true))) => Answer::success(Some(Change::Mapped(granule))),
                Some((_, Ok(false))) => Answer::success(None),
                Some((_, Err(SetFull))) | None => Answer::status(INVALID_PARAMETER),
            },
            MMIO_GUARD_UNMAP => match self.mmio_granule(x1).map(|g| (g, self.mapped.remove(g))) {
                Some((granule, Ok(true))) => Answer::success(Some(Change::Unmapped(granule))),
                Some((_, Ok(false))) => Answer::success(None),
                Some((_, Err(SetFull))) | None => Answer::status(INVALID_PARAMETER),
            },
            _ => Answer::status(NOT_SUPPORTED),
        }
    }

    /// Whether an access from the `first` to the `last` granule may be emulated.
    fn allows(&self, first: Granule, last: Granule) -> bool {
        self.config.mode == Mode::Off
            || !self.enrolled
            || (self.mapped.contains(first) && self.mapped.contains(last))
    }
}

/// The granules of the first and last byte of `[ipa, ipa + len)`, if it is an access the
/// kernel can ask about: 1 to [`MAX_ACCESS_LEN`] bytes, not wrapping past the end of the
/// address space.
fn access_granules(ipa: u64, len: u64) -> Option<(Granule, Granule)> {
    if !(1..=MAX_ACCESS_LEN).contains(&len) {
        return None;
    }
    let last = ipa.checked_add(len - 1)?;
    Some((Granule::containing(ipa), Granule::containing(last)))
}

/// The MMIO guard: every VM's mode, RAM, enrolment, mapped granules and refusal count.
#[derive(Clone, Debug)]
pub struct Guard {
    vms: [Option<VmState>; MAX_VMS],
    /// Checks refused for VMs the guard does not serve (only malformed ones are).
    refused_unknown_vm: u64,
}

impl Guard {
    /// A guard serving the VMs of `table` (normally [`vm_configs`]). The first entry for a VM
    /// id counts, and ids from [`MAX_VMS`] up are left out; the tool refuses both cases.
    pub fn new(table: &[VmConfig]) -> Self {
        Self {
            vms: core::array::from_fn(|index| {
                table
                    .iter()
                    .find(|config| usize::from(config.vm) == index)
                    .map(|config| VmState::new(*config))
            }),
            refused_unknown_vm: 0,
        }
    }

    fn vm(&self, vm: u16) -> Option<&VmState> {
        self.vms.get(usize::from(vm))?.as_ref()
    }

    fn vm_mut(&mut self, vm: u16) -> Option<&mut VmState> {
        self.vms.get_mut(usize::from(vm))?.as_mut()
    }

    /// Serves VM `vm`'s SMCCC call: `regs` are its x0..x7 (the function in x0). Returns its
    /// x0..x3 and what changed.
    pub fn hypercall(&mut self, vm: u16, regs: &[u64; 8]) -> Answer {
        let function = regs[0] as u32;
        match self.vm_mut(vm) {
            Some(state) if state.config.mode != Mode::Off => {
                state.hypercall(function, regs[1], regs[2], regs[3])
            }
            _ => Answer::status(NOT_SUPPORTED),
        }
    }

    /// May VM `vm`'s access to `[ipa, ipa + len)` be emulated? A refusal is counted.
    pub fn check(&mut self, vm: u16, ipa: Ipa, len: u64) -> Verdict {
        let granules = access_granules(ipa.0, len);
        let Some(state) = self.vm_mut(vm) else {
            if granules.is_none() {
                self.refused_unknown_vm = self.refused_unknown_vm.saturating_add(1);
            }
            return Verdict {
                allowed: granules.is_some(),
                enrolled: false,
            };
        };
        let allowed = granules.is_some_and(|(first, last)| state.allows(first, last));
        if !allowed {
            state.refused = state.refused.saturating_add(1);
        }
        Verdict {
            allowed,
            enrolled: state.enrolled,
        }
    }

    /// The configuration of each VM the guard serves, in id order.
    pub fn configs(&self) -> impl Iterator<Item = &VmConfig> {
        self.vms.iter().flatten().map(|state| &state.config)
    }

    /// Checks refused for VM `vm` since boot (for a VM the guard does not serve: the checks
    /// refused for all such VMs).
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "kept in memory for dumps; read by the tests")
    )]
    pub fn refused(&self, vm: u16) -> u64 {
        self.vm(vm)
            .map_or(self.refused_unknown_vm, |state| state.refused)
    }

    /// Whether VM `vm` is enrolled.
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub fn is_enrolled(&self, vm: u16) -> bool {
        self.vm(vm).is_some_and(|state| state.enrolled)
    }

    /// The ranges of granules VM `vm` has mapped, in ascending order.
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub fn mapped(&self, vm: u16) -> &[GranuleRange] {
        self.vm(vm).map_or(&[], |state| state.mapped.as_slice())
    }
}

/// The name of a function this policy serves, for logs (`"UNKNOWN"` otherwise).
pub fn function_name(function: u32) -> &'static str {
    match function {
        HYP_MEMINFO => "HYP_MEMINFO",
        MMIO_GUARD_INFO => "MMIO_GUARD_INFO",
        MMIO_GUARD_ENROLL => "MMIO_GUARD_ENROLL",
        MMIO_GUARD_MAP => "MMIO_GUARD_MAP",
        MMIO_GUARD_UNMAP => "MMIO_GUARD_UNMAP",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests;
