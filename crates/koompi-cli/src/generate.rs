//! `--generate man|bash|zsh|fish`: each binary prints its own man page or shell
//! completion script, as ripgrep does, so packaging takes them from the very binaries it
//! ships (packaging/koompi-tools/PKGBUILD) and they can never describe other flags.
//!
//! It is looked for before the normal parsing, and only as the whole command line
//! (`PROG --generate KIND`), so it cannot collide with a subcommand's arguments or with
//! what `koompi` passes on to pacman.

use std::io::Write;

use anyhow::{bail, Result};
use clap::Command;
use clap_complete::Shell;

/// What can be generated.
pub const KINDS: [&str; 4] = ["man", "bash", "zsh", "fish"];

/// `Some(kind)` when the command line is exactly `PROG --generate KIND`.
pub fn requested<I: IntoIterator<Item = String>>(args: I) -> Option<String> {
    let args: Vec<String> = args.into_iter().collect();
    match args.as_slice() {
        [_, flag, kind] if flag == "--generate" => Some(kind.clone()),
        _ => None,
    }
}

/// Writes `kind` for `cmd` to `out`.
pub fn generate(mut cmd: Command, kind: &str, out: &mut dyn Write) -> Result<()> {
    let name = cmd.get_name().to_string();
    let shell = match kind {
        "man" => {
            clap_mangen::Man::new(cmd).render(out)?;
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
            crate::install::Cli::command(),
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
        assert_eq!(v(&["koompi", "--generate", "man"]), Some("man".into()));
        assert_eq!(v(&["koompi", "-S", "--generate", "man"]), None);
        assert_eq!(v(&["koompi", "--generate"]), None);
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
