// The MMIO guard's build-time VM table: parsing `HV_MMIO_GUARD_VMS` and writing it out as Rust.
//
// This file is shared: `build.rs` pulls it in with `include!("src/vm_table.rs")` to turn the
// setting into `$OUT_DIR/mmio_guard_vms.rs` (which `policy.rs` includes), and `main.rs` compiles
// it as a module under `cfg(test)` so that the parser is tested on the host. (Plain `//`
// comments because an `include!`d file cannot carry inner doc comments.)
//
// The setting lists the VMs the guard serves, separated by commas (blank entries are skipped):
//
//     <vmid>:<ram start>:<ram end>:<mode>
//
// - `vmid`: the VM's id, decimal, below `TABLE_MAX_VMS` (the kernel's host VM is 0);
// - `ram start`, `ram end`: the VM's RAM as IPAs, hexadecimal with a `0x` prefix (`_` allowed),
//   4 KiB aligned, end exclusive, at most 1 << 48. Start = end means "no RAM known": every
//   granule may then be declared as MMIO;
// - `mode`: `off` (not offered: the hypercalls answer NOT_SUPPORTED and every access is
//   emulated), `optional` (offered: once the VM enrols, only the MMIO it mapped is emulated) or
//   `enforced` (the VM counts as enrolled from its first instruction and cannot leave).
//
// Example: `0:0x40000000:0x80000000:optional,1:0x80000000:0x88000000:enforced`.

/// VM ids are below this. Mirrors `policy::MAX_VMS`; `policy.rs` checks the generated table
/// against its own limits at compile time, so the two cannot drift apart unnoticed.
const TABLE_MAX_VMS: u16 = 4;
/// RAM bounds are multiples of this (the protection granule).
const TABLE_GRANULE: u64 = 4096;
/// RAM ends at or below this (a 48-bit IPA space).
const TABLE_IPA_LIMIT: u64 = 1 << 48;

/// One VM of the table, as parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VmEntry {
    /// The VM's id.
    vm: u16,
    /// First byte of its RAM.
    ram_start: u64,
    /// First byte past its RAM.
    ram_end: u64,
    /// Its mode, as the name of a `policy::Mode` variant.
    mode: &'static str,
}

/// The table used when the setting is unset or empty: VM 0, no RAM known, mode optional. Only
/// meant for host builds and tests; `cargo xtask` always passes the manifest's table.
fn default_vm_table() -> Vec<VmEntry> {
    vec![VmEntry {
        vm: 0,
        ram_start: 0,
        ram_end: 0,
        mode: "Optional",
    }]
}

