//! A test network of Linux network namespaces: N devices, each in its own namespace with one
//! veth whose other end is a port of one bridge, which lives in a namespace of its own. The
//! devices have the addresses 10.77.0.1 .. 10.77.0.N (/24) on `eth0`, multicast on (mDNS
//! works across the bridge), and each link can be shaped with tc (tbf for a rate, netem for
//! delay and loss where the kernel has it). [`Net`] deletes every namespace it made when it
//! is dropped, also when the test panics; processes a test starts in a namespace are killed
//! by their [`KillOnDrop`] guard.
//!
//! Needs root, `ip` and `tc` (iproute2) and, for [`Net::block_multicast`], `nft` (nftables).
//! The classroom tests use it with 3 devices; the 40-laptop benchmark with 40.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How one device's link is shaped (both directions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shaping {
    /// A rate limit (tbf), in kbit/s.
    pub rate_kbit: Option<u32>,
    /// A delay (netem), in milliseconds.
    pub delay_ms: Option<u32>,
    /// A loss rate (netem), in percent.
    pub loss_percent: Option<f32>,
}

/// One device of the network.
#[derive(Debug, Clone)]
pub struct Device {
    /// The name of its network namespace (for `ip netns exec`).
    pub ns: String,
    /// Its address on `eth0`.
    pub addr: Ipv4Addr,
    /// The name of its bridge port (in the bridge's namespace).
    pub port: String,
}

/// The network; everything it made is deleted on drop.
#[derive(Debug)]
pub struct Net {
    bridge_ns: String,
    devices: Vec<Device>,
    made: Vec<String>,
}

/// The interface name of every device.
pub const IFACE: &str = "eth0";

