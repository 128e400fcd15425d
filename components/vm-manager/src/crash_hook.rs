//! A test hook that crashes the VM manager on purpose, to exercise fault handling and restart
//! end to end. Compiled in only when the build sets `HV_VM_MANAGER_CRASH_ON_CALL` (see
//! `build.rs`); the normal build has [`HOOK`] = `None`.
//!
//! The hook fires on the N-th guest_trap request an instance serves, and only in an instance
//! that was never restarted (start count 0 at entry): a restarted instance counts from zero
//! again, and the test wants exactly one crash.

/// How to crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// Execute `udf #0`: the component's own vectors report an Undefined Instruction fault.
    Undefined,
    /// Read `address` (outside the component's region, by default the kernel image): a
    /// stage-2 abort the kernel takes directly.
    AbortKernel {
        /// The address read.
        address: usize,
    },
    /// `panic!`, reported with the PANIC system call.
    Panic,
}

impl CrashKind {
    /// The kind for `build.rs`'s code (0 = undefined, 1 = abort-kernel, 2 = panic).
    pub const fn from_code(code: u64, address: usize) -> CrashKind {
        match code {
            0 => CrashKind::Undefined,
            1 => CrashKind::AbortKernel { address },
            2 => CrashKind::Panic,
            _ => panic!("unknown crash kind code"),
        }
    }

    /// The setting's spelling, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            CrashKind::Undefined => "undefined",
            CrashKind::AbortKernel { .. } => "abort-kernel",
            CrashKind::Panic => "panic",
        }
    }
}

/// The hook's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashHook {
    /// Crash on this request (1 = the first).
    pub on_call: u64,
    /// How.
    pub kind: CrashKind,
}

impl CrashHook {
    /// Whether serving request number `served` (1-based, counted by this instance) crashes an
    /// instance started with `start_count`.
    pub const fn fires(&self, served: u64, start_count: u64) -> bool {
        start_count == 0 && served == self.on_call
    }
}

/// Parses a decimal number at compile time (the values `build.rs` normalised).
pub const fn parse_decimal(text: &str) -> u64 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "empty number");
    let mut value: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(digit.is_ascii_digit(), "not a decimal number");
        value = match value.checked_mul(10) {
            Some(v) => match v.checked_add((digit - b'0') as u64) {
                Some(v) => v,
                None => panic!("number too large"),
            },
            None => panic!("number too large"),
        };
        i += 1;
    }
    value
}

/// The hook this build was made with.
#[cfg(vm_manager_crash_hook)]
pub const HOOK: Option<CrashHook> = Some(CrashHook {
    on_call: parse_decimal(env!("HV_VM_MANAGER_CRASH_ON_CALL_VALUE")),
    kind: CrashKind::from_code(
        parse_decimal(env!("HV_VM_MANAGER_CRASH_KIND_VALUE")),
        parse_decimal(env!("HV_VM_MANAGER_CRASH_ADDRESS_VALUE")) as usize,
    ),
});

/// The hook this build was made with: none.
#[cfg(not(vm_manager_crash_hook))]
pub const HOOK: Option<CrashHook> = None;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal() {
        assert_eq!(parse_decimal("0"), 0);
        assert_eq!(parse_decimal("3"), 3);
        assert_eq!(parse_decimal("1075838976"), 0x4020_0000);
        assert_eq!(parse_decimal("18446744073709551615"), u64::MAX);
    }

    #[test]
    #[should_panic]
    fn rejects_overflow() {
        parse_decimal("18446744073709551616");
    }

    #[test]
    fn kinds() {
        assert_eq!(CrashKind::from_code(0, 0), CrashKind::Undefined);
        assert_eq!(
            CrashKind::from_code(1, 0x4020_0000),
            CrashKind::AbortKernel {
                address: 0x4020_0000
            }
        );
        assert_eq!(CrashKind::from_code(2, 0).name(), "panic");
    }

    #[test]
    fn fires_once_on_the_nth_request_of_the_first_instance() {
        let hook = CrashHook {
            on_call: 3,
            kind: CrashKind::Panic,
        };
        let fired: Vec<u64> = (1..10).filter(|&n| hook.fires(n, 0)).collect();
        assert_eq!(fired, [3]);
        assert!((1..10).all(|n| !hook.fires(n, 1)));
    }
}
