//! `cargo xtask trace-profile`: where the instructions of a loop go, per function, from QEMU's
//! own execution trace.
//!
//! The Debian QEMU has no TCG plugins, but `-d in_asm,exec,nochain` logs every translated
//! block (its instructions, once) and every block executed (with chaining off, each one). A
//! window of iterations is cut out of the trace by counting executions of a marker block (the
//! block right after the loop's `hvc`, say), and each instruction executed in it is counted for
//! the ELF function holding its address: kernel, component and guest images are linked at
//! disjoint addresses, so one table of symbols covers them all. `memcpy` and `memset` are also
//! counted per caller (the function executed just before), since the compiler calls them for
//! struct moves.

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSymbol, SymbolKind};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The command's arguments.
#[derive(clap::Args)]
pub struct TraceProfileArgs {
    /// The QEMU log (`-d in_asm,exec,nochain -D <log>`).
    #[arg(long)]
    log: PathBuf,
    /// Address (hex) of the block that marks one iteration, e.g. the instruction after the
    /// loop's `hvc`.
    #[arg(long)]
    marker: String,
    /// Iterations to skip first (warm-up, earlier loops).
    #[arg(long, default_value_t = 2000)]
    start: u64,
    /// Iterations to count.
    #[arg(long, default_value_t = 500)]
    count: u64,
    /// The ELF files whose symbols name the addresses (kernel, components, guest).
    #[arg(required = true)]
    elfs: Vec<PathBuf>,
}

/// Runs the command: prints instructions per iteration for each function.
pub fn run(args: &TraceProfileArgs) -> Result<()> {
    let marker = u64::from_str_radix(args.marker.trim_start_matches("0x"), 16)
        .with_context(|| format!("--marker {} is not a hex address", args.marker))?;
    let mut symbols = Symbols::default();
    for elf in &args.elfs {
        symbols.add_elf(elf)?;
    }
    symbols.finish();
    let log = std::fs::File::open(&args.log)
        .with_context(|| format!("cannot open {}", args.log.display()))?;
    let window = Window {
        marker,
        start: args.start,
        count: args.count,
    };
    let profile = profile(BufReader::new(log), &window, &symbols)?;
    print!("{}", profile.report(args.count));
    Ok(())
}

/// The function symbols of some ELF files.
#[derive(Default)]
struct Symbols {
    /// (start, end, name), sorted by start.
    ranges: Vec<(u64, u64, String)>,
}

impl Symbols {
    fn add_elf(&mut self, path: &Path) -> Result<()> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = object::File::parse(&*bytes)
            .with_context(|| format!("{} is not a readable ELF file", path.display()))?;
        for symbol in file.symbols() {
            // Assembly labels (the vectors, the entry path) have no size: `finish` ends them at
            // the next symbol.
            let name = symbol.name().unwrap_or("?");
            // `$x`/`$d` are the AArch64 ELF's mapping symbols (code or data from here on).
            // Assembly labels may come without a type (`Unknown`); data symbols are never
            // executed, so taking them too names nothing wrongly.
            let named = matches!(
                symbol.kind(),
                SymbolKind::Text | SymbolKind::Label | SymbolKind::Unknown | SymbolKind::Data
            );
            if named && symbol.section_index().is_some() && !name.starts_with('$') {
                let name = format!("{:#}", rustc_demangle::demangle(name));
                self.add(symbol.address(), symbol.size(), name);
            }
        }
        Ok(())
    }

    fn add(&mut self, start: u64, size: u64, name: String) {
        self.ranges.push((start, start + size, name));
        self.ranges.sort_by_key(|&(start, ..)| start);
    }

    /// Ends every sizeless symbol where the next one starts (within 64 KiB).
    fn finish(&mut self) {
        for index in 0..self.ranges.len() {
            let (start, end, _) = self.ranges[index];
            if end == start {
                let next = self
                    .ranges
                    .get(index + 1)
                    .map_or(start + 0x1_0000, |&(next, ..)| next);
                self.ranges[index].1 = next.min(start + 0x1_0000);
            }
        }
    }

    fn name_of(&self, address: u64) -> &str {
        let index = self.ranges.partition_point(|&(start, ..)| start <= address);
        match index.checked_sub(1).map(|index| &self.ranges[index]) {
            Some((_, end, name)) if address < *end => name,
            _ => "?",
        }
    }
}

/// Which iterations count.
struct Window {
    marker: u64,
    start: u64,
    count: u64,
}

/// Instructions counted per function, and per caller for memcpy and memset.
#[derive(Debug, Default, PartialEq)]
struct Profile {
    total: u64,
    per_function: HashMap<String, u64>,
    per_copy_caller: HashMap<(String, String), u64>,
}

impl Profile {
    fn report(&self, iterations: u64) -> String {
        let per = |count: u64| count as f64 / iterations.max(1) as f64;
        let mut out = format!(
            "{} instructions in {iterations} iterations: {:.0} per iteration\n",
            self.total,
            per(self.total)
        );
        let mut functions: Vec<_> = self.per_function.iter().collect();
        functions.sort_by(|a, b| b.1.cmp(a.1));
        for (name, count) in functions {
            out += &format!("{:>9.1}  {name}\n", per(*count));
        }
        let mut copies: Vec<_> = self.per_copy_caller.iter().collect();
        copies.sort_by(|a, b| b.1.cmp(a.1));
        for ((routine, caller), count) in copies {
            out += &format!("{:>9.1}  {routine} called by {caller}\n", per(*count));
        }
        out
    }
}

