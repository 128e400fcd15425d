//! The restart policy, as pure functions of what the kernel reports (fault counts and counter
//! values), so it is tested on the host.
//!
//! Each component has a [`RestartPolicy`] from the manifest (`restart = { policy, min-delay,
//! max-delay }`, passed to this component's build by the composer). With `backoff`, a faulted
//! component is restarted at once the first time. If it faults again within
//! [`QUICK_REFAULT_MS`] of running again (of the moment its last restart took effect), it is in
//! a crash loop: it is restarted after a back-off delay, the policy's minimum the first time
//! and doubled on each further quick fault, up to its maximum. A component that ran longer than
//! [`QUICK_REFAULT_MS`] before faulting starts over with an immediate restart. With `never`,
//! it stays stopped.
//!
//! Measuring from the restart rather than from the previous fault matters once delays pass one
//! second: a component that crashes as soon as it comes back after a 2 s delay is still
//! looping, and keeps its back-off.
//!
//! The kernel keeps a faulted component stopped (state Faulted) until its restart deadline,
//! and the supervisor looks at every component on each fault notification, so it can see the
//! same fault more than once: a decision is made once per fault count.

/// The back-off delay after the first quick re-fault, when the manifest does not say.
pub const FIRST_BACKOFF_MS: u64 = 10;
/// The longest back-off delay, when the manifest does not say.
pub const MAX_BACKOFF_MS: u64 = 5_000;

/// What the manifest says to do when a component faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart, with a back-off in a crash loop.
    Backoff {
        /// The first back-off delay.
        min_ms: u64,
        /// The longest back-off delay.
        max_ms: u64,
    },
    /// Leave it stopped.
    Never,
}

impl RestartPolicy {
    /// The manifest's default.
    pub const DEFAULT: Self = Self::Backoff {
        min_ms: FIRST_BACKOFF_MS,
        max_ms: MAX_BACKOFF_MS,
    };
}
/// A fault this soon after the component came back counts as a crash loop.
pub const QUICK_REFAULT_MS: u64 = 1_000;
/// Component indices are below this (the supervisor is 0).
pub const MAX_COMPONENTS: usize = 16;

impl From<hv_component_config::Restart> for RestartPolicy {
    fn from(restart: hv_component_config::Restart) -> Self {
        match restart {
            hv_component_config::Restart::Backoff { min_ms, max_ms } => {
                RestartPolicy::Backoff { min_ms, max_ms }
            }
            hv_component_config::Restart::Never => RestartPolicy::Never,
        }
    }
}

/// Each component's policy as the configuration gives it, by component id.
pub fn restart_policies(system: &hv_component_config::System) -> [RestartPolicy; MAX_COMPONENTS] {
    let mut policies = [RestartPolicy::DEFAULT; MAX_COMPONENTS];
    for (slot, component) in policies.iter_mut().zip(&system.components) {
        *slot = component.restart.into();
    }
    policies
}

/// Counter ticks in `ms` milliseconds at `hz` (rounded down, saturating).
pub fn ms_to_ticks(ms: u64, hz: u64) -> u64 {
    let ticks = u128::from(ms) * u128::from(hz) / 1000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// What to do about one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Delay before the restart, in milliseconds (0: at once).
    pub delay_ms: u64,
    /// The counter value to pass to RESTART: 0 for at once, else `now + delay`.
    pub deadline: u64,
}

/// The restart history of one component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartRecord {
    /// The kernel's fault count the last decision was made for.
    decided_faults: Option<u64>,
    /// Counter value at which the last restart took (or takes) effect.
    back_at: Option<u64>,
    /// The last back-off delay (0: the last restart was immediate).
    backoff_ms: u64,
}

impl RestartRecord {
    /// Decides about a component the kernel reports Faulted with `faults` faults so far, at
    /// counter value `now` of a counter running at `hz`. `None` if this fault was decided
    /// already.
    pub fn on_faulted(
        &mut self,
        faults: u64,
        now: u64,
        hz: u64,
        min_ms: u64,
        max_ms: u64,
    ) -> Option<Decision> {
        if self.decided_faults == Some(faults) {
            return None;
        }
        let quick = self
            .back_at
            .is_some_and(|back_at| now.saturating_sub(back_at) < ms_to_ticks(QUICK_REFAULT_MS, hz));
        let delay_ms = match (quick, self.backoff_ms) {
            (false, _) => 0,
            (true, 0) => min_ms.max(1),
            (true, last) => last.saturating_mul(2).min(max_ms),
        };
        let deadline = if delay_ms == 0 {
            0
        } else {
            now.saturating_add(ms_to_ticks(delay_ms, hz)).max(1)
        };
        self.decided_faults = Some(faults);
        self.back_at = Some(if delay_ms == 0 { now } else { deadline });
        self.backoff_ms = delay_ms;
        Some(Decision { delay_ms, deadline })
    }

