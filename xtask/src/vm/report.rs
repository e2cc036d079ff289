//! The summary of VM runs: one table (scenario, firmware, result, seconds, boots), a
//! footnote for each run retried after a stall, and the total line. Pure formatting; the
//! runs come from [`super::scenarios::run`].

use std::fmt::Write as _;

use anyhow::{bail, Result};

use super::stall::Stall;
use super::Firmware;

/// One finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub scenario: &'static str,
    pub firmware: Firmware,
    /// Seconds of the run, both attempts when it was retried.
    pub secs: u64,
    /// Boots counted, if it passed; the error, if it failed.
    pub result: std::result::Result<usize, String>,
    /// The first attempt's stall and console log, when the run was retried.
    pub retried: Option<Retry>,
}

/// A first attempt that stalled and was run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub stall: Stall,
    /// Seconds the stalled attempt took.
    pub secs: u64,
    /// Its console log.
    pub log: String,
}

/// Every run of one `vm-test` or `cargo xtask test`.
#[derive(Debug, Default)]
pub struct Runs {
    pub rows: Vec<Row>,
    /// Ctrl-C or SIGTERM stopped the runs; the rest were not started.
    pub interrupted: bool,
}

impl Runs {
    /// Fails if a run failed or the runs were interrupted.
    pub fn verdict(&self) -> Result<()> {
        if self.interrupted {
            bail!("interrupted; the remaining runs were not started");
        }
        let failed: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.result.is_err())
            .map(|r| format!("{}/{}", r.scenario, r.firmware.name()))
            .collect();
        if !failed.is_empty() {
            bail!(
                "{} of {} VM test run(s) failed: {}",
                failed.len(),
                self.rows.len(),
                failed.join(", ")
            );
        }
        Ok(())
    }
}

/// `m min s s`.
pub fn min_sec(secs: u64) -> String {
    format!("{} min {} s", secs / 60, secs % 60)
}

/// The table, with a footnote under it for every retried run (marked `*`).
pub fn table(runs: &Runs) -> String {
    let mut out = format!(
        "{:<22} {:<8} {:<6} {:>7} {:>6}\n",
        "scenario", "firmware", "result", "seconds", "boots"
    );
    for r in &runs.rows {
        let (res, boots) = match &r.result {
            Ok(boots) => ("PASS", boots.to_string()),
            Err(_) => ("FAIL", "-".to_string()),
        };
        let mark = if r.retried.is_some() { "*" } else { "" };
        let _ = writeln!(
            out,
            "{:<22} {:<8} {:<6} {:>7} {:>6}",
            r.scenario,
            r.firmware.name(),
            format!("{res}{mark}"),
            r.secs,
            boots
        );
    }
    if runs.rows.is_empty() {
        out.push_str("(no VM run was started)\n");
    }
    for r in &runs.rows {
        if let Some(retry) = &r.retried {
            let _ = writeln!(
                out,
                "* {}/{}: the first attempt stopped after {} s: {}; run again from a fresh \
                 overlay (the first attempt's console log: {})",
                r.scenario,
                r.firmware.name(),
                retry.secs,
                retry.stall,
                retry.log
            );
        }
    }
    if runs.interrupted {
        out.push_str("(interrupted: the remaining runs were not started)\n");
    }
    out
}

/// The VM part of a command, for the total line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmPart {
    /// It ran (or began to) for this many seconds: images and runs.
    Ran(u64),
    /// It did not run, for this reason.
    Skipped(&'static str),
}

/// `total: VM part 38 min 12 s; cargo xtask test 52 min 3 s`; `whole` is the command's
/// own total, when it did more than the VM part.
pub fn total_line(vm: VmPart, whole: Option<(&str, u64)>) -> String {
    let mut out = match vm {
        VmPart::Ran(secs) => format!("total: VM part {}", min_sec(secs)),
        VmPart::Skipped(why) => format!("total: VM part skipped ({why})"),
    };
    if let Some((what, secs)) = whole {
        let _ = write!(out, "; {what} {}", min_sec(secs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::stall::Phase;

    fn row(scenario: &'static str, fw: Firmware, secs: u64, boots: Option<usize>) -> Row {
        Row {
            scenario,
            firmware: fw,
            secs,
            result: boots.ok_or_else(|| "marker is two".to_string()),
            retried: None,
        }
    }

    #[test]
    fn minutes_and_seconds() {
        assert_eq!(min_sec(0), "0 min 0 s");
        assert_eq!(min_sec(59), "0 min 59 s");
        assert_eq!(min_sec(3132), "52 min 12 s");
    }

    #[test]
    fn the_table_has_a_row_per_run_and_marks_retries() {
        let mut retried = row("watchdog-hang", Firmware::Uefi, 900, Some(5));
        retried.retried = Some(Retry {
            stall: Stall {
                phase: Phase::Firmware,
                silent_secs: 61,
                after: "Welcome to GRUB!",
                allowed_secs: 60,
            },
            secs: 250,
            log: "target/vm-logs/watchdog-hang-uefi.log".into(),
        });
        let runs = Runs {
            rows: vec![
                row("boot", Firmware::Bios, 65, Some(1)),
                row("rollback-manual", Firmware::Bios, 140, None),
                retried,
            ],
            interrupted: false,
        };
        let t = table(&runs);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "scenario               firmware result seconds  boots"
        );
        assert_eq!(
            lines[1],
            "boot                   bios     PASS        65      1"
        );
        assert_eq!(
            lines[2],
            "rollback-manual        bios     FAIL       140      -"
        );
        assert_eq!(
            lines[3],
            "watchdog-hang          uefi     PASS*      900      5"
        );
        assert!(lines[4].starts_with("* watchdog-hang/uefi: the first attempt stopped after 250 s"));
        assert!(lines[4].contains("silent for 61 s"));
        assert!(lines[4].contains("target/vm-logs/watchdog-hang-uefi.log"));
        assert_eq!(lines.len(), 5);
        let e = runs.verdict().expect_err("one failed");
        assert_eq!(
            format!("{e}"),
            "1 of 3 VM test run(s) failed: rollback-manual/bios"
        );
    }

    #[test]
    fn an_empty_or_interrupted_summary_says_so() {
        let runs = Runs {
            rows: Vec::new(),
            interrupted: true,
        };
        let t = table(&runs);
        assert!(t.contains("no VM run was started"));
        assert!(t.contains("interrupted"));
        assert!(runs.verdict().is_err());
        assert!(Runs::default().verdict().is_ok());
    }

    #[test]
    fn the_total_line() {
        assert_eq!(
            total_line(VmPart::Ran(2292), Some(("cargo xtask test", 3123))),
            "total: VM part 38 min 12 s; cargo xtask test 52 min 3 s"
        );
        assert_eq!(
            total_line(VmPart::Ran(61), None),
            "total: VM part 1 min 1 s"
        );
        assert_eq!(
            total_line(
                VmPart::Skipped("--vm none"),
                Some(("cargo xtask test", 300))
            ),
            "total: VM part skipped (--vm none); cargo xtask test 5 min 0 s"
        );
    }
}
