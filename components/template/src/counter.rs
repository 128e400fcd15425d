//! The template's logic: a counter that guests add to and read with two hypercalls.
//!
//! Kept apart from the server glue (`main.rs`) and free of anything target-specific, so it is
//! tested on the host with `cargo test -p hv-template`. A real component puts its policy here.

// The function IDs and return codes live in the guest ABI, shared with the guests that call.
pub use hv_component_rt::hv_ipc::guest_abi::host::{TEMPLATE_ADD, TEMPLATE_READ};
use hv_component_rt::hv_ipc::guest_abi::smccc::{INVALID_PARAMETER, NOT_SUPPORTED, SUCCESS};

/// The counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    total: u64,
    calls: u64,
}

impl Counter {
    /// A counter starting at `start` (the manifest's `settings.start`).
    pub const fn new(start: u64) -> Self {
        Self {
            total: start,
            calls: 0,
        }
    }

    /// How many hypercalls it answered.
    pub const fn calls(&self) -> u64 {
        self.calls
    }

    /// Answers the hypercall whose registers are `regs` (x0 = function ID): the caller's new
    /// x0..x3.
    pub fn hypercall(&mut self, regs: &[u64; 8]) -> [u64; 4] {
        self.calls += 1;
        let (code, value) = match regs[0] as u32 {
            TEMPLATE_ADD => match self.total.checked_add(regs[1]) {
                Some(total) => {
                    self.total = total;
                    (SUCCESS, total)
                }
                None => (INVALID_PARAMETER, self.total),
            },
            TEMPLATE_READ => (SUCCESS, self.total),
            _ => (NOT_SUPPORTED, 0),
        };
        [code as u64, value, 0, 0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(counter: &mut Counter, function: u32, x1: u64) -> (i64, u64) {
        let answer = counter.hypercall(&[u64::from(function), x1, 0, 0, 0, 0, 0, 0]);
        (answer[0] as i64, answer[1])
    }

    #[test]
    fn adds_and_reads_from_the_configured_start() {
        let mut counter = Counter::new(100);
        assert_eq!(call(&mut counter, TEMPLATE_READ, 0), (SUCCESS, 100));
        assert_eq!(call(&mut counter, TEMPLATE_ADD, 5), (SUCCESS, 105));
        assert_eq!(call(&mut counter, TEMPLATE_ADD, 7), (SUCCESS, 112));
        assert_eq!(call(&mut counter, TEMPLATE_READ, 0xdead), (SUCCESS, 112));
        assert_eq!(counter.calls(), 4);
    }

    #[test]
    fn an_overflow_is_refused_and_changes_nothing() {
        let mut counter = Counter::new(u64::MAX - 1);
        assert_eq!(
            call(&mut counter, TEMPLATE_ADD, 2),
            (INVALID_PARAMETER, u64::MAX - 1)
        );
        assert_eq!(
            call(&mut counter, TEMPLATE_READ, 0),
            (SUCCESS, u64::MAX - 1)
        );
        assert_eq!(call(&mut counter, TEMPLATE_ADD, 1), (SUCCESS, u64::MAX));
    }

    #[test]
    fn other_functions_are_not_supported() {
        let mut counter = Counter::new(3);
        for function in [0, TEMPLATE_ADD - 1, TEMPLATE_READ + 1, 0x8400_0000] {
            assert_eq!(call(&mut counter, function, 1), (NOT_SUPPORTED, 0));
        }
        assert_eq!(call(&mut counter, TEMPLATE_READ, 0), (SUCCESS, 3));
    }
}
