//! Where the instructions of a component-answered guest trap go: a per-CPU stopwatch the trap
//! path reads at four points, for `cargo xtask bench` (the kernel's `profile` feature turns the
//! readings on; without it they compile to nothing).
//!
//! The points, on one vCPU trap a component answers:
//!
//! 1. [`Point::TrapEntered`]: the kernel's Rust trap handler starts (after the exception entry
//!    and the vCPU's register save);
//! 2. [`Point::ComponentEntered`]: it returns to run the component (decode, route, encode,
//!    copy and world switch done);
//! 3. [`Point::ComponentExited`]: the component's last system call (its REPLY) reaches the
//!    handler (the component's work, its entry and exit included);
//! 4. [`Point::GuestResumed`]: the handler returns to the vCPU with the answer applied.
//!
//! Under QEMU's `-icount shift=0` the counter advances with instructions, so the three
//! differences are instruction counts (in counter ticks); what a guest measures beyond their
//! sum is the exception entry and exit around the handler and the guest's own loop.

/// A point on the trap path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The handler starts on a vCPU trap.
    TrapEntered,
    /// The handler returns into the component that takes the trap.
    ComponentEntered,
    /// A component's system call reaches the handler (the last one before the vCPU resumes
    /// is its REPLY).
    ComponentExited,
    /// The handler returns to the vCPU with the component's answer applied.
    GuestResumed,
}

/// The phases between the points.
pub const PHASES: [&str; 3] = ["kernel-dispatch", "component", "kernel-return"];

/// Traps whose component answered with its REPLY alone ([`DIRECT`]), or after system calls of
/// its own, such as a call to another component ([`NESTED`]).
pub const DIRECT: usize = 0;
/// See [`DIRECT`].
pub const NESTED: usize = 1;

/// One CPU's stopwatch and totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stopwatch {
    entered: Option<u64>,
    component_entered: Option<u64>,
    component_exited: Option<u64>,
    syscalls: u64,
    /// Counter ticks per phase, summed over the complete traps, [`DIRECT`] and [`NESTED`].
    pub totals: [[u64; 3]; 2],
    /// Traps seen through all four points, [`DIRECT`] and [`NESTED`].
    pub traps: [u64; 2],
}

impl Stopwatch {
    /// A stopwatch with nothing recorded.
    pub const fn new() -> Self {
        Self {
            entered: None,
            component_entered: None,
            component_exited: None,
            syscalls: 0,
            totals: [[0; 3]; 2],
            traps: [0; 2],
        }
    }

    /// Records `point` at counter value `now`. A trap that skips a point (answered by the
    /// kernel, or a component stopped on the way) is dropped, not counted half.
    pub fn record(&mut self, point: Point, now: u64) {
        match point {
            Point::TrapEntered => {
                *self = Self {
                    entered: Some(now),
                    ..Self::with_totals(self)
                };
            }
            Point::ComponentEntered => {
                if self.entered.is_some() && self.component_entered.is_none() {
                    self.component_entered = Some(now);
                }
            }
            Point::ComponentExited => {
                if self.component_entered.is_some() {
                    self.component_exited = Some(now);
                    self.syscalls += 1;
                }
            }
            Point::GuestResumed => {
                if let (Some(t0), Some(t1), Some(t2)) =
                    (self.entered, self.component_entered, self.component_exited)
                {
                    let kind = if self.syscalls == 1 { DIRECT } else { NESTED };
                    let phases = [t1 - t0, t2 - t1, now - t2];
                    for (total, phase) in self.totals[kind].iter_mut().zip(phases) {
                        *total += phase;
                    }
                    self.traps[kind] += 1;
                }
                *self = Self::with_totals(self);
            }
        }
    }

    fn with_totals(from: &Self) -> Self {
        Self {
            totals: from.totals,
            traps: from.traps,
            ..Self::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_trap_adds_its_three_phases() {
        let mut watch = Stopwatch::new();
        for (point, now) in [
            (Point::TrapEntered, 100),
            (Point::ComponentEntered, 130),
            (Point::ComponentExited, 200), // a call of its own
            (Point::ComponentExited, 250), // the REPLY: the last one counts
            (Point::GuestResumed, 270),
        ] {
            watch.record(point, now);
        }
        assert_eq!(
            (watch.totals, watch.traps),
            ([[0; 3], [30, 120, 20]], [0, 1])
        );
        for (point, now) in [
            (Point::TrapEntered, 1000),
            (Point::ComponentEntered, 1010),
            (Point::ComponentExited, 1100),
            (Point::GuestResumed, 1105),
        ] {
            watch.record(point, now);
        }
        assert_eq!(
            (watch.totals, watch.traps),
            ([[10, 90, 5], [30, 120, 20]], [1, 1])
        );
    }

    #[test]
    fn a_trap_that_skips_a_point_is_dropped() {
        let mut watch = Stopwatch::new();
        // Answered by the kernel: no component in between.
        watch.record(Point::TrapEntered, 10);
        watch.record(Point::GuestResumed, 20);
        // A component's system call with no vCPU trap in flight (a notification).
        watch.record(Point::ComponentExited, 30);
        watch.record(Point::GuestResumed, 40);
        assert_eq!((watch.totals, watch.traps), ([[0; 3]; 2], [0; 2]));
    }
}
