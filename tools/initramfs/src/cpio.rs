//! A writer for the cpio "newc" archive format, the format Linux unpacks as an initramfs.
//!
//! The format is described in the kernel's
//! [`Documentation/driver-api/early-userspace/buffer-format.rst`](https://docs.kernel.org/driver-api/early-userspace/buffer-format.html):
//! each entry is a 110-byte ASCII header (magic `070701` and 13 fields of 8 hex digits), the
//! NUL-terminated name padded so header plus name is a multiple of 4 bytes, then the data padded
//! to a multiple of 4. The archive ends with an entry named `TRAILER!!!`.
//!
//! Owners are root and every mtime is 0, so the same inputs always give the same bytes.

use std::collections::BTreeSet;
use std::io::{self, Write};

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
/// Permission, setuid/setgid and sticky bits; the file type comes from the method called.
const PERMISSION_BITS: u32 = 0o7777;

/// Streams a newc archive to `W`, one entry per call, and remembers the paths already written so
/// it can refuse duplicates (the kernel would silently let the later entry win).
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    paths: BTreeSet<String>,
}

/// What one header describes, apart from the name and data that follow it.
struct Entry {
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            next_ino: 1,
            paths: BTreeSet::new(),
        }
    }

    /// Adds a directory; `mode` holds the permission bits (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        let entry = Entry {
            mode: S_IFDIR | (mode & PERMISSION_BITS),
            nlink: 2,
            rdev: (0, 0),
        };
        self.entry(path, entry, &[])
    }

    /// Adds a regular file holding `data`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        let entry = Entry {
            mode: S_IFREG | (mode & PERMISSION_BITS),
            nlink: 1,
            rdev: (0, 0),
        };
        self.entry(path, entry, data)
    }

    /// Adds a symbolic link; newc stores the target as the entry's data, without a NUL.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        if target.is_empty() || target.contains('\0') {
            return Err(invalid(format!(
                "symlink {path:?} has an empty target or one containing NUL"
            )));
        }
        let entry = Entry {
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
        };
        self.entry(path, entry, target.as_bytes())
    }

    /// Adds a character device node with the given device numbers.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        let entry = Entry {
            mode: S_IFCHR | (mode & PERMISSION_BITS),
            nlink: 1,
            rdev: (major, minor),
        };
        self.entry(path, entry, &[])
    }

    /// Writes the closing `TRAILER!!!` entry and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        let trailer = Entry {
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
        };
        self.write_entry(0, TRAILER, &trailer, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, entry: Entry, data: &[u8]) -> io::Result<()> {
        check_path(path)?;
        if self.paths.contains(path) {
            return Err(invalid(format!("{path:?} is already in the archive")));
        }
        let ino = self.next_ino;
        self.next_ino = ino
            .checked_add(1)
            .ok_or_else(|| invalid("too many entries for 32-bit inode numbers".into()))?;
        self.write_entry(ino, path, &entry, data)?;
        self.paths.insert(path.to_owned());
        Ok(())
    }

    fn write_entry(&mut self, ino: u32, name: &str, entry: &Entry, data: &[u8]) -> io::Result<()> {
        let name_size = name.len() + 1;
        let filesize = u32::try_from(data.len())
            .map_err(|_| invalid(format!("{name:?} is larger than newc's 4 GiB limit")))?;
        let namesize =
            u32::try_from(name_size).map_err(|_| invalid(format!("name {name:?} is too long")))?;
        let fields = [
            ino,
            entry.mode,
            0, // uid
            0, // gid
            entry.nlink,
            0, // mtime
            filesize,
            0, // devmajor
            0, // devminor
            entry.rdev.0,
            entry.rdev.1,
            namesize,
            0, // check: only the "crc" variant (070702) uses it
        ];
        let mut header = Vec::with_capacity(HEADER_LEN + name_size + 3);
        header.extend_from_slice(MAGIC);
        for field in fields {
            header.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        header.extend_from_slice(name.as_bytes());
        header.push(0);
        header.resize(header.len() + padding(header.len()), 0);
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0; 3][..padding(data.len())])
    }
}

/// Bytes of zeros that bring `len` up to the next multiple of 4.
fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

