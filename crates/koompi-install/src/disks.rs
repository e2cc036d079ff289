//! The machine's disks, and the choice of the one to install on.
//!
//! [`parse_lsblk`] reads `lsblk --json --bytes` (the output of [`LSBLK_ARGS`]); [`choose`]
//! picks the target for a [`DiskChoice`] and refuses, in one line and before anything is
//! written, a disk that is in use (anything on it mounted), holds the running live system
//! or a fleet's answer file, is read-only, is too small, or is not a whole disk. The rule
//! `largest-internal` takes only non-removable, non-USB disks and refuses a tie, so forty
//! laptops cannot install onto the stick they boot from. Symbolic names
//! (`/dev/disk/by-id/...`) are resolved by the caller before choosing.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::answers::DiskChoice;

/// `lsblk` arguments whose output [`parse_lsblk`] reads: a flat list, each device naming
/// its parent (`PKNAME`). Without a NAME column lsblk prints no tree anyway (util-linux
/// 2.38 in the install-unattended scenario): asking for the list says what is read.
pub const LSBLK_ARGS: &[&str] = &[
    "--json",
    "--bytes",
    "--list",
    "--output",
    "PATH,KNAME,PKNAME,SIZE,TYPE,RM,TRAN,MODEL,RO,MOUNTPOINTS,LABEL,PARTLABEL,FSTYPE,PARTTYPE,UUID",
];

/// The smallest disk KOOMPI OS installs on: the base system, room for its snapshots and a
/// user's files.
pub const MIN_DISK_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// The smallest partition KOOMPI OS installs into (the whole-disk minimum without the
/// boot partitions).
pub const MIN_ROOT_BYTES: u64 = MIN_DISK_BYTES - (514 << 20);

/// Why KOOMPI OS cannot go into partition `p` (beside the disk's other partitions), in a
/// few words; `None` when it can. The plan checks the same, with the whole sentence.
pub fn root_partition_refusal(p: &Part) -> Option<String> {
    let esp = p
        .parttype
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(crate::plan::ESP_GUID));
    if esp {
        Some("EFI system partition".into())
    } else if p
        .mountpoints
        .iter()
        .any(|m| !m.starts_with(INSTALLER_MOUNTS))
    {
        Some("in use".into())
    } else if p.size < MIN_ROOT_BYTES {
        Some(format!("too small, needs {}", human_size(MIN_ROOT_BYTES)))
    } else {
        None
    }
}

/// The label of the partition that carries a fleet's answer file: its filesystem label or
/// its GPT partition name.
pub const ANSWER_LABEL: &str = "KOOMPI-INSTALL";
/// [`ANSWER_LABEL`] cut to the 11 characters a FAT or exFAT label holds: what a USB stick
/// formatted on any computer can carry (docs/decisions.md 24).
pub const ANSWER_LABEL_FAT: &str = "KOOMPI-INST";

/// Whether `label` names a fleet's answer partition ([`ANSWER_LABEL`] or
/// [`ANSWER_LABEL_FAT`], in any case: FAT tools upper-case labels, others keep them).
pub fn is_answer_label(label: &str) -> bool {
    label.eq_ignore_ascii_case(ANSWER_LABEL) || label.eq_ignore_ascii_case(ANSWER_LABEL_FAT)
}

/// One whole disk (or loop device) and what is on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub path: String,
    pub size: u64,
    /// `disk`, `loop`, `rom`, ...
    pub kind: String,
    pub model: Option<String>,
    pub removable: bool,
    /// `usb`, `sata`, `nvme`, ... when the kernel knows it.
    pub transport: Option<String>,
    pub read_only: bool,
    /// Where the disk or any of its partitions is mounted (swap shows as `[SWAP]`).
    pub mountpoints: Vec<String>,
    /// The filesystem labels on the disk and its partitions.
    pub labels: Vec<String>,
    /// Its partitions (and what sits on them), with their filesystem labels.
    pub partitions: Vec<Part>,
}

/// A partition (or a mapping on one, or a disk formatted whole) and what is on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Part {
    pub path: String,
    /// The filesystem label.
    pub label: Option<String>,
    /// The GPT partition name.
    pub partlabel: Option<String>,
    /// What it holds (`vfat`, `btrfs`, `crypto_LUKS`, `ntfs`, ...), when known.
    pub fstype: Option<String>,
    /// The partition type (a GPT type GUID, lower case, or an MBR type like `0xc`).
    pub parttype: Option<String>,
    /// The filesystem's UUID (a FAT volume id looks like `ABCD-1234`).
    pub uuid: Option<String>,
    pub size: u64,
    /// Where it is mounted.
    pub mountpoints: Vec<String>,
}

