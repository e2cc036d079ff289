//! The package fixtures against the real pacman and makepkg of the host: build, install,
//! conflict, upgrade, scriptlets (including failing ones) and removal, so the tests of the
//! `koompi` package commands can trust what the fixtures set up.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use koompi_testutil::pkgrepo::{require_pacman, PacmanRoot, PkgRepo, Scriptlet, TestPkg};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

fn libdemo(version: &str) -> TestPkg {
    TestPkg::new("libdemo", version)
        .description("Demo library")
        .file("/usr/lib/libdemo/VERSION", format!("{version}\n"), 0o644)
}

fn demo_app(version: &str) -> TestPkg {
    TestPkg::new("demo-app", version)
        .description("Demo application")
        .depends(&["libdemo>=1.0"])
        .provides(&["demo"])
        .groups(&["koompi-demo"])
        .file(
            "/usr/bin/demo-app",
            format!("#!/bin/sh\necho demo-app {version}\n"),
            0o755,
        )
        .file("/etc/demo-app.conf", "colour=blue\n", 0o640)
        .backup(&["etc/demo-app.conf"])
        .scriptlet(
            Scriptlet::PostInstall,
            "mkdir -p /var/lib/demo-app\necho \"installed $1\" > /var/lib/demo-app/state",
        )
        .scriptlet(
            Scriptlet::PostUpgrade,
            "echo \"upgraded $2 -> $1\" > /var/lib/demo-app/state",
        )
        .scriptlet(
            Scriptlet::PostRemove,
            "echo \"removed $1\" > /tmp/demo-app-removed",
        )
}

fn demo_legacy() -> TestPkg {
    TestPkg::new("demo-legacy", "0.9-3")
        .description("The old demo, in conflict with demo-app")
        .conflicts(&["demo-app"])
        .file("/usr/bin/demo-legacy", "#!/bin/sh\necho legacy\n", 0o755)
}

