//! Manifests that must be accepted, and what they resolve to.

use core::time::Duration;
use hv_ipc::abi::{interface, kernel_op};
use hv_manifest::{
    DeviceMode, Dtb, Grants, Initrd, KernelImage, LogLevel, Manifest, MmioGuard, Region, Restart,
};
use std::path::Path;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn parse(text: &str) -> Manifest {
    hv_manifest::parse(text, "test.toml", Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|error| panic!("{error}"))
}

fn load(relative: &str) -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    hv_manifest::load(&path).unwrap_or_else(|error| panic!("{error}"))
}

fn device_names(manifest: &Manifest, vm: usize) -> Vec<(&'static str, DeviceMode)> {
    manifest.vms[vm]
        .devices
        .iter()
        .map(|grant| (grant.device.name, grant.mode))
        .collect()
}

#[test]
fn the_default_manifest_loads() {
    let manifest = load("../../manifests/qemu-virt.toml");
    assert_eq!(manifest.board.name, "qemu-virt");
    assert_eq!(manifest.machine.ram, GIB);
    assert_eq!(manifest.machine.cpus, 2);
    let host = manifest.host_vm();
    assert_eq!(host.name, "host");
    assert_eq!(host.kernel, KernelImage::Debian);
    assert_eq!(host.initrd, Initrd::Busybox);
    assert_eq!(host.cmdline, "console=ttyAMA0");
    assert_eq!(host.vcpus, 2);
    // `[host] memory = "1G"`: RAM from 0x4000_0000 up to 1 GiB, less the hypervisor's 32 MiB.
    assert_eq!(
        host.memory,
        Region {
            base: 0x4200_0000,
            size: 992 * MIB
        }
    );
    assert_eq!(manifest.guest_vms().count(), 0);
    let (supervisor_id, supervisor) = manifest.component("supervisor").unwrap();
    assert_eq!(supervisor_id, 0);
    assert_eq!(
        supervisor.grants,
        Grants {
            serves: interface::SUPERVISOR,
            may_call: 0,
            // Its own grants, and hot-swap's (`hot-swap = true`).
            kernel_ops: 1 << kernel_op::RESTART
                | 1 << kernel_op::COMPONENT_STATE
                | 1 << kernel_op::READ_COUNTER
                | 1 << kernel_op::CONTROL_READ
                | 1 << kernel_op::CONTROL_WRITE
                | 1 << kernel_op::SWAP
                | 1 << kernel_op::SWAP_STATUS
                | 1 << kernel_op::COMPONENT_BUILD,
            may_notify: 0,
            routes: 0,
            smccc_ranges: Default::default(),
        }
    );
    assert!(manifest.hot_swap);
    let (_, vm_manager) = manifest.component("vm-manager").unwrap();
    assert_eq!(
        vm_manager.grants,
        Grants {
            serves: interface::GUEST_TRAP,
            may_call: 1 << interface::SUPERVISOR | 1 << interface::MEM_PROTECT,
            kernel_ops: 1 << kernel_op::READ_COUNTER
                | 1 << kernel_op::VM_START
                | 1 << kernel_op::VM_LOAD
                | 1 << kernel_op::VM_STOP
                | 1 << kernel_op::VM_STATUS,
            may_notify: 0,
            routes: hv_abi::ROUTE_SMCCC,
            smccc_ranges: Default::default(),
        }
    );
    // mem-protect serves the VM manager's guest memory calls besides its routed traps.
    let (_, mem_protect) = manifest.component("mem-protect").unwrap();
    assert_eq!(mem_protect.grants.serves, interface::MEM_PROTECT);
    assert_eq!(mem_protect.grants.may_call, 0);
}

#[test]
fn the_rpi4_manifest_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/rpi4.toml");
    if !path.exists() {
        return;
    }
    let manifest = hv_manifest::load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(manifest.board.name, "rpi4");
    // `[host] memory = "900M"` on a 1 GiB Pi: the image uses 900 MiB from address 0.
    assert_eq!(manifest.machine.ram, GIB);
    assert_eq!(manifest.machine.usable.size, 900 * MIB);
    assert_eq!(manifest.host_vm().memory.base, 32 * MIB);
    assert_eq!(manifest.host_vm().memory.size, 868 * MIB);
}

