//! How a run of the hypervisor ends, as the tools and scripts around it see it.

/// How a run of the hypervisor ended, as the exit status QEMU reports through semihosting.
///
/// The values are what `cargo xtask run` returns to the shell, so scripts can tell a clean
/// power-off from a reset or a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitStatus {
    /// The host VM called PSCI SYSTEM_OFF.
    PoweredOff = 0,
    /// The host VM called PSCI SYSTEM_RESET (or SYSTEM_RESET2).
    Reset = 3,
    /// The hypervisor panicked.
    HypervisorPanic = 4,
    /// The hypervisor took an exception at EL2 it cannot recover from.
    HypervisorFault = 5,
    /// The image could not be booted (bad boot table, machine too small, ...).
    BootFailure = 6,
    /// The host VM was stopped: a trap of its could not be answered (its component is stopped
    /// for good, or answered something that does not fit the trap).
    VmStopped = 7,
}

impl ExitStatus {
    /// The status for a raw exit code, if it is one of ours.
    pub fn from_code(code: i32) -> Option<Self> {
        [
            Self::PoweredOff,
            Self::Reset,
            Self::HypervisorPanic,
            Self::HypervisorFault,
            Self::BootFailure,
            Self::VmStopped,
        ]
        .into_iter()
        .find(|status| *status as i32 == code)
    }

    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PoweredOff => "guest powered off",
            Self::Reset => "guest requested a reset",
            Self::HypervisorPanic => "hypervisor panicked",
            Self::HypervisorFault => "hypervisor took an unrecoverable exception",
            Self::BootFailure => "hypervisor could not boot the image",
            Self::VmStopped => "the host VM was stopped: a trap of its could not be answered",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_codes_are_distinct_and_decodable() {
        for status in [
            ExitStatus::PoweredOff,
            ExitStatus::Reset,
            ExitStatus::HypervisorPanic,
            ExitStatus::HypervisorFault,
            ExitStatus::BootFailure,
            ExitStatus::VmStopped,
        ] {
            assert_eq!(ExitStatus::from_code(status as i32), Some(status));
        }
        assert_eq!(ExitStatus::from_code(1), None);
    }
}
