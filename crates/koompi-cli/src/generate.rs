//! `--generate man|bash|zsh|fish`: each binary prints its own man page or shell
//! completion script, as ripgrep does, so packaging takes them from the very binaries it
//! ships (packaging/koompi-tools/PKGBUILD) and they can never describe other flags.
//! `--generate man-pages DIR` writes the binary's page and one page per subcommand
//! (`koompi-snapshot-rollback.1`), the pages the main page's SUBCOMMANDS section names.
//!
//! It is looked for before the normal parsing, and only as the whole command line
//! (`PROG --generate KIND [DIR]`), so it cannot collide with a subcommand's arguments or
//! with what `koompi` passes on to pacman.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Command;
use clap_complete::Shell;

/// What can be printed.
pub const KINDS: [&str; 4] = ["man", "bash", "zsh", "fish"];

/// What the command line asks to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `PROG --generate KIND`: print it.
    Print(String),
    /// `PROG --generate man-pages DIR`: every page, written into DIR.
    ManPages(PathBuf),
}

/// `Some` when the command line is exactly `PROG --generate KIND` or
/// `PROG --generate man-pages DIR`.
pub fn requested<I: IntoIterator<Item = String>>(args: I) -> Option<Request> {
    let args: Vec<String> = args.into_iter().collect();
    match args.as_slice() {
        [_, flag, kind] if flag == "--generate" => Some(Request::Print(kind.clone())),
        [_, flag, kind, dir] if flag == "--generate" && kind == "man-pages" => {
            Some(Request::ManPages(PathBuf::from(dir)))
        }
        _ => None,
    }
}

/// The command as its man pages show it: no `help` subcommand (`--help` is there).
fn for_man(cmd: Command) -> Command {
    cmd.disable_help_subcommand(true)
}

/// `koompi`'s subcommands get no pages of their own: `koompi install`'s would be
/// `koompi-install(1)`, the installer's. Like pacman(8), its one page describes every
/// operation.
fn one_page(cmd: &Command) -> bool {
    cmd.get_name() == "koompi"
}

/// A one-page manual: the command's sections, then for each subcommand (and theirs) a
/// section with its synopsis, what it does and its options.
fn render_one_page(cmd: Command, out: &mut dyn Write) -> std::io::Result<()> {
    fn operations(cmd: &Command, global: &[String], out: &mut dyn Write) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            // The global options are told once, in OPTIONS.
            let mut shown = sub.clone();
            for id in global {
                if shown.get_arguments().any(|a| a.get_id().as_str() == id) {
                    shown = shown.mut_arg(id.as_str(), |a| a.hide(true));
                }
            }
            let man = clap_mangen::Man::new(shown);
            let mut buf = Vec::new();
            man.render_synopsis_section(&mut buf)?;
            man.render_options_section(&mut buf)?;
            let title = sub
                .get_display_name()
                .unwrap_or(sub.get_name())
                .replace('-', " ");
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            writeln!(out, ".SH \"{}\"", title.to_uppercase())?;
            writeln!(out, "{}", about.replace('\\', "\\\\"))?;
            let text = String::from_utf8_lossy(&buf)
                .replace(".SH SYNOPSIS", ".SS Synopsis")
                .replace(".SH OPTIONS", ".SS Options");
            out.write_all(text.as_bytes())?;
            operations(sub, global, out)?;
        }
        Ok(())
    }
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let global: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().to_string())
        .collect();
    operations(&cmd, &global, out)?;
    man.render_extra_section(out)?;
    man.render_version_section(out)
}

/// Writes the page of `cmd` and of each of its subcommands into the directory `dir`.
pub fn man_pages(cmd: Command, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("--generate man-pages {}: not a directory", dir.display());
    }
    let err = |e: std::io::Error| {
        anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display())
    };
    if one_page(&cmd) {
        let mut text = Vec::new();
        generate(cmd.clone(), "man", &mut text)?;
        let path = dir.join(format!("{}.1", cmd.get_name()));
        return std::fs::write(path, text).map_err(err);
    }
    clap_mangen::generate_to(for_man(cmd), dir).map_err(err)
}

