//! KOOMPI's configs (`configs/`), each read by the program it is for wherever Debian has
//! that program, and otherwise by the strictest parser at hand (docs/configs.md):
//!
//! | file | checked by |
//! | --- | --- |
//! | foot.ini (base and home file) | `foot --check-config` |
//! | fuzzel.ini (base) | fuzzel 1.8.2 loading it (it stops at the first error) |
//! | rofi config.rasi (home file with its `@import`) | rofi under Xvfb, `-dump-config`, its parser's debug log |
//! | openbox rc.xml and the KOOMPI theme | openbox under Xvfb with `--config-file` |
//! | tint2rc | tint2 under Xvfb with `-c` |
//! | waybar config and style.css (home files) | waybar started by a headless sway (`sway --validate` first) |
//! | neovim init.lua (base and home file) | `luac5.4 -p`, then `nvim --headless` running it |
//! | zellij config.kdl, layouts/koompi.kdl | the `kdl` crate's KDL v1 parser (zellij's syntax) |
//! | hyprland.conf (base and home file) | Hyprland's documented keywords (not Hyprland: it is not in Debian) |
//!
//! Home files load the base from `/usr/share/koompi/configs`; the tests point that path at
//! this checkout. Every check is also fed a broken copy and must refuse it. A missing
//! program skips a test with one line, except under `KOOMPI_PRIVILEGED_TESTS=1` (CI),
//! where it fails; `cargo xtask test` installs them (koompi_testutil::prereq).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    configs, localized, read, run_for, run_until, sway_command, write, xdg_env, Run, Xvfb,
};
use koompi_desktop::catalog::{Catalog, CONFIGS_DIR};
use koompi_testutil::prereq;

// ------------------------------------------------------------------ the home files

/// Every file the catalog puts into a home: either a `home/` file that loads its base from
/// /usr/share/koompi/configs before anything of the user's, or a whole config.
#[test]
fn every_home_file_loads_its_base_before_the_users_settings() {
    let catalog = Catalog::parse(&read("editions.toml")).unwrap();
    let mut stubs = 0;
    for (name, set) in &catalog.config_sets {
        for f in &set.files {
            let src = f.src.to_str().unwrap();
            if !src.contains("/home/") {
                continue;
            }
            stubs += 1;
            let text = read(src);
            let bases: Vec<&str> = text
                .lines()
                .filter(|l| l.contains(CONFIGS_DIR) && !is_comment(l))
                .collect();
            assert_eq!(
                bases.len(),
                1,
                "{name}: {src} should load one base: {bases:?}"
            );
            let line = bases[0];
            let path: String = line
                .split(CONFIGS_DIR)
                .nth(1)
                .unwrap()
                .trim_start_matches('/')
                .chars()
                .take_while(|c| !"\"')];, ".contains(*c))
                .collect();
            assert!(
                configs().join(&path).is_file(),
                "{name}: {src} loads {CONFIGS_DIR}/{path}, which configs/ does not have"
            );
            // Nothing but comments (and the JSON object's opening brace) before it.
            for l in text.lines().take_while(|l| *l != line) {
                assert!(
                    is_comment(l) || l.trim().is_empty() || l.trim() == "{",
                    "{name}: {src}: `{l}` comes before KOOMPI's base is loaded"
                );
            }
        }
    }
    assert_eq!(stubs, 8, "home files counted");
}

fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    ["#", "//", "--", "/*", "*"]
        .iter()
        .any(|c| t.starts_with(c))
}

// ------------------------------------------------------------------ foot

fn foot_check(path: &Path) -> Run {
    let mut cmd = Command::new("foot");
    cmd.args(["--check-config", "-c"]).arg(path);
    run_for(cmd, Duration::from_secs(20))
}

fn foot_ok(run: &Run) -> bool {
    run.code == Some(0) && !run.out.contains(" err:") && !run.out.contains("warn:")
}

