//! The component's decisions, pure and host-tested: the host calls (argument validation, the
//! ownership error → SMCCC code mapping, the order of ownership and table changes), the
//! host stage-2 fault (map, or refuse with an injected abort), and guest memory for the VM
//! manager (memslots, devices, wipes: see `guests.rs`). The component binary (`main.rs`) only
//! adds the kernel (IPC, TLB maintenance, zeroing) and logging.
//!
//! # Host calls (vendor-hyp range, SMC64 fast calls)
//!
//! | function | x1 | x2 | x3 |
//! |---|---|---|---|
//! | [`HOST_SHARE_HYP`](function::HOST_SHARE_HYP) `0xC600_0090` | PA of one page | | |
//! | [`HOST_UNSHARE_HYP`](function::HOST_UNSHARE_HYP) `0xC600_0091` | PA of one page | | |
//! | [`HOST_DONATE_GUEST`](function::HOST_DONATE_GUEST) `0xC600_0092` | PA | pages ≥ 1 | guest |
//! | [`HOST_RECLAIM`](function::HOST_RECLAIM) `0xC600_0093` | PA | pages ≥ 1 | guest |
//! | [`HOST_GUEST_SHARED`](function::HOST_GUEST_SHARED) `0xC600_0094` | guest VM id | n | |
//!
//! x0 returns a [`code`]: `SUCCESS` 0; `INVALID_PARAMETER` -3 (misaligned, not RAM, zero
//! pages, a range that overflows, no such guest, a guest VM of the configuration); `NOT_OWNED`
//! -5 (a page is not owned by the party the call needs: the host, or that guest);
//! `ALREADY_SHARED` -6; `NOT_SHARED` -7; `NOT_SUPPORTED` -1 for any other function routed here.
//! A refused call changes nothing. HOST_GUEST_SHARED answers x1 = the PA of the n-th page
//! guest VM x1 shares with the host (ascending PA), x2 = how many it shares; -3 for no such
//! guest VM or n past the last. Guests' MEM_SHARE and MEM_UNSHARE are in `sharing.rs`.
//!
//! # Order of operations
//!
//! - **Donate**: the ownership transition checks every page and commits (it cannot fail once
//!   checked), *then* each page is annotated in the host's stage 2 (splitting blocks,
//!   break-before-make, TLB invalidated). From the commit on, the fault path refuses the pages
//!   whatever the tables say, since it asks the ownership table before it maps anything. The
//!   annotation needs tables only from the memory pool, which is sized for every RAM page
//!   mapped page by page and never frees a table, so it cannot run out; should it fail anyway,
//!   the leaf covering the page is unmapped instead (unmapping needs no table), so the page is
//!   never left mapped: the host's next access faults and is refused by the ownership check.
//! - **Reclaim**: the ownership transition commits, then the kernel zeroes the pages and cleans
//!   them to the point of coherency (ZERO_PAGES), then the annotations are cleared; the host
//!   maps the pages again lazily on its next access. The component serves one call at a time,
//!   so no host fault on these pages is handled between the commit and the zeroing. If the
//!   kernel refuses to zero them, the pages are given back to the guest (the host cannot have
//!   seen them: they are still annotated and the commit was never visible to a fault) and the
//!   call fails with `NOT_SUPPORTED`.
//!
//! # Faults
//!
//! [`MemProtect::stage2_fault`] maps the identity block around the IPA when every page of it is
//! the host's to access ([`host_may_map`]): RAM the ownership table gives the host, or device
//! space that is neither RAM nor a device hole (an emulated device). Under the largest-block
//! policy the same question decides every block of the table fill (see
//! [`crate::stage2`]), so the fill never maps a page given away, the hypervisor's region or a
//! device hole. Otherwise the host gets an abort injected. Running out of tables (after the device pool's recycle) also refuses, never
//! loops and never panics.

use core::ops::Range;

