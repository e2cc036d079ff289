//! Running external programs: every failure names the full command line and shows the end
//! of the program's stderr (or stdout when stderr is empty).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// The command line of `cmd`, quoted like a shell would need it.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `cmd` to completion with stdin from /dev/null; fails unless it exits 0, or when
/// Ctrl-C arrived meanwhile.
pub fn run(cmd: &mut Command) -> Result<Output> {
    exec(cmd, None, true)
}

/// Runs `cmd` to completion, feeding it `input` on stdin; fails unless it exits 0, or when
/// Ctrl-C arrived meanwhile.
pub fn run_input(cmd: &mut Command, input: Option<&[u8]>) -> Result<Output> {
    exec(cmd, input, true)
}

/// [`run`] for cleanup: also runs, and succeeds, after Ctrl-C.
pub fn run_cleanup(cmd: &mut Command) -> Result<Output> {
    exec(cmd, None, false)
}

fn exec(cmd: &mut Command, input: Option<&[u8]>, interruptible: bool) -> Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    if let Some(data) = input {
        let mut stdin = child.stdin.take().context("child has no stdin pipe")?;
        stdin
            .write_all(data)
            .with_context(|| format!("cannot write the input of `{}`", describe(cmd)))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot wait for `{}`", describe(cmd)))?;
    if interruptible {
        crate::host::interrupt::check().with_context(|| format!("`{}`", describe(cmd)))?;
    }
    check(cmd, &out)?;
    Ok(out)
}

/// Fails unless `out` is of a command that exited 0, with the end of its stderr (or
/// stdout when stderr is empty) in the message.
pub fn check(cmd: &Command, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    bail!(
        "`{}` failed ({}):\n{}",
        describe(cmd),
        out.status,
        tail(text.trim_end(), 40)
    )
}

/// Runs `cmd` and returns its stdout as text.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    String::from_utf8(out.stdout).with_context(|| format!("`{}`: output not UTF-8", describe(cmd)))
}

/// Runs `cmd` with stdin, stdout and stderr of this process (for long or interactive
/// programs); fails unless it exits 0.
pub fn run_inherited(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    crate::host::interrupt::check().with_context(|| format!("`{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}
