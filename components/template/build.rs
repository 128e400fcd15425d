//! Build script: the component's configuration (its region and stack, the system around it and
//! its `[component.settings]`) comes from the manifest through `hv-component-config`, which
//! refuses a missing or malformed configuration with this component's name and the field.

fn main() {
    hv_component_config::build::configure();
}
