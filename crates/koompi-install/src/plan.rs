//! The install plan: pure data, decided before anything is written.
//!
//! [`plan`] turns the [`Answers`] and the [`Facts`] found on the machine into a [`Plan`]:
//! ordered [`Step`]s of [`Action`]s, every partition, format, mount, copy, file and
//! command. `--dry-run` prints it ([`Plan::describe`] in words, or JSON), the executor runs
//! it step by step and journals each step's id, so a re-run resumes where one stopped.
//!
//! The filesystem identifiers are chosen here (in [`Facts::ids`]) and handed to the
//! formatting programs, so the files that name them (fstab, crypttab, GRUB's command
//! line) are known in the plan too. Secrets never appear: a password or passphrase is an
//! [`Secret`] naming the file it is read from.
//!
//! The order follows coreos-installer's rule that a failure must leave nothing
//! half-usable: the old signatures are wiped first (neither the old system nor a half-made
//! one will boot), the bootloader's files and the factory snapshot are made while the
//! disk cannot boot yet, and only the last step writes the boot sector and the firmware's
//! fallback loader, which make the disk bootable.

use serde::Serialize;

use crate::answers::{Answers, Finish, Source};
use crate::disks::Disk;

/// Where the target is mounted while it is installed.
pub const TARGET: &str = "/run/koompi-install/target";
/// Where the Btrfs top level is mounted while the subvolumes are made.
pub const TOP: &str = "/run/koompi-install/top";
/// The journal's copy on the target disk (in `@var_log`, outside every snapshot), kept
/// from the moment the new system is mounted until the last step: what a re-run after a
/// power cut resumes from, when the live system's own journal is gone.
pub const TARGET_JOURNAL: &str = "/run/koompi-install/target/var/log/koompi-install.journal";
/// The directory of [`TARGET_JOURNAL`], a mount point while the target is mounted.
pub const TARGET_VAR_LOG: &str = "/run/koompi-install/target/var/log";
/// Where [`TARGET_JOURNAL`]'s subvolume is looked at read-only, to find a journal.
pub const PEEK: &str = "/run/koompi-install/peek";
/// The device-mapper name of the opened LUKS container.
pub const LUKS_NAME: &str = "koompi-root";
/// The Btrfs subvolumes and where they are mounted (DESIGN.md, "Disk layout").
pub const SUBVOLUMES: &[(&str, &str)] = &[
    ("@", "/"),
    ("@home", "/home"),
    ("@snapshots", "/.snapshots"),
    ("@var_log", "/var/log"),
];
/// Mount options of every subvolume.
pub const BTRFS_OPTIONS: &str = "noatime,compress=zstd:1";
/// The key file inside the initramfs that opens the root after GRUB asked once.
pub const KEY_FILE: &str = "/etc/cryptsetup-keys.d/koompi-root.key";
/// The filesystem labels.
pub const ROOT_LABEL: &str = "koompi";
pub const ESP_LABEL: &str = "KOOMPI-ESP";

/// The live system's files that must not reach an installed system (docs/decisions.md
/// 11; FACTS.md: mkarchiso's leftovers). Removed from the copy of the live root.
pub const LIVE_ONLY: &[&str] = &[
    "/etc/sysusers.d/koompi-live.conf",
    "/etc/mkinitcpio.conf.d/archiso.conf",
    "/etc/systemd/system/etc-pacman.d-gnupg.mount",
    "/etc/systemd/system/pacman-init.service",
    "/etc/systemd/system/multi-user.target.wants/pacman-init.service",
    "/etc/systemd/system/getty@tty1.service.d",
    "/etc/systemd/system/serial-getty@.service.d",
    "/etc/systemd/system/koompi-boot-deadline.service.d/koompi-live.conf",
    "/etc/systemd/system/koompi-boot-deadline.timer.d/koompi-live.conf",
    "/etc/systemd/system/koompi-boot-success.service.d/koompi-live.conf",
    "/etc/systemd/system/koompi-boot-watchdog.service.d/koompi-live.conf",
    "/etc/systemd/system/koompi-snapshot-daily.timer.d/koompi-live.conf",
    "/etc/pacman.d/hooks/uncomment-mirrors.hook",
    // The fleet install at boot: an installed system never installs itself again.
    "/etc/systemd/system/multi-user.target.wants/koompi-install-fleet.service",
    "/etc/systemd/system/dev-disk-by\\x2dlabel-KOOMPI\\x2dINSTALL.device.wants",
    "/etc/systemd/system/dev-disk-by\\x2dlabel-KOOMPI\\x2dINST.device.wants",
    "/etc/systemd/system/dev-disk-by\\x2dpartlabel-KOOMPI\\x2dINSTALL.device.wants",
];

/// The lines around koompi-install's block in a file it edits ([`Action::SetBlock`]).
pub const BLOCK_BEGIN: &str = "# >>> koompi-install";
pub const BLOCK_END: &str = "# <<< koompi-install";

/// The stock mkinitcpio preset of `linux-lts`, which the live medium's own preset
/// replaced (iso/airootfs/etc/mkinitcpio.d/linux-lts.preset).
pub const LINUX_LTS_PRESET: &str = "\
# mkinitcpio preset file for the 'linux-lts' package (written by koompi-install)

ALL_kver=\"/boot/vmlinuz-linux-lts\"

PRESETS=('default' 'fallback')

default_image=\"/boot/initramfs-linux-lts.img\"

fallback_image=\"/boot/initramfs-linux-lts-fallback.img\"
fallback_options=\"-S autodetect\"
";

/// The install's log, on the live system and then on the new one.
pub const LOG: &str = "/var/log/koompi-install.log";

/// The user name of the live session, removed from an offline copy.
pub const LIVE_USER: &str = "koompi";

