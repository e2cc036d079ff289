//! `cargo xtask bench-packages`: times `koompi search --repo` and `koompi list` against
//! `pacman -Ss` and `pacman -Q` on one generated pacman database.
//!
//! `koompi search --repo TERM` runs `pacman -Ss TERM` and parses its answer, `koompi list`
//! runs `pacman -Q`; so koompi cannot be faster than pacman, and the ratio koompi/pacman
//! (with the difference, printed next to it) is what the wrapper costs a user: one more
//! process start, parsing, formatting. This measures that cost; it judges nothing.
//!
//! The database is generated, not built with makepkg and repo-add (far too slow for
//! thousands of packages), but in pacman's own formats, as repo-add and pacman write them:
//!
//! - two sync databases, `DBPATH/sync/core.db` and `DBPATH/sync/extra.db`: gzip-compressed
//!   tar archives of `NAME-VERSION/desc` entries (%FILENAME% %NAME% %BASE% %VERSION% %DESC%
//!   %GROUPS% %CSIZE% %ISIZE% %MD5SUM% %SHA256SUM% %PGPSIG% %URL% %LICENSE% %ARCH%
//!   %BUILDDATE% %PACKAGER% %CONFLICTS% %PROVIDES% %DEPENDS% %OPTDEPENDS% %MAKEDEPENDS%,
//!   each a header line, value lines and a blank line); 3000 packages by default, with
//!   varied names (`lib…`, `python-…`, `…-git`, …), versions (some with an epoch),
//!   descriptions, groups and dependencies;
//! - the local database, `DBPATH/local/ALPM_DB_VERSION` (`9`) and `DBPATH/local/NAME-VERSION/`
//!   with `desc` (%NAME% %VERSION% %BASE% %DESC% %URL% %ARCH% %BUILDDATE% %INSTALLDATE%
//!   %PACKAGER% %SIZE% %REASON% %GROUPS% %LICENSE% %VALIDATION% %DEPENDS% …) and `files`;
//!   1200 installed packages by default: most from the repositories (a few in an older
//!   version than the repository's), some foreign (from no repository, like AUR packages).
//!   No `mtree` files: neither `-Q` nor `-Ss` reads them.
//!
//! Before anything is timed, real pacman must read exactly what was generated: `pacman -Sl`
//! lists every package of each repository, `pacman -Q` every installed one, `-Qm` the
//! foreign ones, `-Qu` the older ones, and `pacman -Ss` finds for each search term exactly the
//! packages whose name, description, provides or groups contain it, with the installed ones
//! marked. Otherwise the benchmark fails instead of timing something else.
//!
//! Cases: a search for a common term (hundreds of matches), a search for a rare term (3
//! matches) and the list of everything installed. Both tools get the same `--config`,
//! `--root` and `--dbpath` (everything in a temporary directory, so no root is needed) and
//! `LC_ALL=C`; koompi also gets `KOOMPI_PACMAN` set to the very pacman timed against it and
//! `KOOMPI_PARU=` `KOOMPI_FLATPAK=` (no AUR, no Flathub: only pacman's databases). Both run
//! as processes (what a user pays), their output read through a pipe; the runs alternate
//! which tool goes first. After one warm-up run each, the median of `--runs` runs is
//! reported. Every run must exit 0 and find the expected number of packages (pacman's
//! entries, koompi's lines for `list`; koompi's search results are counted in its `--json`
//! output before the timing), or the benchmark fails.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{first_line, human, median};
use crate::host::cmd::{check, describe, stdout as capture};
use crate::host::packages::{self, Purpose};
use crate::host::{build_tools as build, target_dir, which};
use anyhow::{bail, Context, Result};

/// Options of `cargo xtask bench-packages`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Print the results as a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Timed runs of each case and tool (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Packages in the two sync databases together.
    #[arg(long, value_name = "N", default_value_t = 3000,
          value_parser = clap::value_parser!(u32).range(100..=200_000))]
    packages: u32,
    /// Installed packages in the local database (one in 60 of them foreign).
    #[arg(long, value_name = "N", default_value_t = 1200,
          value_parser = clap::value_parser!(u32).range(60..=200_000))]
    installed: u32,
    /// Use the koompi already in target/release instead of building it first.
    #[arg(long)]
    no_build: bool,
}

/// The common search term: `python-…` packages and descriptions naming Python.
const COMMON: &str = "python";
/// The rare search term: only in the [`RARE_PACKAGES`].
const RARE: &str = "mandala";
/// The packages [`RARE`] finds: (name, description); the first one is installed.
const RARE_PACKAGES: [(&str, &str); 3] = [
    (
        "mandala-designer",
        "Draws symmetric patterns for colouring books",
    ),
    (
        "kde-patterns",
        "Mandala and tiling pattern generator for KDE Plasma",
    ),
    (
        "geometric-art",
        "Library for drawing mandalas, rosettes and spirographs",
    ),
];
/// The sync repositories and the share of packages in each (percent).
const REPOS: [(&str, u64); 2] = [("core", 20), ("extra", 80)];
/// pacman's local database format version (libalpm 13).
const ALPM_DB_VERSION: &str = "9";