use crate::ownership::{MAX_GUESTS, OwnershipError, OwnershipTable, PAGE_SIZE, Party, PhysAddr};
use crate::stage2::{
    Access, HostStage2, Invalidation, IpaRange, Mapped, MappingPolicy, OwnerId, Stage2Error, Stats,
};
use hv_ipc::addr::Ipa;

pub use guests::{GuestVm, Guests, MAX_GUESTS as MAX_GUEST_VMS, MemslotAdded, Wiped};
pub use sharing::{GuestCall, GuestCallOutcome, decode_guest_call};

/// The host calls' function IDs (w0), defined with the rest of the guest ABI.
pub mod function {
    pub use hv_ipc::guest_abi::host::{
        HOST_DONATE_GUEST, HOST_GUEST_SHARED, HOST_RECLAIM, HOST_SHARE_HYP, HOST_UNSHARE_HYP,
    };
    pub use hv_ipc::guest_abi::kvm::{MEM_SHARE, MEM_UNSHARE};
}

/// Return codes in x0 (as signed values), defined with the rest of the guest ABI.
pub use hv_ipc::guest_abi::host::code;

/// A host call, its arguments validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCall {
    /// Share `page` with the hypervisor.
    ShareHyp {
        /// The page.
        page: PhysAddr,
    },
    /// Stop sharing `page`.
    UnshareHyp {
        /// The page.
        page: PhysAddr,
    },
    /// Donate `pages` to `guest`.
    DonateGuest {
        /// The pages, page aligned and non-empty.
        pages: Range<PhysAddr>,
        /// The guest's number.
        guest: u8,
    },
    /// Take `pages` back from `guest`.
    Reclaim {
        /// The pages, page aligned and non-empty.
        pages: Range<PhysAddr>,
        /// The guest's number.
        guest: u8,
    },
    /// The `n`-th page guest VM `vm` shares with the host.
    GuestShared {
        /// The guest VM.
        vm: u16,
        /// Which page, from 0 in ascending PA.
        n: u64,
    },
}

/// Decodes and validates a host call from the caller's x0..x7: `Err` holds the code to return
/// (`NOT_SUPPORTED` for a function that is not one of [`function`]). Whether the pages are RAM
/// is the ownership table's to say.
pub fn decode_host_call(regs: &[u64; 8]) -> Result<HostCall, i64> {
    let function = regs[0] as u32;
    let aligned = |addr: u64| {
        if addr.is_multiple_of(PAGE_SIZE) {
            Ok(PhysAddr(addr))
        } else {
            Err(code::INVALID_PARAMETER)
        }
    };
    let range = |start: u64, pages: u64| {
        let start = aligned(start)?;
        if pages == 0 {
            return Err(code::INVALID_PARAMETER);
        }
        let end = pages
            .checked_mul(PAGE_SIZE)
            .and_then(|len| start.0.checked_add(len))
            .ok_or(code::INVALID_PARAMETER)?;
        Ok(start..PhysAddr(end))
    };
    let guest = |number: u64| match u8::try_from(number) {
        Ok(guest) if guest < MAX_GUESTS => Ok(guest),
        _ => Err(code::INVALID_PARAMETER),
    };
    match function {
        function::HOST_SHARE_HYP => Ok(HostCall::ShareHyp {
            page: aligned(regs[1])?,
        }),
        function::HOST_UNSHARE_HYP => Ok(HostCall::UnshareHyp {
            page: aligned(regs[1])?,
        }),
        function::HOST_DONATE_GUEST => Ok(HostCall::DonateGuest {
            pages: range(regs[1], regs[2])?,
            guest: guest(regs[3])?,
        }),
        function::HOST_RECLAIM => Ok(HostCall::Reclaim {
            pages: range(regs[1], regs[2])?,
            guest: guest(regs[3])?,
        }),
        function::HOST_GUEST_SHARED => Ok(HostCall::GuestShared {
            vm: u16::try_from(regs[1]).map_err(|_| code::INVALID_PARAMETER)?,
            n: regs[2],
        }),
        _ => Err(code::NOT_SUPPORTED),
    }
}

