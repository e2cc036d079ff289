//! koompi-apply-config's library on temporary homes: idempotence (the whole home compared
//! before and after), backups, restore, and hostile homes. The privileged cases (a full
//! disk on a small tmpfs, writing as another user) run as root, and are required when
//! KOOMPI_PRIVILEGED_TESTS=1.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use koompi_desktop::apply::decide::Policy;
use koompi_desktop::apply::{self, Outcome, Report, Request};
use koompi_desktop::catalog::Catalog;
use koompi_testutil::tree::{differences, snapshot};

fn time(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap()
}

const T1: &str = "2025-03-01T08:00:00+07:00";
const T2: &str = "2025-03-02T09:30:15+07:00";
const T3: &str = "2025-03-03T10:00:00+07:00";

/// A configs directory with a one-edition catalog (`test`) holding `files`.
struct Configs {
    dir: tempfile::TempDir,
    catalog: Catalog,
}

impl Configs {
    fn new(files: &[(&str, &[u8])]) -> Configs {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = Vec::new();
        for (i, (dest, content)) in files.iter().enumerate() {
            let src = format!("f{i}");
            fs::write(dir.path().join(&src), content).unwrap();
            entries.push(format!("{{ src = {src:?}, dest = {dest:?} }}"));
        }
        let text = format!(
            "[[edition]]\nid = \"test\"\nname = \"T\"\ngroup = \"koompi\"\nsummary = \"T\"\n\
             packages = [\"zellij\"]\nconfigs = [\"set\"]\ntarget = \"multi-user\"\n\n\
             [config-set.set]\nfiles = [{}]\n",
            entries.join(", ")
        );
        fs::write(dir.path().join("editions.toml"), &text).unwrap();
        let catalog = Catalog::parse(&text).unwrap();
        Configs { dir, catalog }
    }

    /// KOOMPI ships a new version of file `i`.
    fn ship(&self, i: usize, content: &[u8]) {
        fs::write(self.dir.path().join(format!("f{i}")), content).unwrap();
    }

    fn run(&self, home: &Path, policy: Policy, dry_run: bool, at: &str) -> Report {
        let e = self.catalog.edition("test").unwrap();
        let req = Request {
            applied: "test".into(),
            files: apply::load(&self.catalog.config_files(e), self.dir.path()).unwrap(),
            policy,
            dry_run,
            now: time(at),
        };
        apply::with_home(home, None, |h| apply::apply(h, &req)).unwrap()
    }

    fn apply(&self, home: &Path, at: &str) -> Report {
        self.run(home, Policy::Backup, false, at)
    }
}

fn restore(home: &Path, at: &str) -> Report {
    apply::with_home(home, None, |h| apply::restore(h, false, time(at))).unwrap()
}

fn outcomes(r: &Report) -> Vec<(String, Outcome)> {
    r.files
        .iter()
        .map(|f| (f.path.clone(), f.outcome))
        .collect()
}

fn assert_same(
    before: &std::collections::BTreeMap<PathBuf, koompi_testutil::tree::Entry>,
    home: &Path,
) {
    let after = snapshot(home);
    assert!(
        before == &after,
        "the home changed: {:?}",
        differences(before, &after)
    );
}

