//! DNS-SD between KOOMPI and the real Avahi, on a test network of three network namespaces
//! (koompi-testutil's netns). Each namespace runs its own avahi-daemon with its own
//! dbus-daemon (a system-type bus with avahi's own D-Bus policy), its own runtime directory
//! and services directory (bind-mounted in the namespace's mount namespace that `ip netns
//! exec` makes), and its own host name. Root only: skipped otherwise, failed when
//! `KOOMPI_PRIVILEGED_TESTS=1` asks for it.
//!
//! 1. a class KOOMPI announces is seen by `avahi-browse -rpt _koompi._tcp` on another
//!    device, TXT record and all, and is gone once withdrawn;
//! 2. a class announced by an Avahi service file is found by KOOMPI's browse on another
//!    device (and a bad one beside it is not);
//! 3. with mDNS multicast dropped between two devices, KOOMPI's browse there finds nothing
//!    within its deadline and says so, while a third device still finds the class.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use koompi_class::discovery::{Announcement, Avahi, DiscoveryError};
use koompi_core::cmd::Runner;
use koompi_testutil::netns::{wait_for, KillOnDrop, Net};

/// A real ID, printed by Syncthing 1.19.2's `syncthing generate`.
const ID: &str = "MSK4M7W-ICOJ5FU-RA4Y2TI-FXMJZ4I-HQNSBSE-6VSYFBC-FRDI3HV-H6R4UAT";

const NEEDS: [&str; 7] = [
    "ip",
    "nft",
    "avahi-daemon",
    "avahi-browse",
    "avahi-publish",
    "dbus-daemon",
    "timeout",
];

fn can_run(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        if koompi_testutil::privileged_required() {
            koompi_testutil::fail(&format!(
                "{test}: privileged test required (KOOMPI_PRIVILEGED_TESTS=1) but not root"
            ));
        }
        eprintln!("SKIP {test}: not root (set KOOMPI_PRIVILEGED_TESTS=1 as root to run it)");
        return false;
    }
    koompi_testutil::require_programs(test, &NEEDS)
}

/// One device's avahi-daemon and its bus; both killed on drop (avahi first).
#[allow(dead_code)]
struct Responder {
    avahi: KillOnDrop,
    dbus: KillOnDrop,
    bus: String,
    log: PathBuf,
    dir: PathBuf,
}

impl Responder {
    fn avahi(&self) -> Avahi {
        Avahi::on_bus(Runner::real(), &self.bus)
    }
}

fn bus_conf(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
"#,
        socket.display()
    )
}

