//! The watchdog's operations on a real Btrfs in a loop device, with an ESP directory:
//! check, success, known-good marking, the fallback boot's rollback, deadline, status.
//! (GRUB's side is proven by the VM scenarios: `cargo xtask vm-test`.)
#![allow(clippy::unwrap_used)]

use std::fs;

use chrono::Utc;
use koompi_boot::grubenv;
use koompi_boot::watchdog::{self, CheckOutcome, Host, Settings, SnapperTarget};
use koompi_core::cmd::Runner;
use koompi_snapshots::config::SnapperConfig;
use koompi_snapshots::store::{CreateRequest, Store};
use koompi_testutil::{require_root, write, LoopBtrfs};

struct Rig {
    fx: LoopBtrfs,
    _dirs: tempfile::TempDir,
    settings: Settings,
}

fn rig() -> Rig {
    let fx = LoopBtrfs::koompi();
    let dirs = tempfile::tempdir().unwrap();
    let settings = Settings {
        esp: dirs.path().join("esp"),
        state_dir: dirs.path().join("log/koompi"),
        snapper: SnapperTarget::File(fx.config_file.clone()),
        success_delay: 0,
        motd_dir: dirs.path().join("motd.d"),
    };
    // A bootable tree: a kernel with its initramfs, as Debian names them.
    write(&fx.root.join("boot/vmlinuz-6.1.0-test"), "kernel");
    write(&fx.root.join("boot/initrd.img-6.1.0-test"), "initrd");
    write(&fx.root.join("etc/version"), "factory");
    watchdog::init(&settings, false).unwrap();
    Rig {
        fx,
        _dirs: dirs,
        settings,
    }
}

fn host(boot_id: &str, cmdline: &str) -> Host {
    Host {
        cmdline: cmdline.to_string(),
        boot_id: boot_id.to_string(),
        boot_started: Utc::now() - chrono::Duration::seconds(30),
        kernel_release: "6.1.0-test".into(),
    }
}

fn store(r: &Rig) -> Store {
    Store::open(SnapperConfig::from_file(&r.fx.config_file).unwrap()).unwrap()
}

fn env(r: &Rig) -> grubenv::GrubEnv {
    grubenv::read(&r.settings.env_path()).unwrap()
}

fn set_tries(r: &Rig, n: &str) {
    let mut e = env(r);
    e.set("koompi_tries", n).unwrap();
    grubenv::write(&r.settings.env_path(), &e).unwrap();
}

