//! Build script: the MMIO guard's configuration (region, stack, the VMs with their RAM and
//! guard modes) comes from the manifest through `hv-component-config`.

fn main() {
    hv_component_config::build::configure();
}
