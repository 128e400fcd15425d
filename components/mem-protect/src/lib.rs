//! The memory-protection component's logic: page ownership ([`ownership`]), the host's lazily
//! built stage-2 tables and guests' fully mapped ones ([`stage2`]), guests' memslots
//! ([`memslots`]), the component's decisions on host calls, faults and the VM manager's guest
//! memory requests ([`service`]), and what it serves as its configuration says ([`layout`]).
//! Pure and `no_std`, so the host tests every rule; the component binary (`main.rs`) adds the
//! kernel and the server loop around it.
#![cfg_attr(not(test), no_std)]

pub mod layout;
pub mod memslots;
pub mod ownership;
pub mod service;
pub mod stage2;