/// Runs the benchmark.
pub fn run(opts: &Options) -> Result<()> {
    let pacman = preflight()?;
    let root = crate::host::workspace_root()?;
    if !opts.no_build {
        build(&root)?;
    }
    let koompi = target_dir(&root).join("release/koompi");
    if !koompi.is_file() {
        bail!(
            "{} does not exist (build it: cargo build --release -p koompi-cli)",
            koompi.display()
        );
    }
    let pacman_version = capture(Command::new(&pacman).arg("--version"))?;
    progress(&format!(
        "{} vs pacman {} ({})",
        first_line(&capture(Command::new(&koompi).arg("--version"))?),
        pacman_version
            .split_whitespace()
            .find(|w| w.starts_with('v'))
            .unwrap_or("?"),
        pacman.display()
    ));

    let universe = Universe::generate(opts.packages as usize, opts.installed as usize)?;
    let fx = Fixture::new(&universe)?;
    let tools = Tools {
        koompi,
        pacman,
        config: fx.config.clone(),
        root: fx.root.clone(),
        dbpath: fx.dbpath.clone(),
    };
    verify_database(&tools, &universe)?;

    let cases = [
        Case::search(&universe, COMMON),
        Case::search(&universe, RARE),
        Case::list(&universe),
    ];
    let mut rows = Vec::new();
    for case in &cases {
        rows.push(time_case(&tools, case, opts.runs)?);
    }
    drop(fx);
    report(&rows, opts.json)
}

/// One line on stderr.
fn progress(msg: &str) {
    eprintln!("bench-packages: {msg}");
}

/// Fails with one line naming every missing tool; pacman's full path.
fn preflight() -> Result<PathBuf> {
    packages::ensure("bench-packages", &[Purpose::Tests])?;
    which("pacman").context("pacman is not in PATH")
}

fn utf8(cmd: &Command, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).with_context(|| format!("`{}`: output not UTF-8", describe(cmd)))
}

/// Runs a command, its stdout read through a pipe; the wall time from spawn to exit (and
/// to the end of its output) and the output.
fn timed(cmd: &mut Command) -> Result<(Duration, String)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    let elapsed = start.elapsed();
    check(cmd, &out)?;
    Ok((elapsed, utf8(cmd, out.stdout)?))
}

// ---------------------------------------------------------------------------------------
// The generated packages.

/// A small deterministic generator (xorshift64*): the same database on every run.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A word of a whitespace-separated list.
    fn word(&mut self, list: &'static str) -> &'static str {
        let n = list.split_whitespace().count() as u64;
        list.split_whitespace()
            .nth(self.below(n) as usize)
            .unwrap_or("")
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v.get(self.below(v.len() as u64) as usize)
            .copied()
            .unwrap_or("")
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `(item, weight)` pairs: an item with probability weight/sum.
    fn weighted<'a>(&mut self, v: &[(&'a str, u64)]) -> &'a str {
        let total: u64 = v.iter().map(|(_, w)| w).sum();
        let mut r = self.below(total);
        for (item, w) in v {
            if r < *w {
                return item;
            }
            r -= w;
        }
        ""
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789abcdef"[(self.next() >> 60) as usize]))
            .collect()
    }

    fn base64(&mut self, chars: usize) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..chars)
            .map(|_| char::from(B64[(self.next() >> 58) as usize]))
            .collect()
    }
}

/// Word stems of package names, separated by whitespace (none contains [`COMMON`] or
/// [`RARE`]).
const STEMS: &str = "\
    alsa audio bluez cairo curl dbus emacs font gtk glib image json kernel mesa net ssl \
    pango pulse qt sqlite vim wayland xml yaml zlib boost clang docker ffmpeg gimp git gnupg \
    grub icu jack krita lua maria nginx node ocaml pam png jpeg tiff webp opus vorbis flac \
    lame x264 vpx av1 dav1d mpv vlc obs blender inkscape scribus tex pdf poppler cups sane \
    usb udev systemd polkit network wifi iw ppp vpn wireguard ssh rsync btrfs xfs ext4 lvm \
    mdadm cryptsetup keyring secret notify desktop menu panel dock theme icon cursor sound \
    mixer player stream radio tv camera scan print calc chart plot math stats graph tree \
    regex parse http mail chat irc matrix dns dhcp ntp time zone locale spell hyphen dict \
    word note todo task code build make meson cmake ninja rust go java ruby perl php deno \
    zig nim haskell erlang elixir scala kotlin dart julia octave maxima sage gis map osm geo \
    astro star chem bio gene edu khmer unicode emoji input ibus fcitx keyboard mouse touch \
    pen tablet game chess sudoku puzzle card arcade emu retro";

const PREFIXES: &[(&str, u64)] = &[
    ("", 46),
    ("lib", 14),
    ("python-", 12),
    ("perl-", 5),
    ("ruby-", 3),
    ("haskell-", 4),
    ("ttf-", 2),
    ("xf86-video-", 1),
    ("kde-", 4),
    ("gnome-", 4),
    ("lib32-", 2),
    ("rust-", 2),
    ("nodejs-", 1),
];

const SUFFIXES: &[(&str, u64)] = &[
    ("", 62),
    ("-git", 6),
    ("-utils", 5),
    ("-docs", 5),
    ("-tools", 5),
    ("-common", 3),
    ("-server", 3),
    ("-client", 3),
    ("-plugins", 2),
    ("-qt", 2),
    ("-gtk", 2),
    ("2", 1),
    ("5", 1),
];

