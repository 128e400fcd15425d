//! The hot-swap control line, as mechanism: noticing that bytes wait on the board's control
//! UART and telling the supervisor, which reads and answers them itself (CONTROL_READ,
//! CONTROL_WRITE) and decides what they mean (docs/hot-swap.md).
//!
//! The kernel takes no interrupt of its own (the host owns the GIC), so it looks when it
//! already runs: on a trap from a vCPU when nothing else is on the CPU's stack, at most every
//! [`POLL_INTERVAL_MS`], and each time an idle host CPU waits for an interrupt (with hot-swap
//! on, the host's WFI traps: [`on`]). Off (no control UART, or no supervisor granted
//! CONTROL_READ) it costs one byte load per trap.

use crate::arch;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How often a busy system looks at the line.
pub const POLL_INTERVAL_MS: u64 = 10;

/// After the last byte of a burst, how long CONTROL_READ waits for another before it returns.
const QUIET_MS: u64 = 2;

static ON: AtomicBool = AtomicBool::new(false);
static NEXT_POLL: AtomicU64 = AtomicU64::new(0);

/// Turns the line on when the board has a control UART and `granted` (a supervisor may read
/// it). Returns whether it is on.
pub fn set_up(granted: bool) -> bool {
    let on = granted && arch::control_uart::init();
    ON.store(on, Ordering::Relaxed);
    on
}

/// Whether hot-swap's control line is on.
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether it is time to look at the line (and, if so, the next look is scheduled).
#[inline(always)]
pub fn poll_due() -> bool {
    if !on() {
        return false;
    }
    let (now, frequency) = arch::counter();
    let next = NEXT_POLL.load(Ordering::Relaxed);
    now >= next
        && NEXT_POLL
            .compare_exchange(
                next,
                now + frequency * POLL_INTERVAL_MS / 1000,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
}

/// Whether bytes wait on the line.
pub fn input_waiting() -> bool {
    on() && arch::control_uart::input_waiting()
}

/// Reads into `buffer`: waits up to `wait_ms` for the first byte, then takes bytes until the
/// buffer is full, the line has been quiet for a moment, or (with `until_zero`) a zero byte
/// past the first has come. Returns how many it read.
pub fn read(buffer: &mut [u8], wait_ms: u64, until_zero: bool) -> usize {
    let (start, frequency) = arch::counter();
    let ticks = |ms: u64| frequency * ms / 1000;
    let mut deadline = start + ticks(wait_ms);
    let mut len = 0;
    while len < buffer.len() {
        match arch::control_uart::read_byte() {
            Some(byte) => {
                buffer[len] = byte;
                len += 1;
                if until_zero && byte == 0 && len > 1 {
                    break;
                }
                deadline = arch::counter().0 + ticks(QUIET_MS);
            }
            None if arch::counter().0 >= deadline => break,
            None => core::hint::spin_loop(),
        }
    }
    len
}

/// Sends `bytes` on the line.
pub fn write(bytes: &[u8]) {
    if on() {
        arch::control_uart::write(bytes);
    }
}
