// The memory-protection component's build-time configuration: parsing the `HV_MEM_PROTECT_*`
// settings and writing them out as Rust constants.
//
// This file is shared: `build.rs` pulls it in with `include!("src/build_config.rs")` to turn
// the settings into `$OUT_DIR/mem_protect_config.rs` (which `main.rs` includes), and `lib.rs`
// compiles it as a module under `cfg(test)` so that the parser is tested on the host. (Plain
// `//` comments because an `include!`d file cannot carry inner doc comments.)
//
// Settings (addresses hexadecimal with a `0x` prefix, `_` allowed; ranges `start:end`, end
// exclusive, 4 KiB aligned):
//
// - `HV_MEM_PROTECT_RAM`: the host's RAM bank, one range, e.g. `0x40000000:0x80000000`; below
//   the 40-bit IPA space (1 TiB).
// - `HV_MEM_PROTECT_RESERVED`: comma-separated ranges inside the RAM owned by the hypervisor
//   from boot (its region, which holds the components), e.g. `0x7c000000:0x80000000`. May be
//   empty.
// - `HV_MEM_PROTECT_POLICY`: `largest-block` (default) or `page-only`.
// - `HV_MEM_PROTECT_DEVICE_TABLES`: decimal, the device pool's size in tables (default
//   `stage2::DEFAULT_DEVICE_POOL_TABLES`).
// - `HV_MEM_PROTECT_DEVICE_HOLES`: comma-separated ranges outside RAM the host's stage 2 must
//   never map (the host's emulated devices: a device block over them would bypass the
//   emulation). Rounded out to whole pages. May be empty.

/// Granule of every range.
const CONFIG_PAGE: u64 = 4096;
/// The host's IPA space (40 bits).
const CONFIG_IPA_LIMIT: u64 = 1 << 40;

/// A `start:end` range as parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ConfigRange {
    start: u64,
    end: u64,
}

/// Everything the settings say.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Config {
    ram: ConfigRange,
    reserved: Vec<ConfigRange>,
    page_only: bool,
    /// `None`: `stage2::DEFAULT_DEVICE_POOL_TABLES`.
    device_tables: Option<usize>,
    device_holes: Vec<ConfigRange>,
}

/// A hexadecimal address with a `0x` prefix.
fn parse_config_hex(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| format!("{text:?}: expected a hexadecimal number with a 0x prefix"))?
        .replace('_', "");
    u64::from_str_radix(&digits, 16).map_err(|error| format!("{text:?}: {error}"))
}

/// One `start:end` range, page aligned (or rounded out to pages with `round_out`), not empty,
/// inside the IPA space.
fn parse_config_range(text: &str, round_out: bool) -> Result<ConfigRange, String> {
    let Some((start, end)) = text.split_once(':') else {
        return Err(format!("{text:?}: expected `start:end`"));
    };
    let (mut start, mut end) = (parse_config_hex(start)?, parse_config_hex(end)?);
    if round_out {
        start &= !(CONFIG_PAGE - 1);
        end = end
            .checked_next_multiple_of(CONFIG_PAGE)
            .ok_or_else(|| format!("{text:?}: end overflows"))?;
    }
    if !start.is_multiple_of(CONFIG_PAGE) || !end.is_multiple_of(CONFIG_PAGE) {
        return Err(format!("{text:?}: not 4 KiB aligned"));
    }
    if end <= start {
        return Err(format!("{text:?}: empty range"));
    }
    if end > CONFIG_IPA_LIMIT {
        return Err(format!("{text:?}: beyond the 40-bit IPA space"));
    }
    Ok(ConfigRange { start, end })
}

/// A comma-separated list of ranges (blank entries skipped), sorted.
fn parse_config_ranges(text: &str, round_out: bool) -> Result<Vec<ConfigRange>, String> {
    let mut ranges = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| parse_config_range(item, round_out))
        .collect::<Result<Vec<_>, _>>()?;
    ranges.sort_by_key(|range| range.start);
    Ok(ranges)
}

/// Parses the settings (`None`: unset). `ram` is required here; the build script substitutes
/// a default when it is unset.
fn parse_config(
    ram: &str,
    reserved: Option<&str>,
    policy: Option<&str>,
    device_tables: Option<&str>,
    device_holes: Option<&str>,
) -> Result<Config, String> {
    let ram = parse_config_range(ram.trim(), false).map_err(|e| format!("RAM: {e}"))?;
    let reserved =
        parse_config_ranges(reserved.unwrap_or(""), false).map_err(|e| format!("RESERVED: {e}"))?;
    for range in &reserved {
        if range.start < ram.start || range.end > ram.end {
            return Err(format!(
                "RESERVED: {:#x}:{:#x} is not inside the RAM {:#x}:{:#x}",
                range.start, range.end, ram.start, ram.end
            ));
        }
    }
    if reserved.windows(2).any(|pair| pair[0].end > pair[1].start) {
        return Err("RESERVED: ranges overlap".into());
    }
    let page_only = match policy.map(str::trim).unwrap_or("") {
        "" | "largest-block" => false,
        "page-only" => true,
        other => {
            return Err(format!(
                "POLICY: {other:?}: expected `largest-block` or `page-only`"
            ));
        }
    };
    let device_tables = match device_tables.map(str::trim).unwrap_or("") {
        "" => None,
        text => Some(
            text.parse::<usize>()
                .map_err(|e| format!("DEVICE_TABLES: {text:?}: {e}"))?,
        ),
    };
    let device_holes = parse_config_ranges(device_holes.unwrap_or(""), true)
        .map_err(|e| format!("DEVICE_HOLES: {e}"))?;
    if let Some(hole) = device_holes
        .iter()
        .find(|hole| hole.start < ram.end && ram.start < hole.end)
    {
        return Err(format!(
            "DEVICE_HOLES: {:#x}:{:#x} overlaps the RAM",
            hole.start, hole.end
        ));
    }
    Ok(Config {
        ram,
        reserved,
        page_only,
        device_tables,
        device_holes,
    })
}

