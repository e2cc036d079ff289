//! Can the repositories be reached? The check before any download.
//!
//! When the network is down, pacman and paru fail late, with messages about databases and
//! mirrors that say nothing to a student in a classroom without Wi-Fi. `koompi` asks first,
//! and quickly: for each repository, does at least one of its servers answer?
//!
//! The rules:
//!
//! - a `file://` server is a directory on this machine: reachable;
//! - a server on a loopback host (`localhost`, 127.0.0.0/8, `::1`) is this machine (a local
//!   cache or a test mirror): reachable, without probing;
//! - any other server is probed with a TCP connect to its host and port, with a short timeout
//!   (3 s by default). Not ping: ICMP is often filtered where HTTP is not, needs privileges,
//!   and says nothing about the port pacman will use;
//! - distinct hosts are probed in parallel threads (at most [`MAX_PARALLEL`] at once), and the
//!   check stops as soon as every repository has one server that answered, or nothing left to
//!   probe could change the answer; probes still running are then not waited for.
//!
//! The decision itself, which repository counts as reachable given the probe results, is the
//! pure function [`decide`]; [`check_with`] runs the probes through a function it is given, so
//! the threading is tested without a network; [`check`] uses the real [`probe_host`].
//! `CacheServer`s are not counted: they serve packages, not the databases pacman needs first.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pacman_conf::PacmanConfig;
use crate::url::{Host, MirrorUrl};

/// The connect timeout used when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// How many hosts are probed at once.
pub const MAX_PARALLEL: usize = 16;

/// How many of a host's addresses are tried (IPv6 and IPv4 alternating).
pub const MAX_ADDRS_PER_HOST: usize = 4;

/// The AUR, for [`CheckTarget::aur`].
pub const AUR_URL: &str = "https://aur.archlinux.org/";

/// What a probe of one host found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum ProbeStatus {
    /// A TCP connection was made.
    Ok,
    /// The host answered, but nothing listens on the port.
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// The name did not resolve (no DNS, or no such host).
    DnsError(String),
    /// No route to the host or network, or another connect error.
    Unreachable(String),
    /// Not needed: every repository it serves was already reachable, so it was not waited for.
    NotWaited,
}

impl fmt::Display for ProbeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeStatus::Ok => f.write_str("ok"),
            ProbeStatus::Refused => f.write_str("connection refused"),
            ProbeStatus::Timeout => f.write_str("timed out"),
            ProbeStatus::DnsError(m) => write!(f, "name not resolved ({m})"),
            ProbeStatus::Unreachable(m) => write!(f, "unreachable ({m})"),
            ProbeStatus::NotWaited => f.write_str("not needed"),
        }
    }
}

/// A host and port to probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Something to check: a repository and its servers, or any other service (the AUR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTarget {
    pub name: String,
    /// URLs in order of preference.
    pub servers: Vec<String>,
}

impl CheckTarget {
    pub fn new(name: impl Into<String>, servers: Vec<String>) -> Self {
        CheckTarget {
            name: name.into(),
            servers,
        }
    }

    /// The AUR (`aur`, [`AUR_URL`]).
    pub fn aur() -> Self {
        CheckTarget::new("aur", vec![AUR_URL.to_string()])
    }
}

/// One target per repository of `cfg`, with its `Server`s.
pub fn targets_from_config(cfg: &PacmanConfig) -> Vec<CheckTarget> {
    cfg.repos
        .iter()
        .map(|r| CheckTarget::new(r.name.clone(), r.servers.clone()))
        .collect()
}

/// What a server URL means for the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    /// `file://`: on this machine.
    File,
    /// A loopback host: on this machine.
    Loopback,
    /// To be probed.
    Remote(HostPort),
    /// Not a usable URL; the message says why.
    Invalid(String),
}

