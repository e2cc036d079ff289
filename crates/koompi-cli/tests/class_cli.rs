//! `koompi-class` end to end on loopback, no root: a teacher and two students (and a third
//! with a wrong code), each with its own HOME, state root and real Syncthing on 127.0.0.1
//! ports. The teacher creates and serves the class, students join with `--teacher`, a
//! lesson reaches both, each one's homework reaches the teacher only, and `collect` has
//! both. Every process (Syncthing, `serve`, each command) has a deadline and is killed on
//! drop, pass or fail.

use koompi_class::syncthing::{apply_class_options, ClassOptions, Instance, ServeConfig};
use koompi_core::cmd::Runner;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);
const CMD_DEADLINE: Duration = Duration::from_secs(60);
const BIN: &str = env!("CARGO_BIN_EXE_koompi-class");

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

/// Syncthing refuses to scan with < 1 % free on its home's disk: use /dev/shm when there.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::Builder::new()
            .prefix("koompi-class-")
            .tempdir_in(shm)
        {
            return t;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

/// One laptop: a HOME, a state root, its Syncthing (killed on drop).
struct Laptop {
    name: &'static str,
    home: PathBuf,
    state: PathBuf,
    gui_port: u16,
    sync_addr: String,
    st: Instance,
}

impl Laptop {
    fn new(dir: &Path, name: &'static str) -> Laptop {
        let home = dir.join(name).join("home");
        let state = dir.join(name).join("state");
        std::fs::create_dir_all(&home).expect("home");
        let gui_port = free_port();
        let st_home = state.join("koompi-class").join("syncthing");
        let st = Instance::start(&Runner::real(), ServeConfig::new(st_home, gui_port))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let sync_addr = format!("tcp://127.0.0.1:{}", free_port());
        let mut opts = st.client().options().expect("options");
        apply_class_options(
            &mut opts,
            &ClassOptions {
                local_announce: false,
                listen_addresses: Some(vec![sync_addr.clone()]),
            },
        );
        opts["reconnectionIntervalS"] = serde_json::json!(2);
        st.client().put_options(&opts).expect("options");
        Laptop {
            name,
            home,
            state,
            gui_port,
            sync_addr,
            st,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env("HOME", &self.home)
            .env_remove("XDG_STATE_HOME")
            .arg("--home")
            .arg(&self.state)
            .arg("--gui-port")
            .arg(self.gui_port.to_string())
            .args(args);
        c
    }

    /// Runs a command to its end (at most CMD_DEADLINE); (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = self.cmd(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Guard(c.spawn().expect("spawn koompi-class"));
        let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_string(&mut s);
                }
                s
            })
        };
        let out = drain(child.0.stdout.take().map(|o| Box::new(o) as _));
        let err = drain(child.0.stderr.take().map(|e| Box::new(e) as _));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(
                start.elapsed() < CMD_DEADLINE,
                "{}: koompi-class {args:?} did not finish in {CMD_DEADLINE:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        (
            status.success(),
            out.join().expect("stdout reader"),
            err.join().expect("stderr reader"),
        )
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

    fn class_file(&self, rel: &str) -> PathBuf {
        self.home.join("Classroom").join("Maths").join(rel)
    }
}