#[test]
fn a_small_manifest_gets_the_documented_defaults() {
    let manifest = parse(
        "board = \"qemu-virt\"\n\
         [host]\n\
         [[component]]\n\
         name = \"supervisor\"\n\
         crate = \"hv-supervisor\"\n",
    );
    assert_eq!(manifest.machine.ram, GIB);
    assert_eq!(manifest.machine.cpus, 2);
    assert_eq!(
        manifest.machine.usable,
        Region {
            base: 0x4000_0000,
            size: GIB
        }
    );
    assert_eq!(manifest.kernel.log_level, LogLevel::Info);
    assert_eq!(manifest.kernel.log_level.as_str(), "info");

    let host = manifest.host_vm();
    assert!(host.host);
    assert_eq!(host.name, "host");
    assert_eq!(host.kernel, KernelImage::Debian);
    assert_eq!(host.initrd, Initrd::Busybox);
    assert_eq!(host.dtb, Dtb::Board);
    assert_eq!(host.cmdline, "console=ttyAMA0");
    assert_eq!(host.vcpus, 2);
    assert_eq!(host.cpus, [0, 1]);
    assert!(!host.pinned);
    assert_eq!(host.mmio_guard, MmioGuard::Optional);
    assert_eq!(
        host.memory,
        Region {
            base: 0x4200_0000,
            size: GIB - 32 * MIB
        }
    );
    // The host gets every board device, passed through.
    let all: Vec<_> = manifest
        .board
        .devices
        .iter()
        .map(|device| (device.name, DeviceMode::Passthrough))
        .collect();
    assert_eq!(device_names(&manifest, 0), all);

    let component = &manifest.components[0];
    assert_eq!(component.memory, MIB);
    assert_eq!(component.stack, 64 << 10);
    assert_eq!(component.grants, Grants::default());
    assert_eq!(
        component.restart,
        Restart::Backoff {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5)
        }
    );
    assert_eq!(component.settings, hv_component_config::Settings::None);
}

#[test]
fn rpi4_defaults() {
    let manifest = parse("board = \"rpi4\"\n[[vm]]\nname = \"linux\"\n");
    assert_eq!(manifest.machine.ram, GIB);
    assert_eq!(manifest.machine.cpus, 4);
    // The first bank below the GPU's memory.
    assert_eq!(manifest.machine.usable.size, 0x3b40_0000);
    let host = manifest.host_vm();
    assert_eq!(host.name, "linux");
    assert_eq!(host.vcpus, 4);
    assert_eq!(host.cmdline, "console=ttyS1,115200");
    assert_eq!(
        host.memory,
        Region {
            base: 32 * MIB,
            size: 0x3b40_0000 - 32 * MIB
        }
    );
}

