//! Build script: the VM manager's configuration (region, stack, the VMs and their devices, the
//! components, its test-hook settings) comes from the manifest through `hv-component-config`.

fn main() {
    hv_component_config::build::configure();
}
