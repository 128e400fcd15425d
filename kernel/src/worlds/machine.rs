//! What the world stack asks of the hardware ([`Machine`]: switch a CPU's EL1 state and stage
//! 2, load an image, reach a message buffer, read the counter) and what it reports
//! ([`Event`]). The kernel's `components` module implements it; the tests fake it.

use super::*;

/// Which world a CPU is about to run, for [`Machine::switch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldKind {
    /// The CPU's vCPU (the host VM's, for now).
    Vcpu,
    /// A component, with its stage 2 (VTTBR_EL2 value, VMID included).
    Component {
        /// Its VTTBR_EL2.
        vttbr: u64,
    },
}

/// What happened, for the kernel's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A component was stopped after a fault.
    Faulted {
        /// Its index.
        index: usize,
        /// Its faults so far.
        faults: u64,
        /// The fault's ESR_EL2 (0 for a panic or a broken protocol).
        esr: u64,
        /// Where it was.
        pc: u64,
    },
    /// A component called by a swap (the new instance taking the state, the old one handing
    /// it over or taking it back) did not answer by the swap's deadline: the kernel took its
    /// CPU back and stopped it.
    Overdue {
        /// Its index.
        index: usize,
    },
    /// A component was restarted from its image.
    Restarted {
        /// Its index.
        index: usize,
        /// How many times it has been restarted.
        restarts: u64,
    },
    /// A component's restart waits for a deadline.
    RestartDeferred {
        /// Its index.
        index: usize,
    },
    /// A component stays stopped for good.
    Retired {
        /// Its index.
        index: usize,
    },
    /// A component waited for a call (RECV) while its caller waits for its reply: it is
    /// stopped, as if it had faulted.
    ReceivedWhileCalled {
        /// Its index.
        index: usize,
    },
    /// An instance of a component with build id `build` is about to run (at boot, and when a
    /// swap loads a new image or a rollback the old one): the log's decoder switches to that
    /// build's ELF.
    Runs {
        /// Its index.
        index: usize,
        /// The build id (`hv_ipc::swap::build_id` of its image).
        build: u64,
    },
    /// A swap ended.
    SwapEnded {
        /// The component swapped.
        index: usize,
        /// How.
        outcome: abi::SwapOutcome,
        /// The build that ran before.
        old_build: u64,
        /// The build that runs now.
        new_build: u64,
        /// How long it took, in counter ticks.
        ticks: u64,
        /// Bytes of state handed over.
        state_len: u32,
    },
}

/// The hardware under the world stack: the kernel's `arch` implements it; tests fake it.
pub trait Machine {
    /// The EL1 state a component can change (the rest is protected by traps and stays live in
    /// the CPU), saved per world.
    type El1: Copy;

    /// A component's EL1 state when it starts.
    fn component_el1() -> Self::El1;

    /// Saves the EL1 state of the running world, `from`, into `save`, loads `load` and makes
    /// the CPU run `next` (its stage 2 and trap controls).
    fn switch(&mut self, from: WorldKind, save: &mut Self::El1, load: &Self::El1, next: WorldKind);

    /// Copies the image at `image` (its pristine copy in the image store, or a new one being
    /// swapped in) into the component's region and clears the rest of the region.
    fn load_image(&mut self, descriptor: &ComponentDescriptor, image: PhysRange);

    /// Copies the image at `image` into the component's image store (its slot, which it fits)
    /// and clears the rest of the slot: restarts load it from now on.
    fn store_image(&mut self, descriptor: &ComponentDescriptor, image: PhysRange);

    /// The build id of the image at `image` (`hv_ipc::swap::build_id`).
    fn build_id(&mut self, image: PhysRange) -> u64;

    /// The counter's frequency.
    fn ticks_per_second(&self) -> u64;

    /// The buffer a swap's state is handed over in ([`hv_ipc::lifecycle::STATE_MAX`] bytes):
    /// only the CPU carrying out the one swap under way uses it. A static of its own, not part
    /// of the registry, which is built on a boot stack far smaller than it.
    fn handover(&mut self) -> &mut [u8];

    /// The message buffer at `address` (a component's `__ipc_rx` or `__ipc_tx`, which the boot
    /// table's checks keep inside its region). Only used for a component that is not running
    /// and is locked by this CPU.
    fn message_buffer(&mut self, address: u64) -> &mut MessageBuffer;

    /// Copies `len` bytes (at most [`MESSAGE_MAX`]) from one message buffer to another.
    fn copy_message(&mut self, from: u64, to: u64, len: usize);

    /// The counter, in the ticks restart deadlines are given in.
    fn now(&self) -> u64;

    /// Arms this CPU's deadline for component runs at counter tick `at`, or disarms it
    /// (`None`). Armed, the CPU is taken back from a component still running when it passes
    /// ([`Registry::deadline_passed`](super::Registry::deadline_passed)): components otherwise
    /// run until they yield, and only a swap arms it.
    fn set_deadline(&mut self, at: Option<u64>);

    /// Reports `event` (the kernel logs it).
    fn report(&mut self, event: Event);
}