fn check_path(path: &str) -> io::Result<()> {
    if path.is_empty() {
        Err(invalid("empty path".into()))
    } else if path.contains('\0') {
        Err(invalid(format!("path {path:?} contains NUL")))
    } else if path.starts_with('/') {
        Err(invalid(format!(
            "path {path:?} must be relative to the archive root"
        )))
    } else if path == TRAILER {
        // An entry with this name would end the archive early for every reader.
        Err(invalid(format!(
            "{TRAILER} is reserved for the end of the archive"
        )))
    } else {
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One entry read back from an archive.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Parsed {
        pub ino: u32,
        pub mode: u32,
        pub nlink: u32,
        pub rdev: (u32, u32),
        pub name: String,
        pub data: Vec<u8>,
    }

    /// A strict newc reader: checks magic, alignment, the NUL after names, zero padding and the
    /// trailer, so a writer bug shows up here rather than as a confused kernel.
    pub(crate) fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let total = bytes.len();
        let mut entries = Vec::new();
        loop {
            assert_eq!((total - bytes.len()) % 4, 0, "entry not 4-aligned");
            assert_eq!(&bytes[..6], MAGIC);
            let field = |i: usize| {
                let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            let (filesize, namesize) = (field(6) as usize, field(11) as usize);
            let name_end = HEADER_LEN + namesize;
            assert_eq!(bytes[name_end - 1], 0, "name not NUL-terminated");
            let name = std::str::from_utf8(&bytes[HEADER_LEN..name_end - 1]).unwrap();
            let data_start = name_end + padding(name_end);
            let data_end = data_start + filesize;
            assert!(bytes[name_end..data_start].iter().all(|&b| b == 0));
            let next = data_end + padding(filesize);
            assert!(bytes[data_end..next].iter().all(|&b| b == 0));
            assert_eq!((field(2), field(3), field(5), field(12)), (0, 0, 0, 0));
            if name == TRAILER {
                assert_eq!(next, bytes.len(), "bytes after the trailer");
                return entries;
            }
            entries.push(Parsed {
                ino: field(0),
                mode: field(1),
                nlink: field(4),
                rdev: (field(9), field(10)),
                name: name.to_owned(),
                data: bytes[data_start..data_end].to_vec(),
            });
            bytes = &bytes[next..];
        }
    }

    fn sample() -> Vec<u8> {
        let mut cpio = CpioWriter::new(Vec::new());
        cpio.dir("etc", 0o755).unwrap();
        cpio.file("etc/motd", 0o644, b"hello\n").unwrap();
        cpio.symlink("etc/greeting", "motd").unwrap();
        cpio.char_device("console", 0o600, 5, 1).unwrap();
        cpio.finish().unwrap()
    }

    #[test]
    fn tiny_archive_has_exact_bytes() {
        let mut cpio = CpioWriter::new(Vec::new());
        cpio.file("a", 0o644, b"xy").unwrap();
        let bytes = cpio.finish().unwrap();
        // Fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize, check.
        #[rustfmt::skip]
        let expected = concat!(
            "070701", "00000001", "000081A4", "00000000", "00000000", "00000001", "00000000",
            "00000002", "00000000", "00000000", "00000000", "00000000", "00000002", "00000000",
            "a\0", "xy\0\0",
            "070701", "00000000", "00000000", "00000000", "00000000", "00000001", "00000000",
            "00000000", "00000000", "00000000", "00000000", "00000000", "0000000B", "00000000",
            "TRAILER!!!\0", "\0\0\0",
        );
        // 110-byte header + "a\0" = 112, already aligned; "xy" pads to 4; the trailer's
        // 110 + 11 = 121 pads to 124.
        assert_eq!(bytes.len(), 112 + 4 + 124);
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn round_trips_through_a_parser() {
        let entries = parse(&sample());
        let summary: Vec<_> = entries
            .iter()
            .map(|e| {
                (
                    e.ino,
                    e.name.as_str(),
                    e.mode,
                    e.nlink,
                    e.rdev,
                    e.data.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "etc", 0o040_755, 2, (0, 0), &b""[..]),
                (2, "etc/motd", 0o100_644, 1, (0, 0), b"hello\n"),
                (3, "etc/greeting", 0o120_777, 1, (0, 0), b"motd"),
                (4, "console", 0o020_600, 1, (5, 1), b""),
            ]
        );
    }

    #[test]
    fn refuses_bad_names_without_writing() {
        let mut cpio = CpioWriter::new(Vec::new());
        cpio.file("x", 0o644, b"").unwrap();
        for bad in ["", "a\0b", "/abs", "x", TRAILER] {
            let err = cpio.file(bad, 0o644, b"").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(cpio.symlink("l", "").is_err());
        let bytes = cpio.finish().unwrap();
        assert_eq!(parse(&bytes).len(), 1);
    }

    #[test]
    fn extracts_with_gnu_cpio() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        use std::process::{Command, Stdio};

        if Command::new("cpio").arg("--version").output().is_err() {
            eprintln!("skipping: no `cpio` command on this machine (apt-get install cpio)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("hv-initramfs-cpio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("cpio")
            .args(["-idmv", "--no-absolute-filenames"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&sample()).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cpio failed: {stderr}");

        let mode = |p: &str| {
            std::fs::symlink_metadata(dir.join(p))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(std::fs::read(dir.join("etc/motd")).unwrap(), b"hello\n");
        assert_eq!(mode("etc/motd") & 0o7777, 0o644);
        assert_eq!(mode("etc") & 0o7777, 0o755);
        let link = std::fs::read_link(dir.join("etc/greeting")).unwrap();
        assert_eq!(link.to_str(), Some("motd"));
        // Creating device nodes needs CAP_MKNOD; without it cpio reports the node and moves on.
        let console = std::fs::symlink_metadata(dir.join("console"));
        match console {
            Ok(meta) => assert!(meta.file_type().is_char_device()),
            Err(_) => assert!(stderr.contains("console"), "cpio skipped console: {stderr}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
