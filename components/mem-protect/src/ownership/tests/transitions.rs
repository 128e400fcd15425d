//! Each transition's good path and each of its refusals; a refusal must leave every byte of the
//! table as it was.

use super::*;

// reserve_for_hypervisor

#[test]
fn reserving_gives_pages_to_the_hypervisor_only() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.reserve_for_hypervisor(pages(2, 3)).unwrap();
    for index in 0..PAGES as u64 {
        let addr = page(index);
        if (2..5).contains(&index) {
            assert_eq!(
                holders(&table, addr),
                [(Party::Hypervisor, PageState::Owned)]
            );
            assert_eq!(table.state(addr, Party::Host), Ok(PageState::NoPage));
            assert_eq!(table.host_may_access(addr), Ok(false));
            assert_eq!(table.annotation(addr), Ok(1));
        } else {
            assert_eq!(holders(&table, addr), [(Party::Host, PageState::Owned)]);
        }
    }
}

#[test]
fn reserving_needs_every_page_host_owned_and_unshared() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.reserve_for_hypervisor(pages(0, 2)).unwrap();
    table.host_share_hyp(page(5)).unwrap();
    table.host_donate_guest(pages(8, 1), GUEST).unwrap();
    assert_refused(
        &mut table,
        |t| t.reserve_for_hypervisor(pages(1, 3)),
        OwnershipError::NotOwnedByHost {
            addr: page(1),
            owner: Party::Hypervisor,
        },
    );
    // Only the last page is wrong, and nothing before it moves.
    assert_refused(
        &mut table,
        |t| t.reserve_for_hypervisor(pages(3, 3)),
        OwnershipError::AlreadyShared {
            addr: page(5),
            borrower: Party::Hypervisor,
        },
    );
    assert_refused(
        &mut table,
        |t| t.reserve_for_hypervisor(pages(6, 4)),
        OwnershipError::NotOwnedByHost {
            addr: page(8),
            owner: Party::Guest(GUEST),
        },
    );
}

// host_share_hyp and host_unshare_hyp

#[test]
fn the_host_shares_a_page_with_the_hypervisor_and_takes_it_back() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_share_hyp(page(4)).unwrap();
    assert_eq!(table.owner(page(4)), Ok(Party::Host));
    assert_eq!(
        holders(&table, page(4)),
        [
            (Party::Host, PageState::SharedOwned),
            (Party::Hypervisor, PageState::SharedBorrowed)
        ]
    );
    assert_eq!(table.host_may_access(page(4)), Ok(true));
    assert_eq!(holders(&table, page(5)), [(Party::Host, PageState::Owned)]);

    table.host_unshare_hyp(page(4)).unwrap();
    assert!(
        table.records.iter().all(|&byte| byte == 0),
        "back to the start"
    );
}

#[test]
fn sharing_with_the_hypervisor_needs_a_host_page_not_yet_shared() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_share_hyp(page(0)).unwrap();
    table.reserve_for_hypervisor(pages(1, 1)).unwrap();
    table.host_donate_guest(pages(2, 2), GUEST).unwrap();
    table.guest_share_host(page(3), GUEST).unwrap();
    assert_refused(
        &mut table,
        |t| t.host_share_hyp(page(0)),
        OwnershipError::AlreadyShared {
            addr: page(0),
            borrower: Party::Hypervisor,
        },
    );
    assert_refused(
        &mut table,
        |t| t.host_share_hyp(page(1)),
        OwnershipError::NotOwnedByHost {
            addr: page(1),
            owner: Party::Hypervisor,
        },
    );
    for index in [2, 3] {
        assert_refused(
            &mut table,
            |t| t.host_share_hyp(page(index)),
            OwnershipError::NotOwnedByHost {
                addr: page(index),
                owner: Party::Guest(GUEST),
            },
        );
    }
}

#[test]
fn unsharing_from_the_hypervisor_needs_a_page_the_host_shared() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.reserve_for_hypervisor(pages(1, 1)).unwrap();
    table.host_donate_guest(pages(2, 1), GUEST).unwrap();
    table.guest_share_host(page(2), GUEST).unwrap();
    assert_refused(
        &mut table,
        |t| t.host_unshare_hyp(page(0)),
        OwnershipError::NotShared { addr: page(0) },
    );
    assert_refused(
        &mut table,
        |t| t.host_unshare_hyp(page(1)),
        OwnershipError::NotOwnedByHost {
            addr: page(1),
            owner: Party::Hypervisor,
        },
    );
    // The host borrows this one; only its owner can end the sharing.
    assert_refused(
        &mut table,
        |t| t.host_unshare_hyp(page(2)),
        OwnershipError::NotOwnedByHost {
            addr: page(2),
            owner: Party::Guest(GUEST),
        },
    );
}

