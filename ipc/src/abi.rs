//! The system-call ABI between components (EL1 sandboxes) and the EL2 kernel.
//!
//! A component enters the kernel with `HVC #0`: x0 = the call number ([`syscall`]), x1..x3 =
//! arguments (the kernel reads no other register). The kernel returns in x0 a status (0 or a negative [`SyscallError`] code) and
//! results in x1..x3. Messages travel through two buffers every component has at fixed symbols
//! of its image, `__ipc_rx` and `__ipc_tx`, each [`MESSAGE_MAX`] bytes: the kernel copies from
//! the sender's TX buffer into the receiver's RX buffer, never mapping one into the other.
//!
//! See `docs/ipc.md` for the model (synchronous call/reply with thread migration, notifications,
//! the route table) and the reasons behind it.

/// Largest message (request or reply) in bytes; every interface's encoded size must fit.
pub const MESSAGE_MAX: usize = 256;

/// Call numbers, in x0 of `HVC #0` from a component.
pub mod syscall {
    /// Wait for the next call or notification. Returns x0 = [`super::RECV_CALL`] or
    /// [`super::RECV_NOTIFICATION`]; for a call, x1 = sender id, x2 = interface id, x3 = length
    /// of the request now in `__ipc_rx`, x4 = notification bits pending when the call was
    /// delivered (cleared: act on them before serving); for a notification, x2 = the pending
    /// bits (cleared).
    pub const RECV: u64 = 0;
    /// Reply to the call being served: x1 = length of the reply in `__ipc_tx`; then wait as
    /// [`RECV`] does. Returns what RECV returns, when the next call or notification arrives
    /// (the kernel never resumes a server between its reply and its next receive, so a CPU
    /// goes straight back to the caller).
    pub const REPLY: u64 = 1;
    /// Call another component: x1 = interface id, x2 = length of the request in `__ipc_tx`.
    /// Blocks until the reply; returns x0 = 0 and x1 = reply length (reply in `__ipc_rx`), or
    /// an error.
    pub const CALL: u64 = 2;
    /// Set notification bits: x1 = target component index, x2 = bits. Only on a component the
    /// manifest's `notifies` names, else [`super::SyscallError::NotAllowed`].
    pub const NOTIFY: u64 = 3;
    /// Write log bytes (encoded defmt frames): x1 = address, x2 = length, inside the
    /// component's own region.
    pub const LOG: u64 = 4;
    /// The component panicked: x1 = address, x2 = length of a UTF-8 message inside its region.
    /// Never returns.
    pub const PANIC: u64 = 5;
    /// The component's own EL1 vectors took an exception (the kernel reads its ESR_EL1,
    /// FAR_EL1 and ELR_EL1 for the report). Never returns.
    pub const FAULT: u64 = 6;
    /// A kernel operation the manifest grants: x1 = operation ([`super::kernel_op`]),
    /// x2.. its arguments.
    pub const KERNEL_OP: u64 = 7;
}

/// RECV result kind: a call to serve.
pub const RECV_CALL: u64 = 0;
/// RECV result kind: notification bits.
pub const RECV_NOTIFICATION: u64 = 1;

/// The sender id of calls the kernel makes on a vCPU's behalf (a routed guest trap).
pub const SENDER_KERNEL: u64 = 0xffff;

/// The words some kernel operations take (VIRQ_INJECT, VIRQ_TIMER, GIC_ACCESS,
/// CONSOLE_ACCESS): one encoding for the component that packs them and the kernel that reads
/// them.
pub mod kernel_op_args {
    /// VIRQ_TIMER's x3: the timer's PPI is enabled (priority and group as [`interrupt`]).
    pub const TIMER_ENABLED: u64 = 1 << 40;
    const INTERRUPT_BITS: u64 = 0x3ff | 0xff << 16 | 1 << 24 | 0x7 << 32;

    /// A guest's vCPU: VM id in bits 0..16, vCPU index in 16..32.
    pub const fn vcpu(vm: u16, vcpu: u16) -> u64 {
        vm as u64 | (vcpu as u64) << 16
    }

    /// The inverse of [`vcpu`]; `None` with bits set above.
    pub const fn vcpu_of(word: u64) -> Option<(u16, u16)> {
        if word >> 32 != 0 {
            return None;
        }
        Some((word as u16, (word >> 16) as u16))
    }

