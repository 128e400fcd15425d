//! The defmt global logger: each frame is encoded (rzcobs, by `defmt::Encoder`) into a buffer
//! and handed to the kernel with the LOG system call when the frame ends. A frame longer than
//! the buffer goes out in several LOG calls; the kernel treats a component's log as one byte
//! stream, so only the number of calls changes.
//!
//! There is no lock: a component is single-threaded and runs with interrupts masked, and it
//! uses no atomics (with the MMU off, exclusive accesses are not reliable). Re-entry (a panic
//! inside a log statement that logs again) is detected and turned into a panic, whose handler
//! does not log through defmt.
//!
//! No timestamp is defined: the kernel stamps LOG calls as it receives them.
//!
//! Binaries must link with `-Tdefmt.x` (`hv_component_config::build::configure` adds it).

use core::cell::UnsafeCell;

use crate::syscall;

/// Bytes buffered before a LOG call.
const BUFFER_SIZE: usize = 256;

/// The logger's state, used only between `acquire` and `release`.
struct LoggerState {
    taken: bool,
    encoder: defmt::Encoder,
    sink: FrameBuffer,
}

/// Collects encoded bytes and sends them with LOG when full or at the end of a frame.
struct FrameBuffer {
    buffer: [u8; BUFFER_SIZE],
    len: usize,
}

impl FrameBuffer {
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.len == BUFFER_SIZE {
                self.flush();
            }
            self.buffer[self.len] = byte;
            self.len += 1;
        }
    }

    fn flush(&mut self) {
        syscall::log(&self.buffer[..self.len]);
        self.len = 0;
    }
}

struct Shared(UnsafeCell<LoggerState>);

// SAFETY: A component is single-threaded and never interrupted (DAIF masked), so the state is
// never accessed concurrently; `taken` catches re-entry from a panic.
unsafe impl Sync for Shared {}

static STATE: Shared = Shared(UnsafeCell::new(LoggerState {
    taken: false,
    encoder: defmt::Encoder::new(),
    sink: FrameBuffer {
        buffer: [0; BUFFER_SIZE],
        len: 0,
    },
}));

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release bracket every frame, and `taken` makes a nested acquire panic
// instead of sharing the state.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // SAFETY: Single-threaded, no interrupts: this is the only reference to STATE alive
        // (defmt calls these functions one at a time, never from inside each other).
        let state = unsafe { &mut *STATE.0.get() };
        if state.taken {
            panic!("defmt: log statement while logging");
        }
        state.taken = true;
        let LoggerState { encoder, sink, .. } = state;
        encoder.start_frame(|bytes| sink.push(bytes));
    }

    unsafe fn flush() {
        // SAFETY: As in `acquire`; defmt calls this between acquire and release.
        unsafe { &mut *STATE.0.get() }.sink.flush();
    }

    unsafe fn release() {
        // SAFETY: As in `acquire`; defmt calls this after acquire.
        let state = unsafe { &mut *STATE.0.get() };
        let LoggerState { encoder, sink, .. } = state;
        encoder.end_frame(|bytes| sink.push(bytes));
        sink.flush();
        state.taken = false;
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: As in `acquire`; defmt calls this between acquire and release.
        let state = unsafe { &mut *STATE.0.get() };
        let LoggerState { encoder, sink, .. } = state;
        encoder.write(bytes, |out| sink.push(out));
    }
}
