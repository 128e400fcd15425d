//! Boot: from the entry assembly to the guest's main function.
//!
//! [`arch`](crate::arch)'s entry code calls `__guest_rt_start_rust` with the DTB address from
//! `x0`. It parses the DTB into the [`Env`], points the console at the PL011 of
//! `/chosen/stdout-path`, takes the PSCI conduit from `/psci`, and calls the guest's main
//! function (declared with [`guest_main!`](crate::guest_main)). It first records the CPU it runs
//! on as the boot CPU ([`crate::smp`]).
//!
//! `x0 == 0` falls back to a DTB at [`QEMU_DIRECT_DTB_ADDRESS`]. The hypervisor always passes
//! the DTB; the fallback exists only to run a guest directly on QEMU (`-M virt -kernel
//! guest.elf`, without `virtualization=on`), which starts an ELF at EL1 with `x0 = 0` and puts
//! the DTB at the start of RAM.

use core::cell::UnsafeCell;

use crate::{Env, console, psci};

/// Where QEMU's virt board puts the DTB when it boots an ELF that does not cover that address.
pub const QEMU_DIRECT_DTB_ADDRESS: usize = 0x4000_0000;

/// The environment, written once by `__guest_rt_start_rust` before the guest's code runs.
struct EnvSlot(UnsafeCell<Option<Env>>);

// SAFETY: The slot is written once during boot on the boot CPU, before any reader exists and
// before any other CPU can be started, and only read afterwards.
unsafe impl Sync for EnvSlot {}

static ENV: EnvSlot = EnvSlot(UnsafeCell::new(None));

/// The guest's [`Env`].
///
/// # Panics
///
/// Before the runtime has parsed the DTB (i.e. never from guest code).
pub fn env() -> &'static Env {
    // SAFETY: ENV is only written in `__guest_rt_start_rust`, before any code that could hold a
    // reference to it runs; from then on there are only shared references.
    unsafe { (*ENV.0.get()).as_ref() }.expect("guest-rt: Env used before boot finished")
}

unsafe extern "Rust" {
    /// The guest's main function, defined by [`guest_main!`](crate::guest_main).
    safe fn __guest_rt_main(env: &'static Env) -> !;
}

/// Rust entry point, called once by the entry assembly with `x0` as passed at boot.
#[unsafe(no_mangle)]
extern "C" fn __guest_rt_start_rust(dtb: usize) -> ! {
    crate::smp::record_boot_cpu();
    let address = if dtb == 0 {
        QEMU_DIRECT_DTB_ADDRESS
    } else {
        dtb
    };
    // SAFETY: The boot protocol passes the DTB's address in x0, or 0 when QEMU starts the ELF
    // itself and places the DTB at QEMU_DIRECT_DTB_ADDRESS. Nothing writes to the DTB.
    let env = match unsafe { Env::from_dtb(address) } {
        Ok(env) => env,
        Err(e) => crate::fatal::fail_run(format_args!("no usable DTB at {address:#x}: {e:?}")),
    };
    if let Some(base) = env.console_pl011() {
        // SAFETY: The DTB names this PL011 as the console; the MMU is off, so its physical
        // address is usable as is, and nothing else in the guest drives it.
        unsafe { console::init(base) };
    }
    if let Some(conduit) = env.psci_conduit() {
        psci::set_conduit(conduit);
    }
    // SAFETY: See `env`: this is the only write, and nothing has read ENV yet.
    unsafe { *ENV.0.get() = Some(env) };
    __guest_rt_main(self::env())
}