#[test]
fn foot_accepts_the_base_and_the_home_file_and_refuses_a_broken_copy() {
    if !prereq::require("configs_real foot", &["foot"]) {
        return;
    }
    let base = configs().join("foot/foot.ini");
    let run = foot_check(&base);
    assert!(
        foot_ok(&run),
        "foot refuses {}:\n{}",
        base.display(),
        run.out
    );

    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("foot.ini");
    fs::write(&stub, localized(&read("foot/home/foot.ini"))).unwrap();
    let run = foot_check(&stub);
    assert!(foot_ok(&run), "foot refuses the home file:\n{}", run.out);
    assert!(
        run.out.contains("imported sub-configuration"),
        "{}",
        run.out
    );

    let broken = dir.path().join("broken.ini");
    fs::write(
        &broken,
        read("foot/foot.ini").replace("regular1=", "regulr1="),
    )
    .unwrap();
    let run = foot_check(&broken);
    assert!(!foot_ok(&run), "foot accepted a broken copy:\n{}", run.out);
    assert!(run.out.contains("regulr1"), "{}", run.out);
}

// ------------------------------------------------------------------ fuzzel

/// Options of fuzzel 1.9 and later that the base uses and Debian 12's fuzzel 1.8.2 does
/// not know (fuzzel.ini(5) of 1.12.0 documents them; Arch has a current fuzzel). The test
/// hands fuzzel 1.8.2 the base without them, and checks they are the only ones it drops.
const FUZZEL_NEWER: &[&str] = &["[colors] prompt", "[colors] input"];

/// The file without the options in `FUZZEL_NEWER`, and the ones it dropped.
fn without_newer_fuzzel_options(text: &str) -> (String, Vec<String>) {
    let mut section = "[main]".to_string();
    let mut out = String::new();
    let mut dropped = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.to_string();
        }
        let key = t.split('=').next().unwrap_or("").trim();
        let id = format!("{section} {key}");
        if t.contains('=') && !t.starts_with('#') && FUZZEL_NEWER.contains(&id.as_str()) {
            dropped.push(id);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, dropped)
}

/// fuzzel loads its config before it needs a Wayland display; without one it exits after
/// logging the first problem of the file (1.8.2 has no --check-config).
fn fuzzel_load(path: &Path) -> Run {
    let mut cmd = Command::new("fuzzel");
    cmd.arg("--config").arg(path).arg("--dmenu");
    cmd.env_remove("WAYLAND_DISPLAY");
    let dir = tempfile::tempdir().unwrap();
    cmd.env("XDG_RUNTIME_DIR", dir.path());
    run_for(cmd, Duration::from_secs(20))
}

/// Its complaints about the file (without a display it also says it found no compositor).
fn fuzzel_ok(run: &Run) -> bool {
    run.out.contains("loading configuration from")
        && !run
            .out
            .lines()
            .any(|l| (l.contains("err:") || l.contains("warn:")) && l.contains("config.c"))
}

