//! The programs behind `koompi`: pacman, paru, flatpak, and curl for the AUR's RPC.
//!
//! Every program runs through `koompi_core::cmd`, so its command line is logged and a
//! failure carries its stderr. Queries (search, info, list) capture output and parse it
//! with [`crate::parse`], always under `LC_ALL=C` because pacman's field names are
//! translated. Changes (install, remove, upgrade, clean, pass-through) run attached to the
//! terminal so pacman can ask its questions, and their exit code is returned as is.
//!
//! pacman's own options that select the system (`--root`, `--config`, `--dbpath`) travel
//! with every pacman call ([`PacmanOpts`]), which is how `koompi` acts on a mounted target
//! and how the tests point it at a throwaway root. The AUR is reached with curl (pacman
//! itself depends on it, so it is there on every Arch system) at the RPC v5 endpoints.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use koompi_core::cmd::{Cmd, CmdError, Runner};

use crate::model::{Installed, Package};
use crate::pacman_conf::{self, PacmanConfig};
use crate::parse::{self, PackageInfo};

/// The AUR's base URL, unless `KOOMPI_AUR_URL` names another (tests use a local mock).
pub fn aur_url() -> String {
    std::env::var("KOOMPI_AUR_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::network::AUR_URL.to_string())
}

/// How long one AUR request may take.
pub const AUR_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the backends.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("cannot read the output of `{what}`: {message}")]
    Output { what: String, message: String },
    #[error("the AUR ({url}) cannot be reached: {message}")]
    AurUnreachable { url: String, message: String },
    #[error("the AUR answered with an error: {0}")]
    Aur(String),
    #[error(transparent)]
    Conf(#[from] pacman_conf::ConfError),
    #[error("there is no pacman database at {0} (not an Arch-based system there? --root and --dbpath choose another)")]
    NoDatabase(PathBuf),
    #[error("no package lists yet in {0} (they come with the first `sudo koompi upgrade`)")]
    NoPackageLists(PathBuf),
}

/// pacman options that choose the system to act on, passed to every pacman call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacmanOpts {
    pub root: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub dbpath: Option<PathBuf>,
    pub cachedir: Option<PathBuf>,
    pub noconfirm: bool,
    pub needed: bool,
}

impl PacmanOpts {
    /// The options that select the system (for queries and changes alike).
    pub fn system_args(&self) -> Vec<OsString> {
        let mut v = Vec::new();
        let mut push = |flag: &str, p: &Option<PathBuf>| {
            if let Some(p) = p {
                v.push(OsString::from(flag));
                v.push(p.clone().into_os_string());
            }
        };
        push("--config", &self.config);
        push("--root", &self.root);
        push("--dbpath", &self.dbpath);
        push("--cachedir", &self.cachedir);
        v
    }

    /// [`Self::system_args`] plus `--noconfirm`/`--needed` as given (for changes).
    pub fn change_args(&self) -> Vec<OsString> {
        let mut v = self.system_args();
        if self.noconfirm {
            v.push("--noconfirm".into());
        }
        v
    }

    /// The root pacman acts on: `--root`, else pacman.conf's `RootDir`, else `/`.
    pub fn target_root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        self.load_config()
            .ok()
            .and_then(|c| c.root_dir)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// The pacman.conf pacman reads.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/pacman.conf"))
    }

    /// Loads pacman.conf (its Include files resolved on this host, as pacman does with
    /// `--root`).
    pub fn load_config(&self) -> Result<PacmanConfig, pacman_conf::ConfError> {
        pacman_conf::load(&self.config_path(), None)
    }

    /// The database directory: `--dbpath`, else pacman.conf's `DBPath`, else
    /// `ROOT/var/lib/pacman`.
    pub fn db_path(&self) -> PathBuf {
        if let Some(p) = &self.dbpath {
            return p.clone();
        }
        if self.root.is_none() {
            if let Some(p) = self.load_config().ok().and_then(|c| c.db_path) {
                return p;
            }
        }
        self.target_root().join("var/lib/pacman")
    }
}

/// The programs and options one `koompi` run works with.
#[derive(Debug, Clone)]
pub struct Backends {
    pub runner: Runner,
    pub pacman: PathBuf,
    pub opts: PacmanOpts,
    /// paru, when installed.
    pub paru: Option<PathBuf>,
    /// flatpak, when installed.
    pub flatpak: Option<PathBuf>,
    pub aur_url: String,
}

