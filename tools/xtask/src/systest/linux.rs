//! The checks of the tests whose payload is Linux: the host's and a guest's boot markers, and
//! what upstream Linux's pKVM guest driver must have done.

use super::*;

/// The `HV-INIT:` markers of the host, on the console (`guest` false), or of the guest VM, whose
/// console lines the VM manager sends to the hypervisor's log in these tests
/// (`vm1 console: b"..."`: their manifests do not grant it console-write, so that the two
/// Linuxes' characters never interleave on the one UART).
fn init_markers(outcome: &Outcome, guest: bool) -> Vec<&str> {
    const ANY: &str = "HV-INIT: ";
    if guest {
        outcome
            .hv_log
            .iter()
            .filter_map(|line| line.split_once(" console: b\"").map(|(_, text)| text))
            .filter_map(|text| text.strip_prefix(ANY))
            .map(|marker| marker.trim_end().trim_end_matches('"'))
            .collect()
    } else {
        outcome
            .console
            .lines()
            .filter_map(|line| line.find(ANY).map(|at| &line[at + ANY.len()..]))
            .map(str::trim_end)
            .collect()
    }
}

/// Host and guest Linux both reached userspace with their CPUs, the guest ran its workload and
/// its timer, console (and, with several vCPUs, IPI) interrupts counted, and both finished.
pub(super) fn check_linux_beside_linux(
    outcome: &Outcome,
    host_cpus: u32,
    guest_vcpus: u32,
    guest_in_shell: bool,
) -> Result<(), String> {
    for (who, guest, cpus) in [("host", false, host_cpus), ("guest", true, guest_vcpus)] {
        let markers = init_markers(outcome, guest);
        let has = |prefix: &str| markers.iter().any(|marker| marker.starts_with(prefix));
        let mut wanted = vec!["userspace up".to_owned(), format!("cpus online={cpus}")];
        if !(guest && guest_in_shell) {
            wanted.extend(["workload ".to_owned(), "done".to_owned()]);
        }
        for wanted in wanted {
            if !has(&wanted) {
                return Err(format!("the {who}'s console lacks \"HV-INIT: {wanted}\""));
            }
        }
        if !guest || guest_in_shell {
            continue;
        }
        let mut counted = vec!["arch_timer", "uart-pl011"];
        if guest_vcpus > 1 {
            counted.push("IPI0:");
        }
        for name in counted {
            let count = markers
                .iter()
                .find_map(|marker| marker.strip_prefix(&format!("interrupts {name} ")))
                .and_then(|count| count.trim().parse::<u64>().ok());
            match count {
                Some(count) if count > 0 => {}
                other => {
                    return Err(format!(
                        "the guest's {name} interrupts did not count ({other:?})"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What an upstream pKVM guest must show beyond any Linux guest: the driver found the services
/// and shared its DMA pools (no "failed to allocate" pool), its devices are in /proc/iomem, and
/// the MMIO guard refused none of its accesses.
pub(super) fn check_pkvm_guest(outcome: &Outcome) -> Result<(), String> {
    let markers = init_markers(outcome, true);
    if !markers
        .iter()
        .any(|marker| marker.starts_with("iomem ") && marker.contains("pl011"))
    {
        return Err("the guest's /proc/iomem lacks its console (pl011)".into());
    }
    let guest_console = |needle: &str| {
        outcome
            .hv_log
            .iter()
            .any(|line| line.contains(" console: b\"") && line.contains(needle))
    };
    if guest_console("failed to allocate") {
        return Err("the guest could not allocate a DMA pool (MEM_SHARE refused?)".into());
    }
    let logged = |needle: &str| outcome.hv_log.iter().any(|line| line.contains(needle));
    // Its atomic DMA pool alone is 32 pages, each shared with its own call.
    if !logged("mem-protect: vm1 guest-sharing shares=32 ") {
        return Err("the guest did not share its DMA pool (32 MEM_SHAREs)".into());
    }
    if !logged("mmio-guard: vm1 mapped 0x8000000 ") {
        return Err("the guest did not declare its GIC distributor with MMIO_GUARD_MAP".into());
    }
    if logged("mmio-guard: refused vm1 ") {
        return Err("the MMIO guard refused an access of the guest".into());
    }
    Ok(())
}
