//! A classroom of six laptops on a test network (koompi-testutil's netns: one network
//! namespace per laptop on one bridge, 10.77.0.1 the teacher, .2 to .6 the students), each
//! with its own real Syncthing, its own real avahi-daemon (DNS-SD) and `koompi-class` run
//! inside its namespace as the laptop's user would run it. Root only: skipped otherwise,
//! failed when `KOOMPI_PRIVILEGED_TESTS=1` asks for it.
//!
//! In order: the teacher creates and serves (announces) the class; a wrong code is refused;
//! four students find the class by DNS-SD and one, whose mDNS cannot reach the teacher,
//! joins with the teacher's address; the teacher introduces the students to each other.
//! A lesson is shared while one student's laptop is off (killed); a student's edit and
//! another's deletion are put back by `watch`; the laptop that was off catches up when it
//! comes back. A 24 MiB lesson's transfer is cut in the middle (every frame dropped for
//! 8 s) and resumes, not restarts. With the teacher's laptop off, a student who was away
//! gets the newest lesson from classmates. Homework goes to the teacher only and is
//! collected; a removed student's laptop is dropped by the teacher and the classmates.
//! Every process is killed on drop, pass or fail, and nothing outlives the test.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use koompi_class::syncthing::{Client, Instance, ServeConfig};
use koompi_core::cmd::Runner;
use koompi_testutil::avahi::{self, Responder};
use koompi_testutil::netns::{KillOnDrop, Net, Shaping};

const BIN: &str = env!("CARGO_BIN_EXE_koompi-class");
const WAIT: Duration = Duration::from_secs(120);
const CMD_DEADLINE: Duration = Duration::from_secs(90);
/// The same port on every laptop: each is its own network.
const GUI_PORT: u16 = 28384;
const NAMES: [&str; 6] = ["teacher", "dara", "sokha", "vichea", "chenda", "rithy"];
const BIG: usize = 24 << 20;

fn can_run(test: &str) -> bool {
    koompi_testutil::require_root_with(test, &avahi::NEEDS)
        && koompi_testutil::require_programs(test, &["syncthing", "nft", "tc"])
}

/// One laptop: its namespace, HOME, state root, avahi bus and Syncthing (when on).
struct Laptop<'n> {
    net: &'n Net,
    i: usize,
    name: &'static str,
    home: PathBuf,
    state: PathBuf,
    bus: String,
    st: Option<Instance>,
}

impl<'n> Laptop<'n> {
    fn new(net: &'n Net, i: usize, base: &Path, bus: String) -> Laptop<'n> {
        let name = NAMES[i];
        let home = base.join(name).join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut l = Laptop {
            net,
            i,
            name,
            home,
            state: base.join(name).join("state"),
            bus,
            st: None,
        };
        l.power_on();
        l
    }

    /// Starts this laptop's Syncthing in its namespace, where the user unit would (the
    /// home under the state root), reconnecting every 2 s instead of 60.
    fn power_on(&mut self) {
        let home = self.state.join("koompi-class").join("syncthing");
        let name = self.name;
        let st = self.net.in_ns(self.i, || {
            let st = Instance::start(&Runner::real(), ServeConfig::new(home, GUI_PORT))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut opts = st.client().options().expect("options");
            opts["reconnectionIntervalS"] = serde_json::json!(2);
            st.client().put_options(&opts).expect("options");
            st
        });
        self.st = Some(st);
    }

    /// Syncthing killed, as by a power cut.
    fn power_off(&mut self) {
        drop(self.st.take());
    }

    fn rest<T: Send>(&self, f: impl FnOnce(&Client) -> T + Send) -> T {
        let st = self.st.as_ref().expect("this laptop's Syncthing is off");
        self.net.in_ns(self.i, || f(st.client()))
    }

    fn log_tail(&self) -> String {
        self.st
            .as_ref()
            .map(|s| s.log_tail())
            .unwrap_or_else(|| "(off)".into())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env("HOME", &self.home)
            .env("USER", self.name)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus)
            .env_remove("XDG_STATE_HOME")
            .arg("--home")
            .arg(&self.state)
            .arg("--gui-port")
            .arg(GUI_PORT.to_string())
            .args(args);
        self.net.run_in(self.i, &c)
    }

