//! Random sequences of guest shares and unshares (by either alias), host accesses, host
//! donations and reclaims (naming guest VMs, another guest number, guests' pages and the
//! host's), wipes and HOST_GUEST_SHARED queries, against a reference model that knows, per
//! page, who may reach it and at which aliases. After every step: the ownership table, the
//! host's stage 2 and each alias agree with the model; no party reaches a page its model
//! state says it may not; and every mapping a step removed had its TLB entries invalidated
//! during that step (what the fake kernel received).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::sharing::{SHARED, SLOT_A, SLOT_B, SLOT_C, share, unshare, with_sharing};
use super::*;
use crate::memslots::Slot;
use crate::ownership::PageState;

/// The guest pages the steps name, as `(vm, ipa, pa)`: a few of memslot A (both ends and the
/// middle of its level-3 table), all of B (guest 1) and C (guest 2, no shared bit).
fn guest_pages() -> Vec<(u16, u64, u64)> {
    let of = |vm, slot: Slot, pages: &[u64]| -> Vec<(u16, u64, u64)> {
        pages
            .iter()
            .map(|&n| (vm, slot.ipa + n * PAGE_SIZE, slot.pa + n * PAGE_SIZE))
            .collect()
    };
    [
        of(1, SLOT_A, &[0, 1, 2, 255, 510, 511]),
        of(1, SLOT_B, &[0, 1, 2, 3]),
        of(2, SLOT_C, &[0, 1, 2, 3]),
    ]
    .concat()
}

/// Host pages the steps donate and reclaim (to guest number 5, which is no VM).
const HOST_PAGES: [u64; 4] = [0x4300_0000, 0x4300_1000, 0x4300_2000, 0x4320_0000];
/// A guest number the host may use: not a guest VM of the configuration.
const OTHER_GUEST: u8 = 5;

#[derive(Clone, Debug)]
enum Op {
    Share {
        page: usize,
        via_alias: bool,
    },
    Unshare {
        page: usize,
        via_alias: bool,
    },
    HostAccess {
        page: usize,
        write: bool,
    },
    Donate {
        page: usize,
        guest: u8,
    },
    Reclaim {
        page: usize,
        guest: u8,
    },
    Wipe {
        vm: u16,
    },
    Query {
        vm: u16,
        n: u64,
    },
    /// Every n in order, past the last, then each again backwards: as a host lists them.
    List {
        vm: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let guest_page = 0..guest_pages().len();
    let any_page = 0..guest_pages().len() + HOST_PAGES.len();
    let guest = prop::sample::select(vec![1u8, 2, OTHER_GUEST]);
    prop_oneof![
        8 => (guest_page.clone(), any::<bool>())
            .prop_map(|(page, via_alias)| Op::Share { page, via_alias }),
        6 => (guest_page, any::<bool>())
            .prop_map(|(page, via_alias)| Op::Unshare { page, via_alias }),
        6 => (any_page.clone(), any::<bool>()).prop_map(|(page, write)| Op::HostAccess { page, write }),
        2 => (any_page.clone(), guest.clone()).prop_map(|(page, guest)| Op::Donate { page, guest }),
        2 => (any_page, guest).prop_map(|(page, guest)| Op::Reclaim { page, guest }),
        1 => (1u16..=2).prop_map(|vm| Op::Wipe { vm }),
        2 => ((1u16..=2), 0u64..8).prop_map(|(vm, n)| Op::Query { vm, n }),
        2 => (1u16..=2).prop_map(|vm| Op::List { vm }),
    ]
}

/// Each page as the model sees it.
#[derive(Default)]
struct Model {
    /// Guest pages shared, by PA.
    shared: BTreeSet<u64>,
    /// Host pages given to [`OTHER_GUEST`].
    given: BTreeSet<u64>,
}

impl Model {
    /// Whether the host may reach the page at `pa` (a guest page or a host page).
    fn host_may(&self, pa: u64) -> bool {
        if HOST_PAGES.contains(&pa) {
            !self.given.contains(&pa)
        } else {
            self.shared.contains(&pa)
        }
    }

