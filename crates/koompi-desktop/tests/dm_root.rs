//! Display-manager switching with the real `systemctl --root` on a test root: the links it
//! makes, a failure in the middle of a switch, and that the alias never disappears while a
//! switch runs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use koompi_core::cmd::Runner;
use koompi_desktop::dm::{DmError, Systemd, ALIAS};

fn systemctl() -> Option<PathBuf> {
    let found = ["/usr/bin/systemctl", "/bin/systemctl"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() && std::env::var_os("KOOMPI_PRIVILEGED_TESTS").is_some() {
        panic!("systemctl is missing (install systemd)");
    }
    found
}

/// A root with four display managers (gdm with a WantedBy line too) and the two targets.
fn test_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = dir.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&lib).expect("lib");
    fs::create_dir_all(dir.path().join("etc/systemd/system")).expect("etc");
    for (dm, extra) in [
        ("lightdm", ""),
        ("sddm", ""),
        ("greetd", ""),
        ("gdm", "WantedBy=graphical.target\n"),
    ] {
        fs::write(
            lib.join(format!("{dm}.service")),
            format!(
                "[Unit]\nDescription={dm}\n[Service]\nExecStart=/usr/bin/{dm}\n\
                 [Install]\nAlias=display-manager.service\n{extra}"
            ),
        )
        .expect("unit");
    }
    for t in ["graphical", "multi-user"] {
        fs::write(
            lib.join(format!("{t}.target")),
            format!("[Unit]\nDescription={t}\n"),
        )
        .expect("target");
    }
    dir
}

fn sd(root: &Path, systemctl: &Path) -> Systemd {
    let mut s = Systemd::new(Some(root.to_owned()), Runner::real());
    s.systemctl = systemctl.to_owned();
    s
}

fn alias(root: &Path) -> Option<String> {
    fs::read_link(root.join("etc/systemd/system").join(ALIAS))
        .ok()
        .and_then(|t| t.file_name().map(|f| f.to_string_lossy().into_owned()))
}

#[test]
fn switches_with_real_links() {
    let Some(sc) = systemctl() else { return };
    let root = test_root();
    let s = sd(root.path(), &sc);
    assert_eq!(s.current().expect("current"), None);
    assert_eq!(s.switch(Some("lightdm.service")).expect("first"), None);
    assert_eq!(alias(root.path()).as_deref(), Some("lightdm.service"));
    assert_eq!(s.is_enabled("lightdm.service").expect("state"), "enabled");

    // To gdm, whose WantedBy link comes with it; lightdm ends disabled.
    let before = s.switch(Some("gdm.service")).expect("to gdm");
    assert_eq!(before.as_deref(), Some("lightdm.service"));
    assert_eq!(alias(root.path()).as_deref(), Some("gdm.service"));
    assert_eq!(s.is_enabled("lightdm.service").expect("state"), "disabled");
    let wants = root
        .path()
        .join("etc/systemd/system/graphical.target.wants/gdm.service");
    assert!(wants.is_symlink());

    // Away from gdm: disabling it removes its WantedBy link but not the new alias.
    s.switch(Some("sddm.service")).expect("to sddm");
    assert_eq!(alias(root.path()).as_deref(), Some("sddm.service"));
    assert!(!wants.is_symlink(), "gdm's own link went with it");
    assert_eq!(s.is_enabled("gdm.service").expect("state"), "disabled");

    // Nothing: the alias goes.
    s.switch(None).expect("to none");
    assert_eq!(alias(root.path()), None);

    s.set_default("graphical.target").expect("set-default");
    assert_eq!(
        s.default_target().expect("default").as_deref(),
        Some("graphical.target")
    );
}

