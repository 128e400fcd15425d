//! The log decoder follows the components' builds: small ELFs with defmt tables of their own
//! (raw encoding, no timestamp) stand for the kernel and two builds of one component.

use super::*;

/// Section header indices of [`defmt_elf`]'s sections.
const DEFMT_SECTION: u16 = 1;
const SHN_ABS: u16 = 0xfff1;

/// An AArch64 ELF with one loadable segment of `data` at `load`, and a `.defmt` section whose
/// symbols are `formats`: (index, tag, format string), as defmt's macros emit them.
fn defmt_elf(load: u64, data: &[u8], formats: &[(u64, &str, &str)]) -> Vec<u8> {
    // Symbols: the version and encoding (absolute), then one per format.
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    let mut symbol = |name: &str, section: u16, value: u64, info: u8| {
        let name_at = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        symtab.extend_from_slice(&name_at.to_le_bytes());
        symtab.push(info);
        symtab.push(0);
        symtab.extend_from_slice(&section.to_le_bytes());
        symtab.extend_from_slice(&value.to_le_bytes());
        symtab.extend_from_slice(&1u64.to_le_bytes());
    };
    // GLOBAL NOTYPE, GLOBAL OBJECT.
    symbol("_defmt_version_ = 4", SHN_ABS, 0, 0x10);
    symbol("_defmt_encoding_ = raw", SHN_ABS, 0, 0x10);
    for &(index, tag, format) in formats {
        let name = format!(
            r#"{{"package":"test","tag":"{tag}","data":"{format}","disambiguator":"{index}","crate_name":"test"}}"#
        );
        symbol(&name, DEFMT_SECTION, index, 0x11);
    }
    let defmt = vec![0u8; 16];
    let shstrtab = b"\0.defmt\0.symtab\0.strtab\0.shstrtab\0".to_vec();

    let data_at = 120u64;
    let defmt_at = data_at + data.len() as u64;
    let symtab_at = defmt_at + defmt.len() as u64;
    let strtab_at = symtab_at + symtab.len() as u64;
    let shstrtab_at = strtab_at + strtab.len() as u64;
    let headers_at = (shstrtab_at + shstrtab.len() as u64).next_multiple_of(8);

    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes());
    for value in [load, 64, headers_at] {
        elf.extend_from_slice(&value.to_le_bytes()); // entry, phoff, shoff
    }
    elf.extend_from_slice(&0u32.to_le_bytes());
    for value in [64u16, 56, 1, 64, 5, 4] {
        // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
        elf.extend_from_slice(&value.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R X
    for value in [data_at, load, load, data.len() as u64, data.len() as u64, 8] {
        elf.extend_from_slice(&value.to_le_bytes());
    }
    elf.extend_from_slice(data);
    elf.extend_from_slice(&defmt);
    elf.extend_from_slice(&symtab);
    elf.extend_from_slice(&strtab);
    elf.extend_from_slice(&shstrtab);
    elf.resize(headers_at as usize, 0);
    // name, type, flags, addr, offset, size, link, info, align, entsize
    let mut section =
        |name: u32, kind: u32, offset: u64, size: u64, link: u32, info: u32, entsize: u64| {
            elf.extend_from_slice(&name.to_le_bytes());
            elf.extend_from_slice(&kind.to_le_bytes());
            for value in [0u64, 0, offset, size] {
                elf.extend_from_slice(&value.to_le_bytes());
            }
            elf.extend_from_slice(&link.to_le_bytes());
            elf.extend_from_slice(&info.to_le_bytes());
            elf.extend_from_slice(&1u64.to_le_bytes());
            elf.extend_from_slice(&entsize.to_le_bytes());
        };
    section(0, 0, 0, 0, 0, 0, 0);
    section(1, 1, defmt_at, defmt.len() as u64, 0, 0, 0); // .defmt, PROGBITS
    section(8, 2, symtab_at, symtab.len() as u64, 3, 1, 24); // .symtab -> .strtab
    section(16, 3, strtab_at, strtab.len() as u64, 0, 0, 0);
    section(24, 3, shstrtab_at, shstrtab.len() as u64, 0, 0, 0);
    elf
}

const COMPONENT_LOG: u16 = 1;
const RUNS_BUILD: u16 = 2;

fn kernel_elf() -> Vec<u8> {
    defmt_elf(
        0x4000_0000,
        &[1; 32],
        &[
            (
                COMPONENT_LOG.into(),
                "defmt_info",
                "component-log {=usize} {=[u8]}",
            ),
            (
                RUNS_BUILD.into(),
                "defmt_info",
                "component {=str} (index {=usize}) runs build {=u64:#x}",
            ),
        ],
    )
}

/// A build of the component: its image's bytes differ with `marker`, and its one log line
/// (index 1) names it.
fn component_elf(marker: u8) -> Vec<u8> {
    let line = format!("hello from build {}", marker as char);
    defmt_elf(0x4040_0000, &[marker; 64], &[(1, "defmt_info", &line)])
}

/// The kernel's frame forwarding the component's frame for its line 1.
fn component_log(index: u32) -> Vec<u8> {
    let mut frame = COMPONENT_LOG.to_le_bytes().to_vec();
    frame.extend_from_slice(&index.to_le_bytes());
    frame.extend_from_slice(&2u32.to_le_bytes());
    frame.extend_from_slice(&1u16.to_le_bytes());
    frame
}

/// The kernel's frame saying component `index` runs `build`.
fn runs(name: &str, index: u32, build: u64) -> Vec<u8> {
    let mut frame = RUNS_BUILD.to_le_bytes().to_vec();
    frame.extend_from_slice(&(name.len() as u32).to_le_bytes());
    frame.extend_from_slice(name.as_bytes());
    frame.extend_from_slice(&index.to_le_bytes());
    frame.extend_from_slice(&build.to_le_bytes());
    frame
}

/// The lines `decoder` makes of the kernel's `frames`, as a run follows its log file.
fn follow(decoder: &LogDecoder, dir: &Path, frames: &[Vec<u8>]) -> Vec<String> {
    let path = dir.join("hv-log.defmt");
    std::fs::write(&path, frames.concat()).unwrap();
    let mut lines = Vec::new();
    decoder.follow(&path, &Mutex::new(true), |line| lines.push(line));
    lines
}

fn build_of(elf: &[u8]) -> u64 {
    hv_ipc::swap::build_id(&crate::elf::to_flat(elf).unwrap().bytes)
}

#[test]
fn a_runs_build_line_is_parsed() {
    assert_eq!(
        runs_build("component vm-manager (index 1) runs build 0x1f2e3d4c5b6a7988"),
        Some((1, 0x1f2e_3d4c_5b6a_7988))
    );
    assert_eq!(
        runs_build("component a (index 2) b (index 0) runs build 0xff"),
        Some((0, 0xff))
    );
    assert_eq!(runs_build("component-log 1 [1, 0]"), None);
    assert_eq!(runs_build("component x (index one) runs build 0x1"), None);
    assert_eq!(runs_build("component x (index 1) runs build 0xno"), None);
}

#[test]
fn component_frames_are_decoded_with_the_build_that_runs() {
    let dir = std::env::temp_dir().join(format!("xtask-log-builds-{}", std::process::id()));
    let swapped = dir.join("swapped");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&swapped).unwrap();
    let (a, b) = (component_elf(b'A'), component_elf(b'B'));
    let (build_a, build_b) = (build_of(&a), build_of(&b));
    assert_ne!(build_a, build_b);
    let decoder = LogDecoder::from_elfs(
        &kernel_elf(),
        vec![
            ("supervisor".into(), None),
            ("vm-manager".into(), Some(a.clone())),
        ],
        Some(swapped.clone()),
    )
    .unwrap();

    // At boot: the image's build, named or not.
    let lines = follow(
        &decoder,
        &dir,
        &[
            component_log(1),
            runs("vm-manager", 1, build_a),
            component_log(1),
            component_log(0),
        ],
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], " INFO  [vm-manager] hello from build A");
    assert_eq!(
        lines[1],
        format!(" INFO  component vm-manager (index 1) runs build {build_a:#x}")
    );
    assert_eq!(lines[2], lines[0]);
    // No ELF at all for this one: its bytes, never a panic.
    assert_eq!(
        lines[3],
        " [supervisor] (no defmt table to decode 2 bytes: 01 00)"
    );

    // A build nobody kept an ELF of: a note, then the frames as bytes.
    let lines = follow(
        &decoder,
        &dir,
        &[runs("vm-manager", 1, build_b), component_log(1)],
    );
    assert!(
        lines[0].ends_with(&format!(
            "runs build {build_b:#x} [no ELF of this build among the image's (nor in {}): \
             vm-manager's frames are shown as bytes]",
            swapped.display()
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        format!(" [vm-manager] (no defmt table of build {build_b:#x} to decode 2 bytes: 01 00)")
    );

    // `cargo xtask swap` keeps the ELF during the run: the next line naming the build finds it.
    std::fs::write(crate::swap::swapped_elf(&swapped, build_b), &b).unwrap();
    let lines = follow(
        &decoder,
        &dir,
        &[
            runs("vm-manager", 1, build_b),
            component_log(1),
            // A rollback reloads the image's build.
            runs("vm-manager", 1, build_a),
            component_log(1),
        ],
    );
    assert_eq!(
        lines[0],
        format!(" INFO  component vm-manager (index 1) runs build {build_b:#x}")
    );
    assert_eq!(lines[1], " INFO  [vm-manager] hello from build B");
    assert_eq!(lines[3], " INFO  [vm-manager] hello from build A");

    // An index past the components is an ordinary line.
    let lines = follow(&decoder, &dir, &[runs("ghost", 9, 1)]);
    assert_eq!(
        lines,
        [" INFO  component ghost (index 9) runs build 0x1".to_owned()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