#[test]
fn fuzzel_accepts_the_base_and_refuses_a_broken_copy() {
    if !prereq::require("configs_real fuzzel", &["fuzzel"]) {
        return;
    }
    let (base, dropped) = without_newer_fuzzel_options(&read("fuzzel/fuzzel.ini"));
    assert_eq!(
        dropped, FUZZEL_NEWER,
        "the base's options newer than fuzzel 1.8.2"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzzel.ini");
    fs::write(&path, &base).unwrap();
    let run = fuzzel_load(&path);
    assert!(fuzzel_ok(&run), "fuzzel refuses the base:\n{}", run.out);

    fs::write(&path, base.replace("lines=", "lnes=")).unwrap();
    let run = fuzzel_load(&path);
    assert!(
        !fuzzel_ok(&run),
        "fuzzel accepted a broken copy:\n{}",
        run.out
    );
    assert!(run.out.contains("lnes"), "{}", run.out);
}

// ------------------------------------------------------------------ rofi

/// rofi reports what its parser refuses only in its window, and in its debug log.
fn rofi(x: &Xvfb, home: &Path, config: &Path, what: &str) -> Run {
    let mut cmd = Command::new("rofi");
    cmd.arg("-config").arg(config).arg(what);
    xdg_env(&mut cmd, home);
    cmd.env("DISPLAY", &x.display)
        .env("G_MESSAGES_DEBUG", "all");
    run_for(cmd, Duration::from_secs(30))
}

fn rofi_problems(run: &Run) -> Vec<&str> {
    run.out
        .lines()
        .filter(|l| {
            // rofi hands its own `-config FILE` option through its parser as
            // `configuration { config: FILE;}`, which fails and is not about the file.
            let own =
                l.contains("configuration { config:") || l.contains("Option: config is not found");
            !own && (l.contains("Error while parsing")
                || l.contains("is not found")
                || l.contains("Rofi-WARNING"))
        })
        .collect()
}

#[test]
fn rofi_reads_the_home_file_and_its_base_and_refuses_a_broken_copy() {
    if !prereq::require("configs_real rofi", &["rofi", "Xvfb"]) {
        return;
    }
    let x = Xvfb::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.rasi");
    fs::write(&config, localized(&read("rofi/home/config.rasi"))).unwrap();
    let run = rofi(&x, home.path(), &config, "-dump-config");
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert!(
        rofi_problems(&run).is_empty(),
        "rofi: {:?}",
        rofi_problems(&run)
    );
    assert!(
        run.out.contains("modi: \"drun,run,window\";"),
        "the base was not imported:\n{}",
        run.out
    );
    assert!(run.out.contains("Parsing top file"), "{}", run.out);
    let base = home.path().join("base.rasi");
    fs::write(
        &base,
        read("rofi/config.rasi").replace("border: 2px;", "border 2px;"),
    )
    .unwrap();
    let run = rofi(&x, home.path(), &base, "-dump-config");
    assert!(
        run.out.contains("Error while parsing"),
        "rofi accepted a broken copy:\n{}",
        run.out
    );
    fs::write(
        &base,
        read("rofi/config.rasi").replace("show-icons:", "show-icns:"),
    )
    .unwrap();
    let run = rofi(&x, home.path(), &base, "-dump-config");
    assert!(run.out.contains("show-icns is not found"), "{}", run.out);
}

// ------------------------------------------------------------------ openbox

/// Openbox with `rc` as ~/.config/openbox/rc.xml and the KOOMPI theme in
/// ~/.local/share/themes: its messages after a few seconds (it keeps running when happy).
fn openbox(x: &Xvfb, rc: &str) -> Run {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/openbox");
    write(&dir.join("rc.xml"), rc);
    // A menu of its own, so the host's menu.xml (Debian's includes a generated one) is not read.
    write(
        &dir.join("menu.xml"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<openbox_menu xmlns=\"http://openbox.org/3.4/menu\">\
         <menu id=\"root-menu\" label=\"Openbox\"><item label=\"Reconfigure\"><action name=\"Reconfigure\"/></item>\
         </menu></openbox_menu>\n",
    );
    let theme = "openbox/themes/KOOMPI/openbox-3/themerc";
    write(
        &home
            .path()
            .join(".local/share/themes/KOOMPI/openbox-3/themerc"),
        &read(theme),
    );
    let mut cmd = Command::new("openbox");
    cmd.arg("--config-file").arg(dir.join("rc.xml"));
    xdg_env(&mut cmd, home.path());
    cmd.env("DISPLAY", &x.display);
    run_for(cmd, Duration::from_secs(4))
}

#[test]
fn openbox_takes_rc_xml_and_the_koompi_theme_and_refuses_broken_copies() {
    if !prereq::require("configs_real openbox", &["openbox", "Xvfb"]) {
        return;
    }
    let x = Xvfb::start();
    let rc = read("openbox/rc.xml");
    let run = openbox(&x, &rc);
    assert!(run.running, "openbox exited:\n{}", run.out);
    assert_eq!(
        run.out.trim(),
        "",
        "openbox complains about rc.xml or the theme"
    );
    for (broken, says) in [
        (
            rc.replace("<action name=\"Close\"/>", "<action name=\"Clse\"/>"),
            "Invalid action \"Clse\"",
        ),
        (rc.replace("</keyboard>", "</keybord>"), "parser error"),
        (
            rc.replace("<name>KOOMPI</name>", "<name>NoSuchTheme</name>"),
            "Unable to load the theme",
        ),
    ] {
        let run = openbox(&x, &broken);
        assert!(
            run.out.contains(says),
            "openbox did not say {says:?}:\n{}",
            run.out
        );
    }
}

// ------------------------------------------------------------------ tint2

fn tint2(x: &Xvfb, rc: &str) -> Run {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/tint2/tint2rc");
    write(&path, rc);
    // tint2 buffers what it prints and loses it when stopped: line buffering.
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "-eL", "tint2", "-c"]).arg(&path);
    xdg_env(&mut cmd, home.path());
    cmd.env("DISPLAY", &x.display);
    // "nb monitors" comes after the config file is read.
    run_until(cmd, Duration::from_secs(30), Some("nb monitors"))
}

