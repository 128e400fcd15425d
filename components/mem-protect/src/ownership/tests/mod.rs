//! Tests of the ownership table: construction, the encoding and the arguments every call
//! refuses here; each transition's good path and refusals in [`transitions`] (a refusal must
//! leave the whole table as it was); random sequences of calls against a simple model in
//! [`model`].

mod model;
mod transitions;

use super::*;

/// RAM from 1 GiB, as on QEMU virt.
const RAM_START: u64 = 0x4000_0000;
/// Pages in the tables of the unit tests.
const PAGES: usize = 16;
/// The end of their RAM.
const RAM_END: u64 = RAM_START + PAGES as u64 * PAGE_SIZE;
/// A device page below RAM (QEMU virt's PL011).
const UART: PhysAddr = PhysAddr(0x0900_0000);
/// Guests of the unit tests.
const GUEST: u8 = 0;
const OTHER_GUEST: u8 = 1;

fn table(storage: &mut [u8]) -> OwnershipTable<'_> {
    OwnershipTable::new(PhysAddr(RAM_START), storage).expect("a valid table")
}

fn page(index: u64) -> PhysAddr {
    PhysAddr(RAM_START + index * PAGE_SIZE)
}

fn pages(first: u64, count: u64) -> Range<PhysAddr> {
    page(first)..page(first + count)
}

/// Every party that can hold a page.
fn all_parties() -> impl Iterator<Item = Party> {
    [Party::Host, Party::Hypervisor]
        .into_iter()
        .chain((0..MAX_GUESTS).map(Party::Guest))
}

/// Each party's state of the page holding `addr`, for those that have more than `NoPage`.
fn holders(table: &OwnershipTable<'_>, addr: PhysAddr) -> Vec<(Party, PageState)> {
    all_parties()
        .map(|party| (party, table.state(addr, party).expect("a page of RAM")))
        .filter(|(_, state)| state.is_accessible())
        .collect()
}

/// Calls `call`, expects it refused with `expected`, and checks that no byte of the table moved.
fn assert_refused<T: fmt::Debug>(
    table: &mut OwnershipTable<'_>,
    call: impl FnOnce(&mut OwnershipTable<'_>) -> Result<T, OwnershipError>,
    expected: OwnershipError,
) {
    let before = table.records.to_vec();
    let answer = call(table);
    assert_eq!(answer.unwrap_err(), expected);
    assert_eq!(
        table.records,
        &before[..],
        "a refused call changed the table"
    );
}

// Construction and the encoding.

#[test]
fn a_new_table_gives_every_page_to_the_host_whatever_the_storage_held() {
    let mut storage = [0xa5; PAGES];
    let table = table(&mut storage);
    assert_eq!(table.ram(), PhysAddr(RAM_START)..PhysAddr(RAM_END));
    for index in 0..PAGES as u64 {
        let addr = page(index);
        assert_eq!(table.owner(addr), Ok(Party::Host));
        assert_eq!(holders(&table, addr), [(Party::Host, PageState::Owned)]);
        assert_eq!(table.host_may_access(addr), Ok(true));
        assert_eq!(table.annotation(addr), Ok(0));
    }
    // A zeroed table means the same, like pKVM's zeroed vmemmap.
    assert!(storage.iter().all(|&byte| byte == 0));
}

#[test]
fn new_refuses_a_misaligned_start_and_ram_past_the_address_space() {
    let mut storage = [0; PAGES];
    assert_eq!(
        OwnershipTable::new(PhysAddr(RAM_START + 8), &mut storage).unwrap_err(),
        OwnershipError::Misaligned {
            addr: PhysAddr(RAM_START + 8)
        }
    );
    let last_fit = PHYS_ADDR_LIMIT - PAGES as u64 * PAGE_SIZE;
    assert!(OwnershipTable::new(PhysAddr(last_fit), &mut storage).is_ok());
    assert_eq!(
        OwnershipTable::new(PhysAddr(last_fit + PAGE_SIZE), &mut storage).unwrap_err(),
        OwnershipError::OutOfRange
    );
    assert_eq!(
        OwnershipTable::new(PhysAddr(!(PAGE_SIZE - 1)), &mut storage).unwrap_err(),
        OwnershipError::OutOfRange
    );
}

#[test]
fn an_empty_table_has_no_memory() {
    let mut storage = [];
    let mut table = table(&mut storage);
    assert_eq!(
        table.owner(page(0)),
        Err(OwnershipError::NotMemory { addr: page(0) })
    );
    assert_refused(
        &mut table,
        |table| table.host_share_hyp(page(0)),
        OwnershipError::NotMemory { addr: page(0) },
    );
}

#[test]
fn owner_ids_round_trip_and_fill_the_annotation() {
    for id in 0..1u8 << ANNOTATION_BITS {
        let party = Party::from_id(id).expect("every id that fits names a party");
        assert_eq!(party.id(), Some(id));
    }
    assert_eq!(Party::from_id(1 << ANNOTATION_BITS), None);
    assert_eq!(Party::Host.id(), Some(0));
    assert_eq!(Party::Hypervisor.id(), Some(1));
    assert_eq!(Party::Guest(0).id(), Some(2));
    assert_eq!(
        Party::Guest(MAX_GUESTS - 1).id(),
        Some((1 << ANNOTATION_BITS) - 1)
    );
    assert_eq!(Party::Guest(MAX_GUESTS).id(), None);
    assert_eq!(Party::Guest(u8::MAX).id(), None);
}

#[test]
fn the_table_never_writes_bit_7() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.reserve_for_hypervisor(pages(0, 1)).unwrap();
    table.host_share_hyp(page(1)).unwrap();
    table
        .host_donate_guest(pages(2, 2), MAX_GUESTS - 1)
        .unwrap();
    table.guest_share_host(page(3), MAX_GUESTS - 1).unwrap();
    assert!(storage.iter().all(|&byte| byte & 0x80 == 0));
}

