//! `cargo xtask iso-lint`: static checks of the ISO image's sources, runnable on any Linux host
//! (Debian CI included), where mkarchiso cannot run.
//!
//! The lint is a registry of small named checks ([`CHECKS`]; `--list` prints them, `--check
//! NAME` runs one), each returning its problems. Every problem is one line, `iso-lint: <check>:
//! <file>: <problem>`, and any problem fails the command. The checks leave each format to the
//! tool that owns it: bash sources `profiledef.sh`, the mkinitcpio files and os-release, as
//! mkarchiso, mkinitcpio and every shell reader of os-release do; `systemd-analyze verify`
//! checks the units; `cargo metadata` names the workspace's binaries; jsonc-parser reads the
//! fastfetch config, and jsonschema checks it against fastfetch's own JSON schema when it is
//! present ([`FASTFETCH_SCHEMA_PATH`]); `openssl passwd` checks the live password; shellcheck
//! checks every shell script. The branding files (`branding/`) are the truth; when the seed
//! specification ([`SEED_PATH`]) is present, they must also equal its texts byte for byte.

mod branding;
mod overlay;
mod profile;
mod shell;
#[cfg(test)]
mod tests;
mod units;

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

/// The seed specification, relative to the workspace root.
pub const SEED_PATH: &str = "../shared/seeds/koompi-os-build-prompt.txt";

/// fastfetch's published JSON schema (its doc/json_schema.json), relative to the workspace
/// root: like the seed, a file of the steering repository's shared/, and the fastfetch config
/// is validated against it when it is present.
pub const FASTFETCH_SCHEMA_PATH: &str = "../shared/fastfetch/json_schema.json";

/// One named check: what it looks at, and the function that returns its problems.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub about: &'static str,
    run: fn(&Ctx) -> Problems,
}

const fn check(name: &'static str, run: fn(&Ctx) -> Problems) -> Check {
    Check {
        name,
        about: "",
        run,
    }
}

impl Check {
    const fn about(self, about: &'static str) -> Check {
        Check { about, ..self }
    }
}

/// Every check, in the order they run.
pub const CHECKS: &[Check] = &[
    check("profile", profile::profile)
        .about("profiledef.sh: bash sources it; it sets what archiso and KOOMPI need"),
    check("bootmodes", profile::bootmodes)
        .about("boot modes: BIOS and UEFI, current names, each mode's files and packages"),
    check("file-permissions", profile::file_permissions)
        .about("every executable and secret of airootfs has its mode in file_permissions"),
    check("no-customize-script", profile::no_customize_script)
        .about("no deprecated customize_airootfs.sh in the profile"),
    check("packages", profile::packages)
        .about("packages.x86_64: valid names, no duplicates, none removed, the required ones"),
    check("pacman-conf", profile::pacman_conf)
        .about("pacman.conf: [koompi] first, with the placeholder scripts/build-iso.sh fills"),
    check("boot-menus", profile::boot_menus)
        .about("syslinux and GRUB menus: kernels and their presets, files, splash, serial entry"),
    check("initcpio", profile::initcpio)
        .about("mkinitcpio HOOKS and MODULES of the live and of the installed initramfs"),
    check("unit-references", units::references)
        .about("what KOOMPI's and the overlay's units run, document and require exists"),
    check("units-enabled", units::enabled)
        .about("the *.wants symlinks, aliases, masks and drop-ins; every unit due is enabled"),
    check("time-sync", units::time_sync)
        .about("the live keyring waits for a synchronised clock; no boot target waits for it"),
    check("units-verify", units::verify)
        .about("systemd-analyze verify of KOOMPI's units and the overlay's, in a staged root"),
    check("users", overlay::users)
        .about("passwd, shadow, group, gshadow; the live user koompi/koompi, its groups; sudo"),
    check("live-config", overlay::live_config)
        .about("hostname, locales, keymap, zram, .zshrc; no branding file in the overlay"),
    check("pacman-hooks", overlay::pacman_hooks)
        .about("the build-time pacman hooks: marked, their programs and packages, the theme"),
    check("branding-texts", branding::texts)
        .about("motd, issue, os-release, fastfetch config: present, packaged, the seed's bytes"),
    check("os-release", branding::os_release)
        .about("branding/os-release: os-release(5) syntax (bash sources it) and its fields"),
    check("fastfetch", branding::fastfetch)
        .about("fastfetch/config.jsonc: the JSONC fastfetch reads; modules; fastfetch's schema"),
    check("plymouth-theme", branding::plymouth_theme)
        .about("the Plymouth theme: a script theme whose every image is a PNG"),
    check("wallpapers", branding::wallpapers)
        .about("the wallpapers: PNGs of at least 1280x720, under 200 KB each"),
    check("shellcheck", shell::shellcheck)
        .about("shellcheck on every shell script, PKGBUILD, scriptlet and sourced config"),
];

