//! [`Env`]: what a test can learn about its machine, i.e. the parsed DTB and helpers over it.

use core::fmt;

use fdt::{Fdt, node::FdtNode};

use crate::smccc::Conduit;

/// Compatible string of the console UART this runtime can drive.
const PL011_COMPATIBLE: &str = "arm,pl011";

/// A physical address range named by the DTB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// Name of the node the range comes from (e.g. `hypervisor@40000000`).
    pub name: &'static str,
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MemoryRange {
    /// One past the last address (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

impl fmt::Display for MemoryRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{:#x}, {:#x})", self.name, self.base, self.end())
    }
}

/// Why a DTB could not be used.
#[derive(Clone, Copy, Debug)]
pub struct BadDtb(pub fdt::FdtError);

/// The guest's environment: the device tree it was booted with, and helpers over it.
///
/// The runtime builds one at boot; tests receive it as `&Env` (or call [`env()`](crate::env())).
#[derive(Clone, Copy)]
pub struct Env {
    dtb_address: usize,
    fdt: Fdt<'static>,
}

impl Env {
    /// Parses the DTB at `address`.
    ///
    /// # Safety
    ///
    /// `address` must point to readable memory that holds a flattened device tree (or at least
    /// a header whose magic does not match) and stays unchanged for the rest of the run.
    pub unsafe fn from_dtb(address: usize) -> Result<Self, BadDtb> {
        // SAFETY: The caller guarantees the blob is readable and lives (unchanged) forever.
        let fdt = unsafe { Fdt::from_ptr(address as *const u8) }.map_err(BadDtb)?;
        Ok(Self {
            dtb_address: address,
            fdt,
        })
    }

    /// Parses a DTB held in a byte slice (for host-side use).
    pub fn from_slice(dtb: &'static [u8]) -> Result<Self, BadDtb> {
        let fdt = Fdt::new(dtb).map_err(BadDtb)?;
        Ok(Self {
            dtb_address: dtb.as_ptr() as usize,
            fdt,
        })
    }