/// Starts device `i`'s responder; `services` are written to its services directory first.
fn responder(net: &Net, i: usize, base: &Path, services: &[(&str, String)]) -> Responder {
    let dir = base.join(format!("d{}", i + 1));
    let (run, svc) = (dir.join("run"), dir.join("services"));
    fs::create_dir_all(&run).unwrap();
    fs::create_dir_all(&svc).unwrap();
    for (name, xml) in services {
        fs::write(svc.join(name), xml).unwrap();
    }
    let socket = dir.join("bus");
    fs::write(dir.join("bus.conf"), bus_conf(&socket)).unwrap();
    fs::write(
        dir.join("avahi.conf"),
        format!(
            "[server]\nhost-name=koompi-dev{}\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=eth0\n\
             ratelimit-interval-usec=1000000\nratelimit-burst=1000\n\
             [publish]\npublish-hinfo=no\npublish-workstation=no\n",
            i + 1
        ),
    )
    .unwrap();
    let dbus = KillOnDrop::spawn(
        "dbus-daemon",
        Command::new("dbus-daemon")
            .arg(format!("--config-file={}", dir.join("bus.conf").display()))
            .arg("--nofork")
            .stdin(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(
        wait_for(Duration::from_secs(10), || socket.exists().then_some(())).is_some(),
        "dbus-daemon made no socket in 10 s"
    );
    let bus = format!("unix:path={}", socket.display());
    // The bind mounts' targets must exist; they stay private to the namespace's mounts.
    fs::create_dir_all("/run/avahi-daemon").unwrap();
    fs::create_dir_all("/etc/avahi/services").unwrap();
    let log = dir.join("avahi.log");
    let script = format!(
        "mount --bind '{}' /run/avahi-daemon && mount --bind '{}' /etc/avahi/services && \
         exec avahi-daemon -f '{}' --no-chroot --no-drop-root --no-rlimits --no-proc-title",
        run.display(),
        svc.display(),
        dir.join("avahi.conf").display()
    );
    // avahi-daemon logs to stderr in the foreground; stdout joins it in one file.
    let out = fs::File::create(&log).unwrap();
    let mut sh = Command::new("sh");
    sh.args(["-c", &script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus);
    let mut inside = net.run_in(i, &sh);
    inside
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let mut avahi = KillOnDrop::spawn("avahi-daemon", &mut inside);
    let up = wait_for(Duration::from_secs(10), || {
        let text = fs::read_to_string(&log).unwrap_or_default();
        text.contains("Server startup complete").then_some(())
    });
    avahi.assert_running();
    assert!(
        up.is_some(),
        "avahi-daemon in {} did not start in 10 s: {}",
        net.ns(i),
        fs::read_to_string(&log).unwrap_or_default()
    );
    Responder {
        avahi,
        dbus,
        bus,
        log,
        dir,
    }
}

/// Runs Avahi's own `avahi-browse -rpt _koompi._tcp` against a responder (5 s at most).
fn avahi_browse(r: &Responder) -> String {
    let out = Command::new("timeout")
        .args(["5", "avahi-browse", "-rpt", "_koompi._tcp"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &r.bus)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// avahi-browse's escaping of a TXT item: `"` and `\` backslashed, bytes outside printable ASCII as \DDD.
fn escaped(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' => format!("\\{}", char::from(b)),
            32..=126 => char::from(b).to_string(),
            _ => format!("\\{b:03}"),
        })
        .collect()
}

#[test]
fn a_class_koompi_announces_is_seen_by_avahi_browse() {
    if !can_run("a_class_koompi_announces_is_seen_by_avahi_browse") {
        return;
    }
    let net = Net::new(3);
    let tmp = tempfile::tempdir().unwrap();
    let r: Vec<Responder> = (0..3)
        .map(|i| responder(&net, i, tmp.path(), &[]))
        .collect();
    let class = "ថ្នាក់ទី១២ គណិតវិទ្យា";
    let a = Announcement::new(class, ID, 22000).unwrap();
    let publication = r[0].avahi().publish(&a).unwrap();
    let want = [
        "\"v=1\"".to_string(),
        format!("\"class={}\"", escaped(class)),
        format!("\"teacher={ID}\""),
        "\"join=22000\"".to_string(),
    ];
    for seer in [1, 2] {
        let line = wait_for(Duration::from_secs(15), || {
            avahi_browse(&r[seer])
                .lines()
                .find(|l| l.starts_with("=;") && l.contains(";10.77.0.1;22000;"))
                .map(str::to_string)
        });
        let line = line.unwrap_or_else(|| panic!("device {} never saw the class", seer + 1));
        assert!(line.contains(";koompi-dev1.local;"), "{line}");
        for w in &want {
            assert!(line.contains(w.as_str()), "{w} not in {line}");
        }
    }
    publication.withdraw();
    let gone = wait_for(Duration::from_secs(15), || {
        (!avahi_browse(&r[1]).contains(";10.77.0.1;22000;")).then_some(())
    });
    assert!(gone.is_some(), "the class stayed announced after withdraw");
}

fn service_file(instance: &str, txt: &[String]) -> String {
    let records: String = txt
        .iter()
        .map(|t| format!("    <txt-record>{t}</txt-record>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" standalone='no'?>\n\
         <!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n<service-group>\n\
         <name>{instance}</name>\n  <service>\n    <type>_koompi._tcp</type>\n\
         <port>22000</port>\n{records}  </service>\n</service-group>\n"
    )
}

#[test]
fn a_class_in_an_avahi_service_file_is_found_by_koompi() {
    if !can_run("a_class_in_an_avahi_service_file_is_found_by_koompi") {
        return;
    }
    let net = Net::new(3);
    let tmp = tempfile::tempdir().unwrap();
    let class = "ថ្នាក់ ភាសាអង់គ្លេស";
    let good = Announcement::new(class, ID, 22000).unwrap().txt();
    let bad: Vec<String> = good
        .iter()
        .map(|t| {
            if t == "v=1" {
                "v=2".into()
            } else {
                t.replace(class, "Future")
            }
        })
        .collect();
    let files = [
        ("koompi.service", service_file(class, &good)),
        ("future.service", service_file("Future", &bad)),
    ];
    let r0 = responder(&net, 0, tmp.path(), &files);
    let r1 = responder(&net, 1, tmp.path(), &[]);
    let started = Instant::now();
    let found = r1.avahi().browse(Duration::from_secs(15)).unwrap();
    eprintln!("found in {:?}: {found:?}", started.elapsed());
    let c = found
        .classes
        .iter()
        .find(|c| c.class == class)
        .unwrap_or_else(|| panic!("not found: {found:?}"));
    assert_eq!(c.teacher, ID);
    assert_eq!(c.join_port, 22000);
    assert_eq!(c.host, "koompi-dev1.local");
    assert_eq!(
        c.addresses,
        vec!["10.77.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(
        found.classes.iter().all(|c| c.class != "Future"),
        "{found:?}"
    );
    drop(r0);
}

#[test]
fn with_multicast_blocked_browse_finds_nothing_and_says_so() {
    if !can_run("with_multicast_blocked_browse_finds_nothing_and_says_so") {
        return;
    }
    let net = Net::new(3);
    net.block_multicast(0, 2);
    let tmp = tempfile::tempdir().unwrap();
    let r: Vec<Responder> = (0..3)
        .map(|i| responder(&net, i, tmp.path(), &[]))
        .collect();
    let a = Announcement::new("Maths", ID, 22000).unwrap();
    let _publication = r[0].avahi().publish(&a).unwrap();
    // Device 2 (not blocked) finds the class: the network and the announcement work.
    let seen = r[1].avahi().browse(Duration::from_secs(15)).unwrap();
    assert_eq!(seen.classes.len(), 1, "{seen:?}");
    // Device 3 cannot hear device 1's multicast: nothing, within the deadline, said so.
    let started = Instant::now();
    let err = r[2].avahi().browse(Duration::from_secs(4)).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, DiscoveryError::NoClass(4)), "{err}");
    assert!(err.to_string().contains("--teacher HOST"), "{err}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(7),
        "browse took {took:?} for a 4 s deadline"
    );
}

#[test]
fn without_a_daemon_publish_and_browse_fail_in_one_line() {
    if !koompi_testutil::require_programs(
        "without_a_daemon_publish_and_browse_fail_in_one_line",
        &["avahi-publish", "avahi-browse", "timeout"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bus = format!("unix:path={}", tmp.path().join("no-bus").display());
    let avahi = Avahi::on_bus(Runner::real(), &bus);
    let a = Announcement::new("Maths", ID, 22000).unwrap();
    let err = avahi.publish(&a).unwrap_err();
    assert!(matches!(err, DiscoveryError::PublishExited(_)), "{err}");
    assert!(err.to_string().contains("avahi-daemon"), "{err}");
    let started = Instant::now();
    let err = avahi.browse(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, DiscoveryError::Avahi { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn a_dry_run_records_the_announcement() {
    let runner = Runner::recording();
    let a = Announcement::new("ថ្នាក់ A", ID, 22000).unwrap();
    let publication = Avahi::new(runner.clone()).publish(&a).unwrap();
    drop(publication);
    assert_eq!(
        runner.recorded(),
        vec![format!(
            "avahi-publish --service 'ថ្នាក់ A' _koompi._tcp 22000 v=1 'class=ថ្នាក់ A' teacher={ID} join=22000"
        )]
    );
}