const ADJECTIVES: &[&str] = &[
    "Fast",
    "Lightweight",
    "Simple",
    "Modern",
    "Portable",
    "Free",
    "Small",
    "Powerful",
    "Extensible",
    "Cross-platform",
    "Minimal",
    "Flexible",
];
const NOUNS: &[&str] = &[
    "library",
    "tool",
    "daemon",
    "framework",
    "toolkit",
    "editor",
    "viewer",
    "client",
    "server",
    "plugin",
    "utility collection",
    "command-line program",
    "application",
];
const LICENSES: &[&str] = &[
    "GPL-2.0-or-later",
    "GPL-3.0-or-later",
    "LGPL-2.1-or-later",
    "MIT",
    "Apache-2.0",
    "BSD-3-Clause",
    "MPL-2.0",
    "custom",
];
const PACKAGERS: &[&str] = &[
    "Sokha Chan <sokha@koompi.example>",
    "Dara Kim <dara@koompi.example>",
    "Vanna Sok <vanna@koompi.example>",
    "Arch Builder <builder@archlinux.example>",
    "Maria Lopez <maria@archlinux.example>",
];
const MAKEDEPENDS: &[&str] = &[
    "cmake",
    "meson",
    "ninja",
    "git",
    "python-build",
    "cargo",
    "go",
    "nodejs",
    "autoconf",
];

/// One package of the sync databases.
#[derive(Debug, Clone)]
struct SyncPkg {
    repo: usize,
    name: String,
    base: String,
    version: String,
    desc: String,
    groups: Vec<String>,
    provides: Vec<String>,
    conflicts: Vec<String>,
    depends: Vec<String>,
    optdepends: Vec<String>,
    makedepends: Vec<String>,
    url: String,
    license: String,
    arch: &'static str,
    csize: u64,
    isize: u64,
    builddate: u64,
    packager: String,
    md5: String,
    sha256: String,
    pgpsig: String,
}

impl SyncPkg {
    /// `NAME-VERSION`, the entry's directory in both databases.
    fn dir(&self, version: &str) -> String {
        format!("{}-{version}", self.name)
    }

    /// Whether pacman's `-Ss TERM` (a case-insensitive extended regex; here a plain word)
    /// finds this package: libalpm matches the name, the description, the provided names
    /// and the groups.
    fn matches(&self, term: &str) -> bool {
        let t = term.to_lowercase();
        let has = |s: &str| s.to_lowercase().contains(&t);
        has(&self.name)
            || has(&self.desc)
            || self
                .provides
                .iter()
                .any(|p| has(p.split(['=', '<', '>']).next().unwrap_or(p)))
            || self.groups.iter().any(|g| has(g))
    }

    /// The `desc` file of the sync database, in repo-add's order.
    fn sync_desc(&self) -> String {
        let filename = format!("{}-{}-{}.pkg.tar.zst", self.name, self.version, self.arch);
        let mut d = String::new();
        section(&mut d, "FILENAME", &[filename]);
        section(&mut d, "NAME", &[&self.name]);
        section(&mut d, "BASE", &[&self.base]);
        section(&mut d, "VERSION", &[&self.version]);
        section(&mut d, "DESC", &[&self.desc]);
        section(&mut d, "GROUPS", &self.groups);
        section(&mut d, "CSIZE", &[self.csize.to_string()]);
        section(&mut d, "ISIZE", &[self.isize.to_string()]);
        section(&mut d, "MD5SUM", &[&self.md5]);
        section(&mut d, "SHA256SUM", &[&self.sha256]);
        section(&mut d, "PGPSIG", &[&self.pgpsig]);
        section(&mut d, "URL", &[&self.url]);
        section(&mut d, "LICENSE", &[&self.license]);
        section(&mut d, "ARCH", &[self.arch]);
        section(&mut d, "BUILDDATE", &[self.builddate.to_string()]);
        section(&mut d, "PACKAGER", &[&self.packager]);
        section(&mut d, "CONFLICTS", &self.conflicts);
        section(&mut d, "PROVIDES", &self.provides);
        section(&mut d, "DEPENDS", &self.depends);
        section(&mut d, "OPTDEPENDS", &self.optdepends);
        section(&mut d, "MAKEDEPENDS", &self.makedepends);
        d
    }
}

/// One package of the local database.
#[derive(Debug, Clone)]
struct LocalPkg {
    /// The package as the repositories have it (for foreign packages: as it was built).
    pkg: SyncPkg,
    /// The installed version (older than `pkg.version` for some).
    version: String,
    /// Installed as a dependency (`%REASON%` 1) rather than explicitly.
    dependency: bool,
    installdate: u64,
}

impl LocalPkg {
    /// The `desc` file of the local database, in libalpm's order.
    fn desc(&self) -> String {
        let p = &self.pkg;
        let mut d = String::new();
        section(&mut d, "NAME", &[&p.name]);
        section(&mut d, "VERSION", &[&self.version]);
        section(&mut d, "BASE", &[&p.base]);
        section(&mut d, "DESC", &[&p.desc]);
        section(&mut d, "URL", &[&p.url]);
        section(&mut d, "ARCH", &[p.arch]);
        section(&mut d, "BUILDDATE", &[p.builddate.to_string()]);
        section(&mut d, "INSTALLDATE", &[self.installdate.to_string()]);
        section(&mut d, "PACKAGER", &[&p.packager]);
        section(&mut d, "SIZE", &[p.isize.to_string()]);
        if self.dependency {
            section(&mut d, "REASON", &["1"]);
        }
        section(&mut d, "GROUPS", &p.groups);
        section(&mut d, "LICENSE", &[&p.license]);
        section(&mut d, "VALIDATION", &["pgp"]);
        section(&mut d, "DEPENDS", &p.depends);
        section(&mut d, "OPTDEPENDS", &p.optdepends);
        section(&mut d, "CONFLICTS", &p.conflicts);
        section(&mut d, "PROVIDES", &p.provides);
        d
    }