/// The packages of an online install (pacstrap), before the CPU's microcode.
pub const BASE_PACKAGES: &[&str] = &[
    "base",
    "linux-lts",
    "linux-firmware",
    "btrfs-progs",
    "grub",
    "efibootmgr",
    "cryptsetup",
    "networkmanager",
    "snapper",
    "sudo",
    "zram-generator",
    "koompi-tools",
    "koompi-branding",
    "koompi-configs",
];

/// The kernel the images carry (`linux-lts`, iso/packages.x86_64).
pub const KERNEL: &str = "vmlinuz-linux-lts";

/// The CPU's maker, for its microcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cpu {
    Intel,
    Amd,
    Other,
}

impl Cpu {
    /// From /proc/cpuinfo's `vendor_id`.
    pub fn from_cpuinfo(cpuinfo: &str) -> Cpu {
        let vendor = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("vendor_id"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim());
        match vendor {
            Some("GenuineIntel") => Cpu::Intel,
            Some("AuthenticAMD") => Cpu::Amd,
            _ => Cpu::Other,
        }
    }

    /// The microcode package and its image in /boot.
    pub fn microcode(self) -> Option<(&'static str, &'static str)> {
        match self {
            Cpu::Intel => Some(("intel-ucode", "intel-ucode.img")),
            Cpu::Amd => Some(("amd-ucode", "amd-ucode.img")),
            Cpu::Other => None,
        }
    }
}

/// The live system's root image and boot files (an offline install's source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveImage {
    /// The squashfs root image (`.../koompi/x86_64/airootfs.sfs`).
    pub root_image: String,
    /// The kernel beside it (`.../koompi/boot/x86_64/vmlinuz-linux-lts`): mkarchiso
    /// empties the root image's /boot, so the installed system's kernel comes from here.
    pub kernel: String,
    /// The early microcode images on the medium (`.../koompi/boot/intel-ucode.img`).
    pub microcode: Vec<String>,
}

/// The program that builds the installed system's initramfs, found in the live system
/// (the copy's source). KOOMPI OS has mkinitcpio; the VM rig's Debian userland, which
/// stands in for Arch there, has initramfs-tools (docs/decisions.md 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Initramfs {
    Mkinitcpio,
    InitramfsTools,
}

/// Identifiers chosen before formatting, so the plan can name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Ids {
    /// The Btrfs filesystem's UUID.
    pub root_uuid: String,
    /// The LUKS container's UUID (used when encrypting).
    pub luks_uuid: String,
    /// The FAT volume id of the ESP, 8 hex digits (shown as `ABCD-1234`).
    pub esp_id: String,
}

impl Ids {
    /// The ESP's UUID as blkid and fstab show it (`ABCD-1234`).
    pub fn esp_uuid(&self) -> String {
        let up = self.esp_id.to_ascii_uppercase();
        format!("{}-{}", &up[..4.min(up.len())], &up[4.min(up.len())..])
    }
}

/// What was found on the machine; the plan's other input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub disk: Disk,
    /// The live system's image, when running from one.
    pub live: Option<LiveImage>,
    /// Whether the GRUB that will be installed opens Argon2 key slots (GRUB 2.14 and
    /// later); otherwise the LUKS key slot uses PBKDF2.
    pub grub_argon2: bool,
    pub cpu: Cpu,
    /// Booted by UEFI firmware (then a boot entry is added to its NVRAM too).
    pub uefi: bool,
    /// What builds the initramfs of the installed system.
    pub initramfs: Initramfs,
    /// Today, `YYYYMMDD`, for the factory snapshot's name.
    pub date: String,
    pub ids: Ids,
}

/// A secret, named by where it is read from; its value is never in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "secret", content = "file")]
pub enum Secret {
    /// The user's password, from this file (`-`: standard input).
    Password(String),
    /// The encryption passphrase, from this file (`-`: standard input).
    Passphrase(String),
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, file) = match self {
            Secret::Password(p) => ("the password", p),
            Secret::Passphrase(p) => ("the passphrase", p),
        };
        if file == "-" {
            write!(f, "{what} from standard input")
        } else {
            write!(f, "{what} from {file}")
        }
    }
}

/// One GPT partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub number: u32,
    pub device: String,
    /// The GPT partition name.
    pub name: String,
    pub type_guid: String,
    pub start_mib: u64,
    /// `None`: the rest of the disk.
    pub size_mib: Option<u64>,
}