    /// A virtual interrupt: INTID in bits 0..10, priority 16..24, group 1 in bit 24, the
    /// sender of a GICv2 SGI in 32..35.
    pub const fn interrupt(intid: u32, priority: u8, group1: bool, source: u8) -> u64 {
        (intid as u64 & 0x3ff)
            | (priority as u64) << 16
            | (group1 as u64) << 24
            | (source as u64 & 0x7) << 32
    }

    /// The inverse of [`interrupt`]: (INTID, priority, group 1, source); `None` with bits set
    /// elsewhere.
    pub const fn interrupt_of(word: u64) -> Option<(u32, u8, bool, u8)> {
        if word & !INTERRUPT_BITS != 0 {
            return None;
        }
        Some((
            (word & 0x3ff) as u32,
            (word >> 16) as u8,
            word & (1 << 24) != 0,
            ((word >> 32) & 0x7) as u8,
        ))
    }

    /// One device access: physical address in bits 0..48, size in bytes in 48..63, a write in
    /// bit 63.
    pub const fn access(address: u64, size: u8, write: bool) -> u64 {
        (address & ((1 << 48) - 1)) | (size as u64) << 48 | (write as u64) << 63
    }

    /// The inverse of [`access`]: (address, size, write).
    pub const fn access_of(word: u64) -> (u64, u64, bool) {
        (
            word & ((1 << 48) - 1),
            (word >> 48) & 0x7fff,
            word >> 63 != 0,
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn words_round_trip() {
            assert_eq!(vcpu_of(vcpu(3, 7)), Some((3, 7)));
            assert_eq!(vcpu_of(1 << 32), None);
            assert_eq!(
                interrupt_of(interrupt(1019, 0xa0, true, 7)),
                Some((1019, 0xa0, true, 7))
            );
            assert_eq!(
                interrupt_of(1 << 40),
                None,
                "the timer's enable is not an interrupt bit"
            );
            assert_eq!(
                access_of(access(0x0800_0f00, 4, true)),
                (0x0800_0f00, 4, true)
            );
            assert_eq!(
                access_of(access(0x0900_0018, 1, false)),
                (0x0900_0018, 1, false)
            );
        }

        #[test]
        fn hot_swap_words_round_trip() {
            use super::super::kernel_op::*;
            assert_eq!(
                control_read_args_of(control_read_args(256, 500, true)),
                (256, 500, true)
            );
            assert_eq!(
                control_read_args_of(control_read_args(1, u32::MAX, false)),
                (1, 0x7fff_ffff, false)
            );
            assert_eq!(
                swap_args_of(swap_args(3, 0x1_2345, 0xab_cdef)),
                (3, 0x1_2345, 0xab_cdef)
            );
        }
    }
}

/// Kernel operations, granted per component by the manifest.
pub mod kernel_op {
    /// Restart component x2 now (or, with x3 = a CNTPCT deadline, not before it; with x3 =
    /// [`RESTART_NEVER`], never: it stays stopped for good, and a VM trap only it can answer
    /// stops that VM instead of waiting forever).
    pub const RESTART: u64 = 1;
    /// RESTART's x3 for "never": the supervisor's `restart = never` policy, told to the kernel.
    pub const RESTART_NEVER: u64 = u64::MAX;
    /// Read component x2's state: returns x1 = state code ([`super::ComponentState`]),
    /// x2 = faults so far, x3 = last fault's ESR (0 for a panic).
    pub const COMPONENT_STATE: u64 = 2;
    /// Read the physical counter: returns x1 = CNTPCT_EL0, x2 = CNTFRQ_EL0.
    pub const READ_COUNTER: u64 = 3;
    /// Write bytes to the machine's console UART: x2 = address, x3 = length (at most
    /// `MESSAGE_MAX`) inside the caller's region. For a component that emulates a VM's console.
    pub const CONSOLE_WRITE: u64 = 4;
    /// Invalidate the host VM's stage-2 TLB entries: x2 = first IPA, x3 = length in bytes
    /// (`u64::MAX`: every entry of the host's VMID). For the memory-protection component after
    /// it changes the host's tables.
    pub const HOST_TLB_INVALIDATE: u64 = 5;
    /// Zero `[x2, x2 + x3)` of RAM (page aligned, outside the hypervisor's region) and clean it
    /// to the point of coherency: pages the host gets back.
    pub const ZERO_PAGES: u64 = 6;
    /// Start guest VM x2: its vCPU 0 enters the VM's boot entry (x0 = its DTB) on the physical
    /// CPU the manifest pins it to, started through the firmware. The VM's memory must be set
    /// up first (its stage 2 written by the memory-protection component). Returns x1 = a PSCI
    /// status (`ALREADY_ON` if that CPU runs).
    pub const VM_START: u64 = 7;
    /// Copy guest VM x2's pristine images (kernel, DTB, initrd) back into its memory and mark
    /// its deferred cache (and MTE tag) maintenance pending: for a reset, after its memory was
    /// wiped. Refused with `BadArgument` while any vCPU of the VM runs on another CPU.
    pub const VM_LOAD: u64 = 8;
    /// Stop guest VM x2 (the host's request): vCPUs started but not yet running are cancelled,
    /// running ones stop at their next exit to the kernel. Returns x1 = 1 if it is stopped
    /// already. It is neither started nor reloaded until every vCPU is off.
    pub const VM_STOP: u64 = 9;
    /// Guest VM x2's run state: returns x1 = how many of its vCPUs are on or being started,
    /// x2 = 1 if it is stopped (asked to stop, none of its vCPUs on).
    pub const VM_STATUS: u64 = 10;
    /// Invalidate guest VM x2's stage-2 TLB entries for the page at IPA x3 (`u64::MAX`: every
    /// entry of its VMID). For the memory-protection component after it changes a guest's
    /// tables (each alias of a page is a page of its own).
    pub const GUEST_TLB_INVALIDATE: u64 = 11;
    /// Make a virtual interrupt pending on a guest vCPU: x2 = guest VM | vCPU << 16, x3 = the
    /// interrupt packed as `hv_kernel::virq::VirtualIrq::pack` does (INTID bits 0..10,
    /// priority 16..24, group 1 bit 24, GICv2 SGI source 32..35). The kernel puts it in a list
    /// register of that vCPU's CPU before the vCPU next runs (kicking that CPU). For the
    /// component that emulates the guests' distributors. `BadArgument` for the virtual timer's
    /// INTID (the kernel forwards it), an INTID past 1019, or a vCPU with 32 waiting already.
    pub const VIRQ_INJECT: u64 = 12;
    /// How a guest configured its virtual timer's PPI on one vCPU: x2 = guest VM | vCPU << 16,
    /// x3 = bit 40 set if enabled, with priority (bits 16..24) and group 1 (bit 24). The kernel
    /// forwards the timer's physical interrupt to that vCPU only while it is enabled.
    pub const VIRQ_TIMER: u64 = 13;
    /// Make one access to the physical GIC's distributor or redistributors for the host, as
    /// the component filtering the host's GIC accesses decided: x2 = physical address (bits
    /// 0..48) | size in bytes (1, 2, 4 or 8) << 48 | 1 << 63 for a write, x3 = the value
    /// written. Returns x1 = the value read. `BadArgument` outside those registers, for a size
    /// other than these or an address not aligned to it.
    pub const GIC_ACCESS: u64 = 14;
    /// Make one access to the board's console UART for the host, as the component that shares
    /// its keyboard with guests decided: x2 = physical address | size << 48 | 1 << 63 for a
    /// write, x3 = the value written. Returns x1 = the value read. `BadArgument` outside the
    /// UART's registers, for a bad size or an unaligned address.
    pub const CONSOLE_ACCESS: u64 = 15;
    /// Read bytes from the board's control UART (the hot-swap line, docs/hot-swap.md) into
    /// `[x2, x2 + (x3 & 0xffff_ffff))` of the caller's region (at most `MESSAGE_MAX`), waiting
    /// up to `(x3 >> 32) & 0x7fff_ffff` milliseconds for the first byte and returning when the
    /// line has been quiet for a moment after the last, or (with bit 63 of x3 set) at a zero
    /// byte that is not the first one read: the end of a frame, so a reader that answers frame
    /// by frame does not wait for the quiet. Returns x1 = the number of bytes read (0: none
    /// came). `NoSuchTarget` on a board without a control UART.
    pub const CONTROL_READ: u64 = 16;
    /// Write `[x2, x2 + x3)` of the caller's region (at most `MESSAGE_MAX` bytes) to the
    /// control UART.
    pub const CONTROL_WRITE: u64 = 17;
    /// Swap component `(x3 >> 32) & 0xff` for the image at `[x2, x2 + (x3 & 0xffff_ffff))` of
    /// the caller's region, entered at its region's start + `x3 >> 40`; the swap rolls back if
    /// the new instance has not taken the state x4 milliseconds after it started (not 0: the
    /// deadline is the caller's policy). The kernel checks the request and returns at once; it carries the swap out as soon as the caller waits again
    /// (RECV) and this CPU runs no other component, holding the component's callers
    /// meanwhile, and then notifies the caller ([`super::NOTIFY_SWAP_DONE`]).
    pub const SWAP: u64 = 18;
    /// The outcome of the last swap: x1 = [`super::SwapOutcome`] code, x2 = the time it took
    /// in microseconds, x3 = the bytes of state handed over.
    pub const SWAP_STATUS: u64 = 19;
    /// The build id (`hv_ipc::swap::build_id` of its image) of component x2's running
    /// instance: returns x1.
    pub const COMPONENT_BUILD: u64 = 20;