    /// The parsed device tree.
    pub fn fdt(&self) -> &Fdt<'static> {
        &self.fdt
    }

    /// Where the DTB is in memory.
    pub fn dtb_address(&self) -> usize {
        self.dtb_address
    }

    /// The node at `path` (`/a/b@1/c`, or an alias name optionally followed by `/more/path`).
    ///
    /// A component without a unit address matches the first child with that base name. Unlike
    /// [`Fdt::find_node`] (fdt 0.1.5), this tolerates `FDT_NOP` tokens between sibling nodes,
    /// which QEMU leaves behind when it removes the memory nodes of a DTB it loads.
    pub fn find_node(&self, path: &str) -> Option<FdtNode<'_, 'static>> {
        let (mut node, rest) = match path.strip_prefix('/') {
            Some(rest) => (self.fdt.find_node("/")?, rest),
            None => {
                let (alias, rest) = path.split_once('/').unwrap_or((path, ""));
                let target = self.find_node("/aliases")?.property(alias)?.as_str()?;
                if !target.starts_with('/') {
                    return None;
                }
                (self.find_node(target)?, rest)
            }
        };
        for component in rest.split('/').filter(|c| !c.is_empty()) {
            node = node.children().find(|child| {
                if component.contains('@') {
                    child.name == component
                } else {
                    child.name.split('@').next() == Some(component)
                }
            })?;
        }
        Some(node)
    }

    /// The PSCI conduit from `/psci`'s `method` property, if the node and property exist and
    /// name `hvc` or `smc`.
    pub fn psci_conduit(&self) -> Option<Conduit> {
        let method = self.find_node("/psci")?.property("method")?.as_str()?;
        Conduit::from_method(method)
    }

    /// Base address of the console PL011: the node `/chosen/stdout-path` names (options after
    /// `:` ignored, aliases resolved) if it is an `arm,pl011`, else the first `arm,pl011` node.
    pub fn console_pl011(&self) -> Option<usize> {
        let is_pl011 = |node: &FdtNode<'_, '_>| {
            node.compatible()
                .is_some_and(|c| c.all().any(|s| s == PL011_COMPATIBLE))
        };
        let from_chosen = self
            .find_node("/chosen")
            .and_then(|chosen| chosen.property("stdout-path"))
            .and_then(|p| p.as_str())
            .and_then(|path| path.split(':').next())
            .and_then(|path| self.find_node(path))
            .filter(is_pl011);
        let node = from_chosen.or_else(|| self.fdt.find_compatible(&[PL011_COMPATIBLE]))?;
        let base = node.reg()?.next()?.starting_address as u64;
        // A UART under a bus node (the Pi 4's `/soc`) has a bus address: the bus's `ranges`
        // turn it into the CPU's.
        let root_address_cells = self.fdt.find_node("/")?.cell_sizes().address_cells;
        let base = self
            .bus_of(node.name)
            .map_or(Some(base), |bus| translate(bus, base, root_address_cells))?;
        (base != 0).then_some(base as usize)
    }

    /// The top-level node with `ranges` that `name` is a child of, if any.
    fn bus_of(&self, name: &str) -> Option<FdtNode<'_, '_>> {
        self.fdt.find_node("/")?.children().find(|top| {
            top.property("ranges").is_some() && top.children().any(|child| child.name == name)
        })
    }

    /// The MPIDR affinity values of the machine's CPUs, in DTB order: the first `reg` value of
    /// every child of `/cpus` whose `device_type` is `"cpu"` (what PSCI `CPU_ON` and
    /// `AFFINITY_INFO` take; see [`crate::smp`]).
    pub fn cpu_mpidrs(&self) -> impl Iterator<Item = u64> + '_ {
        self.find_node("/cpus")
            .into_iter()
            .flat_map(|cpus| cpus.children())
            .filter(|node| node.property("device_type").and_then(|p| p.as_str()) == Some("cpu"))
            .filter_map(|node| Some(node.reg()?.next()?.starting_address as u64))
    }

    /// Every `reg` range of every child of `/reserved-memory`.
    pub fn reserved_memory(&self) -> impl Iterator<Item = MemoryRange> + '_ {
        self.find_node("/reserved-memory")
            .into_iter()
            .flat_map(|node| node.children())
            .flat_map(|child| {
                let name = child.name;
                child.reg().into_iter().flatten().map(move |r| MemoryRange {
                    name,
                    base: r.starting_address as u64,
                    size: r.size.unwrap_or(0) as u64,
                })
            })
    }

    /// The hypervisor's own memory: the ranges of `/reserved-memory` children named
    /// `hypervisor` or `hypervisor@…`.
    pub fn hypervisor_memory(&self) -> impl Iterator<Item = MemoryRange> + '_ {
        self.reserved_memory()
            .filter(|r| r.name == "hypervisor" || r.name.starts_with("hypervisor@"))
    }
}

