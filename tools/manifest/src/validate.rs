//! From [`ManifestSpec`] (as written) to [`Manifest`] (checked and resolved), collecting every
//! problem with the field it is about.

use crate::board_facts::{PAGE, RamChoices, board_extras};
use crate::error::{Diagnostic, FieldPath};
use crate::format::{
    ComponentSpec, DeviceMode, DeviceSpec, ManifestSpec, MmioGuard, RestartPolicyKind,
};
use crate::model::{
    Component, DeviceGrant, Dtb, Grants, Initrd, KernelImage, KernelOptions, Machine, Manifest,
    Restart, Vm,
};
use crate::spans::SpanIndex;
use crate::units::{format_size, parse_duration, parse_size};
use crate::{INTERFACES, KERNEL_OPS, ROUTES};
use core::time::Duration;
use hv_board::{Board, RamSizeError, Region};
use std::path::{Path, PathBuf};

/// Collects diagnostics, each placed by its field path.
struct Checker<'a> {
    spans: &'a SpanIndex<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, field: &FieldPath, message: impl Into<String>) {
        let (line, column) = self.spans.line_column(self.spans.span_of(field).start);
        self.diagnostics.push(Diagnostic {
            line,
            column,
            field: field.clone(),
            message: message.into(),
        });
    }

    fn line_of(&self, field: &FieldPath) -> usize {
        self.spans.line_column(self.spans.span_of(field).start).0
    }

    /// Parses a size at `field`, which must be a multiple of `unit`.
    fn size(&mut self, field: &FieldPath, text: &str, unit: u64) -> Option<u64> {
        match parse_size(text) {
            Ok(bytes) if bytes.is_multiple_of(unit) => Some(bytes),
            Ok(bytes) => {
                self.error(
                    field,
                    format!(
                        "{} is not a multiple of {}; use e.g. \"{}\"",
                        format_size(bytes),
                        format_size(unit),
                        size_text(bytes.div_ceil(unit) * unit)
                    ),
                );
                None
            }
            Err(message) => {
                self.error(field, message);
                None
            }
        }
    }

    /// Checks a VM or component name: 1 to 16 of `a-z A-Z 0-9 - _`, not used before.
    fn name(&mut self, field: &FieldPath, name: &str, seen: &mut Vec<(String, FieldPath)>) {
        if name.is_empty()
            || name.len() > hv_abi::COMPONENT_NAME_LEN
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                field,
                format!(
                    "\"{name}\" is not a valid name; use 1 to {} letters, digits, '-' or '_'",
                    hv_abi::COMPONENT_NAME_LEN
                ),
            );
        }
        if let Some((_, first)) = seen.iter().find(|(seen_name, _)| seen_name == name) {
            let line = self.line_of(first);
            let first = first.clone();
            self.error(
                field,
                format!(
                    "\"{name}\" is already the name of {} (line {line}); \
                     VMs and components need distinct names",
                    owner(&first)
                ),
            );
        } else {
            seen.push((name.to_owned(), field.clone()));
        }
    }
}

/// "component[0]" for `component[0].name`: the entry a name field belongs to.
fn owner(name_field: &FieldPath) -> String {
    let mut path = name_field.clone();
    if path.0.len() > 1 {
        path.0.pop();
    }
    path.to_string()
}

