//! `pacman.conf`: which repositories pacman uses, and from which servers.
//!
//! The network check before a download needs the servers of every repository, exactly as
//! pacman will use them: the `Server =` lines of each `[repo]` section and of the mirrorlists
//! it `Include`s, with `$repo` and `$arch` substituted. The work is split in two:
//!
//! - [`parse`] reads the text of one file (`&str` in, no I/O): sections, `Key = Value` and
//!   bare `Flag` lines, with line numbers; `Include` lines are kept as they are;
//! - [`resolve`] follows the includes through a [`ConfFiles`] (the real filesystem in
//!   [`load`], a map of texts in tests), and interprets the result into a [`PacmanConfig`].
//!
//! The syntax is pacman's (`pacman.conf(5)`, `src/pacman/conf.c`): everything after `#` is a
//! comment; a line is `[section]`, `Key = Value` or `Key`; every directive belongs to a section;
//! `Include` may appear in any section, its path may be a glob (`*`, `?`, `[...]` in the file
//! name), its lines count as if written where the `Include` is, and includes nest at most 10
//! deep; an `Include` that names no readable file (a glob that matches nothing included) is an
//! error, as in pacman.
//! `Architecture = auto`, or no `Architecture` at all, means the machine's `uname -m`; `$arch`
//! becomes the first architecture. `RootDir` and `DBPath` keep their first value, as in
//! pacman. `SigLevel`, `Usage` and any other directive are kept, never interpreted.
//!
//! Where KOOMPI is stricter than `pacman-conf`: a `Server` with an empty value is an error with
//! its line, and so is a section called `[local]` (`pacman-conf` accepts both).
//!
//! Why this is not left to `pacman-conf` or a crate: docs/decisions.md, "pacman.conf and
//! mirror URLs stay parsed by hand".

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How deep includes may nest (pacman's limit).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// One `Key = Value` or bare `Key` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in its file.
    pub line: usize,
    pub key: String,
    /// `None` for a bare flag (`Color`); `Some("")` for `Key =` with nothing after.
    pub value: Option<String>,
}

/// A `[name]` section and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// Line of the `[name]` header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// One file as written, includes unresolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfFile {
    /// Lines before the first section. A mirrorlist is only this; in the main file it is an
    /// error when [`resolve`]d.
    pub preamble: Vec<Entry>,
    pub sections: Vec<Section>,
}

impl ConfFile {
    /// The `Include` lines: (section name or `None` for the preamble, the entry).
    pub fn includes(&self) -> Vec<(Option<&str>, &Entry)> {
        let pre = self.preamble.iter().map(|e| (None, e));
        let secs = self
            .sections
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (Some(s.name.as_str()), e)));
        pre.chain(secs)
            .filter(|(_, e)| e.key == "Include")
            .collect()
    }
}

/// A syntax error in one file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses the text of one pacman.conf-style file. No I/O; includes are not followed.
pub fn parse(text: &str) -> Result<ConfFile, ParseError> {
    let mut file = ConfFile::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = match raw.find('#') {
            Some(p) => &raw[..p],
            None => raw,
        }
        .trim();
        if content.is_empty() {
            continue;
        }
        if let Some(rest) = content.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(ParseError {
                    line,
                    message: format!("section header {content:?} does not end with `]`"),
                });
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(ParseError {
                    line,
                    message: "empty section name `[]`".to_string(),
                });
            }
            file.sections.push(Section {
                name: name.to_string(),
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let (key, value) = match content.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
            None => (content, None),
        };
        if key.is_empty() {
            return Err(ParseError {
                line,
                message: format!("{content:?} has no directive name before `=`"),
            });
        }
        let entry = Entry {
            line,
            key: key.to_string(),
            value,
        };
        match file.sections.last_mut() {
            Some(s) => s.entries.push(entry),
            None => file.preamble.push(entry),
        }
    }
    Ok(file)
}

/// A repository and the servers pacman will use for it, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repo {
    pub name: String,
    /// `Server =` URLs with `$repo` and `$arch` substituted, in pacman's order.
    pub servers: Vec<String>,
    /// `CacheServer =` URLs (pacman 6.1), substituted likewise. They serve packages but not
    /// databases, so the network check does not count them.
    pub cache_servers: Vec<String>,
    /// The words of the `SigLevel` lines, as written.
    pub sig_level: Vec<String>,
    /// The words of the `Usage` lines, as written.
    pub usage: Vec<String>,
    /// Any other directive of the section, as written.
    pub other: Vec<(String, Option<String>)>,
}