/// Looks `prog` up in PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Backends {
    /// The programs found in PATH (`KOOMPI_PACMAN`, `KOOMPI_PARU` and `KOOMPI_FLATPAK`
    /// override them; an empty value means "not installed").
    pub fn detect(runner: Runner, opts: PacmanOpts) -> Self {
        let pick = |var: &str, prog: &str| match std::env::var_os(var) {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(PathBuf::from(v)),
            None => which(prog),
        };
        Backends {
            runner,
            pacman: pick("KOOMPI_PACMAN", "pacman").unwrap_or_else(|| PathBuf::from("pacman")),
            opts,
            paru: pick("KOOMPI_PARU", "paru"),
            flatpak: pick("KOOMPI_FLATPAK", "flatpak"),
            aur_url: aur_url(),
        }
    }

    /// A pacman command with the system options, in the C locale.
    pub fn pacman_cmd(&self) -> Cmd {
        Cmd::new(&self.pacman)
            .env("LC_ALL", "C")
            .args(self.opts.system_args())
    }

    /// Before a read-only query: the database is there, so that pacman creates nothing
    /// (it makes `local/` in a database directory that lacks it) and a missing one is one
    /// human line; with `lists`, the sync databases (package lists) are there too.
    fn check_db(&self, lists: bool) -> Result<(), BackendError> {
        let db = self.opts.db_path();
        if !db.join("local").is_dir() {
            return Err(BackendError::NoDatabase(db));
        }
        if lists {
            let sync = db.join("sync");
            let has_lists = std::fs::read_dir(&sync).is_ok_and(|rd| {
                rd.flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "db"))
            });
            if !has_lists {
                return Err(BackendError::NoPackageLists(sync));
            }
        }
        Ok(())
    }

    /// Runs a query that exits 1 when it finds nothing (pacman's convention): `None` then.
    fn query(&self, cmd: Cmd) -> Result<Option<String>, BackendError> {
        match cmd.run(&Runner::real()) {
            Ok(out) => Ok(Some(out.stdout)),
            Err(CmdError::Failed {
                code: Some(1),
                ref stderr,
                ..
            }) if !stderr.contains("could not") && !stderr.contains("failed to") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `pacman -Ss TERMS`: what the sync databases know.
    pub fn repo_search(&self, terms: &[String]) -> Result<Vec<Package>, BackendError> {
        self.check_db(true)?;
        let out = self.query(self.pacman_cmd().arg("-Ss").args(terms))?;
        let Some(text) = out else {
            return Ok(Vec::new());
        };
        parse::parse_pacman_search(&text).map_err(|e| output_err("pacman -Ss", e))
    }

    /// `pacman -Si NAME`: the package in the sync databases, if any.
    pub fn repo_info(&self, name: &str) -> Result<Option<PackageInfo>, BackendError> {
        self.check_db(true)?;
        let out = self.query(self.pacman_cmd().arg("-Si").arg("--").arg(name))?;
        let Some(text) = out else {
            return Ok(None);
        };
        let mut v = parse::parse_pacman_info(&text).map_err(|e| output_err("pacman -Si", e))?;
        Ok(if v.is_empty() {
            None
        } else {
            Some(v.remove(0))
        })
    }

    /// Whether NAME is a package or a group in the sync databases.
    pub fn in_repos(&self, name: &str) -> Result<bool, BackendError> {
        if self.repo_info(name)?.is_some() {
            return Ok(true);
        }
        let groups = self.query(self.pacman_cmd().arg("-Sg").arg("--").arg(name))?;
        Ok(groups.is_some_and(|g| !g.trim().is_empty()))
    }

    /// `pacman -Q [NAMES]`: installed packages.
    pub fn installed(&self, names: &[String]) -> Result<Vec<Installed>, BackendError> {
        self.check_db(false)?;
        let out = self.query(self.pacman_cmd().arg("-Q").args(names))?;
        let Some(text) = out else {
            return Ok(Vec::new());
        };
        parse::parse_pacman_query(&text).map_err(|e| output_err("pacman -Q", e))
    }

    /// `pacman -Qi NAME`, if installed.
    pub fn local_info(&self, name: &str) -> Result<Option<PackageInfo>, BackendError> {
        let out = self.query(self.pacman_cmd().arg("-Qi").arg("--").arg(name))?;
        let Some(text) = out else {
            return Ok(None);
        };
        let mut v = parse::parse_pacman_info(&text).map_err(|e| output_err("pacman -Qi", e))?;
        Ok(if v.is_empty() {
            None
        } else {
            Some(v.remove(0))
        })
    }

    /// Names from the sync databases close to `name` (for "did you mean").
    pub fn similar(&self, name: &str) -> Vec<String> {
        // A prefix of the name as a plain search: `firefx` finds `firefox`.
        let stem: String = name
            .chars()
            .take(name.chars().count().clamp(3, 5))
            .collect();
        let cmd = self.pacman_cmd().arg("-Ssq").arg("--").arg(&stem);
        match self.query(cmd) {
            Ok(Some(text)) => text.lines().take(5).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }

    /// GET `path` from the AUR with curl; the body.
    fn aur_get(&self, path: &str) -> Result<String, BackendError> {
        let url = format!("{}/{}", self.aur_url.trim_end_matches('/'), path);
        let cmd = Cmd::new("curl")
            .args(["--silent", "--show-error", "--fail", "--location"])
            .args(["--proto", "=https,http"])
            .arg("--max-time")
            .arg(AUR_TIMEOUT.as_secs().to_string())
            .arg("--")
            .arg(&url);
        match cmd.run(&Runner::real()) {
            Ok(out) => Ok(out.stdout),
            Err(CmdError::Failed { stderr, .. }) => Err(BackendError::AurUnreachable {
                url: self.aur_url.clone(),
                message: stderr.trim().trim_start_matches("curl: ").to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn aur_parse(&self, body: &str) -> Result<Vec<Package>, BackendError> {
        match parse::parse_aur_packages(body) {
            Ok(v) => Ok(v),
            Err(parse::AurError::Rpc(m)) => Err(BackendError::Aur(m)),
            Err(e) => Err(BackendError::Aur(e.to_string())),
        }
    }

    /// AUR search by name and description.
    pub fn aur_search(&self, term: &str) -> Result<Vec<Package>, BackendError> {
        let body = self.aur_get(&format!(
            "rpc/v5/search/{}?by=name-desc",
            percent_encode(term)
        ))?;
        self.aur_parse(&body)
    }

    /// AUR packages with exactly these names.
    pub fn aur_info(&self, names: &[String]) -> Result<Vec<Package>, BackendError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let query: Vec<String> = names
            .iter()
            .map(|n| format!("arg[]={}", percent_encode(n)))
            .collect();
        let body = self.aur_get(&format!("rpc/v5/info?{}", query.join("&")))?;
        self.aur_parse(&body)
    }

    /// `flatpak search`, when flatpak is installed.
    pub fn flatpak_search(&self, term: &str) -> Result<Vec<Package>, BackendError> {
        let Some(flatpak) = &self.flatpak else {
            return Ok(Vec::new());
        };
        let out = Cmd::new(flatpak)
            .env("LC_ALL", "C")
            .arg("search")
            .arg(format!("--columns={}", parse::FLATPAK_SEARCH_COLUMNS))
            .arg("--")
            .arg(term)
            .run(&Runner::real())?;
        parse::parse_flatpak_search(&out.stdout).map_err(|e| output_err("flatpak search", e))
    }
}

fn output_err(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Output {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn system_options_travel_in_pacman_order() {
        let o = PacmanOpts {
            root: Some("/mnt".into()),
            config: Some("/mnt/etc/pacman.conf".into()),
            dbpath: None,
            cachedir: None,
            noconfirm: true,
            needed: true,
        };
        let args: Vec<String> = o
            .change_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--config",
                "/mnt/etc/pacman.conf",
                "--root",
                "/mnt",
                "--noconfirm"
            ]
        );
        assert_eq!(o.db_path(), Path::new("/mnt/var/lib/pacman"));
        let t = tempfile::tempdir().unwrap();
        let conf = t.path().join("pacman.conf");
        std::fs::write(&conf, "[options]\nRootDir = /srv/r/\nDBPath = /srv/db/\n").unwrap();
        let o = PacmanOpts {
            config: Some(conf),
            ..PacmanOpts::default()
        };
        assert_eq!(o.target_root(), Path::new("/srv/r/"));
        assert_eq!(o.db_path(), Path::new("/srv/db/"));
    }

    #[test]
    fn encodes_what_a_url_path_cannot_hold() {
        assert_eq!(percent_encode("paru-bin"), "paru-bin");
        assert_eq!(percent_encode("a b/c&d"), "a%20b%2Fc%26d");
        assert_eq!(percent_encode("ខ"), "%E1%9E%81");
    }
}
