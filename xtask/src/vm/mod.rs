//! The VM test rig: `cargo xtask vm-image`, `cargo xtask vm-test` and `cargo xtask vm-run`.
//!
//! `vm-image` builds a bootable GPT disk image laid out as an installed KOOMPI system
//! (BIOS boot partition, ESP, one Btrfs with `@`, `@home`, `@snapshots`, `@var_log`) with a
//! Debian userland from the host's apt sources and KOOMPI's tools, units, grub.d script and
//! configs installed where the packages install them ([`image`]). `vm-test` boots fresh
//! copy-on-write overlays of that image in QEMU (software emulation, BIOS and UEFI,
//! [`qemu`]) and drives the serial console ([`console`]) through the scenarios
//! ([`scenarios`]). `vm-run` boots an overlay with the console on the terminal. A second
//! image variant carries the ISO's live-session overlay and the branding ([`live`]), for the
//! `live-session` scenario.
//!
//! See docs/vm-rig.md for how to use it and what each scenario proves.

mod cmd;
mod console;
mod disk;
pub mod host;
mod image;
mod interrupt;
mod live;
mod qemu;
mod scenarios;
mod testrepo;
mod upgrade;

use std::path::Path;

use anyhow::{Context, Result};

use crate::bench::workspace_root;

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
    fn list(self) -> Vec<Firmware> {
        match self {
            FirmwareChoice::Bios => vec![Firmware::Bios],
            FirmwareChoice::Uefi => vec![Firmware::Uefi],
            FirmwareChoice::Both => vec![Firmware::Bios, Firmware::Uefi],
        }
    }
}

/// Options of `cargo xtask vm-image` (also accepted by `vm-test` and `vm-run`).
#[derive(Debug, clap::Args)]
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
    #[arg(long)]
    live: bool,
    #[command(flatten)]
    image: ImageOptions,
}

/// `cargo xtask vm-image`: builds (or reuses) both images and prints their paths on stdout,
/// the installed system's first, then the live-session variant's.
pub fn image(opts: &ImageOptions) -> Result<()> {
    interrupt::install();
    let root = workspace_root()?;
    let variants = [image::Variant::Installed, image::Variant::Live];
    for (_, img) in image::ensure(&root, opts, &variants)? {
        println!("{}", img.display());
    }
    Ok(())
}

/// `cargo xtask vm-test`: runs scenarios; fails if any failed.
pub fn test(opts: &TestOptions) -> Result<()> {
    interrupt::install();
    let root = workspace_root()?;
    let firmwares = opts.firmware.list();
    host::ensure_qemu(&firmwares)?;
    let list = opts.scenario.list();
    let mut variants: Vec<image::Variant> = Vec::new();
    for s in &list {
        if !variants.contains(&s.variant()) {
            variants.push(s.variant());
        }
    }
    let images = image::ensure(&root, &opts.image, &variants)?;
    scenarios::run(&root, &images, list, &firmwares, opts.keep)
}

/// `cargo xtask vm-run`: boots a throwaway overlay with the console on this terminal.
pub fn run(opts: &RunOptions) -> Result<()> {
    // While QEMU runs, the terminal is raw and Ctrl-C goes to the guest, not to us.
    interrupt::install();
    let root = workspace_root()?;
    host::ensure_qemu(&[opts.firmware])?;
    let variant = if opts.live {
        image::Variant::Live
    } else {
        image::Variant::Installed
    };
    let images = image::ensure(&root, &opts.image, &[variant])?;
    let (_, img) = images.first().context("no image was built")?;
    qemu::interactive(img, opts.firmware, opts.live)
}

/// One progress line on stderr.
pub fn progress(msg: &str) {
    eprintln!("vm: {msg}");
}

/// `path` as UTF-8, for command lines and config files.
pub fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("path is not UTF-8: {}", p.display()))
}
