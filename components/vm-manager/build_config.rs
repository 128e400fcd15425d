// The VM manager's build settings: parsing and the generated table, shared by `build.rs`
// (`include!("build_config.rs")`) and the host tests in `src/config.rs`, which include this file
// too. (Plain `//` comments because an `include!`d file cannot carry inner doc comments.)
//
// - `HV_VM_MANAGER_VMS`: comma-separated `vmid:name`, e.g. `0:host` (console prefixes);
// - `HV_VM_MANAGER_EMULATED`: comma-separated `vmid:device:kind:base:size`, base and size in
//   hex (`0x` optional), kind `pl011`, e.g. `0:uart0:pl011:0x9000000:0x1000`;
// - `HV_VM_MANAGER_MMIO_GUARD`: `1` when the system has an mmio-guard component, `0` or unset
//   when not.
//
// Unset or empty settings give empty tables (and no guard). Whitespace around items and
// fields is ignored.

/// Longest VM or device name (bytes).
pub const SETTING_NAME_MAX: usize = 32;
/// Granule the emulated ranges must be aligned to (the kernel unmaps them from stage 2).
pub const SETTING_GRANULE: u64 = 0x1000;

/// One `vmid:name` item of `HV_VM_MANAGER_VMS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSetting {
    /// The VM's id.
    pub vm: u16,
    /// Its name, for console prefixes.
    pub name: String,
}

/// One `vmid:device:kind:base:size` item of `HV_VM_MANAGER_EMULATED`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulatedSetting {
    /// The VM whose device it is.
    pub vm: u16,
    /// The device's name (from the manifest).
    pub device: String,
    /// The device model; `Pl011` is the only one.
    pub kind: &'static str,
    /// Base IPA.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The non-empty, trimmed items of a comma-separated setting.
fn setting_items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty())
}

fn parse_vm_id(item: &str, text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{item:?}: VM id {text:?} is not a number in 0..=65535"))
}

fn check_name(item: &str, what: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > SETTING_NAME_MAX || !name.chars().all(allowed) {
        return Err(format!(
            "{item:?}: {what} name {name:?} must be 1..={SETTING_NAME_MAX} characters of \
             [A-Za-z0-9._-]"
        ));
    }
    Ok(name.to_owned())
}

fn parse_hex(item: &str, what: &str, text: &str) -> Result<u64, String> {
    let digits = text.trim();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits)
        .replace('_', "");
    u64::from_str_radix(&digits, 16)
        .map_err(|_| format!("{item:?}: {what} {text:?} is not a hexadecimal number"))
}

/// Parses `HV_VM_MANAGER_VMS`.
pub fn parse_vms(text: &str) -> Result<Vec<VmSetting>, String> {
    let mut vms: Vec<VmSetting> = Vec::new();
    for item in setting_items(text) {
        let Some((vm, name)) = item.split_once(':') else {
            return Err(format!("{item:?} is not vmid:name"));
        };
        let vm = parse_vm_id(item, vm)?;
        let name = check_name(item, "VM", name)?;
        if vms.iter().any(|other| other.vm == vm) {
            return Err(format!("{item:?}: VM {vm} is named twice"));
        }
        vms.push(VmSetting { vm, name });
    }
    Ok(vms)
}

/// Parses `HV_VM_MANAGER_EMULATED`.
pub fn parse_emulated(text: &str) -> Result<Vec<EmulatedSetting>, String> {
    let mut devices: Vec<EmulatedSetting> = Vec::new();
    for item in setting_items(text) {
        let fields: Vec<&str> = item.split(':').collect();
        let [vm, device, kind, base, size] = fields.as_slice() else {
            return Err(format!("{item:?} is not vmid:device:kind:base:size"));
        };
        let vm = parse_vm_id(item, vm)?;
        let device = check_name(item, "device", device)?;
        let kind = match kind.trim() {
            "pl011" => "Pl011",
            other => return Err(format!("{item:?}: unknown device kind {other:?} (pl011)")),
        };
        let base = parse_hex(item, "base", base)?;
        let size = parse_hex(item, "size", size)?;
        if size == 0 || !base.is_multiple_of(SETTING_GRANULE) || !size.is_multiple_of(SETTING_GRANULE)
        {
            return Err(format!(
                "{item:?}: base and size must be multiples of {SETTING_GRANULE:#x}, size non-zero"
            ));
        }
        let Some(end) = base.checked_add(size) else {
            return Err(format!("{item:?}: base + size overflows"));
        };
        for other in devices.iter().filter(|other| other.vm == vm) {
            if other.device == device {
                return Err(format!("{item:?}: VM {vm} has two devices named {device:?}"));
            }
            if base < other.base + other.size && other.base < end {
                return Err(format!(
                    "{item:?}: overlaps VM {vm}'s device {:?}",
                    other.device
                ));
            }
        }
        devices.push(EmulatedSetting {
            vm,
            device,
            kind,
            base,
            size,
        });
    }
    Ok(devices)
}

/// Parses `HV_VM_MANAGER_MMIO_GUARD`.
pub fn parse_mmio_guard(text: &str) -> Result<bool, String> {
    match text.trim() {
        "" | "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("{other:?}: expected 1 (or 0 / unset for no mmio-guard)")),
    }
}

/// The Rust source of the tables (`src/config.rs` includes it; the types are defined there).
pub fn generate_config(vms: &[VmSetting], emulated: &[EmulatedSetting], mmio_guard: bool) -> String {
    let mut out = String::new();
    out.push_str("// Generated by build.rs from HV_VM_MANAGER_{VMS,EMULATED,MMIO_GUARD}.\n\n");
    out.push_str("/// The VMs' names, for console prefixes (`HV_VM_MANAGER_VMS`).\n");
    out.push_str("pub const VMS: &[VmName] = &[\n");
    for vm in vms {
        out.push_str(&format!(
            "    VmName {{ vm: {}, name: {:?} }},\n",
            vm.vm, vm.name
        ));
    }
    out.push_str("];\n\n");
    out.push_str("/// The emulated devices (`HV_VM_MANAGER_EMULATED`).\n");
    out.push_str("pub const EMULATED: &[EmulatedDevice] = &[\n");
    for device in emulated {
        out.push_str(&format!(
            "    EmulatedDevice {{ vm: {}, name: {:?}, kind: DeviceKind::{}, base: {:#x}, size: \
             {:#x} }},\n",
            device.vm, device.device, device.kind, device.base, device.size
        ));
    }
    out.push_str("];\n\n");
    out.push_str(
        "/// Whether the system has an mmio-guard component (`HV_VM_MANAGER_MMIO_GUARD`).\n",
    );
    out.push_str(&format!("pub const MMIO_GUARD: bool = {mmio_guard};\n"));
    out
}
