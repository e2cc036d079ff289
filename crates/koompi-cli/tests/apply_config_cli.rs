//! `koompi-apply-config` as people run it, on temporary homes with the repository's
//! configs/: one line per file, a second run that changes nothing (the whole home compared),
//! `--restore`, `--json`, one-line errors, and `--profile` with pacman, systemctl and koompi
//! replaced by recording stand-ins on PATH. As root (required with
//! KOOMPI_PRIVILEGED_TESTS=1): an ordinary user through setpriv, and `--user` for a user
//! made for the test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use koompi_testutil::tree::{differences, snapshot};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cmd() -> Command {
    let mut c = Command::cargo_bin("koompi-apply-config").unwrap();
    c.arg("--catalog")
        .arg(repo().join("configs/editions.toml"))
        .arg("--configs")
        .arg(repo().join("configs"));
    c
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_failing(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn applies_once_then_changes_nothing_then_restores() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let pristine = snapshot(h);
    let dry = stdout(cmd().args(["terminal", "--dry-run", "--home"]).arg(h));
    assert!(
        dry.starts_with("would create .config/zellij/config.kdl\n"),
        "{dry}"
    );
    assert_eq!(snapshot(h), pristine);

    let out = stdout(cmd().args(["terminal", "--home"]).arg(h));
    assert_eq!(
        out,
        format!(
            "created .config/zellij/config.kdl\ncreated .config/zellij/layouts/koompi.kdl\n\
             created .config/nvim/init.lua\nterminal in {}: 3 created\n",
            h.display()
        )
    );
    let once = snapshot(h);
    let out = stdout(cmd().args(["terminal", "--home"]).arg(h));
    assert!(out.ends_with("3 already current; nothing to do\n"), "{out}");
    let twice = snapshot(h);
    assert!(once == twice, "{:?}", differences(&once, &twice));

    let json = stdout(cmd().args(["terminal", "--json", "--home"]).arg(h));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["files"][0]["outcome"], "current");
    assert_eq!(v["dry_run"], false);

    let out = stdout(cmd().args(["--restore", "--home"]).arg(h));
    assert!(out.contains("removed .config/nvim/init.lua\n"), "{out}");
    let after = snapshot(h);
    assert!(pristine == after, "{:?}", differences(&pristine, &after));
    let err = stderr_failing(cmd().args(["--restore", "--home"]).arg(h));
    assert!(
        err.starts_with("koompi-apply-config: error: nothing to restore in"),
        "{err}"
    );
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["kd"], "no edition `kd`; the editions are: tiling,"),
        (
            vec!["lite", "--home", "/nonexistent/home"],
            "cannot open the home /nonexistent/home: No such file or directory",
        ),
        (vec!["lite", "--user", "a:b"], "`a:b` is not a user name"),
    ];
    for (args, want) in cases {
        let mut c = cmd();
        c.args(&args);
        if !args.contains(&"--home") && !args.contains(&"--user") {
            c.arg("--home").arg(home.path());
        }
        let err = stderr_failing(&mut c);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // No edition, no --profile, no --restore: clap says what is missing.
    let err = stderr_failing(cmd().arg("--home").arg(home.path()));
    assert!(err.contains("<EDITION>"), "{err}");
}