/// GPT type GUIDs.
pub const BIOS_BOOT_GUID: &str = "21686148-6449-6E6F-744E-656564454649";
pub const ESP_GUID: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const LINUX_GUID: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// What one step does; each is one program or one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Erase every filesystem, RAID and partition-table signature on the disk and its
    /// partitions (`wipefs --all`), so nothing old boots or mounts.
    Wipe { device: String },
    /// Write a GPT with these partitions (`sfdisk`, script from [`sfdisk_script`]).
    Partition {
        device: String,
        partitions: Vec<Partition>,
    },
    /// `mkfs.fat -F 32` with the plan's volume id.
    FormatFat {
        device: String,
        label: String,
        volume_id: String,
    },
    /// `cryptsetup luksFormat --type luks2` with the plan's UUID.
    LuksFormat {
        device: String,
        uuid: String,
        pbkdf: String,
        passphrase: Secret,
    },
    /// `cryptsetup open` as `name`.
    LuksOpen {
        device: String,
        name: String,
        passphrase: Secret,
    },
    /// A random key file, added to the container's key slots with the passphrase.
    LuksKeyFile {
        device: String,
        path: String,
        passphrase: Secret,
    },
    /// `mkfs.btrfs` with the plan's UUID.
    FormatBtrfs {
        device: String,
        label: String,
        uuid: String,
    },
    /// `btrfs subvolume create` in the mounted top level.
    Subvolume { path: String },
    /// Create the directory and mount `device` there.
    Mount {
        device: String,
        path: String,
        options: String,
    },
    /// Unmount everything under `path`, deepest first.
    Unmount { path: String },
    /// Close the LUKS container.
    LuksClose { name: String },
    /// Unpack the live root image into the target (`unsquashfs`).
    CopyImage { image: String, to: String },
    /// Copy one file.
    CopyFile { from: String, to: String },
    /// `pacstrap` these packages into the target.
    Pacstrap { to: String, packages: Vec<String> },
    /// Remove a path of the target if it is there (files, links, directories).
    Remove { path: String },
    /// Write a file of the target (whole, atomically).
    WriteFile {
        path: String,
        mode: u32,
        content: String,
    },
    /// A symbolic link in the target.
    Link { path: String, to: String },
    /// koompi-install's block at the end of a shell-style file of the target (between
    /// [`BLOCK_BEGIN`] and [`BLOCK_END`]), replaced if there and appended if not; the rest
    /// of the file stays as the system shipped it.
    SetBlock { path: String, block: String },
    /// A random key file of the target (0400), unless one is there already.
    KeyFile { path: String },
    /// Run a program inside the target (`arch-chroot`-style: the API filesystems bound).
    InTarget { argv: Vec<String> },
    /// Set the user's password inside the target (`chpasswd`, from the secret's file).
    SetPassword { user: String, password: Secret },
}

/// One journaled step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable name, written to the journal.
    pub id: &'static str,
    /// What it does, in words.
    pub title: String,
    /// A failing optional step is reported and skipped; a required one stops the install.
    pub optional: bool,
    pub actions: Vec<Action>,
}

/// The whole install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub disk: String,
    pub disk_description: String,
    /// The partition installed into when the disk's other partitions are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_partition: Option<String>,
    pub source: Source,
    pub encrypt: bool,
    pub hostname: String,
    pub user: Option<String>,
    pub finish: Finish,
    pub steps: Vec<Step>,
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("`source`: offline needs the live system's root image, and this is not a live system; use `--source online`")]
    NoLiveImage,
    #[error("`{key}`: {part} is not a partition of {disk}")]
    NotOnDisk {
        key: &'static str,
        part: String,
        disk: String,
    },
    #[error("`root-partition`: {part} is too small: {size}; KOOMPI OS needs at least {needed}")]
    PartitionTooSmall {
        part: String,
        size: String,
        needed: String,
    },
    #[error("`{key}`: {part} is in use (mounted at {at}); unmount it first")]
    PartitionMounted {
        key: &'static str,
        part: String,
        at: String,
    },
    #[error("`root-partition`: {0} is an EFI system partition; other systems boot from it")]
    RootIsEsp(String),
    #[error("`esp-partition`: {disk} has no EFI system partition; install on the whole disk, or make one")]
    NoEsp { disk: String },
    #[error(
        "`esp-partition`: {disk} has two EFI system partitions ({a} and {b}); name the one to use"
    )]
    TwoEsps { disk: String, a: String, b: String },
    #[error(
        "`esp-partition`: {part} is not an EFI system partition with a FAT filesystem ({what})"
    )]
    NotAnEsp { part: String, what: String },
    #[error("`passphrase-file`: `encrypt` needs a passphrase")]
    NoPassphrase,
    #[error("`password-file`: the user {0} needs a password")]
    NoPassword(String),
}

