//! The executor on a real loop-device disk: the plan's disk steps (wipe, GPT, FAT, Btrfs
//! with the plan's identifiers, the subvolumes, the mounts), then unmounting; a run
//! interrupted after any step and run again resumes from the journal and ends in the same
//! disk; another install's journal is refused; the LUKS2 container is formatted as the
//! plan says (PBKDF2 for GRUB). Opening it needs device-mapper and mounting the ESP needs
//! vfat, which the test hosts' kernels lack: those parts run in the VM scenarios. The
//! target's mount point is the executor's one fixed path, so the tests take turns. These
//! tests need root.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;

use koompi_core::cmd::Runner;
use koompi_install::answers::Answers;
use koompi_install::disks::Disk as PlanDisk;
use koompi_install::exec::{self, ExecError, Options, Secrets};
use koompi_install::plan::{self, Action, Cpu, Facts, Ids, Initramfs, Plan, Step, TARGET};
use koompi_testutil::{require_programs, require_root, sh, LoopDisk};

/// A loop disk whose target mounts are undone before it is detached.
struct Disk(LoopDisk);

impl Disk {
    fn new(size_gib: u64) -> Disk {
        Disk(LoopDisk::new(size_gib))
    }
}

impl std::ops::Deref for Disk {
    type Target = LoopDisk;
    fn deref(&self) -> &LoopDisk {
        &self.0
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        for p in [TARGET, "/run/koompi-install/top"] {
            let _ = Command::new("umount").args(["--recursive", p]).status();
        }
    }
}

/// The tests share the target's mount point: one at a time.
static TARGET_IN_USE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TARGET_IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `plan` without mounting the ESP (no vfat in the test hosts' kernels).
fn without_esp_mount(plan: &Plan) -> Plan {
    let mut p = plan.clone();
    for s in &mut p.steps {
        s.actions
            .retain(|a| !matches!(a, Action::Mount { path, .. } if path.ends_with("/boot/efi")));
    }
    p
}

fn ready(test: &str) -> bool {
    require_root(test)
        && require_programs(test, &["sfdisk", "wipefs", "mkfs.fat", "partx", "blkid"])
}

fn facts(device: &str) -> Facts {
    Facts {
        disk: PlanDisk {
            path: device.into(),
            size: 9 * 1024 * 1024 * 1024,
            kind: "loop".into(),
            model: None,
            removable: false,
            transport: None,
            read_only: false,
            mountpoints: vec![],
            labels: vec![],
            partitions: vec![],
        },
        live: None,
        grub_argon2: false,
        cpu: Cpu::Other,
        uefi: false,
        initramfs: Initramfs::InitramfsTools,
        date: "20261206".into(),
        ids: Ids {
            root_uuid: "3d0c9a52-6b1e-4f7a-9c28-5e4b1a7d9f01".into(),
            luks_uuid: "8a6f2c1e-3b4d-4e5f-9a0b-1c2d3e4f5a6b".into(),
            esp_id: "c0ffee42".into(),
        },
    }
}

/// The disk steps of the plan: everything up to the mounts, then the unmount.
const DISK_STEPS: [&str; 7] = [
    "wipe",
    "partition",
    "format-esp",
    "format-root",
    "subvolumes",
    "mount",
    "finish",
];

fn blkid(dev: &str, tag: &str) -> String {
    sh("blkid", &["-o", "value", "-s", tag, dev])
        .trim()
        .to_string()
}

fn run(plan: &Plan, journal: &Path, only: &[&str]) -> Result<Vec<(String, bool)>, ExecError> {
    let mut seen = Vec::new();
    exec::execute(
        plan,
        &Secrets::default(),
        &Runner::real(),
        journal,
        &Options {
            only: only.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        },
        &mut |p| seen.push((p.id.to_string(), p.skipped)),
    )?;
    Ok(seen)
}

/// The disk as the plan made it: the identifiers, the subvolumes.
fn check_disk(disk: &str, f: &Facts) {
    let esp = plan::partition_path(disk, 2);
    let root = plan::partition_path(disk, 3);
    assert_eq!(blkid(&esp, "UUID"), f.ids.esp_uuid());
    assert_eq!(blkid(&esp, "LABEL"), "KOOMPI-ESP");
    assert_eq!(blkid(&root, "UUID"), f.ids.root_uuid);
    assert_eq!(blkid(&root, "TYPE"), "btrfs");
    let mnt = tempfile::tempdir().unwrap();
    sh(
        "mount",
        &["-o", "subvolid=5", &root, mnt.path().to_str().unwrap()],
    );
    let list = sh(
        "btrfs",
        &["subvolume", "list", mnt.path().to_str().unwrap()],
    );
    let _ = Command::new("umount").arg(mnt.path()).status();
    for sv in ["@", "@home", "@snapshots", "@var_log"] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" path {sv}"))),
            "{sv} missing: {list}"
        );
    }
}

