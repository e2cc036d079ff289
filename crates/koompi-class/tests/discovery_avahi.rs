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

use std::path::Path;
use std::time::{Duration, Instant};

use koompi_class::discovery::{Announcement, Avahi, DiscoveryError};
use koompi_core::cmd::Runner;
use koompi_testutil::avahi::Responder;
use koompi_testutil::netns::{wait_for, Net};

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
    koompi_testutil::require_root_with(test, &NEEDS)
}

fn responder(net: &Net, i: usize, base: &Path, services: &[(&str, String)]) -> Responder {
    koompi_testutil::avahi::start(net, i, base, services)
}

fn avahi(r: &Responder) -> Avahi {
    Avahi::on_bus(Runner::real(), &r.bus)
}

fn avahi_browse(r: &Responder) -> String {
    r.browse_koompi()
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
    let publication = avahi(&r[0]).publish(&a).unwrap();
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
    let found = avahi(&r1).browse(Duration::from_secs(15)).unwrap();
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
    let _publication = avahi(&r[0]).publish(&a).unwrap();
    // Device 2 (not blocked) finds the class: the network and the announcement work.
    let seen = avahi(&r[1]).browse(Duration::from_secs(15)).unwrap();
    assert_eq!(seen.classes.len(), 1, "{seen:?}");
    // Device 3 cannot hear device 1's multicast: nothing, within the deadline, said so.
    let started = Instant::now();
    let err = avahi(&r[2]).browse(Duration::from_secs(4)).unwrap_err();
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
