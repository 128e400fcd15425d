//! Which emulated device a trapped MMIO access is for, and why an access is refused. Pure
//! logic, host-tested; the component (`component/emulation.rs`) asks the MMIO guard in between
//! and then runs the device model.
//!
//! An access is emulated only if all its bytes lie in one emulated device of the VM that made
//! it. The kernel routes accesses to the VM's emulated ranges, so an access that does not start
//! in one cannot normally arrive; one that starts in a device and ends past it (a misaligned
//! access straddling the device's end) can, and is refused as a whole: no device's model sees
//! bytes that are not its own.

use crate::config::EmulatedDevice;
use hv_ipc::addr::Ipa;

/// Why an access ends in an external abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The VM has no emulated device at the address.
    NoDevice,
    /// The access starts in a device and ends outside it.
    LeavesDevice,
    /// A size other than 1, 2, 4 or 8 bytes (the kernel never sends one).
    BadSize,
    /// The MMIO guard refused it (the VM is enrolled and the granule is not mapped).
    GuardRefused,
    /// The MMIO guard could not be asked (it faulted or is stopped): refused, fail closed.
    GuardUnavailable,
    /// The device model cannot take it (see [`crate::pl011::BadAccess`]).
    Device(crate::pl011::BadAccess),
    /// The emulated GIC cannot take it (a size or offset its registers do not accept).
    Gic(hv_vgic::BadAccess),
    /// The kernel refused the host's access to the GIC or the shared console UART (a size or
    /// alignment the device does not take, or GIC_ACCESS / CONSOLE_ACCESS not granted).
    HostAccessRefused,
}

impl Refusal {
    /// For logs.
    pub const fn name(self) -> &'static str {
        match self {
            Refusal::NoDevice => "no emulated device there",
            Refusal::LeavesDevice => "access leaves the device",
            Refusal::BadSize => "bad access size",
            Refusal::GuardRefused => "refused by the MMIO guard",
            Refusal::GuardUnavailable => "MMIO guard unavailable",
            Refusal::Device(bad) => bad.name(),
            Refusal::Gic(_) => "GIC register access the architecture does not allow",
            Refusal::HostAccessRefused => "the kernel refused the host's device access",
        }
    }
}

/// The device in `devices` that VM `vm`'s access of `size` bytes at `ipa` is for: its index
/// and the access's offset into it.
pub fn locate(
    devices: &[EmulatedDevice],
    vm: u16,
    ipa: Ipa,
    size: u8,
) -> Result<(usize, u64), Refusal> {
    let ipa = ipa.0;
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(Refusal::BadSize);
    }
    let (index, device) = devices
        .iter()
        .enumerate()
        .find(|(_, device)| device.vm == vm && (device.base..device.end()).contains(&ipa))
        .ok_or(Refusal::NoDevice)?;
    let last = ipa
        .checked_add(u64::from(size) - 1)
        .ok_or(Refusal::LeavesDevice)?;
    if last >= device.end() {
        return Err(Refusal::LeavesDevice);
    }
    Ok((index, ipa - device.base))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICES: [EmulatedDevice<'static>; 3] = [
        EmulatedDevice {
            vm: 0,
            name: "uart0",
            base: 0x900_0000,
            size: 0x1000,
            interrupt: None,
        },
        EmulatedDevice {
            vm: 1,
            name: "uart0",
            base: 0x900_0000,
            size: 0x1000,
            interrupt: None,
        },
        EmulatedDevice {
            vm: 0,
            name: "uart1",
            base: 0x900_2000,
            size: 0x2000,
            interrupt: None,
        },
    ];

    #[test]
    fn finds_the_vms_own_device() {
        assert_eq!(locate(&DEVICES, 0, Ipa(0x900_0018), 4), Ok((0, 0x18)));
        assert_eq!(locate(&DEVICES, 1, Ipa(0x900_0018), 4), Ok((1, 0x18)));
        assert_eq!(locate(&DEVICES, 0, Ipa(0x900_3FF8), 8), Ok((2, 0x1FF8)));
        assert_eq!(locate(&DEVICES, 0, Ipa(0x900_0FFF), 1), Ok((0, 0xFFF)));
    }

    #[test]
    fn refuses_what_is_not_inside_one_device() {
        assert_eq!(
            locate(&DEVICES, 2, Ipa(0x900_0000), 4),
            Err(Refusal::NoDevice)
        );
        assert_eq!(
            locate(&DEVICES, 0, Ipa(0x900_1000), 4),
            Err(Refusal::NoDevice)
        );
        assert_eq!(
            locate(&DEVICES, 1, Ipa(0x900_2000), 4),
            Err(Refusal::NoDevice)
        );
        assert_eq!(
            locate(&DEVICES, 0, Ipa(0x8FF_FFFC), 8),
            Err(Refusal::NoDevice)
        );
        // Straddling the end: into the next granule (unemulated), or into another device.
        assert_eq!(
            locate(&DEVICES, 0, Ipa(0x900_0FFC), 8),
            Err(Refusal::LeavesDevice)
        );
        assert_eq!(
            locate(&DEVICES, 0, Ipa(0x900_0FFF), 2),
            Err(Refusal::LeavesDevice)
        );
        assert_eq!(
            locate(&DEVICES, 0, Ipa(0x900_3FFD), 4),
            Err(Refusal::LeavesDevice)
        );
        assert_eq!(
            locate(&DEVICES, 0, Ipa(u64::MAX - 3), 8),
            Err(Refusal::NoDevice)
        );
    }

    #[test]
    fn refuses_odd_sizes() {
        for size in [0, 3, 5, 16] {
            assert_eq!(
                locate(&DEVICES, 0, Ipa(0x900_0000), size),
                Err(Refusal::BadSize)
            );
        }
    }
}
