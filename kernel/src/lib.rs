//! The EL2 kernel's portable logic: everything that decides without touching hardware, so it
//! can be tested on the host with `cargo test`.
//!
//! # Design principles
//! - **Mechanism, not policy.** The kernel boots, maps, switches worlds, decodes traps and
//!   routes them. Which calls a guest may make and what they do belongs to components (the VM
//!   manager answers SMCCC and PSCI); the kernel only carries out their answers.
//! - **Static configuration, no allocation after boot.** Every table is sized at build time.
//! - **Simple algorithms.** The kernel stays small enough to read in an afternoon.
//! - **Hardware only in `arch`.** Register and assembly code lives in the binary's
//!   `arch/aarch64` module; this library never reads or writes a register (it composes the
//!   values `arch` writes, in [`controls`]).
#![cfg_attr(not(test), no_std)]

pub mod boot_dtb;
pub mod controls;
pub mod esr;
pub mod frame;
pub mod grants;
pub mod guest_image;
pub mod guest_run;
pub mod inject;
pub mod memory_map;
pub mod pending;
pub mod profile;
pub mod trap_stats;
pub mod virq;
pub mod worlds;