/// Sorts one server URL into a [`ServerKind`].
pub fn server_kind(url: &str) -> ServerKind {
    match MirrorUrl::parse(url) {
        Err(e) => ServerKind::Invalid(e.to_string()),
        Ok(u) if u.is_file() => ServerKind::File,
        Ok(u) => match u.host_port() {
            Some((h, _)) if h.is_loopback() => ServerKind::Loopback,
            Some((h, p)) => ServerKind::Remote(HostPort {
                host: h.clone(),
                port: p,
            }),
            None => ServerKind::Invalid(format!("{url:?} has no host")),
        },
    }
}

/// How a repository was found reachable, or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Reach {
    /// A `file://` server.
    File { server: String },
    /// A server on a loopback host.
    Loopback { server: String },
    /// A remote server whose host accepted a connection.
    Answered { server: String },
    /// No server answered.
    Unreachable,
    /// The repository has no servers at all.
    NoServers,
}

/// The verdict for one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoReport {
    pub name: String,
    pub reachable: bool,
    pub reach: Reach,
    /// Servers that are not usable URLs, each with the reason.
    pub bad_servers: Vec<String>,
}

/// The result of probing one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    /// As in a URL (IPv6 in brackets).
    pub host: String,
    pub port: u16,
    pub status: ProbeStatus,
}

/// The network check's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkReport {
    /// One per target, in the order given.
    pub repos: Vec<RepoReport>,
    /// Each probed host, in the order of first use.
    pub hosts: Vec<HostReport>,
}

impl NetworkReport {
    /// Whether every target can be reached.
    pub fn all_reachable(&self) -> bool {
        self.repos.iter().all(|r| r.reachable)
    }

    /// The names of the targets that cannot be reached.
    pub fn unreachable_repos(&self) -> Vec<&str> {
        self.repos
            .iter()
            .filter(|r| !r.reachable)
            .map(|r| r.name.as_str())
            .collect()
    }

    /// One line for the user when something is unreachable, `None` when all is well:
    /// `cannot reach core, extra (mirror.example.org:443 timed out; ...)`.
    pub fn failure_summary(&self) -> Option<String> {
        let bad = self.unreachable_repos();
        if bad.is_empty() {
            return None;
        }
        let mut causes: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| !matches!(h.status, ProbeStatus::Ok | ProbeStatus::NotWaited))
            .map(|h| format!("{}:{} {}", h.host, h.port, h.status))
            .collect();
        for r in self.repos.iter().filter(|r| !r.reachable) {
            if r.reach == Reach::NoServers {
                causes.push(format!("{} has no Server", r.name));
            }
            causes.extend(r.bad_servers.iter().cloned());
        }
        const KEEP: usize = 3;
        let more = causes.len().saturating_sub(KEEP);
        causes.truncate(KEEP);
        let mut line = format!("cannot reach {}", bad.join(", "));
        if !causes.is_empty() {
            line.push_str(&format!(" ({}", causes.join("; ")));
            if more > 0 {
                line.push_str(&format!("; {more} more"));
            }
            line.push(')');
        }
        line.push_str(": check the network connection (Wi-Fi or cable) and try again");
        Some(line)
    }
}

/// Decides reachability from probe results (pure). A target is reachable through the first of
/// its servers, in order, that is a file, a loopback host, or a host whose result is
/// [`ProbeStatus::Ok`]; hosts missing from `results` count as not answering.
pub fn decide(targets: &[CheckTarget], results: &HashMap<HostPort, ProbeStatus>) -> NetworkReport {
    let mut repos = Vec::new();
    let mut seen = HashSet::new();
    let mut hosts = Vec::new();
    for t in targets {
        let mut reach = None;
        let mut bad_servers = Vec::new();
        for s in &t.servers {
            let kind = server_kind(s);
            if let ServerKind::Remote(hp) = &kind {
                if let Some(status) = results.get(hp) {
                    if seen.insert(hp.clone()) {
                        hosts.push(HostReport {
                            host: hp.host.to_string(),
                            port: hp.port,
                            status: status.clone(),
                        });
                    }
                }
            }
            if reach.is_some() {
                continue;
            }
            match kind {
                ServerKind::File => reach = Some(Reach::File { server: s.clone() }),
                ServerKind::Loopback => reach = Some(Reach::Loopback { server: s.clone() }),
                ServerKind::Remote(hp) => {
                    if results.get(&hp) == Some(&ProbeStatus::Ok) {
                        reach = Some(Reach::Answered { server: s.clone() });
                    }
                }
                ServerKind::Invalid(why) => bad_servers.push(why),
            }
        }
        let reach = reach.unwrap_or(if t.servers.is_empty() {
            Reach::NoServers
        } else {
            Reach::Unreachable
        });
        repos.push(RepoReport {
            name: t.name.clone(),
            reachable: !matches!(reach, Reach::Unreachable | Reach::NoServers),
            reach,
            bad_servers,
        });
    }
    NetworkReport { repos, hosts }
}

