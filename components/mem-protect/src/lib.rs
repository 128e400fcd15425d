//! The memory-protection component's logic: page ownership ([`ownership`]) and the host's
//! lazily built stage-2 tables ([`stage2`]). Pure and `no_std`, so the host tests every rule;
//! the component binary around it arrives in a later step.
#![cfg_attr(not(test), no_std)]

pub mod ownership;
pub mod stage2;
