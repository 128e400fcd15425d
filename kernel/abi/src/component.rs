//! How the boot table describes a component: its memory, entry point and message buffers, and
//! what the manifest grants it (interfaces, kernel operations, components to notify, routed
//! guest traps).

use crate::range::PhysRange;

/// Length of a component's name in the table (NUL-padded UTF-8).
pub const COMPONENT_NAME_LEN: usize = 16;
/// Bytes of a message buffer (`__ipc_rx`, `__ipc_tx`); equals `hv_ipc::abi::MESSAGE_MAX`.
pub const MESSAGE_BUFFER_LEN: u64 = 256;
/// Route bit: SMCCC calls (HVC, trapped SMC) from VMs go to the component with this bit,
/// unless another component's SMCCC ranges name the function ID.
pub const ROUTE_SMCCC: u32 = 1 << 0;
/// Route bit: a VM's accesses to the devices the manifest makes emulated go to the component
/// with this bit.
pub const ROUTE_MMIO: u32 = 1 << 1;
/// Route bit: the host VM's stage-2 faults go to the component with this bit, which builds
/// the host's stage 2 (its root is `BootTable::host_stage2_root`).
pub const ROUTE_HOST_STAGE2: u32 = 1 << 2;
/// Most SMCCC function-ID ranges one component takes.
pub const MAX_SMCCC_RANGES: usize = 4;

/// One component: where it lives, how it starts, and what the manifest grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentDescriptor {
    /// Its name (NUL-padded UTF-8), for logs.
    pub name: [u8; COMPONENT_NAME_LEN],
    /// Its memory: the only RAM its stage 2 maps. The image is linked at `region.start`.
    pub region: PhysRange,
    /// Where the kernel keeps its pristine image (inside the hypervisor's region, outside
    /// every component's).
    pub image_store: PhysRange,
    /// Entry point.
    pub entry: u64,
    /// Its receive buffer (`__ipc_rx`).
    pub ipc_rx: u64,
    /// Its send buffer (`__ipc_tx`).
    pub ipc_tx: u64,
    /// The interface it serves (0: none).
    pub serves: u16,
    /// Interfaces it may call: bit `n` for interface id `n`.
    pub may_call: u32,
    /// Kernel operations it may use: bit `n` for operation `n`.
    pub kernel_ops: u32,
    /// Components it may notify: bit `n` for component id `n` (never its own).
    pub may_notify: u32,
    /// Guest traps routed to it (`ROUTE_*` bits).
    pub routes: u32,
    /// SMCCC function IDs routed to it, as inclusive `(first, last)` ranges; `(0, 0)` is an
    /// unused slot. A function ID in a range goes here rather than to the `ROUTE_SMCCC` holder.
    pub smccc_ranges: [(u32, u32); MAX_SMCCC_RANGES],
}

impl ComponentDescriptor {
    /// True if this component takes SMCCC function `function` by range.
    pub fn takes_function(&self, function: u32) -> bool {
        self.smccc_ranges
            .iter()
            .any(|&(first, last)| (first, last) != (0, 0) && (first..=last).contains(&function))
    }

    /// The name as text.
    pub fn name(&self) -> &str {
        name_text(&self.name)
    }

    /// A name field from text (truncated to fit).
    pub fn name_field(name: &str) -> [u8; COMPONENT_NAME_LEN] {
        let mut field = [0u8; COMPONENT_NAME_LEN];
        let len = name.len().min(COMPONENT_NAME_LEN);
        field[..len].copy_from_slice(&name.as_bytes()[..len]);
        field
    }
}

/// A NUL-padded name field (a component's or a VM's) as text; "?" if it is not UTF-8.
pub(crate) fn name_text(field: &[u8; COMPONENT_NAME_LEN]) -> &str {
    let len = field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(COMPONENT_NAME_LEN);
    core::str::from_utf8(&field[..len]).unwrap_or("?")
}