fn tint2_problems(run: &Run) -> Vec<&str> {
    run.out
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("invalid option")
                || l.contains("deprecated")
                || l.contains("could not load config")
        })
        .collect()
}

#[test]
fn tint2_takes_tint2rc_and_refuses_a_broken_copy() {
    if !prereq::require("configs_real tint2", &["tint2", "Xvfb", "stdbuf"]) {
        return;
    }
    let x = Xvfb::start();
    let rc = read("tint2/tint2rc");
    let run = tint2(&x, &rc);
    assert!(run.running, "tint2 exited ({:?}):\n{}", run.code, run.out);
    assert!(run.out.contains("Loading config file"), "{}", run.out);
    assert!(
        tint2_problems(&run).is_empty(),
        "tint2: {:?}",
        tint2_problems(&run)
    );
    let run = tint2(&x, &rc.replace("panel_size =", "panel_siz ="));
    assert!(
        run.out.contains("invalid option \"panel_siz\""),
        "tint2 accepted a broken copy:\n{}",
        run.out
    );
}

// ------------------------------------------------------------------ waybar under sway

/// What waybar logs because the machine has no Hyprland, sound, Wi-Fi or battery, or
/// because Debian 12's waybar 0.9.17 is older than Arch's: nothing about the files.
const WAYBAR_ENVIRONMENT: &[&str] = &[
    // Debian 12's waybar 0.9.17 has hyprland/window and hyprland/language but not
    // hyprland/workspaces (Arch's current waybar has it).
    "Unknown module: hyprland/workspaces",
    "Hyprland is not running",
    "HYPRLAND_INSTANCE_SIGNATURE was not set",
    "hyprland language initLanguage failed",
    // waybar 0.9.17 prints this bare line at start when no Hyprland is running.
    "basic_string::_M_create",
    "pa_context_connect() failed",
    "Can't open RFKILL control device",
    "Can't resolve nl80211 interface",
    "No batteries.",
    "As using a timezone",
    "Error reading events from display: Broken pipe",
];

/// Runs `sway ARGS` with its home in `dir`, as nobody when root (then `dir` is given to
/// nobody first).
fn sway(dir: &Path, args: &[&str], limit: Duration) -> Run {
    run_for(sway_command(dir, args), limit)
}

/// The four waybar files: the home files and the bases they include.
struct WaybarFiles {
    config: String,
    style: String,
    base_config: String,
    base_style: String,
}

impl WaybarFiles {
    fn shipped() -> WaybarFiles {
        WaybarFiles {
            config: read("waybar/home/config"),
            style: read("waybar/home/style.css"),
            base_config: read("waybar/config"),
            base_style: read("waybar/style.css"),
        }
    }
}

/// waybar's log with the files, started by a headless sway (whose own config is checked
/// with `sway --validate` first). Everything lives in one scratch directory that the user
/// sway runs as can read; the home files load the bases from there.
fn waybar(files: &WaybarFiles) -> String {
    let dir = tempfile::Builder::new()
        .prefix("koompi-waybar-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let base = d.join("base");
    let home = |t: &str| t.replace(CONFIGS_DIR, base.to_str().unwrap());
    write(&base.join("waybar/config"), &files.base_config);
    write(&base.join("waybar/style.css"), &files.base_style);
    write(&d.join("config"), &home(&files.config));
    write(&d.join("style.css"), &home(&files.style));
    let log = d.join("waybar.log");
    let sway_conf = d.join("sway.conf");
    write(
        &sway_conf,
        &format!(
            "exec waybar -c {} -s {} > {} 2>&1\n",
            d.join("config").display(),
            d.join("style.css").display(),
            log.display()
        ),
    );
    let conf = sway_conf.to_str().unwrap();
    let check = sway(d, &["--validate", "-c", conf], Duration::from_secs(30));
    assert_eq!(
        check.code,
        Some(0),
        "sway --validate refuses its config:\n{}",
        check.out
    );
    // Long enough for waybar to configure its bar on the headless output.
    let run = sway(d, &["-c", conf], Duration::from_secs(8));
    assert!(run.running, "sway exited:\n{}", run.out);
    fs::read_to_string(&log).unwrap_or_default()
}

fn waybar_problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| !l.contains("[info]") && !l.trim().is_empty())
        .filter(|l| !WAYBAR_ENVIRONMENT.iter().any(|e| l.contains(e)))
        .collect()
}