/// Writes `kind` for `cmd` to `out`.
pub fn generate(mut cmd: Command, kind: &str, out: &mut dyn Write) -> Result<()> {
    let name = cmd.get_name().to_string();
    let shell = match kind {
        "man" => {
            let mut cmd = for_man(cmd);
            cmd.build();
            if one_page(&cmd) {
                render_one_page(cmd, out)?;
            } else {
                clap_mangen::Man::new(cmd).render(out)?;
            }
            return Ok(());
        }
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => bail!("--generate {other}: unknown; one of {}", KINDS.join(", ")),
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn all() -> Vec<Command> {
        vec![
            crate::apply_config::Cli::command(),
            crate::class::Cli::command(),
            crate::install::Cli::command(),
            crate::desktop::Cli::command(),
            crate::package::Cli::command(),
            crate::package::UpdateCli::command(),
            crate::snapshot::Cli::command(),
            crate::watchdog::Cli::command(),
        ]
    }

    /// clap's own checks, with `help_expected`: every argument and subcommand of every
    /// binary has help text (a missing one panics here).
    #[test]
    fn every_argument_of_every_binary_has_help() {
        for cmd in all() {
            cmd.debug_assert();
        }
    }

    #[test]
    fn only_the_whole_command_line_asks() {
        let v = |a: &[&str]| requested(a.iter().map(|s| s.to_string()));
        assert_eq!(
            v(&["koompi", "--generate", "man"]),
            Some(Request::Print("man".into()))
        );
        assert_eq!(
            v(&["koompi", "--generate", "man-pages", "/tmp/m"]),
            Some(Request::ManPages("/tmp/m".into()))
        );
        assert_eq!(v(&["koompi", "-S", "--generate", "man"]), None);
        assert_eq!(v(&["koompi", "--generate", "man", "x"]), None);
        assert_eq!(v(&["koompi", "--generate"]), None);
    }

    /// Every page the SUBCOMMANDS sections name is written, and no `help` page.
    #[test]
    fn man_pages_are_written_for_every_subcommand_named() {
        for cmd in all() {
            let name = cmd.get_name().to_string();
            let dir = tempfile::tempdir().expect("tempdir");
            man_pages(cmd.clone(), dir.path()).expect("pages");
            let mut main = Vec::new();
            generate(cmd, "man", &mut main).expect("man");
            let main = String::from_utf8(main).expect("utf-8");
            assert!(dir.path().join(format!("{name}.1")).is_file(), "{name}");
            // clap_mangen names a subcommand's page `\fBNAME\-SUB(1)\fR`.
            for line in main.lines().filter(|l| l.contains("(1)")) {
                let page = line
                    .trim_start_matches("\\fB")
                    .split("(1)")
                    .next()
                    .unwrap_or_default()
                    .replace("\\-", "-");
                assert!(
                    dir.path().join(format!("{page}.1")).is_file(),
                    "{name}: {page}.1 named but not written ({line})"
                );
            }
            assert!(!dir.path().join(format!("{name}-help.1")).exists());
        }
        // koompi's operations are sections of its one page; no page of another binary
        // (koompi-install.1) is written for them.
        let dir = tempfile::tempdir().expect("tempdir");
        man_pages(crate::package::Cli::command(), dir.path()).expect("pages");
        let written: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(written, ["koompi.1"]);
        let page = std::fs::read_to_string(dir.path().join("koompi.1")).expect("page");
        for section in [
            ".SH \"KOOMPI INSTALL\"",
            ".SH \"KOOMPI CHANNEL SET\"",
            "\\-\\-dry\\-run",
        ] {
            assert!(page.contains(section), "{section} missing:\n{page}");
        }
        assert!(man_pages(all().remove(0), Path::new("/nonexistent/x")).is_err());
    }

    #[test]
    fn every_binary_has_a_man_page_and_completions() {
        for cmd in all() {
            let name = cmd.get_name().to_string();
            let mut man = Vec::new();
            generate(cmd.clone(), "man", &mut man).expect("man");
            let man = String::from_utf8(man).expect("utf-8");
            assert!(man.contains(&format!(".TH {name} 1")), "{name}: {man}");
            assert!(
                man.contains(".SH OPTIONS") || man.contains(".SH SUBCOMMANDS"),
                "{name}"
            );
            for shell in ["bash", "zsh", "fish"] {
                let mut out = Vec::new();
                generate(cmd.clone(), shell, &mut out).expect("completion");
                let out = String::from_utf8(out).expect("utf-8");
                assert!(out.contains(&name), "{name} {shell}");
            }
        }
        let e = generate(all().remove(0), "tcsh", &mut Vec::new()).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "--generate tcsh: unknown; one of man, bash, zsh, fish"
        );
    }
}
