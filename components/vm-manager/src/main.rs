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
mod handover;
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
mod component;

#[cfg(not(target_os = "none"))]
fn main() {}