    /// The `files` file: the directories and files the package owns.
    fn files(&self, rng: &mut Rng) -> String {
        let n = &self.pkg.name;
        let mut v: Vec<String> = vec!["usr/".into()];
        if n.starts_with("python-") {
            let m = n.trim_start_matches("python-").replace('-', "_");
            v.push("usr/lib/".into());
            v.push("usr/lib/python3.12/".into());
            v.push("usr/lib/python3.12/site-packages/".into());
            v.push(format!("usr/lib/python3.12/site-packages/{m}/"));
            for i in 0..rng.below(30) {
                v.push(format!("usr/lib/python3.12/site-packages/{m}/module{i}.py"));
            }
        } else if n.starts_with("lib") {
            v.push("usr/include/".into());
            v.push(format!("usr/include/{n}.h"));
            v.push("usr/lib/".into());
            v.push(format!("usr/lib/{n}.so"));
            v.push(format!("usr/lib/{n}.so.{}", 1 + rng.below(9)));
        } else {
            v.push("usr/bin/".into());
            v.push(format!("usr/bin/{n}"));
            v.push("usr/share/".into());
            v.push(format!("usr/share/{n}/"));
            for i in 0..rng.below(40) {
                v.push(format!("usr/share/{n}/data{i:02}.dat"));
            }
        }
        v.push("usr/share/licenses/".into());
        v.push(format!("usr/share/licenses/{n}/"));
        v.push(format!("usr/share/licenses/{n}/LICENSE"));
        let mut d = String::new();
        section(&mut d, "FILES", &v);
        d
    }
}

/// Appends `%KEY%`, one line per value and a blank line; nothing when there is no value.
fn section<S: AsRef<str>>(out: &mut String, key: &str, values: &[S]) {
    if values.is_empty() {
        return;
    }
    out.push('%');
    out.push_str(key);
    out.push_str("%\n");
    for v in values {
        out.push_str(v.as_ref());
        out.push('\n');
    }
    out.push('\n');
}

/// Everything generated: the sync packages, and what is installed.
#[derive(Debug)]
struct Universe {
    sync: Vec<SyncPkg>,
    local: Vec<LocalPkg>,
    /// Names in `local` that are in no sync database.
    foreign: usize,
    /// Installed packages older than the repositories' version.
    older: usize,
}