    /// Runs a command to its end (at most CMD_DEADLINE); (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = self.cmd(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = KillOnDrop::spawn("koompi-class", &mut c);
        let out = drain(child.child_mut().stdout.take());
        let err = drain(child.child_mut().stderr.take());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.child_mut().try_wait().expect("wait") {
                break status;
            }
            assert!(
                start.elapsed() < CMD_DEADLINE,
                "{}: koompi-class {args:?} did not finish in {CMD_DEADLINE:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
        eprintln!("{}$ koompi-class {}\n{out}{err}", self.name, args.join(" "));
        (status.success(), out, err)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(
            ok,
            "{}: koompi-class {args:?} failed: {err}\n{out}",
            self.name
        );
        out
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.home.join("Classroom").join("Maths").join(rel)
    }

    fn has(&self, rel: &str, content: &[u8]) -> bool {
        std::fs::read(self.file(rel)).is_ok_and(|c| c == content)
    }

    /// The device IDs this laptop's Syncthing knows, and their configs.
    fn devices(&self) -> Vec<koompi_class::syncthing::DeviceConfig> {
        self.rest(|c| c.devices().expect("devices"))
    }

    fn device_id(&self) -> String {
        self.st.as_ref().expect("on").device_id().to_string()
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

/// Waits for `check`, failing with every laptop's Syncthing log tail.
fn wait(what: &str, laptops: &[Laptop], mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > WAIT {
            let tails: Vec<String> = laptops
                .iter()
                .map(|l| format!("{}: {}", l.name, l.log_tail()))
                .collect();
            panic!("{what}: not within {WAIT:?}\n{}", tails.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("[{:>5.1} s] {what}", start.elapsed().as_secs_f64());
}

/// Bytes that do not compress: xorshift64.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What `serve` printed so far, read by a thread.
fn follow(serve: &mut KillOnDrop) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    for pipe in [
        serve
            .child_mut()
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        serve
            .child_mut()
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                lines.lock().expect("lines").push(line);
            }
        });
    }
    lines
}