    /// CONTROL_READ's x3: read up to `len` bytes, waiting up to `wait_ms` (at most 2^31 - 1)
    /// for the first, and stopping at a zero byte past the first with `until_zero`.
    pub const fn control_read_args(len: u32, wait_ms: u32, until_zero: bool) -> u64 {
        len as u64 | ((wait_ms & 0x7fff_ffff) as u64) << 32 | (until_zero as u64) << 63
    }

    /// The fields of CONTROL_READ's x3: (len, wait_ms, until_zero).
    pub const fn control_read_args_of(word: u64) -> (u64, u64, bool) {
        (
            word & 0xffff_ffff,
            (word >> 32) & 0x7fff_ffff,
            word >> 63 != 0,
        )
    }

    /// SWAP's x3 for component `target`, an image of `len` bytes entered `entry_offset` bytes
    /// into its region.
    pub const fn swap_args(target: u8, len: u32, entry_offset: u32) -> u64 {
        len as u64 | (target as u64) << 32 | (entry_offset as u64) << 40
    }

    /// The fields of SWAP's x3: (target, len, entry offset).
    pub const fn swap_args_of(word: u64) -> (usize, u64, u64) {
        (
            ((word >> 32) & 0xff) as usize,
            word & 0xffff_ffff,
            word >> 40,
        )
    }
}

/// How a swap ended ([`kernel_op::SWAP_STATUS`]): swapped, or why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum SwapOutcome {
    /// The new instance runs with the old one's state.
    Swapped = 0,
    /// No swap has ended yet (or one is under way).
    None = 1,
    /// Refused before anything was touched: the component declares it is not swappable.
    NotSwappable = 2,
    /// Refused before anything was touched: the component is stopped or faulted.
    NotRunning = 3,
    /// Refused before anything was touched: its state is larger than the kernel can carry.
    StateTooLarge = 4,
    /// Refused: the old instance faulted while handing over its state (it restarts as after
    /// any fault).
    OldFaulted = 5,
    /// Rolled back: the new instance faulted before it was ready.
    NewFaulted = 6,
    /// Rolled back: the new instance refused the state.
    StateRefused = 7,
    /// Rolled back: the new instance serves its interface with another schema, and declares
    /// no migration from the old one.
    InterfaceChanged = 8,
    /// Rolled back: the new instance did not accept the state within the deadline.
    TooSlow = 9,
    /// Rolled back: the new instance's answers were not the lifecycle protocol's.
    Misbehaved = 10,
}