#[test]
fn a_full_manifest_resolves_every_field() {
    let manifest = load("tests/full/full.toml");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/full");
    assert_eq!(manifest.board.name, "qemu-virt");
    assert_eq!(manifest.machine.ram, 2 * GIB);
    assert_eq!(manifest.machine.cpus, 4);
    assert_eq!(manifest.kernel.log_level, LogLevel::Debug);
    assert_eq!(manifest.vms.len(), 3);

    let host = manifest.host_vm();
    assert_eq!(host.name, "linux");
    assert_eq!(host.kernel, KernelImage::Path(dir.join("images/Image")));
    assert_eq!(host.initrd, Initrd::Path(dir.join("images/initrd.cpio")));
    assert_eq!(host.dtb, Dtb::Board);
    assert_eq!(
        host.memory,
        Region {
            base: 0x4200_0000,
            size: GIB
        }
    );
    assert_eq!(
        (host.vcpus, host.cpus.as_slice(), host.pinned),
        (2, &[0, 1][..], true)
    );
    assert_eq!(
        device_names(&manifest, 0),
        [
            ("uart0", DeviceMode::Passthrough),
            ("rtc", DeviceMode::Passthrough)
        ]
    );
    assert_eq!(host.cmdline, "console=ttyAMA0 earlycon");
    assert_eq!(host.mmio_guard, MmioGuard::Off);

    let guest = &manifest.vms[1];
    assert!(!guest.host);
    assert_eq!(guest.kernel, KernelImage::DebianArm64);
    assert_eq!(guest.initrd, Initrd::None);
    assert_eq!(guest.dtb, Dtb::Path(dir.join("images/guest.dtb")));
    // Placed top-down: the last 256 MiB of RAM (0x4000_0000 + 2 GiB = 0xc000_0000).
    assert_eq!(
        guest.memory,
        Region {
            base: 0xb000_0000,
            size: 256 * MIB
        }
    );
    assert_eq!((guest.vcpus, guest.cpus.as_slice()), (1, &[3][..]));
    assert_eq!(
        device_names(&manifest, 1),
        [
            ("uart0", DeviceMode::Emulated),
            ("gpio", DeviceMode::Passthrough)
        ]
    );
    assert_eq!(guest.cmdline, "console=hvc0");
    assert_eq!(guest.mmio_guard, MmioGuard::Enforced);

    let fixed = &manifest.vms[2];
    assert_eq!(
        fixed.memory,
        Region {
            base: 0x9000_0000,
            size: 64 * MIB
        }
    );
    // The highest CPU nobody pinned: the host has 0 and 1, the other guest 3.
    assert_eq!((fixed.vcpus, fixed.cpus.as_slice()), (1, &[2][..]));
    assert!(!fixed.mte);
    assert_eq!(fixed.kernel, KernelImage::Debian);
    assert_eq!(fixed.initrd, Initrd::Busybox);
    assert!(fixed.devices.is_empty());
    assert_eq!(fixed.mmio_guard, MmioGuard::Optional);

    let supervisor = &manifest.components[0];
    assert_eq!((supervisor.memory, supervisor.stack), (2 * MIB, 32 << 10));
    assert_eq!(supervisor.restart, Restart::Never);
    assert_eq!(supervisor.grants.serves, interface::SUPERVISOR);

    let vm_manager = &manifest.components[1];
    assert_eq!(vm_manager.crate_name, "hv-vm-manager");
    assert_eq!((vm_manager.memory, vm_manager.stack), (MIB, 8 << 10));
    assert_eq!(vm_manager.serves.as_deref(), Some("guest-trap"));
    assert_eq!(vm_manager.calls, ["supervisor"]);
    assert_eq!(vm_manager.kernel_ops, ["read-counter"]);
    assert_eq!(vm_manager.notifies, ["supervisor"]);
    assert_eq!(vm_manager.grants.may_notify, 1 << 0);
    assert_eq!(supervisor.grants.may_notify, 0);
    assert_eq!(vm_manager.routes, ["smccc"]);
    assert_eq!(vm_manager.grants.routes, hv_abi::ROUTE_SMCCC);
    assert_eq!(
        vm_manager.restart,
        Restart::Backoff {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2)
        }
    );
    assert_eq!(
        vm_manager.settings,
        hv_component_config::Settings::VmManager(hv_component_config::VmManagerSettings {
            crash: Some(hv_component_config::CrashHook {
                on_call: 3,
                kind: hv_component_config::CrashKind::Panic,
                on_function: None,
            }),
            probe_grants: true,
        })
    );
    assert_eq!(manifest.grants().len(), 2);
}

#[test]
fn several_problems_are_reported_together_in_line_order() {
    let text = "board = \"qemu-virt\"\n\
                [host]\n\
                [[component]]\n\
                name = \"a\"\n\
                crate = \"hv-a\"\n\
                memory = \"1Q\"\n\
                calls = [\"printer\"]\n\
                [[component]]\n\
                name = \"a\"\n\
                crate = \"hv-a\"\n";
    let error = hv_manifest::parse(text, "many.toml", Path::new(".")).unwrap_err();
    let lines: Vec<usize> = error.diagnostics().iter().map(|d| d.line).collect();
    assert_eq!(lines, [6, 7, 9], "{error}");
    let text = error.to_string();
    let rendered: Vec<&str> = text.lines().collect();
    assert!(
        rendered[0].starts_with("many.toml:6: component[0].memory: "),
        "{text}"
    );
    assert!(
        rendered[1].starts_with("many.toml:7: component[0].calls[0]: "),
        "{text}"
    );
    assert!(
        rendered[2].starts_with("many.toml:9: component[1].name: "),
        "{text}"
    );
}