/// The first of `mounts` that is not one of the installer's own ([`INSTALLER_MOUNTS`]): an
/// interrupted try's mounts never make a disk or a partition "in use".
pub fn foreign_mount(mounts: &[String]) -> Option<&String> {
    mounts.iter().find(|m| !m.starts_with(INSTALLER_MOUNTS))
}

impl Part {
    /// Whether its partition type is `guid` (any case).
    pub fn is_type(&self, guid: &str) -> bool {
        self.parttype
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(guid))
    }

    /// Whether it carries a fleet's answer file ([`is_answer_label`]).
    pub fn is_answers(&self) -> bool {
        [&self.label, &self.partlabel]
            .into_iter()
            .flatten()
            .any(|l| is_answer_label(l))
    }
}

impl Disk {
    /// "/dev/vda, 20 GiB, QEMU HARDDISK" for messages and menus.
    pub fn describe(&self) -> String {
        let mut s = format!("{}, {}", self.path, human_size(self.size));
        if let Some(m) = &self.model {
            s.push_str(", ");
            s.push_str(m);
        }
        if self.removable || self.transport.as_deref() == Some("usb") {
            s.push_str(" (removable)");
        }
        s
    }

    /// True when this disk holds the live system or the answer file (`live_label`: the
    /// ISO's filesystem label, `archisolabel=` on the kernel command line).
    pub fn is_boot_medium(&self, live_label: Option<&str>) -> bool {
        self.labels.iter().any(|l| Some(l.as_str()) == live_label)
            || self.partitions.iter().any(Part::is_answers)
            || self
                .mountpoints
                .iter()
                .any(|m| m.starts_with("/run/archiso"))
    }

    fn internal(&self) -> bool {
        !self.removable && self.transport.as_deref() != Some("usb") && self.kind == "disk"
    }
}

/// `1.5 GiB`, `20 GiB`, `512 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, UNITS[unit])
    } else {
        format!("{:.1} {}", v, UNITS[unit])
    }
}

/// Why `lsblk`'s output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read lsblk's output: {0}")]
pub struct LsblkError(String);

/// The whole disks in `lsblk --json --bytes` output ([`LSBLK_ARGS`]), with what their
/// partitions hold. Reads the flat list (a partition, a LUKS mapping on it, ... folded
/// into the disk its `pkname` chain leads to) and the tree of older versions (`children`),
/// and the older spellings (numbers and booleans as strings, `mountpoint` instead of
/// `mountpoints`).
pub fn parse_lsblk(json: &str) -> Result<Vec<Disk>, LsblkError> {
    let v: Value = serde_json::from_str(json).map_err(|e| LsblkError(e.to_string()))?;
    let devices = v
        .get("blockdevices")
        .and_then(Value::as_array)
        .ok_or_else(|| LsblkError("no `blockdevices` list".into()))?;
    let parent = |d: &Value| text(d, "pkname").filter(|p| !p.is_empty());
    // kernel name -> parent's kernel name
    let parents: std::collections::HashMap<String, String> = devices
        .iter()
        .filter_map(|d| Some((text(d, "kname")?, parent(d)?)))
        .collect();
    let mut disks = Vec::new();
    let mut knames = Vec::new();
    for d in devices.iter().filter(|d| parent(d).is_none()) {
        let path = text(d, "path").ok_or_else(|| LsblkError("a device without `path`".into()))?;
        let kind = text(d, "type").unwrap_or_default();
        if kind == "part" {
            continue;
        }
        let mut disk = Disk {
            path,
            size: number(d, "size").unwrap_or(0),
            kind,
            model: text(d, "model")
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty()),
            removable: flag(d, "rm"),
            transport: text(d, "tran"),
            read_only: flag(d, "ro"),
            mountpoints: Vec::new(),
            labels: Vec::new(),
            partitions: Vec::new(),
        };
        // A stick formatted whole, without a partition table, is its own "partition".
        if text(d, "label").is_some() || text(d, "fstype").is_some() {
            let mut whole = part_of(d, disk.path.clone());
            whole.partlabel = None;
            disk.partitions.push(whole);
        }
        collect(d, &mut disk);
        disks.push(disk);
        knames.push(text(d, "kname"));
    }
    for d in devices {
        let Some(mut up) = parent(d) else {
            continue;
        };
        // Up the chain (a mapping on a partition on a disk), never round a loop.
        for _ in 0..devices.len() {
            match parents.get(&up) {
                Some(next) => up = next.clone(),
                None => break,
            }
        }
        let Some(i) = knames
            .iter()
            .position(|k| k.as_deref() == Some(up.as_str()))
        else {
            continue;
        };
        if let Some(path) = text(d, "path") {
            disks[i].partitions.push(part_of(d, path));
        }
        collect(d, &mut disks[i]);
    }
    Ok(disks)
}