/// The device path of partition `n` of `disk` (`/dev/sda` 1 → `/dev/sda1`, `/dev/nvme0n1`
/// 1 → `/dev/nvme0n1p1`: a `p` when the disk's name ends in a digit).
pub fn partition_path(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

/// The partitions of DESIGN.md's layout on `disk`.
pub fn layout(disk: &str) -> Vec<Partition> {
    let part = |number, name: &str, type_guid: &str, start_mib, size_mib| Partition {
        number,
        device: partition_path(disk, number),
        name: name.into(),
        type_guid: type_guid.into(),
        start_mib,
        size_mib,
    };
    vec![
        part(1, "bios-boot", BIOS_BOOT_GUID, 1, Some(1)),
        part(2, "esp", ESP_GUID, 2, Some(512)),
        part(3, "koompi-root", LINUX_GUID, 514, None),
    ]
}

/// The sfdisk script that writes `partitions` as a GPT.
pub fn sfdisk_script(partitions: &[Partition]) -> String {
    let mut s = String::from("label: gpt\n");
    for p in partitions {
        s.push_str(&format!("start={}MiB, ", p.start_mib));
        if let Some(size) = p.size_mib {
            s.push_str(&format!("size={size}MiB, "));
        }
        s.push_str(&format!("type={}, name=\"{}\"\n", p.type_guid, p.name));
    }
    s
}

fn t(path: &str) -> String {
    format!("{TARGET}{path}")
}

fn in_target(argv: &[&str]) -> Action {
    Action::InTarget {
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

fn write(path: &str, mode: u32, content: String) -> Action {
    Action::WriteFile {
        path: t(path),
        mode,
        content,
    }
}

fn step(id: &'static str, title: impl Into<String>, actions: Vec<Action>) -> Step {
    Step {
        id,
        title: title.into(),
        optional: false,
        actions,
    }
}

pub use crate::disks::MIN_ROOT_BYTES;

/// An install into partitions that are there already (`root-partition`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Existing {
    root: String,
    esp: String,
    /// The ESP's FAT volume id as fstab names it (`ABCD-1234`).
    esp_uuid: String,
    /// The disk has a BIOS boot partition (GPT), so GRUB can be installed for BIOS too.
    bios_boot: bool,
}

/// The partitions `answers` name on `facts.disk`, checked: the root partition large
/// enough, not in use and not an ESP; the ESP (named, or the disk's only one) an EFI
/// system partition with a FAT filesystem. `None` for a whole-disk install.
fn existing(answers: &Answers, facts: &Facts) -> Result<Option<Existing>, PlanError> {
    let Some(root) = &answers.root_partition else {
        return Ok(None);
    };
    let disk = &facts.disk;
    let parts = &disk.partitions;
    let find = |key: &'static str, path: &str| {
        parts
            .iter()
            .find(|p| p.path == path && p.path != disk.path)
            .ok_or_else(|| PlanError::NotOnDisk {
                key,
                part: path.to_string(),
                disk: disk.path.clone(),
            })
    };
    let in_use = |key: &'static str, p: &crate::disks::Part| match crate::disks::foreign_mount(
        &p.mountpoints,
    ) {
        Some(at) => Err(PlanError::PartitionMounted {
            key,
            part: p.path.clone(),
            at: at.clone(),
        }),
        None => Ok(()),
    };
    let r = find("root-partition", root)?;
    if r.is_type(ESP_GUID) {
        return Err(PlanError::RootIsEsp(root.clone()));
    }
    in_use("root-partition", r)?;
    if r.size < MIN_ROOT_BYTES {
        return Err(PlanError::PartitionTooSmall {
            part: root.clone(),
            size: crate::disks::human_size(r.size),
            needed: crate::disks::human_size(MIN_ROOT_BYTES),
        });
    }
    let esp = match &answers.esp_partition {
        Some(e) => find("esp-partition", e)?,
        None => {
            let mut esps = parts.iter().filter(|p| p.is_type(ESP_GUID));
            match (esps.next(), esps.next()) {
                (Some(a), Some(b)) => {
                    return Err(PlanError::TwoEsps {
                        disk: disk.path.clone(),
                        a: a.path.clone(),
                        b: b.path.clone(),
                    })
                }
                (Some(a), None) => a,
                _ => {
                    return Err(PlanError::NoEsp {
                        disk: disk.path.clone(),
                    })
                }
            }
        }
    };
    let esp_uuid = match (&esp.uuid, esp.fstype.as_deref()) {
        (Some(u), Some("vfat")) if esp.is_type(ESP_GUID) => u.clone(),
        _ => {
            return Err(PlanError::NotAnEsp {
                part: esp.path.clone(),
                what: format!(
                    "type {}, filesystem {}",
                    esp.parttype.as_deref().unwrap_or("unknown"),
                    esp.fstype.as_deref().unwrap_or("none")
                ),
            })
        }
    };
    in_use("esp-partition", esp)?;
    Ok(Some(Existing {
        root: root.clone(),
        esp: esp.path.clone(),
        esp_uuid,
        bios_boot: parts.iter().any(|p| p.is_type(BIOS_BOOT_GUID)),
    }))
}

/// The number of a partition from its path (`/dev/sda5` → 5, `/dev/nvme0n1p2` → 2).
fn partition_number(path: &str) -> String {
    let digits = path.len() - path.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    path[path.len() - digits..].to_string()
}

