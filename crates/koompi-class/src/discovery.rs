//! Finding a class on the school's LAN: DNS-SD over mDNS, as Avahi speaks it.
//!
//! A teacher's laptop announces its class as a service of type `_koompi._tcp`: the instance
//! name is the class name, the port is the teacher's join port, and the TXT record carries
//! (keys case-insensitive, first occurrence wins, unknown keys ignored, RFC 6763 §6):
//!
//! | key       | value                                                   |
//! |-----------|---------------------------------------------------------|
//! | `v`       | `1`, the version of this record (another value: refused) |
//! | `class`   | the class name, UTF-8, 1..=63 bytes (Khmer welcome)      |
//! | `teacher` | the teacher's Syncthing device ID, canonical form        |
//! | `join`    | the join port, 1..=65535, equal to the service's port    |
//!
//! The `class` key, not the instance name, names the class: Avahi renames an instance on a
//! name conflict (`Maths #2`), the key stays.
//!
//! The work goes through the host's avahi-daemon (decision 65): [`Avahi::publish`] keeps an
//! `avahi-publish` running for as long as the [`Publication`] lives, [`Avahi::browse`] runs
//! `avahi-browse --resolve --parsable --terminate` under `timeout` until it finds a class or
//! its deadline passes. Both go through koompi-core's [`Cmd`]. The parsing of what
//! avahi-browse prints and the checking of TXT records are pure functions, tested below.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use koompi_core::cmd::{Cmd, CmdError, Output, Runner};

/// The DNS-SD service type of a KOOMPI class.
pub const SERVICE_TYPE: &str = "_koompi._tcp";
/// The TXT record version this code writes and reads.
pub const TXT_VERSION: &str = "1";
/// The longest class name, in bytes: a DNS label (the instance name) holds 63.
pub const CLASS_NAME_MAX: usize = 63;
/// The longest TXT item (RFC 6763 §6.1: one length byte).
pub const TXT_ITEM_MAX: usize = 255;