#[test]
fn notifies_name_other_components_once() {
    let text = "board = \"qemu-virt\"\n\
                [host]\n\
                [[component]]\n\
                name = \"a\"\n\
                crate = \"hv-a\"\n\
                notifies = [\"b\", \"a\", \"b\"]\n\
                [[component]]\n\
                name = \"b\"\n\
                crate = \"hv-b\"\n\
                notifies = [\"a\"]\n";
    let error = hv_manifest::parse(text, "notify.toml", Path::new(".")).unwrap_err();
    let text = error.to_string();
    let rendered: Vec<&str> = text.lines().collect();
    assert_eq!(rendered.len(), 2, "{text}");
    assert!(
        rendered[0].starts_with(
            "notify.toml:6: component[0].notifies[1]: a component does not notify itself"
        ),
        "{text}"
    );
    assert!(
        rendered[1].starts_with("notify.toml:6: component[0].notifies[2]: \"b\" is listed twice"),
        "{text}"
    );

    let manifest = parse(
        "board = \"qemu-virt\"\n\
         [host]\n\
         [[component]]\n\
         name = \"a\"\n\
         crate = \"hv-a\"\n\
         [[component]]\n\
         name = \"b\"\n\
         crate = \"hv-b\"\n\
         [[component]]\n\
         name = \"c\"\n\
         crate = \"hv-c\"\n\
         notifies = [\"b\", \"a\"]\n",
    );
    assert_eq!(manifest.components[2].grants.may_notify, 0b011);
    assert_eq!(manifest.components[0].grants.may_notify, 0);
}

#[test]
fn host_short_form_sets_the_machine_and_leaves_room_for_guests() {
    // `[host] memory` caps the RAM used; a guest is placed inside it, the host gets the rest.
    let manifest = parse(
        "board = \"qemu-virt\"\n\
         [host]\n\
         memory = \"2G\"\n\
         cpus = 4\n\
         [[vm]]\n\
         name = \"guest\"\n\
         memory = \"512M\"\n",
    );
    assert_eq!(manifest.machine.ram, 2 * GIB);
    assert_eq!(manifest.machine.cpus, 4);
    let host = manifest.host_vm();
    // The guest takes the highest CPU; the host keeps the others.
    assert_eq!((host.vcpus, host.cpus.as_slice()), (3, &[0, 1, 2][..]));
    assert_eq!(manifest.vms[1].cpus, [3]);
    assert_eq!(
        host.memory,
        Region {
            base: 0x4200_0000,
            size: 2 * GIB - 512 * MIB - 32 * MIB
        }
    );
    assert_eq!(
        manifest.vms[1].memory,
        Region {
            base: 0x4000_0000 + 2 * GIB - 512 * MIB,
            size: 512 * MIB
        }
    );
}

