//! Arm semihosting: the channel QEMU (`-semihosting-config enable=on`) offers a program
//! running on it. The kernel uses it for its log frames and to end a run with a status.
//!
//! Specification: Arm "Semihosting for AArch32 and AArch64" (IHI 0090): `HLT #0xF000` with
//! the operation in w0 and a parameter block address in x1; the result comes back in x0.

use core::arch::asm;
use core::sync::atomic::{AtomicI64, Ordering};

const SYS_OPEN: u64 = 0x01;
const SYS_WRITE: u64 = 0x05;
const SYS_EXIT_EXTENDED: u64 = 0x20;
/// ADP_Stopped_ApplicationExit: the reason code for a normal exit with a status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;
/// SYS_OPEN mode 4 ("w"): the console's output side when the name is ":tt".
const OPEN_MODE_WRITE: u64 = 4;

fn call(operation: u64, parameters: u64) -> i64 {
    let result: i64;
    // SAFETY: a semihosting call reads the parameter block the caller built and, for the
    // calls used here, writes no guest memory.
    unsafe {
        asm!("hlt #0xf000", inlateout("x0") operation => result, in("x1") parameters,
             options(nostack));
    }
    result
}

static CONSOLE: AtomicI64 = AtomicI64::new(-1);

fn console() -> i64 {
    let handle = CONSOLE.load(Ordering::Relaxed);
    if handle >= 0 {
        return handle;
    }
    let name = b":tt\0";
    let block = [
        name.as_ptr() as u64,
        OPEN_MODE_WRITE,
        (name.len() - 1) as u64,
    ];
    let handle = call(SYS_OPEN, block.as_ptr() as u64);
    CONSOLE.store(handle, Ordering::Relaxed);
    handle
}

/// Writes `bytes` to the semihosting console (QEMU routes it to the chardev named in
/// `-semihosting-config chardev=...`).
pub fn write(bytes: &[u8]) {
    let handle = console();
    if handle < 0 || bytes.is_empty() {
        return;
    }
    let block = [handle as u64, bytes.as_ptr() as u64, bytes.len() as u64];
    call(SYS_WRITE, block.as_ptr() as u64);
}

/// Ends the run: QEMU exits with `status`.
pub fn exit(status: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    call(SYS_EXIT_EXTENDED, block.as_ptr() as u64);
    super::park()
}
