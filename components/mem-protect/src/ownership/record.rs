//! The byte that records one page's owner and sharing state, and the checks the transitions
//! make on it. The layout is in the parent module's docs; only this file knows it.

use super::{ANNOTATION_BITS, HOST_ID, HYPERVISOR_ID, OwnershipError, PageState, Party, PhysAddr};

/// One page's byte (the layout is in the parent module's docs). Only the table builds these, so
/// bit 7 is always clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Record(pub(super) u8);

impl Record {
    const OWNER_MASK: u8 = (1 << ANNOTATION_BITS) - 1;
    const SHARED: u8 = 1 << ANNOTATION_BITS;
    pub(super) const HOST_OWNED: Record = Record(HOST_ID);
    pub(super) const HYPERVISOR_OWNED: Record = Record(HYPERVISOR_ID);

    /// Owned exclusively by the party with this id (from [`Party::checked_id`]).
    pub(super) const fn owned_by(id: u8) -> Record {
        Record(id & Self::OWNER_MASK)
    }

    /// The same owner, sharing with its borrower.
    pub(super) const fn shared(self) -> Record {
        Record(self.0 | Self::SHARED)
    }

    pub(super) const fn owner_id(self) -> u8 {
        self.0 & Self::OWNER_MASK
    }

    pub(super) const fn owner(self) -> Party {
        Party::from_owner_bits(self.owner_id())
    }

    pub(super) const fn borrower(self) -> Option<Party> {
        if self.0 & Self::SHARED != 0 {
            self.owner().borrower()
        } else {
            None
        }
    }

    pub(super) fn state_of(self, party: Party) -> PageState {
        let borrower = self.borrower();
        if party == self.owner() {
            if borrower.is_some() {
                PageState::SharedOwned
            } else {
                PageState::Owned
            }
        } else if Some(party) == borrower {
            PageState::SharedBorrowed
        } else {
            PageState::NoPage
        }
    }

    /// The page must be the host's and not shared.
    pub(super) fn expect_host_exclusive(self, addr: PhysAddr) -> Result<(), OwnershipError> {
        match (self.owner(), self.borrower()) {
            (Party::Host, None) => Ok(()),
            (Party::Host, Some(borrower)) => Err(OwnershipError::AlreadyShared { addr, borrower }),
            (owner, _) => Err(OwnershipError::NotOwnedByHost { addr, owner }),
        }
    }

    /// The page must be the host's and shared (with the hypervisor, the host's only borrower).
    pub(super) fn expect_host_shared(self, addr: PhysAddr) -> Result<(), OwnershipError> {
        match (self.owner(), self.borrower()) {
            (Party::Host, Some(_)) => Ok(()),
            (Party::Host, None) => Err(OwnershipError::NotShared { addr }),
            (owner, _) => Err(OwnershipError::NotOwnedByHost { addr, owner }),
        }
    }

    /// The page must be `guest`'s and not shared.
    pub(super) fn expect_guest_exclusive(
        self,
        addr: PhysAddr,
        guest: u8,
    ) -> Result<(), OwnershipError> {
        match (self.owner(), self.borrower()) {
            (Party::Guest(owner), None) if owner == guest => Ok(()),
            (Party::Guest(owner), Some(borrower)) if owner == guest => {
                Err(OwnershipError::AlreadyShared { addr, borrower })
            }
            (owner, _) => Err(OwnershipError::NotOwnedByGuest { addr, guest, owner }),
        }
    }

    /// The page must be `guest`'s and shared (with the host).
    pub(super) fn expect_guest_shared(
        self,
        addr: PhysAddr,
        guest: u8,
    ) -> Result<(), OwnershipError> {
        match (self.owner(), self.borrower()) {
            (Party::Guest(owner), Some(_)) if owner == guest => Ok(()),
            (Party::Guest(owner), None) if owner == guest => {
                Err(OwnershipError::NotShared { addr })
            }
            (owner, _) => Err(OwnershipError::NotOwnedByGuest { addr, guest, owner }),
        }
    }
}