/// Adds the mount points and labels of `d` and everything below it (partitions, LUKS
/// mappings) to `disk`.
fn collect(d: &Value, disk: &mut Disk) {
    disk.mountpoints.append(&mut mounts_of(d));
    if let Some(l) = text(d, "label") {
        disk.labels.push(l);
    }
    if let Some(children) = d.get("children").and_then(Value::as_array) {
        for c in children {
            if let Some(path) = text(c, "path") {
                disk.partitions.push(part_of(c, path));
            }
            collect(c, disk);
        }
    }
}

/// The partition `d` describes (its own mounts only).
fn part_of(d: &Value, path: String) -> Part {
    Part {
        path,
        label: text(d, "label"),
        partlabel: text(d, "partlabel"),
        fstype: text(d, "fstype"),
        parttype: text(d, "parttype").map(|t| t.to_ascii_lowercase()),
        uuid: text(d, "uuid"),
        size: number(d, "size").unwrap_or(0),
        mountpoints: mounts_of(d),
    }
}

/// The mount points of `d` itself.
fn mounts_of(d: &Value) -> Vec<String> {
    match d.get("mountpoints") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|m| m.as_str().map(String::from))
            .collect(),
        _ => text(d, "mountpoint").into_iter().collect(),
    }
}

fn text(d: &Value, key: &str) -> Option<String> {
    d.get(key).and_then(Value::as_str).map(String::from)
}

fn number(d: &Value, key: &str) -> Option<u64> {
    match d.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn flag(d: &Value, key: &str) -> bool {
    match d.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "1" || s == "true",
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    }
}

/// Why a disk cannot be installed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{path} is not a disk of this machine; the disks here: {here}")]
    NotFound { path: String, here: String },
    #[error("{path} is not a partition of this machine's disks; the disks here: {here}")]
    NoSuchPartition { path: String, here: String },
    #[error("{path} is a {kind}, not a whole disk; name the disk it belongs to")]
    NotADisk { path: String, kind: String },
    #[error("{path} is in use (mounted at {at}); unmount it first, or choose another disk")]
    Mounted { path: String, at: String },
    #[error("{path} holds the running live system or the answer file; choose another disk")]
    BootMedium { path: String },
    #[error("{path} is read-only")]
    ReadOnly { path: String },
    #[error("{path} is too small: {size}; KOOMPI OS needs at least {needed}")]
    TooSmall {
        path: String,
        size: String,
        needed: String,
    },
    #[error("no disk fits the rule `largest-internal` (internal, not in use, at least {needed}); the disks here: {here}")]
    NoCandidate { needed: String, here: String },
    #[error(
        "the rule `largest-internal` matches {a} and {b}, equally large; name the disk instead"
    )]
    Tie { a: String, b: String },
}

/// The disks one could mean (no zram, nothing empty), described with why each is out,
/// for messages.
fn list(disks: &[Disk], live_label: Option<&str>) -> String {
    let shown: Vec<String> = disks
        .iter()
        .filter(|d| d.size > 0 && !d.path.starts_with("/dev/zram"))
        .map(|d| {
            let why = match vet(d, live_label) {
                Ok(()) if d.internal() => "",
                Ok(()) if d.kind == "loop" => " [loop device]",
                Ok(()) => " [removable]",
                Err(Refusal::BootMedium { .. }) => " [boot medium]",
                Err(Refusal::Mounted { .. }) => " [in use]",
                Err(Refusal::TooSmall { .. }) => " [too small]",
                Err(Refusal::ReadOnly { .. }) => " [read-only]",
                Err(_) => " [not a disk]",
            };
            format!("{}{why}", d.describe())
        })
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join("; ")
    }
}

