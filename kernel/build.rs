//! Writes the kernel's linker script for the board it is built for and links with it.
//!
//! The link address is the board's image load address (`hv_board`), so the script is generated
//! rather than kept per board by hand. Host builds (tests) link nothing special.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let board = if env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() {
        hv_board::RPI4
    } else {
        hv_board::QEMU_VIRT
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let script = include_str!("link.ld.in")
        .replace(
            "@LOAD_ADDRESS@",
            &format!("{:#x}", board.image_load_address),
        )
        .replace(
            "@HYPERVISOR_END@",
            &format!("{:#x}", board.hypervisor_region_end()),
        );
    fs::write(out.join("hv-kernel.ld"), script).unwrap();
    println!("cargo:rerun-if-changed=link.ld.in");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Thv-kernel.ld");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