/// The plan for `answers` on the machine described by `facts`.
pub fn plan(answers: &Answers, facts: &Facts) -> Result<Plan, PlanError> {
    let disk = facts.disk.path.clone();
    let parts = layout(&disk);
    let existing = existing(answers, facts)?;
    let (esp_dev, raw_root) = match &existing {
        Some(e) => (e.esp.clone(), e.root.clone()),
        None => (parts[1].device.clone(), parts[2].device.clone()),
    };
    let ids = &facts.ids;
    let source = match (answers.source, &facts.live) {
        (Some(Source::Offline), None) => return Err(PlanError::NoLiveImage),
        (Some(s), _) => s,
        (None, Some(_)) => Source::Offline,
        (None, None) => Source::Online,
    };
    let passphrase = match (&answers.passphrase_file, answers.encrypt) {
        (Some(f), true) => Some(Secret::Passphrase(f.display().to_string())),
        (None, true) => return Err(PlanError::NoPassphrase),
        _ => None,
    };
    let password = match (&answers.user, &answers.password_file) {
        (Some(_), Some(f)) => Some(Secret::Password(f.display().to_string())),
        (Some(u), None) => return Err(PlanError::NoPassword(u.clone())),
        _ => None,
    };
    let root_dev = if passphrase.is_some() {
        format!("/dev/mapper/{LUKS_NAME}")
    } else {
        raw_root.clone()
    };

    // What an earlier, interrupted try left mounted or open goes first.
    let mut wipe = vec![
        Action::Unmount {
            path: TARGET.into(),
        },
        Action::Unmount { path: TOP.into() },
        Action::LuksClose {
            name: LUKS_NAME.into(),
        },
    ];
    let mut steps = match &existing {
        Some(e) => {
            wipe.push(Action::Wipe {
                device: e.root.clone(),
            });
            vec![step(
                "wipe",
                format!(
                    "Erase the old signatures on {} (the other partitions of {disk} are kept)",
                    e.root
                ),
                wipe,
            )]
        }
        None => {
            wipe.push(Action::Wipe {
                device: disk.clone(),
            });
            vec![
                step("wipe", format!("Erase the old signatures on {disk}"), wipe),
                step(
                    "partition",
                    "Partition: BIOS boot 1 MiB, EFI system 512 MiB, KOOMPI the rest",
                    vec![Action::Partition {
                        device: disk.clone(),
                        partitions: parts.clone(),
                    }],
                ),
                step(
                    "format-esp",
                    format!("Format {esp_dev} as FAT32 (the EFI system partition)"),
                    vec![Action::FormatFat {
                        device: esp_dev.clone(),
                        label: ESP_LABEL.into(),
                        volume_id: ids.esp_id.clone(),
                    }],
                ),
            ]
        }
    };
    if let Some(secret) = &passphrase {
        let pbkdf = if facts.grub_argon2 {
            "argon2id"
        } else {
            "pbkdf2"
        };
        steps.push(step(
            "encrypt",
            format!("Encrypt {raw_root} (LUKS2, {pbkdf} so GRUB can open it)"),
            vec![
                Action::LuksFormat {
                    device: raw_root.clone(),
                    uuid: ids.luks_uuid.clone(),
                    pbkdf: pbkdf.into(),
                    passphrase: secret.clone(),
                },
                Action::LuksOpen {
                    device: raw_root.clone(),
                    name: LUKS_NAME.into(),
                    passphrase: secret.clone(),
                },
            ],
        ));
    }
    let top = TOP;
    let mut subvolumes = vec![Action::Mount {
        device: root_dev.clone(),
        path: top.into(),
        options: "subvolid=5".into(),
    }];
    subvolumes.extend(SUBVOLUMES.iter().map(|(name, _)| Action::Subvolume {
        path: format!("{top}/{name}"),
    }));
    subvolumes.push(Action::Unmount { path: top.into() });
    steps.push(step(
        "format-root",
        format!("Format {root_dev} as Btrfs"),
        vec![Action::FormatBtrfs {
            device: root_dev.clone(),
            label: ROOT_LABEL.into(),
            uuid: ids.root_uuid.clone(),
        }],
    ));
    steps.push(step(
        "subvolumes",
        "Create the subvolumes @, @home, @snapshots, @var_log",
        subvolumes,
    ));
    let mut mounts: Vec<Action> = SUBVOLUMES
        .iter()
        .map(|(name, at)| Action::Mount {
            device: root_dev.clone(),
            path: t(at).trim_end_matches('/').to_string(),
            options: format!("subvol={name},{BTRFS_OPTIONS}"),
        })
        .collect();
    mounts.push(Action::Mount {
        device: esp_dev.clone(),
        path: t("/boot/efi"),
        options: "umask=0077".into(),
    });
    steps.push(step(
        "mount",
        format!("Mount the new system at {TARGET}"),
        mounts,
    ));

    // The base system.
    match (source, &facts.live) {
        (Source::Offline, Some(live)) => {
            let mut copy = vec![
                Action::CopyImage {
                    image: live.root_image.clone(),
                    to: TARGET.into(),
                },
                Action::CopyFile {
                    from: live.kernel.clone(),
                    to: t(&format!("/boot/{}", file_name(&live.kernel))),
                },
            ];
            if let Some((_, img)) = facts.cpu.microcode() {
                if let Some(m) = live.microcode.iter().find(|m| file_name(m) == img) {
                    copy.push(Action::CopyFile {
                        from: m.clone(),
                        to: t(&format!("/boot/{img}")),
                    });
                }
            }
            steps.push(step(
                "base-system",
                "Copy the live system's root image and kernel (offline)",
                copy,
            ));
            let mut clean: Vec<Action> = LIVE_ONLY
                .iter()
                .map(|p| Action::Remove { path: t(p) })
                .collect();
            if facts.initramfs == Initramfs::Mkinitcpio {
                clean.push(write(
                    "/etc/mkinitcpio.d/linux-lts.preset",
                    0o644,
                    LINUX_LTS_PRESET.into(),
                ));
            }
            clean.push(in_target(&["userdel", "--remove", LIVE_USER]));
            steps.push(step(
                "live-cleanup",
                format!(
                    "Remove the live system's own files (user {LIVE_USER}, autologin, archiso)"
                ),
                clean,
            ));
        }
        _ => {
            let mut packages: Vec<String> = BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
            if let Some((pkg, _)) = facts.cpu.microcode() {
                packages.push(pkg.into());
            }
            steps.push(step(
                "base-system",
                "Install the base system from the package repositories (online)",
                vec![Action::Pacstrap {
                    to: TARGET.into(),
                    packages,
                }],
            ));
        }
    }

    steps.push(step(
        "configure",
        "Configure the system",
        configure(
            answers,
            facts,
            passphrase.as_ref(),
            &raw_root,
            existing
                .as_ref()
                .map_or_else(|| ids.esp_uuid(), |e| e.esp_uuid.clone()),
        ),
    ));
    if let (Some(user), Some(secret)) = (&answers.user, &password) {
        let mut add = vec![
            "useradd",
            "--create-home",
            "--groups",
            "wheel,video,audio,input",
            "--shell",
            answers.shell.as_str(),
        ];
        if let Some(name) = &answers.full_name {
            add.extend(["--comment", name.as_str()]);
        }
        add.push(user.as_str());
        steps.push(step(
            "user",
            format!("Create the user {user} (an administrator)"),
            vec![
                in_target(&add),
                Action::SetPassword {
                    user: user.clone(),
                    password: secret.clone(),
                },
            ],
        ));
    }
    steps.push(step(
        "initramfs",
        "Build the initramfs",
        vec![match facts.initramfs {
            Initramfs::Mkinitcpio => in_target(&["mkinitcpio", "-P"]),
            Initramfs::InitramfsTools => in_target(&["update-initramfs", "-c", "-k", "all"]),
        }],
    ));
    // GRUB for BIOS needs the BIOS boot partition of a GPT disk: always there on a whole
    // disk, and on a disk that keeps other systems only if it has one.
    let bios = !matches!(&existing, Some(e) if !e.bios_boot);
    let mut grub = Vec::new();
    if bios {
        grub.push(in_target(&[
            "grub-install",
            "--target=i386-pc",
            "--no-bootsector",
            &disk,
        ]));
    }
    grub.extend([
        in_target(&[
            "grub-install",
            "--target=x86_64-efi",
            "--efi-directory=/boot/efi",
            "--bootloader-id=KOOMPI",
            "--no-nvram",
        ]),
        in_target(&["grub-mkconfig", "-o", "/boot/grub/grub.cfg"]),
    ]);
    steps.push(step(
        "bootloader",
        if bios {
            "Install GRUB for BIOS and UEFI and write its menu (not bootable yet)"
        } else {
            "Install GRUB for UEFI and write its menu (not bootable yet; no BIOS boot partition)"
        },
        grub,
    ));
    let factory = format!("factory-{}", facts.date);
    steps.push(step(
        "factory-snapshot",
        format!("Take the factory snapshot {factory} (the last known-good)"),
        vec![in_target(&[
            "koompi-snapshot",
            "create",
            &factory,
            "Factory state",
            "--cleanup",
            "none",
            "--important",
            "--userdata",
            "koompi-known-good=yes",
        ])],
    ));
    steps.push(step(
        "watchdog",
        "Initialise the boot watchdog (the factory snapshot as its fallback)",
        vec![in_target(&["koompi-watchdog", "init", "--force"])],
    ));
    match &existing {
        None => steps.push(step(
            "make-bootable",
            format!("Make {disk} bootable (GRUB's boot sector, UEFI fallback loader)"),
            vec![
                in_target(&["grub-install", "--target=i386-pc", &disk]),
                in_target(&[
                    "grub-install",
                    "--target=x86_64-efi",
                    "--efi-directory=/boot/efi",
                    "--removable",
                    "--no-nvram",
                ]),
            ],
        )),
        Some(e) => {
            // The other systems keep their way to boot: the UEFI fallback loader is
            // written only where there is none, and GRUB's boot sector only with a BIOS
            // boot partition.
            let mut make = Vec::new();
            if e.bios_boot {
                make.push(in_target(&["grub-install", "--target=i386-pc", &disk]));
            }
            make.push(in_target(&[
                "sh",
                "-c",
                "[ -e /boot/efi/EFI/BOOT/BOOTX64.EFI ] || grub-install --target=x86_64-efi \
                 --efi-directory=/boot/efi --removable --no-nvram",
            ]));
            steps.push(step(
                "make-bootable",
                format!(
                    "Make KOOMPI OS bootable ({}the UEFI fallback loader if {} has none)",
                    if e.bios_boot {
                        "GRUB's boot sector, "
                    } else {
                        ""
                    },
                    e.esp
                ),
                make,
            ));
        }
    }
    let esp_part = partition_number(&esp_dev);
    if facts.uefi {
        steps.push(Step {
            optional: true,
            ..step(
                "firmware-entry",
                "Add KOOMPI OS to the firmware's boot menu (UEFI NVRAM)",
                vec![in_target(&[
                    "efibootmgr",
                    "--create",
                    "--disk",
                    &disk,
                    "--part",
                    &esp_part,
                    "--label",
                    "KOOMPI OS",
                    "--loader",
                    "\\EFI\\KOOMPI\\grubx64.efi",
                ])],
            )
        });
    }
    steps.push(Step {
        optional: true,
        ..step(
            "keep-log",
            "Keep the install's log on the new system",
            vec![Action::CopyFile {
                from: LOG.into(),
                to: t(LOG),
            }],
        )
    });
    // The journal on the disk goes first: a finished install is not resumed.
    let mut finish = vec![
        Action::Remove {
            path: TARGET_JOURNAL.into(),
        },
        Action::Unmount {
            path: TARGET.into(),
        },
    ];
    if passphrase.is_some() {
        finish.push(Action::LuksClose {
            name: LUKS_NAME.into(),
        });
    }
    steps.push(step("finish", "Unmount the new system", finish));

    Ok(Plan {
        disk,
        disk_description: facts.disk.describe(),
        root_partition: existing.map(|e| e.root),
        source,
        encrypt: passphrase.is_some(),
        hostname: answers.hostname.clone(),
        user: answers.user.clone(),
        finish: answers.finish,
        steps,
    })
}

