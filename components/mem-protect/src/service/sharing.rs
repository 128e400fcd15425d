//! Guests sharing their memory with the host: MEM_SHARE and MEM_UNSHARE (pKVM's calls, as
//! Linux's pkvm-guest driver makes them), the host's HOST_GUEST_SHARED, and the unsharing a
//! wipe does first.
//!
//! # States
//!
//! A page of a guest VM's memslots is private (guest `Owned`, host `NoPage`) or shared (guest
//! `SharedOwned`, host `SharedBorrowed`). Only the guest moves it between the two, one 4 KiB
//! page per call; the ownership table is the authority, the tables follow it.
//!
//! # Aliases (seed 004, DESIGN decision 14)
//!
//! A VM with a shared IPA bit reaches a shared page at two IPAs: its own (always mapped) and
//! its alias, the IPA with the bit set, mapped only while the page is shared. The guest may
//! name either in x1: memslot lookups strip the bit. The alias tables were prepared when the
//! memslot was added, so sharing takes no table.
//!
//! # Order of operations
//!
//! - **MEM_SHARE**: checks (arguments, the memslot, the ownership transition, the alias entry
//!   empty in a prepared table), then the commits, none of which can fail: the ownership
//!   transition (from here the host's fault path may map the page), the alias page, and the
//!   host's annotation cleared (so its next access maps the page without the stale-annotation
//!   detour). Nothing needs TLB maintenance: only empty entries became valid.
//! - **MEM_UNSHARE**: checks (the same, and the alias entry maps this page or nothing), then
//!   the ownership transition (from here the fault path refuses the host), the alias unmapped
//!   and its TLB entry invalidated (GUEST_TLB_INVALIDATE), the host's mapping of the page
//!   replaced by its owner's annotation with its TLB entry invalidated (HOST_TLB_INVALIDATE;
//!   a host block over it is split first, break-before-make), all before the guest's call
//!   returns: from then on only its own IPA reaches the page.
//! - **Wipe** (a reset): every shared page is unshared so, the aliases with one invalidation of
//!   the whole VMID at the end (the VM is stopped, and one VMALL is cheaper than one by-IPA
//!   invalidation per page), and only then is the memory zeroed.
//!
//! The component serves one call at a time, so no host fault is handled between a commit and
//! the table changes that follow it.

use hv_ipc::guest_abi::kvm;

use hv_component_config::heapless::Vec;

use super::{GuestInvalidation, Kernel, MemProtect, code, error_code, function};
use crate::memslots::{MAX_MEMSLOTS, Slot, SlotKind};
use crate::ownership::{PAGE_SIZE, PageState, Party, PhysAddr};
use crate::stage2::Reservation;

/// A guest's call, its arguments validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestCall {
    /// MEM_SHARE of the page at `ipa` (with or without the shared bit).
    Share {
        /// The IPA named.
        ipa: u64,
    },
    /// MEM_UNSHARE of the page at `ipa`.
    Unshare {
        /// The IPA named.
        ipa: u64,
    },
}

/// Decodes a guest's MEM_SHARE or MEM_UNSHARE from its x0..x7: x1 a page-aligned IPA, x2 and
/// x3 zero (as Linux passes them), else `INVALID_PARAMETER`; `NOT_SUPPORTED` for another
/// function. Whether the IPA is the guest's RAM is for its memslots to say.
pub fn decode_guest_call(regs: &[u64; 8]) -> Result<GuestCall, i64> {
    let call = match regs[0] as u32 {
        function::MEM_SHARE => GuestCall::Share { ipa: regs[1] },
        function::MEM_UNSHARE => GuestCall::Unshare { ipa: regs[1] },
        _ => return Err(code::NOT_SUPPORTED),
    };
    if regs[2] != 0 || regs[3] != 0 || !regs[1].is_multiple_of(PAGE_SIZE) {
        return Err(code::INVALID_PARAMETER);
    }
    Ok(call)
}

/// What a guest's call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestCallOutcome {
    /// The code for x0 ([`kvm::code`]).
    pub code: i64,
    /// The call, when its arguments were valid.
    pub call: Option<GuestCall>,
    /// The physical page the IPA named, when it is the guest's RAM.
    pub page: Option<PhysAddr>,
    /// The alias IPA mapped or unmapped, for a VM with a shared bit.
    pub alias: Option<u64>,
    /// Table changes that failed after the commit (an alias not written or not cleared, a host
    /// annotation not cleared or not set, the page unmapped instead): worth an error in the
    /// log, never a page left reachable by a party the ownership table says may not.
    pub table_failures: u64,
}

/// A page, checked, ready for the commits.
struct Checked {
    index: usize,
    guest: u8,
    page: PhysAddr,
    alias: Option<u64>,
    /// MEM_SHARE's alias page, reserved.
    reservation: Option<Reservation>,
}