// host_donate_guest

#[test]
fn donating_gives_a_range_to_the_guest_and_hides_it_from_the_host() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_donate_guest(pages(4, 4), OTHER_GUEST).unwrap();
    for index in 0..PAGES as u64 {
        let addr = page(index);
        if (4..8).contains(&index) {
            assert_eq!(
                holders(&table, addr),
                [(Party::Guest(OTHER_GUEST), PageState::Owned)]
            );
            assert_eq!(table.host_may_access(addr), Ok(false));
            let annotation = table.annotation(addr).unwrap();
            assert_eq!(Party::from_id(annotation), Some(Party::Guest(OTHER_GUEST)));
        } else {
            assert_eq!(holders(&table, addr), [(Party::Host, PageState::Owned)]);
        }
    }
}

#[test]
fn donating_needs_every_page_host_owned_and_unshared() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.reserve_for_hypervisor(pages(0, 1)).unwrap();
    table.host_share_hyp(page(3)).unwrap();
    table.host_donate_guest(pages(6, 1), OTHER_GUEST).unwrap();
    table.host_donate_guest(pages(9, 1), GUEST).unwrap();
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(pages(0, 2), GUEST),
        OwnershipError::NotOwnedByHost {
            addr: page(0),
            owner: Party::Hypervisor,
        },
    );
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(pages(1, 4), GUEST),
        OwnershipError::AlreadyShared {
            addr: page(3),
            borrower: Party::Hypervisor,
        },
    );
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(pages(4, 3), GUEST),
        OwnershipError::NotOwnedByHost {
            addr: page(6),
            owner: Party::Guest(OTHER_GUEST),
        },
    );
    // Donating twice to the same guest is refused too: the host no longer has the page.
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(pages(9, 1), GUEST),
        OwnershipError::NotOwnedByHost {
            addr: page(9),
            owner: Party::Guest(GUEST),
        },
    );
}

// host_reclaim

#[test]
fn reclaiming_returns_the_pages_to_the_host_and_lists_each_for_zeroing() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_donate_guest(pages(4, 6), GUEST).unwrap();

    let reclaim = table.host_reclaim(pages(5, 3), GUEST).unwrap();
    assert_eq!(reclaim.range(), pages(5, 3));
    assert_eq!(reclaim.page_count(), 3);
    assert_eq!(
        reclaim.pages().collect::<Vec<_>>(),
        [page(5), page(6), page(7)]
    );
    for index in 5..8 {
        assert_eq!(
            holders(&table, page(index)),
            [(Party::Host, PageState::Owned)]
        );
        assert_eq!(table.host_may_access(page(index)), Ok(true));
    }
    // The rest of the donation stays with the guest.
    for index in [4, 8, 9] {
        assert_eq!(table.owner(page(index)), Ok(Party::Guest(GUEST)));
    }

    let rest = [
        table.host_reclaim(pages(4, 1), GUEST).unwrap(),
        table.host_reclaim(pages(8, 2), GUEST).unwrap(),
    ];
    assert_eq!(
        rest.iter().flat_map(Reclaim::pages).collect::<Vec<_>>(),
        [page(4), page(8), page(9)]
    );
    assert!(
        table.records.iter().all(|&byte| byte == 0),
        "back to the start"
    );
}

#[test]
fn reclaiming_needs_every_page_owned_by_that_guest_and_unshared() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.reserve_for_hypervisor(pages(0, 1)).unwrap();
    table.host_donate_guest(pages(1, 4), GUEST).unwrap();
    table.host_donate_guest(pages(5, 1), OTHER_GUEST).unwrap();
    table.guest_share_host(page(3), GUEST).unwrap();
    assert_refused(
        &mut table,
        |t| t.host_reclaim(pages(0, 2), GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(0),
            guest: GUEST,
            owner: Party::Hypervisor,
        },
    );
    assert_refused(
        &mut table,
        |t| t.host_reclaim(pages(1, 3), GUEST),
        OwnershipError::AlreadyShared {
            addr: page(3),
            borrower: Party::Host,
        },
    );
    assert_refused(
        &mut table,
        |t| t.host_reclaim(pages(4, 2), GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(5),
            guest: GUEST,
            owner: Party::Guest(OTHER_GUEST),
        },
    );
    assert_refused(
        &mut table,
        |t| t.host_reclaim(pages(4, 3), OTHER_GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(4),
            guest: OTHER_GUEST,
            owner: Party::Guest(GUEST),
        },
    );
    // Pages the host already has cannot be reclaimed (and so are never reported twice).
    assert_refused(
        &mut table,
        |t| t.host_reclaim(pages(6, 1), GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(6),
            guest: GUEST,
            owner: Party::Host,
        },
    );
}