/// The files and commands of the `configure` step.
fn configure(
    answers: &Answers,
    facts: &Facts,
    passphrase: Option<&Secret>,
    raw_root: &str,
    esp_uuid: String,
) -> Vec<Action> {
    let ids = &facts.ids;
    let mut fstab = String::from("# /etc/fstab: written by koompi-install\n");
    for (name, at) in SUBVOLUMES {
        fstab.push_str(&format!(
            "UUID={} {at} btrfs subvol={name},{BTRFS_OPTIONS} 0 0\n",
            ids.root_uuid
        ));
    }
    fstab.push_str(&format!("UUID={esp_uuid} /boot/efi vfat umask=0077 0 2\n"));
    let mut a = Vec::new();
    if !console_shows(&answers.locale) {
        // The Linux console has no glyphs for this script: its logins stay in English
        // (PAM would ask for the password in words nobody can read), while graphical
        // sessions use the chosen language (docs/decisions.md 23).
        for unit in ["getty@.service", "serial-getty@.service"] {
            a.push(write(
                &format!("/etc/systemd/system/{unit}.d/koompi-console-locale.conf"),
                0o644,
                CONSOLE_LOCALE_DROPIN.into(),
            ));
        }
    }
    a.extend([
        write("/etc/fstab", 0o644, fstab),
        write("/etc/hostname", 0o644, format!("{}\n", answers.hostname)),
        write(
            "/etc/hosts",
            0o644,
            format!(
                "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 {0}.localdomain {0}\n",
                answers.hostname
            ),
        ),
        write("/etc/locale.gen", 0o644, locale_gen(&answers.locale)),
        write(
            "/etc/locale.conf",
            0o644,
            format!("LANG={}\n", answers.locale),
        ),
        write(
            "/etc/vconsole.conf",
            0o644,
            format!("KEYMAP={}\n", console_keymap(&answers.keyboard)),
        ),
        write(
            "/etc/X11/xorg.conf.d/00-keyboard.conf",
            0o644,
            xkb_conf(&answers.keyboard),
        ),
        Action::Link {
            path: t("/etc/localtime"),
            to: format!("/usr/share/zoneinfo/{}", answers.timezone),
        },
        in_target(&["locale-gen"]),
        in_target(&[
            "systemctl",
            "enable",
            "NetworkManager.service",
            "koompi-boot-watchdog.service",
            "koompi-boot-success.service",
            "koompi-boot-deadline.timer",
            "koompi-snapshot-daily.timer",
        ]),
        // The seed's /etc/issue names the live password; an installed system's does not
        // (docs/decisions.md 11).
        in_target(&[
            "cp",
            "/usr/share/koompi/branding/issue.installed",
            "/etc/issue",
        ]),
    ]);
    if let Some(secret) = passphrase {
        a.push(Action::KeyFile { path: t(KEY_FILE) });
        a.push(Action::LuksKeyFile {
            device: raw_root.into(),
            path: t(KEY_FILE),
            passphrase: secret.clone(),
        });
        a.extend(encryption_files(facts));
    }
    a
}