#[test]
fn waybar_under_sway_takes_the_home_files_with_their_bases_and_refuses_broken_copies() {
    if !prereq::require("configs_real waybar", &["sway", "waybar", "setpriv"]) {
        return;
    }
    let log = waybar(&WaybarFiles::shipped());
    assert!(
        log.contains("Including resource file"),
        "the base config was not included:\n{log}"
    );
    assert!(log.contains("Bar configured"), "waybar made no bar:\n{log}");
    assert!(
        waybar_problems(&log).is_empty(),
        "waybar: {:?}\n{log}",
        waybar_problems(&log)
    );

    let mut broken = WaybarFiles::shipped();
    broken.base_config = broken
        .base_config
        .replace("\"spacing\": 6,", "\"spacing\": 6");
    let log = waybar(&broken);
    assert!(
        log.contains("Missing ',' or '}'") && !log.contains("Bar configured"),
        "waybar accepted a broken config:\n{log}"
    );
    let mut broken = WaybarFiles::shipped();
    broken.base_config = broken.base_config.replace("\"clock\"]", "\"clokc\"]");
    let log = waybar(&broken);
    assert!(log.contains("Unknown module: clokc"), "{log}");
    let mut broken = WaybarFiles::shipped();
    broken.base_style = broken
        .base_style
        .replace("font-weight: bold;", "font-wieght: bold;");
    let log = waybar(&broken);
    assert!(
        log.contains("'font-wieght' is not a valid property name"),
        "waybar accepted broken CSS:\n{log}"
    );
}

// ------------------------------------------------------------------ neovim

fn luac(path: &Path) -> Run {
    let mut cmd = Command::new("luac5.4");
    cmd.arg("-p").arg(path);
    run_for(cmd, Duration::from_secs(20))
}

#[test]
fn init_lua_is_lua_and_refuses_a_broken_copy() {
    if !prereq::require("configs_real luac", &["luac5.4"]) {
        return;
    }
    for rel in ["neovim/init.lua", "neovim/home/init.lua"] {
        let run = luac(&configs().join(rel));
        assert_eq!(run.code, Some(0), "luac refuses {rel}:\n{}", run.out);
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("init.lua");
    fs::write(&broken, read("neovim/init.lua").replacen("end", "ennd", 1)).unwrap();
    let run = luac(&broken);
    assert_ne!(run.code, Some(0), "luac accepted a broken copy");
}

/// Neovim runs the home file (and through it the base) with an empty home: KOOMPI's
/// colours are applied and nothing is reported. Debian's Neovim 0.7 is older than LazyVim
/// needs, so this is the plain path (the one an offline classroom gets too).
fn nvim(init: &str) -> Run {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/nvim/init.lua");
    write(&path, init);
    let mut cmd = Command::new("nvim");
    cmd.args(["--headless", "-u"]).arg(&path).args([
        "-c",
        "lua io.stdout:write('colors_name=' .. tostring(vim.g.colors_name) .. '\\n')",
        "-c",
        "qa!",
    ]);
    xdg_env(&mut cmd, home.path());
    cmd.env("XDG_STATE_HOME", home.path().join(".local/state"));
    run_for(cmd, Duration::from_secs(30))
}

#[test]
fn neovim_runs_the_home_file_and_its_base_and_reports_a_broken_copy() {
    if !prereq::require("configs_real nvim", &["nvim"]) {
        return;
    }
    let stub = localized(&read("neovim/home/init.lua"));
    let run = nvim(&stub);
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert_eq!(
        run.out.trim(),
        "colors_name=koompi",
        "nvim said more:\n{}",
        run.out
    );
    let run = nvim(&stub.replace("dofile(", "dofile_typo("));
    assert!(
        run.out.contains("dofile_typo"),
        "nvim did not report the error:\n{}",
        run.out
    );
}

// ------------------------------------------------------------------ zellij (KDL v1)

fn kdl_v1(text: &str) -> Result<kdl::KdlDocument, String> {
    kdl::KdlDocument::parse_v1(text).map_err(|e| format!("{e:?}"))
}

#[test]
fn zellij_config_and_layout_are_kdl_v1_and_refer_to_each_other() {
    let config = kdl_v1(&read("zellij/config.kdl")).unwrap();
    let value = |name: &str| {
        config
            .get_arg(name)
            .and_then(|v| v.as_string())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("config.kdl has no {name}"))
    };
    let theme = value("theme");
    let themes = config.get("themes").and_then(|n| n.children()).unwrap();
    let colors = themes.get(&theme).and_then(|n| n.children()).unwrap();
    for c in [
        "fg", "bg", "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white", "orange",
    ] {
        assert!(colors.get(c).is_some(), "theme {theme} has no {c}");
    }
    let layout = value("default_layout");
    let text = read(&format!("zellij/layouts/{layout}.kdl"));
    let doc = kdl_v1(&text).unwrap();
    assert!(
        doc.get("layout").is_some(),
        "layouts/{layout}.kdl has no layout node"
    );
    // The catalog puts the layout where zellij looks for it.
    let catalog = Catalog::parse(&read("editions.toml")).unwrap();
    let dests: Vec<String> = catalog.config_sets["zellij"]
        .files
        .iter()
        .map(|f| f.dest.display().to_string())
        .collect();
    assert!(
        dests.contains(&format!(".config/zellij/layouts/{layout}.kdl")),
        "{dests:?}"
    );

    // Broken copies are refused.
    assert!(kdl_v1(&read("zellij/config.kdl").replacen("themes {", "themes {{", 1)).is_err());
    assert!(kdl_v1(&text.replacen("tab name=\"files\"", "tab name=\"files", 1)).is_err());
}

