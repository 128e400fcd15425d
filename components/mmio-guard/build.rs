//! Build script: links the MMIO guard with the shared component linker script (see
//! `components/rt/build_support.rs`: `HV_COMPONENT_BASE` / `HV_COMPONENT_SIZE`), and turns the
//! manifest's MMIO guard settings into a table.
//!
//! `HV_MMIO_GUARD_VMS` (set by `cargo xtask build` from the manifest) lists the VMs the guard
//! serves, comma-separated `vmid:ram_start:ram_end:mode` entries (the format is described in
//! `src/vm_table.rs`). The table is written to `$OUT_DIR/mmio_guard_vms.rs` as
//! `pub const VMS: &[VmConfig]`, which `src/policy.rs` includes. A malformed setting fails the
//! build with the entry and what is wrong with it.
//!
//! Unset or empty, the table holds VM 0 with no RAM known and mode `optional`: enough for host
//! builds and tests, never what a composed system should run with (a warning says so when
//! building for the target).

include!("../rt/build_support.rs");
include!("src/vm_table.rs");

const VMS_SETTING: &str = "HV_MMIO_GUARD_VMS";
const VMS_FORMAT: &str = "expected comma-separated `vmid:ram_start:ram_end:mode` entries, \
                          e.g. `0:0x40000000:0x80000000:optional` (mode: off, optional or enforced)";

fn vm_table() -> Vec<VmEntry> {
    println!("cargo:rerun-if-env-changed={VMS_SETTING}");
    println!("cargo:rerun-if-changed=src/vm_table.rs");
    let text = match std::env::var(VMS_SETTING) {
        Ok(text) => text,
        Err(std::env::VarError::NotPresent) => String::new(),
        Err(error) => panic!("{VMS_SETTING}: {error}"),
    };
    if text.trim().is_empty() {
        if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
            println!(
                "cargo:warning={VMS_SETTING} is unset; the MMIO guard serves VM 0 only, with no \
                 RAM known, in mode optional"
            );
        }
        return default_vm_table();
    }
    parse_vm_table(&text)
        .unwrap_or_else(|error| panic!("{VMS_SETTING}={text:?}: {error}; {VMS_FORMAT}"))
}

fn main() {
    write_link_script();
    let table = render_vm_table(&vm_table());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("mmio_guard_vms.rs"), table).expect("write the VM table");
}
