//! A test hook that crashes the VM manager on purpose, to exercise fault handling and restart
//! end to end. Armed by the component's settings (`[component.settings] crash = { … }` in a
//! test manifest, or set by `cargo xtask test`); a normal system has none.
//!
//! The hook fires on the N-th `guest-trap` request an instance serves (with `on-function`,
//! the N-th SMCCC call of that function), and only in an instance
//! that was never restarted (start count 0 at entry): a restarted instance counts from zero
//! again, and the test wants exactly one crash.

pub use hv_component_config::{CrashHook, CrashKind};

/// Whether serving request number `served` (1-based, counted by this instance) crashes an
/// instance started with `start_count`.
pub const fn fires(hook: &CrashHook, served: u64, start_count: u64) -> bool {
    start_count == 0 && served == hook.on_call as u64
}

/// The setting's spelling, for logs.
pub const fn kind_name(kind: CrashKind) -> &'static str {
    match kind {
        CrashKind::Undefined => "undefined",
        CrashKind::Read { .. } => "read",
        CrashKind::Panic => "panic",
        CrashKind::StackOverflow => "stack-overflow",
        CrashKind::Misanswer => "misanswer",
    }
}

/// Recurses with a page of stack per frame until the stack overflows (the `stack-overflow`
/// hook); returns only if it never does, which the caller reports.
#[inline(never)]
pub fn overflow_stack(depth: u64) -> u64 {
    let mut frame = [0u8; 4096];
    frame[(depth % 4096) as usize] = depth as u8;
    let frame = core::hint::black_box(frame);
    if depth == u64::MAX {
        return 0;
    }
    overflow_stack(depth + 1) + u64::from(frame[(depth % 4096) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_on_the_nth_request_of_the_first_instance() {
        let hook = CrashHook {
            on_call: 3,
            kind: CrashKind::Panic,
            on_function: None,
        };
        let fired: Vec<u64> = (1..10).filter(|&n| fires(&hook, n, 0)).collect();
        assert_eq!(fired, [3]);
        assert!((1..10).all(|n| !fires(&hook, n, 1)));
        assert_eq!(kind_name(CrashKind::Read { address: 8 }), "read");
    }
}