// guest_share_host and guest_unshare_host

#[test]
fn a_guest_shares_a_page_with_the_host_and_takes_it_back() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_donate_guest(pages(2, 2), GUEST).unwrap();
    table.guest_share_host(page(3), GUEST).unwrap();
    assert_eq!(table.owner(page(3)), Ok(Party::Guest(GUEST)));
    assert_eq!(
        holders(&table, page(3)),
        [
            (Party::Host, PageState::SharedBorrowed),
            (Party::Guest(GUEST), PageState::SharedOwned)
        ]
    );
    assert_eq!(table.host_may_access(page(3)), Ok(true));
    assert_eq!(table.host_may_access(page(2)), Ok(false));

    let shared = table.records.to_vec();
    table.guest_unshare_host(page(3), GUEST).unwrap();
    assert_ne!(table.records, &shared[..]);
    assert_eq!(
        holders(&table, page(3)),
        [(Party::Guest(GUEST), PageState::Owned)]
    );
    assert_eq!(table.host_may_access(page(3)), Ok(false));
}

#[test]
fn a_guest_shares_only_its_own_unshared_pages() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_donate_guest(pages(1, 2), GUEST).unwrap();
    table.guest_share_host(page(2), GUEST).unwrap();
    table.host_share_hyp(page(3)).unwrap();
    assert_refused(
        &mut table,
        |t| t.guest_share_host(page(2), GUEST),
        OwnershipError::AlreadyShared {
            addr: page(2),
            borrower: Party::Host,
        },
    );
    assert_refused(
        &mut table,
        |t| t.guest_share_host(page(1), OTHER_GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(1),
            guest: OTHER_GUEST,
            owner: Party::Guest(GUEST),
        },
    );
    for index in [0, 3] {
        assert_refused(
            &mut table,
            |t| t.guest_share_host(page(index), GUEST),
            OwnershipError::NotOwnedByGuest {
                addr: page(index),
                guest: GUEST,
                owner: Party::Host,
            },
        );
    }
}

#[test]
fn a_guest_unshares_only_its_own_shared_pages() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_donate_guest(pages(1, 2), GUEST).unwrap();
    table.guest_share_host(page(2), GUEST).unwrap();
    table.host_share_hyp(page(3)).unwrap();
    assert_refused(
        &mut table,
        |t| t.guest_unshare_host(page(1), GUEST),
        OwnershipError::NotShared { addr: page(1) },
    );
    assert_refused(
        &mut table,
        |t| t.guest_unshare_host(page(2), OTHER_GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(2),
            guest: OTHER_GUEST,
            owner: Party::Guest(GUEST),
        },
    );
    assert_refused(
        &mut table,
        |t| t.guest_unshare_host(page(3), GUEST),
        OwnershipError::NotOwnedByGuest {
            addr: page(3),
            guest: GUEST,
            owner: Party::Host,
        },
    );
}

#[test]
fn errors_read_as_sentences() {
    let error = OwnershipError::NotOwnedByGuest {
        addr: page(1),
        guest: GUEST,
        owner: Party::Host,
    };
    assert_eq!(
        format!("{error}"),
        "page 0x40001000 is owned by Host, not guest 0"
    );
}

// host_may_access_range

#[test]
fn a_range_is_host_accessible_only_when_every_page_is() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_share_hyp(page(1)).unwrap();
    table.host_donate_guest(pages(2, 2), GUEST).unwrap();
    table.guest_share_host(page(3), GUEST).unwrap();
    table.reserve_for_hypervisor(pages(5, 1)).unwrap();
    // Owned, shared with the hypervisor, or borrowed from a guest: all reachable.
    assert_eq!(table.host_may_access_range(pages(0, 2)), Ok(true));
    assert_eq!(table.host_may_access_range(pages(3, 2)), Ok(true));
    // One page given away is enough to refuse the block.
    assert_eq!(table.host_may_access_range(pages(0, 3)), Ok(false));
    assert_eq!(table.host_may_access_range(pages(4, 4)), Ok(false));
    assert_eq!(table.host_may_access_range(pages(6, 10)), Ok(true));
    assert_eq!(
        table.host_may_access_range(pages(15, 2)),
        Err(OwnershipError::NotMemory {
            addr: PhysAddr(RAM_END)
        })
    );
}
