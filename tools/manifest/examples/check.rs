//! Checks manifests and prints what they resolve to:
//! `cargo run -p hv-manifest --example check -- manifests/qemu-virt.toml`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for arg in std::env::args().skip(1) {
        match hv_manifest::load(std::path::Path::new(&arg)) {
            Ok(manifest) => {
                let machine = &manifest.machine;
                println!(
                    "{arg}: ok: {} with {} of RAM ({} used from {:#x}) and {} CPUs",
                    manifest.board.name,
                    hv_manifest::format_size(machine.ram),
                    hv_manifest::format_size(machine.usable.size),
                    machine.usable.base,
                    machine.cpus
                );
                for vm in &manifest.vms {
                    let devices: Vec<_> = vm.devices.iter().map(|d| d.device.name).collect();
                    println!(
                        "  vm {}{}: {:#x}..{:#x}, vCPUs on CPUs {:?}, devices [{}], kernel {:?}",
                        vm.name,
                        if vm.host { " (host)" } else { "" },
                        vm.memory.base,
                        vm.memory.end(),
                        vm.cpus,
                        devices.join(", "),
                        vm.kernel
                    );
                }
                for (id, component) in manifest.components.iter().enumerate() {
                    println!(
                        "  component {id} {}: {} memory, {:?}",
                        component.name,
                        hv_manifest::format_size(component.memory),
                        component.grants
                    );
                }
            }
            Err(error) => {
                eprintln!("{error}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