/// Parses the whole setting; the error says which entry is wrong and why.
fn parse_vm_table(text: &str) -> Result<Vec<VmEntry>, String> {
    let mut entries: Vec<VmEntry> = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let entry = parse_vm_entry(item).map_err(|error| format!("entry {item:?}: {error}"))?;
        if entries.iter().any(|other| other.vm == entry.vm) {
            return Err(format!("entry {item:?}: VM {} is listed twice", entry.vm));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Parses one `vmid:ram_start:ram_end:mode` entry.
fn parse_vm_entry(item: &str) -> Result<VmEntry, String> {
    let fields: Vec<&str> = item.split(':').map(str::trim).collect();
    let [vm, ram_start, ram_end, mode] = fields.as_slice() else {
        return Err(format!(
            "expected 4 fields `vmid:ram_start:ram_end:mode`, found {}",
            fields.len()
        ));
    };
    let vm: u16 = vm
        .parse()
        .map_err(|_| format!("VM id {vm:?} is not a decimal number"))?;
    if vm >= TABLE_MAX_VMS {
        return Err(format!(
            "VM id {vm} is too large: the MMIO guard serves VM ids below {TABLE_MAX_VMS}"
        ));
    }
    let ram_start = parse_table_address("RAM start", ram_start)?;
    let ram_end = parse_table_address("RAM end", ram_end)?;
    if ram_start > ram_end {
        return Err(format!(
            "RAM start {ram_start:#x} is above RAM end {ram_end:#x} (the end is exclusive)"
        ));
    }
    if ram_end > TABLE_IPA_LIMIT {
        return Err(format!(
            "RAM end {ram_end:#x} is beyond the IPA space ({TABLE_IPA_LIMIT:#x})"
        ));
    }
    let mode = match *mode {
        "off" => "Off",
        "optional" => "Optional",
        "enforced" => "Enforced",
        other => {
            return Err(format!(
                "mode {other:?} is none of `off`, `optional`, `enforced`"
            ));
        }
    };
    Ok(VmEntry {
        vm,
        ram_start,
        ram_end,
        mode,
    })
}

/// Parses a `0x`-prefixed hexadecimal, 4 KiB-aligned address.
fn parse_table_address(what: &str, field: &str) -> Result<u64, String> {
    let digits = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
        .ok_or_else(|| format!("{what} {field:?} must be hexadecimal with a 0x prefix"))?
        .replace('_', "");
    let address = u64::from_str_radix(&digits, 16)
        .map_err(|error| format!("{what} {field:?} is not a hexadecimal number: {error}"))?;
    if !address.is_multiple_of(TABLE_GRANULE) {
        return Err(format!(
            "{what} {address:#x} is not a multiple of {TABLE_GRANULE:#x} (4 KiB)"
        ));
    }
    Ok(address)
}

/// The table as Rust source, for `policy.rs` to include: `pub const VMS: &[VmConfig]`.
fn render_vm_table(entries: &[VmEntry]) -> String {
    let mut text = String::from(
        "/// The VMs the MMIO guard serves and how (generated by build.rs from \
         `HV_MMIO_GUARD_VMS`).\npub const VMS: &[VmConfig] = &[\n",
    );
    for entry in entries {
        text.push_str(&format!(
            "    VmConfig {{ vm: {}, ram_start: {:#x}, ram_end: {:#x}, mode: Mode::{} }},\n",
            entry.vm, entry.ram_start, entry.ram_end, entry.mode
        ));
    }
    text.push_str("];\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        parse_vm_table(text).expect_err(text)
    }

    #[test]
    fn parses_entries_in_order() {
        let table = parse_vm_table(
            " 0:0x4000_0000:0x8000_0000:optional , 3:0X80000000:0x88000000:enforced,",
        )
        .unwrap();
        assert_eq!(
            table,
            [
                VmEntry {
                    vm: 0,
                    ram_start: 0x4000_0000,
                    ram_end: 0x8000_0000,
                    mode: "Optional",
                },
                VmEntry {
                    vm: 3,
                    ram_start: 0x8000_0000,
                    ram_end: 0x8800_0000,
                    mode: "Enforced",
                },
            ]
        );
        assert_eq!(parse_vm_table("1:0x0:0x0:off").unwrap()[0].mode, "Off");
        assert_eq!(parse_vm_table(" , ").unwrap(), []);
    }

    #[test]
    fn empty_ram_and_ram_up_to_the_ipa_limit_are_fine() {
        assert!(parse_vm_table("0:0x1000:0x1000:optional").is_ok());
        assert!(parse_vm_table("0:0x0:0x1000000000000:optional").is_ok());
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        let cases = [
            ("0:0x0:0x1000", "expected 4 fields"),
            ("0:0x0:0x1000:optional:x", "expected 4 fields"),
            ("zero:0x0:0x1000:optional", "not a decimal number"),
            ("-1:0x0:0x1000:optional", "not a decimal number"),
            ("4:0x0:0x1000:optional", "too large"),
            ("0:4000:0x1000:optional", "0x prefix"),
            ("0:0xg000:0x1000:optional", "not a hexadecimal number"),
            ("0:0x:0x1000:optional", "not a hexadecimal number"),
            (
                "0:0x0:0x10000000000000000:optional",
                "not a hexadecimal number",
            ),
            ("0:0x800:0x1000:optional", "not a multiple"),
            ("0:0x0:0x1800:optional", "not a multiple"),
            ("0:0x2000:0x1000:optional", "above RAM end"),
            ("0:0x0:0x1000000001000:optional", "beyond the IPA space"),
            ("0:0x0:0x1000:on", "none of"),
            ("0:0x0:0x1000:Optional", "none of"),
            ("0:0x0:0x1000:optional,0:0x0:0x0:off", "listed twice"),
        ];
        for (text, expected) in cases {
            let error = error_of(text);
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(error.starts_with("entry "), "{text:?}: {error}");
        }
    }

    #[test]
    fn renders_a_const_table() {
        let text = render_vm_table(&parse_vm_table("2:0x40000000:0x80000000:enforced").unwrap());
        assert!(text.contains("pub const VMS: &[VmConfig] = &["));
        assert!(text.contains(
            "VmConfig { vm: 2, ram_start: 0x40000000, ram_end: 0x80000000, mode: Mode::Enforced },"
        ));
        assert!(render_vm_table(&[]).contains("&[\n];"));
    }

    #[test]
    fn the_default_is_vm0_optional_without_ram() {
        let text = render_vm_table(&default_vm_table());
        assert!(
            text.contains(
                "VmConfig { vm: 0, ram_start: 0x0, ram_end: 0x0, mode: Mode::Optional },"
            )
        );
    }
}
