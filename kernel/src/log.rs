//! The kernel's defmt logger: frames are encoded (rzcobs) into a buffer and drained to the
//! board's log sink when each frame ends; the host tool decodes them with the kernel's ELF.
//!
//! One lock serialises CPUs. The kernel runs with interrupts masked, so a frame is never
//! interrupted on its own CPU; a panic while the lock is held (a bug in logging itself)
//! skips logging rather than deadlocking.

use crate::arch;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use hv_board::LogSink;

/// Bytes buffered before a drain. A frame larger than this is drained in pieces.
const BUFFER_SIZE: usize = 512;

struct LoggerState {
    encoder: defmt::Encoder,
    buffer: [u8; BUFFER_SIZE],
    len: usize,
}

struct Shared(UnsafeCell<LoggerState>);

// SAFETY: the state is only touched between acquire and release, under LOCKED.
unsafe impl Sync for Shared {}

static LOCKED: AtomicBool = AtomicBool::new(false);
static STATE: Shared = Shared(UnsafeCell::new(LoggerState {
    encoder: defmt::Encoder::new(),
    buffer: [0; BUFFER_SIZE],
    len: 0,
}));

fn drain(bytes: &[u8]) {
    match hv_board::CURRENT.log_sink {
        LogSink::Semihosting => arch::semihosting::write(bytes),
        LogSink::MiniUart { base } => arch::mini_uart::write(base, bytes),
    }
}

impl LoggerState {
    /// Runs `f` with the encoder and a sink over the buffer, borrowed apart.
    fn encode(&mut self, f: impl FnOnce(&mut defmt::Encoder, &mut Sink<'_>)) {
        let LoggerState {
            encoder,
            buffer,
            len,
        } = self;
        f(encoder, &mut Sink { buffer, len });
    }

    fn flush(&mut self) {
        drain(&self.buffer[..self.len]);
        self.len = 0;
    }
}

/// Sends `bytes` on the log's line between two frames: hot-swap's answers when the control
/// line is the log's UART (the host tool tells the two kinds of frames apart).
pub fn write_between_frames(bytes: &[u8]) {
    take_lock();
    drain(bytes);
    LOCKED.store(false, Ordering::Release);
}

/// Spins until this CPU holds the lock.
fn take_lock() {
    while LOCKED
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
}

/// True if a log frame is being written on some CPU (the panic path checks it).
pub fn is_busy() -> bool {
    LOCKED.load(Ordering::Acquire)
}

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release bracket every access to STATE with the LOCKED spin lock.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        take_lock();
        // SAFETY: we hold the lock.
        let state = unsafe { &mut *STATE.0.get() };
        state.encode(|encoder, sink| encoder.start_frame(|bytes| sink.push(bytes)));
    }

    unsafe fn flush() {
        // SAFETY: called between acquire and release (defmt's contract).
        unsafe { &mut *STATE.0.get() }.flush();
    }

    unsafe fn release() {
        // SAFETY: called after acquire (defmt's contract), so we hold the lock.
        let state = unsafe { &mut *STATE.0.get() };
        state.encode(|encoder, sink| encoder.end_frame(|bytes| sink.push(bytes)));
        state.flush();
        LOCKED.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called between acquire and release (defmt's contract).
        let state = unsafe { &mut *STATE.0.get() };
        state.encode(|encoder, sink| encoder.write(bytes, |out| sink.push(out)));
    }
}

/// The buffer half of [`LoggerState`], borrowed apart from the encoder.
struct Sink<'a> {
    buffer: &'a mut [u8; BUFFER_SIZE],
    len: &'a mut usize,
}

impl Sink<'_> {
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if *self.len == BUFFER_SIZE {
                drain(&self.buffer[..]);
                *self.len = 0;
            }
            self.buffer[*self.len] = byte;
            *self.len += 1;
        }
    }
}

defmt::timestamp!("{=u64:us}", {
    let (ticks, frequency) = arch::counter();
    if frequency == 0 {
        0
    } else {
        (ticks as u128 * 1_000_000 / frequency as u128) as u64
    }
});
