//! Arm semihosting: the channel QEMU (`-semihosting-config enable=on`) offers a program
//! running on it. The kernel uses it for its log frames and to end a run with a status.
//!
//! Specification: Arm "Semihosting for AArch32 and AArch64" (IHI 0090): `HLT #0xF000` with
//! the operation in w0 and a parameter block address in x1; the result comes back in x0.

use core::arch::asm;

const SYS_WRITEC: u64 = 0x03;
const SYS_WRITE0: u64 = 0x04;
const SYS_EXIT_EXTENDED: u64 = 0x20;
/// ADP_Stopped_ApplicationExit: the reason code for a normal exit with a status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

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

/// Longest piece written by one SYS_WRITE0.
const CHUNK: usize = 128;

/// Writes `bytes` to the semihosting console, which QEMU routes to the chardev named in
/// `-semihosting-config chardev=...` (only SYS_WRITEC and SYS_WRITE0 go there; a ":tt" handle
/// would go to QEMU's own stdout and mix with the guest console). SYS_WRITE0 stops at NUL, so
/// runs of non-zero bytes go as strings and each zero byte (the rzcobs frame delimiter) alone.
pub fn write(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = rest
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(rest.len())
            .min(CHUNK);
        if run == 0 {
            let zero = 0u8;
            call(SYS_WRITEC, &zero as *const u8 as u64);
            rest = &rest[1..];
            continue;
        }
        let mut chunk = [0u8; CHUNK + 1];
        chunk[..run].copy_from_slice(&rest[..run]);
        call(SYS_WRITE0, chunk.as_ptr() as u64);
        rest = &rest[run..];
    }
}

/// Ends the run: QEMU exits with `status`.
pub fn exit(status: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    call(SYS_EXIT_EXTENDED, block.as_ptr() as u64);
    super::park()
}
