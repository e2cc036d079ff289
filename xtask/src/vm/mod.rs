//! The VM test rig: `cargo xtask vm-image`, `cargo xtask vm-test` and `cargo xtask vm-run`.
//!
//! `vm-image` builds a bootable GPT disk image laid out as an installed KOOMPI system
//! (BIOS boot partition, ESP, one Btrfs with `@`, `@home`, `@snapshots`, `@var_log`) with a
//! Debian userland from the host's apt sources and KOOMPI's tools, units, grub.d script and
//! configs installed where the packages install them ([`image`]). `vm-test` boots fresh
//! copy-on-write overlays of that image in QEMU (software emulation, BIOS and UEFI,
//! [`qemu`]) and drives the serial console ([`console`]) through the scenarios
//! ([`scenarios`], with the console steps several of them share in [`steps`]). `vm-run` boots
//! an overlay with the console on the terminal. A second image variant carries the ISO's
//! live-session overlay and the branding ([`overlay`]), for the `live-session` scenario
//! ([`live`]). Each scenario declares on which firmwares it runs in the ci tier
//! (`cargo xtask test`, [`run_tier`]) and the full one; the runs go one guest at a time,
//! end early when a guest stalls after a reset ([`stall`]) and are summed up in one table
//! ([`report`]).
//!
//! See docs/vm-rig.md for how to use it and what each scenario proves.

mod console;
mod desktop;
mod disk;
mod edition;
mod image;
mod install;
mod live;
mod lock;
mod overlay;
mod qemu;
mod report;
mod scenarios;
mod splash;
mod stall;
mod steps;
mod testrepo;
mod upgrade;

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::host::packages::{self, Purpose};
use crate::host::{cmd, interrupt, workspace_root};

pub use report::{min_sec, table, total_line, Runs, VmPart};
pub use scenarios::Tier;

/// Which firmware QEMU boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default: GRUB from the BIOS boot partition.
    Bios,
    /// OVMF: GRUB from the ESP (EFI/BOOT/BOOTX64.EFI).
    Uefi,
}

impl Firmware {
    /// Lower-case name, as in log file names.
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

/// `--firmware` of `vm-test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirmwareChoice {
    Bios,
    Uefi,
    /// BIOS, then UEFI.
    Both,
}

impl FirmwareChoice {
    /// The value as typed on the command line.
    fn name(self) -> &'static str {
        match self {
            FirmwareChoice::Bios => "bios",
            FirmwareChoice::Uefi => "uefi",
            FirmwareChoice::Both => "both",
        }
    }

    fn list(self) -> Vec<Firmware> {
        match self {
            FirmwareChoice::Bios => vec![Firmware::Bios],
            FirmwareChoice::Uefi => vec![Firmware::Uefi],
            FirmwareChoice::Both => vec![Firmware::Bios, Firmware::Uefi],
        }
    }
}

/// Options of `cargo xtask vm-image` (also accepted by `vm-test` and `vm-run`).
#[derive(Debug, Default, clap::Args)]
pub struct ImageOptions {
    /// Use the koompi binaries already in target/release instead of running
    /// `cargo build --release -p koompi-cli` first.
    #[arg(long)]
    no_build: bool,
    /// Build the image again even if a cached one matches.
    #[arg(long)]
    rebuild: bool,
}

/// Options of `cargo xtask vm-test`.
#[derive(Debug, clap::Args)]
pub struct TestOptions {
    /// The scenario to run, or `all` (every scenario).
    #[arg(value_enum)]
    scenario: scenarios::Choice,
    /// Firmware to boot with; `both` runs BIOS then UEFI.
    #[arg(long, value_enum, default_value = "both")]
    firmware: FirmwareChoice,
    /// Only the runs of this tier: `ci` is what `cargo xtask test` runs (some scenarios on
    /// one firmware only), `all` every scenario on both firmwares.
    #[arg(long, value_enum, default_value = "all")]
    tier: Tier,
    /// Keep each run's overlay disk (and UEFI variables) in target/vm-runs for inspection.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    image: ImageOptions,
}

/// Options of `cargo xtask vm-run`.
#[derive(Debug, clap::Args)]
pub struct RunOptions {
    /// Firmware to boot with.
    #[arg(long, value_enum, default_value = "bios")]
    firmware: Firmware,
    /// Boot the live-session variant (log in as koompi/koompi) instead of the installed
    /// system.
    #[arg(long, conflicts_with = "iso")]
    live: bool,
    /// Boot this ISO (a built KOOMPI OS ISO) beside a blank 16 GiB disk instead of the
    /// test image.
    #[arg(long, value_name = "FILE")]
    iso: Option<std::path::PathBuf>,
    #[command(flatten)]
    image: ImageOptions,
}