impl MemProtect<'_> {
    /// Serves a guest VM's MEM_SHARE or MEM_UNSHARE from its x0..x7 (`vm` 0, the host, and VMs
    /// the component does not serve get `NOT_SUPPORTED`).
    pub fn guest_call(
        &mut self,
        vm: u16,
        regs: &[u64; 8],
        kernel: &mut impl Kernel,
    ) -> GuestCallOutcome {
        let mut outcome = GuestCallOutcome {
            code: code::NOT_SUPPORTED,
            call: None,
            page: None,
            alias: None,
            table_failures: 0,
        };
        let Ok(index) = self.guest_index(vm) else {
            return outcome;
        };
        let call = match decode_guest_call(regs) {
            Ok(call) => call,
            Err(code) => {
                outcome.code = code;
                return outcome;
            }
        };
        outcome.call = Some(call);
        let (GuestCall::Share { ipa } | GuestCall::Unshare { ipa }) = call;
        let checked = match self.check_guest_page(index, ipa, call) {
            Ok(checked) => checked,
            Err((code, page)) => {
                outcome.code = code;
                outcome.page = page;
                return outcome;
            }
        };
        outcome.page = Some(checked.page);
        outcome.alias = checked.alias;
        // Checked: from here on nothing refuses.
        outcome.table_failures = match call {
            GuestCall::Share { .. } => self.commit_share(&checked),
            GuestCall::Unshare { .. } => self.commit_unshare(&checked, kernel),
        };
        outcome.code = code::SUCCESS;
        outcome
    }

    /// Every check of a share or unshare of the page at `ipa` of guest `index`, changing
    /// nothing: `Err` holds the code (and the page, once the IPA resolved).
    fn check_guest_page(
        &self,
        index: usize,
        ipa: u64,
        call: GuestCall,
    ) -> Result<Checked, (i64, Option<PhysAddr>)> {
        let guest_vm = &self.guests[index];
        // Guest VM ids are below MAX_VMS, so they fit a guest number.
        let guest = u8::try_from(guest_vm.vm).map_err(|_| (code::NOT_SUPPORTED, None))?;
        let page = match guest_vm.slots.translate(ipa) {
            Some((pa, SlotKind::Memory)) => PhysAddr(pa),
            Some((_, SlotKind::Device)) | None => return Err((code::INVALID_PARAMETER, None)),
        };
        let fail = |code| Err((code, Some(page)));
        let alias = guest_vm.slots.alias(guest_vm.slots.canonical(ipa));
        let stage2 = &guest_vm.stage2;
        let mut reservation = None;
        match call {
            GuestCall::Share { .. } => {
                if let Err(error) = self.ownership.check_guest_share_host(page, guest) {
                    return fail(error_code(error));
                }
                // The alias entry is empty, in a table its memslot prepared.
                if let Some(alias) = alias {
                    match stage2.reserve_alias_page(alias, page.0) {
                        Ok(reserved) => reservation = Some(reserved),
                        Err(_) => return fail(code::NOT_SUPPORTED),
                    }
                }
            }
            GuestCall::Unshare { .. } => {
                if let Err(error) = self.ownership.check_guest_unshare_host(page, guest) {
                    return fail(error_code(error));
                }
                // The alias maps this page, or nothing; anything else is not ours to clear.
                if let Some(alias) = alias {
                    match stage2.alias_at(alias) {
                        Ok(None) => {}
                        Ok(Some(pa)) if pa == page.0 => {}
                        _ => return fail(code::NOT_SUPPORTED),
                    }
                }
            }
        }
        Ok(Checked {
            index,
            guest,
            page,
            alias,
            reservation,
        })
    }

    /// MEM_SHARE's commits: ownership, the alias, the host's annotation. Returns the table
    /// changes that failed.
    fn commit_share(&mut self, checked: &Checked) -> u64 {
        let mut failures = 0;
        if self
            .ownership
            .guest_share_host(checked.page, checked.guest)
            .is_err()
        {
            // Checked above: unreachable, and nothing changed.
            return 1;
        }
        let guest_vm = &mut self.guests[checked.index];
        if let Some(reservation) = checked.reservation {
            failures += u64::from(guest_vm.stage2.commit_alias(reservation).is_err());
        }
        guest_vm.shared_pages += 1;
        self.shared_cursor = None;
        // The host's next access maps it (the fault path would also drop a stale annotation).
        failures += u64::from(self.stage2.clear_annotation(checked.page.0).is_err());
        failures
    }

    /// MEM_UNSHARE's commits: ownership, the alias and its invalidation, the host's mapping and
    /// its. Returns the table changes that failed.
    fn commit_unshare(&mut self, checked: &Checked, kernel: &mut impl Kernel) -> u64 {
        if self
            .ownership
            .guest_unshare_host(checked.page, checked.guest)
            .is_err()
        {
            // Checked above: unreachable, and nothing changed.
            return 1;
        }
        let guest_vm = &mut self.guests[checked.index];
        guest_vm.shared_pages = guest_vm.shared_pages.saturating_sub(1);
        self.shared_cursor = None;
        let mut failures = 0;
        if let Some(alias) = checked.alias {
            match guest_vm.stage2.unmap_alias(alias) {
                Ok(Some(_)) => {
                    let vm = guest_vm.vm;
                    kernel.invalidate_guest(vm, GuestInvalidation::Page(alias));
                }
                Ok(None) => {}
                Err(_) => failures += 1,
            }
        }
        let page = checked.page;
        failures + self.annotate_given_away(page..PhysAddr(page.0 + PAGE_SIZE), kernel)
    }

    /// Unshares every page guest `index` shares (a wipe's first step): each page's ownership,
    /// its alias and the host's mapping as MEM_UNSHARE does, then one invalidation of the
    /// guest's whole VMID if any alias was unmapped. Returns the pages unshared and the table
    /// changes that failed.
    pub(super) fn unshare_all(&mut self, index: usize, kernel: &mut impl Kernel) -> (u64, u64) {
        let Ok(guest) = u8::try_from(self.guests[index].vm) else {
            return (0, 0);
        };
        let slots = self.guests[index].slots.clone();
        let (mut unshared, mut failures, mut aliases) = (0, 0, 0);
        for slot in slots.memory() {
            for offset in (0..slot.size).step_by(PAGE_SIZE as usize) {
                let page = PhysAddr(slot.pa + offset);
                // Only shared pages change; the transition checks, then commits.
                if self.ownership.guest_unshare_host(page, guest).is_err() {
                    continue;
                }
                unshared += 1;
                if let Some(alias) = slots.alias(slot.ipa + offset) {
                    match self.guests[index].stage2.unmap_alias(alias) {
                        Ok(Some(_)) => aliases += 1,
                        Ok(None) => {}
                        Err(_) => failures += 1,
                    }
                }
                failures += self.annotate_given_away(page..PhysAddr(page.0 + PAGE_SIZE), kernel);
            }
        }
        if aliases > 0 {
            kernel.invalidate_guest(self.guests[index].vm, GuestInvalidation::All);
        }
        self.guests[index].shared_pages = 0;
        self.shared_cursor = None;
        (unshared, failures)
    }

    /// HOST_GUEST_SHARED: the `n`-th page (from 0, ascending PA) guest VM `vm` shares with the
    /// host, and how many it shares; `Err` holds the code. A scan of its memslots' ownership
    /// records, resumed where the previous answer left it when `n` did not go back.
    pub(super) fn guest_shared(&mut self, vm: u16, n: u64) -> Result<(PhysAddr, u64), i64> {
        let index = self.guest_index(vm).map_err(|_| code::INVALID_PARAMETER)?;
        let guest_vm = &self.guests[index];
        let count = guest_vm.shared_pages;
        if n >= count {
            return Err(code::INVALID_PARAMETER);
        }
        let guest = u8::try_from(vm).map_err(|_| code::INVALID_PARAMETER)?;
        let (from, mut skip) = match self.shared_cursor {
            Some((cursor_vm, cursor_n, pa)) if cursor_vm == vm && cursor_n <= n => {
                (pa, n - cursor_n)
            }
            _ => (0, n),
        };
        // Memslots never share a page (each was the host's alone when given), so PA order is
        // slot order, then page order.
        let mut slots: Vec<Slot, MAX_MEMSLOTS> = guest_vm
            .slots
            .memory()
            .iter()
            .filter(|slot| slot.pa + slot.size > from)
            .copied()
            .collect();
        slots.sort_unstable_by_key(|slot| slot.pa);
        for slot in &slots {
            let first = slot.pa.max(from);
            for pa in (first..slot.pa + slot.size).step_by(PAGE_SIZE as usize) {
                let state = self.ownership.state(PhysAddr(pa), Party::Guest(guest));
                if state != Ok(PageState::SharedOwned) {
                    continue;
                }
                if skip == 0 {
                    self.shared_cursor = Some((vm, n, pa));
                    return Ok((PhysAddr(pa), count));
                }
                skip -= 1;
            }
        }
        // The count says there is one: unreachable unless the count is wrong.
        Err(code::INVALID_PARAMETER)
    }
}

// MEM_SHARE and MEM_UNSHARE answer the host calls' codes, as the guest ABI defines them.
const _: () = assert!(
    kvm::code::INVALID_PARAMETER == code::INVALID_PARAMETER
        && kvm::code::NOT_OWNED == code::NOT_OWNED
        && kvm::code::ALREADY_SHARED == code::ALREADY_SHARED
        && kvm::code::NOT_SHARED == code::NOT_SHARED
);
