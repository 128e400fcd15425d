//! Checking and placing the VMs: host rules, images, memory, CPUs and devices.

use super::*;

/// The lowest IPA bit a guest may use as its shared attribute: above the 4 GiB that hold its
/// RAM (from the board's RAM base) and its devices on the boards supported.
const SHARED_BIT_MIN: u8 = 32;
/// The highest: the kernel's stage-2 IPA space is at least 40 bits on every CPU.
const SHARED_BIT_MAX: u8 = 39;

/// The VMs in one list, deciding which is the host.
pub(super) fn vm_drafts(checker: &mut Checker<'_>, spec: &ManifestSpec) -> Vec<VmDraft> {
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
            mte: None,
            clock: None,
            shared_ipa_bit: None,
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
            mte: vm.mte,
            clock: vm.clock.clone(),
            shared_ipa_bit: vm.shared_ipa_bit,
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

pub(super) fn check_vms(
    checker: &mut Checker<'_>,
    board: &'static Board,
    machine: &Machine,
    drafts: Vec<VmDraft>,
    base_dir: &Path,
    hot_swap: bool,
) -> Option<Vec<Vm>> {
    let errors_before = checker.diagnostics.len();
    let extras = board_extras(board);
    let devices = board.devices;
    // With hot-swap on, the control line's page is the hypervisor's: no VM gets a device in it.
    let kept = board.control_page().filter(|_| hot_swap);
    let in_kept = |region: hv_board::Region| {
        kept.is_some_and(|page| region.base < page.end() && page.base < region.end())
    };
    let is_kept = |device: &hv_board::Device| in_kept(device.region);
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
            "linux-pkvm" => KernelImage::UpstreamPkvmGuest,
            text => match text.strip_prefix("crate:") {
                Some(package) => {
                    let valid = !package.is_empty()
                        && package
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if !valid {
                        checker.error(
                            &path.key("kernel"),
                            format!(
                                "\"{text}\" does not name a package; write \"crate:\" and a \
                                 test guest's package name, e.g. \"crate:hv-guest-vm-basic\""
                            ),
                        );
                    }
                    KernelImage::Crate(package.to_owned())
                }
                None => KernelImage::Path(file(checker, &path.key("kernel"), base_dir, text)),
            },
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

        let mte = draft.mte.unwrap_or(false);
        if mte && draft.host {
            checker.error(
                &path.key("mte"),
                "mte is for guest VMs: the host runs on the machine's CPUs as they are; remove it",
            );
        } else if mte && !extras.mte {
            checker.error(
                &path.key("mte"),
                format!(
                    "a {}'s CPUs have no MTE (Memory Tagging Extension); remove mte = true",
                    board.name
                ),
            );
        }

        let counter_from_zero = match draft.clock.as_deref() {
            None | Some("host") => false,
            Some("zero") if draft.host => {
                checker.error(
                    &path.key("clock"),
                    "clock is for guest VMs: the host's counter is the machine's; remove it",
                );
                false
            }
            Some("zero") => true,
            Some(other) => {
                checker.error(
                    &path.key("clock"),
                    format!("\"{other}\" is not a clock; use \"host\" or \"zero\""),
                );
                false
            }
        };

        if let Some(bit) = draft.shared_ipa_bit {
            let field = path.key("shared-ipa-bit");
            if draft.host {
                checker.error(
                    &field,
                    "shared-ipa-bit is for guest VMs: the host reaches every page it owns; remove it",
                );
            } else if let Some(memory) = memory.filter(|&memory| {
                (SHARED_BIT_MIN..=SHARED_BIT_MAX).contains(&bit)
                    && board.ram_base + memory > 1 << bit
            }) {
                checker.error(
                    &field,
                    format!(
                        "bit {bit} lies inside the guest's RAM (IPA {:#x}..{:#x}); use a higher bit",
                        board.ram_base,
                        board.ram_base + memory
                    ),
                );
            } else if !(SHARED_BIT_MIN..=SHARED_BIT_MAX).contains(&bit) {
                // Below 32 it would fall inside the guest's RAM or devices; the kernel's stage-2
                // IPA space is at least 40 bits on every CPU, so 39 is the highest it holds.
                checker.error(
                    &field,
                    format!(
                        "{bit} is not a bit a guest can steal: use {SHARED_BIT_MIN} to {SHARED_BIT_MAX} \
                         (above its RAM and devices, inside the 40-bit IPA space)"
                    ),
                );
            }
        }

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
                if is_kept(device) {
                    checker.error(
                        &field,
                        format!(
                            "\"{}\" shares its page with the hot-swap control line, which the \
                             hypervisor keeps while `hot-swap = true`; give the VM another UART \
                             (docs/hot-swap.md)",
                            device.name
                        ),
                    );
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

        let cmdline = draft
            .cmdline
            .clone()
            .unwrap_or_else(|| extras.default_cmdline.to_owned());
        // A console on the control line would be silent (and the tool's frames its input).
        let kept_console = board.linux_console.split(',').next().unwrap_or_default();
        if in_kept(board.console().region)
            && cmdline
                .split_whitespace()
                .filter_map(|word| word.strip_prefix("console="))
                .any(|console| console.split(',').next() == Some(kept_console))
        {
            let field = if draft.cmdline.is_some() {
                path.key("cmdline")
            } else {
                path.clone()
            };
            checker.error(
                &field,
                format!(
                    "the console {kept_console} is {}, hot-swap's control line, which the \
                     hypervisor keeps while `hot-swap = true`; give the VM another console \
                     (docs/hot-swap.md)",
                    board.console().name
                ),
            );
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
            cmdline,
            mmio_guard: draft.mmio_guard,
            mte,
            counter_from_zero,
            shared_ipa_bit: draft.shared_ipa_bit.filter(|_| !draft.host),
        });
    }

    // The host's default devices: every board device no guest has passed through and the
    // hypervisor does not keep, less the UARTs whose pins must be set up (given only when
    // listed).
    for (vm, draft) in vms.iter_mut().zip(&drafts) {
        if vm.host && draft.devices.is_none() {
            vm.devices = devices
                .iter()
                .filter(|device| {
                    !is_kept(device)
                        && board
                            .uart(device.name)
                            .is_none_or(|uart| uart.pins.is_none())
                        && !passed_through
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
    assign_cpus(checker, machine, &mut vms, &drafts);
    if checker.diagnostics.len() > errors_before {
        return None;
    }
    Some(vms)
}

/// Gives each VM its physical CPUs: a CPU runs the host's vCPUs or one guest vCPU (DESIGN
/// decision 12). Pinned CPUs (`cpus = [...]`) first, each CPU once and never a guest on CPU
/// 0, where the host starts; then each guest without pins, in order, on the highest CPUs
/// nobody pinned; then a host without pins on its CPUs 0 to vcpus - 1 less the guests'. Also:
/// at most `hv_abi::MAX_GUESTS` guests (what the boot table holds).
fn assign_cpus(checker: &mut Checker<'_>, machine: &Machine, vms: &mut [Vm], drafts: &[VmDraft]) {
    let mut owners: Vec<Option<usize>> = vec![None; machine.cpus as usize];
    for (index, (vm, draft)) in vms.iter().zip(drafts).enumerate() {
        if !vm.pinned {
            continue;
        }
        for (vcpu, &cpu) in vm.cpus.iter().enumerate() {
            let field = draft.path.key("cpus").index(vcpu);
            let owner = owners[cpu as usize];
            if cpu == 0 && !vm.host {
                checker.error(
                    &field,
                    "CPU 0 is where the host starts; pin the guest to another CPU",
                );
            } else if let Some(owner) = owner {
                let line = checker.line_of(&drafts[owner].path);
                let advice = if vms[owner].host || vm.host {
                    "pin the guest to a CPU the host does not have, or give the host fewer CPUs"
                } else {
                    "pin each guest vCPU to a CPU of its own"
                };
                checker.error(
                    &field,
                    format!(
                        "CPU {cpu} already runs VM \"{}\" (line {line}); a CPU runs the host's \
                         vCPUs or one guest vCPU: {advice}",
                        vms[owner].name
                    ),
                );
            } else {
                owners[cpu as usize] = Some(index);
            }
        }
    }
    for (index, (vm, draft)) in vms.iter_mut().zip(drafts).enumerate() {
        if vm.host || vm.pinned {
            continue;
        }
        let free: Vec<u32> = (1..machine.cpus)
            .rev()
            .filter(|&cpu| owners[cpu as usize].is_none())
            .take(vm.vcpus as usize)
            .collect();
        if free.len() < vm.vcpus as usize {
            checker.error(
                &draft.path.key("vcpus"),
                format!(
                    "no free CPU is left for its {} vCPU(s): the host (from CPU 0) and the other \
                     guests have the machine's {}; raise machine.cpus or give the host fewer \
                     CPUs",
                    vm.vcpus, machine.cpus
                ),
            );
            continue;
        }
        for &cpu in &free {
            owners[cpu as usize] = Some(index);
        }
        vm.cpus = free.into_iter().rev().collect();
    }
    for vm in vms.iter_mut() {
        if !vm.host || vm.pinned {
            continue;
        }
        vm.cpus.retain(|&cpu| owners[cpu as usize].is_none());
        vm.vcpus = vm.cpus.len() as u32;
    }
    let guests = drafts.iter().filter(|draft| !draft.host);
    if let Some(extra) = guests.clone().nth(hv_abi::MAX_GUESTS) {
        checker.error(
            &extra.path.key("name"),
            format!(
                "{} guest VMs, but an image holds at most {}; remove some",
                guests.count(),
                hv_abi::MAX_GUESTS
            ),
        );
    }
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