/// Why a TXT record (or a value for one) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    #[error("the announcement has no `{0}` key")]
    Missing(&'static str),
    #[error("the `{0}` key has no value")]
    NoValue(&'static str),
    #[error("announcement version `{0}` is not 1: update KOOMPI to join this class")]
    Version(String),
    #[error("class name {0:?} is not valid: {1}")]
    ClassName(String, &'static str),
    #[error("teacher {0:?} is not a Syncthing device ID: {1}")]
    DeviceId(String, &'static str),
    #[error("join port {0:?} is not a port number (1 to 65535)")]
    Port(String),
    #[error("join port {join} differs from the service's port {service}")]
    PortMismatch { join: u16, service: u16 },
    #[error("a TXT item is {0} bytes long (at most 255)")]
    TooLong(usize),
    #[error("a TXT item is not UTF-8")]
    NotUtf8,
}

/// Errors of announcing and browsing.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{source}; is avahi-daemon running? (`systemctl enable --now avahi-daemon`)")]
    Avahi {
        #[source]
        source: CmdError,
    },
    #[error("avahi-publish stopped at once: {0}; is avahi-daemon running? (`systemctl enable --now avahi-daemon`)")]
    PublishExited(String),
    #[error("no class announced on this network within {0} s (multicast may be filtered, e.g. Wi-Fi client isolation): ask the teacher for the laptop's address and join with --teacher HOST")]
    NoClass(u64),
    #[error("cannot announce the class: {0}")]
    Invalid(#[from] TxtError),
}

/// What a teacher's laptop announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    class: String,
    teacher: String,
    join_port: u16,
}

impl Announcement {
    /// A checked announcement.
    pub fn new(class: &str, teacher: &str, join_port: u16) -> Result<Self, TxtError> {
        check_class_name(class)?;
        check_device_id(teacher)?;
        if join_port == 0 {
            return Err(TxtError::Port("0".into()));
        }
        Ok(Announcement {
            class: class.to_string(),
            teacher: teacher.to_string(),
            join_port,
        })
    }

    /// The class name.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The teacher's Syncthing device ID.
    pub fn teacher(&self) -> &str {
        &self.teacher
    }

    /// The join port.
    pub fn join_port(&self) -> u16 {
        self.join_port
    }

    /// The TXT items, in the order written.
    pub fn txt(&self) -> Vec<String> {
        vec![
            format!("v={TXT_VERSION}"),
            format!("class={}", self.class),
            format!("teacher={}", self.teacher),
            format!("join={}", self.join_port),
        ]
    }
}

/// Checks a class name: 1..=63 bytes of UTF-8, no control characters, no `/`, not `.` or
/// `..`, no leading or trailing white space (it names the folder ~/Classroom/NAME).
pub fn check_class_name(name: &str) -> Result<(), TxtError> {
    let bad = |why| Err(TxtError::ClassName(name.to_string(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > CLASS_NAME_MAX {
        return bad("it is longer than 63 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("it holds a control character");
    }
    if name.contains('/') {
        return bad("it holds a `/`");
    }
    if name == "." || name == ".." {
        return bad("it is `.` or `..`");
    }
    if name.trim() != name {
        return bad("it starts or ends with white space");
    }
    Ok(())
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Syncthing's Luhn mod 32 check character of `s` (base32 characters only).
fn luhn32(s: &[u8]) -> Option<u8> {
    let mut factor = 1;
    let mut sum = 0usize;
    for c in s {
        let cp = BASE32.iter().position(|b| b == c)?;
        let addend = factor * cp;
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / 32 + addend % 32;
    }
    Some(BASE32[(32 - sum % 32) % 32])
}

/// Checks a Syncthing device ID in its canonical form: 8 groups of 7 base32 characters
/// separated by `-`, whose 4 blocks of 14 each end with their Luhn mod 32 check character.
pub fn check_device_id(id: &str) -> Result<(), TxtError> {
    let bad = |why| Err(TxtError::DeviceId(id.to_string(), why));
    let groups: Vec<&str> = id.split('-').collect();
    if groups.len() != 8 || groups.iter().any(|g| g.len() != 7) {
        return bad("not 8 groups of 7 characters separated by `-`");
    }
    let raw: Vec<u8> = groups.concat().into_bytes();
    if raw.iter().any(|c| !BASE32.contains(c)) {
        return bad("a character is not base32 (A-Z, 2-7)");
    }
    for block in raw.chunks(14) {
        if luhn32(&block[..13]) != Some(block[13]) {
            return bad("a check character is wrong (mistyped?)");
        }
    }
    Ok(())
}

/// Makes a canonical device ID from 52 base32 characters (what Syncthing does with the
/// SHA-256 of a certificate), adding the check characters. `None` when `raw` is not that.
pub fn device_id_from_raw(raw: &str) -> Option<String> {
    let raw = raw.as_bytes();
    if raw.len() != 52 {
        return None;
    }
    let mut full = Vec::with_capacity(56);
    for block in raw.chunks(13) {
        full.extend_from_slice(block);
        full.push(luhn32(block)?);
    }
    let groups: Vec<String> = full
        .chunks(7)
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect();
    Some(groups.join("-"))
}

fn port(v: &str) -> Result<u16, TxtError> {
    let ok = !v.is_empty() && v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<u16>() {
        Ok(p) if ok && p != 0 => Ok(p),
        _ => Err(TxtError::Port(v.to_string())),
    }
}

/// Reads the TXT items of a `_koompi._tcp` service announced on `service_port`.
pub fn parse_txt(items: &[String], service_port: u16) -> Result<Announcement, TxtError> {
    const KEYS: [&str; 4] = ["v", "class", "teacher", "join"];
    let mut found: BTreeMap<&'static str, Option<&str>> = BTreeMap::new();
    for item in items {
        if item.len() > TXT_ITEM_MAX {
            return Err(TxtError::TooLong(item.len()));
        }
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item.as_str(), None),
        };
        let Some(known) = KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)) else {
            continue;
        };
        found.entry(known).or_insert(value);
    }
    let get = |k: &'static str| match found.get(k) {
        None => Err(TxtError::Missing(k)),
        Some(None) => Err(TxtError::NoValue(k)),
        Some(Some(v)) => Ok(*v),
    };
    let v = get("v")?;
    if v != TXT_VERSION {
        return Err(TxtError::Version(v.to_string()));
    }
    let class = get("class")?;
    let teacher = get("teacher")?;
    let join = port(get("join")?)?;
    if join != service_port {
        return Err(TxtError::PortMismatch {
            join,
            service: service_port,
        });
    }
    Announcement::new(class, teacher, join)
}

/// Undoes avahi-browse's escaping of a parsable field: `\DDD` (three decimal digits) is a
/// byte, `\X` is X. `None` when an escape is cut short or out of range.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let rest = &b[i + 1..];
        if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
            let n = rest[..3]
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            out.push(u8::try_from(n).ok()?);
            i += 4;
        } else {
            out.push(*rest.first()?);
            i += 2;
        }
    }
    Some(out)
}

