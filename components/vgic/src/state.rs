//! One interrupt's configuration and state, and the transitions the registers, the device
//! lines and the list-register cycle make on it.
//!
//! Pending, active and "in a list register" are kept per *source slot*: a GICv2 SGI is pending
//! separately for each vCPU that sent it (IHI 0048B 3.2.5), so slot `s` is "sent by vCPU s".
//! Every other interrupt uses slot 0 only ([`SLOT0`]).
//!
//! Where the pending state lives:
//! - edge-triggered: in `latched` until a list register takes it over (`lr_pending`), so a new
//!   edge while the guest handles the old one is pending again, separately;
//! - level-sensitive: the line itself (`line_high`) or a software latch (a set-pending write,
//!   an injected edge); the list register shows it live, and acknowledging consumes the latch.

use crate::{LrState, PRIORITY_MASK};

/// The slot of everything but GICv2 SGIs.
pub(crate) const SLOT0: u8 = 1;

/// Serialised field by field in this order for a hot-swap's hand-over (`handover`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Irq {
    pub enabled: bool,
    pub group1: bool,
    /// Always masked with [`PRIORITY_MASK`].
    pub priority: u8,
    pub level_sensitive: bool,
    /// The input line (meaningful for level-sensitive interrupts; edge ones latch rising edges).
    pub line_high: bool,
    /// Pending latches, per slot.
    pub latched: u8,
    /// Edge-triggered only: the pending states a list register holds, per slot.
    pub lr_pending: u8,
    pub active: u8,
    /// The slots a list register holds (in any state).
    pub in_lr: u8,
}

impl Irq {
    /// The reset state: disabled, group 0, priority 0, idle.
    pub const fn new(level_sensitive: bool) -> Self {
        Self {
            enabled: false,
            group1: false,
            priority: 0,
            level_sensitive,
            line_high: false,
            latched: 0,
            lr_pending: 0,
            active: 0,
            in_lr: 0,
        }
    }

    fn line_slots(&self) -> u8 {
        if self.level_sensitive && self.line_high {
            SLOT0
        } else {
            0
        }
    }

    /// The slots the guest sees as pending (the set-pending registers), list registers included.
    pub fn pending(&self) -> u8 {
        self.latched | self.lr_pending | self.line_slots()
    }

    /// The slots that should go into a list register: enabled, pending, neither active nor
    /// already in a list register. (Group enables and targets are the distributor's to check.)
    pub fn deliverable(&self) -> u8 {
        if !self.enabled {
            return 0;
        }
        (self.latched | self.line_slots()) & !(self.in_lr | self.active)
    }

    pub fn set_priority(&mut self, priority: u8) {
        self.priority = priority & PRIORITY_MASK;
    }

    pub fn set_pending(&mut self, slots: u8) {
        self.latched |= slots;
    }

    /// Clears latched pending states, including those a list register took over; a
    /// level-sensitive line that is still high keeps the interrupt pending.
    pub fn clear_pending(&mut self, slots: u8) {
        self.latched &= !slots;
        self.lr_pending &= !slots;
    }

    /// Drives the input line. An edge-triggered interrupt latches pending on a rising edge.
    pub fn set_line(&mut self, high: bool) {
        if !self.level_sensitive && high && !self.line_high {
            self.latched |= SLOT0;
        }
        self.line_high = high;
    }

    /// A list register now holds `slot`, as pending. An edge's pending state moves into it.
    pub fn enter_list_register(&mut self, slot: u8) {
        self.in_lr |= slot;
        if !self.level_sensitive {
            self.lr_pending |= self.latched & slot;
            self.latched &= !slot;
        }
    }

    /// Folds back what the list register holding `slot` now says.
    pub fn fold_list_register(&mut self, slot: u8, lr: LrState) {
        let was_active = self.active & slot != 0;
        if lr == LrState::Invalid {
            self.in_lr &= !slot;
        } else {
            self.in_lr |= slot;
        }
        if self.level_sensitive {
            // Acknowledging consumes a latched pending state (the line keeps its own). An
            // empty register that was not active was acknowledged and ended between two looks.
            let acknowledged = lr.active() || (lr == LrState::Invalid && !was_active);
            if acknowledged {
                self.latched &= !slot;
            }
        } else {
            set_bits(&mut self.lr_pending, slot, lr.pending());
        }
        set_bits(&mut self.active, slot, lr.active());
    }

    /// What the list register holding `slot` should say now (after guest writes or line
    /// changes); [`LrState::Invalid`] when it should be emptied or holds nothing.
    ///
    /// A level-sensitive interrupt is never shown pending and active at once: when the guest
    /// ends it, the register empties and the line is sampled again, so a device the guest has
    /// serviced in between is not signalled twice.
    pub fn list_register_state(&self, slot: u8) -> LrState {
        if self.in_lr & slot == 0 {
            return LrState::Invalid;
        }
        let active = self.active & slot != 0;
        let pending = if self.level_sensitive {
            !active && (self.latched | self.line_slots()) & slot != 0
        } else {
            self.lr_pending & slot != 0
        };
        LrState::from_bits(pending, active)
    }
}

fn set_bits(bits: &mut u8, slots: u8, on: bool) {
    if on {
        *bits |= slots;
    } else {
        *bits &= !slots;
    }
}
