//! Runtime for hypervisor components: the code between the kernel's entry into a component and
//! the component's own `main`, and everything a component needs to talk to the kernel.
//!
//! A component is a separately linked `no_std` binary running at EL1 in its own stage-2 sandbox
//! (IPA = PA over its region), reaching the EL2 kernel only with `HVC #0` system calls.
//!
//! # Entry contract
//!
//! The kernel enters the ELF entry point `_start` at EL1h with DAIF masked and the EL1 MMU off
//! (every data access is Device memory: the target's `+strict-align` keeps accesses aligned,
//! and the runtime uses no atomics or exclusives), with:
//!
//! | register | value                                                           |
//! |----------|-----------------------------------------------------------------|
//! | x0       | the component's index (the supervisor is 0)                     |
//! | x1       | its region's base address                                        |
//! | x2       | its region's size in bytes                                       |
//! | x3       | start count: starts before this one (0 at first boot, 1 after a restart) |
//!
//! The runtime ([`arch`]) sets SP to `__stack_top`, zeroes `.bss` (not the IPC buffers, which
//! hold the first request), installs its vector table in `VBAR_EL1` and calls the component's main function
//! with a [`StartInfo`] and the [`Ipc`] token. Any exception the component takes at EL1 is
//! reported with the FAULT system call; a panic with PANIC ([`mod@panic`]). Neither returns.
//!
//! # Writing a component
//!
//! ```ignore
//! #![cfg_attr(target_os = "none", no_std, no_main)]
//!
//! #[cfg(target_os = "none")]
//! hv_component_rt::component_main!(main);
//!
//! #[cfg(target_os = "none")]
//! fn main(info: hv_component_rt::StartInfo, mut ipc: hv_component_rt::Ipc) -> ! {
//!     let settings = hv_component_rt::config().settings;
//!     hv_component_rt::serve_forever(&mut ipc, &mut MyServer::default())
//! }
//! ```
//!
//! and in `build.rs` (with `hv-component-config` as a build dependency, feature `std`):
//!
//! ```ignore
//! fn main() { hv_component_config::build::configure(); }
//! ```
//!
//! `components/template/` is a complete example; `docs/adding-a-component.md` walks through it.
//!
//! # Configuration and linking
//!
//! `hv_component_config::build::configure` reads the configuration `cargo xtask` wrote from the
//! manifest, writes the linker script from `link.ld.in` (the image starts at the component's
//! region with `__ipc_rx` / `__ipc_tx`, at the same addresses in every build so that a
//! hot-swapped image fits; then the manifest's stack (`__stack_top`), low so that an overflow
//! faults below the region; then text, rodata, data and bss, which end at `__image_end`, which
//! the script asserts is within the region) and embeds the configuration, which [`config()`] returns at run time.
//!
//! # System calls
//!
//! See [`syscall`] for the register conventions. Message calls (RECV, REPLY, CALL) are methods
//! of [`Ipc`]; the rest are free functions in [`syscall`]. [`Ipc`] also implements
//! [`hv_ipc::Transport`], so `hv_ipc::Client::new(&mut ipc)` makes typed calls.
#![cfg_attr(target_os = "none", no_std)]
#![warn(missing_docs)]

pub mod arch;
#[cfg(target_os = "none")]
mod config;
mod ipc;
#[cfg(target_os = "none")]
mod logger;
pub mod panic;
mod server;
pub mod swap;
pub mod syscall;

#[cfg(target_os = "none")]
pub use config::config;
#[cfg(target_os = "none")]
#[doc(hidden)]
pub use config::install as __install_config;
pub use hv_component_config;
pub use hv_ipc;
pub use ipc::{Ipc, Received};
pub use server::{Server, serve_forever};
pub use swap::SwapState;
pub use syscall::{kernel_op, log, notify};

/// What the kernel tells a component at entry (x0..x3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// The component's index (x0); the supervisor is 0.
    pub index: usize,
    /// Base address of its region (x1).
    pub region_base: usize,
    /// Size of its region in bytes (x2).
    pub region_size: usize,
    /// How many times this component was started before this instance (x3): 0 at first boot.
    pub start_count: u64,
}

#[cfg(target_os = "none")]
unsafe extern "Rust" {
    /// The component's main function, defined by [`component_main!`].
    safe fn __component_main(info: StartInfo, ipc: Ipc) -> !;
}

/// Rust entry point, called once by `_start` with x0..x3 as the kernel passed them.
#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn __component_rt_start(
    index: u64,
    region_base: u64,
    region_size: u64,
    start_count: u64,
) -> ! {
    let info = StartInfo {
        index: index as usize,
        region_base: region_base as usize,
        region_size: region_size as usize,
        start_count,
    };
    // SAFETY: `_start` calls this function once, and it is the only place an `Ipc` is made.
    let ipc = unsafe { Ipc::new() };
    __component_main(info, ipc)
}

/// Declares the component's main function: `fn(StartInfo, Ipc) -> !`, and embeds the
/// configuration its build script wrote (see [`config()`]).
///
/// Use it once per component binary, for `target_os = "none"` only (on the host a component is
/// a plain `fn main() {}` around its host-testable modules).
#[macro_export]
macro_rules! component_main {
    ($main:path) => {
        /// Decodes the embedded configuration; `_start` calls it once, on the start-up stack.
        #[unsafe(export_name = "__component_install_config")]
        extern "C" fn __hv_component_install_config() {
            static CONFIGURATION: &[u8] =
                include_bytes!(concat!(env!("OUT_DIR"), "/component-config.postcard"));
            $crate::__install_config(CONFIGURATION);
        }

        #[unsafe(export_name = "__component_main")]
        fn __hv_component_main(info: $crate::StartInfo, ipc: $crate::Ipc) -> ! {
            let main: fn($crate::StartInfo, $crate::Ipc) -> ! = $main;
            main(info, ipc)
        }
    };
}