/// Options of `cargo xtask iso-lint`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Print every check's name and what it checks.
    #[arg(long)]
    list: bool,
    /// Run only this check (may be given more than once).
    #[arg(long = "check", value_name = "NAME")]
    checks: Vec<String>,
}

/// `cargo xtask iso-lint [--list] [--check NAME]...`.
pub fn main(root: &Path, opts: &Options) -> Result<()> {
    for c in CHECKS.iter().filter(|_| opts.list) {
        println!("{:<20} {}", c.name, c.about);
    }
    let known = |n: &&String| CHECKS.iter().any(|c| c.name == *n);
    let unknown = opts.checks.iter().find(|n| !known(n));
    match unknown {
        _ if opts.list => Ok(()),
        Some(bad) => bail!("no check {bad:?} (`cargo xtask iso-lint --list` names them)"),
        None => report(&lint(root, &opts.checks)),
    }
}

/// Runs every check and prints every problem; fails if there was any.
pub fn run(root: &Path) -> Result<()> {
    report(&lint(root, &[]))
}

fn report(problems: &[String]) -> Result<()> {
    for p in problems {
        eprintln!("iso-lint: {p}");
    }
    if !problems.is_empty() {
        bail!("iso-lint found {} problem(s)", problems.len());
    }
    println!("iso-lint: ok: the profile, branding, units and shell scripts pass every check");
    Ok(())
}

/// The problems of the checks named in `only` (all when empty): `<check>: <file>: <problem>`.
fn lint(root: &Path, only: &[String]) -> Vec<String> {
    let cx = Ctx::new(root);
    let mut all = Vec::new();
    let chosen = |c: &&Check| only.is_empty() || only.iter().any(|n| n == c.name);
    for c in CHECKS.iter().filter(chosen) {
        all.extend((c.run)(&cx).0.iter().map(|p| format!("{}: {p}", c.name)));
    }
    all
}

/// The problems one check found, each `<file>: <problem>` on one line: `p += problem` adds a
/// problem, maybe one (an `Option`) or those of another [`Problems`].
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl AddAssign<String> for Problems {
    fn add_assign(&mut self, problem: String) {
        self.0.push(problem.replace('\n', "; "));
    }
}

impl AddAssign<Option<String>> for Problems {
    fn add_assign(&mut self, problem: Option<String>) {
        self.0.extend(problem.map(|p| p.replace('\n', "; ")));
    }
}

impl std::ops::Add<String> for Problems {
    type Output = Problems;

    fn add(mut self, problem: String) -> Problems {
        self += problem;
        self
    }
}

impl AddAssign<Problems> for Problems {
    fn add_assign(&mut self, problems: Problems) {
        self.0.extend(problems.0);
    }
}