/// The hosts whose result could still change the verdict: the remote hosts of the targets
/// that are not reachable yet and that have no result.
fn still_needed(
    targets: &[CheckTarget],
    results: &HashMap<HostPort, ProbeStatus>,
) -> Vec<HostPort> {
    let report = decide(targets, results);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (t, r) in targets.iter().zip(&report.repos) {
        if r.reachable {
            continue;
        }
        for s in &t.servers {
            if let ServerKind::Remote(hp) = server_kind(s) {
                if !results.contains_key(&hp) && seen.insert(hp.clone()) {
                    out.push(hp);
                }
            }
        }
    }
    out
}

/// Checks `targets` with real TCP probes. See the module documentation for the rules.
pub fn check(targets: &[CheckTarget], timeout: Duration) -> NetworkReport {
    check_with(targets, timeout, probe_host)
}

/// [`check`] with the probe given: `probe(host_port, timeout)`, called from worker threads.
///
/// The wait is bounded: hosts without a result after `timeout` times
/// ([`MAX_ADDRS_PER_HOST`] + 1), per round of [`MAX_PARALLEL`] hosts, count as timed out (a
/// name lookup can take longer than any connect timeout, and is not cancellable).
pub fn check_with<F>(targets: &[CheckTarget], timeout: Duration, probe: F) -> NetworkReport
where
    F: Fn(&HostPort, Duration) -> ProbeStatus + Send + Sync + 'static,
{
    let mut results: HashMap<HostPort, ProbeStatus> = HashMap::new();
    let todo = still_needed(targets, &results);
    if todo.is_empty() {
        return decide(targets, &results);
    }
    let workers = todo.len().min(MAX_PARALLEL);
    let rounds = todo.len().div_ceil(workers);
    let per_round = timeout.saturating_mul(MAX_ADDRS_PER_HOST as u32 + 1);
    let deadline = Instant::now() + per_round.saturating_mul(rounds as u32);

    let queue = Arc::new(Mutex::new(todo.iter().cloned().collect::<VecDeque<_>>()));
    let stop = Arc::new(AtomicBool::new(false));
    let probe = Arc::new(probe);
    let (tx, rx) = mpsc::channel::<(HostPort, ProbeStatus)>();
    for _ in 0..workers {
        let queue = Arc::clone(&queue);
        let stop = Arc::clone(&stop);
        let probe = Arc::clone(&probe);
        let tx = tx.clone();
        // Detached: a worker ends after its current probe once there is nothing left to do.
        std::thread::spawn(move || loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let next = match queue.lock() {
                Ok(mut q) => q.pop_front(),
                Err(_) => None,
            };
            let Some(hp) = next else { break };
            let status = probe(&hp, timeout);
            if tx.send((hp, status)).is_err() {
                break;
            }
        });
    }
    drop(tx);

    let mut timed_out = false;
    loop {
        let needed = still_needed(targets, &results);
        if needed.is_empty() {
            break;
        }
        if let Ok(mut q) = queue.lock() {
            q.retain(|hp| needed.contains(hp));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((hp, status)) => {
                results.insert(hp, status);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let missing = if timed_out {
        ProbeStatus::Timeout
    } else {
        ProbeStatus::NotWaited
    };
    for hp in todo {
        results.entry(hp).or_insert_with(|| missing.clone());
    }
    decide(targets, &results)
}

/// Resolves `hp` and tries to connect to its addresses (up to [`MAX_ADDRS_PER_HOST`], IPv6
/// and IPv4 alternating), each with `timeout`. The first connection wins; if none, the most
/// telling failure is returned: refused (the host is there) before timeout before unreachable.
pub fn probe_host(hp: &HostPort, timeout: Duration) -> ProbeStatus {
    let addrs: Vec<SocketAddr> = match &hp.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, hp.port)],
        Host::Name(name) => match (name.as_str(), hp.port).to_socket_addrs() {
            Ok(a) => interleave(a.collect()),
            Err(e) => return ProbeStatus::DnsError(e.to_string()),
        },
    };
    if addrs.is_empty() {
        return ProbeStatus::DnsError("no address for this name".to_string());
    }
    let mut best: Option<ProbeStatus> = None;
    for addr in addrs.into_iter().take(MAX_ADDRS_PER_HOST) {
        let status = probe_tcp(addr, timeout);
        if status == ProbeStatus::Ok {
            return status;
        }
        let better = match &best {
            Some(b) => rank(&status) > rank(b),
            None => true,
        };
        if better {
            best = Some(status);
        }
    }
    best.unwrap_or(ProbeStatus::Timeout)
}