    /// The RESTART for the last decision failed: decide again on the next look.
    pub fn restart_failed(&mut self) {
        self.decided_faults = None;
    }
}

/// The supervisor's bookkeeping: one record per component and the counters `Status` reports.
#[derive(Clone, Debug)]
pub struct Supervisor {
    records: [RestartRecord; MAX_COMPONENTS],
    policies: [RestartPolicy; MAX_COMPONENTS],
    /// Faults left alone because the component's policy is `never`.
    pub left_stopped: u32,
    /// Successful RESTART operations since boot.
    pub restarts: u32,
    /// Faults decided on since boot (each fault of each component once).
    pub faults: u32,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl Supervisor {
    /// A supervisor applying `policies[i]` to component `i` (the default for the rest).
    pub fn new(policies: &[RestartPolicy]) -> Self {
        let mut all = [RestartPolicy::DEFAULT; MAX_COMPONENTS];
        for (slot, policy) in all.iter_mut().zip(policies) {
            *slot = *policy;
        }
        Self {
            records: Default::default(),
            policies: all,
            left_stopped: 0,
            restarts: 0,
            faults: 0,
        }
    }

    /// Decides about component `index`, which the kernel reports Faulted with `faults` faults.
    /// `None` for a fault already decided or an index out of range.
    pub fn component_faulted(
        &mut self,
        index: usize,
        faults: u64,
        now: u64,
        hz: u64,
    ) -> Option<Decision> {
        let record = self.records.get_mut(index)?;
        let RestartPolicy::Backoff { min_ms, max_ms } = self.policies[index] else {
            if record.decided_faults != Some(faults) {
                record.decided_faults = Some(faults);
                self.faults = self.faults.saturating_add(1);
                self.left_stopped = self.left_stopped.saturating_add(1);
            }
            return None;
        };
        let decision = record.on_faulted(faults, now, hz, min_ms, max_ms)?;
        self.faults = self.faults.saturating_add(1);
        Some(decision)
    }

    /// Whether component `index`'s policy is `never`: a fault leaves it stopped for good,
    /// which the supervisor tells the kernel (so traps only it could answer stop their VM
    /// rather than wait forever).
    pub fn never_restarts(&self, index: usize) -> bool {
        self.policies.get(index) == Some(&RestartPolicy::Never)
    }

    /// The kernel accepted the RESTART for `index`'s last decision.
    pub fn restarted(&mut self, _index: usize) {
        self.restarts = self.restarts.saturating_add(1);
    }

    /// The kernel refused the RESTART for `index`'s last decision: retry on the next look.
    pub fn restart_failed(&mut self, index: usize) {
        if let Some(record) = self.records.get_mut(index) {
            record.restart_failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 MHz counter: one tick per microsecond.
    const HZ: u64 = 1_000_000;
    const MS: u64 = HZ / 1000;

    #[test]
    fn ticks() {
        assert_eq!(ms_to_ticks(10, 62_500_000), 625_000);
        assert_eq!(ms_to_ticks(1, 1000), 1);
        assert_eq!(ms_to_ticks(1, 999), 0);
        assert_eq!(ms_to_ticks(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn first_fault_restarts_at_once() {
        let mut record = RestartRecord::default();
        assert_eq!(
            record.on_faulted(1, 5_000 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS),
            Some(Decision {
                delay_ms: 0,
                deadline: 0
            })
        );
    }

    #[test]
    fn same_fault_is_decided_once() {
        let mut record = RestartRecord::default();
        assert!(
            record
                .on_faulted(1, 0, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .is_some()
        );
        assert_eq!(
            record.on_faulted(1, 3 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS),
            None
        );
        assert!(
            record
                .on_faulted(2, 5_000 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .is_some()
        );
    }

    #[test]
    fn a_fault_count_of_zero_is_still_decided() {
        let mut record = RestartRecord::default();
        assert!(
            record
                .on_faulted(0, 0, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .is_some()
        );
    }

    #[test]
    fn crash_loop_backs_off_doubling_to_the_cap() {
        let mut record = RestartRecord::default();
        let mut now = 100 * MS;
        let mut delays = Vec::new();
        for faults in 1..=12 {
            let decision = record
                .on_faulted(faults, now, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap();
            if decision.delay_ms == 0 {
                assert_eq!(decision.deadline, 0);
            } else {
                assert_eq!(decision.deadline, now + decision.delay_ms * MS);
            }
            delays.push(decision.delay_ms);
            // Comes back at the deadline and faults 5 ms later.
            now += decision.delay_ms * MS + 5 * MS;
        }
        assert_eq!(
            delays,
            [0, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5000, 5000]
        );
    }

    #[test]
    fn quick_means_soon_after_coming_back_not_after_the_last_fault() {
        let mut record = RestartRecord::default();
        let mut now = 0;
        // Drive the back-off past one second.
        for faults in 1..=10 {
            let decision = record
                .on_faulted(faults, now, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap();
            now += decision.delay_ms * MS + MS;
        }
        assert_eq!(record.backoff_ms, 2560);
        // 2.561 s after the last fault, but 1 ms after coming back: still a loop.
        assert_eq!(
            record
                .on_faulted(11, now, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            5000
        );
    }

    #[test]
    fn a_stable_run_resets_the_back_off() {
        let mut record = RestartRecord::default();
        assert_eq!(
            record
                .on_faulted(1, 0, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            0
        );
        assert_eq!(
            record
                .on_faulted(2, 500 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            10
        );
        assert_eq!(
            record
                .on_faulted(3, 520 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            20
        );
        // Back at 540 ms; runs for more than a second.
        assert_eq!(
            record
                .on_faulted(4, 1_541 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            0
        );
        assert_eq!(
            record
                .on_faulted(5, 1_600 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            10
        );
    }

    #[test]
    fn exactly_one_second_is_not_quick() {
        let mut record = RestartRecord::default();
        record.on_faulted(1, 0, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
        assert_eq!(
            record
                .on_faulted(2, 1_000 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            0
        );
        assert_eq!(
            record
                .on_faulted(3, 1_999 * MS, HZ, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
                .unwrap()
                .delay_ms,
            10
        );
    }

    #[test]
    fn without_a_counter_every_restart_is_immediate() {
        let mut record = RestartRecord::default();
        for faults in 1..5 {
            assert_eq!(
                record.on_faulted(faults, 0, 0, FIRST_BACKOFF_MS, MAX_BACKOFF_MS),
                Some(Decision {
                    delay_ms: 0,
                    deadline: 0
                })
            );
        }
    }

    #[test]
    fn failed_restart_is_decided_again() {
        let mut supervisor = Supervisor::default();
        assert!(supervisor.component_faulted(3, 1, 0, HZ).is_some());
        supervisor.restart_failed(3);
        assert!(supervisor.component_faulted(3, 1, MS, HZ).is_some());
        assert_eq!(supervisor.faults, 2);
        assert_eq!(supervisor.restarts, 0);
    }

    #[test]
    fn supervisor_counts_and_keeps_components_apart() {
        let mut supervisor = Supervisor::default();
        assert_eq!(
            supervisor.component_faulted(1, 1, 0, HZ).unwrap().delay_ms,
            0
        );
        supervisor.restarted(1);
        assert_eq!(
            supervisor.component_faulted(2, 1, MS, HZ).unwrap().delay_ms,
            0
        );
        supervisor.restarted(2);
        assert_eq!(
            supervisor
                .component_faulted(1, 2, 2 * MS, HZ)
                .unwrap()
                .delay_ms,
            10
        );
        supervisor.restarted(1);
        // Component 1 seen again (other notifications) while waiting for its deadline.
        assert_eq!(supervisor.component_faulted(1, 2, 3 * MS, HZ), None);
        assert_eq!(supervisor.component_faulted(MAX_COMPONENTS, 1, 0, HZ), None);
        assert_eq!((supervisor.restarts, supervisor.faults), (3, 3));
    }

    #[test]
    fn manifest_policies_apply_per_component() {
        let policies = [
            RestartPolicy::Never,
            RestartPolicy::Backoff {
                min_ms: 100,
                max_ms: 300,
            },
        ];
        let mut supervisor = Supervisor::new(&policies);
        // `never`: the fault is counted, nothing is restarted, and it stays decided.
        assert!(supervisor.never_restarts(0) && !supervisor.never_restarts(1));
        assert!(!supervisor.never_restarts(MAX_COMPONENTS));
        assert_eq!(supervisor.component_faulted(0, 1, 0, HZ), None);
        assert_eq!(supervisor.component_faulted(0, 1, 10 * MS, HZ), None);
        assert_eq!((supervisor.faults, supervisor.left_stopped), (1, 1));
        // Custom back-off: at once, then 100 ms, 200 ms, capped at 300 ms.
        let mut now = 0;
        let mut delays = [0; 4];
        for (fault, delay) in delays.iter_mut().enumerate() {
            let decision = supervisor
                .component_faulted(1, fault as u64 + 1, now, HZ)
                .unwrap();
            *delay = decision.delay_ms;
            now += decision.delay_ms * MS + MS;
        }
        assert_eq!(delays, [0, 100, 200, 300]);
        // Components past the manifest's list get the default.
        assert_eq!(
            supervisor.component_faulted(5, 1, 0, HZ).unwrap().delay_ms,
            0
        );
    }
}
