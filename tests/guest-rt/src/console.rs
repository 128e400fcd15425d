//! The console: a polled PL011 transmitter found through the DTB's `/chosen/stdout-path`.
//!
//! The UART is used as the boot firmware (or the hypervisor) left it; only the data and flag
//! registers are touched. Output is dropped until the runtime has found the UART, or for good
//! when the DTB names no PL011. Use [`print!`](crate::print) and [`println!`](crate::println).

use core::fmt;

use crate::global::Global;

/// `UARTDR`: data register.
const UARTDR: usize = 0x00;
/// `UARTFR`: flag register.
const UARTFR: usize = 0x18;
/// `UARTFR.TXFF`: transmit FIFO full.
const UARTFR_TXFF: u32 = 1 << 5;

/// Base address of the PL011, 0 while there is none.
static UART_BASE: Global<usize> = Global::new(0);

/// Sends output to the PL011 at `base` from now on.
///
/// # Safety
///
/// `base` must be the (identity-mapped) address of a PL011's register block, and nothing else
/// may use that UART in a conflicting way.
pub(crate) unsafe fn init(base: usize) {
    UART_BASE.set(base);
}

/// Whether output goes anywhere.
pub fn is_available() -> bool {
    UART_BASE.get() != 0
}

/// A [`fmt::Write`] sink for the console; `\n` is sent as `\r\n`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl Console {
    fn put_byte(base: usize, byte: u8) {
        let fr = (base + UARTFR) as *const u32;
        let dr = (base + UARTDR) as *mut u32;
        // SAFETY: `init`'s contract makes `base` a PL011 register block; UARTFR and UARTDR are
        // aligned 32-bit registers within it.
        unsafe {
            while fr.read_volatile() & UARTFR_TXFF != 0 {}
            dr.write_volatile(u32::from(byte));
        }
    }

    /// Writes raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let base = UART_BASE.get();
        if base == 0 {
            return;
        }
        for &b in bytes {
            if b == b'\n' {
                Self::put_byte(base, b'\r');
            }
            Self::put_byte(base, b);
        }
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Implementation detail of [`print!`](crate::print).
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    // Console::write_str never fails.
    let _ = fmt::Write::write_fmt(&mut Console, args);
}

/// Prints to the guest console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!($($arg)*))
    };
}

/// Prints to the guest console, with a newline.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::_print(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {{
        $crate::console::_print(::core::format_args!($($arg)*));
        $crate::console::_print(::core::format_args!("\n"));
    }};
}
