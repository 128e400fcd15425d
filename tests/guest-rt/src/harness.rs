//! The test harness: [`TestCase`], [`TestFailure`], [`run_tests`] and the `ensure!` macros.
//!
//! Output format (one line per case, then a summary), as parsed by the runner:
//!
//! ```text
//! running 3 tests
//! test runs_at_el1 ... ok
//! test something_else ... FAILED: expected EC 0x25, got 0x0
//! test third ... ok
//! 2 passed, 1 failed
//! ```
//!
//! The run then ends with PSCI `SYSTEM_OFF` if nothing failed, else `SYSTEM_RESET`. A panic or
//! an unexpected exception inside a case ends the run at once (as a failure, without the
//! summary line).

use core::fmt;

use crate::Env;

/// Outcome of a test case.
pub type TestResult = Result<(), TestFailure>;

/// One test case: a name and a function.
#[derive(Clone, Copy)]
pub struct TestCase {
    /// Printed in the `test <name> ... ok` line.
    pub name: &'static str,
    /// The test; `Err` fails the case (the run continues with the next one).
    pub run: fn(&Env) -> TestResult,
}

/// Capacity of a [`TestFailure`] message; longer messages are cut (ending in `...`).
///
/// Kept so that a `TestFailure` stays under 128 bytes (clippy's `result_large_err` limit).
pub const FAILURE_MESSAGE_CAPACITY: usize = 126;

/// Why a test case failed: a message of at most [`FAILURE_MESSAGE_CAPACITY`] bytes.
///
/// Build one from a `&'static str` (`"reason".into()`, [`TestFailure::new`]) or with
/// formatting ([`fail!`](crate::fail), [`ensure!`](crate::ensure), [`TestFailure::from_fmt`]).
#[derive(Clone)]
pub struct TestFailure {
    buf: [u8; FAILURE_MESSAGE_CAPACITY],
    len: u8,
}

const _: () = assert!(FAILURE_MESSAGE_CAPACITY <= u8::MAX as usize);
const _: () = assert!(core::mem::size_of::<TestFailure>() < 128);

impl TestFailure {
    /// A failure with a fixed message.
    pub fn new(message: &str) -> Self {
        Self::from_fmt(format_args!("{message}"))
    }

    /// A failure with a formatted message (cut at [`FAILURE_MESSAGE_CAPACITY`] bytes).
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Self {
        let mut failure = Self {
            buf: [0; FAILURE_MESSAGE_CAPACITY],
            len: 0,
        };
        if fmt::Write::write_fmt(&mut failure, args).is_err() {
            // Full: mark the cut.
            let at = floor_char_boundary(failure.as_str(), FAILURE_MESSAGE_CAPACITY - 3);
            failure.buf[at..at + 3].copy_from_slice(b"...");
            failure.len = (at + 3) as u8;
        }
        failure
    }

    /// The message.
    pub fn as_str(&self) -> &str {
        // `write_str` only ever appends whole `&str`s cut at char boundaries.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("<invalid utf-8>")
    }
}

/// The largest char boundary of `s` that is `<= at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

impl fmt::Write for TestFailure {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = usize::from(self.len);
        let take = floor_char_boundary(s, FAILURE_MESSAGE_CAPACITY - len);
        self.buf[len..len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len = (len + take) as u8;
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

impl From<&str> for TestFailure {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl fmt::Display for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Returns `Err(TestFailure)` with a formatted message from the enclosing test function.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)+) => {
        return ::core::result::Result::Err($crate::TestFailure::from_fmt(
            ::core::format_args!($($arg)+),
        ))
    };
}

/// Fails the enclosing test (see [`fail!`](crate::fail)) unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        if !$cond {
            $crate::fail!("condition failed: {}", ::core::stringify!($cond));
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::fail!($($arg)+);
        }
    };
}

/// Fails the enclosing test unless the two expressions are equal (both need `Debug`).
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if *left != *right {
                    $crate::fail!(
                        "{} == {} failed: {:?} != {:?}",
                        ::core::stringify!($left),
                        ::core::stringify!($right),
                        left,
                        right
                    );
                }
            }
        }
    };
    ($left:expr, $right:expr, $($arg:tt)+) => {
        if $left != $right {
            $crate::fail!($($arg)+);
        }
    };
}

/// Runs `cases` in order, prints one line per case and the `<N> passed, <M> failed` summary,
/// then ends the run: `SYSTEM_OFF` if every case passed, else `SYSTEM_RESET`.
#[cfg(target_os = "none")]
pub fn run_tests(cases: &[TestCase]) -> ! {
    let (_, failed) = run_cases(cases);
    crate::psci::exit(failed == 0)
}

/// Runs `cases` in order and prints one line per case and the `<N> passed, <M> failed`
/// summary; returns (passed, failed), for a guest that ends its run its own way.
#[cfg(target_os = "none")]
pub fn run_cases(cases: &[TestCase]) -> (usize, usize) {
    let env = crate::env();
    let (mut passed, mut failed) = (0usize, 0usize);
    crate::println!("running {} tests", cases.len());
    for case in cases {
        crate::print!("test {} ... ", case.name);
        match (case.run)(env) {
            Ok(()) => {
                passed += 1;
                crate::println!("ok");
            }
            Err(failure) => {
                failed += 1;
                crate::println!("FAILED: {failure}");
            }
        }
    }
    crate::println!("{passed} passed, {failed} failed");
    (passed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_with_an_ellipsis() {
        let long = "é".repeat(FAILURE_MESSAGE_CAPACITY);
        let failure = TestFailure::from_fmt(format_args!("{long}"));
        assert!(failure.as_str().ends_with("..."));
        assert!(failure.as_str().len() <= FAILURE_MESSAGE_CAPACITY);
    }

    #[test]
    fn short_messages_are_kept() {
        let failure: TestFailure = "nope".into();
        assert_eq!(failure.as_str(), "nope");
    }
}
