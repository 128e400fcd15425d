//! Random sequences of transitions (random pages, parties and ranges, good and bad) against a
//! model that keeps each page's owner and borrower in a map, with the invariants checked after
//! every step.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Pages of RAM in the random runs, few enough that calls often meet.
const MODEL_PAGES: u64 = 24;
/// Guests the random runs use (and one past the limit now and then).
const MODEL_GUESTS: u8 = 3;

#[derive(Clone, Debug)]
enum Op {
    Reserve(Range<PhysAddr>),
    ShareHyp(PhysAddr),
    UnshareHyp(PhysAddr),
    Donate(Range<PhysAddr>, u8),
    Reclaim(Range<PhysAddr>, u8),
    GuestShare(PhysAddr, u8),
    GuestUnshare(PhysAddr, u8),
}

/// One page as the model sees it: an owner and maybe a borrower, nothing encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModelPage {
    owner: Party,
    borrower: Option<Party>,
}

const HOST_PAGE: ModelPage = ModelPage {
    owner: Party::Host,
    borrower: None,
};

/// Pages by address, and how many times each page was reported for zeroing since it was last
/// given to a guest.
struct Model {
    pages: BTreeMap<u64, ModelPage>,
    reported: BTreeMap<u64, u32>,
}

/// What the model expects from a transition: the pages it changes, and what they become.
type Expected = Result<(Vec<u64>, ModelPage), OwnershipError>;

impl Model {
    fn new() -> Self {
        let pages = (0..MODEL_PAGES)
            .map(|index| (page(index).0, HOST_PAGE))
            .collect();
        Model {
            pages,
            reported: BTreeMap::new(),
        }
    }

    fn guest(guest: u8) -> Result<(), OwnershipError> {
        if guest < MAX_GUESTS {
            Ok(())
        } else {
            Err(OwnershipError::NoSuchGuest { guest })
        }
    }

    fn in_ram(&self, addr: PhysAddr) -> Result<(), OwnershipError> {
        if self.pages.contains_key(&addr.0) {
            Ok(())
        } else {
            Err(OwnershipError::NotMemory { addr })
        }
    }

    fn one_page(&self, addr: PhysAddr) -> Result<Vec<u64>, OwnershipError> {
        if !addr.is_page_aligned() {
            return Err(OwnershipError::Misaligned { addr });
        }
        self.in_ram(addr)?;
        Ok(vec![addr.0])
    }

    fn range(&self, range: &Range<PhysAddr>) -> Result<Vec<u64>, OwnershipError> {
        for addr in [range.start, range.end] {
            if !addr.is_page_aligned() {
                return Err(OwnershipError::Misaligned { addr });
            }
        }
        if range.end <= range.start {
            return Err(OwnershipError::EmptyRange {
                start: range.start,
                end: range.end,
            });
        }
        let addrs: Vec<u64> = (range.start.0..range.end.0)
            .step_by(PAGE_SIZE as usize)
            .collect();
        for &addr in &addrs {
            self.in_ram(PhysAddr(addr))?;
        }
        Ok(addrs)
    }

    /// Checks every page with `expect`, in address order.
    fn check(
        &self,
        addrs: Vec<u64>,
        expect: impl Fn(PhysAddr, ModelPage) -> Result<(), OwnershipError>,
    ) -> Result<Vec<u64>, OwnershipError> {
        for &addr in &addrs {
            expect(PhysAddr(addr), self.pages[&addr])?;
        }
        Ok(addrs)
    }

    fn host_exclusive(addr: PhysAddr, page: ModelPage) -> Result<(), OwnershipError> {
        match page {
            HOST_PAGE => Ok(()),
            ModelPage {
                owner: Party::Host,
                borrower: Some(borrower),
            } => Err(OwnershipError::AlreadyShared { addr, borrower }),
            ModelPage { owner, .. } => Err(OwnershipError::NotOwnedByHost { addr, owner }),
        }
    }

    fn guest_page(
        guest: u8,
        shared: bool,
    ) -> impl Fn(PhysAddr, ModelPage) -> Result<(), OwnershipError> {
        move |addr, page| {
            if page.owner != Party::Guest(guest) {
                return Err(OwnershipError::NotOwnedByGuest {
                    addr,
                    guest,
                    owner: page.owner,
                });
            }
            match (page.borrower, shared) {
                (Some(_), true) | (None, false) => Ok(()),
                (Some(borrower), false) => Err(OwnershipError::AlreadyShared { addr, borrower }),
                (None, true) => Err(OwnershipError::NotShared { addr }),
            }
        }
    }