/// The code a refused ownership transition returns.
pub const fn error_code(error: OwnershipError) -> i64 {
    match error {
        OwnershipError::NotMemory { .. }
        | OwnershipError::Misaligned { .. }
        | OwnershipError::EmptyRange { .. }
        | OwnershipError::OutOfRange
        | OwnershipError::NoSuchGuest { .. } => code::INVALID_PARAMETER,
        OwnershipError::NotOwnedByHost { .. } | OwnershipError::NotOwnedByGuest { .. } => {
            code::NOT_OWNED
        }
        OwnershipError::AlreadyShared { .. } => code::ALREADY_SHARED,
        OwnershipError::NotShared { .. } => code::NOT_SHARED,
    }
}

/// Whether the host's stage 2 may map the page-aligned `range` (a page, or a candidate block)
/// for the host: RAM only if the ownership table gives the host every page of it (`reserved`,
/// the hypervisor's permanent ranges, answer no at once without a scan); device space only
/// if it holds no RAM and no device hole (an emulated device, which must keep faulting).
pub fn host_may_map(
    ownership: &OwnershipTable<'_>,
    reserved: &[IpaRange],
    holes: &[IpaRange],
    range: IpaRange,
) -> bool {
    let ram = ownership.ram();
    let ram = IpaRange::new(ram.start.0, ram.end.0);
    if ram.contains_range(&range) {
        !reserved.iter().any(|r| r.overlaps(&range))
            && ownership
                .host_may_access_range(PhysAddr(range.start)..PhysAddr(range.end))
                .unwrap_or(false)
    } else {
        !ram.overlaps(&range) && !holes.iter().any(|hole| hole.overlaps(&range))
    }
}

/// A guest VM's stage-2 TLB entries to invalidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestInvalidation {
    /// Those for the page at this IPA (an alias is a page of its own).
    Page(u64),
    /// Every entry of its VMID.
    All,
}

/// What the component needs of the kernel.
pub trait Kernel {
    /// Invalidates the host's stage-2 TLB entries (HOST_TLB_INVALIDATE), synchronously.
    fn invalidate(&mut self, what: Invalidation);
    /// Invalidates guest VM `vm`'s stage-2 TLB entries (GUEST_TLB_INVALIDATE), synchronously:
    /// after an entry that was valid (a shared alias) is cleared.
    fn invalidate_guest(&mut self, vm: u16, what: GuestInvalidation);
    /// Zeroes `[start, start + len)` and cleans it to PoC (ZERO_PAGES); `false` if refused.
    fn zero_pages(&mut self, start: u64, len: u64) -> bool;
}

/// What a host stage-2 fault came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The IPA is translated now (or was already): resume the access.
    Mapped(Mapped),
    /// The host may not access the page: inject the abort. `owner` is the page's owner when it
    /// is RAM (`None` for device space the host may not map).
    Refused {
        /// The faulting page.
        page: u64,
        /// Its owner.
        owner: Option<Party>,
    },
    /// The tables could not map it (out of tables, corrupt, outside the IPA space): inject the
    /// abort too.
    Failed(Stage2Error),
}

/// What a host call came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// The code for x0.
    pub code: i64,
    /// The call, when its arguments were valid.
    pub call: Option<HostCall>,
    /// Donated pages whose annotation failed (they were unmapped instead) or reclaimed pages
    /// whose annotation could not be cleared: a table problem worth an error in the log.
    pub table_failures: u64,
    /// x1..x3 of the answer (HOST_GUEST_SHARED's page and count; zero otherwise).
    pub results: [u64; 3],
}

/// The component's state: page ownership and the host's stage 2.
pub struct MemProtect<'a> {
    ownership: OwnershipTable<'a>,
    stage2: HostStage2<'a>,
    reserved: &'a [IpaRange],
    holes: &'a [IpaRange],
    guests: Guests<'a>,
    /// Where the last HOST_GUEST_SHARED found its page: (VM, n, PA). The next n resumes the
    /// scan there; any change to what a guest shares forgets it.
    shared_cursor: Option<(u16, u64, u64)>,
}

