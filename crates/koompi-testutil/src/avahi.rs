//! One mDNS responder per test-network device: a real avahi-daemon in the device's network
//! namespace, with its own dbus-daemon (a system-type bus with Avahi's own D-Bus policy),
//! its own runtime and services directories (bind-mounted in the mount namespace that
//! `ip netns exec` makes) and its own host name. Clients reach it with
//! `DBUS_SYSTEM_BUS_ADDRESS` set to [`Responder::bus`]. Root only, like [`crate::netns`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::netns::{wait_for, KillOnDrop, Net};

/// The programs a responder and its tests need.
pub const NEEDS: [&str; 6] = [
    "ip",
    "avahi-daemon",
    "avahi-browse",
    "avahi-publish",
    "dbus-daemon",
    "timeout",
];

/// One device's avahi-daemon and its bus; both killed on drop (avahi first).
#[derive(Debug)]
pub struct Responder {
    avahi: KillOnDrop,
    dbus: KillOnDrop,
    /// The D-Bus address of its bus (`unix:path=...`), for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub bus: String,
    /// avahi-daemon's output.
    pub log: PathBuf,
    /// Its directory (bus socket, config, run and services directories).
    pub dir: PathBuf,
}

impl Responder {
    /// Runs Avahi's own `avahi-browse -rpt _koompi._tcp` against it (5 s at most).
    pub fn browse_koompi(&self) -> String {
        let out = Command::new("timeout")
            .args(["5", "avahi-browse", "-rpt", "_koompi._tcp"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run avahi-browse: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Panics when avahi-daemon or its bus has exited.
    pub fn assert_running(&mut self) {
        self.dbus.assert_running();
        self.avahi.assert_running();
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

/// Starts device `i`'s responder under `base/dN`; `services` (file name, XML) are written
/// to its services directory first. Panics when it does not come up in 10 s.
pub fn start(net: &Net, i: usize, base: &Path, services: &[(&str, String)]) -> Responder {
    let dir = base.join(format!("d{}", i + 1));
    let (run, svc) = (dir.join("run"), dir.join("services"));
    fs::create_dir_all(&run).expect("responder setup");
    fs::create_dir_all(&svc).expect("responder setup");
    for (name, xml) in services {
        fs::write(svc.join(name), xml).expect("responder setup");
    }
    let socket = dir.join("bus");
    fs::write(dir.join("bus.conf"), bus_conf(&socket)).expect("responder setup");
    fs::write(
        dir.join("avahi.conf"),
        format!(
            "[server]\nhost-name=koompi-dev{}\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=eth0\n\
             ratelimit-interval-usec=1000000\nratelimit-burst=1000\n\
             [publish]\npublish-hinfo=no\npublish-workstation=no\n",
            i + 1
        ),
    )
    .expect("responder setup");
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
    fs::create_dir_all("/run/avahi-daemon").expect("responder setup");
    fs::create_dir_all("/etc/avahi/services").expect("responder setup");
    let log = dir.join("avahi.log");
    let script = format!(
        "mount --bind '{}' /run/avahi-daemon && mount --bind '{}' /etc/avahi/services && \
         exec avahi-daemon -f '{}' --no-chroot --no-drop-root --no-rlimits --no-proc-title",
        run.display(),
        svc.display(),
        dir.join("avahi.conf").display()
    );
    // avahi-daemon logs to stderr in the foreground; stdout joins it in one file.
    let out = fs::File::create(&log).expect("responder setup");
    let mut sh = Command::new("sh");
    sh.args(["-c", &script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus);
    let mut inside = net.run_in(i, &sh);
    inside
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("responder setup"))
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
