//! Real pacman packages, a local repository and a throwaway pacman root, for the tests of
//! KOOMPI's package commands.
//!
//! No Arch mirror is reachable from the test machines, and a fake `pacman` would only test
//! our idea of pacman. So the fixtures drive the real tools of the host (Debian's
//! `pacman-package-manager` and `makepkg`, or Arch's own): [`TestPkg`] describes a package,
//! [`PkgRepo::build`] writes a PKGBUILD for it, builds it with `makepkg` as an unprivileged
//! system user ([`BUILD_USER`], makepkg refuses root) and adds it with `repo-add`, and
//! [`PacmanRoot`] is an empty target root with its own `pacman.conf` that the real pacman
//! installs into (`pacman --config <conf> --root <root>`). Nothing is cached across test
//! processes; nothing needs the network.
//!
//! Install scriptlets: libalpm runs them with `/bin/sh` chrooted into the target root, so
//! [`PacmanRoot::new`] puts a static busybox there (`/usr/bin/busybox`, `/usr/bin/sh` → it,
//! `/bin` → `usr/bin`; Debian's busybox-static finds its applets without links). These three
//! paths belong to no package. What pacman 6.0.2 does, observed on this host:
//! - scriptlets run, chrooted, with pacman's own environment (PATH included); what they
//!   print, on stdout or stderr, goes to pacman's stdout and to the log as
//!   `[ALPM-SCRIPTLET]` lines;
//! - a scriptlet that fails (`exit 1`, in any of the six functions) does **not** stop
//!   anything: pacman prints `error: command failed to execute correctly` on stderr, the
//!   package is installed, upgraded or removed all the same, and pacman exits 0;
//! - without `/bin/sh` in the root ([`PacmanRoot::without_shell`]) every scriptlet fails the
//!   same way (`call to execv failed`), again with exit status 0.
//!
//! What does make a transaction fail (exit 1, nothing changed): a dependency no repository
//! satisfies, a conflict with an installed package under `--noconfirm` (pacman's default
//! answer is "no"), a file that already exists in the root.
//!
//! Privileged tests call [`require_pacman`] first, like [`crate::require_root`].

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// The system user makepkg runs as (created on first use; no home, no login shell).
pub const BUILD_USER: &str = "koompi-pkgtest";

/// The host programs the fixtures run.
const TOOLS: [&str; 10] = [
    "pacman", "makepkg", "repo-add", "bsdtar", "fakeroot", "zstd", "busybox", "runuser", "useradd",
    "chown",
];

/// True when this test may build and install packages (root, and pacman's tools present);
/// false (skip, with a message) otherwise. Panics when privileged tests were required
/// (`KOOMPI_PRIVILEGED_TESTS=1`) but cannot run.
pub fn require_pacman(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| crate::which(t).is_none())
        .collect();
    let static_busybox = crate::which("busybox").is_some_and(|b| is_static(&b));
    if root && missing.is_empty() && static_busybox {
        return true;
    }
    let why = if !root {
        "not root (run `cargo xtask test`, which runs it as root)".to_string()
    } else if !missing.is_empty() {
        format!(
            "{} not installed: {}",
            missing.join(", "),
            crate::prereq::install_hint(&missing)
        )
    } else {
        format!(
            "busybox is dynamically linked: {}",
            crate::prereq::install_hint(&["busybox"])
        )
    };
    if crate::privileged_required() {
        crate::fail(&format!(
            "{test}: privileged test required (KOOMPI_PRIVILEGED_TESTS=1) but cannot run: {why}"
        ));
    }
    eprintln!("SKIP {test}: {why} (set KOOMPI_PRIVILEGED_TESTS=1 as root to run it)");
    false
}

/// Whether an ELF executable has no program interpreter (is statically linked).
fn is_static(exe: &Path) -> bool {
    let Ok(bytes) = fs::read(exe) else {
        return false;
    };
    // ELF64 little-endian: the program headers, looking for PT_INTERP (3).
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([bytes[o], bytes[o + 1]]));
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 > bytes.len() || bytes[o..o + 4] != [3, 0, 0, 0]
    })
}

/// An install scriptlet function (`install=` file of a PKGBUILD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scriptlet {
    /// `pre_install NEW_VERSION`
    PreInstall,
    /// `post_install NEW_VERSION`
    PostInstall,
    /// `pre_upgrade NEW_VERSION OLD_VERSION`
    PreUpgrade,
    /// `post_upgrade NEW_VERSION OLD_VERSION`
    PostUpgrade,
    /// `pre_remove OLD_VERSION`
    PreRemove,
    /// `post_remove OLD_VERSION`
    PostRemove,
}