impl<'a> MemProtect<'a> {
    /// Serves `stage2` with `ownership` (the hypervisor's `reserved` ranges already reserved in
    /// it) and never maps the device `holes`; no guest VM until [`Self::with_guests`].
    pub fn new(
        ownership: OwnershipTable<'a>,
        stage2: HostStage2<'a>,
        reserved: &'a [IpaRange],
        holes: &'a [IpaRange],
    ) -> Self {
        Self {
            ownership,
            stage2,
            reserved,
            holes,
            guests: Guests::new(),
            shared_cursor: None,
        }
    }

    /// The ownership table.
    pub fn ownership(&self) -> &OwnershipTable<'a> {
        &self.ownership
    }

    /// The host's stage 2.
    pub fn stage2(&self) -> &HostStage2<'a> {
        &self.stage2
    }

    /// The stage 2's counters.
    pub fn stats(&self) -> Stats {
        self.stage2.stats()
    }

    /// The mapping policy's name, as the benchmark logs it.
    pub fn policy_name(&self) -> &'static str {
        policy_name(self.stage2.policy())
    }

    /// Resolves a host stage-2 fault of an `access` at `ipa`.
    pub fn stage2_fault(
        &mut self,
        ipa: Ipa,
        access: Access,
        kernel: &mut impl Kernel,
    ) -> FaultOutcome {
        // The host's stage 2 is an identity map: its IPAs are the physical pages they own.
        let page = ipa.page();
        let mut result = self.map(ipa.0, access, kernel);
        if let Err(Stage2Error::OwnedBy(_)) = result
            && self.ownership.host_may_access(page.identity()) == Ok(true)
        {
            // A stale annotation: the ownership table is the authority.
            let _ = self.stage2.clear_annotation(page.0);
            result = self.map(ipa.0, access, kernel);
        }
        match result {
            Ok(mapped) => FaultOutcome::Mapped(mapped),
            Err(Stage2Error::NotHostOwned(_) | Stage2Error::OwnedBy(_)) => FaultOutcome::Refused {
                page: page.0,
                owner: self.ownership.owner(page.identity()).ok(),
            },
            Err(error) => FaultOutcome::Failed(error),
        }
    }

    fn map(
        &mut self,
        ipa: u64,
        access: Access,
        kernel: &mut impl Kernel,
    ) -> Result<Mapped, Stage2Error> {
        let (ownership, reserved, holes) = (&self.ownership, self.reserved, self.holes);
        self.stage2.handle_fault(
            ipa,
            access,
            |range| host_may_map(ownership, reserved, holes, range),
            &mut |what| kernel.invalidate(what),
        )
    }

    /// Serves a host call from the caller's x0..x7.
    pub fn host_call(&mut self, regs: &[u64; 8], kernel: &mut impl Kernel) -> CallOutcome {
        let call = match decode_host_call(regs) {
            Ok(call) => call,
            Err(code) => {
                return CallOutcome {
                    code,
                    call: None,
                    table_failures: 0,
                    results: [0; 3],
                };
            }
        };
        if let HostCall::GuestShared { vm, n } = call {
            let (code, results) = match self.guest_shared(vm, n) {
                Ok((page, count)) => (code::SUCCESS, [page.0, count, 0]),
                Err(code) => (code, [0; 3]),
            };
            return CallOutcome {
                code,
                call: Some(call),
                table_failures: 0,
                results,
            };
        }
        let guest_vm = match &call {
            HostCall::DonateGuest { guest, .. } | HostCall::Reclaim { guest, .. } => {
                self.is_guest_vm(*guest)
            }
            HostCall::ShareHyp { .. }
            | HostCall::UnshareHyp { .. }
            | HostCall::GuestShared { .. } => false,
        };
        if guest_vm {
            // A guest VM's memory is given by the VM manager and never handed back to the host
            // while the VM lives: the host may not name it.
            return CallOutcome {
                code: code::INVALID_PARAMETER,
                call: Some(call),
                table_failures: 0,
                results: [0; 3],
            };
        }
        let (result, table_failures) = match &call {
            HostCall::ShareHyp { page } => (
                self.ownership
                    .host_share_hyp(*page)
                    .map_err(Refusal::Ownership),
                0,
            ),
            HostCall::UnshareHyp { page } => (
                self.ownership
                    .host_unshare_hyp(*page)
                    .map_err(Refusal::Ownership),
                0,
            ),
            HostCall::DonateGuest { pages, guest } => self.donate(pages.clone(), *guest, kernel),
            HostCall::Reclaim { pages, guest } => self.reclaim(pages.clone(), *guest, kernel),
            // Answered above; it changes nothing.
            HostCall::GuestShared { .. } => (Ok(()), 0),
        };
        let code = match result {
            Ok(()) => code::SUCCESS,
            Err(Refusal::Ownership(error)) => error_code(error),
            Err(Refusal::ZeroingRefused) => code::NOT_SUPPORTED,
        };
        CallOutcome {
            code,
            call: Some(call),
            table_failures,
            results: [0; 3],
        }
    }

    /// Donate: commit, then annotate each page (see the module docs for the order).
    fn donate(
        &mut self,
        pages: Range<PhysAddr>,
        guest: u8,
        kernel: &mut impl Kernel,
    ) -> (Result<(), Refusal>, u64) {
        if let Err(error) = self.ownership.host_donate_guest(pages.clone(), guest) {
            return (Err(Refusal::Ownership(error)), 0);
        }
        (Ok(()), self.annotate_given_away(pages, kernel))
    }

    /// Annotates each page of `pages`, given away, with its owner in the host's stage 2 (a
    /// mapped page is replaced, its TLB entries invalidated). A page whose annotation fails is
    /// unmapped instead (which needs no table), so no page is left mapped; returns how many.
    fn annotate_given_away(&mut self, pages: Range<PhysAddr>, kernel: &mut impl Kernel) -> u64 {
        let mut failures = 0;
        for page in (pages.start.0..pages.end.0).step_by(PAGE_SIZE as usize) {
            let owner = self.ownership.annotation(PhysAddr(page)).unwrap_or(0);
            let mut tlb = |what| kernel.invalidate(what);
            if self
                .stage2
                .set_owner_annotation(page, OwnerId(u32::from(owner)), &mut tlb)
                .is_err()
            {
                failures += 1;
                // Never leave it mapped: drop the leaf covering it (needs no table).
                let _ = self
                    .stage2
                    .unmap(IpaRange::sized(page, PAGE_SIZE), &mut tlb);
            }
        }
        failures
    }

    /// Reclaim: commit, zero and clean, then clear the annotations.
    fn reclaim(
        &mut self,
        pages: Range<PhysAddr>,
        guest: u8,
        kernel: &mut impl Kernel,
    ) -> (Result<(), Refusal>, u64) {
        let reclaim = match self.ownership.host_reclaim(pages.clone(), guest) {
            Ok(reclaim) => reclaim,
            Err(error) => return (Err(Refusal::Ownership(error)), 0),
        };
        let range = reclaim.range();
        if !kernel.zero_pages(range.start.0, range.end.0 - range.start.0) {
            // Give them back: nobody saw the commit, and the host must never see the data.
            let restored = self.ownership.host_donate_guest(range, guest);
            return (Err(Refusal::ZeroingRefused), u64::from(restored.is_err()));
        }
        let mut failures = 0;
        for page in reclaim.pages() {
            if self.stage2.clear_annotation(page.0).is_err() {
                failures += 1;
            }
        }
        (Ok(()), failures)
    }
}

/// Why a call changed nothing.
enum Refusal {
    Ownership(OwnershipError),
    ZeroingRefused,
}

/// `largest-block` or `page-only`.
pub const fn policy_name(policy: MappingPolicy) -> &'static str {
    match policy {
        MappingPolicy::LargestBlock => "largest-block",
        MappingPolicy::PageOnly => "page-only",
    }
}

mod guests;
mod sharing;
#[cfg(test)]
mod tests;