/// Runs `ip`/`tc`/`nft`, panicking with its stderr on failure.
fn run(prog: &str, args: &[&str]) {
    let out = match Command::new(prog).args(args).stdin(Stdio::null()).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {prog}: {e}"),
    };
    assert!(
        out.status.success(),
        "{prog} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Net {
    /// A network of `n` devices (1..=253). Panics when a step fails; what was made until
    /// then is deleted.
    pub fn new(n: usize) -> Net {
        assert!(
            (1..=253).contains(&n),
            "a test network has 1 to 253 devices"
        );
        let tag = format!(
            "k{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let bridge_ns = format!("{tag}-br");
        let mut net = Net {
            bridge_ns: bridge_ns.clone(),
            devices: Vec::new(),
            made: Vec::new(),
        };
        run("ip", &["netns", "add", &bridge_ns]);
        net.made.push(bridge_ns.clone());
        let br = ["-n", bridge_ns.as_str()];
        run(
            "ip",
            &[&br[..], &["link", "add", "br0", "type", "bridge"]].concat(),
        );
        // 224.0.0.251 is link-local and flooded anyway; no snooping keeps it that way.
        run(
            "ip",
            &[
                &br[..],
                &[
                    "link",
                    "set",
                    "br0",
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ],
            ]
            .concat(),
        );
        run("ip", &[&br[..], &["link", "set", "br0", "up"]].concat());
        for i in 0..n {
            let ns = format!("{tag}-d{}", i + 1);
            let port = format!("p{}", i + 1);
            let octet = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let addr = Ipv4Addr::new(10, 77, 0, octet);
            run("ip", &["netns", "add", &ns]);
            net.made.push(ns.clone());
            run(
                "ip",
                &[
                    "link", "add", IFACE, "netns", &ns, "type", "veth", "peer", "name", &port,
                    "netns", &bridge_ns,
                ],
            );
            let d = ["-n", ns.as_str()];
            run(
                "ip",
                &[
                    &d[..],
                    &["addr", "add", &format!("{addr}/24"), "dev", IFACE],
                ]
                .concat(),
            );
            run(
                "ip",
                &[&d[..], &["link", "set", IFACE, "multicast", "on", "up"]].concat(),
            );
            run("ip", &[&d[..], &["link", "set", "lo", "up"]].concat());
            run(
                "ip",
                &[&br[..], &["link", "set", &port, "master", "br0", "up"]].concat(),
            );
            // A bridge port is a wire: without this it has an IPv6 link-local address of
            // its own and sends from it past the bridge's filters (what `cut` relies on).
            let sysctl = format!("/proc/sys/net/ipv6/conf/{port}/disable_ipv6");
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &bridge_ns,
                    "sh",
                    "-c",
                    &format!("echo 1 > {sysctl}"),
                ],
            );
            net.devices.push(Device { ns, addr, port });
        }
        net
    }

    /// A network of `n` devices, every link shaped by `shaping`.
    pub fn shaped(n: usize, shaping: &Shaping) -> Net {
        let net = Net::new(n);
        for i in 0..n {
            net.shape(i, shaping);
        }
        net
    }

    /// The devices.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Device `i` (from 0).
    pub fn device(&self, i: usize) -> &Device {
        &self.devices[i]
    }

    /// The namespace of device `i`.
    pub fn ns(&self, i: usize) -> &str {
        &self.devices[i].ns
    }

    /// The bridge's namespace.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// Shapes device `i`'s link in both directions: its `eth0` (what it sends) and its
    /// bridge port (what it receives).
    pub fn shape(&self, i: usize, s: &Shaping) {
        let dev = &self.devices[i];
        for (ns, iface) in [
            (dev.ns.as_str(), IFACE),
            (self.bridge_ns.as_str(), &dev.port),
        ] {
            shape_link(ns, iface, s);
        }
    }

    /// Drops mDNS multicast (01:00:5e:00:00:fb, 224.0.0.251, and IPv6's 33:33:00:00:00:fb)
    /// between devices `a` and `b`, both ways, in the bridge (nftables, bridge family).
    /// Unicast still passes.
    pub fn block_multicast(&self, a: usize, b: usize) {
        let (pa, pb) = (&self.devices[a].port, &self.devices[b].port);
        let mut rules = String::from(
            "table bridge koompi_test {\n chain mdns_filter {\n  type filter hook forward priority 0; policy accept;\n",
        );
        for (i, o) in [(pa, pb), (pb, pa)] {
            for mac in ["01:00:5e:00:00:fb", "33:33:00:00:00:fb"] {
                rules.push_str(&format!(
                    "  iifname \"{i}\" oifname \"{o}\" ether daddr {mac} drop\n"
                ));
            }
        }
        rules.push_str(" }\n}\n");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let file = dir.path().join("rules.nft");
        std::fs::write(&file, rules).unwrap_or_else(|e| panic!("write nft rules: {e}"));
        let f = file.to_string_lossy();
        run("ip", &["netns", "exec", &self.bridge_ns, "nft", "-f", &f]);
    }

    /// Cuts device `i`'s link: every frame to or from its bridge port is dropped (as when
    /// a laptop's Wi-Fi drops out: its connections stay open and nothing passes, not even
    /// what the bridge itself sends) until
    /// [`Net::reconnect`]. A table of its own per device in the bridge's nftables.
    pub fn cut(&self, i: usize) {
        let port = &self.devices[i].port;
        let rules = format!(
            "table bridge koompi_cut_{i} {{\n chain forward {{\n  type filter hook forward priority -10; policy accept;\n  \
             iifname \"{port}\" drop\n  oifname \"{port}\" drop\n }}\n \
             chain output {{\n  type filter hook output priority -10; policy accept;\n  \
             oifname \"{port}\" drop\n }}\n}}\n"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let file = dir.path().join("cut.nft");
        std::fs::write(&file, rules).unwrap_or_else(|e| panic!("write nft rules: {e}"));
        let f = file.to_string_lossy();
        run("ip", &["netns", "exec", &self.bridge_ns, "nft", "-f", &f]);
    }

    /// Undoes [`Net::cut`] for device `i`.
    pub fn reconnect(&self, i: usize) {
        let table = format!("koompi_cut_{i}");
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.bridge_ns,
                "nft",
                "delete",
                "table",
                "bridge",
                &table,
            ],
        );
    }

    /// Bytes device `i` has received on its link so far (`ip -s`).
    pub fn rx_bytes(&self, i: usize) -> u64 {
        let out = Command::new("ip")
            .args(["-n", &self.devices[i].ns, "-s", "-j", "link", "show", IFACE])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip -s -j link: {e}"));
        v[0]["stats64"]["rx"]["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("ip -s -j link: no rx bytes in {v}"))
    }

    /// `cmd` to be run in device `i`'s namespace (`ip netns exec NS PROGRAM ARGS`, with
    /// `cmd`'s environment and working directory; its stdin, stdout and stderr cannot be
    /// read back from a `Command`: set them on the one returned). `ip netns exec` execs the
    /// program, so a spawned child's pid is the program's own.
    pub fn run_in(&self, i: usize, cmd: &Command) -> Command {
        run_in(&self.devices[i].ns, cmd)
    }

    /// Runs `f` in device `i`'s network: see [`in_ns`].
    pub fn in_ns<T: Send>(&self, i: usize, f: impl FnOnce() -> T + Send) -> T {
        in_ns(&self.devices[i].ns, f)
    }
}