    /// `op` pointed at what the model holds, so that calls needing pages in a state that earlier
    /// calls must have made are often right. The page (or a range's start) moves to the next
    /// page, wrapping round RAM, in the state the call needs; a guest argument becomes that
    /// page's owner; a range keeps its length at most and stops where the pages stop being in
    /// the state of its first page. Anything the model does not know (misaligned, outside RAM,
    /// no such page) stays as it is.
    fn aim(&self, op: &Op) -> Op {
        let host_exclusive = |page: ModelPage| page == HOST_PAGE;
        let host_shared = |page: ModelPage| page.owner == Party::Host && page.borrower.is_some();
        let guest_page = |shared: bool| {
            move |page: ModelPage| {
                matches!(page.owner, Party::Guest(_)) && page.borrower.is_some() == shared
            }
        };
        match *op {
            Op::Reserve(ref range) => {
                let (range, _) = self.aim_range(range, host_exclusive);
                Op::Reserve(range)
            }
            Op::ShareHyp(addr) => Op::ShareHyp(self.aim_page(addr, host_exclusive).0),
            Op::UnshareHyp(addr) => Op::UnshareHyp(self.aim_page(addr, host_shared).0),
            Op::Donate(ref range, guest) => {
                let (range, _) = self.aim_range(range, host_exclusive);
                Op::Donate(range, guest)
            }
            Op::Reclaim(ref range, guest) => {
                let (range, owner) = self.aim_range(range, guest_page(false));
                Op::Reclaim(range, owner.unwrap_or(guest))
            }
            Op::GuestShare(addr, guest) => {
                let (addr, owner) = self.aim_page(addr, guest_page(false));
                Op::GuestShare(addr, owner.unwrap_or(guest))
            }
            Op::GuestUnshare(addr, guest) => {
                let (addr, owner) = self.aim_page(addr, guest_page(true));
                Op::GuestUnshare(addr, owner.unwrap_or(guest))
            }
        }
    }

    /// The first page from `from` on, wrapping round, that is `wanted`, and its guest owner.
    fn aim_page(
        &self,
        from: PhysAddr,
        wanted: impl Fn(ModelPage) -> bool,
    ) -> (PhysAddr, Option<u8>) {
        if !self.pages.contains_key(&from.0) {
            return (from, None);
        }
        let found = self
            .pages
            .range(from.0..)
            .chain(self.pages.range(..from.0))
            .find(|&(_, &page)| wanted(page));
        match found {
            Some((&addr, page)) => {
                let guest = match page.owner {
                    Party::Guest(guest) => Some(guest),
                    Party::Host | Party::Hypervisor => None,
                };
                (PhysAddr(addr), guest)
            }
            None => (from, None),
        }
    }

    /// [`Model::aim_page`] for a range's start, and the range cut to the run of pages like it.
    fn aim_range(
        &self,
        range: &Range<PhysAddr>,
        wanted: impl Fn(ModelPage) -> bool,
    ) -> (Range<PhysAddr>, Option<u8>) {
        if range.end <= range.start || !range.end.is_page_aligned() {
            return (range.clone(), None);
        }
        let (start, guest) = self.aim_page(range.start, wanted);
        let Some(&first) = self.pages.get(&start.0) else {
            return (range.clone(), None);
        };
        let length = range.end.0 - range.start.0;
        let mut end = start.0 + PAGE_SIZE;
        while end < start.0 + length && self.pages.get(&end) == Some(&first) {
            end += PAGE_SIZE;
        }
        (start..PhysAddr(end), guest)
    }

