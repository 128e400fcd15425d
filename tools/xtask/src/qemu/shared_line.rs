//! The Raspberry Pi's mini-UART as QEMU's `raspi4b` gives it: one line that carries the
//! hypervisor's log frames beside a console's text and, with hot-swap on, the control line
//! too (docs/hot-swap.md). A thread reads it, keeps its raw bytes (`serial.raw`, what `cargo
//! xtask decode` reads) and splits them ([`Demux`]); with hot-swap on, [`Relay`] serves the
//! run's control socket, so `cargo xtask swap` talks to this board as it does to virt's
//! dedicated UART: its bytes go into the mini-UART, and the supervisor's answers come back
//! out of the log stream.

use super::{LogDecoder, print_hv_line};
use crate::serial_log::{Demux, Piece};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the pieces of a shared serial line go.
pub(crate) struct SerialSinks {
    pub console_text: Arc<Mutex<String>>,
    pub hv_lines: Arc<Mutex<Vec<String>>>,
    /// Print the console text as it comes.
    pub echo: bool,
    /// Print the log lines as they come.
    pub show: bool,
    pub interactive: bool,
    /// Where hot-swap's answers go (the relay's client), if the line carries them: set by
    /// [`serve_line`].
    control: Option<Arc<Relay>>,
}

impl SerialSinks {
    /// Sinks that collect the console text and the log lines, printing them as asked.
    pub fn new(
        console_text: Arc<Mutex<String>>,
        hv_lines: Arc<Mutex<Vec<String>>>,
        echo: bool,
        show: bool,
        interactive: bool,
    ) -> Self {
        Self {
            console_text,
            hv_lines,
            echo,
            show,
            interactive,
            control: None,
        }
    }

    fn take(&self, pieces: Vec<Piece>) {
        for piece in pieces {
            match piece {
                Piece::Text(text) => {
                    if self.echo {
                        print!("{text}");
                        let _ = std::io::stdout().flush();
                    }
                    self.console_text.lock().unwrap().push_str(&text);
                }
                Piece::Frame(line) => {
                    if self.show {
                        print_hv_line(&line, self.interactive);
                    }
                    self.hv_lines.lock().unwrap().push(line);
                }
                Piece::Malformed(len) => self
                    .hv_lines
                    .lock()
                    .unwrap()
                    .push(format!("(malformed frame, {len} bytes)")),
                Piece::Control(frame) => {
                    if let Some(relay) = &self.control {
                        relay.answer(&frame);
                    }
                }
            }
        }
    }
}

/// Reads a serial line that carries both the console and the log (the mini-UART) until it
/// ends, splitting it as it comes ([`Demux`]); copies the raw bytes to `raw_path` if given.
fn split_serial(
    mut source: Box<dyn Read + Send>,
    raw_path: Option<PathBuf>,
    decoder: &LogDecoder,
    sinks: &SerialSinks,
) -> Result<()> {
    let mut raw = raw_path.map(std::fs::File::create).transpose()?;
    let mut demux = Demux::new();
    let decode = |candidate: &[u8]| decoder.decode_frame(candidate);
    let mut buffer = [0u8; 4096];
    while let Ok(read) = source.read(&mut buffer) {
        if read == 0 {
            break;
        }
        if let Some(raw) = raw.as_mut() {
            raw.write_all(&buffer[..read])?;
            raw.flush()?;
        }
        let mut pieces = demux.push(&buffer[..read], &decode);
        pieces.extend(demux.take_settled_text().map(Piece::Text));
        sinks.take(pieces);
    }
    sinks.take(demux.finish());
    Ok(())
}