#[test]
fn the_disk_steps_make_the_planned_layout_and_mount_it() {
    if !ready("the_disk_steps_make_the_planned_layout_and_mount_it") {
        return;
    }
    let _turn = turn();
    let disk = Disk::new(9);
    // Something old on the disk, which the wipe must erase.
    sh(
        "mkfs.btrfs",
        &["-q", "-f", "-L", "old-system", &disk.device],
    );
    let f = facts(&disk.device);
    let a = Answers::from_toml("hostname = \"lab-07\"\n").unwrap();
    let p = without_esp_mount(&plan::plan(&a, &f).unwrap());
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("journal.json");
    let mount_only = &DISK_STEPS[..6];
    run(&p, &journal, mount_only).unwrap();
    // Mounted where the plan says, with each subvolume in its place.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for at in ["", "/home", "/.snapshots", "/var/log"] {
        let path = format!("{TARGET}{at}");
        assert!(
            mounts
                .lines()
                .any(|l| l.split_whitespace().nth(4) == Some(path.as_str())),
            "{path} is not mounted"
        );
    }
    // The configure step's files land in the target (its programs need a real system).
    let files = Plan {
        steps: vec![Step {
            id: "files",
            title: "files".into(),
            optional: false,
            actions: p
                .steps
                .iter()
                .find(|s| s.id == "configure")
                .unwrap()
                .actions
                .iter()
                .filter(|a| matches!(a, Action::WriteFile { .. } | Action::Link { .. }))
                .cloned()
                .collect(),
        }],
        ..p.clone()
    };
    run(&files, &work.path().join("files.json"), &[]).unwrap();
    let fstab = fs::read_to_string(format!("{TARGET}/etc/fstab")).unwrap();
    assert!(
        fstab.contains(&format!("UUID={} / btrfs subvol=@,", f.ids.root_uuid)),
        "{fstab}"
    );
    assert!(
        fstab.contains(&format!("UUID={} /boot/efi vfat", f.ids.esp_uuid())),
        "{fstab}"
    );
    assert_eq!(
        fs::read_to_string(format!("{TARGET}/etc/hostname")).unwrap(),
        "lab-07\n"
    );
    assert_eq!(
        fs::read_link(format!("{TARGET}/etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Asia/Phnom_Penh")
    );
    run(&p, &journal, &["finish"]).unwrap();
    assert!(!fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(TARGET));
    check_disk(&disk.device, &f);
    // The journal lists every step run, in order.
    let j: exec::Journal = serde_json::from_str(&fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!(j.done, DISK_STEPS);
}

#[test]
fn an_install_stopped_after_any_step_resumes_from_its_journal() {
    if !ready("an_install_stopped_after_any_step_resumes_from_its_journal") {
        return;
    }
    let _turn = turn();
    let disk = Disk::new(9);
    let f = facts(&disk.device);
    let p = without_esp_mount(&plan::plan(&Answers::default(), &f).unwrap());
    for stop in 1..DISK_STEPS.len() {
        let work = tempfile::tempdir().unwrap();
        let journal = work.path().join("journal.json");
        // The first run stops after `stop` steps (a power cut between two steps)...
        run(&p, &journal, &DISK_STEPS[..stop]).unwrap();
        let _ = Command::new("umount")
            .args(["--recursive", TARGET])
            .status();
        let _ = Command::new("umount")
            .args(["--recursive", "/run/koompi-install/top"])
            .status();
        // ...and the re-run skips exactly those and does the rest.
        let seen = run(&p, &journal, &DISK_STEPS).unwrap();
        let skipped: Vec<&str> = seen
            .iter()
            .filter(|(_, s)| *s)
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(skipped, &DISK_STEPS[..stop], "stopped after {stop}");
        check_disk(&disk.device, &f);
    }
}

fn mounted(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(path))
}

