//! Install plans for representative answers, compared with the expected text in
//! `tests/plans/` (run with `KOOMPI_BLESS=1` to write them after a deliberate change),
//! and properties every plan keeps.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use koompi_install::answers::{Answers, DiskChoice, Finish, Source};
use koompi_install::disks::{Disk, Part};
use koompi_install::plan::{
    self, Action, Cpu, Facts, Ids, Initramfs, LiveImage, PlanError, TARGET,
};
use proptest::prelude::*;

fn disk(path: &str) -> Disk {
    Disk {
        path: path.into(),
        size: 32 * 1024 * 1024 * 1024,
        kind: "disk".into(),
        model: Some("QEMU HARDDISK".into()),
        removable: false,
        transport: Some("sata".into()),
        read_only: false,
        mountpoints: vec![],
        labels: vec![],
        partitions: vec![],
    }
}

fn facts(path: &str, live: bool, uefi: bool) -> Facts {
    Facts {
        disk: disk(path),
        live: live.then(|| LiveImage {
            root_image: "/run/archiso/bootmnt/koompi/x86_64/airootfs.sfs".into(),
            kernel: "/run/archiso/bootmnt/koompi/boot/x86_64/vmlinuz-linux-lts".into(),
            microcode: vec![
                "/run/archiso/bootmnt/koompi/boot/amd-ucode.img".into(),
                "/run/archiso/bootmnt/koompi/boot/intel-ucode.img".into(),
            ],
        }),
        grub_argon2: false,
        cpu: Cpu::Intel,
        uefi,
        initramfs: Initramfs::Mkinitcpio,
        date: "20261205".into(),
        ids: Ids {
            root_uuid: "6f1c2a5e-0d3b-4c8e-9a1f-2b7d5e4c3a10".into(),
            luks_uuid: "0b8e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b".into(),
            esp_id: "1a2b3c4d".into(),
        },
    }
}

fn answers(text: &str) -> Answers {
    Answers::from_toml(text).unwrap()
}

/// Compares `got` with `tests/plans/NAME`, or writes it with KOOMPI_BLESS=1.
fn expect(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/plans")
        .join(name);
    if std::env::var_os("KOOMPI_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with KOOMPI_BLESS=1 to write it)",
            path.display()
        )
    });
    assert_eq!(
        got, want,
        "{name} changed (run with KOOMPI_BLESS=1 if that was meant)"
    );
}

#[test]
fn offline_install_on_a_bios_machine() {
    let a = answers(
        "disk = \"/dev/sda\"\nhostname = \"lab-07\"\nuser = \"student\"\npassword-file = \"/run/pw\"\n",
    );
    let p = plan::plan(&a, &facts("/dev/sda", true, false)).unwrap();
    expect("offline-bios.txt", &p.describe());
}

#[test]
fn encrypted_khmer_install_on_a_uefi_machine() {
    let a = answers(
        "disk = \"/dev/nvme0n1\"\nuser = \"dara\"\nfull-name = \"Dara Sok\"\n\
         password-file = \"-\"\nencrypt = true\npassphrase-file = \"/run/luks\"\n\
         locale = \"km_KH.UTF-8\"\nkeyboard = \"kh\"\nfinish = \"reboot\"\n",
    );
    let p = plan::plan(&a, &facts("/dev/nvme0n1", true, true)).unwrap();
    expect("encrypted-uefi.txt", &p.describe());
    let json = serde_json::to_string_pretty(&p).unwrap();
    expect("encrypted-uefi.json", &json);
}

/// The VM rig's live system (a Debian userland standing in for Arch): initramfs-tools
/// builds the initramfs, and /etc/crypttab names the key file.
#[test]
fn encrypted_install_from_an_initramfs_tools_system() {
    let a = answers(
        "disk = \"/dev/vdb\"\nuser = \"student\"\npassword-file = \"/pw\"\n\
         encrypt = true\npassphrase-file = \"/luks\"\n",
    );
    let mut f = facts("/dev/vdb", true, true);
    f.initramfs = Initramfs::InitramfsTools;
    let p = plan::plan(&a, &f).unwrap();
    expect(
        "encrypted-initramfs-tools.json",
        &serde_json::to_string_pretty(&p).unwrap(),
    );
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("update-initramfs"), "{json}");
    assert!(!json.contains("\"mkinitcpio\""), "{json}");
}