/// Stand-ins for pacman, systemctl and koompi that write each command line to `log` and
/// answer from `installed` and `enabled` (files with one name a line).
fn fake_path(dir: &Path) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let d = dir.display();
    let scripts = [
        (
            "pacman",
            format!(
                "#!/bin/sh\necho \"pacman $*\" >>{d}/log\ncase \"$1\" in\n\
                 -Qq) cat {d}/installed ;;\n-Qg) exit 1 ;;\nesac\n"
            ),
        ),
        (
            "systemctl",
            format!(
                "#!/bin/sh\necho \"systemctl $*\" >>{d}/log\n\
                 if [ \"$1\" = is-enabled ]; then grep -qx \"$3\" {d}/enabled && echo enabled && exit 0; echo disabled; exit 1; fi\n"
            ),
        ),
        ("koompi", format!("#!/bin/sh\necho \"koompi $*\" >>{d}/log\n")),
    ];
    for (name, text) in scripts {
        let p = bin.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(dir.join("installed"), "").unwrap();
    fs::write(dir.join("enabled"), "").unwrap();
    fs::write(dir.join("log"), "").unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_profile_does_only_what_differs() {
    let t = tempfile::tempdir().unwrap();
    let path = fake_path(t.path());
    let home = t.path().join("home");
    fs::create_dir(&home).unwrap();
    let profile = t.path().join("profile.toml");
    fs::write(
        &profile,
        "edition = \"terminal\"\npackages = [\"gimp\"]\nconfig-sets = [\"foot\"]\nservices = [\"cups.service\"]\n",
    )
    .unwrap();
    let log = || fs::read_to_string(t.path().join("log")).unwrap();

    // A dry run asks, and changes nothing.
    let out = stdout(
        cmd()
            .env("PATH", &path)
            .arg("--profile")
            .arg(&profile)
            .args(["--dry-run", "--home"])
            .arg(&home),
    );
    assert!(out.starts_with("would install zellij yazi"), "{out}");
    assert!(out.contains(" gimp\nwould enable cups.service\n"), "{out}");
    assert!(out.contains("would create .config/foot/foot.ini"), "{out}");
    assert_eq!(
        log(),
        "pacman -Qq\npacman -Qg\nsystemctl is-enabled -- cups.service\n"
    );
    assert_eq!(fs::read_dir(&home).unwrap().count(), 0);

    // The profile found in the home (none there, and /etc/koompi/profile.toml is not
    // this test's): a clear line.
    if !Path::new(profile_system()).exists() {
        let err = stderr_failing(
            cmd()
                .env("PATH", &path)
                .args(["--profile", "--home"])
                .arg(&home),
        );
        assert!(err.contains("no profile: neither"), "{err}");
    }

    if !rustix::process::geteuid().is_root() {
        let err = stderr_failing(
            cmd()
                .env("PATH", &path)
                .arg("--profile")
                .arg(&profile)
                .arg("--home")
                .arg(&home),
        );
        assert!(err.contains("needs root"), "{err}");
        eprintln!("SKIP the rest of a_profile_does_only_what_differs: not root");
        return;
    }
    fs::write(t.path().join("log"), "").unwrap();
    let out = stdout(
        cmd()
            .env("PATH", &path)
            .arg("--profile")
            .arg(&profile)
            .arg("--home")
            .arg(&home),
    );
    assert!(out.contains("created .config/foot/foot.ini\n"), "{out}");
    let l = log();
    assert!(
        l.contains("\nkoompi install --noconfirm zellij yazi"),
        "{l}"
    );
    assert!(l.ends_with("systemctl enable -- cups.service\n"), "{l}");
    // Everything there now: the second run only asks.
    let installed = "zellij\nyazi\nueberzugpp\nneovim\nlazygit\nbtop\ndust\nduf\nfd\nripgrep\nbat\neza\nfcitx5\nfcitx5-m17n\ngimp\n";
    fs::write(t.path().join("installed"), installed).unwrap();
    fs::write(t.path().join("enabled"), "cups.service\n").unwrap();
    fs::write(t.path().join("log"), "").unwrap();
    let once = snapshot(&home);
    let out = stdout(
        cmd()
            .env("PATH", &path)
            .arg("--profile")
            .arg(&profile)
            .arg("--json")
            .arg("--home")
            .arg(&home),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["commands"], serde_json::json!([]));
    assert_eq!(v["configs"]["applied"], "terminal + foot");
    assert_eq!(
        log(),
        "pacman -Qq\npacman -Qg\nsystemctl is-enabled -- cups.service\n"
    );
    assert!(once == snapshot(&home));
}

fn profile_system() -> &'static str {
    "/etc/koompi/profile.toml"
}

// ---------------------------------------------------------------- privileged

