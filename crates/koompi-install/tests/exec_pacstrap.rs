//! The online install's download step against real parts: the real `pacstrap`
//! (arch-install-scripts) and pacman install a package built with makepkg from a
//! repository served over HTTP on loopback by a server that refuses the first requests
//! (503), as a school's internet drops. The executor tries again, pausing longer each
//! time, says so, and the package lands in the target; a server that never answers makes
//! it give up after [`exec::DOWNLOAD_TRIES`] tries with pacman's reason.
//!
//! pacstrap reads /etc/pacman.conf; the test's configuration is bind-mounted there in a
//! private mount namespace that only pacstrap sees (a `pacstrap` first in PATH that
//! enters it and runs the real one), so the host's file is never touched. These tests
//! need root.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use koompi_core::cmd::Runner;
use koompi_install::answers::{Finish, Source};
use koompi_install::exec::{self, Options, Secrets};
use koompi_install::plan::{Action, Plan, Step};
use koompi_testutil::pkgrepo::{require_pacman, PkgRepo, TestPkg};
use koompi_testutil::require_programs;

/// Serves `dir` on 127.0.0.1 (a free port), answering 503 to the first `fail` requests;
/// prints the port, then one line per request.
const SERVER: &str = r#"
import http.server, sys, functools
fail = int(sys.argv[2])
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        global fail
        if fail > 0:
            fail -= 1
            self.send_error(503, "the school's internet is down")
            return
        super().do_GET()
    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
    functools.partial(H, directory=sys.argv[1]))
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, fail: u32) -> Server {
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(dir)
            .arg(fail.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap();
        // Keep reading its lines so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ready(test: &str) -> bool {
    require_pacman(test)
        && require_programs(test, &["pacstrap", "pacman-key", "unshare", "python3"])
}

/// A `pacstrap` that runs the real one with `conf` as /etc/pacman.conf, seen by it alone.
fn pacstrap_with(dir: &Path, conf: &Path) {
    let real = ["/usr/bin/pacstrap", "/usr/sbin/pacstrap", "/bin/pacstrap"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    let script = format!(
        "#!/bin/sh\nexec unshare --mount --propagation private sh -c \
         'mount --bind \"$0\" /etc/pacman.conf && exec {real} \"$@\"' '{}' \"$@\"\n",
        conf.display()
    );
    let path = dir.join("pacstrap");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn plan(to: &Path) -> Plan {
    Plan {
        disk: "/dev/koompi-test-disk".into(),
        disk_description: "test".into(),
        root_partition: None,
        source: Source::Online,
        encrypt: false,
        hostname: "koompi".into(),
        user: None,
        finish: Finish::Stay,
        steps: vec![Step {
            id: "base-system",
            title: "Install the base system from the package repositories (online)".into(),
            optional: false,
            actions: vec![Action::Pacstrap {
                to: to.display().to_string(),
                packages: vec!["koompi-hello".into()],
            }],
        }],
    }
}

#[test]
fn a_download_that_fails_is_tried_again_and_then_given_up() {
    let test = "a_download_that_fails_is_tried_again_and_then_given_up";
    if !ready(test) || !Path::new("/etc/pacman.conf").is_file() {
        return;
    }
    let repo = PkgRepo::new("koompi-test");
    repo.build(&[TestPkg::new("koompi-hello", "1.0-1").file(
        "usr/share/koompi-hello/hello",
        "sous-dey\n",
        0o644,
    )]);
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    fs::create_dir(&bin).unwrap();
    // Only this test runs in this process: PATH is its own.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);
    let opts = Options {
        download_pause: Duration::from_millis(200),
        ..Options::default()
    };

    for (fail, succeeds) in [(2, true), (1000, false)] {
        let server = Server::start(&repo.dir(), fail);
        let conf = work.path().join(format!("pacman-{fail}.conf"));
        fs::write(
            &conf,
            format!(
                "[options]\nArchitecture = auto\nSigLevel = Never\n\n[koompi-test]\n\
                 Server = http://127.0.0.1:{}\n",
                server.port
            ),
        )
        .unwrap();
        pacstrap_with(&bin, &conf);
        let to = work.path().join(format!("target-{fail}"));
        fs::create_dir(&to).unwrap();
        let mut notes = Vec::new();
        let result = exec::execute(
            &plan(&to),
            &Secrets::default(),
            &Runner::real(),
            &work.path().join(format!("journal-{fail}.json")),
            &opts,
            &mut |p| notes.extend(p.note.clone()),
        );
        if succeeds {
            result.unwrap();
            assert_eq!(
                fs::read_to_string(to.join("usr/share/koompi-hello/hello")).unwrap(),
                "sous-dey\n"
            );
            assert_eq!(notes.len(), 2, "{notes:?}");
            assert!(
                notes[0].contains("trying again in 0 s (try 2 of 4)"),
                "{notes:?}"
            );
            // pacman's own reason, with the server's answer.
            assert!(notes[0].contains("503"), "{notes:?}");
            assert!(notes[1].contains("(try 3 of 4)"), "{notes:?}");
        } else {
            let e = result.unwrap_err().to_string();
            assert!(e.contains("pacstrap"), "{e}");
            assert_eq!(notes.len() as u32, exec::DOWNLOAD_TRIES - 1, "{notes:?}");
            assert!(
                notes.iter().all(|n| n.starts_with("the download failed (")),
                "{notes:?}"
            );
        }
        // pacstrap's mounts in the target went with its namespace.
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&to.display().to_string()), "{mounts}");
    }
}
