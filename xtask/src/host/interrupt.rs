//! Ctrl-C and SIGTERM: remembered instead of killing the rig on the spot, so that the
//! cleanup guards (mounts, loop device, QEMU, overlays) run as after any other error.
//!
//! The programs the rig runs get the signal too (same process group) and fail, which ends
//! the step with an error; [`check`] turns a signal that arrived between programs into one.
//! The handler is signal-hook's, which only sets a flag (async-signal-safe).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, OnceLock};

use anyhow::{bail, Result};
use signal_hook::consts::{SIGINT, SIGTERM};

/// Set once SIGINT or SIGTERM arrived.
fn interrupted() -> &'static Arc<AtomicBool> {
    static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    INTERRUPTED.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Installs the handler for SIGINT and SIGTERM (once; later calls do nothing).
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        for sig in [SIGINT, SIGTERM] {
            if let Err(e) = signal_hook::flag::register(sig, Arc::clone(interrupted())) {
                eprintln!("warning: cannot catch signal {sig}: {e}");
            }
        }
    });
}

/// Fails once a signal arrived.
pub fn check() -> Result<()> {
    if interrupted().load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    const CHILD: &str = "KOOMPI_XTASK_INTERRUPT_CHILD";

    /// Runs [`signalled_child`] in a process of its own: the flag it sets is global, and
    /// would fail every other test here that checks it.
    #[test]
    fn sigint_and_sigterm_are_remembered_not_fatal() {
        for sig in ["INT", "TERM"] {
            let exe = std::env::current_exe().expect("test binary");
            let out = Command::new(exe)
                .args(["--exact", "host::interrupt::tests::signalled_child"])
                .args(["--nocapture", "--test-threads=1"])
                .env(CHILD, sig)
                .output()
                .expect("run the child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "SIG{sig}: {:?}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn signalled_child() {
        let Ok(name) = std::env::var(CHILD) else {
            return;
        };
        let sig = match name.as_str() {
            "INT" => rustix::process::Signal::INT,
            _ => rustix::process::Signal::TERM,
        };
        install();
        install();
        assert!(check().is_ok());
        rustix::process::kill_process(rustix::process::getpid(), sig).expect("kill");
        // Another thread may take the signal: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while check().is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(check().expect_err("interrupted").to_string(), "interrupted");
    }
}