/// The error a manifest text gives, in one line per diagnostic.
fn refused(text: &str) -> String {
    hv_manifest::parse(text, "test.toml", Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_err()
        .to_string()
}

#[test]
fn guests_get_cpus_of_their_own() {
    // Unpinned guests take the highest free CPUs in order; the host keeps what is left.
    let manifest = parse(
        "board = \"qemu-virt\"\n\
         [machine]\n\
         cpus = 6\n\
         [[vm]]\n\
         name = \"guest-a\"\n\
         memory = \"64M\"\n\
         vcpus = 2\n\
         [[vm]]\n\
         name = \"linux\"\n\
         host = true\n\
         [[vm]]\n\
         name = \"guest-b\"\n\
         memory = \"64M\"\n\
         cpus = [5]\n",
    );
    // The host is VM 0 wherever it is written; the guests follow in order.
    let names: Vec<&str> = manifest.vms.iter().map(|vm| vm.name.as_str()).collect();
    assert_eq!(names, ["linux", "guest-a", "guest-b"]);
    assert_eq!(manifest.vms[0].cpus, [0, 1, 2]);
    assert_eq!(manifest.vms[0].vcpus, 3);
    assert_eq!(manifest.vms[1].cpus, [3, 4]);
    assert_eq!(manifest.vms[2].cpus, [5]);
    let config = manifest.component_system().unwrap();
    assert_eq!(config.vms[0].name.as_str(), "linux");
    assert!(config.vms[0].host && !config.vms[1].host);
    assert_eq!(config.vms[1].ram_ipa, 0x4000_0000);

    let host_and_guest = "board = \"qemu-virt\"\n[machine]\ncpus = 2\n\
                          [[vm]]\nname = \"linux\"\ncpus = [0, 1]\n\
                          [[vm]]\nname = \"guest\"\nmemory = \"64M\"\n";
    let error = refused(host_and_guest);
    assert!(
        error.contains("test.toml:7: vm[1].vcpus: no free CPU is left for its 1 vCPU(s)"),
        "{error}"
    );
    let error =
        refused(&host_and_guest.replace("memory = \"64M\"\n", "memory = \"64M\"\ncpus = [1]\n"));
    assert!(
        error.contains("test.toml:10: vm[1].cpus[0]: CPU 1 already runs VM \"linux\" (line 4)"),
        "{error}"
    );
    let error = refused(
        "board = \"qemu-virt\"\n[host]\n[[vm]]\nname = \"g\"\nmemory = \"64M\"\ncpus = [0]\n",
    );
    assert!(
        error.contains("vm[0].cpus[0]: CPU 0 is where the host starts"),
        "{error}"
    );
    let mut four = String::from("board = \"qemu-virt\"\n[machine]\ncpus = 8\n[host]\n");
    for guest in 0..4 {
        four.push_str(&format!("[[vm]]\nname = \"g{guest}\"\nmemory = \"64M\"\n"));
    }
    let error = refused(&four);
    assert!(
        error.contains("vm[3].name: 4 guest VMs, but an image holds at most 3"),
        "{error}"
    );
}

#[test]
fn guest_kernels_from_crates_and_mte() {
    let manifest = parse(
        "board = \"qemu-virt\"\n\
         [host]\n\
         [[vm]]\n\
         name = \"guest\"\n\
         kernel = \"crate:hv-guest-vm-basic\"\n\
         initrd = \"none\"\n\
         memory = \"64M\"\n\
         mte = true\n",
    );
    let guest = &manifest.vms[1];
    assert_eq!(guest.kernel, KernelImage::Crate("hv-guest-vm-basic".into()));
    assert!(guest.mte && !manifest.vms[0].mte);
    let config = manifest.component_system().unwrap();
    assert!(config.vms[1].mte && !config.vms[0].mte);

    let error = refused("board = \"qemu-virt\"\n[[vm]]\nname = \"h\"\nkernel = \"crate:\"\n");
    assert!(
        error.contains("vm[0].kernel: \"crate:\" does not name a package"),
        "{error}"
    );
    let error = refused("board = \"qemu-virt\"\n[[vm]]\nname = \"h\"\nmte = true\n");
    assert!(error.contains("vm[0].mte: mte is for guest VMs"), "{error}");
}

#[test]
fn an_unreadable_file_says_so() {
    let error = hv_manifest::load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/x.toml: cannot read the manifest")
    );
}

#[test]
fn the_guest_vm_test_system_loads() {
    let manifest = load("../../manifests/tests/guest-vm.toml");
    let host = manifest.host_vm();
    assert_eq!(
        (host.cpus.as_slice(), host.memory.base),
        (&[0][..], 0x4200_0000)
    );
    let guest = manifest.guest_vms().next().unwrap();
    assert_eq!(guest.name, "guest1");
    assert_eq!(guest.kernel, KernelImage::Crate("hv-guest-vm-basic".into()));
    assert_eq!(guest.initrd, Initrd::None);
    assert_eq!(guest.cpus, [1, 2]);
    // The last 64 MiB of the machine's 1 GiB; the host has the rest.
    assert_eq!(
        guest.memory,
        Region {
            base: 0x7c00_0000,
            size: 64 * MIB
        }
    );
    assert_eq!(host.memory.end(), 0x7c00_0000);
    assert_eq!(
        device_names(&manifest, 1),
        [("uart0", DeviceMode::Emulated)]
    );
}

