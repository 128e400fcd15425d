//! What the kernel keeps about each guest VM while it runs: which of its vCPUs are off, being
//! started or running, and the cache (and MTE tag) maintenance its memory is owed.
//!
//! # Deferred maintenance (seed 002)
//!
//! A guest's memory is locked: its stage 2 maps every memslot in full before the VM first
//! runs, so it never takes the stage-2 faults on which a hypervisor would otherwise clean a
//! page's data cache, invalidate the instruction cache or scrub a page's allocation tags. The
//! maintenance is instead owed by the whole VM whenever its memory is (re)loaded: at creation
//! and at each reset ([`GuestRun::loaded`]). It runs once, on the CPU of the first vCPU to run
//! afterwards ([`GuestRun::entering`] hands it the operations and clears them), before that
//! vCPU's first instruction; no other vCPU of the VM runs meanwhile, because the VM must be
//! wholly stopped to be loaded and only the first vCPU to enter finds work owed. Tag scrubbing
//! is owed only by a VM that may use MTE on a CPU that has it (as the seed's review asked:
//! never set a pending operation that can never be cleared).
//!
//! # vCPU states
//!
//! PSCI's view of a vCPU (CPU_ON, AFFINITY_INFO): off, on pending (started, not yet running)
//! or on. A guest's vCPUs are pinned to physical CPUs, so "on" also means its CPU runs it.
//! The kernel keeps one [`GuestRun`] per guest under a lock; this module only decides.
//!
//! # Stopping a VM
//!
//! A VM stops (SYSTEM_OFF from one of its vCPUs, the host's HOST_VM_STOP, a trap nothing can
//! answer) in two steps: [`GuestRun::request_stop`] marks it stopping, and each of its vCPUs
//! that is on stops at its next exit to the kernel ([`GuestRun::must_stop`],
//! [`GuestRun::stopped`]); the VM counts as stopped once the last is off. Until then it is
//! neither reloaded nor started again, so no vCPU of the old run ever sees memory being
//! rewritten. A vCPU that was started but has not run yet is simply cancelled. (The kernel
//! kicks the VM's CPUs, whose interrupts it takes, so a vCPU that never traps exits at once.)

/// How many vCPUs one guest may have (`hv_abi::MAX_GUEST_VCPUS`).
pub const MAX_VCPUS: usize = 8;

/// Maintenance operations a VM's memory may be owed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Clean the data cache to the point of coherency over its memory, so that what the
    /// kernel (or a previous owner) wrote is what a vCPU running with its caches off reads.
    pub clean_data_cache: bool,
    /// Invalidate the instruction caches, so no stale instruction of its memory is fetched.
    pub invalidate_instruction_cache: bool,
    /// Zero the allocation tags of its memory (a VM that may use MTE).
    pub scrub_tags: bool,
}

impl Maintenance {
    /// Nothing owed.
    pub const NONE: Self = Self {
        clean_data_cache: false,
        invalidate_instruction_cache: false,
        scrub_tags: false,
    };

    /// Whether anything is owed.
    pub fn any(&self) -> bool {
        *self != Self::NONE
    }
}

/// How many times each operation ran, for the log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceCounts {
    /// Times the memory was (re)loaded: creation, then each reset.
    pub loads: u64,
    /// Data-cache cleans run.
    pub data_cache_cleans: u64,
    /// Instruction-cache invalidations run.
    pub instruction_cache_invalidations: u64,
    /// Tag scrubs run.
    pub tag_scrubs: u64,
}

/// A vCPU as PSCI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuState {
    /// Off: CPU_ON may start it.
    Off,
    /// Started (CPU_ON accepted), not yet running: it enters at `entry` with x0 = `context`.
    Starting {
        /// Its first instruction (an IPA).
        entry: u64,
        /// Its x0.
        context: u64,
    },
    /// Running on its CPU.
    On,
}

/// Why a vCPU was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The VM has no such vCPU.
    NoSuchVcpu,
    /// It runs already (PSCI ALREADY_ON).
    AlreadyOn,
    /// It is being started (PSCI ON_PENDING).
    OnPending,
    /// The VM is stopped for good (powered off, or stopped after an error).
    VmStopped,
}

/// Why the VM's memory may not be reloaded now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// A vCPU other than the caller's is on (or being started): its CPU could read memory
    /// while it is rewritten, and would run on over the reset.
    VcpuRuns(usize),
}

/// One guest VM's run state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestRun {
    vcpus: [VcpuState; MAX_VCPUS],
    vcpu_count: usize,
    /// The VM may use MTE and the CPUs have it: loads owe a tag scrub.
    scrubs_tags: bool,
    owed: Maintenance,
    counts: MaintenanceCounts,
    /// Stopping or stopped: no vCPU starts until the VM is reloaded.
    stopping: bool,
}

impl GuestRun {
    /// A VM of `vcpu_count` vCPUs (at most [`MAX_VCPUS`]), all off, whose memory was just
    /// loaded (its creation): the maintenance is owed. `scrubs_tags`: it may use MTE and the
    /// machine has it.
    pub fn new(vcpu_count: usize, scrubs_tags: bool) -> Self {
        let mut run = Self {
            vcpus: [VcpuState::Off; MAX_VCPUS],
            vcpu_count: vcpu_count.min(MAX_VCPUS),
            scrubs_tags,
            owed: Maintenance::NONE,
            counts: MaintenanceCounts::default(),
            stopping: false,
        };
        run.owe_maintenance();
        run
    }

