//! Booting a system for a test or a benchmark: a fresh image of a manifest (with the
//! command line's overrides and components' test settings), run captured on QEMU, with the
//! lines it types and the swaps it makes at their points; the outcome is for the caller to
//! check.

use super::*;

/// A fresh image of a manifest booted on QEMU for a test or a benchmark: [`Boot::new`] gives
/// the run's name, machine, payload and timeout; the rest defaults to nothing and is set by
/// struct update where a run needs it.
pub struct Boot<'a> {
    /// The run's name (its logs go to `target/xtask/logs/<name>`).
    pub name: &'a str,
    pub cpu: CpuModel,
    pub smp: u32,
    /// A kernel to boot as the host instead of the manifest's.
    pub kernel: Option<PathBuf>,
    /// The host's command line; empty: the manifest's (a test guest's mode, say).
    pub append: &'a str,
    /// Arguments to QEMU.
    pub extra: &'a [String],
    /// Seconds.
    pub timeout: u64,
    /// Components' settings replaced (e.g. the VM manager's test hooks): each goes to the
    /// components whose crate takes that kind of settings.
    pub settings: &'a [Settings],
    /// The manifest, if not the default one.
    pub manifest: Option<&'a str>,
    pub kernel_features: &'static [&'static str],
    /// Lines typed on the console at their points.
    pub input: &'a [ConsoleInput],
    /// Hot-swaps made during the run: each image is built before the boot (as `cargo xtask
    /// swap` builds it, for this very system) and sent over the run's control line
    /// (`target/xtask/logs/<name>/control.sock`) when the run reaches its point; the outcome's
    /// `swaps` says how each went (the bench reads its times there).
    pub swaps: &'a [PlannedSwap],
}

impl<'a> Boot<'a> {
    /// A run of the default manifest with nothing else set.
    pub fn new(
        name: &'a str,
        cpu: CpuModel,
        smp: u32,
        kernel: Option<PathBuf>,
        timeout: u64,
    ) -> Self {
        Self {
            name,
            cpu,
            smp,
            kernel,
            append: "",
            extra: &[],
            timeout,
            settings: &[],
            manifest: None,
            kernel_features: &[],
            input: &[],
            swaps: &[],
        }
    }

    /// Boots it and returns how the run went.
    pub fn run(self) -> Result<Outcome> {
        let Self {
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
            swaps,
        } = self;
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
}