/// Variables as bash leaves them after sourcing a file: a scalar as one item, an array's items,
/// an associative array's keys and values in turn.
#[derive(Debug, Default)]
pub struct Vars(BTreeMap<String, Vec<String>>);

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    fn list(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Sources `file` with bash the way mkarchiso sources a profile (`set -eu`, `file_permissions`
/// declared associative first, a clean environment but PATH and SOURCE_DATE_EPOCH) and returns
/// the variables of `names` that it sets.
fn source(file: &Path, names: &[&str]) -> Result<Vars, String> {
    const SCRIPT: &str = r#"set -eu
declare -A file_permissions=()
source "$1" >&2
set +u
shift
for __v; do
  declare -p "$__v" >/dev/null 2>&1 || continue
  declare -n __r=$__v
  if [[ ${__r@a} == *A* ]]; then
    printf '%s\0' "$__v" "$((${#__r[@]} * 2))"
    for __k in "${!__r[@]}"; do printf '%s\0' "$__k" "${__r[$__k]}"; done
  else
    printf '%s\0' "$__v" "${#__r[@]}" "${__r[@]}"
  fi
  unset -n __r
done"#;
    let keep = std::env::vars_os().filter(|(k, _)| k == "PATH" || k == "SOURCE_DATE_EPOCH");
    let mut bash = Command::new("bash");
    bash.args(["-c", SCRIPT, "bash"]).arg(file).args(names);
    bash.current_dir(file.parent().unwrap_or(Path::new("/")));
    let out = bash.env_clear().envs(keep).output();
    let out = out.map_err(|e| format!("cannot run bash: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("bash cannot source it: {}", err.trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut items = text.split('\0');
    let mut vars = BTreeMap::new();
    while let Some(name) = items.next().filter(|n| !n.is_empty()) {
        let n: usize = items.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let values = items.by_ref().take(n).map(str::to_string).collect();
        vars.insert(name.to_string(), values);
    }
    Ok(Vars(vars))
}

/// What `base` depends on: units and hooks may use these without listing them.
const BASE_DEPENDENCIES: &str = "archlinux-keyring bash bzip2 coreutils file filesystem \
    findutils gawk gcc-libs gettext glibc grep gzip iproute2 iputils licenses pacman \
    pacman-mirrorlist pciutils procps-ng psmisc sed shadow systemd systemd-sysvcompat tar \
    util-linux xz";

/// Programs that units and pacman hooks run, each with the package that installs it.
const PACKAGE_PROGRAMS: &str = "/bin/sh:bash /usr/bin/sh:bash /usr/bin/bash:bash \
    /usr/bin/env:coreutils /usr/bin/sleep:coreutils /bin/sleep:coreutils /usr/bin/sed:sed \
    /usr/bin/locale-gen:glibc /usr/bin/pacman-key:pacman /usr/bin/systemctl:systemd \
    /usr/bin/plymouth-set-default-theme:plymouth /usr/bin/xdg-user-dirs-update:xdg-user-dirs \
    /usr/bin/mkinitcpio:mkinitcpio";

/// The profile's variables the checks read.
const PROFILE_VARS: &str = "iso_name iso_label iso_publisher iso_application iso_version \
    install_dir buildmodes bootmodes pacman_conf airootfs_image_type \
    airootfs_image_tool_options file_permissions";

/// What the checks share: the root, and what several of them read.
#[derive(Debug)]
pub struct Ctx {
    root: PathBuf,
    /// The names in iso/packages.x86_64 (the `packages` check reports what is wrong with it).
    packages: BTreeSet<String>,
    /// iso/profiledef.sh's variables, and why bash cannot source it if it cannot.
    profile: Vars,
    profile_error: Option<String>,
    /// KOOMPI's units (system/systemd/) and the overlay's own (iso/airootfs/etc/systemd/system/).
    units: BTreeMap<String, UnitFile>,
    local: BTreeMap<String, UnitFile>,
    /// The workspace's binaries and target directory, from `cargo metadata`.
    cargo: OnceCell<Result<(BTreeSet<String>, PathBuf), String>>,
}

impl Ctx {
    fn new(root: &Path) -> Ctx {
        let list = fs::read_to_string(root.join("iso/packages.x86_64")).unwrap_or_default();
        let names: Vec<&str> = PROFILE_VARS.split_whitespace().collect();
        let profile = source(&root.join("iso/profiledef.sh"), &names);
        Ctx {
            root: root.to_path_buf(),
            packages: package_list(&list).into_iter().map(|(_, n)| n).collect(),
            profile_error: profile.as_ref().err().cloned(),
            profile: profile.unwrap_or_default(),
            units: units_in(&root.join("system/systemd")),
            local: units_in(&root.join("iso/airootfs/etc/systemd/system")),
            cargo: OnceCell::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// A file's text, empty after reporting it when it cannot be read.
    fn text(&self, p: &mut Problems, rel: &str) -> String {
        let text = fs::read_to_string(self.path(rel));
        text.unwrap_or_else(|e| {
            *p += format!("{rel}: cannot read it: {e}");
            String::new()
        })
    }

    /// Sources a file with bash ([`source`]), reporting it when bash cannot.
    fn source(&self, p: &mut Problems, rel: &str, names: &[&str]) -> Option<Vars> {
        let vars = source(&self.path(rel), names);
        vars.map_err(|e| *p += format!("{rel}: {e}")).ok()
    }

    fn has_package(&self, name: &str) -> bool {
        let name = if name == "sh" { "bash" } else { name };
        self.packages.contains(name) || BASE_DEPENDENCIES.split_whitespace().any(|b| b == name)
    }

    /// The problem when `package`, which `file` needs for `why`, is not in the list.
    fn need(&self, file: &str, package: &str, why: &str) -> Option<String> {
        let list = "iso/packages.x86_64";
        let msg = format!("{file}: {why} comes from package {package}, which is not in {list}");
        (!self.has_package(package)).then_some(msg)
    }

    /// A program a unit or hook runs must be a KOOMPI binary or come from a listed package.
    fn program(&self, file: &str, prog: &str) -> Problems {
        let mut p = Problems::default();
        let bin = prog.strip_prefix("/usr/bin/");
        let koompi = bin.filter(|b| b.starts_with("koompi"));
        let known = PACKAGE_PROGRAMS.split_whitespace();
        let mut known = known.filter_map(|w| w.split_once(':'));
        let package = known.find(|(p, _)| *p == prog).map(|(_, package)| package);
        match koompi.map(|_| "koompi-tools").or(package) {
            Some(package) => p += self.need(file, package, prog),
            None => p += format!("{file}: runs {prog}, not in PACKAGE_PROGRAMS (iso_lint/mod.rs)"),
        }
        let built = "which no workspace crate builds";
        match (koompi, self.cargo()) {
            (Some(bin), Ok((bins, _))) if !bins.contains(bin) => {
                p += format!("{file}: runs {prog}, {built}")
            }
            (Some(_), Err(e)) => p += format!("{file}: {e}"),
            _ => {}
        }
        p
    }

    /// The workspace's binaries and target directory (`cargo metadata`).
    fn cargo(&self) -> Result<&(BTreeSet<String>, PathBuf), &String> {
        let metadata = self.cargo.get_or_init(|| cargo_metadata(&self.root));
        metadata.as_ref()
    }
}

/// The units in `dir` (files, not links), parsed.
fn units_in(dir: &Path) -> BTreeMap<String, UnitFile> {
    let mut units = entries(dir);
    units.retain(|(name, path)| is_unit_name(name) && !path.is_symlink() && path.is_file());
    let parse = |(name, path)| {
        (
            name,
            UnitFile::parse(&fs::read_to_string(path).unwrap_or_default()),
        )
    };
    units.into_iter().map(parse).collect()
}

fn cargo_metadata(root: &Path) -> Result<(BTreeSet<String>, PathBuf), String> {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.args(["metadata", "--no-deps", "--format-version", "1"]);
    let out = cargo.current_dir(root).output();
    let out = out.map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        let err = String::from_utf8_lossy(&out.stderr);
        format!("cargo metadata: {e}: {}", err.trim())
    })?;
    let mut bins = BTreeSet::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        for t in package["targets"].as_array().into_iter().flatten() {
            let kinds = t["kind"].as_array().into_iter().flatten();
            let bin = t["name"].as_str().map(str::to_string);
            bins.extend(bin.filter(|_| kinds.clone().any(|k| k == "bin")));
        }
    }
    let target = meta["target_directory"].as_str().unwrap_or("target");
    Ok((bins, root.join(target)))
}

/// The package names of a packages.x86_64 with their line numbers (mkarchiso's rules: `#`
/// starts a comment anywhere, blank lines are skipped).
fn package_list(text: &str) -> Vec<(usize, String)> {
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if !name.is_empty() {
            names.push((i + 1, name.to_string()));
        }
    }
    names
}

/// (section, key, value) of an INI-like file (pacman.conf, pacman hooks, Plymouth themes,
/// zram-generator.conf, units); `#` and `;` lines are comments; a key without `=` has no value.
fn parse_ini(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(s) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    out
}

/// An INI file's settings (a unit's, a hook's, a theme's), looked up by section and key.
#[derive(Debug, Clone, Default)]
pub struct UnitFile(Vec<(String, String, String)>);

impl UnitFile {
    fn parse(text: &str) -> UnitFile {
        UnitFile(parse_ini(text))
    }

    /// Reads and parses a file, reporting it when it cannot.
    fn read(cx: &Ctx, p: &mut Problems, rel: &str) -> UnitFile {
        UnitFile(parse_ini(&cx.text(p, rel)))
    }

    fn values<'s>(&'s self, section: &'s str, key: &'s str) -> impl Iterator<Item = &'s str> {
        let all = self.0.iter();
        let found = all.filter(move |(s, k, _)| s == section && k == key);
        found.map(|(_, _, v)| v.as_str())
    }

    fn get(&self, section: &str, key: &str) -> Option<&str> {
        let found = self.0.iter().find(|(s, k, _)| s == section && k == key);
        found.map(|(_, _, v)| v.as_str())
    }

    /// The words of every `key=` of `section`.
    fn words<'s>(&'s self, section: &'s str, key: &'s str) -> impl Iterator<Item = &'s str> {
        self.values(section, key).flat_map(str::split_whitespace)
    }

    /// The programs of every `Exec*=` line (prefixes `-@:+!` removed).
    fn programs(&self) -> Vec<String> {
        let mut programs = Vec::new();
        for (_, _, value) in self.0.iter().filter(|(_, k, _)| k.starts_with("Exec")) {
            let command = value.trim_start_matches(['-', '@', ':', '+', '!']);
            programs.extend(command.split_whitespace().next().map(str::to_string));
        }
        programs
    }
}

fn is_unit_name(name: &str) -> bool {
    let kinds = "service timer socket target mount path automount slice";
    let kind = name.rsplit_once('.').map_or("", |(_, k)| k);
    kinds.split(' ').any(|k| k == kind)
}

/// The entries of a directory (none when it cannot be read): name and path, sorted by name.
fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let found = fs::read_dir(dir).into_iter().flatten().flatten();
    let entry = |e: fs::DirEntry| (e.file_name().to_string_lossy().into(), e.path());
    let mut entries: Vec<_> = found.map(entry).collect();
    entries.sort();
    entries
}

/// Every entry below `dir` (not following symlinks), sorted.
fn walk(dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Width and height of a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}