impl SwapOutcome {
    /// Every outcome, for decoding.
    pub const ALL: [SwapOutcome; 11] = [
        Self::Swapped,
        Self::None,
        Self::NotSwappable,
        Self::NotRunning,
        Self::StateTooLarge,
        Self::OldFaulted,
        Self::NewFaulted,
        Self::StateRefused,
        Self::InterfaceChanged,
        Self::TooSlow,
        Self::Misbehaved,
    ];

    /// The outcome of a SWAP_STATUS x1.
    pub fn of(code: u64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| *outcome as u64 == code)
    }

    /// Whether the old instance was put back (the new image ran and was undone).
    pub const fn rolled_back(self) -> bool {
        matches!(
            self,
            Self::NewFaulted
                | Self::StateRefused
                | Self::InterfaceChanged
                | Self::TooSlow
                | Self::Misbehaved
        )
    }

    /// The outcome in a few words (logs, the tool's report).
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Swapped => "swapped",
            Self::None => "no swap has ended",
            Self::NotSwappable => "the component declares it cannot be swapped",
            Self::NotRunning => "the component is stopped",
            Self::StateTooLarge => "the component's state is too large to hand over",
            Self::OldFaulted => "the old instance faulted while handing over its state",
            Self::NewFaulted => "the new instance faulted before it was ready",
            Self::StateRefused => "the new instance refused the state",
            Self::InterfaceChanged => {
                "the new instance's interface schema differs and it declares no migration"
            }
            Self::TooSlow => "the new instance did not take the state within the deadline",
            Self::Misbehaved => "the new instance did not answer the lifecycle protocol",
        }
    }
}