/// Runs `f` on a thread of its own that has first moved into namespace `ns`'s network
/// (`setns` on `/run/netns/NS`): the sockets it opens (a REST client to 127.0.0.1 there)
/// and the processes it spawns (they inherit the thread's namespace) are on that device's
/// network. A panic in `f` is the caller's panic.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsFd;
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let path = format!("/run/netns/{ns}");
            let file =
                std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap_or_else(|e| panic!("cannot enter {path}: {e}"));
            f()
        });
        match t.join() {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    })
}

/// `cmd` to be run in namespace `ns`: see [`Net::run_in`].
pub fn run_in(ns: &str, cmd: &Command) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c
}

fn shape_link(ns: &str, iface: &str, s: &Shaping) {
    let tbf = |parent: &[&str], rate: u32| {
        let rate = format!("{rate}kbit");
        let mut a = vec!["netns", "exec", ns, "tc", "qdisc", "replace", "dev", iface];
        a.extend_from_slice(parent);
        a.extend_from_slice(&["tbf", "rate", &rate, "burst", "32kbit", "latency", "400ms"]);
        run("ip", &a);
    };
    if s.delay_ms.is_none() && s.loss_percent.is_none() {
        if let Some(rate) = s.rate_kbit {
            tbf(&["root", "handle", "1:"], rate);
        }
        return;
    }
    let mut a: Vec<String> = ["netns", "exec", ns, "tc", "qdisc", "replace", "dev", iface]
        .map(String::from)
        .to_vec();
    a.extend(["root", "handle", "1:", "netem"].map(String::from));
    if let Some(d) = s.delay_ms {
        a.extend(["delay".into(), format!("{d}ms")]);
    }
    if let Some(l) = s.loss_percent {
        a.extend(["loss".into(), format!("{l}%")]);
    }
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    // Some kernels (this project's CI machines among them) lack sch_netem: tc then says
    // "Specified qdisc kind is unknown".
    run("ip", &a);
    if let Some(rate) = s.rate_kbit {
        tbf(&["parent", "1:1", "handle", "10:"], rate);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces, the veth pairs with them.
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "delete", ns])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, also when the test panics.
#[derive(Debug)]
pub struct KillOnDrop {
    child: Child,
    what: String,
}

impl KillOnDrop {
    /// Spawns `cmd`; panics naming `what` when it cannot start.
    pub fn spawn(what: &str, cmd: &mut Command) -> KillOnDrop {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        KillOnDrop {
            child,
            what: what.to_string(),
        }
    }