/// Why `disk` cannot take an install, if it cannot.
pub fn vet(disk: &Disk, live_label: Option<&str>) -> Result<(), Refusal> {
    let path = disk.path.clone();
    if disk.kind != "disk" && disk.kind != "loop" {
        return Err(Refusal::NotADisk {
            path,
            kind: disk.kind.clone(),
        });
    }
    if disk.is_boot_medium(live_label) {
        return Err(Refusal::BootMedium { path });
    }
    // The installer's own mounts (an interrupted try) are no reason to refuse: a re-run
    // resumes with them, or its first step unmounts them.
    if let Some(at) = foreign_mount(&disk.mountpoints) {
        return Err(Refusal::Mounted {
            path,
            at: at.clone(),
        });
    }
    if disk.read_only {
        return Err(Refusal::ReadOnly { path });
    }
    if disk.size < MIN_DISK_BYTES {
        return Err(Refusal::TooSmall {
            path,
            size: human_size(disk.size),
            needed: human_size(MIN_DISK_BYTES),
        });
    }
    Ok(())
}

/// Where koompi-install mounts the disk it installs on (the target, its top level).
pub const INSTALLER_MOUNTS: &str = "/run/koompi-install/";

/// The disk to install on for `choice`, or why there is none.
pub fn choose<'a>(
    choice: &DiskChoice,
    disks: &'a [Disk],
    live_label: Option<&str>,
) -> Result<&'a Disk, Refusal> {
    match choice {
        DiskChoice::Path(p) => {
            let disk = disks
                .iter()
                .find(|d| &d.path == p)
                .ok_or_else(|| Refusal::NotFound {
                    path: p.clone(),
                    here: list(disks, live_label),
                })?;
            vet(disk, live_label)?;
            Ok(disk)
        }
        DiskChoice::LargestInternal => {
            let mut fit: Vec<&Disk> = disks
                .iter()
                .filter(|d| d.internal() && vet(d, live_label).is_ok())
                .collect();
            fit.sort_by_key(|d| std::cmp::Reverse(d.size));
            match fit.as_slice() {
                [] => Err(Refusal::NoCandidate {
                    needed: human_size(MIN_DISK_BYTES),
                    here: list(disks, live_label),
                }),
                [a, b, ..] if a.size == b.size => Err(Refusal::Tie {
                    a: a.describe(),
                    b: b.describe(),
                }),
                [a, ..] => Ok(a),
            }
        }
    }
}

