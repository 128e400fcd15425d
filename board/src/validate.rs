//! Consistency rules for a board description, checked at compile time on every generated board
//! (see `build.rs`) and by the tests.

use crate::{Board, Gic, GicCpuInterfaces, GicVersion, LogSink, Region, SecondaryStart, UartKind};

const MIB: u64 = 1 << 20;

/// An inconsistency in a board's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardError {
    /// `memory.ram-size-granule` is not a power of two of at least 4 KiB.
    RamGranule,
    /// `memory.ram-base`, `default-ram-size`, `max-ram-size` or a `ram-sizes` entry is not a
    /// multiple of the granule; `ram-sizes` is not ascending or misses the default; or without
    /// `ram-sizes`, the default exceeds the maximum.
    RamSizes,
    /// `image.load-address`, `image.host-kernel-address` or `image.hypervisor-region-size` is
    /// not 2 MiB aligned.
    ImageAlignment,
    /// The image does not load inside the hypervisor's region.
    ImageOutsideHypervisorRegion,
    /// The host kernel does not start past the hypervisor's region, or the default RAM ends
    /// before it.
    HostKernelPlacement,
    /// `cpus.max` is 0 or `cpus.default` is not in 1..=max.
    CpuCount,
    /// PSCI boards have release addresses, or a spin table lacks one per CPU.
    ReleaseAddressCount,
    /// A release address is not 8-byte aligned, not in the hypervisor's region below the image
    /// (where neither the image nor the host can overwrite it), or used twice.
    ReleaseAddressPlacement,
    /// The log sink names no mini-UART of the board.
    LogSink,
    /// The console is not one of the board's UARTs.
    ConsoleUart,
    /// The board describes no GIC, two of the same version, or an empty GIC region.
    Gic,
    /// A GIC's regions overlap each other.
    GicOverlap,
    /// A maintenance or timer interrupt is not a PPI (INTID 16..=31), or timer PPIs repeat.
    Ppi,
    /// A device interrupt is not an SPI (INTID 32..=1019).
    Spi,
    /// A device is empty, or two devices share a name.
    Device,
    /// Two devices overlap, or a device overlaps RAM or a GIC.
    DeviceOverlap,
}

impl BoardError {
    /// What is wrong, naming the `board.toml` keys to change.
    pub const fn message(self) -> &'static str {
        match self {
            BoardError::RamGranule => {
                "memory.ram-size-granule must be a power of two of at least 4 KiB"
            }
            BoardError::RamSizes => {
                "memory.ram-base, default-ram-size, max-ram-size and ram-sizes must be \
                 multiples of ram-size-granule; ram-sizes ascending and holding \
                 default-ram-size, or without ram-sizes, default-ram-size <= max-ram-size"
            }
            BoardError::ImageAlignment => {
                "image.load-address, host-kernel-address and hypervisor-region-size must be \
                 2 MiB aligned"
            }
            BoardError::ImageOutsideHypervisorRegion => {
                "image.load-address must lie in the hypervisor's region \
                 (memory.ram-base + image.hypervisor-region-size)"
            }
            BoardError::HostKernelPlacement => {
                "image.host-kernel-address must lie past the hypervisor's region and inside \
                 the RAM an image uses on the smallest machine (memory.ram-sizes, \
                 default-ram-size, max-ram-size)"
            }
            BoardError::CpuCount => "cpus.max must be at least 1 and cpus.default in 1..=max",
            BoardError::ReleaseAddressCount => {
                "secondaries.release-addresses needs one address per CPU (cpus.max) with \
                 start = \"spin-table\", and none otherwise"
            }
            BoardError::ReleaseAddressPlacement => {
                "secondaries.release-addresses must be distinct, 8-byte aligned and between \
                 memory.ram-base and image.load-address"
            }
            BoardError::LogSink => "log.uart must name a [[uart]] of kind \"mini-uart\"",
            BoardError::ConsoleUart => "console.uart must name a [[uart]]",
            BoardError::Gic => {
                "the board needs at least one [[gic]], at most one per version, with \
                 non-empty regions"
            }
            BoardError::GicOverlap => "a [[gic]]'s regions must not overlap each other",
            BoardError::Ppi => {
                "gic maintenance-interrupt and the [timer] interrupts must be distinct PPIs \
                 (INTID 16..=31)"
            }
            BoardError::Spi => "[[device]] and [[uart]] interrupts must be SPIs (INTID 32..=1019)",
            BoardError::Device => "each [[device]] and [[uart]] needs a size and a name of its own",
            BoardError::DeviceOverlap => {
                "[[device]] and [[uart]] regions must not overlap each other, RAM (up to \
                 memory.max-ram-size) or a [[gic]]"
            }
        }
    }
}