fn rank(s: &ProbeStatus) -> u8 {
    match s {
        ProbeStatus::Ok => 5,
        ProbeStatus::Refused => 4,
        ProbeStatus::Timeout => 3,
        ProbeStatus::Unreachable(_) => 2,
        ProbeStatus::DnsError(_) => 1,
        ProbeStatus::NotWaited => 0,
    }
}

/// Alternates address families, keeping the resolver's order within each.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (v6, v4): (Vec<_>, Vec<_>) = addrs.into_iter().partition(SocketAddr::is_ipv6);
    let mut a = v6.into_iter();
    let mut b = v4.into_iter();
    if !first_v6 {
        std::mem::swap(&mut a, &mut b);
    }
    let mut out = Vec::new();
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out
}

/// One TCP connect to `addr` with `timeout`: the low-level probe.
pub fn probe_tcp(addr: SocketAddr, timeout: Duration) -> ProbeStatus {
    let timeout = timeout.max(Duration::from_millis(1));
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => ProbeStatus::Ok,
        Err(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => ProbeStatus::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ProbeStatus::Timeout,
            _ => ProbeStatus::Unreachable(e.to_string()),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, TcpListener};

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: match host.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(host.to_string()),
            },
            port,
        }
    }

    fn t(name: &str, servers: &[&str]) -> CheckTarget {
        CheckTarget::new(name, servers.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn probe_tcp_connects_to_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(probe_tcp(addr, Duration::from_secs(3)), ProbeStatus::Ok);
        // Through the host-level probe as well (an IP literal, no resolver involved).
        assert_eq!(
            probe_host(&hp("127.0.0.1", addr.port()), Duration::from_secs(3)),
            ProbeStatus::Ok
        );
    }

    #[test]
    fn probe_tcp_closed_port_is_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert_eq!(
            probe_tcp(addr, Duration::from_secs(3)),
            ProbeStatus::Refused
        );
    }

    #[test]
    fn probe_host_unresolvable_name_is_a_dns_error() {
        // `.invalid` never resolves (RFC 6761).
        let s = probe_host(&hp("koompi-probe-test.invalid", 80), Duration::from_secs(1));
        assert!(matches!(s, ProbeStatus::DnsError(_)), "{s:?}");
    }

    #[test]
    fn probe_host_localhost_name_resolves() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // localhost may resolve to ::1 first, where nothing listens: the IPv4 address is tried
        // as well, and wins.
        assert_eq!(
            probe_host(&hp("localhost", port), Duration::from_secs(3)),
            ProbeStatus::Ok
        );
    }

    #[test]
    fn file_and_loopback_servers_are_reachable_without_probing() {
        let targets = [
            t("koompi", &["file:///srv/repo/x86_64"]),
            t(
                "cache",
                &["http://127.0.0.1:1/x", "https://far.example.org/x"],
            ),
            t("v6", &["http://[::1]:9/x"]),
            t("named", &["http://localhost:9/x"]),
        ];
        let report = check_with(&targets, Duration::from_secs(1), |hp, _| {
            panic!("probed {hp} although nothing needs probing")
        });
        assert!(report.all_reachable(), "{report:?}");
        assert!(report.hosts.is_empty());
        assert_eq!(
            report.repos[0].reach,
            Reach::File {
                server: "file:///srv/repo/x86_64".into()
            }
        );
        assert!(matches!(report.repos[1].reach, Reach::Loopback { .. }));
        assert_eq!(report.failure_summary(), None);
    }

    #[test]
    fn decide_over_probe_results() {
        let targets = [
            t(
                "core",
                &["https://a.example/core", "https://b.example/core"],
            ),
            t("extra", &["https://a.example/extra"]),
            t(
                "multilib",
                &["https://c.example/m", "not a url", "rsync://x/y"],
            ),
            t("empty", &[]),
        ];
        let mut results = HashMap::new();
        results.insert(hp("a.example", 443), ProbeStatus::Timeout);
        results.insert(hp("b.example", 443), ProbeStatus::Ok);
        results.insert(
            hp("c.example", 443),
            ProbeStatus::DnsError("no such host".into()),
        );
        let r = decide(&targets, &results);
        assert_eq!(
            r.repos[0].reach,
            Reach::Answered {
                server: "https://b.example/core".into()
            }
        );
        assert!(r.repos[0].reachable);
        assert_eq!(r.repos[1].reach, Reach::Unreachable);
        assert_eq!(r.repos[2].reach, Reach::Unreachable);
        assert_eq!(r.repos[2].bad_servers.len(), 2);
        assert_eq!(r.repos[3].reach, Reach::NoServers);
        assert!(!r.all_reachable());
        assert_eq!(r.unreachable_repos(), ["extra", "multilib", "empty"]);
        let hosts: Vec<String> = r
            .hosts
            .iter()
            .map(|h| format!("{}:{}", h.host, h.port))
            .collect();
        assert_eq!(hosts, ["a.example:443", "b.example:443", "c.example:443"]);
        let line = r.failure_summary().unwrap();
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("cannot reach extra, multilib, empty ("),
            "{line}"
        );
        assert!(line.contains("a.example:443 timed out"), "{line}");
        assert!(line.contains("more"), "{line}");

        // Nothing answered at all: nothing reachable.
        let r = decide(&targets[..3], &HashMap::new());
        assert_eq!(r.unreachable_repos(), ["core", "extra", "multilib"]);
        assert!(r.hosts.is_empty());
    }

    #[test]
    fn report_json() {
        let mut results = HashMap::new();
        results.insert(hp("a.example", 443), ProbeStatus::Refused);
        let r = decide(&[t("core", &["https://a.example/"])], &results);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["repos"][0]["reachable"], false);
        assert_eq!(v["repos"][0]["reach"]["via"], "unreachable");
        assert_eq!(v["hosts"][0]["status"]["status"], "refused");
        let v = serde_json::to_value(ProbeStatus::DnsError("x".into())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "dns_error", "message": "x"})
        );
    }

    #[test]
    fn distinct_hosts_are_probed_once() {
        let targets = [
            t(
                "core",
                &["https://m.example/core", "https://n.example/core"],
            ),
            t(
                "extra",
                &["https://m.example/extra", "https://n.example/extra"],
            ),
        ];
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = Arc::clone(&calls);
        let r = check_with(&targets, Duration::from_secs(5), move |hp, _| {
            c.lock().unwrap().push(hp.to_string());
            ProbeStatus::Refused
        });
        let mut calls = calls.lock().unwrap().clone();
        calls.sort();
        assert_eq!(calls, ["m.example:443", "n.example:443"]);
        assert_eq!(r.unreachable_repos(), ["core", "extra"]);
        assert_eq!(r.hosts.len(), 2);
    }

    #[test]
    fn stops_once_every_repo_has_an_answer() {
        // slow.example never answers until released; fast.example answers at once. The check
        // must return without waiting for slow.example, which is then "not waited".
        let targets = [
            t(
                "core",
                &["https://slow.example/core", "https://fast.example/core"],
            ),
            t("extra", &["https://fast.example/extra"]),
        ];
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let r = check_with(&targets, Duration::from_secs(600), move |hp, _| {
            if hp.to_string().starts_with("slow") {
                let _ = release_rx.lock().unwrap().recv();
                ProbeStatus::Timeout
            } else {
                ProbeStatus::Ok
            }
        });
        assert!(r.all_reachable(), "{r:?}");
        let slow = r.hosts.iter().find(|h| h.host == "slow.example").unwrap();
        assert_eq!(slow.status, ProbeStatus::NotWaited);
        drop(release_tx);
    }

    #[test]
    fn hosts_without_an_answer_by_the_deadline_time_out() {
        let targets = [t("core", &["https://hang.example/core"])];
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let r = check_with(&targets, Duration::from_millis(20), move |_, _| {
            let _ = release_rx.lock().unwrap().recv();
            ProbeStatus::Ok
        });
        assert_eq!(r.unreachable_repos(), ["core"]);
        assert_eq!(r.hosts[0].status, ProbeStatus::Timeout);
        drop(release_tx);
    }

    #[test]
    fn many_hosts_more_than_the_worker_pool() {
        let servers: Vec<String> = (0..40).map(|i| format!("https://m{i}.example/x")).collect();
        let targets = [CheckTarget::new("core", servers)];
        // Only the last host answers: all must be probed, through the bounded pool.
        let r = check_with(&targets, Duration::from_secs(5), |hp, _| {
            if hp.to_string() == "m39.example:443" {
                ProbeStatus::Ok
            } else {
                ProbeStatus::Unreachable("no route".into())
            }
        });
        assert!(r.all_reachable());
        assert_eq!(r.hosts.len(), 40);
    }

    #[test]
    fn targets_from_a_config_and_the_aur() {
        let cfg = crate::pacman_conf::resolve(
            std::path::Path::new("/etc/pacman.conf"),
            "[options]\n[core]\nServer = https://m/$repo\nCacheServer = http://c/\n[local-files]\nServer = file:///srv\n",
            "x86_64",
            None,
            &crate::pacman_conf::RealFiles,
        )
        .unwrap();
        let mut targets = targets_from_config(&cfg);
        targets.push(CheckTarget::aur());
        assert_eq!(
            targets,
            [
                t("core", &["https://m/core"]),
                t("local-files", &["file:///srv"]),
                t("aur", &[AUR_URL]),
            ]
        );
    }

    #[test]
    fn server_kinds() {
        assert_eq!(server_kind("file:///x"), ServerKind::File);
        assert_eq!(server_kind("http://127.0.0.1/"), ServerKind::Loopback);
        assert_eq!(
            server_kind("https://a.b/"),
            ServerKind::Remote(hp("a.b", 443))
        );
        assert_eq!(
            server_kind("http://10.0.0.1:8080/"),
            ServerKind::Remote(HostPort {
                host: Host::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                port: 8080
            })
        );
        assert!(matches!(server_kind("nope"), ServerKind::Invalid(_)));
    }

    #[test]
    fn interleaves_families() {
        let a4: SocketAddr = "1.1.1.1:80".parse().unwrap();
        let b4: SocketAddr = "2.2.2.2:80".parse().unwrap();
        let a6: SocketAddr = "[::2]:80".parse().unwrap();
        let b6: SocketAddr = "[::3]:80".parse().unwrap();
        assert_eq!(interleave(vec![a6, b6, a4, b4]), vec![a6, a4, b6, b4]);
        assert_eq!(interleave(vec![a4, b4, a6]), vec![a4, a6, b4]);
        assert_eq!(interleave(vec![a4]), vec![a4]);
    }
}