/// The disk holding `partition`, for an install into it that keeps the other partitions:
/// refused when it is the boot medium or read-only. Its other partitions may be in use;
/// the plan checks the ones the install uses.
pub fn disk_of_partition<'a>(
    partition: &str,
    disks: &'a [Disk],
    live_label: Option<&str>,
) -> Result<&'a Disk, Refusal> {
    let disk = disks
        .iter()
        .find(|d| {
            d.partitions
                .iter()
                .any(|p| p.path == partition && p.path != d.path)
        })
        .ok_or_else(|| Refusal::NoSuchPartition {
            path: partition.to_string(),
            here: list(disks, live_label),
        })?;
    if disk.is_boot_medium(live_label) {
        return Err(Refusal::BootMedium {
            path: disk.path.clone(),
        });
    }
    if disk.read_only {
        return Err(Refusal::ReadOnly {
            path: disk.path.clone(),
        });
    }
    Ok(disk)
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `lsblk` 2.38 prints for [`LSBLK_ARGS`] on a QEMU guest booted from a KOOMPI
    /// medium, with a USB stick holding an answer file (mounted), an old system on the
    /// second disk (its LUKS mapping open, nothing mounted).
    const LSBLK: &str = r#"{
       "blockdevices": [
          {"path":"/dev/sda", "kname":"sda", "pkname":null, "size":8053063680, "type":"disk", "rm":true, "tran":"usb", "model":"Cruzer Blade", "ro":false, "mountpoints":[null], "label":null, "partlabel":null},
          {"path":"/dev/sda1", "kname":"sda1", "pkname":"sda", "size":8052015104, "type":"part", "rm":true, "tran":null, "model":null, "ro":false, "mountpoints":["/run/koompi-answers"], "label":"KOOMPI-INSTALL", "partlabel":null},
          {"path":"/dev/sr0", "kname":"sr0", "pkname":null, "size":1258291200, "type":"rom", "rm":true, "tran":"sata", "model":"QEMU DVD-ROM", "ro":false, "mountpoints":["/run/archiso/bootmnt"], "label":"KOOMPI_202612", "partlabel":null},
          {"path":"/dev/vda", "kname":"vda", "pkname":null, "size":34359738368, "type":"disk", "rm":false, "tran":null, "model":null, "ro":false, "mountpoints":[null], "label":null, "partlabel":null},
          {"path":"/dev/vdb", "kname":"vdb", "pkname":null, "size":17179869184, "type":"disk", "rm":false, "tran":null, "model":null, "ro":false, "mountpoints":[null], "label":null, "partlabel":null},
          {"path":"/dev/vdb1", "kname":"vdb1", "pkname":"vdb", "size":17178820096, "type":"part", "rm":false, "tran":null, "model":null, "ro":false, "mountpoints":[null], "label":null, "partlabel":"old-root"},
          {"path":"/dev/mapper/old", "kname":"dm-0", "pkname":"vdb1", "size":17162043392, "type":"crypt", "rm":false, "tran":null, "model":null, "ro":false, "mountpoints":[null], "label":"old-home", "partlabel":null},
          {"path":"/dev/zram0", "kname":"zram0", "pkname":null, "size":1073741824, "type":"disk", "rm":false, "tran":null, "model":null, "ro":false, "mountpoints":["[SWAP]"], "label":null, "partlabel":null}
       ]
    }"#;

    fn disks() -> Vec<Disk> {
        parse_lsblk(LSBLK).expect("parses")
    }

    #[test]
    fn lsblk_is_read_with_partitions_folded_in() {
        let d = disks();
        assert_eq!(d.len(), 5);
        assert_eq!(d[0].labels, ["KOOMPI-INSTALL"]);
        assert_eq!(
            d[0].partitions,
            [Part {
                path: "/dev/sda1".into(),
                label: Some("KOOMPI-INSTALL".into()),
                size: 8052015104,
                mountpoints: vec!["/run/koompi-answers".into()],
                ..Part::default()
            }]
        );
        // The ISO is formatted whole: it is its own partition.
        assert_eq!(d[1].partitions[0].path, "/dev/sr0");
        assert_eq!(d[0].mountpoints, ["/run/koompi-answers"]);
        // A mapping on a partition belongs to the disk at the end of the chain.
        assert_eq!(d[3].path, "/dev/vdb");
        assert!(d[3].mountpoints.is_empty());
        assert_eq!(d[3].labels, ["old-home"]);
        assert_eq!(d[3].partitions.len(), 2);
        assert!(d[0].removable);
        assert_eq!(d[2].describe(), "/dev/vda, 32 GiB");
        assert_eq!(
            d[0].describe(),
            "/dev/sda, 7.5 GiB, Cruzer Blade (removable)"
        );
    }

    #[test]
    fn an_answer_partition_is_known_by_any_of_its_labels() {
        let part = |label: Option<&str>, partlabel: Option<&str>| Part {
            path: "/dev/sdb1".into(),
            label: label.map(String::from),
            partlabel: partlabel.map(String::from),
            ..Part::default()
        };
        assert!(part(Some("KOOMPI-INSTALL"), None).is_answers());
        assert!(part(Some("KOOMPI-INST"), None).is_answers());
        assert!(part(Some("koompi-inst"), None).is_answers());
        assert!(part(Some("DATA"), Some("KOOMPI-INSTALL")).is_answers());
        assert!(!part(Some("KOOMPI"), None).is_answers());
        assert!(!part(Some("KOOMPI-INSTALLER"), None).is_answers());
        assert!(!part(None, None).is_answers());
    }

    /// The tree older versions print: the same disks.
    #[test]
    fn the_tree_of_older_lsblk_is_read() {
        let tree = r#"{"blockdevices":[
          {"path":"/dev/sda", "size":8053063680, "type":"disk", "rm":true, "tran":"usb", "children":[
            {"path":"/dev/sda1", "size":1, "type":"part", "mountpoints":["/run/koompi-answers"], "label":"KOOMPI-INSTALL"}]},
          {"path":"/dev/vdb", "size":17179869184, "type":"disk", "rm":false, "children":[
            {"path":"/dev/vdb1", "size":1, "type":"part", "children":[
              {"path":"/dev/mapper/old", "size":1, "type":"crypt", "mountpoints":["/mnt/old"], "label":"old-home"}]}]}]}"#;
        let d = parse_lsblk(tree).expect("parses");
        assert_eq!(d.len(), 2);
        assert!(d[0].is_boot_medium(None));
        assert_eq!(d[1].mountpoints, ["/mnt/old"]);
        assert_eq!(d[1].partitions.len(), 2);
    }

    #[test]
    fn older_lsblk_spellings_are_read() {
        let old = r#"{"blockdevices":[{"path":"/dev/sdb","size":"17179869184","type":"disk","rm":"0","tran":"sata","model":"X ","ro":"0","mountpoint":"/mnt","label":null}]}"#;
        let d = parse_lsblk(old).expect("parses");
        assert_eq!(d[0].size, 17_179_869_184);
        assert!(!d[0].removable);
        assert_eq!(d[0].mountpoints, ["/mnt"]);
        assert_eq!(d[0].model.as_deref(), Some("X"));
    }

    #[test]
    fn garbage_is_one_line() {
        let e = parse_lsblk("lsblk: unknown column").expect_err("garbage");
        assert!(e.to_string().starts_with("cannot read lsblk's output: "));
        assert!(parse_lsblk("{}").is_err());
    }

    #[test]
    fn the_largest_internal_disk_is_chosen() {
        let d = disks();
        let c = choose(&DiskChoice::LargestInternal, &d, Some("KOOMPI_202612")).expect("one");
        assert_eq!(c.path, "/dev/vda");
    }

    #[test]
    fn a_tie_is_refused() {
        let mut d = disks();
        d[3].size = d[2].size;
        let e = choose(&DiskChoice::LargestInternal, &d, None).expect_err("tie");
        assert!(matches!(e, Refusal::Tie { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("/dev/vda, 32 GiB and /dev/vdb, 32 GiB"),
            "{e}"
        );
    }

    #[test]
    fn no_internal_disk_is_refused_with_the_list() {
        let d: Vec<Disk> = disks().into_iter().filter(|d| d.removable).collect();
        let e = choose(&DiskChoice::LargestInternal, &d, None).expect_err("none");
        assert!(
            e.to_string().contains(
                "the disks here: /dev/sda, 7.5 GiB, Cruzer Blade (removable) [boot medium]"
            ),
            "{e}"
        );
    }

    #[test]
    fn named_disks_are_vetted() {
        let d = disks();
        let by = |p: &str| choose(&DiskChoice::Path(p.into()), &d, Some("KOOMPI_202612"));
        assert_eq!(
            by("/dev/vdb").expect("old partitions are fine").path,
            "/dev/vdb"
        );
        assert!(matches!(by("/dev/sda"), Err(Refusal::BootMedium { .. })));
        assert!(matches!(by("/dev/sr0"), Err(Refusal::NotADisk { .. })));
        assert!(matches!(by("/dev/zram0"), Err(Refusal::Mounted { .. })));
        // What an interrupted install left mounted does not make the disk foreign.
        let mut left = d.clone();
        let at = left.iter().position(|x| x.path == "/dev/vdb").expect("vdb");
        left[at].mountpoints = vec![
            "/run/koompi-install/target".into(),
            "/run/koompi-install/target/home".into(),
        ];
        assert!(choose(&DiskChoice::Path("/dev/vdb".into()), &left, None).is_ok());
        left[at].mountpoints.push("/mnt".into());
        assert!(matches!(
            choose(&DiskChoice::Path("/dev/vdb".into()), &left, None),
            Err(Refusal::Mounted { at, .. }) if at == "/mnt"
        ));
        let e = by("/dev/nvme0n1").expect_err("absent");
        assert!(e
            .to_string()
            .starts_with("/dev/nvme0n1 is not a disk of this machine"));
    }

    #[test]
    fn small_and_read_only_disks_are_refused() {
        let mut d = disks();
        d[3].size = 4 * 1024 * 1024 * 1024;
        let e = choose(&DiskChoice::Path("/dev/vdb".into()), &d, None).expect_err("small");
        assert_eq!(
            e.to_string(),
            "/dev/vdb is too small: 4 GiB; KOOMPI OS needs at least 8 GiB"
        );
        d[2].read_only = true;
        assert!(matches!(
            choose(&DiskChoice::Path("/dev/vda".into()), &d, None),
            Err(Refusal::ReadOnly { .. })
        ));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512 * 1024 * 1024), "512 MiB");
        assert_eq!(human_size(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(human_size(100), "100 B");
    }
}
