//! Test guest `vm-host`: runs as the host VM beside the guest VM `guest1`
//! (`manifests/tests/guest-vm.toml`, `guest-vm-reset.toml`) and checks that the guest's memory
//! and CPUs are not the host's, and the host calls on guests.
//!
//! Cases:
//!
//! - `guest_memory_is_not_the_hosts`: the first word past the host's RAM (the DTB's memory
//!   range) is the guest's: a read and a write take the abort pKVM injects for memory the host
//!   does not own (a data abort with ISS.S1PTW set, FAR the address).
//! - `guest_cpus_are_not_the_hosts`: the DTB lists the host's CPU only, and PSCI CPU_ON of the
//!   guest's CPU (MPIDR 1) is DENIED.
//! - `host_calls_refuse_what_is_not_a_guest`: HOST_VM_STATE and HOST_VM_RESTART of the host
//!   (VM 0) and of VM 5 answer INVALID_PARAMETER.
//! - `the_guest_runs_its_course`: polls HOST_VM_STATE(1). A guest that powers off is restarted
//!   with HOST_VM_RESTART (a second restart while it runs answers VM_RUNNING), stopped 10 ms
//!   into its second run with HOST_VM_STOP (it must be OFF soon after, with two starts),
//!   restarted again and must power off by itself after its third start; a guest that resets
//!   itself must reach its third start. Fails after 60 s of counter time.
//!
//!   With `vm-host.vm-manager-crash` on the command line
//!   (`manifests/tests/guest-vm-vm-manager-crash.toml`, whose VM manager crashes on the third
//!   PSCI_FEATURES call), once the guest runs the host makes that call three times: the
//!   restarted VM manager has lost the guest's emulated state, so it stops the guest and
//!   reports it off with no start; the host restarts it, and it must run its course and power
//!   off.
//!
//! Built for the host the crate is an empty program, so `cargo check --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod guest {
    //! The test cases (bare metal only).

    use hv_guest_rt::smccc::host::code::{INVALID_PARAMETER, SUCCESS, VM_RUNNING};
    use hv_guest_rt::smccc::host::{HOST_VM_RESTART, HOST_VM_STATE, HOST_VM_STOP, vm_state};
    use hv_guest_rt::{
        Env, TestFailure, TestResult, counter, ensure, ensure_eq, expect_data_aborts, fail, psci,
        smccc::hvc,
    };

    hv_guest_rt::test_guest![
        guest_memory_is_not_the_hosts,
        guest_cpus_are_not_the_hosts,
        host_calls_refuse_what_is_not_a_guest,
        the_guest_runs_its_course,
    ];

    /// The guest VM.
    const GUEST: u64 = 1;
    /// PSCI DENIED.
    const DENIED: i64 = -3;

    /// HOST_VM_STATE of `vm`: (x0, state, starts).
    fn vm_state_of(vm: u64) -> (i64, u64, u64) {
        let [x0, x1, x2, ..] = hvc(HOST_VM_STATE, &[vm]);
        (x0 as i64, x1, x2)
    }

    fn restart(vm: u64) -> i64 {
        hvc(HOST_VM_RESTART, &[vm])[0] as i64
    }

    fn stop(vm: u64) -> i64 {
        hvc(HOST_VM_STOP, &[vm])[0] as i64
    }

    fn guest_memory_is_not_the_hosts(env: &Env) -> TestResult {
        let Some(host_end) = env
            .fdt()
            .memory()
            .regions()
            .filter_map(|region| Some(region.starting_address as u64 + region.size? as u64))
            .max()
        else {
            fail!("the DTB has no memory range");
        };
        for taken in expect_data_aborts(host_end, "the guest's memory")? {
            ensure!(
                taken.is_host_ownership_abort(),
                "an access to the guest's memory ({host_end:#x}): not the injected abort: {taken}"
            );
        }
        Ok(())
    }

    fn guest_cpus_are_not_the_hosts(env: &Env) -> TestResult {
        let mut mpidrs = env.cpu_mpidrs();
        ensure_eq!(mpidrs.next(), Some(0));
        ensure_eq!(mpidrs.next(), None, "the host's DTB lists the guest's CPU");
        ensure_eq!(psci::cpu_on(1, 0x4200_0000, 0), DENIED);
        Ok(())
    }

    fn host_calls_refuse_what_is_not_a_guest(_env: &Env) -> TestResult {
        for vm in [0, 5] {
            ensure_eq!(vm_state_of(vm).0, INVALID_PARAMETER, "HOST_VM_STATE({vm})");
            ensure_eq!(restart(vm), INVALID_PARAMETER, "HOST_VM_RESTART({vm})");
            ensure_eq!(stop(vm), INVALID_PARAMETER, "HOST_VM_STOP({vm})");
        }
        Ok(())
    }

    /// Polls the guest until `done` says its state and starts are what is awaited.
    fn wait_for(what: &str, done: impl Fn(u64, u64) -> bool) -> Result<(u64, u64), TestFailure> {
        let deadline = counter::ticks() + 60 * counter::frequency();
        loop {
            let (code, state, starts) = vm_state_of(GUEST);
            if code != SUCCESS {
                fail!("HOST_VM_STATE(1) -> {code}");
            }
            if state == vm_state::FAILED {
                fail!("the guest could not be created or started");
            }
            if done(state, starts) {
                return Ok((state, starts));
            }
            if counter::ticks() > deadline {
                fail!("waited 60 s for the guest to {what}: state {state}, {starts} start(s)");
            }
        }
    }

    fn the_guest_runs_its_course(env: &Env) -> TestResult {
        let bootargs = env
            .fdt()
            .find_node("/chosen")
            .and_then(|chosen| chosen.property("bootargs"))
            .and_then(|bootargs| bootargs.as_str())
            .unwrap_or("");
        if bootargs.contains("vm-host.vm-manager-crash") {
            return the_guest_outlives_a_vm_manager_crash();
        }
        let (state, starts) = wait_for("power off or reset twice", |state, starts| {
            state == vm_state::OFF || starts >= 3
        })?;
        if state != vm_state::OFF {
            hv_guest_rt::println!("the guest reset itself: {starts} starts");
            return Ok(());
        }
        ensure_eq!(starts, 1, "starts when it first powered off");
        ensure_eq!(restart(GUEST), SUCCESS, "HOST_VM_RESTART of the guest");
        let (code, state, starts) = vm_state_of(GUEST);
        ensure_eq!(code, SUCCESS);
        ensure_eq!(starts, 2, "starts after the restart");
        ensure_eq!(state, vm_state::RUNNING, "state after the restart");
        ensure_eq!(restart(GUEST), VM_RUNNING, "a restart while it runs");
        // Its cases take about 50 ms: stop it 10 ms in, while it runs them.
        let deadline = counter::ticks() + counter::frequency() / 100;
        while counter::ticks() < deadline {}
        ensure_eq!(stop(GUEST), SUCCESS, "HOST_VM_STOP of the running guest");
        let (_, starts) = wait_for("stop", |state, _| state == vm_state::OFF)?;
        ensure_eq!(starts, 2, "starts when it was stopped");
        ensure_eq!(stop(GUEST), SUCCESS, "HOST_VM_STOP of a stopped guest");
        ensure_eq!(restart(GUEST), SUCCESS, "HOST_VM_RESTART after the stop");
        let (_, starts) = wait_for("power off again", |state, _| state == vm_state::OFF)?;
        ensure_eq!(starts, 3, "starts when it powered off again");
        hv_guest_rt::println!("the guest was stopped and powered off again");
        Ok(())
    }

    fn the_guest_outlives_a_vm_manager_crash() -> TestResult {
        wait_for("start", |_, starts| starts >= 1)?;
        for _ in 0..3 {
            // The third crashes the VM manager; its restarted instance answers it.
            // PSCI_FEATURES: the function the crash manifest's VM manager counts.
            let [x0, ..] = hvc(psci::PSCI_FEATURES, &[u64::from(psci::PSCI_VERSION)]);
            ensure_eq!(x0, 0, "PSCI_FEATURES(PSCI_VERSION)");
        }
        let (code, state, starts) = vm_state_of(GUEST);
        ensure_eq!(code, SUCCESS);
        ensure_eq!(
            (state, starts),
            (vm_state::OFF, 0),
            "the guest after the VM manager's restart: stopped, and no start of the new instance's"
        );
        ensure_eq!(
            restart(GUEST),
            SUCCESS,
            "HOST_VM_RESTART of the stopped guest"
        );
        let (_, starts) = wait_for("power off after its restart", |state, _| {
            state == vm_state::OFF
        })?;
        ensure_eq!(starts, 1, "starts when it powered off");
        hv_guest_rt::println!(
            "the guest outlived the VM manager's crash: stopped, restarted, powered off"
        );
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