#[test]
fn the_lite_edition_goes_in_once_and_a_second_run_changes_nothing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let catalog = Catalog::load(&repo.join("editions.toml")).unwrap();
    let lite = catalog.edition("lite").unwrap();
    let home = tempfile::tempdir().unwrap();
    let req = |at: &str| Request {
        applied: "lite".into(),
        files: apply::load(&catalog.config_files(lite), &repo).unwrap(),
        policy: Policy::Backup,
        dry_run: false,
        now: time(at),
    };
    // A dry run writes nothing.
    let before = snapshot(home.path());
    let dry = Request {
        dry_run: true,
        ..req(T1)
    };
    let r = apply::with_home(home.path(), None, |h| apply::apply(h, &dry)).unwrap();
    assert!(
        r.files.iter().all(|f| f.outcome == Outcome::Created),
        "{r:?}"
    );
    assert_eq!(r.lines()[0], "would create .config/openbox/rc.xml");
    assert_same(&before, home.path());

    let r = apply::with_home(home.path(), None, |h| apply::apply(h, &req(T1))).unwrap();
    assert_eq!(r.files.len(), 4);
    assert!(
        r.files.iter().all(|f| f.outcome == Outcome::Created),
        "{r:?}"
    );
    for f in catalog.config_files(lite) {
        assert_eq!(
            fs::read(home.path().join(&f.dest)).unwrap(),
            fs::read(repo.join(&f.src)).unwrap(),
            "{}",
            f.dest.display()
        );
    }
    let rc = fs::metadata(home.path().join(".config/openbox/rc.xml")).unwrap();
    assert_eq!(rc.permissions().mode() & 0o777, 0o644);
    let config = fs::metadata(home.path().join(".config")).unwrap();
    assert_eq!(config.permissions().mode() & 0o777, 0o700);

    let once = snapshot(home.path());
    let r = apply::with_home(home.path(), None, |h| apply::apply(h, &req(T2))).unwrap();
    assert!(!r.changed());
    assert!(
        r.files.iter().all(|f| f.outcome == Outcome::Current),
        "{r:?}"
    );
    assert_eq!(
        r.lines(),
        [format!(
            "lite in {}: 4 already current; nothing to do",
            home.path().display()
        )]
    );
    assert_same(&once, home.path());
}

#[test]
fn a_users_change_stays_until_koompi_has_news_then_it_is_backed_up() {
    let c = Configs::new(&[
        (".config/a/one", b"one v1\n"),
        (".config/a/two", b"two v1\n"),
    ]);
    let home = tempfile::tempdir().unwrap();
    c.apply(home.path(), T1);
    fs::write(home.path().join(".config/a/one"), b"mine\n").unwrap();
    let changed = snapshot(home.path());
    // KOOMPI has nothing new: the user's file is kept, nothing is written.
    let r = c.apply(home.path(), T2);
    assert_eq!(
        outcomes(&r),
        [
            (".config/a/one".into(), Outcome::Kept),
            (".config/a/two".into(), Outcome::Current)
        ]
    );
    assert_same(&changed, home.path());

    // KOOMPI ships new versions of both: the untouched one follows, the changed one is
    // backed up first.
    c.ship(0, b"one v2\n");
    c.ship(1, b"two v2\n");
    let r = c.apply(home.path(), T2);
    assert_eq!(
        outcomes(&r),
        [
            (".config/a/one".into(), Outcome::BackedUp),
            (".config/a/two".into(), Outcome::Updated)
        ]
    );
    let backup = ".config/a/one.koompi-backup-20250302T093015";
    assert_eq!(r.files[0].backup.as_deref(), Some(backup));
    assert_eq!(fs::read(home.path().join(backup)).unwrap(), b"mine\n");
    assert_eq!(
        fs::read(home.path().join(".config/a/one")).unwrap(),
        b"one v2\n"
    );
    assert_eq!(
        fs::read(home.path().join(".config/a/two")).unwrap(),
        b"two v2\n"
    );
    assert_eq!(
        r.lines()[0],
        format!(
            "backed up .config/a/one to {backup} (you had changed it) and wrote KOOMPI's version"
        )
    );
    let after = snapshot(home.path());
    assert!(!c.apply(home.path(), T3).changed());
    assert_same(&after, home.path());

    // A second backup in the same second never overwrites the first.
    fs::write(home.path().join(".config/a/one"), b"mine again\n").unwrap();
    c.ship(0, b"one v3\n");
    let r = c.apply(home.path(), T2);
    assert_eq!(r.files[0].backup.as_deref(), Some(&*format!("{backup}-1")));
    assert_eq!(fs::read(home.path().join(backup)).unwrap(), b"mine\n");
}