    /// The PAs guest `vm` shares, ascending.
    fn shared_by(&self, vm: u16) -> Vec<u64> {
        let mut pages: Vec<u64> = guest_pages()
            .into_iter()
            .filter(|&(owner, _, pa)| owner == vm && self.shared.contains(&pa))
            .map(|(_, _, pa)| pa)
            .collect();
        pages.sort();
        pages
    }
}

/// Every page of every memslot, as `(vm, ipa, pa)`.
fn every_slot_page() -> impl Iterator<Item = (u16, u64, u64)> {
    [(1, SLOT_A), (1, SLOT_B), (2, SLOT_C)]
        .into_iter()
        .flat_map(|(vm, slot)| {
            (0..slot.size)
                .step_by(PAGE_SIZE as usize)
                .map(move |offset| (vm, slot.ipa + offset, slot.pa + offset))
        })
}

fn host_maps(service: &MemProtect<'_>, pa: u64) -> bool {
    matches!(service.stage2().lookup(pa), Ok(Entry::Mapped { .. }))
}

/// Guest 1's aliases mapped now.
fn mapped_aliases(service: &MemProtect<'_>) -> BTreeSet<u64> {
    let stage2 = service.guest(1).unwrap().stage2();
    every_slot_page()
        .filter(|&(vm, ipa, _)| {
            vm == 1 && matches!(stage2.lookup(ipa | SHARED), Ok(Entry::Mapped { .. }))
        })
        .map(|(_, ipa, _)| ipa | SHARED)
        .collect()
}

/// The pages (guest and host) the host maps now.
fn host_mapped(service: &MemProtect<'_>) -> BTreeSet<u64> {
    every_slot_page()
        .map(|(_, _, pa)| pa)
        .chain(HOST_PAGES)
        .filter(|&pa| host_maps(service, pa))
        .collect()
}

/// Checks the tables and the ownership table against the model.
fn check(service: &MemProtect<'_>, model: &Model) {
    let ownership = service.ownership();
    for (vm, ipa, pa) in every_slot_page() {
        let shared = model.shared.contains(&pa);
        let (guest, host) = if shared {
            (PageState::SharedOwned, PageState::SharedBorrowed)
        } else {
            (PageState::Owned, PageState::NoPage)
        };
        let page = PhysAddr(pa);
        assert_eq!(
            ownership.state(page, Party::Guest(vm as u8)),
            Ok(guest),
            "{pa:#x}"
        );
        assert_eq!(ownership.state(page, Party::Host), Ok(host), "{pa:#x}");
        // The host reaches it only while it is shared.
        assert!(
            shared || !host_maps(service, pa),
            "host maps private {pa:#x}"
        );
        let stage2 = service.guest(vm).unwrap().stage2();
        match stage2.lookup(ipa).unwrap() {
            Entry::Mapped {
                pa: mapped, attrs, ..
            } => {
                assert_eq!((mapped, attrs), (pa, crate::stage2::Attributes::MEMORY));
            }
            other => panic!("{ipa:#x}: {other:?}"),
        }
        // Its alias exactly while it is shared (guest 1), never (guest 2).
        let alias = stage2.lookup(ipa | SHARED).unwrap();
        if vm == 1 && shared {
            assert!(
                matches!(alias, Entry::Mapped { pa: mapped, level: 3, attrs }
                    if mapped == pa && attrs == crate::stage2::Attributes::SHARED),
                "{ipa:#x}: {alias:?}"
            );
        } else {
            assert_eq!(alias, Entry::Unmapped, "{ipa:#x}");
        }
    }
    for pa in HOST_PAGES {
        let owner = if model.given.contains(&pa) {
            Party::Guest(OTHER_GUEST)
        } else {
            Party::Host
        };
        assert_eq!(ownership.owner(PhysAddr(pa)), Ok(owner));
        assert!(model.host_may(pa) || !host_maps(service, pa), "{pa:#x}");
    }
    for vm in [1, 2] {
        let guest = service.guest(vm).unwrap();
        assert_eq!(guest.shared_pages(), model.shared_by(vm).len() as u64);
    }
    assert_eq!(
        service.guest(1).unwrap().stage2().aliases(),
        model.shared_by(1).len() as u64
    );
    assert_eq!(service.guest(2).unwrap().stage2().aliases(), 0);
}

/// Runs `op` and checks its answer against the model, which it then updates.
fn step(service: &mut MemProtect<'_>, kernel: &mut FakeKernel, model: &mut Model, op: &Op) {
    let pages = guest_pages();
    let pa_of = |page: usize| {
        pages
            .get(page)
            .map(|&(_, _, pa)| pa)
            .unwrap_or_else(|| HOST_PAGES[page - pages.len()])
    };
    match *op {
        Op::Share { page, via_alias } | Op::Unshare { page, via_alias } => {
            let (vm, ipa, pa) = pages[page];
            let ipa = if via_alias { ipa | SHARED } else { ipa };
            let sharing = matches!(op, Op::Share { .. });
            let regs = if sharing { share(ipa) } else { unshare(ipa) };
            let shared = model.shared.contains(&pa);
            let expected = match (vm == 2 && via_alias, sharing, shared) {
                (true, _, _) => code::INVALID_PARAMETER,
                (false, true, true) => code::ALREADY_SHARED,
                (false, false, false) => code::NOT_SHARED,
                (false, _, _) => code::SUCCESS,
            };
            let outcome = service.guest_call(vm, &regs, kernel);
            assert_eq!(outcome.code, expected, "{op:?}");
            assert_eq!(outcome.table_failures, 0);
            if expected == code::SUCCESS {
                if sharing {
                    model.shared.insert(pa);
                } else {
                    model.shared.remove(&pa);
                }
            }
        }
        Op::HostAccess { page, write } => {
            let pa = pa_of(page);
            let access = if write { Access::Write } else { Access::Read };
            let outcome = service.stage2_fault(Ipa(pa + 0x18), access, kernel);
            if model.host_may(pa) {
                assert!(
                    matches!(outcome, FaultOutcome::Mapped(_)),
                    "{op:?}: {outcome:?}"
                );
            } else {
                assert!(
                    matches!(outcome, FaultOutcome::Refused { page, .. } if page == pa),
                    "{op:?}: {outcome:?}"
                );
            }
        }
        Op::Donate { page, guest } | Op::Reclaim { page, guest } => {
            let pa = pa_of(page);
            let donate = matches!(op, Op::Donate { .. });
            let function = if donate {
                function::HOST_DONATE_GUEST
            } else {
                function::HOST_RECLAIM
            };
            let host_page = HOST_PAGES.contains(&pa);
            let given = model.given.contains(&pa);
            let expected = if guest != OTHER_GUEST {
                // A guest VM: its memory is the VM manager's to give.
                code::INVALID_PARAMETER
            } else if host_page && donate != given {
                code::SUCCESS
            } else {
                code::NOT_OWNED
            };
            let zeroed = kernel.zeroed.len();
            let outcome = service.host_call(&call(function, pa, 1, u64::from(guest)), kernel);
            assert_eq!(outcome.code, expected, "{op:?}");
            if expected == code::SUCCESS {
                if donate {
                    model.given.insert(pa);
                } else {
                    model.given.remove(&pa);
                    assert_eq!(kernel.zeroed[zeroed..], [(pa, PAGE_SIZE)]);
                }
            } else {
                assert_eq!(kernel.zeroed.len(), zeroed);
            }
        }
        Op::Wipe { vm } => {
            let before = model.shared_by(vm).len() as u64;
            let wiped = service.wipe_vm(vm, kernel).unwrap();
            assert_eq!((wiped.unshared, wiped.table_failures), (before, 0));
            for pa in model.shared_by(vm) {
                model.shared.remove(&pa);
            }
            // The zeroing comes after every invalidation.
            let last_tlb = kernel.sequence.iter().rposition(|&what| what != "zero");
            let first_zero = kernel.sequence.iter().position(|&what| what == "zero");
            assert!(last_tlb.is_none_or(|last| first_zero.is_some_and(|first| last < first)));
        }
        Op::Query { vm, n } => query(service, kernel, model, vm, n),
        Op::List { vm } => {
            let count = model.shared_by(vm).len() as u64;
            for n in (0..=count).chain((0..count).rev()) {
                query(service, kernel, model, vm, n);
            }
        }
    }
}

/// HOST_GUEST_SHARED(vm, n) answers the model's n-th shared page of `vm`.
fn query(service: &mut MemProtect<'_>, kernel: &mut FakeKernel, model: &Model, vm: u16, n: u64) {
    let outcome = service.host_call(
        &call(function::HOST_GUEST_SHARED, u64::from(vm), n, 0),
        kernel,
    );
    let shared = model.shared_by(vm);
    match shared.get(n as usize) {
        Some(&pa) => assert_eq!(
            (outcome.code, outcome.results),
            (code::SUCCESS, [pa, shared.len() as u64, 0]),
            "vm {vm} n {n}"
        ),
        None => assert_eq!(outcome.code, code::INVALID_PARAMETER, "vm {vm} n {n}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sharing_matches_the_model_and_every_removal_is_invalidated(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        with_sharing(|service, kernel| {
            let mut model = Model::default();
            check(service, &model);
            for op in &ops {
                let (aliases, host) = (mapped_aliases(service), host_mapped(service));
                *kernel = FakeKernel::default();
                step(service, kernel, &mut model, op);
                check(service, &model);
                // What a step unmapped may be cached in a TLB: it must have been invalidated
                // during the step, and guest 1 is the only VM with aliases.
                let now = mapped_aliases(service);
                for alias in aliases.difference(&now) {
                    assert!(
                        kernel.guest_invalidations.iter().any(|&(vm, what)| vm == 1
                            && matches!(what, GuestInvalidation::All)
                                | (what == GuestInvalidation::Page(*alias))),
                        "{op:?}: alias {alias:#x} unmapped, not invalidated: {:?}",
                        kernel.guest_invalidations
                    );
                }
                assert!(kernel.guest_invalidations.iter().all(|&(vm, _)| vm == 1));
                let now = host_mapped(service);
                for &pa in host.difference(&now) {
                    assert!(
                        kernel.invalidations.iter().any(|what| match what {
                            Invalidation::All => true,
                            Invalidation::Range(range) => range.contains(pa),
                        }),
                        "{op:?}: host page {pa:#x} unmapped, not invalidated"
                    );
                }
            }
        });
    }
}