/// Tables the memory pool needs for one RAM bank (`stage2::memory_pool_tables` for a map with
/// this one range): the root and one table per 512 GiB, 1 GiB and 2 MiB window holding RAM.
fn config_memory_tables(ram: ConfigRange) -> usize {
    let windows: u64 = [39u32, 30, 21]
        .into_iter()
        .map(|shift| ((ram.end - 1) >> shift) - (ram.start >> shift) + 1)
        .sum();
    (1 + windows) as usize
}

/// The Rust constants `main.rs` includes.
fn render_config(config: &Config) -> String {
    let ranges = |ranges: &[ConfigRange]| {
        ranges
            .iter()
            .map(|r| format!("IpaRange::new({:#x}, {:#x}), ", r.start, r.end))
            .collect::<String>()
    };
    format!(
        "// Generated by build.rs from the HV_MEM_PROTECT_* settings.\n\
         pub const RAM: IpaRange = IpaRange::new({:#x}, {:#x});\n\
         pub const RAM_PAGES: usize = {};\n\
         pub const RESERVED: &[IpaRange] = &[{}];\n\
         pub const POLICY: MappingPolicy = MappingPolicy::{};\n\
         pub const MEMORY_TABLES: usize = {};\n\
         pub const DEVICE_TABLES: usize = {};\n\
         pub const DEVICE_HOLES: &[IpaRange] = &[{}];\n",
        config.ram.start,
        config.ram.end,
        (config.ram.end - config.ram.start) / CONFIG_PAGE,
        ranges(&config.reserved),
        if config.page_only {
            "PageOnly"
        } else {
            "LargestBlock"
        },
        config_memory_tables(config.ram),
        config
            .device_tables
            .map_or("DEFAULT_DEVICE_POOL_TABLES".to_string(), |n| n.to_string()),
        ranges(&config.device_holes),
    )
}

// The parser's tests (host only; the build script does not compile them).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_config_parses_and_renders() {
        let config = parse_config(
            "0x40000000:0x80000000",
            Some("0x7c000000:0x80000000, 0x40000000:0x40001000"),
            Some("page-only"),
            Some("12"),
            Some("0x9000000:0x9000010"),
        )
        .unwrap();
        assert_eq!(
            config.reserved,
            vec![
                ConfigRange {
                    start: 0x4000_0000,
                    end: 0x4000_1000
                },
                ConfigRange {
                    start: 0x7c00_0000,
                    end: 0x8000_0000
                }
            ]
        );
        assert!(config.page_only);
        assert_eq!(config.device_tables, Some(12));
        assert_eq!(
            config.device_holes,
            vec![ConfigRange {
                start: 0x900_0000,
                end: 0x900_1000
            }]
        );
        let ram = [crate::stage2::IpaRange::new(0x4000_0000, 0x8000_0000)];
        assert_eq!(
            config_memory_tables(config.ram),
            crate::stage2::memory_pool_tables(&crate::stage2::MemoryMap::new(&ram, 40).unwrap())
        );
        let text = render_config(&config);
        assert!(text.contains("RAM_PAGES: usize = 262144;"), "{text}");
        assert!(text.contains("MappingPolicy::PageOnly"), "{text}");
        for bad in [
            ("0x40000000", None, None, None, None),
            ("0x40000001:0x80000000", None, None, None, None),
            (
                "0x40000000:0x80000000",
                Some("0x30000000:0x40001000"),
                None,
                None,
                None,
            ),
            ("0x40000000:0x80000000", None, Some("huge"), None, None),
            ("0x40000000:0x80000000", None, None, Some("x"), None),
            (
                "0x40000000:0x80000000",
                None,
                None,
                None,
                Some("0x40000000:0x40001000"),
            ),
            ("0x40000000:0x20000000000", None, None, None, None),
        ] {
            assert!(
                parse_config(bad.0, bad.1, bad.2, bad.3, bad.4).is_err(),
                "{bad:?}"
            );
        }
        let default = parse_config("0x40000000:0x48000000", None, None, None, None).unwrap();
        assert!(
            render_config(&default).contains("DEVICE_TABLES: usize = DEFAULT_DEVICE_POOL_TABLES")
        );
    }
}
