//! Builds the initramfs that `cargo xtask run` hands to the guest Linux kernel: a static busybox,
//! the few directories and device nodes early userspace needs, and an `/init` script that prints
//! `HV-INIT:` marker lines on the console for tests to match, then powers off or opens a shell.

pub mod cpio;

use std::fmt;
use std::io;

use cpio::CpioWriter;

/// `e_machine` of AArch64 ELF files.
const EM_AARCH64: u16 = 183;

/// The applets `/init` calls by name, linked next to busybox so the script reads like plain shell.
const BIN_APPLETS: &[&str] = &[
    "sh", "cat", "grep", "mount", "uname", "sync", "setsid", "cttyhack", "dd", "md5sum", "awk",
    "sleep",
];
const SBIN_APPLETS: &[&str] = &["poweroff", "reboot"];

/// Choices that change what `/init` does; the default is the plain boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// Shell commands run in `hv.init=test` mode before `HV-INIT: done`, in order. Each runs in
    /// its own `sh -c`, so a mistake in one cannot break `/init` itself (which would panic the
    /// kernel); it is announced by `HV-INIT: extra: <command>`, its output goes to the console,
    /// and `HV-INIT: extra exit=<status>` follows.
    pub extra_commands: Vec<String>,
}

/// Why no initramfs could be built.
#[derive(Debug)]
pub enum Error {
    /// The busybox input is shorter than an ELF header or lacks the `\x7fELF` magic.
    NotElf,
    /// The busybox input is an ELF file, but not a 64-bit little-endian AArch64 one, so the
    /// guest kernel could not run it. The fields are the raw header values.
    NotAarch64 { class: u8, data: u8, machine: u16 },
    /// An extra command is empty or contains NUL, which cannot be put in a shell script.
    InvalidCommand(String),
    /// The cpio writer refused an entry or failed to write.
    Archive(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotElf => write!(f, "busybox binary is not an ELF file"),
            Error::NotAarch64 {
                class,
                data,
                machine,
            } => write!(
                f,
                "busybox binary is not a 64-bit little-endian AArch64 ELF \
                 (class {class}, data {data}, machine {machine}; want 2, 1, {EM_AARCH64})"
            ),
            Error::InvalidCommand(command) => {
                write!(f, "extra init command {command:?} is empty or contains NUL")
            }
            Error::Archive(err) => write!(f, "cannot write the initramfs archive: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Archive(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Archive(err)
    }
}

/// Builds a newc initramfs around `busybox_elf` (a static AArch64 busybox, such as the one in
/// Debian's `busybox-static`) with an `/init` shaped by `options`.
pub fn busybox_initramfs(busybox_elf: &[u8], options: &InitOptions) -> Result<Vec<u8>, Error> {
    check_aarch64_elf(busybox_elf)?;
    let script = init_script(options)?;

    let mut cpio = CpioWriter::new(Vec::new());
    for dir in ["bin", "sbin", "dev", "etc", "proc", "root", "sys", "tmp"] {
        cpio.dir(dir, 0o755)?;
    }
    // The kernel opens /dev/console for init's stdin/stdout/stderr before any devtmpfs exists,
    // and /init redirects to /dev/null before mounting one.
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.char_device("dev/null", 0o666, 1, 3)?;
    cpio.file("bin/busybox", 0o755, busybox_elf)?;
    for applet in BIN_APPLETS {
        cpio.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    for applet in SBIN_APPLETS {
        cpio.symlink(&format!("sbin/{applet}"), "../bin/busybox")?;
    }
    cpio.file("init", 0o755, script.as_bytes())?;
    Ok(cpio.finish()?)
}

fn check_aarch64_elf(elf: &[u8]) -> Result<(), Error> {
    // e_ident (16 bytes), e_type (2), e_machine (2).
    let Some(header) = elf.get(..20) else {
        return Err(Error::NotElf);
    };
    if header[..4] != *b"\x7fELF" {
        return Err(Error::NotElf);
    }
    let (class, data) = (header[4], header[5]);
    let machine = match data {
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => u16::from_le_bytes([header[18], header[19]]),
    };
    // ELFCLASS64 and ELFDATA2LSB: what an arm64 Linux kernel runs.
    if (class, data, machine) != (2, 1, EM_AARCH64) {
        return Err(Error::NotAarch64 {
            class,
            data,
            machine,
        });
    }
    Ok(())
}

const INIT_HEAD: &str = r#"#!/bin/sh
# /init of the hv-initramfs busybox initramfs. If this script exits, the kernel panics, so
# every path ends in poweroff.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Quiet: the kernel may have mounted devtmpfs already (CONFIG_DEVTMPFS_MOUNT).
mount -t devtmpfs devtmpfs /dev 2>/dev/null

echo "HV-INIT: userspace up"
echo "HV-INIT: cpus online=$(grep -c '^processor' /proc/cpuinfo)"
echo "HV-INIT: kernel $(uname -r)"

mode=shell
wait_console=no
hold=
then=poweroff
show_iomem=no
for word in $(cat /proc/cmdline); do
    case "$word" in
        hv.init=test) mode=test ;;
        hv.init=shell) mode=shell ;;
        hv.wait=console) wait_console=yes ;;
        hv.hold=*) hold=${word#hv.hold=} ;;
        hv.then=reboot) then=reboot ;;
        hv.show=iomem) show_iomem=yes ;;
    esac