    fn owe_maintenance(&mut self) {
        self.owed = Maintenance {
            clean_data_cache: true,
            invalidate_instruction_cache: true,
            scrub_tags: self.scrubs_tags,
        };
        self.counts.loads += 1;
    }

    /// vCPU `vcpu`'s state, if the VM has it.
    pub fn vcpu(&self, vcpu: usize) -> Option<VcpuState> {
        self.vcpus[..self.vcpu_count].get(vcpu).copied()
    }

    /// What is owed, without taking it.
    pub fn owed(&self) -> Maintenance {
        self.owed
    }

    /// The counts so far.
    pub fn counts(&self) -> MaintenanceCounts {
        self.counts
    }

    /// Whether the VM is stopped: asked to stop, and none of its vCPUs on any more.
    pub fn is_stopped(&self) -> bool {
        self.stopping && !self.any_on()
    }

    /// Whether the VM was asked to stop (its vCPUs that are on stop at their next exit).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether vCPU `vcpu`, which has just exited to the kernel, must stop now.
    pub fn must_stop(&self, vcpu: usize) -> bool {
        self.stopping && self.vcpu(vcpu) == Some(VcpuState::On)
    }

    /// Whether any vCPU is on or being started.
    pub fn any_on(&self) -> bool {
        self.vcpus[..self.vcpu_count]
            .iter()
            .any(|state| *state != VcpuState::Off)
    }

    /// CPU_ON (or the VM's start): vCPU `vcpu` is to enter at `entry` with x0 = `context`.
    pub fn start(&mut self, vcpu: usize, entry: u64, context: u64) -> Result<(), StartError> {
        if self.stopping {
            return Err(StartError::VmStopped);
        }
        let state = self.vcpus[..self.vcpu_count]
            .get_mut(vcpu)
            .ok_or(StartError::NoSuchVcpu)?;
        match *state {
            VcpuState::On => Err(StartError::AlreadyOn),
            VcpuState::Starting { .. } => Err(StartError::OnPending),
            VcpuState::Off => {
                *state = VcpuState::Starting { entry, context };
                Ok(())
            }
        }
    }

    /// A start that could not be carried out (the firmware refused to power the CPU on):
    /// the vCPU is off again.
    pub fn start_failed(&mut self, vcpu: usize) {
        if let Some(state @ VcpuState::Starting { .. }) =
            self.vcpus[..self.vcpu_count].get_mut(vcpu)
        {
            *state = VcpuState::Off;
        }
    }

    /// vCPU `vcpu`'s CPU is about to run it for the first time since it was started: it is on,
    /// and the caller runs the returned maintenance (owed by the whole VM, now cleared) before
    /// the vCPU's first instruction. `None` if the vCPU was not being started.
    pub fn entering(&mut self, vcpu: usize) -> Option<(u64, u64, Maintenance)> {
        let state = self.vcpus[..self.vcpu_count].get_mut(vcpu)?;
        let VcpuState::Starting { entry, context } = *state else {
            return None;
        };
        *state = VcpuState::On;
        let owed = core::mem::replace(&mut self.owed, Maintenance::NONE);
        self.counts.data_cache_cleans += u64::from(owed.clean_data_cache);
        self.counts.instruction_cache_invalidations += u64::from(owed.invalidate_instruction_cache);
        self.counts.tag_scrubs += u64::from(owed.scrub_tags);
        Some((entry, context, owed))
    }

    /// vCPU `vcpu` stopped (CPU_OFF): it may be started again.
    pub fn stopped(&mut self, vcpu: usize) {
        if let Some(state) = self.vcpus[..self.vcpu_count].get_mut(vcpu) {
            *state = VcpuState::Off;
        }
    }

    /// The VM is to stop (it powered off, the host stops it, or it is stopped after an
    /// error): vCPUs started but not yet running are cancelled, those that run stop at their
    /// next exit. Returns whether it is stopped already.
    pub fn request_stop(&mut self) -> bool {
        self.stopping = true;
        for state in &mut self.vcpus[..self.vcpu_count] {
            if matches!(state, VcpuState::Starting { .. }) {
                *state = VcpuState::Off;
            }
        }
        self.is_stopped()
    }

    /// The VM's memory was wiped and its images copied back (a reset): the maintenance is
    /// owed again. Refused while a vCPU other than `caller` (the one whose reset request is
    /// being served, stopped in the kernel) is on or being started; the caller's vCPU is off
    /// afterwards, to be started again.
    pub fn loaded(&mut self, caller: Option<usize>) -> Result<(), LoadError> {
        if let Some(vcpu) = (0..self.vcpu_count)
            .find(|&vcpu| Some(vcpu) != caller && self.vcpus[vcpu] != VcpuState::Off)
        {
            return Err(LoadError::VcpuRuns(vcpu));
        }
        if let Some(vcpu) = caller {
            self.stopped(vcpu);
        }
        self.stopping = false;
        self.owe_maintenance();
        Ok(())
    }

    /// What PSCI AFFINITY_INFO says of vCPU `vcpu`.
    pub fn affinity(&self, vcpu: usize) -> Option<VcpuState> {
        self.vcpu(vcpu)
    }
}

#[cfg(test)]
mod tests;