/// Notification bit the kernel sets on the supervisor when a component faults.
pub const NOTIFY_COMPONENT_FAULTED: u64 = 1 << 0;
/// Notification bit the kernel sets on the supervisor when bytes wait on the control UART.
pub const NOTIFY_CONTROL_INPUT: u64 = 1 << 3;
/// Notification bit the kernel sets on the component that asked for a swap when it ended
/// ([`kernel_op::SWAP_STATUS`] says how).
pub const NOTIFY_SWAP_DONE: u64 = 1 << 4;
/// Notification bit the kernel sets once, at boot, on the server of the guest-trap interface
/// (the VM manager), before the host's first instruction: time to create the guest VMs.
pub const NOTIFY_SYSTEM_STARTED: u64 = 1 << 2;

/// Errors the kernel returns (as negative values in x0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum SyscallError {
    /// The manifest does not allow this caller this call, interface or operation.
    NotAllowed = -1,
    /// No such interface, component or operation.
    NoSuchTarget = -2,
    /// A length beyond [`MESSAGE_MAX`].
    MessageTooLong = -3,
    /// The callee faulted while serving the call and was stopped; the call was not completed.
    CalleeFaulted = -4,
    /// REPLY with no call being served.
    NotServing = -5,
    /// An argument is out of range.
    BadArgument = -6,
    /// The callee is stopped and not yet restarted (supervisor back-off).
    CalleeStopped = -7,
    /// An unknown call number.
    UnknownSyscall = -8,
    /// The callee faulted and its supervisor left it stopped for good (restart `never`): no
    /// call to it will ever be served.
    CalleeRetired = -9,
}

impl SyscallError {
    /// Every error, in code order (-1 first).
    pub const ALL: [SyscallError; 9] = {
        use SyscallError::*;
        [
            NotAllowed,
            NoSuchTarget,
            MessageTooLong,
            CalleeFaulted,
            NotServing,
            BadArgument,
            CalleeStopped,
            UnknownSyscall,
            CalleeRetired,
        ]
    };

    /// The error for a raw x0 value, if it is one.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|error| error.code() == code)
    }

    /// The raw value the kernel puts in x0 for this error.
    pub const fn code(self) -> i64 {
        self as i64
    }
}

impl core::fmt::Display for SyscallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SyscallError::NotAllowed => "not allowed by the manifest",
            SyscallError::NoSuchTarget => "no such interface, component or operation",
            SyscallError::MessageTooLong => "message longer than MESSAGE_MAX",
            SyscallError::CalleeFaulted => "callee faulted while serving the call",
            SyscallError::NotServing => "no call being served",
            SyscallError::BadArgument => "argument out of range",
            SyscallError::CalleeStopped => "callee stopped",
            SyscallError::UnknownSyscall => "unknown system call",
            SyscallError::CalleeRetired => "callee stopped for good (restart never)",
        })
    }
}

impl core::error::Error for SyscallError {}

/// A component's state as [`kernel_op::COMPONENT_STATE`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ComponentState {
    /// Waiting in RECV.
    Idle = 0,
    /// Serving a call or making one.
    Running = 1,
    /// Stopped after a fault; not restarted yet.
    Faulted = 2,
    /// Stopped after a fault, for good: its supervisor's RESTART said never
    /// ([`kernel_op::RESTART_NEVER`]).
    Retired = 3,
}

impl ComponentState {
    /// The state for a raw x1 value of [`kernel_op::COMPONENT_STATE`], if it is one.
    pub fn from_code(code: u64) -> Option<Self> {
        [Self::Idle, Self::Running, Self::Faulted, Self::Retired]
            .into_iter()
            .find(|state| *state as u64 == code)
    }
}

/// Interface ids: one per interface defined in this crate.
pub mod interface {
    /// Guest traps routed to a component (sender is always the kernel).
    pub const GUEST_TRAP: u16 = 1;
    /// The supervisor's interface.
    pub const SUPERVISOR: u16 = 2;
    /// The MMIO guard's interface.
    pub const MMIO_GUARD: u16 = 3;
    /// The memory-protection component's interface (guest memory).
    pub const MEM_PROTECT: u16 = 4;
    /// The kernel's hot-swap requests to any component (`hv_ipc::lifecycle`): never granted,
    /// served by every component's runtime.
    pub const LIFECYCLE: u16 = 5;
}