#[test]
fn factory_snapshot_is_the_first_fallback_and_success_confirms() {
    if !require_root("factory_snapshot_is_the_first_fallback_and_success_confirms") {
        return;
    }
    let r = rig();
    let s = store(&r);
    let factory = s
        .create(
            &CreateRequest {
                cleanup: koompi_snapshots::Cleanup::None,
                ..CreateRequest::default()
                    .with_name("factory-20260101")
                    .unwrap()
            }
            .important(),
        )
        .unwrap();
    let mut info = factory.info.clone();
    info.userdata
        .insert(watchdog::KNOWN_GOOD_KEY.into(), "yes".into());
    s.write_info(&info).unwrap();
    // A snapshot taken before any confirmed boot is not known-good.
    s.create(&CreateRequest::default().with_name("unknown").unwrap())
        .unwrap();

    set_tries(&r, "1"); // GRUB counted this boot
    let h = host("boot-1", "root=UUID=x rootflags=subvol=@ panic=10");
    let out = watchdog::check(&r.settings, &h, &Runner::real(), false).unwrap();
    assert_eq!(out, CheckOutcome::Pending { tries: 1 });
    let e = env(&r);
    assert_eq!(e.get("koompi_good"), Some("1"));
    assert_eq!(e.get("koompi_kernel"), Some("/boot/vmlinuz-6.1.0-test"));
    assert_eq!(e.get("koompi_initrd"), Some("/boot/initrd.img-6.1.0-test"));
    let st = watchdog::status(&r.settings, &h).unwrap();
    assert!(!st.confirmed);
    assert_eq!(st.tries, 1);

    // Confirmed: the counter is reset, and a snapshot taken in this session becomes the
    // known-good fallback at the next refresh.
    watchdog::success(&r.settings, &h).unwrap();
    assert_eq!(env(&r).get("koompi_tries"), Some("0"));
    let later = s
        .create(&CreateRequest::default().with_name("pre-update").unwrap())
        .unwrap();
    let f = watchdog::refresh(
        &r.settings,
        &h,
        &watchdog::load_history(&r.settings).unwrap(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.number, later.info.num);
    assert_eq!(
        s.get(later.info.num)
            .unwrap()
            .info
            .userdata
            .get(watchdog::KNOWN_GOOD_KEY),
        Some(&"yes".to_string())
    );
    let st = watchdog::status(&r.settings, &h).unwrap();
    assert!(st.confirmed);
    assert_eq!(st.fallback.unwrap().number, later.info.num);
    assert!(st.last_confirmed.is_some());
}

#[test]
fn fallback_boot_makes_the_rollback_permanent() {
    if !require_root("fallback_boot_makes_the_rollback_permanent") {
        return;
    }
    let r = rig();
    let s = store(&r);
    let h1 = host("boot-1", "ro");
    watchdog::check(&r.settings, &h1, &Runner::real(), false).unwrap();
    watchdog::success(&r.settings, &h1).unwrap();
    let good = s
        .create(&CreateRequest::default().with_name("known-good").unwrap())
        .unwrap()
        .info
        .num;
    watchdog::mark_good(&r.settings, &h1, good, false).unwrap();
    assert_eq!(env(&r).get("koompi_good"), Some(good.to_string().as_str()));

    // An update breaks the system; three boots fail; GRUB boots the fallback.
    write(&r.fx.root.join("etc/version"), "broken");
    set_tries(&r, "4");
    let runner = Runner::recording();
    let fb = host(
        "boot-5",
        &format!("root=UUID=x koompi.fallback={good} panic=10"),
    );
    let out = watchdog::check(&r.settings, &fb, &runner, true).unwrap();
    let CheckOutcome::RolledBack { target, backup } = out else {
        panic!("expected a rollback, got {out:?}");
    };
    assert_eq!(target, good);
    assert_eq!(runner.recorded(), vec!["systemctl --no-block reboot"]);
    assert_eq!(env(&r).get("koompi_tries"), Some("0"));
    // The reboot: @ now holds the known-good content, the broken state is a snapshot.
    r.fx.remount_root();
    assert_eq!(
        fs::read_to_string(r.fx.root.join("etc/version")).unwrap(),
        "factory"
    );
    let s = store(&r);
    let b = s.get(backup).unwrap();
    assert!(b.info.is_important());
    assert_eq!(
        fs::read_to_string(b.path.join("etc/version")).unwrap(),
        "broken"
    );
    // The event is recorded, shown by status and at login.
    let h6 = host("boot-6", "ro");
    watchdog::check(&r.settings, &h6, &Runner::real(), false).unwrap();
    let st = watchdog::status(&r.settings, &h6).unwrap();
    assert_eq!(st.rollbacks.len(), 1);
    assert_eq!(
        (st.rollbacks[0].target, st.rollbacks[0].backup),
        (good, backup)
    );
    let motd = fs::read_to_string(r.settings.motd_dir.join("koompi-watchdog.motd")).unwrap();
    assert!(motd.contains(&format!("snapshot {good}")), "{motd}");
    // The broken state never becomes the fallback: its session was never confirmed.
    assert_eq!(st.fallback.unwrap().number, good);
}

#[test]
fn unconfirmed_boots_cannot_mark_and_the_deadline_reboots_them() {
    if !require_root("unconfirmed_boots_cannot_mark_and_the_deadline_reboots_them") {
        return;
    }
    let r = rig();
    let s = store(&r);
    let n = s.create(&CreateRequest::default()).unwrap().info.num;
    let h = host("boot-1", "ro");
    watchdog::check(&r.settings, &h, &Runner::real(), false).unwrap();
    let err = watchdog::mark_good(&r.settings, &h, n, false).unwrap_err();
    assert!(err.to_string().contains("not confirmed"), "{err}");
    let runner = Runner::recording();
    assert!(watchdog::deadline(&r.settings, &h, &runner).unwrap());
    assert_eq!(runner.recorded(), vec!["systemctl reboot --force"]);
    watchdog::success(&r.settings, &h).unwrap();
    let runner = Runner::recording();
    assert!(!watchdog::deadline(&r.settings, &h, &runner).unwrap());
    assert!(runner.recorded().is_empty());
    // Without a kernel in /boot a snapshot cannot be the fallback.
    fs::remove_file(r.fx.root.join("boot/vmlinuz-6.1.0-test")).unwrap();
    let bare = s.create(&CreateRequest::default()).unwrap().info.num;
    let f = watchdog::mark_good(&r.settings, &h, bare, false).unwrap();
    assert_ne!(f.map(|f| f.number), Some(bare));
}

#[test]
fn install_time_init_points_the_fallback_at_the_factory_snapshot() {
    if !require_root("install_time_init_points_the_fallback_at_the_factory_snapshot") {
        return;
    }
    let r = rig();
    let s = store(&r);
    // Nothing marked yet: no fallback, and the block keeps only the counter.
    assert!(watchdog::init_fallback(&r.settings, &s).unwrap().is_none());
    assert!(env(&r).get("koompi_good").is_none());
    let mut req = CreateRequest::default()
        .with_name("factory-20260101")
        .unwrap();
    req.userdata
        .insert(watchdog::KNOWN_GOOD_KEY.into(), "yes".into());
    let factory = s.create(&req).unwrap();
    // A newer, unmarked snapshot is not a fallback before any boot was confirmed.
    s.create(&CreateRequest::default()).unwrap();
    let f = watchdog::init_fallback(&r.settings, &s).unwrap().unwrap();
    assert_eq!(f.number, factory.info.num);
    let e = env(&r);
    assert_eq!(
        e.get("koompi_good"),
        Some(factory.info.num.to_string().as_str())
    );
    assert_eq!(e.get("koompi_kernel"), Some("/boot/vmlinuz-6.1.0-test"));
    assert_eq!(e.get("koompi_initrd"), Some("/boot/initrd.img-6.1.0-test"));
    assert_eq!(e.get("koompi_tries"), Some("0"));
}

/// `grub-editenv FILE list` succeeds: GRUB's own tool reads the block.
fn grub_reads(path: &std::path::Path) -> String {
    let out = std::process::Command::new("grub-editenv")
        .arg(path)
        .arg("list")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grub-editenv cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_damaged_environment_block_is_repaired_and_the_boot_counted() {
    if !require_root("a_damaged_environment_block_is_repaired_and_the_boot_counted")
        || !koompi_testutil::require_programs("watchdog_btrfs", &["grub-editenv"])
    {
        return;
    }
    let r = rig();
    let p = r.settings.env_path();
    let h = host("boot-damaged-1", "root=UUID=x rootflags=subvol=@");
    // Garbage: status says so (and changes nothing); check repairs it and counts this
    // boot, which GRUB could not count.
    fs::write(&p, [0xa5u8; 1024]).unwrap();
    let err = watchdog::status(&r.settings, &h).unwrap_err().to_string();
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(fs::read(&p).unwrap(), vec![0xa5u8; 1024]);
    let out = watchdog::check(&r.settings, &h, &Runner::real(), false).unwrap();
    assert!(matches!(out, CheckOutcome::Pending { tries: 1 }), "{out:?}");
    assert!(grub_reads(&p).contains("koompi_tries=1"));
    // A directory in its place, then success: confirmed, counter reset, readable again.
    fs::remove_file(&p).unwrap();
    fs::create_dir_all(p.join("junk")).unwrap();
    watchdog::success(&r.settings, &h).unwrap();
    assert!(grub_reads(&p).contains("koompi_tries=0"));
    assert!(watchdog::status(&r.settings, &h).unwrap().confirmed);
    // No header, but our variables: kept.
    fs::write(&p, "koompi_tries=2\nkoompi_good=1\n").unwrap();
    watchdog::success(&r.settings, &h).unwrap();
    let listed = grub_reads(&p);
    assert!(listed.contains("koompi_tries=0"), "{listed}");
    // A block of another size that GRUB reads and writes: accepted, size kept.
    let mut big = b"# GRUB Environment Block\nkoompi_tries=2\n".to_vec();
    big.resize(2048, b'#');
    fs::write(&p, &big).unwrap();
    assert!(grub_reads(&p).contains("koompi_tries=2"));
    watchdog::success(&r.settings, &h).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 2048);
    assert!(grub_reads(&p).contains("koompi_tries=0"));
}

#[test]
fn success_without_a_snapper_config_confirms_and_succeeds() {
    if !require_root("success_without_a_snapper_config_confirms_and_succeeds") {
        return;
    }
    let mut r = rig();
    r.settings.snapper = SnapperTarget::File(r.fx.config_file.with_extension("missing"));
    let h = host("boot-noconfig-1", "root=UUID=x rootflags=subvol=@");
    watchdog::success(&r.settings, &h).unwrap();
    assert!(watchdog::status(&r.settings, &h).unwrap().confirmed);
    assert_eq!(env(&r).get("koompi_tries"), Some("0"));
}