/// Follows a shared line to its end, splitting it into `sinks` (and its raw bytes into
/// `raw_path`); with `control`, serves that socket meanwhile for `cargo xtask swap`: the tool's
/// bytes go into `writer` and the line's hot-swap answers back to it. `cargo xtask run` (on
/// QEMU's socket) and `cargo xtask attach` (on a board's serial device) both follow a line so.
pub(crate) fn serve_line(
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    raw_path: Option<PathBuf>,
    decoder: &LogDecoder,
    mut sinks: SerialSinks,
    control: Option<&Path>,
) -> Result<()> {
    let relay = control.map(|_| Relay::new(writer));
    sinks.control = relay.clone();
    let server = relay.clone().zip(control).map(|(relay, socket)| {
        let socket = socket.to_owned();
        std::thread::spawn(move || relay.serve(&socket))
    });
    let result = split_serial(reader, raw_path, decoder, &sinks);
    if let (Some(relay), Some(server)) = (relay, server) {
        relay.stop();
        match server.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("the control line's relay failed: {error:#}"),
            Err(_) => eprintln!("the control line's relay panicked"),
        }
    }
    result
}

/// A file QEMU appends to, read to its end once `done` is set (until then a read at its
/// current end waits for more).
pub(super) struct Tail {
    pub file: std::fs::File,
    pub done: Arc<Mutex<bool>>,
}

impl Read for Tail {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let finished = *self.done.lock().unwrap();
            let read = self.file.read(buffer)?;
            if read > 0 || finished {
                return Ok(read);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Connects to the Unix socket QEMU serves a serial port on, waiting for QEMU to create it.
pub(crate) fn connect(socket: &Path) -> Result<UnixStream> {
    let start = Instant::now();
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(_) if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => {
                return Err(error).with_context(|| format!("connecting to {}", socket.display()));
            }
        }
    }
}

/// The run's control socket in front of a shared line: one client at a time (a `cargo xtask
/// swap`), whose bytes go into the line and to whom the line's hot-swap answers go.
struct Relay {
    /// The line's sending side (QEMU's socket for the mini-UART, or a board's serial device).
    line: Mutex<Box<dyn Write + Send>>,
    /// The connected client's sending side.
    client: Mutex<Option<UnixStream>>,
    stop: AtomicBool,
}

impl Relay {
    /// A relay that sends into `line`.
    fn new(line: Box<dyn Write + Send>) -> Arc<Self> {
        Arc::new(Self {
            line: Mutex::new(line),
            client: Mutex::new(None),
            stop: AtomicBool::new(false),
        })
    }

    /// Gives `frame` (a hot-swap answer and its closing zero) to the client, if one is
    /// connected, with the leading zero the line had.
    fn answer(&self, frame: &[u8]) {
        if let Some(client) = self.client.lock().unwrap().as_mut() {
            let _ = client
                .write_all(&[0])
                .and_then(|()| client.write_all(frame));
        }
    }

    /// Serves `socket` until [`Relay::stop`]: accepts one client at a time and copies what
    /// it sends into the line.
    fn serve(&self, socket: &Path) -> Result<()> {
        let _ = std::fs::remove_file(socket);
        let listener =
            UnixListener::bind(socket).with_context(|| format!("serving {}", socket.display()))?;
        listener.set_nonblocking(true)?;
        while !self.stop.load(Ordering::Relaxed) {
            let mut client = match listener.accept() {
                Ok((client, _)) => client,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(error) => return Err(error).context("accepting a control client"),
            };
            client.set_nonblocking(false)?;
            client.set_read_timeout(Some(Duration::from_millis(50)))?;
            *self.client.lock().unwrap() = Some(client.try_clone()?);
            let mut buffer = [0u8; 1024];
            while !self.stop.load(Ordering::Relaxed) {
                match client.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => {
                        let mut line = self.line.lock().unwrap();
                        if line
                            .write_all(&buffer[..read])
                            .and_then(|()| line.flush())
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => break,
                }
            }
            *self.client.lock().unwrap() = None;
        }
        let _ = std::fs::remove_file(socket);
        Ok(())
    }

    /// Ends [`Relay::serve`].
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
