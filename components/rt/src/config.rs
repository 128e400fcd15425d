//! The component's configuration, as its build embedded it (see `hv-component-config`).
//!
//! `_start` has [`install`] decode the embedded bytes once, on the start-up stack, before the
//! component's `main` runs; [`config`] reads the decoded value afterwards. No lock: a component
//! runs on one CPU at a time and `main` runs once per start, and with the MMU off there are no
//! exclusives for one anyway.

use core::mem::MaybeUninit;
use hv_component_config::ComponentConfig;

/// The decoded configuration (written once per start, before `main`).
static mut CONFIG: MaybeUninit<ComponentConfig> = MaybeUninit::uninit();
/// Whether [`CONFIG`] holds a value.
static mut INSTALLED: bool = false;

/// Decodes the embedded configuration. Bytes that do not decode (the build checked them, so
/// only a corrupted image can do this) stop the component with a panic.
#[doc(hidden)]
pub fn install(bytes: &[u8]) {
    let Ok(config) = ComponentConfig::decode(bytes) else {
        panic!("the embedded component configuration does not decode");
    };
    // SAFETY: called once per start by `component_main!`, before `main` and so before any
    // reader; nothing else runs in this component meanwhile.
    unsafe {
        (&raw mut CONFIG).cast::<ComponentConfig>().write(config);
        INSTALLED = true;
    }
}

/// The component's configuration: its region, the system around it, its settings.
pub fn config() -> &'static ComponentConfig {
    // SAFETY: only `install` writes these, once, before `main`; afterwards they are only read.
    unsafe {
        assert!(
            INSTALLED,
            "the configuration is read before it is installed"
        );
        &*(&raw const CONFIG).cast::<ComponentConfig>()
    }
}