/// A power cut once the new system is mounted: the live system's journal (in /run) and
/// its mounts are gone. The journal's copy on the disk says what was done; the re-run
/// mounts again what the steps done had mounted, and a finished install leaves no
/// journal on the disk to resume.
#[test]
fn after_a_power_cut_the_journal_on_the_disk_resumes_the_install() {
    if !ready("after_a_power_cut_the_journal_on_the_disk_resumes_the_install") {
        return;
    }
    let _turn = turn();
    let disk = Disk::new(9);
    let f = facts(&disk.device);
    let p = without_esp_mount(&plan::plan(&Answers::default(), &f).unwrap());
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("journal.json");
    let until_mounted = &DISK_STEPS[..6];
    run(&p, &journal, until_mounted).unwrap();
    assert!(Path::new(plan::TARGET_JOURNAL).is_file());
    // The cut.
    sh("umount", &["--recursive", TARGET]);
    fs::remove_file(&journal).unwrap();
    assert!(!mounted(TARGET));

    let found = exec::journal_on_disk(&p, &Secrets::default(), &Runner::real())
        .expect("the journal on the disk");
    assert_eq!(found.done, until_mounted);
    assert_eq!(found.ids.as_ref().unwrap().root_uuid, f.ids.root_uuid);
    assert!(!mounted(plan::PEEK), "the look at the disk left a mount");
    found.write(&journal).unwrap();
    let seen = run(&p, &journal, until_mounted).unwrap();
    assert!(seen.iter().all(|(_, skipped)| *skipped), "{seen:?}");
    for at in ["", "/home", "/.snapshots", "/var/log"] {
        assert!(
            mounted(&format!("{TARGET}{at}")),
            "{TARGET}{at} not mounted again"
        );
    }
    run(&p, &journal, &["finish"]).unwrap();
    assert!(!mounted(TARGET));
    assert!(
        exec::journal_on_disk(&p, &Secrets::default(), &Runner::real()).is_none(),
        "a finished install left its journal on the disk"
    );
    check_disk(&disk.device, &f);
}

/// `blkid -p`'s value of `tag` for `dev` (probing the device itself: this host has no
/// udev, so lsblk knows no filesystems here), or `None`.
fn probe(dev: &str, tag: &str) -> Option<String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "value", "-s", tag, dev])
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// Beside another system: the disk has an ESP and another system's partition; the install
/// into the third partition leaves the partition table, the ESP and the other system's
/// filesystem (and its file) as they were, and makes KOOMPI's layout in its partition.
#[test]
fn an_install_into_a_partition_keeps_the_others() {
    if !ready("an_install_into_a_partition_keeps_the_others") {
        return;
    }
    let _turn = turn();
    let disk = Disk::new(9);
    let dev = disk.device.clone();
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", &dev])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        sfdisk.stdin.as_mut().unwrap(),
        b"label: gpt\nsize=64MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n\
          size=300MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n\
          type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
    )
    .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let _ = Command::new("partx").args(["--add", &dev]).status();
    let p = |n| plan::partition_path(&dev, n);
    for n in 1..=3 {
        let node = p(n);
        for _ in 0..100 {
            if Path::new(&node).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    sh("mkfs.fat", &["-F", "32", "-n", "OTHER-ESP", &p(1)]);
    sh("mkfs.btrfs", &["-q", "-f", "-L", "windows", &p(2)]);
    let mnt = tempfile::tempdir().unwrap();
    let m = mnt.path().to_str().unwrap();
    sh("mount", &[&p(2), m]);
    fs::write(mnt.path().join("homework.txt"), "kept\n").unwrap();
    sh("umount", &[m]);
    let table = sh("sfdisk", &["--dump", &dev]);
    let before = [probe(&p(1), "UUID"), probe(&p(2), "UUID")];

    let mut f = facts(&dev);
    f.disk.partitions = (1..=3)
        .map(|n| koompi_install::disks::Part {
            path: p(n),
            fstype: probe(&p(n), "TYPE"),
            parttype: probe(&p(n), "PART_ENTRY_TYPE"),
            uuid: probe(&p(n), "UUID"),
            size: sh("blockdev", &["--getsize64", &p(n)])
                .trim()
                .parse()
                .unwrap(),
            ..Default::default()
        })
        .collect();
    let a = Answers::from_toml(&format!("root-partition = \"{}\"\n", p(3))).unwrap();
    let plan = without_esp_mount(&plan::plan(&a, &f).unwrap());
    assert_eq!(plan.root_partition.as_deref(), Some(p(3).as_str()));
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("journal.json");
    // Its disk steps: no new table, no ESP formatted.
    let steps = ["wipe", "format-root", "subvolumes", "mount", "finish"];
    let seen: Vec<String> = run(&plan, &journal, &steps)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(seen, steps);
    assert!(plan
        .steps
        .iter()
        .all(|s| s.id != "partition" && s.id != "format-esp"));

    assert_eq!(
        sh("sfdisk", &["--dump", &dev]),
        table,
        "the partition table changed"
    );
    assert_eq!(
        [probe(&p(1), "UUID"), probe(&p(2), "UUID")],
        before,
        "the ESP or the other system's filesystem changed"
    );
    sh("mount", &["-o", "ro", &p(2), m]);
    let kept = fs::read_to_string(mnt.path().join("homework.txt"));
    sh("umount", &[m]);
    assert_eq!(kept.unwrap(), "kept\n");
    assert_eq!(blkid(&p(3), "UUID"), f.ids.root_uuid);
    assert_eq!(blkid(&p(3), "TYPE"), "btrfs");
}

#[test]
fn another_installs_journal_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("journal.json");
    let f = facts("/dev/koompi-test-disk");
    let p = plan::plan(&Answers::default(), &f).unwrap();
    fs::write(
        &journal,
        r#"{"disk":"/dev/koompi-test-disk","root_uuid":"00000000-0000-0000-0000-000000000000","done":["wipe"]}"#,
    )
    .unwrap();
    let e = run(&p, &journal, &["wipe"]).unwrap_err();
    assert!(matches!(e, ExecError::ForeignJournal { .. }), "{e}");
    assert!(
        e.to_string().ends_with("run with --restart to start over"),
        "{e}"
    );
    fs::write(&journal, "{ torn").unwrap();
    let e = run(&p, &journal, &["wipe"]).unwrap_err();
    assert!(e.to_string().contains("unreadable"), "{e}");
}