    /// What `op` should do: the pages it changes and what they become.
    fn expect(&self, op: &Op) -> Expected {
        let guest_owned = |guest, borrower| ModelPage {
            owner: Party::Guest(guest),
            borrower,
        };
        match *op {
            Op::Reserve(ref range) => {
                let addrs = self.check(self.range(range)?, Self::host_exclusive)?;
                let hyp = ModelPage {
                    owner: Party::Hypervisor,
                    borrower: None,
                };
                Ok((addrs, hyp))
            }
            Op::ShareHyp(addr) => {
                let addrs = self.check(self.one_page(addr)?, Self::host_exclusive)?;
                let shared = ModelPage {
                    owner: Party::Host,
                    borrower: Some(Party::Hypervisor),
                };
                Ok((addrs, shared))
            }
            Op::UnshareHyp(addr) => {
                let addrs = self.check(self.one_page(addr)?, |addr, page| match page {
                    ModelPage {
                        owner: Party::Host,
                        borrower: Some(Party::Hypervisor),
                    } => Ok(()),
                    HOST_PAGE => Err(OwnershipError::NotShared { addr }),
                    ModelPage { owner, .. } => Err(OwnershipError::NotOwnedByHost { addr, owner }),
                })?;
                Ok((addrs, HOST_PAGE))
            }
            Op::Donate(ref range, guest) => {
                Self::guest(guest)?;
                let addrs = self.check(self.range(range)?, Self::host_exclusive)?;
                Ok((addrs, guest_owned(guest, None)))
            }
            Op::Reclaim(ref range, guest) => {
                Self::guest(guest)?;
                let addrs = self.check(self.range(range)?, Self::guest_page(guest, false))?;
                Ok((addrs, HOST_PAGE))
            }
            Op::GuestShare(addr, guest) => {
                Self::guest(guest)?;
                let addrs = self.check(self.one_page(addr)?, Self::guest_page(guest, false))?;
                Ok((addrs, guest_owned(guest, Some(Party::Host))))
            }
            Op::GuestUnshare(addr, guest) => {
                Self::guest(guest)?;
                let addrs = self.check(self.one_page(addr)?, Self::guest_page(guest, true))?;
                Ok((addrs, guest_owned(guest, None)))
            }
        }
    }
}

/// Runs `op` on the table; a reclaim answers with the pages it reports for zeroing.
fn run(table: &mut OwnershipTable<'_>, op: &Op) -> Result<Option<Vec<u64>>, OwnershipError> {
    match *op {
        Op::Reserve(ref range) => table.reserve_for_hypervisor(range.clone()).map(|()| None),
        Op::ShareHyp(addr) => table.host_share_hyp(addr).map(|()| None),
        Op::UnshareHyp(addr) => table.host_unshare_hyp(addr).map(|()| None),
        Op::Donate(ref range, guest) => {
            table.host_donate_guest(range.clone(), guest).map(|()| None)
        }
        Op::Reclaim(ref range, guest) => table
            .host_reclaim(range.clone(), guest)
            .map(|reclaim| Some(reclaim.pages().map(|addr| addr.0).collect())),
        Op::GuestShare(addr, guest) => table.guest_share_host(addr, guest).map(|()| None),
        Op::GuestUnshare(addr, guest) => table.guest_unshare_host(addr, guest).map(|()| None),
    }
}

/// Mostly aligned pages in RAM, sometimes just outside it or misaligned.
fn addr() -> impl Strategy<Value = PhysAddr> {
    let index = -2..MODEL_PAGES as i64 + 2;
    let offset = prop_oneof![9 => Just(0u64), 1 => 1..PAGE_SIZE];
    (index, offset).prop_map(|(index, offset)| {
        PhysAddr(RAM_START.wrapping_add_signed(index * PAGE_SIZE as i64) + offset)
    })
}

/// Ranges of up to 8 pages, sometimes empty, reversed, misaligned or leaving RAM.
fn range() -> impl Strategy<Value = Range<PhysAddr>> {
    let length = prop_oneof![10 => 1..=8i64, 1 => -1..=0i64];
    let end_offset = prop_oneof![9 => Just(0u64), 1 => 1..PAGE_SIZE];
    (addr(), length, end_offset).prop_map(|(start, length, end_offset)| {
        let end = start
            .0
            .wrapping_add_signed(length * PAGE_SIZE as i64)
            .wrapping_add(end_offset);
        start..PhysAddr(end)
    })
}

fn guest() -> impl Strategy<Value = u8> {
    prop_oneof![20 => 0..MODEL_GUESTS, 1 => Just(MAX_GUESTS), 1 => Just(u8::MAX)]
}

/// Reservations are rare: they are for boot, and each one takes pages from the host for good.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => range().prop_map(Op::Reserve),
        12 => addr().prop_map(Op::ShareHyp),
        9 => addr().prop_map(Op::UnshareHyp),
        12 => (range(), guest()).prop_map(|(range, guest)| Op::Donate(range, guest)),
        12 => (range(), guest()).prop_map(|(range, guest)| Op::Reclaim(range, guest)),
        12 => (addr(), guest()).prop_map(|(addr, guest)| Op::GuestShare(addr, guest)),
        9 => (addr(), guest()).prop_map(|(addr, guest)| Op::GuestUnshare(addr, guest)),
    ]
}