#[test]
fn keep_policy_saves_koompis_version_beside_once() {
    let c = Configs::new(&[(".config/x.conf", b"v1\n")]);
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".config")).unwrap();
    fs::write(home.path().join(".config/x.conf"), b"the user's own\n").unwrap();
    let r = c.run(home.path(), Policy::Keep, false, T1);
    assert_eq!(r.files[0].outcome, Outcome::Offered);
    let saved = ".config/x.conf.koompi-new-20250301T080000";
    assert_eq!(r.files[0].saved_as.as_deref(), Some(saved));
    assert_eq!(fs::read(home.path().join(saved)).unwrap(), b"v1\n");
    assert_eq!(
        fs::read(home.path().join(".config/x.conf")).unwrap(),
        b"the user's own\n"
    );
    assert_eq!(
        r.lines()[0],
        format!("kept .config/x.conf: you changed it; KOOMPI's new version saved as {saved}")
    );
    let once = snapshot(home.path());
    assert!(!c.run(home.path(), Policy::Keep, false, T2).changed());
    assert_same(&once, home.path());
    // A newer version is offered again.
    c.ship(0, b"v2\n");
    let r = c.run(home.path(), Policy::Keep, false, T2);
    assert_eq!(r.files[0].outcome, Outcome::Offered);
}

