//! Build script: links the supervisor with the shared component linker script (see
//! `components/rt/build_support.rs`: `HV_COMPONENT_BASE` / `HV_COMPONENT_SIZE`).

include!("../rt/build_support.rs");

fn main() {
    write_link_script();
}
