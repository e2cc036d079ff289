//! The interactive installer as a person meets it: `koompi-install --dry-run --json` on a
//! pseudo-terminal of 80x24, driven through all fourteen steps with keys, reading the
//! screen as a terminal shows it (vt100). The disk to choose is a sparse loop device, so
//! the test needs root; it is skipped otherwise, or when no loop device can be set up.
//! The plan printed at the end must be the one chosen on the screens, and the disk must
//! be left untouched.
#![allow(clippy::unwrap_used)]

use std::io::Read;

use koompi_testutil::{require_root, LoopDisk};

mod pty;
use pty::{after_the_screens, ended, Tty, BACKSPACE, ENTER};

/// Waits for step `n` of 14.
fn step(tty: &mut Tty, n: usize, name: &str) {
    tty.wait_for(&format!("step {n} of 14: {name}"));
    tty.settle();
}

/// The first MiB of `disk` is still all zeros.
fn untouched(disk: &LoopDisk) -> bool {
    let mut buf = vec![0u8; 1024 * 1024];
    let mut f = std::fs::File::open(&disk.device).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf.iter().all(|b| *b == 0)
}

/// A sparse 9 GiB loop disk, or why there is none.
fn loop_disk() -> Result<LoopDisk, String> {
    let probe = std::process::Command::new("losetup")
        .arg("--find")
        .output()
        .map_err(|e| format!("cannot run losetup: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "no free loop device: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    std::panic::catch_unwind(|| LoopDisk::new(9))
        .map_err(|_| "losetup could not attach a loop device".to_string())
}

/// `koompi-install ARGS` on a new 80x24 pseudo-terminal.
fn spawn(args: &[&str]) -> (Tty, Box<dyn portable_pty::Child + Send + Sync>) {
    pty::spawn(env!("CARGO_BIN_EXE_koompi-install"), args, &[])
}

#[test]
fn ctrl_c_leaves_at_once_and_puts_the_terminal_back() {
    // Leaving needs no disk, and no root either.
    let (mut tty, mut child) = spawn(&[]);
    step(&mut tty, 1, "Welcome");
    tty.send(ENTER);
    step(&mut tty, 2, "Language");
    tty.send("\x03");
    assert!(ended(&mut tty, &mut child), "leaving is not a failure");
    let after = after_the_screens(&tty);
    assert!(
        after.starts_with("\x1b[?25h"),
        "the cursor is back: {after:?}"
    );
    assert!(
        after.contains("left the installer; nothing was changed"),
        "{after:?}"
    );
    assert!(!tty.screen.screen().alternate_screen());
}

#[test]
fn every_step_at_the_keyboard_and_the_plan_of_what_was_chosen() {
    const TEST: &str = "every_step_at_the_keyboard_and_the_plan_of_what_was_chosen";
    if !require_root(TEST) {
        return;
    }
    let disk = match loop_disk() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIP {TEST}: {why}");
            return;
        }
    };
    let (mut tty, mut child) = spawn(&["--dry-run", "--json"]);
    step(&mut tty, 1, "Welcome");
    tty.wait_for("Ctrl-C quit");
    tty.send(ENTER);
    step(&mut tty, 2, "Language");
    tty.choose("km_KH.UTF-8");
    tty.send(ENTER);
    step(&mut tty, 3, "Keyboard");
    tty.choose("kh ");
    tty.send(ENTER);
    step(&mut tty, 4, "Timezone");
    tty.send(ENTER);
    step(&mut tty, 5, "Disk");
    tty.choose(&format!("{}, 9 GiB", disk.device));
    tty.send(ENTER);
    step(&mut tty, 6, "Encryption");
    tty.send(ENTER);
    for (n, name) in [
        (7, "Partitions"),
        (8, "Subvolumes"),
        (9, "Base system"),
        (10, "Bootloader"),
    ] {
        step(&mut tty, n, name);
        tty.send(ENTER);
    }
    step(&mut tty, 11, "User");
    tty.send("student\rStudent One\rpw-1234\rpw-1234\r\r");
    step(&mut tty, 12, "Network");
    tty.send(&BACKSPACE.repeat(6));
    tty.send("Lab 7\r");
    tty.wait_for("may hold only letters a-z");
    tty.send(&BACKSPACE.repeat(5));
    tty.send("lab-07\r");
    step(&mut tty, 13, "Factory snapshot");
    tty.send(ENTER);
    step(&mut tty, 14, "Summary");
    tty.wait_for("type its size (9 GiB)");
    tty.wait_for("User student (Student One) · hostname lab-07");
    // A wrong answer is refused and the screen stays.
    tty.send("8 GiB\r");
    tty.wait_for("to confirm, type 9 GiB");
    assert!(untouched(&disk));
    tty.send(&BACKSPACE.repeat(5));
    tty.send("9 GiB\r");

    let ok = ended(&mut tty, &mut child);
    let after = after_the_screens(&tty);
    assert!(ok, "koompi-install failed: {after}");
    let json = &after[after.find('{').expect("a plan")..];
    let plan: serde_json::Value = serde_json::Deserializer::from_str(json)
        .into_iter()
        .next()
        .expect("a JSON plan")
        .expect("JSON");
    assert_eq!(plan["disk"], disk.device.as_str());
    assert_eq!(plan["hostname"], "lab-07");
    assert_eq!(plan["user"], "student");
    let text = plan.to_string();
    assert!(text.contains("LANG=km_KH.UTF-8"), "{text}");
    assert!(text.contains("Student One"), "{text}");
    assert!(!text.contains("pw-1234"), "a secret in the plan");
    assert!(!after.contains("pw-1234"), "a secret printed");
    assert!(untouched(&disk), "--dry-run wrote to the disk");
}
