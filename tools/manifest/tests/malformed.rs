//! Every file in `tests/malformed/` must be refused with one diagnostic: the expected line and
//! a message (field path included) containing the expected text.

use std::path::{Path, PathBuf};

/// (file name without `.toml`, expected line, expected text in `FIELD: MESSAGE`).
const CASES: &[(&str, usize, &str)] = &[
    ("syntax-error", 4, "TOML syntax error: unclosed table"),
    (
        "bad-settings",
        9,
        "component[0].settings: unknown field `polcy`, expected one of `policy`, `device-tables`, `crash`",
    ),
    (
        "settings-not-taken",
        9,
        "component[0].settings: hv-supervisor takes no settings (found `verbose`)",
    ),
    (
        "unknown-field",
        4,
        "host.kernal: unknown field `kernal`, expected one of `kernel`",
    ),
    (
        "unknown-nested-field",
        8,
        "component[0].restart.min-dealy: unknown field `min-dealy`",
    ),
    (
        "wrong-type",
        4,
        "machine.cpus: invalid type: string \"two\", expected u32",
    ),
    (
        "missing-crate",
        5,
        "component[0].crate: missing field `crate`",
    ),
    (
        "bad-device-mode",
        5,
        "vm[0].devices[0].mode: unknown variant `direct`, expected `passthrough` or `emulated`",
    ),
    (
        "bad-log-level",
        4,
        "kernel.log-level: unknown variant `verbose`",
    ),
    (
        "unknown-board",
        2,
        "board: \"qemu-vrit\" is not a board; known: qemu-virt, rpi4; did you mean \"qemu-virt\"?",
    ),
    (
        "component-named-twice",
        10,
        "component[1].name: \"supervisor\" is already the name of component[0] (line 6)",
    ),
    (
        "guest-without-interrupt-grants",
        10,
        "component[0]: component \"vm-manager\" takes the \"mmio\" route of a system with guest VMs, so it needs kernel-ops \"virq-timer\", \"gic-access\", \"console-access\"",
    ),
    (
        "bad-clock",
        9,
        "vm[0].clock: \"guest\" is not a clock; use \"host\" or \"zero\"",
    ),
    (
        "vm-named-twice",
        7,
        "vm[1].name: \"linux\" is already the name of vm[0] (line 4)",
    ),
    (
        "name-too-long",
        6,
        "component[0].name: \"a-very-long-component-name\" is not a valid name",
    ),
    (
        "unknown-interface",
        14,
        "component[1].calls[0]: \"supervisr\" is not an interface any component could serve; \
         known: guest-trap, supervisor, mmio-guard, mem-protect; did you mean \"supervisor\"?",
    ),
    (
        "unknown-notify-target",
        14,
        "component[1].notifies[0]: \"supervisr\" is not a component; known: supervisor, \
         vm-manager; did you mean \"supervisor\"?",
    ),
    (
        "unserved-call",
        10,
        "component[0].calls[0]: no component serves \"supervisor\"; add serves = \"supervisor\"",
    ),
    (
        "unknown-route",
        9,
        "component[0].routes[0]: \"smcc\" is not a trap that can be routed; known: smccc",
    ),
    (
        "two-routes",
        14,
        "component[1].routes[0]: the \"smccc\" trap is already routed to component \"vm-manager\"",
    ),
    (
        "bad-smccc-range",
        8,
        "component[0].routes[0]: \"smccc:0xC6000008-0xC6000005\" is not an SMCCC function range",
    ),
    (
        "overlapping-smccc-ranges",
        14,
        "component[1].routes[0]: SMCCC functions 0xc6000007..=0xc6000009 overlap a range routed to component \"mmio-guard\"",
    ),
    (
        "two-servers",
        13,
        "component[1].serves: \"supervisor\" is already served by component \"supervisor\"",
    ),
    (
        "call-cycle",
        15,
        "component[1].calls[0]: the components' calls form a cycle (supervisor -> vm-manager -> \
         supervisor)",
    ),
    ("bad-size", 8, "component[0].memory: \"1Q\" is not a size"),
    (
        "size-not-page-multiple",
        8,
        "component[0].memory: 1000 bytes is not a multiple of 4 KiB",
    ),
    (
        "vm-size-not-block-multiple",
        8,
        "vm[1].memory: 63 MiB is not a multiple of 2 MiB; use e.g. \"64M\"",
    ),
    (
        "stack-not-below-memory",
        9,
        "component[0].stack: the stack (64 KiB) must be smaller than the component's memory",
    ),
    (
        "bad-duration",
        11,
        "component[0].restart.min-delay: \"fast\" is not a duration",
    ),
    (
        "overlapping-vms",
        17,
        "vm[2].address: 0x68000000..0x78000000 overlaps VM \"guest-a\" (0x60000000..0x70000000, \
         line 9)",
    ),
    (
        "misaligned-address",
        9,
        "vm[1].address: 0x60100000 is not 2 MiB aligned; use 0x60000000 or 0x60200000",
    ),
    (
        "memory-beyond-ram",
        10,
        "vm[1].memory: the VMs' memory up to here plus the hypervisor's 32 MiB is 1056 MiB, more \
         than the machine's 1 GiB of RAM",
    ),
    (
        "address-outside-ram",
        9,
        "vm[1].address: 0x80000000..0x84000000 (64 MiB) is outside the machine's 1 GiB of RAM",
    ),
    (
        "vcpus-beyond-pins",
        8,
        "vm[0].vcpus: 3 vCPUs but cpus pins only 2",
    ),
    (
        "vcpus-beyond-machine",
        10,
        "vm[0].vcpus: 3 vCPUs but the machine has 2 CPUs",
    ),
    (
        "pin-missing-cpu",
        5,
        "vm[0].cpus[1]: CPU 5 does not exist: the machine has CPUs 0 to 1",
    ),
    (
        "missing-kernel-file",
        4,
        "host.kernel: \"images/no-such-Image\" does not exist",
    ),
    (
        "missing-dtb-file",
        5,
        "vm[0].dtb: \"no-such.dtb\" does not exist",
    ),
    (
        "unknown-device",
        7,
        "vm[0].devices[1].name: a qemu-virt has no device \"uart7\"; known: uart0, rtc",
    ),
    (
        "device-passed-through-twice",
        10,
        "vm[1].devices[0].name: \"uart0\" is already passed through to VM \"linux\" (line 5)",
    ),
    (
        "two-host-vms",
        10,
        "vm[1].host: vm \"linux\" is already the host VM",
    ),
    (
        "host-twice",
        8,
        "vm[0].host: [host] already describes the host VM",
    ),
    ("no-host-vm", 1, "the manifest has no host VM"),
    (
        "guest-without-memory",
        5,
        "vm[0].memory: a guest VM needs its memory size",
    ),
    (
        "shared-bit-too-low",
        9,
        "vm[0].shared-ipa-bit: 30 is not a bit a guest can steal: use 32 to 39 (above its RAM and devices, inside the 40-bit IPA space)",
    ),
    (
        "shared-bit-on-host",
        6,
        "vm[0].shared-ipa-bit: shared-ipa-bit is for guest VMs: the host reaches every page it owns; remove it",
    ),
    (
        "mte-without-mte-cpus",
        9,
        "vm[0].mte: a rpi4's CPUs have no MTE (Memory Tagging Extension); remove mte = true",
    ),
    (
        "guests-share-a-cpu",
        17,
        "vm[1].cpus[1]: CPU 3 already runs VM \"guest-a\" (line 9); a CPU runs the host's vCPUs \
         or one guest vCPU: pin each guest vCPU to a CPU of its own",
    ),
    (
        "rpi4-ram-size",
        4,
        "machine.ram: 3 GiB is not a rpi4's RAM: 1G, 2G, 4G, 8G",
    ),
];

fn malformed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

#[test]
fn every_malformed_manifest_is_refused_at_the_right_line() {
    let mut failures = Vec::new();
    for &(name, line, expected) in CASES {
        let path = malformed_dir().join(format!("{name}.toml"));
        let error = match hv_manifest::load(&path) {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            Err(error) => error,
        };
        let diagnostics = error.diagnostics();
        let rendered: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                if d.field.is_root() {
                    d.message.clone()
                } else {
                    format!("{}: {}", d.field, d.message)
                }
            })
            .collect();
        let text = error.to_string();
        let prefix = format!("{}:{line}: ", path.display());
        if diagnostics.len() != 1
            || diagnostics[0].line != line
            || !rendered[0].contains(expected)
            || !text.starts_with(&prefix)
        {
            failures.push(format!(
                "{name}: expected line {line} and {expected:?}\n  got:\n    {}",
                text.replace('\n', "\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_file() {
    let mut files: Vec<String> = std::fs::read_dir(malformed_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".toml").map(str::to_owned))
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES
        .iter()
        .map(|(name, _, _)| (*name).to_owned())
        .collect();
    cases.sort();
    assert_eq!(files, cases);
}