// ------------------------------------------------------------------ Hyprland (keywords)

/// Hyprland's documented words, from tests/data/hyprland-0.54-keywords.txt (its header says
/// where they come from).
struct HyprWords {
    sets: BTreeMap<String, BTreeSet<String>>,
}

impl HyprWords {
    fn load() -> HyprWords {
        let text = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hyprland-0.54-keywords.txt"),
        )
        .unwrap();
        let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = s.to_string();
                continue;
            }
            sets.entry(section.clone())
                .or_default()
                .insert(line.to_string());
        }
        HyprWords { sets }
    }

    fn has(&self, set: &str, word: &str) -> bool {
        self.sets.get(set).is_some_and(|s| s.contains(word))
    }
}

/// Every problem of a hyprland.conf against the documented words: unknown options,
/// keywords, bind flags, dispatchers, layout messages and animations, variables used
/// before they are set, unbalanced braces. `source =` lines are followed (with
/// /usr/share/koompi/configs meaning this checkout).
fn hyprland_problems(text: &str, words: &HyprWords) -> Vec<String> {
    let mut problems = Vec::new();
    let mut vars = BTreeSet::new();
    let mut curves: BTreeSet<String> = ["default".to_string()].into();
    check_hypr(
        text,
        "hyprland.conf",
        words,
        &mut vars,
        &mut curves,
        &mut problems,
    );
    problems
}