/// `address` on `bus` (a child of the root, whose addresses take `parent_address_cells`)
/// translated through the bus's `ranges` (child address, parent address, size; an empty
/// `ranges` maps one to one), or `None` if no range holds it.
fn translate(bus: FdtNode<'_, '_>, address: u64, parent_address_cells: usize) -> Option<u64> {
    let ranges = bus.property("ranges")?.value;
    if ranges.is_empty() {
        return Some(address);
    }
    let cells = |bytes: &[u8]| {
        bytes.chunks_exact(4).fold(0u64, |value, cell| {
            (value << 32) | u64::from(u32::from_be_bytes([cell[0], cell[1], cell[2], cell[3]]))
        })
    };
    let child = bus.cell_sizes();
    let entry = (child.address_cells + parent_address_cells + child.size_cells) * 4;
    if entry == 0 {
        return None;
    }
    ranges.chunks_exact(entry).find_map(|range| {
        let (child_base, rest) = range.split_at(child.address_cells * 4);
        let (parent_base, size) = rest.split_at(parent_address_cells * 4);
        let (child_base, parent_base, size) = (cells(child_base), cells(parent_base), cells(size));
        (address >= child_base && address - child_base < size)
            .then(|| parent_base + (address - child_base))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt's DTB plus `/aliases/serial0`, `stdout-path = "serial0:115200n8"` and a
    /// `/reserved-memory` with `hypervisor@b000000` (2 MiB) and `other@b400000` (4 KiB), as QEMU
    /// hands it to a guest (`-machine dumpdtb` with `-dtb`): the old memory node is replaced by
    /// `FDT_NOP`s, which fdt 0.1.5's own `find_node` trips over. Trailing free space cut off.
    static QEMU_VIRT_HV_DTB: &[u8] = include_bytes!("../testdata/qemu-virt-hv.dtb");

    fn env() -> Env {
        Env::from_slice(QEMU_VIRT_HV_DTB).expect("fixture parses")
    }

    #[test]
    fn finds_nodes_after_nops() {
        let env = env();
        assert_eq!(env.find_node("/chosen").map(|n| n.name), Some("chosen"));
        assert_eq!(
            env.find_node("/pl011@9000000").map(|n| n.name),
            Some("pl011@9000000")
        );
        assert_eq!(
            env.find_node("/pl011").map(|n| n.name),
            Some("pl011@9000000")
        );
        assert!(env.find_node("/pl011@1234").is_none());
        assert_eq!(
            env.find_node("serial0").map(|n| n.name),
            Some("pl011@9000000")
        );
    }

    #[test]
    fn console_follows_stdout_path_alias() {
        assert_eq!(env().console_pl011(), Some(0x0900_0000));
    }

    #[test]
    fn a_console_on_a_bus_is_found_at_its_cpu_address() {
        // As the Raspberry Pi 4's tree has it: the PL011 under /soc, whose addresses are the
        // VideoCore bus's (0x7e..), mapped to the CPU's 0xfe.. by /soc's ranges.
        let mut tree = hv_devicetree::DeviceTree::default();
        tree.root.set_u32("#address-cells", 2);
        tree.root.set_u32("#size-cells", 1);
        let soc = tree.ensure_node("/soc");
        soc.set_u32("#address-cells", 1);
        soc.set_u32("#size-cells", 1);
        let ranges: Vec<u8> = [0x7e00_0000u32, 0, 0xfe00_0000, 0x180_0000]
            .iter()
            .flat_map(|cell| cell.to_be_bytes())
            .collect();
        soc.set_property("ranges", ranges);
        let uart = tree.ensure_node("/soc/serial@7e201000");
        uart.set_property("compatible", b"arm,pl011\0arm,primecell\0".to_vec());
        let reg: Vec<u8> = [0x7e20_1000u32, 0x200]
            .iter()
            .flat_map(|cell| cell.to_be_bytes())
            .collect();
        uart.set_property("reg", reg);
        let blob: &'static [u8] = Box::leak(tree.to_bytes().into_boxed_slice());
        let env = Env::from_slice(blob).expect("the tree parses");
        assert_eq!(env.console_pl011(), Some(0xfe20_1000));
    }

    #[test]
    fn psci_conduit_is_read() {
        assert_eq!(env().psci_conduit(), Some(Conduit::Hvc));
    }

    #[test]
    fn cpus_are_listed() {
        assert_eq!(env().cpu_mpidrs().collect::<Vec<_>>(), [0]);
    }

    /// QEMU virt's DTB for `-smp 2`, reduced to `/cpus` (with its `cpu-map`) and `/psci`;
    /// built from `two-cpus.dts` with `dtc -I dts -O dtb`.
    static TWO_CPUS_DTB: &[u8] = include_bytes!("../testdata/two-cpus.dtb");

    #[test]
    fn two_cpus_are_listed() {
        let env = Env::from_slice(TWO_CPUS_DTB).expect("fixture parses");
        assert_eq!(env.cpu_mpidrs().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(env.psci_conduit(), Some(Conduit::Smc));
    }

    #[test]
    fn reserved_and_hypervisor_memory() {
        let env = env();
        assert_eq!(env.reserved_memory().count(), 2);
        let hv: Vec<_> = env.hypervisor_memory().collect();
        assert_eq!(
            hv,
            [MemoryRange {
                name: "hypervisor@b000000",
                base: 0x0b00_0000,
                size: 0x20_0000
            }]
        );
        assert_eq!(hv[0].end(), 0x0b20_0000);
    }
}