/// Kills its child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `check`, failing with the Syncthing log tails of `laptops`.
fn wait(what: &str, laptops: &[&Laptop], mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > WAIT {
            let tails: Vec<String> = laptops
                .iter()
                .map(|l| format!("{}: {}", l.name, l.st.log_tail()))
                .collect();
            panic!("{what}: not within {WAIT:?}\n{}", tails.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn a_class_on_loopback_lessons_out_homework_back() {
    if !koompi_testutil::require_programs("class_cli", &["syncthing"]) {
        return;
    }
    let tmp = scratch();
    let teacher = Laptop::new(tmp.path(), "teacher");
    let dara = Laptop::new(tmp.path(), "dara");
    let sokha = Laptop::new(tmp.path(), "sokha");
    let guesser = Laptop::new(tmp.path(), "guesser");

    // Bad input: one line, non-zero.
    let (ok, _, err) = teacher.run(&["create", "bad/name"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("koompi-class: error: "), "{err}");

    let created: serde_json::Value =
        serde_json::from_str(&teacher.ok(&["--json", "create", "Maths"])).expect("create JSON");
    let words = created["words"].as_str().expect("words").to_string();
    assert!(teacher.class_file("Lessons").is_dir());
    // The human form: the words, the digits and a QR code.
    let art = teacher.ok(&["create", "Art"]);
    assert!(art.contains("Join code: ") && art.contains("▀"), "{art}");
    teacher.ok(&["close", "Art"]);
    let (ok, _, err) = teacher.run(&["create", "Maths"]);
    assert!(!ok && err.contains("exists already"), "{err}");

    // serve: the join server on a loopback port, no DNS-SD here.
    let join_port = free_port();
    let listen = format!("127.0.0.1:{join_port}");
    let mut serve = teacher.cmd(&["serve", "Maths", "--listen", &listen, "--no-announce"]);
    serve.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut serve = Guard(serve.spawn().expect("spawn serve"));
    let stdout = serve.0.stdout.take().expect("serve stdout");
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_line = |what: &str, pred: &dyn Fn(&str) -> bool| {
        let start = Instant::now();
        loop {
            if seen.iter().any(|l| pred(l)) {
                return seen.clone();
            }
            let left = WAIT.saturating_sub(start.elapsed());
            assert!(!left.is_zero(), "serve never printed {what}: {seen:?}");
            if let Ok(l) = lines.recv_timeout(left) {
                seen.push(l);
            }
        }
    };
    wait_line("its port", &|l| l.contains("students join on port"));

    let teacher_arg = listen.as_str();
    let join = |l: &Laptop, name: &str, code: &str| {
        l.run(&[
            "join",
            "Maths",
            "--code",
            code,
            "--teacher",
            teacher_arg,
            "--teacher-sync",
            &teacher.sync_addr,
            "--as",
            name,
        ])
    };
    let (ok, out, err) = join(&dara, "dara", &words);
    assert!(ok, "dara's join: {err}{out}");
    let (ok, out, err) = join(&sokha, "sokha", &words);
    assert!(ok, "sokha's join: {err}{out}");
    // A wrong code (another valid code) is refused, and nothing is set up.
    let (ok, _, err) = join(&guesser, "guess", "000-000-000-001");
    assert!(!ok, "a wrong code joined");
    assert!(err.contains("wrong code"), "{err}");
    assert!(!guesser.class_file("Lessons").exists());
    wait_line("dara joined", &|l| l.starts_with("joined: dara"));
    wait_line("sokha joined", &|l| l.starts_with("joined: sokha"));
    let seen_now = wait_line("the guesser refused", &|l| {
        l.starts_with("refused: guess") && l.contains("wrong code")
    });
    assert!(
        !seen_now.iter().any(|l| l.contains("not set up")),
        "{seen_now:?}"
    );

    // A lesson reaches both students.
    let lesson = tmp.path().join("lesson1.txt");
    std::fs::write(&lesson, "2 + 2 = 4\n").expect("lesson");
    teacher.ok(&["share", "Maths", lesson.to_str().expect("utf-8")]);
    for s in [&dara, &sokha] {
        wait("the lesson reaches the student", &[&teacher, s], || {
            read(&s.class_file("Lessons/lesson1.txt")).as_deref() == Some("2 + 2 = 4\n")
        });
    }

    // A student's change to a lesson stays on that laptop and `restore` undoes it.
    std::fs::write(dara.class_file("Lessons/lesson1.txt"), "2 + 2 = 5\n").expect("edit");
    wait("dara's change is seen", &[&dara], || {
        let v: serde_json::Value =
            serde_json::from_str(&dara.ok(&["status", "Maths", "--json"])).unwrap_or_default();
        v["lessons_changed"].as_u64() == Some(1)
    });
    let restored: serde_json::Value =
        serde_json::from_str(&dara.ok(&["restore", "Maths", "--json"])).expect("restore JSON");
    assert_eq!(restored["changed"], 1, "{restored}");
    wait("the lesson is put back", &[&teacher, &dara], || {
        read(&dara.class_file("Lessons/lesson1.txt")).as_deref() == Some("2 + 2 = 4\n")
    });
    assert_eq!(
        read(&teacher.class_file("Lessons/lesson1.txt")).as_deref(),
        Some("2 + 2 = 4\n")
    );

    // Each hands in homework; the teacher has both, neither student has the other's.
    for s in [&dara, &sokha] {
        let hw = tmp.path().join(format!("hw-{}.txt", s.name));
        std::fs::write(&hw, format!("{}'s answer\n", s.name)).expect("homework");
        s.ok(&["submit", "Maths", hw.to_str().expect("utf-8")]);
    }
    for s in [&dara, &sokha] {
        let rel = format!("Submissions/{0}/hw-{0}.txt", s.name);
        wait("the homework reaches the teacher", &[&teacher, s], || {
            read(&teacher.class_file(&rel)).is_some()
        });
    }
    assert!(!dara.class_file("Submissions/sokha").exists());
    assert!(!sokha.class_file("Submissions/dara").exists());

    let status: serde_json::Value =
        serde_json::from_str(&teacher.ok(&["status", "Maths", "--json"])).expect("status JSON");
    let students = status["students"].as_array().expect("students");
    assert_eq!(students.len(), 2, "{status}");
    for st in students {
        assert_eq!(st["submissions"].as_array().map(Vec::len), Some(1), "{st}");
        assert_eq!(st["online"], true, "{st}");
    }
    // Lessons completion per student, as the teacher's Syncthing learns it.
    wait("both students at 100 % of the lessons", &[&teacher], || {
        let v: serde_json::Value =
            serde_json::from_str(&teacher.ok(&["status", "Maths", "--json"])).unwrap_or_default();
        v["students"].as_array().is_some_and(|a| {
            a.iter()
                .all(|s| s["lessons_completion"].as_f64() == Some(100.0))
        })
    });
    let human = teacher.ok(&["status", "Maths"]);
    assert!(
        human.contains("dara: online, lessons 100 %, 1 submission"),
        "{human}"
    );
    assert!(human.contains("hw-sokha.txt ("), "{human}");
    let s_status: serde_json::Value =
        serde_json::from_str(&dara.ok(&["status", "Maths", "--json"])).expect("status JSON");
    assert_eq!(s_status["student_name"], "dara", "{s_status}");
    assert_eq!(s_status["lessons"][0]["name"], "lesson1.txt", "{s_status}");
    assert_eq!(s_status["teacher_online"], true, "{s_status}");

    let into = tmp.path().join("marking");
    let collected: serde_json::Value = serde_json::from_str(&teacher.ok(&[
        "collect",
        "Maths",
        "--into",
        into.to_str().expect("utf-8"),
        "--json",
    ]))
    .expect("collect JSON");
    let dir = PathBuf::from(collected["dir"].as_str().expect("dir"));
    assert_eq!(
        read(&dir.join("dara/hw-dara.txt")).as_deref(),
        Some("dara's answer\n")
    );
    assert_eq!(
        read(&dir.join("sokha/hw-sokha.txt")).as_deref(),
        Some("sokha's answer\n")
    );

    // A teacher command on a student's laptop is refused in one line.
    let (ok, _, err) = dara.run(&["share", "Maths", lesson.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("is student here"), "{err}");

    // Leaving and closing take the class out of Syncthing.
    dara.ok(&["leave", "Maths"]);
    teacher.ok(&["close", "Maths"]);
    let (ok, _, _) = teacher.run(&["status", "Maths"]);
    assert!(!ok);

    // serve stops on SIGTERM, saying so (the announcement, had there been one, withdrawn).
    let pid = rustix::process::Pid::from_child(&serve.0);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let start = Instant::now();
    while serve.0.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "serve ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_line("its stop", &|l| l.contains("no longer taking students"));
    drop(serve);

    // Nothing outlives its guard: no process runs with this test's directory on its
    // command line (1.19's monitor puts the real Syncthing in a process group of its own).
    drop((teacher, dara, sokha, guesser));
    let marker = tmp.path().to_string_lossy().into_owned();
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rfind(')')
                .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
            if cmdline.contains(&marker) && !zombie {
                left.push(cmdline);
            }
        }
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// The shipped user units pass `systemd-analyze verify` (with the binary under test in
/// place of /usr/bin/koompi-class), every command they run exists, and the Syncthing unit's
/// `koompi-class engine` starts a Syncthing whose REST API answers on the user's port with
/// its home private.
#[test]
fn the_user_units_verify_and_their_commands_run() {
    if !koompi_testutil::require_programs("class_cli", &["syncthing", "systemd-analyze"]) {
        return;
    }
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system/systemd-user");
    let tmp = scratch();
    let mut paths = Vec::new();
    for name in [
        koompi_class::syncthing::UNIT_NAME,
        koompi_class::syncthing::WATCH_UNIT_NAME,
    ] {
        let text = std::fs::read_to_string(units.join(name)).expect("a shipped unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(args[0], "/usr/bin/koompi-class", "{name}: {exec}");
        let help = Command::new(BIN)
            .args(&args[1..])
            .arg("--help")
            .output()
            .expect("run");
        assert!(help.status.success(), "{name}: {exec} is not a command");
        let path = tmp.path().join(name);
        std::fs::write(&path, text.replace("/usr/bin/koompi-class", BIN)).expect("write");
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        // The man page is the package's, not on this host: links are not checked here.
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    let about_ours: Vec<&str> = err.lines().filter(|l| l.contains("koompi-class")).collect();
    assert!(out.status.success() && about_ours.is_empty(), "{err}");

    let state = tmp.path().join("state");
    let port = free_port();
    let mut engine = Guard(
        Command::new(BIN)
            .args(["--home", &state.to_string_lossy(), "--gui-port"])
            .arg(port.to_string())
            .arg("engine")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("engine"),
    );
    let home = state.join("koompi-class/syncthing");
    let start = Instant::now();
    let answered = loop {
        if let Ok(cfg) = koompi_class::syncthing::read_home_config(&home.join("config.xml")) {
            let client =
                koompi_class::syncthing::Client::new(&format!("127.0.0.1:{port}"), &cfg.api_key);
            if client.ping().is_ok() {
                // LAN only from the first start, before any class configured it.
                let opts = client.options().expect("options");
                assert!(
                    koompi_class::syncthing::classroom::is_lan_only(&opts),
                    "{opts}"
                );
                break true;
            }
        }
        if start.elapsed() > WAIT || engine.0.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The engine is Syncthing itself (exec), so killing it stops the monitor; its child
    // group goes with a SIGKILL to the group too.
    let pid = engine.0.id();
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &pid.to_string()])
        .status();
    drop(engine);
    assert!(
        answered,
        "koompi-class engine: no REST API on 127.0.0.1:{port}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&home).expect("home").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the Syncthing home is private");
}
