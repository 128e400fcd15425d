//! Build script: the supervisor's configuration (region, stack, every component's restart
//! policy) comes from the manifest through `hv-component-config`.

fn main() {
    hv_component_config::build::configure();
}