#[test]
fn restore_undoes_the_last_apply_exactly() {
    let c = Configs::new(&[
        (".config/a/one", b"one v1\n"),
        (".config/b/two", b"two v1\n"),
        (".bashrc", b"koompi's bashrc\n"),
    ]);
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join(".bashrc"), b"my bashrc\n").unwrap();
    fs::set_permissions(
        home.path().join(".bashrc"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::create_dir(home.path().join(".config")).unwrap();
    fs::write(home.path().join(".config/notes"), b"keep me\n").unwrap();
    let pristine = snapshot(home.path());

    c.apply(home.path(), T1);
    let first = snapshot(home.path());
    assert_eq!(
        fs::read(home.path().join(".bashrc")).unwrap(),
        b"koompi's bashrc\n"
    );

    // A later apply with KOOMPI's new version, restored: back to the first apply.
    c.ship(0, b"one v2\n");
    let r = c.apply(home.path(), T2);
    assert_eq!(r.files[0].outcome, Outcome::Updated);
    let r = restore(home.path(), T3);
    assert_eq!(outcomes(&r), [(".config/a/one".into(), Outcome::Restored)]);
    // Everything as after the first apply, its manifest included; only the first apply's
    // own undo record is gone (one level of restore).
    let undo = |t: &std::collections::BTreeMap<PathBuf, koompi_testutil::tree::Entry>| {
        let mut t = t.clone();
        t.retain(|p, _| {
            !p.starts_with(".local/state/koompi/apply-config/blobs/")
                && !p.ends_with("last-apply.json")
        });
        t
    };
    let now = snapshot(home.path());
    assert!(
        undo(&first) == undo(&now),
        "{:?}",
        differences(&undo(&first), &undo(&now))
    );
    // Only one level: the journal is gone.
    let e =
        apply::with_home(home.path(), None, |h| apply::restore(h, false, time(T3))).unwrap_err();
    assert!(e.to_string().starts_with("nothing to restore in"), "{e}");

    // From a pristine home: apply, restore, and the home is as it was, mode included.
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join(".bashrc"), b"my bashrc\n").unwrap();
    fs::set_permissions(
        home.path().join(".bashrc"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::create_dir(home.path().join(".config")).unwrap();
    fs::write(home.path().join(".config/notes"), b"keep me\n").unwrap();
    c.ship(0, b"one v1\n");
    let r = c.apply(home.path(), T1);
    assert_eq!(r.files[2].outcome, Outcome::BackedUp);
    let r = restore(home.path(), T2);
    assert!(r.failed() == 0, "{r:?}");
    assert_same(&pristine, home.path());
}

#[test]
fn restore_keeps_a_change_made_after_the_apply() {
    let c = Configs::new(&[(".config/a/one", b"v1\n")]);
    let home = tempfile::tempdir().unwrap();
    c.apply(home.path(), T1);
    fs::write(home.path().join(".config/a/one"), b"edited later\n").unwrap();
    let r = restore(home.path(), T2);
    let backup = ".config/a/one.koompi-backup-20250302T093015";
    assert_eq!(r.files[0].outcome, Outcome::Removed);
    assert_eq!(r.files[0].backup.as_deref(), Some(backup));
    assert!(!home.path().join(".config/a/one").exists());
    assert_eq!(
        fs::read(home.path().join(backup)).unwrap(),
        b"edited later\n"
    );
}

#[test]
fn hostile_homes_get_one_line_each_and_nothing_outside_is_touched() {
    let weird = ".config/we ird/-n\name";
    let c = Configs::new(&[
        (weird, b"w\n"),
        (".config/-rf", b"dash\n"),
        (".config/link/file", b"l\n"),
        (".config/loop/file", b"l\n"),
        (".config/out", b"o\n"),
        (".config/fifo", b"f\n"),
        (".config/ro", b"r\n"),
        (".config/dir", b"d\n"),
        (".config/plain", b"p\n"),
    ]);
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("victim"), b"outside\n").unwrap();
    let h = home.path();
    fs::create_dir(h.join(".config")).unwrap();
    symlink(outside.path(), h.join(".config/link")).unwrap();
    symlink("loop", h.join(".config/loop")).unwrap();
    symlink(outside.path().join("victim"), h.join(".config/out")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        h.join(".config/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    fs::write(h.join(".config/ro"), b"mine, protected\n").unwrap();
    fs::set_permissions(h.join(".config/ro"), fs::Permissions::from_mode(0o444)).unwrap();
    fs::create_dir(h.join(".config/dir")).unwrap();
    let outside_before = snapshot(outside.path());

    let r = c.apply(h, T1);
    let got = outcomes(&r);
    let want = [
        (weird, Outcome::Created),
        (".config/-rf", Outcome::Created),
        (".config/link/file", Outcome::Skipped),
        (".config/loop/file", Outcome::Skipped),
        (".config/out", Outcome::Skipped),
        (".config/fifo", Outcome::Skipped),
        (".config/ro", Outcome::Skipped),
        (".config/dir", Outcome::Skipped),
        (".config/plain", Outcome::Created),
    ];
    assert_eq!(got, want.map(|(p, o)| (p.to_string(), o)));
    assert_eq!(fs::read(h.join(weird)).unwrap(), b"w\n");
    let lines = r.lines();
    assert_eq!(lines.len(), want.len() + 1, "{lines:#?}");
    for line in &lines {
        assert!(!line.contains('\n'), "{line:?}");
    }
    assert_eq!(lines[0], "created .config/we ird/-n\\name");
    let line = |p: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("skipped {p}:")))
            .unwrap()
            .clone()
    };
    assert!(line(".config/link/file").contains("`.config/link` on the way is a symbolic link"));
    assert!(line(".config/loop/file").contains("`.config/loop` on the way is a symbolic link"));
    assert!(line(".config/out").contains("it is a symbolic link"));
    assert!(line(".config/fifo").contains("it is a FIFO"));
    assert!(line(".config/ro").contains("read-only"));
    assert!(line(".config/dir").contains("it is a directory"));
    assert_same(&outside_before, outside.path());
    assert_eq!(
        fs::read(h.join(".config/ro")).unwrap(),
        b"mine, protected\n"
    );

    // Idempotent with the hostile entries still there.
    let once = snapshot(h);
    assert!(!c.apply(h, T2).changed());
    assert_same(&once, h);
    // Restore removes what was created, and leaves the hostile entries alone.
    restore(h, T3);
    assert!(!h.join(weird).exists() && !h.join(".config/-rf").exists());
    assert!(h.join(".config/fifo").exists());
    assert_same(&outside_before, outside.path());
}

