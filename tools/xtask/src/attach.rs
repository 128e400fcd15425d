//! `cargo xtask attach`: `cargo xtask run`'s terminal side for a board that is not run by
//! QEMU (a physical Raspberry Pi on a USB serial adapter). It follows the board's serial line,
//! prints the console text and the decoded log frames as they come (with the image's
//! `debug.tar`), keeps the raw bytes (`target/xtask/logs/attach/serial.raw`, for `cargo xtask
//! decode`), and, when the system has hot-swap on and its control line is the log's, serves
//! the system's control socket so that `cargo xtask swap` reaches the board as it reaches a
//! QEMU run (docs/hot-swap.md).
//!
//! The line is a serial device (set to raw mode at the board's baud rate with `stty`) or a
//! Unix socket (QEMU's `-chardev socket`, which is how the system tests drive this command).

use crate::qemu::shared_line::{SerialSinks, serve_line};
use crate::swap::ControlLine;
use crate::{SystemArgs, paths, shown};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// `cargo xtask attach` options.
#[derive(clap::Args)]
pub struct AttachArgs {
    /// The board's serial line: a device (`/dev/ttyUSB0`) or a Unix socket.
    pub line: PathBuf,
    /// The manifest the board's image was built from (default: manifests/qemu-virt.toml):
    /// its `debug.tar` decodes the log, and its control socket is served.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The line's baud rate (a device only).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
}

/// The two ends of an opened line.
type Opened = (Box<dyn Read + Send>, Box<dyn Write + Send>);

/// Opens `line` for reading and writing: a Unix socket is connected to, a device is put in
/// raw mode at `baud` first.
fn open_line(line: &Path, baud: u32) -> Result<Opened> {
    let kind = std::fs::metadata(line)
        .with_context(|| format!("no serial line at {}", line.display()))?
        .file_type();
    if kind.is_socket() {
        let stream = crate::qemu::shared_line::connect(line)?;
        let writer = stream.try_clone()?;
        return Ok((Box::new(stream), Box::new(writer)));
    }
    if !kind.is_char_device() {
        bail!(
            "{} is neither a serial device nor a socket (for a capture, use cargo xtask decode)",
            line.display()
        );
    }
    let status = Command::new("stty")
        .arg("-F")
        .arg(line)
        .args([&baud.to_string(), "raw", "-echo"])
        .status()
        .context("running stty")?;
    if !status.success() {
        bail!("stty could not set {} to {baud} baud, raw", line.display());
    }
    let device = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(line)
        .with_context(|| format!("opening {}", line.display()))?;
    let writer = device.try_clone()?;
    Ok((Box::new(device), Box::new(writer)))
}

/// `cargo xtask attach`: follows the line until it ends (or Ctrl-C).
pub fn run(args: &AttachArgs) -> Result<i32> {
    let manifest = args
        .manifest
        .clone()
        .unwrap_or_else(crate::default_manifest);
    let name = crate::system_name(&manifest);
    let system = SystemArgs::without_images(&manifest).resolve()?;
    let archive = paths::xtask_out().join(&name).join("debug.tar");
    if !archive.exists() {
        bail!(
            "{} is missing: build the image first (cargo xtask build --manifest {})",
            shown(&archive),
            shown(&manifest)
        );
    }
    let control = ControlLine::of_run(&name);
    let decoder = crate::decode::decoder_from_archive(&archive, Some(control.swapped_dir()))?;
    let (reader, writer) = open_line(&args.line, args.baud)?;
    let serve_control = system.manifest.hot_swap && system.board.control_shares_log();
    if serve_control {
        eprintln!(
            "hot-swap: `cargo xtask swap <component> --manifest {}` in another terminal (control \
             line {})",
            shown(&manifest),
            shown(&control.socket)
        );
    }
    let log_dir = paths::xtask_out().join("logs").join("attach");
    std::fs::create_dir_all(&log_dir)?;
    let sinks = SerialSinks::new(
        Arc::new(Mutex::new(String::new())),
        Arc::new(Mutex::new(Vec::new())),
        true,
        true,
        false,
    );
    let result = serve_line(
        reader,
        writer,
        Some(log_dir.join("serial.raw")),
        &decoder,
        sinks,
        serve_control.then_some(control.socket.as_path()),
    );
    result.map(|()| 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_socket_is_a_line_and_a_capture_is_not() {
        let dir = std::env::temp_dir().join(format!("hv-attach-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("line.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let (mut reader, mut writer) = open_line(&socket, 115_200).unwrap();
        let (mut board, _) = listener.accept().unwrap();
        writer.write_all(b"frame").unwrap();
        let mut got = [0u8; 5];
        board.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"frame");
        board.write_all(b"log").unwrap();
        let mut got = [0u8; 3];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"log");

        let capture = dir.join("pi.log");
        std::fs::write(&capture, b"").unwrap();
        let error = open_line(&capture, 115_200).err().unwrap().to_string();
        assert!(error.contains("cargo xtask decode"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