/// How the installed system opens its root: GRUB asks for the passphrase once (it reads
/// /boot inside the container), and the initramfs opens the root again with the key file
/// it carries, so nobody types twice.
fn encryption_files(facts: &Facts) -> Vec<Action> {
    let ids = &facts.ids;
    let mut a = Vec::new();
    let cmdline = match facts.initramfs {
        // systemd in the initramfs (iso/airootfs/etc/mkinitcpio.conf.d/koompi.conf):
        // sd-encrypt, and systemd-cryptsetup finds /etc/cryptsetup-keys.d/NAME.key itself.
        Initramfs::Mkinitcpio => {
            a.push(write(
                "/etc/mkinitcpio.conf.d/koompi-encrypt.conf",
                0o644,
                format!(
                    "# koompi-install: open the root with the key file, so the passphrase is typed once\n\
                     FILES+=({KEY_FILE})\n\
                     HOOKS=(base systemd plymouth autodetect microcode modconf kms keyboard sd-vconsole block sd-encrypt filesystems fsck)\n"
                ),
            ));
            format!(
                " rd.luks.name={}={LUKS_NAME} root=/dev/mapper/{LUKS_NAME}",
                ids.luks_uuid
            )
        }
        // initramfs-tools: cryptroot opens what /etc/crypttab names with its key file,
        // which the hook copies in when KEYFILE_PATTERN matches it (kept 0600 by UMASK).
        Initramfs::InitramfsTools => {
            a.push(write(
                "/etc/crypttab",
                0o644,
                format!(
                    "# written by koompi-install\n{LUKS_NAME} UUID={} {KEY_FILE} luks,discard,initramfs\n",
                    ids.luks_uuid
                ),
            ));
            a.push(Action::SetBlock {
                path: t("/etc/cryptsetup-initramfs/conf-hook"),
                block: "KEYFILE_PATTERN=\"/etc/cryptsetup-keys.d/*.key\"\n".into(),
            });
            a.push(write(
                "/etc/initramfs-tools/conf.d/koompi-umask",
                0o644,
                "UMASK=0077\n".into(),
            ));
            String::new()
        }
    };
    a.push(Action::SetBlock {
        path: t("/etc/default/grub"),
        block: format!(
            "GRUB_ENABLE_CRYPTODISK=y\nGRUB_CMDLINE_LINUX=\"${{GRUB_CMDLINE_LINUX}}{cmdline}\"\n"
        ),
    });
    a
}