#[test]
fn online_install_without_a_live_image() {
    let a = answers("disk = \"/dev/vdb\"\nuser = \"teacher\"\npassword-file = \"/pw\"\n");
    let p = plan::plan(&a, &facts("/dev/vdb", false, false)).unwrap();
    assert_eq!(p.source, Source::Online);
    expect("online.txt", &p.describe());
}

const GIB: u64 = 1 << 30;
const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const MSR: &str = "e3c9e316-0b5c-4db8-817d-f92df00215ae";
const BASIC_DATA: &str = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";
const LINUX: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";

fn part(path: &str, parttype: &str, fstype: Option<&str>, uuid: Option<&str>, size: u64) -> Part {
    Part {
        path: path.into(),
        parttype: Some(parttype.into()),
        fstype: fstype.map(String::from),
        uuid: uuid.map(String::from),
        size,
        ..Part::default()
    }
}

/// A teacher's laptop with Windows: its ESP, MSR and system partition, and a partition
/// left free for KOOMPI OS.
fn dual_boot(uefi: bool) -> Facts {
    let mut f = facts("/dev/sda", true, uefi);
    f.disk.partitions = vec![
        part("/dev/sda1", ESP, Some("vfat"), Some("4A1B-22CD"), GIB / 10),
        part("/dev/sda2", MSR, None, None, 16 << 20),
        part(
            "/dev/sda3",
            BASIC_DATA,
            Some("ntfs"),
            Some("0E8C2A4F8C2A3409"),
            180 * GIB,
        ),
        part("/dev/sda4", LINUX, None, None, 58 * GIB),
    ];
    f
}

/// Beside Windows: only the chosen partition is erased, the ESP is kept (its own UUID in
/// fstab), no BIOS boot partition means GRUB for UEFI only, Windows' fallback loader is
/// not replaced, and the firmware entry points at the ESP's partition number.
#[test]
fn an_install_beside_windows_keeps_the_other_partitions() {
    let a =
        answers("root-partition = \"/dev/sda4\"\nuser = \"dara\"\npassword-file = \"/run/pw\"\n");
    let p = plan::plan(&a, &dual_boot(true)).unwrap();
    expect("beside-windows.txt", &p.describe());
    let json = serde_json::to_string(&p).unwrap();
    for kept in ["/dev/sda1", "/dev/sda2", "/dev/sda3"] {
        let touched = p.steps.iter().flat_map(|s| &s.actions).any(|a| {
            matches!(a, Action::Wipe { device } | Action::FormatFat { device, .. }
                | Action::FormatBtrfs { device, .. } | Action::LuksFormat { device, .. }
                if device == kept)
        });
        assert!(!touched, "{kept} is changed: {json}");
    }
    assert!(
        !json.contains("\"partition\""),
        "no new partition table: {json}"
    );
    assert!(json.contains("UUID=4A1B-22CD /boot/efi vfat"), "{json}");
    assert!(!json.contains("i386-pc"), "{json}");
    assert!(json.contains("\"--part\",\"1\""), "{json}");
}