/// Every component of the shipped and the full manifests gets a configuration that survives the
/// trip through the file its build reads, and that says what the manifest says.
#[test]
fn component_configurations_round_trip_through_their_files() {
    use hv_component_config::build;
    for relative in [
        "../../manifests/qemu-virt.toml",
        "../../manifests/tests/mmio-guard.toml",
        "../../manifests/tests/mem-protect.toml",
        "../../manifests/tests/guest-vm.toml",
        "tests/full/full.toml",
    ] {
        let manifest = load(relative);
        let regions: Vec<Region> = manifest
            .components
            .iter()
            .enumerate()
            .map(|(id, component)| Region {
                base: 0x4040_0000 + id as u64 * 0x100_0000,
                size: component.memory,
            })
            .collect();
        for (id, component) in manifest.components.iter().enumerate() {
            let placed = regions[id];
            let config = manifest.component_config(id, &regions).unwrap();
            let text = build::to_toml(&config);
            let read = build::parse(&component.crate_name, &text)
                .unwrap_or_else(|e| panic!("{relative}: {}: {e}\n{text}", component.name));
            assert_eq!(read, config, "{relative}: {}", component.name);
            // And through the postcard bytes the component embeds, with and without a swap
            // test hook (a field postcard cannot skip).
            for swap_test in [None, Some(hv_component_config::SwapTest::Slow)] {
                let config = hv_component_config::ComponentConfig {
                    swap_test,
                    ..config.clone()
                };
                let bytes = build::embedded_bytes(&config);
                assert_eq!(
                    hv_component_config::ComponentConfig::decode(&bytes),
                    Ok(config)
                );
            }
            assert_eq!(read.settings, component.settings);
            assert_eq!(read.stack, component.stack);
            assert_eq!(read.region.base, placed.base);
            // The system is the same for every component and matches the manifest.
            assert_eq!(read.system.vms.len(), manifest.vms.len());
            assert_eq!(read.system.components.len(), manifest.components.len());
            // Every component is told where the others are (a swapped image is checked
            // against its region).
            for (summary, region) in read.system.components.iter().zip(&regions) {
                assert_eq!(summary.region.base, region.base);
                assert_eq!(summary.region.size, region.size);
            }
            assert_eq!(read.system.ram.base, manifest.machine.usable.base);
            for (told, vm) in read.system.vms.iter().zip(&manifest.vms) {
                assert_eq!((told.name.as_str(), told.host), (vm.name.as_str(), vm.host));
                assert_eq!(told.devices.len(), vm.devices.len());
            }
            // A file meant for another crate is refused, naming the field.
            let error = build::parse("hv-other", &text).unwrap_err();
            assert!(error.contains("field `crate`"), "{error}");
        }
    }
}

#[test]
fn a_malformed_configuration_file_names_the_field() {
    use hv_component_config::build;
    let manifest = load("../../manifests/qemu-virt.toml");
    let (id, component) = manifest.component("mem-protect").unwrap();
    let placed = Region {
        base: 0x4100_0000,
        size: component.memory,
    };
    let mut regions = vec![placed; manifest.components.len()];
    regions[id] = placed;
    let text = build::to_toml(&manifest.component_config(id, &regions).unwrap());
    let misspelt = text.replacen("stack = ", "stak = ", 1);
    let error = build::parse("hv-mem-protect", &misspelt).unwrap_err();
    assert!(error.contains("stak"), "{error}");
    let missing: String = text
        .lines()
        .filter(|line| !line.starts_with("stack ="))
        .map(|line| format!("{line}\n"))
        .collect();
    let error = build::parse("hv-mem-protect", &missing).unwrap_err();
    assert!(error.contains("missing field `stack`"), "{error}");
    let wrong_type = text.replacen("id = ", "id = \"two\" #", 1);
    let error = build::parse("hv-mem-protect", &wrong_type).unwrap_err();
    assert!(error.contains("field `id`"), "{error}");
    let big_stack = text.replacen("stack = ", "stack = 0x7fffffff #", 1);
    let error = build::parse("hv-mem-protect", &big_stack).unwrap_err();
    assert!(error.contains("field `stack`"), "{error}");
}