/// The invariants of one page, through the public queries only, and agreement with the model.
fn check_page(
    table: &OwnershipTable<'_>,
    addr: u64,
    expected: ModelPage,
) -> Result<(), TestCaseError> {
    let addr = PhysAddr(addr);
    let held = holders(table, addr);
    let owners: Vec<Party> = held
        .iter()
        .filter(|(_, state)| matches!(state, PageState::Owned | PageState::SharedOwned))
        .map(|&(party, _)| party)
        .collect();
    let borrowers: Vec<Party> = held
        .iter()
        .filter(|(_, state)| *state == PageState::SharedBorrowed)
        .map(|&(party, _)| party)
        .collect();
    // Exactly one owner; a borrower exactly when the owner shares.
    prop_assert_eq!(owners.len(), 1, "{} {:?}", addr, held);
    let owner = owners[0];
    let owner_shares = table.state(addr, owner) == Ok(PageState::SharedOwned);
    prop_assert_eq!(
        borrowers.len(),
        usize::from(owner_shares),
        "{} {:?}",
        addr,
        held
    );
    prop_assert_eq!(table.owner(addr), Ok(owner));
    // The table agrees with the model.
    prop_assert_eq!(owner, expected.owner, "{}", addr);
    prop_assert_eq!(borrowers.first().copied(), expected.borrower, "{}", addr);
    // The host reaches exactly the pages its state says it has.
    let host = table.state(addr, Party::Host).unwrap();
    prop_assert_eq!(table.host_may_access(addr), Ok(host.is_accessible()));
    // The annotation names the owner.
    let annotation = table.annotation(addr).unwrap();
    prop_assert_eq!(Party::from_id(annotation), Some(owner));
    // Any address in the page gives the same answers.
    let inside = PhysAddr(addr.0 + PAGE_SIZE - 1);
    prop_assert_eq!(table.owner(inside), Ok(owner));
    prop_assert_eq!(table.state(inside, Party::Host), Ok(host));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_transitions_match_the_model(
        steps in proptest::collection::vec((op(), any::<bool>()), 1..120),
    ) {
        let mut storage = [0xff; MODEL_PAGES as usize];
        let mut table = table(&mut storage);
        let mut model = Model::new();
        for (op, aimed) in &steps {
            // Half the calls are aimed, or most transitions that need earlier ones would fail.
            let op = &if *aimed { model.aim(op) } else { op.clone() };
            let before = table.records.to_vec();
            let expected = model.expect(op);
            // The read-only checks MEM_SHARE / MEM_UNSHARE make first answer as the call will.
            let check = match *op {
                Op::GuestShare(addr, guest) => Some(table.check_guest_share_host(addr, guest)),
                Op::GuestUnshare(addr, guest) => Some(table.check_guest_unshare_host(addr, guest)),
                _ => None,
            };
            if let Some(check) = check {
                prop_assert_eq!(check, expected.clone().map(|_| ()), "check of {:x?}", op);
            }
            let answer = run(&mut table, op);
            match (expected, answer) {
                (Err(expected), Err(error)) => {
                    prop_assert_eq!(error, expected, "{:x?}", op);
                    prop_assert_eq!(&table.records[..], &before[..], "refused yet changed: {:x?}", op);
                }
                (Ok((addrs, page)), Ok(reported)) => {
                    for &addr in &addrs {
                        if let Party::Guest(_) = page.owner
                            && page.borrower.is_none()
                            && model.pages[&addr].owner == Party::Host
                        {
                            // A fresh donation: the page may be reported once more.
                            model.reported.insert(addr, 0);
                        }
                        model.pages.insert(addr, page);
                    }
                    if let Op::Reclaim(..) = op {
                        // Exactly the reclaimed pages, each once since it was donated.
                        prop_assert_eq!(reported.as_ref(), Some(&addrs), "{:x?}", op);
                        for addr in addrs {
                            let count = model.reported.entry(addr).or_default();
                            *count += 1;
                            prop_assert_eq!(*count, 1, "{:#x} reported twice", addr);
                        }
                    } else {
                        prop_assert_eq!(reported, None);
                    }
                }
                (expected, answer) => {
                    prop_assert!(false, "{:x?}: expected {:?}, got {:?}", op, expected, answer);
                }
            }
            for (&addr, &page) in &model.pages {
                check_page(&table, addr, page)?;
            }
            // Blocks of four pages, as the fault path would ask before mapping one.
            for first in (0..MODEL_PAGES).step_by(4) {
                let block = pages(first, 4);
                let expected = (first..first + 4).all(|index| {
                    let page = model.pages[&page(index).0];
                    page.owner == Party::Host || page.borrower == Some(Party::Host)
                });
                prop_assert_eq!(table.host_may_access_range(block), Ok(expected));
            }
        }
    }
}
