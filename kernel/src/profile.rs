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

/// Components a stopwatch tells apart (the boot table's limit).
pub const MAX_COMPONENTS: usize = hv_abi::MAX_COMPONENTS;

/// A point on the trap path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The handler starts on a vCPU trap.
    TrapEntered,
    /// The handler returns into the component (by id) that takes the trap.
    ComponentEntered(usize),
    /// A component's system call reaches the handler (the last one before the vCPU resumes
    /// is its REPLY).
    ComponentExited,
    /// The handler returns to the vCPU with the component's answer applied.
    GuestResumed,
}

/// The phases between the points.
pub const PHASES: [&str; 3] = ["kernel-dispatch", "component", "kernel-return"];

/// Traps whose component answered with its REPLY alone.
pub const DIRECT: usize = 0;
/// Traps whose component made one call to another component first (its CALL, the callee's
/// REPLY, its own REPLY: three system calls).
pub const NESTED: usize = 1;
/// Every other trap (a component's first start with its logging, several calls, ...), kept
/// apart so that rare, long traps do not skew the other two.
pub const OTHER: usize = 2;

/// One CPU's stopwatch and totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stopwatch {
    entered: Option<u64>,
    component_entered: Option<u64>,
    component_exited: Option<u64>,
    syscalls: u64,
    /// The component the trap in flight went to.
    taken_by: usize,
    /// Per component that took them (by id): complete traps and their counter ticks from
    /// [`Point::TrapEntered`] to [`Point::GuestResumed`], whatever their kind (so, for one
    /// guest call routed straight to its component, what that kind of call costs).
    pub by_component: [(u64, u64); MAX_COMPONENTS],
    /// Counter ticks per phase, summed over the complete traps: [`DIRECT`], [`NESTED`],
    /// [`OTHER`].
    pub totals: [[u64; 3]; 3],
    /// Traps seen through all four points: [`DIRECT`], [`NESTED`], [`OTHER`].
    pub traps: [u64; 3],
}

impl Stopwatch {
    /// A stopwatch with nothing recorded.
    pub const fn new() -> Self {
        Self {
            entered: None,
            component_entered: None,
            component_exited: None,
            syscalls: 0,
            taken_by: 0,
            by_component: [(0, 0); MAX_COMPONENTS],
            totals: [[0; 3]; 3],
            traps: [0; 3],
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
            Point::ComponentEntered(component) => {
                if self.entered.is_some() && self.component_entered.is_none() {
                    self.component_entered = Some(now);
                    self.taken_by = component;
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
                    let kind = match self.syscalls {
                        1 => DIRECT,
                        3 => NESTED,
                        _ => OTHER,
                    };
                    let phases = [t1 - t0, t2 - t1, now - t2];
                    for (total, phase) in self.totals[kind].iter_mut().zip(phases) {
                        *total += phase;
                    }
                    self.traps[kind] += 1;
                    if let Some(entry) = self.by_component.get_mut(self.taken_by) {
                        entry.0 += 1;
                        entry.1 += now - t0;
                    }
                }
                *self = Self::with_totals(self);
            }
        }
    }

    fn with_totals(from: &Self) -> Self {
        Self {
            totals: from.totals,
            traps: from.traps,
            by_component: from.by_component,
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
            (Point::ComponentEntered(1), 130),
            (Point::ComponentExited, 200), // its CALL
            (Point::ComponentExited, 240), // the callee's REPLY
            (Point::ComponentExited, 250), // its REPLY: the last one counts
            (Point::GuestResumed, 270),
        ] {
            watch.record(point, now);
        }
        assert_eq!(
            (watch.totals, watch.traps),
            ([[0; 3], [30, 120, 20], [0; 3]], [0, 1, 0])
        );
        for (point, now) in [
            (Point::TrapEntered, 1000),
            (Point::ComponentEntered(2), 1010),
            (Point::ComponentExited, 1100),
            (Point::GuestResumed, 1105),
        ] {
            watch.record(point, now);
        }
        assert_eq!(
            (watch.totals, watch.traps),
            ([[10, 90, 5], [30, 120, 20], [0; 3]], [1, 1, 0])
        );
        // A first start, logging as it goes: neither of the two kinds above.
        watch.record(Point::TrapEntered, 2000);
        watch.record(Point::ComponentEntered(1), 2001);
        for now in [2100, 2200] {
            watch.record(Point::ComponentExited, now);
        }
        watch.record(Point::GuestResumed, 2300);
        assert_eq!(watch.traps, [1, 1, 1]);
        assert_eq!(watch.totals[OTHER], [1, 199, 100]);
        // Per component, whole traps: component 1 took the first and the third, 2 the second.
        assert_eq!(watch.by_component[1], (2, 170 + 300));
        assert_eq!(watch.by_component[2], (1, 105));
        assert_eq!(watch.by_component[0], (0, 0));
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
        assert_eq!((watch.totals, watch.traps), ([[0; 3]; 3], [0; 3]));
        assert_eq!(watch.by_component, [(0, 0); MAX_COMPONENTS]);
    }
}
