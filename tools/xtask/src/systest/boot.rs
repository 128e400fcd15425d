//! Booting a system for a test or a benchmark: a fresh image of a manifest (with the
//! command line's overrides and components' test settings), run captured on QEMU, with the
//! lines it types and the swaps it makes at their points; the outcome is for the caller to
//! check.

use super::*;

/// Boots a fresh image and returns how the run went.
pub fn boot(
    name: &str,
    cpu: CpuModel,
    smp: u32,
    kernel: Option<PathBuf>,
    append: &str,
    extra: &[String],
    timeout: u64,
) -> Result<Outcome> {
    boot_with(
        name,
        cpu,
        smp,
        kernel,
        append,
        extra,
        timeout,
        &[],
        None,
        &[],
        &[],
    )
}

/// [`boot`], with some components' settings replaced (e.g. the VM manager's test hooks): each
/// of `settings` goes to the components whose crate takes that kind of settings.
#[allow(clippy::too_many_arguments)]
pub fn boot_with(
    name: &str,
    cpu: CpuModel,
    smp: u32,
    kernel: Option<PathBuf>,
    append: &str,
    extra: &[String],
    timeout: u64,
    settings: &[Settings],
    manifest: Option<&str>,
    kernel_features: &'static [&'static str],
    input: &[ConsoleInput],
) -> Result<Outcome> {
    boot_with_swaps(
        name,
        cpu,
        smp,
        kernel,
        append,
        extra,
        timeout,
        settings,
        manifest,
        kernel_features,
        input,
        &[],
    )
}

/// [`boot_with`], hot-swapping components during the run: each of `swaps`' images is built
/// before the boot (as `cargo xtask swap` builds it, for this very system), and sent over the
/// run's control line (`target/xtask/logs/<name>/control.sock`) when the run reaches its point;
/// the outcome's `swaps` says how each went (the bench reads its times there).
#[allow(clippy::too_many_arguments)]
pub fn boot_with_swaps(
    name: &str,
    cpu: CpuModel,
    smp: u32,
    kernel: Option<PathBuf>,
    append: &str,
    extra: &[String],
    timeout: u64,
    settings: &[Settings],
    manifest: Option<&str>,
    kernel_features: &'static [&'static str],
    input: &[ConsoleInput],
    swaps: &[PlannedSwap],
) -> Result<Outcome> {
    let args = SystemArgs {
        manifest: manifest.map(|path| paths::workspace().join(path)),
        machine: cpu,
        smp: Some(smp),
        mem: None,
        initrd: kernel.as_ref().map(|_| "none".to_owned()),
        kernel,
        // No payload arguments: the manifest's host command line (a test guest's mode).
        append: (!append.is_empty()).then(|| append.to_owned()),
    };
    let mut system = args.resolve()?;
    system.kernel_features = kernel_features;
    for component in system.manifest.components.iter_mut() {
        let takes = Settings::for_crate(&component.crate_name).map(|kind| discriminant(&kind));
        if let Some(settings) = settings
            .iter()
            .find(|settings| Some(discriminant(*settings)) == takes)
        {
            component.settings = *settings;
        }
    }
    let built = build_image(&system)?;
    let swaps = swaps
        .iter()
        .map(|plan| {
            let image = crate::swap::prepare(&system, plan.component, plan.hook)
                .with_context(|| format!("building {} to swap in", plan.component))?;
            let options = crate::swap::Options {
                corrupt: plan.corrupt,
                ..crate::swap::Options::for_board(system.board)
            };
            Ok(ScheduledSwap {
                plan: *plan,
                image,
                options,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    progress::step(&format!("booting {name}"));
    let log_dir = paths::xtask_out().join("logs").join(name);
    qemu::run(&qemu::Run {
        machine: &system.machine,
        image: &built.image,
        kernel_elf: &built.kernel_elf,
        components: &built.components,
        timeout: Duration::from_secs(timeout),
        console: Console::Captured { echo: false },
        extra_args: extra,
        control: ControlLine::in_dir(&log_dir),
        hot_swap: system.manifest.hot_swap,
        log_dir,
        show_hv_log: false,
        input,
        swaps: &swaps,
    })
}