    /// The child, for its pipes and its exit status.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Panics when the process has already exited (it should still be running).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.what);
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some` or `deadline` passes (then `None`).
pub fn wait_for<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespaces() -> String {
        let out = Command::new("ip").args(["netns", "list"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Two devices reach each other across the bridge (a UDP datagram, unicast), the link
    /// can be shaped, and every namespace is gone after a panic in the test.
    #[test]
    fn devices_talk_and_everything_goes_on_panic() {
        if !crate::require_root("devices_talk_and_everything_goes_on_panic")
            || !crate::require_programs("netns", &["ip", "tc"])
        {
            return;
        }
        let mut names = Vec::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let net = Net::new(2);
            names = net.devices().iter().map(|d| d.ns.clone()).collect();
            names.push(net.bridge_ns().to_string());
            net.shape(
                1,
                &Shaping {
                    rate_kbit: Some(1000),
                    ..Shaping::default()
                },
            );
            // A listener in device 2 and a sender in device 1, each in its namespace.
            let listen = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
                          s.bind(('10.77.0.2', 4000)); s.settimeout(5); print(s.recv(100).decode())";
            let mut l = net.run_in(1, Command::new("python3").args(["-c", listen]));
            let listener = l.stdout(Stdio::piped()).spawn().unwrap();
            let _guard = KillOnDrop {
                child: listener,
                what: "listener".into(),
            };
            let send = "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                        for _ in range(20): s.sendto(b'hello', ('10.77.0.2', 4000)); time.sleep(0.1)";
            let sent = net
                .run_in(0, Command::new("python3").args(["-c", send]))
                .status()
                .unwrap();
            assert!(sent.success());
            let mut guard = _guard;
            let out = guard.child.stdout.take();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut out.unwrap(), &mut text).unwrap();
            assert_eq!(text.trim(), "hello");
            let listed = namespaces();
            for n in &names {
                assert!(listed.contains(n.as_str()), "{n} not in {listed}");
            }
            panic!("on purpose");
        }));
        assert!(result.is_err());
        assert_eq!(names.len(), 3);
        let listed = namespaces();
        for n in &names {
            assert!(!listed.contains(n.as_str()), "{n} left behind: {listed}");
        }
    }

    /// `in_ns` moves the thread, not the process: a socket bound on 10.77.0.2 in device 2,
    /// reached from device 1, and not bindable on the test's own network, where 10.77.0.2
    /// does not exist; a process spawned from the thread lives in the namespace.
    #[test]
    fn in_ns_runs_a_thread_on_a_devices_network() {
        if !crate::require_root("in_ns_runs_a_thread_on_a_devices_network")
            || !crate::require_programs("netns", &["ip"])
        {
            return;
        }
        let net = Net::new(2);
        let listener = net.in_ns(1, || {
            std::net::TcpListener::bind("10.77.0.2:4001").expect("bind in device 2")
        });
        let peer = net.in_ns(0, || {
            let s = std::net::TcpStream::connect_timeout(
                &"10.77.0.2:4001".parse().unwrap(),
                Duration::from_secs(5),
            )
            .expect("connect from device 1");
            s.local_addr().unwrap().ip()
        });
        let (_, from) = listener.accept().unwrap();
        assert_eq!(peer.to_string(), "10.77.0.1");
        assert_eq!(from.ip().to_string(), "10.77.0.1");
        assert!(std::net::TcpListener::bind("10.77.0.2:4001").is_err());
        let spawned = net.in_ns(0, || {
            Command::new("ip")
                .args(["-4", "-o", "addr", "show", IFACE])
                .output()
                .unwrap()
        });
        assert!(String::from_utf8_lossy(&spawned.stdout).contains("10.77.0.1/24"));
    }

    /// A cut link passes nothing (and the counter says so); reconnected, it passes again.
    #[test]
    fn a_cut_link_passes_nothing_until_reconnected() {
        if !crate::require_root("a_cut_link_passes_nothing_until_reconnected")
            || !crate::require_programs("netns", &["ip", "nft"])
        {
            return;
        }
        let net = Net::new(2);
        let _listener = net.in_ns(1, || {
            std::net::TcpListener::bind("10.77.0.2:4002").expect("bind in device 2")
        });
        let connects = |n: &Net| {
            n.in_ns(0, || {
                std::net::TcpStream::connect_timeout(
                    &"10.77.0.2:4002".parse().unwrap(),
                    Duration::from_secs(1),
                )
                .is_ok()
            })
        };
        assert!(connects(&net));
        net.cut(1);
        let before = net.rx_bytes(1);
        assert!(!connects(&net));
        assert_eq!(net.rx_bytes(1), before);
        net.reconnect(1);
        assert!(connects(&net));
        assert!(net.rx_bytes(1) > before);
    }
}