#[test]
fn partitions_that_cannot_take_koompi_are_refused_in_one_line() {
    let a = |text: &str| answers(&format!("{text}\nuser = \"u\"\npassword-file = \"/pw\"\n"));
    let refused = |text: &str, f: &Facts| plan::plan(&a(text), f).unwrap_err().to_string();
    let f = dual_boot(true);
    assert_eq!(
        refused("root-partition = \"/dev/sdb4\"", &f),
        "`root-partition`: /dev/sdb4 is not a partition of /dev/sda"
    );
    assert_eq!(
        refused("root-partition = \"/dev/sda1\"", &f),
        "`root-partition`: /dev/sda1 is an EFI system partition; other systems boot from it"
    );
    assert_eq!(
        refused("root-partition = \"/dev/sda2\"", &f),
        "`root-partition`: /dev/sda2 is too small: 16 MiB; KOOMPI OS needs at least 7.5 GiB"
    );
    assert_eq!(
        refused(
            "root-partition = \"/dev/sda4\"\nesp-partition = \"/dev/sda3\"",
            &f
        ),
        "`esp-partition`: /dev/sda3 is not an EFI system partition with a FAT filesystem \
         (type ebd0a0a2-b9e5-4433-87c0-68b6b72699c7, filesystem ntfs)"
    );
    let mut mounted = dual_boot(true);
    mounted.disk.partitions[3].mountpoints = vec!["/mnt".into()];
    assert_eq!(
        refused("root-partition = \"/dev/sda4\"", &mounted),
        "`root-partition`: /dev/sda4 is in use (mounted at /mnt); unmount it first"
    );
    let mut no_esp = dual_boot(true);
    no_esp.disk.partitions.remove(0);
    assert_eq!(
        refused("root-partition = \"/dev/sda4\"", &no_esp),
        "`esp-partition`: /dev/sda has no EFI system partition; install on the whole disk, or make one"
    );
    let mut two = dual_boot(true);
    two.disk.partitions[1] = part("/dev/sda2", ESP, Some("vfat"), Some("1111-2222"), GIB);
    assert_eq!(
        refused("root-partition = \"/dev/sda4\"", &two),
        "`esp-partition`: /dev/sda has two EFI system partitions (/dev/sda1 and /dev/sda2); name the one to use"
    );
    // Naming it settles it.
    plan::plan(
        &a("root-partition = \"/dev/sda4\"\nesp-partition = \"/dev/sda2\""),
        &two,
    )
    .unwrap();
}

#[test]
fn impossible_plans_are_one_line() {
    let mut a = answers("source = \"offline\"\n");
    assert_eq!(
        plan::plan(&a, &facts("/dev/vdb", false, false)).unwrap_err(),
        PlanError::NoLiveImage
    );
    a.source = None;
    a.encrypt = true;
    assert_eq!(
        plan::plan(&a, &facts("/dev/vdb", true, false)).unwrap_err(),
        PlanError::NoPassphrase
    );
    a.encrypt = false;
    a.user = Some("u".into());
    let e = plan::plan(&a, &facts("/dev/vdb", true, false)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`password-file`: the user u needs a password"
    );
}

fn arb_answers() -> impl Strategy<Value = Answers> {
    (
        "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        proptest::option::of("[a-z][a-z0-9_]{0,8}"),
        any::<bool>(),
        proptest::sample::select(vec!["en_US.UTF-8", "km_KH.UTF-8", "fr_FR.UTF-8"]),
        proptest::sample::select(vec!["us", "kh", "fr(azerty)", "gb"]),
        proptest::option::of(proptest::sample::select(vec![
            Source::Offline,
            Source::Online,
        ])),
        proptest::sample::select(vec![Finish::Stay, Finish::Reboot, Finish::Poweroff]),
    )
        .prop_map(
            |(hostname, user, encrypt, locale, keyboard, source, finish)| Answers {
                disk: Some(DiskChoice::Path("/dev/sda".into())),
                hostname,
                password_file: user.as_ref().map(|_| "/run/pw".into()),
                user,
                encrypt,
                passphrase_file: encrypt.then(|| "/run/luks".into()),
                locale: locale.into(),
                keyboard: keyboard.into(),
                source,
                finish,
                ..Answers::default()
            },
        )
        .prop_filter("valid", |a| a.check().is_ok())
}

fn arb_disk() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "/dev/sda",
        "/dev/vdb",
        "/dev/nvme0n1",
        "/dev/mmcblk0",
        "/dev/loop7",
    ])
    .prop_map(String::from)
}