#[test]
fn the_state_directory_behind_a_link_is_refused() {
    let c = Configs::new(&[(".config/x", b"x\n")]);
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), home.path().join(".local")).unwrap();
    let e = c.catalog.edition("test").unwrap();
    let files = apply::load(&c.catalog.config_files(e), c.dir.path()).unwrap();
    let e = apply::with_home(home.path(), None, |h| {
        apply::apply(
            h,
            &Request {
                applied: "test".into(),
                files,
                policy: Policy::Backup,
                dry_run: false,
                now: time(T1),
            },
        )
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("`.local` on the way is a symbolic link"),
        "{e}"
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn bad_homes_and_configs_are_one_line_errors() {
    let c = Configs::new(&[(".config/x", b"x\n")]);
    let e = apply::with_home(Path::new("/nonexistent/home"), None, |_| Ok(())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot open the home /nonexistent/home: No such file or directory"
    );
    fs::remove_file(c.dir.path().join("f0")).unwrap();
    let e = c.catalog.edition("test").unwrap();
    let e = apply::load(&c.catalog.config_files(e), c.dir.path()).unwrap_err();
    assert!(e.to_string().contains("cannot read KOOMPI's config"), "{e}");
    assert!(e.to_string().contains("reinstall koompi-configs"), "{e}");
}

// ---------------------------------------------------------------- privileged

/// True when running as root; skips otherwise, or fails when privileged tests are required.
fn privileged(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if koompi_testutil::privileged_required() {
        koompi_testutil::fail(&format!(
            "{test}: privileged test required (KOOMPI_PRIVILEGED_TESTS=1) but not root"
        ));
    }
    eprintln!("SKIP {test}: not root (set KOOMPI_PRIVILEGED_TESTS=1 as root to run it)");
    false
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        koompi_testutil::sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.path().to_str().unwrap(),
            ],
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_leaves_every_file_as_it_was() {
    if !privileged("a_full_disk_leaves_every_file_as_it_was") {
        return;
    }
    let c = Configs::new(&[
        (".config/a/one", &[b'x'; 20000]),
        (".config/a/two", b"two v1\n"),
    ]);
    let fs_ = Tmpfs::new("256k");
    let home = fs_.dir.path().join("home");
    fs::create_dir(&home).unwrap();
    fs::create_dir_all(home.join(".config/a")).unwrap();
    fs::write(home.join(".config/a/one"), b"the user's\n").unwrap();
    // Fill the disk.
    let mut filler = fs::File::create(fs_.dir.path().join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    let before = snapshot(&home);
    let r = c.apply(&home, T1);
    assert_eq!(r.failed(), 2, "{r:?}");
    for line in r.lines().iter().take(2) {
        assert!(
            line.contains("the disk is full; the file is unchanged"),
            "{line}"
        );
    }
    assert_same(&before, &home);
    // With room again, the same apply goes through.
    fs::remove_file(fs_.dir.path().join("filler")).unwrap();
    let r = c.apply(&home, T2);
    assert_eq!(r.failed(), 0, "{r:?}");
    assert_eq!(fs::read(home.join(".config/a/two")).unwrap(), b"two v1\n");
}

#[test]
fn root_writes_as_the_homes_user() {
    if !privileged("root_writes_as_the_homes_user") {
        return;
    }
    let c = Configs::new(&[(".config/a/one", b"v1\n"), (".config/ro-dir/f", b"v1\n")]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fs::create_dir_all(h.join(".config/ro-dir")).unwrap();
    // A directory the user may not write (root's): the user's own rights apply.
    fs::set_permissions(h.join(".config/ro-dir"), fs::Permissions::from_mode(0o755)).unwrap();
    let (uid, gid) = (65534, 65534);
    rustix::fs::chown(
        h,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .unwrap();
    rustix::fs::chown(
        h.join(".config"),
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .unwrap();
    let e = c.catalog.edition("test").unwrap();
    let req = Request {
        applied: "test".into(),
        files: apply::load(&c.catalog.config_files(e), c.dir.path()).unwrap(),
        policy: Policy::Backup,
        dry_run: false,
        now: time(T1),
    };
    let owner = apply::owner_of(h).unwrap();
    assert_eq!(owner, (uid, gid));
    let r = apply::with_home(h, Some(owner), |home| apply::apply(home, &req)).unwrap();
    // Root again afterwards.
    assert!(rustix::process::geteuid().is_root());
    assert_eq!(r.files[0].outcome, Outcome::Created);
    assert_eq!(r.files[1].outcome, Outcome::Failed, "{r:?}");
    assert!(
        r.lines()[1].contains("permission denied"),
        "{:?}",
        r.lines()
    );
    for p in [
        ".config/a",
        ".config/a/one",
        ".local/state/koompi/apply-config/manifest.json",
    ] {
        let m = fs::symlink_metadata(h.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
    assert!(!h.join(".config/ro-dir/f").exists());
}
