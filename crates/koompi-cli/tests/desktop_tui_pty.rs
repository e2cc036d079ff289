//! The `koompi-desktop` menu as a person meets it: on an 80x24 pseudo-terminal, the boxes
//! exactly as the build prompt draws them, keys to move, `7` to open More, a choice, the
//! plan with its yes/no, and `--dry-run` printing the chosen edition's plan. The system is
//! a throwaway root with an empty pacman database: nothing is installed.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

mod pty;
use pty::{after_the_screens, ended, DOWN, ENTER};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// A root with an empty pacman database and no display manager.
fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var/lib/pacman/local")).unwrap();
    std::fs::create_dir_all(d.path().join("etc/systemd/system")).unwrap();
    d
}

fn args(root: &Path) -> Vec<String> {
    vec![
        "--root".into(),
        root.display().to_string(),
        "--catalog".into(),
        configs().join("editions.toml").display().to_string(),
        "--configs".into(),
        configs().display().to_string(),
        "menu".into(),
        "--dry-run".into(),
    ]
}

fn have_pacman() -> bool {
    let found = koompi_testutil::which("pacman").is_some();
    if !found && std::env::var_os("KOOMPI_PRIVILEGED_TESTS").is_some() {
        panic!("pacman is missing (install pacman-package-manager)");
    }
    if !found {
        eprintln!("desktop_tui_pty: skipped: pacman is not installed");
    }
    found
}

#[test]
fn the_menu_chooses_lite_and_prints_its_plan() {
    if !have_pacman() {
        return;
    }
    let r = root();
    let a = args(r.path());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (mut tty, mut child) = pty::spawn(env!("CARGO_BIN_EXE_koompi-desktop"), &a, &[]);
    tty.wait_for("[7] More");
    tty.settle();
    let screen = tty.contents();
    for line in [
        "┌─ KOOMPI Editions ─────────────────────────┐",
        "│  [1] KOOMPI Tiling   (Hyprland + configs) │",
        "│  [2] KOOMPI Terminal (Pure CLI)           │",
        "│  [3] KOOMPI Lite     (Openbox)            │",
        "└───────────────────────────────────────────┘",
        "┌─ Community Desktops ──────────────────────┐",
        "│  [4] KDE  [5] GNOME  [6] XFCE  [7] More   │",
    ] {
        assert!(screen.contains(line), "missing `{line}` in:\n{screen}");
    }
    assert!(screen.contains("KOOMPI Tiling: Modern tiling"), "{screen}");
    // Down twice: the description follows the cursor.
    assert!(tty.moves(DOWN));
    assert!(tty.moves(DOWN));
    assert!(
        tty.contents().contains("KOOMPI Lite: Lightweight"),
        "{}",
        tty.contents()
    );
    // More opens its box; Esc closes it.
    tty.send("7");
    tty.wait_for("More Desktops");
    assert!(tty.contents().contains("[5] Hyprland"));
    tty.send("\x1b");
    tty.settle();
    // Lite, then the plan and its question.
    tty.send("3");
    tty.wait_for("Install KOOMPI Lite?");
    tty.settle();
    let plan = tty.contents();
    assert!(
        plan.contains("Display manager: none -> lightdm.service"),
        "{plan}"
    );
    assert!(plan.contains("y or Enter installs"), "{plan}");
    tty.send(ENTER);
    assert!(ended(&mut tty, &mut child), "the dry run succeeds");
    let after = after_the_screens(&tty);
    assert!(
        after.contains("KOOMPI Lite (dry run: nothing is changed)"),
        "{after}"
    );
    assert!(after.contains("Packages to install"), "{after}");
    // Nothing was written into the root.
    assert!(!r.path().join("var/lib/koompi").exists());
    assert!(!r
        .path()
        .join("etc/systemd/system/display-manager.service")
        .exists());
}

#[test]
fn q_quits_and_changes_nothing() {
    if !have_pacman() {
        return;
    }
    let r = root();
    let a = args(r.path());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (mut tty, mut child) = pty::spawn(env!("CARGO_BIN_EXE_koompi-desktop"), &a, &[]);
    tty.wait_for("[7] More");
    tty.send("q");
    assert!(ended(&mut tty, &mut child), "quitting is not a failure");
    let after = after_the_screens(&tty);
    assert!(!after.contains("dry run"), "{after}");
}