impl Repo {
    fn new(name: &str) -> Self {
        Repo {
            name: name.to_string(),
            servers: Vec::new(),
            cache_servers: Vec::new(),
            sig_level: Vec::new(),
            usage: Vec::new(),
            other: Vec::new(),
        }
    }
}

/// A resolved pacman configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacmanConfig {
    /// `RootDir` (first value), as written.
    pub root_dir: Option<PathBuf>,
    /// `DBPath` (first value), as written.
    pub db_path: Option<PathBuf>,
    /// Every `CacheDir`, in order.
    pub cache_dirs: Vec<PathBuf>,
    /// `Architecture`, with `auto` replaced by the machine; the machine when unset.
    pub architectures: Vec<String>,
    /// Every other `[options]` directive, in order, as written.
    pub options: Vec<(String, Option<String>)>,
    /// The repositories in pacman's order (a section seen twice is one repository).
    pub repos: Vec<Repo>,
}

impl PacmanConfig {
    /// The architecture `$arch` stands for.
    pub fn arch(&self) -> Option<&str> {
        self.architectures.first().map(String::as_str)
    }

    /// The repository called `name`.
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }

    /// The value of an `[options]` directive kept in [`PacmanConfig::options`] (first one).
    pub fn option(&self, key: &str) -> Option<Option<&str>> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}

/// Errors of [`resolve`] and [`load`]: each names the file and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: cannot read included file {}: {source}", path.display(), include.display())]
    Include {
        path: PathBuf,
        line: usize,
        include: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where [`resolve`] reads included files from.
pub trait ConfFiles {
    /// The text of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The files directly in `dir` (full paths), for glob includes.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFiles;

impl ConfFiles for RealFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }
}

/// Reads `path`, follows its includes (below `root` when given, as `pacman --root` and
/// `--sysroot` do), and returns the configuration, with `auto` as this machine's
/// architecture. `path` itself is read as given, not below `root`.
pub fn load(path: &Path, root: Option<&Path>) -> Result<PacmanConfig, ConfError> {
    load_with_machine(path, root, &machine())
}

/// [`load`] with the machine name given (what `uname -m` says), for tests and cross-roots.
pub fn load_with_machine(
    path: &Path,
    root: Option<&Path>,
    machine: &str,
) -> Result<PacmanConfig, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    resolve(path, &text, machine, root, &RealFiles)
}

/// This machine's architecture as `uname -m` prints it (`x86_64`, `aarch64`).
pub fn machine() -> String {
    let uts = rustix::system::uname();
    match uts.machine().to_str() {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => std::env::consts::ARCH.to_string(),
    }
}

/// One line of the configuration with includes spliced in, and where it came from.
#[derive(Debug)]
enum Event {
    Section {
        name: String,
        path: PathBuf,
        line: usize,
    },
    Entry {
        entry: Entry,
        path: PathBuf,
    },
}

