//! The modes (enforced, off, unlisted VMs as off) and the VM table built from the configuration.

use super::*;

#[test]
fn enforced_vms_are_enrolled_from_the_start_for_good() {
    let mut guard = guard();
    assert!(guard.is_enrolled(ENFORCED_VM));
    assert_eq!(
        guard.check(ENFORCED_VM, Ipa(UART), 4),
        Verdict {
            allowed: false,
            enrolled: true
        }
    );
    // ENROLL is accepted and changes nothing.
    assert_eq!(enroll(&mut guard, ENFORCED_VM), status(SUCCESS));
    map(&mut guard, ENFORCED_VM, UART);
    assert!(allowed(&mut guard, ENFORCED_VM, UART, 4));
    // Nothing a guest can call un-enrols it.
    for function in ALL_FUNCTIONS.into_iter().chain([0xC600_0009, 0x8600_0006]) {
        for x1 in [0, UART, UART + 1, 0x8000_0000] {
            call(&mut guard, ENFORCED_VM, function, [x1, 0, 0]);
            assert!(guard.is_enrolled(ENFORCED_VM));
        }
    }
    assert!(!allowed(&mut guard, ENFORCED_VM, UART, 4));
}

#[test]
fn off_vms_get_no_service_and_no_guard() {
    let mut guard = guard();
    for function in ALL_FUNCTIONS {
        for args in [[0; 3], [UART, 0, 0]] {
            assert_eq!(
                call(&mut guard, OFF_VM, function, args),
                status(NOT_SUPPORTED),
                "{function:#x}"
            );
        }
    }
    assert_eq!(snapshot(&guard, OFF_VM), (false, vec![], 0));
    assert_eq!(
        guard.check(OFF_VM, Ipa(UART), 4),
        Verdict {
            allowed: true,
            enrolled: false
        }
    );
}

#[test]
fn unlisted_vms_are_treated_as_off() {
    let mut guard = guard();
    for vm in [UNLISTED_VM, 4, 0xffff] {
        for function in ALL_FUNCTIONS {
            assert_eq!(
                call(&mut guard, vm, function, [0; 3]),
                status(NOT_SUPPORTED),
                "vm{vm} {function:#x}"
            );
        }
        assert_eq!(
            guard.check(vm, Ipa(UART), 4),
            Verdict {
                allowed: true,
                enrolled: false
            }
        );
        assert!(!guard.is_enrolled(vm));
        assert_eq!(guard.mapped(vm), []);
    }
    // Malformed checks for them are counted together.
    assert!(!allowed(&mut guard, UNLISTED_VM, UART, 0));
    assert!(!allowed(&mut guard, 0xffff, UART, 0));
    assert_eq!(guard.refused(4), 2);
    assert_eq!(guard.refused(OPTIONAL_VM), 0);
}

#[test]
fn the_configuration_gives_each_vm_its_ram_and_mode() {
    use hv_component_config::{MmioGuardMode, Name, Region, System, Vm};
    let vm = |id: u16, host: bool, base: u64, mode| Vm {
        id,
        name: Name::try_from("vm").unwrap(),
        host,
        memory: Region {
            base,
            size: 0x1000_0000,
        },
        // A guest sees its RAM at the board's RAM base whatever backs it; the host at its PA.
        ram_ipa: if host { base } else { 0x4000_0000 },
        mte: false,
        shared_ipa_bit: None,
        cpus: Default::default(),
        mmio_guard: mode,
        devices: Default::default(),
    };
    let mut system = System {
        ram: Region {
            base: RAM_START,
            size: RAM_END - RAM_START,
        },
        hypervisor: Region {
            base: RAM_START,
            size: 0x200_0000,
        },
        vms: Default::default(),
        components: Default::default(),
        gics: Default::default(),
        console: Region::default(),
        control_line: None,
    };
    for config in [
        vm(0, true, 0x4200_0000, MmioGuardMode::Optional),
        vm(1, false, 0x6000_0000, MmioGuardMode::Enforced),
        vm(2, false, 0x7000_0000, MmioGuardMode::Off),
    ] {
        system.vms.push(config).unwrap();
    }
    let configs = vm_configs(&system);
    // The host's RAM is all of the system's, the hypervisor's part included; a guest's is where
    // it sees it (its IPAs), not the physical memory behind it.
    assert_eq!(
        configs[0],
        VmConfig {
            vm: 0,
            ram_start: RAM_START,
            ram_end: RAM_END,
            mode: Mode::Optional
        }
    );
    assert_eq!(
        configs[1],
        VmConfig {
            vm: 1,
            ram_start: 0x4000_0000,
            ram_end: 0x5000_0000,
            mode: Mode::Enforced
        }
    );
    assert_eq!(configs[2].mode, Mode::Off);
    // A guard built from it enforces VM 1 from the start and offers nothing to VM 2.
    let guard = Guard::new(&configs);
    assert_eq!(guard.configs().count(), 3);
}

#[test]
fn a_table_with_duplicates_or_large_ids_keeps_the_first_entry() {
    let guard = Guard::new(&[
        VmConfig { vm: 9, ..TABLE[0] },
        TABLE[1],
        VmConfig {
            mode: Mode::Off,
            ..TABLE[1]
        },
    ]);
    let configs: Vec<&VmConfig> = guard.configs().collect();
    assert_eq!(configs, [&TABLE[1]]);
}
