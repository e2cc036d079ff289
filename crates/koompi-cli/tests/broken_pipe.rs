//! A command whose output goes to a pipe nobody reads any more (`| head -1` after its
//! first line) ends quietly with status 141, as one killed by SIGPIPE, instead of a panic
//! with a backtrace hint on the terminal.

use std::process::{Command, Stdio};

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    // Closed before the command starts: its first write fails with EPIPE every time.
    drop(read);
    let out = Command::new(env!("CARGO_BIN_EXE_koompi-class"))
        .env("HOME", tmp.path())
        .args(["--home", &tmp.path().to_string_lossy(), "status"])
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run koompi-class");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