done

if [ "$mode" = test ]; then
    # A workload: 16 MiB through md5sum (the digest of zeros is fixed).
    echo "HV-INIT: workload $(dd if=/dev/zero bs=64k count=256 2>/dev/null | md5sum)"
    # Interrupts that counted: the per-CPU columns of the timer's, the UART's and the IPIs' lines.
    awk '/arch_timer|pl011|IPI/ { n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; name = ($1 ~ /^IPI/) ? $1 : $NF; print "HV-INIT: interrupts " name " " n }' /proc/interrupts
    # The physical memory map, e.g. to show which devices a pKVM guest declared.
    if [ "$show_iomem" = yes ]; then
        awk '{ print "HV-INIT: iomem " $0 }' /proc/iomem
    fi
"#;

const INIT_TAIL: &str = r#"    if [ -n "$hold" ]; then
        # Held for a while (a test harness acts meanwhile, e.g. swaps a component), where a
        # console line cannot be typed (the Pi's PL011 belongs to its Bluetooth on QEMU).
        echo "HV-INIT: holding for $hold s"
        sleep "$hold"
    fi
    if [ "$wait_console" = yes ]; then
        # Held until a line comes on the console (a test harness ends the run when it chooses).
        echo "HV-INIT: waiting for a line on the console"
        read -r line
    fi
    echo "HV-INIT: done"
    sync
    if [ "$then" = reboot ]; then
        reboot -f
    fi
    poweroff -f
fi

echo "HV-INIT: interactive shell; 'poweroff -f' or exit to power off"
# cttyhack gives the shell a real controlling tty so job control and ^C work; a busybox built
# without it still gets a (job-control-less) shell.
if busybox --list | grep -qx cttyhack && busybox --list | grep -qx setsid; then
    setsid cttyhack sh
else
    sh
fi
sync
poweroff -f
"#;

/// The `/init` script: fixed markers and mode switch, plus the caller's extra commands.
fn init_script(options: &InitOptions) -> Result<String, Error> {
    let mut script = String::from(INIT_HEAD);
    for command in &options.extra_commands {
        if command.trim().is_empty() || command.contains('\0') {
            return Err(Error::InvalidCommand(command.clone()));
        }
        let quoted = shell_quote(command);
        script.push_str(&format!(
            "    echo HV-INIT: extra: {quoted}\n    sh -c {quoted}\n    \
             echo \"HV-INIT: extra exit=$?\"\n"
        ));
    }
    script.push_str(INIT_TAIL);
    Ok(script)
}