#[test]
fn a_missing_unit_leaves_the_old_one_enabled() {
    let Some(sc) = systemctl() else { return };
    let root = test_root();
    let s = sd(root.path(), &sc);
    s.switch(Some("lightdm.service")).expect("first");
    let e = s.switch(Some("nodm.service")).expect_err("no such unit");
    assert!(matches!(e, DmError::NotSwitched { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("nodm.service did not become"), "{msg}");
    assert!(msg.contains("lightdm.service is enabled again"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(alias(root.path()).as_deref(), Some("lightdm.service"));
}

/// A systemctl that runs the real one but fails when its arguments match `fail_on`: after
/// doing the work (as a crash right after it would), with its output replaced by
/// `disabled` (so an `is-enabled` lies).
fn failing_systemctl(dir: &Path, real: &Path, fail_on: &str) -> PathBuf {
    let path = dir.join("systemctl-failing");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$*\" in *'{fail_on}'*)\n  \"{real}\" \"$@\" >/dev/null\n  \
             echo disabled; echo 'injected failure' >&2; exit 1;;\nesac\nexec \"{real}\" \"$@\"\n",
            real = real.display()
        ),
    )
    .expect("script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn a_failure_after_the_enable_puts_the_old_one_back() {
    let Some(sc) = systemctl() else { return };
    let root = test_root();
    sd(root.path(), &sc)
        .switch(Some("lightdm.service"))
        .expect("first");
    let tools = tempfile::tempdir().expect("tools");
    // The enable of greetd did happen, then "failed": the old one must come back.
    let bad = failing_systemctl(tools.path(), &sc, "enable --force -- greetd.service");
    let e = sd(root.path(), &bad)
        .switch(Some("greetd.service"))
        .expect_err("injected");
    assert!(e.to_string().contains("injected failure"), "{e}");
    assert_eq!(alias(root.path()).as_deref(), Some("lightdm.service"));
    // Verify failing (is-enabled lies) also puts the old one back.
    let bad = failing_systemctl(tools.path(), &sc, "is-enabled -- greetd.service");
    let e = sd(root.path(), &bad)
        .switch(Some("greetd.service"))
        .expect_err("verify");
    assert!(
        e.to_string().contains("lightdm.service is enabled again"),
        "{e}"
    );
    assert_eq!(alias(root.path()).as_deref(), Some("lightdm.service"));
    // From none: a failed switch leaves none.
    let fresh = test_root();
    let bad = failing_systemctl(tools.path(), &sc, "enable --force -- sddm.service");
    let e = sd(fresh.path(), &bad)
        .switch(Some("sddm.service"))
        .expect_err("from none");
    assert!(
        e.to_string()
            .contains("no display manager is enabled, as before"),
        "{e}"
    );
    assert_eq!(alias(fresh.path()), None);
}

#[test]
fn a_failed_disable_of_the_old_one_keeps_the_new_one() {
    let Some(sc) = systemctl() else { return };
    let root = test_root();
    sd(root.path(), &sc)
        .switch(Some("gdm.service"))
        .expect("first");
    let tools = tempfile::tempdir().expect("tools");
    let bad = failing_systemctl(tools.path(), &sc, "disable -- gdm.service");
    let before = sd(root.path(), &bad)
        .switch(Some("lightdm.service"))
        .expect("the new one is enabled and verified");
    assert_eq!(before.as_deref(), Some("gdm.service"));
    assert_eq!(alias(root.path()).as_deref(), Some("lightdm.service"));
}

/// While display managers are switched back and forth, a watcher reading the alias in a
/// tight loop never finds it missing or dangling.
#[test]
fn the_alias_is_never_missing_during_switches() {
    let Some(sc) = systemctl() else { return };
    let root = test_root();
    let s = sd(root.path(), &sc);
    s.switch(Some("lightdm.service")).expect("first");
    let stop = Arc::new(AtomicBool::new(false));
    let link = root.path().join("etc/systemd/system").join(ALIAS);
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut reads, mut missing) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                reads += 1;
                if fs::read_link(&link).is_err() {
                    missing += 1;
                }
            }
            (reads, missing)
        })
    };
    for i in 0..10 {
        let to = ["greetd.service", "sddm.service", "lightdm.service"][i % 3];
        s.switch(Some(to)).expect("switch");
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, missing) = watcher.join().expect("watcher");
    assert!(reads > 1000, "the watcher ran: {reads}");
    assert_eq!(missing, 0, "{missing} of {reads} reads found no alias");
}