/// Splits avahi-browse's TXT field (`"a=1" "b=2"`, escaped inside the quotes) into items.
pub fn parse_txt_field(field: &str) -> Result<Vec<String>, TxtError> {
    let b = field.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        // An item: up to the next quote that is not escaped.
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j] != b'"' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        let raw = field.get(start..j.min(b.len())).ok_or(TxtError::NotUtf8)?;
        let bytes = unescape(raw).ok_or(TxtError::NotUtf8)?;
        items.push(String::from_utf8(bytes).map_err(|_| TxtError::NotUtf8)?);
        i = j + 1;
    }
    Ok(items)
}

/// A class found on the network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundClass {
    pub class: String,
    pub teacher: String,
    pub join_port: u16,
    /// The DNS-SD instance name (the class name, or Avahi's rename of it).
    pub instance: String,
    /// The teacher laptop's mDNS host name (`NAME.local`).
    pub host: String,
    /// Its addresses, sorted.
    pub addresses: Vec<IpAddr>,
}

/// An announcement that was seen and refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub instance: String,
    pub host: String,
    pub error: TxtError,
}

/// What a browse found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Browse {
    pub classes: Vec<FoundClass>,
    pub refused: Vec<Refused>,
}

/// Reads the output of `avahi-browse --resolve --parsable`: each resolved (`=`) line of
/// `_koompi._tcp` becomes a class, or a refusal when its TXT record is not valid. One class
/// seen on several interfaces or address families is one entry with all its addresses.
pub fn parse_browse(stdout: &str) -> Browse {
    let mut classes: BTreeMap<(String, String, String), FoundClass> = BTreeMap::new();
    let mut refused: Vec<Refused> = Vec::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.splitn(10, ';').collect();
        if f.len() != 10 || f[0] != "=" || f[4] != SERVICE_TYPE {
            continue;
        }
        let text = |s: &str| unescape(s).and_then(|b| String::from_utf8(b).ok());
        let (Some(instance), Some(host)) = (text(f[3]), text(f[6])) else {
            continue;
        };
        let parsed = f[8]
            .parse::<u16>()
            .map_err(|_| TxtError::Port(f[8].to_string()))
            .and_then(|p| parse_txt(&parse_txt_field(f[9])?, p));
        let a = match parsed {
            Ok(a) => a,
            Err(error) => {
                let r = Refused {
                    instance,
                    host,
                    error,
                };
                if !refused.contains(&r) {
                    refused.push(r);
                }
                continue;
            }
        };
        let key = (instance.clone(), a.teacher.clone(), host.clone());
        let entry = classes.entry(key).or_insert_with(|| FoundClass {
            class: a.class.clone(),
            teacher: a.teacher.clone(),
            join_port: a.join_port,
            instance,
            host,
            addresses: Vec::new(),
        });
        if let Ok(addr) = f[7].parse::<IpAddr>() {
            if !entry.addresses.contains(&addr) {
                entry.addresses.push(addr);
                entry.addresses.sort();
            }
        }
    }
    Browse {
        classes: classes.into_values().collect(),
        refused,
    }
}

/// The host's Avahi, reached through its command-line clients.
#[derive(Debug, Clone)]
pub struct Avahi {
    runner: Runner,
    bus: Option<String>,
}

impl Avahi {
    /// The avahi-daemon on the system bus.
    pub fn new(runner: Runner) -> Self {
        Avahi { runner, bus: None }
    }

    /// An avahi-daemon on another D-Bus (`unix:path=...`): the tests run one per network
    /// namespace.
    pub fn on_bus(runner: Runner, address: &str) -> Self {
        Avahi {
            runner,
            bus: Some(address.to_string()),
        }
    }

    fn cmd(&self, program: &str) -> Cmd {
        let c = Cmd::new(program);
        match &self.bus {
            Some(a) => c.env("DBUS_SYSTEM_BUS_ADDRESS", a),
            None => c,
        }
    }