/// Single-quotes `text` for sh, so it reaches `echo` and `sh -c` unexpanded.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpio::tests::parse;

    /// The smallest header `check_aarch64_elf` accepts, standing in for a real busybox.
    fn fake_busybox() -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        elf
    }

    #[test]
    fn archive_holds_busybox_links_devices_and_init() {
        let archive = busybox_initramfs(&fake_busybox(), &InitOptions::default()).unwrap();
        let entries = parse(&archive);
        let find = |name: &str| {
            entries
                .iter()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        for dir in ["dev", "proc", "sys", "tmp", "root", "etc", "bin", "sbin"] {
            assert_eq!(find(dir).mode, 0o040_755, "{dir}");
        }
        assert_eq!(find("bin/busybox").mode, 0o100_755);
        assert_eq!(find("bin/busybox").data, fake_busybox());
        assert_eq!(find("bin/sh").mode, 0o120_777);
        assert_eq!(find("bin/sh").data, b"busybox");
        assert_eq!(find("sbin/poweroff").data, b"../bin/busybox");
        assert_eq!(
            (find("dev/console").mode, find("dev/console").rdev),
            (0o020_600, (5, 1))
        );
        let init = find("init");
        assert_eq!(init.mode, 0o100_755);
        assert!(init.data.starts_with(b"#!/bin/sh\n"));
        // Reproducible: the same inputs give the same bytes.
        assert_eq!(
            archive,
            busybox_initramfs(&fake_busybox(), &InitOptions::default()).unwrap()
        );
    }

    #[test]
    fn init_script_prints_the_markers() {
        let script = init_script(&InitOptions::default()).unwrap();
        for marker in [
            "echo \"HV-INIT: userspace up\"",
            "echo \"HV-INIT: cpus online=$(grep -c '^processor' /proc/cpuinfo)\"",
            "echo \"HV-INIT: kernel $(uname -r)\"",
            "echo \"HV-INIT: done\"",
            "echo \"HV-INIT: interactive shell; 'poweroff -f' or exit to power off\"",
            "hv.init=test) mode=test",
            "hv.wait=console) wait_console=yes",
            "hv.hold=*) hold=${word#hv.hold=}",
            "echo \"HV-INIT: holding for $hold s\"",
            "sleep \"$hold\"",
            "hv.then=reboot) then=reboot",
            "hv.show=iomem) show_iomem=yes",
            "print \"HV-INIT: iomem \" $0",
            "echo \"HV-INIT: workload $(dd if=/dev/zero bs=64k count=256 2>/dev/null | md5sum)\"",
            "print \"HV-INIT: interrupts \" name \" \" n",
            "read -r line",
            "reboot -f",
            "setsid cttyhack sh",
            "poweroff -f",
        ] {
            assert!(script.contains(marker), "missing {marker:?}");
        }
        // Every applet the script relies on by name is linked.
        for applet in [
            "mount", "grep", "uname", "cat", "sync", "poweroff", "setsid", "dd", "md5sum", "awk",
            "reboot", "sleep",
        ] {
            assert!(BIN_APPLETS.contains(&applet) || SBIN_APPLETS.contains(&applet));
        }
    }

    #[test]
    fn extra_commands_run_quoted_before_done() {
        let options = InitOptions {
            extra_commands: vec!["echo 'it''s' | cat".into(), "ls /dev".into()],
        };
        let script = init_script(&options).unwrap();
        let quoted = r#"'echo '\''it'\'''\''s'\'' | cat'"#;
        let first = script.find(&format!("sh -c {quoted}")).unwrap();
        let second = script.find("sh -c 'ls /dev'").unwrap();
        let done = script.find("HV-INIT: done").unwrap();
        assert!(first < second && second < done);
        assert!(script.contains("echo HV-INIT: extra: 'ls /dev'"));
        let bad = InitOptions {
            extra_commands: vec![" ".into()],
        };
        assert!(matches!(init_script(&bad), Err(Error::InvalidCommand(_))));
    }

    #[test]
    fn script_is_valid_sh() {
        use std::process::Command;
        let options = InitOptions {
            extra_commands: vec!["echo \"$HOME\" 'x'".into()],
        };
        let script = init_script(&options).unwrap();
        // `sh -n` parses without running; skip where there is no host shell.
        match Command::new("sh").args(["-n", "-c", &script]).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => eprintln!("skipping: no host sh ({err})"),
        }
    }

    #[test]
    fn refuses_inputs_that_are_not_aarch64_elf() {
        let options = InitOptions::default();
        assert!(matches!(
            busybox_initramfs(b"", &options),
            Err(Error::NotElf)
        ));
        assert!(matches!(
            busybox_initramfs(b"#!/bin/sh\n", &options),
            Err(Error::NotElf)
        ));
        let mut x86 = fake_busybox();
        x86[18..20].copy_from_slice(&62u16.to_le_bytes());
        let err = busybox_initramfs(&x86, &options).unwrap_err();
        assert!(matches!(err, Error::NotAarch64 { machine: 62, .. }));
        assert!(err.to_string().contains("machine 62"));
        let mut big_endian = fake_busybox();
        big_endian[5] = 2;
        big_endian[18..20].copy_from_slice(&EM_AARCH64.to_be_bytes());
        assert!(matches!(
            busybox_initramfs(&big_endian, &options),
            Err(Error::NotAarch64 {
                data: 2,
                machine: EM_AARCH64,
                ..
            })
        ));
    }
}