impl core::fmt::Display for BoardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn is_ppi(intid: u32) -> bool {
    16 <= intid && intid < 32
}

const fn is_spi(intid: u32) -> bool {
    32 <= intid && intid < 1020
}

impl Board {
    /// Checks the description for consistency. Runs at compile time on every generated board.
    pub const fn validate(&self) -> Result<(), BoardError> {
        if let Err(error) = self.validate_layout() {
            return Err(error);
        }
        if let Err(error) = self.validate_cpus() {
            return Err(error);
        }
        if let Err(error) = self.validate_uarts() {
            return Err(error);
        }
        if let Err(error) = self.validate_interrupt_controller() {
            return Err(error);
        }
        self.validate_devices()
    }

    const fn validate_layout(&self) -> Result<(), BoardError> {
        let granule = self.ram_size_granule;
        if !granule.is_power_of_two() || granule < 4096 {
            return Err(BoardError::RamGranule);
        }
        if !self.ram_base.is_multiple_of(granule)
            || !self.default_ram_size.is_multiple_of(granule)
            || !self.max_ram_size.is_multiple_of(granule)
        {
            return Err(BoardError::RamSizes);
        }
        let sizes = self.ram_sizes;
        let smallest_machine = if sizes.is_empty() {
            if self.default_ram_size > self.max_ram_size {
                return Err(BoardError::RamSizes);
            }
            self.min_ram_size()
        } else {
            let mut holds_default = false;
            let mut i = 0;
            while i < sizes.len() {
                if !sizes[i].is_multiple_of(granule) || (i > 0 && sizes[i] <= sizes[i - 1]) {
                    return Err(BoardError::RamSizes);
                }
                holds_default |= sizes[i] == self.default_ram_size;
                i += 1;
            }
            if !holds_default {
                return Err(BoardError::RamSizes);
            }
            sizes[0]
        };
        if !self.image_load_address.is_multiple_of(2 * MIB)
            || !self.host_kernel_address.is_multiple_of(2 * MIB)
            || !self.hypervisor_region_size.is_multiple_of(2 * MIB)
        {
            return Err(BoardError::ImageAlignment);
        }
        if !self.hypervisor_region().contains(self.image_load_address) {
            return Err(BoardError::ImageOutsideHypervisorRegion);
        }
        if self.host_kernel_address < self.hypervisor_region_end()
            || self.host_kernel_address >= self.ram_base + self.usable_ram_size(smallest_machine)
        {
            return Err(BoardError::HostKernelPlacement);
        }
        Ok(())
    }

    const fn validate_cpus(&self) -> Result<(), BoardError> {
        if self.max_cpus == 0 || self.default_cpus == 0 || self.default_cpus > self.max_cpus {
            return Err(BoardError::CpuCount);
        }
        let addresses = self.release_addresses;
        let expected = match self.secondary_start {
            SecondaryStart::PsciSmc => 0,
            SecondaryStart::SpinTable => self.max_cpus,
        };
        if addresses.len() != expected {
            return Err(BoardError::ReleaseAddressCount);
        }
        let mut i = 0;
        while i < addresses.len() {
            let address = addresses[i];
            if !address.is_multiple_of(8)
                || address < self.ram_base
                || address + 8 > self.image_load_address
            {
                return Err(BoardError::ReleaseAddressPlacement);
            }
            let mut j = 0;
            while j < i {
                if addresses[j] == address {
                    return Err(BoardError::ReleaseAddressPlacement);
                }
                j += 1;
            }
            i += 1;
        }
        Ok(())
    }

    const fn validate_uarts(&self) -> Result<(), BoardError> {
        if let LogSink::MiniUart { base } = self.log_sink {
            let mut found = false;
            let mut i = 0;
            while i < self.uarts.len() {
                let uart = &self.uarts[i];
                found |= uart.region.base == base && matches!(uart.kind, UartKind::MiniUart);
                i += 1;
            }
            if !found {
                return Err(BoardError::LogSink);
            }
        }
        let mut console = false;
        let mut i = 0;
        while i < self.uarts.len() {
            console |= self.uarts[i].region.base == self.console_uart;
            i += 1;
        }
        if !console {
            return Err(BoardError::ConsoleUart);
        }
        Ok(())
    }

