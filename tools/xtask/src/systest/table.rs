//! The table of system tests built from [`SystemTest`] entries: what each boots (manifest,
//! CPU, payload) and what it expects to see; the checks that are functions of their own live
//! in `rpi4.rs` and beside `run_all`.

use super::*;

/// Every system test: Linux on both machines with 1 and 2 CPUs, and each test guest on both.
pub(super) fn all_tests() -> Vec<SystemTest> {
    let mut tests = Vec::new();
    for cpu in [CpuModel::A72, CpuModel::Max] {
        for smp in [1, 2] {
            tests.push(SystemTest::new(
                format!("linux-boot-{cpu:?}-smp{smp}").to_lowercase(),
                cpu,
                smp,
                Payload::Linux,
            ));
        }
        tests.push(SystemTest::new(
            format!("guest-el1-basics-{cpu:?}").to_lowercase(),
            cpu,
            1,
            Payload::Guest("hv-guest-el1-basics"),
        ));
        // Two CPUs calling the VM manager (and through it the supervisor) at once.
        tests.push(SystemTest::new(
            format!("guest-smp-calls-{cpu:?}").to_lowercase(),
            cpu,
            2,
            Payload::Guest("hv-guest-smp-calls"),
        ));
    }
    // Component faults: the VM manager crashes once while Linux boots on two CPUs (its third
    // PSCI call), and reads memory outside its sandbox under the test guest.
    tests.push(SystemTest {
        crash: Some(Crash::Undefined(3)),
        ..SystemTest::new(
            "linux-vm-manager-restart-a72-smp2",
            CpuModel::A72,
            2,
            Payload::Linux,
        )
    });
    for (name, crash) in [
        ("kernel", Crash::ReadKernel(1)),
        ("peer", Crash::ReadPeer(2)),
        ("stack", Crash::StackOverflow(2)),
    ] {
        tests.push(SystemTest {
            crash: Some(crash),
            probe_grants: matches!(crash, Crash::ReadKernel(_)),
            ..SystemTest::new(
                format!("component-isolation-{name}-max"),
                CpuModel::Max,
                1,
                Payload::Guest("hv-guest-el1-basics"),
            )
        });
    }
    // Memory protection: the host's stage 2 is built lazily by mem-protect; Linux boots on it
    // with 1 and 2 CPUs, and a guest gives pages away and takes them back.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        for smp in [1, 2] {
            tests.push(SystemTest {
                manifest: Some("manifests/tests/mem-protect.toml"),
                expect_log: &["host stage 2: built lazily", "stage2-stats faults="],
                ..SystemTest::new(
                    format!("linux-lazy-stage2-{cpu:?}-smp{smp}").to_lowercase(),
                    cpu,
                    smp,
                    Payload::Linux,
                )
            });
        }
        tests.push(SystemTest {
            manifest: Some("manifests/tests/mem-protect.toml"),
            expect_log: &["host stage 2: built lazily"],
            ..SystemTest::new(
                format!("guest-host-memory-{cpu:?}").to_lowercase(),
                cpu,
                1,
                Payload::Guest("hv-guest-host-memory"),
            )
        });
    }
    // MMIO guard: the host VM's console is emulated and guarded; the guest exercises every
    // hypercall, enrolment, MAP/UNMAP, straddling and bad arguments; a second guest runs on a VM
    // the manifest enrols by force.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/mmio-guard.toml"),
            expect_log: &["mmio-guard: refused vm0"],
            ..SystemTest::new(
                format!("guest-mmio-guard-{cpu:?}").to_lowercase(),
                cpu,
                1,
                Payload::Guest("hv-guest-mmio-guard"),
            )
        });
        tests.push(SystemTest {
            manifest: Some("manifests/tests/mmio-guard-enforced.toml"),
            expect_log: &["mmio-guard: refused vm0"],
            ..SystemTest::new(
                format!("guest-mmio-enforced-{cpu:?}").to_lowercase(),
                cpu,
                1,
                Payload::GuestBin("hv-guest-mmio-guard", "hv-guest-mmio-enforced"),
            )
        });
    }
    // A trap no component can ever answer stops the VM: mem-protect (restart never) faults
    // on the guest's second stage-2 fault, the supervisor leaves it stopped for good, and the
    // host's next stage-2 fault ends the run with a clear error instead of hanging the vCPU.
    tests.push(SystemTest {
        manifest: Some("manifests/tests/mem-protect-crash.toml"),
        expect_log: &[
            "mem-protect: crash hook fires on stage-2 fault 2",
            "component mem-protect stays stopped for good (restart never)",
            "host VM stopped: its stage-2 fault goes to component mem-protect, which faulted and is never restarted",
        ],
        expect_exit: ExitStatus::VmStopped,
        ..SystemTest::new(
            "mem-protect-stopped-ends-the-host-a72",
            CpuModel::A72,
            1,
            Payload::Guest("hv-guest-el1-basics"),
        )
    });
    // An answer that does not fit the trap (Resume for an SMCCC call) is refused: the guest's
    // registers stay as they were and the VM stops with the reason.
    tests.push(SystemTest {
        manifest: Some("manifests/tests/vm-manager-misanswer.toml"),
        expect_log: &[
            "vm-manager: crash hook fires on request 3: misanswer",
            "the host's SMCCC call was answered Resume, which does not fit it",
            "host VM stopped at pc",
        ],
        expect_exit: ExitStatus::VmStopped,
        ..SystemTest::new(
            "misanswer-stops-the-host-a72",
            CpuModel::A72,
            1,
            Payload::Guest("hv-guest-el1-basics"),
        )
    });
    // A guest VM beside a test-guest host (tests/guests/vm-host), running tests/guests/vm-basic
    // on two CPUs of its own: the machine a guest is promised, isolation both ways, PSCI on its
    // own vCPUs (CPU_ON of its second); it powers off alone, the host restarts it (memory
    // wiped, images reloaded, maintenance done again once), stops it while it runs and restarts
    // it again; on max, a VM without MTE gets no tags.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/guest-vm.toml"),
            expect_log: &[
                "mem-protect: vm1 memslot ipa 0x40000000",
                "vm-maintenance vm=guest1 loads=1 dcache-cleans=1 icache-invalidations=1 tag-scrubs=0",
                "VM guest1 stopped: it powered off (PSCI SYSTEM_OFF); the host and other VMs go on",
                "vm-maintenance vm=guest1 loads=2 dcache-cleans=2 icache-invalidations=2 tag-scrubs=0",
                "VM guest1: stop requested",
                "vm-maintenance vm=guest1 loads=3 dcache-cleans=3 icache-invalidations=3 tag-scrubs=0",
            ],
            expect_console: &[
                "[guest1] 7 passed, 0 failed",
                "the guest was stopped and powered off again",
            ],
            ..SystemTest::new(
                format!("guest-vm-{cpu:?}").to_lowercase(),
                cpu,
                3,
                Payload::Guest("hv-guest-vm-host"),
            )
        });
    }
    // The VM manager crashes (its third PSCI_FEATURES call, made by the host once the guest
    // runs) and is restarted without the guest's emulated state: it stops the guest instead of
    // leaving it to run against a reset GIC; the host restarts it and it runs its course.
    tests.push(SystemTest {
        manifest: Some("manifests/tests/guest-vm-vm-manager-crash.toml"),
        expect_log: &[
            "vm-manager: crash hook fires on request 3: undefined",
            "vm-manager: restarted without its guests' state: guest VM 1 guest1 is stopped",
            "vm-maintenance vm=guest1 loads=2",
        ],
        expect_console: &[
            "[guest1] 7 passed, 0 failed",
            "the guest outlived the VM manager's crash: stopped, restarted, powered off",
        ],
        ..SystemTest::new(
            "guest-vm-vm-manager-crash-a72",
            CpuModel::A72,
            3,
            Payload::Guest("hv-guest-vm-host"),
        )
    });
    // A guest that resets itself (PSCI SYSTEM_RESET) starts again from wiped memory, its
    // maintenance done once per start; on max with MTE, its allocation tags (dirtied by a test
    // build of the kernel before it first ran, and set by the guest before each reset) read
    // zero at every start.
    const RESET_LOG_A72: &[&str] = &[
        "VM guest1: reset (vCPU 0)",
        "VM guest1: images reloaded (load 2); maintenance owed",
        "vm-maintenance vm=guest1 loads=2 dcache-cleans=2 icache-invalidations=2 tag-scrubs=0",
    ];
    const RESET_LOG_MTE: &[&str] = &[
        "test build: guest VM guest1's memory tags set to 0xa",
        "VM guest1: reset (vCPU 0)",
        "VM guest1: images reloaded (load 2); maintenance owed",
        "vm-maintenance vm=guest1 loads=1 dcache-cleans=1 icache-invalidations=1 tag-scrubs=1",
        "vm-maintenance vm=guest1 loads=2 dcache-cleans=2 icache-invalidations=2 tag-scrubs=2",
    ];
    for (cpu, manifest, expect_log) in [
        (
            CpuModel::A72,
            "manifests/tests/guest-vm-reset.toml",
            RESET_LOG_A72,
        ),
        (
            CpuModel::Max,
            "manifests/tests/guest-vm-mte.toml",
            RESET_LOG_MTE,
        ),
    ] {
        tests.push(SystemTest {
            manifest: Some(manifest),
            expect_log,
            expect_console: &["[guest1] 7 passed, 0 failed", "the guest reset itself"],
            kernel_features: if cpu == CpuModel::Max {
                &["dirty-guest-tags"]
            } else {
                &[]
            },
            ..SystemTest::new(
                format!("guest-vm-reset-{cpu:?}").to_lowercase(),
                cpu,
                2,
                Payload::Guest("hv-guest-vm-host"),
            )
        });
    }
    // Shared guest memory (seed 004): the guest shares a page through MEM_SHARE and its shared
    // IPA alias, the host finds, reads and answers it, MEM_UNSHARE takes it back from both.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/guest-share.toml"),
            expect_console: &["[guest1] 4 passed, 0 failed"],
            ..SystemTest::new(
                format!("guest-share-{cpu:?}").to_lowercase(),
                cpu,
                2,
                Payload::GuestBin("hv-guest-vm-share", "hv-guest-vm-share-host"),
            )
        });
    }
    // Interrupts for a guest: the emulated distributor, the virtual CPU interface, the
    // forwarded virtual timer, masking by distributor and by priority.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/guest-irq.toml"),
            expect_log: &["virq-count delivered="],
            expect_console: &["[guest1] 8 passed, 0 failed"],
            ..SystemTest::new(
                format!("guest-irq-{cpu:?}").to_lowercase(),
                cpu,
                3,
                Payload::GuestBin("hv-guest-vm-irq", "hv-guest-vm-irq-host"),
            )
        });
    }
    // Debian's Linux as a guest VM beside the host's: a two-vCPU guest that powers off (the
    // host goes on, and powers off when told), and a one-vCPU guest that reboots and comes back.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/linux-guest.toml"),
            expect_log: &["VM guest stopped: it powered off (PSCI SYSTEM_OFF)"],
            host_cpus: Some(1),
            input: &[ConsoleInput {
                after: "VM guest stopped: it powered off",
                times: 1,
                and_after: None,
                line: "go",
            }],
            ..SystemTest::new(
                format!("linux-guest-poweroff-{cpu:?}").to_lowercase(),
                cpu,
                3,
                Payload::LinuxBesideLinux {
                    guest_vcpus: 2,
                    guest_in_shell: false,
                    upstream_pkvm_guest: false,
                },
            )
        });
        tests.push(SystemTest {
            manifest: Some("manifests/tests/linux-guest-reboot.toml"),
            expect_log: &["VM guest: images reloaded (load 2)"],
            host_cpus: Some(1),
            input: &[ConsoleInput {
                after: " console: b\"HV-INIT: done",
                times: 2,
                and_after: None,
                line: "go",
            }],
            ..SystemTest::new(
                format!("linux-guest-reboot-{cpu:?}").to_lowercase(),
                cpu,
                2,
                Payload::LinuxBesideLinux {
                    guest_vcpus: 1,
                    guest_in_shell: false,
                    upstream_pkvm_guest: false,
                },
            )
        });
    }
    // One keyboard for the host's and the guest's consoles: Ctrl-] moves it.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/linux-guest-console.toml"),
            expect_log: &[
                " console: b\"typed-into-the-guest\"",
                "VM guest stopped: it powered off (PSCI SYSTEM_OFF)",
            ],
            host_cpus: Some(1),
            input: &[
                ConsoleInput {
                    after: " console: b\"HV-INIT: interactive shell",
                    times: 1,
                    and_after: None,
                    line: "\u{1d}echo typed-into-the-guest; poweroff -f",
                },
                ConsoleInput {
                    after: "VM guest stopped: it powered off",
                    times: 1,
                    and_after: None,
                    line: "\u{1d}go",
                },
            ],
            ..SystemTest::new(
                format!("linux-guest-console-{cpu:?}").to_lowercase(),
                cpu,
                2,
                Payload::LinuxBesideLinux {
                    guest_vcpus: 1,
                    guest_in_shell: true,
                    upstream_pkvm_guest: false,
                },
            )
        });
    }
    // Upstream Linux with its pKVM guest driver as an MMIO-guard-enforced guest beside the host:
    // its ioremapped devices declared with MMIO_GUARD_MAP, its DMA pools shared with MEM_SHARE.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/linux-pkvm-guest.toml"),
            expect_log: &["VM guest stopped: it powered off (PSCI SYSTEM_OFF)"],
            host_cpus: Some(1),
            input: &[ConsoleInput {
                after: "VM guest stopped: it powered off",
                times: 1,
                // This small guest can finish before the host reads its console: a line typed
                // then would be lost.
                and_after: Some("HV-INIT: waiting for a line on the console"),
                line: "go",
            }],
            ..SystemTest::new(
                format!("linux-pkvm-guest-{cpu:?}").to_lowercase(),
                cpu,
                3,
                Payload::LinuxBesideLinux {
                    guest_vcpus: 2,
                    guest_in_shell: false,
                    upstream_pkvm_guest: true,
                },
            )
        });
    }
    // Linux as the host on CPUs 0-1 with two bare-metal guests on CPUs 2 and 3.
    for cpu in [CpuModel::A72, CpuModel::Max] {
        tests.push(SystemTest {
            manifest: Some("manifests/tests/guests-with-linux.toml"),
            expect_log: &[
                "VM guest1 stopped: it powered off (PSCI SYSTEM_OFF)",
                "VM guest2 stopped: it powered off (PSCI SYSTEM_OFF)",
            ],
            expect_console: &["[guest1] 7 passed, 0 failed", "[guest2] 7 passed, 0 failed"],
            host_cpus: Some(2),
            ..SystemTest::new(
                format!("linux-with-guests-{cpu:?}-smp4").to_lowercase(),
                cpu,
                4,
                Payload::Linux,
            )
        });
    }
    // The component template joins a manifest and serves the hypercalls routed to it.
    tests.push(SystemTest {
        manifest: Some("manifests/tests/template.toml"),
        expect_log: &["template: component 3 up, counter at 40"],
        ..SystemTest::new(
            "guest-template-calls-a72",
            CpuModel::A72,
            1,
            Payload::Guest("hv-guest-template-calls"),
        )
    });
    hot_swap::tests(&mut tests);
    tests
}
