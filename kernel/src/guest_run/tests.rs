use super::*;

const ALL: Maintenance = Maintenance {
    clean_data_cache: true,
    invalidate_instruction_cache: true,
    scrub_tags: false,
};

#[test]
fn a_new_vm_owes_its_maintenance_until_its_first_vcpu_enters() {
    let mut run = GuestRun::new(2, false);
    assert_eq!(run.owed(), ALL);
    assert_eq!(run.counts().loads, 1);
    run.start(0, 0x4008_0000, 0x4400_0000).unwrap();
    // Starting is not running: nothing is done yet.
    assert_eq!(run.owed(), ALL);
    assert_eq!(run.entering(0), Some((0x4008_0000, 0x4400_0000, ALL)));
    assert_eq!(run.owed(), Maintenance::NONE);
    assert_eq!(run.vcpu(0), Some(VcpuState::On));
    // A second vCPU started later owes nothing: the VM's memory was done once.
    run.start(1, 0x4008_1000, 7).unwrap();
    assert_eq!(run.entering(1), Some((0x4008_1000, 7, Maintenance::NONE)));
    let counts = run.counts();
    assert_eq!(
        (
            counts.data_cache_cleans,
            counts.instruction_cache_invalidations,
            counts.tag_scrubs
        ),
        (1, 1, 0)
    );
}

#[test]
fn tags_are_scrubbed_only_for_a_vm_that_may_use_mte() {
    let mut tagged = GuestRun::new(1, true);
    assert!(tagged.owed().scrub_tags);
    tagged.start(0, 0, 0).unwrap();
    assert!(tagged.entering(0).unwrap().2.scrub_tags);
    assert_eq!(tagged.counts().tag_scrubs, 1);

    let mut plain = GuestRun::new(1, false);
    assert!(!plain.owed().scrub_tags);
    plain.start(0, 0, 0).unwrap();
    plain.entering(0).unwrap();
    assert_eq!(plain.counts().tag_scrubs, 0);
    assert!(
        !plain.owed().any(),
        "nothing is left pending that can never be cleared"
    );
}

#[test]
fn cpu_on_follows_psci() {
    let mut run = GuestRun::new(2, false);
    assert_eq!(run.start(2, 0, 0), Err(StartError::NoSuchVcpu));
    run.start(1, 0x10, 0).unwrap();
    assert_eq!(run.start(1, 0x10, 0), Err(StartError::OnPending));
    assert_eq!(
        run.affinity(1),
        Some(VcpuState::Starting {
            entry: 0x10,
            context: 0
        })
    );
    run.entering(1).unwrap();
    assert_eq!(run.start(1, 0x10, 0), Err(StartError::AlreadyOn));
    // Entering twice finds nothing to start.
    assert_eq!(run.entering(1), None);
    run.stopped(1);
    assert_eq!(run.affinity(1), Some(VcpuState::Off));
    run.start(1, 0x20, 1).unwrap();
    assert_eq!(run.entering(1).map(|(entry, ..)| entry), Some(0x20));
}

#[test]
fn a_failed_power_on_leaves_the_vcpu_off() {
    let mut run = GuestRun::new(1, false);
    run.start(0, 0, 0).unwrap();
    run.start_failed(0);
    assert_eq!(run.vcpu(0), Some(VcpuState::Off));
    // Still owed: nobody ran.
    assert_eq!(run.owed(), ALL);
}

#[test]
fn a_reset_owes_the_maintenance_again_once() {
    let mut run = GuestRun::new(2, true);
    run.start(0, 0, 0).unwrap();
    run.entering(0).unwrap();
    // vCPU 0 asks for the reset: it is stopped in the kernel, so the load is allowed.
    run.loaded(Some(0)).unwrap();
    assert_eq!(run.vcpu(0), Some(VcpuState::Off));
    assert!(run.owed().clean_data_cache && run.owed().scrub_tags);
    run.start(0, 0, 0).unwrap();
    run.entering(0).unwrap();
    run.start(1, 0, 0).unwrap();
    run.entering(1).unwrap();
    assert_eq!(
        run.counts(),
        MaintenanceCounts {
            loads: 2,
            data_cache_cleans: 2,
            instruction_cache_invalidations: 2,
            tag_scrubs: 2,
        }
    );
}

#[test]
fn memory_is_not_reloaded_under_a_running_vcpu() {
    let mut run = GuestRun::new(2, false);
    run.start(0, 0, 0).unwrap();
    run.entering(0).unwrap();
    run.start(1, 0, 0).unwrap();
    // vCPU 1 is being started: its CPU may be about to read memory.
    assert_eq!(run.loaded(Some(0)), Err(LoadError::VcpuRuns(1)));
    run.entering(1).unwrap();
    assert_eq!(run.loaded(Some(0)), Err(LoadError::VcpuRuns(1)));
    assert_eq!(run.loaded(None), Err(LoadError::VcpuRuns(0)));
    // Refused loads changed nothing.
    assert_eq!(run.counts().loads, 1);
    assert_eq!(run.vcpu(0), Some(VcpuState::On));
    run.stopped(1);
    run.loaded(Some(0)).unwrap();
    assert_eq!(run.counts().loads, 2);
}

#[test]
fn a_stopped_vm_starts_nothing_until_reloaded() {
    let mut run = GuestRun::new(2, false);
    run.start(0, 0, 0).unwrap();
    run.entering(0).unwrap();
    // vCPU 0 powers the VM off: it stops at once, and the VM with it (vCPU 1 is off).
    run.stopped(0);
    assert!(run.request_stop());
    assert!(run.is_stopped());
    assert_eq!(run.start(0, 0, 0), Err(StartError::VmStopped));
    // The host restarts it: wiped, reloaded, started afresh.
    run.loaded(None).unwrap();
    assert!(!run.is_stopped() && !run.is_stopping());
    run.start(0, 0, 0).unwrap();
    assert_eq!(run.entering(0).map(|(.., owed)| owed), Some(ALL));
}

#[test]
fn running_vcpus_stop_at_their_next_exit_and_only_then_is_the_vm_stopped() {
    let mut run = GuestRun::new(3, false);
    run.start(0, 0, 0).unwrap();
    run.entering(0).unwrap();
    run.start(1, 0, 0).unwrap();
    run.entering(1).unwrap();
    run.start(2, 0, 0).unwrap();
    // The host stops the VM: vCPU 2, started but not running, is cancelled; 0 and 1 run on.
    assert!(!run.request_stop());
    assert_eq!(run.vcpu(2), Some(VcpuState::Off));
    assert!(run.is_stopping() && !run.is_stopped());
    assert!(run.must_stop(0) && run.must_stop(1) && !run.must_stop(2));
    // Not reloadable, not startable, while they run.
    assert_eq!(run.loaded(None), Err(LoadError::VcpuRuns(0)));
    assert_eq!(run.start(2, 0, 0), Err(StartError::VmStopped));
    run.stopped(0);
    assert!(!run.is_stopped());
    run.stopped(1);
    assert!(run.is_stopped());
    // A cancelled vCPU's CPU finds nothing to run.
    assert_eq!(run.entering(2), None);
    run.loaded(None).unwrap();
    assert_eq!(run.counts().loads, 2);
}

#[test]
fn vcpu_counts_are_capped() {
    let run = GuestRun::new(MAX_VCPUS + 4, false);
    assert_eq!(run.vcpu(MAX_VCPUS - 1), Some(VcpuState::Off));
    assert_eq!(run.vcpu(MAX_VCPUS), None);
}