// Addresses and arguments every call refuses.

/// Every call with `addr` as its page (or the start of a one-page range): the transitions and
/// the range query first, then the one-page queries.
#[allow(clippy::type_complexity, reason = "a list of calls under test")]
fn every_call(
    addr: PhysAddr,
) -> Vec<Box<dyn Fn(&mut OwnershipTable<'_>) -> Result<(), OwnershipError>>> {
    let range = addr..PhysAddr(addr.0.wrapping_add(PAGE_SIZE));
    vec![
        Box::new({
            let range = range.clone();
            move |table| table.reserve_for_hypervisor(range.clone())
        }),
        Box::new(move |table| table.host_share_hyp(addr)),
        Box::new(move |table| table.host_unshare_hyp(addr)),
        Box::new({
            let range = range.clone();
            move |table| table.host_donate_guest(range.clone(), GUEST)
        }),
        Box::new({
            let range = range.clone();
            move |table| table.host_reclaim(range.clone(), GUEST).map(|_| ())
        }),
        Box::new(move |table| table.guest_share_host(addr, GUEST)),
        Box::new(move |table| table.guest_unshare_host(addr, GUEST)),
        Box::new(move |table| table.host_may_access_range(range.clone()).map(|_| ())),
        Box::new(move |table| table.owner(addr).map(|_| ())),
        Box::new(move |table| table.state(addr, Party::Host).map(|_| ())),
        Box::new(move |table| table.host_may_access(addr).map(|_| ())),
        Box::new(move |table| table.annotation(addr).map(|_| ())),
    ]
}

#[test]
fn every_call_refuses_addresses_outside_ram() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    for addr in [
        UART,
        PhysAddr(0),
        PhysAddr(RAM_START - PAGE_SIZE),
        PhysAddr(RAM_END),
        PhysAddr(RAM_END + PAGE_SIZE),
        PhysAddr(PHYS_ADDR_LIMIT),
    ] {
        for call in every_call(addr) {
            assert_refused(&mut table, call, OwnershipError::NotMemory { addr });
        }
    }
}

#[test]
fn a_range_running_past_ram_is_refused_at_the_end_of_ram() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    let range = page(PAGES as u64 - 2)..page(PAGES as u64 + 3);
    let expected = OwnershipError::NotMemory {
        addr: PhysAddr(RAM_END),
    };
    assert_refused(
        &mut table,
        |t| t.reserve_for_hypervisor(range.clone()),
        expected,
    );
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(range.clone(), GUEST),
        expected,
    );
    assert_refused(
        &mut table,
        |t| t.host_reclaim(range.clone(), GUEST),
        expected,
    );
    // A range that starts below RAM is refused at its start.
    let below = PhysAddr(RAM_START - PAGE_SIZE)..page(2);
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(below.clone(), GUEST),
        OwnershipError::NotMemory { addr: below.start },
    );
}

#[test]
fn transitions_refuse_misaligned_pages_and_ranges() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    let addr = PhysAddr(page(3).0 + 0x10);
    let expected = OwnershipError::Misaligned { addr };
    // Only the one-page queries accept any address in a page.
    for call in every_call(addr).into_iter().take(8) {
        assert_refused(&mut table, call, expected);
    }
    let ragged_end = page(1)..PhysAddr(page(3).0 + 1);
    assert_refused(
        &mut table,
        |t| t.host_donate_guest(ragged_end.clone(), GUEST),
        OwnershipError::Misaligned {
            addr: ragged_end.end,
        },
    );
}

#[test]
fn queries_accept_any_address_in_a_page() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    table.host_donate_guest(pages(3, 1), GUEST).unwrap();
    let inside = PhysAddr(page(3).0 + PAGE_SIZE - 1);
    assert_eq!(table.owner(inside), Ok(Party::Guest(GUEST)));
    assert_eq!(table.host_may_access(inside), Ok(false));
    assert_eq!(
        table.state(inside, Party::Guest(GUEST)),
        Ok(PageState::Owned)
    );
}

#[test]
fn ranges_without_pages_are_refused() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    for (start, end) in [(page(2), page(2)), (page(3), page(2))] {
        let expected = OwnershipError::EmptyRange { start, end };
        assert_refused(
            &mut table,
            |t| t.reserve_for_hypervisor(start..end),
            expected,
        );
        assert_refused(
            &mut table,
            |t| t.host_donate_guest(start..end, GUEST),
            expected,
        );
        assert_refused(&mut table, |t| t.host_reclaim(start..end, GUEST), expected);
    }
}

#[test]
fn guests_past_the_limit_are_refused() {
    let mut storage = [0; PAGES];
    let mut table = table(&mut storage);
    for guest in [MAX_GUESTS, u8::MAX] {
        let expected = OwnershipError::NoSuchGuest { guest };
        assert_refused(
            &mut table,
            |t| t.host_donate_guest(pages(0, 1), guest),
            expected,
        );
        assert_refused(&mut table, |t| t.host_reclaim(pages(0, 1), guest), expected);
        assert_refused(&mut table, |t| t.guest_share_host(page(0), guest), expected);
        assert_refused(
            &mut table,
            |t| t.guest_unshare_host(page(0), guest),
            expected,
        );
        assert_refused(
            &mut table,
            |t| t.state(page(0), Party::Guest(guest)),
            expected,
        );
    }
    // The guest is checked before the address.
    assert_refused(
        &mut table,
        |t| t.guest_share_host(UART, MAX_GUESTS),
        OwnershipError::NoSuchGuest { guest: MAX_GUESTS },
    );
}
