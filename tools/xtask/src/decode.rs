//! `cargo xtask decode`: a serial capture from a board (or QEMU's raspi4b) with the
//! hypervisor's and the components' defmt frames decoded and the console text kept, using the
//! ELFs of the image's `debug.tar`. A Raspberry Pi's mini-UART carries both on one wire
//! (docs/boards/rpi4.md).

use crate::qemu::LogDecoder;
use crate::serial_log::{Demux, Piece};
use anyhow::{Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `cargo xtask decode` options.
#[derive(clap::Args)]
pub struct DecodeArgs {
    /// The image's debug archive (`target/xtask/<system>/debug.tar`): the kernel's and every
    /// component's ELF.
    #[arg(long)]
    pub elfs: PathBuf,
    /// The raw capture (e.g. `cat /dev/ttyUSB0 > pi.log`), or a serial device to follow.
    pub log: PathBuf,
    /// A run's `swapped/` folder: the ELFs of builds swapped in (`<build id>.elf`), for the
    /// components' frames after a swap.
    #[arg(long)]
    pub swapped: Option<PathBuf>,
}

/// Reads the kernel's and the components' ELFs (in id order, `components.txt`) from a debug
/// archive; builds swapped in later are looked for in `swapped` (`<build id>.elf`).
pub fn decoder_from_archive(path: &Path, swapped: Option<PathBuf>) -> Result<LogDecoder> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        files.insert(name, bytes);
    }
    let kernel = files
        .get("hv-kernel.elf")
        .with_context(|| format!("{} has no hv-kernel.elf", path.display()))?;
    let order = files
        .get("components.txt")
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .with_context(|| {
            format!(
                "{} has no components.txt (an archive from before `decode`: rebuild the image)",
                path.display()
            )
        })?;
    let components = order
        .lines()
        .map(|name| {
            let elf = files.get(&format!("components/{name}.elf")).cloned();
            (name.to_owned(), elf)
        })
        .collect();
    LogDecoder::from_elfs(kernel, components, swapped)
}

/// Turns pieces into output lines: console text line by line as it was, each frame on a line
/// of its own marked `[hv]`. `partial` holds console text not yet ended by a line feed.
pub fn render(pieces: Vec<Piece>, partial: &mut String, mut line: impl FnMut(String)) {
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                partial.push_str(&text);
                while let Some(end) = partial.find('\n') {
                    let rest = partial.split_off(end + 1);
                    let done = std::mem::replace(partial, rest);
                    line(done.trim_end_matches(['\r', '\n']).to_owned());
                }
            }
            Piece::Frame(frame) => {
                if !partial.is_empty() {
                    line(std::mem::take(partial).trim_end_matches('\r').to_owned());
                }
                line(format!("[hv] {frame}"));
            }
            Piece::Malformed(len) => line(format!("[hv] (malformed frame, {len} bytes)")),
            Piece::Control(frame) => line(format!("[swap] answer ({} bytes)", frame.len())),
        }
    }
}

/// Decodes a whole capture into lines.
pub fn decode_capture(decoder: &LogDecoder, bytes: &[u8]) -> Vec<String> {
    let mut demux = Demux::new();
    let decode = |candidate: &[u8]| decoder.decode_frame(candidate);
    let mut pieces = demux.push(bytes, &decode);
    pieces.extend(demux.finish());
    let (mut lines, mut partial) = (Vec::new(), String::new());
    render(pieces, &mut partial, |line| lines.push(line));
    if !partial.is_empty() {
        lines.push(partial);
    }
    lines
}

/// `cargo xtask decode`: prints the capture decoded. A serial device (or any file that is
/// not a regular file) is followed until it ends or the user interrupts.
pub fn run(args: &DecodeArgs) -> Result<()> {
    let decoder = decoder_from_archive(&args.elfs, args.swapped.clone())?;
    let regular = std::fs::metadata(&args.log)
        .with_context(|| format!("reading {}", args.log.display()))?
        .is_file();
    if regular {
        let bytes = std::fs::read(&args.log)?;
        for line in decode_capture(&decoder, &bytes) {
            println!("{line}");
        }
        return Ok(());
    }
    let mut device = std::fs::File::open(&args.log)?;
    let (mut demux, mut partial) = (Demux::new(), String::new());
    let decode = |candidate: &[u8]| decoder.decode_frame(candidate);
    let mut buffer = [0u8; 4096];
    loop {
        let read = device.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        let mut pieces = demux.push(&buffer[..read], &decode);
        // A live console shows its complete lines now, not at the next frame.
        pieces.extend(demux.take_settled_text().map(Piece::Text));
        render(pieces, &mut partial, |line| println!("{line}"));
    }
    render(demux.finish(), &mut partial, |line| println!("{line}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_line_by_line_and_frames_get_lines_of_their_own() {
        let mut lines = Vec::new();
        let mut partial = String::new();
        render(
            vec![
                Piece::Text("login: ro".into()),
                Piece::Frame("0.1 INFO  cpu1 up".into()),
                Piece::Text("ot\r\n# ".into()),
                Piece::Malformed(12),
            ],
            &mut partial,
            |line| lines.push(line),
        );
        assert_eq!(
            lines,
            [
                "login: ro",
                "[hv] 0.1 INFO  cpu1 up",
                "ot",
                "[hv] (malformed frame, 12 bytes)"
            ]
        );
        assert_eq!(partial, "# ");
    }
}
