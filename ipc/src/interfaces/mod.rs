//! The interfaces of the system, one module each, every one defined with
//! [`interface!`](crate::interface).
//!
//! Adding one: give it an id in [`abi::interface`](crate::abi::interface), define it in a new
//! module here, and add it to the tests in `ipc/tests/` (round trips and the decoder fuzzing).

pub mod guest_trap;
pub mod mmio_guard;
pub mod supervisor;

pub use guest_trap::GuestTrapInterface;
pub use mmio_guard::MmioGuardInterface;
pub use supervisor::SupervisorInterface;