/// Reads a QEMU `in_asm,exec,nochain` log and counts the instructions executed in `window`.
fn profile(log: impl BufRead, window: &Window, symbols: &Symbols) -> Result<Profile> {
    // Translated blocks by their host address (what an `exec` line names): the guest
    // addresses of their instructions.
    let mut blocks: HashMap<String, Vec<u64>> = HashMap::new();
    let mut translating: Option<Vec<u64>> = None;
    let mut seen = 0u64;
    let mut profile = Profile::default();
    let mut previous = String::new();
    let mut copy_caller = String::new();
    for line in log.lines() {
        let line = line.context("reading the log")?;
        if line.starts_with("IN:") {
            translating = Some(Vec::new());
        } else if let (Some(block), Some((address, _))) = (&mut translating, line.split_once(':'))
            && let Some(hex) = address.strip_prefix("0x")
            && let Ok(address) = u64::from_str_radix(hex, 16)
        {
            block.push(address);
        } else if let Some((host, guest)) = exec_line(&line) {
            if let Some(block) = translating.take()
                && block.first() == Some(&guest)
            {
                blocks.insert(host.to_owned(), block);
            }
            if guest == window.marker {
                seen += 1;
                if seen >= window.start + window.count {
                    break;
                }
            }
            if seen < window.start {
                continue;
            }
            // A block never seen translated (before the log began) counts as one instruction.
            let untranslated = [guest];
            let block = blocks.get(host).map_or(&untranslated[..], Vec::as_slice);
            let name = symbols.name_of(block[0]).to_owned();
            let executed = block.len() as u64;
            profile.total += executed;
            *profile.per_function.entry(name.clone()).or_default() += executed;
            if name == "memcpy" || name == "memset" {
                if previous != "memcpy" && previous != "memset" {
                    copy_caller = previous.clone();
                }
                *profile
                    .per_copy_caller
                    .entry((name.clone(), copy_caller.clone()))
                    .or_default() += executed;
            }
            previous = name;
        }
    }
    if seen < window.start + window.count {
        bail!(
            "the marker {:#x} was executed {seen} times, fewer than --start + --count",
            window.marker
        );
    }
    Ok(profile)
}

/// The host block address and guest address of an `exec` line: `Trace 0: 0x7f.. [0/4008/..]`.
fn exec_line(line: &str) -> Option<(&str, u64)> {
    let rest = &line[line.find("Trace ")?..];
    let (_, rest) = rest.split_once(": ")?;
    let (host, rest) = rest.split_once(" [")?;
    let guest = rest.split('/').nth(1)?;
    Some((host, u64::from_str_radix(guest, 16).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
----------------
IN: 
0x1000:  d503201f  nop
0x1004:  d4000002  hvc #0

Trace 0: 0x7f00 [0000000000000000/0000000000001000/00000061/ff020200] 
----------------
IN: 
0x2000:  d503201f  nop
0x2004:  d503201f  nop
0x2008:  d65f03c0  ret

Trace 0: 0x7f80 [0000000000000000/0000000000002000/00000061/ff020200] 
----------------
IN: 
0x3000:  d65f03c0  ret

Trace 0: 0x7fc0 [0000000000000000/0000000000003000/00000061/ff020200] 
Trace 0: 0x7f00 [0000000000000000/0000000000001000/00000061/ff020200] 
Trace 0: 0x7f80 [0000000000000000/0000000000002000/00000061/ff020200] 
Trace 0: 0x7fc0 [0000000000000000/0000000000003000/00000061/ff020200] 
Trace 0: 0x7f00 [0000000000000000/0000000000001000/00000061/ff020200] 
Trace 0: 0x7f80 [0000000000000000/0000000000002000/00000061/ff020200] 
Trace 0: 0x7fc0 [0000000000000000/0000000000003000/00000061/ff020200] 
Trace 0: 0x7f00 [0000000000000000/0000000000001000/00000061/ff020200] 
";

    fn symbols() -> Symbols {
        let mut symbols = Symbols::default();
        symbols.add(0x1000, 8, "guest_loop".into());
        symbols.add(0x2000, 12, "kernel_path".into());
        symbols.add(0x3000, 4, "memcpy".into());
        symbols
    }

    #[test]
    fn counts_each_executed_instruction_for_its_function_within_the_window() {
        // Marker executions: 1, 2, 3, 4. Skip the first, count two iterations.
        let window = Window {
            marker: 0x1000,
            start: 2,
            count: 2,
        };
        let profile = profile(LOG.as_bytes(), &window, &symbols()).unwrap();
        assert_eq!(profile.total, 2 * (2 + 3 + 1));
        assert_eq!(profile.per_function["guest_loop"], 4);
        assert_eq!(profile.per_function["kernel_path"], 6);
        assert_eq!(
            profile.per_copy_caller[&("memcpy".to_owned(), "kernel_path".to_owned())],
            2
        );
        assert!(
            profile
                .report(2)
                .starts_with("12 instructions in 2 iterations: 6 per")
        );
    }

    #[test]
    fn a_window_past_the_trace_is_an_error() {
        let window = Window {
            marker: 0x1000,
            start: 3,
            count: 5,
        };
        let error = profile(LOG.as_bytes(), &window, &symbols()).unwrap_err();
        assert!(error.to_string().contains("executed 4 times"), "{error}");
    }

    #[test]
    fn addresses_outside_every_symbol_are_unnamed() {
        assert_eq!(symbols().name_of(0x1004), "guest_loop");
        assert_eq!(symbols().name_of(0x1008), "?");
        assert_eq!(symbols().name_of(0x10), "?");
    }

    #[test]
    fn a_sizeless_label_runs_to_the_next_symbol() {
        let mut symbols = symbols();
        symbols.add(0x2800, 0, "guest_exit".into());
        symbols.finish();
        assert_eq!(symbols.name_of(0x2ffc), "guest_exit");
        assert_eq!(symbols.name_of(0x3000), "memcpy");
    }
}