/// A size as a manifest would write it.
fn size_text(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `; did you mean "x"?` when one of `known` is close to `name`, else nothing.
pub(crate) fn suggestion<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> String {
    known
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, candidate)| format!("; did you mean \"{candidate}\"?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

fn names<T>(table: &[(&'static str, T)]) -> String {
    table
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A VM as written, in either form, before it is checked.
struct VmDraft {
    /// `host` or `vm[i]`.
    path: FieldPath,
    /// Whether it came from `[host]`.
    short_form: bool,
    name: String,
    host: bool,
    kernel: String,
    initrd: String,
    dtb: String,
    memory: Option<String>,
    address: Option<u64>,
    vcpus: Option<u32>,
    /// `cpus` in `[[vm]]` (the pin list).
    pins: Option<Vec<u32>>,
    devices: Option<Vec<DeviceSpec>>,
    cmdline: Option<String>,
    mmio_guard: MmioGuard,
}

/// A VM's checked numbers, before placement.
struct VmSizes {
    memory: Option<u64>,
    address: Option<u64>,
}

pub(crate) fn check(
    spec: ManifestSpec,
    spans: &SpanIndex<'_>,
    file: &str,
    base_dir: &Path,
) -> Result<Manifest, Vec<Diagnostic>> {
    let mut checker = Checker {
        spans,
        diagnostics: Vec::new(),
    };
    let root = FieldPath::root();

    let board = hv_board::by_name(&spec.board);
    if board.is_none() {
        let known: Vec<&str> = hv_board::ALL.iter().map(|board| board.name).collect();
        checker.error(
            &root.key("board"),
            format!(
                "\"{}\" is not a board; known: {}{}",
                spec.board,
                known.join(", "),
                suggestion(&spec.board, known.iter().copied())
            ),
        );
    }

    let kernel = KernelOptions {
        log_level: spec
            .kernel
            .as_ref()
            .and_then(|kernel| kernel.log_level)
            .unwrap_or_default(),
    };

    let mut names_seen = Vec::new();
    let vm_drafts = vm_drafts(&mut checker, &spec);
    for draft in &vm_drafts {
        let field = if draft.short_form {
            // `[host]` has no name field; its VM is named "host".
            draft.path.clone()
        } else {
            draft.path.key("name")
        };
        checker.name(&field, &draft.name, &mut names_seen);
    }
    let components = check_components(&mut checker, &spec.components, &mut names_seen);

    let (machine, vms) = match board {
        Some(board) => {
            let machine = check_machine(&mut checker, &spec, board);
            let vms = machine
                .map(|machine| check_vms(&mut checker, board, &machine, vm_drafts, base_dir));
            (machine, vms.flatten())
        }
        None => (None, None),
    };

    let mut diagnostics = checker.diagnostics;
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        return Err(diagnostics);
    }
    let (Some(board), Some(machine), Some(vms), Some(components)) =
        (board, machine, vms, components)
    else {
        unreachable!("every missing part left a diagnostic");
    };
    Ok(Manifest {
        file: file.to_owned(),
        base_dir: base_dir.to_owned(),
        board,
        machine,
        kernel,
        vms,
        components,
    })
}

/// Whether `inner` lies wholly inside `outer`.
fn inside(outer: &Region, inner: &Region) -> bool {
    outer.base <= inner.base && inner.end() <= outer.end()
}

/// A region for messages.
fn show(region: &Region) -> String {
    format!("{:#x}..{:#x}", region.base, region.end())
}

/// Why `size` of RAM from the RAM base does not suit `board`, for a message.
fn ram_size_problem(board: &Board, error: RamSizeError) -> String {
    match error {
        RamSizeError::NotMultipleOf { granule } => format!(
            "is not a multiple of {} (RAM is mapped in {} blocks)",
            format_size(granule),
            format_size(granule)
        ),
        RamSizeError::TooSmall { min } => format!(
            "is less than the {} a {} needs (the hypervisor's {} and a block for the host)",
            format_size(min),
            board.name,
            format_size(board.hypervisor_region_size)
        ),
        RamSizeError::TooLarge { max } => format!(
            "is more than the {} of RAM an image on a {} can use",
            format_size(max),
            board.name
        ),
    }
}

/// `[machine]`, with defaults derived from the board and `[host]`.
fn check_machine(checker: &mut Checker<'_>, spec: &ManifestSpec, board: &Board) -> Option<Machine> {
    let extras = board_extras(board);
    let machine_path = FieldPath::root().key("machine");
    let host_path = FieldPath::root().key("host");
    let written = spec.machine.clone().unwrap_or_default();
    let host = spec.host.clone().unwrap_or_default();
    let mut ok = true;

    // `[host] memory`: the RAM the image is composed for, from the RAM base, hypervisor
    // included.
    let host_memory = match &host.memory {
        Some(text) => {
            let field = host_path.key("memory");
            let checked = checker.size(&field, text, PAGE).and_then(|bytes| {
                match board.check_ram_size(bytes) {
                    Ok(()) => Some(bytes),
                    Err(error) => {
                        checker.error(
                            &field,
                            format!(
                                "{} {}; [host] memory counts from the start of RAM and includes \
                                 the hypervisor's region",
                                format_size(bytes),
                                ram_size_problem(board, error)
                            ),
                        );
                        None
                    }
                }
            });
            ok &= checked.is_some();
            checked
        }
        None => None,
    };

    let ram_field = machine_path.key("ram");
    let ram = match &written.ram {
        Some(text) => {
            let ram = checker.size(&ram_field, text, PAGE);
            let problem = ram.and_then(|ram| match extras.ram {
                RamChoices::Any => board
                    .check_ram_size(ram)
                    .err()
                    .map(|error| ram_size_problem(board, error)),
                RamChoices::OneOf(choices) if !choices.contains(&ram) => {
                    let choices: Vec<_> = choices.iter().map(|&c| size_text(c)).collect();
                    Some(format!(
                        "is not a {}'s RAM: {}",
                        board.name,
                        choices.join(", ")
                    ))
                }
                RamChoices::OneOf(_) => None,
            });
            if let (Some(bytes), Some(problem)) = (ram, &problem) {
                checker.error(&ram_field, format!("{} {problem}", format_size(bytes)));
            }
            ok &= ram.is_some() && problem.is_none();
            ram
        }
        // The smallest RAM the board can have that holds `[host] memory`, else the default.
        None => Some(match (host_memory, extras.ram) {
            (Some(memory), RamChoices::Any) => memory,
            (Some(memory), RamChoices::OneOf(choices)) => choices
                .iter()
                .copied()
                .find(|&c| c >= memory)
                .unwrap_or(extras.default_ram),
            (None, _) => extras.default_ram,
        }),
    };

    let cpus = written
        .cpus
        .or(host.cpus)
        .unwrap_or(board.default_cpus as u32);
    if cpus == 0 || cpus as usize > board.max_cpus {
        let field = if written.cpus.is_some() {
            machine_path.key("cpus")
        } else {
            host_path.key("cpus")
        };
        checker.error(
            &field,
            format!(
                "a {} has 1 to {} CPUs, not {cpus}",
                board.name, board.max_cpus
            ),
        );
        ok = false;
    }

    let ram = ram?;
    let mut usable = ram.min(board.max_ram_size);
    if let Some(memory) = host_memory {
        if memory > usable {
            checker.error(
                &host_path.key("memory"),
                format!(
                    "{} is more than the machine's {} of RAM (machine.ram); make it smaller or \
                     raise machine.ram",
                    format_size(memory),
                    format_size(usable)
                ),
            );
            ok = false;
        }
        usable = usable.min(memory);
    }
    ok.then_some(Machine {
        ram,
        cpus,
        usable: Region {
            base: board.ram_base,
            size: usable,
        },
        hypervisor: board.hypervisor_region(),
    })
}

/// The VMs in one list, deciding which is the host.
fn vm_drafts(checker: &mut Checker<'_>, spec: &ManifestSpec) -> Vec<VmDraft> {
    let mut drafts = Vec::new();
    if let Some(host) = &spec.host {
        drafts.push(VmDraft {
            path: FieldPath::root().key("host"),
            short_form: true,
            name: "host".into(),
            host: true,
            kernel: host.kernel.clone().unwrap_or_else(|| "debian".into()),
            initrd: host.initrd.clone().unwrap_or_else(|| "busybox".into()),
            dtb: "board".into(),
            // `[host] memory` caps the RAM used (see `check_machine`); the VM takes the rest.
            memory: None,
            address: None,
            vcpus: host.cpus,
            pins: None,
            devices: None,
            cmdline: host.cmdline.clone(),
            mmio_guard: MmioGuard::default(),
        });
    }
    let explicit_hosts: Vec<usize> = spec
        .vms
        .iter()
        .enumerate()
        .filter(|(_, vm)| vm.host == Some(true))
        .map(|(index, _)| index)
        .collect();
    let host_index = if spec.host.is_some() {
        for &index in &explicit_hosts {
            checker.error(
                &FieldPath::root().key("vm").index(index).key("host"),
                "[host] already describes the host VM; remove host = true here, or move [host] \
                 into this entry",
            );
        }
        None
    } else if let Some(&first) = explicit_hosts.first() {
        for &index in &explicit_hosts[1..] {
            checker.error(
                &FieldPath::root().key("vm").index(index).key("host"),
                format!(
                    "vm \"{}\" is already the host VM; only one VM can be, remove host = true \
                     here",
                    spec.vms[first].name
                ),
            );
        }
        Some(first)
    } else if let Some(first) = spec.vms.first() {
        if first.host == Some(false) {
            checker.error(
                &FieldPath::root().key("vm").index(0).key("host"),
                "no VM is the host; set host = true on the VM that owns the machine's devices",
            );
        }
        Some(0)
    } else {
        None
    };
    if spec.host.is_none() && spec.vms.is_empty() {
        checker.error(
            &FieldPath::root(),
            "the manifest has no host VM; add a [host] table (e.g. [host] kernel = \"debian\") \
             or a [[vm]] entry",
        );
    }
    for (index, vm) in spec.vms.iter().enumerate() {
        drafts.push(VmDraft {
            path: FieldPath::root().key("vm").index(index),
            short_form: false,
            name: vm.name.clone(),
            host: host_index == Some(index),
            kernel: vm.kernel.clone().unwrap_or_else(|| "debian".into()),
            initrd: vm.initrd.clone().unwrap_or_else(|| "busybox".into()),
            dtb: vm.dtb.clone().unwrap_or_else(|| "board".into()),
            memory: vm.memory.clone(),
            address: vm.address,
            vcpus: vm.vcpus,
            pins: vm.cpus.clone(),
            devices: vm.devices.clone(),
            cmdline: vm.cmdline.clone(),
            mmio_guard: vm.protection.mmio_guard,
        });
    }
    drafts
}

/// Resolves a file a manifest names, which must exist.
fn file(checker: &mut Checker<'_>, field: &FieldPath, base_dir: &Path, text: &str) -> PathBuf {
    let path = base_dir.join(text);
    if !path.is_file() {
        let why = if path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        checker.error(
            field,
            format!(
                "\"{text}\" {why} (looked for {}; paths are relative to the manifest's folder)",
                path.display()
            ),
        );
    }
    path
}

fn check_vms(
    checker: &mut Checker<'_>,
    board: &'static Board,
    machine: &Machine,
    drafts: Vec<VmDraft>,
    base_dir: &Path,
) -> Option<Vec<Vm>> {
    let errors_before = checker.diagnostics.len();
    let extras = board_extras(board);
    let devices = board.devices;
    let granule = board.ram_size_granule;
    let mut vms = Vec::new();
    let mut sizes = Vec::new();
    // Devices passed through so far, with the VM path that has each.
    let mut passed_through: Vec<(&str, FieldPath, String)> = Vec::new();

    for draft in &drafts {
        let path = &draft.path;
        let kernel = match draft.kernel.as_str() {
            "debian" => KernelImage::Debian,
            "debian-arm64" => KernelImage::DebianArm64,
            text => KernelImage::Path(file(checker, &path.key("kernel"), base_dir, text)),
        };
        let initrd = match draft.initrd.as_str() {
            "busybox" => Initrd::Busybox,
            "none" => Initrd::None,
            text => Initrd::Path(file(checker, &path.key("initrd"), base_dir, text)),
        };
        let dtb = match draft.dtb.as_str() {
            "board" => Dtb::Board,
            text => Dtb::Path(file(checker, &path.key("dtb"), base_dir, text)),
        };

        let memory = match &draft.memory {
            Some(text) => checker.size(&path.key("memory"), text, granule),
            None if draft.host => None,
            None => {
                checker.error(
                    &path.key("memory"),
                    "a guest VM needs its memory size, e.g. memory = \"256M\"",
                );
                None
            }
        };
        let address = draft.address;
        if let Some(address) = address
            && !address.is_multiple_of(granule)
        {
            checker.error(
                &path.key("address"),
                format!(
                    "{address:#x} is not {} aligned; use {:#x} or {:#x}",
                    format_size(granule),
                    address / granule * granule,
                    address.div_ceil(granule) * granule
                ),
            );
        }
        sizes.push(VmSizes { memory, address });

        // CPUs.
        let cpus_name = if draft.short_form { "cpus" } else { "vcpus" };
        let vcpus_field = path.key(cpus_name);
        let default_vcpus = match &draft.pins {
            Some(pins) => pins.len() as u32,
            None if draft.host => machine.cpus,
            None => 1,
        };
        let vcpus = draft.vcpus.unwrap_or(default_vcpus);
        if vcpus == 0 {
            checker.error(&vcpus_field, "a VM needs at least one vCPU");
        } else if vcpus > machine.cpus {
            checker.error(
                &vcpus_field,
                format!(
                    "{vcpus} vCPUs but the machine has {} CPUs; lower it or raise machine.cpus \
                     (a {} has up to {})",
                    machine.cpus, board.name, board.max_cpus
                ),
            );
        }
        let cpus = match &draft.pins {
            Some(pins) => {
                let pins_field = path.key("cpus");
                if pins.is_empty() {
                    checker.error(&pins_field, "list at least one CPU, or leave cpus out");
                }
                for (at, &cpu) in pins.iter().enumerate() {
                    if cpu >= machine.cpus {
                        checker.error(
                            &pins_field.index(at),
                            format!(
                                "CPU {cpu} does not exist: the machine has CPUs 0 to {}",
                                machine.cpus - 1
                            ),
                        );
                    } else if pins[..at].contains(&cpu) {
                        checker.error(
                            &pins_field.index(at),
                            format!("CPU {cpu} is listed twice; pin each vCPU to its own CPU"),
                        );
                    }
                }
                if vcpus as usize > pins.len() && !pins.is_empty() {
                    checker.error(
                        &vcpus_field,
                        format!(
                            "{vcpus} vCPUs but cpus pins only {}; list a CPU for every vCPU",
                            pins.len()
                        ),
                    );
                }
                pins.iter().copied().take(vcpus as usize).collect()
            }
            None => (0..vcpus).collect(),
        };

        // Devices, given explicitly (the host's default is filled in below).
        let mut grants = Vec::new();
        if let Some(list) = &draft.devices {
            for (at, entry) in list.iter().enumerate() {
                let field = path.key("devices").index(at).key("name");
                let Some(device) = devices.iter().find(|d| d.name == entry.name) else {
                    let known: Vec<&str> = devices.iter().map(|d| d.name).collect();
                    checker.error(
                        &field,
                        format!(
                            "a {} has no device \"{}\"; known: {}{}",
                            board.name,
                            entry.name,
                            known.join(", "),
                            suggestion(&entry.name, known.iter().copied())
                        ),
                    );
                    continue;
                };
                if list[..at].iter().any(|other| other.name == entry.name) {
                    checker.error(&field, format!("\"{}\" is listed twice", entry.name));
                    continue;
                }
                if entry.mode == DeviceMode::Passthrough {
                    if let Some((_, other_path, other_name)) = passed_through
                        .iter()
                        .find(|(name, _, _)| *name == device.name)
                    {
                        let line = checker.line_of(other_path);
                        checker.error(
                            &field,
                            format!(
                                "\"{}\" is already passed through to VM \"{other_name}\" (line \
                                 {line}); a passed-through device belongs to one VM, use mode \
                                 = \"emulated\" for the other",
                                device.name
                            ),
                        );
                    } else {
                        passed_through.push((device.name, field.clone(), draft.name.clone()));
                    }
                }
                grants.push(DeviceGrant {
                    device,
                    mode: entry.mode,
                });
            }
        }

        vms.push(Vm {
            name: draft.name.clone(),
            host: draft.host,
            kernel,
            initrd,
            dtb,
            memory: Region { base: 0, size: 0 },
            vcpus,
            cpus,
            pinned: draft.pins.is_some(),
            devices: grants,
            cmdline: draft
                .cmdline
                .clone()
                .unwrap_or_else(|| extras.default_cmdline.to_owned()),
            mmio_guard: draft.mmio_guard,
        });
    }

    // The host's default devices: every board device no guest has passed through.
    for (vm, draft) in vms.iter_mut().zip(&drafts) {
        if vm.host && draft.devices.is_none() {
            vm.devices = devices
                .iter()
                .filter(|device| {
                    !passed_through
                        .iter()
                        .any(|(name, _, _)| *name == device.name)
                })
                .map(|device| DeviceGrant {
                    device,
                    mode: DeviceMode::Passthrough,
                })
                .collect();
        }
    }

    if checker.diagnostics.len() > errors_before {
        return None;
    }
    let regions = place_vms(checker, board, machine, &drafts, &sizes)?;
    for (vm, region) in vms.iter_mut().zip(regions) {
        vm.memory = region;
    }
    Some(vms)
}

/// Places every VM's RAM: explicit addresses first, then the host at the board's host kernel
/// address, then the other guests top-down from the end of RAM, then a host without a size
/// gets the free range from its address up.
fn place_vms(
    checker: &mut Checker<'_>,
    board: &Board,
    machine: &Machine,
    drafts: &[VmDraft],
    sizes: &[VmSizes],
) -> Option<Vec<Region>> {
    let usable = machine.usable;
    let errors_before = checker.diagnostics.len();
    let ram_words = |usable: &Region| {
        if usable.size < machine.ram {
            format!("the {} of RAM in use", format_size(usable.size))
        } else {
            format!("the machine's {} of RAM", format_size(usable.size))
        }
    };

    // The sum first: the clearest message when it is simply too much.
    let mut total = machine.hypervisor.size;
    for (draft, size) in drafts.iter().zip(sizes) {
        let Some(memory) = size.memory else { continue };
        total += memory;
        if total > usable.size {
            checker.error(
                &draft.path.key("memory"),
                format!(
                    "the VMs' memory up to here plus the hypervisor's {} is {}, more than {}; \
                     shrink the VMs or raise machine.ram",
                    format_size(machine.hypervisor.size),
                    format_size(total),
                    ram_words(&usable)
                ),
            );
            return None;
        }
    }

    let mut placed: Vec<Option<Region>> = vec![None; drafts.len()];
    // (region, owner index); the hypervisor has no owner.
    let mut taken: Vec<(Region, Option<usize>)> = vec![(machine.hypervisor, None)];
    let claim = |checker: &mut Checker<'_>,
                 index: usize,
                 region: Region,
                 field: FieldPath,
                 taken: &mut Vec<(Region, Option<usize>)>|
     -> bool {
        if !inside(&usable, &region) {
            checker.error(
                &field,
                format!(
                    "{} ({}) is outside {} ({}); move it or shrink it",
                    show(&region),
                    format_size(region.size),
                    ram_words(&usable),
                    show(&usable)
                ),
            );
            return false;
        }
        if let Some((other, owner)) = taken.iter().find(|(other, _)| other.overlaps(&region)) {
            let what = match owner {
                None => format!("the hypervisor's region ({})", show(other)),
                Some(owner) => format!(
                    "VM \"{}\" ({}, line {})",
                    drafts[*owner].name,
                    show(other),
                    checker.line_of(&drafts[*owner].path)
                ),
            };
            checker.error(
                &field,
                format!("{} overlaps {what}; choose another address", show(&region)),
            );
            return false;
        }
        taken.push((region, Some(index)));
        true
    };

    // Explicit addresses, and the host at its default address when it has a size.
    for (index, (draft, size)) in drafts.iter().zip(sizes).enumerate() {
        let (base, field) = match size.address {
            Some(address) => (address, draft.path.key("address")),
            None if draft.host => (board.host_kernel_address, draft.path.key("memory")),
            None => continue,
        };
        let Some(memory) = size.memory else { continue };
        let region = Region { base, size: memory };
        if claim(checker, index, region, field, &mut taken) {
            placed[index] = Some(region);
        }
    }

    // Guests without an address, top-down.
    for (index, (draft, size)) in drafts.iter().zip(sizes).enumerate() {
        if draft.host || size.address.is_some() {
            continue;
        }
        let Some(memory) = size.memory else { continue };
        match highest_free(&taken, usable, memory, board.ram_size_granule) {
            Some(region) => {
                taken.push((region, Some(index)));
                placed[index] = Some(region);
            }
            None => checker.error(
                &draft.path.key("memory"),
                format!(
                    "no free 2 MiB aligned range of {} is left in {}; shrink it or give VMs \
                     addresses that leave room",
                    format_size(memory),
                    ram_words(&usable)
                ),
            ),
        }
    }

    // A host without a size: from its address to the next VM or the end of RAM.
    for (index, (draft, size)) in drafts.iter().zip(sizes).enumerate() {
        if !draft.host || size.memory.is_some() {
            continue;
        }
        let (base, field) = match size.address {
            Some(address) => (address, draft.path.key("address")),
            None => (board.host_kernel_address, draft.path.clone()),
        };
        let end = taken
            .iter()
            .map(|(region, _)| region.base)
            .filter(|&start| start >= base)
            .min()
            .unwrap_or(usable.end())
            .min(usable.end());
        let region = Region {
            base,
            size: end.saturating_sub(base),
        };
        if region.size < board.ram_size_granule {
            checker.error(
                &field,
                format!(
                    "no RAM is left for the host VM at {base:#x}: the hypervisor and the other \
                     VMs take {}; shrink them or raise machine.ram",
                    ram_words(&usable)
                ),
            );
        } else if claim(checker, index, region, field, &mut taken) {
            placed[index] = Some(region);
        }
    }

    if checker.diagnostics.len() > errors_before {
        return None;
    }
    Some(placed.into_iter().map(|r| r.expect("placed")).collect())
}

/// The highest 2 MiB aligned free range of `size` bytes in `usable`.
fn highest_free(
    taken: &[(Region, Option<usize>)],
    usable: Region,
    size: u64,
    align: u64,
) -> Option<Region> {
    let mut starts: Vec<u64> = taken.iter().map(|(region, _)| region.base).collect();
    starts.push(usable.end());
    starts.sort_unstable();
    starts.dedup();
    // Candidate tops: the end of RAM and the start of every taken range, highest first.
    for &top in starts.iter().rev() {
        if top > usable.end() || top < size {
            continue;
        }
        let base = (top - size) / align * align;
        let region = Region { base, size };
        if inside(&usable, &region) && !taken.iter().any(|(other, _)| other.overlaps(&region)) {
            return Some(region);
        }
    }
    None
}

fn lookup<T: Copy>(table: &[(&'static str, T)], name: &str) -> Option<T> {
    table
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
}

fn check_components(
    checker: &mut Checker<'_>,
    specs: &[ComponentSpec],
    names_seen: &mut Vec<(String, FieldPath)>,
) -> Option<Vec<Component>> {
    let errors_before = checker.diagnostics.len();
    let mut components = Vec::new();
    // Interface id -> (component index) of its server.
    let mut servers: Vec<(u16, usize)> = Vec::new();
    // Route bit -> component index.
    let mut route_owners: Vec<(u32, usize)> = Vec::new();
    let mut range_owners: Vec<(u32, u32, usize)> = Vec::new();

    for (index, spec) in specs.iter().enumerate() {
        let path = FieldPath::root().key("component").index(index);
        checker.name(&path.key("name"), &spec.name, names_seen);
        if spec.crate_name.trim().is_empty() {
            checker.error(
                &path.key("crate"),
                "name the cargo package that builds it, e.g. crate = \"hv-supervisor\"",
            );
        }

        let memory_text = spec.memory.as_deref().unwrap_or("1M");
        let memory = checker.size(&path.key("memory"), memory_text, PAGE);
        let stack_text = spec.stack.as_deref().unwrap_or("16K");
        let stack_field = path.key("stack");
        let stack = checker.size(&stack_field, stack_text, PAGE);
        if let (Some(memory), Some(stack)) = (memory, stack)
            && stack >= memory
        {
            checker.error(
                &stack_field,
                format!(
                    "the stack ({}) must be smaller than the component's memory ({}); \
                     shrink the stack or raise memory",
                    format_size(stack),
                    format_size(memory)
                ),
            );
        }

        let mut grants = Grants::default();
        if let Some(interface) = &spec.serves {
            let field = path.key("serves");
            match lookup(INTERFACES, interface) {
                Some(id) => {
                    if let Some(&(_, other)) = servers.iter().find(|(served, _)| *served == id) {
                        let line =
                            checker.line_of(&FieldPath::root().key("component").index(other));
                        checker.error(
                            &field,
                            format!(
                                "\"{interface}\" is already served by component \"{}\" (line \
                                 {line}); one component serves each interface",
                                specs[other].name
                            ),
                        );
                    } else {
                        servers.push((id, index));
                    }
                    grants.serves = id;
                }
                None => checker.error(
                    &field,
                    format!(
                        "\"{interface}\" is not an interface; known: {}{}",
                        names(INTERFACES),
                        suggestion(interface, INTERFACES.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }
        for (at, interface) in spec.calls.iter().enumerate() {
            let field = path.key("calls").index(at);
            match lookup(INTERFACES, interface) {
                Some(_) if spec.calls[..at].contains(interface) => {
                    checker.error(&field, format!("\"{interface}\" is listed twice"));
                }
                Some(id) => grants.may_call |= 1 << id,
                None => checker.error(
                    &field,
                    format!(
                        "\"{interface}\" is not an interface any component could serve; known: \
                         {}{}",
                        names(INTERFACES),
                        suggestion(interface, INTERFACES.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }
        for (at, op) in spec.kernel_ops.iter().enumerate() {
            let field = path.key("kernel-ops").index(at);
            match lookup(KERNEL_OPS, op) {
                Some(_) if spec.kernel_ops[..at].contains(op) => {
                    checker.error(&field, format!("\"{op}\" is listed twice"));
                }
                Some(number) => grants.kernel_ops |= 1 << number,
                None => checker.error(
                    &field,
                    format!(
                        "\"{op}\" is not a kernel operation; known: {}{}",
                        names(KERNEL_OPS),
                        suggestion(op, KERNEL_OPS.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }
        let mut range_slot = 0;
        for (at, route) in spec.routes.iter().enumerate() {
            let field = path.key("routes").index(at);
            if let Some(ids) = route.strip_prefix("smccc:") {
                match parse_function_range(ids) {
                    Err(message) => checker.error(&field, message),
                    Ok(range) => {
                        let taken = range_owners
                            .iter()
                            .find(|(first, last, _)| range.0 <= *last && *first <= range.1);
                        if let Some(&(_, _, other)) = taken {
                            let line =
                                checker.line_of(&FieldPath::root().key("component").index(other));
                            checker.error(
                                &field,
                                format!(
                                    "SMCCC functions {:#x}..={:#x} overlap a range routed to \
                                     component \"{}\" (line {line}); a function goes to one component",
                                    range.0, range.1, specs[other].name
                                ),
                            );
                        } else if range_slot == hv_abi::MAX_SMCCC_RANGES {
                            checker.error(
                                &field,
                                format!(
                                    "a component takes at most {} SMCCC ranges; merge some",
                                    hv_abi::MAX_SMCCC_RANGES
                                ),
                            );
                        } else {
                            range_owners.push((range.0, range.1, index));
                            grants.smccc_ranges[range_slot] = range;
                            range_slot += 1;
                        }
                    }
                }
                continue;
            }
            match lookup(ROUTES, route) {
                Some(_) if spec.routes[..at].contains(route) => {
                    checker.error(&field, format!("\"{route}\" is listed twice"));
                }
                Some(bit) => {
                    if let Some(&(_, other)) = route_owners.iter().find(|(b, _)| *b == bit) {
                        let line =
                            checker.line_of(&FieldPath::root().key("component").index(other));
                        checker.error(
                            &field,
                            format!(
                                "the \"{route}\" trap is already routed to component \"{}\" \
                                 (line {line}); a trap goes to one component, remove one route",
                                specs[other].name
                            ),
                        );
                    } else {
                        route_owners.push((bit, index));
                    }
                    grants.routes |= bit;
                }
                None => checker.error(
                    &field,
                    format!(
                        "\"{route}\" is not a trap that can be routed; known: {}{}",
                        names(ROUTES),
                        suggestion(route, ROUTES.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }

        let restart = check_restart(checker, &path.key("restart"), spec);
        for key in spec.env.keys() {
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                checker.error(
                    &path.key("env").key(key),
                    format!(
                        "\"{key}\" is not an environment variable name; use letters, digits and \
                         '_', e.g. HV_TEST_HOOK"
                    ),
                );
            }
        }

        components.push(Component {
            name: spec.name.clone(),
            crate_name: spec.crate_name.clone(),
            memory: memory.unwrap_or(0),
            stack: stack.unwrap_or(0),
            serves: spec.serves.clone(),
            calls: spec.calls.clone(),
            kernel_ops: spec.kernel_ops.clone(),
            routes: spec.routes.clone(),
            grants,
            restart,
            env: spec.env.clone(),
        });
    }

    // Every call must reach a server.
    for (index, spec) in specs.iter().enumerate() {
        for (at, interface) in spec.calls.iter().enumerate() {
            if let Some(id) = lookup(INTERFACES, interface)
                && !servers.iter().any(|(served, _)| *served == id)
            {
                checker.error(
                    &FieldPath::root()
                        .key("component")
                        .index(index)
                        .key("calls")
                        .index(at),
                    format!(
                        "no component serves \"{interface}\"; add serves = \"{interface}\" to \
                         the component that should answer, or remove this call"
                    ),
                );
            }
        }
    }

    if checker.diagnostics.len() > errors_before {
        return None;
    }
    check_cycles(checker, specs, &components, &servers);
    (checker.diagnostics.len() == errors_before).then_some(components)
}

fn check_restart(checker: &mut Checker<'_>, path: &FieldPath, spec: &ComponentSpec) -> Restart {
    let restart = &spec.restart;
    let mut duration = |key: &str, text: &Option<String>, default: Duration| match text {
        Some(text) => match parse_duration(text) {
            Ok(duration) => duration,
            Err(message) => {
                checker.error(&path.key(key), message);
                default
            }
        },
        None => default,
    };
    let min_delay = duration("min-delay", &restart.min_delay, Duration::from_millis(10));
    let max_delay = duration("max-delay", &restart.max_delay, Duration::from_secs(5));
    match restart.policy {
        RestartPolicyKind::Backoff => {
            if min_delay > max_delay {
                checker.error(
                    &path.key("max-delay"),
                    format!(
                        "max-delay ({max_delay:?}) is shorter than min-delay ({min_delay:?}); \
                         make it at least min-delay"
                    ),
                );
            }
            Restart::Backoff {
                min_delay,
                max_delay,
            }
        }
        RestartPolicyKind::Never => {
            for (key, value) in [
                ("min-delay", &restart.min_delay),
                ("max-delay", &restart.max_delay),
            ] {
                if value.is_some() {
                    checker.error(
                        &path.key(key),
                        format!(
                            "{key} has no effect with policy = \"never\"; remove it or use \
                             policy = \"backoff\""
                        ),
                    );
                }
            }
            Restart::Never
        }
    }
}

/// Refuses call cycles: a cycle could leave two CPUs each waiting for the other's component.
fn check_cycles(
    checker: &mut Checker<'_>,
    specs: &[ComponentSpec],
    components: &[Component],
    servers: &[(u16, usize)],
) {
    // Edge a -> b, labelled by a's call index, when a calls what b serves.
    let edges = |a: usize| -> Vec<(usize, usize)> {
        specs[a]
            .calls
            .iter()
            .enumerate()
            .filter_map(|(at, interface)| {
                let id = lookup(INTERFACES, interface)?;
                let (_, b) = servers.iter().find(|(served, _)| *served == id)?;
                Some((at, *b))
            })
            .collect()
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    // Iterative depth-first search keeping the stack of (node, call index) to name the cycle.
    let mut marks = vec![Mark::New; components.len()];
    for start in 0..components.len() {
        if marks[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, Vec<(usize, usize)>)> = vec![(start, edges(start))];
        marks[start] = Mark::OnStack;
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            let Some((at, next)) = pending.pop() else {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            };
            match marks[next] {
                Mark::Done => {}
                Mark::New => {
                    marks[next] = Mark::OnStack;
                    stack.push((next, edges(next)));
                }
                Mark::OnStack => {
                    let from = stack
                        .iter()
                        .position(|(n, _)| *n == next)
                        .expect("on the stack");
                    let mut cycle: Vec<&str> = stack[from..]
                        .iter()
                        .map(|(n, _)| specs[*n].name.as_str())
                        .collect();
                    cycle.push(&specs[next].name);
                    checker.error(
                        &FieldPath::root()
                            .key("component")
                            .index(node)
                            .key("calls")
                            .index(at),
                        format!(
                            "the components' calls form a cycle ({}); calls must only go one \
                             way, remove one of them",
                            cycle.join(" -> ")
                        ),
                    );
                    return;
                }
            }
        }
    }
}

/// Parses `0xC6000005` or `0xC6000005-0xC6000008` (hex, inclusive) into a function-ID range.
fn parse_function_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |id: &str| {
        let digits = id
            .trim()
            .strip_prefix("0x")
            .or_else(|| id.trim().strip_prefix("0X"));
        digits.and_then(|digits| u32::from_str_radix(digits, 16).ok())
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (parse(first), parse(last)),
        None => (parse(text), parse(text)),
    };
    match (first, last) {
        (Some(first), Some(last)) if first <= last && first != 0 => Ok((first, last)),
        _ => Err(format!(
            "\"smccc:{text}\" is not an SMCCC function range; write hex function IDs, e.g. \
             \"smccc:0xC6000005-0xC6000008\" or \"smccc:0xC6000002\""
        )),
    }
}