/// Resolves the configuration whose main file is `path` with text `text`: includes are read
/// through `files` (below `root` when given), then `$repo` and `$arch` are substituted, with
/// `machine` standing for `auto`.
pub fn resolve(
    path: &Path,
    text: &str,
    machine: &str,
    root: Option<&Path>,
    files: &dyn ConfFiles,
) -> Result<PacmanConfig, ConfError> {
    let parsed = parse(text).map_err(|e| ConfError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    if let Some(first) = parsed.preamble.first() {
        return Err(ConfError::Syntax {
            path: path.to_path_buf(),
            line: first.line,
            message: format!(
                "`{}` is outside any section; directives belong under [options] or a [repo] header",
                first.key
            ),
        });
    }
    let mut events = Vec::new();
    splice(path, &parsed, 0, root, files, &mut events)?;
    interpret(events, machine)
}

/// Appends the events of `file` (read from `path`) to `out`, following includes.
fn splice(
    path: &Path,
    file: &ConfFile,
    depth: usize,
    root: Option<&Path>,
    files: &dyn ConfFiles,
    out: &mut Vec<Event>,
) -> Result<(), ConfError> {
    let entries = |out: &mut Vec<Event>, list: &[Entry]| -> Result<(), ConfError> {
        for e in list {
            if e.key == "Include" {
                include(path, e, depth, root, files, out)?;
            } else {
                out.push(Event::Entry {
                    entry: e.clone(),
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    };
    entries(out, &file.preamble)?;
    for s in &file.sections {
        out.push(Event::Section {
            name: s.name.clone(),
            path: path.to_path_buf(),
            line: s.line,
        });
        entries(out, &s.entries)?;
    }
    Ok(())
}

/// Follows one `Include` line.
fn include(
    path: &Path,
    e: &Entry,
    depth: usize,
    root: Option<&Path>,
    files: &dyn ConfFiles,
    out: &mut Vec<Event>,
) -> Result<(), ConfError> {
    let syntax = |message: String| ConfError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        message,
    };
    let target = match e.value.as_deref() {
        Some(v) if !v.is_empty() => v,
        _ => {
            return Err(syntax(
                "`Include` needs a path: Include = /etc/pacman.d/mirrorlist".into(),
            ))
        }
    };
    if depth + 1 > MAX_INCLUDE_DEPTH {
        return Err(syntax(format!(
            "includes nest more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
        )));
    }
    let full = below_root(Path::new(target), root);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let paths = if name.contains(['*', '?', '[']) {
        let dir = full.parent().unwrap_or(Path::new("/"));
        let mut found: Vec<PathBuf> = files
            .list_dir(dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| name_matches(&name, &n.to_string_lossy()))
            })
            .collect();
        found.sort();
        if found.is_empty() {
            // pacman globs with GLOB_NOCHECK: a pattern that matches nothing (or whose
            // directory is missing) comes back as itself, and reading that fails.
            found.push(full);
        }
        found
    } else {
        vec![full]
    };
    for inc in paths {
        let text = files.read(&inc).map_err(|source| ConfError::Include {
            path: path.to_path_buf(),
            line: e.line,
            include: inc.clone(),
            source,
        })?;
        let parsed = parse(&text).map_err(|pe| ConfError::Syntax {
            path: inc.clone(),
            line: pe.line,
            message: pe.message,
        })?;
        splice(&inc, &parsed, depth + 1, root, files, out)?;
    }
    Ok(())
}

/// `path` as seen from inside `root`.
fn below_root(path: &Path, root: Option<&Path>) -> PathBuf {
    match root {
        Some(r) => r.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// Whether the file name `name` matches the glob `pattern` (`*`, `?`, `[a-z]`, `[!a]`).
/// Like glob(3), a leading `.` is only matched by a pattern that starts with `.`. The matcher
/// (`glob-match`, which koompi-snapshots uses too) also reads `{a,b}` and a leading `!`, which
/// pacman's glob(3) takes literally; no mirrorlist name has either.
fn name_matches(pattern: &str, name: &str) -> bool {
    (pattern.starts_with('.') || !name.starts_with('.')) && glob_match::glob_match(pattern, name)
}

/// Where the interpreter is: before any section, in `[options]`, or in a repository.
enum Current {
    Nowhere,
    Options,
    Repo(usize),
}

/// Turns the spliced lines into a configuration.
fn interpret(events: Vec<Event>, machine: &str) -> Result<PacmanConfig, ConfError> {
    let mut cfg = PacmanConfig {
        root_dir: None,
        db_path: None,
        cache_dirs: Vec::new(),
        architectures: Vec::new(),
        options: Vec::new(),
        repos: Vec::new(),
    };
    let mut current = Current::Nowhere;
    for ev in events {
        match ev {
            Event::Section { name, path, line } => {
                if name == "options" {
                    current = Current::Options;
                } else if name == "local" {
                    return Err(ConfError::Syntax {
                        path,
                        line,
                        message: "`local` is pacman's name for installed packages; a repository cannot be called that".into(),
                    });
                } else {
                    let idx = match cfg.repos.iter().position(|r| r.name == name) {
                        Some(i) => i,
                        None => {
                            cfg.repos.push(Repo::new(&name));
                            cfg.repos.len() - 1
                        }
                    };
                    current = Current::Repo(idx);
                }
            }
            Event::Entry { entry, path } => {
                let words = || -> Vec<String> {
                    entry
                        .value
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                };
                match current {
                    Current::Nowhere => {
                        // Only reachable through an included file's preamble before any
                        // section: the main file's preamble is refused earlier.
                        return Err(ConfError::Syntax {
                            path,
                            line: entry.line,
                            message: format!("`{}` is outside any section", entry.key),
                        });
                    }
                    Current::Options => match entry.key.as_str() {
                        "RootDir" => {
                            if cfg.root_dir.is_none() {
                                cfg.root_dir = entry.value.clone().map(PathBuf::from);
                            }
                        }
                        "DBPath" => {
                            if cfg.db_path.is_none() {
                                cfg.db_path = entry.value.clone().map(PathBuf::from);
                            }
                        }
                        "CacheDir" => cfg
                            .cache_dirs
                            .extend(words().into_iter().map(PathBuf::from)),
                        "Architecture" => cfg.architectures.extend(words()),
                        _ => cfg.options.push((entry.key.clone(), entry.value.clone())),
                    },
                    Current::Repo(i) => {
                        let Some(repo) = cfg.repos.get_mut(i) else {
                            continue;
                        };
                        match entry.key.as_str() {
                            "Server" | "CacheServer" => {
                                let url = match entry.value.as_deref() {
                                    Some(v) if !v.is_empty() => v.to_string(),
                                    _ => {
                                        return Err(ConfError::Syntax {
                                            path,
                                            line: entry.line,
                                            message: format!(
                                                "`{}` needs a URL: {} = https://mirror.example.org/$repo/os/$arch",
                                                entry.key, entry.key
                                            ),
                                        })
                                    }
                                };
                                if entry.key == "Server" {
                                    repo.servers.push(url);
                                } else {
                                    repo.cache_servers.push(url);
                                }
                            }
                            "SigLevel" => repo.sig_level.extend(words()),
                            "Usage" => repo.usage.extend(words()),
                            _ => repo.other.push((entry.key.clone(), entry.value.clone())),
                        }
                    }
                }
            }
        }
    }
    for a in cfg.architectures.iter_mut() {
        if a == "auto" {
            *a = machine.to_string();
        }
    }
    if cfg.architectures.is_empty() {
        cfg.architectures.push(machine.to_string());
    }
    let arch = cfg.architectures[0].clone();
    for repo in cfg.repos.iter_mut() {
        let name = repo.name.clone();
        for url in repo.servers.iter_mut().chain(repo.cache_servers.iter_mut()) {
            *url = url.replace("$repo", &name).replace("$arch", &arch);
        }
    }
    Ok(cfg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Files in memory, for resolving without a disk.
    #[derive(Default)]
    struct MemFiles(BTreeMap<PathBuf, String>);

    impl MemFiles {
        fn with(mut self, path: &str, text: &str) -> Self {
            self.0.insert(PathBuf::from(path), text.to_string());
            self
        }
    }

    impl ConfFiles for MemFiles {
        fn read(&self, path: &Path) -> io::Result<String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
        }

        fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
            Ok(self
                .0
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .cloned()
                .collect())
        }
    }

    const ARCH_CONF: &str = include_str!("../tests/data/pacman.conf");
    const MIRRORLIST: &str = include_str!("../tests/data/mirrorlist");

    fn resolve_mem(text: &str, files: &MemFiles) -> Result<PacmanConfig, ConfError> {
        resolve(Path::new("/etc/pacman.conf"), text, "x86_64", None, files)
    }

    #[test]
    fn parses_sections_entries_and_flags() {
        let f = parse(ARCH_CONF).unwrap();
        assert!(f.preamble.is_empty());
        let names: Vec<&str> = f.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["options", "core", "extra", "multilib", "koompi"]);
        let opts = &f.sections[0];
        let color = opts.entries.iter().find(|e| e.key == "Color").unwrap();
        assert_eq!(color.value, None);
        let hold = opts.entries.iter().find(|e| e.key == "HoldPkg").unwrap();
        assert_eq!(hold.value.as_deref(), Some("pacman glibc"));
        let incs = f.includes();
        assert_eq!(incs.len(), 3);
        assert_eq!(incs[0].0, Some("core"));
        assert_eq!(incs[0].1.value.as_deref(), Some("/etc/pacman.d/mirrorlist"));
        assert_eq!(incs[0].1.line, 80);
    }

    #[test]
    fn comments_and_whitespace() {
        let f = parse(
            "  [options]  # the options\n\tColor # on\nKey=Value#c\n  A  =  b c  \nEmpty =\n",
        )
        .unwrap();
        let e = &f.sections[0].entries;
        assert_eq!(e[0].key, "Color");
        assert_eq!(e[0].value, None);
        assert_eq!(e[1].value.as_deref(), Some("Value"));
        assert_eq!(e[2].key, "A");
        assert_eq!(e[2].value.as_deref(), Some("b c"));
        assert_eq!(e[2].line, 4);
        assert_eq!(e[3].value.as_deref(), Some(""));
    }

    #[test]
    fn mirrorlist_is_a_preamble() {
        let f = parse(MIRRORLIST).unwrap();
        assert!(f.sections.is_empty());
        let servers: Vec<_> = f.preamble.iter().filter(|e| e.key == "Server").collect();
        assert_eq!(servers.len(), 3);
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        assert_eq!(parse("[options]\n[core\n").unwrap_err().line, 2);
        assert_eq!(parse("\n\n[]\n").unwrap_err().line, 3);
        let e = parse("[options]\n = x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("line 2: "), "{e}");
    }

    #[test]
    fn resolves_the_arch_default_config() {
        let files = MemFiles::default().with("/etc/pacman.d/mirrorlist", MIRRORLIST);
        let cfg = resolve_mem(ARCH_CONF, &files).unwrap();
        assert_eq!(cfg.architectures, ["x86_64"]);
        assert_eq!(cfg.arch(), Some("x86_64"));
        assert_eq!(cfg.root_dir, None);
        assert_eq!(cfg.db_path.as_deref(), Some(Path::new("/var/lib/pacman/")));
        assert_eq!(
            cfg.cache_dirs,
            [
                PathBuf::from("/var/cache/pacman/pkg/"),
                PathBuf::from("/srv/cache/")
            ]
        );
        assert_eq!(cfg.option("ParallelDownloads"), Some(Some("5")));
        assert_eq!(cfg.option("Color"), Some(None));
        assert_eq!(cfg.option("HoldPkg"), Some(Some("pacman glibc")));
        assert_eq!(
            cfg.option("SigLevel"),
            Some(Some("Required DatabaseOptional"))
        );
        assert_eq!(cfg.option("NoSuchThing"), None);
        let names: Vec<&str> = cfg.repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["core", "extra", "multilib", "koompi"]);
        let core = cfg.repo("core").unwrap();
        assert_eq!(
            core.servers,
            [
                "https://mirror.example.kh/archlinux/core/os/x86_64",
                "https://geo.mirror.pkgbuild.com/core/os/x86_64",
                "http://[2001:db8::10]:8080/archlinux/core/os/x86_64",
            ]
        );
        let multilib = cfg.repo("multilib").unwrap();
        // A Server before the Include comes first, as pacman uses them in order.
        assert_eq!(multilib.servers[0], "http://127.0.0.1:8080/multilib/x86_64");
        assert_eq!(multilib.servers.len(), 4);
        assert_eq!(multilib.usage, ["Sync", "Search"]);
        let koompi = cfg.repo("koompi").unwrap();
        assert_eq!(koompi.servers, ["file:///srv/koompi-repo/x86_64"]);
        assert_eq!(koompi.sig_level, ["Optional", "TrustAll"]);
        assert_eq!(koompi.cache_servers, ["http://cache.lan/koompi/x86_64"]);
    }

    #[test]
    fn auto_and_missing_architecture() {
        let text =
            "[options]\nArchitecture = auto x86_64_v3\n[core]\nServer = http://m/$arch/$repo\n";
        let cfg = resolve_mem(text, &MemFiles::default()).unwrap();
        assert_eq!(cfg.architectures, ["x86_64", "x86_64_v3"]);
        assert_eq!(cfg.repos[0].servers, ["http://m/x86_64/core"]);
        let text = "[options]\n[core]\nServer = http://m/$arch\n";
        let cfg = resolve(Path::new("/p"), text, "aarch64", None, &MemFiles::default()).unwrap();
        assert_eq!(cfg.architectures, ["aarch64"]);
        assert_eq!(cfg.repos[0].servers, ["http://m/aarch64"]);
        let text = "[options]\nArchitecture = i686\n[core]\nServer = http://m/$arch\n";
        let cfg = resolve_mem(text, &MemFiles::default()).unwrap();
        assert_eq!(cfg.repos[0].servers, ["http://m/i686"]);
    }

    #[test]
    fn first_root_and_dbpath_win() {
        let text = "[options]\nRootDir = /a\nRootDir = /b\nDBPath = /d1\nDBPath = /d2\n";
        let cfg = resolve_mem(text, &MemFiles::default()).unwrap();
        assert_eq!(cfg.root_dir.as_deref(), Some(Path::new("/a")));
        assert_eq!(cfg.db_path.as_deref(), Some(Path::new("/d1")));
    }

    #[test]
    fn includes_resolve_below_root() {
        let files = MemFiles::default().with(
            "/mnt/etc/pacman.d/mirrorlist",
            "Server = http://inside/$repo\n",
        );
        let cfg = resolve(
            Path::new("/mnt/etc/pacman.conf"),
            "[options]\n[core]\nInclude = /etc/pacman.d/mirrorlist\n",
            "x86_64",
            Some(Path::new("/mnt")),
            &files,
        )
        .unwrap();
        assert_eq!(cfg.repos[0].servers, ["http://inside/core"]);
    }

    #[test]
    fn glob_includes_in_sorted_order() {
        let files = MemFiles::default()
            .with("/etc/pacman.d/repos/20-b.conf", "[b]\nServer = http://b/\n")
            .with("/etc/pacman.d/repos/10-a.conf", "[a]\nServer = http://a/\n")
            .with(
                "/etc/pacman.d/repos/.hidden.conf",
                "[h]\nServer = http://h/\n",
            )
            .with("/etc/pacman.d/repos/notes.txt", "[n]\n");
        let text = "[options]\nInclude = /etc/pacman.d/repos/*.conf\n";
        let cfg = resolve_mem(text, &files).unwrap();
        let names: Vec<&str> = cfg.repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let text = "[options]\nInclude = /etc/pacman.d/repos/[!1]*.conf\n";
        let cfg = resolve_mem(text, &files).unwrap();
        let names: Vec<&str> = cfg.repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn glob_matching_nothing_is_an_error_as_in_pacman() {
        let files = MemFiles::default().with("/etc/pacman.d/repos/a.txt", "[a]\n");
        for pattern in ["/etc/pacman.d/repos/*.conf", "/nowhere/*.conf"] {
            let text = format!("[options]\n\nInclude = {pattern}\n");
            let err = resolve_mem(&text, &files).unwrap_err();
            assert!(matches!(err, ConfError::Include { line: 3, .. }), "{err:?}");
            assert!(err.to_string().contains(pattern), "{err}");
        }
    }

    #[test]
    fn missing_include_names_file_and_line() {
        let text = "[options]\n\n[core]\nInclude = /etc/pacman.d/nope\n";
        let err = resolve_mem(text, &MemFiles::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfError::Include { line: 4, .. }), "{err:?}");
        assert!(msg.starts_with("/etc/pacman.conf:4: "), "{msg}");
        assert!(msg.contains("/etc/pacman.d/nope"), "{msg}");
    }

    #[test]
    fn errors_in_included_files_name_that_file() {
        let files = MemFiles::default().with("/etc/pacman.d/mirrorlist", "# ok\nServer =\n");
        let err = resolve_mem("[core]\nInclude = /etc/pacman.d/mirrorlist\n", &files).unwrap_err();
        match &err {
            ConfError::Syntax { path, line, .. } => {
                assert_eq!(path, Path::new("/etc/pacman.d/mirrorlist"));
                assert_eq!(*line, 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with("/etc/pacman.d/mirrorlist:2: `Server` needs a URL"));
        let files = MemFiles::default().with("/etc/pacman.d/mirrorlist", "[broken\n");
        let err = resolve_mem("[core]\nInclude = /etc/pacman.d/mirrorlist\n", &files).unwrap_err();
        assert!(
            err.to_string().starts_with("/etc/pacman.d/mirrorlist:1: "),
            "{err}"
        );
    }

    #[test]
    fn include_loops_stop() {
        let files = MemFiles::default().with("/etc/loop", "Include = /etc/loop\n");
        let err = resolve_mem("[core]\nInclude = /etc/loop\n", &files).unwrap_err();
        assert!(err.to_string().contains("nest more than 10"), "{err}");
    }

    #[test]
    fn refusals() {
        let err = resolve_mem("Color\n[options]\n", &MemFiles::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/pacman.conf:1: `Color` is outside any section"),
            "{err}"
        );
        let err = resolve_mem("[local]\n", &MemFiles::default()).unwrap_err();
        assert!(matches!(err, ConfError::Syntax { line: 1, .. }));
        let err = resolve_mem("[core]\nInclude\n", &MemFiles::default()).unwrap_err();
        assert!(matches!(err, ConfError::Syntax { line: 2, .. }));
        let err = resolve_mem("[core]\nServer\n", &MemFiles::default()).unwrap_err();
        assert!(matches!(err, ConfError::Syntax { line: 2, .. }));
    }

    #[test]
    fn repeated_sections_merge() {
        let text =
            "[core]\nServer = http://a/\n[extra]\nServer = http://e/\n[core]\nServer = http://b/\n";
        let cfg = resolve_mem(text, &MemFiles::default()).unwrap();
        assert_eq!(cfg.repos.len(), 2);
        assert_eq!(cfg.repos[0].servers, ["http://a/", "http://b/"]);
    }

    #[test]
    fn load_reads_real_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/pacman.d")).unwrap();
        std::fs::write(root.join("etc/pacman.conf"), ARCH_CONF).unwrap();
        std::fs::write(root.join("etc/pacman.d/mirrorlist"), MIRRORLIST).unwrap();
        let cfg = load_with_machine(&root.join("etc/pacman.conf"), Some(root), "x86_64").unwrap();
        assert_eq!(cfg.repos.len(), 4);
        assert_eq!(cfg.repo("extra").unwrap().servers.len(), 3);
        let cfg = load(&root.join("etc/pacman.conf"), Some(root)).unwrap();
        assert_eq!(cfg.arch(), Some(machine().as_str()));
        let err = load(&root.join("etc/none.conf"), None).unwrap_err();
        assert!(matches!(err, ConfError::Read { .. }));
        assert!(err.to_string().contains("none.conf"), "{err}");
    }

    #[test]
    fn machine_is_known() {
        let m = machine();
        assert!(!m.is_empty());
        assert!(
            m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{m}"
        );
    }

    #[test]
    fn wildcards() {
        assert!(name_matches("*.conf", "a.conf"));
        assert!(name_matches("*", "x"));
        assert!(name_matches("a?c", "abc"));
        assert!(name_matches("a*b*c", "axxbyyc"));
        assert!(!name_matches("a*b*c", "axxbyy"));
        assert!(!name_matches("*.conf", ".hidden.conf"));
        assert!(name_matches(".*", ".hidden"));
        assert!(!name_matches("a?", "a"));
        assert!(name_matches("[0-9]*-koompi.conf", "10-koompi.conf"));
        assert!(!name_matches("[!0-9]*.conf", "10-koompi.conf"));
    }

    proptest! {
        /// Any text either parses or fails with a line number inside the text; never a panic.
        #[test]
        fn prop_parse_total(text in "([\\[\\]a-zA-Z =#\t]{0,20}\n){0,10}") {
            match parse(&text) {
                Ok(_) => {}
                Err(e) => prop_assert!(e.line >= 1 && e.line <= text.lines().count()),
            }
        }

        /// Servers written in a section come out in order, substituted.
        #[test]
        fn prop_servers_in_order(
            repo in "[a-z][a-z0-9-]{0,8}",
            hosts in prop::collection::vec("[a-z]{1,8}", 1..6),
        ) {
            prop_assume!(repo != "options" && repo != "local");
            let mut text = format!("[options]\nArchitecture = auto\n[{repo}]\n");
            for h in &hosts {
                text.push_str(&format!("Server = https://{h}/$repo/os/$arch\n"));
            }
            let cfg = resolve_mem(&text, &MemFiles::default()).unwrap();
            let want: Vec<String> = hosts
                .iter()
                .map(|h| format!("https://{h}/{repo}/os/x86_64"))
                .collect();
            prop_assert_eq!(&cfg.repos[0].servers, &want);
        }
    }
}