    /// Announces `a` until the returned [`Publication`] is dropped. Fails when avahi-publish
    /// stops within its first half second (no daemon, bad arguments).
    pub fn publish(&self, a: &Announcement) -> Result<Publication, DiscoveryError> {
        let cmd = self
            .cmd("avahi-publish")
            .arg("--service")
            .arg(&a.class)
            .arg(SERVICE_TYPE)
            .arg(a.join_port.to_string())
            .args(a.txt());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let runner = self.runner.clone();
        let handle = std::thread::spawn(move || {
            let mut tick = |pid: u32| {
                if flag.load(Ordering::SeqCst) {
                    if let Some(pid) = i32::try_from(pid)
                        .ok()
                        .and_then(rustix::process::Pid::from_raw)
                    {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                    }
                }
            };
            cmd.run_watched(&runner, Duration::from_millis(50), &mut tick)
        });
        let mut publication = Publication {
            stop,
            handle: Some(handle),
        };
        if self.runner.is_dry_run() {
            publication.join();
            return Ok(publication);
        }
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if publication
                .handle
                .as_ref()
                .is_some_and(JoinHandle::is_finished)
            {
                let why = match publication.join() {
                    Some(Err(e)) => e.to_string(),
                    Some(Ok(out)) => out.stderr.trim().to_string(),
                    None => "it panicked".to_string(),
                };
                return Err(DiscoveryError::PublishExited(why));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(publication)
    }

    /// Browses for classes until one is found or `deadline` passes. Nothing found is
    /// [`DiscoveryError::NoClass`]; refused announcements alone count as nothing found.
    pub fn browse(&self, deadline: Duration) -> Result<Browse, DiscoveryError> {
        let end = Instant::now() + deadline;
        let mut refused = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let limit = left.max(Duration::from_millis(500));
            // avahi-browse has no deadline of its own; GNU timeout gives it one and keeps
            // what it printed (exit 124).
            let timed = self
                .cmd("timeout")
                .args(["--kill-after=1", &format!("{:.1}", limit.as_secs_f64())])
                .arg("avahi-browse")
                .args(["--resolve", "--parsable", "--terminate", "--no-db-lookup"])
                .arg(SERVICE_TYPE);
            let (code, out) = timed
                .run_status(&self.runner)
                .map_err(|source| DiscoveryError::Avahi { source })?;
            match code {
                Some(0) | Some(124) | Some(137) => {}
                _ => return Err(failed(&timed, code, out)),
            }
            let mut found = parse_browse(&out.stdout);
            for r in found.refused.drain(..) {
                if !refused.contains(&r) {
                    refused.push(r);
                }
            }
            if !found.classes.is_empty() || self.runner.is_dry_run() {
                found.refused = refused;
                return Ok(found);
            }
            if Instant::now() + Duration::from_millis(300) >= end {
                for r in &refused {
                    tracing::warn!(
                        "refused the announcement {:?} of {}: {}",
                        r.instance,
                        r.host,
                        r.error
                    );
                }
                return Err(DiscoveryError::NoClass(deadline.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn failed(cmd: &Cmd, code: Option<i32>, out: Output) -> DiscoveryError {
    DiscoveryError::Avahi {
        source: CmdError::Failed {
            cmdline: cmd.cmdline(),
            status: code.map_or("killed".into(), |c| format!("exit status: {c}")),
            code,
            stderr: out.stderr,
        },
    }
}

/// A running announcement; dropping it withdraws the class (avahi-publish is stopped and
/// avahi-daemon sends the goodbye packets).
#[derive(Debug)]
pub struct Publication {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Output, CmdError>>>,
}

impl Publication {
    fn join(&mut self) -> Option<Result<Output, CmdError>> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().and_then(|h| h.join().ok())
    }

    /// Withdraws the class now.
    pub fn withdraw(mut self) {
        self.join();
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real ID, printed by Syncthing 1.19.2's `syncthing generate`.
    const ID: &str = "MSK4M7W-ICOJ5FU-RA4Y2TI-FXMJZ4I-HQNSBSE-6VSYFBC-FRDI3HV-H6R4UAT";

    fn items(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_real_device_id_passes_and_a_typo_does_not() {
        assert_eq!(check_device_id(ID), Ok(()));
        let raw: String = ID
            .replace('-', "")
            .chars()
            .enumerate()
            .filter(|(i, _)| i % 14 != 13)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(device_id_from_raw(&raw).as_deref(), Some(ID));
        let typo = ID.replacen("MSK4", "MSK5", 1);
        assert!(check_device_id(&typo).is_err());
        assert!(check_device_id(&ID.to_lowercase()).is_err());
        assert!(check_device_id(&ID.replace('-', "")).is_err());
    }

    #[test]
    fn txt_of_khmer_class_reads_back() {
        let a = Announcement::new("ថ្នាក់ទី១២ គណិតវិទ្យា", ID, 22001).unwrap();
        assert_eq!(a.txt()[0], "v=1");
        assert_eq!(parse_txt(&a.txt(), 22001).unwrap(), a);
    }

    #[test]
    fn missing_and_bad_keys_are_refused() {
        let ok = ["v=1", "class=Maths", &format!("teacher={ID}"), "join=22001"];
        assert!(parse_txt(&items(&ok), 22001).is_ok());
        for (i, key) in ["v", "class", "teacher", "join"].iter().enumerate() {
            let mut less = items(&ok);
            less.remove(i);
            assert_eq!(parse_txt(&less, 22001), Err(TxtError::Missing(key)));
        }
        let with = |i: usize, s: &str| {
            let mut v = items(&ok);
            v[i] = s.to_string();
            parse_txt(&v, 22001)
        };
        assert_eq!(with(0, "v=2"), Err(TxtError::Version("2".into())));
        assert_eq!(with(0, "v"), Err(TxtError::NoValue("v")));
        assert!(matches!(with(1, "class="), Err(TxtError::ClassName(..))));
        assert!(matches!(with(1, "class=a/b"), Err(TxtError::ClassName(..))));
        assert!(matches!(with(1, "class=.."), Err(TxtError::ClassName(..))));
        assert!(matches!(with(1, "class= x"), Err(TxtError::ClassName(..))));
        assert!(matches!(
            with(1, "class=a\nb"),
            Err(TxtError::ClassName(..))
        ));
        assert!(matches!(with(2, "teacher=ME"), Err(TxtError::DeviceId(..))));
        for bad in ["join=0", "join=65536", "join=+22", "join=", "join=2x"] {
            assert!(matches!(with(3, bad), Err(TxtError::Port(_))), "{bad}");
        }
        assert_eq!(
            with(3, "join=22002"),
            Err(TxtError::PortMismatch {
                join: 22002,
                service: 22001
            })
        );
        // 21 Khmer letters of 3 bytes: 63 bytes pass, one more does not.
        let k63 = "ក".repeat(21);
        assert!(with(1, &format!("class={k63}")).is_ok());
        assert!(matches!(
            with(1, &format!("class={k63}ក")),
            Err(TxtError::ClassName(..))
        ));
        let long = format!("x={}", "a".repeat(300));
        let mut v = items(&ok);
        v.push(long);
        assert_eq!(parse_txt(&v, 22001), Err(TxtError::TooLong(302)));
    }

    #[test]
    fn keys_ignore_case_first_wins_and_unknown_keys_pass() {
        let v = items(&[
            "V=1",
            "Class=A",
            "class=B",
            &format!("TEACHER={ID}"),
            "join=9",
            "x=y",
            "flag",
        ]);
        assert_eq!(parse_txt(&v, 9).unwrap().class(), "A");
    }

    /// Recorded from `avahi-browse -rpt _koompi._tcp` (Avahi 0.8) across the test network.
    const BROWSE: &str = "+;eth0;IPv4;\\225\\158\\144\\225\\159\\146\\225\\158\\147\\225\\158\\182\\225\\158\\128\\225\\159\\139\\032A;_koompi._tcp;local
=;eth0;IPv4;\\225\\158\\144\\225\\159\\146\\225\\158\\147\\225\\158\\182\\225\\158\\128\\225\\159\\139\\032A;_koompi._tcp;local;koompi-dev1.local;10.77.0.1;22000;\"join=22000\" \"teacher=MSK4M7W-ICOJ5FU-RA4Y2TI-FXMJZ4I-HQNSBSE-6VSYFBC-FRDI3HV-H6R4UAT\" \"class=\\225\\158\\144\\225\\159\\146\\225\\158\\147\\225\\158\\182\\225\\158\\128\\225\\159\\139\\032A\" \"v=1\"
=;eth0;IPv6;\\225\\158\\144\\225\\159\\146\\225\\158\\147\\225\\158\\182\\225\\158\\128\\225\\159\\139\\032A;_koompi._tcp;local;koompi-dev1.local;fe80::1;22000;\"join=22000\" \"teacher=MSK4M7W-ICOJ5FU-RA4Y2TI-FXMJZ4I-HQNSBSE-6VSYFBC-FRDI3HV-H6R4UAT\" \"class=\\225\\158\\144\\225\\159\\146\\225\\158\\147\\225\\158\\182\\225\\158\\128\\225\\159\\139\\032A\" \"v=1\"
=;eth0;IPv4;a\\059b\\.c\\\\d\\034e;_koompi._tcp;local;koompi-dev1.local;10.77.0.1;22001;\"x=a b\" \"class=;\\\"q\\\\z\"
=;eth0;IPv4;Other;_other._tcp;local;h.local;10.77.0.9;1;\"v=1\"
";

    #[test]
    fn browse_output_reads_into_classes_and_refusals() {
        let b = parse_browse(BROWSE);
        assert_eq!(b.classes.len(), 1, "{b:?}");
        let c = &b.classes[0];
        assert_eq!(c.class, "ថ្នាក់ A");
        assert_eq!(c.instance, "ថ្នាក់ A");
        assert_eq!(c.teacher, ID);
        assert_eq!(c.join_port, 22000);
        assert_eq!(c.host, "koompi-dev1.local");
        assert_eq!(
            c.addresses,
            vec![
                "10.77.0.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(b.refused.len(), 1);
        assert_eq!(b.refused[0].instance, "a;b.c\\d\"e");
        assert_eq!(b.refused[0].error, TxtError::Missing("v"));
    }

    #[test]
    fn txt_field_unescapes_quotes_backslashes_and_bytes() {
        assert_eq!(
            parse_txt_field(r#""x=a b" "class=;\"q\\z" "k=\225\158\128""#).unwrap(),
            items(&["x=a b", "class=;\"q\\z", "k=ក"])
        );
        assert_eq!(parse_txt_field("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_txt_field(r#""\255\255""#), Err(TxtError::NotUtf8));
        assert_eq!(unescape("\\999"), None);
        assert_eq!(unescape("a\\"), None);
    }

    /// avahi's escaping, as avahi-browse prints a TXT item.
    fn escape_txt(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'"' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                32..=126 => out.push(char::from(b)),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out
    }

    fn class_name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ក-ឳ៖-៛០-៩._#;\"\\\\-]{1,21}"
            .prop_filter("a valid class name", |s| check_class_name(s).is_ok())
    }

    fn device_id() -> impl Strategy<Value = String> {
        "[A-Z2-7]{52}".prop_map(|raw| device_id_from_raw(&raw).unwrap())
    }

    proptest! {
        #[test]
        fn announcements_survive_avahi_browse(class in class_name(), id in device_id(), port in 1u16..) {
            let a = Announcement::new(&class, &id, port).unwrap();
            let txt: Vec<String> = a.txt().iter().map(|t| format!("\"{}\"", escape_txt(t))).collect();
            let line = format!("=;eth0;IPv4;{};_koompi._tcp;local;t.local;10.77.0.1;{port};{}\n",
                escape_txt(&class).replace(';', "\\059"), txt.join(" "));
            let b = parse_browse(&line);
            prop_assert_eq!(b.classes.len(), 1, "{:?}", b);
            prop_assert_eq!(&b.classes[0].class, &class);
            prop_assert_eq!(&b.classes[0].teacher, &id);
        }

        #[test]
        fn generated_ids_check_and_one_changed_character_fails(id in device_id(), at in 0usize..63, to in 0usize..32) {
            prop_assert!(check_device_id(&id).is_ok());
            let mut b = id.clone().into_bytes();
            if b[at] != b'-' && b[at] != BASE32[to] {
                b[at] = BASE32[to];
                prop_assert!(check_device_id(&String::from_utf8(b).unwrap()).is_err());
            }
        }

        #[test]
        fn parsers_never_panic(s in "\\PC*", port in any::<u16>()) {
            let _ = parse_browse(&s);
            let _ = parse_txt_field(&s);
            let _ = parse_txt(std::slice::from_ref(&s), port);
            let _ = check_device_id(&s);
        }
    }
}
