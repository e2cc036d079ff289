//! Fleet installs: where a machine finds its answer file when nobody is at the keyboard.
//!
//! `koompi.install=<path>` on the kernel command line names the file; otherwise a
//! partition labelled [`ANSWER_LABEL`] (a second USB stick, or a partition on the install
//! stick; on FAT, whose labels hold 11 characters, [`ANSWER_LABEL_FAT`]) holds it as
//! [`ANSWER_FILE`]. Two such partitions are refused: which one was meant cannot be known. Relative paths inside the file (`password-file =
//! "student-password"`) are read beside it, so one stick carries the answers and the
//! secrets.

use std::path::{Path, PathBuf};

use crate::disks::{Disk, ANSWER_LABEL, ANSWER_LABEL_FAT};
use crate::facts::cmdline_value;

/// The kernel command-line key naming an answer file.
pub const CMDLINE_KEY: &str = "koompi.install";
/// The answer file's name on a [`ANSWER_LABEL`] partition.
pub const ANSWER_FILE: &str = "install.toml";

/// Where the answers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerSource {
    /// A path on the running system (from the kernel command line).
    Path(PathBuf),
    /// [`ANSWER_FILE`] on this partition, once it is mounted.
    Partition(String),
}

/// Why the answers cannot be found unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("two partitions are labelled {ANSWER_LABEL} or {ANSWER_LABEL_FAT} ({0} and {1}); keep one and start again")]
pub struct TwoAnswerPartitions(pub String, pub String);

/// Where this machine's answers are, if anywhere: the kernel command line first, then a
/// partition labelled [`ANSWER_LABEL`].
pub fn find(cmdline: &str, disks: &[Disk]) -> Result<Option<AnswerSource>, TwoAnswerPartitions> {
    if let Some(p) = cmdline_value(cmdline, CMDLINE_KEY).filter(|p| !p.is_empty()) {
        return Ok(Some(AnswerSource::Path(PathBuf::from(p))));
    }
    let mut found = disks
        .iter()
        .flat_map(|d| &d.partitions)
        .filter(|p| p.is_answers())
        .map(|p| p.path.clone());
    match (found.next(), found.next()) {
        (Some(a), Some(b)) => Err(TwoAnswerPartitions(a, b)),
        (Some(a), None) => Ok(Some(AnswerSource::Partition(a))),
        _ => Ok(None),
    }
}

/// `path` read beside the answer file in `dir` when it is relative (`-`, standard input,
/// stays as it is).
pub fn beside(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || path == Path::new("-") {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::parse_lsblk;

    fn disks(labels: &[(&str, &str)]) -> Vec<Disk> {
        let children: Vec<String> = labels
            .iter()
            .map(|(p, l)| format!(r#"{{"path":"{p}","size":1,"type":"part","label":"{l}"}}"#))
            .collect();
        let json = format!(
            r#"{{"blockdevices":[{{"path":"/dev/sdb","size":8000000000,"type":"disk","rm":true,"tran":"usb","children":[{}]}}]}}"#,
            children.join(",")
        );
        parse_lsblk(&json).expect("lsblk")
    }

    #[test]
    fn the_kernel_command_line_wins() {
        let d = disks(&[("/dev/sdb1", ANSWER_LABEL)]);
        assert_eq!(
            find("quiet koompi.install=/run/answers/room3.toml", &d),
            Ok(Some(AnswerSource::Path("/run/answers/room3.toml".into())))
        );
        assert_eq!(
            find("quiet", &d),
            Ok(Some(AnswerSource::Partition("/dev/sdb1".into())))
        );
        assert_eq!(find("koompi.install=", &disks(&[])), Ok(None));
    }

    #[test]
    fn two_answer_partitions_are_refused() {
        let d = disks(&[
            ("/dev/sdb1", ANSWER_LABEL),
            ("/dev/sdb2", "data"),
            ("/dev/sdb3", ANSWER_LABEL),
        ]);
        let e = find("", &d).expect_err("two");
        assert_eq!(
            e.to_string(),
            "two partitions are labelled KOOMPI-INSTALL or KOOMPI-INST (/dev/sdb1 and /dev/sdb3); keep one and start again"
        );
    }

    #[test]
    fn a_fat_stick_and_a_stick_formatted_whole_are_found() {
        let d = disks(&[("/dev/sdb1", "KOOMPI-INST")]);
        assert_eq!(
            find("", &d),
            Ok(Some(AnswerSource::Partition("/dev/sdb1".into())))
        );
        let whole = r#"{"blockdevices":[{"path":"/dev/sdc","size":8000000000,"type":"disk","rm":true,"tran":"usb","label":"KOOMPI-INST"}]}"#;
        let d = parse_lsblk(whole).expect("lsblk");
        assert_eq!(
            find("", &d),
            Ok(Some(AnswerSource::Partition("/dev/sdc".into())))
        );
        let named = r#"{"blockdevices":[{"path":"/dev/sdc","size":8000000000,"type":"disk","rm":true,"tran":"usb","children":[{"path":"/dev/sdc1","size":1,"type":"part","label":"STICK","partlabel":"KOOMPI-INSTALL"}]}]}"#;
        let d = parse_lsblk(named).expect("lsblk");
        assert_eq!(
            find("", &d),
            Ok(Some(AnswerSource::Partition("/dev/sdc1".into())))
        );
        assert!(
            d[0].is_boot_medium(None),
            "the answer stick is never a target"
        );
    }

    #[test]
    fn relative_paths_are_read_beside_the_answer_file() {
        let dir = Path::new("/run/koompi-answers");
        assert_eq!(
            beside(dir, Path::new("pw")),
            Path::new("/run/koompi-answers/pw")
        );
        assert_eq!(beside(dir, Path::new("/root/pw")), Path::new("/root/pw"));
        assert_eq!(beside(dir, Path::new("-")), Path::new("-"));
    }
}
