//! Progress lines for the long steps (build, fetch, compose, boot), on stderr.

use std::time::Instant;

/// Announces a step.
pub fn step(what: &str) {
    eprintln!("\x1b[1;34m==>\x1b[0m {what}");
}

/// Announces a step and returns a guard that reports how long it took when dropped.
pub fn timed(what: &str) -> Timed {
    step(what);
    Timed {
        what: what.to_owned(),
        start: Instant::now(),
    }
}

/// See [`timed`].
pub struct Timed {
    what: String,
    start: Instant,
}

impl Drop for Timed {
    fn drop(&mut self) {
        eprintln!(
            "    {} took {:.1}s",
            self.what,
            self.start.elapsed().as_secs_f64()
        );
    }
}
