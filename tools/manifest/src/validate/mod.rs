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

mod components;
mod vms;

use components::check_components;
use vms::{check_vms, vm_drafts};

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
    mte: Option<bool>,
    clock: Option<String>,
    shared_ipa_bit: Option<u8>,
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
    let mut components = check_components(&mut checker, &spec.components, &mut names_seen);
    if spec.hot_swap {
        grant_hot_swap(&mut checker, board, components.as_mut());
    }
    let has_guests = vm_drafts.iter().any(|draft| !draft.host);

    let (machine, vms) = match board {
        Some(board) => {
            let machine = check_machine(&mut checker, &spec, board);
            let vms = machine.map(|machine| {
                check_vms(
                    &mut checker,
                    board,
                    &machine,
                    vm_drafts,
                    base_dir,
                    spec.hot_swap,
                )
            });
            (machine, vms.flatten())
        }
        None => (None, None),
    };

    // Only once everything else holds: one clear error at a time.
    if let (true, Some(components), true) = (
        has_guests,
        components.as_ref(),
        checker.diagnostics.is_empty(),
    ) {
        check_guest_interrupts(&mut checker, components);
    }
    let mut diagnostics = checker.diagnostics;
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        return Err(diagnostics);
    }
    let (Some(board), Some(machine), Some(mut vms), Some(components)) =
        (board, machine, vms, components)
    else {
        unreachable!("every missing part left a diagnostic");
    };
    // VM ids: the host is VM 0 wherever it is written, the guests follow in order.
    vms.sort_by_key(|vm| !vm.host);
    Ok(Manifest {
        file: file.to_owned(),
        base_dir: base_dir.to_owned(),
        board,
        machine,
        kernel,
        vms,
        components,
        hot_swap: spec.hot_swap,
    })
}

/// `hot-swap = true`: the supervisor gets the control line and SWAP, on a board that has a
/// control line.
fn grant_hot_swap(
    checker: &mut Checker<'_>,
    board: Option<&'static hv_board::Board>,
    components: Option<&mut Vec<Component>>,
) {
    let field = FieldPath::root().key("hot-swap");
    if let Some(board) = board.filter(|board| board.control_uart.is_none()) {
        checker.error(
            &field,
            format!(
                "board \"{}\" has no control line for hot-swap (board.toml [control]); remove \
                 `hot-swap = true`",
                board.name
            ),
        );
        return;
    }
    let Some(components) = components else { return };
    let Some(supervisor) = components
        .iter_mut()
        .find(|component| component.serves.as_deref() == Some("supervisor"))
    else {
        checker.error(
            &field,
            "hot-swap is carried out by the supervisor: add a component that serves \"supervisor\"",
        );
        return;
    };
    for op in crate::HOT_SWAP_KERNEL_OPS {
        if !supervisor.kernel_ops.iter().any(|granted| granted == op) {
            supervisor.kernel_ops.push(op.to_owned());
        }
        let number = KERNEL_OPS
            .iter()
            .find(|(name, _)| *name == op)
            .map(|(_, number)| *number)
            .expect("hot-swap's operations are kernel operations");
        supervisor.grants.kernel_ops |= 1 << number;
    }
}

/// Guest VMs need the component that takes the `mmio` route (their emulated devices and GIC
/// distributor) to be granted the kernel operations of their interrupts and of the host's GIC
/// filter: without them a guest gets no interrupt and the host's first distributor access is
/// refused, which a manifest check says far more clearly than a boot that hangs.
fn check_guest_interrupts(checker: &mut Checker<'_>, components: &[Component]) {
    const NEEDED: [&str; 4] = ["virq-inject", "virq-timer", "gic-access", "console-access"];
    let taker = components
        .iter()
        .enumerate()
        .find(|(_, component)| component.routes.iter().any(|route| route == "mmio"));
    // Without one, no guest is created at all (the VM manager creates them): nothing to grant.
    let Some((index, component)) = taker else {
        return;
    };
    let missing: Vec<&str> = NEEDED
        .into_iter()
        .filter(|op| !component.kernel_ops.iter().any(|granted| granted == op))
        .collect();
    if !missing.is_empty() {
        checker.error(
            &FieldPath::root().key("component").index(index),
            format!(
                "component \"{}\" takes the \"mmio\" route of a system with guest VMs, so it \
                 needs kernel-ops {} (guests' interrupts, the host's GIC filter and the shared console, docs/vgic.md)",
                component.name,
                missing
                    .iter()
                    .map(|op| format!("\"{op}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
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
