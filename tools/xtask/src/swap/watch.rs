//! `cargo xtask run --watch`: swaps a component into the running system when its sources
//! change, so an edit to a component is live a few seconds after it is saved.
//!
//! Each component's package folder (its `src/` and `Cargo.toml`) is looked at once a second;
//! when one changed and has then stayed unchanged for a second (an editor's several writes make
//! one swap), the component is rebuilt and swapped as `cargo xtask swap` does, and the outcome
//! printed. Shared crates (the runtime, `hv-ipc`) are not watched: a change there concerns every
//! component, and swapping them all unasked would be a surprise; `cargo xtask swap` each.
//!
//! Polling file times rather than an OS notification API: no dependency, works on every file
//! system, and a second of latency is nothing beside the rebuild.

use super::{SwapRequest, swap};
use crate::{System, paths};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How often the folders are looked at, and how long they must stay unchanged.
const PERIOD: Duration = Duration::from_secs(1);

/// A component's package folder, found by its crate name under `components/`.
pub fn package_dir(crate_name: &str) -> Option<PathBuf> {
    let components = paths::workspace().join("components");
    std::fs::read_dir(&components)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .and_then(|manifest| {
                    manifest
                        .get("package")?
                        .get("name")?
                        .as_str()
                        .map(|name| name == crate_name)
                })
                .unwrap_or(false)
        })
}

/// The newest modification time of the files under `dir`'s `src/` and its `Cargo.toml`.
pub fn newest_change(dir: &Path) -> Option<SystemTime> {
    fn walk(path: &Path, newest: &mut Option<SystemTime>) {
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = metadata.modified() {
            *newest = (*newest).max(Some(modified));
        }
    }
    let mut newest = None;
    walk(&dir.join("src"), &mut newest);
    walk(&dir.join("Cargo.toml"), &mut newest);
    newest
}

/// Prints a line on a terminal QEMU keeps in raw mode (where a bare newline does not return
/// the carriage).
fn say(text: &str) {
    eprint!("{}\r\n", text.replace('\n', "\r\n"));
}

/// Watches `system`'s components until `stop` is set, swapping each whose sources change.
pub fn watch(system: &System, control: &super::ControlLine, stop: &AtomicBool) {
    let mut watched: BTreeMap<String, (PathBuf, Option<SystemTime>)> = BTreeMap::new();
    for component in &system.manifest.components {
        match package_dir(&component.crate_name) {
            Some(dir) => {
                let seen = newest_change(&dir);
                watched.insert(component.name.clone(), (dir, seen));
            }
            None => say(&format!(
                "hot-swap watch: no package folder for {} ({}); not watched",
                component.name, component.crate_name
            )),
        }
    }
    // Changed, and when it was last seen changing.
    let mut changed: BTreeMap<String, SystemTime> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(PERIOD);
        for (name, (dir, seen)) in &mut watched {
            let now = newest_change(dir);
            if now > *seen {
                *seen = now;
                changed.insert(name.clone(), SystemTime::now());
            }
        }
        let settled: Vec<String> = changed
            .iter()
            .filter(|(_, when)| when.elapsed().is_ok_and(|quiet| quiet >= PERIOD))
            .map(|(name, _)| name.clone())
            .collect();
        for name in settled {
            changed.remove(&name);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            say(&format!(
                "hot-swap watch: {name} changed; rebuilding and swapping it"
            ));
            let request = SwapRequest {
                system,
                control,
                component: &name,
                hook: None,
                corrupt: false,
                show_progress: false,
            };
            match swap(&request) {
                Ok(report) => say(&format!("hot-swap watch: {}", report.describe())),
                Err(error) => say(&format!("hot-swap watch: {name}: {error:#}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_found_by_crate_name() {
        let dir = package_dir("hv-mmio-guard").expect("the mmio-guard package");
        assert!(dir.ends_with("components/mmio-guard"));
        assert!(package_dir("hv-no-such-component").is_none());
    }

    #[test]
    fn a_touched_source_file_is_a_change() {
        let dir = std::env::temp_dir().join(format!("hv-watch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
        let before = newest_change(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.join("src/lib.rs"), "// new\n").unwrap();
        assert!(newest_change(&dir).unwrap() > before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