/// The last part of a path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `text` with `block` between koompi-install's markers: the old block replaced, or the
/// new one appended. Pure, for [`Action::SetBlock`].
pub fn with_block(text: &str, block: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line == BLOCK_BEGIN {
            inside = true;
        } else if line == BLOCK_END && inside {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(BLOCK_BEGIN);
    out.push('\n');
    out.push_str(block);
    if !block.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(BLOCK_END);
    out.push('\n');
    out
}

/// The drop-in that keeps a console login in English.
pub const CONSOLE_LOCALE_DROPIN: &str = "\
# koompi-install: the console cannot show this system's language; logins here stay English.
[Service]
Environment=LANG=en_US.UTF-8
";

/// Whether the Linux console's fonts can show `locale`'s script (Latin, Cyrillic, Greek):
/// not Khmer, Thai, Lao, Burmese or the CJK scripts.
pub fn console_shows(locale: &str) -> bool {
    let lang = locale.split(['_', '.', '@']).next().unwrap_or(locale);
    !matches!(lang, "km" | "th" | "lo" | "my" | "zh" | "ja" | "ko")
}

/// `/etc/locale.gen`: the chosen locale, and English beside it (the tools' messages).
fn locale_gen(locale: &str) -> String {
    let mut s = String::from("# written by koompi-install\n");
    for l in [locale, "en_US.UTF-8"] {
        let line = format!("{l} UTF-8\n");
        if !s.contains(&line) {
            s.push_str(&line);
        }
    }
    s
}

/// The console keymap for an XKB layout: the same name where the console has one, `us`
/// where it has none (the Linux console cannot show Khmer: FACTS.md).
fn console_keymap(layout: &str) -> &str {
    let base = layout.split('(').next().unwrap_or(layout);
    match base {
        "kh" | "th" | "vn" => "us",
        "gb" => "uk",
        other => other,
    }
}

/// The graphical keyboard configuration: the chosen layout, with `us` beside a layout
/// that does not type Latin letters, switched with Alt+Shift.
fn xkb_conf(layout: &str) -> String {
    let (base, variant) = match layout.split_once('(') {
        Some((b, v)) => (b, v.trim_end_matches(')')),
        None => (layout, ""),
    };
    let (layouts, variants) = if matches!(base, "kh" | "th") {
        (format!("us,{base}"), format!(",{variant}"))
    } else {
        (base.to_string(), variant.to_string())
    };
    format!(
        "# written by koompi-install\nSection \"InputClass\"\n    Identifier \"system-keyboard\"\n    \
         MatchIsKeyboard \"on\"\n    Option \"XkbLayout\" \"{layouts}\"\n    Option \"XkbVariant\" \"{variants}\"\n    \
         Option \"XkbOptions\" \"grp:alt_shift_toggle\"\nEndSection\n"
    )
}

impl Plan {
    /// The identifiers the plan formats with (empty where it does not format: no LUKS).
    pub fn ids(&self) -> Ids {
        let mut ids = Ids {
            root_uuid: String::new(),
            luks_uuid: String::new(),
            esp_id: String::new(),
        };
        for a in self.steps.iter().flat_map(|s| &s.actions) {
            match a {
                Action::FormatBtrfs { uuid, .. } => ids.root_uuid.clone_from(uuid),
                Action::LuksFormat { uuid, .. } => ids.luks_uuid.clone_from(uuid),
                Action::FormatFat { volume_id, .. } => ids.esp_id.clone_from(volume_id),
                _ => {}
            }
        }
        ids
    }

    /// The plan in words, one numbered line per step and an indented line per action,
    /// for the summary screen and `--dry-run`.
    pub fn describe(&self) -> String {
        let (on, erased) = match &self.root_partition {
            Some(p) => (
                format!("{p}, a partition of {}", self.disk_description),
                format!(
                    "Everything on {p} will be erased; the other partitions of {} are kept.",
                    self.disk
                ),
            ),
            None => (
                self.disk_description.clone(),
                format!("Everything on {} will be erased.", self.disk),
            ),
        };
        let mut s = format!(
            "Install KOOMPI OS on {} ({}, {}{}).\n{}\n",
            on,
            match self.source {
                Source::Offline => "offline copy",
                Source::Online => "online install",
            },
            if self.encrypt {
                "encrypted"
            } else {
                "not encrypted"
            },
            match &self.user {
                Some(u) => format!(", user {u}"),
                None => String::new(),
            },
            erased
        );
        let n = self.steps.len();
        for (i, st) in self.steps.iter().enumerate() {
            s.push_str(&format!(
                "{:>2}/{n} {}{}\n",
                i + 1,
                st.title,
                if st.optional { " (optional)" } else { "" }
            ));
            for a in &st.actions {
                s.push_str(&format!("      {}\n", describe_action(a)));
            }
        }
        s
    }
}

/// One action in a line.
pub fn describe_action(a: &Action) -> String {
    match a {
        Action::Wipe { device } => format!("wipefs --all {device} (and its partitions)"),
        Action::Partition { device, partitions } => format!(
            "sfdisk {device}: {}",
            partitions
                .iter()
                .map(|p| format!(
                    "{} {} {}",
                    p.device,
                    p.name,
                    p.size_mib
                        .map_or("rest".to_string(), |s| format!("{s} MiB"))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::FormatFat { device, label, .. } => format!("mkfs.fat -F 32 -n {label} {device}"),
        Action::LuksFormat {
            device,
            pbkdf,
            passphrase,
            ..
        } => format!("cryptsetup luksFormat --type luks2 --pbkdf {pbkdf} {device} ({passphrase})"),
        Action::LuksOpen { device, name, .. } => format!("cryptsetup open {device} {name}"),
        Action::LuksKeyFile { path, .. } => format!("cryptsetup luksAddKey with {path}"),
        Action::FormatBtrfs { device, label, .. } => format!("mkfs.btrfs -L {label} {device}"),
        Action::Subvolume { path } => format!("btrfs subvolume create {path}"),
        Action::Mount {
            device,
            path,
            options,
        } => format!("mount -o {options} {device} {path}"),
        Action::Unmount { path } => format!("umount -R {path} (if mounted)"),
        Action::LuksClose { name } => format!("cryptsetup close {name} (if open)"),
        Action::CopyImage { image, to } => format!("unsquashfs {image} into {to}"),
        Action::CopyFile { from, to } => format!("cp {from} {to}"),
        Action::Pacstrap { to, packages } => format!("pacstrap {to} {}", packages.join(" ")),
        Action::Remove { path } => format!("rm -r {path}"),
        Action::WriteFile { path, mode, .. } => format!("write {path} (mode {mode:o})"),
        Action::Link { path, to } => format!("ln -s {to} {path}"),
        Action::SetBlock { path, .. } => format!("koompi-install's lines at the end of {path}"),
        Action::KeyFile { path } => format!("a random key file {path} (mode 400)"),
        Action::InTarget { argv } => format!(
            "in the new system: {}",
            argv.iter()
                .map(|a| if a.is_empty() || a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Action::SetPassword { user, password } => format!("set {user}'s password ({password})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_shows_latin_but_not_khmer() {
        assert!(console_shows("en_US.UTF-8"));
        assert!(console_shows("fr_FR.UTF-8"));
        assert!(!console_shows("km_KH.UTF-8"));
        assert!(!console_shows("th_TH.UTF-8"));
        assert!(!console_shows("zh_CN.UTF-8"));
    }
}