impl Universe {
    /// `packages` sync packages (the [`RARE_PACKAGES`] among them) and `installed` local
    /// ones, one in 60 foreign.
    fn generate(packages: usize, installed: usize) -> Result<Self> {
        let foreign = installed / 60;
        // The rare packages but the first are never installed.
        let needed = installed - foreign + RARE_PACKAGES.len() - 1;
        if needed > packages {
            bail!("--installed {installed} needs at least --packages {needed}, not {packages}");
        }
        let mut rng = Rng::new(0x4b4f_4f4d_5049);
        let mut names: HashSet<String> = RARE_PACKAGES.iter().map(|(n, _)| n.to_string()).collect();
        let mut sync = Vec::with_capacity(packages);
        let rare_at: Vec<usize> = (0..RARE_PACKAGES.len())
            .map(|i| (2 * i + 1) * packages / (2 * RARE_PACKAGES.len()))
            .collect();
        for i in 0..packages {
            let p = match rare_at.iter().position(|&at| at == i) {
                Some(k) => {
                    let (name, desc) = RARE_PACKAGES[k];
                    let mut p = random_pkg(&mut rng, &sync, name.to_string(), "", "", "");
                    p.desc = desc.to_string();
                    if name.starts_with("kde-") {
                        p.groups = vec!["kde-applications".into()];
                    }
                    p
                }
                None => {
                    let (name, prefix, stem, suffix) = random_name(&mut rng, &mut names);
                    random_pkg(&mut rng, &sync, name, prefix, stem, suffix)
                }
            };
            sync.push(p);
        }

        // Installed: the first rare package, then a spread of the others; some older.
        let mut chosen: Vec<usize> = vec![rare_at[0]];
        let mut taken: HashSet<usize> = chosen.iter().copied().collect();
        while chosen.len() < installed - foreign {
            let i = rng.below(packages as u64) as usize;
            if !RARE_PACKAGES
                .iter()
                .skip(1)
                .any(|(n, _)| sync[i].name == *n)
                && taken.insert(i)
            {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        let mut local = Vec::with_capacity(installed);
        let mut older = 0;
        for i in chosen {
            let pkg = sync[i].clone();
            let version = match older_version(&pkg.version) {
                Some(v) if rng.chance(5) => {
                    older += 1;
                    v
                }
                _ => pkg.version.clone(),
            };
            local.push(LocalPkg {
                installdate: pkg.builddate + 86_400 + rng.below(5_000_000),
                dependency: rng.chance(60),
                version,
                pkg,
            });
        }
        for _ in 0..foreign {
            let name = loop {
                let n = format!(
                    "{}-{}-bin",
                    rng.word(STEMS),
                    rng.pick(&["app", "studio", "desktop", "player", "helper"])
                );
                if names.insert(n.clone()) {
                    break n;
                }
            };
            let pkg = random_pkg(&mut rng, &sync, name, "", "", "-bin");
            local.push(LocalPkg {
                version: pkg.version.clone(),
                installdate: pkg.builddate + 3600,
                dependency: false,
                pkg,
            });
        }
        Ok(Universe {
            sync,
            local,
            foreign,
            older,
        })
    }

    /// Packages in sync repository `repo`.
    fn in_repo(&self, repo: usize) -> usize {
        self.sync.iter().filter(|p| p.repo == repo).count()
    }

    /// (matches, installed matches) of `pacman -Ss term`.
    fn expect_search(&self, term: &str) -> (usize, usize) {
        let installed: HashSet<&str> = self.local.iter().map(|l| l.pkg.name.as_str()).collect();
        let hits: Vec<&SyncPkg> = self.sync.iter().filter(|p| p.matches(term)).collect();
        let inst = hits
            .iter()
            .filter(|p| installed.contains(p.name.as_str()))
            .count();
        (hits.len(), inst)
    }
}

/// A fresh package name: (name, prefix, stem, suffix).
fn random_name(
    rng: &mut Rng,
    names: &mut HashSet<String>,
) -> (String, &'static str, &'static str, &'static str) {
    loop {
        let prefix = rng.weighted(PREFIXES);
        let mut stem = rng.word(STEMS);
        let suffix = rng.weighted(SUFFIXES);
        let mut second = String::new();
        if rng.chance(35) {
            second = format!(
                "{}{}",
                if rng.chance(50) { "-" } else { "" },
                rng.word(STEMS)
            );
        }
        if prefix == "xf86-video-" {
            stem = rng.pick(&["intel", "amdgpu", "ati", "nouveau", "vesa", "fbdev", "qxl"]);
            second.clear();
        }
        let name = format!("{prefix}{stem}{second}{suffix}");
        if names.insert(name.clone()) {
            return (name, prefix, stem, suffix);
        }
        // Taken: a numbered variant, as distributions do (gtk2, qt5, ...).
        for n in 2..100 {
            let numbered = format!("{prefix}{stem}{second}{n}{suffix}");
            if names.insert(numbered.clone()) {
                return (numbered, prefix, stem, suffix);
            }
        }
    }
}

/// A sync package named `name` built from `prefix` + `stem` + … + `suffix`, depending on
/// some of the packages generated before it.
fn random_pkg(
    rng: &mut Rng,
    before: &[SyncPkg],
    name: String,
    prefix: &str,
    stem: &str,
    suffix: &str,
) -> SyncPkg {
    let repo = if rng.chance(REPOS[0].1) { 0 } else { 1 };
    let epoch = if rng.chance(3) {
        format!("{}:", 1 + rng.below(2))
    } else {
        String::new()
    };
    let version = format!(
        "{epoch}{}.{}.{}-{}",
        rng.below(30),
        rng.below(20),
        rng.below(15),
        1 + rng.below(4)
    );
    let base_name = name.strip_suffix(suffix).unwrap_or(&name).to_string();
    let base = if suffix == "-docs" {
        base_name.clone()
    } else {
        name.clone()
    };
    let adj = rng.pick(ADJECTIVES);
    let noun = rng.pick(NOUNS);
    let topic = if stem.is_empty() {
        rng.word(STEMS)
    } else {
        stem
    };
    let mut desc = match prefix {
        "python-" => match rng.below(3) {
            0 => format!("Python bindings for {topic}"),
            1 => format!("{adj} Python library to work with {topic} data"),
            _ => format!("{adj} {topic} module for Python 3"),
        },
        "perl-" => format!("Perl module for {topic} ({adj} interface)"),
        "ruby-" => format!("{adj} Ruby gem for {topic}"),
        "haskell-" => format!("Haskell {noun} for {topic}"),
        "ttf-" => format!("{adj} TrueType font family ({topic} style)"),
        "xf86-video-" => format!("X.org {topic} video driver"),
        "lib" => format!("{adj} library for {topic} handling"),
        "lib32-" => format!("{adj} {topic} support (32-bit)"),
        "kde-" => format!("{adj} {noun} for {topic} in KDE Plasma"),
        "gnome-" => format!("{adj} {noun} for {topic} on the GNOME desktop"),
        "rust-" => format!("Rust crate for {topic}"),
        "nodejs-" => format!("{adj} {topic} package for Node.js"),
        _ => match rng.below(6) {
            0 => format!("{adj} {noun} for {topic} files"),
            1 => format!("{adj} {noun} to manage {topic}"),
            2 => format!("{adj} {noun} with {topic} support"),
            3 => format!("{adj} {topic} {noun} written in Python"),
            4 => format!("{adj} {topic} {noun} written in C++"),
            _ => format!("{adj} {noun} based on {topic}"),
        },
    };
    match suffix {
        "-git" => desc.push_str(" (development version)"),
        "-docs" => desc = format!("Documentation for {base_name}"),
        _ => {}
    }
    let mut groups = Vec::new();
    match prefix {
        "kde-" => groups.push("kde-applications".to_string()),
        "gnome-" if rng.chance(50) => groups.push("gnome-extra".to_string()),
        "xf86-video-" => groups.push("xorg-drivers".to_string()),
        _ => {}
    }
    let mut provides = Vec::new();
    let mut conflicts = Vec::new();
    if suffix == "-git" {
        provides.push(base_name.clone());
        conflicts.push(base_name.clone());
    }
    if prefix == "lib" && rng.chance(50) {
        provides.push(format!("{name}.so=1-64"));
    }
    let mut depends = Vec::new();
    if !before.is_empty() {
        for _ in 0..rng.below(7) {
            let dep = &before[rng.below(before.len() as u64) as usize].name;
            if !depends.iter().any(|d: &String| d.starts_with(dep.as_str())) {
                depends.push(if rng.chance(20) {
                    format!("{dep}>=1.0")
                } else {
                    dep.clone()
                });
            }
        }
    }
    let mut optdepends = Vec::new();
    if !before.is_empty() && rng.chance(15) {
        let dep = &before[rng.below(before.len() as u64) as usize].name;
        optdepends.push(format!("{dep}: {} support", rng.word(STEMS)));
    }
    let makedepends = if rng.chance(70) {
        vec![rng.pick(MAKEDEPENDS).to_string()]
    } else {
        Vec::new()
    };
    let csize = 8_000 + rng.below(40_000_000);
    SyncPkg {
        repo,
        url: format!("https://{topic}.example.org/{base_name}"),
        license: rng.pick(LICENSES).to_string(),
        arch: if rng.chance(85) { "x86_64" } else { "any" },
        isize: csize * (2 + rng.below(3)),
        csize,
        builddate: 1_700_000_000 + rng.below(30_000_000),
        packager: rng.pick(PACKAGERS).to_string(),
        md5: rng.hex(32),
        sha256: rng.hex(64),
        pgpsig: rng.base64(400),
        name,
        base,
        version,
        desc,
        groups,
        provides,
        conflicts,
        depends,
        optdepends,
        makedepends,
    }
}

/// The same version with a lower pkgrel (`1.2-3` → `1.2-2`), if it has one above 1.
fn older_version(v: &str) -> Option<String> {
    let (ver, rel) = v.rsplit_once('-')?;
    let rel: u32 = rel.parse().ok()?;
    (rel > 1).then(|| format!("{ver}-{}", rel - 1))
}

// ---------------------------------------------------------------------------------------
// The databases on disk.

/// The temporary directory with pacman.conf, the root and the databases; removed on drop.
#[derive(Debug)]
struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    root: PathBuf,
    dbpath: PathBuf,
}

impl Fixture {
    fn new(u: &Universe) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("koompi-bench-packages-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let t = dir.path();
        let root = t.join("root");
        let dbpath = root.join("var/lib/pacman");
        let repos = t.join("repos");
        for d in [
            dbpath.join("sync"),
            dbpath.join("local"),
            root.join("var/cache/pacman/pkg"),
            root.join("var/log"),
            root.join("etc/pacman.d/hooks"),
            repos.clone(),
        ] {
            fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let config = t.join("pacman.conf");
        fs::write(&config, pacman_conf(&root, &dbpath, &repos))
            .with_context(|| format!("cannot write {}", config.display()))?;

        progress(&format!(
            "writing {} sync packages ({}) and {} installed ones in {}",
            u.sync.len(),
            REPOS
                .iter()
                .enumerate()
                .map(|(i, (r, _))| format!("{r} {}", u.in_repo(i)))
                .collect::<Vec<_>>()
                .join(", "),
            u.local.len(),
            t.display()
        ));
        for (i, (repo, _)) in REPOS.iter().enumerate() {
            let staging = t.join("staging").join(repo);
            let mut entries = String::new();
            for p in u.sync.iter().filter(|p| p.repo == i) {
                let d = staging.join(p.dir(&p.version));
                fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
                let desc = d.join("desc");
                fs::write(&desc, p.sync_desc())
                    .with_context(|| format!("cannot write {}", desc.display()))?;
                entries.push_str(&p.dir(&p.version));
                entries.push('\n');
            }
            let list = t.join("staging").join(format!("{repo}.list"));
            fs::write(&list, entries)
                .with_context(|| format!("cannot write {}", list.display()))?;
            // As repo-add: a gzip-compressed tar of NAME-VERSION/ and NAME-VERSION/desc.
            let db = dbpath.join("sync").join(format!("{repo}.db"));
            capture(
                Command::new("tar")
                    .args(["--owner=0", "--group=0", "--numeric-owner", "-czf"])
                    .arg(&db)
                    .arg("-C")
                    .arg(&staging)
                    .arg("-T")
                    .arg(&list),
            )?;
            // The same file where pacman.conf's Server points, as a real repository.
            let served = repos.join(repo);
            fs::create_dir_all(&served)
                .with_context(|| format!("cannot create {}", served.display()))?;
            fs::copy(&db, served.join(format!("{repo}.db")))
                .with_context(|| format!("cannot copy {}", db.display()))?;
        }
        let staging = t.join("staging");
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;

        let local = dbpath.join("local");
        let version_file = local.join("ALPM_DB_VERSION");
        fs::write(&version_file, format!("{ALPM_DB_VERSION}\n"))
            .with_context(|| format!("cannot write {}", version_file.display()))?;
        let mut rng = Rng::new(0x006c_6f63_616c);
        for l in &u.local {
            let d = local.join(l.pkg.dir(&l.version));
            fs::create_dir(&d).with_context(|| format!("cannot create {}", d.display()))?;
            for (file, text) in [("desc", l.desc()), ("files", l.files(&mut rng))] {
                let f = d.join(file);
                fs::write(&f, text).with_context(|| format!("cannot write {}", f.display()))?;
            }
        }
        Ok(Fixture {
            _dir: dir,
            config,
            root,
            dbpath,
        })
    }
}

fn pacman_conf(root: &Path, dbpath: &Path, repos: &Path) -> String {
    let mut s = format!(
        "# written by cargo xtask bench-packages; removed when it ends\n\
         [options]\n\
         RootDir = {root}/\n\
         DBPath = {dbpath}/\n\
         CacheDir = {root}/var/cache/pacman/pkg/\n\
         LogFile = {root}/var/log/pacman.log\n\
         GPGDir = {root}/etc/pacman.d/gnupg/\n\
         HookDir = {root}/etc/pacman.d/hooks/\n\
         HoldPkg = pacman glibc\n\
         Architecture = auto\n\
         SigLevel = Never\n\
         LocalFileSigLevel = Never\n",
        root = root.display(),
        dbpath = dbpath.display(),
    );
    for (repo, _) in REPOS {
        s.push_str(&format!(
            "\n[{repo}]\nServer = file://{}/$repo\n",
            repos.display()
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------
// The two tools.

/// The programs and the options that point both at the generated system.
#[derive(Debug)]
struct Tools {
    koompi: PathBuf,
    pacman: PathBuf,
    config: PathBuf,
    root: PathBuf,
    dbpath: PathBuf,
}

impl Tools {
    fn system_args(&self) -> Vec<OsString> {
        vec![
            "--config".into(),
            self.config.clone().into(),
            "--root".into(),
            self.root.clone().into(),
            "--dbpath".into(),
            self.dbpath.clone().into(),
        ]
    }

    fn pacman(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.pacman);
        c.env("LC_ALL", "C").args(self.system_args()).args(args);
        c
    }

    fn koompi(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.koompi);
        c.env("LC_ALL", "C")
            .env("KOOMPI_PACMAN", &self.pacman)
            .env("KOOMPI_PARU", "")
            .env("KOOMPI_FLATPAK", "")
            .args(self.system_args())
            .args(args);
        c
    }
}

/// Entries of `pacman -Ss` output: lines not starting with whitespace.
fn pacman_search_entries(out: &str) -> usize {
    out.lines()
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
        .count()
}

/// Non-empty lines (`pacman -Q`, `pacman -Sl`, `koompi list` into a pipe).
fn lines(out: &str) -> usize {
    out.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Fails unless real pacman reads exactly the generated databases.
fn verify_database(tools: &Tools, u: &Universe) -> Result<()> {
    for (i, (repo, _)) in REPOS.iter().enumerate() {
        let got = lines(&capture(&mut tools.pacman(&["-Sl", repo]))?);
        expect(got, u.in_repo(i), &format!("pacman -Sl {repo}: packages"))?;
    }
    let q = capture(&mut tools.pacman(&["-Q"]))?;
    expect(lines(&q), u.local.len(), "pacman -Q: installed packages")?;
    let want: BTreeMap<&str, &str> = u
        .local
        .iter()
        .map(|l| (l.pkg.name.as_str(), l.version.as_str()))
        .collect();
    let got: BTreeMap<&str, &str> = q.lines().filter_map(|l| l.split_once(' ')).collect();
    if got != want {
        bail!("pacman -Q does not list the generated names and versions");
    }
    let foreign = lines(&capture(&mut tools.pacman(&["-Qm"]))?);
    expect(foreign, u.foreign, "pacman -Qm: foreign packages")?;
    if u.older > 0 {
        let older = lines(&capture(&mut tools.pacman(&["-Qu"]))?);
        expect(older, u.older, "pacman -Qu: upgradable packages")?;
    }
    for term in [COMMON, RARE] {
        let out = capture(&mut tools.pacman(&["-Ss", term]))?;
        let (hits, installed) = u.expect_search(term);
        expect(
            pacman_search_entries(&out),
            hits,
            &format!("pacman -Ss {term}: packages"),
        )?;
        let marked = out
            .lines()
            .filter(|l| !l.starts_with([' ', '\t']) && l.contains("[installed"))
            .count();
        expect(
            marked,
            installed,
            &format!("pacman -Ss {term}: packages marked installed"),
        )?;
    }
    progress(&format!(
        "pacman reads them all: {} + {} sync, {} installed ({} foreign, {} older than the repository)",
        u.in_repo(0),
        u.in_repo(1),
        u.local.len(),
        u.foreign,
        u.older
    ));
    Ok(())
}

fn expect(got: usize, want: usize, what: &str) -> Result<()> {
    if got != want {
        bail!("{what}: {got}, expected {want} (pacman does not read the generated database as generated)");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Timing.

/// What is timed.
#[derive(Debug)]
enum Kind {
    Search(&'static str),
    List,
}

#[derive(Debug)]
struct Case {
    kind: Kind,
    label: String,
    /// Packages both must find.
    expect: usize,
}

impl Case {
    fn search(u: &Universe, term: &'static str) -> Self {
        let (hits, _) = u.expect_search(term);
        Case {
            kind: Kind::Search(term),
            label: format!("search {term}"),
            expect: hits,
        }
    }

    fn list(u: &Universe) -> Self {
        Case {
            kind: Kind::List,
            label: "list".into(),
            expect: u.local.len(),
        }
    }

    fn pacman(&self, tools: &Tools) -> Command {
        match self.kind {
            Kind::Search(term) => tools.pacman(&["-Ss", term]),
            Kind::List => tools.pacman(&["-Q"]),
        }
    }

    fn koompi(&self, tools: &Tools, json: bool) -> Command {
        let json: &[&str] = if json { &["--json"] } else { &[] };
        let mut c = match self.kind {
            Kind::Search(term) => tools.koompi(&["search", "--repo", term]),
            Kind::List => tools.koompi(&["list"]),
        };
        c.args(json);
        c
    }

    /// koompi's count from its `--json` output.
    fn koompi_json_count(&self, tools: &Tools) -> Result<usize> {
        let mut cmd = self.koompi(tools, true);
        let what = describe(&cmd);
        let out = capture(&mut cmd)?;
        let v: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("`{what}`: output is not JSON"))?;
        let items = match self.kind {
            Kind::Search(_) => v.get("results").and_then(|r| r.as_array()),
            Kind::List => v.as_array(),
        };
        Ok(items
            .with_context(|| format!("`{what}`: unexpected JSON shape"))?
            .len())
    }

    /// One timed run of `tool`, its count checked where the plain output tells it.
    fn run(&self, tools: &Tools, tool: Tool) -> Result<Duration> {
        let mut cmd = match tool {
            Tool::Koompi => self.koompi(tools, false),
            Tool::Pacman => self.pacman(tools),
        };
        let (took, out) = timed(&mut cmd)?;
        let counted = match (tool, &self.kind) {
            (Tool::Pacman, Kind::Search(_)) => Some(pacman_search_entries(&out)),
            (_, Kind::List) => Some(lines(&out)),
            // A table; its count was checked in the --json form.
            (Tool::Koompi, Kind::Search(_)) => None,
        };
        if let Some(n) = counted {
            if n != self.expect {
                bail!(
                    "`{}` found {n} packages, expected {}",
                    describe(&cmd),
                    self.expect
                );
            }
        }
        Ok(took)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Koompi,
    Pacman,
}

/// Both tools, koompi first when `i` is even; (koompi's, pacman's) times.
fn alternate(case: &Case, tools: &Tools, i: u32) -> Result<(Duration, Duration)> {
    if i.is_multiple_of(2) {
        let k = case.run(tools, Tool::Koompi)?;
        let p = case.run(tools, Tool::Pacman)?;
        Ok((k, p))
    } else {
        let p = case.run(tools, Tool::Pacman)?;
        let k = case.run(tools, Tool::Koompi)?;
        Ok((k, p))
    }
}

/// The counts checked, one warm-up run each, then `runs` alternating timed runs; the medians.
fn time_case(tools: &Tools, case: &Case, runs: u32) -> Result<Row> {
    let k = case.koompi_json_count(tools)?;
    if k != case.expect {
        bail!(
            "koompi --json {}: {k} packages, pacman finds {}",
            case.label,
            case.expect
        );
    }
    progress(&format!(
        "timing {} ({} packages): 1 warm-up + median of {runs} runs each",
        case.label, case.expect
    ));
    alternate(case, tools, 0)?;
    let mut ks = Vec::new();
    let mut ps = Vec::new();
    for i in 0..runs {
        let (dk, dp) = alternate(case, tools, i)?;
        ks.push(dk);
        ps.push(dp);
    }
    Ok(Row {
        case: case.label.clone(),
        packages: case.expect,
        koompi: median(&mut ks)?,
        pacman: median(&mut ps)?,
    })
}

/// One line of the results.
#[derive(Debug)]
struct Row {
    case: String,
    packages: usize,
    koompi: Duration,
    pacman: Duration,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.koompi.as_secs_f64() / self.pacman.as_secs_f64()
    }

    /// koompi's median minus pacman's, in seconds (negative when koompi was faster).
    fn extra(&self) -> f64 {
        self.koompi.as_secs_f64() - self.pacman.as_secs_f64()
    }
}

fn report(rows: &[Row], json: bool) -> Result<()> {
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "case": r.case,
                    "packages": r.packages,
                    "koompi_seconds": r.koompi.as_secs_f64(),
                    "pacman_seconds": r.pacman.as_secs_f64(),
                    "ratio": (r.ratio() * 100.0).round() / 100.0,
                    "koompi_minus_pacman_seconds": r.extra(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>8}  {:<10} {:<10} {:<6} koompi-pacman",
        "case", "packages", "koompi", "pacman", "ratio"
    );
    for r in rows {
        let extra = r.extra();
        let sign = if extra < 0.0 { "-" } else { "+" };
        println!(
            "{:<16} {:>8}  {:<10} {:<10} {:<6.2} {sign}{}",
            r.case,
            r.packages,
            human(r.koompi),
            human(r.pacman),
            r.ratio(),
            human(Duration::from_secs_f64(extra.abs()))
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(3), ms(1), ms(2)]).unwrap(), ms(2));
        assert_eq!(
            median(&mut [ms(4), ms(1), ms(2), ms(3)]).unwrap(),
            ms(2) + ms(1) / 2
        );
        assert!(median(&mut []).is_err());
    }

    #[test]
    fn sections_are_blank_line_separated() {
        let mut d = String::new();
        section(&mut d, "NAME", &["a"]);
        section::<&str>(&mut d, "GROUPS", &[]);
        section(&mut d, "DEPENDS", &["b", "c>=1"]);
        assert_eq!(d, "%NAME%\na\n\n%DEPENDS%\nb\nc>=1\n\n");
    }

    #[test]
    fn older_version_lowers_pkgrel() {
        assert_eq!(older_version("1.2.3-2").as_deref(), Some("1.2.3-1"));
        assert_eq!(older_version("1:0.1-4").as_deref(), Some("1:0.1-3"));
        assert_eq!(older_version("1.2.3-1"), None);
    }

    #[test]
    fn generated_universe_is_as_promised() {
        let u = Universe::generate(3000, 1200).unwrap();
        assert_eq!(u.sync.len(), 3000);
        assert_eq!(u.local.len(), 1200);
        assert_eq!(u.foreign, 20);
        let names: HashSet<&str> = u.sync.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), 3000, "sync names are unique");
        assert!(u.in_repo(0) > 300 && u.in_repo(1) > 2000);
        assert_eq!(u.expect_search(RARE), (3, 1));
        let (common, installed) = u.expect_search(COMMON);
        assert!(common > 200, "{COMMON} matches {common}");
        assert!(installed > 0);
        assert!(u.older > 0);
        let local: HashSet<&str> = u.local.iter().map(|l| l.pkg.name.as_str()).collect();
        assert_eq!(local.len(), 1200, "local names are unique");
        assert_eq!(local.iter().filter(|n| !names.contains(*n)).count(), 20);
        // Deterministic: the same database every time.
        let again = Universe::generate(3000, 1200).unwrap();
        assert_eq!(again.sync[1234].sync_desc(), u.sync[1234].sync_desc());
    }

    #[test]
    fn too_few_packages_for_the_installed_ones() {
        assert!(Universe::generate(100, 1200).is_err());
    }

    #[test]
    fn search_entries_are_unindented_lines() {
        let out = "core/a 1-1 (g) [installed]\n    A thing\nextra/b 2-1\n    Other\n";
        assert_eq!(pacman_search_entries(out), 2);
    }
}
