//! What the installer finds on the machine: the disks, the live system's image, the CPU,
//! the firmware and what the GRUB to be installed can do.
//!
//! The only I/O of the engine besides the executor, and all of it read-only: `lsblk`
//! (through koompi-core's runner), files under /proc, /sys and the live medium. The
//! parsers it uses are pure and live beside their data ([`crate::disks::parse_lsblk`],
//! [`crate::plan::Cpu::from_cpuinfo`], [`cmdline_value`]).

use std::fs;
use std::path::{Path, PathBuf};

use koompi_core::cmd::{Cmd, Runner};

use crate::disks::{parse_lsblk, Disk, LSBLK_ARGS};
use crate::plan::{Cpu, Facts, Ids, Initramfs, LiveImage, KERNEL};

/// Where archiso mounts the boot medium, and the profile's `install_dir`
/// (iso/profiledef.sh).
pub const BOOT_MOUNT: &str = "/run/archiso/bootmnt";
pub const INSTALL_DIR: &str = "koompi";
/// Where archiso puts the root image when booted with `copytoram`.
pub const COPYTORAM: &str = "/run/archiso/copytoram";

/// GRUB's module that opens Argon2 key slots; its presence, not a version number, says
/// whether the installed GRUB can open them (FACTS.md).
pub const ARGON2_MODULES: &[&str] = &[
    "/usr/lib/grub/x86_64-efi/argon2.mod",
    "/usr/lib/grub/i386-pc/argon2.mod",
];

