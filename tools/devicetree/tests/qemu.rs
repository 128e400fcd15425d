//! Checks the reader, editor and writer against the real DTBs QEMU generates for the machine
//! configurations we run, with `dtc` as an independent judge of the output. Skipped (with a
//! note) when `qemu-system-aarch64` or `dtc` is not installed. Format: DTSpec v0.4 chapter 5,
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use std::path::{Path, PathBuf};
use std::process::Command;

use hv_devicetree::DeviceTree;

/// The machine configurations: the GICv2 setup the host VM boots on, and GICv3 with `-cpu max`.
const CONFIGS: [(&str, &[&str]); 2] = [
    (
        "gicv2",
        &[
            "-M",
            "virt,virtualization=on,gic-version=2",
            "-cpu",
            "cortex-a72",
        ],
    ),
    (
        "gicv3",
        &[
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "max,pauth-impdef=on",
        ],
    ),
];

fn have(tool: &str) -> bool {
    Command::new("which")
        .arg(tool)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tools_present() -> bool {
    let missing: Vec<&str> = ["qemu-system-aarch64", "dtc"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("note: skipping QEMU DTB test, not installed: {missing:?}");
    }
    missing.is_empty()
}

/// A scratch directory unique to this process and test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hv-devicetree-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Has QEMU dump the DTB for `machine` (plus 2 CPUs, 1 GiB) and returns its bytes.
fn dump_dtb(dir: &Path, tag: &str, machine: &[&str]) -> Vec<u8> {
    let path = dir.join(format!("{tag}-qemu.dtb"));
    let output = Command::new("qemu-system-aarch64")
        .args(machine)
        .args(["-smp", "2", "-m", "1G", "-display", "none", "-machine"])
        .arg(format!("dumpdtb={}", path.display()))
        .output()
        .expect("run qemu-system-aarch64");
    assert!(
        output.status.success(),
        "qemu failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&path).expect("read dumped dtb")
}

/// Decompiles a DTB with dtc, failing the test if dtc rejects it.
fn decompile(path: &Path) -> String {
    let output = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(path)
        .output()
        .expect("run dtc");
    assert!(
        output.status.success(),
        "dtc rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("dts is UTF-8")
}

#[test]
fn compose_qemu_dtbs() {
    if !tools_present() {
        return;
    }
    let dir = TempDir::new("compose");
    for (tag, machine) in CONFIGS {
        let mut tree = DeviceTree::parse(&dump_dtb(&dir.0, tag, machine)).expect("parse QEMU DTB");
        assert_eq!(
            tree.memory_ranges(),
            Ok(vec![(0x4000_0000, 0x4000_0000)]),
            "{tag}"
        );
        assert_eq!(tree.cpu_mpidrs(), Ok(vec![0, 1]), "{tag}");
        assert!(tree.set_psci_method("smc"), "{tag}: no PSCI node");

        tree.reserve_no_map("hypervisor", 0x4000_0000, 0x200_0000)
            .expect("reserve");
        tree.set_chosen(Some("console=ttyAMA0"), Some((0x4400_0000, 0x4410_0000)));
        let out = dir.0.join(format!("{tag}-composed.dtb"));
        std::fs::write(&out, tree.to_bytes()).expect("write composed dtb");

        let dts = decompile(&out);
        for needle in [
            "reserved-memory {",
            "#address-cells = <0x02>;",
            "ranges;",
            "hypervisor@40000000 {",
            "reg = <0x00 0x40000000 0x00 0x2000000>;",
            "no-map;",
            "bootargs = \"console=ttyAMA0\";",
            "linux,initrd-start = <0x00 0x44000000>;",
            "linux,initrd-end = <0x00 0x44100000>;",
        ] {
            assert!(
                dts.contains(needle),
                "{tag}: {needle:?} missing from\n{dts}"
            );
        }
        // The reservation sits inside /reserved-memory, with no-map inside the child.
        let reserved = &dts[dts.find("reserved-memory {").unwrap_or(0)..];
        let child = &reserved[reserved.find("hypervisor@40000000 {").unwrap_or(0)..];
        let child = &child[..child.find("};").unwrap_or(child.len())];
        assert!(child.contains("no-map;"), "{tag}: {child}");
    }
}

#[test]
fn qemu_dtbs_round_trip() {
    if !tools_present() {
        return;
    }
    let dir = TempDir::new("round-trip");
    for (tag, machine) in CONFIGS {
        let original = dump_dtb(&dir.0, tag, machine);
        let parsed = DeviceTree::parse(&original).expect("parse QEMU DTB");
        let written = parsed.to_bytes();
        assert_eq!(DeviceTree::parse(&written).as_ref(), Ok(&parsed), "{tag}");
        // QEMU pads its blob to 1 MiB; ours is compact.
        assert!(written.len() < original.len(), "{tag}");

        // dtc sees the same tree in both blobs, down to property order and values.
        let ours = dir.0.join(format!("{tag}-ours.dtb"));
        std::fs::write(&ours, &written).expect("write dtb");
        let theirs = dir.0.join(format!("{tag}-qemu.dtb"));
        assert_eq!(decompile(&ours), decompile(&theirs), "{tag}");
    }
}
