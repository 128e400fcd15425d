//! The MMIO guard's verdicts the VM manager keeps, so that an emulated access to a granule the
//! guard already allowed costs no call to it.
//!
//! The guard marks a verdict `cacheable` only when it can notify us, and then sets
//! `NOTIFY_MMIO_GUARD_CHANGED` on us whenever any VM's enrolment or granules change (and when
//! it starts again); the kernel hands that bit over before our next call at the latest, and
//! [`GuardCache::clear`] drops everything. Only "allowed" is kept, for accesses that lie in one
//! granule: a refusal is rare, logged, and asked again.

use hv_ipc::addr::Ipa;
use hv_ipc::interfaces::mmio_guard::GRANULE_SIZE;

/// Granules kept (VMs touch a handful of emulated devices; the oldest goes first).
pub const CAPACITY: usize = 8;

/// Allowed (VM, granule) pairs.
#[derive(Debug, Default)]
pub struct GuardCache {
    /// (VM, granule base), oldest first.
    allowed: heapless::Deque<(u16, u64), CAPACITY>,
}

/// The granule of an access of `len` bytes at `ipa`, if it lies in one.
fn granule_of(ipa: Ipa, len: u64) -> Option<u64> {
    let first = ipa.0 & !(GRANULE_SIZE - 1);
    let last = ipa.0.checked_add(len.checked_sub(1)?)? & !(GRANULE_SIZE - 1);
    (first == last).then_some(first)
}

impl GuardCache {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            allowed: heapless::Deque::new(),
        }
    }

    /// Whether the guard has allowed `vm` this access's granule since the last [`clear`].
    ///
    /// [`clear`]: Self::clear
    pub fn allows(&self, vm: u16, ipa: Ipa, len: u64) -> bool {
        granule_of(ipa, len)
            .is_some_and(|granule| self.allowed.iter().any(|&kept| kept == (vm, granule)))
    }

    /// Keeps the guard's "allowed" for this access's granule (nothing for an access that
    /// straddles two).
    pub fn remember(&mut self, vm: u16, ipa: Ipa, len: u64) {
        let Some(granule) = granule_of(ipa, len) else {
            return;
        };
        if self.allows(vm, ipa, len) {
            return;
        }
        if self.allowed.is_full() {
            self.allowed.pop_front();
        }
        // Room was made just above.
        let _ = self.allowed.push_back((vm, granule));
    }

    /// Drops every kept verdict (the guard's state changed).
    pub fn clear(&mut self) {
        self.allowed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UART: u64 = 0x0900_0000;

    #[test]
    fn keeps_an_allowed_granule_for_every_access_inside_it_and_that_vm_only() {
        let mut cache = GuardCache::new();
        assert!(!cache.allows(0, Ipa(UART), 4));
        cache.remember(0, Ipa(UART + 0x18), 4);
        assert!(cache.allows(0, Ipa(UART), 4));
        assert!(cache.allows(0, Ipa(UART + 0xff8), 8));
        assert!(!cache.allows(1, Ipa(UART), 4), "another VM");
        assert!(!cache.allows(0, Ipa(UART + 0x1000), 4), "the next granule");
        assert!(
            !cache.allows(0, Ipa(UART + 0xffc), 8),
            "an access that straddles into the next granule"
        );
    }

    #[test]
    fn a_straddling_access_is_never_kept() {
        let mut cache = GuardCache::new();
        cache.remember(0, Ipa(UART + 0xffe), 4);
        assert!(!cache.allows(0, Ipa(UART), 1));
        assert!(!cache.allows(0, Ipa(UART + 0x1000), 1));
        // Nor are zero-length or wrapping ones.
        cache.remember(0, Ipa(UART), 0);
        cache.remember(0, Ipa(u64::MAX), 2);
        assert!(!cache.allows(0, Ipa(UART), 1));
    }

    #[test]
    fn clear_drops_everything_and_the_oldest_goes_first_when_full() {
        let mut cache = GuardCache::new();
        for granule in 0..CAPACITY as u64 + 1 {
            cache.remember(0, Ipa(UART + granule * GRANULE_SIZE), 4);
        }
        assert!(!cache.allows(0, Ipa(UART), 4), "the oldest was dropped");
        for granule in 1..CAPACITY as u64 + 1 {
            assert!(cache.allows(0, Ipa(UART + granule * GRANULE_SIZE), 4));
        }
        cache.clear();
        assert!(!cache.allows(0, Ipa(UART + GRANULE_SIZE), 4));
    }
}
