//! Build script: link the bare-metal binaries with hv-guest-rt's `guest.ld`.
//!
//! hv-guest-rt's build script puts the script on the linker search path; host builds (for
//! `cargo check --workspace`) use the default linker setup.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tguest.ld");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