#[test]
fn build_install_conflict_upgrade_remove() {
    if !require_pacman("build_install_conflict_upgrade_remove") {
        return;
    }
    let repo = PkgRepo::new("koompi-test");
    let built = repo.build(&[libdemo("1.0-1"), demo_app("1.0-1"), demo_legacy()]);
    assert_eq!(built.len(), 3);
    assert!(built
        .iter()
        .all(|f| f.starts_with(repo.dir()) && f.is_file()));
    assert!(repo.db().is_file(), "repo-add wrote {:?}", repo.db());

    let root = PacmanRoot::new(&repo);
    let conf = fs::read_to_string(root.conf()).expect("pacman.conf");
    assert!(conf.contains("[koompi-test]") && conf.contains(&repo.server()));

    root.pacman_ok(&["-Sy"]);
    let sync = root.pacman_ok(&["-Sl", "koompi-test"]);
    assert_eq!(sync.lines().count(), 3, "{sync}");

    // Dependency resolution from the repository: libdemo comes along.
    let out = root.pacman_ok(&["-S", "demo-app"]);
    assert!(out.contains("libdemo-1.0-1"), "{out}");
    assert_eq!(
        root.installed(),
        pairs(&[("demo-app", "1.0-1"), ("libdemo", "1.0-1")])
    );
    assert_eq!(root.pacman_ok(&["-Qdq"]).trim(), "libdemo");
    assert_eq!(root.pacman_ok(&["-Qgq", "koompi-demo"]).trim(), "demo-app");

    // Files, modes, contents.
    let app = root.path("/usr/bin/demo-app");
    assert_eq!(
        fs::read_to_string(&app).expect("demo-app"),
        "#!/bin/sh\necho demo-app 1.0-1\n"
    );
    assert_eq!(mode(&app), 0o755);
    assert_eq!(mode(&root.path("/etc/demo-app.conf")), 0o640);
    assert_eq!(mode(&root.path("/usr/lib/libdemo/VERSION")), 0o644);
    // The scriptlet ran, chrooted into the root.
    assert_eq!(
        fs::read_to_string(root.path("/var/lib/demo-app/state")).expect("scriptlet output"),
        "installed 1.0-1\n"
    );
    assert!(root.log().contains("[ALPM] installed demo-app (1.0-1)"));

    // A conflicting package: pacman's default answer under --noconfirm is "no".
    let out = root.pacman(&["-S", "demo-legacy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("unresolvable package conflicts detected"),
        "{}",
        text(&out)
    );
    assert_eq!(root.installed().len(), 2);
    assert!(!root.path("/usr/bin/demo-legacy").exists());

    // Upgrade: a newer version built later into the same repository.
    fs::write(root.path("/etc/demo-app.conf"), "colour=red\n").expect("edit the config");
    repo.build(&[demo_app("1.1-1")]);
    let out = root.pacman_ok(&["-Syu"]);
    assert!(out.contains("demo-app-1.1-1"), "{out}");
    assert_eq!(
        root.installed(),
        pairs(&[("demo-app", "1.1-1"), ("libdemo", "1.0-1")])
    );
    assert_eq!(
        fs::read_to_string(&app).expect("demo-app"),
        "#!/bin/sh\necho demo-app 1.1-1\n"
    );
    assert_eq!(
        fs::read_to_string(root.path("/var/lib/demo-app/state")).expect("scriptlet output"),
        "upgraded 1.0-1 -> 1.1-1\n"
    );
    // The edited backup file is kept (unchanged in the package, so no .pacnew).
    assert_eq!(
        fs::read_to_string(root.path("/etc/demo-app.conf")).expect("config"),
        "colour=red\n"
    );

    // Removal, with the dependency nothing needs any more.
    root.pacman_ok(&["-Rs", "demo-app"]);
    assert!(root.installed().is_empty());
    assert!(!app.exists());
    assert!(!root.path("/usr/lib/libdemo/VERSION").exists());
    assert_eq!(
        fs::read_to_string(root.path("/tmp/demo-app-removed")).expect("post_remove output"),
        "removed 1.1-1\n"
    );
    // The edited config is saved, as pacman does with backup files.
    assert_eq!(
        fs::read_to_string(root.path("/etc/demo-app.conf.pacsave")).expect(".pacsave"),
        "colour=red\n"
    );
}

/// pacman 6 ignores a scriptlet's exit status: it reports the failure and carries on.
#[test]
fn failing_scriptlets_do_not_stop_pacman() {
    if !require_pacman("failing_scriptlets_do_not_stop_pacman") {
        return;
    }
    let repo = PkgRepo::new("scriptlets");
    let bad = |v: &str| {
        TestPkg::new("bad-scriptlets", v)
            .file("/usr/share/bad/VERSION", v, 0o644)
            .scriptlet(Scriptlet::PreInstall, "echo 'pre_install refuses'\nexit 1")
            .scriptlet(Scriptlet::PreUpgrade, "echo 'pre_upgrade refuses'; exit 1")
            .scriptlet(Scriptlet::PreRemove, "echo 'pre_remove refuses'; exit 1")
    };
    repo.build(&[bad("1-1")]);
    let root = PacmanRoot::new(&repo);

    let out = root.pacman(&["-Sy", "bad-scriptlets"]);
    let all = text(&out);
    assert!(all.contains("pre_install refuses"), "{all}");
    assert!(
        all.contains("error: command failed to execute correctly"),
        "{all}"
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(root.installed(), pairs(&[("bad-scriptlets", "1-1")]));
    assert!(root.path("/usr/share/bad/VERSION").is_file());
    assert!(root.log().contains("[ALPM-SCRIPTLET] pre_install refuses"));

    repo.build(&[bad("2-1")]);
    let out = root.pacman(&["-Syu"]);
    assert!(text(&out).contains("pre_upgrade refuses"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(root.installed(), pairs(&[("bad-scriptlets", "2-1")]));

    let out = root.pacman(&["-R", "bad-scriptlets"]);
    assert!(text(&out).contains("pre_remove refuses"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(root.installed().is_empty());

    // Without /bin/sh in the root no scriptlet can run, and pacman still succeeds.
    let bare = PacmanRoot::without_shell(&[&repo]);
    let out = bare.pacman(&["-Sy", "bad-scriptlets"]);
    assert!(
        text(&out).contains("call to execv failed"),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(bare.installed(), pairs(&[("bad-scriptlets", "2-1")]));
}

/// The failures that do stop a transaction: nothing is installed.
#[test]
fn missing_dependency_and_file_conflict_fail() {
    if !require_pacman("missing_dependency_and_file_conflict_fail") {
        return;
    }
    let repo = PkgRepo::new("failures");
    let built = repo.build(&[
        TestPkg::new("needs-ghost", "1-1")
            .depends(&["ghost-lib"])
            .file("/usr/share/needs-ghost", "x", 0o644),
        TestPkg::new("writes-motd", "1-1").file("/etc/motd", "hello\n", 0o644),
    ]);
    let root = PacmanRoot::new(&repo);

    let out = root.pacman(&["-Sy", "needs-ghost"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("unable to satisfy dependency 'ghost-lib'"),
        "{}",
        text(&out)
    );

    fs::create_dir_all(root.path("/etc")).expect("mkdir etc");
    fs::write(root.path("/etc/motd"), "local\n").expect("write motd");
    let out = root.pacman(&["-U", built[1].to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("/etc/motd exists in filesystem"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fs::read_to_string(root.path("/etc/motd")).expect("motd"),
        "local\n"
    );
    assert!(root.installed().is_empty());

    // build_file: a package file that is not in the repository, and an epoch.
    let file = repo.build_file(&TestPkg::new("local-only", "2:1.0-1"));
    root.pacman_ok(&["-U", file.to_str().expect("utf-8 path")]);
    assert_eq!(root.installed(), pairs(&[("local-only", "2:1.0-1")]));
    let out = root.pacman(&["-S", "local-only"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not in the repository: {}",
        text(&out)
    );
}