#[test]
fn the_luks_container_is_made_as_planned() {
    if !ready("the_luks_container_is_made_as_planned")
        || !require_programs("the_luks_container_is_made_as_planned", &["cryptsetup"])
    {
        return;
    }
    let _turn = turn();
    let disk = Disk::new(9);
    let f = facts(&disk.device);
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("passphrase");
    fs::write(&pass, "mekong river\n").unwrap();
    let a = Answers::from_toml(&format!(
        "encrypt = true\npassphrase-file = \"{}\"\n",
        pass.display()
    ))
    .unwrap();
    let p = plan::plan(&a, &f).unwrap();
    // Only luksFormat: opening needs device-mapper (the VM scenarios open it).
    let format_only = Plan {
        steps: p
            .steps
            .iter()
            .filter(|s| ["wipe", "partition", "encrypt"].contains(&s.id))
            .map(|s| Step {
                actions: s
                    .actions
                    .iter()
                    .filter(|a| !matches!(a, Action::LuksOpen { .. }))
                    .cloned()
                    .collect(),
                ..s.clone()
            })
            .collect(),
        ..p.clone()
    };
    let secrets = Secrets::load(&p).unwrap();
    exec::execute(
        &format_only,
        &secrets,
        &Runner::real(),
        &work.path().join("journal.json"),
        &Options::default(),
        &mut |_| {},
    )
    .unwrap();
    let part = plan::partition_path(&disk.device, 3);
    let dump = sh("cryptsetup", &["luksDump", &part]);
    assert!(dump.contains("Version:       \t2"), "{dump}");
    assert!(
        dump.contains(&format!("UUID:          \t{}", f.ids.luks_uuid)),
        "{dump}"
    );
    assert!(dump.contains("PBKDF:      pbkdf2"), "{dump}");
    // The passphrase opens it (checked without device-mapper), a wrong one does not.
    let test = |pw: &str| {
        let mut c = Command::new("cryptsetup")
            .args(["open", "--test-passphrase", "--key-file", "-", &part])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), pw.as_bytes()).unwrap();
        drop(c.stdin.take());
        c.wait().unwrap().success()
    };
    assert!(test("mekong river"));
    assert!(!test("tonle sap"));
}