proptest! {
    /// koompi-install's block in a file: set twice is set once, and every line of the
    /// file outside the block stays.
    #[test]
    fn a_block_is_replaced_not_repeated(
        lines in proptest::collection::vec("[A-Z_=a-z0-9\" ]{0,20}", 0..8),
        a in "[A-Z]{1,8}=[a-z]{0,8}",
        b in "[A-Z]{1,8}=[a-z]{0,8}",
    ) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let once = plan::with_block(&text, &a);
        prop_assert_eq!(plan::with_block(&once, &a), once.clone());
        let other = plan::with_block(&once, &b);
        prop_assert!(other.starts_with(&text));
        prop_assert_eq!(other.matches(plan::BLOCK_BEGIN).count(), 1);
        let want = format!("{b}\n");
        prop_assert!(other.contains(&want));
    }

    #[test]
    fn every_plan_keeps_its_invariants(
        a in arb_answers(),
        d in arb_disk(),
        live in any::<bool>(),
        uefi in any::<bool>(),
    ) {
        let f = facts(&d, live, uefi);
        let p = match plan::plan(&a, &f) {
            Ok(p) => p,
            Err(PlanError::NoLiveImage) => {
                prop_assert!(!live && a.source == Some(Source::Offline));
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id).collect();
        // Step ids are unique: the journal names them.
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), ids.len());
        // Destructive order: wipe first; the disk becomes bootable only after the
        // bootloader's files, the factory snapshot and the watchdog; unmount last.
        let at = |id: &str| ids.iter().position(|s| *s == id);
        prop_assert_eq!(at("wipe"), Some(0));
        let bootable = at("make-bootable").unwrap();
        for before in ["bootloader", "factory-snapshot", "watchdog", "base-system", "configure"] {
            prop_assert!(at(before).unwrap() < bootable, "{} after make-bootable", before);
        }
        prop_assert_eq!(ids.last().copied(), Some("finish"));
        prop_assert_eq!(at("encrypt").is_some(), a.encrypt);
        prop_assert_eq!(at("user").is_some(), a.user.is_some());
        for st in &p.steps {
            for action in &st.actions {
                match action {
                    // Nothing is written outside the target.
                    Action::WriteFile { path, .. } | Action::Link { path, .. } | Action::Remove { path } => {
                        prop_assert!(path.starts_with(&format!("{TARGET}/")), "{}", path);
                        prop_assert!(!path.contains(".."));
                    }
                    Action::Partition { device, partitions } => {
                        prop_assert_eq!(device, &d);
                        let mut end = 1;
                        for (i, part) in partitions.iter().enumerate() {
                            prop_assert!(part.start_mib >= end, "overlap");
                            prop_assert!(part.device.starts_with(&d));
                            prop_assert!(part.device.ends_with(&part.number.to_string()));
                            match part.size_mib {
                                Some(s) => end = part.start_mib + s,
                                None => prop_assert_eq!(i, partitions.len() - 1),
                            }
                        }
                    }
                    // An encrypted root is formatted only inside its container.
                    Action::FormatBtrfs { device, .. } => {
                        prop_assert_eq!(device.starts_with("/dev/mapper/"), a.encrypt);
                    }
                    _ => {}
                }
            }
        }
        // Each step's line of the summary ("NN/MM title") fits an 80-column console.
        for st in &p.steps {
            prop_assert!(st.title.chars().count() <= 74, "{}", st.title);
        }
        // The chosen filesystem id reaches the files that name it.
        let json = serde_json::to_string(&p).unwrap();
        prop_assert!(json.contains(&f.ids.root_uuid));
    }
}

/// The sample answer file in docs/install.md is valid and complete for an unattended
/// install.
#[test]
fn the_documented_answer_file_is_valid() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/install.md"
    ))
    .unwrap();
    let start = doc
        .find("```toml\n")
        .expect("a TOML block in docs/install.md")
        + 8;
    let end = start + doc[start..].find("```").unwrap();
    let a = Answers::from_toml(&doc[start..end]).unwrap();
    a.check_unattended().unwrap();
    assert_eq!(a.disk, Some(DiskChoice::LargestInternal));
}
