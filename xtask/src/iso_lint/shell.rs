//! shellcheck on every shell script the project ships, found by shebang and by name so that a
//! new one is not forgotten: among the repository's files (`git ls-files`, or every file but
//! `target/` when the tree is no git checkout), those whose shebang runs sh, bash, dash or ksh
//! or whose name ends in `.sh`, and the bash files without a shebang that tools source:
//! PKGBUILDs and `*.install` scriptlets (makepkg), mkinitcpio configs and presets, and
//! Openbox's `autostart` (sh).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use super::{walk, Ctx, Problems};

pub(super) fn shellcheck(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    // The files by the --shell they need ("" when shellcheck reads their shebang).
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for file in repository_files(&cx.root) {
        if let Some(shell) = shell_of(&cx.root, &file) {
            groups.entry(shell).or_default().push(file);
        }
    }
    if groups.is_empty() {
        p += ".: no shell script found".to_string();
    }
    for (shell, files) in groups {
        let mut cmd = Command::new("shellcheck");
        cmd.arg("--format=gcc").current_dir(&cx.root);
        if !shell.is_empty() {
            cmd.arg(format!("--shell={shell}"));
        }
        let out = match cmd.args(&files).output() {
            Ok(out) => out,
            Err(e) => {
                let hint = koompi_testutil::prereq::install_hint(&["shellcheck"]);
                p += format!(".: cannot run shellcheck ({e}): {hint}");
                return p;
            }
        };
        // `file:line:column: level: message [SCnnnn]`, one a finding; 1 when there is any.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            p += line.replacen(':', ": ", 1);
        }
        if !matches!(out.status.code(), Some(0 | 1)) {
            let err = String::from_utf8_lossy(&out.stderr);
            p += format!(".: shellcheck failed ({}): {}", out.status, err.trim());
        }
    }
    p
}

/// The repository's files, relative to `root`.
fn repository_files(root: &Path) -> Vec<String> {
    let git = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    if let Some(out) = git.ok().filter(|o| o.status.success()) {
        let files = String::from_utf8_lossy(&out.stdout);
        return files
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
    }
    let skip = |rel: &str| {
        ["target/", ".git/", ".vm-cache/", "out/"]
            .iter()
            .any(|d| rel.starts_with(d))
    };
    let files = walk(root).into_iter().filter(|(_, meta)| meta.is_file());
    let rel = files.filter_map(|(path, _)| {
        path.strip_prefix(root)
            .ok()
            .map(|r| r.display().to_string())
    });
    rel.filter(|r| !skip(r)).collect()
}

/// The shell `rel` is written in: "" when its shebang says (sh, bash, dash, ksh), the shell
/// when it has no shebang; None when it is no shell script.
fn shell_of(root: &Path, rel: &str) -> Option<&'static str> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let sourced = name == "PKGBUILD" || name.ends_with(".install") || name.ends_with(".preset");
    if sourced || rel.contains("/mkinitcpio.conf.d/") && name.ends_with(".conf") {
        return Some("bash");
    }
    if rel.ends_with("openbox/autostart") {
        return Some("sh");
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