/// Why the machine could not be surveyed.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Lsblk(#[from] crate::disks::LsblkError),
    #[error(transparent)]
    Cmd(#[from] koompi_core::cmd::CmdError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything found, before a disk is chosen.
#[derive(Debug, Clone)]
pub struct Machine {
    pub disks: Vec<Disk>,
    pub live: Option<LiveImage>,
    /// The live medium's label (`archisolabel=`), to keep it out of the choice.
    pub live_label: Option<String>,
    pub cpu: Cpu,
    pub uefi: bool,
    pub grub_argon2: bool,
    pub initramfs: Initramfs,
}

impl Machine {
    /// The plan's facts for installing on `disk` (one of [`Machine::disks`]).
    pub fn facts(&self, disk: &Disk, date: String, ids: Ids) -> Facts {
        Facts {
            disk: disk.clone(),
            live: self.live.clone(),
            grub_argon2: self.grub_argon2,
            cpu: self.cpu,
            uefi: self.uefi,
            initramfs: self.initramfs,
            date,
            ids,
        }
    }

    /// The disk holding `partition`, for an install into it
    /// ([`crate::disks::disk_of_partition`]).
    pub fn disk_of_partition(&self, partition: &str) -> Result<&Disk, crate::disks::Refusal> {
        crate::disks::disk_of_partition(partition, &self.disks, self.live_label.as_deref())
    }

    /// The disk `choice` names among this machine's, vetted ([`crate::disks::choose`]).
    pub fn choose(
        &self,
        choice: &crate::answers::DiskChoice,
    ) -> Result<&Disk, crate::disks::Refusal> {
        crate::disks::choose(choice, &self.disks, self.live_label.as_deref())
    }
}

/// The initramfs builder of the running system (an offline copy's source): mkinitcpio
/// where it is installed, otherwise initramfs-tools.
pub fn initramfs_of(root: &Path) -> Initramfs {
    let has = |p: &str| root.join(p).exists();
    if has("usr/bin/mkinitcpio") || !has("usr/sbin/update-initramfs") {
        Initramfs::Mkinitcpio
    } else {
        Initramfs::InitramfsTools
    }
}

/// The timezone the system at `root` is set to (its /etc/localtime link into zoneinfo),
/// when it is set to a place: UTC, the clock's default, says nothing about where the
/// machine is. Checked as an answer would be.
pub fn live_timezone(root: &Path) -> Option<String> {
    let target = fs::read_link(root.join("etc/localtime")).ok()?;
    let target = target.to_str()?;
    let zone = &target[target.find("zoneinfo/")? + "zoneinfo/".len()..];
    let zone = zone.strip_prefix("posix/").unwrap_or(zone);
    if zone.is_empty() || zone == "UTC" || zone.starts_with("Etc/") {
        return None;
    }
    crate::answers::check_timezone(zone).ok()?;
    Some(zone.to_string())
}

/// `key=value` from a kernel command line.
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Surveys this machine (read-only).
pub fn survey(runner: &Runner) -> Result<Machine, FactsError> {
    let out = Cmd::new("lsblk").args(LSBLK_ARGS).run(runner)?;
    let disks = parse_lsblk(&out.stdout)?;
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Ok(Machine {
        disks,
        live: live_image(Path::new(BOOT_MOUNT), Path::new(COPYTORAM)),
        live_label: cmdline_value(&cmdline, "archisolabel").map(String::from),
        cpu: Cpu::from_cpuinfo(&cpuinfo),
        uefi: Path::new("/sys/firmware/efi").is_dir(),
        grub_argon2: ARGON2_MODULES.iter().any(|m| Path::new(m).is_file()),
        initramfs: initramfs_of(Path::new("/")),
    })
}

/// The live system's root image, kernel and microcode under `boot_mount`, if there. The
/// kernel is `vmlinuz-linux-lts` where the medium has it, else the only `vmlinuz-*`;
/// archiso puts the microcode one directory above the kernel.
pub fn live_image(boot_mount: &Path, copytoram: &Path) -> Option<LiveImage> {
    let dir = boot_mount.join(INSTALL_DIR);
    let boot_dir = dir.join("boot/x86_64");
    let image = [
        dir.join("x86_64/airootfs.sfs"),
        copytoram.join("airootfs.sfs"),
    ]
    .into_iter()
    .find(|p| p.is_file())?;
    let names = |d: &Path, keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .filter(|n| keep(n))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let kernels = names(&boot_dir, &|n| n.starts_with("vmlinuz-"));
    let kernel = if kernels.iter().any(|k| k == KERNEL) {
        KERNEL.to_string()
    } else if kernels.len() == 1 {
        kernels[0].clone()
    } else {
        return None;
    };
    let mut microcode = Vec::new();
    for d in [dir.join("boot"), boot_dir.clone()] {
        for n in names(&d, &|n| n.ends_with("-ucode.img")) {
            microcode.push(d.join(n).display().to_string());
        }
    }
    Some(LiveImage {
        root_image: image.display().to_string(),
        kernel: boot_dir.join(kernel).display().to_string(),
        microcode,
    })
}

/// New filesystem identifiers from the kernel's random UUIDs.
pub fn new_ids() -> Result<Ids, FactsError> {
    let uuid = || -> Result<String, FactsError> {
        let p = PathBuf::from("/proc/sys/kernel/random/uuid");
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|source| FactsError::Read {
                path: p.display().to_string(),
                source,
            })
    };
    let esp: String = uuid()?
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    Ok(Ids {
        root_uuid: uuid()?,
        luks_uuid: uuid()?,
        esp_id: esp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_systems_timezone_is_read_from_its_link() {
        let root = tempfile::tempdir().expect("tempdir");
        let etc = root.path().join("etc");
        fs::create_dir(&etc).expect("etc");
        let link = |to: &str| {
            let _ = fs::remove_file(etc.join("localtime"));
            std::os::unix::fs::symlink(to, etc.join("localtime")).expect("link");
            live_timezone(root.path())
        };
        assert_eq!(live_timezone(root.path()), None);
        assert_eq!(
            link("/usr/share/zoneinfo/Asia/Bangkok").as_deref(),
            Some("Asia/Bangkok")
        );
        assert_eq!(
            link("../usr/share/zoneinfo/Asia/Phnom_Penh").as_deref(),
            Some("Asia/Phnom_Penh")
        );
        assert_eq!(link("/usr/share/zoneinfo/UTC"), None);
        assert_eq!(link("/usr/share/zoneinfo/Etc/UTC"), None);
        assert_eq!(link("/etc/somewhere"), None);
    }

    #[test]
    fn cmdline_values() {
        let c = "BOOT_IMAGE=/koompi/boot/x86_64/vmlinuz-linux-lts archisobasedir=koompi archisolabel=KOOMPI_202612 quiet";
        assert_eq!(cmdline_value(c, "archisolabel"), Some("KOOMPI_202612"));
        assert_eq!(cmdline_value(c, "archiso"), None);
        assert_eq!(cmdline_value(c, "koompi.install"), None);
    }

    #[test]
    fn the_live_image_is_found_where_archiso_puts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("bootmnt");
        assert_eq!(live_image(&mount, &dir.path().join("ram")), None);
        fs::create_dir_all(mount.join("koompi/x86_64")).expect("mkdir");
        fs::create_dir_all(mount.join("koompi/boot/x86_64")).expect("mkdir");
        fs::write(mount.join("koompi/x86_64/airootfs.sfs"), "").expect("write");
        // No kernel beside it: not a medium to install from.
        assert_eq!(live_image(&mount, &dir.path().join("ram")), None);
        fs::write(mount.join("koompi/boot/x86_64/vmlinuz-6.1.0-cloud"), "").expect("write");
        let live = live_image(&mount, &dir.path().join("ram")).expect("found");
        assert!(live
            .root_image
            .ends_with("bootmnt/koompi/x86_64/airootfs.sfs"));
        assert!(live
            .kernel
            .ends_with("koompi/boot/x86_64/vmlinuz-6.1.0-cloud"));
        assert!(live.microcode.is_empty());
        // Two kernels: the one KOOMPI ships wins; the microcode sits one level up.
        fs::write(mount.join("koompi/boot/x86_64/vmlinuz-linux-lts"), "").expect("write");
        fs::write(mount.join("koompi/boot/intel-ucode.img"), "").expect("write");
        fs::write(mount.join("koompi/boot/amd-ucode.img"), "").expect("write");
        let live = live_image(&mount, &dir.path().join("ram")).expect("found");
        assert!(live
            .kernel
            .ends_with("koompi/boot/x86_64/vmlinuz-linux-lts"));
        assert_eq!(live.microcode.len(), 2);
        assert!(live.microcode[1].ends_with("koompi/boot/intel-ucode.img"));
    }

    #[test]
    fn ids_are_fresh_and_well_formed() {
        let a = new_ids().expect("ids");
        let b = new_ids().expect("ids");
        assert_ne!(a.root_uuid, b.root_uuid);
        assert_eq!(a.esp_id.len(), 8);
        assert_eq!(a.esp_uuid().len(), 9);
        assert_eq!(&a.esp_uuid()[4..5], "-");
    }
}
