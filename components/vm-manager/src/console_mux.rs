//! One keyboard for several consoles. The board's console UART is the host's, but once guests
//! with emulated consoles run beside it, its receive side is shared: the host's accesses to it
//! trap here (`System::host_console_mux`), everything but what was typed passes through to the
//! UART (the kernel makes the access, CONSOLE_ACCESS), and each typed byte goes to the VM that
//! has the keyboard: the host, or a guest, whose emulated PL011 receives it. Ctrl-] moves the
//! keyboard to the next console (host, then each guest with one, then the host again). Output
//! is not touched: the host writes its own, guests' lines come prefixed with their names.
//!
//! Pure logic, host-tested; `component/emulation.rs` makes the accesses.

/// The key that moves the keyboard to the next console: Ctrl-] (GS), as telnet and virsh use
/// it; QEMU's own escape is Ctrl-A.
pub const SWITCH_KEY: u8 = 0x1d;

/// Most guests with a console.
const MAX_GUEST_CONSOLES: usize = hv_component_config::MAX_VMS - 1;

/// Where a byte read from the UART goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the host (its read returns it).
    Host,
    /// To guest VM `0.0`'s emulated console.
    Guest(u16),
    /// It was the switch key: the keyboard now goes to the host (`None`) or to a guest.
    Switched(Option<u16>),
}

/// Who has the keyboard.
#[derive(Clone, Debug)]
pub struct ConsoleMux {
    guests: heapless::Vec<u16, MAX_GUEST_CONSOLES>,
    /// 0: the host; n: `guests[n - 1]`.
    focus: usize,
}

impl ConsoleMux {
    /// The host has the keyboard; `guests` (VM ids, in order) can get it.
    pub fn new(guests: impl IntoIterator<Item = u16>) -> Self {
        Self {
            guests: guests.into_iter().take(MAX_GUEST_CONSOLES).collect(),
            focus: 0,
        }
    }

    /// The guest that has the keyboard, if not the host.
    pub fn focus(&self) -> Option<u16> {
        self.focus
            .checked_sub(1)
            .and_then(|at| self.guests.get(at).copied())
    }

    /// Who has the keyboard, as a number: 0 for the host, n for the n-th guest (a hot-swap
    /// hands it over).
    pub fn focus_index(&self) -> usize {
        self.focus
    }

    /// Gives the keyboard to [`Self::focus_index`] `focus`; `false`, and nothing changes, if
    /// there is no such console.
    pub fn set_focus_index(&mut self, focus: usize) -> bool {
        if focus > self.guests.len() {
            return false;
        }
        self.focus = focus;
        true
    }

    /// Where `byte`, just typed, goes.
    pub fn route(&mut self, byte: u8) -> Route {
        if byte == SWITCH_KEY {
            self.focus = (self.focus + 1) % (self.guests.len() + 1);
            return Route::Switched(self.focus());
        }
        match self.focus() {
            Some(vm) => Route::Guest(vm),
            None => Route::Host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_key_cycles_host_then_each_guest() {
        let mut mux = ConsoleMux::new([1, 3]);
        assert_eq!(mux.route(b'a'), Route::Host);
        assert_eq!(mux.route(SWITCH_KEY), Route::Switched(Some(1)));
        assert_eq!(mux.route(b'b'), Route::Guest(1));
        assert_eq!(mux.route(SWITCH_KEY), Route::Switched(Some(3)));
        assert_eq!(mux.route(b'c'), Route::Guest(3));
        assert_eq!(mux.focus(), Some(3));
        assert_eq!(mux.route(SWITCH_KEY), Route::Switched(None));
        assert_eq!(mux.route(b'd'), Route::Host);
    }

    #[test]
    fn without_guests_the_keyboard_stays_with_the_host() {
        let mut mux = ConsoleMux::new([]);
        assert_eq!(mux.route(SWITCH_KEY), Route::Switched(None));
        assert_eq!(mux.route(b'x'), Route::Host);
    }
}
