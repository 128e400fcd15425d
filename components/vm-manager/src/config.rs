//! The system's VMs and emulated devices as `build.rs` found them in the build settings
//! (`HV_VM_MANAGER_VMS`, `HV_VM_MANAGER_EMULATED`, `HV_VM_MANAGER_MMIO_GUARD`; formats in
//! `build_config.rs`): [`VMS`], [`EMULATED`] and [`MMIO_GUARD`], generated const tables. Unset
//! settings give empty tables and no guard.

/// A VM's name, for the `[name]` prefix of its console lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmName {
    /// The VM's id.
    pub vm: u16,
    /// Its name (1..=32 characters of `[A-Za-z0-9._-]`).
    pub name: &'static str,
}

/// The device models the VM manager emulates.
// Constructed only by the generated table, which is empty in a build without emulated devices.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// An ARM PrimeCell UART (PL011), transmit side only: see [`crate::pl011`].
    Pl011,
}

/// A device of a VM that its stage 2 leaves unmapped and this component emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulatedDevice {
    /// The VM.
    pub vm: u16,
    /// The device's name in the manifest.
    pub name: &'static str,
    /// What it is.
    pub kind: DeviceKind,
    /// Base IPA (4 KiB aligned).
    pub base: u64,
    /// Size in bytes (a non-zero multiple of 4 KiB).
    pub size: u64,
}

impl EmulatedDevice {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
}

include!(concat!(env!("OUT_DIR"), "/config.rs"));

/// The name of VM `vm` in `vms`, if it has one.
pub fn vm_name(vms: &[VmName], vm: u16) -> Option<&'static str> {
    vms.iter()
        .find(|entry| entry.vm == vm)
        .map(|entry| entry.name)
}

#[cfg(test)]
mod tests {
    //! The settings parser `build.rs` uses, and the table it generates.

    #![allow(dead_code)]

    include!("../build_config.rs");

    #[test]
    fn unset_settings_are_empty() {
        assert_eq!(parse_vms(""), Ok(vec![]));
        assert_eq!(parse_emulated(" , "), Ok(vec![]));
        assert_eq!(parse_mmio_guard(""), Ok(false));
        assert_eq!(parse_mmio_guard("0"), Ok(false));
        assert_eq!(parse_mmio_guard(" 1 "), Ok(true));
        assert!(parse_mmio_guard("yes").is_err());
    }

    #[test]
    fn parses_vms() {
        assert_eq!(
            parse_vms("0:host, 1:guest-a"),
            Ok(vec![
                VmSetting {
                    vm: 0,
                    name: "host".into()
                },
                VmSetting {
                    vm: 1,
                    name: "guest-a".into()
                },
            ])
        );
        for bad in [
            "host",
            "x:host",
            "70000:host",
            "0:",
            "0:a b",
            "0:[x]",
            "0:host,0:again",
            &format!("0:{}", "n".repeat(SETTING_NAME_MAX + 1)),
        ] {
            assert!(parse_vms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_emulated_devices() {
        assert_eq!(
            parse_emulated("0:uart0:pl011:0x9000000:0x1000,1:uart1:pl011:9001000:1_000"),
            Ok(vec![
                EmulatedSetting {
                    vm: 0,
                    device: "uart0".into(),
                    kind: "Pl011",
                    base: 0x900_0000,
                    size: 0x1000
                },
                EmulatedSetting {
                    vm: 1,
                    device: "uart1".into(),
                    kind: "Pl011",
                    base: 0x900_1000,
                    size: 0x1000
                },
            ])
        );
        // The same range in two VMs is fine (each has its own IPA space).
        assert!(parse_emulated("0:u:pl011:0x9000000:0x1000,1:u:pl011:0x9000000:0x1000").is_ok());
        for bad in [
            "0:uart0:pl011:0x9000000",
            "0:uart0:virtio:0x9000000:0x1000",
            "0:uart0:pl011:0x9000004:0x1000",
            "0:uart0:pl011:0x9000000:0x800",
            "0:uart0:pl011:0x9000000:0",
            "0:uart0:pl011:zz:0x1000",
            "0:uart0:pl011:0xfffffffffffff000:0x2000",
            "0:u:pl011:0x9000000:0x2000,0:v:pl011:0x9001000:0x1000",
            "0:u:pl011:0x9000000:0x1000,0:u:pl011:0x9002000:0x1000",
        ] {
            assert!(parse_emulated(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_table() {
        let vms = parse_vms("0:host").unwrap();
        let devices = parse_emulated("0:uart0:pl011:0x9000000:0x1000").unwrap();
        let source = generate_config(&vms, &devices, true);
        assert!(
            source.contains("VmName { vm: 0, name: \"host\" },"),
            "{source}"
        );
        assert!(
            source.contains(
                "EmulatedDevice { vm: 0, name: \"uart0\", kind: DeviceKind::Pl011, base: \
                 0x9000000, size: 0x1000 },"
            ),
            "{source}"
        );
        assert!(source.contains("pub const MMIO_GUARD: bool = true;"));
        let empty = generate_config(&[], &[], false);
        assert!(
            empty.contains("pub const VMS: &[VmName] = &[\n];"),
            "{empty}"
        );
        assert!(empty.contains("pub const MMIO_GUARD: bool = false;"));
    }

    #[test]
    fn names() {
        let vms = [super::VmName {
            vm: 3,
            name: "three",
        }];
        assert_eq!(super::vm_name(&vms, 3), Some("three"));
        assert_eq!(super::vm_name(&vms, 0), None);
    }
}