#[test]
fn a_class_of_six_laptops_on_a_network() {
    if !can_run("a_class_of_six_laptops_on_a_network") {
        return;
    }
    let started = Instant::now();
    // Syncthing refuses to scan with < 1 % free on its disk: /dev/shm is roomy and fast.
    let tmp = tempfile::Builder::new()
        .prefix("koompi-class-net-")
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .expect("tempdir");
    let base = tmp.path();
    let net = Net::new(NAMES.len());
    let responders: Vec<Responder> = (0..NAMES.len())
        .map(|i| avahi::start(&net, i, &base.join("avahi"), &[]))
        .collect();
    let mut l: Vec<Laptop> = (0..NAMES.len())
        .map(|i| Laptop::new(&net, i, base, responders[i].bus.clone()))
        .collect();
    eprintln!(
        "[{:>5.1} s] six laptops up",
        started.elapsed().as_secs_f64()
    );

    // The teacher: a class, served and announced.
    let created: serde_json::Value =
        serde_json::from_str(&l[0].ok(&["--json", "create", "Maths"])).expect("create JSON");
    let words = created["words"].as_str().expect("words").to_string();
    let digits = created["digits"].as_str().expect("digits").to_string();
    let mut serve_cmd = l[0].cmd(&["serve", "Maths"]);
    serve_cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut serve = KillOnDrop::spawn("serve", &mut serve_cmd);
    let said = follow(&mut serve);
    let said_line =
        |pred: &dyn Fn(&str) -> bool| said.lock().expect("lines").iter().any(|s| pred(s));
    wait("serve is up", &l, || {
        said_line(&|s| s.contains("students join on port"))
    });
    assert!(
        !said_line(&|s| s.contains("not announced")),
        "the class is not announced"
    );

    // A wrong code: refused on both sides, nothing set up.
    let (ok, _, err) = l[5].run(&["join", "--code", "000-000-000-001", "--as", "rithy"]);
    assert!(!ok && err.contains("wrong code"), "a wrong code: {err}");
    assert!(!l[5].file("Lessons").exists());
    wait("the teacher refused the wrong code", &l, || {
        said_line(&|s| s.starts_with("refused: rithy") && s.contains("wrong code"))
    });

    // Joins: found by DNS-SD; chenda's mDNS cannot reach the teacher, she types the address.
    net.block_multicast(0, 4);
    l[1].ok(&["join", "--code", &words, "--as", "dara"]);
    l[2].ok(&["join", "Maths", "--code", &digits, "--as", "sokha"]);
    l[3].ok(&["join", "--code", &words]);
    l[4].ok(&[
        "join",
        "Maths",
        "--code",
        &words,
        "--teacher",
        "10.77.0.1",
        "--as",
        "chenda",
    ]);
    l[5].ok(&["join", "--code", &words, "--as", "rithy"]);
    for n in &NAMES[1..] {
        wait(&format!("{n} admitted"), &l, || {
            said_line(&|s| s.starts_with(&format!("joined: {n} ")))
        });
    }
    assert!(
        !said_line(&|s| s.contains("not set up")),
        "an admission failed"
    );
    let status: serde_json::Value =
        serde_json::from_str(&l[0].ok(&["--json", "status", "Maths"])).expect("status JSON");
    assert_eq!(
        status["students"].as_array().map(Vec::len),
        Some(5),
        "{status}"
    );
    // The teacher dials each student where the join came from, at the port it told.
    let devices = l[0].devices();
    for (i, s) in l.iter().enumerate().skip(1) {
        let id = s.device_id();
        let d = devices
            .iter()
            .find(|d| d.device_id == id)
            .expect("student device");
        let at = format!("tcp://10.77.0.{}:22000", i + 1);
        assert!(d.addresses.contains(&at), "{}: {:?}", s.name, d.addresses);
    }
    // Each student's laptop, like the user unit would, keeps the lessons as sent.
    let _watches: Vec<KillOnDrop> = l[1..]
        .iter()
        .map(|s| {
            let mut c = s.cmd(&["watch", "--interval", "1"]);
            c.stdout(Stdio::null());
            KillOnDrop::spawn("watch", &mut c)
        })
        .collect();
    // The teacher introduces the classmates: self, the teacher and four others.
    wait("every student knows the four others", &l, || {
        l[1..].iter().all(|s| s.devices().len() == 6)
    });

    // Vichea's laptop is off while the teacher shares a lesson.
    l[3].power_off();
    let lesson1 = b"Lesson 1: fractions. Read pages 10 to 12.\n".to_vec();
    std::fs::write(base.join("lesson1.txt"), &lesson1).expect("write");
    let lesson1_path = base.join("lesson1.txt").to_string_lossy().into_owned();
    l[0].ok(&["share", "Maths", &lesson1_path]);
    wait("lesson 1 reached the four laptops that are on", &l, || {
        [1, 2, 4, 5]
            .iter()
            .all(|&i| l[i].has("Lessons/lesson1.txt", &lesson1))
    });
    // Lessons arrive read-only, in a class folder only the user can enter.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: PathBuf| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(l[1].file("Lessons/lesson1.txt")), 0o444);
    assert_eq!(mode(l[1].file("")), 0o700);
    // An editor's lock file beside an open lesson is not a change: it stays.
    let lock = l[2].file("Lessons/.~lock.lesson1.txt#");
    std::fs::write(&lock, b"sokha,laptop").expect("lock file");
    std::thread::sleep(Duration::from_secs(6));
    assert!(lock.exists(), "watch removed an editor's lock file");
    let changed = l[2].rest(|c| c.folder_status("koompi-Maths-lessons").expect("status"));
    assert_eq!(changed.receive_only_total_items, 0, "{changed:?}");
    // Dara edits it, Rithy deletes it: both are put back.
    std::fs::write(l[1].file("Lessons/lesson1.txt"), b"my answers\n").expect("edit");
    std::fs::remove_file(l[5].file("Lessons/lesson1.txt")).expect("delete");
    wait("the edited and the deleted lesson are put back", &l, || {
        l[1].has("Lessons/lesson1.txt", &lesson1) && l[5].has("Lessons/lesson1.txt", &lesson1)
    });
    // Classmates got the classroom's per-device limit from `watch`.
    let teacher_id = l[0].device_id();
    wait("classmates are limited", &l, || {
        l[1].devices()
            .iter()
            .filter(|d| d.introduced_by == teacher_id)
            .all(|d| d.max_send_kbps == koompi_class::class::DEVICE_LIMIT_KBPS)
    });
    assert!(!l[3].file("Lessons/lesson1.txt").exists(), "vichea was off");
    l[3].power_on();
    wait("vichea, back on, caught up", &l, || {
        l[3].has("Lessons/lesson1.txt", &lesson1)
    });

    // A big lesson; Sokha's link (16 Mbit/s) is cut in the middle of it.
    net.shape(
        2,
        &Shaping {
            rate_kbit: Some(16_000),
            ..Shaping::default()
        },
    );
    let big = noise(BIG, 42);
    std::fs::write(base.join("atlas.bin"), &big).expect("write");
    let rx0 = net.rx_bytes(2);
    l[0].ok(&["share", "Maths", &base.join("atlas.bin").to_string_lossy()]);
    wait("sokha has 40 % of the big lesson", &l, || {
        net.rx_bytes(2) - rx0 >= (BIG as u64) * 2 / 5
    });
    net.cut(2);
    // What the shaper had queued before the cut still arrives; then nothing.
    std::thread::sleep(Duration::from_secs(1));
    let at_cut = net.rx_bytes(2) - rx0;
    assert!(!l[2].has("Lessons/atlas.bin", &big), "done before the cut");
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(net.rx_bytes(2) - rx0, at_cut, "frames passed a cut link");
    net.reconnect(2);
    wait("sokha's transfer finished after the cut", &l, || {
        l[2].has("Lessons/atlas.bin", &big)
    });
    let received = net.rx_bytes(2) - rx0;
    eprintln!(
        "sokha: cut at {:.0} %, {:.2} MiB received for {:.2} MiB",
        at_cut as f64 * 100.0 / BIG as f64,
        received as f64 / f64::from(1 << 20),
        BIG as f64 / f64::from(1 << 20)
    );
    // Resumed: what arrived before the cut was kept (a restart would need > 140 %).
    assert!(
        received < (BIG as u64) * 6 / 5,
        "{received} bytes received for a {BIG}-byte lesson cut at {at_cut}"
    );
    wait("everyone has the big lesson", &l, || {
        l[1..].iter().all(|s| s.has("Lessons/atlas.bin", &big))
    });

    // The teacher's laptop goes off after a lesson Chenda (off) has not got yet.
    l[4].power_off();
    let lesson2 = b"Lesson 2: decimals.\n".to_vec();
    std::fs::write(base.join("lesson2.txt"), &lesson2).expect("write");
    l[0].ok(&[
        "share",
        "Maths",
        &base.join("lesson2.txt").to_string_lossy(),
    ]);
    wait("lesson 2 reached the others", &l, || {
        [1, 2, 3, 5]
            .iter()
            .all(|&i| l[i].has("Lessons/lesson2.txt", &lesson2))
    });
    drop(serve);
    l[0].power_off();
    l[4].power_on();
    wait(
        "chenda got lesson 2 from classmates, the teacher off",
        &l,
        || l[4].has("Lessons/lesson2.txt", &lesson2),
    );
    assert!(l[0].st.is_none());

    // Homework: to the teacher only; collected.
    l[0].power_on();
    let hw = |n: &str| format!("{n}'s answers\n").into_bytes();
    for i in [1, 2] {
        let p = base.join(format!("hw-{}.txt", NAMES[i]));
        std::fs::write(&p, hw(NAMES[i])).expect("write");
        l[i].ok(&["submit", "Maths", &p.to_string_lossy()]);
    }
    wait("both homeworks at the teacher", &l, || {
        l[0].has("Submissions/dara/hw-dara.txt", &hw("dara"))
            && l[0].has("Submissions/sokha/hw-sokha.txt", &hw("sokha"))
    });
    // Handed in is handed in: Dara deleting her copy does not delete the teacher's.
    std::fs::remove_file(l[1].file("Submissions/dara/hw-dara.txt")).expect("delete");
    wait("the teacher heard of dara's deletion", &l, || {
        l[0].rest(|c| c.file_info("koompi-Maths-sub-dara", "hw-dara.txt"))
            .is_ok_and(|v| v["global"]["deleted"] == true)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        l[0].has("Submissions/dara/hw-dara.txt", &hw("dara")),
        "the teacher lost homework"
    );
    assert!(
        !l[2].file("Submissions/dara").exists(),
        "sokha received dara's work"
    );
    assert!(
        !l[1].file("Submissions/sokha").exists(),
        "dara received sokha's work"
    );
    let into = base.join("marking");
    let c: serde_json::Value = serde_json::from_str(&l[0].ok(&[
        "--json",
        "collect",
        "Maths",
        "--into",
        &into.to_string_lossy(),
    ]))
    .expect("collect JSON");
    let dir = PathBuf::from(c["dir"].as_str().expect("dir"));
    assert_eq!(
        std::fs::read(dir.join("dara").join("hw-dara.txt")).ok(),
        Some(hw("dara"))
    );
    assert_eq!(
        std::fs::read(dir.join("sokha").join("hw-sokha.txt")).ok(),
        Some(hw("sokha"))
    );
    wait("the teacher sees dara online with every lesson", &l, || {
        let s: serde_json::Value =
            serde_json::from_str(&l[0].ok(&["--json", "status", "Maths"])).expect("status");
        s["students"].as_array().into_iter().flatten().any(|st| {
            st["name"] == "dara" && st["online"] == true && st["lessons_completion"] == 100.0
        })
    });

    // Rithy is taken out: the teacher and the classmates drop the laptop.
    let rithy = l[5].device_id();
    assert!(l[1].devices().iter().any(|d| d.device_id == rithy));
    l[0].ok(&["remove-student", "Maths", "rithy"]);
    assert!(!l[0].devices().iter().any(|d| d.device_id == rithy));
    wait("the classmates dropped rithy's laptop", &l, || {
        [1, 2]
            .iter()
            .all(|&i| !l[i].devices().iter().any(|d| d.device_id == rithy))
    });
    let status: serde_json::Value =
        serde_json::from_str(&l[0].ok(&["--json", "status", "Maths"])).expect("status JSON");
    assert_eq!(
        status["students"].as_array().map(Vec::len),
        Some(4),
        "{status}"
    );

    // Everything stops; nothing started under the test's directory is left running.
    let marker = base.to_string_lossy().into_owned();
    drop(_watches);
    drop(l);
    drop(responders);
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rfind(')')
                .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
            (cmdline.contains(&marker) && !zombie).then_some(cmdline)
        })
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    eprintln!("[{:>5.1} s] done", started.elapsed().as_secs_f64());
}