fn privileged(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return koompi_testutil::require_programs(test, &["setpriv", "useradd", "userdel"]);
    }
    if koompi_testutil::privileged_required() {
        koompi_testutil::fail(&format!(
            "{test}: privileged test required (KOOMPI_PRIVILEGED_TESTS=1) but not root"
        ));
    }
    eprintln!("SKIP {test}: not root (set KOOMPI_PRIVILEGED_TESTS=1 as root to run it)");
    false
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("koompi-apply-config")
}

#[test]
fn an_ordinary_user_applies_to_their_own_home_and_not_as_another() {
    if !privileged("an_ordinary_user_applies_to_their_own_home_and_not_as_another") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let home = t.path().join("home");
    fs::create_dir(&home).unwrap();
    rustix::fs::chown(
        &home,
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
    )
    .unwrap();
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin())
            .arg("--catalog")
            .arg(repo().join("configs/editions.toml"))
            .arg("--configs")
            .arg(repo().join("configs"))
            .args(args)
            .env("HOME", &home)
            .output()
            .unwrap()
    };
    let out = as_nobody(&["lite"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = fs::metadata(home.join(".config/openbox/rc.xml")).unwrap();
    assert_eq!(m.uid(), 65534);
    let out = as_nobody(&["lite", "--user", "root"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--user needs root (run it with sudo)"),
        "{err}"
    );
    // A directory the user cannot write: a line for the file and a failure, nothing else.
    let rofi = home.join(".config/rofi");
    fs::remove_file(rofi.join("config.rasi")).unwrap();
    fs::set_permissions(&rofi, fs::Permissions::from_mode(0o555)).unwrap();
    let out = as_nobody(&["lite"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("failed .config/rofi/config.rasi: cannot create a temporary file: permission denied; the file is unchanged"),
        "{text}"
    );
    assert_eq!(fs::read_dir(&rofi).unwrap().count(), 0);
}

/// A user made for the test, removed on drop.
struct TestUser {
    name: String,
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .status();
    }
}

#[test]
fn root_applies_to_a_users_home_as_that_user() {
    if !privileged("root_applies_to_a_users_home_as_that_user") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let home = t.path().join("dara");
    let name = format!("kac{}", std::process::id() % 100000);
    koompi_testutil::sh(
        "useradd",
        &[
            "--system",
            "--no-create-home",
            "--home-dir",
            home.to_str().unwrap(),
            "--shell",
            "/usr/sbin/nologin",
            &name,
        ],
    );
    let _user = TestUser { name: name.clone() };
    fs::create_dir(&home).unwrap();
    let uid: u32 = koompi_testutil::sh("id", &["-u", &name])
        .trim()
        .parse()
        .unwrap();
    let gid: u32 = koompi_testutil::sh("id", &["-g", &name])
        .trim()
        .parse()
        .unwrap();
    rustix::fs::chown(
        &home,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .unwrap();
    let out = stdout(cmd().args(["tiling", "--user", &name]));
    assert!(out.contains("created .config/hypr/hyprland.conf"), "{out}");
    for p in [
        ".config",
        ".config/hypr/hyprland.conf",
        ".local/state/koompi/apply-config/manifest.json",
    ] {
        let m = fs::symlink_metadata(home.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
    // /etc/skel's way: a root-owned skeleton gets root's files, and a copy of it is a
    // home whose first apply knows them.
    let skel = t.path().join("skel");
    fs::create_dir(&skel).unwrap();
    stdout(cmd().args(["tiling", "--home"]).arg(&skel));
    let m = fs::metadata(skel.join(".config/hypr/hyprland.conf")).unwrap();
    assert_eq!(m.uid(), 0);
    let copy = t.path().join("new-user");
    koompi_testutil::sh(
        "cp",
        &["-a", skel.to_str().unwrap(), copy.to_str().unwrap()],
    );
    let out = stdout(cmd().args(["tiling", "--home"]).arg(&copy));
    assert!(out.ends_with("already current; nothing to do\n"), "{out}");
}