/// `cargo xtask vm-image`: builds (or reuses) both images and prints their paths on stdout,
/// the installed system's first, then the live-session variant's.
pub fn image(opts: &ImageOptions) -> Result<()> {
    interrupt::install();
    let root = workspace_root()?;
    let _rig = lock::acquire(&root, "vm-image")?;
    packages::ensure("vm-image", &[Purpose::Image])?;
    let variants = [image::Variant::Installed, image::Variant::Live];
    for (_, img) in image::ensure(&root, opts, &variants)? {
        println!("{}", img.display());
    }
    Ok(())
}

/// `cargo xtask vm-test`: runs scenarios; prints the summary; fails if any failed.
pub fn test(opts: &TestOptions) -> Result<()> {
    interrupt::install();
    let started = Instant::now();
    let root = workspace_root()?;
    let scenarios = opts.scenario.list();
    let plan = scenarios::plan(&scenarios, opts.tier, opts.firmware);
    if plan.is_empty() {
        bail!(
            "nothing to run with --firmware {} in the {} tier: {}",
            opts.firmware.name(),
            opts.tier.name(),
            scenarios::where_they_run(&scenarios, opts.tier)
        );
    }
    let _rig = lock::acquire(&root, "vm-test")?;
    let runs = run_plan(&root, &plan, &opts.image, opts.keep)?;
    print!("{}", report::table(&runs));
    println!(
        "{}",
        total_line(VmPart::Ran(started.elapsed().as_secs()), None)
    );
    runs.verdict()
}

/// The VM part of `cargo xtask test`: every run of `tier` on both firmwares, in this
/// process, after building (or reusing) the images they boot. Returns the runs for the
/// caller's summary; fails only when nothing could start (host packages, images).
pub fn run_tier(tier: Tier) -> Result<Runs> {
    interrupt::install();
    let root = workspace_root()?;
    let plan = scenarios::plan(&scenarios::Scenario::ALL, tier, FirmwareChoice::Both);
    let _rig = lock::acquire(&root, "test")?;
    run_plan(&root, &plan, &ImageOptions::default(), false)
}

/// QEMU and the images for `plan`, then its runs.
fn run_plan(
    root: &Path,
    plan: &[(scenarios::Scenario, Firmware)],
    image_opts: &ImageOptions,
    keep: bool,
) -> Result<Runs> {
    let mut firmwares: Vec<Firmware> = Vec::new();
    let mut variants: Vec<image::Variant> = Vec::new();
    for &(s, fw) in plan {
        if !firmwares.contains(&fw) {
            firmwares.push(fw);
        }
        if !variants.contains(&s.variant()) {
            variants.push(s.variant());
        }
    }
    let mut need = purposes(&firmwares);
    need.push(Purpose::Scenarios);
    packages::ensure("the VM scenarios", &need)?;
    let images = image::ensure(root, image_opts, &variants)?;
    scenarios::run(root, &images, plan, keep)
}

/// `cargo xtask vm-run`: boots a throwaway overlay with the console on this terminal.
pub fn run(opts: &RunOptions) -> Result<()> {
    // While QEMU runs, the terminal is raw and Ctrl-C goes to the guest, not to us.
    interrupt::install();
    let root = workspace_root()?;
    let _rig = lock::acquire(&root, "vm-run")?;
    if let Some(iso) = &opts.iso {
        let meta =
            std::fs::metadata(iso).with_context(|| format!("cannot read {}", iso.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", iso.display());
        }
        // No image to build: QEMU (and OVMF) only.
        let mut need = purposes(&[opts.firmware]);
        need.retain(|p| *p != Purpose::Image);
        packages::ensure("vm-run", &need)?;
        return qemu::interactive(qemu::Base::Iso(iso), opts.firmware, false);
    }
    packages::ensure("vm-run", &purposes(&[opts.firmware]))?;
    let variant = if opts.live {
        image::Variant::Live
    } else {
        image::Variant::Installed
    };
    let images = image::ensure(&root, &opts.image, &[variant])?;
    let (_, img) = images.first().context("no image was built")?;
    qemu::interactive(qemu::Base::Image(img), opts.firmware, opts.live)
}

/// One progress line on stderr.
pub fn progress(msg: &str) {
    eprintln!("vm: {msg}");
}

pub use crate::host::path_str;

/// What building and booting the image on `firmwares` needs on the host.
fn purposes(firmwares: &[Firmware]) -> Vec<Purpose> {
    let mut p = vec![Purpose::Image, Purpose::Qemu];
    if firmwares.contains(&Firmware::Uefi) {
        p.push(Purpose::Uefi);
    }
    p
}