impl Scriptlet {
    /// The shell function's name.
    pub fn function(self) -> &'static str {
        match self {
            Scriptlet::PreInstall => "pre_install",
            Scriptlet::PostInstall => "post_install",
            Scriptlet::PreUpgrade => "pre_upgrade",
            Scriptlet::PostUpgrade => "post_upgrade",
            Scriptlet::PreRemove => "pre_remove",
            Scriptlet::PostRemove => "post_remove",
        }
    }
}

/// One file a [`TestPkg`] installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    /// Path inside the root, without the leading `/` (`usr/bin/demo`).
    pub path: String,
    pub content: Vec<u8>,
    /// Permission bits (`0o755`).
    pub mode: u32,
}

/// A package to build: a builder over the PKGBUILD fields the tests need. `arch=('any')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPkg {
    name: String,
    epoch: Option<String>,
    pkgver: String,
    pkgrel: String,
    description: String,
    depends: Vec<String>,
    conflicts: Vec<String>,
    provides: Vec<String>,
    replaces: Vec<String>,
    groups: Vec<String>,
    backup: Vec<String>,
    files: Vec<TestFile>,
    scriptlets: BTreeMap<Scriptlet, String>,
}

impl TestPkg {
    /// A package `name` at `version` (`pkgver-pkgrel`, optionally `epoch:pkgver-pkgrel`).
    /// Panics on a name or version makepkg would refuse.
    pub fn new(name: &str, version: &str) -> Self {
        let valid_name = !name.is_empty()
            && !name.starts_with(['-', '.'])
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "@._+-".contains(c));
        assert!(valid_name, "TestPkg: invalid package name {name:?}");
        let (epoch, rest) = match version.split_once(':') {
            Some((e, r)) => (Some(e.to_string()), r),
            None => (None, version),
        };
        let (pkgver, pkgrel) = rest
            .rsplit_once('-')
            .unwrap_or_else(|| panic!("TestPkg {name}: version {version:?} is not pkgver-pkgrel"));
        let ver_ok = !pkgver.is_empty()
            && pkgver
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+~".contains(c));
        let rel_ok = !pkgrel.is_empty()
            && pkgrel.split('.').count() <= 2
            && pkgrel
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let epoch_ok = match epoch.as_deref() {
            Some(e) => !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()),
            None => true,
        };
        assert!(
            ver_ok && rel_ok && epoch_ok,
            "TestPkg {name}: invalid version {version:?}"
        );
        TestPkg {
            name: name.to_string(),
            epoch,
            pkgver: pkgver.to_string(),
            pkgrel: pkgrel.to_string(),
            description: format!("KOOMPI test package {name}"),
            depends: Vec::new(),
            conflicts: Vec::new(),
            provides: Vec::new(),
            replaces: Vec::new(),
            groups: Vec::new(),
            backup: Vec::new(),
            files: Vec::new(),
            scriptlets: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full version as pacman prints it (`[epoch:]pkgver-pkgrel`).
    pub fn version(&self) -> String {
        match &self.epoch {
            Some(e) => format!("{e}:{}-{}", self.pkgver, self.pkgrel),
            None => format!("{}-{}", self.pkgver, self.pkgrel),
        }
    }

    /// `pkgdesc`.
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }

    /// Adds to `depends` (`"libdemo"`, `"libdemo>=1.0"`).
    pub fn depends(mut self, deps: &[&str]) -> Self {
        self.depends.extend(deps.iter().map(|s| s.to_string()));
        self
    }

    /// Adds to `conflicts`.
    pub fn conflicts(mut self, names: &[&str]) -> Self {
        self.conflicts.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Adds to `provides` (`"demo"`, `"demo=1.0"`).
    pub fn provides(mut self, names: &[&str]) -> Self {
        self.provides.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Adds to `replaces`.
    pub fn replaces(mut self, names: &[&str]) -> Self {
        self.replaces.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Adds to `groups`.
    pub fn groups(mut self, names: &[&str]) -> Self {
        self.groups.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Adds to `backup` (paths without the leading `/`; pacman keeps `.pacnew`/`.pacsave`).
    pub fn backup(mut self, paths: &[&str]) -> Self {
        self.backup
            .extend(paths.iter().map(|p| clean_path(&self.name, p)));
        self
    }

    /// A file the package installs at `path` (absolute or relative to the root), with
    /// `content` and permission bits `mode`. Parent directories are created 0755.
    pub fn file(mut self, path: &str, content: impl AsRef<[u8]>, mode: u32) -> Self {
        self.files.push(TestFile {
            path: clean_path(&self.name, path),
            content: content.as_ref().to_vec(),
            mode,
        });
        self
    }

    /// The body of an install scriptlet function (sh). `exit 1` makes it fail.
    pub fn scriptlet(mut self, which: Scriptlet, body: &str) -> Self {
        self.scriptlets.insert(which, body.to_string());
        self
    }

    pub fn files(&self) -> &[TestFile] {
        &self.files
    }

    /// The PKGBUILD; file `i` is installed from `$startdir/files/i`.
    fn pkgbuild(&self) -> String {
        let mut s = String::from("# Written by koompi-testutil's PkgRepo.\n");
        let mut field = |key: &str, value: String| s.push_str(&format!("{key}={value}\n"));
        field("pkgname", quote(&self.name));
        if let Some(e) = &self.epoch {
            field("epoch", e.clone());
        }
        field("pkgver", self.pkgver.clone());
        field("pkgrel", self.pkgrel.clone());
        field("pkgdesc", quote(&self.description));
        field("arch", "('any')".to_string());
        field("url", quote("https://koompi.invalid/test"));
        field("license", "('GPL-3.0-or-later')".to_string());
        for (key, list) in [
            ("depends", &self.depends),
            ("conflicts", &self.conflicts),
            ("provides", &self.provides),
            ("replaces", &self.replaces),
            ("groups", &self.groups),
            ("backup", &self.backup),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|v| quote(v)).collect();
                field(key, format!("({})", items.join(" ")));
            }
        }
        if !self.scriptlets.is_empty() {
            field("install", quote(&format!("{}.install", self.name)));
        }
        s.push_str("\npackage() {\n  cd \"$pkgdir\"\n");
        for (i, f) in self.files.iter().enumerate() {
            s.push_str(&format!(
                "  install -D -m{:o} \"$startdir/files/{i}\" {}\n",
                f.mode,
                quote(&f.path)
            ));
        }
        s.push_str("  :\n}\n");
        s
    }

    /// The `.install` file, if the package has scriptlets.
    fn install_file(&self) -> Option<String> {
        if self.scriptlets.is_empty() {
            return None;
        }
        let mut s = String::new();
        for (which, body) in &self.scriptlets {
            s.push_str(&format!("{}() {{\n{body}\n:\n}}\n\n", which.function()));
        }
        Some(s)
    }
}

/// `path` relative to the root, refusing what would escape it.
fn clean_path(pkg: &str, path: &str) -> String {
    let rel = path.trim_start_matches('/');
    let ok = !rel.is_empty()
        && !rel.ends_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    assert!(ok, "TestPkg {pkg}: invalid file path {path:?}");
    rel.to_string()
}

/// Single-quotes a string for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn p(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {path:?}"))
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

static USER_LOCK: Mutex<()> = Mutex::new(());

/// Creates [`BUILD_USER`] unless it exists. Safe against other threads and processes
/// doing the same.
pub fn ensure_build_user() {
    let _guard = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let exists = || {
        Command::new("id")
            .arg(BUILD_USER)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if exists() {
        return;
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            BUILD_USER,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
    // Another process may have created it in the meantime.
    assert!(
        out.status.success() || exists(),
        "useradd {BUILD_USER} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// makepkg's configuration: Debian's defaults differ from Arch's (gzip packages, `ck`
/// checksums, libtool/staticlibs kept). Files land exactly as the test gave them: no
/// stripping, no man page compression, no purging.
const MAKEPKG_CONF: &str = r#"# Written by koompi-testutil's PkgRepo.
CARCH="x86_64"
CHOST="x86_64-pc-linux-gnu"
PACKAGER="KOOMPI test fixture <pkgtest@koompi.invalid>"
BUILDENV=(!distcc !color !ccache !check !sign)
OPTIONS=(!strip docs libtool staticlibs emptydirs !zipman !purge !debug !lto)
INTEGRITY_CHECK=(sha256)
COMPRESSZST=(zstd -c -T0 -q -)
PKGEXT='.pkg.tar.zst'
SRCEXT='.src.tar.gz'
"#;

/// A local pacman repository in a temporary directory, filled by [`PkgRepo::build`].
/// Removed on drop.
#[derive(Debug)]
pub struct PkgRepo {
    dir: tempfile::TempDir,
    name: String,
    builds: AtomicU32,
    /// The last database time set (seconds since the epoch), see [`PkgRepo::build`].
    db_stamp: std::sync::atomic::AtomicU64,
}

impl PkgRepo {
    /// An empty repository called `repo_name` (the `[repo_name]` section in pacman.conf).
    pub fn new(repo_name: &str) -> Self {
        let valid = !repo_name.is_empty()
            && repo_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        assert!(valid, "PkgRepo: invalid repository name {repo_name:?}");
        ensure_build_user();
        let dir = tempfile::Builder::new()
            .prefix("koompi-pkgrepo-")
            .tempdir()
            .expect("create the repository's temporary directory");
        // The build user must reach its build directories inside.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod the repository's temporary directory");
        let me = PkgRepo {
            dir,
            name: repo_name.to_string(),
            builds: AtomicU32::new(0),
            db_stamp: std::sync::atomic::AtomicU64::new(0),
        };
        fs::create_dir(me.dir()).expect("create the repository directory");
        fs::write(me.work().join("makepkg.conf"), MAKEPKG_CONF).expect("write makepkg.conf");
        // makepkg asks pacman for the builder's installed packages (.BUILDINFO); the host has
        // no pacman database, so point that query at an empty one.
        let hostdb = me.work().join("hostdb");
        fs::create_dir_all(hostdb.join("local")).expect("create the empty host database");
        let _ = Command::new("pacman")
            .arg("--dbpath")
            .arg(&hostdb)
            .arg("-Q")
            .output();
        let wrapper = me.work().join("pacman-host");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec pacman --dbpath {} \"$@\"\n",
                quote(p(&hostdb))
            ),
        )
        .expect("write the pacman wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
            .expect("chmod the pacman wrapper");
        for d in ["build", "tmp"] {
            fs::create_dir(me.work().join(d)).expect("create a build directory");
        }
        run(
            Command::new("chown")
                .arg(format!("{BUILD_USER}:"))
                .arg(me.work().join("build"))
                .arg(me.work().join("tmp")),
            "chown the build directories",
        );
        me
    }

    fn work(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The repository directory: package files, `<name>.db.tar.gz` and its symlinks.
    pub fn dir(&self) -> PathBuf {
        self.work().join("repo")
    }

    /// `<dir>/<name>.db.tar.gz`, the database `repo-add` maintains.
    pub fn db(&self) -> PathBuf {
        self.dir().join(format!("{}.db.tar.gz", self.name))
    }

    /// The `Server =` URL for pacman.conf (`file:///…`).
    pub fn server(&self) -> String {
        format!("file://{}", p(&self.dir()))
    }

    /// Builds `pkgs` and adds them to the repository; returns the package files (in
    /// [`PkgRepo::dir`]), in the order given. A newer version of a package already in the
    /// repository replaces it in the database (its old file stays, for `pacman -U`).
    pub fn build(&self, pkgs: &[TestPkg]) -> Vec<PathBuf> {
        let files: Vec<PathBuf> = pkgs
            .iter()
            .map(|pkg| {
                let built = self.makepkg(pkg);
                let name = built.file_name().expect("package file name");
                let dest = self.dir().join(name);
                fs::copy(&built, &dest)
                    .unwrap_or_else(|e| panic!("copy {built:?} into the repository: {e}"));
                dest
            })
            .collect();
        if !files.is_empty() {
            run(
                Command::new("repo-add")
                    .arg("-q")
                    .arg(self.db())
                    .args(&files)
                    .env("LC_ALL", "C"),
                &format!("repo-add {}", self.name),
            );
            // pacman -Sy fetches a file:// database only when it is newer than the copy
            // it has, to the second: a database rebuilt within the second of the last
            // sync would go unseen. Each build's database is stamped a second later.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let prev = self.db_stamp.load(Ordering::SeqCst);
            let stamp = now.max(prev + 1);
            self.db_stamp.store(stamp, Ordering::SeqCst);
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(stamp);
            fs::File::options()
                .write(true)
                .open(self.db())
                .and_then(|f| f.set_modified(t))
                .unwrap_or_else(|e| panic!("set the time of {:?}: {e}", self.db()));
        }
        files
    }

    /// Builds `pkg` without adding it to the repository (for `pacman -U` tests); returns
    /// the package file.
    pub fn build_file(&self, pkg: &TestPkg) -> PathBuf {
        self.makepkg(pkg)
    }

    /// Runs makepkg for one package in a fresh build directory; returns the package file.
    fn makepkg(&self, pkg: &TestPkg) -> PathBuf {
        let n = self.builds.fetch_add(1, Ordering::SeqCst);
        let build = self.work().join("build").join(format!("{n}-{}", pkg.name));
        let out = build.join("out");
        let files = build.join("files");
        fs::create_dir_all(&out).expect("create the build directory");
        fs::create_dir_all(&files).expect("create the build directory");
        fs::write(build.join("PKGBUILD"), pkg.pkgbuild()).expect("write PKGBUILD");
        if let Some(install) = pkg.install_file() {
            fs::write(build.join(format!("{}.install", pkg.name)), install)
                .expect("write the .install file");
        }
        for (i, f) in pkg.files.iter().enumerate() {
            fs::write(files.join(i.to_string()), &f.content).expect("write a package file");
        }
        run(
            Command::new("chown")
                .args(["-R", &format!("{BUILD_USER}:")])
                .arg(&build),
            "chown the build directory",
        );
        let work = self.work();
        let path_of = |s: &str| p(&work.join(s)).to_string();
        run(
            Command::new("runuser")
                .args(["-u", BUILD_USER, "--", "env", "-i"])
                .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
                .args(["LANG=C", "LC_ALL=C", "HOME=/nonexistent"])
                .arg(format!("TMPDIR={}", path_of("tmp")))
                .arg(format!("MAKEPKG_CONF={}", path_of("makepkg.conf")))
                .arg(format!("PACMAN={}", path_of("pacman-host")))
                .arg(format!("PKGDEST={}", p(&out)))
                .arg(format!("BUILDDIR={}", p(&build.join("work"))))
                .arg(format!("SRCDEST={}", p(&build.join("src"))))
                .args(["makepkg", "--nodeps", "--noconfirm", "--force", "--nocolor"])
                .current_dir(&build),
            &format!("makepkg {} {}", pkg.name, pkg.version()),
        );
        let mut built: Vec<PathBuf> = fs::read_dir(&out)
            .expect("read makepkg's output directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| p(f).ends_with(".pkg.tar.zst"))
            .collect();
        assert!(
            built.len() == 1,
            "makepkg {}: expected one package file, found {built:?}",
            pkg.name
        );
        built.remove(0)
    }
}

/// A throwaway pacman target root with its own pacman.conf, removed on drop.
#[derive(Debug)]
pub struct PacmanRoot {
    dir: tempfile::TempDir,
    root: PathBuf,
    conf: PathBuf,
}

impl PacmanRoot {
    /// A root that syncs from `repo`, with a shell for install scriptlets.
    pub fn new(repo: &PkgRepo) -> Self {
        Self::with_repos(&[repo])
    }

    /// A root that syncs from `repos` (in this order), with a shell for scriptlets.
    pub fn with_repos(repos: &[&PkgRepo]) -> Self {
        let me = Self::without_shell(repos);
        let bin = me.root.join("usr/bin");
        fs::create_dir_all(&bin).expect("create usr/bin in the root");
        let busybox = crate::which("busybox").expect("busybox (busybox-static) on PATH");
        fs::copy(&busybox, bin.join("busybox")).expect("copy busybox into the root");
        std::os::unix::fs::symlink("busybox", bin.join("sh")).expect("link usr/bin/sh");
        std::os::unix::fs::symlink("usr/bin", me.root.join("bin")).expect("link /bin");
        me
    }

    /// A root without `/bin/sh`: pacman cannot run install scriptlets in it.
    pub fn without_shell(repos: &[&PkgRepo]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("koompi-pacroot-")
            .tempdir()
            .expect("create the root's temporary directory");
        let root = dir.path().join("root");
        for d in [
            "var/lib/pacman",
            "var/cache/pacman/pkg",
            "var/log",
            "etc/pacman.d/hooks",
            "etc/pacman.d/gnupg",
            "tmp",
        ] {
            fs::create_dir_all(root.join(d)).expect("create the root's directories");
        }
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
            .expect("chmod the root's tmp");
        let r = p(&root);
        let mut conf = format!(
            "# Written by koompi-testutil's PacmanRoot.\n\
             [options]\n\
             RootDir = {r}/\n\
             DBPath = {r}/var/lib/pacman/\n\
             CacheDir = {r}/var/cache/pacman/pkg/\n\
             LogFile = {r}/var/log/pacman.log\n\
             GPGDir = {r}/etc/pacman.d/gnupg/\n\
             HookDir = {r}/etc/pacman.d/hooks/\n\
             Architecture = auto\n\
             SigLevel = Never\n\
             LocalFileSigLevel = Never\n"
        );
        for repo in repos {
            conf.push_str(&format!(
                "\n[{}]\nSigLevel = Never\nServer = {}\n",
                repo.name(),
                repo.server()
            ));
        }
        let conf_path = dir.path().join("pacman.conf");
        fs::write(&conf_path, conf).expect("write pacman.conf");
        PacmanRoot {
            dir,
            root,
            conf: conf_path,
        }
    }

    /// The pacman.conf written for this root.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The target root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory holding the root and the conf.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// `path` (absolute, as on the target system) inside the root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// pacman's log in the root.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path("var/log/pacman.log")).unwrap_or_default()
    }

    /// Runs `pacman --config <conf> --root <root> --noconfirm ARGS` with `LC_ALL=C`.
    pub fn pacman(&self, args: &[&str]) -> Output {
        Command::new("pacman")
            .arg("--config")
            .arg(&self.conf)
            .arg("--root")
            .arg(&self.root)
            .arg("--noconfirm")
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .unwrap_or_else(|e| panic!("cannot run pacman: {e}"))
    }

    /// [`PacmanRoot::pacman`], panicking with pacman's output unless it succeeds; returns
    /// stdout.
    pub fn pacman_ok(&self, args: &[&str]) -> String {
        let out = self.pacman(args);
        assert!(
            out.status.success(),
            "pacman {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The installed packages (`pacman -Q`): (name, version), sorted by name.
    pub fn installed(&self) -> Vec<(String, String)> {
        let out = self.pacman(&["-Q"]);
        // pacman -Q exits 1 when nothing is installed; anything on stderr is a real error.
        assert!(
            out.status.success() || out.stderr.is_empty(),
            "pacman -Q failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut list: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect();
        list.sort();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_executables_are_recognised() {
        if let Some(bb) = crate::which("busybox") {
            // Debian's busybox package is dynamic, busybox-static is not; both are ELF.
            let dynamic = Command::new("ldd")
                .arg(&bb)
                .output()
                .is_ok_and(|o| o.status.success());
            assert_eq!(is_static(&bb), !dynamic, "{bb:?}");
        }
        let sh = crate::which("sh").expect("sh");
        assert!(!is_static(&sh.canonicalize().expect("sh")));
        assert!(!is_static(Path::new("/nonexistent")));
    }

    #[test]
    fn pkgbuild_and_install_file() {
        let pkg = TestPkg::new("demo", "1:2.0-3")
            .description("it's a demo")
            .depends(&["libdemo>=1.0"])
            .file("/usr/bin/demo", "x", 0o755)
            .scriptlet(Scriptlet::PreInstall, "exit 1");
        assert_eq!(pkg.version(), "1:2.0-3");
        let b = pkg.pkgbuild();
        assert!(b.contains("epoch=1\npkgver=2.0\npkgrel=3\n"), "{b}");
        assert!(b.contains(r"pkgdesc='it'\''s a demo'"), "{b}");
        assert!(b.contains("depends=('libdemo>=1.0')"), "{b}");
        assert!(b.contains("install='demo.install'"), "{b}");
        assert!(
            b.contains("install -D -m755 \"$startdir/files/0\" 'usr/bin/demo'"),
            "{b}"
        );
        let i = pkg.install_file().expect("install file");
        assert!(i.starts_with("pre_install() {\nexit 1\n"), "{i}");
        assert!(TestPkg::new("plain", "1-1").install_file().is_none());
    }

    #[test]
    #[should_panic(expected = "invalid file path")]
    fn paths_cannot_escape_the_root() {
        let _ = TestPkg::new("demo", "1-1").file("/usr/../../etc/passwd", "", 0o644);
    }

    #[test]
    #[should_panic(expected = "is not pkgver-pkgrel")]
    fn versions_need_a_pkgrel() {
        let _ = TestPkg::new("demo", "1.0");
    }
}
