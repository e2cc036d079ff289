//! shellcheck on every shell script the project ships, found by shebang and by name so that a
//! new one is not forgotten: among the repository's files (`git ls-files`, untracked ones
//! included), those whose shebang runs sh, bash, dash or ksh or whose name ends in `.sh`, and
//! the bash files without a shebang that tools source: PKGBUILDs and `*.install` scriptlets
//! (makepkg), mkinitcpio configs and presets; and Openbox's `autostart` (sh).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use super::{Ctx, Problems};

pub(super) fn shellcheck(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let args = [
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ];
    let git = Command::new("git")
        .args(args)
        .current_dir(&cx.root)
        .output();
    let files = git.map(|out| String::from_utf8_lossy(&out.stdout).into_owned());
    let files = files.unwrap_or_default();
    // The files by the --shell they need ("" when shellcheck reads their shebang).
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        if let Some(shell) = shell_of(&cx.root, file) {
            groups.entry(shell).or_default().push(file);
        }
    }
    p += groups
        .is_empty()
        .then(|| ".: no shell script found by git ls-files".to_string());
    for (shell, files) in groups {
        let mut shellcheck = Command::new("shellcheck");
        shellcheck.arg("--format=gcc").current_dir(&cx.root);
        shellcheck.args((!shell.is_empty()).then(|| format!("--shell={shell}")));
        let Ok(out) = shellcheck.args(&files).output() else {
            let hint = koompi_testutil::prereq::install_hint(&["shellcheck"]);
            p += format!(".: cannot run shellcheck: {hint}");
            return p;
        };
        // `file:line:column: level: message [SCnnnn]`, one a finding; status 1 when any.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            p += line.replacen(':', ": ", 1);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let failed = !matches!(out.status.code(), Some(0 | 1));
        p += failed.then(|| format!(".: shellcheck failed ({}): {}", out.status, err.trim()));
    }
    p
}

/// The shell `rel` is written in: "" when its shebang says (sh, bash, dash, ksh), the shell
/// when it has no shebang; None when it is no shell script.
fn shell_of(root: &Path, rel: &str) -> Option<&'static str> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let initcpio = rel.contains("/mkinitcpio.conf.d/") && name.ends_with(".conf");
    let sourced = ["PKGBUILD", ".install", ".preset"]
        .iter()
        .any(|s| name.ends_with(s));
    if sourced
        || initcpio
        || rel.ends_with("openbox/autostart")
        || rel.ends_with("openbox/home/autostart")
    {
        return Some(if name == "autostart" { "sh" } else { "bash" });
    }
    let mut head = Vec::new();
    let file = std::fs::File::open(root.join(rel)).ok()?;
    file.take(256).read_to_end(&mut head).ok()?;
    let head = String::from_utf8_lossy(&head);
    let Some(shebang) = head.lines().next().and_then(|l| l.strip_prefix("#!")) else {
        return name.ends_with(".sh").then_some("bash");
    };
    let words: Vec<&str> = shebang.split_whitespace().collect();
    let program = match words[..] {
        [env, program, ..] if env.ends_with("/env") => program,
        [program, ..] => program.rsplit('/').next().unwrap_or(program),
        [] => "",
    };
    ["sh", "bash", "dash", "ksh"]
        .contains(&program)
        .then_some("")
}