fn check_hypr(
    text: &str,
    file: &str,
    words: &HyprWords,
    vars: &mut BTreeSet<String>,
    curves: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let mut stack: Vec<String> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        // `##` is a literal #; a single # starts a comment.
        let line = raw.replace("##", "\u{1}");
        let line = line.split('#').next().unwrap().replace('\u{1}', "#");
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "}" {
            if stack.pop().is_none() {
                problems.push(format!("{at}: `}}` closes no category"));
            }
            continue;
        }
        if let Some(cat) = line.strip_suffix('{') {
            stack.push(cat.trim().to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            problems.push(format!("{at}: `{line}` is not `key = value`"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        // Variables used must be set before.
        for used in value.split('$').skip(1) {
            let name: String = used
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !vars.contains(&name) {
                problems.push(format!("{at}: ${name} is used before it is set"));
            }
        }
        if let Some(var) = key.strip_prefix('$') {
            vars.insert(var.to_string());
            continue;
        }
        if !stack.is_empty() {
            let cat = stack.join(":");
            let in_animations = cat == "animations" && (key == "bezier" || key == "animation");
            if in_animations {
                check_hypr_keyword(key, value, &at, words, curves, problems);
            } else if !words.has("options", &format!("{cat}:{key}")) {
                problems.push(format!("{at}: `{cat}:{key}` is not a documented option"));
            }
            continue;
        }
        if key.contains(':') {
            if !words.has("options", key) {
                problems.push(format!("{at}: `{key}` is not a documented option"));
            }
            continue;
        }
        if key == "source" {
            let path = localized(value);
            match fs::read_to_string(&path) {
                Ok(t) => check_hypr(&t, &path, words, vars, curves, problems),
                Err(e) => problems.push(format!("{at}: source {value}: {e}")),
            }
            continue;
        }
        check_hypr_keyword(key, value, &at, words, curves, problems);
    }
    if !stack.is_empty() {
        problems.push(format!(
            "{file}: category {} is not closed",
            stack.join(":")
        ));
    }
}

fn check_hypr_keyword(
    key: &str,
    value: &str,
    at: &str,
    words: &HyprWords,
    curves: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let fields: Vec<&str> = value.split(',').map(str::trim).collect();
    if let Some(flags) = key.strip_prefix("bind") {
        for f in flags.chars() {
            if !words.has("bind-flags", &f.to_string()) {
                problems.push(format!(
                    "{at}: `{key}`: `{f}` is not a documented bind flag"
                ));
            }
        }
        let dispatcher = fields.get(2).copied().unwrap_or("");
        if flags.contains('m') {
            if !words.has("mouse", dispatcher) {
                problems.push(format!(
                    "{at}: `{dispatcher}` is not a documented bindm action"
                ));
            }
        } else if !words.has("dispatchers", dispatcher) {
            problems.push(format!(
                "{at}: `{dispatcher}` is not a documented dispatcher"
            ));
        } else if dispatcher == "layoutmsg" {
            let msg = fields
                .get(3)
                .and_then(|m| m.split_whitespace().next())
                .unwrap_or("");
            if !words.has("layoutmsg", msg) {
                problems.push(format!(
                    "{at}: `layoutmsg, {msg}` is not a documented layout message"
                ));
            }
        }
        return;
    }
    if !words.has("keywords", key) {
        problems.push(format!("{at}: `{key}` is not a documented keyword"));
        return;
    }
    match key {
        "bezier" => {
            curves.insert(fields[0].to_string());
        }
        "animation" => {
            if !words.has("animations", fields[0]) {
                problems.push(format!(
                    "{at}: `{}` is not a documented animation",
                    fields[0]
                ));
            }
            if let Some(curve) = fields.get(3) {
                if !curves.contains(*curve) {
                    problems.push(format!("{at}: curve `{curve}` is not defined by a bezier"));
                }
            }
        }
        _ => {}
    }
}

#[test]
fn hyprland_conf_uses_only_documented_keywords_and_refuses_broken_copies() {
    let words = HyprWords::load();
    for set in [
        "options",
        "keywords",
        "bind-flags",
        "dispatchers",
        "mouse",
        "layoutmsg",
        "animations",
    ] {
        assert!(
            words.sets.get(set).is_some_and(|s| !s.is_empty()),
            "no [{set}] in the list"
        );
    }
    let base = read("hyprland/hyprland.conf");
    assert_eq!(hyprland_problems(&base, &words), Vec::<String>::new());
    // The home file, through its `source =`.
    let stub = read("hyprland/home/hyprland.conf");
    assert_eq!(hyprland_problems(&stub, &words), Vec::<String>::new());
    assert!(stub.contains("source = /usr/share/koompi/configs/hyprland/hyprland.conf"));

    for (broken, says) in [
        // A dispatcher Hyprland 0.54 no longer has (dwindle's togglesplit is a layoutmsg).
        (
            base.replace("layoutmsg, togglesplit", "togglesplit,"),
            "`togglesplit` is not a documented dispatcher",
        ),
        (
            base.replace("gaps_in = 4", "gaps_inn = 4"),
            "`general:gaps_inn` is not a documented option",
        ),
        (
            base.replace("tap-to-click", "tap_to_click"),
            "`input:touchpad:tap_to_click`",
        ),
        (
            base.replace("exec-once = waybar", "exec-onse = waybar"),
            "`exec-onse` is not a documented keyword",
        ),
        (
            base.replace("bindel =", "bindz ="),
            "`z` is not a documented bind flag",
        ),
        (
            base.replace("animation = fade,", "animation = fadde,"),
            "`fadde` is not a documented animation",
        ),
        (
            base.replace("$mod = SUPER", "$modd = SUPER"),
            "$mod is used before it is set",
        ),
        (
            base.replacen("preserve_split = true\n}", "preserve_split = true\n", 1),
            "not closed",
        ),
    ] {
        let problems = hyprland_problems(&broken, &words);
        assert!(
            problems.iter().any(|p| p.contains(says)),
            "expected {says:?}, got {problems:?}"
        );
    }
}