#[test]
fn the_interface_names_are_hv_ipcs() {
    let defined: Vec<(&str, u16)> = hv_ipc::interfaces::ALL
        .iter()
        .map(|interface| (interface.name, interface.id))
        .collect();
    assert_eq!(hv_manifest::INTERFACES, defined.as_slice());
    // The names manifests under manifests/ use.
    for (name, id) in [
        ("guest-trap", interface::GUEST_TRAP),
        ("supervisor", interface::SUPERVISOR),
        ("mmio-guard", interface::MMIO_GUARD),
    ] {
        assert!(defined.contains(&(name, id)), "{name}");
    }
}

#[test]
fn hot_swap_grants_the_supervisor_the_control_line_and_swap() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/qemu-virt.toml"
    ))
    .unwrap();
    let without = text.replace("hot-swap = true", "");
    let with = format!("hot-swap = true\n{without}");
    let manifest = hv_manifest::parse(&with, "hot-swap.toml", Path::new(".")).unwrap();
    assert!(manifest.hot_swap);
    let (_, supervisor) = manifest.component("supervisor").unwrap();
    for op in hv_manifest::HOT_SWAP_KERNEL_OPS {
        assert!(
            supervisor.kernel_ops.iter().any(|granted| granted == op),
            "{op}"
        );
    }
    let swap = 1 << hv_ipc::abi::kernel_op::SWAP;
    assert_eq!(supervisor.grants.kernel_ops & swap, swap);
    let (_, vm_manager) = manifest.component("vm-manager").unwrap();
    assert_eq!(
        vm_manager.grants.kernel_ops & swap,
        0,
        "only the supervisor swaps"
    );
    let plain = hv_manifest::parse(&without, "plain.toml", Path::new(".")).unwrap();
    assert!(!plain.hot_swap);

    // On the Pi the control line is the log's mini-UART: its page (the mini-UART and the AUX
    // block) is kept from the host, and a console there is refused, as is an explicit grant.
    let pi = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/rpi4.toml"
    ))
    .unwrap();
    let pi = format!("hot-swap = true\n{pi}");
    let error = hv_manifest::parse(&pi, "pi.toml", Path::new(".")).unwrap_err();
    let errors = error.diagnostics();
    assert!(
        errors.iter().any(|e| e
            .message
            .contains("the console ttyS1 is uart1, hot-swap's control line")),
        "{errors:?}"
    );
    let pi = pi.replace("console=ttyS1,115200", "console=ttyAMA0");
    let manifest = hv_manifest::parse(&pi, "pi.toml", Path::new(".")).unwrap();
    let host = &manifest.vms[0];
    let given: Vec<&str> = host.devices.iter().map(|grant| grant.device.name).collect();
    assert!(given.contains(&"uart0"), "{given:?}");
    assert!(
        !given.contains(&"uart1") && !given.contains(&"aux"),
        "{given:?}"
    );
    let explicit = pi
        .replace("[host]", "[[vm]]\nname = \"host\"")
        .replace("cpus = 4", "vcpus = 4")
        .replace(
            "initrd = \"busybox\"",
            "initrd = \"busybox\"\ndevices = [{ name = \"uart0\" }, { name = \"aux\" }]",
        );
    let error = hv_manifest::parse(&explicit, "pi.toml", Path::new(".")).unwrap_err();
    let errors = error.diagnostics();
    assert!(
        errors.iter().any(|e| e
            .message
            .contains("\"aux\" shares its page with the hot-swap control line")),
        "{errors:?}"
    );
    // Without hot-swap the host keeps its console on the mini-UART.
    let plain_pi = hv_manifest::parse(
        &pi.replace("hot-swap = true\n", "")
            .replace("console=ttyAMA0", "console=ttyS1,115200"),
        "pi.toml",
        Path::new("."),
    )
    .unwrap();
    assert!(
        plain_pi.vms[0]
            .devices
            .iter()
            .any(|grant| grant.device.name == "uart1")
    );

    // A system without a supervisor refuses it.
    let no_supervisor = with.replacen("serves = \"supervisor\"", "", 1).replacen(
        "calls = [\"supervisor\", ",
        "calls = [",
        1,
    );
    let error = hv_manifest::parse(&no_supervisor, "x.toml", Path::new(".")).unwrap_err();
    let errors = error.diagnostics();
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("add a component that serves")),
        "{errors:?}"
    );
}
