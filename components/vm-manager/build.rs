//! Build script: links the VM manager with the shared component linker script (see
//! `components/rt/build_support.rs`: `HV_COMPONENT_BASE` / `HV_COMPONENT_SIZE`), and turns the
//! test-only crash hook settings into compile-time values for `src/crash_hook.rs`:
//!
//! - `HV_VM_MANAGER_CRASH_ON_CALL=<N>` (decimal, N >= 1) enables the hook: the N-th guest_trap
//!   request served by an instance that was never restarted crashes it;
//! - `HV_VM_MANAGER_CRASH_KIND=<undefined|abort-kernel|panic>` (default `undefined`);
//! - `HV_VM_MANAGER_CRASH_ADDRESS=<hex>` for `abort-kernel` (default 0x40200000, the kernel
//!   image).
//!
//! With the hook enabled the crate is compiled with `--cfg vm_manager_crash_hook` and the
//! normalised values in `HV_VM_MANAGER_CRASH_{ON_CALL,KIND,ADDRESS}_VALUE` (decimal, kind as
//! 0 = undefined, 1 = abort-kernel, 2 = panic). Unset: no hook, the normal build.
//!
//! It also turns on the test-only grant probe (`src/probe.rs`): `HV_VM_MANAGER_PROBE_GRANTS=1`
//! compiles the crate with `--cfg vm_manager_probe_grants`, and the component then tries, at
//! start-up, a CALL and a kernel operation its manifest does not grant and logs the kernel's
//! answers. Unset, empty or `0`: no probe, the normal build.
//!
//! And it turns the system's VM and device settings (set by `cargo xtask build` from the
//! manifest) into const tables, `config.rs` in OUT_DIR, which `src/config.rs` includes; the
//! formats are described (and parsed) in `build_config.rs`:
//!
//! - `HV_VM_MANAGER_VMS=<vmid>:<name>,...` (e.g. `0:host`): names for console prefixes;
//! - `HV_VM_MANAGER_EMULATED=<vmid>:<device>:<kind>:<base>:<size>,...` (hex base and size,
//!   kind `pl011`; e.g. `0:uart0:pl011:0x9000000:0x1000`): the devices this component emulates;
//! - `HV_VM_MANAGER_MMIO_GUARD=1`: the system has an mmio-guard component, to ask before
//!   emulating an access and to advertise in the KVM feature bitmap.
//!
//! Unset or empty: empty tables, no guard.

include!("../rt/build_support.rs");
include!("build_config.rs");

const CRASH_ON_CALL: &str = "HV_VM_MANAGER_CRASH_ON_CALL";
const CRASH_KIND: &str = "HV_VM_MANAGER_CRASH_KIND";
const CRASH_ADDRESS: &str = "HV_VM_MANAGER_CRASH_ADDRESS";
const DEFAULT_CRASH_ADDRESS: u64 = 0x4020_0000;
const PROBE_GRANTS: &str = "HV_VM_MANAGER_PROBE_GRANTS";
const VMS: &str = "HV_VM_MANAGER_VMS";
const EMULATED: &str = "HV_VM_MANAGER_EMULATED";
const MMIO_GUARD: &str = "HV_VM_MANAGER_MMIO_GUARD";

fn main() {
    println!("cargo:rerun-if-changed=build_config.rs");
    write_link_script();
    crash_hook();
    grant_probe();
    system_config();
}

/// Writes `config.rs` (the VM names, emulated devices and the guard flag) into OUT_DIR.
fn system_config() {
    let setting = |name: &str| {
        println!("cargo:rerun-if-env-changed={name}");
        std::env::var(name).unwrap_or_default()
    };
    let vms = parse_vms(&setting(VMS)).unwrap_or_else(|e| panic!("{VMS}: {e}"));
    let emulated = parse_emulated(&setting(EMULATED)).unwrap_or_else(|e| panic!("{EMULATED}: {e}"));
    let mmio_guard =
        parse_mmio_guard(&setting(MMIO_GUARD)).unwrap_or_else(|e| panic!("{MMIO_GUARD}: {e}"));
    for device in &emulated {
        if !vms.iter().any(|vm| vm.vm == device.vm) {
            println!(
                "cargo:warning={EMULATED}: VM {} of device {} has no name in {VMS}; its console \
                 lines are prefixed [vm{}]",
                device.vm, device.device, device.vm
            );
        }
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("config.rs"),
        generate_config(&vms, &emulated, mmio_guard),
    )
    .expect("write the configuration tables");
}

fn grant_probe() {
    println!("cargo::rustc-check-cfg=cfg(vm_manager_probe_grants)");
    println!("cargo:rerun-if-env-changed={PROBE_GRANTS}");
    let value = std::env::var(PROBE_GRANTS).unwrap_or_default();
    match value.trim() {
        "" | "0" => {}
        "1" => {
            println!("cargo:rustc-cfg=vm_manager_probe_grants");
            println!(
                "cargo:warning=test grant probe enabled: the VM manager tries ungranted calls at \
                 start-up"
            );
        }
        other => panic!("{PROBE_GRANTS}={other:?}: expected 1 (or 0 / unset for no probe)"),
    }
}

fn crash_hook() {
    println!("cargo::rustc-check-cfg=cfg(vm_manager_crash_hook)");
    for name in [CRASH_ON_CALL, CRASH_KIND, CRASH_ADDRESS] {
        println!("cargo:rerun-if-env-changed={name}");
    }
    let setting = |name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let Some(on_call) = setting(CRASH_ON_CALL) else {
        for name in [CRASH_KIND, CRASH_ADDRESS] {
            if setting(name).is_some() {
                println!("cargo:warning={name} is ignored without {CRASH_ON_CALL}");
            }
        }
        return;
    };
    let on_call: u64 = on_call
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .unwrap_or_else(|| panic!("{CRASH_ON_CALL}={on_call:?}: expected a decimal number >= 1"));
    let kind = setting(CRASH_KIND).unwrap_or_else(|| "undefined".into());
    let kind_code = match kind.trim() {
        "undefined" => 0,
        "abort-kernel" => 1,
        "panic" => 2,
        other => panic!("{CRASH_KIND}={other:?}: expected undefined, abort-kernel or panic"),
    };
    let address = setting(CRASH_ADDRESS)
        .map(|value| parse_hex_setting(CRASH_ADDRESS, &value))
        .unwrap_or(DEFAULT_CRASH_ADDRESS);
    assert!(
        address.is_multiple_of(8),
        "{CRASH_ADDRESS}={address:#x}: must be 8-byte aligned (the read must fault on the \
         address, not on alignment)"
    );
    println!("cargo:rustc-cfg=vm_manager_crash_hook");
    println!("cargo:rustc-env={CRASH_ON_CALL}_VALUE={on_call}");
    println!("cargo:rustc-env={CRASH_KIND}_VALUE={kind_code}");
    println!("cargo:rustc-env={CRASH_ADDRESS}_VALUE={address}");
    let how = match kind_code {
        1 => format!("abort-kernel: read of {address:#x}"),
        _ => kind.trim().to_string(),
    };
    println!(
        "cargo:warning=test crash hook enabled: request {on_call} crashes the first instance ({how})"
    );
}