    const fn validate_interrupt_controller(&self) -> Result<(), BoardError> {
        if self.gics.is_empty() {
            return Err(BoardError::Gic);
        }
        let mut i = 0;
        while i < self.gics.len() {
            let gic = &self.gics[i];
            let (regions, count) = gic_regions(gic);
            let mut r = 0;
            while r < count {
                if regions[r].size == 0 {
                    return Err(BoardError::Gic);
                }
                let mut s = 0;
                while s < r {
                    if regions[r].overlaps(&regions[s]) {
                        return Err(BoardError::GicOverlap);
                    }
                    s += 1;
                }
                r += 1;
            }
            let mut j = 0;
            while j < i {
                if matches!(
                    (self.gics[j].version(), gic.version()),
                    (GicVersion::V2, GicVersion::V2) | (GicVersion::V3, GicVersion::V3)
                ) {
                    return Err(BoardError::Gic);
                }
                j += 1;
            }
            if !is_ppi(gic.maintenance_interrupt) {
                return Err(BoardError::Ppi);
            }
            i += 1;
        }
        let timer = self.timer;
        let ppis = [
            timer.secure_physical,
            timer.physical,
            timer.virt,
            timer.hypervisor,
        ];
        let mut i = 0;
        while i < ppis.len() {
            if !is_ppi(ppis[i]) {
                return Err(BoardError::Ppi);
            }
            let mut j = 0;
            while j < i {
                if ppis[i] == ppis[j] {
                    return Err(BoardError::Ppi);
                }
                j += 1;
            }
            let mut g = 0;
            while g < self.gics.len() {
                if self.gics[g].maintenance_interrupt == ppis[i] {
                    return Err(BoardError::Ppi);
                }
                g += 1;
            }
            i += 1;
        }
        Ok(())
    }

    const fn validate_devices(&self) -> Result<(), BoardError> {
        let devices = self.devices;
        let ram = Region {
            base: self.ram_base,
            size: self.max_ram_size,
        };
        let mut i = 0;
        while i < devices.len() {
            let device = &devices[i];
            if device.region.size == 0 || device.name.is_empty() {
                return Err(BoardError::Device);
            }
            if let Some(intid) = device.interrupt
                && !is_spi(intid)
            {
                return Err(BoardError::Spi);
            }
            if device.region.overlaps(&ram) {
                return Err(BoardError::DeviceOverlap);
            }
            let mut j = 0;
            while j < i {
                if same_str(devices[j].name, device.name) {
                    return Err(BoardError::Device);
                }
                if devices[j].region.overlaps(&device.region) {
                    return Err(BoardError::DeviceOverlap);
                }
                j += 1;
            }
            let mut g = 0;
            while g < self.gics.len() {
                let (regions, count) = gic_regions(&self.gics[g]);
                let mut r = 0;
                while r < count {
                    if regions[r].overlaps(&device.region) {
                        return Err(BoardError::DeviceOverlap);
                    }
                    r += 1;
                }
                g += 1;
            }
            i += 1;
        }
        // Every UART is one of the devices, with the same registers and interrupt.
        let mut u = 0;
        while u < self.uarts.len() {
            let uart = &self.uarts[u];
            let mut listed = false;
            let mut d = 0;
            while d < devices.len() {
                let device = &devices[d];
                listed |= same_str(device.name, uart.name)
                    && device.region.base == uart.region.base
                    && device.region.size == uart.region.size
                    && matches!(device.interrupt, Some(intid) if intid == uart.interrupt)
                    && same_str(device.compatible, uart.kind.compatible());
                d += 1;
            }
            if !listed {
                return Err(BoardError::Device);
            }
            u += 1;
        }
        Ok(())
    }
}

/// A GIC's register regions: the first `count` entries of the array.
const fn gic_regions(gic: &Gic) -> ([Region; 4], usize) {
    match gic.cpu_interfaces {
        GicCpuInterfaces::V2 { gicc, gich, gicv } => ([gic.gicd, gicc, gich, gicv], 4),
        GicCpuInterfaces::V3 { gicr, .. } => ([gic.gicd, gicr, gicr, gicr], 2),
    }
}
